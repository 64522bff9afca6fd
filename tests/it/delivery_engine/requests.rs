//! Fan-out and the delivered request: who gets a delivery, and its body,
//! headers and signature exactly; event data delivered unchanged.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_follows_subscriptions_enabled_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    let exact = s
        .create_webhook(
            &r.url("/exact"),
            json!({"name": "exact", "events": ["license.created"]}),
        )
        .await;
    let wildcard = s
        .create_webhook(
            &r.url("/wildcard"),
            json!({"name": "wild", "events": ["license.*"]}),
        )
        .await;
    s.create_webhook(
        &r.url("/other"),
        json!({"name": "other", "events": ["license.updated"]}),
    )
    .await;
    s.create_webhook(
        &r.url("/disabled"),
        json!({"name": "off", "enabled": false}),
    )
    .await;
    let staging = s
        .create_webhook(
            &r.url("/staging"),
            json!({"name": "stg", "environment": "staging"}),
        )
        .await;
    let staging_wild = s
        .create_webhook(
            &r.url("/staging-wild"),
            json!({"name": "stg2", "environment": "staging", "events": ["license.*"]}),
        )
        .await;

    // production (the default environment)
    let p = publish(
        &s,
        json!({"type": "license.created", "data": {"k": "prod"}}),
    )
    .await;
    assert_eq!(p["deliveries"], 2, "exact + wildcard in production: {p}");
    let e = event(&s, p["id"].as_str().unwrap()).await;
    let hooks: HashSet<i64> = e["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["webhook_id"].as_i64().unwrap())
        .collect();
    assert_eq!(hooks, HashSet::from([wid(&exact), wid(&wildcard)]), "{e}");
    for path in ["/exact", "/wildcard"] {
        let got = r.wait_for(path, 1, WAIT).await;
        assert_eq!(got[0].json()["id"], p["id"]);
        assert_eq!(got[0].json()["data"]["k"], "prod");
    }

    // staging reaches only staging webhooks
    let st = publish(
        &s,
        json!({"type": "license.created", "data": {"k": "stg"}, "environment": "staging"}),
    )
    .await;
    assert_eq!(st["deliveries"], 2, "{st}");
    let e = event(&s, st["id"].as_str().unwrap()).await;
    assert_eq!(e["environment"], "staging");
    let hooks: HashSet<i64> = e["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["webhook_id"].as_i64().unwrap())
        .collect();
    assert_eq!(hooks, HashSet::from([wid(&staging), wid(&staging_wild)]));
    r.wait_for("/staging", 1, WAIT).await;
    r.wait_for("/staging-wild", 1, WAIT).await;

    // a wildcard-only type reaches the wildcard alone
    let upd = publish_type(&s, "license.revoked").await;
    assert_eq!(upd["deliveries"], 1, "{upd}");
    r.wait_for("/wildcard", 2, WAIT).await;

    // Deliveries are made at publish: these five are all there will be.
    // Once each has succeeded, every receiver has had all it will get.
    let all = list_all(&s, "").await;
    assert_eq!(all.len(), 5, "{all:?}");
    for d in &all {
        wait_status(&s, d["id"].as_i64().unwrap(), "succeeded").await;
    }
    assert_eq!(
        r.received("/exact").len(),
        1,
        "exact got more than its event"
    );
    assert_eq!(r.received("/wildcard").len(), 2);
    assert_eq!(
        r.received("/other").len(),
        0,
        "unsubscribed webhook got a delivery"
    );
    assert_eq!(
        r.received("/disabled").len(),
        0,
        "disabled webhook got a delivery"
    );
    assert_eq!(
        r.received("/staging").len(),
        1,
        "staging webhook got a production event"
    );
    assert_eq!(r.received("/staging-wild").len(), 1);
    for x in r.received("/staging") {
        assert_eq!(x.json()["data"]["k"], "stg");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_nobody_subscribes_to_makes_no_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    s.create_webhook(&r.url("/a"), json!({})).await;
    let p = publish_type(&s, "product.created").await;
    assert_eq!(p["deliveries"], 0, "{p}");
    let e = event(&s, p["id"].as_str().unwrap()).await;
    assert_eq!(e["deliveries"].as_array().unwrap().len(), 0, "{e}");
}

type HmacSha256 = Hmac<sha2::Sha256>;

fn expected_signature(secret: &str, msg_id: &str, ts: &str, body: &[u8]) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ secret"))
        .expect("base64 secret");
    let mut mac = HmacSha256::new_from_slice(&key).unwrap();
    mac.update(format!("{msg_id}.{ts}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_and_headers_are_exactly_as_specified() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    let w = s
        .create_webhook(
            &r.url("/hook"),
            json!({"headers": {"X-Api-Token": ["tok-123"], "X-Multi": ["one", "two"]}}),
        )
        .await;
    let secret = w["secret"]
        .as_str()
        .expect("secret in create answer")
        .to_owned();
    let data =
        json!({"license_id": 42, "nested": {"list": [1, "two", null], "ok": true}, "s": "é\"q"});
    let p = publish(&s, json!({"type": "license.created", "data": data})).await;
    let event_id = p["id"].as_str().unwrap().to_owned();
    assert!(event_id.starts_with("evt_"), "{p}");
    assert_eq!(p["type"], "license.created");
    let delivery_id = only_delivery(&s, &event_id).await;

    let got = r.wait_for("/hook", 1, WAIT).await;
    let req = &got[0];

    // Body: exactly {"id","type","timestamp","data"}.
    let body = req.json();
    let keys: HashSet<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        HashSet::from(["id", "type", "timestamp", "data"]),
        "{body}"
    );
    assert_eq!(body["id"], event_id.as_str());
    assert_eq!(body["type"], "license.created");
    assert_eq!(body["data"], data);
    let ts = body["timestamp"].as_str().unwrap();
    time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("timestamp {ts:?} is not RFC 3339: {e}"));
    assert_eq!(
        ts,
        p["created_at"].as_str().unwrap(),
        "body timestamp = event created_at"
    );

    // hookd's headers.
    let h = |n: &str| {
        req.header(n)
            .unwrap_or_else(|| panic!("header {n} missing"))
    };
    assert_eq!(h("content-type"), "application/json");
    assert!(
        h("user-agent").starts_with("hookd/"),
        "user-agent {}",
        h("user-agent")
    );
    let expected_id = format!("sls-webhook-{delivery_id}");
    assert_eq!(h("idempotency-key"), expected_id);
    assert_eq!(h("webhook-id"), expected_id);
    let wts = h("webhook-timestamp");
    let wts_n: i64 = wts.parse().expect("webhook-timestamp is unix seconds");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(
        (now - wts_n).abs() < 60,
        "webhook-timestamp {wts_n} far from now {now}"
    );
    let sig = h("webhook-signature");
    assert!(
        !sig.contains(' '),
        "one live secret gives one signature: {sig}"
    );
    assert_eq!(
        sig,
        expected_signature(&secret, &expected_id, &wts, &req.body)
    );
    assert_eq!(h("x-webhook-signature"), sig);
    for n in [
        "content-type",
        "user-agent",
        "idempotency-key",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "x-webhook-signature",
    ] {
        assert_eq!(
            req.headers.get_all(n).iter().count(),
            1,
            "{n} sent more than once"
        );
    }

    // Custom headers, all values.
    assert_eq!(h("x-api-token"), "tok-123");
    let multi: Vec<&str> = req
        .headers
        .get_all("x-multi")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(multi, vec!["one", "two"]);

    // The attempt log: the URL, hookd's headers, custom values redacted.
    let d = wait_status(&s, delivery_id, "succeeded").await;
    assert_eq!(d["event_id"], event_id.as_str());
    assert_eq!(d["event_type"], "license.created");
    assert_eq!(d["webhook_id"], w["id"]);
    assert_eq!(d["attempt_count"], 1);
    assert_eq!(d["response_status"], 200);
    let a = &attempts(&d)[0];
    assert_eq!(a["url"], r.url("/hook"));
    assert_eq!(a["response_status"], 200);
    assert!(a["error_kind"].is_null(), "{a}");
    assert!(a["duration_ms"].as_i64().unwrap() >= 0);
    assert!(a["attempted_at"].is_string());
    assert_eq!(a["request_headers"]["webhook-id"], expected_id.as_str());
    let logged = a["request_headers"].to_string();
    assert!(
        !logged.contains("tok-123"),
        "custom header value logged: {logged}"
    );
    assert!(!logged.contains(&secret), "secret logged: {logged}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_data_is_delivered_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    s.create_webhook(&r.url("/hook"), json!({})).await;
    // Sent as raw text: numbers beyond 64 bits and exact decimals must
    // reach the receiver as published, not rounded through a float.
    let raw = r#"{"type":"license.created","data":{"big":123456789012345678901234567890,"price":"9.99","neg":-9007199254740993,"deep":{"a":[{"b":null}]}}}"#;
    let (status, p) = send(
        s.req(Method::POST, "/v1/events")
            .header("content-type", "application/json")
            .body(raw),
    )
    .await;
    assert_eq!(status, 202, "{p}");
    let got = r.wait_for("/hook", 1, WAIT).await;
    let body = String::from_utf8(got[0].body.to_vec()).unwrap();
    assert!(
        body.contains("123456789012345678901234567890"),
        "a big integer was altered on the way: {body}"
    );
    assert!(
        body.contains("-9007199254740993"),
        "an integer was altered: {body}"
    );
    // A large payload (~1 MiB) arrives whole.
    let blob = "x".repeat(1024 * 1024);
    let p = publish(
        &s,
        json!({"type": "license.created", "data": {"blob": blob}}),
    )
    .await;
    let got = r.wait_for("/hook", 2, WAIT).await;
    let body = got[1].json();
    assert_eq!(body["id"], p["id"]);
    assert_eq!(
        body["data"]["blob"].as_str().map(str::len),
        Some(1024 * 1024)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_webhook_gets_its_own_delivery_and_idempotency_key() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    s.create_webhook(&r.url("/a"), json!({"name": "a"})).await;
    s.create_webhook(&r.url("/b"), json!({"name": "b"})).await;
    let p = publish_type(&s, "license.created").await;
    assert_eq!(p["deliveries"], 2);
    let a = r.wait_for("/a", 1, WAIT).await;
    let b = r.wait_for("/b", 1, WAIT).await;
    assert_eq!(a[0].body, b[0].body, "one event, one body");
    assert_ne!(
        a[0].header("idempotency-key"),
        b[0].header("idempotency-key"),
        "two deliveries share an Idempotency-Key"
    );
    let e = event(&s, p["id"].as_str().unwrap()).await;
    let keys: HashSet<String> = e["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| format!("sls-webhook-{}", d["id"]))
        .collect();
    let sent: HashSet<String> = [&a[0], &b[0]]
        .iter()
        .map(|x| x.header("idempotency-key").unwrap())
        .collect();
    assert_eq!(keys, sent);
}
