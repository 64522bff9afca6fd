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
        ("/management/event-types/{name}", &["patch", "delete"]),
        ("/management/event-types/{name}/restore", &["post"]),
        ("/management/webhooks/{id}/send-example", &["post"]),
        ("/management/portal-links", &["post"]),
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

/// The document's operations: (METHOD, path template, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                out.push((method.to_uppercase(), path.clone(), op.clone()));
            }
        }
    }
    out
}

/// A concrete path for a template: each parameter filled with a value its
/// schema admits (the documented example or pattern-shaped text).
fn concrete(path: &str) -> String {
    path.replace("{tenantLocator}", "6f1c2c1e-0d53-4a4e-9d8e-0b9f6f0b3a11")
        .replace("{projectId}", "default")
        .replace("{webhookId}", "wh_ekFHVL6lqC4l")
        .replace("{name}", "license.created")
        .split('/')
        .map(|seg| if seg.starts_with('{') { "1" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

async fn document(s: &TestServer) -> Value {
    let (status, doc) = send(s.client.get(s.url("/openapi.json"))).await;
    assert_eq!(status, 200);
    doc
}

// schemathesis's ignored_auth check is off in scripts/schemathesis.toml
// (the failure budget answers wrong keys 429 after ten); this is its
// replacement, over every operation of the document.
#[tokio::test]
async fn every_secured_operation_answers_401_without_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let doc = document(&s).await;
    let mut checked = 0;
    for (method, path, op) in operations(&doc) {
        if op["security"].as_array().is_none_or(|a| a.is_empty()) {
            continue;
        }
        let url = s.url(&concrete(&path));
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        // The header every seed 003 operation requires, so that the missing
        // key is what the answer is about.
        let resp = s
            .client
            .request(m, &url)
            .header("SlashID-OrgID", "acme")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        assert_eq!(
            status, 401,
            "{method} {path} answered {status} without a key"
        );
        assert!(
            op["responses"]["401"].is_object(),
            "{method} {path} does not document its 401"
        );
        checked += 1;
    }
    assert!(
        checked >= 40,
        "only {checked} secured operations in the document"
    );
}

#[tokio::test]
async fn every_operation_documents_the_answers_of_the_layers_around_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let doc = document(&s).await;
    let mut ids = std::collections::HashSet::new();
    for (method, path, op) in operations(&doc) {
        let what = format!("{method} {path}");
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: no operationId"));
        assert!(
            ids.insert(id.to_owned()),
            "{what}: operationId {id} is not unique"
        );
        let responses = op["responses"].as_object().unwrap();
        assert!(responses.contains_key("408"), "{what}: no 408");
        let seed = op["tags"][0].as_str().unwrap_or("").starts_with("seed-");
        for (code, resp) in responses {
            assert!(
                resp["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{what} {code}: empty description"
            );
            if code.starts_with('4') || code.starts_with('5') {
                let content = resp["content"]
                    .as_object()
                    .unwrap_or_else(|| panic!("{what} {code}: no content"));
                // hookd's own errors are problem+json; 408 is problem+json on
                // every surface (it is answered before the surface's handler).
                if !seed || code == "408" {
                    assert_eq!(
                        content.keys().collect::<Vec<_>>(),
                        ["application/problem+json"],
                        "{what} {code}"
                    );
                    assert_eq!(
                        content["application/problem+json"]["schema"]["$ref"],
                        "#/components/schemas/Problem",
                        "{what} {code}"
                    );
                }
            }
        }
        let secured = op["security"].as_array().is_some_and(|a| !a.is_empty());
        if secured {
            for code in ["401", "429", "503"] {
                assert!(responses.contains_key(code), "{what}: no {code}");
            }
            assert!(
                responses["429"]["headers"]["Retry-After"].is_object(),
                "{what}: 429 without Retry-After"
            );
        }
        if op.get("requestBody").is_some() {
            for code in ["400", "413"] {
                assert!(responses.contains_key(code), "{what}: no {code}");
            }
        }
        if path.contains('{') {
            assert!(responses.contains_key("400"), "{what}: no 400 for its path");
        }
    }
}

#[tokio::test]
async fn the_documented_limits_are_the_ones_the_server_enforces() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let doc = document(&s).await;
    let schemas = &doc["components"]["schemas"];
    let limit = doc["paths"]["/management/webhooks"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap()["schema"]
        .clone();
    assert_eq!(
        (limit["minimum"].as_i64(), limit["maximum"].as_i64()),
        (Some(1), Some(500))
    );
    let rate = &schemas["WebhookIn"]["properties"]["rate_limit"];
    assert_eq!(
        (rate["minimum"].as_i64(), rate["maximum"].as_i64()),
        (Some(1), Some(100_000))
    );
    let min_failures = &schemas["FailureHandlingIn"]["properties"]["min_failures"];
    assert_eq!(min_failures["minimum"], 1);
    assert_eq!(schemas["Problem"]["properties"]["type"]["format"], "uri");
    // The server refuses just past each documented bound, naming the field.
    for (path, field) in [
        ("/management/webhooks?limit=501", "limit"),
        ("/management/webhooks?limit=0", "limit"),
        ("/management/deliveries?webhook_id=0", "webhook_id"),
    ] {
        let (status, ct, problem) = full(s.req(Method::GET, path)).await;
        assert_problem(status, &ct, &problem, 400);
        assert_eq!(problem["errors"][0]["field"], field, "{path}: {problem}");
    }
    for (body, field) in [
        (json!({"rate_limit": 100_001}), "rate_limit"),
        (json!({"rate_limit": 0}), "rate_limit"),
        (
            json!({"failure_handling": {"min_failures": 0, "suspend_after": "1d"}}),
            "failure_handling",
        ),
        (json!({"url": "https://example.com/{x}"}), "url"),
        (json!({"headers": {"X-A": ["caf\u{e9}"]}}), "headers"),
    ] {
        let mut w = json!({"name": "limits", "url": "https://example.com/limits",
            "events": ["license.created"]});
        for (k, v) in body.as_object().unwrap() {
            w[k] = v.clone();
        }
        let (status, ct, problem) = full(s.req(Method::POST, HOOKS).json(&w)).await;
        assert_problem(status, &ct, &problem, 400);
        assert!(
            problem["errors"][0]["field"]
                .as_str()
                .unwrap()
                .starts_with(field),
            "{w}: {problem}"
        );
    }
    // And takes what the document allows: a whole number written as 5.0.
    let (status, w) = s
        .post(
            HOOKS,
            json!({"name": "whole", "url": "https://example.com/whole",
            "events": ["license.created"], "rate_limit": 5.0}),
        )
        .await;
    assert_eq!(status, 201, "{w}");
    assert_eq!(w["rate_limit"], 5);
}

/// Whether `value` is what the document's schema of `schema.property`
/// allows.
fn documented(doc: &Value, schema: &str, property: &str, value: &Value) -> bool {
    let rule = &doc["components"]["schemas"][schema]["properties"][property];
    assert!(rule.is_object(), "{schema}.{property} is not documented");
    jsonschema::is_valid(rule, value)
}

// The fields the portal (issue 15) and receiver auth (issue 14) added:
// for each value, the document allows it exactly when the server takes it.
#[tokio::test]
async fn the_portal_and_receiver_auth_fields_are_documented_as_the_server_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let doc = document(&s).await;
    for expires_in in [
        "1h",
        "24h",
        "1d",
        "1440m",
        "86400s",
        "86400000ms",
        "30m",
        "1ms",
        "0",
        "0s",
        "25h",
        "86401s",
        "1441m",
        "86400001ms",
        "2d",
        "",
        "-1h",
        "h",
        "1 h",
    ] {
        let v = json!(expires_in);
        let (status, body) = s
            .post("/management/portal-links", json!({"expires_in": v}))
            .await;
        assert_eq!(
            documented(&doc, "PortalLinkIn", "expires_in", &v),
            status == 201,
            "expires_in {expires_in:?}: {status} {body}"
        );
    }
    for tenant in ["acme", "a.b-c_9", "", "a b", "x".repeat(65).as_str()] {
        let v = json!(tenant);
        let (status, body) = s
            .post("/management/portal-links", json!({"tenant": v}))
            .await;
        assert_eq!(
            documented(&doc, "PortalLinkIn", "tenant", &v),
            status == 201,
            "tenant {tenant:?}: {status} {body}"
        );
    }
    for (i, schema) in [
        json!({"type": "object"}),
        json!({}),
        json!(true),
        json!(false),
        json!(null),
        json!(5),
        json!("object"),
        json!([]),
    ]
    .into_iter()
    .enumerate()
    {
        let (status, body) = s
            .post(
                "/management/event-types",
                json!({"name": format!("doc.schema_{i}"), "schema": schema}),
            )
            .await;
        assert_eq!(
            documented(&doc, "EventTypeIn", "schema", &schema),
            status == 201,
            "schema {schema}: {status} {body}"
        );
        if status == 201 {
            // What was taken is answered as the document says.
            assert!(
                documented(&doc, "EventTypeOut", "schema", &body["schema"]),
                "{body}"
            );
        }
    }
    let hook = s
        .create_webhook("https://hooks.example.test/doc-fields", json!({}))
        .await;
    let path = format!("{HOOKS}/{}", hook["id"]);
    for scheme in ["v1", "v1a", "v2", "V1", ""] {
        let v = json!(scheme);
        let (status, body) = s.patch(&path, json!({"signature_scheme": v})).await;
        assert_eq!(
            documented(&doc, "WebhookPatch", "signature_scheme", &v),
            status == 200,
            "signature_scheme {scheme:?}: {status} {body}"
        );
    }
    for (auth, ok) in [
        (
            json!({"type": "basic", "username": "u", "password": ""}),
            true,
        ),
        (
            json!({"type": "digest", "username": "u", "password": "p"}),
            false,
        ),
        (
            json!({"type": "basic", "username": "a:b", "password": "p"}),
            false,
        ),
        (
            json!({"type": "basic", "username": "", "password": "p"}),
            false,
        ),
        (
            json!({"type": "basic", "username": "u\u{7}", "password": "p"}),
            false,
        ),
        (
            json!({"type": "basic", "username": "é".repeat(4096), "password": "p"}),
            true,
        ),
        (
            json!({"type": "basic", "username": "u".repeat(4097), "password": "p"}),
            false,
        ),
    ] {
        let fields = auth.as_object().unwrap();
        let each_documented = fields.iter().all(|(k, v)| documented(&doc, "AuthIn", k, v));
        let (status, body) = s.patch(&path, json!({"auth": auth})).await;
        assert_eq!(
            (each_documented, status == 200),
            (ok, ok),
            "{auth}: {status} {body}"
        );
    }
    for ca in ["", "not a certificate"] {
        let (status, _) = s.patch(&path, json!({"ca_certificate": ca})).await;
        assert_eq!(status, 400, "{ca:?}");
        assert!(!documented(
            &doc,
            "WebhookPatch",
            "ca_certificate",
            &json!(ca)
        ));
    }
}

#[tokio::test]
async fn creates_link_to_the_operations_on_what_they_made() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let doc = document(&s).await;
    let links = &doc["paths"]["/management/webhooks"]["post"]["responses"]["201"]["links"];
    let get = &links["get_webhook"];
    assert_eq!(get["operationId"], "get_webhook", "{links}");
    assert_eq!(get["parameters"]["id"], "$response.body#/id");
    assert_eq!(
        get["parameters"]["X-Tenant-Id"],
        "$request.header.X-Tenant-Id"
    );
    // A key made for another tenant is revoked there.
    let revoke = &doc["paths"]["/management/api-keys"]["post"]["responses"]["201"]["links"]["revoke_api_key"];
    assert_eq!(
        revoke["parameters"]["X-Tenant-Id"], "$response.body#/tenant",
        "{revoke}"
    );
    // Seed 003 wraps the webhook in `result`; its organization (a
    // required header) flows from the request, its optional consistency
    // headers do not (the create may have been sent without them).
    let seed = &doc["paths"]["/organizations/webhooks"]["post"]["responses"]["201"]["links"];
    let get = &seed["seed_003_slashid_get_webhook"]["parameters"];
    assert_eq!(get["webhook_id"], "$response.body#/result/id", "{seed}");
    assert_eq!(
        get["SlashID-OrgID"], "$request.header.SlashID-OrgID",
        "{seed}"
    );
    assert!(get.get("SlashID-Required-Consistency").is_none(), "{seed}");
}

