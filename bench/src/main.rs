//! hookd-bench: starts hookd (release build, SQLite or PostgreSQL), a
//! receiver on 127.0.0.1 and publishers, and measures the scenarios of the
//! delivery issue. Run with `cargo run --release --bin hookd-bench -- --help`
//! (a package of its own, `bench/`, so its needs stay out of the service's
//! dependencies).
//!
//! Scale mode (`--preload-rows N`): before scenarios a and b, the database
//! is filled with N delivered deliveries (`hookd_bench::history`), loaded
//! once into a seed database that hookd migrated; each of a and b then runs
//! on a copy of it (PostgreSQL: a database made from the seed as template;
//! SQLite: a copy of the file), so both start from the same history.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use axum::body::Bytes;
use clap::Parser;
use hookd_bench::history::History;

const KEY: &str = "bench-management-key";

#[derive(Debug, Parser)]
#[command(about = "Measures hookd's delivery throughput, latency and memory")]
struct Args {
    /// Scenarios to run: a (1 endpoint), b (10 endpoints), c (fixed rate), d (backlog drain).
    #[arg(long, value_delimiter = ',', default_value = "a,b,c,d")]
    scenario: Vec<String>,
    /// Events in scenario a.
    #[arg(long, default_value_t = 100_000)]
    events_a: usize,
    /// Events in scenario b.
    #[arg(long, default_value_t = 20_000)]
    events_b: usize,
    /// Events per second and seconds in scenario c.
    #[arg(long, default_value_t = 500)]
    rate_c: usize,
    #[arg(long, default_value_t = 30)]
    seconds_c: u64,
    /// Webhooks every event of scenario c goes to: 10 makes it b's fan-out
    /// at a fixed rate, which compares builds' CPU per delivery at equal
    /// work (b's closed loop lets a slower build fall behind, where it
    /// commits in larger batches).
    #[arg(long, default_value_t = 1)]
    endpoints_c: usize,
    /// Events in scenario d.
    #[arg(long, default_value_t = 1_000_000)]
    events_d: usize,
    /// Concurrent publishers.
    #[arg(long, default_value_t = 64)]
    publishers: usize,
    /// SQLite durability passed to hookd (full or normal).
    #[arg(long, default_value = "full")]
    sqlite_sync: String,
    /// The hookd binary (default: next to this one).
    #[arg(long)]
    hookd: Option<PathBuf>,
    /// Run hookd on PostgreSQL instead of SQLite: a server URL; each
    /// scenario gets a fresh database, dropped after it.
    #[arg(long)]
    database_url: Option<String>,
    /// hookd instances sharing the database (PostgreSQL only); publishers
    /// spread over them.
    #[arg(long, default_value_t = 1)]
    instances: usize,
    /// Give every webhook a payload filter (SPEC §12) that every published
    /// event matches, so deliveries are unchanged and the cost of
    /// evaluating filters at fan-out is what differs (compare scenario b
    /// with and without).
    #[arg(long)]
    filter_every_webhook: bool,
    /// Scale mode: before scenarios a and b, fill the database with this
    /// many delivered deliveries (events, deliveries, attempts as hookd
    /// leaves them), all of the bench's tenant and webhooks.
    #[arg(long, default_value_t = 0)]
    preload_rows: u64,
    /// Deliveries per preloaded event (webhooks 1..=N, the ids the
    /// scenarios' webhooks get).
    #[arg(long, default_value_t = 10)]
    preload_fanout: u64,
    /// Age of the oldest preloaded event; the newest is a minute old. Older
    /// than `--retention`, the oldest part is past retention and hookd's
    /// purge (which starts with hookd) deletes it during the scenario.
    #[arg(long, default_value = "29d")]
    preload_span: humantime::Duration,
    /// hookd's `--retention`.
    #[arg(long, default_value = "30d")]
    retention: humantime::Duration,
    /// Scenario c writes each delivery's publish time (µs since the epoch)
    /// and publish→receive latency (µs) to this file, one pair a line, to
    /// see when the slow ones happen.
    #[arg(long)]
    timeline_c: Option<PathBuf>,
}

