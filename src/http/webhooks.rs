//! `/management/webhooks`: create, list, read, change, delete, secrets,
//! unsuspend.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::error::{ApiResult, Problem};
use super::extract::{ApiJson, ApiPath, Auth, MaybeJson, Params};
use super::webhook_control::{FilterDocument, OrderingMode};
use super::webhook_security::{AuthIn, AuthOut};
use crate::clock::format_rfc3339;
use crate::domain::api_key::Permission;
use crate::domain::duration::format_duration_ms;
use crate::domain::receiver_auth::SignatureScheme;
use crate::domain::webhook::{Headers, Webhook};
use crate::ops::webhook_control::ControlChanges;
use crate::ops::webhook_security::{SecurityChanges, public_keys};
use crate::ops::webhooks::{
    self as ops, FailureHandlingInput, NewWebhook, WebhookChanges, WebhookSecret,
};
use crate::state::AppState;
use crate::store::WebhookFilter;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailureHandlingIn {
    /// Failed attempts before the webhook may be suspended.
    #[serde(deserialize_with = "super::extract::whole_number")]
    pub min_failures: i64,
    /// Time without a success before suspension, e.g. `5d`.
    pub suspend_after: String,
}

/// A new webhook.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookIn {
    /// 1–128 characters, no control or bidirectional-override characters.
    #[schema(example = "audit-sync")]
    pub name: String,
    /// Absolute http(s) URL with a host; stored normalised (scheme and host
    /// lowercased, default port dropped), and unique in the tenant.
    #[schema(example = "https://example.com/hooks/license")]
    pub url: String,
    /// Event types or `category.*` wildcards.
    #[schema(example = json!(["license.generated", "license.revoked"]))]
    pub events: Vec<String>,
    pub enabled: Option<bool>,
    /// Default `production`.
    pub environment: Option<String>,
    /// At most 1,024 characters; no control characters but line breaks and
    /// tabs, no bidirectional controls.
    pub description: Option<String>,
    pub headers: Option<Headers>,
    /// e.g. `500ms`, `10s`; `0s` means the default (10 s); at most 20 s.
    pub timeout: Option<String>,
    /// Deliveries per second; unlimited when absent.
    #[serde(default, deserialize_with = "super::extract::opt_whole_number")]
    pub rate_limit: Option<i64>,
    /// Delays before each retry; `[]` means a single attempt.
    pub retry_schedule: Option<Vec<String>>,
    pub failure_handling: Option<FailureHandlingIn>,
    /// A `whsec_` secret to use instead of a generated one.
    pub secret: Option<String>,
    /// `v1` (HMAC-SHA256, the default) or `v1a` (Ed25519: the answer shows
    /// `public_key` instead of `secret`).
    #[schema(example = "v1")]
    pub signature_scheme: Option<String>,
    pub auth: Option<AuthIn>,
    /// PEM: a private CA trusted for this webhook's https receiver alone.
    pub ca_certificate: Option<String>,
    /// Payload filter (SPEC §12): only matching events are delivered.
    #[schema(value_type = Option<FilterDocument>)]
    pub filter: Option<serde_json::Value>,
    /// `fifo`: one delivery at a time per `ordering_key`, in publish order.
    #[schema(value_type = Option<OrderingMode>)]
    pub ordering: Option<String>,
}

/// Changes to a webhook: only the fields given change. `null` resets
/// `description`, `rate_limit`, `retry_schedule` and `failure_handling`.
/// The add/remove forms apply removals first, then additions.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    pub name: Option<String>,
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
    pub environment: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    pub headers: Option<Headers>,
    pub timeout: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    pub rate_limit: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>)]
    pub retry_schedule: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<FailureHandlingIn>)]
    pub failure_handling: Option<Option<FailureHandlingIn>>,
    pub add_events: Option<Vec<String>>,
    pub remove_events: Option<Vec<String>>,
    pub add_headers: Option<Headers>,
    pub remove_headers: Option<Vec<String>>,
    /// `v1` or `v1a`; switching to `v1a` the first time makes the Ed25519
    /// key (`GET …/secret` shows its public key).
    pub signature_scheme: Option<String>,
    /// `null` removes receiver authentication.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<AuthIn>)]
    pub auth: Option<Option<AuthIn>>,
    /// `null` removes the private CA.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub ca_certificate: Option<Option<String>>,
    /// `null` removes the filter.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<FilterDocument>)]
    pub filter: Option<Option<serde_json::Value>>,
    #[schema(value_type = Option<OrderingMode>)]
    pub ordering: Option<String>,
}

