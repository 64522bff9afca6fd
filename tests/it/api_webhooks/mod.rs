//! §3: the webhook endpoints of the management API, ugly cases included.

use crate::common::{assert_problem, full};

use std::time::Duration;

use crate::common::{MGMT_KEY, ServerConfig, TestServer, assert_field_error, send};
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

const HOOKS: &str = "/management/webhooks";

/// A request with the bootstrap key and a raw (possibly broken) JSON body.
async fn raw(s: &TestServer, method: Method, path: &str, body: &str) -> (u16, String, Value) {
    full(
        s.req(method, path)
            .header("Content-Type", "application/json")
            .body(body.to_string()),
    )
    .await
}

/// Whether an error's `field` is `field` or a path under it (`field.x`, `field[0]`).
fn names(error_field: &str, field: &str) -> bool {
    error_field
        .strip_prefix(field)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}

/// The messages of every error naming `field` (or a field under it), joined.
fn messages_for(body: &Value, field: &str) -> String {
    body["errors"]
        .as_array()
        .map(|errs| {
            errs.iter()
                .filter(|e| names(e["field"].as_str().unwrap_or_default(), field))
                .map(|e| e["message"].as_str().unwrap_or_default().to_string())
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

/// Asserts a 400 whose errors name `field` or a field nested under it.
fn assert_field_error_under(status: u16, body: &Value, field: &str) {
    assert_eq!(
        status, 400,
        "expected 400 naming {field}, got {status}: {body}"
    );
    let errors = body["errors"].as_array().expect("problem body has errors");
    assert!(
        errors
            .iter()
            .any(|e| names(e["field"].as_str().unwrap_or_default(), field)),
        "no error names {field:?}: {body}"
    );
}

fn hook(url: &str) -> Value {
    json!({"name": "hook", "url": url, "events": ["license.created"]})
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    base.as_object_mut().unwrap().insert(key.to_string(), value);
    base
}

fn without(mut base: Value, key: &str) -> Value {
    base.as_object_mut().unwrap().remove(key);
    base
}

async fn create_expect_400(s: &TestServer, body: Value, field: &str) -> Value {
    let (status, json) = s.post(HOOKS, body.clone()).await;
    assert_field_error(status, &json, field);
    json
}

fn parse_ts(ts: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{ts:?} is not RFC 3339: {e}"))
}

fn ids(list: &Value) -> Vec<i64> {
    list["data"]
        .as_array()
        .expect("list has data")
        .iter()
        .map(|w| w["id"].as_i64().unwrap())
        .collect()
}

fn assert_whsec(secret: &Value) -> String {
    let s = secret
        .as_str()
        .unwrap_or_else(|| panic!("secret is not a string: {secret}"));
    let b64 = s
        .strip_prefix("whsec_")
        .unwrap_or_else(|| panic!("{s} lacks whsec_"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap_or_else(|e| panic!("{s}: not base64 after whsec_: {e}"));
    assert!(bytes.len() >= 24, "{s}: only {} bytes of key", bytes.len());
    s.to_string()
}

// ---------------------------------------------------------------- create

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
async fn invalid_json_is_400_problem_json() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    for body in [
        "{",
        "{\"name\": \"a\",}",
        "not json at all",
        "{\"name\": \"a\", \"url\": \"https://example.com/x\", \"events\": [\"license.created\"]} trailing",
        "{'name': 'single quotes'}",
        "\u{feff}{\"name\": \"bom\", \"url\": \"https://example.com/x\", \"events\": [\"license.created\"]}",
    ] {
        let (status, ct, problem) = raw(&s, Method::POST, HOOKS, body).await;
        assert_problem(status, &ct, &problem, 400);
    }
    let (_, list) = s.get(HOOKS).await;
    assert_eq!(list["total"], 0, "{list}");
}

#[tokio::test]
async fn deeply_nested_json_is_400_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let (status, ct, problem) = raw(&s, Method::POST, HOOKS, &deep).await;
    assert_problem(status, &ct, &problem, 400);
    let nested = format!(
        "{{\"name\": \"n\", \"url\": \"https://example.com/n\", \
         \"events\": [\"license.created\"], \"description\": {}{}}}",
        "{\"a\":".repeat(50_000),
        "1}".repeat(50_000)
    );
    let (status, ct, problem) = raw(&s, Method::POST, HOOKS, &nested).await;
    assert_problem(status, &ct, &problem, 400);
    let (status, _) = s.get("/healthz").await;
    assert_eq!(status, 200, "the server died");
}

#[tokio::test]
async fn empty_body_is_400_problem_json() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    for body in ["", "   \n"] {
        let (status, ct, problem) = raw(&s, Method::POST, HOOKS, body).await;
        assert_problem(status, &ct, &problem, 400);
    }
    // Without any content type either.
    let (status, ct, problem) = full(s.req(Method::POST, HOOKS)).await;
    assert_problem(status, &ct, &problem, 400);
}

#[tokio::test]
async fn json_that_is_not_an_object_is_400_problem_json() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    for body in ["null", "[]", "\"hook\"", "42", "true"] {
        let (status, ct, problem) = raw(&s, Method::POST, HOOKS, body).await;
        assert_problem(status, &ct, &problem, 400);
    }
}

#[tokio::test]
async fn wrong_types_are_400_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let base = hook("https://example.com/types");
    let cases = [
        ("name", json!(5)),
        ("url", json!(true)),
        ("events", json!("license.created")),
        ("events", json!([1, 2])),
        ("enabled", json!("yes")),
        ("environment", json!(1)),
        ("description", json!(["x"])),
        ("timeout", json!(10)),
        ("rate_limit", json!("fast")),
        ("rate_limit", json!(1.5)),
        ("rate_limit", json!(1e20)),
        ("retry_schedule", json!("5s")),
        ("headers", json!(["X-A"])),
        ("headers", json!({"X-A": "not-a-list"})),
        ("failure_handling", json!(true)),
        (
            "failure_handling",
            json!({"min_failures": "3", "suspend_after": "1h"}),
        ),
    ];
    for (field, value) in cases {
        let (status, ct, problem) = full(s.req(Method::POST, HOOKS).json(&with(
            base.clone(),
            field,
            value.clone(),
        )))
        .await;
        assert_problem(status, &ct, &problem, 400);
        assert_field_error_under(status, &problem, field);
    }
    let (_, list) = s.get(HOOKS).await;
    assert_eq!(list["total"], 0, "{list}");
}

