//! Data survives restarts and crashes; secrets are encrypted at rest; a
//! wrong encryption key refuses to start.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::common::{MGMT_KEY, ServerConfig, TestServer, free_port, send};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::{Value, json};

const HOOKS: &str = "/management/webhooks";
const HEADER_VALUE: &str = "super-secret-header-value";

/// Everything observable about the management data, to compare across restarts.
async fn snapshot(s: &TestServer) -> Value {
    let (status, list) = s.get(&format!("{HOOKS}?limit=500")).await;
    assert_eq!(status, 200, "{list}");
    let mut secrets = Vec::new();
    for w in list["data"].as_array().unwrap() {
        let (status, sec) = s.get(&format!("{HOOKS}/{}/secret", w["id"])).await;
        assert_eq!(status, 200, "{sec}");
        secrets.push(sec);
    }
    let (_, keys) = s.get("/management/api-keys").await;
    let (_, types) = s.get("/management/event-types?include_archived=true").await;
    json!({"webhooks": list, "secrets": secrets, "keys": keys, "types": types})
}

/// Creates a varied data set; answers the provisioned key's plaintext.
async fn populate(s: &TestServer) -> String {
    let (status, t) = s
        .post("/management/event-types", json!({"name": "invoice.paid"}))
        .await;
    assert_eq!(status, 201, "{t}");
    s.create_webhook(
        "https://example.com/one",
        json!({
            "name": "persist-one",
            "events": ["invoice.paid", "license.*"],
            "environment": "staging",
            "description": "kept",
            "headers": {"X-Secret": [HEADER_VALUE]},
            "timeout": "3s",
            "rate_limit": 9,
            "retry_schedule": ["1s", "2m"],
            "failure_handling": {"min_failures": 4, "suspend_after": "2h"}
        }),
    )
    .await;
    let two = s
        .create_webhook(
            "https://example.com/two",
            json!({"name": "persist-two", "enabled": false}),
        )
        .await;
    let (status, r) = s
        .post(&format!("{HOOKS}/{}/secret/rotate", two["id"]), json!({}))
        .await;
    assert_eq!(status, 200, "{r}");
    let (status, _) = s.delete("/management/event-types/license.expired").await;
    assert_eq!(status, 204);
    let (status, other) = send(
        s.req(Method::POST, HOOKS)
            .header("X-Tenant-Id", "tenant-b")
            .json(&json!({"name": "b", "url": "https://example.com/one", "events": ["license.created"]})),
    )
    .await;
    assert_eq!(status, 201, "{other}");
    s.api_key("default", &["webhooks:read", "webhooks:list"])
        .await
}

async fn assert_key_works(s: &TestServer, key: &str, expected_total: u64) {
    let (status, list) = send(s.req_as(key, Method::GET, HOOKS)).await;
    assert_eq!(
        status, 200,
        "provisioned key rejected after restart: {list}"
    );
    assert_eq!(list["total"], expected_total, "{list}");
}

#[tokio::test]
async fn everything_survives_sigkill_and_a_restart_on_the_same_dir() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = TestServer::start(dir.path()).await;
    let key = populate(&s).await;
    let before = snapshot(&s).await;
    s.kill();

    let s2 = TestServer::start(dir.path()).await;
    let after = snapshot(&s2).await;
    assert_eq!(after, before);
    assert_key_works(&s2, &key, 2).await;
    let (status, b) = send(s2.req(Method::GET, HOOKS).header("X-Tenant-Id", "tenant-b")).await;
    assert_eq!(status, 200);
    assert_eq!(b["total"], 1, "{b}");
    // The restarted server keeps working: new ids do not collide.
    let w = s2
        .create_webhook("https://example.com/three", json!({}))
        .await;
    let ids: Vec<&Value> = before["webhooks"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| &w["id"])
        .collect();
    assert!(!ids.contains(&&w["id"]), "id reused after restart: {w}");
}

