//! Listing and reading webhooks: paging, filters, unknown and malformed ids.

use super::*;

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
