//! Provisioned API keys: their lifecycle, permissions and validation.

use super::*;

#[tokio::test]
async fn api_key_lifecycle_create_shows_key_once_list_hides_it_delete_revokes_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let before = time::OffsetDateTime::now_utc() - time::Duration::seconds(5);
    let (status, created) = s
        .post(
            KEYS,
            json!({"name": "ci", "tenant": "default", "permissions": ["webhooks:read", "webhooks:list"]}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert!(created["id"].is_i64(), "{created}");
    assert_eq!(created["name"], "ci");
    assert_eq!(created["tenant"], "default");
    assert_eq!(
        created["permissions"],
        json!(["webhooks:read", "webhooks:list"])
    );
    let key = created["key"]
        .as_str()
        .expect("plaintext key in the create answer")
        .to_string();
    assert!(key.len() >= 32, "key too short to be random: {key}");
    let created_at = time::OffsetDateTime::parse(
        created["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(created_at >= before, "{created}");

    // The key works.
    let (status, list) = send(s.req_as(&key, Method::GET, HOOKS)).await;
    assert_eq!(status, 200, "{list}");

    // The list shows the key's metadata, never the key.
    let (status, keys) = s.get(KEYS).await;
    assert_eq!(status, 200, "{keys}");
    let entry = keys["data"]
        .as_array()
        .expect("list has data")
        .iter()
        .find(|k| k["id"] == created["id"])
        .unwrap_or_else(|| panic!("created key not listed: {keys}"))
        .clone();
    assert!(entry.get("key").is_none(), "list shows the key: {entry}");
    assert_eq!(entry["name"], "ci");
    assert_eq!(entry["tenant"], "default");
    assert_eq!(entry["permissions"], created["permissions"]);
    assert_eq!(entry["created_at"], created["created_at"]);
    assert!(
        !keys.to_string().contains(&key),
        "key leaked in list: {keys}"
    );

    // Revoking makes the key useless at once.
    let resp = s
        .req(Method::DELETE, &format!("{KEYS}/{}", created["id"]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let (status, ct, problem) = full(s.req_as(&key, Method::GET, HOOKS)).await;
    assert_problem(status, &ct, &problem, 401);
    let (_, keys) = s.get(KEYS).await;
    assert!(
        !keys["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == created["id"]),
        "revoked key still listed: {keys}"
    );
    let (status, ct, problem) =
        full(s.req(Method::DELETE, &format!("{KEYS}/{}", created["id"]))).await;
    assert_problem(status, &ct, &problem, 404);
    let (status, ct, problem) = full(s.req(Method::DELETE, &format!("{KEYS}/987654"))).await;
    assert_problem(status, &ct, &problem, 404);
}

#[tokio::test]
async fn every_documented_permission_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let all = [
        "webhooks:read",
        "webhooks:list",
        "webhooks:write",
        "events:publish",
        "deliveries:read",
        "deliveries:write",
        "admin",
    ];
    let created = provision(&s, "all", "default", &all).await;
    let mut got: Vec<String> = created["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    got.sort();
    let mut want: Vec<String> = all.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(got, want);
    // Two keys never share a plaintext.
    let other = provision(&s, "all", "default", &all).await;
    assert_ne!(created["key"], other["key"]);
}

#[tokio::test]
async fn invalid_api_key_requests_are_400_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let cases = [
        (
            json!({"name": "k", "tenant": "default", "permissions": ["webhooks:delete"]}),
            "permissions",
        ),
        (
            json!({"name": "k", "tenant": "default", "permissions": ["Admin"]}),
            "permissions",
        ),
        (
            json!({"name": "k", "tenant": "default", "permissions": ["admin", "root"]}),
            "permissions",
        ),
        (
            json!({"name": "k", "tenant": "default", "permissions": []}),
            "permissions",
        ),
        (
            json!({"name": "k", "tenant": "default", "permissions": "admin"}),
            "permissions",
        ),
        (json!({"name": "k", "tenant": "default"}), "permissions"),
        (
            json!({"tenant": "default", "permissions": ["admin"]}),
            "name",
        ),
        (
            json!({"name": "", "tenant": "default", "permissions": ["admin"]}),
            "name",
        ),
        (
            json!({"name": "k", "tenant": "a b", "permissions": ["admin"]}),
            "tenant",
        ),
        (
            json!({"name": "k", "tenant": "", "permissions": ["admin"]}),
            "tenant",
        ),
        (
            json!({"name": "k", "tenant": "x".repeat(65), "permissions": ["admin"]}),
            "tenant",
        ),
        (
            json!({"name": "k", "tenant": "default", "permissions": ["admin"], "expires": 1}),
            "expires",
        ),
    ];
    for (body, field) in cases {
        let (status, ct, problem) = full(s.req(Method::POST, KEYS).json(&body)).await;
        assert_problem(status, &ct, &problem, 400);
        assert_field_error(status, &problem, field);
    }
    let (status, problem) = s
        .post(
            KEYS,
            json!({"name": "k", "tenant": "default", "permissions": ["webhooks:delete"]}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        problem.to_string().contains("webhooks:delete"),
        "the bad permission is not named: {problem}"
    );
    let (_, keys) = s.get(KEYS).await;
    assert_eq!(keys["data"], json!([]), "{keys}");
}
