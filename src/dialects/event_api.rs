//! Seed 004's webhook API: `/event/{tenantLocator}/webhooks` — create,
//! list (`…/list`), get, PATCH (removals first, then additions),
//! `…/{webhookLocator}/unsuspend` (PATCH), delete.
//!
//! `tenantLocator` is a UUID and names the tenant (lowercased); a
//! webhook's `locator` is hookd's id in decimal. The key comes as §2's
//! bearer; `read`, `list`, `write` are `webhooks:read`, `webhooks:list`,
//! `webhooks:write`. Errors are `EventApiError`'s shape, made in one
//! place (`IntoResponse for EventApiError`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};

use crate::throttle::{Client, ClientId};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Query, Refusal, Shown, bearer, decimal_id, principal_for, read_json, require};
use crate::clock::format_rfc3339;
use crate::domain::api_key::Permission;
use crate::domain::duration::format_duration_ms;
use crate::domain::webhook::{Headers, Webhook};
use crate::ops::OpError;
use crate::ops::webhooks::{self as ops, FailureHandlingInput, NewWebhook, WebhookChanges};
use crate::state::AppState;
use crate::store::WebhookFilter;

pub const TAG: &str = "seed-004-event-api";

/// When a failing webhook is suspended (§6).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = EventApiFailureHandlingRequest)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FailureHandlingRequest {
    /// Failed attempts before the webhook may be suspended.
    #[serde(deserialize_with = "crate::http::extract::whole_number")]
    pub min_failures: i64,
    /// Time without a success before suspension, e.g. `5d`.
    pub suspend_after: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = EventApiCreateEndpointRequest)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpointRequest {
    pub url: String,
    pub headers: Option<Headers>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = EventApiCreateWebhookRequest)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateWebhookRequest {
    pub name: String,
    /// Default true.
    pub enabled: Option<bool>,
    pub endpoint: CreateEndpointRequest,
    pub failure_handling: Option<FailureHandlingRequest>,
    pub event_types: Vec<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = EventApiUpdateEndpointRequest)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateEndpointRequest {
    pub url: Option<String>,
    pub add_headers: Option<Headers>,
    pub remove_headers: Option<Vec<String>>,
}

/// Only the fields given change; removals happen first, then additions.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = EventApiUpdateWebhookRequest)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateWebhookRequest {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub endpoint: Option<UpdateEndpointRequest>,
    pub failure_handling: Option<FailureHandlingRequest>,
    pub remove_failure_handling: Option<bool>,
    pub add_event_types: Option<Vec<String>>,
    pub remove_event_types: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EventApiEndpointResponse)]
pub struct EndpointResponse {
    pub url: String,
    pub headers: Headers,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EventApiFailureHandlingResponse)]
#[serde(rename_all = "camelCase")]
pub struct FailureHandlingResponse {
    pub min_failures: u32,
    pub suspend_after: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EventApiWebhookResponse)]
#[serde(rename_all = "camelCase")]
pub struct WebhookResponse {
    /// hookd's webhook id, in decimal.
    pub locator: String,
    pub name: String,
    pub enabled: bool,
    pub endpoint: EndpointResponse,
    /// `null`: the service defaults apply.
    pub failure_handling: Option<FailureHandlingResponse>,
    pub suspended: bool,
    /// RFC 3339 UTC; `null` unless suspended.
    pub suspended_at: Option<String>,
    pub event_types: Vec<String>,
}

/// This API's error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventApiErrorBody {
    /// The HTTP status.
    pub status: u16,
    /// Its reason phrase.
    pub error: String,
    /// Every problem, fields named.
    pub message: String,
    /// The fields at fault (this API's names), if any.
    pub errors: Vec<EventApiFieldError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventApiFieldError {
    pub field: String,
    pub message: String,
}

/// A refusal in this API's shape.
#[derive(Debug)]
pub struct EventApiError(Refusal);

impl From<Refusal> for EventApiError {
    fn from(e: Refusal) -> Self {
        EventApiError(e)
    }
}

impl From<OpError> for EventApiError {
    fn from(e: OpError) -> Self {
        EventApiError(e.into())
    }
}

