//! Publishing (`/v1/events`) and the event log (`/management/events`).

use crate::domain::control::validate_ordering_key;
use crate::domain::operational::OPERATIONAL_PREFIX;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::deliveries::{DeliveryOut, cursor_page, parse_time};
use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiJson, ApiPath, Auth, Params};
use crate::clock::format_rfc3339;
use crate::domain::ValidationErrors;
use crate::domain::api_key::Permission;
use crate::domain::delivery::{NewEvent, PublishedEvent, validate_event_data};
use crate::domain::event_type::validate_event_type_name;
use crate::domain::webhook::validate_environment;
use crate::ops::events as ops;
use crate::publish::new_event_id;
use crate::state::AppState;
use crate::store::{EventFilter, EventRecord};

/// The most events one batch request may carry.
pub const MAX_BATCH: usize = 1_000;

/// An event to publish.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    #[serde(rename = "type")]
    #[schema(example = "license.activated")]
    pub event_type: String,
    /// Any JSON object, at most 128 levels deep; delivered as the body's `data`.
    #[schema(value_type = Object)]
    pub data: Box<serde_json::value::RawValue>,
    /// Default `production`.
    pub environment: Option<String>,
    /// Repeating a key within 24 h returns the first answer and creates nothing.
    pub idempotency_key: Option<String>,
    /// The queue this event joins at webhooks with `ordering: "fifo"`
    /// (absent: the webhook's one queue); ignored by other webhooks.
    #[schema(min_length = 1, max_length = 256)]
    pub ordering_key: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBatchIn {
    /// 1 to 1,000 events.
    pub events: Vec<EventIn>,
}

/// The answer to a publish.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublishedOut {
    #[schema(example = "evt_01JC3Y7Q4J3V8G7ZK2N5W0X9AB")]
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub created_at: String,
    /// How many deliveries the event made (one per subscribed webhook).
    pub deliveries: u32,
}

