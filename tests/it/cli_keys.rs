//! `hookd keys create|list|revoke` against the data directory a server uses.

use crate::common;

use std::process::Command;

use crate::common::{TestServer, send};

/// Runs `hookd args… --data-dir dir` against the store a server on `dir` uses.
fn hookd(
    args: &[&str],
    dir: &std::path::Path,
    database_url: &Option<String>,
) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookd"));
    cmd.args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("HOOKD_ENCRYPTION_KEY")
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn");
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    let out = cmd.output().expect("running hookd");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn keys_created_on_the_command_line_work_over_http_until_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let db = common::postgres_url_for(dir.path()).await;

    let (ok, out, err) = hookd(
        &[
            "keys",
            "create",
            "--name",
            "ci",
            "--tenant",
            "acme",
            "--permissions",
            "webhooks:list,webhooks:read",
        ],
        dir.path(),
        &db,
    );
    assert!(ok, "{err}");
    let key = out
        .lines()
        .find_map(|l| l.strip_prefix("key:"))
        .map(str::trim)
        .expect("the key is printed")
        .to_string();
    let id: i64 = out
        .lines()
        .find_map(|l| l.strip_prefix("id:"))
        .map(|s| s.trim().parse().unwrap())
        .unwrap();

    let (status, body) = send(s.req_as(&key, reqwest::Method::GET, "/management/webhooks")).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = send(
        s.req_as(&key, reqwest::Method::POST, "/management/webhooks")
            .json(&serde_json::json!({
                "name": "x", "url": "https://example.com/x", "events": ["license.created"]
            })),
    )
    .await;
    assert_eq!(status, 403, "the key lacks webhooks:write");

    let (ok, out, _) = hookd(&["keys", "list", "--tenant", "acme"], dir.path(), &db);
    assert!(ok);
    assert!(out.contains("ci") && out.contains("webhooks:list"), "{out}");
    assert!(!out.contains(&key), "list never shows the plaintext key");

    let (ok, _, err) = hookd(
        &["keys", "revoke", &id.to_string(), "--tenant", "acme"],
        dir.path(),
        &db,
    );
    assert!(ok, "{err}");
    // The server caches key lookups for at most 5 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, _) = send(s.req_as(&key, reqwest::Method::GET, "/management/webhooks")).await;
        if status == 401 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "revoked key still accepted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn keys_create_rejects_unknown_permissions_and_revoke_of_unknown_key_fails() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::postgres_url_for(dir.path()).await;
    let (ok, _, err) = hookd(
        &[
            "keys",
            "create",
            "--name",
            "x",
            "--permissions",
            "webhooks:delete",
        ],
        dir.path(),
        &db,
    );
    assert!(!ok);
    assert!(err.contains("webhooks:delete"), "{err}");
    let (ok, _, err) = hookd(&["keys", "revoke", "999"], dir.path(), &db);
    assert!(!ok);
    assert!(err.contains("999"), "{err}");
}

#[tokio::test]
async fn migrate_creates_the_database_without_serving() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::postgres_url_for(dir.path()).await;
    let (ok, out, err) = hookd(&["migrate"], dir.path(), &db);
    assert!(ok, "{err}");
    assert!(out.contains("migrations applied"));
    if db.is_none() {
        assert!(dir.path().join("hookd.db").exists());
    }
}
