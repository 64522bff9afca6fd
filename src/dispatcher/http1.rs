//! One HTTP/1.1 exchange on a connection that the attempt's task owns:
//! the request written in one piece, the answer's head parsed by
//! `httparse` (hyper's own parser), its body read by its framing
//! (`content-length`, chunked, or until the receiver closes).
//!
//! Why not hyper's client connection: it runs every connection as a task
//! of its own, fed requests through a channel, handing the answer back
//! through a one-shot and the body through another channel, so each
//! delivery woke three tasks and crossed three channels. The fan-out
//! benchmark (b), six rounds against hyper's: 11–23 % less of hookd's CPU
//! per delivery.
//!
//! What a webhook sender needs is less than a general client: one POST
//! with a known length, no upgrades, no pipelining, at most
//! `MAX_RESPONSE_BODY` of an answer kept. A connection is reused only
//! after an HTTP/1.1 answer read to its end without `connection: close`.

use std::io;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest answer head read (status line and headers).
const MAX_HEAD: usize = 64 * 1024;
/// Headers an answer may have (hyper's default).
const MAX_HEADERS: usize = 100;
/// A body up to this size is copied behind the request's head and both go
/// out in one write; a larger one is written after the head.
const COALESCE_BODY: usize = 16 * 1024;

/// A stream a connection runs on (TCP, or TLS over TCP).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An open connection and what it has read past the last answer.
pub struct Conn {
    io: Box<dyn Io>,
    buf: BytesMut,
}

/// How an answer's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// Until the receiver closes: the connection cannot be reused.
    UntilClose,
}

/// An answer's head.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    pub headers: HeaderMap,
    framing: Framing,
    /// HTTP/1.1 without `connection: close`.
    keep_alive: bool,
}

impl Head {
    /// The connection is not used again after this answer (its request
    /// was not written whole).
    pub fn forbid_reuse(&mut self) {
        self.keep_alive = false;
    }
}

/// How reading a body ended.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyEnd {
    /// Read to its end: the connection can take another request when the
    /// answer allows it.
    Complete { reusable: bool },
    /// Cut at the limit: the rest is left unread, with its connection.
    Cut,
}

impl Conn {
    pub fn new(io: Box<dyn Io>) -> Self {
        Self {
            io,
            buf: BytesMut::with_capacity(8 * 1024),
        }
    }

    /// Whether an idle connection can take a request: nothing arrived
    /// while it was idle (not the receiver's close, nor stray bytes).
    pub fn idle_and_open(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        let mut probe = tokio::io::ReadBuf::new(&mut probe);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        // Pending: nothing to read, the connection is as it was left.
        std::pin::Pin::new(&mut self.io)
            .poll_read(&mut cx, &mut probe)
            .is_pending()
    }

    /// Writes `request`.
    pub async fn write_request(&mut self, request: &Request) -> io::Result<()> {
        self.io.write_all(&request.bytes).await?;
        if !request.rest.is_empty() {
            self.io.write_all(&request.rest).await?;
        }
        self.io.flush().await
    }

