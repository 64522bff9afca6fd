//! Issue 10 (SPEC §14): what a hostile client probed, one section per
//! point of the issue: the webhook URL, the event-type category, what is
//! stored (depth of `data`, control characters), small API inconsistencies.

use crate::common::{TestServer, assert_field_error, assert_problem, full, send};
use reqwest::Method;
use serde_json::{Value, json};

const HOOKS: &str = "/management/webhooks";
const TYPES: &str = "/management/event-types";
const EVENTS: &str = "/v1/events";
const BATCH: &str = "/v1/events/batch";

fn hook(name: &str, url: &str) -> Value {
    json!({"name": name, "url": url, "events": ["license.created"]})
}

/// The messages of the errors naming `field`, joined.
fn message_for(problem: &Value, field: &str) -> String {
    problem["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["field"] == field)
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

async fn webhook_urls(s: &TestServer) -> Vec<String> {
    let (status, list) = s.get(HOOKS).await;
    assert_eq!(status, 200, "{list}");
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["url"].as_str().unwrap().to_string())
        .collect()
}

// ------------------------------------------------------------- 3. URLs

#[tokio::test]
async fn url_spellings_of_one_url_are_one_webhook_per_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (status, first) = s.post(HOOKS, hook("first", "HTTPS://H/ok")).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["url"], "https://h/ok", "stored normalised");
    for spelling in [
        "https://h:443/ok",
        "https://h/ok",
        "HTTPS://H:443/ok",
        "https://h./ok",
        "https://h/ok?",
        "https://h/ok#frag",
    ] {
        let (status, problem) = s.post(HOOKS, hook("again", spelling)).await;
        assert_field_error(status, &problem, "url");
        assert!(
            message_for(&problem, "url").contains("already exists"),
            "{spelling}: {problem}"
        );
    }
    // Another path, or a port that is not the default, is another URL.
    let (status, other) = s.post(HOOKS, hook("other", "https://h:8443/ok")).await;
    assert_eq!(status, 201, "{other}");
    assert_eq!(other["url"], "https://h:8443/ok");
    assert_eq!(webhook_urls(&s).await.len(), 2);

    // PATCH normalises too, and meets the same uniqueness.
    let id = other["id"].as_i64().unwrap();
    let (status, problem) = s
        .patch(&format!("{HOOKS}/{id}"), json!({"url": "https://H:443/ok"}))
        .await;
    assert_field_error(status, &problem, "url");
    let (status, patched) = s
        .patch(
            &format!("{HOOKS}/{id}"),
            json!({"url": "HTTP://Example.COM:80/Hooks/"}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    // The path keeps its case and its trailing slash.
    assert_eq!(patched["url"], "http://example.com/Hooks/");
    let (_, read) = s.get(&format!("{HOOKS}/{id}")).await;
    assert_eq!(read["url"], "http://example.com/Hooks/");
}

#[tokio::test]
async fn seed_000_example_url_round_trips_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let url = "https://example.com/hooks/license";
    let (status, created) = s.post(HOOKS, hook("audit-sync", url)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["url"], url);
    assert_eq!(webhook_urls(&s).await, vec![url.to_string()]);
}

#[tokio::test]
async fn url_without_a_host_is_400_naming_url_on_create_and_patch() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    for bad in ["http:///x", "https:///example.com/x", "http:/x", "http:x"] {
        let (status, ct, problem) = full(s.req(Method::POST, HOOKS).json(&hook("n", bad))).await;
        assert_problem(status, &ct, &problem, 400);
        assert_field_error(status, &problem, "url");
        assert!(
            message_for(&problem, "url").contains("host"),
            "{bad}: {problem}"
        );
    }
    assert!(
        webhook_urls(&s).await.is_empty(),
        "a host-less URL was stored"
    );

    let created = s
        .create_webhook("https://example.com/hosted", json!({}))
        .await;
    let id = created["id"].as_i64().unwrap();
    let (status, problem) = s
        .patch(&format!("{HOOKS}/{id}"), json!({"url": "http:///x"}))
        .await;
    assert_field_error(status, &problem, "url");
    assert_eq!(
        webhook_urls(&s).await,
        vec!["https://example.com/hosted".to_string()]
    );
}

// ------------------------------------------------------- 4. Event types

