//! The webhook (a configured destination) and the rules its fields obey.
//!
//! Each validator returns the cleaned value or a message saying what is
//! wrong; the HTTP layer collects the messages under their field names.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::control::DeliveryControl;
use super::duration::parse_duration_ms;
use super::event_type::{Subscription, validate_event_type_name};
use super::receiver_auth::ReceiverSecurity;
use super::validation::validate_plain_text;

/// Custom headers: name → values, names unique ignoring case.
pub type Headers = BTreeMap<String, Vec<String>>;

/// A webhook as stored, secrets excluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: i64,
    pub tenant_id: String,
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub environment: String,
    pub description: Option<String>,
    pub headers: Headers,
    /// 0 means the service default.
    pub timeout_ms: u64,
    pub rate_limit: Option<u32>,
    /// `None` means the service default schedule.
    pub retry_schedule_ms: Option<Vec<u64>>,
    /// `None` means the service defaults.
    pub failure_handling: Option<FailureHandling>,
    pub suspended: bool,
    pub suspended_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Bumped on every update; guards read-modify-write against lost updates.
    pub version: i64,
    /// Signing scheme, receiver authentication, private CA (SPEC §13).
    pub security: ReceiverSecurity,
    /// Filter, ordering, pause (SPEC §12).
    pub control: DeliveryControl,
}

/// When a failing webhook is suspended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureHandling {
    pub min_failures: u32,
    pub suspend_after_ms: u64,
}

/// The secrets that sign a webhook's deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSecrets {
    pub current: String,
    /// The secret replaced by the last rotation, valid until the instant given.
    pub previous: Option<(String, i64)>,
}

impl WebhookSecrets {
    /// The secrets that sign at `now_ms`: the current one, plus the previous
    /// one while its grace period lasts.
    pub fn live(&self, now_ms: i64) -> Vec<&str> {
        let mut v = vec![self.current.as_str()];
        if let Some((prev, until)) = &self.previous
            && *until > now_ms
        {
            v.push(prev.as_str());
        }
        v
    }
}

/// How strictly webhook URLs are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UrlPolicy {
    /// Absolute http or https URL with a host and no userinfo.
    Standard,
    /// Also: https only, no IP literal, not localhost, no query or fragment.
    Strict,
}

pub const MAX_URL_BYTES: usize = 2048;
pub const MAX_TIMEOUT_MS: u64 = 20_000;
pub const MAX_RETRY_DELAY_MS: u64 = 30 * 86_400_000;
pub const MAX_RETRY_STEPS: usize = 50;

/// A name (of a webhook or an API key): 1–128 characters on one line.
pub fn validate_name(name: &str) -> Result<String, String> {
    let n = name.chars().count();
    if n == 0 || name.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if n > 128 {
        return Err(format!("must be at most 128 characters (got {n})"));
    }
    validate_plain_text(name, false)?;
    Ok(name.to_owned())
}

/// A description: at most 1,024 characters, several lines allowed.
pub fn validate_description(d: &str) -> Result<String, String> {
    if d.chars().count() > 1024 {
        return Err("must be at most 1024 characters".into());
    }
    validate_plain_text(d, true)?;
    Ok(d.to_owned())
}

/// Checks a webhook URL and answers its normalised spelling (what
/// `url::Url` serialises: scheme and host lowercased, default port
/// dropped, `.`/`..` segments resolved, an empty path written `/`), so that
/// per-tenant uniqueness holds however the URL is spelt and what is stored
/// is what the dispatcher sends to.
pub fn validate_url(raw: &str, policy: UrlPolicy) -> Result<String, String> {
    if raw.len() > MAX_URL_BYTES {
        return Err(format!("must be at most {MAX_URL_BYTES} bytes"));
    }
    // The URL parser silently strips these; what is stored must be what is sent.
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters".into());
    }
    // A URI is ASCII (RFC 3986): the parser would percent-encode or
    // punycode anything else, and the stored URL would not be what was
    // written. The document says `format: uri`, which clients check too.
    if !raw.is_ascii() || !is_uri_text(raw) {
        return Err(
            "must be a URI: ASCII letters, digits and -._~:/?#[]@!$&'()*+,;=, with % only before two hex digits; percent-encode other characters, and write an international host name in punycode (xn--…)"
                .into(),
        );
    }
    let url = url::Url::parse(raw).map_err(|e| match e {
        url::ParseError::RelativeUrlWithoutBase => {
            "must be an absolute URL such as https://example.com/hooks".to_string()
        }
        other => format!("is not a valid URL: {other}"),
    })?;
    match url.scheme() {
        "https" => {}
        "http" if policy == UrlPolicy::Standard => {}
        "http" => return Err("must use https (the URL policy is strict)".into()),
        other => return Err(format!("must use http or https, not {other:?}")),
    }
    // The parser repairs `http:///x` into `http://x/`: a host must be written.
    let host = match url.host() {
        Some(h) if authority_is_written(raw) && !url.host_str().unwrap_or_default().is_empty() => h,
        _ => return Err("must have a host, as in https://example.com/hooks".into()),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password".into());
    }
    if let url::Host::Domain(d) = host {
        check_host_name(d)?;
    }
    if policy == UrlPolicy::Strict {
        match host {
            url::Host::Ipv4(_) | url::Host::Ipv6(_) => {
                return Err(
                    "must name a host, not an IP address (the URL policy is strict)".into(),
                );
            }
            url::Host::Domain(d) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                if d == "localhost" || d.ends_with(".localhost") {
                    return Err("must not point at localhost (the URL policy is strict)".into());
                }
            }
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("must not have a query or fragment (the URL policy is strict)".into());
        }
    }
    Ok(normalised(url))
}

