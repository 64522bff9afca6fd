//! The admin page's fixes for what an operator stumbled on when trying it
//! as a new user would (issue 15, point 4), in headless Chromium: a focus
//! ring that shows on the dark header and never hides under the sticky
//! save bar; webhook health; aligned numbers; folded advanced fields; the
//! delivery log's filters, search, clickable rows and chart; recovery
//! after Unsuspend; the API reference; notices said once; ids kept whole;
//! the one-time API key in monospace. Screenshots in `target/screenshots/`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::browser::Browser;
use crate::common::receiver::{Receiver, Reply};
use crate::common::{MGMT_KEY, ServerConfig, TestServer};

async fn sign_in(b: &Browser, s: &TestServer) {
    b.goto(&s.url("/admin/login")).await;
    b.fill("#api_key", MGMT_KEY).await;
    b.navigate_by("form button[type=submit]").await;
}

async fn publish(s: &TestServer, event_type: &str) -> String {
    let (status, out) = s
        .post("/v1/events", json!({"type": event_type, "data": {"n": 1}}))
        .await;
    assert_eq!(status, 202, "{out}");
    out["id"].as_str().unwrap().to_owned()
}

/// Waits until the API lists `n` deliveries of webhook `id` matching `pred`.
async fn wait_deliveries(s: &TestServer, id: i64, n: usize, pred: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, list) = s
            .get(&format!("/management/deliveries?webhook_id={id}"))
            .await;
        let found = list["data"]
            .as_array()
            .map_or(0, |d| d.iter().filter(|d| pred(d)).count());
        if found >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "waiting for deliveries of {id}: {list}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The focused element's (outline style, outline width, outline colour).
async fn focus_ring(b: &Browser) -> (String, String, String) {
    let v = b
        .client
        .execute(
            "const s = getComputedStyle(document.activeElement); \
             return [s.outlineStyle, s.outlineWidth, s.outlineColor]",
            vec![],
        )
        .await
        .unwrap();
    let s = |i: usize| v[i].as_str().unwrap().to_owned();
    (s(0), s(1), s(2))
}

async fn press_tab(b: &Browser) {
    b.client
        .active_element()
        .await
        .unwrap()
        .send_keys("\u{E004}")
        .await
        .unwrap();
}

async fn notice(b: &Browser) -> Option<String> {
    match b.all(".notice").await.first() {
        Some(n) => Some(n.text().await.unwrap()),
        None => None,
    }
}

