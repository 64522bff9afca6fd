//! The admin page in a real headless Chromium against the real server:
//! sign in, create a webhook through the form, find it, edit it, toggle it,
//! regenerate its secret, see deliveries and the chart, retry a failed one,
//! change the default settings, delete, sign out. Screenshots of each page
//! land in `target/screenshots/` (or `$HOOKD_SCREENSHOT_DIR`).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::browser::Browser;
use crate::common::receiver::{Receiver, Reply};
use crate::common::{MGMT_KEY, ServerConfig, TestServer};

async fn server(dir: &std::path::Path) -> TestServer {
    ServerConfig::new(dir)
        .arg("--allow-private-targets")
        .start()
        .await
}

async fn sign_in(b: &Browser, s: &TestServer, key: &str) {
    b.goto(&s.url("/admin/login")).await;
    b.fill("#api_key", key).await;
    b.navigate_by("form button[type=submit]").await;
}

/// Reloads `url` until `check` holds on the page's text (deliveries are
/// asynchronous); panics with the page text after 20 s.
async fn reload_until(b: &Browser, url: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        b.goto(url).await;
        let text = b
            .body_text()
            .await
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if check(&text) {
            return text;
        }
        if Instant::now() > deadline {
            panic!("gave up waiting for {what}; page:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Unfolds the webhook form's advanced fields (timeout, rate limit,
/// retries, headers), as a user clicks its summary.
async fn open_advanced(b: &Browser) {
    let details = b.css("details.advanced").await;
    if details.prop("open").await.unwrap().as_deref() != Some("true") {
        b.click("details.advanced > summary").await;
    }
}

/// The text of the list row of the webhook named `name`.
async fn row_text(b: &Browser, name: &str) -> Option<String> {
    for row in b.all("#webhooks tbody tr").await {
        let text = row.text().await.unwrap();
        if text.contains(name) {
            return Some(text);
        }
    }
    None
}

async fn row_id(b: &Browser, name: &str) -> i64 {
    for row in b.all("#webhooks tbody tr").await {
        if row.text().await.unwrap().contains(name) {
            return row
                .attr("data-webhook-id")
                .await
                .unwrap()
                .unwrap()
                .parse()
                .unwrap();
        }
    }
    panic!("no row for {name}");
}

#[tokio::test]
async fn an_operator_manages_webhooks_and_deliveries_from_the_admin_page() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let rx = Receiver::start().await;
    rx.script("/billing", vec![Reply::Status(500)]);
    let b = Browser::start().await;

    // Signed out, every page leads to sign-in, and back after it.
    b.goto(&s.url("/admin/deliveries")).await;
    assert!(
        b.path().await.starts_with("/admin/login?next="),
        "{}",
        b.path().await
    );
    b.screenshot("01-sign-in").await;
    b.fill("#api_key", "not-a-key").await;
    b.navigate_by("form button[type=submit]").await;
    assert!(b.text("#login-error").await.contains("not valid"));
    b.fill("#api_key", MGMT_KEY).await;
    b.navigate_by("form button[type=submit]").await;
    assert_eq!(b.path().await, "/admin/deliveries");
    b.goto(&s.url("/admin/webhooks")).await;
    assert!(b.body_text().await.contains("No webhooks yet"));
    b.screenshot("02-webhooks-empty").await;

    // Create through the form: first with mistakes, shown next to their fields.
    b.navigate_by("a[href='/admin/webhooks/new']").await;
    assert_eq!(b.path().await, "/admin/webhooks/new");
    let generated = b.value("#secret").await;
    assert!(generated.starts_with("whsec_"), "{generated}");
    b.screenshot("03-webhook-new").await;
    b.fill("#url", "ftp://nowhere").await;
    b.fill("#description", "Alerts for the on-call channel")
        .await;
    open_advanced(&b).await;
    b.fill("#headers", "not a header line").await;
    b.navigate_by(".button-row button[type=submit]").await;
    assert!(b.text("#headers-error").await.contains("Name: value"));
    b.fill("#headers", "X-Team: growth").await;
    b.navigate_by(".button-row button[type=submit]").await;
    assert!(!b.text("#name-error").await.is_empty());
    assert!(!b.text("#url-error").await.is_empty());
    assert!(!b.text("#events-error").await.is_empty());
    assert_eq!(
        b.value("#description").await,
        "Alerts for the on-call channel",
        "what the user typed is kept"
    );
    assert_eq!(b.value("#url").await, "ftp://nowhere");
    b.screenshot("04-webhook-new-errors").await;

    // "Select all" of a category ticks each of its events, and clears them.
    let product_boxes = "fieldset[data-category='product'] .event-box";
    b.click("fieldset[data-category='product'] .select-all-box")
        .await;
    for e in b.all(product_boxes).await {
        assert_eq!(e.prop("checked").await.unwrap().as_deref(), Some("true"));
    }
    b.click("fieldset[data-category='product'] .select-all-box")
        .await;
    for e in b.all(product_boxes).await {
        assert_eq!(e.prop("checked").await.unwrap().as_deref(), Some("false"));
    }

    // The wildcard covers the whole category: its boxes lock, ticked, and
    // come back as they were when it is cleared.
    let telemetry = "fieldset[data-category='telemetry']";
    b.click(&format!("{telemetry} input[value='telemetry.flagged']"))
        .await;
    b.click(&format!("{telemetry} .wildcard-box")).await;
    for e in b.all(&format!("{telemetry} .event-box")).await {
        assert_eq!(e.prop("checked").await.unwrap().as_deref(), Some("true"));
        assert_eq!(e.prop("disabled").await.unwrap().as_deref(), Some("true"));
    }
    b.click(&format!("{telemetry} .wildcard-box")).await;
    assert!(
        b.checked(&format!("{telemetry} input[value='telemetry.flagged']"))
            .await
    );
    assert!(
        !b.checked(&format!("{telemetry} input[value='telemetry.received']"))
            .await
    );
    b.click(&format!("{telemetry} input[value='telemetry.flagged']"))
        .await;

    b.fill("#name", "Slack Activation Alerts").await;
    b.fill("#url", &rx.url("/slack")).await;
    b.select("#environment", "production").await;
    b.click("input[value='activation.created']").await;
    b.click("input[value='activation.failed']").await;
    open_advanced(&b).await;
    b.fill("#timeout", "5s").await;
    b.navigate_by(".button-row button[type=submit]").await;
    assert_eq!(b.path().await, "/admin/webhooks");
    let row = row_text(&b, "Slack Activation Alerts")
        .await
        .expect("listed");
    assert!(
        row.contains(&rx.url("/slack")) && row.contains("Production"),
        "{row}"
    );
    assert!(row.contains("Active"), "{row}");
    let slack = row_id(&b, "Slack Activation Alerts").await;
    let (_, w) = s.get(&format!("/management/webhooks/{slack}")).await;
    assert_eq!(
        w["events"],
        json!(["activation.created", "activation.failed"])
    );
    assert_eq!(w["headers"], json!({"X-Team": ["growth"]}));
    assert_eq!(w["timeout"], "5s");
    assert_eq!(w["description"], "Alerts for the on-call channel");
    let (_, secret) = s.get(&format!("/management/webhooks/{slack}/secret")).await;
    assert_eq!(
        secret["secret"],
        generated.as_str(),
        "the form's secret signs"
    );

    // A second one (through the API), to search and filter between.
    s.create_webhook(
        &rx.url("/billing"),
        json!({"name": "Billing sync", "environment": "staging",
               "events": ["contract.*"], "retry_schedule": []}),
    )
    .await;
    b.goto(&s.url("/admin/webhooks")).await;
    b.screenshot("05-webhooks-list").await;
    b.fill("#q", "billing").await;
    b.navigate_by(".filters button[type=submit]").await;
    assert!(row_text(&b, "Billing sync").await.is_some());
    assert!(row_text(&b, "Slack Activation Alerts").await.is_none());
    b.fill("#q", "").await;
    b.select_navigating("#environment", "production").await;
    assert!(b.path().await.contains("environment=production"));
    assert!(row_text(&b, "Billing sync").await.is_none());
    assert!(row_text(&b, "Slack Activation Alerts").await.is_some());
    b.screenshot("06-webhooks-filtered").await;

    // Edit: a new URL, everything else kept.
    b.goto(&s.url("/admin/webhooks")).await;
    b.navigate_by(&format!("a[href='/admin/webhooks/{slack}']"))
        .await;
    b.screenshot("07-webhook-edit").await;
    assert_eq!(b.value("#name").await, "Slack Activation Alerts");
    assert!(b.checked("input[value='activation.failed']").await);
    b.fill("#url", &rx.url("/slack-v2")).await;
    b.navigate_by(".button-row button[type=submit]").await;
    assert_eq!(b.path().await, "/admin/webhooks");
    assert!(row_text(&b, "Slack").await.unwrap().contains("/slack-v2"));
    let (_, w) = s.get(&format!("/management/webhooks/{slack}")).await;
    assert_eq!(w["url"], rx.url("/slack-v2"));
    assert_eq!(w["headers"], json!({"X-Team": ["growth"]}));
    assert_eq!(w["timeout"], "5s");

    // Toggle off and on from the list.
    let toggle = format!("form[action='/admin/webhooks/{slack}/toggle'] button");
    // Its name says what it does, with the webhook's name (screen readers).
    assert_eq!(
        b.css(&toggle)
            .await
            .attr("aria-label")
            .await
            .unwrap()
            .as_deref(),
        Some("Deactivate Slack Activation Alerts")
    );
    b.navigate_by(&toggle).await;
    // The keyboard focus comes back to the toggle it left from.
    let focused = b
        .client
        .execute("return document.activeElement.id", vec![])
        .await
        .unwrap();
    assert_eq!(focused, json!(format!("toggle-{slack}")));
    assert!(row_text(&b, "Slack").await.unwrap().contains("Inactive"));
    assert_eq!(
        s.get(&format!("/management/webhooks/{slack}")).await.1["enabled"],
        false
    );
    b.navigate_by(&toggle).await;
    assert!(row_text(&b, "Slack").await.unwrap().contains("Active"));
    assert_eq!(
        s.get(&format!("/management/webhooks/{slack}")).await.1["enabled"],
        true
    );

    // Reveal, then generate a new secret.
    b.goto(&s.url(&format!("/admin/webhooks/{slack}"))).await;
    assert_eq!(
        b.css("#secret")
            .await
            .attr("type")
            .await
            .unwrap()
            .as_deref(),
        Some("password")
    );
    b.click("[data-reveal=secret]").await;
    assert_eq!(
        b.css("#secret")
            .await
            .attr("type")
            .await
            .unwrap()
            .as_deref(),
        Some("text")
    );
    assert_eq!(b.value("#secret").await, generated);
    // Seed 001's workflow: change the URL, generate a new secret, save both.
    b.fill("#url", &rx.url("/slack-v3")).await;
    b.click("#generate-secret").await;
    assert!(b.text(".copy-status").await.contains("when you save"));
    let rotated = b.value("#secret").await;
    assert!(rotated.starts_with("whsec_") && rotated != generated);
    assert_eq!(
        b.value("#url").await,
        rx.url("/slack-v3"),
        "the edit is kept"
    );
    let (_, secret) = s.get(&format!("/management/webhooks/{slack}/secret")).await;
    assert_eq!(
        secret["secret"],
        generated.as_str(),
        "nothing changes before Save"
    );
    b.screenshot("08-webhook-secret-generated").await;
    b.navigate_by(".button-row button[type=submit]").await;
    assert!(b.text(".notice").await.contains("new secret"));
    let (_, secret) = s.get(&format!("/management/webhooks/{slack}/secret")).await;
    assert_eq!(secret["secret"], rotated.as_str());
    assert!(
        secret["previous_secret_expires_at"].is_string(),
        "the old one still signs"
    );
    let (_, w) = s.get(&format!("/management/webhooks/{slack}")).await;
    assert_eq!(w["url"], rx.url("/slack-v3"));

    // Events: one delivered, one failing (no retries), in the log and chart.
    for (kind, env) in [
        ("activation.created", "production"),
        ("contract.created", "staging"),
    ] {
        let (status, body) = s
            .post(
                "/v1/events",
                json!({"type": kind, "environment": env, "data": {"id": 7}}),
            )
            .await;
        assert_eq!(status, 202, "{body}");
    }
    let deliveries = s.url("/admin/deliveries");
    let text = reload_until(&b, &deliveries, "a succeeded and a failed delivery", |t| {
        t.contains("Succeeded 1") && t.contains("Failed 1")
    })
    .await;
    assert!(text.contains("activation.created") && text.contains("contract.created"));
    assert!(b.all("#deliveries-chart rect.bar.succeeded").await.len() == 1);
    assert!(b.all("#deliveries-chart rect.bar.failed").await.len() == 1);
    b.screenshot("09-deliveries").await;

    // Filter the failures, open one, retry it (the receiver now says 200).
    b.select_navigating("#status", "failed").await;
    let rows = b.all("#deliveries tbody tr").await;
    assert_eq!(rows.len(), 1);
    let row = rows[0].text().await.unwrap();
    assert!(row.contains("Billing sync") && row.contains("500"), "{row}");
    assert_eq!(
        b.all("#deliveries tbody tr form[action$='/retry'] button")
            .await
            .len(),
        1,
        "a failed delivery can be retried from the list"
    );
    b.navigate_by("#deliveries tbody tr a[href^='/admin/deliveries/']")
        .await;
    assert_eq!(b.text("#delivery-status").await, "Failed");
    assert!(b.text("#attempts").await.contains("500"));
    b.screenshot("10-delivery-failed").await;
    b.navigate_by("form[action$='/retry'] button").await;
    assert!(b.text(".notice").await.contains("queued"));
    let detail = b.path().await;
    let detail = detail.split('?').next().unwrap().to_owned();
    reload_until(
        &b,
        &s.url(&detail),
        "the retried delivery to succeed",
        |t| t.contains("Succeeded"),
    )
    .await;
    assert_eq!(
        b.all("#attempts tbody tr:not(.attempt-detail)").await.len(),
        2
    );
    assert_eq!(rx.received("/billing").len(), 2);
    b.screenshot("11-delivery-retried").await;

    // A test event from the webhook's page, followed to its delivery.
    b.goto(&s.url(&format!("/admin/webhooks/{slack}"))).await;
    b.navigate_by("#send-test-button").await;
    let here = b.path().await;
    assert!(
        here.starts_with(&format!("/admin/deliveries?webhook_id={slack}")),
        "{here}"
    );
    assert!(b.text(".notice").await.contains("Test event"));
    reload_until(&b, &s.url(&here), "the test event's delivery", |t| {
        t.contains("webhook.test")
            && t.contains("Succeeded 2")
            && !t.contains("contract.created evt_")
    })
    .await;
    assert_eq!(
        rx.received("/slack-v3").len(),
        2,
        "the event, then the test"
    );

    // Settings: a mistake is named, a valid change is kept.
    b.goto(&s.url("/admin/settings")).await;
    b.screenshot("12-settings").await;
    b.fill("#retry_schedule", "5s, soon").await;
    b.navigate_by(".button-row button[type=submit]").await;
    assert!(!b.text("#retry_schedule-error").await.is_empty());
    assert_eq!(b.value("#retry_schedule").await, "5s, soon");
    b.fill("#retry_schedule", "10s, 1m, 10m").await;
    b.fill("#min_failures", "4").await;
    b.fill("#suspend_after", "2h").await;
    b.navigate_by(".button-row button[type=submit]").await;
    assert_eq!(b.path().await, "/admin/settings");
    assert_eq!(b.value("#retry_schedule").await, "10s, 1m, 10m");
    assert_eq!(b.value("#min_failures").await, "4");
    assert_eq!(b.value("#suspend_after").await, "2h");

    // Delete, with a confirmation step.
    b.goto(&s.url("/admin/webhooks")).await;
    let billing = row_id(&b, "Billing sync").await;
    b.navigate_by(&format!("a[href='/admin/webhooks/{billing}/delete']"))
        .await;
    b.screenshot("13-webhook-delete").await;
    b.navigate_by("form button.danger").await;
    assert_eq!(b.path().await, "/admin/webhooks");
    assert!(row_text(&b, "Billing sync").await.is_none());
    assert_eq!(
        s.get(&format!("/management/webhooks/{billing}")).await.0,
        404
    );

    // Sign out: the pages are closed again.
    b.navigate_by("form[action='/admin/logout'] button").await;
    assert_eq!(b.path().await, "/admin/login?signed_out=1");
    b.goto(&s.url("/admin/webhooks")).await;
    assert!(b.path().await.starts_with("/admin/login"));
    b.close().await;
}

#[tokio::test]
async fn the_pages_work_from_the_keyboard_and_load_nothing_from_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let b = Browser::start().await;
    sign_in(&b, &s, MGMT_KEY).await;
    assert_eq!(b.path().await, "/admin/webhooks");
    for path in [
        "/admin/webhooks",
        "/admin/webhooks/new",
        "/admin/deliveries",
        "/admin/event-types",
        "/admin/api-keys",
        "/admin/settings",
    ] {
        b.goto(&s.url(path)).await;
        // Every resource the page loaded came from this origin.
        let origins = b
            .client
            .execute(
                "return performance.getEntriesByType('resource').map(e => new URL(e.name).origin)",
                vec![],
            )
            .await
            .unwrap();
        for o in origins.as_array().unwrap() {
            assert_eq!(o.as_str().unwrap(), s.base, "{path} loaded {o}");
        }
        // The page's script ran to its end (no error on the way).
        let ready = b
            .client
            .execute("return document.documentElement.dataset.js || null", vec![])
            .await
            .unwrap();
        assert_eq!(ready, json!("ready"), "{path}: app.js stopped early");
        // Every form control has a label a screen reader can announce.
        let unlabeled = b
            .client
            .execute(
                "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                   .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                               && !e.closest('label'))
                   .map(e => e.id || e.name)",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(unlabeled, json!([]), "{path}");
    }
    // A link from another site (a chat message, an e-mail) opens the page
    // signed in, although the browser withholds the SameSite=Strict cookie
    // on that first request; signed out, it still leads to sign-in.
    let target = s.url("/admin/deliveries");
    b.goto(&format!(
        "data:text/html,<a id=go href=\"{target}\">open</a>"
    ))
    .await;
    b.click("#go").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.path().await != "/admin/deliveries" && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(b.path().await, "/admin/deliveries");
    assert!(b.body_text().await.contains("Deliveries over time"));

    // The create form, filled with the keyboard alone: Tab moves, Space ticks, Enter submits.
    b.goto(&s.url("/admin/webhooks/new")).await;
    b.fill("#name", "Keyboard hook").await;
    b.fill("#url", "https://example.com/kb").await;
    let activation = b.css("input[value='activation.created']").await;
    activation.send_keys(" ").await.unwrap();
    assert!(b.checked("input[value='activation.created']").await);
    let product_all = b.css("input[value='product.*']").await;
    product_all.send_keys(" ").await.unwrap();
    b.client
        .execute("window.__hookdOldPage = true", vec![])
        .await
        .unwrap();
    b.css("#name").await.send_keys("\u{E007}").await.unwrap(); // Enter
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.path().await != "/admin/webhooks" && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(b.path().await, "/admin/webhooks");
    assert!(row_text(&b, "Keyboard hook").await.is_some());
    let (_, list) = s.get("/management/webhooks?q=Keyboard").await;
    assert_eq!(
        list["data"][0]["events"],
        json!(["activation.created", "product.*"]),
        "a wildcard is sent alone, not with the boxes it locks"
    );

    // Twenty per page, with the way to the next and back.
    for i in 0..22 {
        s.create_webhook(
            &format!("https://example.com/page/{i}"),
            json!({"name": format!("Paged {i:02}")}),
        )
        .await;
    }
    b.goto(&s.url("/admin/webhooks")).await;
    assert_eq!(b.all("#webhooks tbody tr").await.len(), 20);
    assert!(b.text(".pager").await.contains("Showing 1–20 of 23"));
    b.navigate_by(".pager a[rel=next]").await;
    assert_eq!(b.path().await, "/admin/webhooks?page=2");
    assert_eq!(b.all("#webhooks tbody tr").await.len(), 3);
    assert!(b.text(".pager").await.contains("Showing 21–23 of 23"));
    b.navigate_by(".pager a[rel=prev]").await;
    assert_eq!(b.path().await, "/admin/webhooks");

    // A tenant's own event type, added from the catalogue page.
    b.goto(&s.url("/admin/event-types")).await;
    b.fill("#type-name", "invoice.paid").await;
    b.navigate_by("form[action='/admin/event-types'] button[type=submit]")
        .await;
    assert!(b.text(".notice").await.contains("Event type added"));
    assert!(b.text("#event-types").await.contains("invoice.paid"));
    b.screenshot("15-event-types").await;

    // An API key for an application, created from the page and shown once.
    b.goto(&s.url("/admin/api-keys")).await;
    b.fill("#key-name", "billing-service").await;
    b.click("input[name=permissions][value='events:publish']")
        .await;
    b.navigate_by("form[action='/admin/api-keys'] button[type=submit]")
        .await;
    let key = b.value("#new-key").await;
    assert!(key.starts_with("hk_"), "{key}");
    assert!(b.text("#api-keys").await.contains("billing-service"));
    b.screenshot("14-api-keys").await;

    // A management key moves between tenants; each sees only its own. The
    // switcher lists the known tenants; free text only under "New tenant…".
    assert_eq!(b.value("#tenant-switch").await, "default");
    assert!(
        !b.css("#new-tenant").await.is_displayed().await.unwrap(),
        "the free-text tenant shows before \"New tenant…\" is chosen"
    );
    b.select("#tenant-switch", "").await;
    assert!(b.css("#new-tenant").await.is_displayed().await.unwrap());
    b.fill("#new-tenant", "acme").await;
    b.screenshot("15-tenant-switch-new").await;
    b.navigate_by(".tenant-switch button").await;
    assert_eq!(b.value("#tenant-switch").await, "acme");
    assert!(b.body_text().await.contains("No webhooks yet"));
    let listed: Vec<String> = {
        let mut v = Vec::new();
        for o in b.all("#tenant-switch option").await {
            v.push(o.attr("value").await.unwrap().unwrap_or_default());
        }
        v
    };
    assert_eq!(
        listed,
        ["acme", "default", ""],
        "known tenants, then New tenant…"
    );
    b.select("#tenant-switch", "").await;
    b.fill("#new-tenant", "not a tenant!").await;
    b.navigate_by(".tenant-switch button").await;
    assert!(
        b.body_text().await.contains("Tenant"),
        "the error names the field"
    );
    b.goto(&s.url("/admin/webhooks")).await;
    assert_eq!(
        b.value("#tenant-switch").await,
        "acme",
        "a refused switch changes nothing"
    );
    b.select("#tenant-switch", "default").await;
    b.navigate_by(".tenant-switch button").await;
    assert_eq!(b.value("#tenant-switch").await, "default");
    assert!(b.text(".pager").await.contains("of 23"));
    b.close().await;
}
