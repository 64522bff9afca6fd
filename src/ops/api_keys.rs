//! Provisioned API keys: create (the plaintext is answered once; only its
//! SHA-256 is stored), list, revoke. These need the store alone (and the
//! key cache, where there is one), so the CLI, which runs no engine, calls
//! them too.

use crate::auth::Authenticator;
use crate::crypto::{generate_api_key, hash_api_key};
use crate::domain::ValidationErrors;
use crate::domain::api_key::{Permission, Principal};
use crate::domain::tenant::validate_tenant_id;
use crate::domain::webhook::validate_name;
use crate::store::{ApiKeyRecord, Store};

use super::{OpError, OpResult};

/// Validates a key request: its name, tenant and permissions (parsed,
/// without repeats).
pub fn validate_api_key_request(
    name: &str,
    tenant: &str,
    permissions: &[String],
) -> Result<Vec<Permission>, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    errors.check("name", validate_name(name));
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

/// Validates and stores a new key of `tenant` on behalf of `caller` (an
/// admin: the surface checked that); answers it with its plaintext. Only a
/// management key may create keys for another tenant than its own.
pub async fn create_api_key(
    store: &dyn Store,
    caller: &Principal,
    tenant: &str,
    name: &str,
    permissions: &[String],
    now: i64,
) -> OpResult<(ApiKeyRecord, String)> {
    if !caller.is_bootstrap() && tenant != caller.tenant() {
        return Err(OpError::Forbidden(
            "a tenant's admin key can only create keys for its own tenant".into(),
        ));
    }
    let permissions = validate_api_key_request(name, tenant, permissions)?;
    let key = generate_api_key();
    let record = store
        .create_api_key(tenant, name, &hash_api_key(&key), &permissions, now)
        .await?;
    tracing::info!(api_key.id = record.id, tenant = %tenant, "api key created");
    Ok((record, key))
}

/// The live keys of `tenant`, or of every tenant when `None` (the CLI).
pub async fn list_api_keys(store: &dyn Store, tenant: Option<&str>) -> OpResult<Vec<ApiKeyRecord>> {
    Ok(store.list_api_keys(tenant).await?)
}

/// Revokes a key of `tenant`; `cache` (this instance's key cache, absent
/// in the CLI) forgets it at once, other instances' within their TTL.
pub async fn revoke_api_key(
    store: &dyn Store,
    cache: Option<&Authenticator>,
    tenant: &str,
    id: i64,
    now: i64,
) -> OpResult<()> {
    if !store.revoke_api_key(tenant, id, now).await? {
        return Err(OpError::NotFound("API key"));
    }
    if let Some(cache) = cache {
        cache.forget_key(id);
    }
    tracing::info!(api_key.id = id, tenant = %tenant, "api key revoked");
    Ok(())
}
