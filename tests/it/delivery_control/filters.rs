//! Payload filters: validated on write, applied at fan-out, counted.

use std::time::Duration;

use serde_json::json;

use crate::common::receiver::Receiver;
use crate::common::{ServerConfig, TestServer, assert_field_error};

async fn server(dir: &std::path::Path) -> TestServer {
    ServerConfig::new(dir)
        .arg("--allow-private-targets")
        .start()
        .await
}

#[tokio::test]
async fn a_filter_is_refused_naming_its_operator_or_path_and_null_clears_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let base =
        json!({"name": "f", "url": "https://hooks.example.test/f", "events": ["license.created"]});
    for (filter, field) in [
        (
            json!({"data.amount": {"$regex": "x"}}),
            "filter.data.amount.$regex",
        ),
        (json!({"payload.amount": 1}), "filter.payload.amount"),
        (
            json!({"data.amount": {"$gt": [1]}}),
            "filter.data.amount.$gt",
        ),
        (json!({"$or": [{"data.a": 1}, "x"]}), "filter.$or[1]"),
        (json!("data.a"), "filter"),
    ] {
        let mut body = base.clone();
        body["filter"] = filter;
        let (status, json) = s.post("/management/webhooks", body).await;
        assert_field_error(status, &json, field);
    }
    let mut body = base.clone();
    body["filter"] = json!({"data.amount": {"$gte": 100}});
    body["ordering"] = json!("fifo");
    let (status, created) = s.post("/management/webhooks", body).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["filter"], json!({"data.amount": {"$gte": 100}}));
    assert_eq!(created["ordering"], "fifo");
    assert_eq!(created["paused"], false);
    assert_eq!(created["paused_at"], json!(null));
    let id = created["id"].as_i64().unwrap();

    let (status, json) = s
        .patch(
            &format!("/management/webhooks/{id}"),
            json!({"filter": {"type": {"$nope": 1}}}),
        )
        .await;
    assert_field_error(status, &json, "filter.type.$nope");
    let (status, json) = s
        .patch(
            &format!("/management/webhooks/{id}"),
            json!({"ordering": "lifo"}),
        )
        .await;
    assert_field_error(status, &json, "ordering");
    let (status, json) = s
        .patch(
            &format!("/management/webhooks/{id}"),
            json!({"filter": null, "ordering": "none"}),
        )
        .await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["filter"], json!(null));
    assert_eq!(json["ordering"], "none");
}

#[tokio::test]
async fn only_matching_events_make_deliveries_and_the_rest_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let rx = Receiver::start().await;
    s.create_webhook(
        &rx.url("/big"),
        json!({"filter": {"data.amount": {"$gte": 100}, "data.items.sku": {"$prefix": "pro-"}}}),
    )
    .await;
    s.create_webhook(&rx.url("/all"), json!({})).await;

    let publish = |amount: i64, sku: &str| json!({"type": "license.created", "data": {"amount": amount, "items": [{"sku": "basic"}, {"sku": sku}]}});
    let (status, small) = s.post("/v1/events", publish(50, "pro-1")).await;
    assert_eq!(status, 202, "{small}");
    assert_eq!(small["deliveries"], 1);
    let (_, wrong_sku) = s.post("/v1/events", publish(500, "team-1")).await;
    assert_eq!(wrong_sku["deliveries"], 1);
    let (_, big) = s.post("/v1/events", publish(150, "pro-2")).await;
    assert_eq!(big["deliveries"], 2);

    rx.wait_for("/all", 3, Duration::from_secs(10)).await;
    let got = rx.wait_for("/big", 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["id"], big["id"]);
    // Nothing else is on its way to /big: the log holds one delivery there.
    let (_, log) = s.get("/management/deliveries?limit=50").await;
    assert_eq!(log["data"].as_array().unwrap().len(), 4, "{log}");

    let metrics = s.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "hookd_events_filtered_total 2"),
        "{metrics}"
    );
}