#[tokio::test]
async fn an_event_type_category_may_differ_from_its_first_segment_as_openapi_says() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (status, created) = s
        .post(TYPES, json!({"name": "inv.paid", "category": "other"}))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["category"], "other");
    // Absent, it is the first segment.
    let (status, created) = s.post(TYPES, json!({"name": "inv.voided"})).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["category"], "inv");
    // Subscribable both ways.
    for events in [json!(["other.*"]), json!(["inv.*"])] {
        let url = format!("https://example.com/{}", events[0].as_str().unwrap());
        let (status, w) = s
            .post(HOOKS, json!({"name": "n", "url": url, "events": events}))
            .await;
        assert_eq!(status, 201, "{w}");
    }

    // The OpenAPI document states the same rule.
    let (status, doc) = send(s.client.get(s.url("/openapi.json"))).await;
    assert_eq!(status, 200);
    let category = &doc["components"]["schemas"]["EventTypeIn"]["properties"]["category"];
    let text = category["description"].as_str().unwrap_or_default();
    assert!(
        text.contains("may differ") && !text.contains("Must equal"),
        "category described as {category}"
    );
}

// ------------------------------------------------- 5. Limits on what is stored

async fn event_count(s: &TestServer) -> usize {
    // Counted in the text: a 128-level `data` inside the list's own
    // nesting is deeper than serde_json's parser goes.
    let resp = s
        .req(Method::GET, "/management/events?limit=500")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.text().await.unwrap().matches("\"id\":\"evt_").count()
}

/// A request with the bootstrap key, a raw body and a content type.
fn raw(
    s: &TestServer,
    method: Method,
    path: &str,
    ct: Option<&str>,
    body: String,
) -> reqwest::RequestBuilder {
    let rb = s.req(method, path).body(body);
    match ct {
        Some(ct) => rb.header("Content-Type", ct),
        None => rb,
    }
}

/// `{"a":[[…]]}`: an object `levels` deep in all.
fn nested_data(levels: usize) -> String {
    format!(
        "{{\"a\":{}{}}}",
        "[".repeat(levels - 1),
        "]".repeat(levels - 1)
    )
}

#[tokio::test]
async fn event_data_deeper_than_128_levels_is_400_naming_data() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let event = |levels: usize| {
        format!(
            "{{\"type\": \"license.created\", \"data\": {}}}",
            nested_data(levels)
        )
    };
    let (status, ok) = send(raw(
        &s,
        Method::POST,
        EVENTS,
        Some("application/json"),
        event(128),
    ))
    .await;
    assert_eq!(status, 202, "128 levels are allowed: {ok}");
    for levels in [129, 1_000_000] {
        let (status, ct, problem) = full(raw(
            &s,
            Method::POST,
            EVENTS,
            Some("application/json"),
            event(levels),
        ))
        .await;
        assert_problem(status, &ct, &problem, 400);
        assert_field_error(status, &problem, "data");
        assert!(
            message_for(&problem, "data").contains("128 levels"),
            "{levels}: {problem}"
        );
    }
    // In a batch, the error names the event; nothing of the batch is stored.
    let batch = format!(
        "{{\"events\": [{}, {}, {}]}}",
        event(2),
        event(129),
        event(1_000_000)
    );
    let (status, ct, problem) = full(raw(
        &s,
        Method::POST,
        BATCH,
        Some("application/json"),
        batch,
    ))
    .await;
    assert_problem(status, &ct, &problem, 400);
    assert_field_error(status, &problem, "events[1].data");
    assert_field_error(status, &problem, "events[2].data");
    assert!(
        message_for(&problem, "events[1].data").contains("128 levels"),
        "{problem}"
    );
    assert_eq!(
        event_count(&s).await,
        1,
        "only the 128-level event is stored"
    );
}

#[tokio::test]
async fn a_body_of_a_million_brackets_is_a_clean_400() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    for path in [EVENTS, BATCH] {
        for body in [
            "[".repeat(1_000_000),
            "{\"data\":".to_string() + &"[".repeat(1_000_000),
        ] {
            let (status, ct, problem) =
                full(raw(&s, Method::POST, path, Some("application/json"), body)).await;
            assert_problem(status, &ct, &problem, 400);
        }
    }
    let (status, _) = s.get("/healthz").await;
    assert_eq!(status, 200, "the server died");
    assert_eq!(event_count(&s).await, 0);
}

