//! Actions on a webhook's deliveries: a test send, and recovery of what
//! failed or was diverted.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ApiResult, Problem};
use super::events::{PublishedOut, publish_error};
use super::extract::{ApiJson, ApiPath, Auth};
use crate::clock::parse_rfc3339;
use crate::domain::api_key::Permission;
use crate::domain::delivery::NewEvent;
use crate::domain::event_type::TEST_EVENT_TYPE;
use crate::publish::new_event_id;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverIn {
    /// Re-queue failed and diverted deliveries created at or after this instant (RFC 3339).
    pub since: String,
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
    Ok((
        StatusCode::ACCEPTED,
        Json(send_test(&state, tenant, id).await?),
    ))
}

/// Publishes a `webhook.test` event to webhook `id` alone.
pub(crate) async fn send_test(state: &AppState, tenant: &str, id: i64) -> ApiResult<PublishedOut> {
    let webhook = state
        .store
        .get_webhook(tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    let now = state.clock.now_ms();
    let data = serde_json::json!({
        "webhook_id": webhook.id,
        "message": "This is a test event sent by hookd.",
    });
    let event = NewEvent {
        id: new_event_id(now),
        tenant_id: tenant.to_owned(),
        event_type: TEST_EVENT_TYPE.to_owned(),
        environment: webhook.environment.clone(),
        data: data.to_string(),
        idempotency_key: None,
        created_at: now,
        only_webhook: Some(webhook.id),
    };
    let mut results = state
        .publisher
        .publish(vec![event])
        .await
        .map_err(publish_error)?;
    Ok(results.remove(0).into())
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
    if state.store.get_webhook(tenant, id).await?.is_none() {
        return Err(ApiError::not_found("webhook"));
    }
    let requeued = state
        .store
        .recover_webhook(tenant, id, since, state.clock.now_ms())
        .await?;
    state.wake_dispatcher();
    tracing::info!(webhook.id = id, tenant = %tenant, requeued, "deliveries recovered");
    Ok((StatusCode::ACCEPTED, Json(RecoverOut { requeued })))
}