/// hookd's field names as this API names them.
fn field_name(field: &str) -> String {
    match field {
        "url" => "endpoint.url",
        "headers" => "endpoint.headers",
        "events" => "eventTypes",
        "add_events" => "addEventTypes",
        "add_headers" => "endpoint.addHeaders",
        "failure_handling" => "failureHandling",
        other => other,
    }
    .to_owned()
}

/// The one place a refusal becomes this API's answer.
impl IntoResponse for EventApiError {
    fn into_response(self) -> Response {
        let mut shown = Shown::of(self.0, field_name);
        let fields = std::mem::take(&mut shown.fields);
        let body = EventApiErrorBody {
            status: shown.status.as_u16(),
            error: shown
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_owned(),
            message: shown.message.clone(),
            errors: fields
                .into_iter()
                .map(|(field, message)| EventApiFieldError { field, message })
                .collect(),
        };
        let status = shown.status;
        let mut resp = (status, Json(body)).into_response();
        shown.add_headers(&mut resp);
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

type Answer<T> = Result<T, EventApiError>;

/// The tenant a `tenantLocator` names: a UUID, used as written (tenant ids
/// are compared exactly on every surface, so one spelling is one tenant
/// everywhere: `X-Tenant-Id`, API keys, the other seeds' APIs).
pub fn tenant_of_locator(locator: &str) -> Result<String, String> {
    let b = locator.as_bytes();
    let ok = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    if ok {
        Ok(locator.to_owned())
    } else {
        Err(format!("{locator:?} is not a UUID"))
    }
}

/// Who calls, on which tenant: 401 without a known key, 400 for a
/// malformed locator, 404 for another tenant's key, 403 without
/// `permission`.
async fn tenant_for(
    state: &AppState,
    client: Option<ClientId>,
    headers: &HeaderMap,
    locator: &str,
    permission: Permission,
) -> Result<String, Refusal> {
    let key = bearer(headers).ok_or(Refusal::Unauthenticated(
        "an API key is required: send Authorization: Bearer <key>",
    ))?;
    let tenant = tenant_of_locator(locator).map_err(|m| Refusal::malformed("tenantLocator", m))?;
    let principal = principal_for(state, client, Some(key), &tenant, "tenant").await?;
    require(&principal, permission)?;
    Ok(tenant)
}

fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, Refusal> {
    p.map(|Path(v)| v)
        .map_err(|e| Refusal::malformed("path", e.body_text()))
}

fn webhook_id(locator: &str) -> Result<i64, Refusal> {
    decimal_id(locator).ok_or(Refusal::Op(OpError::NotFound("webhook")))
}

fn failure_handling(f: FailureHandlingRequest) -> FailureHandlingInput {
    FailureHandlingInput {
        min_failures: f.min_failures,
        suspend_after: f.suspend_after,
    }
}

impl From<CreateWebhookRequest> for NewWebhook {
    fn from(r: CreateWebhookRequest) -> Self {
        NewWebhook {
            name: r.name,
            url: r.endpoint.url,
            events: r.event_types,
            enabled: r.enabled,
            headers: r.endpoint.headers,
            failure_handling: r.failure_handling.map(failure_handling),
            ..NewWebhook::default()
        }
    }
}

impl From<UpdateWebhookRequest> for WebhookChanges {
    fn from(r: UpdateWebhookRequest) -> Self {
        let endpoint = r.endpoint.unwrap_or_default();
        // Removal first, then addition: a new value given beside
        // `removeFailureHandling` wins.
        let failure_handling = match (r.failure_handling, r.remove_failure_handling) {
            (Some(f), _) => Some(Some(failure_handling(f))),
            (None, Some(true)) => Some(None),
            (None, _) => None,
        };
        WebhookChanges {
            name: r.name,
            url: endpoint.url,
            enabled: r.enabled,
            failure_handling,
            add_events: r.add_event_types,
            remove_events: r.remove_event_types,
            add_headers: endpoint.add_headers,
            remove_headers: endpoint.remove_headers,
            ..WebhookChanges::default()
        }
    }
}

impl From<Webhook> for WebhookResponse {
    fn from(w: Webhook) -> Self {
        WebhookResponse {
            locator: w.id.to_string(),
            name: w.name,
            enabled: w.enabled,
            endpoint: EndpointResponse {
                url: w.url,
                headers: w.headers,
            },
            failure_handling: w.failure_handling.map(|f| FailureHandlingResponse {
                min_failures: f.min_failures,
                suspend_after: format_duration_ms(f.suspend_after_ms),
            }),
            suspended: w.suspended,
            suspended_at: w.suspended_at.map(format_rfc3339),
            event_types: w.events,
        }
    }
}

#[utoipa::path(
    post, path = "/event/{tenantLocator}/webhooks", tag = TAG,
    params(("tenantLocator" = String, Path, description = "A UUID naming the tenant")),
    request_body = CreateWebhookRequest,
    responses(
        (status = 200, body = WebhookResponse),
        (status = 400, body = EventApiErrorBody),
        (status = 401, body = EventApiErrorBody),
        (status = 403, body = EventApiErrorBody),
        (status = 404, body = EventApiErrorBody),
    ),
    security(("bearer" = []))
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
    let input: CreateWebhookRequest = read_json(body, &state)?;
    let now = state.clock.now_ms();
    let (created, _secret) = ops::create_webhook(&state.ops, &tenant, input.into(), now).await?;
    Ok(Json(created.into()))
}

#[utoipa::path(
    get, path = "/event/{tenantLocator}/webhooks/list", tag = TAG,
    description = "Filters combine with AND; `eventTypes` (repeated or comma-separated) matches webhooks receiving any of them; `active` is enabled and not suspended.",
    params(
        ("tenantLocator" = String, Path),
        ("offset" = Option<u64>, Query),
        ("count" = Option<u64>, Query, description = "1–500, default 50"),
        ("name" = Option<String>, Query, description = "Exactly this name"),
        ("enabled" = Option<bool>, Query),
        ("suspended" = Option<bool>, Query),
        ("active" = Option<bool>, Query),
        ("eventTypes" = Option<Vec<String>>, Query),
    ),
    responses(
        (status = 200, body = Vec<WebhookResponse>),
        (status = 400, body = EventApiErrorBody),
        (status = 401, body = EventApiErrorBody),
        (status = 403, body = EventApiErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_webhooks(
    State(state): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    Client(client): Client,
    headers: HeaderMap,
) -> Answer<Json<Vec<WebhookResponse>>> {
    let tenant = tenant_for(
        &state,
        client,
        &headers,
        &path(p)?,
        Permission::WebhooksList,
    )
    .await?;
    let q = Query::parse(query.as_deref())?;
    let offset = q.int("offset", 0, i64::MAX as u64)?.unwrap_or(0);
    let count = q.int("count", 1, 500)?.unwrap_or(50);
    let filter = WebhookFilter {
        name: q.string("name"),
        enabled: q.bool("enabled")?,
        suspended: q.bool("suspended")?,
        active: q.bool("active")?,
        any_event_type: q.all("eventTypes"),
        ..WebhookFilter::default()
    };
    let page = ops::list_webhooks(&state.ops, &tenant, filter, offset, count).await?;
    Ok(Json(page.items.into_iter().map(Into::into).collect()))
}

#[utoipa::path(
    get, path = "/event/{tenantLocator}/webhooks/{webhookLocator}", tag = TAG,
    params(("tenantLocator" = String, Path), ("webhookLocator" = String, Path)),
    responses(
        (status = 200, body = WebhookResponse),
        (status = 401, body = EventApiErrorBody),
        (status = 403, body = EventApiErrorBody),
        (status = 404, body = EventApiErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_webhook(
    State(state): State<AppState>,
    p: Result<Path<(String, String)>, PathRejection>,
    Client(client): Client,
    headers: HeaderMap,
) -> Answer<Json<WebhookResponse>> {
    let (tenant, webhook) = path(p)?;
    let tenant = tenant_for(&state, client, &headers, &tenant, Permission::WebhooksRead).await?;
    let w = ops::get_webhook(&state.ops, &tenant, webhook_id(&webhook)?).await?;
    Ok(Json(w.into()))
}

#[utoipa::path(
    patch, path = "/event/{tenantLocator}/webhooks/{webhookLocator}", tag = TAG,
    description = "Removals happen first, then additions: an item both removed and added is kept.",
    params(("tenantLocator" = String, Path), ("webhookLocator" = String, Path)),
    request_body = UpdateWebhookRequest,
    responses(
        (status = 200, body = WebhookResponse),
        (status = 400, body = EventApiErrorBody),
        (status = 401, body = EventApiErrorBody),
        (status = 403, body = EventApiErrorBody),
        (status = 404, body = EventApiErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn update_webhook(
    State(state): State<AppState>,
    p: Result<Path<(String, String)>, PathRejection>,
    Client(client): Client,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer<Json<WebhookResponse>> {
    let (tenant, webhook) = path(p)?;
    let tenant = tenant_for(&state, client, &headers, &tenant, Permission::WebhooksWrite).await?;
    let id = webhook_id(&webhook)?;
    let input: UpdateWebhookRequest = read_json(body, &state)?;
    let now = state.clock.now_ms();
    let w = ops::update_webhook(&state.ops, &tenant, id, &input.into(), now).await?;
    Ok(Json(w.into()))
}

#[utoipa::path(
    patch, path = "/event/{tenantLocator}/webhooks/{webhookLocator}/unsuspend", tag = TAG,
    params(("tenantLocator" = String, Path), ("webhookLocator" = String, Path)),
    responses(
        (status = 204, description = "Unsuspended"),
        (status = 401, body = EventApiErrorBody),
        (status = 403, body = EventApiErrorBody),
        (status = 404, body = EventApiErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn unsuspend_webhook(
    State(state): State<AppState>,
    p: Result<Path<(String, String)>, PathRejection>,
    Client(client): Client,
    headers: HeaderMap,
) -> Answer<StatusCode> {
    let (tenant, webhook) = path(p)?;
    let tenant = tenant_for(&state, client, &headers, &tenant, Permission::WebhooksWrite).await?;
    let now = state.clock.now_ms();
    ops::unsuspend_webhook(&state.ops, &tenant, webhook_id(&webhook)?, now).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete, path = "/event/{tenantLocator}/webhooks/{webhookLocator}", tag = TAG,
    params(("tenantLocator" = String, Path), ("webhookLocator" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = EventApiErrorBody),
        (status = 403, body = EventApiErrorBody),
        (status = 404, body = EventApiErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete_webhook(
    State(state): State<AppState>,
    p: Result<Path<(String, String)>, PathRejection>,
    Client(client): Client,
    headers: HeaderMap,
) -> Answer<StatusCode> {
    let (tenant, webhook) = path(p)?;
    let tenant = tenant_for(&state, client, &headers, &tenant, Permission::WebhooksWrite).await?;
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
    fn a_tenant_locator_is_a_uuid_taken_as_written() {
        assert_eq!(
            tenant_of_locator("AF5FBD30-7CE7-4548-8B30-4CD59CB2ABA1").unwrap(),
            "AF5FBD30-7CE7-4548-8B30-4CD59CB2ABA1"
        );
        assert!(tenant_of_locator("default").is_err());
        assert!(tenant_of_locator("af5fbd30a7ce7-4548-8b30-4cd59cb2aba1").is_err());
        assert!(tenant_of_locator("gf5fbd30-7ce7-4548-8b30-4cd59cb2aba1").is_err());
    }

    #[test]
    fn failure_handling_given_beside_its_removal_wins() {
        let r: UpdateWebhookRequest = serde_json::from_value(serde_json::json!({
            "removeFailureHandling": true,
            "failureHandling": {"minFailures": 3, "suspendAfter": "1h"}
        }))
        .unwrap();
        let c = WebhookChanges::from(r);
        assert_eq!(c.failure_handling.unwrap().unwrap().min_failures, 3);
        let r: UpdateWebhookRequest =
            serde_json::from_value(serde_json::json!({"removeFailureHandling": true})).unwrap();
        assert_eq!(WebhookChanges::from(r).failure_handling, Some(None));
    }
}
