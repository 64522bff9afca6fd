//! Outbound HTTP/1 connections, kept alive and reused per receiver
//! (scheme and authority). Each exchange runs in the attempt's own task
//! (`http1`): no task per connection.
//!
//! Why not hyper-util's pooled client: for every request it spawned a
//! task that waited for the connection to be ready again before putting
//! it back, and it cloned and dropped its connector and URI parts (about
//! 5 % of hookd's samples in a profile of the fan-out benchmark). Here the
//! attempt that used a connection puts it back itself once it has read
//! the whole answer, and what a request derives from its URL is derived
//! once per webhook (`Destination`).
//!
//! Invariants: a connection in the pool is idle (its last answer was read
//! to the end, and allowed reuse) and open when it went in; one that
//! received anything while idle (the receiver's close) or idled longer
//! than `IDLE_TIMEOUT` is dropped on the way out. A reused connection that
//! the receiver closes before answering a byte (it closed the idle
//! connection as the request went out) is replaced once by a new
//! connection for the same request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{HeaderMap, HeaderValue, Uri};

use super::http1::{BodyEnd, Conn, Head};

/// Idle connections kept per receiver.
const MAX_IDLE_PER_HOST: usize = 512;
/// An idle connection older than this is closed rather than reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the pool is swept of closed and expired idle connections.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// What an idle connection can be reused for: `scheme://authority`,
/// lowercased (as `Authority` compares). One string: hashing the pair hashed
/// the authority a byte at a time, twice per request.
type Key = Arc<str>;

/// What opens a connection to a URI's receiver (see `handshake`).
pub type Opener = Box<dyn Fn(Uri) -> Opening + Send + Sync>;
type Opening =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Conn, ConnectError>> + Send>>;

/// Why no connection was had: the connector's error (DNS, policy, TCP,
/// TLS).
pub type ConnectError = Box<dyn std::error::Error + Send + Sync>;

/// Why a request got no answer.
#[derive(Debug)]
pub enum RequestError {
    Connect(ConnectError),
    /// Writing the request or reading the answer's head failed.
    Http(std::io::Error),
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "could not connect: {e}"),
            Self::Http(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RequestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Connect(e) => Some(e.as_ref()),
            Self::Http(e) => Some(e),
        }
    }
}

/// A pool of idle connections and the way to open new ones.
pub struct Pool {
    open: Opener,
    idle: Mutex<HashMap<Key, Vec<(Conn, Instant)>>>,
}

/// An answer whose connection goes back to the pool once its body has
/// been read to the end (`Answer::read_body`); dropped before that, the
/// connection closes.
pub struct Answer {
    head: Head,
    conn: Option<(Arc<Pool>, Key, Conn)>,
}

impl Answer {
    pub fn status(&self) -> http::StatusCode {
        self.head.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.head.headers
    }

    /// Reads the body into `out`, at most `limit` bytes of it; a body read
    /// to its end gives the connection back to the pool (when the answer
    /// allows its reuse). True: read to its end.
    pub async fn read_body(&mut self, limit: usize, out: &mut Vec<u8>) -> std::io::Result<bool> {
        let Some((_, _, conn)) = self.conn.as_mut() else {
            return Ok(true);
        };
        let end = conn.read_body(&self.head, limit, out).await;
        let complete = matches!(end, Ok(BodyEnd::Complete { .. }));
        if let (Ok(BodyEnd::Complete { reusable: true }), Some((pool, key, conn))) =
            (&end, self.conn.take())
        {
            pool.put_back(key, conn);
        }
        end.map(|_| complete)
    }
}