#[tokio::test]
async fn unknown_field_is_400_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let body = with(hook("https://example.com/u"), "colour", json!("red"));
    create_expect_400(&s, body, "colour").await;
    // A misspelt optional field must not be silently ignored.
    let body = with(hook("https://example.com/u"), "timout", json!("5s"));
    create_expect_400(&s, body, "timout").await;
    // Nested objects reject unknown fields too.
    let body = with(
        hook("https://example.com/u"),
        "failure_handling",
        json!({"min_failures": 3, "suspend_after": "1h", "extra": 1}),
    );
    let (status, problem) = s.post(HOOKS, body).await;
    assert_field_error_under(status, &problem, "failure_handling");
}

#[tokio::test]
async fn missing_name_url_or_events_is_400_naming_each() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    for field in ["name", "url", "events"] {
        let (status, ct, problem) = full(
            s.req(Method::POST, HOOKS)
                .json(&without(hook("https://example.com/m"), field)),
        )
        .await;
        assert_problem(status, &ct, &problem, 400);
        assert_field_error(status, &problem, field);
    }
    let (status, problem) = s.post(HOOKS, json!({})).await;
    assert_eq!(status, 400, "{problem}");
}

#[tokio::test]
async fn several_invalid_fields_are_all_named_in_one_answer() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let body = json!({"name": "", "url": "ftp://example.com/x", "events": [], "timeout": "99s"});
    let problem = create_expect_400(&s, body, "name").await;
    for field in ["url", "events", "timeout"] {
        assert_field_error(400, &problem, field);
    }
}

#[tokio::test]
async fn url_must_be_absolute_http_or_https_with_a_host_and_no_userinfo() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    for bad in [
        "ftp://example.com/hooks",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "mailto:ops@example.com",
        "/relative/path",
        "hooks/relative",
        "example.com/no-scheme",
        "https://user:pw@example.com/hooks",
        "https://user@example.com/hooks",
        "https://:pw@example.com/hooks",
        "http://",
        "https://",
        "not a url",
        "",
    ] {
        let body = create_expect_400(&s, hook(bad), "url").await;
        assert!(
            !messages_for(&body, "url").is_empty(),
            "{bad}: no reason given: {body}"
        );
    }
    for good in [
        "http://example.com/hooks",
        "https://example.com:8443/hooks?x=1#f",
        "http://127.0.0.1:9000/local",
    ] {
        s.create_webhook(good, json!({})).await;
    }
}

#[tokio::test]
async fn url_with_whitespace_or_control_characters_is_rejected_or_normalized() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    s.create_webhook("https://example.com/ws", json!({})).await;
    let mut wrong = Vec::new();
    for odd in [
        " https://example.com/ws",
        "https://example.com/ws ",
        "\thttps://example.com/ws",
        "https://example.com/w\ns",
        "https://exa\tmple.com/ws",
    ] {
        let (status, body) = s.post(HOOKS, hook(odd)).await;
        match status {
            // Rejected outright (a normalized URL would duplicate the existing webhook's).
            400 => assert_field_error(status, &body, "url"),
            _ => wrong.push(format!(
                "{odd:?} answered {status}, stored url {}",
                body["url"]
            )),
        }
    }
    assert!(
        wrong.is_empty(),
        "URLs with whitespace were accepted:\n{}",
        wrong.join("\n")
    );
    let (_, list) = s.get(HOOKS).await;
    assert_eq!(list["total"], 1, "{list}");
}

#[tokio::test]
async fn url_of_exactly_2048_bytes_is_accepted_and_2049_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let prefix = "https://example.com/";
    let at_limit = format!("{prefix}{}", "a".repeat(2048 - prefix.len()));
    assert_eq!(at_limit.len(), 2048);
    let w = s.create_webhook(&at_limit, json!({})).await;
    assert_eq!(w["url"], at_limit.as_str());
    let over = format!("{prefix}{}", "b".repeat(2049 - prefix.len()));
    create_expect_400(&s, hook(&over), "url").await;
    let far_over = format!("{prefix}{}", "c".repeat(10_000));
    create_expect_400(&s, hook(&far_over), "url").await;
}

#[tokio::test]
async fn empty_events_is_400_naming_events() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let body = with(hook("https://example.com/e"), "events", json!([]));
    create_expect_400(&s, body, "events").await;
}

#[tokio::test]
async fn unknown_events_are_400_and_the_error_lists_each_unknown_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let body = with(
        hook("https://example.com/e"),
        "events",
        json!(["license.created", "bogus.thing", "license.nope"]),
    );
    let problem = create_expect_400(&s, body, "events").await;
    let msg = messages_for(&problem, "events");
    assert!(msg.contains("bogus.thing"), "{problem}");
    assert!(msg.contains("license.nope"), "{problem}");
    assert!(
        !msg.contains("license.created"),
        "a known type is listed as unknown: {problem}"
    );
}

#[tokio::test]
async fn malformed_event_names_are_400_naming_events() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    for bad in [
        "*",
        "license",
        "License.Created",
        "license.*.x",
        "",
        "license..created",
        " license.created",
    ] {
        let body = with(hook("https://example.com/e"), "events", json!([bad]));
        create_expect_400(&s, body, "events").await;
    }
}