#[tokio::test]
async fn sigterm_exits_successfully_and_everything_survives() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = TestServer::start(dir.path()).await;
    let key = populate(&s).await;
    let before = snapshot(&s).await;
    let status = s.terminate();
    assert!(
        status.success(),
        "SIGTERM exit status: {status:?}\n{}",
        s.log()
    );

    let mut s2 = TestServer::start(dir.path()).await;
    assert_eq!(snapshot(&s2).await, before);
    assert_key_works(&s2, &key, 2).await;
    // Twice in a row.
    let status = s2.terminate();
    assert!(status.success(), "{status:?}");
    let s3 = TestServer::start(dir.path()).await;
    assert_eq!(snapshot(&s3).await, before);
}

#[tokio::test]
async fn revoked_key_stays_revoked_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = TestServer::start(dir.path()).await;
    let (status, k) = s
        .post(
            "/management/api-keys",
            json!({"name": "gone", "tenant": "default", "permissions": ["webhooks:list"]}),
        )
        .await;
    assert_eq!(status, 201, "{k}");
    let (status, _) = s.delete(&format!("/management/api-keys/{}", k["id"])).await;
    assert_eq!(status, 204);
    s.kill();
    let s2 = TestServer::start(dir.path()).await;
    let (status, _) = send(s2.req_as(k["key"].as_str().unwrap(), Method::GET, HOOKS)).await;
    assert_eq!(status, 401);
}

/// Every file under `dir`, recursively, with its bytes.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.push((p, bytes));
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Asserts no file under `dir` holds any of `needles` (name, bytes).
fn assert_absent_at_rest(dir: &Path, needles: &[(String, Vec<u8>)]) {
    let files = files_under(dir);
    let names: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
    assert!(
        files
            .iter()
            .any(|(p, _)| p.file_name().unwrap() == "hookd.db"),
        "no hookd.db in {names:?}"
    );
    // The scan sees the data: plain fields are there to be found.
    assert!(
        files.iter().any(
            |(p, b)| p.to_string_lossy().contains("hookd.db") && contains(b, b"persist-marker")
        ),
        "the webhook's name is in no database file; the scan misses the data: {names:?}"
    );
    for (path, bytes) in &files {
        for (what, needle) in needles {
            assert!(
                !contains(bytes, needle),
                "{what} found in plain in {}",
                path.display()
            );
        }
    }
}

#[tokio::test]
async fn secrets_header_values_and_api_keys_are_not_stored_in_plain() {
    if common::on_postgres() {
        // This test reads the SQLite files; the store conformance suite and
        // the shared sealing code (`store::rows`) cover PostgreSQL.
        eprintln!("reads SQLite files: skipped on PostgreSQL");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut s = TestServer::start(dir.path()).await;
    let w = s
        .create_webhook(
            "https://example.com/enc",
            json!({"name": "persist-marker", "headers": {"X-Secret": [HEADER_VALUE]}}),
        )
        .await;
    let path = format!("{HOOKS}/{}/secret", w["id"]);
    let (status, sec) = s.get(&path).await;
    assert_eq!(status, 200, "{sec}");
    let first = sec["secret"].as_str().unwrap().to_string();
    let (status, rotated) = s.post(&format!("{path}/rotate"), json!({})).await;
    assert_eq!(status, 200, "{rotated}");
    let second = rotated["secret"].as_str().unwrap().to_string();
    let api_key = s.api_key("default", &["webhooks:read"]).await;

    let mut needles: Vec<(String, Vec<u8>)> = vec![
        ("the header value".into(), HEADER_VALUE.as_bytes().to_vec()),
        ("the API key".into(), api_key.as_bytes().to_vec()),
    ];
    for (label, secret) in [("the old secret", &first), ("the current secret", &second)] {
        let b64 = secret.strip_prefix("whsec_").unwrap();
        needles.push((label.to_string(), secret.as_bytes().to_vec()));
        needles.push((format!("{label}'s base64"), b64.as_bytes().to_vec()));
        needles.push((
            format!("{label}'s key bytes"),
            STANDARD.decode(b64).unwrap(),
        ));
    }

    // Crashed: the write-ahead log holds the latest writes.
    s.kill();
    assert_absent_at_rest(dir.path(), &needles);

    // Restarted and stopped cleanly: still nothing in plain, and still readable.
    let mut s2 = TestServer::start(dir.path()).await;
    let (_, sec) = s2.get(&path).await;
    assert_eq!(sec["secret"], second.as_str());
    let (_, got) = s2.get(&format!("{HOOKS}/{}", w["id"])).await;
    assert_eq!(got["headers"], json!({"X-Secret": [HEADER_VALUE]}));
    let status = s2.terminate();
    assert!(status.success());
    assert_absent_at_rest(dir.path(), &needles);
}

#[cfg(unix)]
#[tokio::test]
async fn generated_encryption_key_file_has_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mut s = TestServer::start(dir.path()).await;
    s.create_webhook("https://example.com/k", json!({})).await;
    let path = dir.path().join("encryption_key");
    assert!(path.exists(), "no {}", path.display());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "encryption_key mode {mode:o}");
    let log = s.log();
    let key = std::fs::read_to_string(&path).unwrap().trim().to_string();
    assert!(!log.contains(&key), "the encryption key is in the log");
    s.terminate();
    assert!(!s.log().contains(&key), "the encryption key is in the log");
}

