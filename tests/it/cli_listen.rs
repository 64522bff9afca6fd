//! `hookd listen`: verifies each delivery's signature and prints it.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use hookd::dispatcher::signing::sign;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::test]
async fn listen_accepts_signed_deliveries_and_rejects_forged_ones() {
    let port = common::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(["listen", "--port", &port.to_string(), "--secret", SECRET])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let url = format!("http://127.0.0.1:{port}/hooks");
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client.get(&url).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    let body = br#"{"id":"evt_1","type":"license.created","timestamp":"2026-01-01T00:00:00Z","data":{"n":1}}"#;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let key = base64::engine::general_purpose::STANDARD
        .decode(&SECRET[6..])
        .unwrap();
    let signature = sign(&key, "sls-webhook-1", now, body);
    let resp = client
        .post(&url)
        .header("webhook-id", "sls-webhook-1")
        .header("webhook-timestamp", now.to_string())
        .header("webhook-signature", signature)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let forged = client
        .post(&url)
        .header("webhook-id", "sls-webhook-1")
        .header("webhook-timestamp", now.to_string())
        .header("webhook-signature", "v1,AAAA")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);

    let mut printed = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let done = |p: &str| {
        p.contains("signature verified")
            && p.contains("signature rejected")
            && p.contains("license.created")
    };
    while !done(&printed) {
        assert!(
            std::time::Instant::now() < deadline,
            "printed so far: {printed}"
        );
        if let Ok(line) = lines_rx.recv_timeout(Duration::from_millis(100)) {
            printed.push_str(&line);
            printed.push('\n');
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn listen_refuses_a_malformed_secret() {
    let out = Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(["listen", "--port", "1", "--secret", "not-a-secret"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("whsec_"));
}

/// The README's first steps, as written (README.md must contain each of
/// these; the ports are the test's own): `listen` without a secret prints
/// the command that creates a webhook pointing at it, that command works
/// as printed, and a published event arrives verified.
const README_LISTEN: &str = "cargo run --release -- listen --port 9000 --server $HOOKD";
const README_PUBLISH: &str = r#"curl -sS $HOOKD/v1/events -H "Authorization: Bearer $KEY" \
         -d '{"type": "license.created", "data": {"license_id": 42}}'"#;

/// A child process ended when the test ends, passed or not.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines a child prints, as they come.
fn lines_of(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// Reads lines until one satisfies `done`; everything read so far.
fn read_until(rx: &std::sync::mpsc::Receiver<String>, done: impl Fn(&str) -> bool) -> String {
    let mut printed = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !done(&printed) {
        assert!(
            std::time::Instant::now() < deadline,
            "printed so far:\n{printed}"
        );
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            printed.push_str(&line);
            printed.push('\n');
        }
    }
    printed
}

fn bash(command: &str, hookd: &str) -> std::process::Output {
    Command::new("bash")
        .arg("-c")
        .arg(command)
        .env("HOOKD", hookd)
        .env("KEY", common::MGMT_KEY)
        .output()
        .unwrap()
}

#[tokio::test]
async fn first_steps_end_in_a_delivery_the_listener_shows() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for command in [README_LISTEN, README_PUBLISH] {
        assert!(readme.contains(command), "README.md lacks:\n{command}");
    }
    let dir = tempfile::tempdir().unwrap();
    let s = common::ServerConfig::new(dir.path())
        .arg("--allow-private-targets")
        .start()
        .await;
    let hookd = s.url("").trim_end_matches('/').to_owned();
    let port = common::free_port();
    let args = README_LISTEN
        .strip_prefix("cargo run --release -- ")
        .unwrap()
        .replace("9000", &port.to_string())
        .replace("$HOOKD", &hookd);
    let mut listen = Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(args.split(' '))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = lines_of(&mut listen);
    let _listen = Running(listen);
    let intro = read_until(&rx, |p| p.contains("publish one of those events"));
    assert!(intro.contains("--allow-private-targets"), "{intro}");
    // The printed command, run as printed (a continued shell line).
    let start = intro.find("curl -sS").expect("a curl command");
    let end = start + intro[start..].find("}'").expect("the command's end") + 2;
    let create = &intro[start..end];
    let out = bash(create, &hookd);
    let created: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{create}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        created["url"],
        format!("http://127.0.0.1:{port}/"),
        "{created}"
    );

    let out = bash(README_PUBLISH, &hookd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = read_until(&rx, |p| {
        p.contains("signature verified") && p.contains("license_id")
    });
    assert!(shown.contains("\"license_id\": 42"), "{shown}");
    assert!(!shown.contains("signature rejected"), "{shown}");
}

#[tokio::test]
async fn a_delivery_with_another_webhooks_secret_is_rejected_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::ServerConfig::new(dir.path())
        .arg("--allow-private-targets")
        .start()
        .await;
    let port = common::free_port();
    let mut listen = Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(["listen", "--port", &port.to_string(), "--secret", SECRET])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = lines_of(&mut listen);
    let _listen = Running(listen);
    read_until(&rx, |p| p.contains("listening on"));
    // A webhook with a secret of its own points at the listener.
    s.create_webhook(
        &format!("http://127.0.0.1:{port}/"),
        serde_json::json!({"events": ["license.created"]}),
    )
    .await;
    let (status, body) = s
        .post(
            "/v1/events",
            serde_json::json!({"type": "license.created", "data": {"n": 1}}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let shown = read_until(&rx, |p| {
        p.contains("signature rejected") && p.contains("--secret")
    });
    assert!(shown.contains("/secret"), "{shown}");
}

#[tokio::test]
async fn refused_and_failed_attempts_are_logged_at_the_default_level_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    // No --allow-private-targets: a delivery to 127.0.0.1 is refused.
    let mut s = common::ServerConfig::new(dir.path()).start().await;
    let port = common::free_port();
    s.create_webhook(
        &format!("http://127.0.0.1:{port}/refused"),
        serde_json::json!({"events": ["license.created"], "retry_schedule": []}),
    )
    .await;
    for n in 0..30 {
        let (status, body) = s
            .post(
                "/v1/events",
                serde_json::json!({"type": "license.created", "data": {"n": n}}),
            )
            .await;
        assert_eq!(status, 202, "{body}");
    }
    // Each delivery fails for good at once (no retries): wait for them all.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, page) = s
            .get("/management/deliveries?status=failed&limit=100")
            .await;
        if page["data"].as_array().map_or(0, Vec::len) == 30 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(s.terminate().success());
    let log = s.log();
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("delivery attempt failed"))
        .collect();
    assert!(!failed.is_empty(), "no failed attempt in the log:\n{log}");
    assert!(
        failed[0].contains("--allow-private-targets") && failed[0].contains("WARN"),
        "{}",
        failed[0]
    );
    // Bounded: 30 failures in a moment make at most 10 lines.
    assert!(
        failed.len() <= 10,
        "{} lines:\n{}",
        failed.len(),
        failed.join("\n")
    );
}
