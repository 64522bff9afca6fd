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
