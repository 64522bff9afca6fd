//! How an attempt fails: redirects, timeouts, closed and refused
//! connections, DNS errors, and the response body's limit.

use super::*;

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
    // The attempt is over (failed, final): a followed redirect would have
    // reached /elsewhere within it.
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
