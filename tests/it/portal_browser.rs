//! The customer portal (SPEC §11) in a real headless Chromium that blocks
//! third-party cookies, embedded in an `<iframe>` of another site (the
//! parent page on `http://localhost:P`, hookd on `http://127.0.0.1:Q`):
//! browsing, forms, secrets, deliveries, the event catalogue and "Send
//! example" all work inside the frame; other origins cannot frame it, nor
//! anyone the admin page. Screenshots land in `target/screenshots/`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::browser::Browser;
use crate::common::page_host::PageHost;
use crate::common::receiver::Receiver;
use crate::common::{ServerConfig, TestServer, free_port, send};

async fn link(s: &TestServer, tenant: &str, body: Value) -> String {
    let (status, out) = send(
        s.req(reqwest::Method::POST, "/management/portal-links")
            .header("X-Tenant-Id", tenant)
            .json(&body),
    )
    .await;
    assert_eq!(status, 201, "{out}");
    out["url"].as_str().unwrap().to_owned()
}

/// Text of the current frame's body, whitespace folded.
async fn frame_text(b: &Browser) -> String {
    b.body_text()
        .await
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The frame's own path and query (WebDriver's URL is the top page's).
async fn frame_path(b: &Browser) -> String {
    b.client
        .execute("return location.pathname + location.search", vec![])
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

/// Reloads the frame until `check` holds on its text.
async fn reload_frame_until(b: &Browser, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = frame_text(b).await;
        if check(&text) {
            return text;
        }
        if Instant::now() > deadline {
            panic!("gave up waiting for {what}; frame:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        b.client.execute("location.reload()", vec![]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_customer_uses_the_portal_inside_another_sites_iframe_without_cookies() {
    let dir = tempfile::tempdir().unwrap();
    let parent_port = free_port();
    let s = ServerConfig::new(dir.path())
        .arg("--allow-private-targets")
        .arg("--portal-frame-ancestors")
        .arg(&format!("http://localhost:{parent_port}"))
        .arg("--portal-product-name")
        .arg("Acme Hooks")
        .arg("--portal-accent-color")
        .arg("#0a7d55")
        .start()
        .await;
    let rx = Receiver::start().await;
    // The platform's own catalogue: a type with a schema and an example.
    let (status, t) = send(
        s.req(reqwest::Method::POST, "/management/event-types")
            .header("X-Tenant-Id", "acme")
            .json(&json!({
                "name": "invoice.paid",
                "description": "An invoice was paid",
                "schema": {"type": "object", "required": ["invoice_id"],
                           "properties": {"invoice_id": {"type": "string"}}},
                "example": {"invoice_id": "inv_42", "amount": 1200},
            })),
    )
    .await;
    assert_eq!(status, 201, "{t}");
    // Another tenant's webhook, which the portal must never show.
    let (status, _) = send(
        s.req(reqwest::Method::POST, "/management/webhooks")
            .header("X-Tenant-Id", "globex")
            .json(&json!({"name": "globex-secret-hook", "url": rx.url("/g"), "events": ["license.created"]})),
    )
    .await;
    assert_eq!(status, 201);
    let url = link(&s, "acme", json!({})).await;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let parent = PageHost::start(
        parent_port,
        PageHost::framing("Acme Cloud · Settings", &url),
    )
    .await;

    let b = Browser::start_blocking_third_party_cookies().await;
    b.goto(&parent.url()).await;
    b.css("iframe#portal").await;
    b.client.enter_frame(0).await.unwrap();
    b.css("#webhooks").await;
    let text = frame_text(&b).await;
    assert!(text.contains("Acme Hooks"), "the product name: {text}");
    assert!(text.contains("acme"), "the tenant is shown: {text}");
    assert!(
        !text.contains("globex")
            && !text.contains("API keys")
            && !text.contains("Settings")
            && !text.contains("Sign out"),
        "{text}"
    );
    // The framed page has no cookie to lean on: third-party cookies are blocked.
    let cookies = b
        .client
        .execute(
            "document.cookie = 'probe=1'; return document.cookie",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        cookies,
        json!(""),
        "a cookie was kept in the third-party frame"
    );
    // The accent colour from the flag, from hookd's own stylesheet.
    assert_eq!(
        b.style(".button.primary", "background-color").await,
        "rgb(10, 125, 85)"
    );
    b.client.enter_parent_frame().await.unwrap();
    b.screenshot("portal-01-embedded-webhooks").await;
    b.client.enter_frame(0).await.unwrap();

    // Create a webhook through the portal's form, inside the frame.
    b.navigate_by("a.button.primary").await;
    b.fill("#name", "Portal CRM").await;
    b.fill("#url", &rx.url("/crm")).await;
    b.click("input[value='invoice.paid']").await;
    b.click("input[value='license.created']").await;
    b.navigate_by(".button-row button[type=submit]").await;
    assert!(b.text(".notice").await.contains("Webhook created"));
    assert!(frame_text(&b).await.contains("Portal CRM"));
    let path = frame_path(&b).await;
    assert!(
        path.starts_with("/portal/s/") && path.ends_with("/webhooks"),
        "the notice code left the address: {path}"
    );
    b.client.enter_parent_frame().await.unwrap();
    b.screenshot("portal-02-embedded-created").await;
    b.client.enter_frame(0).await.unwrap();

    // Its page: the secret revealed, a test event sent.
    b.navigate_by("#webhooks td.name a").await;
    b.click("[data-reveal=secret]").await;
    assert!(b.value("#secret").await.starts_with("whsec_"));
    b.navigate_by("#send-test-button").await;
    assert!(b.text(".notice").await.contains("Test event"));
    reload_frame_until(&b, "the test delivery", |t| {
        t.contains("webhook.test") && t.contains("Succeeded")
    })
    .await;
    b.client.enter_parent_frame().await.unwrap();
    b.screenshot("portal-03-embedded-deliveries").await;
    b.client.enter_frame(0).await.unwrap();
    // A log row opens its delivery when clicked.
    b.mark_and_click("#deliveries tbody tr.clickable td:first-child")
        .await;
    let path = frame_path(&b).await;
    assert!(path.contains("/deliveries/"), "{path}");
    assert!(frame_text(&b).await.contains("Attempt"));
    b.client.enter_parent_frame().await.unwrap();
    b.screenshot("portal-04-embedded-delivery").await;
    b.client.enter_frame(0).await.unwrap();

    // The event catalogue, with the schema and example; then "Send example".
    b.navigate_by("nav a[href$='/event-types']").await;
    b.click("tr[data-event-type='invoice.paid'] summary").await;
    assert!(
        b.text("tr[data-event-type='invoice.paid'] pre.example")
            .await
            .contains("inv_42")
    );
    assert!(
        b.text("tr[data-event-type='invoice.paid'] pre.schema")
            .await
            .contains("invoice_id")
    );
    b.client.enter_parent_frame().await.unwrap();
    b.screenshot("portal-05-embedded-event-types").await;
    b.client.enter_frame(0).await.unwrap();
    b.navigate_by("nav a[href$='/webhooks']").await;
    b.navigate_by("#webhooks td.name a").await;
    b.select("#example-type", "invoice.paid").await;
    b.navigate_by("#send-example-button").await;
    assert!(b.text(".notice").await.contains("Example event sent"));
    let got = rx.wait_for("/crm", 2, Duration::from_secs(20)).await;
    let example = got
        .iter()
        .map(|r| r.json())
        .find(|j| j["type"] == "invoice.paid")
        .expect("the example delivered");
    assert_eq!(
        example["data"],
        json!({"invoice_id": "inv_42", "amount": 1200})
    );

    // The API reference, in the portal too.
    b.navigate_by("nav a[href$='/api-reference']").await;
    assert!(b.text("#verify-python").await.contains("standardwebhooks"));
    b.client.enter_parent_frame().await.unwrap();
    b.screenshot("portal-06-embedded-api-reference").await;

    // Opened once: the same link in a new frame says so.
    b.goto(&parent.url()).await;
    b.css("iframe#portal").await;
    b.client.enter_frame(0).await.unwrap();
    assert!(frame_text(&b).await.contains("already used"));
    b.client.enter_parent_frame().await.unwrap();
    b.screenshot("portal-07-link-used").await;

    // A read-only portal, opened as a page of its own: nothing to act with.
    b.goto(&link(&s, "acme", json!({"read_only": true})).await)
        .await;
    b.css("#read-only-badge").await;
    assert!(
        b.all("a.button.primary").await.is_empty(),
        "Create Webhook in a read-only portal"
    );
    b.screenshot("portal-09-read-only-webhooks").await;
    b.navigate_by("#webhooks td.name a").await;
    assert!(
        b.all(".button-row button[type=submit]").await.is_empty(),
        "Save in a read-only portal"
    );
    assert!(!b.value("#secret").await.starts_with("whsec_"));
    b.screenshot("portal-10-read-only-webhook").await;
    b.close().await;
}

/// What a frame shows: its text, or `None` when the browser refused to
/// render it there (a blocked frame is an error page of the browser's).
async fn framed_text(b: &Browser, parent_url: &str) -> Option<String> {
    b.goto(parent_url).await;
    b.css("iframe#portal").await;
    // Give the frame its load (or its refusal).
    tokio::time::sleep(Duration::from_millis(800)).await;
    b.client.enter_frame(0).await.unwrap();
    let href = b
        .client
        .execute("return location.href", vec![])
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let text = frame_text(b).await;
    b.client.enter_parent_frame().await.unwrap();
    (href.starts_with("http://127.0.0.1")).then_some(text)
}

#[tokio::test]
async fn only_the_configured_origins_frame_the_portal_and_no_one_frames_the_admin_page() {
    let dir = tempfile::tempdir().unwrap();
    let allowed_port = free_port();
    let s = ServerConfig::new(dir.path())
        .arg("--portal-frame-ancestors")
        .arg(&format!("http://localhost:{allowed_port}"))
        .start()
        .await;
    let b = Browser::start_blocking_third_party_cookies().await;
    let admin_page = PageHost::framing("Admin", &s.url("/admin/login"));
    let allowed = PageHost::start_pages(
        allowed_port,
        vec![
            (
                "/".into(),
                PageHost::framing("Allowed", &link(&s, "acme", json!({})).await),
            ),
            ("/admin".into(), admin_page.clone()),
        ],
    )
    .await;
    // The configured origin frames the portal…
    let shown = framed_text(&b, &allowed.url())
        .await
        .expect("the allowed origin frames the portal");
    assert!(shown.contains("Webhooks"), "{shown}");
    // …another origin does not…
    let other = PageHost::start_pages(
        0,
        vec![
            (
                "/".into(),
                PageHost::framing("Elsewhere", &link(&s, "acme", json!({})).await),
            ),
            ("/admin".into(), admin_page),
        ],
    )
    .await;
    assert_eq!(
        framed_text(&b, &other.url()).await,
        None,
        "another origin framed the portal"
    );
    b.screenshot("portal-08-framing-refused").await;
    // …and nobody frames the admin page, the portal's origin included.
    assert_eq!(
        framed_text(&b, &other.url_of("/admin")).await,
        None,
        "the admin page was framed"
    );
    assert_eq!(
        framed_text(&b, &allowed.url_of("/admin")).await,
        None,
        "the admin page was framed by the portal's origin"
    );
    b.close().await;
}
