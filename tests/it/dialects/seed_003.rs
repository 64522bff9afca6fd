//! Seed 003 (SlashID): `/organizations/webhooks`, the organization in
//! `SlashID-OrgID`, the key in `SlashID-API-Key`.

use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

use crate::common::{MGMT_KEY, TestServer, send};

/// The document's example organization.
pub const ORG: &str = "af5fbd30-7ce7-4548-8b30-4cd59cb2aba1";

pub fn path(rest: &str) -> String {
    format!("/organizations/webhooks{rest}")
}

/// A request as this API sends it, with `key` for the organization.
pub fn req_as(s: &TestServer, key: &str, org: &str, m: Method, p: &str) -> RequestBuilder {
    s.client
        .request(m, s.url(p))
        .header("SlashID-OrgID", org)
        .header("SlashID-API-Key", key)
}

/// With the management key, on `ORG`.
pub fn req(s: &TestServer, m: Method, p: &str) -> RequestBuilder {
    req_as(s, MGMT_KEY, ORG, m, p)
}

/// An error in this API's envelope; `names`: a message mentions it.
fn assert_error(status: u16, body: &Value, expected: u16, names: Option<&str>) {
    assert_eq!(status, expected, "{body}");
    let errors = body["errors"].as_array().expect("errors");
    assert!(!errors.is_empty(), "{body}");
    for e in errors {
        assert_eq!(e["httpcode"], expected, "{body}");
        assert!(e["message"].is_string(), "{body}");
    }
    assert!(body.get("result").is_none(), "{body}");
    if let Some(f) = names {
        assert!(
            errors
                .iter()
                .any(|e| e["message"].as_str().unwrap().contains(f)),
            "{f}: {body}"
        );
    }
}

fn assert_webhook_shape(w: &Value) {
    let mut keys: Vec<&str> = w.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "custom_headers",
            "description",
            "id",
            "name",
            "target_url",
            "timeout"
        ],
        "{w}"
    );
    assert!(!w["id"].as_str().unwrap().is_empty(), "{w}");
    assert!(w["custom_headers"].is_object(), "{w}");
    assert!(w["timeout"].is_string(), "{w}");
}

