//! Time rules, tested by moving hookd's clock instead of sleeping: the
//! server runs in-process (`hookd::app::run`) with a `ManualClock`. What
//! must not happen yet is shown by the store's state at the moved clock (a
//! due time still ahead), never by waiting to see that nothing came.

use std::time::Duration;

use crate::common::receiver::{Receiver, Reply};
use crate::common::{ServerConfig, TestServer, send};
use hookd::clock::{Clock, ManualClock, parse_rfc3339};
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3_600);
const DAY: Duration = Duration::from_secs(86_400);

async fn server(dir: &std::path::Path, extra: &[&str]) -> (TestServer, ManualClock) {
    let mut cfg = ServerConfig::new(dir).arg("--allow-private-targets");
    for a in extra {
        cfg = cfg.arg(a);
    }
    cfg.start_in_process().await
}

async fn publish(s: &TestServer, body: Value) -> Value {
    let (status, p) = s.post("/v1/events", body).await;
    assert_eq!(status, 202, "{p}");
    p
}

async fn delivery_of(s: &TestServer, event: &Value) -> Value {
    let (status, e) = s
        .get(&format!(
            "/management/events/{}",
            event["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 200, "{e}");
    let id = e["deliveries"][0]["id"].as_i64().expect("one delivery");
    let (status, d) = s.get(&format!("/management/deliveries/{id}")).await;
    assert_eq!(status, 200, "{d}");
    d
}

/// Polls the delivery until `done` holds (the engine records an outcome a
/// moment after the receiver answered).
async fn wait_delivery(
    s: &TestServer,
    event: &Value,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let d = delivery_of(s, event).await;
        if done(&d) {
            return d;
        }
        assert!(std::time::Instant::now() < deadline, "never {what}: {d}");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn ms(rfc3339: &Value) -> i64 {
    parse_rfc3339(rfc3339.as_str().expect("a timestamp")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_follow_the_schedule_within_its_jitter() {
    let dir = tempfile::tempdir().unwrap();
    let (s, clock) = server(dir.path(), &[]).await;
    let r = Receiver::start().await;
    r.script("/hook", vec![Reply::Status(500), Reply::Status(500)]);
    s.create_webhook(&r.url("/hook"), json!({"retry_schedule": ["10m", "1h"]}))
        .await;
    let p = publish(&s, json!({"type": "license.created", "data": {}})).await;

    r.wait_for("/hook", 1, WAIT).await;
    let first = clock.now_ms();
    let d = wait_delivery(&s, &p, "retrying", |d| d["status"] == "retrying").await;
    let due = ms(&d["next_attempt_at"]);
    // 10 min ± 20 % (timestamps are shown to the second).
    assert!(
        (first + 480_000 - 1_000..=first + 720_000).contains(&due),
        "first retry due {} s after the attempt",
        (due - first) / 1000
    );
    clock.advance(Duration::from_millis(
        (due - clock.now_ms() - 1_000).max(0) as u64
    ));
    // Not yet due: the claim takes only deliveries due at the clock's time.
    let d = delivery_of(&s, &p).await;
    assert!(ms(&d["next_attempt_at"]) > clock.now_ms(), "{d}");

    clock.advance(2 * MINUTE);
    r.wait_for("/hook", 2, WAIT).await;
    let second = clock.now_ms();
    let d = wait_delivery(&s, &p, "retried", |d| d["attempt_count"] == 2).await;
    let due = ms(&d["next_attempt_at"]);
    assert!(
        (second + 2_880_000 - 1_000..=second + 4_320_000).contains(&due),
        "second retry due {} s after the attempt (1 h ± 20 %)",
        (due - second) / 1000
    );

    clock.advance(73 * MINUTE);
    r.wait_for("/hook", 3, WAIT).await;
    let d = wait_delivery(&s, &p, "succeeded", |d| d["status"] == "succeeded").await;
    assert_eq!(d["attempt_count"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_ends_in_failed() {
    let dir = tempfile::tempdir().unwrap();
    let (s, clock) = server(dir.path(), &[]).await;
    let r = Receiver::start().await;
    r.script("/hook", vec![Reply::Status(500); 3]);
    s.create_webhook(&r.url("/hook"), json!({"retry_schedule": ["1h", "5h"]}))
        .await;
    let p = publish(&s, json!({"type": "license.created", "data": {}})).await;
    r.wait_for("/hook", 1, WAIT).await;
    wait_delivery(&s, &p, "retrying", |d| d["status"] == "retrying").await;
    clock.advance(2 * HOUR);
    r.wait_for("/hook", 2, WAIT).await;
    wait_delivery(&s, &p, "retried", |d| d["attempt_count"] == 2).await;
    clock.advance(7 * HOUR);
    r.wait_for("/hook", 3, WAIT).await;
    let d = wait_delivery(&s, &p, "failed", |d| d["status"] == "failed").await;
    assert_eq!(d["attempt_count"], 3);
    assert_eq!(d["next_attempt_at"], Value::Null, "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_sets_the_next_attempt_up_to_twice_the_scheduled_delay() {
    let dir = tempfile::tempdir().unwrap();
    let (s, clock) = server(dir.path(), &[]).await;
    let r = Receiver::start().await;
    let retry_after = |secs: &str| Reply::WithHeaders(503, vec![("retry-after", secs.to_string())]);
    let too_many = Reply::WithHeaders(429, vec![("retry-after", "700".to_string())]);
    r.script(
        "/hook",
        vec![retry_after("900"), retry_after("86400"), too_many],
    );
    s.create_webhook(
        &r.url("/hook"),
        json!({"retry_schedule": ["10m", "10m", "5m"]}),
    )
    .await;
    let p = publish(&s, json!({"type": "license.created", "data": {}})).await;

    r.wait_for("/hook", 1, WAIT).await;
    let first = clock.now_ms();
    let d = wait_delivery(&s, &p, "retrying", |d| d["status"] == "retrying").await;
    assert_eq!(
        ms(&d["next_attempt_at"]) / 1000,
        (first + 900_000) / 1000,
        "Retry-After: 900 (within twice the 10 min scheduled) is honoured exactly: {d}"
    );
    clock.advance(15 * MINUTE);
    r.wait_for("/hook", 2, WAIT).await;
    let second = clock.now_ms();
    let d = wait_delivery(&s, &p, "retried", |d| d["attempt_count"] == 2).await;
    assert_eq!(
        ms(&d["next_attempt_at"]) / 1000,
        (second + 1_200_000) / 1000,
        "Retry-After: 86400 is capped at twice the scheduled 10 min: {d}"
    );
    clock.advance(21 * MINUTE);
    r.wait_for("/hook", 3, WAIT).await;
    let third = clock.now_ms();
    let d = wait_delivery(&s, &p, "retried", |d| d["attempt_count"] == 3).await;
    assert_eq!(
        ms(&d["next_attempt_at"]) / 1000,
        (third + 600_000) / 1000,
        "429 with Retry-After: 700 is capped at twice the scheduled 5 min: {d}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_is_suspended_only_once_it_has_failed_for_suspend_after() {
    let dir = tempfile::tempdir().unwrap();
    let (s, clock) = server(dir.path(), &[]).await;
    let r = Receiver::start().await;
    r.script("/hook", vec![Reply::Status(500); 20]);
    let w = s
        .create_webhook(
            &r.url("/hook"),
            json!({
                "retry_schedule": ["20m", "20m", "20m", "20m", "20m"],
                "failure_handling": {"min_failures": 2, "suspend_after": "1h"}
            }),
        )
        .await;
    let webhook = format!("/management/webhooks/{}", w["id"]);
    let p = publish(&s, json!({"type": "license.created", "data": {}})).await;
    let started = clock.now_ms();
    let mut attempts = 1;
    r.wait_for("/hook", 1, WAIT).await;
    loop {
        wait_delivery(&s, &p, "recorded", |d| d["attempt_count"] == attempts).await;
        let (_, w) = s.get(&webhook).await;
        let failing_for = clock.now_ms() - started;
        if failing_for < 3_600_000 {
            assert_eq!(
                w["suspended"],
                false,
                "suspended after failing for {} min only: {w}",
                failing_for / 60_000
            );
        } else {
            assert_eq!(w["suspended"], true, "failing for over an hour: {w}");
            break;
        }
        // 20 min ± 20 %: 25 min brings the next attempt.
        clock.advance(25 * MINUTE);
        attempts += 1;
        r.wait_for("/hook", attempts as usize, WAIT).await;
    }
    assert_eq!(attempts, 4, "suspended at the attempt 75 min in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_replays_for_24_hours_then_is_free_again() {
    let dir = tempfile::tempdir().unwrap();
    let (s, clock) = server(dir.path(), &[]).await;
    let body = json!({"type": "license.created", "data": {}, "idempotency_key": "order-7"});
    let first = publish(&s, body.clone()).await;
    clock.advance(DAY - MINUTE);
    let again = publish(&s, body.clone()).await;
    assert_eq!(again, first, "within 24 h the first answer is replayed");
    clock.advance(2 * MINUTE);
    let later = publish(&s, body).await;
    assert_ne!(
        later["id"], first["id"],
        "after 24 h the key makes a new event"
    );
    // And the new event holds the key from now on.
    clock.advance(HOUR);
    let replay = send(
        s.req(Method::POST, "/v1/events")
            .header("Idempotency-Key", "order-7")
            .json(&json!({"type": "license.created", "data": {}})),
    )
    .await;
    assert_eq!(replay.1["id"], later["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_keeps_signing_for_24_hours() {
    let dir = tempfile::tempdir().unwrap();
    let (s, clock) = server(dir.path(), &[]).await;
    let r = Receiver::start().await;
    let w = s.create_webhook(&r.url("/hook"), json!({})).await;
    let (status, rotated) = s
        .post(
            &format!("/management/webhooks/{}/secret/rotate", w["id"]),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let signatures = |n: usize| {
        let r = r.clone();
        async move {
            let got = r.wait_for("/hook", n, WAIT).await;
            got[n - 1]
                .header("webhook-signature")
                .unwrap()
                .split(' ')
                .count()
        }
    };
    // Each outcome is recorded before the clock moves: a delivery still
    // in flight when it jumps a day is past its lease and goes out again.
    let succeeded = |d: &Value| d["status"] == "succeeded";
    let first = publish(&s, json!({"type": "license.created", "data": {}})).await;
    assert_eq!(signatures(1).await, 2, "new and previous secret both sign");
    wait_delivery(&s, &first, "succeeded", succeeded).await;
    clock.advance(DAY - MINUTE);
    let second = publish(&s, json!({"type": "license.created", "data": {}})).await;
    assert_eq!(signatures(2).await, 2, "the previous secret signs for 24 h");
    wait_delivery(&s, &second, "succeeded", succeeded).await;
    clock.advance(2 * MINUTE);
    publish(&s, json!({"type": "license.created", "data": {}})).await;
    assert_eq!(signatures(3).await, 1, "then the new secret alone");
    let (_, secret) = s
        .get(&format!("/management/webhooks/{}/secret", w["id"]))
        .await;
    assert_eq!(
        secret["previous_secret_expires_at"],
        Value::Null,
        "{secret}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_purges_finished_events_and_keeps_unfinished_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (s, clock) = server(dir.path(), &["--retention", "7d"]).await;
    let r = Receiver::start().await;
    r.script("/down", vec![Reply::Status(500)]);
    s.create_webhook(
        &r.url("/up"),
        json!({"name": "up", "events": ["license.created"]}),
    )
    .await;
    s.create_webhook(
        &r.url("/down"),
        json!({"name": "down", "events": ["license.revoked"], "retry_schedule": ["30d"]}),
    )
    .await;
    let done = publish(&s, json!({"type": "license.created", "data": {}})).await;
    let waiting = publish(&s, json!({"type": "license.revoked", "data": {}})).await;
    let purged = wait_delivery(&s, &done, "succeeded", |d| d["status"] == "succeeded").await;
    let kept = wait_delivery(&s, &waiting, "retrying", |d| d["status"] == "retrying").await;
    let event = |p: &Value| format!("/management/events/{}", p["id"].as_str().unwrap());

    clock.advance(7 * DAY - HOUR);
    let (status, _) = s.get(&event(&done)).await;
    assert_eq!(status, 200, "kept within the retention period");

    clock.advance(2 * HOUR);
    let deadline = std::time::Instant::now() + WAIT;
    while s.get(&event(&done)).await.0 != 404 {
        assert!(
            std::time::Instant::now() < deadline,
            "not purged after 7 days"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, _) = s
        .get(&format!("/management/deliveries/{}", purged["id"]))
        .await;
    assert_eq!(status, 404, "its deliveries go with it");
    let (status, e) = s.get(&event(&waiting)).await;
    assert_eq!(status, 200, "a retrying delivery keeps its event: {e}");
    let (_, d) = s
        .get(&format!("/management/deliveries/{}", kept["id"]))
        .await;
    assert_eq!(d["status"], "retrying", "{d}");
}

/// More events past retention than one purge batch (`retention::BATCH`):
/// the purge works through them all, batch after batch, and publishing goes
/// on meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_purges_a_backlog_larger_than_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (s, clock) = server(dir.path(), &["--retention", "1d"]).await;
    let r = Receiver::start().await;
    s.create_webhook(&r.url("/up"), json!({"events": ["license.created"]}))
        .await;
    let old = 3 * hookd::retention::BATCH as usize + 17;
    for chunk in 0..old.div_ceil(100) {
        let events: Vec<_> = (chunk * 100..((chunk + 1) * 100).min(old))
            .map(|i| json!({"type": "license.created", "data": {"i": i}}))
            .collect();
        let (status, b) = s.post("/v1/events/batch", json!({"events": events})).await;
        assert_eq!(status, 202, "{b}");
    }
    let deadline = std::time::Instant::now() + WAIT;
    while r.count("/up") < old {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {old} delivered",
            r.count("/up")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    clock.advance(DAY + HOUR);
    let fresh = publish(
        &s,
        json!({"type": "license.created", "data": {"fresh": true}}),
    )
    .await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        // An outcome the receiver's count ran ahead of leaves its event to
        // a later pass: every jump of the clock starts one.
        clock.advance(Duration::from_secs(1));
        let (_, list) = s.get("/management/events?limit=500").await;
        let ids: Vec<&str> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap())
            .collect();
        if ids == [fresh["id"].as_str().unwrap()] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} events left after the purge's deadline, the fresh one among them: {}",
            ids.len(),
            ids.contains(&fresh["id"].as_str().unwrap())
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_zero_negative_or_past_never_brings_a_retry_forward() {
    let dir = tempfile::tempdir().unwrap();
    let (s, clock) = server(dir.path(), &[]).await;
    let r = Receiver::start().await;
    let retry_after = |v: &str| Reply::WithHeaders(503, vec![("retry-after", v.to_string())]);
    r.script(
        "/hook",
        vec![
            retry_after("0"),
            retry_after("-30"),
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
        ],
    );
    s.create_webhook(
        &r.url("/hook"),
        json!({"retry_schedule": ["10m", "10m", "10m"]}),
    )
    .await;
    let p = publish(&s, json!({"type": "license.created", "data": {}})).await;
    for attempt in 1..=3 {
        r.wait_for("/hook", attempt, WAIT).await;
        let at = clock.now_ms();
        let d = wait_delivery(&s, &p, "recorded", |d| d["attempt_count"] == attempt).await;
        let delay = ms(&d["next_attempt_at"]) - at;
        assert!(
            (480_000 - 1_000..=720_000).contains(&delay),
            "attempt {attempt}: retry due {} s later; the 10 min schedule (± 20 %) holds: {d}",
            delay / 1000
        );
        clock.advance(13 * MINUTE);
    }
    r.wait_for("/hook", 4, WAIT).await;
    wait_delivery(&s, &p, "succeeded", |d| d["status"] == "succeeded").await;
}
