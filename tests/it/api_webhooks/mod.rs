//! §3: the webhook endpoints of the management API, ugly cases included.

use crate::common::{assert_problem, full};

use std::time::Duration;

use crate::common::{MGMT_KEY, ServerConfig, TestServer, assert_field_error, send};
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

mod create;
mod list;
mod patch;
mod secrets;
mod validation;

const HOOKS: &str = "/management/webhooks";

/// A request with the bootstrap key and a raw (possibly broken) JSON body.
async fn raw(s: &TestServer, method: Method, path: &str, body: &str) -> (u16, String, Value) {
    full(
        s.req(method, path)
            .header("Content-Type", "application/json")
            .body(body.to_string()),
    )
    .await
}

/// Whether an error's `field` is `field` or a path under it (`field.x`, `field[0]`).
fn names(error_field: &str, field: &str) -> bool {
    error_field
        .strip_prefix(field)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}

/// The messages of every error naming `field` (or a field under it), joined.
fn messages_for(body: &Value, field: &str) -> String {
    body["errors"]
        .as_array()
        .map(|errs| {
            errs.iter()
                .filter(|e| names(e["field"].as_str().unwrap_or_default(), field))
                .map(|e| e["message"].as_str().unwrap_or_default().to_string())
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

/// Asserts a 400 whose errors name `field` or a field nested under it.
fn assert_field_error_under(status: u16, body: &Value, field: &str) {
    assert_eq!(
        status, 400,
        "expected 400 naming {field}, got {status}: {body}"
    );
    let errors = body["errors"].as_array().expect("problem body has errors");
    assert!(
        errors
            .iter()
            .any(|e| names(e["field"].as_str().unwrap_or_default(), field)),
        "no error names {field:?}: {body}"
    );
}

fn hook(url: &str) -> Value {
    json!({"name": "hook", "url": url, "events": ["license.created"]})
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    base.as_object_mut().unwrap().insert(key.to_string(), value);
    base
}

fn without(mut base: Value, key: &str) -> Value {
    base.as_object_mut().unwrap().remove(key);
    base
}

async fn create_expect_400(s: &TestServer, body: Value, field: &str) -> Value {
    let (status, json) = s.post(HOOKS, body.clone()).await;
    assert_field_error(status, &json, field);
    json
}

fn parse_ts(ts: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{ts:?} is not RFC 3339: {e}"))
}

fn ids(list: &Value) -> Vec<i64> {
    list["data"]
        .as_array()
        .expect("list has data")
        .iter()
        .map(|w| w["id"].as_i64().unwrap())
        .collect()
}

fn assert_whsec(secret: &Value) -> String {
    let s = secret
        .as_str()
        .unwrap_or_else(|| panic!("secret is not a string: {secret}"));
    let b64 = s
        .strip_prefix("whsec_")
        .unwrap_or_else(|| panic!("{s} lacks whsec_"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap_or_else(|e| panic!("{s}: not base64 after whsec_: {e}"));
    assert!(bytes.len() >= 24, "{s}: only {} bytes of key", bytes.len());
    s.to_string()
}