    /// Reads the answer's head, skipping interim (1xx) answers. `Ok(None)`:
    /// the receiver closed (or reset) the connection before sending a byte.
    pub async fn read_head(&mut self) -> io::Result<Option<Head>> {
        let mut answered = false;
        loop {
            if let Some(head) = self.parse_head()? {
                if head.status.is_informational() {
                    if head.status == StatusCode::SWITCHING_PROTOCOLS {
                        return Err(malformed("the receiver switched protocols"));
                    }
                    continue;
                }
                return Ok(Some(head));
            }
            if self.buf.len() >= MAX_HEAD {
                return Err(malformed("the answer's head is larger than 64 KiB"));
            }
            match self.fill().await {
                Ok(0) if !answered => return Ok(None),
                Err(e) if !answered && closed(&e) => return Ok(None),
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the receiver closed the connection in the middle of its answer",
                    ));
                }
                Ok(_) => answered = true,
                Err(e) => return Err(e),
            }
        }
    }

    /// A complete head at the start of the buffer, consumed; none yet if
    /// more bytes are needed.
    fn parse_head(&mut self) -> io::Result<Option<Head>> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut answer = httparse::Response::new(&mut slots);
        let len = match answer.parse(&self.buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(malformed(&format!("the answer is not HTTP/1: {e}"))),
        };
        let status = answer
            .code
            .and_then(|c| StatusCode::from_u16(c).ok())
            .ok_or_else(|| malformed("the answer's status is not a number from 100 to 999"))?;
        let mut headers = HeaderMap::with_capacity(answer.headers.len());
        let mut length: Option<u64> = None;
        let mut chunked = false;
        let mut transfer_encoded = false;
        let mut suspect = false;
        let mut close = answer.version != Some(1);
        for h in answer.headers.iter() {
            let name = HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|_| malformed("the answer has an invalid header name"))?;
            let value = HeaderValue::from_bytes(h.value)
                .map_err(|_| malformed("the answer has an invalid header value"))?;
            if name == http::header::CONTENT_LENGTH {
                // RFC 9110 §8.6: digits; a list of one value repeated is
                // that value.
                for part in h.value.split(|&b| b == b',') {
                    let n = content_length(part.trim_ascii())
                        .ok_or_else(|| malformed("the answer's content-length is not a number"))?;
                    if length.is_some_and(|l| l != n) {
                        return Err(malformed("the answer has two different content-lengths"));
                    }
                    length = Some(n);
                }
            } else if name == http::header::TRANSFER_ENCODING {
                // Chunked twice, or a coding with a length beside it, is
                // read as chunked but the connection not trusted again
                // (RFC 9112 §6.3: possible request smuggling).
                suspect |= transfer_encoded || chunked;
                transfer_encoded = true;
                // Chunked must be the last coding to frame the body.
                chunked = h
                    .value
                    .rsplit(|&b| b == b',')
                    .next()
                    .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            } else if name == http::header::CONNECTION {
                close |= h
                    .value
                    .split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
            }
            headers.append(name, value);
        }
        self.buf.advance(len);
        // RFC 9112 §6.3: no body for 1xx, 204 and 304; transfer coding
        // before length; neither: until the connection closes.
        let framing = if status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            Framing::Empty
        } else if transfer_encoded {
            if chunked {
                Framing::Chunked
            } else {
                Framing::UntilClose
            }
        } else {
            match length {
                Some(0) => Framing::Empty,
                Some(n) => Framing::Length(n),
                None => Framing::UntilClose,
            }
        };
        suspect |= transfer_encoded && length.is_some();
        Ok(Some(Head {
            status,
            headers,
            keep_alive: !close && !suspect && framing != Framing::UntilClose,
            framing,
        }))
    }

    /// Reads the body of `head` into `out`, at most `limit` bytes of it.
    pub async fn read_body(
        &mut self,
        head: &Head,
        limit: usize,
        out: &mut Vec<u8>,
    ) -> io::Result<BodyEnd> {
        let end = match head.framing {
            Framing::Empty => true,
            Framing::Length(n) => self.read_exact_into(n, limit, out).await?,
            Framing::UntilClose => loop {
                self.take_into(self.buf.len() as u64, limit, out);
                if out.len() >= limit {
                    break false;
                }
                if self.fill().await? == 0 {
                    return Ok(BodyEnd::Complete { reusable: false });
                }
            },
            Framing::Chunked => loop {
                let size = self.chunk_size().await?;
                if size == 0 {
                    self.skip_trailers().await?;
                    break true;
                }
                if !self.read_exact_into(size, limit, out).await? {
                    break false;
                }
                self.expect_crlf().await?;
            },
        };
        // Bytes past the answer: the receiver's, not an answer to anything
        // hookd asked; the connection is not reused.
        Ok(if end {
            BodyEnd::Complete {
                reusable: head.keep_alive && self.buf.is_empty(),
            }
        } else {
            BodyEnd::Cut
        })
    }

    /// Moves the next `n` bytes of the body into `out` (those past `limit`
    /// dropped). False: the limit was reached first.
    async fn read_exact_into(
        &mut self,
        mut n: u64,
        limit: usize,
        out: &mut Vec<u8>,
    ) -> io::Result<bool> {
        loop {
            n -= self.take_into(n, limit, out);
            if n == 0 {
                return Ok(true);
            }
            if out.len() >= limit {
                return Ok(false);
            }
            if self.fill().await? == 0 {
                return Err(cut_short());
            }
        }
    }

    /// Takes up to `n` buffered bytes, keeping what fits under `limit`;
    /// returns how many it took.
    fn take_into(&mut self, n: u64, limit: usize, out: &mut Vec<u8>) -> u64 {
        let take = (self.buf.len() as u64).min(n) as usize;
        let keep = take.min(limit.saturating_sub(out.len()));
        out.extend_from_slice(&self.buf[..keep]);
        self.buf.advance(take);
        take as u64
    }

    async fn chunk_size(&mut self) -> io::Result<u64> {
        loop {
            // httparse reads an empty size line as 0; it is not a size.
            if self.buf.first().is_some_and(|b| !b.is_ascii_hexdigit()) {
                return Err(malformed("a chunk's size is not hexadecimal"));
            }
            match httparse::parse_chunk_size(&self.buf) {
                Ok(httparse::Status::Complete((len, size))) => {
                    self.buf.advance(len);
                    return Ok(size);
                }
                Ok(httparse::Status::Partial) => {
                    if self.buf.len() >= MAX_HEAD {
                        return Err(malformed("a chunk's size line is too long"));
                    }
                    if self.fill().await? == 0 {
                        return Err(cut_short());
                    }
                }
                Err(_) => return Err(malformed("a chunk's size is not hexadecimal")),
            }
        }
    }

    async fn expect_crlf(&mut self) -> io::Result<()> {
        while self.buf.len() < 2 {
            if self.fill().await? == 0 {
                return Err(cut_short());
            }
        }
        if &self.buf[..2] != b"\r\n" {
            return Err(malformed("a chunk does not end with CRLF"));
        }
        self.buf.advance(2);
        Ok(())
    }

    /// The trailer section after the last chunk, up to its empty line.
    async fn skip_trailers(&mut self) -> io::Result<()> {
        let mut seen = 0;
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                self.buf.advance(end + 2);
                seen += end + 2;
                if end == 0 {
                    return Ok(());
                }
                if seen >= MAX_HEAD {
                    return Err(malformed("the answer's trailers are larger than 64 KiB"));
                }
                continue;
            }
            if seen + self.buf.len() >= MAX_HEAD {
                return Err(malformed("the answer's trailers are larger than 64 KiB"));
            }
            if self.fill().await? == 0 {
                return Err(cut_short());
            }
        }
    }

    /// Gives back a buffer that grew past its usual size (a large head or
    /// body), so an idle connection holds 8 KiB.
    pub fn shrink(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 16 * 1024 {
            self.buf = BytesMut::with_capacity(8 * 1024);
        }
    }

    /// Reads more from the connection; 0 when it has closed.
    async fn fill(&mut self) -> io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(8 * 1024);
        }
        self.io.read_buf(&mut self.buf).await
    }
}

