//! One HTTP attempt: build the signed request, add the receiver's
//! credentials (Basic, or an OAuth2 bearer token refreshed once on a 401),
//! send it without following redirects, read at most 64 KiB of the
//! answer, and classify what happened. The attempt record shows
//! `Authorization` as redacted, like custom header values.

use std::time::Instant;

use bytes::Bytes;

use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT};

use super::clients::{HttpClient, failure, read_limited, send};
use super::oauth::{Fetcher, TokenCache};
use super::signing::signature_header;
use super::targets::{Target, TargetAuth};
use crate::domain::delivery::{AttemptRecord, DeliveryJob, ErrorKind};

pub const USER_AGENT_VALUE: &str = concat!("hookd/", env!("CARGO_PKG_VERSION"));

// hookd's own header names, made once: a name given as `&str` is parsed,
// and one that is not a standard header copied, on every insert.
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");
const X_WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("x-webhook-signature");

/// What one attempt found out.
#[derive(Debug)]
pub struct AttemptResult {
    pub record: AttemptRecord,
    /// The raw `Retry-After` header of a 429 or 503 answer.
    pub retry_after: Option<String>,
}

impl AttemptResult {
    pub fn status(&self) -> Option<u16> {
        self.record.response_status
    }

    /// An attempt that could not be sent at all.
    pub fn not_sent(target: &Target, now_ms: i64, kind: ErrorKind, error: String) -> Self {
        Self {
            record: AttemptRecord {
                attempted_at: now_ms,
                duration_ms: 0,
                url: target.url.clone(),
                request_headers: "{}".into(),
                response_status: None,
                response_headers: None,
                response_body: None,
                error_kind: Some(kind),
                error: Some(error),
            },
            retry_after: None,
        }
    }

    pub fn succeeded(&self) -> bool {
        self.record
            .response_status
            .is_some_and(|s| (200..300).contains(&s))
    }
}

/// What an attempt goes out through: the webhook's client (which holds
/// the address policy), the OAuth2 tokens, and the clock (token lifetimes).
pub struct Outbound<'a> {
    pub client: &'a HttpClient,
    pub tokens: &'a TokenCache,
    pub clock: &'a dyn crate::clock::Clock,
}

/// Sends `job` to `target`.
pub async fn attempt(
    out: &Outbound<'_>,
    target: &Target,
    job: &DeliveryJob,
    idempotency_prefix: &str,
    default_timeout_ms: u64,
    now_ms: i64,
) -> AttemptResult {
    let client = out.client;
    let mut digits = itoa::Buffer::new();
    let id = digits.format(job.delivery_id);
    let mut msg_id = String::with_capacity(idempotency_prefix.len() + id.len());
    msg_id.push_str(idempotency_prefix);
    msg_id.push_str(id);
    let timestamp = digits.format(now_ms.div_euclid(1000)).to_owned();
    let signature = signature_header(target.live_keys(now_ms), &msg_id, &timestamp, &job.body);
    let own = own_headers(msg_id, timestamp, signature);
    // What the log shows: hookd's own headers, and custom header names with
    // their values redacted (they may carry credentials), like the
    // receiver's `Authorization`.
    let request_headers = logged_request_headers(&own, &target.logged_headers_tail);
    let mut headers = HeaderMap::with_capacity(own.len() + 1 + target.headers.len());
    for (name, value) in own {
        headers.insert(name, value);
    }
    for (k, v) in &target.headers {
        headers.append(k.clone(), v.clone());
    }

    let mut record = AttemptRecord {
        attempted_at: now_ms,
        duration_ms: 0,
        url: target.url.clone(),
        request_headers,
        response_status: None,
        response_headers: None,
        response_body: None,
        error_kind: None,
        error: None,
    };

    let started = Instant::now();
    let timeout = target.timeout(default_timeout_ms);
    let Some(to) = &target.destination else {
        record.error_kind = Some(ErrorKind::Connect);
        record.error = Some("the webhook URL does not parse".into());
        return AttemptResult {
            record,
            retry_after: None,
        };
    };
    let fetcher = Fetcher { client, timeout };
    let bearer = |stale: Option<HeaderValue>| {
        let fetcher = &fetcher;
        async move {
            match &target.auth {
                // Boxed: a token fetch's future is about 1.9 KB, which every
                // attempt's future would otherwise carry.
                TargetAuth::OAuth2(config) => Box::pin(out.tokens.bearer(
                    target.webhook_id,
                    config,
                    stale.as_ref(),
                    fetcher,
                    || out.clock.now_ms(),
                ))
                .await
                .map(Some),
                TargetAuth::Basic(v) => Ok(Some(v.clone())),
                TargetAuth::None => Ok(None),
            }
        }
    };
    let send = |mut headers: HeaderMap, authorization: Option<HeaderValue>| {
        if let Some(a) = authorization {
            headers.insert(AUTHORIZATION, a);
        }
        send(client, to, headers, job.body.clone(), timeout)
    };
    let authorization = match bearer(None).await {
        Ok(a) => a,
        Err(why) => {
            record.error_kind = Some(ErrorKind::Auth);
            record.error = Some(why);
            record.duration_ms = started.elapsed().as_millis() as i64;
            return AttemptResult {
                record,
                retry_after: None,
            };
        }
    };
    // Only a request that may go again (OAuth2's one refresh) keeps a copy.
    let again = matches!(target.auth, TargetAuth::OAuth2(_)).then(|| headers.clone());
    let mut sent = send(headers, authorization.clone()).await;
    // A receiver that refuses the token gets one fresh token, once.
    if let Some(headers) = again
        && sent.as_ref().is_ok_and(|r| r.status() == 401)
    {
        match bearer(authorization).await {
            Ok(fresh) => sent = send(headers, fresh).await,
            Err(why) => {
                record.error_kind = Some(ErrorKind::Auth);
                record.error = Some(format!(
                    "the receiver answered 401 and no new token was had: {why}"
                ));
                record.duration_ms = started.elapsed().as_millis() as i64;
                return AttemptResult {
                    record,
                    retry_after: None,
                };
            }
        }
    }
    let mut retry_after = None;
    match sent {
        Ok(resp) => {
            let status = resp.status().as_u16();
            record.response_status = Some(status);
            if status == 429 || status == 503 {
                retry_after = resp
                    .headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
            }
            record.response_headers = Some(headers_json(resp.headers()));
            let remaining = timeout.saturating_sub(started.elapsed());
            let (body, body_error) = read_limited(resp, remaining).await;
            record.response_body = Some(utf8_lossy(body));
            if !(200..300).contains(&status) {
                record.error_kind = Some(ErrorKind::HttpStatus);
                record.error = Some(if (300..400).contains(&status) {
                    format!("HTTP {status}: redirects are not followed")
                } else {
                    format!("HTTP {status}")
                });
            } else if let Some(e) = body_error {
                // The status arrived; a body cut short does not undo a 2xx.
                tracing::debug!(error = %e, "response body incomplete");
            }
        }
        Err(e) => {
            let (kind, message) = failure(&e);
            record.error_kind = Some(kind);
            record.error = Some(message);
        }
    }
    record.duration_ms = started.elapsed().as_millis() as i64;
    AttemptResult {
        record,
        retry_after,
    }
}