/// The spelling stored for a URL: what `url::Url` serialises, without
/// what names the same endpoint another way — the trailing dot of a fully
/// qualified host, an empty query (`?`), and a fragment (never sent).
fn normalised(mut url: url::Url) -> String {
    if let Some(h) = url
        .host_str()
        .and_then(|h| h.strip_suffix('.'))
        .map(str::to_owned)
        && !h.is_empty()
    {
        let _ = url.set_host(Some(&h));
    }
    if url.query() == Some("") {
        url.set_query(None);
    }
    url.set_fragment(None);
    url.to_string()
}

/// A DNS host name: labels of 1 to 63 characters (letters, digits, `-`,
/// and `_` as some records use; not starting or ending with `-`), at most
/// 253 characters, one trailing dot allowed.
fn check_host_name(host: &str) -> Result<(), String> {
    let name = host.strip_suffix('.').unwrap_or(host);
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if valid {
        Ok(())
    } else {
        Err(format!("{host:?} is not a valid host name"))
    }
}

/// Whether `raw` writes its authority: `scheme://` followed by something
/// other than a path, query or fragment. For http(s) the URL parser takes
/// any run of slashes (or backslashes) as the separator and the next
/// segment as the host, so `http:///x`, `http:/x` and `http:\\x` all
/// become `http://x/`: refused here rather than silently rewritten.
fn authority_is_written(raw: &str) -> bool {
    raw.split_once(':')
        .and_then(|(_, rest)| rest.strip_prefix("//"))
        .and_then(|after| after.chars().next())
        .is_some_and(|c| !matches!(c, '/' | '\\' | '?' | '#'))
}

/// Checks subscription syntax; which types exist is checked against the
/// tenant's catalogue by the caller.
pub fn validate_events_syntax(events: &[String]) -> Result<Vec<String>, String> {
    if events.is_empty() {
        return Err("must name at least one event type".into());
    }
    let bad: Vec<&str> = events
        .iter()
        .filter(|e| Subscription::parse(e).is_none())
        .map(String::as_str)
        .collect();
    if !bad.is_empty() {
        return Err(format!(
            "not event types or category wildcards: {}",
            bad.join(", ")
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(events.len());
    for e in events {
        if !out.contains(e) {
            out.push(e.clone());
        }
    }
    Ok(out)
}

/// Timeout: 0 (the default) or up to 20 s.
pub fn validate_timeout(s: &str) -> Result<u64, String> {
    let ms = parse_duration_ms(s)?;
    if ms > MAX_TIMEOUT_MS {
        return Err("must be at most 20s".into());
    }
    Ok(ms)
}

pub fn validate_environment(env: &str, configured: &[String]) -> Result<String, String> {
    if configured.iter().any(|e| e == env) {
        Ok(env.to_owned())
    } else {
        Err(format!(
            "{env:?} is not a configured environment; expected one of: {}",
            configured.join(", ")
        ))
    }
}

pub fn validate_rate_limit(r: i64) -> Result<u32, String> {
    if !(1..=100_000).contains(&r) {
        return Err("must be between 1 and 100000 deliveries per second".into());
    }
    Ok(r as u32)
}

pub fn validate_retry_schedule(steps: &[String]) -> Result<Vec<u64>, String> {
    if steps.len() > MAX_RETRY_STEPS {
        return Err(format!("must have at most {MAX_RETRY_STEPS} entries"));
    }
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let ms = parse_duration_ms(s).map_err(|e| format!("entry {i}: {e}"))?;
            if ms > MAX_RETRY_DELAY_MS {
                return Err(format!("entry {i}: must be at most 30d"));
            }
            Ok(ms)
        })
        .collect()
}

pub fn validate_failure_handling(
    min_failures: i64,
    suspend_after: &str,
) -> Result<FailureHandling, String> {
    Ok(FailureHandling {
        min_failures: validate_min_failures(min_failures)?,
        suspend_after_ms: validate_suspend_after(suspend_after)?,
    })
}

pub fn validate_min_failures(min_failures: i64) -> Result<u32, String> {
    if !(1..=1_000_000).contains(&min_failures) {
        return Err("min_failures must be between 1 and 1000000".into());
    }
    Ok(min_failures as u32)
}

/// At most a year: later thresholds mean nothing and would overflow
/// `now - suspend_after`.
const MAX_SUSPEND_AFTER_MS: u64 = 365 * 86_400_000;

pub fn validate_suspend_after(suspend_after: &str) -> Result<u64, String> {
    let ms = parse_duration_ms(suspend_after).map_err(|e| format!("suspend_after {e}"))?;
    if ms > MAX_SUSPEND_AFTER_MS {
        return Err("suspend_after must be at most 365d".into());
    }
    Ok(ms)
}

/// Headers hookd sets itself, or that belong to the connection: a webhook
/// may not set them.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "user-agent",
    "idempotency-key",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-webhook-signature",
    "host",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "proxy-connection",
];

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

