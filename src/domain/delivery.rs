//! Events, deliveries and the outcome of an attempt, as values.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Not yet attempted.
    Pending,
    /// Attempted, failed, and waiting for its next attempt.
    Retrying,
    Succeeded,
    /// The retry schedule is exhausted.
    Failed,
    /// Not attempted because its webhook is suspended (or disabled, or gone).
    Diverted,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 5] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Retrying,
        DeliveryStatus::Succeeded,
        DeliveryStatus::Failed,
        DeliveryStatus::Diverted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Diverted => "diverted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            DeliveryStatus::Succeeded | DeliveryStatus::Failed | DeliveryStatus::Diverted
        )
    }
}

/// Why an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Timeout,
    Connect,
    Dns,
    Tls,
    /// The target resolved to an address outbound safety forbids.
    Blocked,
    /// The receiver answered with a non-2xx status.
    HttpStatus,
    /// No credentials to present: the OAuth2 token endpoint failed (SPEC §13).
    Auth,
}

impl ErrorKind {
    /// Every kind, in declaration order (`kind as usize` indexes it).
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::Timeout,
        ErrorKind::Connect,
        ErrorKind::Dns,
        ErrorKind::Tls,
        ErrorKind::Blocked,
        ErrorKind::HttpStatus,
        ErrorKind::Auth,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Dns => "dns",
            ErrorKind::Tls => "tls",
            ErrorKind::Blocked => "blocked",
            ErrorKind::HttpStatus => "http_status",
            ErrorKind::Auth => "auth",
        }
    }
}

/// An event accepted for publishing, before it is stored.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: String,
    pub tenant_id: String,
    pub event_type: String,
    pub environment: String,
    /// The `data` object as JSON text.
    pub data: String,
    pub idempotency_key: Option<String>,
    pub created_at: i64,
    /// Deliver to this webhook only, whatever its subscriptions (test sends).
    pub only_webhook: Option<i64>,
    /// The queue of a fifo webhook this event joins (SPEC §12); `None`:
    /// the webhook's one queue.
    pub ordering_key: Option<String>,
}

/// How deeply an event's `data` may nest (SPEC §14): the object itself is
/// level 1. Whatever parses the stored or delivered body (receivers, the
/// admin page, tools) may recurse once per level; unbounded nesting would
/// let one publisher crash them.
pub const MAX_DATA_DEPTH: usize = 128;

/// Checks an event's `data`, given as well-formed JSON text: an object,
/// at most [`MAX_DATA_DEPTH`] levels deep.
pub fn validate_event_data(json: &str) -> Result<(), String> {
    if !json.trim_start().starts_with('{') {
        return Err("must be a JSON object".into());
    }
    if json_depth_exceeds(json, MAX_DATA_DEPTH) {
        return Err(format!(
            "must be at most {MAX_DATA_DEPTH} levels deep (objects and arrays within each other)"
        ));
    }
    Ok(())
}

/// Whether well-formed JSON text nests objects and arrays more than `max`
/// deep. A scan of the text, not a parse: no recursion, so a million
/// levels cost a million bytes read and nothing on the stack.
pub(crate) fn json_depth_exceeds(json: &str, max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for b in json.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The answer to a publish, also replayed for a repeated idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedEvent {
    pub id: String,
    pub event_type: String,
    pub created_at: i64,
    pub deliveries: u32,
}

/// A delivery this instance owns (leased) and must attempt.
#[derive(Debug, Clone)]
pub struct DeliveryJob {
    pub delivery_id: i64,
    pub tenant_id: String,
    pub webhook_id: i64,
    pub event_id: String,
    pub event_type: String,
    pub event_created_at: i64,
    /// The body to POST, shared by every delivery of one event.
    pub body: bytes::Bytes,
    /// Attempts made so far, in total and since the last (re)queueing.
    pub attempts: u32,
    pub retry_step: u32,
    /// Of a fifo queue: its end lets the queue's next delivery go.
    pub ordered: bool,
}

/// Builds the delivered body: `{"id","type","timestamp","data"}`.
pub fn delivery_body(
    event_id: &str,
    event_type: &str,
    created_at_ms: i64,
    data_json: &str,
) -> bytes::Bytes {
    #[derive(Serialize)]
    struct Body<'a> {
        id: &'a str,
        #[serde(rename = "type")]
        event_type: &'a str,
        timestamp: String,
        data: &'a serde_json::value::RawValue,
    }
    let raw: Box<serde_json::value::RawValue> =
        serde_json::value::RawValue::from_string(data_json.to_owned()).unwrap_or_else(|_| {
            serde_json::value::RawValue::from_string("{}".into()).expect("valid JSON")
        });
    let body = Body {
        id: event_id,
        event_type,
        timestamp: crate::clock::format_rfc3339(created_at_ms),
        data: &raw,
    };
    serde_json::to_vec(&body)
        .expect("a body always serializes")
        .into()
}