/// A POST ready to write: its head, with the body behind it when the body
/// is small (one write), else the body apart (`rest`, not copied).
pub struct Request {
    bytes: Vec<u8>,
    rest: Bytes,
}

/// The POST of `body` to `target` (origin form) at `host`, with `headers`
/// and the body's length.
pub fn encode_request(
    target: &str,
    host: &HeaderValue,
    headers: &HeaderMap,
    body: Bytes,
) -> Request {
    let coalesce = body.len() <= COALESCE_BODY;
    let head_len = 64
        + target.len()
        + host.len()
        + headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>();
    let mut out = Vec::with_capacity(head_len + if coalesce { body.len() } else { 0 });
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        // Framing is this function's (webhooks may not set these; a stored
        // one from before that rule must not frame the request twice).
        if [HOST, CONTENT_LENGTH, TRANSFER_ENCODING].contains(name) {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"content-length: ");
    out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    if coalesce {
        out.extend_from_slice(&body);
        Request {
            bytes: out,
            rest: Bytes::new(),
        }
    } else {
        Request {
            bytes: out,
            rest: body,
        }
    }
}

/// A content-length value: digits only (no sign, no spaces inside).
fn content_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// How a write or read fails on a connection the receiver closed.
pub fn closed(e: &io::Error) -> bool {
    use io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    matches!(e.kind(), BrokenPipe | ConnectionReset | ConnectionAborted)
}

