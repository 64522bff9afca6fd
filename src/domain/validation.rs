//! Field-level validation errors, collected so one answer names every
//! problem in a request rather than the first one; and the text rule shared
//! by every stored label (names, descriptions).

use serde::Serialize;
use utoipa::ToSchema;

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field's name, dotted for nested fields (`failure_handling.min_failures`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// Every field error found in one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut e = Self::new();
        e.add(field, message);
        e
    }

    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Records the error of `result` under `field` and returns its value.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(message) => {
                self.add(field, message);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

/// Whether `c` may hide or reorder what a reader sees: a C0 or C1 control
/// character (DEL included), or a bidirectional embedding, override or
/// isolate (U+202A–U+202E, U+2066–U+2069), the bidirectional marks
/// (U+200E, U+200F, U+061C) and the line and paragraph separators
/// (U+2028, U+2029), which can make a name read differently from what it
/// is or break it over lines.
fn is_hidden_control(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{061C}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// Refuses control and bidirectional-override characters in a stored
/// label. `multi_line` admits line breaks and tabs (a description is typed
/// in a text area); a name is one line.
pub fn validate_plain_text(s: &str, multi_line: bool) -> Result<(), String> {
    let allowed = |c: char| multi_line && matches!(c, '\n' | '\r' | '\t');
    match s.chars().find(|&c| is_hidden_control(c) && !allowed(c)) {
        None => Ok(()),
        Some(c) => Err(format!(
            "must not contain control or bidirectional-override characters (found U+{:04X})",
            c as u32
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_refuses_control_and_bidi_characters() {
        for bad in [
            "nul\0byte",
            "esc\u{1b}[31m",
            "del\u{7f}",
            "c1\u{85}",
            "c1\u{9f}",
            "rlo\u{202E}txt.exe",
            "lre\u{202A}",
            "lri\u{2066}",
            "pdi\u{2069}",
            "lrm\u{200E}",
            "rlm\u{200F}",
            "alm\u{061C}",
            "ls\u{2028}",
            "ps\u{2029}",
        ] {
            assert!(validate_plain_text(bad, false).is_err(), "{bad:?}");
            assert!(validate_plain_text(bad, true).is_err(), "{bad:?}");
        }
        let e = validate_plain_text("a\u{202E}b", false).unwrap_err();
        assert!(e.contains("U+202E"), "{e}");
    }

    #[test]
    fn line_breaks_are_allowed_in_multi_line_text_only() {
        for text in ["two\nlines", "crlf\r\nline", "tab\there"] {
            assert!(validate_plain_text(text, true).is_ok(), "{text:?}");
            assert!(validate_plain_text(text, false).is_err(), "{text:?}");
        }
    }

    #[test]
    fn ordinary_text_passes() {
        for ok in [
            "audit-sync",
            "Växjö «billing» 請求",
            "emoji 🚀",
            // A joiner shapes emoji; it reorders nothing.
            "family \u{1F468}\u{200D}\u{1F469}",
        ] {
            assert!(validate_plain_text(ok, false).is_ok(), "{ok:?}");
        }
    }
}