/// `hookd_…` metric names in a text, histogram suffixes dropped.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("hookd_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let name = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        out.insert(name.to_owned());
        rest = &tail[end..];
    }
    out
}

#[test]
fn the_dashboard_rules_and_docs_name_only_metrics_hookd_serves() {
    let root = env!("CARGO_MANIFEST_DIR");
    let read = |p: &str| std::fs::read_to_string(format!("{root}/{p}")).unwrap();
    let served = metric_names(&read("src/metrics.rs"));
    assert!(served.len() >= 9, "{served:?}");
    let dashboard: Value = serde_json::from_str(&read("ops/grafana/hookd-dashboard.json"))
        .expect("the dashboard is JSON");
    assert!(!dashboard["panels"].as_array().unwrap().is_empty());
    for file in [
        "ops/grafana/hookd-dashboard.json",
        "ops/prometheus/hookd-recording.rules.yml",
        "ops/prometheus/hookd-alerts.rules.yml",
        "docs/metrics.md",
    ] {
        for name in metric_names(&read(file)) {
            // Recording rules are named `hookd:…`, never `hookd_…`.
            assert!(
                served.contains(&name),
                "{file} names {name}, which hookd does not serve"
            );
        }
    }
    // Every served metric is documented.
    let documented = metric_names(&read("docs/metrics.md"));
    for name in &served {
        assert!(documented.contains(name), "docs/metrics.md lacks {name}");
    }
}
