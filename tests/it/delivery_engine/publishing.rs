//! Publishing: idempotency keys, batches, validation, permissions.

use super::*;

/// Publishes racing with the same keys make one event per key and all get
/// its answer (on PostgreSQL several commits are in flight at once: the
/// later ones must wait for the first, not fail on its unique key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishes_with_one_key_make_one_event() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    let w = s.create_webhook(&r.url("/race"), json!({})).await;
    let sends = (0..60).map(|n| {
        let body = json!({"type": "license.created", "data": {"n": n},
            "idempotency_key": format!("race-{}", n % 4)});
        send(s.req(Method::POST, "/v1/events").json(&body))
    });
    let answers = futures::future::join_all(sends).await;
    let mut by_key: HashMap<String, HashSet<String>> = HashMap::new();
    for (n, (status, body)) in answers.iter().enumerate() {
        assert_eq!(*status, 202, "publish {n}: {body}");
        by_key
            .entry(format!("race-{}", n % 4))
            .or_default()
            .insert(body.to_string());
    }
    for (key, seen) in &by_key {
        assert_eq!(seen.len(), 1, "{key} got different answers: {seen:?}");
    }
    r.wait_for("/race", 4, WAIT).await;
    assert_eq!(
        list_all(&s, &format!("webhook_id={}", wid(&w))).await.len(),
        4,
        "one delivery per key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_idempotency_key_gives_the_same_answer_and_one_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    let w = s.create_webhook(&r.url("/hook"), json!({})).await;

    let body = json!({"type": "license.created", "data": {"n": 1}, "idempotency_key": "order-1"});
    let a = publish(&s, body.clone()).await;
    let b = publish(&s, body).await;
    assert_eq!(a, b, "a repeated key must return the first answer");

    // Via the Idempotency-Key header.
    let hdr = |n: i64| {
        s.req(Method::POST, "/v1/events")
            .header("Idempotency-Key", "order-2")
            .json(&json!({"type": "license.created", "data": {"n": n}}))
    };
    let (s1, c) = send(hdr(2)).await;
    let (s2, d) = send(hdr(3)).await;
    assert_eq!((s1, s2), (202, 202), "{c} {d}");
    assert_eq!(c, d, "the header key must replay the first answer");
    assert_ne!(c["id"], a["id"]);

    // The body key and the header key are the same key.
    let (s3, e) = send(
        s.req(Method::POST, "/v1/events")
            .header("Idempotency-Key", "order-1")
            .json(&json!({"type": "license.created", "data": {"n": 9}})),
    )
    .await;
    assert_eq!(s3, 202, "{e}");
    assert_eq!(e, a);

    let got = r.wait_for("/hook", 2, WAIT).await;
    // Replays make no delivery (deliveries are made at publish).
    assert_eq!(
        list_all(&s, &format!("webhook_id={}", wid(&w))).await.len(),
        2,
        "a replayed publish made a delivery"
    );
    assert_eq!(
        r.received("/hook").len(),
        2,
        "a replayed publish delivered again"
    );
    let ids: HashSet<String> = got
        .iter()
        .map(|x| x.json()["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids,
        HashSet::from([
            a["id"].as_str().unwrap().to_owned(),
            c["id"].as_str().unwrap().to_owned()
        ])
    );
    let list = list_all(&s, &format!("webhook_id={}", wid(&w))).await;
    assert_eq!(list.len(), 2, "{list:?}");
    // The first data is kept.
    assert_eq!(event(&s, c["id"].as_str().unwrap()).await["data"]["n"], 2);
    // Events: only two.
    let (_, events) = s.get("/management/events").await;
    assert_eq!(events["data"].as_array().unwrap().len(), 2, "{events}");

    // Keys are per tenant: another tenant's same key is a new event.
    let other = send(
        s.req(Method::POST, "/v1/events")
            .header("X-Tenant-Id", "tenant-x")
            .header("Idempotency-Key", "order-1")
            .json(&json!({"type": "license.created", "data": {}})),
    )
    .await;
    assert_eq!(other.0, 202, "{}", other.1);
    assert_ne!(other.1["id"], a["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_answer_in_order_and_are_limited() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    s.create_webhook(&r.url("/hook"), json!({"events": ["license.*"]}))
        .await;
    let types = ["license.created", "license.updated", "license.deleted"];
    let (status, b) = s
        .post(
            "/v1/events/batch",
            json!({"events": types.iter().enumerate()
                .map(|(i, t)| json!({"type": t, "data": {"i": i}}))
                .collect::<Vec<_>>()}),
        )
        .await;
    assert_eq!(status, 202, "{b}");
    let data = b["data"].as_array().expect("data array");
    assert_eq!(data.len(), 3, "{b}");
    for (i, t) in types.iter().enumerate() {
        assert_eq!(data[i]["type"], *t, "answer {i} out of order: {b}");
        assert_eq!(data[i]["deliveries"], 1);
        assert!(data[i]["id"].as_str().unwrap().starts_with("evt_"));
        assert!(data[i]["created_at"].is_string());
    }
    let ids: HashSet<&str> = data.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3);
    let got = r.wait_for("/hook", 3, WAIT).await;
    let by_id: HashMap<String, Value> = got
        .iter()
        .map(|x| (x.json()["id"].as_str().unwrap().to_owned(), x.json()))
        .collect();
    for (i, d) in data.iter().enumerate() {
        let body = &by_id[d["id"].as_str().unwrap()];
        assert_eq!(body["type"], types[i]);
        assert_eq!(body["data"]["i"], i);
    }

    // 1001 events: 400, nothing stored.
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"type": "license.created", "data": {"i": i}}))
        .collect();
    let (status, e) = s.post("/v1/events/batch", json!({"events": many})).await;
    assert_field_error(status, &e, "events");
    // Empty: 400.
    let (status, e) = s.post("/v1/events/batch", json!({"events": []})).await;
    assert_field_error(status, &e, "events");
    // One bad event fails the whole batch, naming it.
    let (status, e) = s
        .post(
            "/v1/events/batch",
            json!({"events": [
                {"type": "license.created", "data": {}},
                {"type": "license.created", "data": [1]},
            ]}),
        )
        .await;
    assert_eq!(status, 400, "{e}");
    assert!(
        e.to_string().contains("events[1]"),
        "the bad event is not named: {e}"
    );
    // 1000 is fine.
    let thousand: Vec<Value> = (0..1000)
        .map(|i| json!({"type": "product.created", "data": {"i": i}}))
        .collect();
    let (status, ok) = s
        .post("/v1/events/batch", json!({"events": thousand}))
        .await;
    assert_eq!(status, 202, "{ok}");
    assert_eq!(ok["data"].as_array().unwrap().len(), 1000);

    // Rejected batches stored nothing; the 1000 product events match no
    // webhook: the three accepted events' deliveries are all there are.
    assert_eq!(list_all(&s, "").await.len(), 3);
    assert_eq!(
        r.received("/hook").len(),
        3,
        "a rejected batch delivered something"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_events_are_400s_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let cases = [
        (json!({"data": {}}), "type"),
        (json!({"type": "license.created", "data": [1, 2]}), "data"),
        (json!({"type": "license.created", "data": "text"}), "data"),
        (json!({"type": "license.created", "data": 5}), "data"),
        (json!({"type": "license.created"}), "data"),
        (
            json!({"type": "license.created", "data": {}, "environment": "moon"}),
            "environment",
        ),
        (json!({"type": "Not A Type", "data": {}}), "type"),
        (
            json!({"type": "license.created", "data": {}, "bogus": 1}),
            "bogus",
        ),
        (
            json!({"type": "license.created", "data": {}, "idempotency_key": ""}),
            "idempotency_key",
        ),
    ];
    for (body, field) in cases {
        let (status, e) = s.post("/v1/events", body.clone()).await;
        assert_field_error(status, &e, field);
        assert_eq!(e["status"], 400, "{body}: {e}");
    }
    // Malformed JSON.
    let (status, e) = send(
        s.req(Method::POST, "/v1/events")
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    let (_, events) = s.get("/management/events").await;
    assert_eq!(events["data"].as_array().unwrap().len(), 0, "{events}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_needs_events_publish() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let body = json!({"type": "license.created", "data": {}});
    let (status, e) = send(s.client.post(s.url("/v1/events")).json(&body)).await;
    assert_eq!(status, 401, "no key: {e}");
    let (status, _) = send(
        s.client
            .post(s.url("/v1/events"))
            .bearer_auth("nope")
            .json(&body),
    )
    .await;
    assert_eq!(status, 401, "a wrong key");
    let reader = s.api_key("default", &["webhooks:read"]).await;
    let (status, e) = send(s.req_as(&reader, Method::POST, "/v1/events").json(&body)).await;
    assert_eq!(status, 403, "webhooks:read key: {e}");
    let (status, _) = send(
        s.req_as(&reader, Method::POST, "/v1/events/batch")
            .json(&json!({"events": [body.clone()]})),
    )
    .await;
    assert_eq!(status, 403, "batch with a webhooks:read key");
    let publisher = s.api_key("default", &["events:publish"]).await;
    let (status, e) = send(s.req_as(&publisher, Method::POST, "/v1/events").json(&body)).await;
    assert_eq!(status, 202, "{e}");
    let (status, e) = send(
        s.req_as(&publisher, Method::POST, "/v1/events/batch")
            .json(&json!({"events": [body]})),
    )
    .await;
    assert_eq!(status, 202, "{e}");
    // A publisher cannot read the log.
    let (status, _) = send(s.req_as(&publisher, Method::GET, "/management/deliveries")).await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_keys_in_a_batch_and_concurrent_publishes_make_one_event() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    let w = s.create_webhook(&r.url("/hook"), json!({})).await;
    let (status, b) = s
        .post(
            "/v1/events/batch",
            json!({"events": [
                {"type": "license.created", "data": {"i": 0}, "idempotency_key": "k-batch"},
                {"type": "license.created", "data": {"i": 1}, "idempotency_key": "k-batch"},
                {"type": "license.created", "data": {"i": 2}},
            ]}),
        )
        .await;
    assert_eq!(status, 202, "{b}");
    let d = b["data"].as_array().unwrap();
    assert_eq!(d.len(), 3, "one answer per event: {b}");
    assert_eq!(d[0], d[1], "the repeated key must answer the first: {b}");
    assert_ne!(d[0]["id"], d[2]["id"]);

    // 16 concurrent publishes with one key: one event.
    let futs = (0..16).map(|i| {
        send(
            s.req(Method::POST, "/v1/events")
                .header("Idempotency-Key", "k-race")
                .json(&json!({"type": "license.created", "data": {"i": i}})),
        )
    });
    let answers = futures::future::join_all(futs).await;
    let ids: HashSet<String> = answers
        .iter()
        .map(|(st, a)| {
            assert_eq!(*st, 202, "{a}");
            a["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        ids.len(),
        1,
        "concurrent publishes with one key made {} events",
        ids.len()
    );

    r.wait_for("/hook", 3, WAIT).await;
    assert_eq!(r.received("/hook").len(), 3);
    assert_eq!(
        list_all(&s, &format!("webhook_id={}", wid(&w))).await.len(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idempotency_prefix_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let s = ServerConfig::new(dir.path())
        .arg("--allow-private-targets")
        .arg("--idempotency-prefix")
        .arg("acme-")
        .start()
        .await;
    let r = Receiver::start().await;
    s.create_webhook(&r.url("/hook"), json!({})).await;
    let p = publish_type(&s, "license.created").await;
    let id = only_delivery(&s, p["id"].as_str().unwrap()).await;
    let got = r.wait_for("/hook", 1, WAIT).await;
    assert_eq!(
        got[0].header("idempotency-key").unwrap(),
        format!("acme-{id}")
    );
    assert_eq!(got[0].header("webhook-id").unwrap(), format!("acme-{id}"));
}

/// `--engine-threads 3`: attempts run on a work-stealing runtime. Every
/// event still reaches every webhook exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_threaded_engine_delivers_every_event_once() {
    const EVENTS: usize = 400;
    let dir = tempfile::tempdir().unwrap();
    let s = ServerConfig::new(dir.path())
        .arg("--allow-private-targets")
        .arg("--engine-threads")
        .arg("3")
        .start()
        .await;
    // Three workers and the thread that holds the runtime (one alone
    // without the flag on this machine's two cores).
    assert!(
        s.threads_named("hookd-engine") >= 3,
        "{} engine threads",
        s.threads_named("hookd-engine")
    );
    let r = Receiver::start().await;
    for w in 0..5 {
        s.create_webhook(&r.url(&format!("/w{w}")), json!({})).await;
    }
    for batch in 0..EVENTS / 100 {
        let events: Vec<_> = (0..100)
            .map(|i| json!({"type": "license.created", "data": {"n": batch * 100 + i}}))
            .collect();
        let (status, body) = s
            .post("/v1/events/batch", json!({ "events": events }))
            .await;
        assert_eq!(status, 202, "{body}");
    }
    for w in 0..5 {
        let path = format!("/w{w}");
        r.wait_for(&path, EVENTS, Duration::from_secs(30)).await;
    }
    // Anything sent twice would have arrived by now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for w in 0..5 {
        let got = r.received(&format!("/w{w}"));
        let distinct: HashSet<u64> = got
            .iter()
            .map(|g| g.json()["data"]["n"].as_u64().unwrap())
            .collect();
        assert_eq!(
            (got.len(), distinct.len()),
            (EVENTS, EVENTS),
            "/w{w}: every event once"
        );
    }
}

/// The commit loop's committed transactions so far (`/metrics`).
async fn commits(s: &TestServer) -> u64 {
    s.metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix(r#"hookd_store_commits_total{result="committed"} "#))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// Publishes one after another, each delivered as soon as it commits: on
/// SQLite (one commit at a time), once publishes come steadily, an outcome
/// waits for the next publish and shares its commit instead of taking one
/// of its own (about two commits a publish without that; the unit test of
/// `PublishPace` shows when the wait applies). On PostgreSQL outcomes
/// commit beside publishes in lanes of their own; there the count is only
/// bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_publishes_share_their_commits_with_outcomes() {
    const EVENTS: u64 = 100;
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    s.create_webhook(&r.url("/hook"), json!({})).await;
    let before = commits(&s).await;
    let mut ids = Vec::new();
    for n in 0..EVENTS {
        let p = publish(&s, json!({"type": "license.created", "data": {"n": n}})).await;
        ids.push(p["id"].as_str().unwrap().to_owned());
    }
    r.wait_for("/hook", EVENTS as usize, WAIT).await;
    for id in &ids {
        wait_status(&s, only_delivery(&s, id).await, "succeeded").await;
    }
    let made = commits(&s).await - before;
    // Every publish and every outcome: 2 × EVENTS at most.
    assert!(made <= 2 * EVENTS, "{made} commits for {EVENTS} publishes");
    if !common::on_postgres() {
        assert!(
            made < EVENTS * 3 / 2,
            "{made} commits for {EVENTS} publishes and their outcomes"
        );
    }
}
