//! Outbound safety (SPEC §6): by default hookd refuses loopback and other
//! private targets, checked on the resolved address (a host name that
//! resolves to 127.0.0.1 is refused like the literal); a CIDR allow-list
//! or `--allow-private-targets` lifts that.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::receiver::Receiver;
use crate::common::{ServerConfig, TestServer};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

async fn publish_and_wait(s: &TestServer) -> Value {
    let (status, p) = s
        .post(
            "/v1/events",
            json!({"type": "license.created", "data": {"x": 1}}),
        )
        .await;
    assert_eq!(status, 202, "{p}");
    assert_eq!(p["deliveries"], 1, "{p}");
    let (status, e) = s
        .get(&format!("/management/events/{}", p["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200, "{e}");
    let id = e["deliveries"][0]["id"].as_i64().expect("a delivery");
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, d) = s.get(&format!("/management/deliveries/{id}")).await;
        assert_eq!(status, 200, "{d}");
        if d["status"] == "succeeded" || d["status"] == "failed" {
            return d;
        }
        if Instant::now() > deadline {
            panic!("delivery {id} not finished: {d}\nlog:\n{}", s.log());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn strict_server(dir: &Path) -> TestServer {
    // No --allow-private-targets.
    ServerConfig::new(dir).start().await
}

fn assert_blocked(d: &Value) {
    assert_eq!(d["status"], "failed", "{d}");
    let a = d["attempts"].as_array().expect("attempts");
    assert_eq!(a.len(), 1, "{d}");
    assert_eq!(a[0]["error_kind"], "blocked", "{d}");
    assert!(a[0]["response_status"].is_null(), "{d}");
    assert!(a[0]["error"].is_string(), "the attempt should say why: {d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_ip_is_blocked_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let s = strict_server(dir.path()).await;
    let r = Receiver::start().await;
    s.create_webhook(&r.url("/hook"), json!({"retry_schedule": []}))
        .await;
    let d = publish_and_wait(&s).await;
    assert_blocked(&d);
    // Failed (an empty schedule) is final, and the one attempt was refused
    // before connecting: the receiver cannot have been reached.
    assert_eq!(r.all().len(), 0, "the receiver on 127.0.0.1 was reached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_name_resolving_to_loopback_is_blocked() {
    let dir = tempfile::tempdir().unwrap();
    let s = strict_server(dir.path()).await;
    let r = Receiver::start().await;
    let port = r.base.rsplit(':').next().unwrap().to_owned();
    s.create_webhook(
        &format!("http://localhost:{port}/hook"),
        json!({"retry_schedule": []}),
    )
    .await;
    let d = publish_and_wait(&s).await;
    assert_blocked(&d);
    // Failed (an empty schedule) is final, and the one attempt was refused
    // before connecting: the receiver cannot have been reached.
    assert_eq!(
        r.all().len(),
        0,
        "the receiver was reached through localhost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_private_and_special_literals_are_blocked() {
    let dir = tempfile::tempdir().unwrap();
    let s = strict_server(dir.path()).await;
    for (i, url) in [
        "http://10.0.0.1:9/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:9/hook",
        "http://0.0.0.0:9/hook",
        "http://[::ffff:127.0.0.1]:9/hook",
    ]
    .iter()
    .enumerate()
    {
        let w = s
            .create_webhook(
                url,
                json!({"name": format!("h{i}"), "events": ["product.created"], "retry_schedule": []}),
            )
            .await;
        let (status, t) = s
            .post(&format!("/management/webhooks/{}/test", w["id"]), json!({}))
            .await;
        assert_eq!(status, 202, "{t}");
        let (_, e) = s
            .get(&format!("/management/events/{}", t["id"].as_str().unwrap()))
            .await;
        let id = e["deliveries"][0]["id"].as_i64().unwrap();
        let deadline = Instant::now() + WAIT;
        let d = loop {
            let (_, d) = s.get(&format!("/management/deliveries/{id}")).await;
            if d["status"] == "failed" || d["status"] == "succeeded" {
                break d;
            }
            assert!(Instant::now() < deadline, "{url}: {d}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(d["attempts"][0]["error_kind"], "blocked", "{url}: {d}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cidr_allow_list_lets_loopback_through() {
    let dir = tempfile::tempdir().unwrap();
    let s = ServerConfig::new(dir.path())
        .arg("--allowed-target-cidrs")
        .arg("127.0.0.0/8")
        .start()
        .await;
    let r = Receiver::start().await;
    s.create_webhook(&r.url("/hook"), json!({"retry_schedule": []}))
        .await;
    let d = publish_and_wait(&s).await;
    assert_eq!(d["status"], "succeeded", "{d}");
    assert_eq!(r.received("/hook").len(), 1);
    // The list is exact: another private network stays blocked.
    s.create_webhook(
        "http://10.0.0.1:9/hook",
        json!({"name": "ten", "events": ["license.updated"], "retry_schedule": []}),
    )
    .await;
    let (status, p) = s
        .post("/v1/events", json!({"type": "license.updated", "data": {}}))
        .await;
    assert_eq!(status, 202, "{p}");
    let (_, e) = s
        .get(&format!("/management/events/{}", p["id"].as_str().unwrap()))
        .await;
    let id = e["deliveries"][0]["id"].as_i64().unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, d) = s.get(&format!("/management/deliveries/{id}")).await;
        if d["status"] == "failed" {
            assert_eq!(d["attempts"][0]["error_kind"], "blocked", "{d}");
            break;
        }
        assert!(Instant::now() < deadline, "{d}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_env_var_allow_list_works_like_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let s = ServerConfig::new(dir.path())
        .env("HOOKD_ALLOWED_TARGET_CIDRS", "127.0.0.1/32")
        .start()
        .await;
    let r = Receiver::start().await;
    s.create_webhook(&r.url("/hook"), json!({"retry_schedule": []}))
        .await;
    let d = publish_and_wait(&s).await;
    assert_eq!(d["status"], "succeeded", "{d}");
}
