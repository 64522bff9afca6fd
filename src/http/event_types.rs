//! `/management/event-types`: the catalogue, tenant types, schemas and
//! examples, archiving.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};

use super::error::{ApiResult, Problem};
use super::extract::{ApiJson, ApiPath, Auth, Params};
use crate::catalogue::CatalogueEntry;
use crate::clock::format_rfc3339;
use crate::domain::api_key::Permission;
use crate::ops::event_types::{self as ops, EventTypeChanges, NewEventType};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeOut {
    #[schema(example = "license.activated")]
    pub name: String,
    #[schema(example = "license")]
    pub category: String,
    pub description: Option<String>,
    /// Seeded by hookd rather than defined by the tenant.
    pub builtin: bool,
    /// Archived types keep their existing subscriptions but take no new ones.
    pub archived: bool,
    pub archived_at: Option<String>,
    #[schema(schema_with = json_schema_field)]
    pub schema: Option<serde_json::Value>,
    /// An example `data` ("Send example" delivers it).
    #[schema(value_type = Option<Object>, example = json!({"invoice_id": "in_1042", "amount": 1200}))]
    pub example: Option<serde_json::Value>,
}

/// The document's `schema` field. Its example constrains types but
/// requires no property, so any example that names other fields still
/// matches it.
fn json_schema_field() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .description(Some(
            "A JSON Schema object (draft 2020-12 unless `$schema` says otherwise) that every \
             published event's `data` must match; references resolve within the schema only. \
             Checked when saved, and the type's example must match it.",
        ))
        .examples([json!({
            "type": "object",
            "properties": {
                "invoice_id": {"type": "string"},
                "amount": {"type": "integer", "minimum": 0}
            }
        })])
        .build()
}

fn json_of(text: &Option<String>) -> Option<serde_json::Value> {
    text.as_deref().and_then(|t| serde_json::from_str(t).ok())
}

impl From<&CatalogueEntry> for EventTypeOut {
    fn from(e: &CatalogueEntry) -> Self {
        Self {
            name: e.name.clone(),
            category: e.category.clone(),
            description: e.description.clone(),
            builtin: e.builtin,
            archived: e.archived_at.is_some(),
            archived_at: e.archived_at.map(format_rfc3339),
            schema: json_of(&e.data_schema),
            example: json_of(&e.example),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryOut {
    pub name: String,
    pub event_types: Vec<String>,
}

/// The catalogue: every type sorted by category, and the categories with
/// their types (live ones only unless `include_archived`).
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeList {
    pub data: Vec<EventTypeOut>,
    pub categories: Vec<CategoryOut>,
    pub total: u64,
    pub offset: u64,
    pub limit: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventTypeIn {
    /// Dot-separated lowercase segments, at least two.
    #[schema(example = "invoice.paid")]
    pub name: String,
    /// One lowercase word (letters, digits, `_`); the name's first segment
    /// when absent. It may differ from that segment (`invoice.paid` in
    /// `billing`): then `billing.*` subscriptions receive the type as well
    /// as `invoice.*` ones.
    #[schema(example = "billing")]
    pub category: Option<String>,
    /// At most 1,024 characters; no control characters but line breaks and
    /// tabs, no bidirectional controls.
    pub description: Option<String>,
    #[schema(schema_with = json_schema_field)]
    pub schema: Option<serde_json::Value>,
    /// An example `data` (an object matching `schema`).
    #[schema(value_type = Option<Object>, example = json!({"invoice_id": "in_1042", "amount": 1200}))]
    pub example: Option<serde_json::Value>,
}

impl From<EventTypeIn> for NewEventType {
    fn from(e: EventTypeIn) -> Self {
        Self {
            name: e.name,
            category: e.category,
            description: e.description,
            schema: e.schema.map(|s| s.to_string()),
            example: e.example.map(|s| s.to_string()),
        }
    }
}

/// Changes to a type; `null` clears a value, an absent field keeps it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventTypePatch {
    /// Tenant types only: a built-in type's description is the
    /// catalogue's (409 if it differs).
    #[serde(default, deserialize_with = "super::webhooks::nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::webhooks::nullable")]
    #[schema(schema_with = json_schema_field)]
    pub schema: Option<Option<serde_json::Value>>,
    #[serde(default, deserialize_with = "super::webhooks::nullable")]
    #[schema(value_type = Option<Object>)]
    pub example: Option<Option<serde_json::Value>>,
}

#[utoipa::path(
    get, path = "/management/event-types", tag = "event-types",
    params(
        ("include_archived" = Option<bool>, Query),
        ("category" = Option<String>, Query),
        ("offset" = Option<u64>, Query),
        ("limit" = Option<u64>, Query, description = "1–500, default 500"),
    ),
    responses((status = 200, body = EventTypeList), (status = 400, body = Problem), (status = 401, body = Problem)),
    security(("bearer" = []))
)]
pub async fn list_event_types(
    State(state): State<AppState>,
    auth: Auth,
    params: Params,
) -> ApiResult<Json<EventTypeList>> {
    // Any valid key may read the catalogue: it names types, not data.
    let tenant = auth.0.tenant();
    let include_archived = params.bool("include_archived")?.unwrap_or(false);
    let category = params.string("category");
    let offset = params.int("offset", 0, i64::MAX)?.unwrap_or(0) as u64;
    let limit = params.int("limit", 1, 500)?.unwrap_or(500) as u64;
    let entries =
        ops::list_event_types(&state.ops, tenant, include_archived, category.as_deref()).await?;
    let mut categories: Vec<CategoryOut> = Vec::new();
    for e in &entries {
        match categories.last_mut() {
            Some(c) if c.name == e.category => c.event_types.push(e.name.clone()),
            _ => categories.push(CategoryOut {
                name: e.category.clone(),
                event_types: vec![e.name.clone()],
            }),
        }
    }
    Ok(Json(EventTypeList {
        total: entries.len() as u64,
        data: entries
            .iter()
            .skip(offset as usize)
            .take(limit as usize)
            .map(EventTypeOut::from)
            .collect(),
        categories,
        offset,
        limit,
    }))
}

#[utoipa::path(
    post, path = "/management/event-types", tag = "event-types",
    request_body = EventTypeIn,
    responses((status = 201, body = EventTypeOut), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = []))
)]
pub async fn create_event_type(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(input): ApiJson<EventTypeIn>,
) -> ApiResult<(StatusCode, Json<EventTypeOut>)> {
    let tenant = auth.require(Permission::WebhooksWrite)?;
    let now = state.clock.now_ms();
    let entry = ops::create_event_type(&state.ops, tenant, input.into(), now).await?;
    Ok((StatusCode::CREATED, Json((&entry).into())))
}

