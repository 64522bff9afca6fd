//! Suspension (410 Gone, failure handling), unsuspend, recover, manual
//! retries and test sends.

use super::*;

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
    // Diverted is final: no request can follow it.
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
    // Diverted is final: its recorded attempts are all the requests made.
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
    // The recover was committed before its 202: had it touched the other
    // webhook's delivery, that delivery would no longer be failed.
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
    // The test event has one delivery, to its webhook: the bystander has
    // none, so no request can ever reach it.
    let e = event(&s, t["id"].as_str().unwrap()).await;
    assert_eq!(e["deliveries"].as_array().unwrap().len(), 1, "{e}");
    assert_eq!(e["deliveries"][0]["webhook_id"], w["id"], "{e}");
    assert_eq!(r.received("/bystander").len(), 0);
    let (status, _) = s.post("/management/webhooks/999999/test", json!({})).await;
    assert_eq!(status, 404);
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
