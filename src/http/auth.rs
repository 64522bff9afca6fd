//! Who is calling: bootstrap keys from the configuration, provisioned keys
//! from the store (by SHA-256 hash), and the tenant each acts on.
//!
//! Provisioned keys are cached for a few seconds so publishing does not
//! cost a database read per request; a revocation on this instance clears
//! the cache at once, one on another instance takes effect within the TTL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::error::ApiError;
use subtle::ConstantTimeEq;

use crate::crypto::hash_api_key;
use crate::domain::api_key::Principal;
use crate::domain::tenant::{DEFAULT_TENANT, validate_tenant_id};
use crate::store::{ApiKeyRecord, Store};

const CACHE_TTL_MS: i64 = 5_000;
const CACHE_MAX_ENTRIES: usize = 10_000;

pub struct Authenticator {
    /// SHA-256 of each bootstrap key: comparing hashes in constant time
    /// hides both where a guess differs and how long the key is.
    bootstrap_hashes: Vec<Vec<u8>>,
    store: Arc<dyn Store>,
    cache: Mutex<HashMap<Vec<u8>, (ApiKeyRecord, i64)>>,
}

impl Authenticator {
    pub fn new(bootstrap_keys: Vec<String>, store: Arc<dyn Store>) -> Self {
        Self {
            bootstrap_hashes: bootstrap_keys.iter().map(|k| hash_api_key(k)).collect(),
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

        self.principal_for_hash(&hash_api_key(key), tenant_header, now)
            .await?
            .ok_or_else(ApiError::unauthorized)
    }

    /// The principal of the key with this SHA-256 hash (`None`: no such
    /// live key). `tenant` applies to bootstrap keys only. The admin page
    /// re-checks its session's key this way on every request.
    pub async fn principal_for_hash(
        &self,
        given: &[u8],
        tenant: Option<&str>,
        now: i64,
    ) -> Result<Option<Principal>, ApiError> {
        // Compare against every bootstrap key, so timing does not tell which matched.
        let is_bootstrap = self
            .bootstrap_hashes
            .iter()
            .fold(false, |found, k| bool::from(given.ct_eq(k)) | found);
        if is_bootstrap {
            let tenant = tenant.unwrap_or(DEFAULT_TENANT).trim();
            validate_tenant_id(tenant).map_err(|m| ApiError::field("X-Tenant-Id", m))?;
            return Ok(Some(Principal::Bootstrap {
                tenant: tenant.to_owned(),
            }));
        }
        Ok(self
            .lookup(given.to_vec(), now)
            .await?
            .map(|record| Principal::ApiKey {
                id: record.id,
                tenant: record.tenant_id,
                permissions: record.permissions,
            }))
    }

    async fn lookup(&self, hash: Vec<u8>, now: i64) -> Result<Option<ApiKeyRecord>, ApiError> {
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
