//! What each permission allows, and the 403 for the rest.

use super::*;

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
