//! Seed 000's example, exactly as documented.

use crate::common::{MGMT_KEY, TestServer, send};
use serde_json::json;

#[tokio::test]
async fn seed_000_create_webhook_answers_201_with_documented_fields() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (status, body) = send(
        s.client
            .post(s.url("/management/webhooks"))
            .header("Authorization", format!("Bearer {MGMT_KEY}"))
            .header("Content-Type", "application/json")
            .body(
                r#"{
    "name": "audit-sync",
    "url": "https://example.com/hooks/license",
    "events": ["license.generated", "license.revoked"],
    "enabled": true
  }"#,
            ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(body["id"].is_number());
    assert_eq!(body["name"], "audit-sync");
    assert_eq!(body["url"], "https://example.com/hooks/license");
    assert_eq!(
        body["events"],
        json!(["license.generated", "license.revoked"])
    );
    assert_eq!(body["enabled"], true);
    for field in ["created_at", "updated_at"] {
        let ts = body[field].as_str().unwrap();
        assert!(
            ts.ends_with('Z')
                && time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
                    .is_ok(),
            "{field} = {ts}"
        );
    }
    assert!(body["secret"].as_str().unwrap().starts_with("whsec_"));
    for field in [
        "environment",
        "description",
        "headers",
        "timeout",
        "rate_limit",
        "retry_schedule",
        "failure_handling",
        "suspended",
        "suspended_at",
    ] {
        assert!(body.get(field).is_some(), "missing {field}");
    }
}

#[tokio::test]
async fn seed_000_errors_missing_or_wrong_key_is_401() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let body = json!({"name": "a", "url": "https://example.com/h", "events": ["license.revoked"]});
    let (status, problem) = send(s.client.post(s.url("/management/webhooks")).json(&body)).await;
    assert_eq!(status, 401);
    assert_eq!(problem["status"], 401);
    let (status, _) = send(
        s.req_as("wrong-key", reqwest::Method::POST, "/management/webhooks")
            .json(&body),
    )
    .await;
    assert_eq!(status, 401);
}
