//! Paces a resumed webhook's backlog out (SPEC §12). A paused webhook's
//! deliveries wait parked (no due time); on resume they are made due a
//! slice at a time, in publish order, at the webhook's rate limit (or
//! `RESUME_PACE_PER_S`), each slice reaching `AHEAD_MS` past now. So a
//! resume of any size is a few short statements, never one over the whole
//! backlog that would hold the writer (SQLite) or its rows (PostgreSQL)
//! for seconds, and the due work of other webhooks interleaves with it.
//!
//! The resume answers after the first slice; the maintenance loop calls
//! [`BacklogPacer::tick`] every `TICK` for the rest, so a backlog left
//! parked by a crash, or a job parked by a cache that had not yet seen the
//! resume, is picked up too. Where a slice ended is kept in memory: after
//! a restart pacing starts again at now. Each instance paces on its own,
//! as each applies rate limits on its own.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::sync::Mutex;

use super::webhook_control::RESUME_PACE_PER_S;
use crate::store::{Store, StoreResult};

/// How often the maintenance loop hands out the next slices.
pub const TICK: Duration = Duration::from_millis(500);
/// How far past now a slice's due times reach: two ticks, so a late tick
/// does not leave the engine without due work from a backlog.
const AHEAD_MS: f64 = 1_000.0;

/// Where each webhook's handed-out due times end (epoch ms). The lock is
/// held across a slice's statement: a resume's slice and a tick's must not
/// both start where the last one ended (they would interleave in time).
#[derive(Default)]
pub struct BacklogPacer {
    paced_until: Mutex<HashMap<i64, f64>>,
}

impl BacklogPacer {
    /// Makes due the slice of one webhook's backlog that falls between
    /// where the last slice ended (or now) and `AHEAD_MS` past now; answers
    /// how many deliveries it made due.
    pub async fn pace(
        &self,
        store: &dyn Store,
        tenant: &str,
        webhook_id: i64,
        rate_limit: Option<u32>,
        now: i64,
    ) -> StoreResult<u64> {
        let mut paced = self.paced_until.lock().await;
        let spacing = 1_000.0 / rate_limit.map_or(RESUME_PACE_PER_S, |r| f64::from(r.max(1)));
        let from = paced
            .get(&webhook_id)
            .copied()
            .unwrap_or(f64::MIN)
            .max(now as f64);
        let until = now as f64 + AHEAD_MS;
        if from >= until {
            return Ok(0);
        }
        let limit = ((until - from) / spacing).ceil().max(1.0) as u32;
        let made = store
            .unpark_deliveries(tenant, webhook_id, from.ceil() as i64, spacing, limit)
            .await?;
        if made == 0 {
            paced.remove(&webhook_id);
        } else {
            paced.insert(webhook_id, from + made as f64 * spacing);
        }
        Ok(made)
    }

    /// Paces every webhook that is not paused and still holds parked
    /// deliveries; answers how many deliveries were made due.
    pub async fn tick(&self, store: &dyn Store, now: i64) -> StoreResult<u64> {
        let backlogs = store.resumed_backlogs().await?;
        let held: HashSet<i64> = backlogs.iter().map(|b| b.webhook_id).collect();
        self.paced_until
            .lock()
            .await
            .retain(|id, _| held.contains(id));
        let mut made = 0;
        for b in &backlogs {
            made += self
                .pace(store, &b.tenant_id, b.webhook_id, b.rate_limit, now)
                .await?;
        }
        Ok(made)
    }

    /// Forgets a webhook's pacing (it was paused again: its next resume
    /// starts at now).
    pub async fn forget(&self, webhook_id: i64) {
        self.paced_until.lock().await.remove(&webhook_id);
    }
}