#[tokio::test]
async fn wildcard_subscription_to_a_known_category_is_accepted_and_unknown_category_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let w = s
        .create_webhook("https://example.com/wild", json!({"events": ["license.*"]}))
        .await;
    assert_eq!(w["events"], json!(["license.*"]));
    let body = with(
        hook("https://example.com/nope"),
        "events",
        json!(["nope.*"]),
    );
    let problem = create_expect_400(&s, body, "events").await;
    assert!(
        messages_for(&problem, "events").contains("nope.*"),
        "{problem}"
    );
}

#[tokio::test]
async fn duplicate_events_in_one_request_are_kept_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let w = s
        .create_webhook(
            "https://example.com/dups",
            json!({"events": ["license.created", "license.created", "license.revoked"]}),
        )
        .await;
    assert_eq!(w["events"], json!(["license.created", "license.revoked"]));
}

#[tokio::test]
async fn name_must_have_between_1_and_128_characters() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    create_expect_400(
        &s,
        with(hook("https://example.com/n0"), "name", json!("")),
        "name",
    )
    .await;
    let long = "n".repeat(129);
    create_expect_400(
        &s,
        with(hook("https://example.com/n1"), "name", json!(long)),
        "name",
    )
    .await;
    let max = "m".repeat(128);
    let w = s
        .create_webhook("https://example.com/n2", json!({"name": max}))
        .await;
    assert_eq!(w["name"], max.as_str());
    // Characters, not bytes: 128 two-byte characters are fine.
    let wide = "é".repeat(128);
    let w = s
        .create_webhook("https://example.com/n3", json!({"name": wide}))
        .await;
    assert_eq!(w["name"], wide.as_str());
    let too_wide = "é".repeat(129);
    create_expect_400(
        &s,
        with(hook("https://example.com/n4"), "name", json!(too_wide)),
        "name",
    )
    .await;
}

#[tokio::test]
async fn timeout_must_be_a_duration_up_to_20s() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    for bad in ["21s", "-1s", "abc", "", "1h", "20001ms"] {
        let body = with(hook("https://example.com/t"), "timeout", json!(bad));
        create_expect_400(&s, body, "timeout").await;
    }
    for (i, (good, shown)) in [("20s", "20s"), ("500ms", "500ms"), ("1s", "1s")]
        .into_iter()
        .enumerate()
    {
        let w = s
            .create_webhook(
                &format!("https://example.com/t{i}"),
                json!({"timeout": good}),
            )
            .await;
        assert_eq!(w["timeout"], shown, "{w}");
    }
    // 0s means the default.
    s.create_webhook("https://example.com/t-default", json!({"timeout": "0s"}))
        .await;
}

#[tokio::test]
async fn reserved_and_invalid_header_names_are_400_naming_headers() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    for name in [
        "webhook-signature",
        "Webhook-Signature",
        "webhook-id",
        "webhook-timestamp",
        "X-Webhook-Signature",
        "Idempotency-Key",
        "Content-Type",
        "content-length",
        "User-Agent",
        "Host",
        "Transfer-Encoding",
        "Bad Header",
        "X:Colon",
        "X-Ünicode",
        "",
    ] {
        let body = with(
            hook("https://example.com/h"),
            "headers",
            json!({name: ["v"]}),
        );
        let (status, problem) = s.post(HOOKS, body).await;
        assert_field_error_under(status, &problem, "headers");
    }
    let (_, list) = s.get(HOOKS).await;
    assert_eq!(list["total"], 0, "{list}");
}

#[tokio::test]
async fn header_values_with_cr_lf_or_nul_are_400_naming_headers() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    for value in ["a\r\nInjected: yes", "a\nb", "a\rb", "a\u{0}b"] {
        let body = with(
            hook("https://example.com/h"),
            "headers",
            json!({"X-Ok": [value]}),
        );
        let (status, problem) = s.post(HOOKS, body).await;
        assert_field_error_under(status, &problem, "headers");
    }
    // Names that differ only in case are one header given twice.
    let body = with(
        hook("https://example.com/h"),
        "headers",
        json!({"X-Dup": ["1"], "x-dup": ["2"]}),
    );
    let (status, problem) = s.post(HOOKS, body).await;
    assert_field_error_under(status, &problem, "headers");
}

#[tokio::test]
async fn environment_must_be_a_configured_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    for bad in ["qa", "Production", ""] {
        let body = with(hook("https://example.com/env"), "environment", json!(bad));
        create_expect_400(&s, body, "environment").await;
    }
    for (i, env) in ["production", "staging", "development"]
        .into_iter()
        .enumerate()
    {
        let w = s
            .create_webhook(
                &format!("https://example.com/env{i}"),
                json!({"environment": env}),
            )
            .await;
        assert_eq!(w["environment"], env);
    }
}

