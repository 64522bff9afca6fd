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
/// where each paused webhook's parking got to. The pacing lock is held
/// across a slice's statement: two slices of one webhook must not both
/// start where the last one ended. The parking lock is not (a resume's
/// `forget` would wait for a 5,000-row slice): a webhook's slice in
/// progress marks its entry instead.
#[derive(Default)]
pub struct BacklogPacer {
    paced_until: Mutex<HashMap<i64, f64>>,
    parking: Mutex<HashMap<i64, Parking>>,
    /// Numbers each parking slice, so that one that finishes after its
    /// entry was forgotten (and perhaps made again) does not write to it.
    slices: std::sync::atomic::AtomicU64,
}

/// A pause's parking in progress.
struct Parking {
    tenant: String,
    /// The last delivery id parked.
    last: i64,
    /// The slice running now, if any.
    running: Option<u64>,
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
    /// remembers where it ended for the next tick; answers how many (none
    /// when a slice of that webhook is already running).
    pub async fn park(&self, store: &dyn Store, tenant: &str, webhook_id: i64) -> StoreResult<u64> {
        let slice = self
            .slices
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let after = {
            let mut parking = self.parking.lock().await;
            let p = parking.entry(webhook_id).or_insert_with(|| Parking {
                tenant: tenant.to_owned(),
                last: 0,
                running: None,
            });
            if p.running.is_some() {
                return Ok(0);
            }
            p.running = Some(slice);
            p.last
        };
        let sliced = store
            .park_deliveries(tenant, webhook_id, after, PARK_SLICE)
            .await;
        let mut parking = self.parking.lock().await;
        let Some(p) = parking
            .get_mut(&webhook_id)
            .filter(|p| p.running == Some(slice))
        else {
            // Forgotten meanwhile (resumed, or paused again): where this
            // slice ended no longer applies.
            return sliced.map(|(parked, _)| parked);
        };
        p.running = None;
        // On an error the next tick tries again from the same place.
        let (parked, last) = sliced?;
        if parked < u64::from(PARK_SLICE) {
            parking.remove(&webhook_id);
        } else {
            p.last = last;
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
            .map(|(id, p)| (*id, p.tenant.clone()))
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
