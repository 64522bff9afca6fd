//! §2: authentication, provisioned API keys, permissions and tenants.

use crate::common::{assert_problem, full};

use crate::common::{MGMT_KEY, ServerConfig, TestServer, assert_field_error, send};
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde_json::{Value, json};

const HOOKS: &str = "/management/webhooks";
const KEYS: &str = "/management/api-keys";

fn hook(url: &str) -> Value {
    json!({"name": "hook", "url": url, "events": ["license.created"]})
}

/// A request as `key`, with an optional X-Tenant-Id.
fn as_key(
    s: &TestServer,
    key: &str,
    method: Method,
    path: &str,
    tenant: Option<&str>,
) -> reqwest::RequestBuilder {
    let rb = s.req_as(key, method, path);
    match tenant {
        Some(t) => rb.header("X-Tenant-Id", t),
        None => rb,
    }
}

/// Provisions a key through the API and returns the whole answer.
async fn provision(s: &TestServer, name: &str, tenant: &str, permissions: &[&str]) -> Value {
    let (status, body) = s
        .post(
            KEYS,
            json!({"name": name, "tenant": tenant, "permissions": permissions}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

#[cfg(unix)]
fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

// ---------------------------------------------------------------- 401

#[tokio::test]
async fn missing_key_is_401_problem_json_on_every_management_route() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let w = s.create_webhook("https://example.com/a", json!({})).await;
    let id = w["id"].as_i64().unwrap();
    for (method, path) in [
        (Method::GET, HOOKS.to_string()),
        (Method::POST, HOOKS.to_string()),
        (Method::GET, format!("{HOOKS}/{id}")),
        (Method::PATCH, format!("{HOOKS}/{id}")),
        (Method::DELETE, format!("{HOOKS}/{id}")),
        (Method::GET, format!("{HOOKS}/{id}/secret")),
        (Method::POST, format!("{HOOKS}/{id}/secret/rotate")),
        (Method::POST, format!("{HOOKS}/{id}/unsuspend")),
        (Method::GET, "/management/event-types".to_string()),
        (Method::POST, "/management/event-types".to_string()),
        (
            Method::DELETE,
            "/management/event-types/license.created".to_string(),
        ),
        (Method::GET, KEYS.to_string()),
        (Method::POST, KEYS.to_string()),
        (Method::DELETE, format!("{KEYS}/1")),
    ] {
        let (status, ct, problem) = full(
            s.client
                .request(method.clone(), s.url(&path))
                .json(&hook("https://example.com/b")),
        )
        .await;
        assert_eq!(status, 401, "{method} {path}");
        assert_problem(status, &ct, &problem, 401);
    }
    // Nothing was changed by the unauthenticated requests.
    let (status, got) = s.get(&format!("{HOOKS}/{id}")).await;
    assert_eq!(status, 200, "{got}");
    let (_, sec) = s.get(&format!("{HOOKS}/{id}/secret")).await;
    assert_eq!(sec["secret"], w["secret"]);
    let (_, list) = s.get(HOOKS).await;
    assert_eq!(list["total"], 1);
}

#[tokio::test]
async fn wrong_key_is_401_problem_json() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    for key in [
        "wrong-key",
        &format!("{MGMT_KEY}x"),
        &MGMT_KEY[..MGMT_KEY.len() - 1],
        &MGMT_KEY.to_uppercase(),
        "hk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let (status, ct, problem) = full(s.req_as(key, Method::GET, HOOKS)).await;
        assert_problem(status, &ct, &problem, 401);
    }
}

#[tokio::test]
async fn malformed_authorization_headers_are_401_problem_json() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let values: Vec<HeaderValue> = vec![
        HeaderValue::from_static("Bearer"),
        HeaderValue::from_static("Bearer "),
        HeaderValue::from_str(MGMT_KEY).unwrap(),
        HeaderValue::from_str(&format!("Basic {MGMT_KEY}")).unwrap(),
        HeaderValue::from_str(&format!("Token {MGMT_KEY}")).unwrap(),
        HeaderValue::from_str(&format!("Bearer{MGMT_KEY}")).unwrap(),
        HeaderValue::from_str(&format!("Bearer {MGMT_KEY} extra")).unwrap(),
        HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
        HeaderValue::from_static(""),
    ];
    for v in values {
        let shown = format!("{v:?}");
        let (status, ct, problem) = full(s.client.get(s.url(HOOKS)).header(AUTHORIZATION, v)).await;
        assert_eq!(status, 401, "Authorization {shown}: {status} {problem}");
        assert_problem(status, &ct, &problem, 401);
    }
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let (status, body) = send(
            s.client
                .get(s.url(HOOKS))
                .header(AUTHORIZATION, format!("{scheme} {MGMT_KEY}")),
        )
        .await;
        assert_eq!(status, 200, "{scheme}: {body}");
    }
}

