//! `/management/deliveries`: the delivery log, each delivery's attempts,
//! and manual retry.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiPath, Auth, Params};
use crate::clock::{format_rfc3339, parse_rfc3339};
use crate::domain::api_key::Permission;
use crate::domain::delivery::DeliveryStatus;
use crate::ops::deliveries as ops;
use crate::state::AppState;
use crate::store::{AttemptRow, DeliveryFilter, DeliveryRecord};

/// A delivery: one event to one webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryOut {
    pub id: i64,
    pub event_id: String,
    pub event_type: String,
    pub webhook_id: i64,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempt_count: u32,
    /// The status code of the last answer, if any.
    pub response_status: Option<u16>,
    pub last_error: Option<String>,
    /// When the next attempt is due (pending and retrying deliveries).
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<DeliveryRecord> for DeliveryOut {
    fn from(d: DeliveryRecord) -> Self {
        Self {
            id: d.id,
            event_id: d.event_id,
            event_type: d.event_type,
            webhook_id: d.webhook_id,
            attempt_count: d.attempts,
            response_status: d.last_status_code,
            last_error: d.last_error,
            next_attempt_at: (!d.status.is_terminal())
                .then_some(d.next_attempt_at)
                .flatten()
                .map(format_rfc3339),
            status: d.status,
            created_at: format_rfc3339(d.created_at),
            updated_at: format_rfc3339(d.updated_at),
        }
    }
}

/// One attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptOut {
    pub id: i64,
    pub attempted_at: String,
    pub duration_ms: i64,
    pub url: String,
    /// The request's headers; custom header values are redacted.
    #[schema(value_type = Object)]
    pub request_headers: serde_json::Value,
    pub response_status: Option<u16>,
    #[schema(value_type = Option<Object>)]
    pub response_headers: Option<serde_json::Value>,
    /// The first 64 KiB of the answer.
    pub response_body: Option<String>,
    /// timeout | connect | dns | tls | blocked | http_status
    pub error_kind: Option<String>,
    pub error: Option<String>,
}

impl From<AttemptRow> for AttemptOut {
    fn from(a: AttemptRow) -> Self {
        let json = |s: &str| serde_json::from_str(s).unwrap_or(serde_json::Value::Null);
        Self {
            id: a.id,
            attempted_at: format_rfc3339(a.attempted_at),
            duration_ms: a.duration_ms,
            url: a.url,
            request_headers: json(&a.request_headers),
            response_status: a.response_status,
            response_headers: a.response_headers.as_deref().map(json),
            response_body: a.response_body,
            error_kind: a.error_kind,
            error: a.error,
        }
    }
}

/// A delivery with every attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: DeliveryOut,
    pub attempts: Vec<AttemptOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    pub data: Vec<DeliveryOut>,
    /// Pass as `cursor` for the next (older) page; `null` at the end.
    pub next_cursor: Option<String>,
}

/// `cursor` and `limit` of a cursor-paginated log.
pub(super) fn cursor_page(params: &Params) -> Result<(Option<i64>, u64), ApiError> {
    let before = match params.string("cursor") {
        None => None,
        Some(c) => Some(
            c.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ApiError::field("cursor", "is not a cursor this API returned"))?,
        ),
    };
    let limit = params.int("limit", 1, 500)?.unwrap_or(50) as u64;
    Ok((before, limit))
}

pub(super) fn parse_time(params: &Params, name: &str) -> Result<Option<i64>, ApiError> {
    params
        .string(name)
        .map(|s| parse_rfc3339(&s).map_err(|m| ApiError::field(name, m)))
        .transpose()
}

#[utoipa::path(
    get, path = "/management/deliveries", tag = "deliveries",
    params(
        ("webhook_id" = Option<i64>, Query), ("event_type" = Option<String>, Query),
        ("status" = Option<String>, Query, description = "pending | succeeded | retrying | failed | diverted (diverted also lists failed ones)"),
        ("since" = Option<String>, Query, description = "RFC 3339"), ("until" = Option<String>, Query, description = "RFC 3339"),
        ("cursor" = Option<String>, Query), ("limit" = Option<u64>, Query, description = "1–500, default 50"),
    ),
    responses((status = 200, body = DeliveryList), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []))
)]
pub async fn list_deliveries(
    State(state): State<AppState>,
    auth: Auth,
    params: Params,
) -> ApiResult<Json<DeliveryList>> {
    let tenant = auth.require(Permission::DeliveriesRead)?;
    let (before, limit) = cursor_page(&params)?;
    let status = match params.string("status") {
        None => None,
        Some(s) => Some(DeliveryStatus::parse(&s).ok_or_else(|| {
            ApiError::field(
                "status",
                "must be one of pending, succeeded, retrying, failed, diverted",
            )
        })?),
    };
    let filter = DeliveryFilter {
        webhook_id: params.int("webhook_id", 1, i64::MAX)?,
        event_type: params.string("event_type"),
        status,
        event_id: params.string("event_id"),
        since: parse_time(&params, "since")?,
        until: parse_time(&params, "until")?,
    };
    let page = ops::list_deliveries(&state.ops, tenant, &filter, before, limit).await?;
    Ok(Json(DeliveryList {
        data: page.items.into_iter().map(DeliveryOut::from).collect(),
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}

#[utoipa::path(
    get, path = "/management/deliveries/{id}", tag = "deliveries",
    params(("id" = i64, Path)),
    responses((status = 200, body = DeliveryDetail), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn get_delivery(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<DeliveryDetail>> {
    let tenant = auth.require(Permission::DeliveriesRead)?;
    let (delivery, attempts) = ops::get_delivery(&state.ops, tenant, id).await?;
    Ok(Json(DeliveryDetail {
        delivery: delivery.into(),
        attempts: attempts.into_iter().map(AttemptOut::from).collect(),
    }))
}

#[utoipa::path(
    post, path = "/management/deliveries/{id}/retry", tag = "deliveries",
    description = "Attempts the delivery again now, with a fresh retry schedule, whatever its status.",
    params(("id" = i64, Path)),
    responses((status = 202, body = DeliveryOut), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, description = "An attempt is under way", body = Problem)),
    security(("bearer" = []))
)]
pub async fn retry_delivery(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<(StatusCode, Json<DeliveryOut>)> {
    let tenant = auth.require(Permission::DeliveriesWrite)?;
    let d = ops::retry_delivery(&state.ops, tenant, id, state.clock.now_ms()).await?;
    Ok((StatusCode::ACCEPTED, Json(d.into())))
}
