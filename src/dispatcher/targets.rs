//! The webhooks deliveries go to, as the sender needs them: URL, custom
//! headers, decoded signing keys (HMAC or Ed25519), receiver
//! authentication, TLS options, timeout and policies. Cached for a short
//! time so the hot path does not read and decrypt per delivery; changes
//! made through this instance's API invalidate the entry at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

use super::signing::Signer;
use crate::crypto::{signing_key_pair, webhook_secret_bytes};
use crate::domain::receiver_auth::{OAuth2Config, ReceiverAuth, SignatureScheme};
use crate::domain::webhook::Webhook;
use crate::store::{Store, StoreResult};

/// How long a cached target is trusted before it is re-read (changes made
/// through another instance show within this time).
const TTL_MS: i64 = 2_000;
/// Loads of one entry in a row that invalidations may discard.
const LOAD_TRIES: u32 = 3;

/// A webhook ready to send to.
#[derive(Debug)]
pub struct Target {
    pub webhook_id: i64,
    pub url: String,
    /// Parsed once: the hot path neither re-parses nor re-checks it.
    pub parsed_url: Option<url::Url>,
    /// The host when it is an IP literal (the resolver never sees those).
    pub literal_ip: Option<std::net::IpAddr>,
    pub enabled: bool,
    pub suspended: bool,
    /// Paused (SPEC §12): its jobs are parked, not attempted.
    pub paused: bool,
    pub headers: HeaderMap,
    /// Signing keys with the instant each stops signing (`None`: never).
    pub keys: Vec<(Signer, Option<i64>)>,
    /// What proves hookd to the receiver in the `Authorization` header.
    pub auth: TargetAuth,
    /// A client certificate or private CA: this webhook needs its own TLS
    /// client (`dispatcher::clients`).
    pub tls: Option<Arc<TlsOptions>>,
    /// 0 means the service default.
    pub timeout_ms: u64,
    pub rate_limit: Option<u32>,
    pub retry_schedule_ms: Option<Vec<u64>>,
    pub failure_handling: Option<crate::domain::webhook::FailureHandling>,
    loaded_at: i64,
}

/// The `Authorization` a target's attempts carry.
#[derive(Debug, Clone)]
pub enum TargetAuth {
    None,
    /// `Basic …`, computed once.
    Basic(HeaderValue),
    /// A bearer token from this token endpoint (`dispatcher::oauth`).
    OAuth2(Arc<OAuth2Config>),
}

/// What a webhook's own TLS client is built from.
pub struct TlsOptions {
    /// PEM certificate chain and private key presented to the receiver.
    pub identity: Option<(String, String)>,
    /// PEM CAs trusted besides the public roots.
    pub ca_certificate: Option<String>,
    /// Of all the above: a changed option means a new client.
    pub fingerprint: [u8; 32],
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsOptions(..)")
    }
}

impl Target {
    /// Keys that sign at `now_ms`.
    pub fn live_keys(&self, now_ms: i64) -> Vec<&Signer> {
        self.keys
            .iter()
            .filter(|(_, until)| until.is_none_or(|u| u > now_ms))
            .map(|(k, _)| k)
            .collect()
    }

    pub fn timeout(&self, default_ms: u64) -> Duration {
        Duration::from_millis(if self.timeout_ms == 0 {
            default_ms
        } else {
            self.timeout_ms
        })
    }
}

/// A cached lookup of targets by webhook id.
///
/// One job per webhook loads an entry that is missing or stale; the jobs
/// that need it meanwhile wait for that load instead of each reading and
/// decrypting the webhook themselves (with hundreds of jobs in flight,
/// every expiry made hundreds of loads of the same row: 686 in a
/// 30,000-delivery fan-out).
#[derive(Default)]
pub struct TargetCache {
    entries: RwLock<HashMap<i64, Arc<Target>>>,
    /// Per webhook, held while one job loads its entry.
    loading: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    /// Bumped by every invalidation: a load that saw it move may have read
    /// the webhook from before the change, and reads it again.
    invalidations: AtomicU64,
}

impl TargetCache {
    /// The webhook's target, or `None` when it no longer exists.
    pub async fn get(
        &self,
        store: &dyn Store,
        tenant: &str,
        webhook_id: i64,
        now: i64,
    ) -> StoreResult<Option<Arc<Target>>> {
        self.get_or_load(webhook_id, now, || read(store, tenant, webhook_id, now))
            .await
    }