#[tokio::test]
async fn seed_003_create_example_answers_201_with_the_documented_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    // The document's request, its headers and every body field, with a
    // real key and values in place of the placeholders.
    let (status, body) = send(
        s.client
            .post(s.url("/organizations/webhooks"))
            .header("SlashID-API-Key", MGMT_KEY)
            .header("SlashID-OrgID", ORG)
            .header("SlashID-Required-Consistency", "local_region")
            .header("SlashID-Required-Consistency-Timeout", "30")
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .body(
                r#"{
  "name": "prod webhook",
  "target_url": "https://example.com/slashid/webhook",
  "description": "Called on every login",
  "custom_headers": {
    "X-Extra-Header": ["first", "second"]
  },
  "timeout": "1.5s"
}"#,
            ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let w = &body["result"];
    assert_webhook_shape(w);
    assert_eq!(w["name"], "prod webhook");
    assert_eq!(w["description"], "Called on every login");
    assert_eq!(w["target_url"], "https://example.com/slashid/webhook");
    assert_eq!(
        w["custom_headers"],
        json!({"X-Extra-Header": ["first", "second"]})
    );
    assert_eq!(w["timeout"], "1.5s");
    let id = w["id"].as_str().unwrap().to_owned();

    // Unset timeout shows "0s" (the defaults); only name and URL needed.
    let (status, body) = send(req(&s, Method::POST, &path("")).json(&json!({
        "name": "minimal", "target_url": "https://example.org/hook",
    })))
    .await;
    assert_eq!(status, 201, "{body}");
    assert_webhook_shape(&body["result"]);
    assert_eq!(body["result"]["timeout"], "0s");
    assert_eq!(body["result"]["custom_headers"], json!({}));
    let minimal = body["result"]["id"].as_str().unwrap().to_owned();

    // Get and list answer the same webhook in the envelope.
    let one = path(&format!("/{id}"));
    let (status, got) = send(req(&s, Method::GET, &one)).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["result"], *w);
    let (status, list) = send(req(&s, Method::GET, &path(""))).await;
    assert_eq!(status, 200, "{list}");
    let all = list["result"].as_array().unwrap();
    assert_eq!(all.len(), 2, "{list}");
    assert_eq!(all[0], *w);

    // Triggers: none at first; add, list, remove.
    let triggers = format!("{one}/triggers");
    let (status, t) = send(req(&s, Method::GET, &triggers)).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["result"], json!([]));
    for name in ["license.created", "license.revoked"] {
        let (status, b) = send(
            req(&s, Method::POST, &triggers)
                .json(&json!({"trigger_type": "event", "trigger_name": name})),
        )
        .await;
        assert_eq!(status, 201, "{b}");
    }
    let (_, t) = send(req(&s, Method::GET, &triggers)).await;
    assert_eq!(
        t["result"],
        json!([
            {"trigger_type": "event", "trigger_name": "license.created"},
            {"trigger_type": "event", "trigger_name": "license.revoked"},
        ])
    );
    let (status, _) = send(req(
        &s,
        Method::DELETE,
        &format!("{triggers}?trigger_type=event&trigger_name=license.created"),
    ))
    .await;
    assert_eq!(status, 204);
    let (_, t) = send(req(&s, Method::GET, &triggers)).await;
    assert_eq!(
        t["result"],
        json!([{"trigger_type": "event", "trigger_name": "license.revoked"}])
    );
    // The last trigger may go too: the webhook stays, called by nothing.
    let (status, _) = send(req(
        &s,
        Method::DELETE,
        &format!("{triggers}?trigger_type=event&trigger_name=license.revoked"),
    ))
    .await;
    assert_eq!(status, 204);
    let (_, t) = send(req(&s, Method::GET, &triggers)).await;
    assert_eq!(t["result"], json!([]));

    // PATCH changes the fields given; custom_headers replaces them.
    let (status, p) = send(req(&s, Method::PATCH, &one).json(&json!({
        "name": "renamed",
        "custom_headers": {"X-Other": ["v"]},
        "timeout": "20s",
    })))
    .await;
    assert_eq!(status, 200, "{p}");
    assert_webhook_shape(&p["result"]);
    assert_eq!(p["result"]["name"], "renamed");
    assert_eq!(p["result"]["description"], "Called on every login");
    assert_eq!(p["result"]["custom_headers"], json!({"X-Other": ["v"]}));
    assert_eq!(p["result"]["timeout"], "20s");
    assert_eq!(p["result"]["target_url"], w["target_url"]);

    // Delete: 204, then 404 in the envelope.
    let (status, _) = send(req(&s, Method::DELETE, &one)).await;
    assert_eq!(status, 204);
    let (status, err) = send(req(&s, Method::GET, &one)).await;
    assert_error(status, &err, 404, Some("not found"));
    let (status, err) = send(req(&s, Method::DELETE, &one)).await;
    assert_error(status, &err, 404, None);
    let (_, list) = send(req(&s, Method::GET, &path(""))).await;
    assert_eq!(list["result"][0]["id"], minimal.as_str());
}