fn malformed(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_owned())
}

fn cut_short() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the receiver closed the connection in the middle of the body",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::DuplexStream;

    /// A connection whose receiver has already sent `answer` (and closed
    /// when `close`).
    async fn answered(answer: &[u8], close: bool) -> (Conn, Option<DuplexStream>) {
        let (ours, mut theirs) = tokio::io::duplex(256 * 1024);
        theirs.write_all(answer).await.unwrap();
        let theirs = if close {
            drop(theirs);
            None
        } else {
            Some(theirs)
        };
        (Conn::new(Box::new(ours)), theirs)
    }

    async fn exchange(
        answer: &[u8],
        close: bool,
        limit: usize,
    ) -> (Head, io::Result<BodyEnd>, Vec<u8>) {
        let (mut conn, _theirs) = answered(answer, close).await;
        let head = conn.read_head().await.unwrap().expect("a head");
        let mut body = Vec::new();
        let end = conn.read_body(&head, limit, &mut body).await;
        (head, end, body)
    }

    #[tokio::test]
    async fn a_body_of_known_length_is_read_and_the_connection_kept() {
        let (head, end, body) = exchange(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello",
            false,
            64,
        )
        .await;
        assert_eq!(head.status, 200);
        assert_eq!(head.headers["x-a"], "b");
        assert_eq!(end.unwrap(), BodyEnd::Complete { reusable: true });
        assert_eq!(body, b"hello");
    }

    #[tokio::test]
    async fn a_chunked_body_with_extensions_and_trailers_is_joined() {
        let (_, end, body) = exchange(
            b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
            false,
            64,
        )
        .await;
        assert_eq!(end.unwrap(), BodyEnd::Complete { reusable: true });
        assert_eq!(body, b"hello world");
    }

    #[tokio::test]
    async fn without_a_length_the_body_ends_with_the_connection() {
        let (head, end, body) = exchange(b"HTTP/1.0 200 OK\r\n\r\nuntil close", true, 64).await;
        assert_eq!(head.status, 200);
        assert_eq!(end.unwrap(), BodyEnd::Complete { reusable: false });
        assert_eq!(body, b"until close");
    }

    #[tokio::test]
    async fn interim_answers_are_skipped_and_no_content_has_no_body() {
        let (head, end, body) = exchange(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            false,
            64,
        )
        .await;
        assert_eq!(head.status, 204);
        assert_eq!(end.unwrap(), BodyEnd::Complete { reusable: true });
        assert!(body.is_empty());
    }

    #[tokio::test]
    async fn a_body_past_the_limit_is_cut_and_its_connection_not_reused() {
        // More body to come than the limit: not waited for.
        let (_, end, body) = exchange(
            b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n0123456789",
            false,
            4,
        )
        .await;
        assert_eq!(end.unwrap(), BodyEnd::Cut);
        assert_eq!(body, b"0123");
        let (_, end, body) = exchange(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3e8\r\n012345",
            false,
            4,
        )
        .await;
        assert_eq!(end.unwrap(), BodyEnd::Cut);
        assert_eq!(body, b"0123");
        // All of it already read: consumed, the limit kept.
        let (_, end, body) = exchange(
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n0123456789",
            false,
            4,
        )
        .await;
        assert_eq!(end.unwrap(), BodyEnd::Complete { reusable: true });
        assert_eq!(body, b"0123");
    }

    #[tokio::test]
    async fn connection_close_and_http_1_0_answers_are_not_reused() {
        let (_, end, _) = exchange(
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\ncontent-length: 0\r\n\r\n",
            false,
            64,
        )
        .await;
        assert_eq!(end.unwrap(), BodyEnd::Complete { reusable: false });
        let (_, end, _) =
            exchange(b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok", false, 64).await;
        assert_eq!(end.unwrap(), BodyEnd::Complete { reusable: false });
    }

    #[tokio::test]
    async fn malformed_and_cut_answers_are_errors_naming_what_happened() {
        let head = |answer: &'static [u8]| async move {
            let (mut conn, _theirs) = answered(answer, true).await;
            conn.read_head().await
        };
        let e = head(b"SMTP ready\r\n\r\n").await.unwrap_err();
        assert!(e.to_string().contains("not HTTP/1"), "{e}");
        let e = head(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n")
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("two different content-lengths"),
            "{e}"
        );
        let e = head(b"HTTP/1.1 200 OK\r\ncontent-le").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert!(head(b"").await.unwrap().is_none(), "closed before a byte");
        let (_, end, body) = exchange(
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n01234",
            true,
            64,
        )
        .await;
        assert_eq!(end.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(body, b"01234");
    }

    #[tokio::test]
    async fn lengths_are_digits_and_a_repeated_length_is_one() {
        let (_, end, body) = exchange(
            b"HTTP/1.1 200 OK\r\ncontent-length: 2, 2\r\n\r\nok",
            false,
            64,
        )
        .await;
        assert_eq!(end.unwrap(), BodyEnd::Complete { reusable: true });
        assert_eq!(body, b"ok");
        for bad in [&b"+2"[..], b"2 2", b"", b"0x2", b"-1"] {
            let mut answer = b"HTTP/1.1 200 OK\r\ncontent-length: ".to_vec();
            answer.extend_from_slice(bad);
            answer.extend_from_slice(b"\r\n\r\nok");
            let (mut conn, _theirs) = answered(&answer, true).await;
            let e = conn.read_head().await.unwrap_err();
            assert!(e.to_string().contains("not a number"), "{bad:?}: {e}");
        }
    }

    #[tokio::test]
    async fn suspect_framing_and_bytes_past_the_answer_end_the_connections_use() {
        // A coding and a length: chunked wins, the connection is not reused.
        let (_, end, body) = exchange(
            b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            false,
            64,
        )
        .await;
        assert_eq!(end.unwrap(), BodyEnd::Complete { reusable: false });
        assert_eq!(body, b"ok");
        let (_, end, _) = exchange(
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n",
            false,
            64,
        )
        .await;
        assert_eq!(end.unwrap(), BodyEnd::Complete { reusable: false });
        // An empty chunk-size line is not a last chunk.
        let (_, end, _) = exchange(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\r\n",
            false,
            64,
        )
        .await;
        assert!(end.unwrap_err().to_string().contains("not hexadecimal"));
    }

    #[tokio::test]
    async fn a_request_goes_out_as_one_head_and_its_body() {
        let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
        let mut conn = Conn::new(Box::new(ours));
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", HeaderValue::from_static("msg_1"));
        // Framing headers are the request's own, whatever a map holds.
        headers.insert(HOST, HeaderValue::from_static("elsewhere"));
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("99"));
        let request = encode_request(
            "/hook?a=b",
            &HeaderValue::from_static("example.com:8080"),
            &headers,
            Bytes::from_static(b"{}"),
        );
        conn.write_request(&request).await.unwrap();
        drop(conn);
        let mut sent = String::new();
        theirs.read_to_string(&mut sent).await.unwrap();
        assert_eq!(
            sent,
            "POST /hook?a=b HTTP/1.1\r\nhost: example.com:8080\r\nwebhook-id: msg_1\r\ncontent-length: 2\r\n\r\n{}"
        );
    }

    #[tokio::test]
    async fn a_large_body_follows_its_head_uncopied() {
        let (ours, mut theirs) = tokio::io::duplex(256 * 1024);
        let mut conn = Conn::new(Box::new(ours));
        let body = Bytes::from(vec![b'x'; COALESCE_BODY + 1]);
        let request = encode_request(
            "/",
            &HeaderValue::from_static("h"),
            &HeaderMap::new(),
            body.clone(),
        );
        assert_eq!(request.rest, body);
        conn.write_request(&request).await.unwrap();
        drop(conn);
        let mut sent = Vec::new();
        theirs.read_to_end(&mut sent).await.unwrap();
        let head = format!(
            "POST / HTTP/1.1\r\nhost: h\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        assert_eq!(&sent[..head.len()], head.as_bytes());
        assert_eq!(&sent[head.len()..], &body[..]);
    }

    #[tokio::test]
    async fn an_idle_connection_the_receiver_closed_is_seen_closed() {
        let (ours, theirs) = tokio::io::duplex(1024);
        let mut conn = Conn::new(Box::new(ours));
        assert!(conn.idle_and_open());
        drop(theirs);
        assert!(!conn.idle_and_open());
    }
}