#[tokio::test]
async fn stored_labels_refuse_control_and_bidi_characters_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let hidden = [
        "nul\u{0}",
        "esc\u{1b}[2J",
        "c1\u{85}",
        "del\u{7f}",
        "invoice\u{202E}fdp.exe",
        "iso\u{2066}late\u{2069}",
    ];
    for bad in hidden {
        let (status, problem) = s.post(HOOKS, hook(bad, "https://example.com/a")).await;
        assert_field_error(status, &problem, "name");
        let mut body = hook("n", "https://example.com/a");
        body["description"] = json!(bad);
        let (status, problem) = s.post(HOOKS, body).await;
        assert_field_error(status, &problem, "description");
        let (status, problem) = s
            .post(TYPES, json!({"name": "invoice.paid", "description": bad}))
            .await;
        assert_field_error(status, &problem, "description");
        let (status, problem) = s
            .post(
                "/management/api-keys",
                json!({"name": bad, "permissions": ["webhooks:read"]}),
            )
            .await;
        assert_field_error(status, &problem, "name");
    }
    // A name is one line; a description may have several.
    let (status, problem) = s
        .post(HOOKS, hook("two\nlines", "https://example.com/a"))
        .await;
    assert_field_error(status, &problem, "name");
    let mut body = hook("multi-line", "https://example.com/a");
    body["description"] = json!("first line\r\nsecond\tline");
    let (status, created) = s.post(HOOKS, body).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["description"], "first line\r\nsecond\tline");
    let (_, keys) = s.get("/management/api-keys").await;
    assert_eq!(keys["data"].as_array().map_or(0, Vec::len), 0, "{keys}");

    // PATCH holds the same rules.
    let id = created["id"].as_i64().unwrap();
    for (field, value) in [("name", "a\u{202E}b"), ("description", "x\u{0}y")] {
        let (status, problem) = s
            .patch(&format!("{HOOKS}/{id}"), json!({ field: value }))
            .await;
        assert_field_error(status, &problem, field);
    }
    let (_, read) = s.get(&format!("{HOOKS}/{id}")).await;
    assert_eq!(read["name"], "multi-line");
}

// --------------------------------------------- 7. Small API inconsistencies

#[tokio::test]
async fn patch_errors_name_the_add_field_sent() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let created = s
        .create_webhook(
            "https://example.com/patch-fields",
            json!({"headers": {"X-Team": ["growth"]}}),
        )
        .await;
    let path = format!("{HOOKS}/{}", created["id"]);
    let cases = [
        (json!({"add_headers": {"Bad Header": ["v"]}}), "add_headers"),
        (json!({"add_headers": {"Webhook-Id": ["v"]}}), "add_headers"),
        (json!({"add_headers": {"X-A": ["a\r\nb"]}}), "add_headers"),
        (json!({"add_headers": {"X-A": []}}), "add_headers"),
        (json!({"headers": {"Bad Header": ["v"]}}), "headers"),
        (
            json!({"headers": {"Bad Header": ["v"]}, "add_headers": {"X-Ok": ["v"]}}),
            "headers",
        ),
        (json!({"add_events": ["nope.nope"]}), "add_events"),
        (json!({"add_events": ["Bad!"]}), "add_events"),
        (json!({"events": ["nope.nope"]}), "events"),
        (json!({"events": []}), "events"),
        // The resulting list is `events`, whichever form emptied it.
        (json!({"remove_events": ["license.created"]}), "events"),
    ];
    for (patch, field) in cases {
        let (status, problem) = s.patch(&path, patch.clone()).await;
        assert_field_error(status, &problem, field);
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert_eq!(fields, vec![field], "{patch}: {problem}");
    }
    // Both forms at once: each error under its own field.
    let (status, problem) = s
        .patch(
            &path,
            json!({"events": ["gone.one"], "add_events": ["gone.two"]}),
        )
        .await;
    assert_field_error(status, &problem, "events");
    assert_field_error(status, &problem, "add_events");
    assert!(
        message_for(&problem, "events").contains("gone.one"),
        "{problem}"
    );
    assert!(
        !message_for(&problem, "events").contains("gone.two"),
        "{problem}"
    );
    assert!(
        message_for(&problem, "add_events").contains("gone.two"),
        "{problem}"
    );
    // Nothing changed.
    let (_, read) = s.get(&path).await;
    assert_eq!(read["events"], json!(["license.created"]));
    assert_eq!(read["headers"], json!({"X-Team": ["growth"]}));
}