#[tokio::test]
async fn seed_003_invalid_requests_are_400_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let good = json!({"name": "h", "target_url": "https://hooks.example.com/a"});
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    // URL rules (always, whatever --url-policy), timeout rules, types.
    for (body, field) in [
        (
            with("target_url", json!("http://hooks.example.com/a")),
            "target_url",
        ),
        (
            with("target_url", json!("https://localhost/a")),
            "target_url",
        ),
        (
            with("target_url", json!("https://127.0.0.1/a")),
            "target_url",
        ),
        (with("target_url", json!("https://[::1]/a")), "target_url"),
        (
            with("target_url", json!("https://hooks.example.com/a?x=1")),
            "target_url",
        ),
        (
            with("target_url", json!("https://hooks.example.com/a#f")),
            "target_url",
        ),
        (with("target_url", json!("https:///a")), "target_url"),
        (with("target_url", json!("hooks.example.com")), "target_url"),
        (with("target_url", json!(7)), "target_url"),
        (with("timeout", json!("-1s")), "timeout"),
        (with("timeout", json!("20.5s")), "timeout"),
        (with("timeout", json!("1m")), "timeout"),
        (with("timeout", json!("10")), "timeout"),
        (with("timeout", json!("ten seconds")), "timeout"),
        (with("timeout", json!(10)), "timeout"),
        (with("name", json!("")), "name"),
        (with("name", json!(["x"])), "name"),
        (
            with("custom_headers", json!({"X-A": "flat"})),
            "custom_headers",
        ),
        (
            with("custom_headers", json!({"bad header": ["v"]})),
            "custom_headers",
        ),
        (with("surprise", json!(true)), "surprise"),
        (json!({"target_url": "https://hooks.example.com/a"}), "name"),
        (json!({"name": "h"}), "target_url"),
    ] {
        let (status, err) = send(req(&s, Method::POST, &path("")).json(&body)).await;
        assert_error(status, &err, 400, Some(field));
    }
    let (status, err) = send(req(&s, Method::POST, &path("")).body("{not json")).await;
    assert_error(status, &err, 400, None);
    let (status, err) = send(req(&s, Method::POST, &path("")).body("[]")).await;
    assert_error(status, &err, 400, None);

    // Timeouts the document allows, shown as Go shows them.
    for (t, shown) in [("0s", "0s"), ("500ms", "500ms"), ("20s", "20s")] {
        let url = format!("https://hooks.example.com/t{}", t.len());
        let (status, b) = send(
            req(&s, Method::POST, &path(""))
                .json(&json!({"name": "t", "target_url": url, "timeout": t})),
        )
        .await;
        assert_eq!(status, 201, "{t}: {b}");
        assert_eq!(b["result"]["timeout"], shown);
    }

    // Consistency headers: the document's values, else 400 naming them.
    let (status, _) = send(
        req(&s, Method::GET, &path(""))
            .header("SlashID-Required-Consistency", "all_regions")
            .header("SlashID-Required-Consistency-Timeout", "120"),
    )
    .await;
    assert_eq!(status, 200);
    for (name, value) in [
        ("SlashID-Required-Consistency", "global"),
        ("SlashID-Required-Consistency", ""),
        ("SlashID-Required-Consistency-Timeout", "0"),
        ("SlashID-Required-Consistency-Timeout", "121"),
        ("SlashID-Required-Consistency-Timeout", "thirty"),
    ] {
        let (status, err) = send(req(&s, Method::GET, &path("")).header(name, value)).await;
        assert_error(status, &err, 400, Some(name));
    }

    // Unique per organization: the same URL again is refused.
    let (status, w) = send(req(&s, Method::POST, &path("")).json(&good)).await;
    assert_eq!(status, 201, "{w}");
    let (status, err) = send(req(&s, Method::POST, &path("")).json(&good)).await;
    assert_error(status, &err, 400, Some("target_url"));
    // ...but another organization may use it.
    let (status, _) =
        send(req_as(&s, MGMT_KEY, "org-b", Method::POST, &path("")).json(&good)).await;
    assert_eq!(status, 201);

    // PATCH and triggers: the same rules; a missing trigger is 404.
    let one = path(&format!("/{}", w["result"]["id"].as_str().unwrap()));
    for (body, field) in [
        (json!({"target_url": "https://10.0.0.1/x"}), "target_url"),
        (json!({"timeout": "21s"}), "timeout"),
        (json!({"timeout": null, "colour": 1}), "colour"),
    ] {
        let (status, err) = send(req(&s, Method::PATCH, &one).json(&body)).await;
        assert_error(status, &err, 400, Some(field));
    }
    let triggers = format!("{one}/triggers");
    for (body, field) in [
        (
            json!({"trigger_type": "event", "trigger_name": "no.such_type"}),
            "trigger_name",
        ),
        (
            json!({"trigger_type": "sync_hook", "trigger_name": "license.created"}),
            "trigger_type",
        ),
        (json!({"trigger_type": "event"}), "trigger_name"),
        (
            json!({"trigger_type": "event", "trigger_name": "license.created", "x": 1}),
            "x",
        ),
    ] {
        let (status, err) = send(req(&s, Method::POST, &triggers).json(&body)).await;
        assert_error(status, &err, 400, Some(field));
    }
    let (status, err) = send(req(&s, Method::DELETE, &triggers)).await;
    assert_error(status, &err, 400, Some("trigger_type"));
    let (status, err) = send(req(
        &s,
        Method::DELETE,
        &format!("{triggers}?trigger_type=event&trigger_name=license.created"),
    ))
    .await;
    assert_error(status, &err, 404, None);
    for p in [path("/abc"), path("/0"), path("/999999/triggers")] {
        let (status, err) = send(req(&s, Method::GET, &p)).await;
        assert_error(status, &err, 404, None);
    }
}

