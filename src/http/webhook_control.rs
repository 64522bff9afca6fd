//! Delivery control on the JSON API (SPEC §12): `POST
//! /management/webhooks/{id}/pause` and `…/resume`, and the schemas of the
//! `filter` and `ordering` fields of webhooks.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, Type};

use super::error::{ApiResult, Problem};
use super::extract::{ApiPath, Auth};
use super::webhooks::WebhookOut;
use crate::domain::api_key::Permission;
use crate::ops::webhook_control as ops;
use crate::state::AppState;

/// A payload filter: conditions on the event, ANDed. Each key is a path
/// (`type`, `data`, `data.a.b`; an array is entered element by element, a
/// numeric segment indexes it) or `$and` / `$or` (arrays of filters) or
/// `$not` (a filter). A path's value is a literal (equality) or an object
/// of operators: `$eq $neq $gt $gte $lt $lte $in $nin $exists $prefix`, and
/// `$not` around another such object. At most 256 conditions, 16 levels.
/// A wrong operator, operand or path is a 400 naming it
/// (`filter.data.amount.$gt`).
pub struct FilterDocument;

/// The keys a filter document may have (`domain::filter`'s paths: at most
/// 32 non-empty segments after `data`, and the three combinators).
const FILTER_KEY: &str = r"^(type|data(\.[^.]+){0,32}|\$and|\$or|\$not)$";

const FILTER_DESCRIPTION: &str = "A payload filter: conditions on the event, ANDed. Each key is a \
    path (`type`, `data`, `data.a.b`; an array is entered element by element, a numeric segment \
    indexes it) or `$and` / `$or` (arrays of filters) or `$not` (a filter). A path's value is a \
    literal (equality) or an object of operators: `$eq $neq $gt $gte $lt $lte $in $nin $exists \
    $prefix`, and `$not` around another such object. At most 256 conditions, 16 levels. A wrong \
    operator, operand or path is a 400 naming it (`filter.data.amount.$gt`).";

impl utoipa::PartialSchema for FilterDocument {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(FILTER_DESCRIPTION))
            .property_names(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(FILTER_KEY)),
            ))
            .additional_properties(Some(AdditionalProperties::FreeForm(true)))
            .min_properties(Some(1))
            .max_properties(Some(256))
            .examples([json!({"type": {"$prefix": "license."}, "data.plan": {"$in": ["pro", "team"]}, "data.seats": {"$gte": 10}})])
            .into()
    }
}

impl utoipa::ToSchema for FilterDocument {}

/// How a webhook's deliveries are ordered: `none` (concurrently) or
/// `fifo` (one at a time per `ordering_key`, in publish order, through
/// retries, restarts and instances).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // the schema of a field answered as a string
pub enum OrderingMode {
    None,
    Fifo,
}

#[utoipa::path(
    post, path = "/management/webhooks/{id}/pause", tag = "webhooks",
    description = "Pauses a webhook: its waiting and new deliveries stay `pending` (or `retrying`), \
        are not attempted and do not age into `failed`, until it is resumed. Pausing a paused \
        webhook changes nothing.",
    params(("id" = i64, Path)),
    responses((status = 200, body = WebhookOut), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn pause_webhook(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<WebhookOut>> {
    let tenant = auth.require(Permission::WebhooksWrite)?;
    let now = state.clock.now_ms();
    Ok(Json(
        ops::pause_webhook(&state.ops, tenant, id, now)
            .await?
            .into(),
    ))
}

#[utoipa::path(
    post, path = "/management/webhooks/{id}/resume", tag = "webhooks",
    description = "Resumes a paused webhook: its waiting deliveries go out in publish order, at \
        its rate limit (1,000 per second when it sets none).",
    params(("id" = i64, Path)),
    responses((status = 200, body = WebhookOut), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn resume_webhook(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<WebhookOut>> {
    let tenant = auth.require(Permission::WebhooksWrite)?;
    let now = state.clock.now_ms();
    Ok(Json(
        ops::resume_webhook(&state.ops, tenant, id, now)
            .await?
            .into(),
    ))
}
