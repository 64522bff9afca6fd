//! The hot path's SQL, one text for both backends (`$N` placeholders,
//! numbered in order of first use, so rusqlite's positional binding and
//! sqlx's numbered binding agree), and the assembly of claimed rows into
//! jobs. Where the databases differ (row locks on PostgreSQL), the text is
//! built from the same parts by a macro.

use std::collections::HashMap;
use std::sync::Arc;

use crate::domain::delivery::{DeliveryJob, NewEvent, Outcome};
use crate::domain::fanout::Subscriber;
use crate::domain::filter::Filter;
use crate::domain::operational::{Cause, DeliveryRef, Happening, OperationalTarget};
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

/// Delivery `d` may be attempted as far as ordering goes: it is unordered,
/// or the oldest unfinished delivery of its fifo queue (webhook, key).
/// The one rule that keeps a queue one-in-flight, on every instance: a
/// queue's next delivery is not claimable until its head's outcome is
/// committed. Unordered rows stop at `IS NULL`.
macro_rules! queue_head {
    () => {
        "(d.ordering_key IS NULL OR NOT EXISTS (SELECT 1 FROM deliveries AS o \
         WHERE o.webhook_id = d.webhook_id AND o.ordering_key = d.ordering_key \
         AND o.status IN ('pending', 'retrying') AND o.id < d.id))"
    };
}
pub(crate) use queue_head;

/// Leases up to `$4` due deliveries, in (due time, id) order; `$lock`
/// skips rows another instance is claiming (PostgreSQL).
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE deliveries SET lease_owner = $1, lease_until = $2, next_attempt_at = $2 \
             WHERE id IN (SELECT d.id FROM deliveries AS d WHERE d.status IN ('pending', 'retrying') \
             AND d.next_attempt_at <= $3 AND ",
            $crate::store::hot_sql::queue_head!(),
            " ORDER BY d.next_attempt_at, d.id LIMIT $4",
            $lock,
            ") RETURNING id AS delivery_id, tenant_id, event_seq, webhook_id, event_type, \
             attempts, retry_step, ordering_key IS NOT NULL AS ordered"
        )
    };
}
pub(crate) use claim_sql;

pub(crate) const CLEAR_EXPIRED_KEY: &str =
    "UPDATE events SET idempotency_key = NULL WHERE seq = $1";

/// The enabled webhooks of one tenant and environment.
pub(crate) const SUBSCRIBERS: &str = "SELECT id, events, suspended, filter, version, \
     ordering = 'fifo', paused FROM webhooks WHERE tenant_id = $1 AND environment = $2 AND enabled";

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
     updated_at, ordering_key) ";

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
    pub ordered: bool,
}

/// A row of `SUBSCRIBERS`.
pub(crate) struct SubscriberRow {
    pub id: i64,
    /// JSON text.
    pub events: String,
    pub suspended: bool,
    pub filter: Option<String>,
    pub version: i64,
    pub ordered: bool,
    pub paused: bool,
}

/// Compiled filters by webhook id, with the webhook version they were
/// compiled from: a filter is compiled once per version, not per event or
/// per batch. Entries of deleted webhooks stay until the process ends
/// (one small entry per filtered webhook ever read).
#[derive(Debug, Default)]
pub(crate) struct FilterCache {
    compiled: std::sync::Mutex<HashMap<i64, (i64, Arc<Filter>)>>,
}

impl FilterCache {
    fn get(&self, id: i64, version: i64, text: &str) -> StoreResult<Arc<Filter>> {
        let mut map = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((v, f)) = map.get(&id)
            && *v == version
        {
            return Ok(f.clone());
        }
        let f =
            Arc::new(Filter::from_text(text).map_err(|_| StoreError::Corrupt("webhooks.filter"))?);
        map.insert(id, (version, f.clone()));
        Ok(f)
    }
}

/// A subscriber from its row, its filter compiled through `cache`.
pub(crate) fn subscriber(r: SubscriberRow, cache: &FilterCache) -> StoreResult<Subscriber> {
    Ok(Subscriber {
        id: r.id,
        events: serde_json::from_str(&r.events)
            .map_err(|_| StoreError::Corrupt("webhooks.events"))?,
        suspended: r.suspended,
        filter: r
            .filter
            .as_deref()
            .map(|t| cache.get(r.id, r.version, t))
            .transpose()?,
        ordered: r.ordered,
        paused: r.paused,
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
                ordered: c.ordered,
            })
        })
        .collect()
}

/// The operational causes in a batch's outcomes: the webhooks it
/// suspended and those a success recovered (tenants read from their
/// outcomes), and each delivery that exhausted its schedule.
fn outcome_causes(outcomes: &[Outcome], suspended: &[i64], recovered: &[i64]) -> Vec<Cause> {
    let tenant_of = |id: i64| {
        outcomes
            .iter()
            .find(|o| o.webhook_id == id)
            .map(|o| o.tenant_id.clone())
    };
    let mut causes = Vec::new();
    for (ids, happening) in [
        (suspended, Happening::Suspended),
        (recovered, Happening::Recovered),
    ] {
        for &id in ids {
            if let Some(tenant) = tenant_of(id) {
                causes.push(Cause {
                    happening,
                    tenant,
                    webhook_id: id,
                    delivery: None,
                });
            }
        }
    }
    for o in outcomes {
        if let Some(x) = &o.exhausted {
            causes.push(Cause {
                happening: Happening::Exhausted,
                tenant: o.tenant_id.clone(),
                webhook_id: o.webhook_id,
                delivery: Some(DeliveryRef {
                    delivery_id: o.delivery_id,
                    event_id: x.event_id.clone(),
                    event_type: x.event_type.clone(),
                }),
            });
        }
    }
    causes
}

/// A batch's events with the operational events its outcomes cause
/// appended (stored with their cause, in the same transaction); borrowed
/// as they are when there are none, which is the hot path's case.
pub(crate) fn with_operational_events<'a>(
    events: &'a [NewEvent],
    target: Option<&OperationalTarget>,
    outcomes: &[Outcome],
    suspended: &[i64],
    recovered: &[i64],
    now: i64,
) -> std::borrow::Cow<'a, [NewEvent]> {
    let operational = match target {
        Some(target) if !outcomes.is_empty() => {
            operational_events(target, &outcome_causes(outcomes, suspended, recovered), now)
        }
        _ => Vec::new(),
    };
    if operational.is_empty() {
        std::borrow::Cow::Borrowed(events)
    } else {
        std::borrow::Cow::Owned([events, &operational].concat())
    }
}

/// The events `causes` make in `target` (none for the operator tenant's own).
fn operational_events(target: &OperationalTarget, causes: &[Cause], now: i64) -> Vec<NewEvent> {
    causes
        .iter()
        .filter_map(|c| target.event(c, crate::publish::new_event_id(now), now))
        .collect()
}
