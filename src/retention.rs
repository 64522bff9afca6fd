//! The retention purge: deletes events past `--retention` with their
//! deliveries and attempts, once at start and then every
//! `--purge-interval`.
//!
//! It shares the database writer with the hot path (on SQLite, literally
//! one write lock), so it works in small batches and rests between them
//! for `REST_FACTOR` times as long as the batch took: at most a sixth of
//! the writer's time goes to purging, and a publish waits behind one
//! small batch at most. A large backlog (a retention shortened, a
//! service that was down for days) is worked off over minutes instead of
//! stalling publishes while it goes. Measured: docs/benchmarks.md, "The
//! retention purge during b".

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::Settings;
use crate::store::Store;

/// Events per batch: about 2,000 rows with their cascades in the bench's
/// fan-out of ten, a few milliseconds of the writer.
pub const BATCH: u64 = 100;
/// The rest after a batch, as a multiple of the batch's own time.
const REST_FACTOR: u32 = 5;
/// The shortest rest, so that even fast batches leave the writer free.
const MIN_REST: Duration = Duration::from_millis(2);

/// Purges at start, then every `--purge-interval` (and at once when the
/// clock jumps), until `stop`.
pub async fn purge_loop(
    store: Arc<dyn Store>,
    settings: Arc<Settings>,
    clock: Arc<dyn Clock>,
    stop: CancellationToken,
) {
    let mut jumps = clock.jumps();
    let mut tick = tokio::time::interval(Duration::from_millis(settings.purge_interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            // A moved clock may have made events old enough to purge.
            _ = crate::clock::jumped(&mut jumps) => {}
            _ = tick.tick() => {}
        }
        let before = clock.now_ms() - settings.retention_ms as i64;
        match purge_before(store.as_ref(), before, &stop).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "purged events past retention"),
            Err((n, e)) => {
                tracing::warn!(error = %e, events = n, "retention purge failed; next interval retries")
            }
        }
    }
}

/// Deletes every event created before `before` whose deliveries are all
/// final, a batch at a time with a rest after each; returns how many
/// (and, on failure, how many went before it).
async fn purge_before(
    store: &dyn Store,
    before: i64,
    stop: &CancellationToken,
) -> Result<u64, (u64, crate::store::StoreError)> {
    let mut total = 0;
    loop {
        let started = Instant::now();
        let n = store
            .purge_events(before, BATCH)
            .await
            .map_err(|e| (total, e))?;
        total += n;
        if n < BATCH {
            return Ok(total);
        }
        let rest = (started.elapsed() * REST_FACTOR).max(MIN_REST);
        tokio::select! {
            _ = stop.cancelled() => return Ok(total),
            _ = tokio::time::sleep(rest) => {}
        }
    }
}
