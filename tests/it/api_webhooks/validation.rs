//! What a create refuses, and how: broken JSON, wrong types, unknown fields,
//! and each field's rules, every error a problem+json naming the field.

use super::*;

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
