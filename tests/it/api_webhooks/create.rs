//! Creating webhooks: what the answer echoes, defaults, the secret shown
//! once, URLs unique per tenant, concurrent creates.

use super::*;

#[tokio::test]
async fn create_with_every_optional_field_echoes_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let body = json!({
        "name": "billing",
        "url": "https://example.com/hooks/billing",
        "events": ["license.generated", "license.validated"],
        "enabled": false,
        "environment": "staging",
        "description": "billing sync",
        "headers": {"X-Api-Key": ["abc"], "X-Multi": ["1", "2"]},
        "timeout": "5s",
        "rate_limit": 7,
        "retry_schedule": ["5s", "1m"],
        "failure_handling": {"min_failures": 3, "suspend_after": "1h"}
    });
    let (status, w) = s.post(HOOKS, body).await;
    assert_eq!(status, 201, "{w}");
    assert!(w["id"].is_i64(), "{w}");
    assert_eq!(w["name"], "billing");
    assert_eq!(w["url"], "https://example.com/hooks/billing");
    assert_eq!(
        w["events"],
        json!(["license.generated", "license.validated"])
    );
    assert_eq!(w["enabled"], false);
    assert_eq!(w["environment"], "staging");
    assert_eq!(w["description"], "billing sync");
    assert_eq!(
        w["headers"],
        json!({"X-Api-Key": ["abc"], "X-Multi": ["1", "2"]})
    );
    assert_eq!(w["timeout"], "5s");
    assert_eq!(w["rate_limit"], 7);
    assert_eq!(w["retry_schedule"], json!(["5s", "1m"]));
    assert_eq!(
        w["failure_handling"],
        json!({"min_failures": 3, "suspend_after": "1h"})
    );
    assert_eq!(w["suspended"], false);
    assert!(w["suspended_at"].is_null(), "{w}");
    assert_whsec(&w["secret"]);
    let created = parse_ts(w["created_at"].as_str().unwrap());
    let updated = parse_ts(w["updated_at"].as_str().unwrap());
    assert!(w["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(updated >= created);

    // GET shows the same webhook, without the secret.
    let id = w["id"].as_i64().unwrap();
    let (status, got) = s.get(&format!("{HOOKS}/{id}")).await;
    assert_eq!(status, 200, "{got}");
    let mut expected = w.clone();
    expected.as_object_mut().unwrap().remove("secret");
    assert_eq!(got, expected);
}

#[tokio::test]
async fn create_without_optional_fields_uses_documented_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let w = s
        .create_webhook("https://example.com/defaults", json!({}))
        .await;
    assert_eq!(w["enabled"], true);
    assert_eq!(w["environment"], "production");
    assert!(w["description"].is_null(), "{w}");
    assert_eq!(w["headers"], json!({}));
    assert_eq!(w["suspended"], false);
    assert!(w["suspended_at"].is_null());
    assert!(w["rate_limit"].is_null());
    assert_whsec(&w["secret"]);
}

#[tokio::test]
async fn retry_schedule_empty_list_means_a_single_attempt_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let w = s
        .create_webhook("https://example.com/once", json!({"retry_schedule": []}))
        .await;
    assert_eq!(w["retry_schedule"], json!([]), "{w}");
}

#[tokio::test]
async fn secret_is_in_the_create_answer_only_never_in_get_list_patch_or_unsuspend() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let w = s
        .create_webhook("https://example.com/secret", json!({}))
        .await;
    let secret = assert_whsec(&w["secret"]);
    let id = w["id"].as_i64().unwrap();

    let (_, got) = s.get(&format!("{HOOKS}/{id}")).await;
    assert!(got.get("secret").is_none(), "GET shows the secret: {got}");
    let (_, list) = s.get(HOOKS).await;
    assert!(
        list["data"][0].get("secret").is_none(),
        "list shows the secret: {list}"
    );
    let (_, patched) = s
        .patch(&format!("{HOOKS}/{id}"), json!({"name": "renamed"}))
        .await;
    assert!(
        patched.get("secret").is_none(),
        "PATCH shows the secret: {patched}"
    );
    let (_, unsuspended) = s.post(&format!("{HOOKS}/{id}/unsuspend"), json!({})).await;
    assert!(unsuspended.get("secret").is_none(), "{unsuspended}");
    for body in [got, list, patched, unsuspended] {
        assert!(!body.to_string().contains(&secret), "secret leaked: {body}");
    }
}

#[tokio::test]
async fn duplicate_url_in_same_tenant_is_400_naming_url() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    s.create_webhook("https://example.com/dup", json!({})).await;
    let (status, ct, problem) = full(s.req(Method::POST, HOOKS).json(&with(
        hook("https://example.com/dup"),
        "name",
        json!("other"),
    )))
    .await;
    assert_problem(status, &ct, &problem, 400);
    assert_field_error(status, &problem, "url");
    let (_, list) = s.get(HOOKS).await;
    assert_eq!(list["total"], 1, "{list}");
}

#[tokio::test]
async fn same_url_is_allowed_in_another_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let a = s
        .create_webhook("https://example.com/shared", json!({}))
        .await;
    let (status, b) = send(
        s.req(Method::POST, HOOKS)
            .header("X-Tenant-Id", "tenant-b")
            .json(&hook("https://example.com/shared")),
    )
    .await;
    assert_eq!(status, 201, "{b}");
    assert_ne!(a["id"], b["id"]);
}

#[tokio::test]
async fn url_of_a_deleted_webhook_can_be_used_again() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let w = s
        .create_webhook("https://example.com/reuse", json!({}))
        .await;
    let (status, _) = s.delete(&format!("{HOOKS}/{}", w["id"])).await;
    assert_eq!(status, 204);
    s.create_webhook("https://example.com/reuse", json!({}))
        .await;
}

#[tokio::test]
async fn concurrent_creates_with_the_same_url_make_exactly_one_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let requests = (0..12).map(|i| {
        s.post(
            HOOKS,
            with(
                hook("https://example.com/race"),
                "name",
                json!(format!("racer {i}")),
            ),
        )
    });
    let answers = futures::future::join_all(requests).await;
    let created = answers.iter().filter(|(status, _)| *status == 201).count();
    assert_eq!(created, 1, "{answers:?}");
    for (status, body) in &answers {
        if *status != 201 {
            assert_field_error(*status, body, "url");
        }
    }
    let (_, list) = s.get(HOOKS).await;
    assert_eq!(list["total"], 1, "{list}");
}