#[tokio::test]
async fn health_and_openapi_need_no_key() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    for path in ["/healthz", "/readyz", "/openapi.json"] {
        let resp = s.client.get(s.url(path)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
    }
}

// ---------------------------------------------------------------- API keys

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

// ---------------------------------------------------------------- 403

#[tokio::test]
async fn read_only_key_can_read_but_not_write_list_or_see_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let w = s.create_webhook("https://example.com/r", json!({})).await;
    let id = w["id"].as_i64().unwrap();
    let key = s.api_key("default", &["webhooks:read"]).await;

    let (status, got) = send(s.req_as(&key, Method::GET, &format!("{HOOKS}/{id}"))).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["id"], id);

    let forbidden = [
        (
            Method::POST,
            HOOKS.to_string(),
            Some(hook("https://example.com/new")),
        ),
        (Method::GET, HOOKS.to_string(), None),
        (
            Method::PATCH,
            format!("{HOOKS}/{id}"),
            Some(json!({"name": "x"})),
        ),
        (Method::DELETE, format!("{HOOKS}/{id}"), None),
        (Method::GET, format!("{HOOKS}/{id}/secret"), None),
        (Method::POST, format!("{HOOKS}/{id}/secret/rotate"), None),
        (Method::POST, format!("{HOOKS}/{id}/unsuspend"), None),
        (
            Method::POST,
            "/management/event-types".to_string(),
            Some(json!({"name": "invoice.paid"})),
        ),
        (
            Method::DELETE,
            "/management/event-types/license.created".to_string(),
            None,
        ),
        (Method::GET, KEYS.to_string(), None),
        (
            Method::POST,
            KEYS.to_string(),
            Some(json!({"name": "x", "tenant": "default", "permissions": ["admin"]})),
        ),
    ];
    for (method, path, body) in forbidden {
        let mut rb = s.req_as(&key, method.clone(), &path);
        if let Some(b) = &body {
            rb = rb.json(b);
        }
        let (status, ct, problem) = full(rb).await;
        assert_eq!(status, 403, "{method} {path}: {status} {problem}");
        assert_problem(status, &ct, &problem, 403);
    }
    // Nothing changed.
    let (_, after) = s.get(&format!("{HOOKS}/{id}")).await;
    assert_eq!(after["name"], w["name"]);
    let (_, sec) = s.get(&format!("{HOOKS}/{id}/secret")).await;
    assert_eq!(sec["secret"], w["secret"]);
    let (_, list) = s.get(HOOKS).await;
    assert_eq!(list["total"], 1);
}

#[tokio::test]
async fn listing_webhooks_needs_webhooks_list() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let w = s.create_webhook("https://example.com/l", json!({})).await;
    let lister = s.api_key("default", &["webhooks:list"]).await;
    let (status, list) = send(s.req_as(&lister, Method::GET, HOOKS)).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["total"], 1);
    assert_eq!(list["data"][0]["id"], w["id"]);
    for perms in [
        &["webhooks:read"][..],
        &["webhooks:write"],
        &["events:publish"],
        &["deliveries:read"],
    ] {
        let key = s.api_key("default", perms).await;
        let (status, ct, problem) = full(s.req_as(&key, Method::GET, HOOKS)).await;
        assert_eq!(status, 403, "{perms:?}: {problem}");
        assert_problem(status, &ct, &problem, 403);
    }
}