impl Pool {
    /// A pool; on a Tokio runtime, with a task that closes its expired
    /// idle connections every `SWEEP_EVERY` until the pool is dropped.
    pub fn new(open: Opener) -> Arc<Self> {
        let pool = Arc::new(Self {
            open,
            idle: Mutex::new(HashMap::new()),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&pool);
            runtime.spawn(async move {
                let mut every = tokio::time::interval(SWEEP_EVERY);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    every.tick().await;
                    let Some(pool) = weak.upgrade() else { return };
                    pool.sweep(Instant::now());
                }
            });
        }
        pool
    }

    /// Drops the idle connections that closed or expired.
    fn sweep(&self, now: Instant) {
        self.idle.lock().expect("pool").retain(|_, list| {
            list.retain_mut(|(c, since)| {
                now.duration_since(*since) < IDLE_TIMEOUT && c.idle_and_open()
            });
            !list.is_empty()
        });
    }

    /// Sends `body` with `headers` to `to` (POST), on an idle connection
    /// to its receiver or a new one; answers once the answer's head is in.
    pub async fn post(
        self: &Arc<Self>,
        to: &Destination,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Answer, RequestError> {
        let key = to.key.clone();
        let target = to.target.path_and_query().map_or("/", |p| p.as_str());
        let request = super::http1::encode_request(target, &to.host, &headers, body);
        loop {
            let (mut conn, reused) = match self.checkout(&key) {
                Some(c) => (c, true),
                None => (
                    (self.open)(to.connect.clone())
                        .await
                        .map_err(RequestError::Connect)?,
                    false,
                ),
            };
            let written = conn.write_request(&request).await;
            let answer = match written {
                Ok(()) => conn.read_head().await,
                Err(e) => Err(e),
            };
            match answer {
                Ok(Some(head)) => {
                    return Ok(Answer {
                        head,
                        conn: Some((self.clone(), key, conn)),
                    });
                }
                // A reused connection the receiver closed without a byte of
                // answer: it had closed it while idle. Once more, on a new
                // connection.
                Ok(None) if reused => continue,
                Err(e) if reused && closed_while_idle(&e) => continue,
                Ok(None) => {
                    return Err(RequestError::Http(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the receiver closed the connection without answering",
                    )));
                }
                Err(e) => return Err(RequestError::Http(e)),
            }
        }
    }

    /// The most recently used open idle connection to `key`.
    fn checkout(&self, key: &Key) -> Option<Conn> {
        let mut idle = self.idle.lock().expect("pool");
        let list = idle.get_mut(key)?;
        while let Some((mut conn, since)) = list.pop() {
            if since.elapsed() < IDLE_TIMEOUT && conn.idle_and_open() {
                return Some(conn);
            }
        }
        None
    }

    fn put_back(&self, key: Key, conn: Conn) {
        let now = Instant::now();
        let mut idle = self.idle.lock().expect("pool");
        let list = idle.entry(key).or_default();
        if list.len() < MAX_IDLE_PER_HOST {
            list.push((conn, now));
        }
    }
}

/// Where a request goes, derived once from its URL (a webhook's, kept in
/// its target; a token endpoint's): the pool's key, the `Host` header,
/// the origin-form request target, and what a connection is opened to.
#[derive(Debug, Clone)]
pub struct Destination {
    key: Key,
    host: HeaderValue,
    target: Uri,
    connect: Uri,
}

impl Destination {
    /// None for a URI without a scheme or a host.
    pub fn new(uri: &Uri) -> Option<Self> {
        let (scheme, authority) = (uri.scheme()?, uri.authority()?);
        Some(Self {
            host: host_header(uri, scheme)?,
            connect: connect_uri(scheme, authority),
            target: origin_form(uri),
            key: format!("{scheme}://{authority}")
                .to_ascii_lowercase()
                .into(),
        })
    }
}

/// The `Host` header of `uri`: its host, and its port unless it is the
/// scheme's default.
fn host_header(uri: &Uri, scheme: &Scheme) -> Option<HeaderValue> {
    let host = uri.host()?;
    let default = match scheme.as_str() {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    };
    let value = match uri.port_u16() {
        Some(port) if Some(port) != default => HeaderValue::from_str(&format!("{host}:{port}")),
        _ => HeaderValue::from_str(host),
    };
    value.ok()
}

/// What a connection is opened to: the scheme and authority alone (no
/// path, query or credentials reach the connector).
fn connect_uri(scheme: &Scheme, authority: &Authority) -> Uri {
    let host_port = match authority.port_u16() {
        Some(port) => format!("{}:{port}", authority.host()),
        None => authority.host().to_owned(),
    };
    Uri::builder()
        .scheme(scheme.clone())
        .authority(host_port)
        .path_and_query("/")
        .build()
        .expect("a scheme and an authority make a URI")
}

/// The request target HTTP/1 sends to an origin server: path and query.
fn origin_form(uri: &Uri) -> Uri {
    match uri.path_and_query() {
        Some(pq) if pq.as_str() != "/" => Uri::from(pq.clone()),
        _ => Uri::from_static("/"),
    }
}

/// How a write or read fails on a connection the receiver had closed.
fn closed_while_idle(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    matches!(e.kind(), BrokenPipe | ConnectionReset | ConnectionAborted)
}

