//! `/management/api-keys`: provisioned keys, admins only. The plaintext
//! key is in the create answer and nowhere else; only its hash is stored.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiJson, ApiPath, Auth};
use crate::clock::format_rfc3339;
use crate::crypto::{generate_api_key, hash_api_key};
use crate::domain::ValidationErrors;
use crate::domain::api_key::Permission;
use crate::domain::tenant::validate_tenant_id;
use crate::store::ApiKeyRecord;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyIn {
    pub name: String,
    /// The tenant the key belongs to; the caller's tenant when absent.
    pub tenant: Option<String>,
    #[schema(example = json!(["webhooks:read", "events:publish"]))]
    pub permissions: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyOut {
    pub id: i64,
    pub name: String,
    pub tenant: String,
    pub permissions: Vec<Permission>,
    /// The plaintext key: in the create answer only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub created_at: String,
}

impl From<ApiKeyRecord> for ApiKeyOut {
    fn from(r: ApiKeyRecord) -> Self {
        Self {
            id: r.id,
            name: r.name,
            tenant: r.tenant_id,
            permissions: r.permissions,
            key: None,
            created_at: format_rfc3339(r.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub data: Vec<ApiKeyOut>,
}

/// Validates a key request; shared with `hookd keys create`.
pub fn validate_api_key_request(
    name: &str,
    tenant: &str,
    permissions: &[String],
) -> Result<Vec<Permission>, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    errors.check("name", crate::domain::webhook::validate_name(name));
    errors.check("tenant", validate_tenant_id(tenant));
    if permissions.is_empty() {
        errors.add("permissions", "must name at least one permission");
    }
    let mut parsed = Vec::new();
    for p in permissions {
        if let Some(p) = errors.check("permissions", Permission::parse(p))
            && !parsed.contains(&p)
        {
            parsed.push(p);
        }
    }
    errors.into_result().map(|_| parsed)
}

#[utoipa::path(
    post, path = "/management/api-keys", tag = "api-keys",
    request_body = ApiKeyIn,
    responses((status = 201, description = "Created; `key` is shown here only", body = ApiKeyOut), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []))
)]
pub async fn create_api_key(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(input): ApiJson<ApiKeyIn>,
) -> ApiResult<(StatusCode, Json<ApiKeyOut>)> {
    let own_tenant = auth.require(Permission::Admin)?.to_owned();
    let tenant = input.tenant.clone().unwrap_or_else(|| own_tenant.clone());
    if !auth.0.is_bootstrap() && tenant != own_tenant {
        return Err(ApiError::forbidden(
            "a tenant's admin key can only create keys for its own tenant",
        ));
    }
    let (record, key) = create(&state, &tenant, &input.name, &input.permissions).await?;
    let mut out = ApiKeyOut::from(record);
    out.key = Some(key);
    Ok((StatusCode::CREATED, Json(out)))
}

/// Validates and stores a new key of `tenant`; answers it with its plaintext.
pub(crate) async fn create(
    state: &AppState,
    tenant: &str,
    name: &str,
    permissions: &[String],
) -> ApiResult<(ApiKeyRecord, String)> {
    let permissions = validate_api_key_request(name, tenant, permissions)?;
    let key = generate_api_key();
    let record = state
        .store
        .create_api_key(
            tenant,
            name,
            &hash_api_key(&key),
            &permissions,
            state.clock.now_ms(),
        )
        .await?;
    tracing::info!(api_key.id = record.id, tenant = %tenant, "api key created");
    Ok((record, key))
}

#[utoipa::path(
    get, path = "/management/api-keys", tag = "api-keys",
    responses((status = 200, body = ApiKeyList), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []))
)]
pub async fn list_api_keys(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<ApiKeyList>> {
    let tenant = auth.require(Permission::Admin)?;
    let keys = state.store.list_api_keys(Some(tenant)).await?;
    Ok(Json(ApiKeyList {
        data: keys.into_iter().map(ApiKeyOut::from).collect(),
    }))
}

#[utoipa::path(
    delete, path = "/management/api-keys/{id}", tag = "api-keys",
    params(("id" = i64, Path)),
    responses((status = 204, description = "Revoked"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let tenant = auth.require(Permission::Admin)?;
    revoke(&state, tenant, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn revoke(state: &AppState, tenant: &str, id: i64) -> ApiResult<()> {
    if !state
        .store
        .revoke_api_key(tenant, id, state.clock.now_ms())
        .await?
    {
        return Err(ApiError::not_found("API key"));
    }
    state.authenticator.forget_key(id);
    tracing::info!(api_key.id = id, tenant = %tenant, "api key revoked");
    Ok(())
}