/// Tells "absent" (`None`) from "null" (`Some(None)`).
pub(super) fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

impl From<FailureHandlingIn> for FailureHandlingInput {
    fn from(f: FailureHandlingIn) -> Self {
        Self {
            min_failures: f.min_failures,
            suspend_after: f.suspend_after,
        }
    }
}

impl From<WebhookIn> for NewWebhook {
    fn from(w: WebhookIn) -> Self {
        Self {
            name: w.name,
            url: w.url,
            events: w.events,
            enabled: w.enabled,
            environment: w.environment,
            description: w.description,
            headers: w.headers,
            timeout: w.timeout,
            rate_limit: w.rate_limit,
            retry_schedule: w.retry_schedule,
            failure_handling: w.failure_handling.map(Into::into),
            secret: w.secret,
            security: SecurityChanges {
                signature_scheme: w.signature_scheme,
                auth: w.auth.map(|a| Some(a.into())),
                ca_certificate: w.ca_certificate.map(Some),
            },
            control: ControlChanges {
                filter: w.filter.map(Some),
                ordering: w.ordering,
            },
        }
    }
}

impl From<WebhookPatch> for WebhookChanges {
    fn from(p: WebhookPatch) -> Self {
        Self {
            name: p.name,
            url: p.url,
            events: p.events,
            enabled: p.enabled,
            environment: p.environment,
            description: p.description,
            headers: p.headers,
            timeout: p.timeout,
            rate_limit: p.rate_limit,
            retry_schedule: p.retry_schedule,
            failure_handling: p.failure_handling.map(|f| f.map(Into::into)),
            add_events: p.add_events,
            remove_events: p.remove_events,
            add_headers: p.add_headers,
            remove_headers: p.remove_headers,
            security: SecurityChanges {
                signature_scheme: p.signature_scheme,
                auth: p.auth.map(|a| a.map(Into::into)),
                ca_certificate: p.ca_certificate,
            },
            control: ControlChanges {
                filter: p.filter,
                ordering: p.ordering,
            },
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FailureHandlingOut {
    pub min_failures: u32,
    pub suspend_after: String,
}

/// A webhook as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookOut {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    /// RFC 3339 UTC.
    pub created_at: String,
    pub updated_at: String,
    pub environment: String,
    pub description: Option<String>,
    pub headers: Headers,
    /// `0s` means the service default.
    pub timeout: String,
    pub rate_limit: Option<u32>,
    /// `null` means the service default schedule.
    pub retry_schedule: Option<Vec<String>>,
    /// `null` means the service defaults.
    pub failure_handling: Option<FailureHandlingOut>,
    pub suspended: bool,
    pub suspended_at: Option<String>,
    /// The signing secret: in the create answer of a `v1` webhook only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// `v1` (HMAC-SHA256) or `v1a` (Ed25519).
    pub signature_scheme: &'static str,
    /// Receiver authentication: its type and non-secret parts.
    pub auth: Option<AuthOut>,
    /// PEM: the private CA trusted for this webhook.
    pub ca_certificate: Option<String>,
    /// The `whpk_` public key receivers verify `v1a` signatures with: in
    /// the create answer of a `v1a` webhook only (then `GET …/secret`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// The payload filter; `null`: every subscribed event.
    #[schema(value_type = Option<FilterDocument>)]
    pub filter: Option<serde_json::Value>,
    #[schema(value_type = OrderingMode)]
    pub ordering: &'static str,
    /// Deliveries wait until `POST …/resume`.
    pub paused: bool,
    /// RFC 3339 UTC; `null` unless paused.
    pub paused_at: Option<String>,
}

impl From<Webhook> for WebhookOut {
    fn from(w: Webhook) -> Self {
        Self {
            id: w.id,
            name: w.name,
            url: w.url,
            events: w.events,
            enabled: w.enabled,
            created_at: format_rfc3339(w.created_at),
            updated_at: format_rfc3339(w.updated_at),
            environment: w.environment,
            description: w.description,
            headers: w.headers,
            timeout: format_duration_ms(w.timeout_ms),
            rate_limit: w.rate_limit,
            retry_schedule: w
                .retry_schedule_ms
                .map(|s| s.into_iter().map(format_duration_ms).collect()),
            failure_handling: w.failure_handling.map(|f| FailureHandlingOut {
                min_failures: f.min_failures,
                suspend_after: format_duration_ms(f.suspend_after_ms),
            }),
            suspended: w.suspended,
            suspended_at: w.suspended_at.map(format_rfc3339),
            secret: None,
            signature_scheme: w.security.signature_scheme.as_str(),
            auth: w.security.auth.as_ref().map(AuthOut::from),
            ca_certificate: w.security.ca_certificate,
            public_key: None,
            filter: w
                .control
                .filter
                .as_deref()
                .and_then(|t| serde_json::from_str(t).ok()),
            ordering: w.control.ordering.as_str(),
            paused: w.control.paused,
            paused_at: w.control.paused_at.map(format_rfc3339),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub data: Vec<WebhookOut>,
    pub total: u64,
    pub offset: u64,
    pub limit: u64,
}

/// What verifies a webhook's signatures: its `whsec_` secret (`v1`), or
/// its `whpk_` public key (`v1a`; the private key is never shown).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum SecretOut {
    V1 {
        /// The current signing secret (`whsec_…`).
        secret: String,
        /// Until when the previous secret also signs, if one does.
        previous_secret_expires_at: Option<String>,
    },
    V1a {
        /// `v1a`
        signature_scheme: &'static str,
        /// The current public key (`whpk_…`).
        public_key: String,
        /// The public key of the rotated-out key while it still signs.
        previous_public_key: Option<String>,
        previous_public_key_expires_at: Option<String>,
    },
}

impl From<WebhookSecret> for SecretOut {
    fn from(s: WebhookSecret) -> Self {
        match s.scheme {
            SignatureScheme::V1 => Self::V1 {
                secret: s.secret,
                previous_secret_expires_at: s.previous_expires_at.map(format_rfc3339),
            },
            SignatureScheme::V1a => Self::V1a {
                signature_scheme: SignatureScheme::V1a.as_str(),
                public_key: s.secret,
                previous_public_key: s.previous_public_key,
                previous_public_key_expires_at: s.previous_expires_at.map(format_rfc3339),
            },
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretIn {
    /// A `whsec_` secret to use instead of a generated one.
    pub secret: Option<String>,
}

#[utoipa::path(
    post, path = "/management/webhooks", tag = "webhooks",
    request_body = WebhookIn,
    responses(
        (status = 201, description = "Created; `secret` is shown here only", body = WebhookOut),
        (status = 400, description = "Invalid field", body = Problem),
        (status = 401, description = "Missing or invalid key", body = Problem),
        (status = 403, description = "Key lacks webhooks:write", body = Problem),
        (status = 413, description = "Body too large", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn create_webhook(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(input): ApiJson<WebhookIn>,
) -> ApiResult<Response> {
    let tenant = auth.require(Permission::WebhooksWrite)?;
    let now = state.clock.now_ms();
    let (created, secret) = ops::create_webhook(&state.ops, tenant, input.into(), now).await?;
    let location = format!("/management/webhooks/{}", created.id);
    let keys = match created.security.signature_scheme {
        SignatureScheme::V1a => created.security.signing_keys.clone(),
        SignatureScheme::V1 => None,
    };
    let mut out = WebhookOut::from(created);
    match keys {
        Some(keys) => out.public_key = Some(public_keys(&keys, now).0),
        None => out.secret = Some(secret),
    }
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(out),
    )
        .into_response())
}

#[utoipa::path(
    get, path = "/management/webhooks", tag = "webhooks",
    params(
        ("q" = Option<String>, Query, description = "Substring of name or URL, ignoring case"),
        ("environment" = Option<String>, Query),
        ("enabled" = Option<bool>, Query),
        ("suspended" = Option<bool>, Query),
        ("event_type" = Option<String>, Query, description = "Webhooks receiving this type"),
        ("offset" = Option<u64>, Query),
        ("limit" = Option<u64>, Query, description = "1–500, default 50"),
    ),
    responses(
        (status = 200, body = WebhookList),
        (status = 400, body = Problem),
        (status = 401, body = Problem),
        (status = 403, body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn list_webhooks(
    State(state): State<AppState>,
    auth: Auth,
    params: Params,
) -> ApiResult<Json<WebhookList>> {
    let tenant = auth.require(Permission::WebhooksList)?;
    let (offset, limit) = params.page()?;
    let filter = WebhookFilter {
        q: params.string("q"),
        environment: params.string("environment"),
        enabled: params.bool("enabled")?,
        suspended: params.bool("suspended")?,
        event_type: params.string("event_type"),
        ..WebhookFilter::default()
    };
    let page = ops::list_webhooks(&state.ops, tenant, filter, offset, limit).await?;
    Ok(Json(WebhookList {
        data: page.items.into_iter().map(WebhookOut::from).collect(),
        total: page.total,
        offset,
        limit,
    }))
}

#[utoipa::path(
    get, path = "/management/webhooks/{id}", tag = "webhooks",
    params(("id" = i64, Path)),
    responses((status = 200, body = WebhookOut), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn get_webhook(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<WebhookOut>> {
    let tenant = auth.require(Permission::WebhooksRead)?;
    Ok(Json(ops::get_webhook(&state.ops, tenant, id).await?.into()))
}

#[utoipa::path(
    patch, path = "/management/webhooks/{id}", tag = "webhooks",
    params(("id" = i64, Path)),
    request_body = WebhookPatch,
    responses((status = 200, body = WebhookOut), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn update_webhook(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(patch): ApiJson<WebhookPatch>,
) -> ApiResult<Json<WebhookOut>> {
    let tenant = auth.require(Permission::WebhooksWrite)?;
    let now = state.clock.now_ms();
    let updated = ops::update_webhook(&state.ops, tenant, id, &patch.into(), now).await?;
    Ok(Json(updated.into()))
}

#[utoipa::path(
    delete, path = "/management/webhooks/{id}", tag = "webhooks",
    params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn delete_webhook(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let tenant = auth.require(Permission::WebhooksWrite)?;
    ops::delete_webhook(&state.ops, tenant, id, state.clock.now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, path = "/management/webhooks/{id}/secret", tag = "webhooks",
    description = "The signing secret (and until when the previous one still signs). Needs webhooks:write: a secret lets its holder forge deliveries.",
    params(("id" = i64, Path)),
    responses((status = 200, body = SecretOut), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn get_webhook_secret(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<SecretOut>> {
    let tenant = auth.require(Permission::WebhooksWrite)?;
    let now = state.clock.now_ms();
    Ok(Json(
        ops::read_secret(&state.ops, tenant, id, now).await?.into(),
    ))
}

#[utoipa::path(
    post, path = "/management/webhooks/{id}/secret/rotate", tag = "webhooks",
    description = "Replaces the secret; the old one keeps signing alongside for 24 hours.",
    params(("id" = i64, Path)),
    request_body(content = Option<RotateSecretIn>),
    responses((status = 200, body = SecretOut), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    MaybeJson(input): MaybeJson<RotateSecretIn>,
) -> ApiResult<Json<SecretOut>> {
    let tenant = auth.require(Permission::WebhooksWrite)?;
    let now = state.clock.now_ms();
    let rotated = ops::rotate_secret(&state.ops, tenant, id, input.secret, now).await?;
    Ok(Json(rotated.into()))
}

#[utoipa::path(
    post, path = "/management/webhooks/{id}/unsuspend", tag = "webhooks",
    params(("id" = i64, Path)),
    responses((status = 200, body = WebhookOut), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn unsuspend_webhook(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<WebhookOut>> {
    let tenant = auth.require(Permission::WebhooksWrite)?;
    let now = state.clock.now_ms();
    Ok(Json(
        ops::unsuspend_webhook(&state.ops, tenant, id, now)
            .await?
            .into(),
    ))
}
