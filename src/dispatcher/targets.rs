//! The webhooks deliveries go to, as the sender needs them: URL, custom
//! headers, decoded signing keys (HMAC or Ed25519), receiver
//! authentication, TLS options, timeout and policies. Cached for a short
//! time so the hot path does not read and decrypt per delivery; changes
//! made through this instance's API invalidate the entry at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

use super::signing::Signer;
use crate::crypto::{signing_key_pair, webhook_secret_bytes};
use crate::domain::receiver_auth::{OAuth2Config, ReceiverAuth, SignatureScheme};
use crate::domain::webhook::Webhook;
use crate::store::{Store, StoreError, StoreResult};

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
    /// Parsed once, with what a request derives from it (pool key, Host,
    /// request target): the hot path neither re-parses nor re-derives it.
    pub destination: Option<super::pool::Destination>,
    pub enabled: bool,
    pub suspended: bool,
    /// Paused (SPEC §12): its jobs are parked, not attempted.
    pub paused: bool,
    pub headers: HeaderMap,
    /// How every attempt's logged request headers end (`attempt::logged_headers_tail`).
    pub logged_headers_tail: String,
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
    pub fn live_keys(&self, now_ms: i64) -> impl Iterator<Item = &Signer> {
        self.keys
            .iter()
            .filter(move |(_, until)| until.is_none_or(|u| u > now_ms))
            .map(|(k, _)| k)
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
/// One caller per webhook loads an entry that is missing or stale; the
/// callers that need it meanwhile take that load's answer (the target, its
/// absence, or its failure) instead of each reading and decrypting the
/// webhook themselves (with hundreds of jobs in flight, every expiry made
/// hundreds of loads of the same row: 686 in a 30,000-delivery fan-out).
#[derive(Default)]
pub struct TargetCache {
    entries: RwLock<Entries>,
    /// Per webhook, the load in progress; gone once it has answered.
    loading: Mutex<HashMap<i64, Arc<LoadSlot>>>,
}

#[derive(Default)]
struct Entries {
    targets: HashMap<i64, Arc<Target>>,
    /// Per webhook, how often it was invalidated: a load that saw its
    /// count move may have read the webhook from before the change, and
    /// reads it again.
    changes: HashMap<i64, u64>,
}

/// One load's answer, shared by everyone who waited for it.
type LoadSlot = tokio::sync::OnceCell<Result<Option<Arc<Target>>, Arc<StoreError>>>;

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

    /// The cached target if fresh; else the answer of the one load in
    /// progress for this webhook, started by this call if there is none.
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
        let slot = self
            .loading
            .lock()
            .expect("target loads")
            .entry(webhook_id)
            .or_default()
            .clone();
        // The first caller runs the load; the others wait for its answer
        // (if it is cancelled, the next waiter runs it). A caller that
        // missed the cache just before the last load answered finds its
        // entry here instead of loading again.
        let answer = slot
            .get_or_init(|| async {
                match self.fresh(webhook_id, now) {
                    Some(t) => Ok(Some(t)),
                    None => self.load(webhook_id, &load).await.map_err(Arc::new),
                }
            })
            .await
            .clone();
        // Later callers find the cached entry, or start a load of their own.
        let mut loading = self.loading.lock().expect("target loads");
        if loading
            .get(&webhook_id)
            .is_some_and(|s| Arc::ptr_eq(s, &slot))
        {
            loading.remove(&webhook_id);
        }
        answer.map_err(StoreError::Shared)
    }

    /// The cached entry, if it is younger than `TTL_MS` at `now`.
    fn fresh(&self, webhook_id: i64, now: i64) -> Option<Arc<Target>> {
        let entries = self.entries.read().expect("target cache");
        let t = entries.targets.get(&webhook_id)?;
        (now - t.loaded_at < TTL_MS).then(|| t.clone())
    }

    /// Loads and caches the target; loads again if the webhook was
    /// invalidated meanwhile (what it read may predate the change), up to
    /// `LOAD_TRIES` times, after which it answers the last load uncached.
    async fn load<F, Fut>(&self, webhook_id: i64, load: &F) -> StoreResult<Option<Arc<Target>>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = StoreResult<Option<Arc<Target>>>>,
    {
        let changes = |e: &Entries| e.changes.get(&webhook_id).copied().unwrap_or(0);
        let mut tries = 0;
        loop {
            tries += 1;
            let seen = changes(&self.entries.read().expect("target cache"));
            let loaded = load().await?;
            let mut entries = self.entries.write().expect("target cache");
            let Some(target) = loaded else {
                entries.targets.remove(&webhook_id);
                entries.changes.remove(&webhook_id);
                return Ok(None);
            };
            if changes(&entries) == seen {
                entries.targets.insert(webhook_id, target.clone());
                return Ok(Some(target));
            }
            if tries == LOAD_TRIES {
                return Ok(Some(target));
            }
        }
    }

    /// Drops the webhook's entry (it changed through this instance).
    pub fn invalidate(&self, webhook_id: i64) {
        let mut entries = self.entries.write().expect("target cache");
        entries.targets.remove(&webhook_id);
        *entries.changes.entry(webhook_id).or_default() += 1;
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
                keys.push((Signer::hmac(&k), None));
            }
            if let Some((prev, until)) = &secrets.previous
                && let Ok(k) = webhook_secret_bytes(prev)
            {
                keys.push((Signer::hmac(&k), Some(*until)));
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
    let destination = url::Url::parse(&w.url)
        .ok()
        .and_then(|u| u.as_str().parse::<http::Uri>().ok())
        .and_then(|u| super::pool::Destination::new(&u));
    let logged_headers_tail =
        super::attempt::logged_headers_tail(&headers, !matches!(auth, TargetAuth::None));
    Target {
        webhook_id: w.id,
        destination,
        url: w.url,
        enabled: w.enabled,
        suspended: w.suspended,
        paused: w.control.paused,
        headers,
        logged_headers_tail,
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
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn target(webhook_id: i64, url: &str, now: i64) -> Arc<Target> {
        Arc::new(Target {
            webhook_id,
            url: url.into(),
            destination: None,
            enabled: true,
            suspended: false,
            paused: false,
            headers: HeaderMap::new(),
            logged_headers_tail: String::new(),
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

    /// `callers` concurrent gets of webhook 7 at `now`, whose load (the
    /// one expected) is held until every caller waits on it, then answers
    /// `answer`; answers each caller's result and how many loads ran.
    async fn concurrent_gets(
        cache: &Arc<TargetCache>,
        callers: usize,
        now: i64,
        answer: fn(i64) -> StoreResult<Option<Arc<Target>>>,
    ) -> (Vec<StoreResult<Option<Arc<Target>>>>, usize) {
        let loads = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(tokio::sync::Semaphore::new(0));
        let tasks: Vec<_> = (0..callers)
            .map(|_| {
                let (cache, loads, release) = (cache.clone(), loads.clone(), release.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_load(7, now, || {
                            let (loads, release) = (loads.clone(), release.clone());
                            async move {
                                loads.fetch_add(1, Ordering::SeqCst);
                                let _go = release.acquire().await.expect("open");
                                answer(now)
                            }
                        })
                        .await
                })
            })
            .collect();
        // Every caller holds the slot (the map holds one more).
        let all_waiting = async {
            while cache
                .loading
                .lock()
                .unwrap()
                .get(&7)
                .map_or(0, Arc::strong_count)
                < callers + 1
            {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), all_waiting)
            .await
            .expect("the callers never all waited on one load");
        release.add_permits(callers);
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        (results, loads.load(Ordering::SeqCst))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn jobs_waiting_for_a_stale_entry_share_one_load() {
        let cache = Arc::new(TargetCache::default());
        let found = |now| Ok(Some(target(7, "https://a.test/", now)));
        let (results, loads) = concurrent_gets(&cache, 100, 1_000, found).await;
        assert!(results.iter().all(|r| r.as_ref().unwrap().is_some()));
        assert_eq!(loads, 1, "100 callers, one load");
        // Fresh: no load at all.
        let fresh = cache
            .get_or_load(7, 1_000 + TTL_MS - 1, || async {
                panic!("loaded while fresh")
            })
            .await
            .unwrap();
        assert_eq!(fresh.unwrap().url, "https://a.test/");
        // Stale: one load for all again.
        let (_, loads) = concurrent_gets(&cache, 100, 1_000 + TTL_MS, found).await;
        assert_eq!(loads, 1);
        assert!(cache.loading.lock().unwrap().is_empty(), "slots forgotten");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_failed_load_is_every_waiters_answer_and_the_next_call_loads_again() {
        let cache = Arc::new(TargetCache::default());
        let failed = |_| Err(StoreError::Corrupt("webhooks"));
        let (results, loads) = concurrent_gets(&cache, 50, 0, failed).await;
        assert_eq!(loads, 1, "50 waiters, one failed load");
        for r in results {
            let e = r.unwrap_err();
            assert!(e.to_string().contains("corrupt"), "{e}");
        }
        let found = |now| Ok(Some(target(7, "https://a.test/", now)));
        let (results, loads) = concurrent_gets(&cache, 1, 0, found).await;
        assert_eq!(loads, 1);
        assert!(results[0].as_ref().unwrap().is_some());
        assert!(cache.loading.lock().unwrap().is_empty());
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
