//! Request extractors whose failures are problem+json answers naming the
//! field at fault, instead of axum's plain-text rejections.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::objects_only::ObjectsOnly;
use crate::auth::KeyCheck;
use crate::crypto::hash_api_key;
use crate::domain::api_key::{Permission, Principal};
use crate::state::AppState;
use crate::throttle::ClientId;

/// A JSON body. Its `Content-Type` must be JSON (`application/json`,
/// `application/*+json`), absent, or curl's `-d` default
/// (`application/x-www-form-urlencoded`, which the README's examples rely
/// on); any other type (`text/plain`, multipart, …) is a 400 naming
/// `Content-Type`, on every JSON route alike. Malformed JSON, wrong types
/// and unknown fields are 400s naming the field, an oversized body is 413.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        check_content_type(req.headers())?;
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| body_rejection(e, state.ops.settings.max_body_bytes))?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Whether a request's `Content-Type` may carry a JSON body: see [`ApiJson`].
fn check_content_type(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(axum::http::header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if is_json_content_type(&essence) {
        Ok(())
    } else {
        Err(ApiError::field(
            "Content-Type",
            format!("must be application/json for a JSON body (got {essence:?})"),
        ))
    }
}

/// A media type (without parameters, lowercased) a JSON body may come as.
fn is_json_content_type(essence: &str) -> bool {
    essence == "application/json"
        || essence == "application/x-www-form-urlencoded"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

fn body_rejection(e: BytesRejection, limit: usize) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::payload_too_large(limit)
    } else {
        ApiError::bad_request(format!("the request body could not be read: {e}"))
    }
}

/// Parses JSON into `T`, naming the offending field on failure. A struct
/// is read from a JSON object only (`ObjectsOnly`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::field(
            "body",
            "is empty; a JSON object is required",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(ObjectsOnly(&mut de)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::field("body", format!("is not valid JSON: {inner}"));
        }
        let (field, message) = field_of(&path, &without_rust_names(&inner.to_string()));
        ApiError::field(field, message)
    })?;
    de.end()
        .map_err(|e| ApiError::field("body", format!("is not valid JSON: {e}")))?;
    Ok(value)
}

/// serde's "expected struct WebhookPatch" names a Rust type the caller
/// never sees: say what the JSON must be instead.
fn without_rust_names(message: &str) -> String {
    match message.split_once("expected struct ") {
        Some((before, rest)) => {
            let after = rest.split_once(' ').map_or("", |(_, a)| a);
            format!("{before}expected a JSON object {after}")
                .trim_end()
                .to_owned()
        }
        None => message.to_owned(),
    }
}

/// serde names missing and unknown fields only in its message; lift them
/// out so the `field` of the answer is the one at fault.
fn field_of(path: &str, message: &str) -> (String, String) {
    let quoted = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    let join = |name: String| {
        if path == "." || path.is_empty() {
            name
        } else {
            format!("{path}.{name}")
        }
    };
    if let Some(name) = quoted("missing field `") {
        return (join(name), "is required".into());
    }
    if let Some(name) = quoted("unknown field `") {
        // The path already ends at the unknown field.
        let field = if path == "." || path.is_empty() {
            name
        } else {
            path.to_string()
        };
        return (field, "is not a known field".into());
    }
    let field = if path == "." {
        "body".to_string()
    } else {
        path.to_string()
    };
    (field, message.to_string())
}

/// A JSON body that may be absent: an empty body is `T::default()`. The
/// content type is checked as for [`ApiJson`], even for an empty body.
pub struct MaybeJson<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<AppState> for MaybeJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        check_content_type(req.headers())?;
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| body_rejection(e, state.ops.settings.max_body_bytes))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(MaybeJson(T::default()));
        }
        // `null` is the document's way of saying "no body" (the body is optional).
        parse_json::<Option<T>>(&bytes).map(|v| MaybeJson(v.unwrap_or_default()))
    }
}

/// Path parameters; a malformed one (`/webhooks/abc`) is a 400 naming it.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| ApiPath(v))
            .map_err(|e| {
                ApiError::field(
                    "id",
                    format!("is not valid in this path: {}", e.body_text()),
                )
            })
    }
}

