//! `/management/event-types`: the catalogue, tenant types, archiving.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiJson, ApiPath, Auth, Params};
use crate::catalogue::{Catalogue, CatalogueEntry};
use crate::clock::format_rfc3339;
use crate::domain::ValidationErrors;
use crate::domain::api_key::Permission;
use crate::domain::event_type::TEST_EVENT_TYPE;
use crate::domain::webhook::{validate_category, validate_description};
use crate::store::EventTypeRecord;

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
    #[schema(example = "invoice.paid")]
    pub name: String,
    /// Must equal the name's first segment; derived from it when absent.
    pub category: Option<String>,
    pub description: Option<String>,
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
    let catalogue = Catalogue::load(state.store.as_ref(), tenant).await?;
    let entries: Vec<&CatalogueEntry> = catalogue
        .entries()
        .into_iter()
        .filter(|e| include_archived || e.archived_at.is_none())
        .filter(|e| category.as_deref().is_none_or(|c| c == e.category))
        .collect();
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
            .map(|e| EventTypeOut::from(*e))
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
    let entry = create(&state, tenant, input).await?;
    Ok((StatusCode::CREATED, Json((&entry).into())))
}

/// Validates and adds a tenant's own event type.
pub(crate) async fn create(
    state: &AppState,
    tenant: &str,
    input: EventTypeIn,
) -> ApiResult<CatalogueEntry> {
    let mut errors = ValidationErrors::new();
    let category = validate_category(&input.name, input.category.as_deref());
    let category = match category {
        Err(m) if crate::domain::event_type::validate_event_type_name(&input.name).is_err() => {
            errors.add("name", m);
            None
        }
        other => errors.check("category", other),
    };
    let description = match &input.description {
        Some(d) => errors
            .check("description", validate_description(d))
            .map(Some),
        None => Some(None),
    };
    errors.into_result()?;
    let catalogue = Catalogue::load(state.store.as_ref(), tenant).await?;
    if catalogue.get(&input.name).is_some_and(|e| e.builtin) {
        return Err(ApiError::conflict(format!(
            "{:?} is a built-in event type",
            input.name
        )));
    }
    let record = EventTypeRecord {
        name: input.name,
        category: category.expect("validated"),
        description: description.expect("validated"),
        archived_at: None,
        created_at: state.clock.now_ms(),
    };
    state.store.create_event_type(tenant, &record).await?;
    Ok(CatalogueEntry {
        name: record.name,
        category: record.category,
        description: record.description,
        builtin: false,
        archived_at: None,
    })
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
    archive(&state, tenant, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Archives a type: existing subscriptions keep it, new ones are refused.
pub(crate) async fn archive(state: &AppState, tenant: &str, name: &str) -> ApiResult<()> {
    if name == TEST_EVENT_TYPE {
        return Err(ApiError::field(
            "name",
            "webhook.test is used by the test endpoint and cannot be archived",
        ));
    }
    let catalogue = Catalogue::load(state.store.as_ref(), tenant).await?;
    let entry = catalogue
        .get(name)
        .ok_or_else(|| ApiError::not_found("event type"))?;
    let now = state.clock.now_ms();
    let record = EventTypeRecord {
        name: entry.name.clone(),
        category: entry.category.clone(),
        description: entry.description.clone(),
        archived_at: Some(now),
        created_at: now,
    };
    state.store.archive_event_type(tenant, &record).await?;
    Ok(())
}

#[utoipa::path(
    post, path = "/management/event-types/{name}/restore", tag = "event-types",
    description = "Un-archives a type: new subscriptions to it are accepted again.",
    params(("name" = String, Path)),
    responses((status = 200, body = EventTypeOut), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, description = "No such archived type", body = Problem)),
    security(("bearer" = []))
)]
pub async fn restore_event_type(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<EventTypeOut>> {
    let tenant = auth.require(Permission::WebhooksWrite)?;
    let entry = restore(&state, tenant, &name).await?;
    Ok(Json((&entry).into()))
}

/// Un-archives a type of the tenant's catalogue.
pub(crate) async fn restore(
    state: &AppState,
    tenant: &str,
    name: &str,
) -> ApiResult<CatalogueEntry> {
    if !state.store.restore_event_type(tenant, name).await? {
        return Err(ApiError::not_found("archived event type"));
    }
    let catalogue = Catalogue::load(state.store.as_ref(), tenant).await?;
    catalogue
        .get(name)
        .cloned()
        .ok_or_else(|| ApiError::not_found("event type"))
}
