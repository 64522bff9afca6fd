//! Seed 002's webhook API: `/management/v1/projects/{projectId}/webhooks`
//! — create, list, get, update (`POST …/{webhookId}` as the document
//! names it; `PUT` too), delete.
//!
//! `projectId` is the tenant. The key comes in `X-Management-Token`, and
//! `X-Management-Id` names it: a provisioned key's id, or `management`
//! for a management key; both are required. Webhook ids are `wh_` + a
//! reversible encoding of hookd's id (`webhook_id_of` / `id_of_webhook`);
//! `created_at` is ISO 8601 with milliseconds. Errors are this API's
//! `{code, key, message, details}`, made in one place.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};

use crate::throttle::{Client, ClientId};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Refusal, Shown, header, principal_for, read_json, require, tenant_named};
use crate::domain::api_key::{Permission, Principal};
use crate::domain::webhook::Webhook;
use crate::ops::OpError;
use crate::ops::webhooks::{self as ops, NewWebhook, WebhookChanges};
use crate::state::AppState;
use crate::store::WebhookFilter;

pub const TAG: &str = "seed-002-voucherify";

/// The most webhooks one list answer holds (the document has no paging).
const LIST_LIMIT: u64 = 10_000;

/// A new webhook.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = VoucherifyWebhookCreateRequest)]
#[serde(deny_unknown_fields)]
pub struct WebhookCreateRequest {
    /// URL address that receives webhooks.
    pub target_url: String,
    /// The events that trigger a sendout.
    #[schema(example = json!(["business_validation_rule.assignment.created"]))]
    pub events: Vec<String>,
    /// Default true.
    pub active: Option<bool>,
}

/// Changes to a webhook: only the fields given change.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = VoucherifyWebhookUpdateRequest)]
#[serde(deny_unknown_fields)]
pub struct WebhookUpdateRequest {
    pub target_url: Option<String>,
    pub events: Option<Vec<String>>,
    pub active: Option<bool>,
}

/// A webhook configuration.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = VoucherifyWebhookResponse)]
pub struct WebhookResponse {
    /// Always `webhook`.
    #[schema(example = "webhook")]
    pub object: &'static str,
    /// ISO 8601 with milliseconds, UTC.
    #[schema(example = "2024-04-30T08:13:55.789Z")]
    pub created_at: String,
    #[schema(example = "wh_ekFHVL6lqC4l")]
    pub id: String,
    pub events: Vec<String>,
    pub target_url: String,
    pub active: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = VoucherifyWebhookListResponse)]
pub struct WebhookListResponse {
    /// Always `list`.
    pub object: &'static str,
    /// Always `data`.
    pub data_ref: &'static str,
    pub data: Vec<WebhookResponse>,
    pub total: u64,
}

/// This API's error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct VoucherifyErrorBody {
    /// The HTTP status.
    pub code: u16,
    /// e.g. `invalid_payload`, `unauthorized`, `not_found`.
    pub key: &'static str,
    pub message: String,
    /// What is wrong, fields named.
    pub details: String,
}

/// A refusal in this API's shape.
#[derive(Debug)]
pub struct VoucherifyError(Refusal);

impl From<Refusal> for VoucherifyError {
    fn from(e: Refusal) -> Self {
        VoucherifyError(e)
    }
}

impl From<OpError> for VoucherifyError {
    fn from(e: OpError) -> Self {
        VoucherifyError(e.into())
    }
}

/// hookd's field names as this API names them.
fn field_name(field: &str) -> String {
    match field {
        "url" => "target_url",
        "enabled" => "active",
        other => other,
    }
    .to_owned()
}

/// The one place a refusal becomes this API's answer.
impl IntoResponse for VoucherifyError {
    fn into_response(self) -> Response {
        let shown = Shown::of(self.0, field_name);
        let (key, message) = match shown.status.as_u16() {
            400 => ("invalid_payload", "Invalid payload"),
            401 => ("unauthorized", "Unauthorized"),
            403 => ("forbidden", "Forbidden"),
            404 => ("not_found", "Resource not found"),
            405 => ("method_not_allowed", "Method not allowed"),
            409 => ("duplicate_found", "Duplicate resource"),
            413 => ("payload_too_large", "Payload too large"),
            429 => ("too_many_requests", "Too many requests"),
            503 => ("service_unavailable", "Service unavailable"),
            _ => ("internal_error", "Internal error"),
        };
        let body = VoucherifyErrorBody {
            code: shown.status.as_u16(),
            key,
            message: message.to_owned(),
            details: shown.message.clone(),
        };
        let mut resp = (shown.status, Json(body)).into_response();
        shown.add_headers(&mut resp);
        resp
    }
}

