//! Delivery control (SPEC §12) in a real headless Chromium: a payload
//! filter and fifo ordering typed into the webhook form, a bad filter
//! shown next to its input naming the path, Pause and Resume from the
//! list and the webhook's page — in the admin page and in a portal
//! session, whose read-only variant shows the paused state and no action.
//! Screenshots land in `target/screenshots/`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::browser::Browser;
use crate::common::receiver::Receiver;
use crate::common::{MGMT_KEY, ServerConfig, TestServer, send};

async fn webhook(s: &TestServer, tenant: &str, id: i64) -> Value {
    let (status, w) = send(
        s.req(reqwest::Method::GET, &format!("/management/webhooks/{id}"))
            .header("X-Tenant-Id", tenant),
    )
    .await;
    assert_eq!(status, 200, "{w}");
    w
}

async fn publish(s: &TestServer, tenant: &str, data: Value) {
    let (status, body) = send(
        s.req(reqwest::Method::POST, "/v1/events")
            .header("X-Tenant-Id", tenant)
            .json(&json!({"type": "license.created", "data": data})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
}

/// The id of the list's only row.
async fn only_row_id(b: &Browser) -> i64 {
    let rows = b.all("#webhooks tbody tr[data-webhook-id]").await;
    assert_eq!(rows.len(), 1);
    rows[0]
        .attr("data-webhook-id")
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn an_operator_filters_orders_pauses_and_resumes_a_webhook_in_the_browser() {
    let dir = tempfile::tempdir().unwrap();
    let s = ServerConfig::new(dir.path())
        .arg("--allow-private-targets")
        .start()
        .await;
    let rx = Receiver::start().await;
    let b = Browser::start().await;
    b.goto(&s.url("/admin/login")).await;
    b.fill("#api_key", MGMT_KEY).await;
    b.navigate_by("form button[type=submit]").await;

    // Create with a filter and fifo ordering.
    b.navigate_by("a.button.primary").await;
    b.fill("#name", "Big orders").await;
    b.fill("#url", &rx.url("/big")).await;
    b.click("input[value='license.created']").await;
    b.fill("#filter", r#"{"data.amount": {"$gte": 100}}"#).await;
    b.select("#ordering", "fifo").await;
    b.screenshot("control-01-form").await;
    b.navigate_by(".button-row button[type=submit]").await;
    assert!(b.text(".notice").await.contains("Webhook created"));
    let id = only_row_id(&b).await;
    let w = webhook(&s, "default", id).await;
    assert_eq!(w["filter"], json!({"data.amount": {"$gte": 100}}), "{w}");
    assert_eq!(w["ordering"], "fifo");

    // A bad filter: refused next to the input, naming where.
    b.navigate_by("#webhooks td.name a").await;
    assert_eq!(b.value("#ordering").await, "fifo");
    assert!(b.value("#filter").await.contains("$gte"));
    b.fill(
        "#filter",
        r#"{"data.amount": {"$gte": 100, "$like": "1%"}}"#,
    )
    .await;
    b.navigate_by(".button-row button[type=submit]").await;
    let message = b.text("#filter-error").await;
    assert!(
        message.contains("filter.data.amount.$like") && message.contains("unknown operator"),
        "{message}"
    );
    assert_eq!(
        b.css("#filter")
            .await
            .attr("aria-invalid")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    b.screenshot("control-02-bad-filter").await;
    assert_eq!(
        webhook(&s, "default", id).await["filter"],
        w["filter"],
        "nothing saved"
    );

    // Paused from the list: the badge, and an event that waits.
    b.goto(&s.url("/admin/webhooks")).await;
    b.navigate_by(&format!("#pause-{id}")).await;
    assert!(b.text(".notice").await.contains("Webhook paused"));
    let row = b.text(&format!("tr[data-webhook-id='{id}']")).await;
    assert!(row.contains("Paused") && row.contains("since"), "{row}");
    b.screenshot("control-03-list-paused").await;
    assert_eq!(webhook(&s, "default", id).await["paused"], true);
    publish(&s, "default", json!({"amount": 5})).await;
    publish(&s, "default", json!({"amount": 500})).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(rx.received("/big").is_empty(), "delivered while paused");

    // Resumed from its page: the matching event goes, the other never.
    b.navigate_by("#webhooks td.name a").await;
    assert!(b.text("#paused-since").await.contains("Paused since"));
    b.screenshot("control-04-page-paused").await;
    b.navigate_by("#resume-button").await;
    assert!(b.text(".notice").await.contains("Webhook resumed"));
    b.css("#pause-button").await;
    let got = rx.wait_for("/big", 1, Duration::from_secs(20)).await;
    assert_eq!(got[0].json()["data"]["amount"], 500);
    assert_eq!(webhook(&s, "default", id).await["paused"], false);
    b.close().await;
}

#[tokio::test]
async fn a_customer_pauses_and_filters_in_the_portal_and_a_read_only_portal_only_shows() {
    let dir = tempfile::tempdir().unwrap();
    let s = ServerConfig::new(dir.path())
        .arg("--allow-private-targets")
        .arg("--portal-product-name")
        .arg("Acme Hooks")
        .start()
        .await;
    let rx = Receiver::start().await;
    let (status, w) = send(
        s.req(reqwest::Method::POST, "/management/webhooks")
            .header("X-Tenant-Id", "acme")
            .json(
                &json!({"name": "Acme CRM", "url": rx.url("/crm"), "events": ["license.created"]}),
            ),
    )
    .await;
    assert_eq!(status, 201, "{w}");
    let id = w["id"].as_i64().unwrap();
    let link = |read_only: bool| {
        let s = &s;
        async move {
            let (status, out) = send(
                s.req(reqwest::Method::POST, "/management/portal-links")
                    .header("X-Tenant-Id", "acme")
                    .json(&json!({"read_only": read_only})),
            )
            .await;
            assert_eq!(status, 201, "{out}");
            out["url"].as_str().unwrap().to_owned()
        }
    };

    let b = Browser::start().await;
    b.goto(&link(false).await).await;
    b.css("#webhooks").await;
    // A filter through the portal's form: refused, then saved.
    b.navigate_by("#webhooks td.name a").await;
    b.fill("#filter", r#"{"data.plan": {"$in": "pro"}}"#).await;
    b.navigate_by(".button-row button[type=submit]").await;
    assert!(
        b.text("#filter-error")
            .await
            .starts_with("filter.data.plan.$in:")
    );
    assert!(b.path().await.starts_with("/portal/s/"));
    b.fill("#filter", r#"{"data.plan": {"$in": ["pro"]}}"#)
        .await;
    b.navigate_by(".button-row button[type=submit]").await;
    assert!(b.text(".notice").await.contains("Webhook saved"));
    assert_eq!(
        webhook(&s, "acme", id).await["filter"],
        json!({"data.plan": {"$in": ["pro"]}})
    );
    // Pause on the page, resume from the list: each stays in the portal.
    b.navigate_by("#webhooks td.name a").await;
    b.navigate_by("#pause-button").await;
    assert!(b.text(".notice").await.contains("Webhook paused"));
    assert!(b.path().await.starts_with("/portal/s/"));
    assert_eq!(webhook(&s, "acme", id).await["paused"], true);
    publish(&s, "acme", json!({"plan": "pro"})).await;
    b.screenshot("control-05-portal-paused").await;
    b.navigate_by("nav a[href$='/webhooks']").await;
    b.navigate_by(&format!("#resume-{id}")).await;
    assert!(b.path().await.starts_with("/portal/s/"));
    assert!(b.text(".notice").await.contains("Webhook resumed"));
    rx.wait_for("/crm", 1, Duration::from_secs(20)).await;
    b.navigate_by(&format!("#pause-{id}")).await;
    assert_eq!(webhook(&s, "acme", id).await["paused"], true);

    // Read-only: paused and since when, the filter, and nothing to press.
    b.goto(&link(true).await).await;
    b.css("#read-only-badge").await;
    let row = b.text(&format!("tr[data-webhook-id='{id}']")).await;
    assert!(row.contains("Paused") && row.contains("since"), "{row}");
    assert!(
        b.all(&format!("#resume-{id}, #pause-{id}"))
            .await
            .is_empty()
    );
    b.navigate_by("#webhooks td.name a").await;
    assert!(b.text("#paused-since").await.contains("Paused since"));
    assert!(b.value("#filter").await.contains("pro"));
    assert!(b.all("#resume-button, #pause-button").await.is_empty());
    b.screenshot("control-06-read-only-paused").await;
    b.close().await;
}
