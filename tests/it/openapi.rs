//! §9: the OpenAPI document, health endpoints, unknown routes, and logs
//! that are structured and free of secrets.

use crate::common::{assert_problem, full};

use crate::common::{MGMT_KEY, ServerConfig, TestServer, send};
use reqwest::Method;
use serde_json::{Value, json};

const HOOKS: &str = "/management/webhooks";
const HEADER_VALUE: &str = "super-secret-header-value";

/// Every `$ref` string anywhere in `v`.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref"
                    && let Some(s) = x.as_str()
                {
                    out.push(s.to_string());
                }
                refs(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[tokio::test]
async fn openapi_json_needs_no_key_and_is_an_openapi_3_document() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let resp = s.client.get(s.url("/openapi.json")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let ct = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(ct.starts_with("application/json"), "content type {ct:?}");
    let text = resp.text().await.unwrap();
    let doc: Value = serde_json::from_str(&text).expect("openapi.json is JSON");
    let version = doc["openapi"].as_str().expect("openapi field");
    assert!(version.starts_with("3."), "openapi = {version}");
    assert!(doc["info"]["title"].is_string(), "no info.title");
    assert!(doc["info"]["version"].is_string(), "no info.version");
    assert!(doc["paths"].is_object(), "no paths");

    // Every reference resolves.
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external $ref {r}"));
        assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
    }
}

#[tokio::test]
async fn openapi_paths_contain_every_management_and_operations_route() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (status, doc) = send(s.client.get(s.url("/openapi.json"))).await;
    assert_eq!(status, 200);
    let paths = doc["paths"].as_object().expect("paths");
    let expected: &[(&str, &[&str])] = &[
        ("/management/webhooks", &["get", "post"]),
        ("/management/webhooks/{id}", &["get", "patch", "delete"]),
        ("/management/webhooks/{id}/secret", &["get"]),
        ("/management/webhooks/{id}/secret/rotate", &["post"]),
        ("/management/webhooks/{id}/unsuspend", &["post"]),
        ("/management/event-types", &["get", "post"]),
        ("/management/event-types/{name}", &["delete"]),
        ("/management/api-keys", &["get", "post"]),
        ("/management/api-keys/{id}", &["delete"]),
        ("/healthz", &["get"]),
        ("/readyz", &["get"]),
    ];
    let listed: Vec<&String> = paths.keys().collect();
    for (path, methods) in expected {
        let item = paths
            .get(*path)
            .unwrap_or_else(|| panic!("{path} missing from openapi paths: {listed:?}"));
        for m in *methods {
            let op = item
                .get(*m)
                .unwrap_or_else(|| panic!("{} {path} not described: {item}", m.to_uppercase()));
            assert!(
                op["responses"].is_object(),
                "{} {path} has no responses",
                m.to_uppercase()
            );
        }
    }
    // Path parameters are declared.
    let get_one = &paths["/management/webhooks/{id}"]["get"];
    let params = get_one["parameters"]
        .as_array()
        .expect("parameters of GET /management/webhooks/{id}");
    assert!(
        params
            .iter()
            .any(|p| p["name"] == "id" && p["in"] == "path"),
        "{get_one}"
    );
    // Request bodies of the create routes are described.
    for path in [
        "/management/webhooks",
        "/management/event-types",
        "/management/api-keys",
    ] {
        assert!(
            paths[path]["post"]["requestBody"].is_object(),
            "POST {path} has no requestBody"
        );
    }
}

#[tokio::test]
async fn healthz_and_readyz_answer_200_without_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    for path in ["/healthz", "/readyz"] {
        let (status, body) = send(s.client.get(s.url(path))).await;
        assert_eq!(status, 200, "{path}: {body}");
        // A wrong key does not turn them into 401s either.
        let (status, _) = send(s.req_as("wrong", Method::GET, path)).await;
        assert_eq!(status, 200, "{path} with a wrong key");
    }
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_as_problem_json() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    for path in ["/nope", "/management/nope", "/management/webhooks/1/nope"] {
        let (status, ct, problem) = full(s.req(Method::GET, path)).await;
        assert_problem(status, &ct, &problem, 404);
    }
    for (method, path) in [
        (Method::PUT, HOOKS),
        (Method::DELETE, HOOKS),
        (Method::PUT, "/management/webhooks/1"),
        (Method::GET, "/management/webhooks/1/secret/rotate"),
        (Method::POST, "/healthz"),
    ] {
        let (status, ct, problem) = full(s.req(method.clone(), path)).await;
        assert_eq!(status, 405, "{method} {path}: {status} {problem}");
        assert_problem(status, &ct, &problem, 405);
    }
}

