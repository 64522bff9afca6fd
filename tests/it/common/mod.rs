//! Test harness: runs the real `hookd` binary on a free port with a
//! temporary data directory and talks HTTP to it.

pub mod browser;
pub mod oauth_server;
pub mod page_host;
pub mod pg;
pub mod receiver;
pub mod tls_receiver;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const MGMT_KEY: &str = "management_key_dev_123456";

/// A running hookd; stopped when dropped.
pub struct TestServer {
    pub base: String,
    running: Running,
    pub client: reqwest::Client,
    log_path: PathBuf,
}

/// How a test server runs.
enum Running {
    /// The real binary, as a child process: for what a process is the
    /// point of (signals, crashes, restarts, the command line).
    Process(Child),
    /// `hookd::app::run` on the test's runtime, with a clock the test moves.
    InProcess(tokio_util::sync::CancellationToken),
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Builder for a server's command line and environment.
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub management_key: Option<String>,
}

impl ServerConfig {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            management_key: Some(MGMT_KEY.to_string()),
        }
    }
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_string());
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }
    pub fn no_management_key(mut self) -> Self {
        self.management_key = None;
        self
    }
    pub async fn start(self) -> TestServer {
        TestServer::start_with(self).await
    }

    /// Runs hookd in this process (`hookd::app::run`) with a clock that
    /// stands still until the test moves it: time rules are tested by
    /// advancing it, not by sleeping. The test's runtime must be
    /// multi-threaded (the server runs on it).
    pub async fn start_in_process(self) -> (TestServer, hookd::clock::ManualClock) {
        use clap::Parser;
        std::fs::create_dir_all(&self.data_dir).unwrap();
        let mut argv: Vec<String> = vec!["hookd".into(), "serve".into(), "--data-dir".into()];
        argv.push(self.data_dir.display().to_string());
        if let Some(url) = postgres_url_for(&self.data_dir).await {
            argv.extend(["--database-url".into(), url]);
        }
        argv.extend(self.args.iter().cloned());
        let hookd::config::Command::Serve(args) = hookd::config::Cli::try_parse_from(&argv)
            .expect("test server flags")
            .command
        else {
            unreachable!("argv names serve")
        };
        let clock = hookd::clock::ManualClock::new(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64,
        );
        let parts = hookd::app::Parts {
            settings: hookd::config::Settings::from_args(&args).expect("test server settings"),
            role: args.role,
            store: hookd::app::open_store(&args.store)
                .await
                .expect("opening the store"),
            cipher: hookd::app::load_cipher(&args.store).expect("the encryption key"),
            clock: std::sync::Arc::new(clock.clone()),
            management_keys: self.management_key.into_iter().collect(),
            exclusive_store: args.store.database_url.is_none(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shutdown = tokio_util::sync::CancellationToken::new();
        tokio::spawn(hookd::app::run(parts, listener, shutdown.clone()));
        let server = TestServer {
            base: format!("http://127.0.0.1:{port}"),
            log_path: self.data_dir.join("in-process.log"),
            running: Running::InProcess(shutdown),
            client: reqwest::Client::new(),
        };
        server.wait_ready().await;
        (server, clock)
    }
}

impl TestServer {
    /// A server with the standard test management key on a fresh directory.
    pub async fn start(dir: &Path) -> TestServer {
        ServerConfig::new(dir).start().await
    }

    pub async fn start_with(cfg: ServerConfig) -> TestServer {
        let port = free_port();
        let log_path = cfg.data_dir.join(format!("hookd-{port}.log"));
        std::fs::create_dir_all(&cfg.data_dir).unwrap();
        let log = std::fs::File::create(&log_path).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookd"));
        cmd.arg("serve")
            .arg("--bind")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(&cfg.data_dir)
            .args(&cfg.args)
            .env_remove("MANAGEMENT_API_KEY")
            .env_remove("MANAGEMENT_API_KEYS")
            .env_remove("HOOKD_ENCRYPTION_KEY")
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(k) = &cfg.management_key {
            cmd.env("MANAGEMENT_API_KEY", k);
        }
        for (k, v) in &cfg.env {
            cmd.env(k, v);
        }
        // A test that names the database (several instances sharing one) wins.
        if !cfg.env.iter().any(|(k, _)| k == "DATABASE_URL")
            && let Some(url) = postgres_url_for(&cfg.data_dir).await
        {
            cmd.env("DATABASE_URL", url);
        }
        let child = cmd.spawn().expect("spawning hookd");
        let server = TestServer {
            base: format!("http://127.0.0.1:{port}"),
            running: Running::Process(child),
            client: reqwest::Client::new(),
            log_path,
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self
                .client
                .get(format!("{}/healthz", self.base))
                .send()
                .await
                && r.status().is_success()
            {
                return;
            }
            if Instant::now() > deadline {
                panic!("hookd did not become ready; log:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn child(&mut self) -> &mut Child {
        match &mut self.running {
            Running::Process(child) => child,
            Running::InProcess(_) => panic!("an in-process server has no process"),
        }
    }

    /// The process's threads named `name` (from /proc).
    pub fn threads_named(&self, name: &str) -> usize {
        let Running::Process(child) = &self.running else {
            panic!("an in-process server has no process")
        };
        std::fs::read_dir(format!("/proc/{}/task", child.id()))
            .expect("the process's threads")
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|comm| comm.trim() == name)
            .count()
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(&mut self) {
        let child = self.child();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// SIGTERM, then wait for exit; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let child = self.child();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                panic!("hookd did not exit after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request with the bootstrap key.
    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(MGMT_KEY)
    }

    pub fn req_as(
        &self,
        key: &str,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path)).bearer_auth(key)
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        send(self.req(reqwest::Method::POST, path).json(&body)).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        send(self.req(reqwest::Method::GET, path)).await
    }

    /// The Prometheus text of `/metrics` (served without a key).
    pub async fn metrics(&self) -> String {
        let resp = self.client.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "GET /metrics");
        resp.text().await.unwrap()
    }

    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        send(self.req(reqwest::Method::PATCH, path).json(&body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        send(self.req(reqwest::Method::DELETE, path)).await
    }

    /// Creates a webhook with sensible defaults merged with `extra`.
    pub async fn create_webhook(&self, url: &str, extra: Value) -> Value {
        let mut body = serde_json::json!({
            "name": "test hook",
            "url": url,
            "events": ["license.created"],
        });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        let (status, json) = self.post("/management/webhooks", body).await;
        assert_eq!(status, 201, "create webhook failed: {json}");
        json
    }

    /// Provisions an API key and returns its plaintext.
    pub async fn api_key(&self, tenant: &str, permissions: &[&str]) -> String {
        let (status, json) = self
            .post(
                "/management/api-keys",
                serde_json::json!({"name": "test key", "tenant": tenant, "permissions": permissions}),
            )
            .await;
        assert_eq!(status, 201, "create key failed: {json}");
        json["key"].as_str().unwrap().to_string()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        match &mut self.running {
            Running::Process(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Running::InProcess(shutdown) => shutdown.cancel(),
        }
    }
}

/// Which store the servers of this test run use: `HOOKD_TEST_BACKEND=postgres`
/// runs the same suite on PostgreSQL (the server of `pg::admin_url()`);
/// anything else, SQLite.
pub fn on_postgres() -> bool {
    std::env::var("HOOKD_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

/// On PostgreSQL, the database of the server using `data_dir`: one per data
/// directory, so a restart on the same directory finds its data again.
/// Created on first use; `scripts/test` drops them all after the run.
pub async fn postgres_url_for(data_dir: &Path) -> Option<String> {
    if !on_postgres() {
        return None;
    }
    let admin = pg::admin_url();
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data_dir.hash(&mut h);
    let name = format!("hookd_srv_{:016x}", h.finish());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("{}", pg::unreachable(&admin, &e)));
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_optional(&mut conn)
        .await
        .unwrap();
    if exists.is_none() {
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    Some(pg::with_database(&admin, &name))
}

/// Sends a request; answers (status, JSON body or Null).
pub async fn send(rb: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = rb.send().await.expect("request failed");
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap_or_default();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, json)
}

/// Asserts a problem+json 400 that names `field`.
pub fn assert_field_error(status: u16, body: &Value, field: &str) {
    assert_eq!(
        status, 400,
        "expected 400 naming {field}, got {status}: {body}"
    );
    let errors = body["errors"].as_array().expect("problem body has errors");
    assert!(
        errors.iter().any(|e| e["field"] == field),
        "no error names {field:?}: {body}"
    );
}

/// Sends a request; answers (status, content type, JSON body or Null).
pub async fn full(rb: reqwest::RequestBuilder) -> (u16, String, Value) {
    let resp = rb.send().await.expect("request failed");
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = resp.bytes().await.unwrap_or_default();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, ct, json)
}

/// Asserts an RFC 9457 problem+json answer with status `expected`.
pub fn assert_problem(status: u16, ct: &str, body: &Value, expected: u16) {
    assert_eq!(
        status, expected,
        "expected {expected}, got {status}: {body}"
    );
    assert!(
        ct.starts_with("application/problem+json"),
        "content type {ct:?} for {status}: {body}"
    );
    for field in ["type", "title", "detail"] {
        assert!(body[field].is_string(), "problem without {field}: {body}");
    }
    assert_eq!(body["status"], expected, "problem status: {body}");
    assert!(body["errors"].is_array(), "problem without errors: {body}");
}
