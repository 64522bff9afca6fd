//! Pause and resume: paused deliveries wait as pending without aging,
//! other webhooks go on, and on resume the backlog goes out in order at
//! the webhook's rate limit. The held webhook is fifo, so "in order" is
//! strict (an unordered one's resumed deliveries fall due in publish
//! order and then run concurrently, as any).

use std::time::Duration;

use serde_json::json;

use crate::common::ServerConfig;
use crate::common::receiver::Receiver;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_webhook_holds_its_deliveries_until_resumed_then_sends_them_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (s, clock) = ServerConfig::new(dir.path())
        .arg("--allow-private-targets")
        .arg("--retry-schedule")
        .arg("1s")
        .start_in_process()
        .await;
    let rx = Receiver::start().await;
    let held = s
        .create_webhook(
            &rx.url("/held"),
            json!({"rate_limit": 50, "ordering": "fifo"}),
        )
        .await;
    s.create_webhook(&rx.url("/other"), json!({})).await;
    let id = held["id"].as_i64().unwrap();
    // A retry of the held webhook is waiting when it is paused.
    rx.script("/held", vec![crate::common::receiver::Reply::Status(500)]);
    s.post(
        "/v1/events",
        json!({"type": "license.created", "data": {"n": 0}}),
    )
    .await;
    rx.wait_for("/held", 1, Duration::from_secs(10)).await;

    let (status, paused) = s
        .post(&format!("/management/webhooks/{id}/pause"), json!({}))
        .await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["paused"], true);
    assert!(paused["paused_at"].is_string());
    for n in 1..=20 {
        let (status, _) = s
            .post(
                "/v1/events",
                json!({"type": "license.created", "data": {"n": n}}),
            )
            .await;
        assert_eq!(status, 202);
    }
    // Other webhooks are not held.
    rx.wait_for("/other", 21, Duration::from_secs(10)).await;
    // Ten days later nothing was attempted and nothing aged into failed.
    clock.advance(Duration::from_secs(10 * 86_400));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, log) = s
        .get(&format!("/management/deliveries?webhook_id={id}&limit=100"))
        .await;
    let statuses: Vec<&str> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.len(), 21);
    assert!(
        statuses.iter().all(|s| *s == "pending" || *s == "retrying"),
        "{statuses:?}"
    );
    assert_eq!(rx.received("/held").len(), 1);

    let (status, resumed) = s
        .post(&format!("/management/webhooks/{id}/resume"), json!({}))
        .await;
    assert_eq!(status, 200, "{resumed}");
    assert_eq!(resumed["paused"], false);
    assert_eq!(resumed["paused_at"], json!(null));
    // Due 20 ms apart (50/s): the clock must move for the later ones.
    for _ in 0..40 {
        clock.advance(Duration::from_millis(50));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = rx.wait_for("/held", 22, Duration::from_secs(20)).await;
    let order: Vec<i64> = got[1..]
        .iter()
        .map(|r| r.json()["data"]["n"].as_i64().unwrap())
        .collect();
    assert_eq!(
        order,
        (0..=20).collect::<Vec<_>>(),
        "resumed out of publish order"
    );
}

#[tokio::test]
async fn pause_and_resume_answer_404_for_another_tenants_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let s = ServerConfig::new(dir.path()).start().await;
    let w = s
        .create_webhook("https://hooks.example.test/p", json!({}))
        .await;
    for action in ["pause", "resume"] {
        let (status, _) = crate::common::send(
            s.req(
                reqwest::Method::POST,
                &format!("/management/webhooks/{}/{action}", w["id"]),
            )
            .header("X-Tenant-Id", "other"),
        )
        .await;
        assert_eq!(status, 404);
        let (status, _) = s
            .post(&format!("/management/webhooks/999999/{action}"), json!({}))
            .await;
        assert_eq!(status, 404);
    }
}
