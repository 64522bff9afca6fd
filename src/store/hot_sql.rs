//! The hot path's SQL, one text for both backends (`$N` placeholders,
//! numbered in order of first use, so rusqlite's positional binding and
//! sqlx's numbered binding agree), and the assembly of claimed rows into
//! jobs. Where the databases differ (row locks on PostgreSQL), the text is
//! built from the same parts by a macro.

use std::collections::HashMap;

use crate::domain::delivery::DeliveryJob;
use crate::domain::fanout::Subscriber;
use crate::store::{StoreError, StoreResult};

/// The stored event with an idempotency key; `$lock` locks it on
/// PostgreSQL, so a concurrent batch with the same key waits for this one.
macro_rules! find_key_sql {
    ($lock:literal) => {
        concat!(
            "SELECT seq, id, event_type, created_at, delivery_count FROM events \
             WHERE tenant_id = $1 AND idempotency_key = $2",
            $lock
        )
    };
}
pub(crate) use find_key_sql;

/// Leases up to `$4` due deliveries; `$lock` skips rows another instance
/// is claiming (PostgreSQL).
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE deliveries SET lease_owner = $1, lease_until = $2, next_attempt_at = $2 \
             WHERE id IN (SELECT id FROM deliveries WHERE status IN ('pending', 'retrying') \
             AND next_attempt_at <= $3 ORDER BY next_attempt_at LIMIT $4",
            $lock,
            ") RETURNING id AS delivery_id, tenant_id, event_seq, webhook_id, event_type, \
             attempts, retry_step"
        )
    };
}
pub(crate) use claim_sql;

pub(crate) const CLEAR_EXPIRED_KEY: &str =
    "UPDATE events SET idempotency_key = NULL WHERE seq = $1";

/// The enabled webhooks of one tenant and environment.
pub(crate) const SUBSCRIBERS: &str = "SELECT id, events, suspended FROM webhooks \
     WHERE tenant_id = $1 AND environment = $2 AND enabled";

/// One webhook, for a test send (enabled or not).
pub(crate) const NAMED_WEBHOOK: &str =
    "SELECT suspended FROM webhooks WHERE tenant_id = $1 AND id = $2";

/// The tenant's types whose category is not their name's first segment.
pub(crate) const CUSTOM_CATEGORIES: &str = "SELECT name, category FROM event_types \
     WHERE tenant_id = $1 AND substr(name, 1, length(category) + 1) <> category || '.'";

pub(crate) const INSERT_EVENT_COLUMNS: &str = "INSERT INTO events (id, tenant_id, event_type, \
     environment, data, idempotency_key, delivery_count, created_at) ";

pub(crate) const INSERT_DELIVERY_COLUMNS: &str = "INSERT INTO deliveries (tenant_id, event_seq, \
     webhook_id, event_type, status, next_attempt_at, lease_owner, lease_until, created_at, \
     updated_at) ";

pub(crate) const INSERT_ATTEMPT_COLUMNS: &str = "INSERT INTO attempts (delivery_id, tenant_id, \
     attempted_at, duration_ms, url, request_headers, response_status, response_headers, \
     response_body, error_kind, error) ";

/// A failure streak ended in the batch: the stored streak is replaced.
/// Written only when it changes, so a webhook that keeps succeeding is
/// never written and instances sharing it do not queue on its row.
pub(crate) const TALLY_RESET: &str = "UPDATE webhooks SET failure_count = $1, \
     failing_since = $2, last_success_at = $3 WHERE id = $4 \
     AND (failure_count <> $1 OR failing_since IS DISTINCT FROM $2)";

/// Failures only: they add to the stored streak.
pub(crate) const TALLY_ADD: &str = "UPDATE webhooks SET failure_count = failure_count + $1, \
     failing_since = COALESCE(failing_since, $2) WHERE id = $3";

/// Suspends a webhook that answered 410 (`$3`) or whose streak is at least
/// `$4` failures long and began at or before `$5`.
pub(crate) const SUSPEND_IF_FAILING: &str = "UPDATE webhooks SET suspended = TRUE, \
     suspended_at = $1, version = version + 1 WHERE id = $2 AND NOT suspended \
     AND ($3 OR (failure_count >= $4 AND failing_since <= $5))";

/// A claim of due deliveries (`Store::claim_due_deliveries`): lease up to
/// `limit` of those due at `now` to `owner` until `lease_until`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Claim<'a> {
    pub owner: &'a str,
    pub now: i64,
    pub lease_until: i64,
    pub limit: usize,
}

/// A delivery as a claim returns it.
#[derive(sqlx::FromRow)]
pub(crate) struct ClaimedRow {
    pub delivery_id: i64,
    pub tenant_id: String,
    pub event_seq: i64,
    pub webhook_id: i64,
    pub event_type: String,
    pub attempts: i64,
    pub retry_step: i64,
}

/// A subscriber from its row (`SUBSCRIBERS`): `events` is JSON text.
pub(crate) fn subscriber(id: i64, events: &str, suspended: bool) -> StoreResult<Subscriber> {
    Ok(Subscriber {
        id,
        events: serde_json::from_str(events).map_err(|_| StoreError::Corrupt("webhooks.events"))?,
        suspended,
    })
}

/// The claimed deliveries as jobs, given their events' (id, created_at,
/// body) by sequence number; a delivery whose event is gone is dropped.
pub(crate) fn claimed_jobs(
    claimed: Vec<ClaimedRow>,
    events: &HashMap<i64, (String, i64, bytes::Bytes)>,
) -> Vec<DeliveryJob> {
    claimed
        .into_iter()
        .filter_map(|c| {
            let (event_id, created_at, body) = events.get(&c.event_seq)?.clone();
            Some(DeliveryJob {
                delivery_id: c.delivery_id,
                tenant_id: c.tenant_id,
                webhook_id: c.webhook_id,
                event_id,
                event_type: c.event_type,
                event_created_at: created_at,
                body,
                attempts: c.attempts as u32,
                retry_step: c.retry_step as u32,
            })
        })
        .collect()
}