#[tokio::test]
async fn rate_limit_retry_schedule_and_failure_handling_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let cases = [
        ("rate_limit", json!(0)),
        ("rate_limit", json!(-1)),
        ("retry_schedule", json!(["soon"])),
        ("retry_schedule", json!(["5s", "-1s"])),
        (
            "failure_handling",
            json!({"min_failures": 0, "suspend_after": "1h"}),
        ),
        (
            "failure_handling",
            json!({"min_failures": 3, "suspend_after": "later"}),
        ),
        ("failure_handling", json!({"min_failures": 3})),
    ];
    for (field, value) in cases {
        let body = with(hook("https://example.com/r"), field, value);
        let (status, problem) = s.post(HOOKS, body).await;
        assert_field_error_under(status, &problem, field);
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
async fn body_over_the_configured_limit_is_413_problem_json() {
    let dir = tempfile::tempdir().unwrap();
    let s = ServerConfig::new(dir.path())
        .arg("--max-body-bytes")
        .arg("1024")
        .start()
        .await;
    let small = with(
        hook("https://example.com/small"),
        "description",
        json!("x".repeat(100)),
    );
    let (status, w) = s.post(HOOKS, small).await;
    assert_eq!(status, 201, "{w}");

    let big = with(
        hook("https://example.com/big"),
        "description",
        json!("x".repeat(2000)),
    );
    let (status, ct, problem) = full(s.req(Method::POST, HOOKS).json(&big)).await;
    assert_problem(status, &ct, &problem, 413);

    // Same on PATCH.
    let (status, ct, problem) = full(
        s.req(Method::PATCH, &format!("{HOOKS}/{}", w["id"]))
            .json(&json!({"description": "y".repeat(2000)})),
    )
    .await;
    assert_problem(status, &ct, &problem, 413);
    let (_, list) = s.get(HOOKS).await;
    assert_eq!(list["total"], 1, "{list}");
}

#[tokio::test]
async fn oversized_body_on_secret_rotate_is_413_problem_json() {
    let dir = tempfile::tempdir().unwrap();
    let s = ServerConfig::new(dir.path())
        .arg("--max-body-bytes")
        .arg("1024")
        .start()
        .await;
    let w = s.create_webhook("https://example.com/rot", json!({})).await;
    let (status, ct, problem) = full(
        s.req(Method::POST, &format!("{HOOKS}/{}/secret/rotate", w["id"]))
            .json(&json!({"pad": "z".repeat(4000)})),
    )
    .await;
    assert_problem(status, &ct, &problem, 413);
}

#[tokio::test]
async fn strict_url_policy_rejects_http_ip_literals_localhost_query_and_fragment() {
    let dir = tempfile::tempdir().unwrap();
    let s = ServerConfig::new(dir.path())
        .arg("--url-policy")
        .arg("strict")
        .start()
        .await;
    for bad in [
        "http://example.com/hooks",
        "https://127.0.0.1/hooks",
        "https://10.1.2.3/hooks",
        "https://[::1]/hooks",
        "https://localhost/hooks",
        "https://LOCALHOST:8443/hooks",
        "https://api.localhost/hooks",
        "https://example.com/hooks?token=1",
        "https://example.com/hooks#frag",
        "https://example.com/hooks?",
    ] {
        create_expect_400(&s, hook(bad), "url").await;
    }
    s.create_webhook("https://example.com/hooks", json!({}))
        .await;
    // PATCH obeys the same policy.
    let w = s
        .create_webhook("https://example.com/other", json!({}))
        .await;
    let (status, problem) = s
        .patch(
            &format!("{HOOKS}/{}", w["id"]),
            json!({"url": "http://example.com/other"}),
        )
        .await;
    assert_field_error(status, &problem, "url");
}

// ---------------------------------------------------------------- list

#[tokio::test]
async fn list_answers_data_total_offset_and_default_limit_50() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (status, empty) = s.get(HOOKS).await;
    assert_eq!(status, 200, "{empty}");
    assert_eq!(
        empty,
        json!({"data": [], "total": 0, "offset": 0, "limit": 50})
    );
    s.create_webhook("https://example.com/l1", json!({})).await;
    s.create_webhook("https://example.com/l2", json!({})).await;
    let (_, list) = s.get(HOOKS).await;
    assert_eq!(list["total"], 2);
    assert_eq!(list["offset"], 0);
    assert_eq!(list["limit"], 50);
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn list_limit_and_offset_out_of_range_or_not_numbers_are_400() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=abc", "limit"),
        ("limit=-1", "limit"),
        ("limit=1.5", "limit"),
        ("limit=99999999999999999999", "limit"),
        ("offset=-1", "offset"),
        ("offset=abc", "offset"),
    ] {
        let (status, ct, problem) = full(s.req(Method::GET, &format!("{HOOKS}?{query}"))).await;
        assert_problem(status, &ct, &problem, 400);
        assert_field_error(status, &problem, field);
    }
    let (status, list) = s.get(&format!("{HOOKS}?limit=500")).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["limit"], 500);
    let (status, list) = s.get(&format!("{HOOKS}?limit=1")).await;
    assert_eq!(status, 200, "{list}");
}

#[tokio::test]
async fn list_paginates_with_offset_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let mut created = Vec::new();
    for i in 0..5 {
        let w = s
            .create_webhook(&format!("https://example.com/p{i}"), json!({}))
            .await;
        created.push(w["id"].as_i64().unwrap());
    }
    let mut seen = Vec::new();
    for (offset, expected_len) in [(0, 2), (2, 2), (4, 1)] {
        let (status, page) = s.get(&format!("{HOOKS}?offset={offset}&limit=2")).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["total"], 5);
        assert_eq!(page["offset"], offset);
        assert_eq!(page["limit"], 2);
        let page_ids = ids(&page);
        assert_eq!(page_ids.len(), expected_len, "{page}");
        seen.extend(page_ids);
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 5, "pages overlap: {seen:?}");
    created.sort();
    assert_eq!(sorted, created);
    let (_, past_end) = s.get(&format!("{HOOKS}?offset=10")).await;
    assert_eq!(past_end["data"], json!([]));
    assert_eq!(past_end["total"], 5);
}