#[tokio::test]
async fn write_key_manages_webhooks_and_their_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let key = s.api_key("default", &["webhooks:write"]).await;
    let (status, w) = send(
        s.req_as(&key, Method::POST, HOOKS)
            .json(&hook("https://example.com/w")),
    )
    .await;
    assert_eq!(status, 201, "{w}");
    let id = w["id"].as_i64().unwrap();
    let (status, p) = send(
        s.req_as(&key, Method::PATCH, &format!("{HOOKS}/{id}"))
            .json(&json!({"name": "renamed"})),
    )
    .await;
    assert_eq!(status, 200, "{p}");
    let (status, sec) = send(s.req_as(&key, Method::GET, &format!("{HOOKS}/{id}/secret"))).await;
    assert_eq!(status, 200, "{sec}");
    assert_eq!(sec["secret"], w["secret"]);
    let (status, r) =
        send(s.req_as(&key, Method::POST, &format!("{HOOKS}/{id}/secret/rotate"))).await;
    assert_eq!(status, 200, "{r}");
    let (status, u) = send(s.req_as(&key, Method::POST, &format!("{HOOKS}/{id}/unsuspend"))).await;
    assert_eq!(status, 200, "{u}");
    let (status, _) = send(s.req_as(&key, Method::DELETE, &format!("{HOOKS}/{id}"))).await;
    assert_eq!(status, 204);
    // It is no admin.
    let (status, _) = send(s.req_as(&key, Method::GET, KEYS)).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn publish_and_delivery_keys_cannot_touch_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let w = s.create_webhook("https://example.com/p", json!({})).await;
    let id = w["id"].as_i64().unwrap();
    for perms in [
        &["events:publish"][..],
        &["deliveries:read", "deliveries:write"],
    ] {
        let key = s.api_key("default", perms).await;
        for (method, path) in [
            (Method::GET, format!("{HOOKS}/{id}")),
            (Method::POST, HOOKS.to_string()),
            (Method::GET, format!("{HOOKS}/{id}/secret")),
            (Method::DELETE, format!("{HOOKS}/{id}")),
        ] {
            let (status, ct, problem) = full(
                s.req_as(&key, method.clone(), &path)
                    .json(&hook("https://example.com/q")),
            )
            .await;
            assert_eq!(status, 403, "{perms:?} {method} {path}: {problem}");
            assert_problem(status, &ct, &problem, 403);
        }
    }
}

#[tokio::test]
async fn non_admin_provisioned_key_cannot_use_api_keys_routes() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let victim = provision(&s, "victim", "default", &["webhooks:read"]).await;
    let all_but_admin = [
        "webhooks:read",
        "webhooks:list",
        "webhooks:write",
        "events:publish",
        "deliveries:read",
        "deliveries:write",
    ];
    let key = s.api_key("default", &all_but_admin).await;
    let (status, ct, problem) = full(s.req_as(&key, Method::GET, KEYS)).await;
    assert_problem(status, &ct, &problem, 403);
    let (status, ct, problem) = full(
        s.req_as(&key, Method::POST, KEYS)
            .json(&json!({"name": "escalate", "tenant": "default", "permissions": ["admin"]})),
    )
    .await;
    assert_problem(status, &ct, &problem, 403);
    let (status, ct, problem) =
        full(s.req_as(&key, Method::DELETE, &format!("{KEYS}/{}", victim["id"]))).await;
    assert_problem(status, &ct, &problem, 403);
    // The victim key still works.
    let victim_key = victim["key"].as_str().unwrap();
    let (status, _) = send(s.req_as(victim_key, Method::GET, "/management/event-types")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn tenant_admin_key_manages_keys_of_its_own_tenant_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let foreign = provision(&s, "foreign", "tenant-b", &["webhooks:read"]).await;
    let admin = s.api_key("tenant-a", &["admin"]).await;

    // Own tenant: allowed.
    let (status, own) = send(
        s.req_as(&admin, Method::POST, KEYS)
            .json(&json!({"name": "own", "tenant": "tenant-a", "permissions": ["webhooks:read"]})),
    )
    .await;
    assert_eq!(status, 201, "{own}");
    assert_eq!(own["tenant"], "tenant-a");

    // Another tenant: refused, and nothing created there.
    let (status, ct, problem) = full(
        s.req_as(&admin, Method::POST, KEYS)
            .json(&json!({"name": "x", "tenant": "tenant-b", "permissions": ["admin"]})),
    )
    .await;
    assert!(status == 403 || status == 404, "{status} {problem}");
    assert_problem(status, &ct, &problem, status);

    // Its list holds its tenant's keys only.
    let (status, keys) = send(s.req_as(&admin, Method::GET, KEYS)).await;
    assert_eq!(status, 200, "{keys}");
    for k in keys["data"].as_array().unwrap() {
        assert_eq!(k["tenant"], "tenant-a", "{keys}");
    }
    // Another tenant's key is not there to revoke.
    let (status, ct, problem) =
        full(s.req_as(&admin, Method::DELETE, &format!("{KEYS}/{}", foreign["id"]))).await;
    assert_problem(status, &ct, &problem, 404);
    let (status, ct, problem) = full(
        s.req(Method::DELETE, &format!("{KEYS}/{}", foreign["id"]))
            .header("X-Tenant-Id", "tenant-a"),
    )
    .await;
    assert_problem(status, &ct, &problem, 404);
    let foreign_key = foreign["key"].as_str().unwrap();
    let (status, _) = send(s.req_as(foreign_key, Method::GET, "/management/event-types")).await;
    assert_eq!(status, 200, "the foreign key was revoked by another tenant");

    // The bootstrap key lists the keys of the tenant it acts on.
    let (_, b_keys) = send(s.req(Method::GET, KEYS).header("X-Tenant-Id", "tenant-b")).await;
    let b_ids: Vec<&Value> = b_keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| &k["id"])
        .collect();
    assert_eq!(b_ids, vec![&foreign["id"]], "{b_keys}");
}

