//! Seed 004: `/event/{tenantLocator}/webhooks`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{TestServer, send};

pub const TENANT: &str = "3f1c2a9e-8b7d-4e6f-a5c4-1d2e3f4a5b6c";

fn path(rest: &str) -> String {
    format!("/event/{TENANT}/webhooks{rest}")
}

fn create_body(name: &str, url: &str, events: Value) -> Value {
    json!({
        "name": name,
        "enabled": true,
        "endpoint": {"url": url, "headers": {"X-Team": ["billing", "ops"]}},
        "eventTypes": events,
    })
}

/// An error in this API's shape, with `status` and the field named.
fn assert_error(status: u16, body: &Value, expected: u16, field: Option<&str>) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["status"], expected, "{body}");
    assert!(body["message"].is_string(), "{body}");
    assert!(body["errors"].is_array(), "{body}");
    if let Some(f) = field {
        assert!(
            body["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == f),
            "no error names {f}: {body}"
        );
        assert!(body["message"].as_str().unwrap().contains(f), "{body}");
    }
}

#[tokio::test]
async fn seed_004_webhook_lifecycle_answers_the_documented_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (status, created) = send(
        s.req(Method::POST, &path(""))
            .header("Content-Type", "application/json")
            .body(
                r#"{"name": "policy-sync", "enabled": true,
                    "endpoint": {"url": "https://example.com/hooks", "headers": {"X-Team": ["billing", "ops"]}},
                    "failureHandling": {"minFailures": 3, "suspendAfter": "1h"},
                    "eventTypes": ["license.created", "license.revoked"]}"#,
            ),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let locator = created["locator"].as_str().expect("locator is a string");
    assert_eq!(created["name"], "policy-sync");
    assert_eq!(created["enabled"], true);
    assert_eq!(
        created["endpoint"],
        json!({"url": "https://example.com/hooks", "headers": {"X-Team": ["billing", "ops"]}})
    );
    assert_eq!(
        created["failureHandling"],
        json!({"minFailures": 3, "suspendAfter": "1h"})
    );
    assert_eq!(created["suspended"], false);
    assert_eq!(created["suspendedAt"], Value::Null);
    assert_eq!(
        created["eventTypes"],
        json!(["license.created", "license.revoked"])
    );

    let (status, got) = send(s.req(Method::GET, &path(&format!("/{locator}")))).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got, created);

    // Removals first, then additions: an item in both stays.
    let (status, patched) = send(
        s.req(Method::PATCH, &path(&format!("/{locator}"))).json(&json!({
            "name": "renamed",
            "enabled": false,
            "endpoint": {"addHeaders": {"X-New": ["1"], "X-Team": ["core"]}, "removeHeaders": ["X-Team"]},
            "removeFailureHandling": true,
            "removeEventTypes": ["license.created", "license.revoked"],
            "addEventTypes": ["license.revoked", "product.created"],
        })),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["name"], "renamed");
    assert_eq!(patched["enabled"], false);
    assert_eq!(
        patched["endpoint"]["headers"],
        json!({"X-New": ["1"], "X-Team": ["core"]})
    );
    assert_eq!(patched["failureHandling"], Value::Null);
    assert_eq!(
        patched["eventTypes"],
        json!(["license.revoked", "product.created"])
    );

    let (status, _) = send(s.req(Method::PATCH, &path(&format!("/{locator}/unsuspend")))).await;
    assert_eq!(status, 204);
    let (status, _) = send(s.req(Method::DELETE, &path(&format!("/{locator}")))).await;
    assert_eq!(status, 204);
    let (status, body) = send(s.req(Method::GET, &path(&format!("/{locator}")))).await;
    assert_error(status, &body, 404, None);
    let (status, body) = send(s.req(Method::DELETE, &path(&format!("/{locator}")))).await;
    assert_error(status, &body, 404, None);
}

#[tokio::test]
async fn seed_004_list_filters_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let mut locators = Vec::new();
    for (name, url, events, enabled) in [
        (
            "alpha",
            "https://a.example.com/",
            json!(["license.created"]),
            true,
        ),
        ("beta", "https://b.example.com/", json!(["product.*"]), true),
        (
            "gamma",
            "https://c.example.com/",
            json!(["contract.created"]),
            false,
        ),
    ] {
        let mut body = create_body(name, url, events);
        body["enabled"] = json!(enabled);
        let (status, w) = send(s.req(Method::POST, &path("")).json(&body)).await;
        assert_eq!(status, 200, "{w}");
        locators.push(w["locator"].as_str().unwrap().to_owned());
    }
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .expect("the list is an array")
            .iter()
            .map(|w| w["name"].as_str().unwrap().to_owned())
            .collect()
    };
    for (query, expected) in [
        ("", vec!["alpha", "beta", "gamma"]),
        ("?name=beta", vec!["beta"]),
        ("?enabled=false", vec!["gamma"]),
        ("?active=true", vec!["alpha", "beta"]),
        ("?active=false", vec!["gamma"]),
        ("?suspended=true", vec![]),
        ("?eventTypes=product.updated", vec!["beta"]),
        (
            "?eventTypes=license.created&eventTypes=contract.created",
            vec!["alpha", "gamma"],
        ),
        (
            "?eventTypes=license.created,product.created",
            vec!["alpha", "beta"],
        ),
        ("?offset=1&count=1", vec!["beta"]),
        ("?enabled=true&eventTypes=contract.created", vec![]),
    ] {
        let (status, list) = send(s.req(Method::GET, &path(&format!("/list{query}")))).await;
        assert_eq!(status, 200, "{query}: {list}");
        assert_eq!(names(&list), expected, "{query}");
    }
    for bad in ["?count=0", "?offset=-1", "?active=maybe"] {
        let (status, body) = send(s.req(Method::GET, &path(&format!("/list{bad}")))).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
}