/// Runs `hookd serve` on `dir` with `env`; answers its exit status and
/// stderr if it exits within 30 s, panics if it keeps running.
/// `database_url`: the PostgreSQL database the server on `dir` used, if any.
fn start_expecting_exit(
    dir: &Path,
    database_url: &Option<String>,
    env: &[(&str, &str)],
) -> (ExitStatus, String) {
    let log_dir = tempfile::tempdir().unwrap();
    let log_path = log_dir.path().join("stderr.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookd"));
    cmd.arg("serve")
        .arg("--bind")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--data-dir")
        .arg(dir)
        .env_remove("MANAGEMENT_API_KEYS")
        .env_remove("HOOKD_ENCRYPTION_KEY")
        .env_remove("DATABASE_URL")
        .env("MANAGEMENT_API_KEY", MGMT_KEY)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    let mut child = cmd.spawn().expect("spawning hookd");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (
                status,
                std::fs::read_to_string(&log_path).unwrap_or_default(),
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "hookd kept running for 30 s; log:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn a_different_encryption_key_than_the_data_was_written_with_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::postgres_url_for(dir.path()).await;
    let mut s = TestServer::start(dir.path()).await;
    let w = s
        .create_webhook(
            "https://example.com/wk",
            json!({"headers": {"X-Secret": [HEADER_VALUE]}}),
        )
        .await;
    assert!(s.terminate().success());
    let written_with = std::fs::read_to_string(dir.path().join("encryption_key"))
        .unwrap()
        .trim()
        .to_string();

    let wrong = STANDARD.encode([0x42u8; 32]);
    assert_ne!(wrong, written_with);
    let (status, stderr) =
        start_expecting_exit(dir.path(), &db, &[("HOOKD_ENCRYPTION_KEY", &wrong)]);
    assert!(
        !status.success(),
        "started with the wrong key: {status:?}\n{stderr}"
    );
    assert!(
        !stderr.contains(&wrong),
        "the key is in the error output:\n{stderr}"
    );
    let wrong_hex = "ab".repeat(32);
    let (status, stderr) =
        start_expecting_exit(dir.path(), &db, &[("HOOKD_ENCRYPTION_KEY", &wrong_hex)]);
    assert!(
        !status.success(),
        "started with the wrong hex key: {status:?}\n{stderr}"
    );
    let (status, stderr) =
        start_expecting_exit(dir.path(), &db, &[("HOOKD_ENCRYPTION_KEY", "not a key")]);
    assert!(
        !status.success(),
        "started with a malformed key: {status:?}\n{stderr}"
    );

    // The right key, given explicitly, still opens everything.
    let s2 = ServerConfig::new(dir.path())
        .env("HOOKD_ENCRYPTION_KEY", &written_with)
        .start()
        .await;
    let (status, sec) = s2.get(&format!("{HOOKS}/{}/secret", w["id"])).await;
    assert_eq!(status, 200, "{sec}");
    assert_eq!(sec["secret"], w["secret"]);
    let (_, got) = s2.get(&format!("{HOOKS}/{}", w["id"])).await;
    assert_eq!(got["headers"], json!({"X-Secret": [HEADER_VALUE]}));
}

