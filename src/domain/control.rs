//! A webhook's delivery control (SPEC §12) as stored: its filter, its
//! ordering, whether it is paused; and the rules of the values a client
//! gives for them. The filter's language is `domain::filter`.

use serde_json::Value;

use super::filter::{Filter, FilterError};
use super::validation::validate_plain_text;

/// How a webhook's deliveries are ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Ordering {
    /// Concurrently, as capacity allows.
    #[default]
    None,
    /// One at a time per ordering key, in publish order.
    Fifo,
}

impl Ordering {
    pub fn as_str(self) -> &'static str {
        match self {
            Ordering::None => "none",
            Ordering::Fifo => "fifo",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Ordering::None),
            "fifo" => Ok(Ordering::Fifo),
            other => Err(format!("must be \"fifo\" or \"none\", not {other:?}")),
        }
    }
}

/// The delivery control of a webhook.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryControl {
    /// The filter document as stored JSON text; `None`: every event.
    pub filter: Option<String>,
    pub ordering: Ordering,
    /// Deliveries wait (parked) until resumed.
    pub paused: bool,
    pub paused_at: Option<i64>,
}

/// Checks a filter document; answers the text to store.
pub fn validate_filter(doc: &Value) -> Result<String, FilterError> {
    Filter::compile(doc)?;
    Ok(doc.to_string())
}

/// The longest `ordering_key` a publisher may give.
pub const MAX_ORDERING_KEY_CHARS: usize = 256;

/// An ordering key given at publish: 1–256 characters of plain text.
pub fn validate_ordering_key(key: &str) -> Result<(), String> {
    let n = key.chars().count();
    if n == 0 {
        return Err("must not be empty (leave it out for the webhook's one queue)".into());
    }
    if n > MAX_ORDERING_KEY_CHARS {
        return Err(format!(
            "must be at most {MAX_ORDERING_KEY_CHARS} characters"
        ));
    }
    validate_plain_text(key, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_is_fifo_or_none() {
        assert_eq!(Ordering::parse("fifo"), Ok(Ordering::Fifo));
        assert_eq!(Ordering::parse("none"), Ok(Ordering::None));
        assert!(Ordering::parse("FIFO").unwrap_err().contains("fifo"));
    }

    #[test]
    fn ordering_keys_are_short_plain_text() {
        assert!(validate_ordering_key("customer-42").is_ok());
        assert!(validate_ordering_key("").is_err());
        assert!(validate_ordering_key(&"k".repeat(257)).is_err());
        assert!(validate_ordering_key("a\nb").is_err());
    }
}
