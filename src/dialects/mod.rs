//! The other products' webhook APIs (SPEC §10), served beside hookd's
//! own: `event_api` (seed 004, `/event/{tenantLocator}/webhooks`),
//! `voucherify` (seed 002, `/management/v1/projects/{projectId}/webhooks`)
//! and `slashid` (seed 003, `/organizations/webhooks`).
//!
//! Invariant: a surface only translates. It reads its request shape,
//! authenticates with the one `Authenticator`, calls the same `ops` as the
//! JSON API and the admin page, and shapes the answer; every validation
//! rule stays in `ops`/`domain` (a surface adds only rules of its own
//! document, as pure functions). Each surface turns a [`Refusal`] into its
//! own error shape in one place.
//!
//! What the surfaces share is here: reading a JSON body, the query string
//! and the credential, and deciding who may act on the tenant a request
//! names.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::auth::KeyCheck;
use crate::crypto::hash_api_key;
use crate::domain::api_key::{Permission, Principal};
use crate::domain::tenant::validate_tenant_id;
use crate::ops::OpError;
use crate::state::AppState;
use crate::throttle::{ClientId, Throttled};

pub mod event_api;
pub mod slashid;
pub mod voucherify;

/// Why a surface refuses a request, before its own shape is put on it.
#[derive(Debug)]
pub enum Refusal {
    /// No credential, or one hookd does not know (401).
    Unauthenticated(&'static str),
    /// The body, path, query or a header could not be read (400).
    Malformed {
        field: String,
        message: String,
    },
    /// The body is over the configured limit (413).
    TooLarge(usize),
    /// Too many unknown keys from this client (429, with `Retry-After`).
    Throttled(Throttled),
    /// No route at this path (404), or not with this method (405).
    NoRoute,
    NoMethod,
    /// The operation's answer (or the tenant check's, as an operation
    /// would answer it).
    Op(OpError),
}

impl From<OpError> for Refusal {
    fn from(e: OpError) -> Self {
        Refusal::Op(e)
    }
}

impl Refusal {
    pub fn malformed(field: impl Into<String>, message: impl Into<String>) -> Self {
        Refusal::Malformed {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What a surface shows for a refusal: the status, the field at fault (in
/// hookd's names for an operation's error: the surface renames it) and a
/// message. Service failures are logged here and shown as a fixed text.
pub struct Shown {
    pub status: StatusCode,
    /// (field, message) pairs; empty when no field is at fault.
    pub fields: Vec<(String, String)>,
    pub message: String,
    /// For a throttled client: when to try again (`Retry-After`).
    pub retry_after_s: Option<u64>,
}

impl Shown {
    /// `rename` maps hookd's field names (`url`, `events`, …) to the
    /// surface's own.
    pub fn of(refusal: Refusal, rename: impl Fn(&str) -> String) -> Shown {
        let plain = |status, message: String| Shown {
            status,
            fields: Vec::new(),
            message,
            retry_after_s: None,
        };
        match refusal {
            Refusal::Unauthenticated(m) => plain(StatusCode::UNAUTHORIZED, m.to_owned()),
            Refusal::Malformed { field, message } => Shown {
                status: StatusCode::BAD_REQUEST,
                message: format!("{field}: {message}"),
                fields: vec![(field, message)],
                retry_after_s: None,
            },
            Refusal::NoRoute => plain(StatusCode::NOT_FOUND, "no such route".into()),
            Refusal::NoMethod => plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "this route does not accept that method".into(),
            ),
            Refusal::Throttled(t) => Shown {
                retry_after_s: Some(t.retry_after_s),
                ..plain(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "too many failed authentications from this address; retry in {} s",
                        t.retry_after_s
                    ),
                )
            },
            Refusal::TooLarge(limit) => plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than the limit of {limit} bytes"),
            ),
            Refusal::Op(OpError::Invalid(errors)) => {
                let fields: Vec<(String, String)> = errors
                    .0
                    .into_iter()
                    .map(|e| (rename(&e.field), e.message))
                    .collect();
                let message = fields
                    .iter()
                    .map(|(f, m)| format!("{f}: {m}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                Shown {
                    status: StatusCode::BAD_REQUEST,
                    fields,
                    message,
                    retry_after_s: None,
                }
            }
            Refusal::Op(OpError::NotFound(what)) => {
                plain(StatusCode::NOT_FOUND, format!("{what} not found"))
            }
            Refusal::Op(OpError::Conflict(m)) => plain(StatusCode::CONFLICT, m),
            Refusal::Op(OpError::Forbidden(m)) => plain(StatusCode::FORBIDDEN, m),
            Refusal::Op(e) => {
                e.log();
                let status = if e.is_unavailable() {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::INTERNAL_SERVER_ERROR
                };
                plain(status, e.public_detail())
            }
        }
    }
}

impl Shown {
    /// Adds the headers every surface sends with its error body.
    pub fn add_headers(&self, response: &mut axum::response::Response) {
        if let Some(s) = self.retry_after_s {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, s.into());
        }
    }
}

/// The answer to a path no route matched (or a method a route does not
/// take), in the shape of the surface whose paths it is under; `None`
/// outside them (hookd's own answer applies).
pub fn unrouted(path: &str, refusal: fn() -> Refusal) -> Option<axum::response::Response> {
    use axum::response::IntoResponse;
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    if under("/organizations") {
        Some(slashid::SlashIdError::from(refusal()).into_response())
    } else if under("/event") {
        Some(event_api::EventApiError::from(refusal()).into_response())
    } else if under("/management/v1/projects") {
        Some(voucherify::VoucherifyError::from(refusal()).into_response())
    } else {
        None
    }
}

/// A JSON body as `T`: malformed JSON, wrong types, missing and unknown
/// fields are 400s naming the field (hookd's one JSON reader), an
/// oversized body 413.
pub fn read_json<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
    state: &AppState,
) -> Result<T, Refusal> {
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Refusal::TooLarge(state.ops.settings.max_body_bytes)
        } else {
            Refusal::malformed("body", format!("could not be read: {e}"))
        }
    })?;
    crate::http::extract::parse_json(&bytes).map_err(|e| match e.errors.into_iter().next() {
        Some(f) => Refusal::malformed(f.field, f.message),
        None => Refusal::malformed("body", e.detail),
    })
}