#[tokio::test]
async fn seed_003_auth_keys_organizations_and_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let body = json!({"name": "h", "target_url": "https://hooks.example.com/auth"});
    let (status, w) = send(req(&s, Method::POST, &path("")).json(&body)).await;
    assert_eq!(status, 201, "{w}");
    let one = path(&format!("/{}", w["result"]["id"].as_str().unwrap()));

    // No key, an unknown key: 401 in the envelope.
    let (status, err) = send(s.client.get(s.url(&path(""))).header("SlashID-OrgID", ORG)).await;
    assert_error(status, &err, 401, None);
    let (status, err) = send(req_as(&s, "nope", ORG, Method::GET, &path(""))).await;
    assert_error(status, &err, 401, None);
    // §2's bearer works as well.
    let (status, _) = send(
        s.client
            .get(s.url(&one))
            .header("SlashID-OrgID", ORG)
            .bearer_auth(MGMT_KEY),
    )
    .await;
    assert_eq!(status, 200);
    // The organization is required.
    let (status, err) = send(
        s.client
            .get(s.url(&path("")))
            .header("SlashID-API-Key", MGMT_KEY),
    )
    .await;
    assert_error(status, &err, 400, Some("SlashID-OrgID"));

    // Another organization's key: 404, whatever it asks.
    let other = s.api_key("org-b", &["admin"]).await;
    for (m, p) in [
        (Method::GET, path("")),
        (Method::GET, one.clone()),
        (Method::DELETE, one.clone()),
        (Method::GET, format!("{one}/triggers")),
    ] {
        let (status, err) = send(req_as(&s, &other, ORG, m, &p)).await;
        assert_error(status, &err, 404, None);
    }
    // In its own organization it sees none of ORG's webhooks.
    let (status, list) = send(req_as(&s, &other, "org-b", Method::GET, &path(""))).await;
    assert_eq!(status, 200);
    assert_eq!(list["result"], json!([]));
    let (status, err) = send(req_as(&s, &other, "org-b", Method::GET, &one)).await;
    assert_error(status, &err, 404, None);

    // Permissions: list, read, write.
    let read = s.api_key(ORG, &["webhooks:read"]).await;
    let list = s.api_key(ORG, &["webhooks:list"]).await;
    let write = s.api_key(ORG, &["webhooks:write"]).await;
    let triggers = format!("{one}/triggers");
    assert_eq!(send(req_as(&s, &read, ORG, Method::GET, &one)).await.0, 200);
    assert_eq!(
        send(req_as(&s, &read, ORG, Method::GET, &triggers)).await.0,
        200
    );
    assert_eq!(
        send(req_as(&s, &list, ORG, Method::GET, &path(""))).await.0,
        200
    );
    for (key, m, p) in [
        (&read, Method::GET, path("")),
        (&list, Method::GET, one.clone()),
        (&read, Method::POST, path("")),
        (&read, Method::PATCH, one.clone()),
        (&list, Method::DELETE, one.clone()),
        (&read, Method::POST, triggers.clone()),
    ] {
        let (status, err) = send(req_as(&s, key, ORG, m, &p).json(&json!({"name": "x"}))).await;
        assert_error(status, &err, 403, Some("permission"));
    }
    let (status, _) = send(
        req_as(&s, &write, ORG, Method::POST, &triggers)
            .json(&json!({"trigger_type": "event", "trigger_name": "license.created"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = send(req_as(&s, &write, ORG, Method::DELETE, &one)).await;
    assert_eq!(status, 204);

    // Repeated unknown keys: 429 in the envelope, with Retry-After (the
    // budget is 10 failures; "nope" above spent one).
    for _ in 0..9 {
        let (status, err) = send(req_as(&s, "wrong", ORG, Method::GET, &path(""))).await;
        assert_error(status, &err, 401, None);
    }
    let resp = req_as(&s, "wrong", ORG, Method::GET, &path(""))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"), "{resp:?}");
    let err: Value = resp.json().await.unwrap();
    assert_error(429, &err, 429, None);
}

#[tokio::test]
async fn seed_003_lists_carry_the_envelopes_pagination() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    for n in 0..2 {
        let (status, w) = send(
            req(&s, Method::POST, "/organizations/webhooks").json(&json!({
                "name": format!("w{n}"), "target_url": format!("https://hooks.example.test/{n}"),
            })),
        )
        .await;
        assert_eq!(status, 201, "{w}");
    }
    let (status, list) = send(req(&s, Method::GET, "/organizations/webhooks")).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["result"].as_array().unwrap().len(), 2, "{list}");
    assert_eq!(
        list["meta"]["pagination"],
        json!({"limit": 2, "offset": 0, "total_count": 2}),
        "{list}"
    );
}
