//! Tenants: which one a key acts on, X-Tenant-Id, and another tenant's
//! webhooks being 404.

use super::*;

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
