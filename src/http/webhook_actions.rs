//! Actions on a webhook's deliveries: a test send, an event type's example,
//! and recovery of what failed or was diverted.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, Problem};
use super::events::PublishedOut;
use super::extract::{ApiJson, ApiPath, Auth};
use crate::clock::parse_rfc3339;
use crate::domain::api_key::Permission;
use crate::ops::webhook_actions as ops;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverIn {
    /// Re-queue failed and diverted deliveries created at or after this instant (RFC 3339).
    pub since: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendExampleIn {
    /// A type of the tenant's catalogue (404 if it is not there) that has
    /// an example (409 if it has none).
    #[schema(example = "invoice.paid")]
    pub event_type: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecoverOut {
    /// How many deliveries were re-queued.
    pub requeued: u64,
}

#[utoipa::path(
    post, path = "/management/webhooks/{id}/test", tag = "webhooks",
    description = "Publishes a `webhook.test` event to this webhook only, now, whatever its subscriptions.",
    params(("id" = i64, Path)),
    responses((status = 202, body = PublishedOut), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = []))
)]
pub async fn test_webhook(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<(StatusCode, Json<PublishedOut>)> {
    let tenant = auth.require(Permission::WebhooksWrite)?;
    let now = state.clock.now_ms();
    let published = ops::send_test_event(&state.ops, tenant, id, now).await?;
    Ok((StatusCode::ACCEPTED, Json(published.into())))
}

#[utoipa::path(
    post, path = "/management/webhooks/{id}/send-example", tag = "webhooks",
    description = "Publishes the example of an event type to this webhook only, now, whatever its subscriptions.",
    params(("id" = i64, Path)),
    request_body = SendExampleIn,
    responses((status = 202, body = PublishedOut),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, description = "No such webhook, or no such type in the tenant's catalogue", body = Problem),
        (status = 409, description = "The type has no example (set one with `PATCH /management/event-types/{name}`)", body = Problem),
        (status = 503, body = Problem)),
    security(("bearer" = []))
)]
pub async fn send_example(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<SendExampleIn>,
) -> ApiResult<(StatusCode, Json<PublishedOut>)> {
    let tenant = auth.require(Permission::WebhooksWrite)?;
    let now = state.clock.now_ms();
    let published = ops::send_example(&state.ops, tenant, id, &input.event_type, now).await?;
    Ok((StatusCode::ACCEPTED, Json(published.into())))
}

#[utoipa::path(
    post, path = "/management/webhooks/{id}/recover", tag = "webhooks",
    description = "Re-queues the webhook's failed and diverted deliveries created since `since`, with fresh schedules.",
    params(("id" = i64, Path)),
    request_body = RecoverIn,
    responses((status = 202, body = RecoverOut), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn recover_webhook(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<RecoverIn>,
) -> ApiResult<(StatusCode, Json<RecoverOut>)> {
    let tenant = auth.require(Permission::WebhooksWrite)?;
    let since = parse_rfc3339(&input.since).map_err(|m| ApiError::field("since", m))?;
    let now = state.clock.now_ms();
    let requeued = ops::recover_webhook(&state.ops, tenant, id, since, now).await?;
    Ok((StatusCode::ACCEPTED, Json(RecoverOut { requeued })))
}