#[tokio::test]
async fn list_filter_q_matches_name_or_url_ignoring_case() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let billing = s
        .create_webhook("https://example.com/a", json!({"name": "Billing Sync"}))
        .await;
    let partner = s
        .create_webhook(
            "https://Partner.example.org/hooks",
            json!({"name": "audit"}),
        )
        .await;
    let plain = s
        .create_webhook("https://example.com/c", json!({"name": "other"}))
        .await;
    let q = |q: &str| format!("{HOOKS}?q={q}");
    let (_, r) = s.get(&q("BILLING")).await;
    assert_eq!(ids(&r), vec![billing["id"].as_i64().unwrap()], "{r}");
    assert_eq!(r["total"], 1);
    let (_, r) = s.get(&q("partner")).await;
    assert_eq!(ids(&r), vec![partner["id"].as_i64().unwrap()], "{r}");
    let (_, r) = s.get(&q("example")).await;
    assert_eq!(r["total"], 3, "{r}");
    let (_, r) = s.get(&q("OTHER")).await;
    assert_eq!(ids(&r), vec![plain["id"].as_i64().unwrap()], "{r}");
    let (_, r) = s.get(&q("nothing-matches")).await;
    assert_eq!(r["total"], 0, "{r}");
    // LIKE metacharacters are literal.
    for meta in ["%25", "_", "%5C"] {
        let (status, r) = s.get(&q(meta)).await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["total"], 0, "q={meta} matched: {r}");
    }
}

#[tokio::test]
async fn list_filter_q_ignores_case_for_non_ascii_names() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let w = s
        .create_webhook("https://example.com/cafe", json!({"name": "CAFÉ ÜBER"}))
        .await;
    let (status, r) = s.get(&format!("{HOOKS}?q=caf%C3%A9%20%C3%BCber")).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        ids(&r),
        vec![w["id"].as_i64().unwrap()],
        "q=\"café über\" should match \"CAFÉ ÜBER\": {r}"
    );
}

#[tokio::test]
async fn list_filters_by_environment_enabled_and_suspended() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let prod = s
        .create_webhook("https://example.com/prod", json!({}))
        .await;
    let staging = s
        .create_webhook("https://example.com/stg", json!({"environment": "staging"}))
        .await;
    let off = s
        .create_webhook(
            "https://example.com/off",
            json!({"environment": "staging", "enabled": false, "name": "disabled one"}),
        )
        .await;
    let id = |w: &Value| w["id"].as_i64().unwrap();

    let (_, r) = s.get(&format!("{HOOKS}?environment=staging")).await;
    assert_eq!(ids(&r), vec![id(&staging), id(&off)], "{r}");
    let (_, r) = s.get(&format!("{HOOKS}?environment=production")).await;
    assert_eq!(ids(&r), vec![id(&prod)], "{r}");
    let (_, r) = s.get(&format!("{HOOKS}?enabled=false")).await;
    assert_eq!(ids(&r), vec![id(&off)], "{r}");
    let (_, r) = s.get(&format!("{HOOKS}?enabled=true")).await;
    assert_eq!(ids(&r), vec![id(&prod), id(&staging)], "{r}");
    let (_, r) = s.get(&format!("{HOOKS}?suspended=false")).await;
    assert_eq!(r["total"], 3, "{r}");
    let (_, r) = s.get(&format!("{HOOKS}?suspended=true")).await;
    assert_eq!(r["total"], 0, "{r}");
    // Filters combine.
    let (_, r) = s
        .get(&format!("{HOOKS}?environment=staging&enabled=true"))
        .await;
    assert_eq!(ids(&r), vec![id(&staging)], "{r}");
    let (_, r) = s
        .get(&format!("{HOOKS}?environment=staging&q=DISABLED"))
        .await;
    assert_eq!(ids(&r), vec![id(&off)], "{r}");

    for bad in ["enabled=maybe", "suspended=yes-please"] {
        let (status, problem) = s.get(&format!("{HOOKS}?{bad}")).await;
        assert_field_error(status, &problem, bad.split('=').next().unwrap());
    }
}

#[tokio::test]
async fn list_filter_event_type_matches_exact_and_wildcard_subscriptions() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let exact = s
        .create_webhook(
            "https://example.com/exact",
            json!({"events": ["license.created"]}),
        )
        .await;
    let wild = s
        .create_webhook("https://example.com/wild", json!({"events": ["license.*"]}))
        .await;
    let act = s
        .create_webhook(
            "https://example.com/act",
            json!({"events": ["activation.created", "license.validation_failed"]}),
        )
        .await;
    let id = |w: &Value| w["id"].as_i64().unwrap();
    let et = |t: &str| format!("{HOOKS}?event_type={t}");

    let (_, r) = s.get(&et("license.created")).await;
    assert_eq!(ids(&r), vec![id(&exact), id(&wild)], "{r}");
    let (_, r) = s.get(&et("license.revoked")).await;
    assert_eq!(ids(&r), vec![id(&wild)], "{r}");
    let (_, r) = s.get(&et("activation.created")).await;
    assert_eq!(ids(&r), vec![id(&act)], "{r}");
    let (_, r) = s.get(&et("license.validation_failed")).await;
    assert_eq!(ids(&r), vec![id(&wild), id(&act)], "{r}");
    // `_` is not a LIKE wildcard here.
    let (_, r) = s.get(&et("license.validationXfailed")).await;
    assert_eq!(ids(&r), vec![id(&wild)], "{r}");
    // A prefix of a type is not the type.
    let (_, r) = s.get(&et("license.creat")).await;
    assert_eq!(ids(&r), vec![id(&wild)], "{r}");
    let (_, r) = s.get(&et("contract.created")).await;
    assert_eq!(r["total"], 0, "{r}");
}

// ---------------------------------------------------------------- get

#[tokio::test]
async fn get_unknown_id_is_404_problem_json() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    for path in [
        format!("{HOOKS}/12345"),
        format!("{HOOKS}/0"),
        format!("{HOOKS}/-1"),
    ] {
        let (status, ct, problem) = full(s.req(Method::GET, &path)).await;
        assert_problem(status, &ct, &problem, 404);
    }
}