// ---------------------------------------------------------------- tenants

#[tokio::test]
async fn provisioned_key_acts_on_its_own_tenant_whatever_x_tenant_id_says() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let key = s
        .api_key(
            "acme",
            &["webhooks:read", "webhooks:list", "webhooks:write"],
        )
        .await;
    let (status, w) = send(
        as_key(&s, &key, Method::POST, HOOKS, Some("default"))
            .json(&hook("https://example.com/acme")),
    )
    .await;
    assert_eq!(status, 201, "{w}");
    let id = w["id"].as_i64().unwrap();

    // It landed in acme, not in default.
    let (_, default_list) = s.get(HOOKS).await;
    assert_eq!(default_list["total"], 0, "{default_list}");
    let (status, _) = s.get(&format!("{HOOKS}/{id}")).await;
    assert_eq!(status, 404);
    let (status, got) = send(
        s.req(Method::GET, &format!("{HOOKS}/{id}"))
            .header("X-Tenant-Id", "acme"),
    )
    .await;
    assert_eq!(status, 200, "{got}");

    // The key sees its own webhook whatever header it sends, even an invalid one.
    for tenant in [Some("default"), Some("other"), Some("a b"), None] {
        let (status, list) = send(as_key(&s, &key, Method::GET, HOOKS, tenant)).await;
        assert_eq!(status, 200, "{tenant:?}: {list}");
        assert_eq!(list["total"], 1, "{tenant:?}: {list}");
        assert_eq!(list["data"][0]["id"], id);
    }

    // A default-tenant webhook stays out of its reach, header or not.
    let d = s
        .create_webhook("https://example.com/default", json!({}))
        .await;
    let (status, _) = send(as_key(
        &s,
        &key,
        Method::GET,
        &format!("{HOOKS}/{}", d["id"]),
        Some("default"),
    ))
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn bootstrap_key_without_x_tenant_id_acts_on_default() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let w = s.create_webhook("https://example.com/d", json!({})).await;
    let (status, got) = send(
        s.req(Method::GET, &format!("{HOOKS}/{}", w["id"]))
            .header("X-Tenant-Id", "default"),
    )
    .await;
    assert_eq!(status, 200, "{got}");
    let (status, _) = send(
        s.req(Method::GET, &format!("{HOOKS}/{}", w["id"]))
            .header("X-Tenant-Id", "elsewhere"),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn another_tenants_webhook_is_404_for_every_operation() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (status, a) = send(
        s.req(Method::POST, HOOKS)
            .header("X-Tenant-Id", "tenant-a")
            .json(&json!({"name": "a", "url": "https://example.com/a", "events": ["license.*"]})),
    )
    .await;
    assert_eq!(status, 201, "{a}");
    let id = a["id"].as_i64().unwrap();
    let b_key = s.api_key("tenant-b", &["admin"]).await;

    // As tenant B's admin key, and as the bootstrap key acting on tenant B.
    let callers: [(&str, Option<&str>); 3] = [
        (&b_key, None),
        (&b_key, Some("tenant-a")),
        (MGMT_KEY, Some("tenant-b")),
    ];
    for (key, tenant) in callers {
        for (method, path, body) in [
            (Method::GET, format!("{HOOKS}/{id}"), None),
            (
                Method::PATCH,
                format!("{HOOKS}/{id}"),
                Some(json!({"name": "hijacked"})),
            ),
            (Method::GET, format!("{HOOKS}/{id}/secret"), None),
            (Method::POST, format!("{HOOKS}/{id}/secret/rotate"), None),
            (Method::POST, format!("{HOOKS}/{id}/unsuspend"), None),
            (Method::DELETE, format!("{HOOKS}/{id}"), None),
        ] {
            let mut rb = as_key(&s, key, method.clone(), &path, tenant);
            if let Some(b) = &body {
                rb = rb.json(b);
            }
            let (status, ct, problem) = full(rb).await;
            assert_eq!(
                status, 404,
                "{method} {path} as {tenant:?}: {status} {problem}"
            );
            assert_problem(status, &ct, &problem, 404);
            assert!(!problem.to_string().contains("whsec_"), "{problem}");
        }
        let (status, list) = send(as_key(&s, key, Method::GET, HOOKS, tenant)).await;
        assert_eq!(status, 200, "{list}");
        assert_eq!(list["total"], 0, "tenant A's webhook in B's list: {list}");
        let (_, filtered) = send(as_key(
            &s,
            key,
            Method::GET,
            &format!("{HOOKS}?q=example"),
            tenant,
        ))
        .await;
        assert_eq!(filtered["total"], 0, "{filtered}");
    }

    // Tenant A's webhook is untouched.
    let as_a = |m: Method, p: &str| s.req(m, p).header("X-Tenant-Id", "tenant-a");
    let (status, got) = send(as_a(Method::GET, &format!("{HOOKS}/{id}"))).await;
    assert_eq!(status, 200, "deleted by another tenant: {got}");
    assert_eq!(got["name"], "a");
    let (_, sec) = send(as_a(Method::GET, &format!("{HOOKS}/{id}/secret"))).await;
    assert_eq!(sec["secret"], a["secret"], "rotated by another tenant");
    assert!(sec["previous_secret_expires_at"].is_null(), "{sec}");

    // And B can use the same URL for its own webhook.
    let (status, b) = send(
        s.req_as(&b_key, Method::POST, HOOKS)
            .json(&json!({"name": "b", "url": "https://example.com/a", "events": ["license.*"]})),
    )
    .await;
    assert_eq!(status, 201, "{b}");
}

