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
//! than `IDLE_TIMEOUT` is dropped on the way out. A delivery (a request
//! with an idempotency key) that a reused connection's receiver closes
//! without a byte of answer (it closed the idle connection as the request
//! went out) goes out once more, on a new connection; any other request
//! fails as it is.

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
/// The header that makes a request safe to send again (`post`).
const IDEMPOTENCY_KEY: &str = "idempotency-key";
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
    /// allows its reuse).
    pub async fn read_body(&mut self, limit: usize, out: &mut Vec<u8>) -> std::io::Result<()> {
        let Some((_, _, conn)) = self.conn.as_mut() else {
            return Ok(());
        };
        let end = conn.read_body(&self.head, limit, out).await?;
        if end == (BodyEnd::Complete { reusable: true })
            && let Some((pool, key, conn)) = self.conn.take()
        {
            pool.put_back(key, conn);
        }
        Ok(())
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
        // A request that says how its receiver tells a repeat (a delivery's
        // idempotency key) may go out once more when a reused connection
        // turns out closed; a token request never does.
        let replayable = headers.contains_key(IDEMPOTENCY_KEY);
        let target = to.target.path_and_query().map_or("/", |p| p.as_str());
        let request = super::http1::encode_request(target, &to.host, &headers, body);
        let mut again = false;
        loop {
            let reused_conn = if again { None } else { self.checkout(&key) };
            let reused = reused_conn.is_some();
            let mut conn = match reused_conn {
                Some(c) => c,
                None => (self.open)(to.connect.clone())
                    .await
                    .map_err(RequestError::Connect)?,
            };
            let answer = match conn.write_request(&request).await {
                Ok(()) => conn.read_head().await,
                // The receiver may have answered before it stopped reading
                // (a 413 to a large body): its answer, if it is there.
                Err(e) => match conn.read_head().await {
                    Ok(Some(mut head)) => {
                        head.forbid_reuse();
                        Ok(Some(head))
                    }
                    _ if super::http1::closed(&e) => Ok(None),
                    _ => Err(e),
                },
            };
            match answer {
                Ok(Some(head)) => {
                    return Ok(Answer {
                        head,
                        conn: Some((self.clone(), key, conn)),
                    });
                }
                // A reused connection the receiver closed without a byte of
                // answer: most likely closed while idle, as the request went
                // out. Once more, on a new connection.
                Ok(None) if reused && replayable => {
                    tracing::debug!(
                        receiver = %key,
                        "a reused connection closed before answering; sending on a new one"
                    );
                    again = true;
                }
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

    fn put_back(&self, key: Key, mut conn: Conn) {
        conn.shrink();
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

    /// A delivery's headers: it carries an idempotency key.
    fn delivery_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_static("msg_1"));
        headers
    }

    async fn post(pool: &Arc<Pool>) -> Result<Answer, RequestError> {
        post_with(pool, delivery_headers()).await
    }

    async fn post_with(pool: &Arc<Pool>, headers: HeaderMap) -> Result<Answer, RequestError> {
        let to = Destination::new(&Uri::from_static("http://receiver.test/hook")).unwrap();
        pool.post(&to, headers, Bytes::from_static(b"hello")).await
    }

    /// Reads a request on `end`, then closes it without answering.
    async fn read_then_close(mut end: DuplexStream) {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.ends_with(b"hello") {
            let n = end.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
        }
    }

    async fn read_to_end(mut answer: Answer) {
        let mut body = Vec::new();
        answer.read_body(usize::MAX, &mut body).await.unwrap();
        assert_eq!(body, b"ok");
    }

    /// One request answered on a first connection, its answer read to
    /// the end (the connection idles in the pool); the receiver's end.
    async fn first_exchange(
        pool: &Arc<Pool>,
        opened: &mut mpsc::UnboundedReceiver<DuplexStream>,
        headers: HeaderMap,
    ) -> DuplexStream {
        let (answer, end) = tokio::join!(post_with(pool, headers), async {
            let mut end = opened.recv().await.unwrap();
            answer_one(&mut end).await;
            end
        });
        read_to_end(answer.unwrap()).await;
        end
    }

    #[tokio::test]
    async fn an_idle_connection_is_reused() {
        let (pool, mut opened) = piped_pool();
        let mut end = first_exchange(&pool, &mut opened, delivery_headers()).await;
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
        let end = first_exchange(&pool, &mut opened, delivery_headers()).await;
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
    async fn a_delivery_a_reused_connection_closed_unanswered_goes_out_once_more() {
        let (pool, mut opened) = piped_pool();
        let end = first_exchange(&pool, &mut opened, delivery_headers()).await;
        // The receiver takes the next request on the idle connection and
        // closes it without a byte of answer; the request goes out again on
        // a new connection, and only once: that one closes too.
        let receiver = tokio::spawn(async move {
            read_then_close(end).await;
            read_then_close(opened.recv().await.expect("a new connection")).await;
            assert!(opened.recv().await.is_none(), "a third connection");
        });
        let e = post(&pool).await.err().expect("no answer");
        assert!(e.to_string().contains("without answering"), "{e}");
        drop(pool);
        receiver.await.unwrap();
    }

    #[tokio::test]
    async fn a_request_without_an_idempotency_key_is_never_sent_twice() {
        let (pool, mut opened) = piped_pool();
        let end = first_exchange(&pool, &mut opened, HeaderMap::new()).await;
        let (answer, ()) = tokio::join!(post_with(&pool, HeaderMap::new()), read_then_close(end));
        assert!(answer.is_err());
        assert!(opened.try_recv().is_err(), "sent again on a new connection");
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