/// Exercises the API with every kind of key material; answers the strings
/// that must never reach the log.
async fn exercise(s: &TestServer) -> Vec<String> {
    let w = s
        .create_webhook(
            "https://example.com/logs",
            json!({"headers": {"X-Secret": [HEADER_VALUE]}, "description": "logged?"}),
        )
        .await;
    let id = w["id"].as_i64().unwrap();
    let created_secret = w["secret"].as_str().unwrap().to_string();
    let receiver_secrets = exercise_receiver_auth(s).await;
    let (status, sec) = s.get(&format!("{HOOKS}/{id}/secret")).await;
    assert_eq!(status, 200);
    assert_eq!(sec["secret"], created_secret.as_str());
    let (status, rotated) = s
        .post(&format!("{HOOKS}/{id}/secret/rotate"), json!({}))
        .await;
    assert_eq!(status, 200, "{rotated}");
    let rotated_secret = rotated["secret"].as_str().unwrap().to_string();
    let chosen = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (status, r) = s
        .post(
            &format!("{HOOKS}/{id}/secret/rotate"),
            json!({"secret": chosen}),
        )
        .await;
    assert!(status == 200 || status == 400, "{status} {r}");

    let key = s
        .api_key(
            "default",
            &["webhooks:read", "webhooks:list", "webhooks:write"],
        )
        .await;
    for (method, path) in [
        (Method::GET, HOOKS.to_string()),
        (Method::GET, format!("{HOOKS}/{id}")),
        (Method::GET, format!("{HOOKS}/{id}/secret")),
    ] {
        let (status, _) = send(s.req_as(&key, method, &path).header("X-Tenant-Id", "other")).await;
        assert_eq!(status, 200);
    }
    let (status, _) = send(
        s.req_as(&key, Method::PATCH, &format!("{HOOKS}/{id}"))
            .json(&json!({"add_headers": {"X-Other": [HEADER_VALUE]}})),
    )
    .await;
    assert_eq!(status, 200);
    // Failures, including ones whose request carries secrets.
    let wrong = "hk_wrongwrongwrongwrongwrongwrongwrongwrong";
    let (status, _) = send(s.req_as(wrong, Method::GET, HOOKS)).await;
    assert_eq!(status, 401);
    let (status, _) = send(
        s.req(Method::PATCH, &format!("{HOOKS}/{id}"))
            .json(&json!({"headers": {"X-Secret": [format!("{HEADER_VALUE}\r\n")]}})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = send(s.req(Method::POST, HOOKS).json(
        &json!({"name": "x", "url": "https://example.com/y", "events": [], "secret": chosen}),
    ))
    .await;
    assert_eq!(status, 400);
    let (status, _) = send(
        s.req(Method::GET, &format!("{HOOKS}?q=logs"))
            .header("X-Tenant-Id", "default"),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = s.delete(&format!("{HOOKS}/{id}")).await;
    assert_eq!(status, 204);

    let created_b64 = created_secret.strip_prefix("whsec_").unwrap().to_string();
    vec![
        MGMT_KEY.to_string(),
        key,
        wrong.to_string(),
        created_secret,
        created_b64,
        rotated_secret,
        chosen.to_string(),
        HEADER_VALUE.to_string(),
    ]
    .into_iter()
    .chain(receiver_secrets)
    .collect()
}

/// Receiver credentials (SPEC §13) set, changed, refused, and used by a
/// delivery that needs an OAuth2 token; answers their secret parts.
async fn exercise_receiver_auth(s: &TestServer) -> Vec<String> {
    const OAUTH_SECRET: &str = "oauth-client-secret-in-logs?";
    const PASSWORD: &str = "basic-password-in-logs?";
    let client = crate::common::tls_receiver::TestCa::new("log CA").client("log-client");
    let w = s
        .create_webhook(
            "https://hooks.example.test/logs-auth",
            json!({"signature_scheme": "v1a", "retry_schedule": [], "auth": {
                "type": "oauth2_client_credentials",
                "token_url": "https://hooks.example.test/token",
                "client_id": "log-client",
                "client_secret": OAUTH_SECRET,
            }}),
        )
        .await;
    let path = format!("{HOOKS}/{}", w["id"]);
    let (status, _) = s
        .post("/v1/events", json!({"type": "license.created", "data": {}}))
        .await;
    assert_eq!(status, 202);
    let (status, _) = s
        .patch(
            &path,
            json!({"auth": {"type": "basic", "username": "u", "password": PASSWORD}}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = s
        .patch(
            &path,
            json!({"auth": {"type": "mtls", "certificate": "junk", "private_key": client.key_pem}}),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = s
        .patch(
            &path,
            json!({"auth": {"type": "mtls", "certificate": client.cert_pem, "private_key": client.key_pem}}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = s.post(&format!("{path}/secret/rotate"), json!({})).await;
    assert_eq!(status, 200);
    // The base64 body of the key, without its PEM armour.
    let key_body: String = client
        .key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    vec![
        OAUTH_SECRET.into(),
        PASSWORD.into(),
        key_body[..40].to_string(),
    ]
}

fn assert_no_secret_in(log: &str, secrets: &[String]) {
    for (i, line) in log.lines().enumerate() {
        for secret in secrets {
            assert!(
                !line.contains(secret.as_str()),
                "log line {} contains {secret:?}:\n{line}",
                i + 1
            );
        }
    }
}

fn assert_json_lines(log: &str) {
    let mut n = 0;
    for (i, line) in log.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line {} is not JSON ({e}):\n{line}", i + 1));
        assert!(
            v.is_object(),
            "log line {} is not a JSON object:\n{line}",
            i + 1
        );
        n += 1;
    }
    assert!(
        n >= 5,
        "only {n} log lines; requests are not logged?\n{log}"
    );
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_and_never_contain_keys_or_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = ServerConfig::new(dir.path())
        .arg("--log-format")
        .arg("json")
        .start()
        .await;
    let secrets = exercise(&s).await;
    assert!(s.terminate().success());
    let log = s.log();
    assert_json_lines(&log);
    assert_no_secret_in(&log, &secrets);
    // Requests are logged, with their status.
    assert!(
        log.lines()
            .any(|l| l.contains("/management/webhooks") && l.contains("201")),
        "no request line with path and status:\n{log}"
    );
}

#[tokio::test]
async fn debug_level_json_logs_never_contain_keys_or_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = ServerConfig::new(dir.path())
        .arg("--log-format")
        .arg("json")
        .env("RUST_LOG", "debug")
        .start()
        .await;
    let secrets = exercise(&s).await;
    assert!(s.terminate().success());
    let log = s.log();
    assert_json_lines(&log);
    assert_no_secret_in(&log, &secrets);
}

#[tokio::test]
async fn text_logs_never_contain_keys_or_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = ServerConfig::new(dir.path())
        .env("RUST_LOG", "debug")
        .start()
        .await;
    let secrets = exercise(&s).await;
    assert!(s.terminate().success());
    assert_no_secret_in(&s.log(), &secrets);
}

#[tokio::test]
async fn each_seed_surface_documents_its_own_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let doc: Value = s
        .client
        .get(s.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let schema_of = |path: &str, method: &str, code: &str| -> String {
        let op = &doc["paths"][path][method];
        let body = if code == "request" {
            &op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        } else {
            &op["responses"][code]["content"]["application/json"]["schema"]["$ref"]
        };
        body.as_str().unwrap_or_default().to_owned()
    };
    let seed_002 = "/management/v1/projects/{projectId}/webhooks";
    let seed_003 = "/organizations/webhooks";
    let seed_004 = "/event/{tenantLocator}/webhooks";
    let refs = [
        schema_of(seed_002, "post", "request"),
        schema_of(seed_003, "post", "request"),
        schema_of(seed_004, "post", "request"),
    ];
    assert!(refs.iter().all(|r| !r.is_empty()), "{refs:?}");
    assert_eq!(
        refs.iter().collect::<std::collections::HashSet<_>>().len(),
        3,
        "each surface's create body is its own schema: {refs:?}"
    );
    // Seed 002's create body is its own: target_url, events, active.
    let name = refs[0].rsplit('/').next().unwrap();
    let props = &doc["components"]["schemas"][name]["properties"];
    for field in ["target_url", "events", "active"] {
        assert!(props.get(field).is_some(), "{name} lacks {field}: {props}");
    }
}
