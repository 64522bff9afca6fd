//! The delivery engine end to end (SPEC §5–§7): fan-out, the delivered
//! request, retries and their schedule, Retry-After, redirects, timeouts,
//! connection errors, 410 and failure-handling suspension, unsuspend,
//! recover, manual retry, test sends, idempotent publishing, batches,
//! validation, permissions, the response-body limit, the delivery log's
//! cursor, tenant isolation and metrics.
//!
//! Every test runs the real binary against a real HTTP receiver on
//! 127.0.0.1 (hence `--allow-private-targets`) with millisecond retry
//! schedules, and waits by polling with deadlines.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::receiver::{Receiver, Reply, closing_server};
use crate::common::{ServerConfig, TestServer, assert_field_error, send};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- helpers

/// A server that may deliver to 127.0.0.1, with a fast default schedule.
async fn server(dir: &Path) -> TestServer {
    ServerConfig::new(dir)
        .arg("--allow-private-targets")
        .arg("--retry-schedule")
        .arg("50ms,100ms")
        .start()
        .await
}

/// Publishes one event; asserts 202 and answers the body.
async fn publish(s: &TestServer, body: Value) -> Value {
    let (status, json) = s.post("/v1/events", body.clone()).await;
    assert_eq!(status, 202, "publishing {body} answered {status}: {json}");
    json
}

async fn publish_type(s: &TestServer, event_type: &str) -> Value {
    publish(s, json!({"type": event_type, "data": {"n": 1}})).await
}

/// The event with its deliveries.
async fn event(s: &TestServer, id: &str) -> Value {
    let (status, json) = s.get(&format!("/management/events/{id}")).await;
    assert_eq!(status, 200, "GET event {id}: {json}");
    json
}

/// The id of the only delivery of `event_id`.
async fn only_delivery(s: &TestServer, event_id: &str) -> i64 {
    let e = event(s, event_id).await;
    let ds = e["deliveries"].as_array().expect("deliveries array");
    assert_eq!(ds.len(), 1, "expected one delivery for {event_id}: {e}");
    ds[0]["id"].as_i64().unwrap()
}

async fn delivery(s: &TestServer, id: i64) -> Value {
    let (status, json) = s.get(&format!("/management/deliveries/{id}")).await;
    assert_eq!(status, 200, "GET delivery {id}: {json}");
    json
}