#[tokio::test]
async fn get_non_numeric_or_overflowing_id_is_400_or_404_never_500() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    s.create_webhook("https://example.com/x", json!({})).await;
    for id in ["abc", "1.5", "99999999999999999999", "1abc", "%20"] {
        for method in [Method::GET, Method::PATCH, Method::DELETE] {
            let path = format!("{HOOKS}/{id}");
            let (status, _, body) = full(s.req(method.clone(), &path).json(&json!({}))).await;
            assert!(
                status == 400 || status == 404,
                "{method} {path}: {status} {body}"
            );
        }
        for sub in ["secret", "unsuspend", "secret/rotate"] {
            let path = format!("{HOOKS}/{id}/{sub}");
            let method = if sub == "secret" {
                Method::GET
            } else {
                Method::POST
            };
            let (status, _, body) = full(s.req(method.clone(), &path)).await;
            assert!(
                status == 400 || status == 404,
                "{method} {path}: {status} {body}"
            );
        }
    }
}

#[tokio::test]
async fn non_numeric_id_error_is_problem_json() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (status, ct, body) = full(s.req(Method::GET, &format!("{HOOKS}/abc"))).await;
    assert!(status == 400 || status == 404, "{status} {body}");
    assert_problem(status, &ct, &body, status);
}

// ---------------------------------------------------------------- patch

#[tokio::test]
async fn patch_changes_only_the_given_fields() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let w = s
        .create_webhook(
            "https://example.com/orig",
            json!({"description": "keep me", "headers": {"X-A": ["1"]}, "rate_limit": 5}),
        )
        .await;
    let path = format!("{HOOKS}/{}", w["id"]);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (status, p) = s
        .patch(
            &path,
            json!({
                "name": "renamed",
                "url": "https://example.com/moved",
                "enabled": false,
                "environment": "development",
                "timeout": "3s"
            }),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["name"], "renamed");
    assert_eq!(p["url"], "https://example.com/moved");
    assert_eq!(p["enabled"], false);
    assert_eq!(p["environment"], "development");
    assert_eq!(p["timeout"], "3s");
    // Untouched fields stay.
    assert_eq!(p["description"], "keep me");
    assert_eq!(p["headers"], json!({"X-A": ["1"]}));
    assert_eq!(p["rate_limit"], 5);
    assert_eq!(p["events"], w["events"]);
    assert_eq!(p["created_at"], w["created_at"]);
    assert!(
        parse_ts(p["updated_at"].as_str().unwrap()) >= parse_ts(w["updated_at"].as_str().unwrap())
    );
    let (_, got) = s.get(&path).await;
    assert_eq!(got, p);

    // An empty patch changes nothing.
    let (status, same) = s.patch(&path, json!({})).await;
    assert_eq!(status, 200, "{same}");
    assert_eq!(same, got);
}

#[tokio::test]
async fn patch_description_null_clears_it_and_absent_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let w = s
        .create_webhook(
            "https://example.com/d",
            json!({
                "description": "to be cleared",
                "rate_limit": 3,
                "retry_schedule": ["1s"],
                "failure_handling": {"min_failures": 2, "suspend_after": "1h"}
            }),
        )
        .await;
    let path = format!("{HOOKS}/{}", w["id"]);
    let (_, p) = s.patch(&path, json!({"name": "n"})).await;
    assert_eq!(p["description"], "to be cleared");
    let (status, p) = s.patch(&path, json!({"description": null})).await;
    assert_eq!(status, 200, "{p}");
    assert!(p["description"].is_null(), "{p}");
    let (_, got) = s.get(&path).await;
    assert!(got["description"].is_null(), "{got}");
    assert_eq!(got["rate_limit"], 3, "{got}");
    // The other nullable fields reset the same way.
    let (status, p) = s
        .patch(
            &path,
            json!({"rate_limit": null, "retry_schedule": null, "failure_handling": null}),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    assert!(p["rate_limit"].is_null(), "{p}");
    assert!(p["retry_schedule"].is_null(), "{p}");
    assert!(p["failure_handling"].is_null(), "{p}");
}

#[tokio::test]
async fn patch_add_and_remove_events_applies_removals_first() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let w = s
        .create_webhook(
            "https://example.com/ev",
            json!({"events": ["license.created", "license.revoked"]}),
        )
        .await;
    let path = format!("{HOOKS}/{}", w["id"]);
    let (status, p) = s
        .patch(
            &path,
            json!({
                "remove_events": ["license.revoked", "license.activated"],
                "add_events": ["license.activated", "activation.*"]
            }),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    let events: Vec<&str> = p["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(events.contains(&"license.created"), "{p}");
    assert!(
        events.contains(&"license.activated"),
        "in both remove and add, so present: {p}"
    );
    assert!(events.contains(&"activation.*"), "{p}");
    assert!(!events.contains(&"license.revoked"), "{p}");
    assert_eq!(events.len(), 3, "{p}");
    // Adding an existing subscription does not duplicate it; removing an absent one is fine.
    let (status, p) = s
        .patch(
            &path,
            json!({"add_events": ["license.created"], "remove_events": ["telemetry.flagged"]}),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["events"].as_array().unwrap().len(), 3, "{p}");
}

#[tokio::test]
async fn patch_add_and_remove_headers_applies_removals_first_ignoring_name_case() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let w = s
        .create_webhook(
            "https://example.com/hd",
            json!({"headers": {"X-A": ["1"], "X-B": ["2"], "X-C": ["3"]}}),
        )
        .await;
    let path = format!("{HOOKS}/{}", w["id"]);
    let (status, p) = s
        .patch(
            &path,
            json!({"remove_headers": ["x-a", "X-B"], "add_headers": {"X-B": ["new"], "X-D": ["4"]}}),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    let headers = p["headers"].as_object().unwrap();
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(find("X-A"), None, "{p}");
    assert_eq!(find("X-B"), Some(json!(["new"])), "removed then added: {p}");
    assert_eq!(find("X-C"), Some(json!(["3"])), "{p}");
    assert_eq!(find("X-D"), Some(json!(["4"])), "{p}");
    // add_headers is validated like headers.
    let (status, problem) = s
        .patch(
            &path,
            json!({"add_headers": {"webhook-signature": ["forged"]}}),
        )
        .await;
    assert_field_error_under(status, &problem, "headers");
    let (status, problem) = s
        .patch(&path, json!({"add_headers": {"X-E": ["a\r\nb"]}}))
        .await;
    assert_field_error_under(status, &problem, "headers");
    let (_, got) = s.get(&path).await;
    assert_eq!(got["headers"], p["headers"]);
}

#[tokio::test]
async fn patch_that_empties_events_is_400_naming_events() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let w = s
        .create_webhook(
            "https://example.com/empty",
            json!({"events": ["license.created", "license.revoked"]}),
        )
        .await;
    let path = format!("{HOOKS}/{}", w["id"]);
    let (status, problem) = s
        .patch(
            &path,
            json!({"remove_events": ["license.created", "license.revoked"]}),
        )
        .await;
    assert_field_error(status, &problem, "events");
    let (status, problem) = s.patch(&path, json!({"events": []})).await;
    assert_field_error(status, &problem, "events");
    let (_, got) = s.get(&path).await;
    assert_eq!(got["events"], w["events"]);
}

