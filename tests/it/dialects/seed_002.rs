//! Seed 002: `/management/v1/projects/{projectId}/webhooks`.

use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

use crate::common::{MGMT_KEY, TestServer, send};

pub const PROJECT: &str = "proj_TrlkLiH4";

fn path(rest: &str) -> String {
    format!("/management/v1/projects/{PROJECT}/webhooks{rest}")
}

/// A request with the management key as this API sends it.
pub fn req(s: &TestServer, m: Method, p: &str) -> RequestBuilder {
    s.client
        .request(m, s.url(p))
        .header("X-Management-Id", "management")
        .header("X-Management-Token", MGMT_KEY)
}

/// An error in this API's shape.
fn assert_error(status: u16, body: &Value, expected: u16, names: Option<&str>) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["code"], expected, "{body}");
    assert!(
        body["key"].is_string() && body["message"].is_string(),
        "{body}"
    );
    if let Some(f) = names {
        assert!(body["details"].as_str().unwrap().contains(f), "{f}: {body}");
    }
}

fn assert_webhook_shape(w: &Value) {
    let keys: Vec<&str> = w.as_object().unwrap().keys().map(String::as_str).collect();
    let mut keys = keys.clone();
    keys.sort();
    assert_eq!(
        keys,
        [
            "active",
            "created_at",
            "events",
            "id",
            "object",
            "target_url"
        ],
        "{w}"
    );
    assert_eq!(w["object"], "webhook");
    let id = w["id"].as_str().unwrap();
    assert!(
        id.starts_with("wh_") && id.len() > 3 && id[3..].bytes().all(|c| c.is_ascii_alphanumeric()),
        "{id}"
    );
    // ISO 8601 with milliseconds: 2024-04-30T08:13:55.789Z
    let ts = w["created_at"].as_str().unwrap();
    assert_eq!(ts.len(), 24, "{ts}");
    assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "{ts}");
    assert!(
        time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).is_ok(),
        "{ts}"
    );
}

#[tokio::test]
async fn seed_002_create_example_answers_the_documented_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    // The document's curl, with a real URL, key and project.
    let (status, w) = send(
        s.client
            .post(s.url(&path("")))
            .header("Content-Type", "application/json")
            .header("X-Management-Id", "management")
            .header("X-Management-Token", MGMT_KEY)
            .body(
                r#"{
  "target_url": "https://example.com/hooks/voucherify",
  "events": [
    "business_validation_rule.assignment.created"
  ],
  "active": true
}"#,
            ),
    )
    .await;
    assert_eq!(status, 200, "{w}");
    assert_webhook_shape(&w);
    assert_eq!(w["target_url"], "https://example.com/hooks/voucherify");
    assert_eq!(
        w["events"],
        json!(["business_validation_rule.assignment.created"])
    );
    assert_eq!(w["active"], true);

    // `active` defaults to true; the response example's event is known too.
    let (status, w2) = send(req(&s, Method::POST, &path("")).json(&json!({
        "target_url": "https://example.com/other",
        "events": ["redemption.succeeded"],
    })))
    .await;
    assert_eq!(status, 200, "{w2}");
    assert_eq!(w2["active"], true);
    assert_ne!(w["id"], w2["id"]);
}

#[tokio::test]
async fn seed_002_get_list_update_delete() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (_, w) = send(req(&s, Method::POST, &path("")).json(&json!({
        "target_url": "https://example.com/a", "events": ["redemption.succeeded"], "active": false,
    })))
    .await;
    let one = path(&format!("/{}", w["id"].as_str().unwrap()));

    let (status, got) = send(req(&s, Method::GET, &one)).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got, w);

    let (status, list) = send(req(&s, Method::GET, &path(""))).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["object"], "list");
    assert_eq!(list["data_ref"], "data");
    assert_eq!(list["total"], 1);
    assert_eq!(list["data"], json!([w]));

    // Update by POST, as the document names it (PUT works too); only the
    // fields given change.
    let (status, up) = send(req(&s, Method::POST, &one).json(&json!({"active": true}))).await;
    assert_eq!(status, 200, "{up}");
    assert_webhook_shape(&up);
    assert_eq!(up["active"], true);
    assert_eq!(up["id"], w["id"]);
    assert_eq!(up["created_at"], w["created_at"]);
    assert_eq!(up["target_url"], w["target_url"]);
    let (status, up) = send(req(&s, Method::PUT, &one).json(&json!({
        "target_url": "https://example.com/b",
        "events": ["business_validation_rule.assignment.created", "redemption.succeeded"],
    })))
    .await;
    assert_eq!(status, 200, "{up}");
    assert_eq!(up["target_url"], "https://example.com/b");
    assert_eq!(up["events"].as_array().unwrap().len(), 2);
    assert_eq!(up["active"], true);

    let (status, _) = send(req(&s, Method::DELETE, &one)).await;
    assert_eq!(status, 204);
    let (status, err) = send(req(&s, Method::GET, &one)).await;
    assert_error(status, &err, 404, None);
    let (status, err) = send(req(&s, Method::GET, &path("/wh_ekFHVL6lqC4lDuIFxpETSGa3"))).await;
    assert_error(status, &err, 404, None);
}

