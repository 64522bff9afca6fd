//! Wiring and lifecycle: opens the store, resolves keys, builds the HTTP
//! router, and runs until the shutdown token fires.
//!
//! `serve` takes an already-bound listener and a cancellation token, so a
//! test binds port 0 and runs the real server as a child; `run` takes the
//! parts (settings, store, clock), so a test runs it in-process with a
//! clock it moves.

use crate::domain::operational::OperationalTarget;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::Authenticator;
use crate::clock::{Clock, SystemClock};
use crate::config::{Role, ServeArgs, Settings, SqliteSync, StoreArgs};
use crate::crypto::{Cipher, generate_api_key, write_private_file};
use crate::dispatcher::targets::TargetCache;
use crate::dispatcher::{DeliveryPolicy, Dispatcher, DispatcherParts, SharedPolicy};
use crate::http::router;
use crate::ops::Services;
use crate::publish::Publisher;
use crate::state::{AppState, AppStateParts};
use crate::store::{PostgresStore, SqliteStore, Store};

const KEY_FILE: &str = "management_api_key";

/// Opens the configured store, creating the data directory when needed.
pub async fn open_store(args: &StoreArgs) -> anyhow::Result<Arc<dyn Store>> {
    let cipher = load_cipher(args)?;
    open_store_with(args, cipher).await
}

/// The encryption key: configured, or kept in the data directory.
pub fn load_cipher(args: &StoreArgs) -> anyhow::Result<Arc<Cipher>> {
    crate::data_dir::prepare(&args.data_dir)
        .with_context(|| format!("creating data directory {}", args.data_dir.display()))?;
    Ok(Arc::new(
        Cipher::load_or_create(args.encryption_key.as_deref(), &args.data_dir)
            .context("loading the encryption key")?,
    ))
}

async fn open_store_with(args: &StoreArgs, cipher: Arc<Cipher>) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(url) = &args.database_url {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            anyhow::bail!(
                "--database-url must be a postgres:// URL (SQLite needs none: it lives under --data-dir)"
            );
        }
        let store = PostgresStore::open(url, cipher)
            .await
            .context("opening the PostgreSQL store (is the database reachable?)")?;
        return Ok(Arc::new(store));
    }
    let store = SqliteStore::open(&args.data_dir, cipher, args.sqlite_sync == SqliteSync::Full)
        .await
        .with_context(|| format!("opening the SQLite store in {}", args.data_dir.display()))?;
    Ok(Arc::new(store))
}

/// The bootstrap keys: from the configuration, else from the key file,
/// else a new key generated into the key file (mode 0600). The path is
/// logged, never the key.
pub fn bootstrap_keys(args: &ServeArgs) -> anyhow::Result<Vec<String>> {
    let mut keys: Vec<String> = args
        .management_api_keys
        .iter()
        .chain(args.management_api_key.iter())
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
        .collect();
    keys.dedup();
    if !keys.is_empty() {
        return Ok(keys);
    }
    let path = args.store.data_dir.join(KEY_FILE);
    read_or_create_key_file(&path).map(|k| vec![k])
}