/// One attempt as recorded in the log.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub attempted_at: i64,
    pub duration_ms: i64,
    pub url: String,
    /// JSON object of the request headers, signatures redacted.
    pub request_headers: String,
    pub response_status: Option<u16>,
    pub response_headers: Option<String>,
    pub response_body: Option<String>,
    pub error_kind: Option<ErrorKind>,
    pub error: Option<String>,
}

/// What becomes of a delivery after an attempt (or a decision not to attempt).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub delivery_id: i64,
    pub tenant_id: String,
    pub webhook_id: i64,
    pub status: DeliveryStatus,
    /// When to try again (status `retrying`, or a rate-limited deferral).
    pub next_attempt_at: Option<i64>,
    /// The attempt made, if one was.
    pub attempt: Option<AttemptRecord>,
    /// The webhook's failure handling, for the suspension check.
    pub min_failures: u32,
    pub suspend_after_ms: u64,
    /// The receiver answered 410 Gone: suspend the webhook at once.
    pub gone: bool,
    /// Of a fifo queue (see `DeliveryJob::ordered`).
    pub ordered: bool,
    /// Set when the retry schedule is exhausted (status `failed` after an
    /// attempt): the event, for `hookd.delivery.exhausted`.
    pub exhausted: Option<ExhaustedDelivery>,
}

/// The event of a delivery that exhausted its schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExhaustedDelivery {
    pub event_id: String,
    pub event_type: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_of_kinds_and_statuses_are_in_declaration_order() {
        // Metrics index their series by `value as usize`.
        for (i, k) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i, "{k:?}");
        }
        for (i, s) in DeliveryStatus::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i, "{s:?}");
        }
    }

    fn nested(levels: usize) -> String {
        // An object holding arrays: `{"a":[[…]]}`, `levels` deep in all.
        format!(
            "{{\"a\":{}{}}}",
            "[".repeat(levels - 1),
            "]".repeat(levels - 1)
        )
    }

    #[test]
    fn data_may_nest_128_levels_and_no_more() {
        assert_eq!(validate_event_data(&nested(MAX_DATA_DEPTH)), Ok(()));
        let e = validate_event_data(&nested(MAX_DATA_DEPTH + 1)).unwrap_err();
        assert!(e.contains("128 levels"), "{e}");
        assert!(validate_event_data(&nested(1_000_000)).is_err());
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let text = format!("{{\"s\":\"{}\",\"e\":\"\\\"[[\"}}", "[{".repeat(500));
        assert_eq!(validate_event_data(&text), Ok(()));
    }

    #[test]
    fn siblings_do_not_add_up() {
        let one = nested(100);
        let wide = format!("{{\"x\":{one},\"y\":{one},\"z\":[{one}]}}");
        assert_eq!(validate_event_data(&wide), Ok(()));
    }

    #[test]
    fn data_must_be_an_object() {
        for bad in ["[]", "1", "\"s\"", "null", " [{}]"] {
            assert!(validate_event_data(bad).is_err(), "{bad}");
        }
        assert_eq!(validate_event_data(" {}"), Ok(()));
    }
}