pub fn validate_header_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 256 || !name.bytes().all(is_token_char) {
        return Err(format!(
            "{name:?} is not a valid header name (RFC 9110 token)"
        ));
    }
    if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(format!("{name:?} is set by hookd and cannot be overridden"));
    }
    Ok(())
}

pub fn validate_header_value(value: &str) -> Result<(), String> {
    if value.len() > 4096 {
        return Err("header values must be at most 4096 bytes".into());
    }
    // RFC 9110 §5.5: field values are visible ASCII, spaces and tabs
    // (other bytes are obsolete, and receivers read them differently).
    if !value
        .bytes()
        .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
    {
        return Err(
            "header values must be visible ASCII characters, spaces or tabs (no control characters)"
                .into(),
        );
    }
    Ok(())
}

/// Only the characters RFC 3986 allows in a URI, `%` only as the start
/// of a percent-encoded byte, `[` `]` only in the host (an IPv6 literal),
/// and one `#` at most.
fn is_uri_text(raw: &str) -> bool {
    let b = raw.as_bytes();
    let chars_ok = b.iter().enumerate().all(|(i, &c)| match c {
        b'%' => b.len() > i + 2 && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit(),
        c => c.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=".contains(&c),
    });
    let after_scheme = raw.split_once("://").map_or(raw, |(_, rest)| rest);
    let rest = after_scheme
        .find(['/', '?', '#'])
        .map_or("", |i| &after_scheme[i..]);
    chars_ok && !rest.contains(['[', ']']) && rest.matches('#').count() <= 1
}

/// Checks a whole header map; names must be unique ignoring case.
pub fn validate_headers(headers: &Headers) -> Result<Headers, String> {
    if headers.len() > 50 {
        return Err("at most 50 custom headers".into());
    }
    let mut seen = std::collections::HashSet::new();
    for (name, values) in headers {
        validate_header_name(name)?;
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(format!(
                "{name:?} is given twice (header names ignore case)"
            ));
        }
        if values.is_empty() {
            return Err(format!("{name:?} must have at least one value"));
        }
        for v in values {
            validate_header_value(v).map_err(|e| format!("{name:?}: {e}"))?;
        }
    }
    Ok(headers.clone())
}