    /// The cached target if fresh; else `load`'s, by one caller at a time
    /// per webhook (the others wait and take what it cached).
    async fn get_or_load<F, Fut>(
        &self,
        webhook_id: i64,
        now: i64,
        load: F,
    ) -> StoreResult<Option<Arc<Target>>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = StoreResult<Option<Arc<Target>>>>,
    {
        if let Some(t) = self.fresh(webhook_id, now) {
            return Ok(Some(t));
        }
        let gate = self
            .loading
            .lock()
            .expect("target loads")
            .entry(webhook_id)
            .or_default()
            .clone();
        let loaded = {
            let _loading = gate.lock().await;
            // The caller that held the gate may have loaded it meanwhile.
            match self.fresh(webhook_id, now) {
                Some(t) => Ok(Some(t)),
                None => self.load(webhook_id, load).await,
            }
        };
        let mut loading = self.loading.lock().expect("target loads");
        // Only the map and this caller hold the gate: no one waits on it.
        if Arc::strong_count(&gate) == 2 {
            loading.remove(&webhook_id);
        }
        loaded
    }

    /// The cached entry, if it is younger than `TTL_MS` at `now`.
    fn fresh(&self, webhook_id: i64, now: i64) -> Option<Arc<Target>> {
        let entries = self.entries.read().expect("target cache");
        let t = entries.get(&webhook_id)?;
        (now - t.loaded_at < TTL_MS).then(|| t.clone())
    }

    /// Loads and caches the target; loads again if a webhook was
    /// invalidated meanwhile (what it read may predate the change), up to
    /// `LOAD_TRIES` times, after which it answers the last load uncached.
    async fn load<F, Fut>(&self, webhook_id: i64, load: F) -> StoreResult<Option<Arc<Target>>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = StoreResult<Option<Arc<Target>>>>,
    {
        let mut tries = 0;
        loop {
            tries += 1;
            let seen = self.invalidations.load(Ordering::Acquire);
            let Some(target) = load().await? else {
                self.invalidate(webhook_id);
                return Ok(None);
            };
            let mut entries = self.entries.write().expect("target cache");
            if self.invalidations.load(Ordering::Acquire) == seen {
                entries.insert(webhook_id, target.clone());
                return Ok(Some(target));
            }
            if tries == LOAD_TRIES {
                return Ok(Some(target));
            }
        }
    }

    pub fn invalidate(&self, webhook_id: i64) {
        let mut entries = self.entries.write().expect("target cache");
        self.invalidations.fetch_add(1, Ordering::AcqRel);
        entries.remove(&webhook_id);
    }
}

/// The webhook as a target, from the store (`None`: it is gone).
async fn read(
    store: &dyn Store,
    tenant: &str,
    webhook_id: i64,
    now: i64,
) -> StoreResult<Option<Arc<Target>>> {
    let Some(webhook) = store.get_webhook(tenant, webhook_id).await? else {
        return Ok(None);
    };
    let mut keys = Vec::new();
    match (
        webhook.security.signature_scheme,
        &webhook.security.signing_keys,
    ) {
        (SignatureScheme::V1a, Some(signing)) => {
            let mut all = vec![(&signing.current, None)];
            if let Some((prev, until)) = &signing.previous {
                all.push((prev, Some(*until)));
            }
            for (k, until) in all {
                if let Ok(pair) = signing_key_pair(k) {
                    keys.push((Signer::Ed25519(Arc::new(pair)), until));
                }
            }
        }
        _ => {
            let Some(secrets) = store.get_webhook_secrets(tenant, webhook_id).await? else {
                return Ok(None);
            };
            if let Ok(k) = webhook_secret_bytes(&secrets.current) {
                keys.push((Signer::Hmac(k), None));
            }
            if let Some((prev, until)) = &secrets.previous
                && let Ok(k) = webhook_secret_bytes(prev)
            {
                keys.push((Signer::Hmac(k), Some(*until)));
            }
        }
    }
    Ok(Some(Arc::new(build(webhook, keys, now))))
}

/// The `Authorization` value of Basic authentication (RFC 7617).
fn basic(username: &str, password: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(&format!(
        "Basic {}",
        STANDARD.encode(format!("{username}:{password}"))
    ))
    .ok()?;
    v.set_sensitive(true);
    Some(v)
}

fn tls_options(w: &Webhook) -> Option<Arc<TlsOptions>> {
    let identity = match &w.security.auth {
        Some(ReceiverAuth::Mtls {
            certificate,
            private_key,
        }) => Some((certificate.clone(), private_key.clone())),
        _ => None,
    };
    let ca_certificate = w.security.ca_certificate.clone();
    if identity.is_none() && ca_certificate.is_none() {
        return None;
    }
    let mut h = Sha256::new();
    for part in [
        identity.as_ref().map(|(c, _)| c.as_str()),
        identity.as_ref().map(|(_, k)| k.as_str()),
        ca_certificate.as_deref(),
    ] {
        h.update(part.unwrap_or_default().as_bytes());
        h.update([0]);
    }
    Some(Arc::new(TlsOptions {
        identity,
        ca_certificate,
        fingerprint: h.finalize().into(),
    }))
}

