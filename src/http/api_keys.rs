//! `/management/api-keys`: provisioned keys, admins only. The plaintext
//! key is in the create answer and nowhere else; only its hash is stored.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiResult, Problem};
use super::extract::{ApiJson, ApiPath, Auth};
use crate::clock::format_rfc3339;
use crate::domain::api_key::Permission;
use crate::ops::api_keys as ops;
use crate::state::AppState;
use crate::store::ApiKeyRecord;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyIn {
    /// 1–128 characters, no control or bidirectional-override characters.
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
    let own_tenant = auth.require(Permission::Admin)?;
    let tenant = input.tenant.as_deref().unwrap_or(own_tenant);
    let (record, key) = ops::create_api_key(
        state.ops.store.as_ref(),
        &auth.0,
        tenant,
        &input.name,
        &input.permissions,
        state.clock.now_ms(),
    )
    .await?;
    let mut out = ApiKeyOut::from(record);
    out.key = Some(key);
    Ok((StatusCode::CREATED, Json(out)))
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
    let keys = ops::list_api_keys(state.ops.store.as_ref(), Some(tenant)).await?;
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
    ops::revoke_api_key(
        state.ops.store.as_ref(),
        Some(&state.ops.authenticator),
        tenant,
        id,
        state.clock.now_ms(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
