//! Works a paused or resumed webhook's backlog a slice at a time (SPEC
//! §12), so that neither a pause nor a resume is one statement over the
//! whole backlog that would hold the writer (SQLite) or its rows
//! (PostgreSQL) for seconds (100,000 deliveries: 7.8 s on PostgreSQL), or
//! outlast the request's timeout, and the due work of other webhooks
//! interleaves with it.
//!
//! A pause parks the webhook's waiting deliveries (no due time) up to
//! `PARK_SLICE` at once, in id order from where the last slice ended. On
//! resume, parked deliveries are made due in publish order, at the
//! webhook's rate limit (or `RESUME_PACE_PER_S`), each slice reaching
//! `AHEAD_MS` past now.
//!
//! A resume answers after the first slice, a pause once committed (its
//! first slice is parked in the background); the maintenance loop calls
//! [`BacklogPacer::tick`] every `TICK` for the rest, so a resumed backlog
//! left parked by a crash, or a job parked by a cache that had not yet
//! seen the resume, is picked up too. A pause's remaining slices are kept
//! in memory only: after a crash, the claim parks what it meets of a
//! paused webhook (the dispatcher parks instead of attempting), which is
//! slower but loses nothing. Where a slice ended is kept in memory: after
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
/// Deliveries a pause parks at once (and then every `TICK`).
pub const PARK_SLICE: u32 = 5_000;

/// Where each resumed webhook's handed-out due times end (epoch ms), and
/// where each paused webhook's parking got to (its tenant, the last
/// delivery id parked). Each lock is held across a slice's statement: two
/// slices of one webhook must not both start where the last one ended.
#[derive(Default)]
pub struct BacklogPacer {
    paced_until: Mutex<HashMap<i64, f64>>,
    parking: Mutex<HashMap<i64, (String, i64)>>,
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

    /// Parks the next slice of a paused webhook's waiting deliveries and
    /// remembers where it ended for the next tick; answers how many.
    pub async fn park(&self, store: &dyn Store, tenant: &str, webhook_id: i64) -> StoreResult<u64> {
        let mut parking = self.parking.lock().await;
        let after = parking.get(&webhook_id).map_or(0, |(_, last)| *last);
        let sliced = store
            .park_deliveries(tenant, webhook_id, after, PARK_SLICE)
            .await;
        let (parked, last) = match sliced {
            Ok(done) => done,
            Err(e) => {
                // The next tick tries again from the same place.
                parking.insert(webhook_id, (tenant.to_owned(), after));
                return Err(e);
            }
        };
        if parked < u64::from(PARK_SLICE) {
            parking.remove(&webhook_id);
        } else {
            parking.insert(webhook_id, (tenant.to_owned(), last));
        }
        Ok(parked)
    }

    /// Parks the next slice of every pause still being parked, then paces
    /// every webhook that is not paused and still holds parked deliveries;
    /// answers how many deliveries were parked or made due.
    pub async fn tick(&self, store: &dyn Store, now: i64) -> StoreResult<u64> {
        let pausing: Vec<(i64, String)> = self
            .parking
            .lock()
            .await
            .iter()
            .map(|(id, (tenant, _))| (*id, tenant.clone()))
            .collect();
        // One webhook's failure does not hold up the others' slices.
        let mut moved = 0;
        for (id, tenant) in pausing {
            match self.park(store, &tenant, id).await {
                Ok(n) => moved += n,
                Err(e) => {
                    tracing::warn!(error = %e, webhook.id = id, "could not park a paused backlog")
                }
            }
        }
        let backlogs = store.resumed_backlogs().await?;
        let held: HashSet<i64> = backlogs.iter().map(|b| b.webhook_id).collect();
        self.paced_until
            .lock()
            .await
            .retain(|id, _| held.contains(id));
        for b in &backlogs {
            match self
                .pace(store, &b.tenant_id, b.webhook_id, b.rate_limit, now)
                .await
            {
                Ok(n) => moved += n,
                Err(e) => {
                    tracing::warn!(error = %e, webhook.id = b.webhook_id, "could not pace a resumed backlog")
                }
            }
        }
        Ok(moved)
    }

    /// Forgets a webhook's parking and pacing (it was paused or resumed
    /// again: what the other state left undone no longer applies).
    pub async fn forget(&self, webhook_id: i64) {
        self.paced_until.lock().await.remove(&webhook_id);
        self.parking.lock().await.remove(&webhook_id);
    }
}
