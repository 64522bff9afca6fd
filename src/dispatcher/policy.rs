//! The service-wide delivery defaults: the retry schedule and failure
//! handling that apply to webhooks without their own. Flags give the
//! starting values; the admin page's settings, saved in the store, replace
//! them, and every instance reloads them periodically.

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::store::{Store, StoreResult};

/// The `settings` key the saved policy lives under.
const SETTING_KEY: &str = "delivery_policy";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryPolicy {
    pub retry_schedule_ms: Vec<u64>,
    pub min_failures: u32,
    pub suspend_after_ms: u64,
}

pub type SharedPolicy = Arc<RwLock<DeliveryPolicy>>;

impl DeliveryPolicy {
    pub fn from_settings(s: &Settings) -> Self {
        Self {
            retry_schedule_ms: s.default_retry_schedule_ms.clone(),
            min_failures: s.suspend_min_failures,
            suspend_after_ms: s.suspend_after_ms,
        }
    }

    /// The saved policy, if one was saved (an unreadable one is ignored,
    /// with a warning: the flags' values are a safe fallback).
    pub async fn load_saved(store: &dyn Store) -> StoreResult<Option<Self>> {
        let Some(text) = store.get_setting(SETTING_KEY).await? else {
            return Ok(None);
        };
        match serde_json::from_str(&text) {
            Ok(policy) => Ok(Some(policy)),
            Err(e) => {
                tracing::warn!(error = %e, "ignoring an unreadable saved delivery policy");
                Ok(None)
            }
        }
    }

    pub async fn save(&self, store: &dyn Store) -> StoreResult<()> {
        let text = serde_json::to_string(self).expect("a policy serializes");
        store.put_setting(SETTING_KEY, &text).await
    }

    /// Forgets the saved policy: the flags' values apply again.
    pub async fn forget_saved(store: &dyn Store) -> StoreResult<()> {
        store.delete_setting(SETTING_KEY).await
    }
}

/// Makes the running policy the saved one, or the flags' when none is saved.
pub async fn refresh(
    store: &dyn Store,
    settings: &Settings,
    shared: &SharedPolicy,
) -> StoreResult<()> {
    let wanted = DeliveryPolicy::load_saved(store)
        .await?
        .unwrap_or_else(|| DeliveryPolicy::from_settings(settings));
    let mut current = shared.write().expect("policy lock");
    if *current != wanted {
        tracing::info!(policy = ?wanted, "delivery policy changed");
        *current = wanted;
    }
    Ok(())
}
