//! Submitted HTML forms: `application/x-www-form-urlencoded` bodies, where
//! a name may repeat (one `events` pair per ticked box).

use std::collections::HashMap;

use crate::domain::FieldError;

#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`, as sent.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, trimmed; empty when absent.
    pub fn text(&self, name: &str) -> String {
        self.raw(name).unwrap_or_default().trim().to_owned()
    }

    /// Every non-empty value of `name`, in order, without repeats.
    pub fn all(&self, name: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (k, v) in &self.0 {
            let v = v.trim();
            if k == name && !v.is_empty() && !out.iter().any(|o| o == v) {
                out.push(v.to_owned());
            }
        }
        out
    }

    /// A checkbox: present means ticked.
    pub fn checked(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }
}

/// Field errors by field name, for showing each next to its input.
#[derive(Debug, Default)]
pub struct FieldErrors(HashMap<String, String>);

impl FieldErrors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        // Nested names (`failure_handling.min_failures`) belong to their root input.
        let root = field.split(['.', '[']).next().unwrap_or(field).to_owned();
        let message = message.into();
        self.0
            .entry(root)
            .and_modify(|m| {
                m.push_str("; ");
                m.push_str(&message);
            })
            .or_insert(message);
    }

    pub fn extend(&mut self, errors: Vec<FieldError>) {
        for e in errors {
            self.add(&e.field, e.message);
        }
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// A retry schedule as typed: empty is `None` (the default), `none` a
/// single attempt, else durations separated by commas or spaces.
pub fn schedule_list(text: &str) -> Option<Vec<String>> {
    let text = text.trim();
    if text.is_empty() {
        None
    } else if text.eq_ignore_ascii_case("none") {
        Some(Vec::new())
    } else {
        Some(
            text.split([',', ' '])
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }
}

/// A numeric id from the path; anything else names nothing (404).
pub fn parse_id(raw: &str, what: &str) -> Result<i64, super::PageError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| super::PageError::not_found(what))
}

/// Only paths of this page may be returned to (no open redirect), and only
/// ones a `Location` header can carry (visible ASCII: an address this page
/// made is percent-encoded).
pub fn safe_return_path(path: &str) -> Option<&str> {
    safe_return_path_under(path, "/admin")
}

/// Like [`safe_return_path`], under the pages of `base` (a portal's own).
pub fn safe_return_path_under<'a>(path: &'a str, base: &str) -> Option<&'a str> {
    (path
        .strip_prefix(base)
        .is_some_and(|rest| rest.starts_with('/'))
        && !path.contains('\\')
        && path.bytes().all(|b| b.is_ascii_graphic()))
    .then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_names_keep_every_value_once() {
        let f = Form::parse(b"events=a.b&name=+x+&events=c.d&events=a.b&events=&flag=on");
        assert_eq!(f.all("events"), vec!["a.b", "c.d"]);
        assert_eq!(f.text("name"), "x");
        assert!(f.checked("flag"));
        assert!(!f.checked("other"));
        assert_eq!(f.text("missing"), "");
    }

    #[test]
    fn nested_field_errors_attach_to_their_input() {
        let mut e = FieldErrors::default();
        e.add("failure_handling.min_failures", "too small");
        e.add("failure_handling", "bad");
        assert_eq!(e.get("failure_handling"), Some("too small; bad"));
    }

    #[test]
    fn schedules_are_lists_none_or_default() {
        assert_eq!(schedule_list("  "), None);
        assert_eq!(schedule_list("None"), Some(vec![]));
        assert_eq!(
            schedule_list("5s, 1m 2h,,"),
            Some(vec!["5s".into(), "1m".into(), "2h".into()])
        );
    }

    #[test]
    fn only_admin_paths_are_return_targets() {
        assert_eq!(
            safe_return_path("/admin/webhooks?q=1"),
            Some("/admin/webhooks?q=1")
        );
        assert_eq!(safe_return_path("//evil.test/admin/"), None);
        assert_eq!(safe_return_path("https://evil.test/admin/"), None);
        assert_eq!(safe_return_path("/admin/\\evil"), None);
        assert_eq!(safe_return_path("/admin/\u{1}x"), None);
        assert_eq!(safe_return_path("/admin/x\u{7f}"), None);
        assert_eq!(safe_return_path("/admin/é"), None);
        assert_eq!(safe_return_path("/admin/a b"), None);
        assert_eq!(safe_return_path("/other"), None);
    }
}