type Answer<T> = Result<T, VoucherifyError>;

const ID_PREFIX: &str = "wh_";
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Base 62 digits of any u64 (62^11 > 2^64).
const ID_DIGITS: usize = 11;
/// An odd multiplier (a bijection of u64) and a mask: ids look like the
/// product's, not like a counter, yet map back without a lookup.
const MIX_MUL: u64 = 0x9E37_79B9_7F4A_7C15;
const MIX_XOR: u64 = 0x5DEE_CE66_D1CE_4E5B;

/// The multiplicative inverse of an odd `a` modulo 2^64 (Newton's method).
const fn inverse(a: u64) -> u64 {
    let mut x = a;
    let mut i = 0;
    while i < 6 {
        x = x.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(x)));
        i += 1;
    }
    x
}

/// `wh_` + 11 base-62 digits of hookd's id, mixed.
pub fn webhook_id_of(id: i64) -> String {
    let mut n = (id as u64 ^ MIX_XOR).wrapping_mul(MIX_MUL);
    let mut digits = [b'0'; ID_DIGITS];
    for d in digits.iter_mut().rev() {
        *d = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    format!(
        "{ID_PREFIX}{}",
        std::str::from_utf8(&digits).expect("ASCII")
    )
}

/// hookd's id of a `wh_` id (`None`: it names no webhook).
pub fn id_of_webhook(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(ID_PREFIX)?;
    if digits.len() != ID_DIGITS {
        return None;
    }
    let mut n: u64 = 0;
    for c in digits.bytes() {
        let d = ALPHABET.iter().position(|a| *a == c)? as u64;
        n = n.checked_mul(62)?.checked_add(d)?;
    }
    let id = n.wrapping_mul(inverse(MIX_MUL)) ^ MIX_XOR;
    i64::try_from(id).ok().filter(|id| *id > 0)
}

/// ISO 8601 with milliseconds, UTC: `2024-04-30T08:13:55.789Z`.
pub fn format_millis(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    format!(
        "{}.{:03}Z",
        t.format(&f).unwrap_or_default(),
        ms.rem_euclid(1000)
    )
}

/// Who calls, on which project: both headers or 401; the id must name the
/// token's key (`management` for a management key); another tenant's key
/// 404; 403 without `permission`.
async fn tenant_for(
    state: &AppState,
    client: Option<ClientId>,
    headers: &HeaderMap,
    project: &str,
    permission: Permission,
) -> Result<String, Refusal> {
    let (Some(id), Some(token)) = (
        header(headers, "x-management-id"),
        header(headers, "x-management-token"),
    ) else {
        return Err(Refusal::Unauthenticated(
            "X-Management-Id and X-Management-Token are required",
        ));
    };
    let tenant = tenant_named(project, "projectId")?;
    let principal = principal_for(state, client, Some(token), &tenant, "project").await;
    let principal = match principal {
        // A token whose id does not match is no credential at all.
        Ok(p) if !id_names(id, &p) => Err(Refusal::Unauthenticated(
            "X-Management-Id does not name this token",
        )),
        other => other,
    }?;
    require(&principal, permission)?;
    Ok(tenant)
}

fn id_names(id: &str, principal: &Principal) -> bool {
    match principal {
        Principal::Bootstrap { .. } => id == "management",
        Principal::ApiKey { id: key_id, .. } => id == key_id.to_string(),
    }
}

fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, Refusal> {
    p.map(|Path(v)| v)
        .map_err(|e| Refusal::malformed("path", e.body_text()))
}

fn webhook_id(s: &str) -> Result<i64, Refusal> {
    id_of_webhook(s).ok_or(Refusal::Op(OpError::NotFound("webhook")))
}

impl From<Webhook> for WebhookResponse {
    fn from(w: Webhook) -> Self {
        WebhookResponse {
            object: "webhook",
            created_at: format_millis(w.created_at),
            id: webhook_id_of(w.id),
            events: w.events,
            target_url: w.url,
            active: w.enabled,
        }
    }
}

#[utoipa::path(
    post, path = "/management/v1/projects/{projectId}/webhooks", tag = TAG,
    params(("projectId" = String, Path, description = "The tenant")),
    request_body = WebhookCreateRequest,
    responses(
        (status = 200, body = WebhookResponse),
        (status = 400, body = VoucherifyErrorBody),
        (status = 401, body = VoucherifyErrorBody),
        (status = 403, body = VoucherifyErrorBody),
        (status = 404, body = VoucherifyErrorBody),
    ),
    security(("management_id" = [], "management_token" = []))
)]
pub async fn create_webhook(
    State(state): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    Client(client): Client,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer<Json<WebhookResponse>> {
    let tenant = tenant_for(
        &state,
        client,
        &headers,
        &path(p)?,
        Permission::WebhooksWrite,
    )
    .await?;
    let input: WebhookCreateRequest = read_json(body, &state)?;
    let new = NewWebhook {
        // The document has no name; the URL names the webhook elsewhere.
        name: match input.target_url.trim() {
            "" => "webhook".to_owned(),
            url => url.chars().take(128).collect(),
        },
        url: input.target_url,
        events: input.events,
        enabled: input.active,
        ..NewWebhook::default()
    };
    let now = state.clock.now_ms();
    let (created, _secret) = ops::create_webhook(&state.ops, &tenant, new, now).await?;
    Ok(Json(created.into()))
}

#[utoipa::path(
    get, path = "/management/v1/projects/{projectId}/webhooks", tag = TAG,
    params(("projectId" = String, Path)),
    responses(
        (status = 200, body = WebhookListResponse),
        (status = 401, body = VoucherifyErrorBody),
        (status = 403, body = VoucherifyErrorBody),
        (status = 404, body = VoucherifyErrorBody),
    ),
    security(("management_id" = [], "management_token" = []))
)]
pub async fn list_webhooks(
    State(state): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    Client(client): Client,
    headers: HeaderMap,
) -> Answer<Json<WebhookListResponse>> {
    let tenant = tenant_for(
        &state,
        client,
        &headers,
        &path(p)?,
        Permission::WebhooksList,
    )
    .await?;
    let page =
        ops::list_webhooks(&state.ops, &tenant, WebhookFilter::default(), 0, LIST_LIMIT).await?;
    Ok(Json(WebhookListResponse {
        object: "list",
        data_ref: "data",
        data: page.items.into_iter().map(Into::into).collect(),
        total: page.total,
    }))
}