fn read_or_create_key_file(path: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => {
            tracing::info!(path = %path.display(), "management key read from key file");
            Ok(s.trim().to_owned())
        }
        Ok(_) => anyhow::bail!("the key file {} is empty", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = format!("mk_{}", generate_api_key().trim_start_matches("hk_"));
            write_private_file(path, &key)
                .with_context(|| format!("writing {}", path.display()))?;
            tracing::warn!(
                path = %path.display(),
                "no MANAGEMENT_API_KEY configured: generated a management key into this file (mode 0600)"
            );
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// How long in-flight attempts may run after SIGTERM before leases are released.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);
const STATS_EVERY: Duration = Duration::from_secs(5);

/// One process per SQLite data directory: a second would corrupt leases.
fn lock_data_dir(args: &StoreArgs) -> anyhow::Result<Option<std::fs::File>> {
    if args.database_url.is_some() {
        return Ok(None);
    }
    crate::data_dir::prepare(&args.data_dir)
        .with_context(|| format!("creating data directory {}", args.data_dir.display()))?;
    let path = args.data_dir.join("hookd.lock");
    let file = crate::data_dir::open_private_file(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.try_lock().map_err(|_| {
        anyhow::anyhow!(
            "another hookd process is using {}; SQLite serves one instance (use PostgreSQL for several)",
            args.data_dir.display()
        )
    })?;
    Ok(Some(file))
}

/// The delivery engine's runtime: the commit loop, the scheduler and every
/// delivery job, apart from the multi-threaded runtime that serves HTTP.
/// Publishes and deliveries then do not queue behind each other's tasks.
/// With one thread (`--engine-threads`, the default on up to two cores) it
/// is a current-thread runtime, and the commit loop hands jobs over
/// without waking another thread (measured on 2 cores: faster than one
/// shared runtime, and than two engine threads); with more, a
/// work-stealing runtime of that many threads, so attempts use the cores
/// one thread cannot.
struct EngineRuntime {
    handle: tokio::runtime::Handle,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl EngineRuntime {
    fn start(threads: usize) -> anyhow::Result<Self> {
        let rt = if threads <= 1 {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .thread_name("hookd-engine")
                .enable_all()
                .build()
        }
        .context("building the engine runtime")?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("hookd-engine".into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = stopped.await;
                    // Database connections released by the last tasks are
                    // returned by tasks of their own: let those finish.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                });
            })
            .context("spawning the engine thread")?;
        Ok(Self {
            handle,
            stop,
            thread,
        })
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::task::spawn_blocking(move || self.thread.join()).await;
    }
}

/// What a running hookd is made of. `serve` builds it from the command
/// line; a test builds it with a clock it moves and runs it in-process.
pub struct Parts {
    pub settings: Settings,
    pub role: Role,
    pub store: Arc<dyn Store>,
    pub cipher: Arc<Cipher>,
    pub clock: Arc<dyn Clock>,
    /// The bootstrap management keys.
    pub management_keys: Vec<String>,
    /// This process alone uses the store (SQLite, under the data
    /// directory's lock): leases of an earlier run are void at start.
    pub exclusive_store: bool,
}

/// Runs the service on `listener` until `shutdown` is cancelled, then
/// drains: HTTP first (no new events), then the publisher, then in-flight
/// attempts.
pub async fn serve(
    args: ServeArgs,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let settings = Settings::from_args(&args)?;
    let _lock = lock_data_dir(&args.store)?;
    let cipher = load_cipher(&args.store)?;
    let parts = Parts {
        settings,
        role: args.role,
        store: open_store_with(&args.store, cipher.clone()).await?,
        cipher,
        clock: Arc::new(SystemClock),
        management_keys: bootstrap_keys(&args)?,
        exclusive_store: args.store.database_url.is_none(),
    };
    run(parts, listener, shutdown).await
}

/// Runs hookd from its parts on `listener` until `shutdown` is cancelled
/// (see `serve`).
pub async fn run(
    parts: Parts,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let Parts {
        settings,
        role,
        store,
        cipher,
        clock,
        management_keys: keys,
        exclusive_store,
    } = parts;
    let settings = Arc::new(settings);
    let metrics = crate::metrics::install();
    let policy: SharedPolicy = Arc::new(RwLock::new(DeliveryPolicy::from_settings(&settings)));
    crate::dispatcher::policy::refresh(store.as_ref(), &settings, &policy).await?;
    let targets = Arc::new(TargetCache::default());
    if let Some(tenant) = &settings.operational_tenant {
        store.set_operational_target(OperationalTarget {
            tenant: tenant.clone(),
            environment: settings.default_environment().to_owned(),
        });
    }
    if exclusive_store {
        let released = store.release_leases(None, clock.now_ms()).await?;
        if released > 0 {
            tracing::info!(
                released,
                "re-queued deliveries left in flight by the previous run"
            );
        }
    }
    let owner = format!("{}-{:08x}", std::process::id(), rand::random::<u32>());
    let engine = EngineRuntime::start(settings.engine_threads)?;
    let (outcome_tx, outcome_rx) = tokio::sync::mpsc::unbounded_channel();
    let dispatcher = role.delivers().then(|| {
        Dispatcher::start(DispatcherParts {
            store: store.clone(),
            settings: settings.clone(),
            policy: policy.clone(),
            targets: targets.clone(),
            clock: clock.clone(),
            owner: owner.clone(),
            outcomes: outcome_tx,
            engine: engine.handle.clone(),
        })
    });
    let flush = CancellationToken::new();
    let (publisher, commit_task) = Publisher::start(
        store.clone(),
        dispatcher.as_ref().map(|(d, _)| d.clone()),
        clock.clone(),
        outcome_rx,
        flush.clone(),
        &engine.handle,
    );
    let pacer = Arc::new(crate::ops::backlog_pacer::BacklogPacer::default());
    let state = AppState::new(AppStateParts {
        ops: Services {
            pacer: pacer.clone(),
            authenticator: Arc::new(Authenticator::new(keys, store.clone(), cipher.clone())),
            store: store.clone(),
            settings: settings.clone(),
            publisher,
            dispatcher: dispatcher.as_ref().map(|(d, _)| d.clone()),
            targets,
            schemas: Arc::new(crate::event_schemas::SchemaCache::default()),
        },
        clock: clock.clone(),
        policy,
        metrics,
        cipher,
    });
    let maintenance_stop = CancellationToken::new();
    let purge = tokio::spawn(crate::retention::purge_loop(
        store.clone(),
        settings.clone(),
        clock.clone(),
        maintenance_stop.clone(),
    ));
    let maintenance = tokio::spawn(maintenance_loop(
        store.clone(),
        state.metrics.clone(),
        pacer,
        settings.clone(),
        state.policy.clone(),
        clock.clone(),
        maintenance_stop.clone(),
    ));
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() && !settings.admin_secure_cookies && role.serves_api() {
        tracing::warn!(
            "listening beyond loopback without --admin-secure-cookies: behind HTTPS, set it \
             so the admin page's session cookie is never sent over plain HTTP"
        );
    }
    tracing::info!(%addr, ?role, instance = %owner, "hookd listening");
    crate::listener::serve(
        listener,
        router(state, role.serves_api()),
        crate::listener::ConnectionLimits::from_settings(&settings),
        shutdown,
    )
    .await;
    // The router (and every Publisher clone in it) is gone: no new events.
    // In-flight attempts finish; the commit loop records their outcomes,
    // then stops; whatever is still leased is released for the next run.
    if let Some((d, tasks)) = dispatcher {
        d.shutdown(tasks, SHUTDOWN_GRACE).await;
    }
    flush.cancel();
    let _ = commit_task.await;
    if let Err(e) = store.release_leases(Some(&owner), clock.now_ms()).await {
        tracing::warn!(error = %e, "could not release leases at shutdown");
    }
    if let Err(e) = store.forget_instance(&owner).await {
        tracing::warn!(error = %e, "could not deregister this instance");
    }
    engine.stop().await;
    maintenance_stop.cancel();
    let _ = maintenance.await;
    let _ = purge.await;
    tracing::info!("hookd stopped");
    Ok(())
}

/// Metrics of the backlog (and the recorder's upkeep), settings saved by
/// another instance, and the pace of resumed backlogs (the retention purge
/// has its own task).
async fn maintenance_loop(
    store: Arc<dyn Store>,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
    pacer: Arc<crate::ops::backlog_pacer::BacklogPacer>,
    settings: Arc<Settings>,
    policy: SharedPolicy,
    clock: Arc<dyn Clock>,
    stop: CancellationToken,
) {
    let mut stats = tokio::time::interval(STATS_EVERY);
    let mut pace = tokio::time::interval(crate::ops::backlog_pacer::TICK);
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = stats.tick() => {
                let now = clock.now_ms();
                if let Ok(q) = store.queue_stats(now).await {
                    let age = q.oldest_due_at.map_or(0.0, |t| ((now - t).max(0) as f64) / 1000.0);
                    crate::metrics::queue(q.depth, age);
                    crate::metrics::suspended_webhooks(q.suspended_webhooks);
                }
                // Proof of life beyond the scrape: a stuck maintenance loop
                // (or engine) stops moving it.
                crate::metrics::heartbeat(now);
                // The recorder keeps every histogram sample until it is
                // folded into its buckets: by a scrape, or here. An
                // instance nobody scrapes grew by each attempt and request.
                metrics.run_upkeep();
                if let Err(e) = crate::dispatcher::policy::refresh(store.as_ref(), &settings, &policy).await {
                    tracing::warn!(error = %e, "could not reload the delivery policy");
                }
            }
            _ = pace.tick() => {
                if let Err(e) = pacer.tick(store.as_ref(), clock.now_ms()).await {
                    tracing::warn!(error = %e, "could not park or pace a backlog");
                }
            }
        }
    }
}
