//! Who is calling: bootstrap keys from the configuration, provisioned keys
//! from the store (by SHA-256 hash), and the tenant each acts on.
//!
//! Provisioned keys are cached for a few seconds so publishing does not
//! cost a database read per request; a revocation on this instance clears
//! the cache at once, one on another instance takes effect within the TTL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::error::ApiError;
use crate::crypto::{hash_api_key, secrets_equal};
use crate::domain::api_key::Principal;
use crate::domain::tenant::{DEFAULT_TENANT, validate_tenant_id};
use crate::store::{ApiKeyRecord, Store};

const CACHE_TTL_MS: i64 = 5_000;
const CACHE_MAX_ENTRIES: usize = 10_000;

pub struct Authenticator {
    bootstrap_keys: Vec<String>,
    store: Arc<dyn Store>,
    cache: Mutex<HashMap<Vec<u8>, (ApiKeyRecord, i64)>>,
}

impl Authenticator {
    pub fn new(bootstrap_keys: Vec<String>, store: Arc<dyn Store>) -> Self {
        Self {
            bootstrap_keys,
            store,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Resolves the `Authorization` and `X-Tenant-Id` headers to a principal.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        tenant_header: Option<&str>,
        now: i64,
    ) -> Result<Principal, ApiError> {
        let key = authorization
            .and_then(|h| {
                let (scheme, rest) = h.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|k| !k.is_empty())
            .ok_or_else(ApiError::unauthorized)?;

        // Compare against every bootstrap key, so timing does not tell which matched.
        let is_bootstrap = self
            .bootstrap_keys
            .iter()
            .fold(false, |found, k| secrets_equal(key, k) | found);
        if is_bootstrap {
            let tenant = tenant_header.unwrap_or(DEFAULT_TENANT).trim();
            validate_tenant_id(tenant).map_err(|m| ApiError::field("X-Tenant-Id", m))?;
            return Ok(Principal::Bootstrap {
                tenant: tenant.to_owned(),
            });
        }

        let record = self
            .lookup(key, now)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        Ok(Principal::ApiKey {
            id: record.id,
            tenant: record.tenant_id,
            permissions: record.permissions,
        })
    }

    async fn lookup(&self, key: &str, now: i64) -> Result<Option<ApiKeyRecord>, ApiError> {
        let hash = hash_api_key(key);
        if let Some((record, at)) = self.cache.lock().expect("cache lock").get(&hash)
            && now - at < CACHE_TTL_MS
        {
            return Ok(Some(record.clone()));
        }
        let found = self.store.find_api_key(&hash).await?;
        let mut cache = self.cache.lock().expect("cache lock");
        match &found {
            Some(record) => {
                if cache.len() >= CACHE_MAX_ENTRIES {
                    cache.retain(|_, (_, at)| now - *at < CACHE_TTL_MS);
                }
                cache.insert(hash, (record.clone(), now));
            }
            None => {
                cache.remove(&hash);
            }
        }
        Ok(found)
    }

    /// Drops cached keys after a revocation.
    pub fn forget_key(&self, id: i64) {
        self.cache
            .lock()
            .expect("cache lock")
            .retain(|_, (record, _)| record.id != id);
    }
}
