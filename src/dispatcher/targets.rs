//! The webhooks deliveries go to, as the sender needs them: URL, custom
//! headers, decoded signing keys, timeout and policies. Cached for a short
//! time so the hot path does not read and decrypt per delivery; changes
//! made through this instance's API invalidate the entry at once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::crypto::webhook_secret_bytes;
use crate::domain::webhook::Webhook;
use crate::store::{Store, StoreResult};

/// How long a cached target is trusted before it is re-read (changes made
/// through another instance show within this time).
const TTL_MS: i64 = 2_000;

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
    pub headers: HeaderMap,
    /// Signing keys with the instant each stops signing (`None`: never).
    pub keys: Vec<(Vec<u8>, Option<i64>)>,
    /// 0 means the service default.
    pub timeout_ms: u64,
    pub rate_limit: Option<u32>,
    pub retry_schedule_ms: Option<Vec<u64>>,
    pub failure_handling: Option<crate::domain::webhook::FailureHandling>,
    loaded_at: i64,
}

impl Target {
    /// Keys that sign at `now_ms`.
    pub fn live_keys(&self, now_ms: i64) -> Vec<Vec<u8>> {
        self.keys
            .iter()
            .filter(|(_, until)| until.is_none_or(|u| u > now_ms))
            .map(|(k, _)| k.clone())
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
#[derive(Default)]
pub struct TargetCache {
    entries: RwLock<HashMap<i64, Arc<Target>>>,
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
        if let Some(t) = self.entries.read().expect("target cache").get(&webhook_id)
            && now - t.loaded_at < TTL_MS
        {
            return Ok(Some(t.clone()));
        }
        let Some(webhook) = store.get_webhook(tenant, webhook_id).await? else {
            self.invalidate(webhook_id);
            return Ok(None);
        };
        let Some(secrets) = store.get_webhook_secrets(tenant, webhook_id).await? else {
            self.invalidate(webhook_id);
            return Ok(None);
        };
        let mut keys = Vec::new();
        if let Ok(k) = webhook_secret_bytes(&secrets.current) {
            keys.push((k, None));
        }
        if let Some((prev, until)) = &secrets.previous
            && let Ok(k) = webhook_secret_bytes(prev)
        {
            keys.push((k, Some(*until)));
        }
        let target = Arc::new(build(webhook, keys, now));
        self.entries
            .write()
            .expect("target cache")
            .insert(webhook_id, target.clone());
        Ok(Some(target))
    }

    pub fn invalidate(&self, webhook_id: i64) {
        self.entries
            .write()
            .expect("target cache")
            .remove(&webhook_id);
    }
}

fn build(w: Webhook, keys: Vec<(Vec<u8>, Option<i64>)>, now: i64) -> Target {
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
        headers,
        keys,
        timeout_ms: w.timeout_ms,
        rate_limit: w.rate_limit,
        retry_schedule_ms: w.retry_schedule_ms,
        failure_handling: w.failure_handling,
        loaded_at: now,
    }
}