/// The query string's pairs, repeated names kept (`a=1&a=2`).
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(query: Option<&str>) -> Result<Query, Refusal> {
        serde_urlencoded::from_str(query.unwrap_or(""))
            .map(Query)
            .map_err(|e| Refusal::malformed("query", format!("is malformed: {e}")))
    }

    /// Every value of `name` (also `name[]`), comma-separated lists split.
    pub fn all(&self, name: &str) -> Vec<String> {
        let bracketed = format!("{name}[]");
        self.0
            .iter()
            .filter(|(k, _)| *k == name || *k == bracketed)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .rev()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.clone())
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, Refusal> {
        match self.string(name).as_deref() {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(Refusal::malformed(name, "must be true or false")),
        }
    }

    pub fn int(&self, name: &str, min: u64, max: u64) -> Result<Option<u64>, Refusal> {
        match self.string(name) {
            None => Ok(None),
            Some(s) => match s.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(Refusal::malformed(
                    name,
                    format!("must be an integer between {min} and {max}"),
                )),
            },
        }
    }
}

/// A header's value, if present and readable.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The key of `Authorization: Bearer <key>`.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    header(headers, "authorization")
        .and_then(|h| {
            let (scheme, rest) = h.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|k| !k.is_empty())
}

/// Checks a tenant named by a request (path or header): `field` names it
/// in the 400.
pub fn tenant_named(raw: &str, field: &str) -> Result<String, Refusal> {
    validate_tenant_id(raw).map_err(|m| Refusal::malformed(field, m))?;
    Ok(raw.to_owned())
}

/// The principal of `key` acting on `tenant` (§2: a management key acts on
/// the tenant the request names, a provisioned key on its own only).
/// No or an unknown key: 401. A provisioned key of another tenant: 404
/// naming `tenant_kind` (another tenant's resources are not shown, not
/// even as forbidden).
pub async fn principal_for(
    state: &AppState,
    client: Option<ClientId>,
    key: Option<&str>,
    tenant: &str,
    tenant_kind: &'static str,
) -> Result<Principal, Refusal> {
    let key = key.ok_or(Refusal::Unauthenticated("an API key is required"))?;
    // The one key check of every surface: a client that keeps presenting
    // unknown keys is throttled here as on hookd's own API (§14).
    let principal = match state
        .ops
        .authenticator
        .check_key(
            client,
            &hash_api_key(key),
            Some(tenant),
            state.clock.now_ms(),
        )
        .await?
    {
        KeyCheck::Valid(principal) => principal,
        KeyCheck::Unknown => return Err(Refusal::Unauthenticated("the API key is not valid")),
        KeyCheck::Throttled(t) => return Err(Refusal::Throttled(t)),
    };
    if principal.tenant() != tenant {
        return Err(OpError::NotFound(tenant_kind).into());
    }
    Ok(principal)
}

/// 403 unless `principal` holds `permission`.
pub fn require(principal: &Principal, permission: Permission) -> Result<(), Refusal> {
    if principal.has(permission) {
        Ok(())
    } else {
        Err(OpError::Forbidden(format!(
            "this API key lacks the {} permission",
            permission.as_str()
        ))
        .into())
    }
}

/// A hookd webhook id from its decimal form in a path (`None`: it names
/// no webhook, which is a 404, not a 400).
pub fn decimal_id(s: &str) -> Option<i64> {
    s.parse::<i64>().ok().filter(|id| *id > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_keeps_repeated_and_comma_separated_values() {
        let q = Query::parse(Some(
            "eventTypes=a.b&eventTypes=c.d,e.f&eventTypes[]=g.h&x=1",
        ))
        .unwrap();
        assert_eq!(q.all("eventTypes"), ["a.b", "c.d", "e.f", "g.h"]);
        assert_eq!(q.string("x").as_deref(), Some("1"));
        assert!(q.bool("x").is_err());
        assert_eq!(q.int("x", 0, 5).unwrap(), Some(1));
        assert!(q.int("x", 2, 5).is_err());
    }

    #[test]
    fn decimal_ids_are_positive_integers_only() {
        assert_eq!(decimal_id("42"), Some(42));
        assert_eq!(decimal_id("0"), None);
        assert_eq!(decimal_id("wh_1"), None);
        assert_eq!(decimal_id("-3"), None);
    }
}