/// The filter of `--filter-every-webhook`: several paths and operators,
/// all true for the bench's events (`{"t": …, "license": "bench"}`).
fn bench_filter() -> serde_json::Value {
    serde_json::json!({
        "type": {"$prefix": "license."},
        "$or": [{"data.license": {"$in": ["bench", "other"]}}, {"data.n": {"$exists": true}}],
        "data.missing": {"$exists": false},
        "$not": {"data.t": {"$lt": 0}}
    })
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// Counts deliveries and their publish→receive latency.
#[derive(Default)]
struct Receiver {
    received: AtomicU64,
    /// (publish time, publish→receive latency) of each delivery, in µs.
    deliveries: Mutex<Vec<(u64, u64)>>,
    last_us: AtomicU64,
}

fn sent_at(body: &[u8]) -> Option<u64> {
    let at = body.windows(4).position(|w| w == br#""t":"#)? + 4;
    let digits = body[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&body[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

async fn start_receiver(rx: Arc<Receiver>) -> String {
    let app = axum::Router::new().fallback(move |body: Bytes| {
        let rx = rx.clone();
        async move {
            let now = now_us();
            // The publish time the bench put in `data.t`; a scan, not a JSON
            // parse, so the receiver takes as little CPU from hookd as it can.
            if let Some(t) = sent_at(&body) {
                rx.deliveries
                    .lock()
                    .unwrap()
                    .push((t, now.saturating_sub(t)));
            }
            rx.received.fetch_add(1, Ordering::Relaxed);
            rx.last_us.fetch_max(now, Ordering::Relaxed);
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// The keys every hookd of the bench runs with: instances sharing a
/// database share the key of its secrets, and the seed of the scale mode
/// is written with the key its copies are opened with.
fn with_keys(cmd: &mut Command) {
    cmd.env(
        "HOOKD_ENCRYPTION_KEY",
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    )
    .env("MANAGEMENT_API_KEY", KEY);
}

struct Hookd {
    child: Child,
    base: String,
}

impl Hookd {
    async fn start(
        bin: &PathBuf,
        dir: &std::path::Path,
        role: &str,
        sync: &str,
        database_url: Option<&str>,
        extra: &[String],
    ) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut cmd = Command::new(bin);
        with_keys(&mut cmd);
        cmd.args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--role",
            role,
            "--allow-private-targets",
        ])
        .arg("--data-dir")
        .arg(dir)
        .args(["--sqlite-sync", sync])
        .args(extra)
        .env(
            "RUST_LOG",
            std::env::var("BENCH_HOOKD_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
        if let Some(url) = database_url {
            cmd.env("DATABASE_URL", url);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let h = Hookd {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        for _ in 0..400 {
            if client
                .get(format!("{}/healthz", h.base))
                .send()
                .await
                .is_ok()
            {
                return Ok(h);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        bail!("hookd did not start")
    }

    /// Peak resident memory (VmHWM) in MB.
    fn peak_rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }

    /// CPU time (user + system) used so far, in seconds: /proc's clock
    /// ticks at Linux's USER_HZ of 100.
    fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name (which may hold spaces): utime and
        // stime are the 12th and 13th.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (ticks(11) + ticks(12)) / 100.0
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// The instances of one scenario.
struct Cluster {
    nodes: Vec<Hookd>,
    dirs: Vec<tempfile::TempDir>,
}

impl Cluster {
    /// `first_dir`: the first instance's data directory when the scenario
    /// prepared it (the scale mode's SQLite copy); the others get new ones.
    async fn start(
        ctx: &Ctx,
        db: Option<&str>,
        role: &str,
        n: usize,
        mut first_dir: Option<tempfile::TempDir>,
    ) -> anyhow::Result<Self> {
        let mut nodes = Vec::new();
        let mut dirs = Vec::new();
        for _ in 0..n {
            let dir = match first_dir.take() {
                Some(dir) => dir,
                None => tempfile::tempdir()?,
            };
            nodes.push(
                Hookd::start(
                    &ctx.bin,
                    dir.path(),
                    role,
                    &ctx.args.sqlite_sync,
                    db,
                    &ctx.hookd_args,
                )
                .await?,
            );
            dirs.push(dir);
        }
        Ok(Self { nodes, dirs })
    }

    fn bases(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.base.clone()).collect()
    }

    fn peak_rss_mb(&self) -> f64 {
        self.nodes
            .iter()
            .map(Hookd::peak_rss_mb)
            .fold(0.0, f64::max)
    }

    fn cpu_seconds(&self) -> f64 {
        self.nodes.iter().map(Hookd::cpu_seconds).sum()
    }

    /// Stops every instance; answers their data directories (still there).
    fn stop(self) -> Vec<tempfile::TempDir> {
        for n in self.nodes {
            n.stop();
        }
        self.dirs
    }
}

/// A fresh PostgreSQL database for one scenario, dropped afterwards.
struct BenchDatabase {
    admin: String,
    name: String,
    url: String,
}

impl BenchDatabase {
    /// A new database; a copy of `template` (file by file) when given.
    async fn create(admin: &str, template: Option<&str>) -> anyhow::Result<Self> {
        use sqlx::Connection;
        let name = format!(
            "hookd_bench_{}_{}",
            std::process::id(),
            now_us() % 1_000_000
        );
        let mut conn = sqlx::PgConnection::connect(admin).await?;
        let copy = template.map_or(String::new(), |t| {
            format!(" TEMPLATE {t} STRATEGY FILE_COPY")
        });
        sqlx::raw_sql(&format!("CREATE DATABASE {name}{copy}"))
            .execute(&mut conn)
            .await?;
        let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
        Ok(Self {
            url: format!("{base}/{name}"),
            admin: admin.to_owned(),
            name,
        })
    }

    async fn drop_now(self) {
        use sqlx::Connection;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin).await {
            let _ = sqlx::raw_sql(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn)
            .await;
        }
    }
}

async fn database(ctx: &Ctx) -> anyhow::Result<Option<BenchDatabase>> {
    match &ctx.args.database_url {
        Some(admin) => Ok(Some(BenchDatabase::create(admin, None).await?)),
        None => Ok(None),
    }
}

/// The scale mode's history, loaded once into a database hookd migrated
/// (`--preload-rows`); scenarios a and b run on copies of it.
struct Seed {
    history: History,
    /// On PostgreSQL, the template database; on SQLite, `dir` holds it.
    db: Option<BenchDatabase>,
    dir: tempfile::TempDir,
}

/// Migrates a new database with `hookd migrate`, loads the history into
/// it and prints how long that took.
async fn load_seed(args: &Args, bin: &Path) -> anyhow::Result<Option<Seed>> {
    if args.preload_rows == 0 {
        return Ok(None);
    }
    let dir = tempfile::tempdir()?;
    let db = match &args.database_url {
        Some(admin) => Some(BenchDatabase::create(admin, None).await?),
        None => None,
    };
    let mut cmd = Command::new(bin);
    with_keys(&mut cmd);
    cmd.arg("migrate")
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::null());
    if let Some(db) = &db {
        cmd.env("DATABASE_URL", &db.url);
    }
    if !cmd.status()?.success() {
        bail!("hookd migrate failed");
    }
    let now = (now_us() / 1000) as i64;
    let history = History {
        deliveries: args.preload_rows,
        fanout: args.preload_fanout.max(1),
        tenant: "default".into(),
        environment: "production".into(),
        event_type: "license.created".into(),
        oldest_ms: now - args.preload_span.as_millis() as i64,
        newest_ms: now - 60_000,
        url: "http://127.0.0.1:9/r".into(),
    };
    let progress = |n: u64| eprint!("\rhistory: {n} deliveries loaded");
    let loaded = match &db {
        Some(db) => history.load_postgres(&db.url, progress).await,
        None => {
            let (h, file) = (history.clone(), dir.path().join("hookd.db"));
            tokio::task::spawn_blocking(move || h.load_sqlite(&file, progress)).await?
        }
    };
    eprintln!();
    let loaded = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            if let Some(db) = db {
                db.drop_now().await;
            }
            return Err(e.context("loading the history"));
        }
    };
    let past = history.events_before(now - args.retention.as_millis() as i64);
    println!(
        "history (scale mode): {} events and {} delivered deliveries with one attempt each, created {:.1} days to 1 min ago, loaded in {:.1} s (PostgreSQL: VACUUM ANALYZE included) ({:.0} deliveries/s); {past} of the events ({:.1} %) are past hookd's --retention {}",
        loaded.events,
        loaded.deliveries,
        args.preload_span.as_secs_f64() / 86_400.0,
        loaded.elapsed.as_secs_f64(),
        loaded.deliveries as f64 / loaded.elapsed.as_secs_f64(),
        100.0 * past as f64 / loaded.events.max(1) as f64,
        humantime::format_duration(*args.retention),
    );
    Ok(Some(Seed { history, db, dir }))
}

/// A scenario's database: a fresh one, or with the scale mode a copy of
/// the seed (on SQLite, the first instance's data directory with it).
struct ScenarioDb {
    db: Option<BenchDatabase>,
    dir: Option<tempfile::TempDir>,
}

async fn scenario_database(ctx: &Ctx, name: &str) -> anyhow::Result<ScenarioDb> {
    let Some(seed) = &ctx.seed else {
        return Ok(ScenarioDb {
            db: database(ctx).await?,
            dir: None,
        });
    };
    let started = Instant::now();
    let copy = match (&ctx.args.database_url, &seed.db) {
        (Some(admin), Some(template)) => ScenarioDb {
            db: Some(BenchDatabase::create(admin, Some(&template.name)).await?),
            dir: None,
        },
        _ => {
            let dir = tempfile::tempdir()?;
            std::fs::copy(
                seed.dir.path().join("hookd.db"),
                dir.path().join("hookd.db"),
            )?;
            ScenarioDb {
                db: None,
                dir: Some(dir),
            }
        }
    };
    println!(
        "({name}) on a copy of the history, made in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(copy)
}

/// Preloaded events still past retention in a scenario's database (after
/// hookd stopped): what the purge left.
async fn events_past_retention(
    ctx: &Ctx,
    db: Option<&BenchDatabase>,
    dir: &Path,
) -> anyhow::Result<u64> {
    let cutoff = (now_us() / 1000) as i64 - ctx.args.retention.as_millis() as i64;
    let n: i64 = match db {
        Some(db) => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&db.url).await?;
            sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE created_at < $1")
                .bind(cutoff)
                .fetch_one(&mut conn)
                .await?
        }
        None => rusqlite::Connection::open(dir.join("hookd.db"))?.query_row(
            "SELECT COUNT(*) FROM events WHERE created_at < ?1",
            [cutoff],
            |r| r.get(0),
        )?,
    };
    Ok(n as u64)
}

/// Creates `count` webhooks on `hookd`, the i-th delivering to
/// `{receiver}/r/{i}` (with `--filter-every-webhook`'s filter if set).
async fn create_webhooks(
    ctx: &Ctx,
    hookd: &str,
    receiver: &str,
    count: usize,
) -> anyhow::Result<()> {
    for i in 0..count {
        let mut body = serde_json::json!({
            "name": "bench",
            "url": format!("{receiver}/r/{i}"),
            "events": ["license.created"],
        });
        if ctx.args.filter_every_webhook {
            body["filter"] = bench_filter();
        }
        let r = ctx
            .client
            .post(format!("{hookd}/management/webhooks"))
            .bearer_auth(KEY)
            .json(&body)
            .send()
            .await?;
        if r.status() != 201 {
            bail!("creating a webhook: {} {}", r.status(), r.text().await?);
        }
    }
    Ok(())
}

/// What `publish_singles` measured.
struct Published {
    elapsed: Duration,
    accepted: u64,
    /// Each publish's time to its answer, sorted (µs).
    latencies_us: Vec<u64>,
}

/// Publishes `total` single events from `publishers` tasks.
async fn publish_singles(
    client: &reqwest::Client,
    hookd: &[String],
    total: usize,
    publishers: usize,
) -> Published {
    let next = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..publishers {
        let (client, next, accepted) = (client.clone(), next.clone(), accepted.clone());
        let url = format!("{}/v1/events", hookd[p % hookd.len()]);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < total as u64 {
                let sent = now_us();
                let body = format!(
                    r#"{{"type":"license.created","data":{{"t":{sent},"license":"bench"}}}}"#
                );
                match client.post(&url).bearer_auth(KEY).body(body).send().await {
                    Ok(r) if r.status() == 202 => {
                        accepted.fetch_add(1, Ordering::Relaxed);
                        latencies.push(now_us().saturating_sub(sent));
                    }
                    Ok(r) => eprintln!("publish answered {}", r.status()),
                    Err(e) => eprintln!("publish failed: {e}"),
                }
            }
            latencies
        }));
    }
    let mut latencies_us = Vec::with_capacity(total);
    for t in tasks {
        latencies_us.extend(t.await.unwrap_or_default());
    }
    latencies_us.sort_unstable();
    Published {
        elapsed: started.elapsed(),
        accepted: accepted.load(Ordering::Relaxed),
        latencies_us,
    }
}

async fn wait_for(rx: &Receiver, n: u64, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while rx.received.load(Ordering::Relaxed) < n {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn latency_line(rx: &Receiver) -> String {
    let mut l: Vec<u64> = rx.deliveries.lock().unwrap().iter().map(|d| d.1).collect();
    l.sort_unstable();
    format!(
        "p50 {:.2} ms, p99 {:.2} ms",
        percentile(&l, 0.50),
        percentile(&l, 0.99)
    )
}

/// The loopback ceiling: this client straight to the same receiver.
async fn ceiling(
    client: &reqwest::Client,
    receiver: &str,
    total: usize,
    concurrency: usize,
) -> f64 {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, next) = (client.clone(), next.clone());
        let url = format!("{receiver}/ceiling");
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < total as u64 {
                let body = r#"{"id":"evt_x","type":"license.created","timestamp":"2026-01-01T00:00:00Z","data":{"license":"bench"}}"#;
                let _ = client.post(&url).body(body).send().await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    total as f64 / started.elapsed().as_secs_f64()
}

struct Ctx {
    bin: PathBuf,
    args: Args,
    client: reqwest::Client,
    ceiling: f64,
    /// Arguments every hookd of the run gets.
    hookd_args: Vec<String>,
    /// The scale mode's history (`--preload-rows`).
    seed: Option<Seed>,
}

async fn scenario_fanout(
    ctx: &Ctx,
    name: &str,
    endpoints: usize,
    events: usize,
) -> anyhow::Result<()> {
    let ScenarioDb { db, dir } = scenario_database(ctx, name).await?;
    let rx = Arc::new(Receiver::default());
    let rbase = start_receiver(rx.clone()).await;
    // The purge starts with hookd: what is past retention now is its work.
    let retention_ms = ctx.args.retention.as_millis() as i64;
    let past_at_start = ctx.seed.as_ref().map_or(0, |s| {
        s.history
            .events_before((now_us() / 1000) as i64 - retention_ms)
    });
    let h = Cluster::start(
        ctx,
        db.as_ref().map(|d| d.url.as_str()),
        "all",
        ctx.args.instances,
        dir,
    )
    .await?;
    create_webhooks(ctx, &h.bases()[0], &rbase, endpoints).await?;
    let start_us = now_us();
    let published = publish_singles(&ctx.client, &h.bases(), events, ctx.args.publishers).await;
    let (elapsed, accepted) = (published.elapsed, published.accepted);
    let expected = accepted * endpoints as u64;
    let complete = wait_for(&rx, expected, Duration::from_secs(600)).await;
    let span_s = (rx.last_us.load(Ordering::Relaxed).saturating_sub(start_us)) as f64 / 1e6;
    let delivered = rx.received.load(Ordering::Relaxed);
    let dps = delivered as f64 / span_s;
    let cpu = h.cpu_seconds();
    println!(
        "({name}) {endpoints} endpoint(s), {events} events, {} publishers: accepted {:.0} events/s (publish p50 {:.2} ms, p99 {:.2} ms); delivered {delivered}/{expected}{} at {:.0} deliveries/s ({:.1} % of the ceiling); latency {}; hookd CPU {cpu:.2} s = {:.4} s per 1,000 deliveries; hookd peak RSS {:.0} MB",
        ctx.args.publishers,
        accepted as f64 / elapsed.as_secs_f64(),
        percentile(&published.latencies_us, 0.50),
        percentile(&published.latencies_us, 0.99),
        if complete { "" } else { " (INCOMPLETE)" },
        dps,
        100.0 * dps / ctx.ceiling,
        latency_line(&rx),
        1000.0 * cpu / delivered.max(1) as f64,
        h.peak_rss_mb()
    );
    let dirs = h.stop();
    if past_at_start > 0 {
        let left = events_past_retention(ctx, db.as_ref(), dirs[0].path()).await?;
        println!(
            "({name}) retention purge: {past_at_start} preloaded events (with their deliveries and attempts) were past retention when hookd started, {left} were left when it stopped"
        );
    }
    if let Some(db) = db {
        db.drop_now().await;
    }
    Ok(())
}

async fn scenario_rate(ctx: &Ctx) -> anyhow::Result<()> {
    let db = database(ctx).await?;
    let rx = Arc::new(Receiver::default());
    let rbase = start_receiver(rx.clone()).await;
    let h = Cluster::start(
        ctx,
        db.as_ref().map(|d| d.url.as_str()),
        "all",
        ctx.args.instances,
        None,
    )
    .await?;
    create_webhooks(ctx, &h.bases()[0], &rbase, ctx.args.endpoints_c).await?;
    let total = ctx.args.rate_c * ctx.args.seconds_c as usize;
    let interval = Duration::from_secs_f64(1.0 / ctx.args.rate_c as f64);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let bases = h.bases();
    let mut tasks = Vec::with_capacity(total);
    for n in 0..total {
        ticker.tick().await;
        let (client, url) = (
            ctx.client.clone(),
            format!("{}/v1/events", bases[n % bases.len()]),
        );
        tasks.push(tokio::spawn(async move {
            let body = format!(
                r#"{{"type":"license.created","data":{{"t":{}}}}}"#,
                now_us()
            );
            client
                .post(&url)
                .bearer_auth(KEY)
                .body(body)
                .send()
                .await
                .map(|r| r.status() == 202)
                .unwrap_or(false)
        }));
    }
    let mut accepted = 0u64;
    for t in tasks {
        accepted += u64::from(t.await.unwrap_or(false));
    }
    let expected = accepted * ctx.args.endpoints_c as u64;
    let complete = wait_for(&rx, expected, Duration::from_secs(60)).await;
    if let Some(path) = &ctx.args.timeline_c {
        let mut timeline = rx.deliveries.lock().unwrap().clone();
        timeline.sort_unstable();
        let text: String = timeline
            .iter()
            .map(|(sent, latency)| format!("{sent} {latency}\n"))
            .collect();
        std::fs::write(path, text)?;
    }
    let delivered = rx.received.load(Ordering::Relaxed);
    let cpu = h.cpu_seconds();
    println!(
        "(c) fixed {} events/s for {} s to {} endpoint(s): accepted {accepted}, delivered {delivered}/{expected}{}; publish→receive {}; hookd CPU {cpu:.2} s = {:.4} s per 1,000 deliveries; hookd peak RSS {:.0} MB",
        ctx.args.rate_c,
        ctx.args.seconds_c,
        ctx.args.endpoints_c,
        if complete { "" } else { " (INCOMPLETE)" },
        latency_line(&rx),
        1000.0 * cpu / delivered.max(1) as f64,
        h.peak_rss_mb()
    );
    h.stop();
    if let Some(db) = db {
        db.drop_now().await;
    }
    Ok(())
}

async fn scenario_drain(ctx: &Ctx) -> anyhow::Result<()> {
    let db = database(ctx).await?;
    let db_url = db.as_ref().map(|d| d.url.clone());
    let rx = Arc::new(Receiver::default());
    let rbase = start_receiver(rx.clone()).await;
    // On SQLite the restart must find the data: the same directory.
    let dir = tempfile::tempdir()?;
    let h = Hookd::start(
        &ctx.bin,
        dir.path(),
        "api",
        &ctx.args.sqlite_sync,
        db_url.as_deref(),
        &ctx.hookd_args,
    )
    .await?;
    create_webhooks(ctx, &h.base, &rbase, 1).await?;
    let total = ctx.args.events_d;
    let batch = 1_000;
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (client, next, url) = (
            ctx.client.clone(),
            next.clone(),
            format!("{}/v1/events/batch", h.base),
        );
        tasks.push(tokio::spawn(async move {
            let mut accepted = 0u64;
            while next.fetch_add(batch as u64, Ordering::Relaxed) < total as u64 {
                let events: Vec<serde_json::Value> = (0..batch)
                    .map(|i| serde_json::json!({"type": "license.created", "data": {"n": i}}))
                    .collect();
                if let Ok(r) = client
                    .post(&url)
                    .bearer_auth(KEY)
                    .json(&serde_json::json!({"events": events}))
                    .send()
                    .await
                    && r.status() == 202
                {
                    accepted += batch as u64;
                }
            }
            accepted
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        accepted += t.await.unwrap_or(0);
    }
    let publish_s = started.elapsed().as_secs_f64();
    let api_rss = h.peak_rss_mb();
    h.stop();
    let started = Instant::now();
    let h = match &db_url {
        None => Cluster {
            nodes: vec![
                Hookd::start(
                    &ctx.bin,
                    dir.path(),
                    "all",
                    &ctx.args.sqlite_sync,
                    None,
                    &ctx.hookd_args,
                )
                .await?,
            ],
            dirs: Vec::new(),
        },
        Some(url) => Cluster::start(ctx, Some(url), "all", ctx.args.instances, None).await?,
    };
    let mut peak = 0.0f64;
    let deadline = Instant::now() + Duration::from_secs(1800);
    while rx.received.load(Ordering::Relaxed) < accepted && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        peak = peak.max(h.peak_rss_mb());
    }
    let drain_s = started.elapsed().as_secs_f64();
    let delivered = rx.received.load(Ordering::Relaxed);
    let cpu = h.cpu_seconds();
    println!(
        "(d) {accepted} events published to --role api in {publish_s:.1} s ({:.0} events/s, peak RSS {api_rss:.0} MB); restarted --role all: drained {delivered} in {drain_s:.1} s = {:.0} deliveries/s ({:.1} % of the ceiling); drain CPU {cpu:.1} s = {:.3} s per 1,000 deliveries; peak RSS {:.0} MB",
        accepted as f64 / publish_s,
        delivered as f64 / drain_s,
        100.0 * delivered as f64 / drain_s / ctx.ceiling,
        1000.0 * cpu / delivered.max(1) as f64,
        peak.max(h.peak_rss_mb())
    );
    h.stop();
    if let Some(db) = db {
        db.drop_now().await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = match &args.hookd {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("hookd"),
    };
    if !bin.exists() {
        bail!(
            "{} not found: build it first (cargo build --release)",
            bin.display()
        );
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .build()?;
    let rx = Arc::new(Receiver::default());
    let rbase = start_receiver(rx).await;
    let ceiling = ceiling(&client, &rbase, 100_000, args.publishers).await;
    if args.instances > 1 && args.database_url.is_none() {
        bail!("--instances > 1 needs --database-url (SQLite serves one instance)");
    }
    let store = match &args.database_url {
        Some(_) => format!("PostgreSQL, {} instance(s)", args.instances),
        None => format!("SQLite, sqlite-sync {}", args.sqlite_sync),
    };
    println!(
        "machine: {} cores; loopback ceiling (this client → this receiver, {} concurrent): {ceiling:.0} requests/s; {store}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.publishers,
    );
    let seed = load_seed(&args, &bin).await?;
    let hookd_args = vec![
        "--retention".to_owned(),
        humantime::format_duration(*args.retention).to_string(),
    ];
    let ctx = Ctx {
        bin,
        client,
        ceiling,
        args,
        hookd_args,
        seed,
    };
    for s in ctx.args.scenario.clone() {
        match s.as_str() {
            "a" => scenario_fanout(&ctx, "a", 1, ctx.args.events_a).await?,
            "b" => scenario_fanout(&ctx, "b", 10, ctx.args.events_b).await?,
            "c" => scenario_rate(&ctx).await?,
            "d" => scenario_drain(&ctx).await?,
            other => bail!("unknown scenario {other:?}"),
        }
    }
    if let Some(seed) = ctx.seed
        && let Some(db) = seed.db
    {
        db.drop_now().await;
    }
    Ok(())
}