/// hookd's own headers of a delivery, in the order the request carries
/// them: the request and its logged record are both made from this list.
/// The strings become the values without a copy (the two id headers share
/// one, as do the two signature headers).
fn own_headers(id: String, timestamp: String, signature: String) -> [(HeaderName, HeaderValue); 7] {
    let value = |text: String| {
        HeaderValue::from_maybe_shared(Bytes::from(text))
            .expect("the id's prefix is checked at startup; the rest is digits and base64")
    };
    let (id, signature) = (value(id), value(signature));
    [
        (CONTENT_TYPE, HeaderValue::from_static("application/json")),
        (USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE)),
        (IDEMPOTENCY_KEY, id.clone()),
        (WEBHOOK_ID, id),
        (WEBHOOK_TIMESTAMP, value(timestamp)),
        (WEBHOOK_SIGNATURE, signature.clone()),
        (X_WEBHOOK_SIGNATURE, signature),
    ]
}

/// The request headers of an attempt as its record shows them: hookd's
/// own, then `tail` (made once per target: `logged_headers_tail`). None of
/// the values needs escaping: the id's prefix is checked at startup
/// (`config`), the rest is digits, base64 and constants.
fn logged_request_headers(own: &[(HeaderName, HeaderValue)], tail: &str) -> String {
    let mut out = Vec::with_capacity(320 + tail.len());
    for (name, value) in own {
        out.push(if out.is_empty() { b'{' } else { b',' });
        push_plain_json_str(&mut out, name.as_str().as_bytes());
        out.push(b':');
        push_plain_json_str(&mut out, value.as_bytes());
    }
    out.extend_from_slice(tail.as_bytes());
    out.push(b'}');
    String::from_utf8(out).expect("plain JSON strings are ASCII")
}

