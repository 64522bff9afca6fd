//! Changing and deleting webhooks: PATCH with its add/remove forms, refused
//! patches that change nothing, concurrent patches, delete.

use super::*;

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
    // add_headers is validated like headers; its errors name it.
    let (status, problem) = s
        .patch(
            &path,
            json!({"add_headers": {"webhook-signature": ["forged"]}}),
        )
        .await;
    assert_field_error_under(status, &problem, "add_headers");
    let (status, problem) = s
        .patch(&path, json!({"add_headers": {"X-E": ["a\r\nb"]}}))
        .await;
    assert_field_error_under(status, &problem, "add_headers");
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
            "add_events",
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