#[tokio::test]
async fn seed_002_auth_needs_both_headers_and_keeps_projects_apart() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let body = json!({"target_url": "https://example.com/a", "events": ["redemption.succeeded"]});
    let list = path("");

    let only_token = s
        .client
        .get(s.url(&list))
        .header("X-Management-Token", MGMT_KEY);
    let only_id = s
        .client
        .get(s.url(&list))
        .header("X-Management-Id", "management");
    let wrong_token = s
        .client
        .get(s.url(&list))
        .header("X-Management-Id", "management")
        .header("X-Management-Token", "nope");
    let bearer_only = s.req(Method::GET, &list);
    for rb in [only_token, only_id, wrong_token, bearer_only] {
        let (status, err) = send(rb).await;
        assert_error(status, &err, 401, None);
        assert_eq!(err["key"], "unauthorized");
    }

    // A provisioned key is named by its id.
    let (status, key) = s
        .post(
            "/management/api-keys",
            json!({"name": "k", "tenant": PROJECT, "permissions": ["webhooks:read", "webhooks:list"]}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let (kid, token) = (
        key["id"].to_string(),
        key["key"].as_str().unwrap().to_owned(),
    );
    let as_key = |m: Method, p: &str, id: &str| {
        s.client
            .request(m, s.url(p))
            .header("X-Management-Id", id)
            .header("X-Management-Token", &token)
    };
    assert_eq!(send(as_key(Method::GET, &list, &kid)).await.0, 200);
    let (status, err) = send(as_key(Method::GET, &list, "management")).await;
    assert_error(status, &err, 401, None);
    let (status, err) = send(as_key(Method::GET, &list, "999999")).await;
    assert_error(status, &err, 401, None);
    // It lacks webhooks:write.
    let (status, err) = send(as_key(Method::POST, &list, &kid).json(&body)).await;
    assert_error(status, &err, 403, None);
    // Another project is not its own: 404.
    let other = "/management/v1/projects/proj_other/webhooks";
    let (status, err) = send(as_key(Method::GET, other, &kid)).await;
    assert_error(status, &err, 404, None);
    let (_, w) = send(req(&s, Method::POST, other).json(&body)).await;
    let (status, err) = send(as_key(
        Method::GET,
        &format!("{other}/{}", w["id"].as_str().unwrap()),
        &kid,
    ))
    .await;
    assert_error(status, &err, 404, None);
    // And the management key sees project A's webhook only in project A.
    let (status, _) = send(req(
        &s,
        Method::GET,
        &path(&format!("/{}", w["id"].as_str().unwrap())),
    ))
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn seed_002_invalid_requests_are_400_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    for (body, field) in [
        (
            json!({"target_url": "not a url", "events": ["redemption.succeeded"]}),
            "target_url",
        ),
        (
            json!({"target_url": "https://example.com", "events": ["no.such_event"]}),
            "events",
        ),
        (
            json!({"target_url": "https://example.com", "events": []}),
            "events",
        ),
        (
            json!({"target_url": "https://example.com", "events": ["redemption.succeeded"], "active": "yes"}),
            "active",
        ),
        (
            json!({"target_url": "https://example.com", "events": ["redemption.succeeded"], "name": "x"}),
            "name",
        ),
        (json!({"events": ["redemption.succeeded"]}), "target_url"),
    ] {
        let (status, err) = send(req(&s, Method::POST, &path("")).json(&body)).await;
        assert_error(status, &err, 400, Some(field));
        assert_eq!(err["key"], "invalid_payload");
    }
    let (status, err) = send(req(&s, Method::POST, &path("")).body("{\"target_url\":")).await;
    assert_error(status, &err, 400, Some("body"));
    // The same URL twice in a project.
    let body = json!({"target_url": "https://example.com/dup", "events": ["redemption.succeeded"]});
    assert_eq!(
        send(req(&s, Method::POST, &path("")).json(&body)).await.0,
        200
    );
    let (status, err) = send(req(&s, Method::POST, &path("")).json(&body)).await;
    assert_error(status, &err, 400, Some("target_url"));
}

#[tokio::test]
async fn seed_002_repeated_bad_tokens_are_throttled_in_its_error_shape() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let url = s.url("/management/v1/projects/proj_throttle/webhooks");
    let attempt = || {
        s.client
            .get(&url)
            .header("X-Management-Id", "management")
            .header("X-Management-Token", "not-a-key")
    };
    for _ in 0..10 {
        assert_eq!(send(attempt()).await.0, 401);
    }
    let resp = attempt().send().await.unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"), "{resp:?}");
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["code"], 429, "{err}");
    assert_eq!(err["key"], "too_many_requests", "{err}");
}
