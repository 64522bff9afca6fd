//! Operational events: published into the operator tenant with their
//! cause, delivered like any event, never caused by the operator tenant's
//! own webhooks.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::receiver::{Receiver, Reply};
use crate::common::{ServerConfig, TestServer, send};

const OPS: &str = "ops";

async fn as_ops(s: &TestServer, path: &str, body: Value) -> (u16, Value) {
    send(
        s.req(reqwest::Method::POST, path)
            .header("X-Tenant-Id", OPS)
            .json(&body),
    )
    .await
}

fn types(rx: &Receiver, path: &str) -> Vec<(String, Value)> {
    rx.received(path)
        .iter()
        .map(|r| {
            let b = r.json();
            (b["type"].as_str().unwrap().to_owned(), b["data"].clone())
        })
        .collect()
}

#[tokio::test]
async fn the_operator_hears_of_changes_suspensions_and_exhausted_deliveries_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = ServerConfig::new(dir.path())
        .arg("--allow-private-targets")
        .arg("--operational-tenant")
        .arg(OPS)
        .start()
        .await;
    let rx = Receiver::start().await;
    // The operator's webhook fails its first attempts, with no retries: its
    // own exhausted deliveries must cause nothing (no loop).
    let (status, ops_hook) = as_ops(
        &s,
        "/management/webhooks",
        json!({"name": "ops", "url": rx.url("/ops"), "events": ["hookd.*"], "retry_schedule": []}),
    )
    .await;
    assert_eq!(status, 201, "{ops_hook}");
    rx.script("/ops", vec![Reply::Status(500), Reply::Status(500)]);

    let gone = s.create_webhook(&rx.url("/gone"), json!({})).await;
    let failing = s
        .create_webhook(&rx.url("/failing"), json!({"retry_schedule": []}))
        .await;
    // Deliveries already leased when the first 410 lands get one too: one suspension.
    rx.script("/gone", vec![Reply::Status(410); 3]);
    rx.script("/failing", vec![Reply::Status(500); 3]);
    for n in 0..3 {
        let (status, _) = s
            .post(
                "/v1/events",
                json!({"type": "license.created", "data": {"n": n}}),
            )
            .await;
        assert_eq!(status, 202);
    }
    let gone_id = gone["id"].as_i64().unwrap();
    let failing_id = failing["id"].as_i64().unwrap();
    // created ×2, suspended (410) ×1, exhausted ×3 (/failing); /gone's
    // later deliveries are diverted, not exhausted.
    rx.wait_for("/ops", 6, Duration::from_secs(20)).await;
    let (status, _) = s
        .post(
            &format!("/management/webhooks/{failing_id}/pause"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = s
        .post(
            &format!("/management/webhooks/{failing_id}/resume"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = s
        .post(
            &format!("/management/webhooks/{gone_id}/unsuspend"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = s
        .patch(
            &format!("/management/webhooks/{failing_id}"),
            json!({"name": "renamed"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = s.delete(&format!("/management/webhooks/{gone_id}")).await;
    assert_eq!(status, 204);
    rx.wait_for("/ops", 11, Duration::from_secs(20)).await;
    // Settle: anything extra would have arrived by now.
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    let got = types(&rx, "/ops");
    let count = |t: &str| got.iter().filter(|(ty, _)| ty == t).count();
    assert_eq!(count("hookd.webhook.created"), 2, "{got:?}");
    assert_eq!(count("hookd.webhook.suspended"), 1, "{got:?}");
    assert_eq!(count("hookd.delivery.exhausted"), 3, "{got:?}");
    for t in [
        "hookd.webhook.paused",
        "hookd.webhook.resumed",
        "hookd.webhook.unsuspended",
        "hookd.webhook.updated",
        "hookd.webhook.deleted",
    ] {
        assert_eq!(count(t), 1, "{t}: {got:?}");
    }
    assert_eq!(got.len(), 11, "{got:?}");
    for (ty, data) in &got {
        assert_eq!(data["tenant"], "default", "{ty}: {data}");
        let hook = data["webhook_id"].as_i64().unwrap();
        assert!(hook == gone_id || hook == failing_id, "{ty}: {data}");
    }
    let suspended = &got
        .iter()
        .find(|(t, _)| t == "hookd.webhook.suspended")
        .unwrap()
        .1;
    assert_eq!(suspended["webhook_id"], gone_id);
    let exhausted: Vec<&Value> = got
        .iter()
        .filter(|(t, _)| t == "hookd.delivery.exhausted")
        .map(|(_, d)| d)
        .collect();
    for d in &exhausted {
        assert_eq!(d["webhook_id"], failing_id);
        assert_eq!(d["event_type"], "license.created");
        assert!(d["event_id"].as_str().unwrap().starts_with("evt_"));
        assert!(d["delivery_id"].is_i64());
    }
    // They are ordinary events of the operator tenant, signed and logged.
    let r = &rx.received("/ops")[0];
    assert!(r.header("webhook-signature").unwrap().starts_with("v1,"));
    let (status, log) = send(
        s.req(reqwest::Method::GET, "/management/events?limit=50")
            .header("X-Tenant-Id", OPS),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(log["data"].as_array().unwrap().len(), 11, "{log}");
}

#[tokio::test]
async fn a_recovery_after_failures_is_announced() {
    let dir = tempfile::tempdir().unwrap();
    let s = ServerConfig::new(dir.path())
        .arg("--allow-private-targets")
        .arg("--operational-tenant")
        .arg(OPS)
        .arg("--retry-schedule")
        .arg("10ms")
        .start()
        .await;
    let rx = Receiver::start().await;
    let (status, _) = as_ops(
        &s,
        "/management/webhooks",
        json!({"name": "ops", "url": rx.url("/ops"), "events": ["hookd.webhook.recovered"]}),
    )
    .await;
    assert_eq!(status, 201);
    let w = s.create_webhook(&rx.url("/flaky"), json!({})).await;
    rx.script("/flaky", vec![Reply::Status(503)]);
    s.post("/v1/events", json!({"type": "license.created", "data": {}}))
        .await;
    let got = rx.wait_for("/ops", 1, Duration::from_secs(20)).await;
    let body = got[0].json();
    assert_eq!(body["type"], "hookd.webhook.recovered");
    assert_eq!(body["data"]["webhook_id"], w["id"]);
    // A second success is no recovery.
    s.post("/v1/events", json!({"type": "license.created", "data": {}}))
        .await;
    rx.wait_for("/flaky", 3, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(rx.received("/ops").len(), 1);
}
