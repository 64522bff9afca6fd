//! Who is calling: bootstrap keys from the configuration, provisioned keys
//! from the store (by SHA-256 hash), and the tenant each acts on. Shared by
//! every surface (the JSON API's bearer keys, the admin page's sessions)
//! and by the key operations (a revocation clears the cache).
//!
//! Every key a client presents goes through `check_key`, which keeps the
//! client's budget of failures (`throttle`): repeated wrong keys from one
//! client are refused before being checked.
//!
//! Provisioned keys are cached for a few seconds so publishing does not
//! cost a database read per request; a revocation on this instance clears
//! the cache at once, one on another instance takes effect within the TTL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use subtle::ConstantTimeEq;

use crate::crypto::{Cipher, hash_api_key};
use crate::domain::api_key::Principal;
use crate::domain::tenant::{DEFAULT_TENANT, validate_tenant_id};
use crate::ops::OpError;
use crate::store::{ApiKeyRecord, Store};
use crate::throttle::{ClientId, FailureBudget, Throttled};

const CACHE_TTL_MS: i64 = 5_000;
const SESSION_REF_PURPOSE: &str = "admin-session-key";
const CACHE_MAX_ENTRIES: usize = 10_000;

/// Resolves keys to principals, with a short cache of provisioned keys.
pub struct Authenticator {
    /// SHA-256 of each bootstrap key: comparing hashes in constant time
    /// hides both where a guess differs and how long the key is.
    bootstrap_hashes: Vec<Vec<u8>>,
    /// What an admin page session stores for each bootstrap key (a MAC of
    /// its hash: see `session_key_ref`).
    bootstrap_session_refs: Vec<[u8; 32]>,
    cipher: Arc<Cipher>,
    store: Arc<dyn Store>,
    cache: Mutex<HashMap<Vec<u8>, (ApiKeyRecord, i64)>>,
    failures: FailureBudget,
}

/// What a key presented by a client turned out to be.
#[derive(Debug)]
pub enum KeyCheck {
    Valid(Principal),
    /// No such live key (one failure spent from the client's budget).
    Unknown,
    /// The client's budget of failures is spent: the key was not checked.
    Throttled(Throttled),
}

impl Authenticator {
    pub fn new(bootstrap_keys: Vec<String>, store: Arc<dyn Store>, cipher: Arc<Cipher>) -> Self {
        let bootstrap_hashes: Vec<Vec<u8>> =
            bootstrap_keys.iter().map(|k| hash_api_key(k)).collect();
        Self {
            bootstrap_session_refs: bootstrap_hashes
                .iter()
                .map(|h| cipher.mac(SESSION_REF_PURPOSE, h))
                .collect(),
            bootstrap_hashes,
            cipher,
            store,
            cache: Mutex::new(HashMap::new()),
            failures: FailureBudget::default(),
        }
    }

    /// Checks a key presented by `client` against its budget of failures,
    /// then resolves it (`principal_for_hash`). Every surface that takes a
    /// key from a client (bearer keys, admin sign-in) comes here.
    pub async fn check_key(
        &self,
        client: Option<ClientId>,
        key_hash: &[u8],
        tenant: Option<&str>,
        now: i64,
    ) -> Result<KeyCheck, OpError> {
        if let Err(throttled) = self.failures.admit(client, key_hash, now) {
            return Ok(KeyCheck::Throttled(throttled));
        }
        Ok(
            match self.principal_for_hash(key_hash, tenant, now).await? {
                Some(principal) => {
                    self.failures.succeeded(client, key_hash);
                    KeyCheck::Valid(principal)
                }
                None => {
                    self.failures.failed(client, now);
                    KeyCheck::Unknown
                }
            },
        )
    }

    /// The principal of the key with this SHA-256 hash (`None`: no such
    /// live key). `tenant` applies to bootstrap keys only. The admin page
    /// re-checks its session's key this way on every request.
    pub async fn principal_for_hash(
        &self,
        given: &[u8],
        tenant: Option<&str>,
        now: i64,
    ) -> Result<Option<Principal>, OpError> {
        // Compare against every bootstrap key, so timing does not tell which matched.
        let is_bootstrap = self
            .bootstrap_hashes
            .iter()
            .fold(false, |found, k| bool::from(given.ct_eq(k)) | found);
        if is_bootstrap {
            let tenant = tenant.unwrap_or(DEFAULT_TENANT).trim();
            validate_tenant_id(tenant).map_err(|m| OpError::field("X-Tenant-Id", m))?;
            return Ok(Some(Principal::Bootstrap {
                tenant: tenant.to_owned(),
            }));
        }
        Ok(self
            .lookup(given, now)
            .await?
            .map(|record| Principal::ApiKey {
                id: record.id,
                tenant: record.tenant_id,
                permissions: record.permissions,
            }))
    }

    /// The live key with this hash; the cache is keyed by an owned copy,
    /// made on a miss only (a hit allocates nothing).
    async fn lookup(&self, hash: &[u8], now: i64) -> Result<Option<ApiKeyRecord>, OpError> {
        if let Some((record, at)) = self.cache.lock().expect("cache lock").get(hash)
            && now - at < CACHE_TTL_MS
        {
            return Ok(Some(record.clone()));
        }
        let found = self.store.find_api_key(hash).await?;
        let mut cache = self.cache.lock().expect("cache lock");
        match &found {
            Some(record) => {
                if cache.len() >= CACHE_MAX_ENTRIES {
                    cache.retain(|_, (_, at)| now - *at < CACHE_TTL_MS);
                }
                cache.insert(hash.to_vec(), (record.clone(), now));
            }
            None => {
                cache.remove(hash);
            }
        }
        Ok(found)
    }

    /// What an admin session stores to name the key (SHA-256 `key_hash`)
    /// that signed in: a provisioned key's hash, as `api_keys` holds it; for
    /// a management key, a MAC of its hash, so that the database never holds
    /// something an operator-chosen key could be guessed from offline.
    pub fn session_key_ref(&self, key_hash: &[u8]) -> Vec<u8> {
        let is_bootstrap = self
            .bootstrap_hashes
            .iter()
            .fold(false, |found, k| bool::from(key_hash.ct_eq(k)) | found);
        if is_bootstrap {
            self.cipher.mac(SESSION_REF_PURPOSE, key_hash).to_vec()
        } else {
            key_hash.to_vec()
        }
    }

    /// The principal a session's key reference stands for, if that key is
    /// still configured (management) or live (provisioned).
    pub async fn principal_for_session(
        &self,
        key_ref: &[u8],
        tenant: &str,
        now: i64,
    ) -> Result<Option<Principal>, OpError> {
        let is_bootstrap = self
            .bootstrap_session_refs
            .iter()
            .fold(false, |found, k| bool::from(key_ref.ct_eq(&k[..])) | found);
        if is_bootstrap {
            return Ok(Some(Principal::Bootstrap {
                tenant: tenant.to_owned(),
            }));
        }
        self.principal_for_hash(key_ref, None, now).await.map(|p| {
            // A management key's hash is never stored: finding one here
            // would mean a forged row; only provisioned keys count.
            p.filter(|p| !p.is_bootstrap())
        })
    }

    /// Drops cached keys after a revocation.
    pub fn forget_key(&self, id: i64) {
        self.cache
            .lock()
            .expect("cache lock")
            .retain(|_, (record, _)| record.id != id);
    }
}