#[tokio::test]
async fn invalid_x_tenant_id_is_400_problem_json() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let long = "t".repeat(65);
    let values = vec![
        HeaderValue::from_static("a b"),
        HeaderValue::from_static("ten/ant"),
        HeaderValue::from_static("tenant;drop"),
        HeaderValue::from_str(&long).unwrap(),
        HeaderValue::from_bytes("ténant".as_bytes()).unwrap(),
    ];
    for v in values {
        let shown = format!("{v:?}");
        let (status, ct, problem) =
            full(s.req(Method::GET, HOOKS).header("X-Tenant-Id", v.clone())).await;
        assert_eq!(status, 400, "X-Tenant-Id {shown}: {problem}");
        assert_problem(status, &ct, &problem, 400);
        let (status, _, _) = full(
            s.req(Method::POST, HOOKS)
                .header("X-Tenant-Id", v)
                .json(&hook("https://example.com/t")),
        )
        .await;
        assert_eq!(status, 400, "POST with X-Tenant-Id {shown}");
    }
    let (_, list) = s.get(HOOKS).await;
    assert_eq!(list["total"], 0);
    // 64 characters of the allowed set is fine.
    let ok = format!("{}.A_9-", "t".repeat(59));
    let (status, body) = send(s.req(Method::GET, HOOKS).header("X-Tenant-Id", ok)).await;
    assert_eq!(status, 200, "{body}");
}

// ---------------------------------------------------------------- bootstrap keys

