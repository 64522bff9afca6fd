//! Events, deliveries and attempts older than the retention period are purged.

use crate::common;

use std::time::{Duration, Instant};

use crate::common::ServerConfig;
use crate::common::receiver::Receiver;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_past_retention_are_purged_with_their_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start().await;
    let s = ServerConfig::new(dir.path())
        .arg("--allow-private-targets")
        .arg("--retention")
        .arg("1s")
        .arg("--purge-interval")
        .arg("100ms")
        .start()
        .await;
    s.create_webhook(&rx.url("/hook"), json!({})).await;
    let (status, ev) = s
        .post(
            "/v1/events",
            json!({"type": "license.created", "data": {"n": 1}}),
        )
        .await;
    assert_eq!(status, 202, "{ev}");
    let id = ev["id"].as_str().unwrap().to_string();
    rx.wait_for("/hook", 1, Duration::from_secs(10)).await;
    let (status, event) = s.get(&format!("/management/events/{id}")).await;
    assert_eq!(status, 200);
    let delivery_id = event["deliveries"][0]["id"].as_i64().unwrap();

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _) = s.get(&format!("/management/events/{id}")).await;
        if status == 404 {
            break;
        }
        assert!(Instant::now() < deadline, "event not purged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _) = s
        .get(&format!("/management/deliveries/{delivery_id}"))
        .await;
    assert_eq!(status, 404, "the delivery goes with its event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_deliveries_keep_their_event_past_retention() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start().await;
    let s = ServerConfig::new(dir.path())
        .arg("--allow-private-targets")
        .arg("--retention")
        .arg("500ms")
        .arg("--purge-interval")
        .arg("100ms")
        .arg("--retry-schedule")
        .arg("1h")
        .start()
        .await;
    rx.script("/down", vec![common::receiver::Reply::Status(500)]);
    s.create_webhook(&rx.url("/down"), json!({})).await;
    let (_, ev) = s
        .post("/v1/events", json!({"type": "license.created", "data": {}}))
        .await;
    let id = ev["id"].as_str().unwrap().to_string();
    rx.wait_for("/down", 1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (status, event) = s.get(&format!("/management/events/{id}")).await;
    assert_eq!(status, 200, "a retrying delivery keeps its event: {event}");
    assert_eq!(event["deliveries"][0]["status"], "retrying");
}