#[utoipa::path(
    patch, path = "/management/event-types/{name}", tag = "event-types",
    description = "Sets a type's schema and example (any type, built-ins included) or description (tenant types). \
                   A new schema applies to events published from then on; the example must match the schema.",
    params(("name" = String, Path)),
    request_body = EventTypePatch,
    responses((status = 200, body = EventTypeOut), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "A new description for a built-in type (its description is the catalogue's)", body = Problem)),
    security(("bearer" = []))
)]
pub async fn update_event_type(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(name): ApiPath<String>,
    ApiJson(patch): ApiJson<EventTypePatch>,
) -> ApiResult<Json<EventTypeOut>> {
    let tenant = auth.require(Permission::WebhooksWrite)?;
    let text = |v: Option<Option<serde_json::Value>>| v.map(|v| v.map(|v| v.to_string()));
    let changes = EventTypeChanges {
        description: patch.description,
        schema: text(patch.schema),
        example: text(patch.example),
    };
    let entry =
        ops::update_event_type(&state.ops, tenant, &name, changes, state.clock.now_ms()).await?;
    Ok(Json((&entry).into()))
}

#[utoipa::path(
    delete, path = "/management/event-types/{name}", tag = "event-types",
    description = "Archives a type: existing subscriptions keep receiving it; new subscriptions are refused.",
    params(("name" = String, Path)),
    responses((status = 204, description = "Archived"), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn archive_event_type(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let tenant = auth.require(Permission::WebhooksWrite)?;
    ops::archive_event_type(&state.ops, tenant, &name, state.clock.now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post, path = "/management/event-types/{name}/restore", tag = "event-types",
    description = "Un-archives a type: new subscriptions to it are accepted again. Restoring a type that is not archived answers it unchanged.",
    params(("name" = String, Path)),
    responses((status = 200, body = EventTypeOut), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, description = "No such type in the catalogue", body = Problem)),
    security(("bearer" = []))
)]
pub async fn restore_event_type(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<EventTypeOut>> {
    let tenant = auth.require(Permission::WebhooksWrite)?;
    let entry = ops::restore_event_type(&state.ops, tenant, &name).await?;
    Ok(Json((&entry).into()))
}