#[tokio::test]
async fn without_a_configured_key_one_is_generated_into_a_private_file_and_never_logged() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = ServerConfig::new(dir.path())
        .no_management_key()
        .start()
        .await;
    let path = dir.path().join("management_api_key");
    assert!(path.exists(), "no key file at {}", path.display());
    #[cfg(unix)]
    assert_eq!(mode_of(&path), 0o600, "key file mode");
    let key = std::fs::read_to_string(&path).unwrap().trim().to_string();
    assert!(
        key.len() >= 24,
        "generated key too short: {} chars",
        key.len()
    );

    let (status, list) = send(s.req_as(&key, Method::GET, HOOKS)).await;
    assert_eq!(status, 200, "{list}");
    let (status, _) = send(s.req_as(MGMT_KEY, Method::GET, HOOKS)).await;
    assert_eq!(status, 401, "the unconfigured test key works");

    let log = s.log();
    assert!(
        !log.contains(&key),
        "the log contains the generated key:\n{log}"
    );
    assert!(
        log.contains("management_api_key"),
        "the log does not name the key file:\n{log}"
    );
    s.terminate();
    let log = s.log();
    assert!(
        !log.contains(&key),
        "the log contains the generated key:\n{log}"
    );
}

#[tokio::test]
async fn restarting_on_the_same_dir_reuses_the_generated_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = ServerConfig::new(dir.path())
        .no_management_key()
        .start()
        .await;
    let path = dir.path().join("management_api_key");
    let key = std::fs::read_to_string(&path).unwrap().trim().to_string();
    let (status, w) = send(
        first
            .req_as(&key, Method::POST, HOOKS)
            .json(&hook("https://example.com/restart")),
    )
    .await;
    assert_eq!(status, 201, "{w}");
    first.terminate();

    let second = ServerConfig::new(dir.path())
        .no_management_key()
        .start()
        .await;
    let again = std::fs::read_to_string(&path).unwrap().trim().to_string();
    assert_eq!(again, key, "the key file was rewritten");
    let (status, list) = send(second.req_as(&key, Method::GET, HOOKS)).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["total"], 1, "{list}");
    #[cfg(unix)]
    assert_eq!(mode_of(&path), 0o600);
    assert!(!second.log().contains(&key), "the log contains the key");
}

#[tokio::test]
async fn configured_key_means_no_key_file_is_generated() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (status, _) = s.get(HOOKS).await;
    assert_eq!(status, 200);
    assert!(!dir.path().join("management_api_key").exists());
}

#[tokio::test]
async fn management_api_keys_takes_several_comma_separated_keys() {
    let dir = tempfile::tempdir().unwrap();
    let k1 = "first_bootstrap_key_0123456789";
    let k2 = "second_bootstrap_key_9876543210";
    let s = ServerConfig::new(dir.path())
        .no_management_key()
        .env("MANAGEMENT_API_KEYS", &format!("{k1}, {k2}"))
        .start()
        .await;
    for key in [k1, k2] {
        let (status, body) = send(s.req_as(key, Method::GET, HOOKS)).await;
        assert_eq!(status, 200, "{key}: {body}");
        let (status, body) = send(
            s.req_as(key, Method::POST, KEYS)
                .json(&json!({"name": "k", "tenant": "default", "permissions": ["admin"]})),
        )
        .await;
        assert_eq!(status, 201, "{key} is not an admin: {body}");
    }
    for bad in [
        &format!("{k1},{k2}")[..],
        &format!("{k1}, {k2}"),
        MGMT_KEY,
        "",
        " ",
    ] {
        let (status, _) = send(s.req_as(bad, Method::GET, HOOKS)).await;
        assert_eq!(status, 401, "{bad:?} accepted");
    }
    assert!(!dir.path().join("management_api_key").exists());
    let log = s.log();
    assert!(
        !log.contains(k1) && !log.contains(k2),
        "a bootstrap key is in the log:\n{log}"
    );
}

#[tokio::test]
async fn bootstrap_key_provisions_keys_for_the_tenant_named_in_the_body() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (status, created) = send(
        s.req(Method::POST, KEYS)
            .header("X-Tenant-Id", "header-tenant")
            .json(
                &json!({"name": "k", "tenant": "body-tenant", "permissions": ["webhooks:write"]}),
            ),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["tenant"], "body-tenant");
    let key = created["key"].as_str().unwrap();
    let (status, w) = send(
        s.req_as(key, Method::POST, HOOKS)
            .json(&hook("https://example.com/bt")),
    )
    .await;
    assert_eq!(status, 201, "{w}");
    let (status, _) = send(
        s.req(Method::GET, &format!("{HOOKS}/{}", w["id"]))
            .header("X-Tenant-Id", "body-tenant"),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = send(
        s.req(Method::GET, &format!("{HOOKS}/{}", w["id"]))
            .header("X-Tenant-Id", "header-tenant"),
    )
    .await;
    assert_eq!(status, 404);
}
