//! Stalled connections (SPEC §14): a connection that sends nothing, drips
//! its headers or idles after a response is closed within its timeout,
//! while `/healthz` keeps answering; the number of open connections is
//! bounded, and the server serves again once stalled ones close. Raw
//! sockets, short timeouts through the flags, every wait bounded.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{ServerConfig, TestServer};

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: hookd\r\n\r\n";

async fn connect(server: &TestServer) -> TcpStream {
    TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .expect("connecting to hookd")
}

/// Reads until the server closes the connection; returns how long after
/// `since` that happened. Panics if it is still open after `limit`.
async fn closed_after(stream: &mut TcpStream, since: Instant, limit: Duration) -> Duration {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at((since + limit).into(), stream.read(&mut buf)).await {
            Err(_) => panic!("the connection was still open after {limit:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return since.elapsed(),
            Ok(Ok(_)) => continue,
        }
    }
}

/// Reads one whole response to `GET /healthz` (its body is small).
async fn read_response(stream: &mut TcpStream, limit: Duration) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + limit;
    while !String::from_utf8_lossy(&got).contains("\"ok\"") {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .expect("a response in time")
            .expect("reading the response");
        assert!(
            n > 0,
            "closed before answering: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// `/healthz` through a fresh connection (no pool), answered within `limit`.
async fn healthz_answers(server: &TestServer, limit: Duration) -> bool {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(limit)
        .build()
        .unwrap();
    matches!(client.get(server.url("/healthz")).send().await, Ok(r) if r.status() == 200)
}

#[tokio::test]
async fn stalled_connections_are_closed_within_their_timeout_while_healthz_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerConfig::new(dir.path())
        .arg("--header-read-timeout")
        .arg("600ms")
        .arg("--idle-timeout")
        .arg("2s")
        .start()
        .await;

    let start = Instant::now();
    let silent = async {
        let mut silent = connect(&server).await;
        let closed = closed_after(&mut silent, start, Duration::from_secs(3)).await;
        assert!(
            closed >= Duration::from_millis(500),
            "closed too early: {closed:?}"
        );
    };
    // Headers dripped a byte at a time do not extend the deadline.
    let dripping = async {
        let mut dripping = connect(&server).await;
        dripping
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        for _ in 0..40 {
            if dripping.write_all(b"X").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        closed_after(&mut dripping, start, Duration::from_secs(3)).await;
    };
    let idle = async {
        let mut idle = connect(&server).await;
        idle.write_all(HEALTHZ).await.unwrap();
        let first = read_response(&mut idle, Duration::from_secs(2)).await;
        assert!(first.starts_with("HTTP/1.1 200"), "{first}");
        // An idle keep-alive connection outlives the header timeout: a
        // client may send its next request after a pause...
        tokio::time::sleep(Duration::from_millis(900)).await;
        idle.write_all(HEALTHZ).await.unwrap();
        let second = read_response(&mut idle, Duration::from_secs(2)).await;
        assert!(second.starts_with("HTTP/1.1 200"), "{second}");
        // ...and is closed once idle for the idle timeout.
        let since = Instant::now();
        let closed = closed_after(&mut idle, since, Duration::from_secs(5)).await;
        assert!(
            closed >= Duration::from_millis(1_800),
            "idle connection closed after {closed:?}, before the 2 s idle timeout"
        );
    };
    // Meanwhile the service answers.
    let healthz = async {
        for _ in 0..5 {
            assert!(healthz_answers(&server, Duration::from_secs(1)).await);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::join!(silent, dripping, idle, healthz);
}

#[tokio::test]
async fn connection_bound_holds_and_serving_resumes_when_stalled_connections_close() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerConfig::new(dir.path())
        .arg("--max-connections")
        .arg("3")
        .arg("--header-read-timeout")
        .arg("1500ms")
        .arg("--idle-timeout")
        .arg("200ms")
        .start()
        .await;
    // The harness's own pooled connection closes once idle.
    tokio::time::sleep(Duration::from_millis(600)).await;

    // Fill every slot with connections that send nothing, and a few more.
    let opened = Instant::now();
    let mut stalled = Vec::new();
    for _ in 0..5 {
        stalled.push(connect(&server).await);
    }
    // A real request beyond the bound waits: it is not served...
    let mut waiting = connect(&server).await;
    waiting.write_all(HEALTHZ).await.unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(800), waiting.read(&mut buf)).await;
    assert!(early.is_err(), "served beyond the bound of 3 connections");
    // ...until the stalled ones time out; then it is answered.
    let answer = read_response(&mut waiting, Duration::from_secs(6)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(opened.elapsed() >= Duration::from_millis(1_400));
    assert!(healthz_answers(&server, Duration::from_secs(5)).await);
    // Every stalled connection was closed, those beyond the bound too.
    for s in &mut stalled {
        closed_after(s, opened, Duration::from_secs(8)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_comes_is_answered_408_and_its_connection_closed() {
    let dir = tempfile::tempdir().unwrap();
    let s = ServerConfig::new(dir.path())
        .arg("--request-timeout")
        .arg("1s")
        .start()
        .await;
    // Headers promise a body that never comes: with no key (a seed
    // surface reads the body first) and on the admin sign-in form.
    let mut stalled = Vec::new();
    for head in [
        "POST /organizations/webhooks HTTP/1.1\r\nHost: hookd\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
        "POST /admin/login HTTP/1.1\r\nHost: hookd\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n",
    ] {
        let mut c = connect(&s).await;
        c.write_all(head.as_bytes()).await.unwrap();
        stalled.push(c);
    }
    let since = Instant::now();
    assert!(healthz_answers(&s, Duration::from_secs(5)).await);
    for c in &mut stalled {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout_at(
                (since + Duration::from_secs(10)).into(),
                c.read(&mut buf),
            )
            .await
            {
                Err(_) => panic!("the stalled request was still open after 10 s"),
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            }
        }
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    }
    assert!(
        since.elapsed() < Duration::from_secs(5),
        "{:?}",
        since.elapsed()
    );
}