#[tokio::test]
async fn patch_with_an_invalid_field_is_400_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let w = s
        .create_webhook("https://example.com/atomic", json!({"name": "before"}))
        .await;
    let path = format!("{HOOKS}/{}", w["id"]);
    let (_, before) = s.get(&path).await;
    for (patch, field) in [
        (json!({"name": "after", "timeout": "abc"}), "timeout"),
        (json!({"name": "after", "url": "ftp://example.com/"}), "url"),
        (
            json!({"name": "after", "add_events": ["nope.nope"]}),
            "events",
        ),
        (json!({"name": "after", "environment": "qa"}), "environment"),
        (
            json!({"name": "after", "headers": {"Host": ["evil"]}}),
            "headers",
        ),
        (json!({"name": "after", "colour": "red"}), "colour"),
        (json!({"name": "x".repeat(129), "enabled": false}), "name"),
        (json!({"name": 5}), "name"),
    ] {
        let (status, ct, problem) = full(s.req(Method::PATCH, &path).json(&patch)).await;
        assert_problem(status, &ct, &problem, 400);
        assert_field_error_under(status, &problem, field);
        let (_, after) = s.get(&path).await;
        assert_eq!(after, before, "{patch} changed the webhook");
    }
}

#[tokio::test]
async fn patch_url_to_another_webhooks_url_is_400_naming_url() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    s.create_webhook("https://example.com/one", json!({})).await;
    let two = s.create_webhook("https://example.com/two", json!({})).await;
    let path = format!("{HOOKS}/{}", two["id"]);
    let (status, problem) = s
        .patch(&path, json!({"url": "https://example.com/one"}))
        .await;
    assert_field_error(status, &problem, "url");
    let (_, got) = s.get(&path).await;
    assert_eq!(got["url"], "https://example.com/two");
    // Setting its own URL again is not a conflict.
    let (status, p) = s
        .patch(&path, json!({"url": "https://example.com/two"}))
        .await;
    assert_eq!(status, 200, "{p}");
}

#[tokio::test]
async fn patch_unknown_webhook_is_404_and_bad_json_is_400() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (status, ct, problem) = full(
        s.req(Method::PATCH, &format!("{HOOKS}/777"))
            .json(&json!({"name": "x"})),
    )
    .await;
    assert_problem(status, &ct, &problem, 404);
    let w = s.create_webhook("https://example.com/pj", json!({})).await;
    let path = format!("{HOOKS}/{}", w["id"]);
    for body in ["{", "", "[]", "null"] {
        let (status, ct, problem) = raw(&s, Method::PATCH, &path, body).await;
        assert_problem(status, &ct, &problem, 400);
    }
}

// ---------------------------------------------------------------- delete

#[tokio::test]
async fn delete_is_204_then_the_webhook_is_404_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let keep = s
        .create_webhook("https://example.com/keep", json!({}))
        .await;
    let w = s.create_webhook("https://example.com/del", json!({})).await;
    let path = format!("{HOOKS}/{}", w["id"]);
    let resp = s.req(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert!(resp.bytes().await.unwrap().is_empty(), "204 with a body");
    for (method, p) in [
        (Method::GET, path.clone()),
        (Method::DELETE, path.clone()),
        (Method::GET, format!("{path}/secret")),
        (Method::POST, format!("{path}/secret/rotate")),
        (Method::POST, format!("{path}/unsuspend")),
    ] {
        let (status, ct, problem) = full(s.req(method.clone(), &p)).await;
        assert_problem(status, &ct, &problem, 404);
    }
    let (status, ct, problem) = full(s.req(Method::PATCH, &path).json(&json!({"name": "x"}))).await;
    assert_problem(status, &ct, &problem, 404);
    let (_, list) = s.get(HOOKS).await;
    assert_eq!(ids(&list), vec![keep["id"].as_i64().unwrap()], "{list}");
}

// ---------------------------------------------------------------- secrets

#[tokio::test]
async fn get_secret_returns_the_secret_from_the_create_answer() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let w = s.create_webhook("https://example.com/sec", json!({})).await;
    let (status, sec) = s.get(&format!("{HOOKS}/{}/secret", w["id"])).await;
    assert_eq!(status, 200, "{sec}");
    assert_eq!(sec["secret"], w["secret"]);
    assert!(sec["previous_secret_expires_at"].is_null(), "{sec}");
    // Each webhook has its own secret.
    let other = s
        .create_webhook("https://example.com/sec2", json!({}))
        .await;
    assert_ne!(other["secret"], w["secret"]);
}