impl From<PublishedEvent> for PublishedOut {
    fn from(p: PublishedEvent) -> Self {
        Self {
            id: p.id,
            event_type: p.event_type,
            created_at: format_rfc3339(p.created_at),
            deliveries: p.deliveries,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublishedBatchOut {
    pub data: Vec<PublishedOut>,
}

/// An event in the log.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventOut {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub environment: String,
    #[schema(value_type = Object)]
    pub data: Box<serde_json::value::RawValue>,
    pub idempotency_key: Option<String>,
    pub created_at: String,
    pub delivery_count: u32,
    /// The event's deliveries (in `GET /management/events/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<Vec<DeliveryOut>>,
}

impl From<EventRecord> for EventOut {
    fn from(e: EventRecord) -> Self {
        Self {
            data: serde_json::value::RawValue::from_string(e.data).unwrap_or_else(|_| {
                serde_json::value::RawValue::from_string("{}".into()).expect("valid JSON")
            }),
            id: e.id,
            event_type: e.event_type,
            environment: e.environment,
            idempotency_key: e.idempotency_key,
            created_at: format_rfc3339(e.created_at),
            delivery_count: e.delivery_count,
            deliveries: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    pub data: Vec<EventOut>,
    pub next_cursor: Option<String>,
}

/// Checks one event and turns it into a `NewEvent`; `prefix` names it in errors.
fn validate_event(
    state: &AppState,
    tenant: &str,
    input: EventIn,
    header_key: Option<&str>,
    prefix: &str,
    errors: &mut ValidationErrors,
    now: i64,
) -> Option<NewEvent> {
    let field = |f: &str| format!("{prefix}{f}");
    let before = errors.0.len();
    // Any well-formed type is accepted: a type nobody subscribes to makes
    // no deliveries, which the answer's `deliveries: 0` shows.
    errors.check(&field("type"), validate_event_type_name(&input.event_type));
    errors.check(&field("data"), validate_event_data(input.data.get()));
    if input.event_type.starts_with(OPERATIONAL_PREFIX) {
        errors.add(
            field("type"),
            "the hookd category is reserved for hookd's own operational events",
        );
    }
    if let Some(k) = &input.ordering_key {
        errors.check(&field("ordering_key"), validate_ordering_key(k));
    }
    let environment = input
        .environment
        .unwrap_or_else(|| state.ops.settings.default_environment().to_owned());
    errors.check(
        &field("environment"),
        validate_environment(&environment, &state.ops.settings.environments),
    );
    let key = match (input.idempotency_key, header_key) {
        (Some(body), Some(header)) if body != header => {
            errors.add(
                field("idempotency_key"),
                "differs from the Idempotency-Key header",
            );
            None
        }
        (Some(k), _) => Some(k),
        (None, h) => h.map(str::to_owned),
    };
    if let Some(k) = &key
        && (k.is_empty() || k.len() > 255)
    {
        errors.add(field("idempotency_key"), "must be 1 to 255 characters");
    }
    if errors.0.len() > before {
        return None;
    }
    Some(NewEvent {
        id: new_event_id(now),
        tenant_id: tenant.to_owned(),
        event_type: input.event_type,
        environment,
        data: input.data.get().to_owned(),
        idempotency_key: key,
        created_at: now,
        only_webhook: None,
        ordering_key: input.ordering_key,
    })
}

/// Checks each event's `data` against its type's schema, if the type has
/// one (a type without costs a cached lookup). `prefix(i)` names event `i`.
async fn check_schemas(
    state: &AppState,
    tenant: &str,
    events: &[NewEvent],
    prefix: impl Fn(usize) -> String,
    now: i64,
) -> ApiResult<()> {
    let mut errors = ValidationErrors::new();
    for (i, e) in events.iter().enumerate() {
        let schema = state
            .ops
            .schemas
            .schema_for(state.ops.store.as_ref(), tenant, &e.event_type, now)
            .await
            .map_err(crate::ops::OpError::from)?;
        if let Some(schema) = schema
            && let Err(v) = schema.check_text(&e.data)
        {
            errors.add(
                format!("{}data", prefix(i)),
                format!("does not match the schema of {}: {v}", e.event_type),
            );
        }
    }
    Ok(errors.into_result()?)
}

fn idempotency_header(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::field("Idempotency-Key", "must be visible ASCII"))
        })
        .transpose()
}

#[utoipa::path(
    post, path = "/v1/events", tag = "events",
    request_body = EventIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same as the body's idempotency_key")),
    responses(
        (status = 202, description = "Stored with all its deliveries", body = PublishedOut),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 413, body = Problem), (status = 503, description = "Not stored; retry", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn publish_event(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    ApiJson(input): ApiJson<EventIn>,
) -> ApiResult<(StatusCode, Json<PublishedOut>)> {
    let tenant = auth.require(Permission::EventsPublish)?;
    let now = state.clock.now_ms();
    let mut errors = ValidationErrors::new();
    let event = validate_event(
        &state,
        tenant,
        input,
        idempotency_header(&headers)?,
        "",
        &mut errors,
        now,
    );
    errors.into_result()?;
    let event = event.expect("no errors");
    check_schemas(
        &state,
        tenant,
        std::slice::from_ref(&event),
        |_| String::new(),
        now,
    )
    .await?;
    let mut results = state.ops.publisher.publish(vec![event]).await?;
    Ok((StatusCode::ACCEPTED, Json(results.remove(0).into())))
}

#[utoipa::path(
    post, path = "/v1/events/batch", tag = "events",
    request_body = EventBatchIn,
    responses(
        (status = 202, description = "All stored with their deliveries, answers in request order", body = PublishedBatchOut),
        (status = 400, description = "Nothing stored", body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 413, body = Problem), (status = 503, body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn publish_batch(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(input): ApiJson<EventBatchIn>,
) -> ApiResult<(StatusCode, Json<PublishedBatchOut>)> {
    let tenant = auth.require(Permission::EventsPublish)?;
    if input.events.is_empty() || input.events.len() > MAX_BATCH {
        return Err(ApiError::field(
            "events",
            format!("must hold 1 to {MAX_BATCH} events"),
        ));
    }
    let now = state.clock.now_ms();
    let mut errors = ValidationErrors::new();
    let mut events = Vec::with_capacity(input.events.len());
    for (i, e) in input.events.into_iter().enumerate() {
        if let Some(ev) = validate_event(
            &state,
            tenant,
            e,
            None,
            &format!("events[{i}]."),
            &mut errors,
            now,
        ) {
            events.push(ev);
        }
    }
    errors.into_result()?;
    check_schemas(&state, tenant, &events, |i| format!("events[{i}]."), now).await?;
    let results = state.ops.publisher.publish(events).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(PublishedBatchOut {
            data: results.into_iter().map(PublishedOut::from).collect(),
        }),
    ))
}

#[utoipa::path(
    get, path = "/management/events/{id}", tag = "events",
    params(("id" = String, Path, description = "evt_…")),
    responses((status = 200, body = EventOut), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn get_event(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<EventOut>> {
    let tenant = auth.require(Permission::DeliveriesRead)?;
    let (event, deliveries) = ops::get_event(&state.ops, tenant, id).await?;
    let mut out = EventOut::from(event);
    out.deliveries = Some(deliveries.into_iter().map(DeliveryOut::from).collect());
    Ok(Json(out))
}

#[utoipa::path(
    get, path = "/management/events", tag = "events",
    params(
        ("event_type" = Option<String>, Query), ("since" = Option<String>, Query, description = "RFC 3339"),
        ("until" = Option<String>, Query, description = "RFC 3339"), ("cursor" = Option<String>, Query),
        ("limit" = Option<u64>, Query, description = "1–500, default 50"),
    ),
    responses((status = 200, body = EventList), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []))
)]
pub async fn list_events(
    State(state): State<AppState>,
    auth: Auth,
    params: Params,
) -> ApiResult<Json<EventList>> {
    let tenant = auth.require(Permission::DeliveriesRead)?;
    let (before, limit) = cursor_page(&params)?;
    let filter = EventFilter {
        event_type: params.string("event_type"),
        since: parse_time(&params, "since")?,
        until: parse_time(&params, "until")?,
    };
    let page = ops::list_events(&state.ops, tenant, &filter, before, limit).await?;
    Ok(Json(EventList {
        data: page.items.into_iter().map(EventOut::from).collect(),
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}