#[tokio::test]
async fn seed_004_auth_follows_tenants_and_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let body = create_body("h", "https://example.com/h", json!(["license.created"]));
    let (_, w) = send(s.req(Method::POST, &path("")).json(&body)).await;
    let one = path(&format!("/{}", w["locator"].as_str().unwrap()));

    // No key, a wrong key: 401 in this API's shape.
    let (status, err) = send(s.client.get(s.url(&one))).await;
    assert_error(status, &err, 401, None);
    let (status, err) = send(s.req_as("nope", Method::GET, &one)).await;
    assert_error(status, &err, 401, None);

    // A key of another tenant sees nothing there.
    let other = s
        .api_key("0b5a7c1e-0000-4000-8000-000000000001", &["admin"])
        .await;
    for (m, p) in [
        (Method::GET, one.clone()),
        (Method::DELETE, one.clone()),
        (Method::GET, path("/list")),
    ] {
        let (status, err) = send(s.req_as(&other, m, &p)).await;
        assert_error(status, &err, 404, None);
    }

    // The tenant's own keys: each permission as the document names it.
    let read = s.api_key(TENANT, &["webhooks:read"]).await;
    let list = s.api_key(TENANT, &["webhooks:list"]).await;
    let write = s.api_key(TENANT, &["webhooks:write"]).await;
    assert_eq!(send(s.req_as(&read, Method::GET, &one)).await.0, 200);
    assert_eq!(
        send(s.req_as(&list, Method::GET, &path("/list"))).await.0,
        200
    );
    let (status, err) = send(s.req_as(&read, Method::GET, &path("/list"))).await;
    assert_error(status, &err, 403, None);
    let (status, err) = send(s.req_as(&read, Method::POST, &path("")).json(&body)).await;
    assert_error(status, &err, 403, None);
    let (status, err) = send(s.req_as(&list, Method::DELETE, &one)).await;
    assert_error(status, &err, 403, None);
    let (status, _) = send(s.req_as(&write, Method::PATCH, &format!("{one}/unsuspend"))).await;
    assert_eq!(status, 204);
    let (status, _) = send(s.req_as(&write, Method::DELETE, &one)).await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn seed_004_invalid_requests_are_400_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let good = create_body("h", "https://example.com/h", json!(["license.created"]));
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    for (body, field) in [
        (with("name", json!("")), "name"),
        (with("name", json!(5)), "name"),
        (with("eventTypes", json!(["no.such_type"])), "eventTypes"),
        (with("eventTypes", json!([])), "eventTypes"),
        (
            with("endpoint", json!({"url": "ftp://x.example.com"})),
            "endpoint.url",
        ),
        (
            with(
                "endpoint",
                json!({"url": "https://x.example.com", "headers": {"X-A": "flat"}}),
            ),
            "endpoint.headers.X-A",
        ),
        (
            with(
                "endpoint",
                json!({"url": "https://x.example.com", "color": 1}),
            ),
            "endpoint.color",
        ),
        (with("surprise", json!(true)), "surprise"),
        (
            with(
                "failureHandling",
                json!({"minFailures": 0, "suspendAfter": "1h"}),
            ),
            "failureHandling",
        ),
    ] {
        let (status, err) = send(s.req(Method::POST, &path("")).json(&body)).await;
        assert_error(status, &err, 400, Some(field));
    }
    let (status, err) = send(s.req(Method::POST, &path("")).body("{not json")).await;
    assert_error(status, &err, 400, Some("body"));
    let (status, err) = send(
        s.req(Method::POST, "/event/not-a-uuid/webhooks")
            .json(&good),
    )
    .await;
    assert_error(status, &err, 400, Some("tenantLocator"));

    let (_, w) = send(s.req(Method::POST, &path("")).json(&good)).await;
    let one = path(&format!("/{}", w["locator"].as_str().unwrap()));
    for (body, field) in [
        (
            json!({"removeEventTypes": ["license.created"]}),
            "eventTypes",
        ),
        (json!({"endpoint": {"url": "not a url"}}), "endpoint.url"),
        (json!({"endpoint": {"headers": {}}}), "endpoint.headers"),
        (json!({"addEventTypes": "license.created"}), "addEventTypes"),
    ] {
        let (status, err) = send(s.req(Method::PATCH, &one).json(&body)).await;
        assert_error(status, &err, 400, Some(field));
    }
    let (status, err) = send(s.req(Method::GET, &path("/abc"))).await;
    assert_error(status, &err, 404, None);
}

#[tokio::test]
async fn seed_004_repeated_bad_keys_are_throttled_in_its_error_shape() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let good = s.api_key(TENANT, &["webhooks:list"]).await;
    let list = path("/list");
    // The budget of failures (SPEC §14) is spent by unknown keys...
    for _ in 0..10 {
        let (status, err) = send(s.req_as("wrong-key", Method::GET, &list)).await;
        assert_error(status, &err, 401, None);
    }
    // ...then this API answers 429 in its own shape, with Retry-After.
    let resp = s
        .req_as("wrong-key", Method::GET, &list)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"), "{resp:?}");
    let err: Value = resp.json().await.unwrap();
    assert_error(429, &err, 429, None);
    // An unknown key is refused unchecked; a valid one never used from
    // this address waits its turn too (it could be a guess).
    assert_eq!(send(s.req_as(&good, Method::GET, &list)).await.0, 429);
}