#[tokio::test]
async fn rotate_secret_returns_a_new_one_and_the_old_keeps_signing_for_24h() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let w = s.create_webhook("https://example.com/rot", json!({})).await;
    let old = assert_whsec(&w["secret"]);
    let path = format!("{HOOKS}/{}/secret", w["id"]);

    let before = time::OffsetDateTime::now_utc();
    let (status, rotated) = s.post(&format!("{path}/rotate"), json!({})).await;
    assert_eq!(status, 200, "{rotated}");
    let new = assert_whsec(&rotated["secret"]);
    assert_ne!(new, old);
    let until = parse_ts(
        rotated["previous_secret_expires_at"]
            .as_str()
            .expect("expiry set"),
    );
    let expected = before + time::Duration::hours(24);
    assert!(
        (until - expected).abs() < time::Duration::minutes(5),
        "previous secret expires at {until}, expected about {expected}"
    );

    let (status, sec) = s.get(&path).await;
    assert_eq!(status, 200, "{sec}");
    assert_eq!(sec["secret"], new.as_str());
    assert_eq!(
        sec["previous_secret_expires_at"],
        rotated["previous_secret_expires_at"]
    );

    // Rotating with no body at all works too, and gives yet another secret.
    let (status, again) = send(s.req(Method::POST, &format!("{path}/rotate"))).await;
    assert_eq!(status, 200, "{again}");
    let newer = assert_whsec(&again["secret"]);
    assert_ne!(newer, new);
    assert_ne!(newer, old);
    let (_, sec) = s.get(&path).await;
    assert_eq!(sec["secret"], newer.as_str());
}

#[tokio::test]
async fn secret_and_rotate_of_unknown_webhook_are_404() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (status, ct, problem) = full(s.req(Method::GET, &format!("{HOOKS}/4242/secret"))).await;
    assert_problem(status, &ct, &problem, 404);
    let (status, ct, problem) =
        full(s.req(Method::POST, &format!("{HOOKS}/4242/secret/rotate"))).await;
    assert_problem(status, &ct, &problem, 404);
}

#[tokio::test]
async fn rotate_with_invalid_json_is_400_and_keeps_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let w = s.create_webhook("https://example.com/rj", json!({})).await;
    let path = format!("{HOOKS}/{}/secret", w["id"]);
    let (status, ct, problem) = raw(&s, Method::POST, &format!("{path}/rotate"), "{").await;
    assert_problem(status, &ct, &problem, 400);
    let (status, ct, problem) =
        raw(&s, Method::POST, &format!("{path}/rotate"), "{\"nope\": 1}").await;
    assert_problem(status, &ct, &problem, 400);
    let (_, sec) = s.get(&path).await;
    assert_eq!(sec["secret"], w["secret"]);
}

// ---------------------------------------------------------------- unsuspend

#[tokio::test]
async fn unsuspend_answers_200_with_the_webhook_not_suspended() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let w = s.create_webhook("https://example.com/uns", json!({})).await;
    let (status, u) = send(s.req(Method::POST, &format!("{HOOKS}/{}/unsuspend", w["id"]))).await;
    assert_eq!(status, 200, "{u}");
    assert_eq!(u["id"], w["id"]);
    assert_eq!(u["suspended"], false);
    assert!(u["suspended_at"].is_null(), "{u}");
    assert_eq!(u["name"], w["name"]);
    let (status, ct, problem) = full(s.req(Method::POST, &format!("{HOOKS}/999/unsuspend"))).await;
    assert_problem(status, &ct, &problem, 404);
}

// ---------------------------------------------------------------- misc

#[tokio::test]
async fn requests_without_a_key_are_401_before_validation() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (status, ct, problem) = full(s.client.post(s.url(HOOKS)).body("{")).await;
    assert_problem(status, &ct, &problem, 401);
    let (status, _, _) = full(s.client.get(s.url(&format!("{HOOKS}/abc")))).await;
    assert!(status == 401 || status == 400 || status == 404, "{status}");
    // The bootstrap key still works.
    let (status, _) = send(s.req_as(MGMT_KEY, Method::GET, HOOKS)).await;
    assert_eq!(status, 200);
}

// ---------------------------------------------------------------- concurrency

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

#[tokio::test]
async fn concurrent_add_events_patches_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let w = s
        .create_webhook(
            "https://example.com/concurrent",
            json!({"events": ["webhook.test"]}),
        )
        .await;
    let path = format!("{HOOKS}/{}", w["id"]);
    let events = [
        "license.generated",
        "license.created",
        "license.updated",
        "license.deleted",
        "license.assigned",
        "license.activated",
        "license.deactivated",
        "license.suspended",
        "license.expired",
        "license.revoked",
        "activation.created",
        "activation.failed",
    ];
    let requests = events
        .iter()
        .map(|e| s.patch(&path, json!({"add_events": [e]})));
    let answers = futures::future::join_all(requests).await;
    let (_, got) = s.get(&path).await;
    let have: Vec<&str> = got["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(have.contains(&"webhook.test"), "{got}");
    for (e, (status, body)) in events.iter().zip(&answers) {
        assert!(*status == 200 || *status == 409, "add {e}: {status} {body}");
        if *status == 200 {
            assert!(have.contains(e), "add {e} answered 200 but was lost: {got}");
        }
    }
    let conflicts = answers.iter().filter(|(status, _)| *status == 409).count();
    assert!(
        conflicts <= events.len() / 2,
        "{conflicts} of {} concurrent patches failed with 409",
        events.len()
    );
}