/// The members that end every logged request of a target: its custom
/// header names, each once with its value redacted, then `authorization`
/// (redacted) when hookd adds one. Each starts with a comma.
pub(super) fn logged_headers_tail(custom: &HeaderMap, authorized: bool) -> String {
    let mut out = Vec::new();
    let names = custom
        .keys()
        .map(HeaderName::as_str)
        .chain(authorized.then_some(AUTHORIZATION.as_str()));
    for name in names {
        out.push(b',');
        // Header names are RFC 9110 tokens: nothing to escape.
        push_plain_json_str(&mut out, name.as_bytes());
        out.extend_from_slice(br#":"[redacted]""#);
    }
    String::from_utf8(out).expect("JSON written from str is UTF-8")
}

/// `s` as a JSON string. Header names and most values need no escaping:
/// those are copied as they are (checking them against a table is cheaper
/// than serde_json's escaping, which writes in runs between escapes).
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| PLAIN_IN_JSON[usize::from(b)]) {
        push_plain_json_str(out, s.as_bytes());
    } else {
        // Writing a `str` to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// `s`, known to need no escaping, as a JSON string.
fn push_plain_json_str(out: &mut Vec<u8>, s: &[u8]) {
    debug_assert!(s.iter().all(|&b| PLAIN_IN_JSON[usize::from(b)]));
    out.reserve(s.len() + 2);
    out.push(b'"');
    out.extend_from_slice(s);
    out.push(b'"');
}

/// Bytes a JSON string holds as they are: printable ASCII but `"` and `\`.
static PLAIN_IN_JSON: [bool; 256] = {
    let mut plain = [false; 256];
    let mut b = 0x20;
    while b < 0x7f {
        plain[b] = b != b'"' as usize && b != b'\\' as usize;
        b += 1;
    }
    plain
};

/// A header map as a JSON object (a receiver's answer), written straight
/// into a string: no `serde_json::Value` tree, no sorted map. One member
/// per name, repeated values joined by ", " (as HTTP allows), bytes that
/// are not UTF-8 replaced.
pub(super) fn headers_json(headers: &HeaderMap) -> String {
    let mut out = Vec::with_capacity(64 * (headers.keys_len() + 1));
    out.push(b'{');
    for name in headers.keys() {
        let mut values = headers.get_all(name).iter();
        let mut value = values.next().map(header_text).unwrap_or_default();
        for v in values {
            let joined = value.to_mut();
            joined.push_str(", ");
            joined.push_str(&header_text(v));
        }
        if out.len() > 1 {
            out.push(b',');
        }
        push_plain_json_str(&mut out, name.as_str().as_bytes());
        out.push(b':');
        push_json_str(&mut out, &value);
    }
    out.push(b'}');
    String::from_utf8(out).expect("JSON written from str is UTF-8")
}

/// A header value as text: most are visible ASCII (checked without
/// decoding); other bytes that are not UTF-8 are replaced.
fn header_text(v: &HeaderValue) -> std::borrow::Cow<'_, str> {
    match v.to_str() {
        Ok(text) => text.into(),
        Err(_) => String::from_utf8_lossy(v.as_bytes()),
    }
}

/// Bytes as text, kept without a copy when they are UTF-8 (the usual
/// answer), else with invalid sequences replaced.
fn utf8_lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes)
        .unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answers_headers_become_one_json_member_per_name() {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.append("set-cookie", HeaderValue::from_static("a=1"));
        h.append("set-cookie", HeaderValue::from_static("b=\"2\""));
        h.insert("x-raw", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        let parsed: serde_json::Value =
            serde_json::from_str(&headers_json(&h)).expect("valid JSON");
        assert_eq!(
            parsed,
            serde_json::json!({
                "content-type": "application/json",
                "set-cookie": "a=1, b=\"2\"",
                "x-raw": "caf\u{fffd}",
            })
        );
        assert_eq!(headers_json(&HeaderMap::new()), "{}");
    }

    #[test]
    fn the_logged_request_headers_show_hookds_and_redact_the_webhooks() {
        let mut custom = HeaderMap::new();
        custom.append("x-api-key", HeaderValue::from_static("secret-value"));
        custom.append("x-tag", HeaderValue::from_static("a"));
        custom.append("x-tag", HeaderValue::from_static("b"));
        let logged = |authorized| {
            let tail = logged_headers_tail(&custom, authorized);
            let own = own_headers(
                "acme:1".into(),
                "1700000000".into(),
                "v1,ab+/= v1a,cd".into(),
            );
            logged_request_headers(&own, &tail)
        };
        let ours = format!(
            r#"{{"content-type":"application/json","user-agent":"{USER_AGENT_VALUE}","idempotency-key":"acme:1","webhook-id":"acme:1","webhook-timestamp":"1700000000","webhook-signature":"v1,ab+/= v1a,cd","x-webhook-signature":"v1,ab+/= v1a,cd""#
        );
        let theirs = r#","x-api-key":"[redacted]","x-tag":"[redacted]""#;
        assert_eq!(logged(false), format!("{ours}{theirs}}}"));
        assert_eq!(
            logged(true),
            format!(r#"{ours}{theirs},"authorization":"[redacted]"}}"#)
        );
        let _: serde_json::Value = serde_json::from_str(&logged(true)).expect("valid JSON");
    }

    #[test]
    fn strings_that_need_escaping_are_escaped() {
        for s in [
            "plain",
            "a\"b",
            "back\\slash",
            "tab\there",
            "ünïcode",
            "\u{7f}del",
            "",
        ] {
            let mut out = Vec::new();
            push_json_str(&mut out, s);
            let back: String = serde_json::from_slice(&out).expect("valid JSON");
            assert_eq!(back, s);
        }
    }
}