/// Opens a connection with `connector` (a tower service from URI to
/// stream).
pub async fn handshake<C>(mut connector: C, uri: Uri) -> Result<Conn, ConnectError>
where
    C: tower_service::Service<Uri>,
    C::Response: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    C::Error: Into<ConnectError>,
{
    std::future::poll_fn(|cx| connector.poll_ready(cx))
        .await
        .map_err(Into::into)?;
    let io = connector.call(uri).await.map_err(Into::into)?;
    Ok(Conn::new(Box::new(hyper_util::rt::TokioIo::new(io))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio::sync::mpsc;

    /// A pool whose connections are in-memory pipes; their receiver ends
    /// come out of the channel, one per connection opened.
    fn piped_pool() -> (Arc<Pool>, mpsc::UnboundedReceiver<DuplexStream>) {
        let (ends, opened) = mpsc::unbounded_channel();
        let pool = Pool::new(Box::new(move |_uri| {
            let (ours, theirs) = tokio::io::duplex(64 * 1024);
            let _ = ends.send(theirs);
            Box::pin(async move { Ok(Conn::new(Box::new(ours))) })
        }));
        (pool, opened)
    }

    /// Reads one request's head and body (`content-length` of the body
    /// below) and answers `200 ok`.
    async fn answer_one(end: &mut DuplexStream) {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.ends_with(b"\r\n\r\nhello") {
            let n = end.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed mid-request");
            got.extend_from_slice(&buf[..n]);
        }
        end.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .await
            .unwrap();
    }

    async fn post(pool: &Arc<Pool>) -> Result<Answer, RequestError> {
        let to = Destination::new(&Uri::from_static("http://receiver.test/hook")).unwrap();
        pool.post(&to, HeaderMap::new(), Bytes::from_static(b"hello"))
            .await
    }

    async fn read_to_end(mut answer: Answer) {
        let mut body = Vec::new();
        assert!(answer.read_body(usize::MAX, &mut body).await.unwrap());
        assert_eq!(body, b"ok");
    }

    #[tokio::test]
    async fn an_idle_connection_is_reused() {
        let (pool, mut opened) = piped_pool();
        let (answer, mut end) = tokio::join!(post(&pool), async {
            let mut end = opened.recv().await.unwrap();
            answer_one(&mut end).await;
            end
        });
        read_to_end(answer.unwrap()).await;
        // Answered on the first connection's end, or not at all.
        let (answer, ()) = tokio::time::timeout(Duration::from_secs(5), async {
            tokio::join!(post(&pool), answer_one(&mut end))
        })
        .await
        .expect("the request went out on the idle connection");
        assert_eq!(answer.unwrap().status(), 200);
        assert!(opened.try_recv().is_err(), "a second connection was opened");
    }

    #[tokio::test]
    async fn a_request_an_idle_connection_could_not_send_goes_out_on_a_new_one() {
        let (pool, mut opened) = piped_pool();
        let (answer, end) = tokio::join!(post(&pool), async {
            let mut end = opened.recv().await.unwrap();
            answer_one(&mut end).await;
            end
        });
        read_to_end(answer.unwrap()).await;
        // The receiver closes the idle connection.
        drop(end);
        let receiver = tokio::spawn(async move {
            let mut end = opened.recv().await.expect("a new connection");
            answer_one(&mut end).await;
        });
        let answer = post(&pool).await;
        assert_eq!(
            answer.expect("sent again on the new connection").status(),
            200
        );
        receiver.await.unwrap();
    }

    #[tokio::test]
    async fn a_reused_connection_closed_before_any_answer_is_replaced_once() {
        let (pool, mut opened) = piped_pool();
        let (answer, mut end) = tokio::join!(post(&pool), async {
            let mut end = opened.recv().await.unwrap();
            answer_one(&mut end).await;
            end
        });
        read_to_end(answer.unwrap()).await;
        // The receiver takes the next request on the idle connection, then
        // closes it without a byte of answer; the request goes out again
        // on a new connection.
        let receiver = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while !got.ends_with(b"hello") {
                let n = end.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            drop(end);
            let mut fresh = opened.recv().await.expect("a new connection");
            answer_one(&mut fresh).await;
        });
        let answer = post(&pool).await;
        assert_eq!(
            answer.expect("answered on the new connection").status(),
            200
        );
        receiver.await.unwrap();
    }

    #[test]
    fn a_destination_holds_the_host_header_the_request_target_and_what_to_connect_to() {
        let to = |u: &str| {
            let d = Destination::new(&u.parse().unwrap()).unwrap();
            (
                d.host.to_str().unwrap().to_owned(),
                d.target.to_string(),
                d.connect.to_string(),
            )
        };
        let all = |host: &str, target: &str, connect: &str| {
            (host.to_owned(), target.to_owned(), connect.to_owned())
        };
        // The port only when it is not the scheme's default; path and
        // query only; no path, query or credentials to the connector.
        assert_eq!(
            to("https://example.com"),
            all("example.com", "/", "https://example.com/")
        );
        assert_eq!(
            to("https://example.com:443/x"),
            all("example.com", "/x", "https://example.com:443/")
        );
        assert_eq!(
            to("https://user:pw@example.com:8443/a/b?c=d"),
            all("example.com:8443", "/a/b?c=d", "https://example.com:8443/")
        );
        assert_eq!(
            to("http://127.0.0.1:80/"),
            all("127.0.0.1", "/", "http://127.0.0.1:80/")
        );
        assert_eq!(
            to("http://[::1]:3000/hook"),
            all("[::1]:3000", "/hook", "http://[::1]:3000/")
        );
        assert!(Destination::new(&Uri::from_static("/relative")).is_none());
    }

    #[test]
    fn connections_are_shared_by_scheme_and_authority_whatever_their_case() {
        let key = |u: &'static str| Destination::new(&Uri::from_static(u)).unwrap().key;
        assert_eq!(
            key("http://Example.COM:8080/a"),
            key("HTTP://example.com:8080/b?c")
        );
        assert_ne!(
            key("http://example.com:8080/"),
            key("http://example.com:8081/")
        );
        assert_ne!(key("http://example.com/"), key("https://example.com/"));
    }
}