#[tokio::test]
async fn every_json_route_refuses_a_text_plain_body_alike() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let created = s.create_webhook("https://example.com/ct", json!({})).await;
    let id = created["id"].as_i64().unwrap();
    let (_, secret) = s.get(&format!("{HOOKS}/{id}/secret")).await;
    let routes = [
        (
            Method::PATCH,
            format!("{HOOKS}/{id}"),
            json!({"name": "renamed"}),
        ),
        (
            Method::POST,
            format!("{HOOKS}/{id}/secret/rotate"),
            json!({}),
        ),
        (
            Method::POST,
            HOOKS.to_string(),
            hook("n", "https://example.com/ct2"),
        ),
        (
            Method::POST,
            TYPES.to_string(),
            json!({"name": "invoice.paid"}),
        ),
        (
            Method::POST,
            "/management/api-keys".to_string(),
            json!({"name": "k", "permissions": ["webhooks:read"]}),
        ),
        (
            Method::POST,
            EVENTS.to_string(),
            json!({"type": "license.created", "data": {}}),
        ),
        (
            Method::POST,
            BATCH.to_string(),
            json!({"events": [{"type": "license.created", "data": {}}]}),
        ),
    ];
    for (method, path, body) in &routes {
        for ct in [
            "text/plain",
            "text/plain; charset=utf-8",
            "multipart/form-data; boundary=x",
        ] {
            let (status, ct_out, problem) =
                full(raw(&s, method.clone(), path, Some(ct), body.to_string())).await;
            assert_problem(status, &ct_out, &problem, 400);
            assert_field_error(status, &problem, "Content-Type");
        }
    }
    // Secret rotation with an empty text/plain body too.
    let (status, problem) = send(raw(
        &s,
        Method::POST,
        &format!("{HOOKS}/{id}/secret/rotate"),
        Some("text/plain"),
        String::new(),
    ))
    .await;
    assert_field_error(status, &problem, "Content-Type");
    // Nothing was changed or created.
    let (_, read) = s.get(&format!("{HOOKS}/{id}")).await;
    assert_eq!(read["name"], created["name"]);
    assert_eq!(s.get(&format!("{HOOKS}/{id}/secret")).await.1, secret);
    assert_eq!(webhook_urls(&s).await.len(), 1);
    assert_eq!(event_count(&s).await, 0);

    // JSON, no content type, and curl's `-d` default are accepted.
    for ct in [
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        None,
        Some("application/x-www-form-urlencoded"),
    ] {
        let (status, body) = send(raw(
            &s,
            Method::PATCH,
            &format!("{HOOKS}/{id}"),
            ct,
            json!({"description": format!("{ct:?}")}).to_string(),
        ))
        .await;
        assert_eq!(status, 200, "{ct:?}: {body}");
    }
    let (status, body) = send(raw(
        &s,
        Method::POST,
        &format!("{HOOKS}/{id}/secret/rotate"),
        None,
        String::new(),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn hosts_that_are_not_host_names_are_400_naming_url() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let long_label = format!("https://{}.test/x", "a".repeat(64));
    for url in [
        "http://./x",
        "http://../x",
        "http://a..b/x",
        "http://-a/x",
        &long_label,
    ] {
        let (status, problem) = s.post(HOOKS, hook("bad host", url)).await;
        assert_field_error(status, &problem, "url");
    }
}

/// serde would read a struct from an array of its fields in order: an
/// array of as many `null`s as `WebhookPatch` has fields cleared what it
/// could, and `[null, null]` made a portal link. Objects only, at every
/// depth, on every JSON route (the seed surfaces read bodies the same way).
#[tokio::test]
async fn a_json_array_is_not_an_object_body_nor_a_nested_object() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let created = s
        .create_webhook(
            "https://hooks.example.test/arrays",
            json!({"description": "kept"}),
        )
        .await;
    let id = created["id"].as_i64().unwrap();
    s.post(
        TYPES,
        json!({"name": "invoice.paid", "description": "kept"}),
    )
    .await;
    let nulls = |n: usize| Value::Array(vec![Value::Null; n]);
    let routes = [
        (Method::PATCH, format!("{HOOKS}/{id}"), nulls(18)),
        (Method::PATCH, format!("{TYPES}/invoice.paid"), nulls(3)),
        (
            Method::POST,
            "/management/portal-links".to_string(),
            nulls(2),
        ),
        (
            Method::POST,
            format!("{HOOKS}/{id}/secret/rotate"),
            nulls(1),
        ),
        (
            Method::POST,
            format!("{HOOKS}/{id}/send-example"),
            json!(["invoice.paid"]),
        ),
    ];
    for (method, path, body) in &routes {
        let (status, ct, problem) = full(raw(
            &s,
            method.clone(),
            path,
            Some("application/json"),
            body.to_string(),
        ))
        .await;
        assert_problem(status, &ct, &problem, 400);
        assert_field_error(status, &problem, "body");
        let message = message_for(&problem, "body");
        assert!(
            message.contains("expected a JSON object"),
            "{path}: {message}"
        );
        assert!(!message.contains("struct"), "no Rust names: {message}");
    }
    let (status, problem) = s
        .patch(
            &format!("{HOOKS}/{id}"),
            json!({"failure_handling": [3, "1h"]}),
        )
        .await;
    assert_field_error(status, &problem, "failure_handling");
    let (status, problem) = s
        .patch(
            &format!("{HOOKS}/{id}"),
            json!({"auth": ["basic", "u", "p", null, null, null, null, null, null, null]}),
        )
        .await;
    assert_field_error(status, &problem, "auth");
    // Nothing was changed or made.
    let (_, read) = s.get(&format!("{HOOKS}/{id}")).await;
    assert_eq!(read["description"], "kept");
    assert_eq!(read["auth"], Value::Null);
    let (_, types) = s.get(TYPES).await;
    let paid = types["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "invoice.paid")
        .unwrap();
    assert_eq!(paid["description"], "kept");
    assert_eq!(event_count(&s).await, 0);
}