/// Polls the delivery until `pred` holds.
async fn wait_delivery(
    s: &TestServer,
    id: i64,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let d = delivery(s, id).await;
        if pred(&d) {
            return d;
        }
        if Instant::now() > deadline {
            panic!(
                "delivery {id}: still not {what} after {WAIT:?}: {d}\nlog:\n{}",
                s.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_status(s: &TestServer, id: i64, status: &str) -> Value {
    wait_delivery(s, id, status, |d| d["status"] == status).await
}

/// Polls the webhook until `pred` holds.
async fn wait_webhook(s: &TestServer, id: i64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, w) = s.get(&format!("/management/webhooks/{id}")).await;
        assert_eq!(status, 200, "{w}");
        if pred(&w) {
            return w;
        }
        if Instant::now() > deadline {
            panic!("webhook {id}: still not {what} after {WAIT:?}: {w}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Lets the engine run a little, to show that something does NOT happen.
async fn quiet_period() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

fn wid(w: &Value) -> i64 {
    w["id"].as_i64().expect("webhook id")
}

fn attempts(d: &Value) -> &Vec<Value> {
    d["attempts"].as_array().expect("attempts array")
}

/// All deliveries matching `query` (follows the cursor).
async fn list_all(s: &TestServer, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => format!("/management/deliveries?{query}"),
            Some(c) => format!("/management/deliveries?{query}&cursor={c}"),
        };
        let (status, page) = s.get(&path).await;
        assert_eq!(status, 200, "GET {path}: {page}");
        out.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

fn now_rfc3339_minus(secs: i64) -> String {
    let t = time::OffsetDateTime::now_utc() - time::Duration::seconds(secs);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

// ---------------------------------------------------------------- fan-out

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

    quiet_period().await;
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

// ---------------------------------------------------------------- the request

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

// ---------------------------------------------------------------- retries

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_500_records_attempts_and_keeps_the_idempotency_key() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    r.script("/hook", vec![Reply::Status(500)]);
    s.create_webhook(&r.url("/hook"), json!({"retry_schedule": ["20ms"]}))
        .await;
    let p = publish_type(&s, "license.created").await;
    let id = only_delivery(&s, p["id"].as_str().unwrap()).await;

    let got = r.wait_for("/hook", 2, WAIT).await;
    let key0 = got[0].header("idempotency-key").unwrap();
    assert_eq!(key0, format!("sls-webhook-{id}"));
    assert_eq!(
        got[1].header("idempotency-key").unwrap(),
        key0,
        "Idempotency-Key changed on retry"
    );
    assert_eq!(got[0].header("webhook-id").unwrap(), key0);
    assert_eq!(
        got[1].header("webhook-id").unwrap(),
        key0,
        "webhook-id changed on retry"
    );
    assert_eq!(got[0].body, got[1].body, "the body changed on retry");

    let d = wait_status(&s, id, "succeeded").await;
    assert_eq!(d["attempt_count"], 2, "{d}");
    assert_eq!(d["response_status"], 200);
    let a = attempts(&d);
    assert_eq!(a.len(), 2, "{d}");
    assert_eq!(a[0]["response_status"], 500);
    assert_eq!(a[0]["error_kind"], "http_status");
    assert!(a[0]["error"].is_string(), "{d}");
    assert_eq!(a[0]["response_body"], "scripted");
    assert!(a[0]["response_headers"].is_object(), "{d}");
    assert_eq!(a[1]["response_status"], 200);
    assert!(a[1]["error_kind"].is_null());
    assert!(
        d["next_attempt_at"].is_null(),
        "a succeeded delivery has no next attempt: {d}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_schedule_fails_the_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    r.script("/hook", vec![Reply::Status(500); 10]);
    let w = s
        .create_webhook(&r.url("/hook"), json!({"retry_schedule": ["20ms", "40ms"]}))
        .await;
    let p = publish_type(&s, "license.created").await;
    let id = only_delivery(&s, p["id"].as_str().unwrap()).await;

    // While it waits between attempts it is `retrying` with a next attempt.
    let d = wait_delivery(&s, id, "retrying or failed", |d| {
        d["status"] == "retrying" || d["status"] == "failed"
    })
    .await;
    if d["status"] == "retrying" {
        assert!(d["next_attempt_at"].is_string(), "{d}");
    }

    let d = wait_status(&s, id, "failed").await;
    assert_eq!(d["attempt_count"], 3, "first attempt + 2 retries: {d}");
    assert_eq!(attempts(&d).len(), 3);
    for a in attempts(&d) {
        assert_eq!(a["error_kind"], "http_status");
        assert_eq!(a["response_status"], 500);
    }
    assert_eq!(d["response_status"], 500);
    assert!(d["last_error"].is_string(), "{d}");
    quiet_period().await;
    assert_eq!(
        r.received("/hook").len(),
        3,
        "attempted after the schedule ran out"
    );

    // Listed as failed, and among the diverted.
    for status in ["failed", "diverted"] {
        let list = list_all(&s, &format!("webhook_id={}&status={status}", wid(&w))).await;
        assert!(
            list.iter().any(|x| x["id"] == id),
            "status={status} does not list failed delivery {id}: {list:?}"
        );
    }
    let list = list_all(&s, &format!("webhook_id={}&status=succeeded", wid(&w))).await;
    assert!(list.is_empty(), "{list:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_schedule_means_a_single_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    r.script("/hook", vec![Reply::Status(503); 5]);
    s.create_webhook(&r.url("/hook"), json!({"retry_schedule": []}))
        .await;
    let p = publish_type(&s, "license.created").await;
    let id = only_delivery(&s, p["id"].as_str().unwrap()).await;
    let d = wait_status(&s, id, "failed").await;
    assert_eq!(d["attempt_count"], 1, "{d}");
    assert_eq!(attempts(&d).len(), 1);
    quiet_period().await;
    assert_eq!(r.received("/hook").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_retry_schedule_applies_without_a_webhook_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await; // --retry-schedule 50ms,100ms
    let r = Receiver::start().await;
    r.script("/hook", vec![Reply::Status(500); 10]);
    s.create_webhook(&r.url("/hook"), json!({})).await;
    let p = publish_type(&s, "license.created").await;
    let id = only_delivery(&s, p["id"].as_str().unwrap()).await;
    let d = wait_status(&s, id, "failed").await;
    assert_eq!(d["attempt_count"], 3, "{d}");
    let got = r.received("/hook");
    assert_eq!(got.len(), 3);
    let gap1 = got[1].at - got[0].at;
    let gap2 = got[2].at - got[1].at;
    // 50 ms and 100 ms, each ±20 %.
    assert!(
        gap1 >= Duration::from_millis(35),
        "first retry after {gap1:?}"
    );
    assert!(
        gap2 >= Duration::from_millis(75),
        "second retry after {gap2:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_on_429_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    r.script(
        "/hook",
        vec![Reply::WithHeaders(429, vec![("retry-after", "1".into())])],
    );
    // Scheduled 800 ms (±20 %: at most 960 ms); Retry-After 1 s ≤ the 1.6 s cap.
    s.create_webhook(&r.url("/hook"), json!({"retry_schedule": ["800ms"]}))
        .await;
    let p = publish_type(&s, "license.created").await;
    let id = only_delivery(&s, p["id"].as_str().unwrap()).await;
    let got = r.wait_for("/hook", 2, WAIT).await;
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= Duration::from_millis(980),
        "Retry-After: 1 not honoured: retried after {gap:?}"
    );
    assert!(gap < Duration::from_millis(5_000), "retried after {gap:?}");
    let d = wait_status(&s, id, "succeeded").await;
    assert_eq!(attempts(&d)[0]["response_status"], 429);
    assert_eq!(attempts(&d)[0]["error_kind"], "http_status");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_on_503_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    r.script(
        "/hook",
        vec![Reply::WithHeaders(503, vec![("retry-after", "1".into())])],
    );
    s.create_webhook(&r.url("/hook"), json!({"retry_schedule": ["800ms"]}))
        .await;
    publish_type(&s, "license.created").await;
    let got = r.wait_for("/hook", 2, WAIT).await;
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= Duration::from_millis(980),
        "503 Retry-After: 1 not honoured: {gap:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_capped_at_twice_the_scheduled_delay() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    r.script(
        "/hook",
        vec![Reply::WithHeaders(429, vec![("retry-after", "30".into())])],
    );
    s.create_webhook(&r.url("/hook"), json!({"retry_schedule": ["100ms"]}))
        .await;
    let p = publish_type(&s, "license.created").await;
    let id = only_delivery(&s, p["id"].as_str().unwrap()).await;
    let got = r.wait_for("/hook", 2, WAIT).await;
    let gap = got[1].at - got[0].at;
    // The cap is 2 × 100 ms = 200 ms; allow scheduling slack on a busy machine.
    assert!(
        gap < Duration::from_millis(1_000),
        "Retry-After: 30 not capped at 200 ms: retried after {gap:?}"
    );
    assert!(
        gap >= Duration::from_millis(150),
        "retried after only {gap:?}"
    );
    wait_status(&s, id, "succeeded").await;
}

// ---------------------------------------------------------------- failure kinds

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed_and_fail_the_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    r.script(
        "/hook",
        vec![Reply::WithHeaders(
            302,
            vec![("location", r.url("/elsewhere"))],
        )],
    );
    s.create_webhook(&r.url("/hook"), json!({"retry_schedule": []}))
        .await;
    let p = publish_type(&s, "license.created").await;
    let id = only_delivery(&s, p["id"].as_str().unwrap()).await;
    let d = wait_status(&s, id, "failed").await;
    let a = &attempts(&d)[0];
    assert_eq!(a["response_status"], 302, "{d}");
    assert_eq!(a["error_kind"], "http_status");
    assert_eq!(d["response_status"], 302);
    quiet_period().await;
    assert_eq!(
        r.received("/elsewhere").len(),
        0,
        "the redirect was followed"
    );
    assert_eq!(r.received("/hook").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_times_out_per_the_webhook_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    r.script("/hook", vec![Reply::Hang(Duration::from_secs(2))]);
    s.create_webhook(
        &r.url("/hook"),
        json!({"timeout": "200ms", "retry_schedule": []}),
    )
    .await;
    let started = Instant::now();
    let p = publish_type(&s, "license.created").await;
    let id = only_delivery(&s, p["id"].as_str().unwrap()).await;
    let d = wait_status(&s, id, "failed").await;
    let elapsed = started.elapsed();
    let a = &attempts(&d)[0];
    assert_eq!(a["error_kind"], "timeout", "{d}");
    assert!(a["response_status"].is_null(), "{d}");
    let ms = a["duration_ms"].as_i64().unwrap();
    assert!(
        (150..1_500).contains(&ms),
        "attempt took {ms} ms with a 200 ms timeout"
    );
    assert!(
        elapsed < Duration::from_millis(1_900),
        "the 2 s hang was waited out: {elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_also_counts_against_the_timeout() {
    // The timeout covers the whole attempt; a 2xx that arrives in time
    // succeeds. Here the answer starts after the timeout.
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    r.script(
        "/hook",
        vec![
            Reply::Hang(Duration::from_millis(1_500)),
            Reply::Status(200),
        ],
    );
    s.create_webhook(
        &r.url("/hook"),
        json!({"timeout": "300ms", "retry_schedule": ["20ms"]}),
    )
    .await;
    let p = publish_type(&s, "license.created").await;
    let id = only_delivery(&s, p["id"].as_str().unwrap()).await;
    let d = wait_status(&s, id, "succeeded").await;
    let a = attempts(&d);
    assert_eq!(a.len(), 2, "{d}");
    assert_eq!(a[0]["error_kind"], "timeout");
    assert_eq!(a[1]["response_status"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_connection_is_a_connect_error_and_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let (base, count) = closing_server().await;
    s.create_webhook(
        &format!("{base}/hook"),
        json!({"retry_schedule": ["20ms", "20ms"]}),
    )
    .await;
    let p = publish_type(&s, "license.created").await;
    let id = only_delivery(&s, p["id"].as_str().unwrap()).await;
    let d = wait_status(&s, id, "failed").await;
    let a = attempts(&d);
    assert_eq!(a.len(), 3, "{d}");
    for x in a {
        assert_eq!(x["error_kind"], "connect", "{d}");
        assert!(x["response_status"].is_null());
        assert!(x["error"].is_string());
    }
    assert!(
        count.load(std::sync::atomic::Ordering::SeqCst) >= 3,
        "the closing server saw {} connections",
        count.load(std::sync::atomic::Ordering::SeqCst)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_a_connect_error() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let port = common::free_port(); // nothing listens there
    s.create_webhook(
        &format!("http://127.0.0.1:{port}/hook"),
        json!({"retry_schedule": []}),
    )
    .await;
    let p = publish_type(&s, "license.created").await;
    let id = only_delivery(&s, p["id"].as_str().unwrap()).await;
    let d = wait_status(&s, id, "failed").await;
    assert_eq!(attempts(&d)[0]["error_kind"], "connect", "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unresolvable_host_is_a_dns_error() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    s.create_webhook(
        "http://hookd-test.invalid/hook",
        json!({"retry_schedule": []}),
    )
    .await;
    let p = publish_type(&s, "license.created").await;
    let id = only_delivery(&s, p["id"].as_str().unwrap()).await;
    let d = wait_status(&s, id, "failed").await;
    assert_eq!(attempts(&d)[0]["error_kind"], "dns", "{d}");
}

/// A receiver answering 200 with a 100 KiB body.
async fn big_body_receiver() -> String {
    let app = axum::Router::new().fallback(|| async { "a".repeat(100 * 1024) });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_response_body_is_read_up_to_64_kib() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let base = big_body_receiver().await;
    s.create_webhook(&format!("{base}/hook"), json!({})).await;
    let p = publish_type(&s, "license.created").await;
    let id = only_delivery(&s, p["id"].as_str().unwrap()).await;
    let d = wait_status(&s, id, "succeeded").await;
    let body = attempts(&d)[0]["response_body"]
        .as_str()
        .expect("a body excerpt")
        .to_owned();
    assert!(
        body.len() <= 64 * 1024,
        "stored {} bytes of the answer",
        body.len()
    );
    assert!(body.len() >= 1024, "stored only {} bytes", body.len());
    assert!(body.bytes().all(|b| b == b'a'));
}

// ---------------------------------------------------------------- suspension

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_410_suspends_at_once_and_later_events_are_diverted() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    r.script("/hook", vec![Reply::Status(410)]);
    let w = s
        .create_webhook(&r.url("/hook"), json!({"retry_schedule": ["20ms", "20ms"]}))
        .await;
    assert_eq!(w["suspended"], false);
    assert!(w["suspended_at"].is_null());
    let p = publish_type(&s, "license.created").await;
    let id = only_delivery(&s, p["id"].as_str().unwrap()).await;
    let d = wait_delivery(&s, id, "finished", |d| {
        d["status"] == "diverted" || d["status"] == "failed"
    })
    .await;
    assert_eq!(attempts(&d).len(), 1, "410 is not retried: {d}");
    assert_eq!(attempts(&d)[0]["response_status"], 410);

    let w = wait_webhook(&s, wid(&w), "suspended", |w| w["suspended"] == true).await;
    let at = w["suspended_at"].as_str().expect("suspended_at set");
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).unwrap();

    // Listed by the suspended filter.
    let (_, list) = s.get("/management/webhooks?suspended=true").await;
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == w["id"]),
        "{list}"
    );

    // A suspended webhook gets no attempts; its deliveries are diverted.
    let p2 = publish_type(&s, "license.created").await;
    assert_eq!(
        p2["deliveries"], 1,
        "a suspended webhook still gets (diverted) deliveries: {p2}"
    );
    let id2 = only_delivery(&s, p2["id"].as_str().unwrap()).await;
    let d2 = wait_status(&s, id2, "diverted").await;
    assert_eq!(d2["attempt_count"], 0, "{d2}");
    assert!(attempts(&d2).is_empty());
    let list = list_all(&s, &format!("webhook_id={}&status=diverted", wid(&w))).await;
    assert!(list.iter().any(|x| x["id"] == id2), "{list:?}");
    quiet_period().await;
    assert_eq!(
        r.received("/hook").len(),
        1,
        "a suspended webhook received a request"
    );

    // The test send to a suspended webhook is diverted too.
    let (status, t) = s
        .post(&format!("/management/webhooks/{}/test", wid(&w)), json!({}))
        .await;
    assert_eq!(status, 202, "{t}");
    let tid = only_delivery(&s, t["id"].as_str().unwrap()).await;
    wait_status(&s, tid, "diverted").await;
    assert_eq!(r.received("/hook").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_handling_suspends_a_failing_webhook_and_unsuspend_resumes_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    r.script("/hook", vec![Reply::Status(500); 20]);
    let w = s
        .create_webhook(
            &r.url("/hook"),
            json!({
                "retry_schedule": ["20ms", "20ms", "20ms", "20ms"],
                "failure_handling": {"min_failures": 2, "suspend_after": "0s"},
            }),
        )
        .await;
    assert_eq!(w["failure_handling"]["min_failures"], 2, "{w}");
    let p = publish_type(&s, "license.created").await;
    let id = only_delivery(&s, p["id"].as_str().unwrap()).await;

    let w = wait_webhook(&s, wid(&w), "suspended", |w| w["suspended"] == true).await;
    assert!(w["suspended_at"].is_string(), "{w}");
    // The rest of the schedule is not attempted: the delivery ends diverted.
    let d = wait_status(&s, id, "diverted").await;
    let n = attempts(&d).len();
    assert!(
        (2..=3).contains(&n),
        "suspended after {n} failed attempts (min_failures 2): {d}"
    );
    quiet_period().await;
    let before = r.received("/hook").len();
    assert_eq!(before, n, "attempted while suspended");

    // Unsuspend: new events are delivered again.
    r.script("/hook", vec![]);
    let (status, u) = s
        .post(
            &format!("/management/webhooks/{}/unsuspend", wid(&w)),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{u}");
    assert_eq!(u["suspended"], false, "{u}");
    assert!(u["suspended_at"].is_null(), "{u}");
    let p2 = publish_type(&s, "license.created").await;
    let id2 = only_delivery(&s, p2["id"].as_str().unwrap()).await;
    wait_status(&s, id2, "succeeded").await;
    let got = r.wait_for("/hook", before + 1, WAIT).await;
    assert_eq!(got.last().unwrap().json()["id"], p2["id"]);
    // The diverted delivery stays diverted until recovered.
    assert_eq!(delivery(&s, id).await["status"], "diverted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_requeues_failed_and_diverted_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    let since = now_rfc3339_minus(5);
    // 1st event: 500, single attempt → failed. 2nd: 410 → suspended.
    r.script("/hook", vec![Reply::Status(500), Reply::Status(410)]);
    let w = s
        .create_webhook(&r.url("/hook"), json!({"retry_schedule": []}))
        .await;
    let e1 = publish_type(&s, "license.created").await;
    let d1 = only_delivery(&s, e1["id"].as_str().unwrap()).await;
    wait_status(&s, d1, "failed").await;
    let e2 = publish_type(&s, "license.created").await;
    let d2 = only_delivery(&s, e2["id"].as_str().unwrap()).await;
    wait_webhook(&s, wid(&w), "suspended", |w| w["suspended"] == true).await;
    let e3 = publish_type(&s, "license.created").await;
    let d3 = only_delivery(&s, e3["id"].as_str().unwrap()).await;
    wait_status(&s, d3, "diverted").await;
    let st2 = delivery(&s, d2).await["status"].clone();
    assert!(st2 == "diverted" || st2 == "failed", "{st2}");
    assert_eq!(r.received("/hook").len(), 2);

    // Another webhook's failed delivery is not touched by this recover.
    r.script("/other", vec![Reply::Status(500)]);
    let other = s
        .create_webhook(
            &r.url("/other"),
            json!({"name": "other", "events": ["license.updated"], "retry_schedule": []}),
        )
        .await;
    let eo = publish_type(&s, "license.updated").await;
    let dother = only_delivery(&s, eo["id"].as_str().unwrap()).await;
    wait_status(&s, dother, "failed").await;

    let (status, u) = s
        .post(
            &format!("/management/webhooks/{}/unsuspend", wid(&w)),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{u}");
    let (status, rec) = s
        .post(
            &format!("/management/webhooks/{}/recover", wid(&w)),
            json!({"since": since}),
        )
        .await;
    assert_eq!(status, 202, "{rec}");
    assert_eq!(rec["requeued"], 3, "{rec}");
    for id in [d1, d2, d3] {
        wait_status(&s, id, "succeeded").await;
    }
    let got = r.wait_for("/hook", 5, WAIT).await;
    let ids: HashSet<String> = got[2..]
        .iter()
        .map(|x| x.json()["id"].as_str().unwrap().to_owned())
        .collect();
    let want: HashSet<String> = [&e1, &e2, &e3]
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, want);
    quiet_period().await;
    assert_eq!(delivery(&s, dother).await["status"], "failed");
    assert_eq!(r.received("/other").len(), 1);
    let _ = other;

    // A `since` after the deliveries re-queues nothing; a bad one is a 400.
    let (status, rec) = s
        .post(
            &format!("/management/webhooks/{}/recover", wid(&w)),
            json!({"since": now_rfc3339_minus(-60)}),
        )
        .await;
    assert_eq!(status, 202, "{rec}");
    assert_eq!(rec["requeued"], 0);
    let (status, bad) = s
        .post(
            &format!("/management/webhooks/{}/recover", wid(&w)),
            json!({"since": "yesterday"}),
        )
        .await;
    assert_field_error(status, &bad, "since");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_retry_of_a_failed_delivery_delivers_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    r.script("/hook", vec![Reply::Status(500)]);
    s.create_webhook(&r.url("/hook"), json!({"retry_schedule": []}))
        .await;
    let p = publish_type(&s, "license.created").await;
    let id = only_delivery(&s, p["id"].as_str().unwrap()).await;
    wait_status(&s, id, "failed").await;

    let (status, d) = s
        .post(&format!("/management/deliveries/{id}/retry"), json!({}))
        .await;
    assert_eq!(status, 202, "{d}");
    let d = wait_status(&s, id, "succeeded").await;
    assert_eq!(d["attempt_count"], 2, "{d}");
    let got = r.wait_for("/hook", 2, WAIT).await;
    assert_eq!(
        got[0].header("idempotency-key"),
        got[1].header("idempotency-key")
    );

    let (status, _) = s
        .post("/management/deliveries/999999/retry", json!({}))
        .await;
    assert_eq!(status, 404);
}

// ---------------------------------------------------------------- test sends

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_send_delivers_webhook_test_to_that_webhook_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    let w = s.create_webhook(&r.url("/hook"), json!({})).await;
    s.create_webhook(
        &r.url("/bystander"),
        json!({"name": "b", "events": ["license.*"]}),
    )
    .await;
    let (status, t) = s
        .post(&format!("/management/webhooks/{}/test", wid(&w)), json!({}))
        .await;
    assert_eq!(status, 202, "{t}");
    assert_eq!(t["type"], "webhook.test", "{t}");
    assert!(t["id"].as_str().unwrap().starts_with("evt_"));
    let got = r.wait_for("/hook", 1, WAIT).await;
    let body = got[0].json();
    assert_eq!(body["type"], "webhook.test");
    assert_eq!(body["id"], t["id"]);
    assert!(body["data"].is_object());
    assert!(
        got[0]
            .header("webhook-signature")
            .unwrap()
            .starts_with("v1,")
    );
    quiet_period().await;
    assert_eq!(r.received("/bystander").len(), 0);
    let (status, _) = s.post("/management/webhooks/999999/test", json!({})).await;
    assert_eq!(status, 404);
}

// ---------------------------------------------------------------- publishing

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
    quiet_period().await;
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

    quiet_period().await;
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

// ---------------------------------------------------------------- the log

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
        let resp = s.client.get(s.url("/metrics")).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let text = resp.text().await.unwrap();
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

// ---------------------------------------------------------------- rate limit

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

// ---------------------------------------------------------------- more edges

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
    quiet_period().await;
    assert_eq!(r.received("/hook").len(), 3);
    assert_eq!(
        list_all(&s, &format!("webhook_id={}", wid(&w))).await.len(),
        3
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_default_timeout_applies() {
    let dir = tempfile::tempdir().unwrap();
    let s = ServerConfig::new(dir.path())
        .arg("--allow-private-targets")
        .arg("--default-timeout")
        .arg("200ms")
        .start()
        .await;
    let r = Receiver::start().await;
    r.script("/hook", vec![Reply::Hang(Duration::from_secs(2))]);
    s.create_webhook(&r.url("/hook"), json!({"retry_schedule": []}))
        .await;
    let p = publish_type(&s, "license.created").await;
    let id = only_delivery(&s, p["id"].as_str().unwrap()).await;
    let d = wait_status(&s, id, "failed").await;
    assert_eq!(attempts(&d)[0]["error_kind"], "timeout", "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_attempt_is_immediate() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    s.create_webhook(&r.url("/hook"), json!({})).await;
    // Warm up, then time one publish → receipt.
    publish_type(&s, "license.created").await;
    r.wait_for("/hook", 1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await; // past any poll phase
    publish_type(&s, "license.created").await;
    let answered = Instant::now();
    let got = r.wait_for("/hook", 2, WAIT).await;
    // The request may even arrive before the 202 is read.
    let lag = got[1].at.saturating_duration_since(answered);
    assert!(
        lag < Duration::from_millis(500),
        "first attempt came {lag:?} after the publish"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_change_applies_to_the_next_retry() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    r.script("/old", vec![Reply::Status(500); 5]);
    let w = s
        .create_webhook(&r.url("/old"), json!({"retry_schedule": ["1s"]}))
        .await;
    let p = publish_type(&s, "license.created").await;
    let id = only_delivery(&s, p["id"].as_str().unwrap()).await;
    wait_status(&s, id, "retrying").await;
    let (status, u) = s
        .patch(
            &format!("/management/webhooks/{}", wid(&w)),
            json!({"url": r.url("/new")}),
        )
        .await;
    assert_eq!(status, 200, "{u}");
    let d = wait_status(&s, id, "succeeded").await;
    assert_eq!(r.received("/old").len(), 1);
    assert_eq!(r.received("/new").len(), 1);
    assert_eq!(attempts(&d)[1]["url"], r.url("/new"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_webhook_stops_its_retries() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    r.script("/hook", vec![Reply::Status(500); 5]);
    let w = s
        .create_webhook(&r.url("/hook"), json!({"retry_schedule": ["1s", "1s"]}))
        .await;
    let p = publish_type(&s, "license.created").await;
    let id = only_delivery(&s, p["id"].as_str().unwrap()).await;
    wait_status(&s, id, "retrying").await;
    let (status, u) = s
        .patch(
            &format!("/management/webhooks/{}", wid(&w)),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(status, 200, "{u}");
    let d = wait_delivery(&s, id, "finished", |d| {
        d["status"] == "diverted" || d["status"] == "failed"
    })
    .await;
    assert_eq!(
        attempts(&d).len(),
        1,
        "a disabled webhook was attempted: {d}"
    );
    assert_eq!(r.received("/hook").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_resets_the_failure_count() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    // fail, fail, succeed, fail, fail: never 3 failures in a row.
    r.script(
        "/hook",
        vec![
            Reply::Status(500),
            Reply::Status(500),
            Reply::Status(200),
            Reply::Status(500),
            Reply::Status(500),
        ],
    );
    let w = s
        .create_webhook(
            &r.url("/hook"),
            json!({"retry_schedule": [], "failure_handling": {"min_failures": 3, "suspend_after": "0s"}}),
        )
        .await;
    for _ in 0..5 {
        let p = publish_type(&s, "license.created").await;
        let id = only_delivery(&s, p["id"].as_str().unwrap()).await;
        wait_delivery(&s, id, "finished", |d| {
            d["status"] == "succeeded" || d["status"] == "failed"
        })
        .await;
    }
    let (_, w) = s.get(&format!("/management/webhooks/{}", wid(&w))).await;
    assert_eq!(
        w["suspended"], false,
        "suspended although a success came between: {w}"
    );
    // One more failure makes three in a row.
    r.script("/hook", vec![Reply::Status(500)]);
    publish_type(&s, "license.created").await;
    wait_webhook(&s, wid(&w), "suspended", |w| w["suspended"] == true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_after_waits_for_the_failure_period() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    r.script("/hook", vec![Reply::Status(500); 10]);
    let w = s
        .create_webhook(
            &r.url("/hook"),
            json!({"retry_schedule": ["20ms", "20ms", "20ms"], "failure_handling": {"min_failures": 1, "suspend_after": "1h"}}),
        )
        .await;
    let p = publish_type(&s, "license.created").await;
    let id = only_delivery(&s, p["id"].as_str().unwrap()).await;
    let d = wait_status(&s, id, "failed").await;
    assert_eq!(attempts(&d).len(), 4);
    let (_, w) = s.get(&format!("/management/webhooks/{}", wid(&w))).await;
    assert_eq!(
        w["suspended"], false,
        "suspended before an hour without success: {w}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_failure_handling_defaults_apply() {
    let dir = tempfile::tempdir().unwrap();
    let s = ServerConfig::new(dir.path())
        .arg("--allow-private-targets")
        .arg("--suspend-min-failures")
        .arg("2")
        .arg("--suspend-after")
        .arg("0s")
        .start()
        .await;
    let r = Receiver::start().await;
    r.script("/hook", vec![Reply::Status(500); 10]);
    let w = s
        .create_webhook(
            &r.url("/hook"),
            json!({"retry_schedule": ["20ms", "20ms", "20ms"]}),
        )
        .await;
    publish_type(&s, "license.created").await;
    wait_webhook(&s, wid(&w), "suspended", |w| w["suspended"] == true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_retry_of_a_succeeded_delivery_sends_it_again_and_in_flight_is_409() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    s.create_webhook(&r.url("/hook"), json!({})).await;
    let p = publish_type(&s, "license.created").await;
    let id = only_delivery(&s, p["id"].as_str().unwrap()).await;
    wait_status(&s, id, "succeeded").await;
    r.script("/hook", vec![Reply::Hang(Duration::from_millis(1_500))]);
    let (status, d) = s
        .post(&format!("/management/deliveries/{id}/retry"), json!({}))
        .await;
    assert_eq!(status, 202, "{d}");
    r.wait_for("/hook", 2, WAIT).await; // the re-send is in flight now
    let (status, e) = s
        .post(&format!("/management/deliveries/{id}/retry"), json!({}))
        .await;
    assert_eq!(status, 409, "retry during an attempt: {e}");
    let d = wait_delivery(&s, id, "re-sent", |d| {
        d["status"] == "succeeded" && d["attempt_count"] == 2
    })
    .await;
    assert_eq!(attempts(&d).len(), 2);
}
