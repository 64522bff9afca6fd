//! Outbound HTTP/1 connections, kept alive and reused per receiver
//! (scheme and authority), on hyper's connection API.
//!
//! Why not hyper-util's pooled client: for every request it spawned a
//! task that waited for the connection to be ready again before putting
//! it back, and it cloned and dropped its connector and URI parts (about
//! 5 % of hookd's samples in a profile of the fan-out benchmark; the
//! benchmark's CPU per delivery did not move beyond its noise). Here the
//! attempt that used a connection puts it back itself once it has read
//! the whole answer, and what a request derives from its URL is derived
//! once per webhook (`Destination`).
//!
//! Invariants: a connection in the pool is idle (its last answer was read
//! to the end) and open when it went in; one found closed or idle for
//! longer than `IDLE_TIMEOUT` on the way out is dropped. A request that a
//! reused connection could not send (closed by the receiver while idle)
//! goes out again on another connection: hyper hands it back only when
//! none of it was written, so nothing is delivered twice this way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;

/// Idle connections kept per receiver.
const MAX_IDLE_PER_HOST: usize = 512;
/// An idle connection older than this is closed rather than reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the pool is swept of closed and expired idle connections.
const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// How long an attempt waits, after reading its answer, for the
/// connection to be ready for the next request before closing it.
const READY_WAIT: Duration = Duration::from_secs(1);

/// What an idle connection can be reused for: `scheme://authority`,
/// lowercased (as `Authority` compares). One string: hashing the pair hashed
/// the authority a byte at a time, twice per request.
type Key = Arc<str>;
type Sender = SendRequest<Full<Bytes>>;

/// What opens a connection to a URI's receiver (see `handshake`).
pub type Opener = Box<dyn Fn(Uri) -> Opening + Send + Sync>;
type Opening =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Sender, ConnectError>> + Send>>;

/// Why no connection was had: the connector's error (DNS, policy, TCP,
/// TLS), or the HTTP/1 handshake's.
pub type ConnectError = Box<dyn std::error::Error + Send + Sync>;

/// Why a request got no answer.
#[derive(Debug)]
pub enum RequestError {
    Connect(ConnectError),
    Http(hyper::Error),
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
    idle: Mutex<HashMap<Key, Vec<(Sender, Instant)>>>,
}

/// An answer whose connection goes back to the pool once its body has
/// been read to the end (`Answer::finish`); dropped before that, the
/// connection closes.
pub struct Answer {
    head: http::response::Parts,
    pub body: Incoming,
    conn: Option<(Arc<Pool>, Key, Sender)>,
}

impl Answer {
    pub fn status(&self) -> http::StatusCode {
        self.head.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.head.headers
    }

    /// The body was read to its end: the connection is reused once hyper
    /// has finished the exchange (within `READY_WAIT` and `left`, what is
    /// left of the attempt's time).
    pub async fn finish(mut self, left: Duration) {
        let Some((pool, key, mut sender)) = self.conn.take() else {
            return;
        };
        // Usually ready already: hyper finished the exchange before the
        // body's end reached this task.
        if sender.is_ready()
            || tokio::time::timeout(READY_WAIT.min(left), sender.ready())
                .await
                .is_ok_and(|ready| ready.is_ok())
        {
            pool.put_back(key, sender);
        }
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
            list.retain(|(s, since)| !s.is_closed() && now.duration_since(*since) < IDLE_TIMEOUT);
            !list.is_empty()
        });
    }

    /// Sends `body` with `headers` to `to` (POST), on an idle connection
    /// to its receiver or a new one.
    pub async fn post(
        self: &Arc<Self>,
        to: &Destination,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<Answer, RequestError> {
        headers
            .entry(http::header::HOST)
            .or_insert_with(|| to.host.clone());
        let key = to.key.clone();
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = to.target.clone();
        *request.headers_mut() = headers;
        loop {
            let (mut sender, reused) = match self.checkout(&key) {
                Some(s) => (s, true),
                None => (
                    (self.open)(to.connect.clone())
                        .await
                        .map_err(RequestError::Connect)?,
                    false,
                ),
            };
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let (head, body) = response.into_parts();
                    return Ok(Answer {
                        head,
                        body,
                        conn: Some((self.clone(), key, sender)),
                    });
                }
                Err(mut e) => match e.take_message() {
                    // Not written at all: the idle connection had closed.
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(RequestError::Http(e.into_error())),
                },
            }
        }
    }

    /// The most recently used open idle connection to `key`.
    fn checkout(&self, key: &Key) -> Option<Sender> {
        let mut idle = self.idle.lock().expect("pool");
        let list = idle.get_mut(key)?;
        while let Some((sender, since)) = list.pop() {
            if sender.is_ready() && since.elapsed() < IDLE_TIMEOUT {
                return Some(sender);
            }
        }
        None
    }

    fn put_back(&self, key: Key, sender: Sender) {
        let now = Instant::now();
        let mut idle = self.idle.lock().expect("pool");
        let list = idle.entry(key).or_default();
        if list.len() < MAX_IDLE_PER_HOST {
            list.push((sender, now));
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

/// Opens a connection with `connector` (a tower service from URI to
/// stream) and runs its HTTP/1 side as a task of its own.
pub async fn handshake<C>(mut connector: C, uri: Uri) -> Result<Sender, ConnectError>
where
    C: tower_service::Service<Uri>,
    C::Response: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    C::Error: Into<ConnectError>,
{
    std::future::poll_fn(|cx| connector.poll_ready(cx))
        .await
        .map_err(Into::into)?;
    let io = connector.call(uri).await.map_err(Into::into)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "outbound connection ended");
        }
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio::sync::mpsc;

    /// A pool whose connections are in-memory pipes; their receiver ends
    /// come out of the channel, one per connection opened.
    fn piped_pool() -> (Arc<Pool>, mpsc::UnboundedReceiver<DuplexStream>) {
        let (ends, opened) = mpsc::unbounded_channel();
        let pool = Pool::new(Box::new(move |_uri| {
            let (ours, theirs) = tokio::io::duplex(64 * 1024);
            let _ = ends.send(theirs);
            Box::pin(async move {
                let (sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(ours)).await?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                Ok(sender)
            })
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
        while let Some(frame) = answer.body.frame().await {
            frame.unwrap();
        }
        answer.finish(Duration::from_secs(1)).await;
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
        // The receiver closes the idle connection; on this one thread,
        // hyper has not seen it yet when the next request takes it.
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