#[utoipa::path(
    get, path = "/management/v1/projects/{projectId}/webhooks/{webhookId}", tag = TAG,
    params(("projectId" = String, Path), ("webhookId" = String, Path)),
    responses(
        (status = 200, body = WebhookResponse),
        (status = 401, body = VoucherifyErrorBody),
        (status = 403, body = VoucherifyErrorBody),
        (status = 404, body = VoucherifyErrorBody),
    ),
    security(("management_id" = [], "management_token" = []))
)]
pub async fn get_webhook(
    State(state): State<AppState>,
    p: Result<Path<(String, String)>, PathRejection>,
    Client(client): Client,
    headers: HeaderMap,
) -> Answer<Json<WebhookResponse>> {
    let (project, webhook) = path(p)?;
    let tenant = tenant_for(&state, client, &headers, &project, Permission::WebhooksRead).await?;
    let w = ops::get_webhook(&state.ops, &tenant, webhook_id(&webhook)?).await?;
    Ok(Json(w.into()))
}

async fn change_webhook(
    state: AppState,
    p: Result<Path<(String, String)>, PathRejection>,
    client: Option<ClientId>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer<Json<WebhookResponse>> {
    let (project, webhook) = path(p)?;
    let tenant = tenant_for(
        &state,
        client,
        &headers,
        &project,
        Permission::WebhooksWrite,
    )
    .await?;
    let id = webhook_id(&webhook)?;
    let input: WebhookUpdateRequest = read_json(body, &state)?;
    let changes = WebhookChanges {
        url: input.target_url,
        events: input.events,
        enabled: input.active,
        ..WebhookChanges::default()
    };
    let now = state.clock.now_ms();
    let w = ops::update_webhook(&state.ops, &tenant, id, &changes, now).await?;
    Ok(Json(w.into()))
}

#[utoipa::path(
    post, path = "/management/v1/projects/{projectId}/webhooks/{webhookId}", tag = TAG,
    description = "Updates the fields given.",
    params(("projectId" = String, Path), ("webhookId" = String, Path)),
    request_body = WebhookUpdateRequest,
    responses(
        (status = 200, body = WebhookResponse),
        (status = 400, body = VoucherifyErrorBody),
        (status = 401, body = VoucherifyErrorBody),
        (status = 403, body = VoucherifyErrorBody),
        (status = 404, body = VoucherifyErrorBody),
    ),
    security(("management_id" = [], "management_token" = []))
)]
pub async fn update_webhook(
    State(state): State<AppState>,
    p: Result<Path<(String, String)>, PathRejection>,
    Client(client): Client,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer<Json<WebhookResponse>> {
    change_webhook(state, p, client, headers, body).await
}

#[utoipa::path(
    put, path = "/management/v1/projects/{projectId}/webhooks/{webhookId}", tag = TAG,
    description = "The same as `POST` on this path.",
    params(("projectId" = String, Path), ("webhookId" = String, Path)),
    request_body = WebhookUpdateRequest,
    responses(
        (status = 200, body = WebhookResponse),
        (status = 400, body = VoucherifyErrorBody),
        (status = 401, body = VoucherifyErrorBody),
        (status = 403, body = VoucherifyErrorBody),
        (status = 404, body = VoucherifyErrorBody),
    ),
    security(("management_id" = [], "management_token" = []))
)]
pub async fn put_webhook(
    State(state): State<AppState>,
    p: Result<Path<(String, String)>, PathRejection>,
    Client(client): Client,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer<Json<WebhookResponse>> {
    change_webhook(state, p, client, headers, body).await
}

#[utoipa::path(
    delete, path = "/management/v1/projects/{projectId}/webhooks/{webhookId}", tag = TAG,
    params(("projectId" = String, Path), ("webhookId" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = VoucherifyErrorBody),
        (status = 403, body = VoucherifyErrorBody),
        (status = 404, body = VoucherifyErrorBody),
    ),
    security(("management_id" = [], "management_token" = []))
)]
pub async fn delete_webhook(
    State(state): State<AppState>,
    p: Result<Path<(String, String)>, PathRejection>,
    Client(client): Client,
    headers: HeaderMap,
) -> Answer<StatusCode> {
    let (project, webhook) = path(p)?;
    let tenant = tenant_for(
        &state,
        client,
        &headers,
        &project,
        Permission::WebhooksWrite,
    )
    .await?;
    ops::delete_webhook(
        &state.ops,
        &tenant,
        webhook_id(&webhook)?,
        state.clock.now_ms(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_ids_map_back_to_hookd_ids() {
        for id in [1, 2, 3, 42, 1_000_000, i64::MAX] {
            let s = webhook_id_of(id);
            assert!(s.starts_with("wh_") && s.len() == 14, "{s}");
            assert!(s[3..].bytes().all(|c| c.is_ascii_alphanumeric()), "{s}");
            assert_eq!(id_of_webhook(&s), Some(id), "{s}");
        }
        assert_ne!(webhook_id_of(1)[3..8], webhook_id_of(2)[3..8]);
    }

    #[test]
    fn other_strings_name_no_webhook() {
        for s in [
            "1",
            "wh_",
            "wh_1",
            "wh_ekFHVL6lqC4lDuIFxpETSGa3",
            "wh_zzzzzzzzzzz",
            "wh_0000000000!",
        ] {
            assert_eq!(id_of_webhook(s), None, "{s}");
        }
    }

    #[test]
    fn created_at_has_milliseconds() {
        assert_eq!(format_millis(1_714_464_835_789), "2024-04-30T08:13:55.789Z");
        assert_eq!(format_millis(1_714_464_835_000), "2024-04-30T08:13:55.000Z");
    }
}