/// Removes the named headers (ignoring case), then merges in `add`:
/// removals first, so an addition wins over a removal of the same name.
pub fn patch_headers(current: &Headers, remove: &[String], add: &Headers) -> Headers {
    let mut out: Headers = current
        .iter()
        .filter(|(name, _)| !remove.iter().any(|r| r.eq_ignore_ascii_case(name)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (name, values) in add {
        let existing = out.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned();
        let slot = out
            .entry(existing.unwrap_or_else(|| name.clone()))
            .or_default();
        for v in values {
            if !slot.contains(v) {
                slot.push(v.clone());
            }
        }
    }
    out
}

/// Removes then adds subscriptions, keeping first-seen order.
pub fn patch_events(current: &[String], remove: &[String], add: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(current.len() + add.len());
    for e in current.iter().filter(|e| !remove.contains(e)).chain(add) {
        if !out.contains(e) {
            out.push(e.clone());
        }
    }
    out
}

/// A custom event type's category: the one given, else the name's first
/// segment. Categories are one lowercase segment, as in `billing.*`.
pub fn validate_category(name: &str, category: Option<&str>) -> Result<String, String> {
    validate_event_type_name(name)?;
    match category {
        None => Ok(super::event_type::category_of(name).to_owned()),
        Some(c) => {
            let ok = !c.is_empty()
                && c.len() <= 64
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if ok {
                Ok(c.to_owned())
            } else {
                Err(format!(
                    "{c:?} is not a category; expected one lowercase word such as \"billing\""
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_policy_accepts_http_and_https() {
        assert!(validate_url("https://example.com/hooks", UrlPolicy::Standard).is_ok());
        assert!(validate_url("http://127.0.0.1:9000/x?y=1", UrlPolicy::Standard).is_ok());
    }

    #[test]
    fn urls_must_be_absolute_http_with_host_and_no_userinfo() {
        for bad in [
            "/relative/path",
            "ftp://example.com/",
            "javascript:alert(1)",
            "https://user:pw@example.com/",
            "http://",
            "mailto:a@b.c",
            " https://example.com/",
            "https://example.com/a b",
            "https://exa\tmple.com/",
        ] {
            assert!(validate_url(bad, UrlPolicy::Standard).is_err(), "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(2100));
        assert!(validate_url(&long, UrlPolicy::Standard).is_err());
    }

    #[test]
    fn urls_must_be_ascii() {
        for raw in [
            "https://bücher.example/x",
            "https://example.com/ä",
            "https://example.com/#ľ",
            "https://example.com/{x}",
            "https://example.com/a|b",
            "https://example.com/100%",
            "https://example.com/a[1]",
            "https://example.com/#a#b",
        ] {
            assert!(validate_url(raw, UrlPolicy::Standard).is_err(), "{raw}");
        }
        for raw in [
            "https://xn--bcher-kva.example/%C3%A4",
            "http://[::1]:8080/x?a=1&b=(2)#frag",
        ] {
            assert!(validate_url(raw, UrlPolicy::Standard).is_ok(), "{raw}");
        }
    }

    #[test]
    fn urls_without_a_written_host_are_refused() {
        for bad in [
            "http:///x",
            "https:///example.com/x",
            "http:/x",
            "http:x",
            "http:\\\\x/",
            "http://\\x/",
            "http://?q",
            "http://#f",
        ] {
            let e = validate_url(bad, UrlPolicy::Standard).unwrap_err();
            assert!(e.contains("host"), "{bad}: {e}");
        }
    }

    #[test]
    fn host_names_must_be_dns_names() {
        for bad in [
            "http://./x",
            "http://../x",
            "http://a..b/x",
            "http://-a/x",
            "http://a-/x",
        ] {
            assert!(validate_url(bad, UrlPolicy::Standard).is_err(), "{bad}");
        }
        let long_label = format!("https://{}.test/x", "a".repeat(64));
        assert!(validate_url(&long_label, UrlPolicy::Standard).is_err());
        let long_name = format!("https://{}test/x", "abcdefghi.".repeat(26));
        assert!(validate_url(&long_name, UrlPolicy::Standard).is_err());
        for ok in [
            "https://a.b/x",
            "https://_acme.example.com/x",
            "https://xn--vxj-ula.se/x",
            "https://h.example.test./x",
        ] {
            assert!(validate_url(ok, UrlPolicy::Standard).is_ok(), "{ok}");
        }
    }

    #[test]
    fn urls_are_stored_normalised() {
        let norm = |u| validate_url(u, UrlPolicy::Standard).unwrap();
        for spelling in [
            "https://h/ok",
            "HTTPS://h/ok",
            "https://H/ok",
            "https://h:443/ok",
            "HTTPS://H:443/ok",
        ] {
            assert_eq!(norm(spelling), "https://h/ok", "{spelling}");
        }
        assert_eq!(norm("http://Example.COM:80/a"), "http://example.com/a");
        // A port that is not the scheme's default stays.
        assert_eq!(norm("https://h:8443/ok"), "https://h:8443/ok");
        assert_eq!(norm("http://h:443/ok"), "http://h:443/ok");
        // Paths keep their case and their trailing slash (or its absence);
        // only an empty path is written `/` (the same request line).
        assert_eq!(norm("https://h/Hooks/"), "https://h/Hooks/");
        assert_eq!(norm("https://h/Hooks"), "https://h/Hooks");
        assert_eq!(norm("https://h"), "https://h/");
        assert_eq!(norm("https://h/a/../b?x=1#f"), "https://h/b?x=1");
        // What names the same endpoint another way: a trailing dot, an
        // empty query, a fragment (never sent).
        assert_eq!(
            norm("https://h.example.test./ok"),
            "https://h.example.test/ok"
        );
        assert_eq!(norm("https://h/ok?"), "https://h/ok");
        assert_eq!(norm("https://h/ok#frag"), "https://h/ok");
        // Seed 000's example is already normal.
        assert_eq!(
            norm("https://example.com/hooks/license"),
            "https://example.com/hooks/license"
        );
    }

    #[test]
    fn a_tenant_category_may_differ_from_the_first_segment() {
        assert_eq!(
            validate_category("invoice.paid", None),
            Ok("invoice".into())
        );
        assert_eq!(
            validate_category("inv.paid", Some("other")),
            Ok("other".into())
        );
        assert_eq!(
            validate_category("invoice.paid", Some("invoice")),
            Ok("invoice".into())
        );
        for bad in ["", "Billing", "billing dept", "billing.x", "billing.*"] {
            assert!(
                validate_category("invoice.paid", Some(bad)).is_err(),
                "{bad:?}"
            );
        }
        assert!(validate_category("invoice", Some("billing")).is_err());
    }

    #[test]
    fn strict_policy_adds_seed_003_rules() {
        for bad in [
            "http://example.com/",
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://localhost/",
            "https://api.localhost/",
            "https://example.com/?a=1",
            "https://example.com/#frag",
        ] {
            assert!(validate_url(bad, UrlPolicy::Strict).is_err(), "{bad}");
        }
        assert!(validate_url("https://example.com/hooks", UrlPolicy::Strict).is_ok());
    }

    #[test]
    fn timeout_bounds() {
        assert_eq!(validate_timeout("0s"), Ok(0));
        assert_eq!(validate_timeout("500ms"), Ok(500));
        assert_eq!(validate_timeout("20s"), Ok(20_000));
        assert!(validate_timeout("21s").is_err());
        assert!(validate_timeout("-1s").is_err());
        assert!(validate_timeout("soon").is_err());
    }

    #[test]
    fn headers_are_checked() {
        let ok: Headers = [("X-Api-Key".to_string(), vec!["abc".to_string()])].into();
        assert!(validate_headers(&ok).is_ok());
        for (name, value) in [
            ("Bad Header", "v"),
            ("webhook-signature", "v"),
            ("Content-Type", "text/plain"),
            ("X-Ok", "line\r\nInjected: yes"),
        ] {
            let h: Headers = [(name.to_string(), vec![value.to_string()])].into();
            assert!(validate_headers(&h).is_err(), "{name}");
        }
        let dup: Headers = [
            ("X-A".to_string(), vec!["1".to_string()]),
            ("x-a".to_string(), vec!["2".to_string()]),
        ]
        .into();
        assert!(validate_headers(&dup).is_err());
    }

    #[test]
    fn patch_removes_before_adding() {
        let events = patch_events(
            &["a.b".into(), "c.d".into()],
            &["a.b".into(), "e.f".into()],
            &["e.f".into()],
        );
        assert_eq!(events, vec!["c.d".to_string(), "e.f".to_string()]);

        let current: Headers = [("X-A".to_string(), vec!["1".to_string()])].into();
        let add: Headers = [("x-a".to_string(), vec!["2".to_string()])].into();
        let h = patch_headers(&current, &["X-A".to_string()], &add);
        assert_eq!(h, [("x-a".to_string(), vec!["2".to_string()])].into());
        let h = patch_headers(&current, &[], &add);
        assert_eq!(
            h,
            [("X-A".to_string(), vec!["1".to_string(), "2".to_string()])].into()
        );
    }

    #[test]
    fn previous_secret_signs_only_during_grace() {
        let s = WebhookSecrets {
            current: "new".into(),
            previous: Some(("old".into(), 1_000)),
        };
        assert_eq!(s.live(999), vec!["new", "old"]);
        assert_eq!(s.live(1_000), vec!["new"]);
    }

    #[test]
    fn retry_schedule_and_failure_handling() {
        assert_eq!(
            validate_retry_schedule(&["10ms".into(), "5s".into()]),
            Ok(vec![10, 5_000])
        );
        assert_eq!(validate_retry_schedule(&[]), Ok(vec![]));
        assert!(validate_retry_schedule(&["31d".into()]).is_err());
        assert!(validate_failure_handling(0, "5d").is_err());
        assert!(validate_failure_handling(3, "later").is_err());
        assert_eq!(
            validate_failure_handling(3, "1h"),
            Ok(FailureHandling {
                min_failures: 3,
                suspend_after_ms: 3_600_000
            })
        );
    }
}