fn build(w: Webhook, keys: Vec<(Signer, Option<i64>)>, now: i64) -> Target {
    let auth = match &w.security.auth {
        Some(ReceiverAuth::Basic { username, password }) => {
            basic(username, password).map_or(TargetAuth::None, TargetAuth::Basic)
        }
        Some(ReceiverAuth::OAuth2(c)) => TargetAuth::OAuth2(Arc::new(c.clone())),
        Some(ReceiverAuth::Mtls { .. }) | None => TargetAuth::None,
    };
    let tls = tls_options(&w);
    let mut headers = HeaderMap::new();
    for (name, values) in &w.headers {
        // Validated on the way in; a value that no longer parses is skipped.
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        for v in values {
            if let Ok(v) = HeaderValue::from_str(v) {
                headers.append(name.clone(), v);
            }
        }
    }
    let parsed_url = url::Url::parse(&w.url).ok();
    let literal_ip = parsed_url.as_ref().and_then(|u| match u.host()? {
        url::Host::Ipv4(a) => Some(std::net::IpAddr::V4(a)),
        url::Host::Ipv6(a) => Some(std::net::IpAddr::V6(a)),
        url::Host::Domain(_) => None,
    });
    Target {
        webhook_id: w.id,
        parsed_url,
        literal_ip,
        url: w.url,
        enabled: w.enabled,
        suspended: w.suspended,
        paused: w.control.paused,
        headers,
        keys,
        auth,
        tls,
        timeout_ms: w.timeout_ms,
        rate_limit: w.rate_limit,
        retry_schedule_ms: w.retry_schedule_ms,
        failure_handling: w.failure_handling,
        loaded_at: now,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn target(webhook_id: i64, url: &str, now: i64) -> Arc<Target> {
        Arc::new(Target {
            webhook_id,
            url: url.into(),
            parsed_url: None,
            literal_ip: None,
            enabled: true,
            suspended: false,
            paused: false,
            headers: HeaderMap::new(),
            keys: Vec::new(),
            auth: TargetAuth::None,
            tls: None,
            timeout_ms: 0,
            rate_limit: None,
            retry_schedule_ms: None,
            failure_handling: None,
            loaded_at: now,
        })
    }

    #[tokio::test]
    async fn jobs_waiting_for_a_stale_entry_share_one_load() {
        let cache = Arc::new(TargetCache::default());
        let loads = Arc::new(AtomicUsize::new(0));
        let get = |now: i64| {
            let (cache, loads) = (cache.clone(), loads.clone());
            tokio::spawn(async move {
                cache
                    .get_or_load(7, now, || {
                        let loads = loads.clone();
                        async move {
                            loads.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok(Some(target(7, "https://a.test/", now)))
                        }
                    })
                    .await
            })
        };
        let first: Vec<_> = (0..100).map(|_| get(1_000)).collect();
        for j in first {
            assert!(j.await.unwrap().unwrap().is_some());
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1, "100 jobs, one load");
        // Fresh: no load. Stale (TTL later): one load for all again.
        get(1_000 + TTL_MS - 1).await.unwrap().unwrap();
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        let stale: Vec<_> = (0..100).map(|_| get(1_000 + TTL_MS)).collect();
        for j in stale {
            j.await.unwrap().unwrap();
        }
        assert_eq!(loads.load(Ordering::SeqCst), 2);
        assert!(cache.loading.lock().unwrap().is_empty(), "gates forgotten");
    }

    #[tokio::test]
    async fn a_load_that_an_invalidation_overtook_reads_again() {
        let cache = Arc::new(TargetCache::default());
        let loads = AtomicUsize::new(0);
        let got = cache
            .get_or_load(7, 0, || {
                let n = loads.fetch_add(1, Ordering::SeqCst);
                let cache = cache.clone();
                async move {
                    if n == 0 {
                        // The webhook changes while its old row is read.
                        cache.invalidate(7);
                        return Ok(Some(target(7, "https://old.test/", 0)));
                    }
                    Ok(Some(target(7, "https://new.test/", 0)))
                }
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.url, "https://new.test/");
        assert_eq!(loads.load(Ordering::SeqCst), 2);
        assert_eq!(cache.fresh(7, 1).unwrap().url, "https://new.test/");

        // Gone: answered as such, nothing cached.
        cache.invalidate(7);
        let gone = cache
            .get_or_load(7, 0, || async { Ok(None) })
            .await
            .unwrap();
        assert!(gone.is_none() && cache.fresh(7, 1).is_none());
    }
}