#[tokio::test]
async fn the_admin_page_fixes_what_a_new_operator_stumbled_on() {
    let dir = tempfile::tempdir().unwrap();
    let s = ServerConfig::new(dir.path())
        .arg("--allow-private-targets")
        .start()
        .await;
    let rx = Receiver::start().await;
    let billing = s
        .create_webhook(
            &rx.url("/billing"),
            json!({"name": "Billing", "events": ["license.created", "contract.created"]}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    // 410 Gone suspends at once; later deliveries to it are diverted.
    rx.script("/gone", vec![Reply::Status(410)]);
    let gone = s
        .create_webhook(
            &rx.url("/gone"),
            json!({"name": "Gone hook", "events": ["license.created"]}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let first = publish(&s, "license.created").await;
    wait_deliveries(&s, gone, 1, |d| {
        d["status"] != "pending" && d["status"] != "retrying"
    })
    .await;
    publish(&s, "license.created").await;
    let contract = publish(&s, "contract.created").await;
    wait_deliveries(&s, billing, 3, |d| d["status"] == "succeeded").await;
    wait_deliveries(&s, gone, 2, |d| {
        d["status"] == "diverted" || d["status"] == "failed"
    })
    .await;

    let b = Browser::start().await;
    sign_in(&b, &s).await;

    // Health per webhook: last delivery and the day's failure rate.
    let billing_row = b.text(&format!("tr[data-webhook-id='{billing}']")).await;
    assert!(
        billing_row.contains("Succeeded") && billing_row.contains("0%"),
        "{billing_row}"
    );
    let gone_row = b.text(&format!("tr[data-webhook-id='{gone}']")).await;
    assert!(gone_row.contains("100%"), "{gone_row}");
    assert!(
        !b.all(&format!("tr[data-webhook-id='{gone}'] td.failing"))
            .await
            .is_empty()
    );
    // Number columns align with their headings.
    assert_eq!(b.style("#webhooks th.num", "text-align").await, "right");
    assert_eq!(b.style("#webhooks td.num", "text-align").await, "right");
    b.screenshot("20-webhooks-health").await;

    // A solid focus ring, light on the dark header.
    b.client
        .execute("document.activeElement.blur()", vec![])
        .await
        .unwrap();
    press_tab(&b).await; // skip link
    press_tab(&b).await; // the brand, in the header
    let (style, width, colour) = focus_ring(&b).await;
    assert_eq!(
        (style.as_str(), width.as_str()),
        ("solid", "3px"),
        "header focus"
    );
    assert_eq!(
        colour, "rgb(255, 210, 74)",
        "a light ring on the dark header"
    );
    b.screenshot("21-focus-on-header").await;

    // The form: advanced fields folded; focus never under the sticky bar.
    b.goto(&s.url("/admin/webhooks/new")).await;
    let details = b.css("details.advanced").await;
    assert_eq!(
        details.prop("open").await.unwrap().as_deref(),
        Some("false"),
        "advanced fields start folded"
    );
    let (w, _) = b.client.get_window_size().await.unwrap();
    b.client.set_window_size(w as u32, 600).await.unwrap();
    b.css("#name").await.click().await.unwrap();
    let mut checked = 0;
    for _ in 0..60 {
        press_tab(&b).await;
        let v = b
            .client
            .execute(
                "const a = document.activeElement; \
                 const bar = document.querySelector('.button-row.sticky'); \
                 if (bar.contains(a) || a === document.body) return null; \
                 return [a.getBoundingClientRect().bottom, bar.getBoundingClientRect().top, \
                         getComputedStyle(a).outlineStyle, a.id || a.name || a.tagName]",
                vec![],
            )
            .await
            .unwrap();
        if v.is_null() {
            continue;
        }
        let (bottom, bar_top) = (v[0].as_f64().unwrap(), v[1].as_f64().unwrap());
        assert!(
            bottom <= bar_top + 0.5,
            "{} is under the sticky bar ({bottom} > {bar_top})",
            v[3]
        );
        assert_eq!(v[2], "solid", "{} has no solid focus ring", v[3]);
        checked += 1;
    }
    assert!(checked > 20, "only {checked} fields reached by Tab");
    b.screenshot("22-focus-above-sticky-bar").await;
    b.client.set_window_size(w as u32, 900).await.unwrap();

    // The delivery log: filtered by event type, the chart follows.
    b.goto(&s.url("/admin/deliveries")).await;
    assert_eq!(b.text(".legend .total strong").await, "5");
    b.select_navigating("#event_type", "contract.created").await;
    let rows = b.all("#deliveries tbody tr[data-delivery-id]").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        b.text(".legend .total strong").await,
        "1",
        "the chart follows the filter"
    );
    assert!(b.text("#chart-title").await.contains("contract.created"));
    // Ids stay whole: the event id is one line.
    let lines = b
        .client
        .execute(
            "return document.querySelector('#deliveries .id.muted').getClientRects().length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(lines, json!(1));
    b.screenshot("23-deliveries-by-type").await;
    // Search by event id.
    b.goto(&s.url("/admin/deliveries")).await;
    b.fill("#q", &first).await;
    b.navigate_by("form.filters button[type=submit]").await;
    let rows = b.all("#deliveries tbody tr[data-delivery-id]").await;
    assert_eq!(rows.len(), 2, "the first event went to both webhooks");
    for r in rows {
        assert!(r.text().await.unwrap().contains(&first));
    }
    assert_eq!(b.text(".legend .total strong").await, "2");
    // A time range: from tomorrow, nothing.
    b.goto(&s.url("/admin/deliveries?from=2999-01-01T00:00"))
        .await;
    assert!(b.text("#deliveries").await.contains("No deliveries match"));
    assert_eq!(b.text(".legend .total strong").await, "0");
    b.goto(&s.url("/admin/deliveries?to=2999-01-01T00:00"))
        .await;
    assert_eq!(
        b.all("#deliveries tbody tr[data-delivery-id]").await.len(),
        5
    );
    // Search by delivery id: straight to it; and a click on a row opens it.
    let (_, by_event) = s.get(&format!("/management/events/{contract}")).await;
    let contract_delivery = by_event["deliveries"][0]["id"].as_i64().unwrap();
    b.fill("#q", &contract_delivery.to_string()).await;
    b.navigate_by("form.filters button[type=submit]").await;
    assert_eq!(
        b.path().await,
        format!("/admin/deliveries/{contract_delivery}")
    );
    b.goto(&s.url("/admin/deliveries")).await;
    b.navigate_by(&format!(
        "tr[data-delivery-id='{contract_delivery}'] td:first-child"
    ))
    .await;
    assert_eq!(
        b.path().await,
        format!("/admin/deliveries/{contract_delivery}")
    );

    // Unsuspend says what becomes of diverted deliveries; then recover them.
    b.goto(&s.url(&format!("/admin/webhooks/{gone}"))).await;
    assert!(
        b.all("#recover-button").await.is_empty(),
        "no recovery while suspended"
    );
    b.navigate_by(".warning form button[type=submit]").await;
    let said = notice(&b).await.expect("a notice");
    assert!(
        said.contains("diverted") && said.contains("Retry all failed and diverted"),
        "{said}"
    );
    b.screenshot("24-unsuspended").await;
    rx.script("/gone", vec![]);
    b.navigate_by("#recover-button").await;
    assert!(notice(&b).await.expect("a notice").contains("queued"));
    wait_deliveries(&s, gone, 2, |d| d["status"] == "succeeded").await;
    // The notice is said once: not again on reload.
    assert!(!b.path().await.contains("done="), "{}", b.path().await);
    b.client.refresh().await.unwrap();
    b.css("h1").await;
    assert_eq!(notice(&b).await, None, "the notice came back on reload");

    // The API reference is a page of its own.
    b.navigate_by("nav a[href='/admin/api-reference']").await;
    for id in [
        "#payload-example",
        "#headers-table",
        "#verify-python",
        "#verify-js",
        "#verify-go",
        "#verify-ruby",
    ] {
        assert!(!b.text(id).await.is_empty(), "{id}");
    }
    assert!(b.text("#verify-js").await.contains("standardwebhooks"));
    assert_eq!(
        b.css("#openapi-link")
            .await
            .attr("href")
            .await
            .unwrap()
            .as_deref(),
        Some("/openapi.json")
    );
    b.screenshot("25-api-reference").await;

    // The one-time API key, in a monospace font.
    b.goto(&s.url("/admin/api-keys")).await;
    b.fill("#key-name", "publisher").await;
    b.click("input[name=permissions][value='events:publish']")
        .await;
    b.navigate_by("form[action='/admin/api-keys'] button[type=submit]")
        .await;
    let font = b.style("#new-key", "font-family").await;
    assert!(font.contains("monospace"), "{font}");
    b.screenshot("26-api-key-monospace").await;
    b.close().await;
}
