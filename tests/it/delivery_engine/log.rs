//! The delivery log's cursor, tenant isolation of deliveries and events,
//! metrics, and rate-limited webhooks.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delivery_log_pages_by_cursor_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    let w = s.create_webhook(&r.url("/hook"), json!({})).await;
    let mut expected = Vec::new();
    for _ in 0..5 {
        let p = publish_type(&s, "license.created").await;
        expected.push(only_delivery(&s, p["id"].as_str().unwrap()).await);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            None => format!("/management/deliveries?webhook_id={}&limit=2", wid(&w)),
            Some(c) => format!(
                "/management/deliveries?webhook_id={}&limit=2&cursor={c}",
                wid(&w)
            ),
        };
        let (status, page) = s.get(&path).await;
        assert_eq!(status, 200, "{page}");
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2, "{page}");
        for d in data {
            for k in [
                "id",
                "event_id",
                "event_type",
                "webhook_id",
                "status",
                "attempt_count",
                "response_status",
                "last_error",
                "next_attempt_at",
                "created_at",
                "updated_at",
            ] {
                assert!(d.get(k).is_some(), "delivery lacks {k}: {d}");
            }
            seen.push(d["id"].as_i64().unwrap());
        }
        pages += 1;
        assert!(pages < 10, "the cursor does not end");
        match &page["next_cursor"] {
            Value::Null => break,
            Value::String(c) => cursor = Some(c.clone()),
            other => panic!("next_cursor is {other}"),
        }
    }
    assert_eq!(pages, 3, "5 deliveries at 2 a page");
    let mut want = expected.clone();
    want.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(seen, want, "every delivery once, newest first");

    // Filters.
    let list = list_all(&s, "event_type=license.updated").await;
    assert!(list.is_empty());
    let list = list_all(&s, "event_type=license.created").await;
    assert_eq!(list.len(), 5);
    let list = list_all(&s, &format!("since={}", now_rfc3339_minus(-60))).await;
    assert!(list.is_empty(), "since is in the future");
    let list = list_all(&s, &format!("until={}", now_rfc3339_minus(-60))).await;
    assert_eq!(list.len(), 5);
    let (status, e) = s.get("/management/deliveries?status=nope").await;
    assert_field_error(status, &e, "status");
    let (status, e) = s.get("/management/deliveries?cursor=abc").await;
    assert_field_error(status, &e, "cursor");
    let (status, _) = s.get("/management/deliveries/999999").await;
    assert_eq!(status, 404);

    // The event log pages the same way.
    let (status, page) = s.get("/management/events?limit=2").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    assert!(page["next_cursor"].is_string(), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_cannot_see_each_others_deliveries_or_events() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    s.create_webhook(&r.url("/a"), json!({})).await;
    let p = publish_type(&s, "license.created").await;
    let event_id = p["id"].as_str().unwrap().to_owned();
    let id = only_delivery(&s, &event_id).await;
    wait_status(&s, id, "succeeded").await;

    let b = s.api_key("tenant-b", &["admin"]).await;
    for path in [
        format!("/management/deliveries/{id}"),
        format!("/management/events/{event_id}"),
    ] {
        let (status, e) = send(s.req_as(&b, Method::GET, &path)).await;
        assert_eq!(status, 404, "tenant B GET {path}: {e}");
        // A bootstrap key acting on tenant B, too.
        let (status, e) = send(s.req(Method::GET, &path).header("X-Tenant-Id", "tenant-b")).await;
        assert_eq!(status, 404, "bootstrap key as tenant-b GET {path}: {e}");
    }
    let (status, e) = send(s.req_as(
        &b,
        Method::POST,
        &format!("/management/deliveries/{id}/retry"),
    ))
    .await;
    assert_eq!(status, 404, "tenant B retry: {e}");
    let (status, list) = send(s.req_as(&b, Method::GET, "/management/deliveries")).await;
    assert_eq!(status, 200);
    assert!(list["data"].as_array().unwrap().is_empty(), "{list}");
    let (status, list) = send(s.req_as(&b, Method::GET, "/management/events")).await;
    assert_eq!(status, 200);
    assert!(list["data"].as_array().unwrap().is_empty(), "{list}");

    // Tenant B's events never reach tenant A's webhooks.
    let (status, pb) = send(
        s.req_as(&b, Method::POST, "/v1/events")
            .json(&json!({"type": "license.created", "data": {}})),
    )
    .await;
    assert_eq!(status, 202, "{pb}");
    assert_eq!(pb["deliveries"], 0, "{pb}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_deliveries_and_queue_depth() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    s.create_webhook(&r.url("/hook"), json!({})).await;
    let p = publish_type(&s, "license.created").await;
    let id = only_delivery(&s, p["id"].as_str().unwrap()).await;
    wait_status(&s, id, "succeeded").await;
    let deadline = Instant::now() + WAIT;
    loop {
        let text = s.metrics().await;
        if text.contains("hookd_deliveries_total") && text.contains("hookd_queue_depth") {
            assert!(
                text.lines()
                    .any(|l| l.starts_with("hookd_deliveries_total") && l.contains("succeeded")),
                "no succeeded outcome counted:\n{text}"
            );
            break;
        }
        if Instant::now() > deadline {
            panic!("metrics lack hookd_deliveries_total or hookd_queue_depth:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_webhook_gets_all_deliveries_spread_out() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    s.create_webhook(&r.url("/hook"), json!({"rate_limit": 5}))
        .await;
    let events: Vec<Value> = (0..10)
        .map(|i| json!({"type": "license.created", "data": {"i": i}}))
        .collect();
    let (status, b) = s.post("/v1/events/batch", json!({"events": events})).await;
    assert_eq!(status, 202, "{b}");
    let got = r.wait_for("/hook", 10, WAIT).await;
    let span = got[9].at - got[0].at;
    // 10 at 5/s: at least ~1 s between the first and the last (allowing a burst).
    assert!(
        span >= Duration::from_millis(700),
        "10 deliveries at 5/s took only {span:?}"
    );
    let ids: HashSet<String> = got
        .iter()
        .map(|x| x.json()["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 10);
}
