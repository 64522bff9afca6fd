//! The outbound connections: kept alive and reused, requests in origin
//! form with a `Host` header, and a receiver that closes its idle
//! connections costs no failed attempt. A raw HTTP/1.1 receiver, so that
//! what is on the wire and which connection carried it are seen exactly.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// One request as the raw receiver saw it: the connection it came on (in
/// order of acceptance) and its head (request line and headers).
#[derive(Debug, Clone)]
struct Seen {
    connection: usize,
    head: String,
}

/// A receiver that answers every request `200 ok` and closes each
/// connection, without saying so beforehand, after `per_connection`
/// answers (a receiver's keep-alive limit or idle timeout looks so).
async fn raw_receiver(per_connection: usize) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        for connection in 0.. {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                for _ in 0..per_connection {
                    let Some(head) = read_request(&mut sock, &mut buf).await else {
                        return;
                    };
                    log.lock().unwrap().push(Seen { connection, head });
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if sock.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (base, seen)
}

/// Reads one request (head and `content-length` body) from `sock`; its
/// head, or None when the connection ends first.
async fn read_request(sock: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < end + length {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    buf.drain(..end + length);
    Some(head)
}

/// Publishes one event and waits for its delivery to succeed; answers it.
async fn deliver_one(s: &TestServer) -> Value {
    let p = publish_type(s, "license.created").await;
    let id = only_delivery(s, p["id"].as_str().unwrap()).await;
    wait_delivery(s, id, "finished", |d| {
        d["status"] == "succeeded" || d["status"] == "failed"
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_to_one_receiver_share_one_kept_alive_connection() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let (base, seen) = raw_receiver(usize::MAX).await;
    s.create_webhook(&format!("{base}/hooks/in?source=hookd"), json!({}))
        .await;
    for _ in 0..5 {
        let d = deliver_one(&s).await;
        assert_eq!(d["status"], "succeeded", "{d}");
        assert_eq!(attempts(&d).len(), 1, "{d}");
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert!(
        seen.iter().all(|r| r.connection == 0),
        "one connection should carry every delivery: {seen:?}"
    );
    let authority = base.trim_start_matches("http://");
    for r in &seen {
        let mut lines = r.head.lines();
        assert_eq!(
            lines.next(),
            Some("POST /hooks/in?source=hookd HTTP/1.1"),
            "the request target is the URL's path and query: {}",
            r.head
        );
        let host: Vec<&str> = lines
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.eq_ignore_ascii_case("host"))
            .map(|(_, v)| v.trim())
            .collect();
        assert_eq!(host, [authority], "one Host header: {}", r.head);
    }
}

/// hookd sees each close before the next delivery here, so this shows
/// that a closed idle connection is not taken again; the resend of a
/// request a connection closed under it is shown by `dispatcher::pool`'s
/// unit test, where the timing is controlled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_closing_its_idle_connections_costs_no_failed_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    // Every connection carries one answer, then the receiver closes it.
    let (base, seen) = raw_receiver(1).await;
    s.create_webhook(&format!("{base}/hook"), json!({})).await;
    for _ in 0..5 {
        let d = deliver_one(&s).await;
        assert_eq!(d["status"], "succeeded", "{d}");
        assert_eq!(
            attempts(&d).len(),
            1,
            "a closed idle connection must not fail an attempt: {d}"
        );
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 5, "{seen:?}");
    let connections: HashSet<usize> = seen.iter().map(|r| r.connection).collect();
    assert_eq!(connections.len(), 5, "{seen:?}");
}
