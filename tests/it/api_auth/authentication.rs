//! Who may call at all: missing, wrong and malformed keys are 401; the open
//! routes; the bootstrap management keys (generated, reused, configured).

use super::*;

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
