//! PostgreSQL restarting under load: publishes answer 503 while it is
//! down (never a 202 that is then lost), the instance reconnects, and every
//! accepted event is delivered once it is back.
//!
//! It stops the machine's PostgreSQL, so it is `#[ignore]`d and
//! `scripts/test` runs it alone, after everything else:
//! `HOOKD_TEST_BACKEND=postgres cargo test --test it -- --ignored --exact \
//! postgres_restart::publishes_during_an_outage_are_refused_and_nothing_accepted_is_lost`.

use crate::common;

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::ServerConfig;
use crate::common::receiver::Receiver;
use serde_json::json;

fn cluster() -> String {
    std::fs::read_dir("/etc/postgresql")
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .expect("a PostgreSQL cluster under /etc/postgresql")
}

fn pg_ctl(action: &str) {
    let status = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &cluster(), "main", action])
        .status()
        .expect("running pg_ctlcluster");
    assert!(status.success(), "pg_ctlcluster {action} failed");
}

/// Starts PostgreSQL again whatever happens to the test.
struct Restart;

impl Drop for Restart {
    fn drop(&mut self) {
        let _ = Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &cluster(), "main", "start"])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "stops the machine's PostgreSQL: scripts/test runs it alone, last"]
async fn publishes_during_an_outage_are_refused_and_nothing_accepted_is_lost() {
    assert!(
        common::on_postgres(),
        "this test needs HOOKD_TEST_BACKEND=postgres (scripts/test runs it so)"
    );
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start().await;
    let s = ServerConfig::new(dir.path())
        .arg("--allow-private-targets")
        .arg("--retry-schedule")
        .arg("100ms,200ms,400ms,800ms,1s,1s,1s,1s,1s,1s")
        .start()
        .await;
    s.create_webhook(&rx.url("/outage"), json!({})).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let publish = |n: u64| {
        let client = client.clone();
        let url = s.url("/v1/events");
        async move {
            client
                .post(url)
                .bearer_auth(common::MGMT_KEY)
                .json(&json!({"type": "license.created", "data": {"n": n}}))
                .send()
                .await
        }
    };

    let mut accepted = Vec::new();
    let mut refused = 0;
    let guard = Restart;
    let started = Instant::now();
    let mut stopped = false;
    let mut restarted = false;
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(12) {
        n += 1;
        if !stopped && started.elapsed() > Duration::from_secs(2) {
            pg_ctl("stop");
            stopped = true;
        }
        if stopped && !restarted && started.elapsed() > Duration::from_secs(6) {
            pg_ctl("start");
            restarted = true;
        }
        match publish(n).await {
            Ok(r) if r.status() == 202 => {
                let body: serde_json::Value = r.json().await.unwrap();
                accepted.push(body["id"].as_str().unwrap().to_owned());
            }
            Ok(r) => {
                assert_eq!(
                    r.status(),
                    503,
                    "while the database is down, publishes answer 503"
                );
                refused += 1;
            }
            Err(e) => panic!("the server must keep answering: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(guard);
    assert!(
        refused > 0,
        "the outage refused nothing: was PostgreSQL stopped?"
    );
    let (status, _) = s.get("/healthz").await;
    assert_eq!(status, 200, "the process survived");

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got: HashSet<String> = rx
            .received("/outage")
            .iter()
            .filter_map(|r| r.json()["id"].as_str().map(str::to_owned))
            .collect();
        let missing = accepted.iter().filter(|id| !got.contains(*id)).count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} accepted events never arrived",
            accepted.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