#[tokio::test]
async fn data_written_with_a_configured_key_does_not_start_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::postgres_url_for(dir.path()).await;
    let key = STANDARD.encode([0x17u8; 32]);
    let mut s = ServerConfig::new(dir.path())
        .env("HOOKD_ENCRYPTION_KEY", &key)
        .start()
        .await;
    let w = s.create_webhook("https://example.com/cfg", json!({})).await;
    assert!(s.terminate().success());

    // Without the key, a fresh generated key would not open the data: refuse.
    let (status, stderr) = start_expecting_exit(dir.path(), &db, &[]);
    assert!(
        !status.success(),
        "started without the configured key: {status:?}\n{stderr}"
    );

    let s2 = ServerConfig::new(dir.path())
        .env("HOOKD_ENCRYPTION_KEY", &key)
        .start()
        .await;
    let (status, sec) = s2.get(&format!("{HOOKS}/{}/secret", w["id"])).await;
    assert_eq!(status, 200, "{sec}");
    assert_eq!(sec["secret"], w["secret"]);
}

/// SPEC §14: the data directory is created 0700 and every file hookd
/// keeps there 0600, the database's WAL and shared-memory files included.
#[cfg(unix)]
#[tokio::test]
async fn data_directory_is_created_0700_and_its_files_0600() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fresh");
    let migrated = Command::new(env!("CARGO_BIN_EXE_hookd"))
        .arg("migrate")
        .arg("--data-dir")
        .arg(&dir)
        .env_remove("HOOKD_ENCRYPTION_KEY")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(migrated.success());
    assert_eq!(mode(&dir), 0o700, "a new data directory");

    // A server on it, generating its management key, with an event
    // written (the WAL and shared-memory files exist while it runs).
    let mut s = ServerConfig::new(&dir).no_management_key().start().await;
    let key = std::fs::read_to_string(dir.join("management_api_key")).unwrap();
    let (status, body) = send(
        s.client
            .post(s.url("/v1/events"))
            .bearer_auth(key.trim())
            .json(&json!({"type": "mode.check", "data": {}})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let mut files = vec!["encryption_key", "management_api_key"];
    if !common::on_postgres() {
        files.extend(["hookd.lock", "hookd.db", "hookd.db-wal", "hookd.db-shm"]);
    }
    for name in files {
        let path = dir.join(name);
        assert!(path.exists(), "no {name}");
        assert_eq!(mode(&path), 0o600, "{name}");
    }
    assert_eq!(mode(&dir), 0o700);
    s.terminate();
}

/// docs/backups.md's hot backup, as written there (with this test's
/// directories for `hookd-data` and `/backups`).
const HOT_BACKUP: [&str; 2] = [
    r#"sqlite3 hookd-data/hookd.db ".backup /backups/hookd.db""#,
    "cp hookd-data/encryption_key hookd-data/management_api_key /backups/",
];

#[tokio::test]
async fn a_hot_backup_restores_into_a_working_server() {
    if common::on_postgres() {
        // The data directory is SQLite's; PostgreSQL is backed up with its own tools.
        return;
    }
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/backups.md")).unwrap();
    for command in HOT_BACKUP {
        assert!(doc.contains(command), "docs/backups.md lacks {command}");
    }
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("hookd-data");
    let backups = root.path().join("backups");
    std::fs::create_dir(&backups).unwrap();
    let s = ServerConfig::new(&data).no_management_key().start().await;
    let key = std::fs::read_to_string(data.join("management_api_key")).unwrap();
    let key = key.trim();
    let (status, w) = send(s.req_as(key, Method::POST, HOOKS).json(&json!({
        "name": "backed-up", "url": "https://example.com/backed-up", "events": ["license.created"]})))
    .await;
    assert_eq!(status, 201, "{w}");
    // While it runs.
    for command in HOT_BACKUP {
        let command = command.replace("/backups", &backups.display().to_string());
        let out = Command::new("bash")
            .arg("-c")
            .arg(&command)
            .current_dir(root.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let restored = ServerConfig::new(&backups)
        .no_management_key()
        .start()
        .await;
    let (status, secret) =
        send(restored.req_as(key, Method::GET, &format!("{HOOKS}/{}/secret", w["id"]))).await;
    assert_eq!(status, 200, "{secret}");
    assert_eq!(
        secret["secret"], w["secret"],
        "the secret decrypts with the copied key"
    );
    drop(s);
}
