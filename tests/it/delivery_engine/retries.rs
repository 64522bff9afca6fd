//! Retries: the schedule (per webhook and global), the first attempt,
//! (Retry-After and the schedule's timing are in `time_rules`, on a moved
//! clock), changes to a webhook between attempts.

use super::*;

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
    // Failed is final: its recorded attempts are all the requests made.
    assert_eq!(d["next_attempt_at"], Value::Null, "{d}");
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
    assert_eq!(d["next_attempt_at"], Value::Null, "failed is final: {d}");
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
