//! At-least-once delivery across crashes and shutdowns (SPEC §6): every
//! event answered 202 reaches its receiver, even when the server is
//! SIGKILLed mid-stream or stopped with SIGTERM and restarted on the same
//! data directory. Duplicates are allowed; a duplicate carries the same
//! Idempotency-Key.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::receiver::{Receiver, Reply};
use crate::common::{MGMT_KEY, ServerConfig, TestServer};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

async fn start(dir: &Path) -> TestServer {
    ServerConfig::new(dir)
        .arg("--allow-private-targets")
        .arg("--retry-schedule")
        .arg("50ms,100ms,200ms,400ms,800ms,1s,1s,1s")
        .start()
        .await
}

/// Publishers posting single events until told to stop; they keep the ids
/// of the events answered 202.
struct Publishers {
    stop: Arc<AtomicBool>,
    accepted: Arc<Mutex<Vec<String>>>,
    errors: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Publishers {
    fn start(base: &str, n: usize, pause: Duration) -> Publishers {
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(AtomicUsize::new(0));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let tasks = (0..n)
            .map(|p| {
                let (stop, accepted, errors) = (stop.clone(), accepted.clone(), errors.clone());
                let client = client.clone();
                let url = format!("{base}/v1/events");
                tokio::spawn(async move {
                    let mut i = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        i += 1;
                        let sent = client
                            .post(&url)
                            .bearer_auth(MGMT_KEY)
                            .json(&json!({"type": "license.created", "data": {"publisher": p, "n": i}}))
                            .send()
                            .await;
                        match sent {
                            Ok(resp) if resp.status().as_u16() == 202 => {
                                // Counted only when the whole answer arrived.
                                if let Ok(body) = resp.json::<serde_json::Value>().await
                                    && let Some(id) = body["id"].as_str()
                                {
                                    accepted.lock().unwrap().push(id.to_owned());
                                }
                            }
                            // An error while the server dies is not counted.
                            _ => {
                                errors.fetch_add(1, Ordering::SeqCst);
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                        tokio::time::sleep(pause).await;
                    }
                })
            })
            .collect();
        Publishers {
            stop,
            accepted,
            errors,
            tasks,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.lock().unwrap().len()
    }

    /// Waits until `n` events were accepted (or `max` passed).
    async fn wait_accepted(&self, n: usize, max: Duration) {
        let deadline = Instant::now() + max;
        while self.accepted() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stop(self) -> (Vec<String>, usize) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            t.await.unwrap();
        }
        let accepted = self.accepted.lock().unwrap().clone();
        (accepted, self.errors.load(Ordering::SeqCst))
    }
}

/// Waits until every id in `accepted` reached `path`; then checks that
/// duplicates carry the same Idempotency-Key. Answers (distinct, total).
async fn assert_all_delivered(r: &Receiver, path: &str, accepted: &[String]) -> (usize, usize) {
    let want: HashSet<&str> = accepted.iter().map(String::as_str).collect();
    let deadline = Instant::now() + WAIT;
    loop {
        let got = r.received(path);
        let seen: HashSet<String> = got
            .iter()
            .map(|x| x.json()["id"].as_str().unwrap().to_owned())
            .collect();
        let missing: Vec<&&str> = want.iter().filter(|id| !seen.contains(**id)).collect();
        if missing.is_empty() {
            let mut keys: HashMap<String, HashSet<String>> = HashMap::new();
            for x in &got {
                keys.entry(x.json()["id"].as_str().unwrap().to_owned())
                    .or_default()
                    .insert(x.header("idempotency-key").expect("Idempotency-Key header"));
            }
            for (id, k) in &keys {
                assert_eq!(
                    k.len(),
                    1,
                    "event {id} was delivered with different Idempotency-Keys: {k:?}"
                );
            }
            return (seen.len(), got.len());
        }
        if Instant::now() > deadline {
            panic!(
                "{} of {} accepted events never reached the receiver, e.g. {:?}",
                missing.len(),
                want.len(),
                missing.iter().take(5).collect::<Vec<_>>()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The backlog was only for the crash; deliver the rest at full speed.
async fn lift_rate_limit(s: &TestServer, webhook_id: i64) {
    let (status, w) = s
        .patch(
            &format!("/management/webhooks/{webhook_id}"),
            json!({"rate_limit": null}),
        )
        .await;
    assert_eq!(status, 200, "{w}");
    assert!(w["rate_limit"].is_null(), "{w}");
}

/// A mix of slow answers (in flight at the crash) and failures (retrying).
fn troublesome_script(n: usize) -> Vec<Reply> {
    (0..n)
        .map(|i| match i % 5 {
            1 => Reply::Hang(Duration::from_millis(300)),
            3 => Reply::Status(500),
            _ => Reply::Status(200),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_nothing_that_was_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let r = Receiver::start().await;
    r.script("/crash", troublesome_script(400));
    let mut s = start(dir.path()).await;
    // A rate limit below the publish rate keeps a backlog in the store, so
    // the kill finds deliveries pending, in flight and retrying.
    let w = s
        .create_webhook(&r.url("/crash"), json!({"rate_limit": 20}))
        .await;

    let pubs = Publishers::start(&s.base, 4, Duration::from_millis(5));
    // Let a steady stream build up (and deliveries start), then crash.
    pubs.wait_accepted(300, Duration::from_secs(3)).await;
    tokio::task::block_in_place(|| s.kill());
    let at_kill = pubs.accepted();
    // Keep hammering the dead port for a moment: those fail and don't count.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (accepted, errors) = pubs.stop().await;
    let distinct: HashSet<&String> = accepted.iter().collect();
    assert_eq!(
        distinct.len(),
        accepted.len(),
        "two publishes answered the same event id"
    );
    assert!(
        accepted.len() >= 100,
        "only {} events were accepted before the kill; the test proves little",
        accepted.len()
    );
    let received_before_restart = r.received("/crash");
    let reached: HashSet<String> = received_before_restart
        .iter()
        .map(|x| x.json()["id"].as_str().unwrap().to_owned())
        .collect();
    let backlog = accepted.iter().filter(|id| !reached.contains(*id)).count();
    eprintln!(
        "accepted {} ({at_kill} at the kill), {errors} publish errors, {} requests received before the restart, {backlog} accepted events not yet sent",
        accepted.len(),
        received_before_restart.len()
    );
    assert!(
        backlog > 0,
        "the kill interrupted nothing; the test proves little"
    );

    let s2 = start(dir.path()).await;
    lift_rate_limit(&s2, w["id"].as_i64().unwrap()).await;
    let (distinct, total) = assert_all_delivered(&r, "/crash", &accepted).await;
    eprintln!("delivered {distinct} distinct events in {total} requests");

    // Every accepted event is in the log, with its delivery.
    for id in &accepted {
        let (status, e) = s2.get(&format!("/management/events/{id}")).await;
        assert_eq!(
            status, 200,
            "accepted event {id} is gone after the crash: {e}"
        );
        assert_eq!(e["deliveries"].as_array().map(Vec::len), Some(1), "{e}");
    }
    // And the log converges: nothing stays pending or retrying.
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, p) = s2
            .get("/management/deliveries?status=pending&limit=1")
            .await;
        let (_, q) = s2
            .get("/management/deliveries?status=retrying&limit=1")
            .await;
        if p["data"].as_array().unwrap().is_empty() && q["data"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries still pending/retrying: {p} {q}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, failed) = s2.get("/management/deliveries?status=diverted").await;
    assert!(failed["data"].as_array().unwrap().is_empty(), "{failed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_sigkills_still_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let r = Receiver::start().await;
    r.script("/crash", troublesome_script(300));
    let mut s = start(dir.path()).await;
    s.create_webhook(&r.url("/crash"), json!({})).await;
    let mut all = Vec::new();
    for _round in 0..3 {
        let pubs = Publishers::start(&s.base, 3, Duration::from_millis(5));
        pubs.wait_accepted(80, Duration::from_secs(3)).await;
        tokio::task::block_in_place(|| s.kill());
        let (accepted, _) = pubs.stop().await;
        all.extend(accepted);
        s = start(dir.path()).await;
    }
    assert!(all.len() >= 100, "only {} accepted", all.len());
    assert_all_delivered(&r, "/crash", &all).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_a_restart_delivers_everything_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let r = Receiver::start().await;
    r.script("/term", troublesome_script(300));
    let mut s = start(dir.path()).await;
    let w = s
        .create_webhook(&r.url("/term"), json!({"rate_limit": 20}))
        .await;

    // A batch too, so a burst is pending when the signal comes.
    let events: Vec<_> = (0..200)
        .map(|i| json!({"type": "license.created", "data": {"batch": i}}))
        .collect();
    let (status, b) = s.post("/v1/events/batch", json!({"events": events})).await;
    assert_eq!(status, 202, "{b}");
    let mut accepted: Vec<String> = b["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();

    let pubs = Publishers::start(&s.base, 4, Duration::from_millis(5));
    pubs.wait_accepted(100, Duration::from_secs(3)).await;
    let started = Instant::now();
    let exit = tokio::task::block_in_place(|| s.terminate());
    let took = started.elapsed();
    let (more, errors) = pubs.stop().await;
    accepted.extend(more);
    assert!(
        exit.success(),
        "SIGTERM exit status {exit:?}; log:\n{}",
        s.log()
    );
    assert!(took < Duration::from_secs(20), "shutdown took {took:?}");
    let reached: HashSet<String> = r
        .received("/term")
        .iter()
        .map(|x| x.json()["id"].as_str().unwrap().to_owned())
        .collect();
    let backlog = accepted.iter().filter(|id| !reached.contains(*id)).count();
    eprintln!(
        "accepted {}, {errors} publish errors, shutdown took {took:?}, {} requests received before the restart, {backlog} accepted events not yet sent",
        accepted.len(),
        r.received("/term").len()
    );
    assert!(
        backlog > 0,
        "nothing was left to deliver at shutdown; the test proves little"
    );

    // Once it exited, nothing more is sent.
    let before = r.received("/term").len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        r.received("/term").len(),
        before,
        "requests sent after the process exited"
    );

    let s2 = start(dir.path()).await;
    lift_rate_limit(&s2, w["id"].as_i64().unwrap()).await;
    assert_all_delivered(&r, "/term", &accepted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_attempt_finish() {
    let dir = tempfile::tempdir().unwrap();
    let r = Receiver::start().await;
    r.script("/slow", vec![Reply::Hang(Duration::from_millis(1_500))]);
    let mut s = start(dir.path()).await;
    s.create_webhook(&r.url("/slow"), json!({})).await;
    let (status, p) = s
        .post("/v1/events", json!({"type": "license.created", "data": {}}))
        .await;
    assert_eq!(status, 202, "{p}");
    r.wait_for("/slow", 1, WAIT).await; // the attempt is in flight
    let exit = tokio::task::block_in_place(|| s.terminate());
    assert!(exit.success(), "{exit:?}");

    // The attempt finished (200 after 1.5 s) and was recorded before exit:
    // a restart does not send it again.
    let s2 = start(dir.path()).await;
    let (_, e) = s2
        .get(&format!("/management/events/{}", p["id"].as_str().unwrap()))
        .await;
    let d = &e["deliveries"][0];
    assert_eq!(
        d["status"], "succeeded",
        "the in-flight attempt was not finished: {e}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(r.received("/slow").len(), 1);
}