/// Query parameters, parsed one by one so each error names its parameter.
pub struct Params(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        let map: HashMap<String, String> = serde_urlencoded::from_str(q)
            .map_err(|e| ApiError::bad_request(format!("the query string is malformed: {e}")))?;
        Ok(Params(map))
    }
}

impl Params {
    pub fn string(&self, name: &str) -> Option<String> {
        self.0.get(name).filter(|s| !s.is_empty()).cloned()
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        // Only a string parameter reads an empty value as absent: the
        // document types this one as a boolean, which "" is not.
        match self.0.get(name).map(String::as_str) {
            None => Ok(None),
            Some("true") | Some("1") => Ok(Some(true)),
            Some("false") | Some("0") => Ok(Some(false)),
            Some(_) => Err(ApiError::field(name, "must be true or false")),
        }
    }

    pub fn int(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(s) => match s.parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(ApiError::field(
                    name,
                    format!("must be an integer between {min} and {max}"),
                )),
            },
        }
    }

    /// `offset` and `limit` (default 50, at most 500).
    pub fn page(&self) -> Result<(u64, u64), ApiError> {
        let offset = self.int("offset", 0, i64::MAX)?.unwrap_or(0) as u64;
        let limit = self.int("limit", 1, 500)?.unwrap_or(50) as u64;
        Ok((offset, limit))
    }
}

/// The authenticated caller.
pub struct Auth(pub Principal);

/// The key of `Authorization: Bearer <key>`, if one is given.
pub fn bearer_key(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| {
            let (scheme, rest) = h.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|k| !k.is_empty())
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = bearer_key(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        let tenant = parts
            .headers
            .get("x-tenant-id")
            .map(|v| v.to_str().unwrap_or("\u{0}"));
        let client = ClientId::of_request(&parts.extensions);
        match state
            .ops
            .authenticator
            .check_key(client, &hash_api_key(key), tenant, state.clock.now_ms())
            .await?
        {
            KeyCheck::Valid(principal) => Ok(Auth(principal)),
            KeyCheck::Unknown => Err(ApiError::unauthorized()),
            KeyCheck::Throttled(t) => Err(ApiError::too_many_failures(t.retry_after_s)),
        }
    }
}

impl Auth {
    /// The caller's tenant, if it holds `permission` there; 403 otherwise.
    pub fn require(&self, permission: Permission) -> Result<&str, ApiError> {
        if self.0.has(permission) {
            Ok(self.0.tenant())
        } else {
            Err(ApiError::forbidden(format!(
                "this API key lacks the {:?} permission",
                permission.as_str()
            )))
        }
    }
}

/// An integer field that also takes a JSON number with a zero fraction
/// (`5.0`): JSON Schema's `integer` admits it, so the document's clients
/// may send it.
pub fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    use serde::de::Error;
    let n = serde_json::Number::deserialize(d)?;
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
        _ => Err(D::Error::custom(format!(
            "invalid type: {n}, expected an integer"
        ))),
    }
}

/// `whole_number` for an optional field.
pub fn opt_whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    struct W(#[serde(deserialize_with = "whole_number")] i64);
    Ok(Option::<W>::deserialize(d)?.map(|W(i)| i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types_are_accepted_others_are_not() {
        for ok in [
            "application/json",
            "application/problem+json",
            "application/vnd.api+json",
            "application/x-www-form-urlencoded",
        ] {
            assert!(is_json_content_type(ok), "{ok}");
        }
        for bad in [
            "text/plain",
            "text/html",
            "multipart/form-data",
            "application/octet-stream",
            "application/xml",
            "text/json+",
            "",
        ] {
            assert!(!is_json_content_type(bad), "{bad}");
        }
    }

    #[test]
    fn parameters_and_case_do_not_matter() {
        let mut h = axum::http::HeaderMap::new();
        assert!(check_content_type(&h).is_ok(), "absent");
        h.insert(
            axum::http::header::CONTENT_TYPE,
            "Application/JSON; charset=utf-8".parse().unwrap(),
        );
        assert!(check_content_type(&h).is_ok());
        h.insert(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8".parse().unwrap(),
        );
        assert!(check_content_type(&h).is_err());
    }
}
