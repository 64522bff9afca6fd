//! The PostgreSQL side of the hot path: the commit loop's transaction
//! (outcomes, then events and their deliveries) and lease claims with
//! `FOR UPDATE SKIP LOCKED`.
//!
//! Written for round trips, not for symmetry with SQLite: every statement
//! takes its rows as arrays (`unnest`), so its text never changes with the
//! batch size and sqlx prepares it once per connection; what can share a
//! statement does (attempts with the deliveries they update, events with
//! their deliveries, the whole audience of a batch, a claim with its
//! events). A commit is then BEGIN, three statements (more with idempotency keys
//! or a suspension), COMMIT — or, when it needs no lock, no suspension
//! check, no notification and no operational event, one statement after
//! the audience's read (outcomes and new events written together), or
//! one alone for outcomes alone — and
//! several commits run at once (`Store::commit_lanes`), so PostgreSQL's
//! group commit merges their WAL flushes.
//!
//! Locks are taken in one order, so concurrent commits (of this instance or
//! another) wait for each other but never deadlock: the webhooks a tally
//! writes, by id; then the advisory locks of the batch's idempotency keys,
//! then those of the fifo queues it adds to (each set in ascending order),
//! by value; deliveries and events a commit writes are its own.
//!
//! Delivery control (SPEC §12): filters are evaluated in memory on the
//! audience read, operational events are more events of the same batch
//! (inserted by the same statement), and a fifo queue is kept
//! one-in-flight by the claim itself (only a queue's oldest unfinished
//! delivery is claimable, and claimed rows are locked `SKIP LOCKED`). That
//! holds only if a queue's deliveries become visible in id order, hence
//! the queue locks: commits adding to one queue run one after the other.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{PgConnection, Postgres, Row};

use super::{PostgresStore, WORK_CHANNEL};
use crate::domain::delivery::{DeliveryJob, NewEvent, Outcome, PublishedEvent, delivery_body};
use crate::domain::fanout::{Audience, Lease, PublishBatch, PublishPlan, StoredKey, key_lookups};
use crate::domain::tally::{WebhookTally, fold_outcomes};
use crate::store::hot_sql::{
    Claim, ClaimedRow, FilterCache, SubscriberRow, claimed_jobs, subscriber,
    with_operational_events,
};
use crate::store::{CommitBatch, CommitFailed, Committed, StoreError, StoreResult};

/// The outcomes, in one statement: each attempt's row (only for a
/// delivery the UPDATE found and so locked: one that a webhook's deletion
/// failed and the purge then removed is skipped, not a foreign-key error
/// that would fail every batch it is carried into), each delivery's new
/// state, and the failure streaks they make, one row per webhook (a
/// data-modifying CTE runs to completion whether or not it is read);
/// answers the webhooks whose stored streak a success ended (recovered). A
/// streak that ended (`reset_at`) replaces the stored one and is written
/// only when it changes, so a webhook that keeps succeeding is never
/// written; failures alone add to it. Webhook rows are locked in id order
/// (see the header).
const RECORD: &str = "WITH v AS (\
       SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[]) \
       AS v (id, status, attempted, next_at, code, error)), \
     u AS (UPDATE deliveries AS d SET status = v.status, attempts = d.attempts + v.attempted, \
       retry_step = d.retry_step + v.attempted, next_attempt_at = v.next_at, lease_owner = NULL, \
       lease_until = NULL, last_status_code = COALESCE(v.code, d.last_status_code), \
       last_error = CASE WHEN v.attempted = 1 THEN v.error ELSE d.last_error END, updated_at = $7 \
       FROM v WHERE d.id = v.id RETURNING d.id), \
     t AS (SELECT * FROM unnest($19::bigint[], $20::bigint[], $21::bigint[], $22::bigint[]) \
       AS t (id, failures, first_failure, reset_at)), \
     l AS (SELECT w.id FROM webhooks AS w JOIN t ON w.id = t.id \
       WHERE t.reset_at IS NULL OR w.failure_count <> t.failures \
         OR w.failing_since IS DISTINCT FROM t.first_failure \
       ORDER BY w.id FOR NO KEY UPDATE OF w), \
     s AS (UPDATE webhooks AS w SET \
       failure_count = CASE WHEN t.reset_at IS NULL THEN w.failure_count + t.failures ELSE t.failures END, \
       failing_since = CASE WHEN t.reset_at IS NULL THEN COALESCE(w.failing_since, t.first_failure) \
         ELSE t.first_failure END, \
       last_success_at = COALESCE(t.reset_at, w.last_success_at) \
       FROM t, l WHERE w.id = t.id AND l.id = t.id \
       RETURNING w.id, t.reset_at IS NOT NULL AND t.failures = 0 AS recovered), \
     a AS (INSERT INTO attempts (delivery_id, tenant_id, attempted_at, duration_ms, url, request_headers, \
       response_status, response_headers, response_body, error_kind, error) \
     SELECT x.* FROM unnest($8::bigint[], $9::text[], $10::bigint[], $11::bigint[], $12::text[], \
       $13::text[], $14::bigint[], $15::text[], $16::text[], $17::text[], $18::text[]) \
       AS x (delivery_id, tenant_id, attempted_at, duration_ms, url, request_headers, \
         response_status, response_headers, response_body, error_kind, error) \
       WHERE x.delivery_id IN (SELECT id FROM u)) \
     SELECT id FROM s WHERE recovered";

/// Suspends each webhook that answered 410 or whose streak is at least
/// `min_failures` long and began at or before `since`; answers their ids.
const SUSPEND: &str = "WITH s AS (\
       SELECT * FROM unnest($2::bigint[], $3::bool[], $4::bigint[], $5::bigint[]) \
       AS s (id, gone, min_failures, since)), \
     l AS (SELECT w.id FROM webhooks AS w JOIN s ON w.id = s.id \
       WHERE NOT w.suspended AND (s.gone OR (w.failure_count >= s.min_failures \
         AND w.failing_since <= s.since)) \
       ORDER BY w.id FOR NO KEY UPDATE OF w) \
     UPDATE webhooks AS w SET suspended = TRUE, suspended_at = $1, version = version + 1 \
     FROM l WHERE w.id = l.id AND NOT w.suspended RETURNING w.id";

/// Serialises commits that carry the same idempotency key (here or on
/// another instance): the later one waits, then finds the first one's
/// event. Keys are hashed to `bigint` and locked in ascending order.
const LOCK_KEYS: &str = "SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) AS k";

/// The stored events holding the batch's idempotency keys.
const FIND_KEYS: &str = "SELECT e.tenant_id, e.idempotency_key, e.seq, e.id, e.event_type, \
       e.created_at, e.delivery_count \
     FROM events AS e JOIN unnest($1::text[], $2::text[]) AS k (tenant_id, idempotency_key) \
       ON e.tenant_id = k.tenant_id AND e.idempotency_key = k.idempotency_key";

const CLEAR_EXPIRED_KEYS: &str =
    "UPDATE events SET idempotency_key = NULL WHERE seq = ANY($1::bigint[])";

/// Everything fan-out reads, in one statement: `kind` 0 is an enabled
/// webhook of a (tenant, environment) group, 1 a tenant's type whose
/// category is not its name's first segment, 2 a webhook named by a test
/// send (enabled or not), 3 the audience generation this was read at
/// (`audiences`).
const AUDIENCE: &str = "\
     SELECT 0 AS kind, w.tenant_id, w.environment AS tag, w.id, w.events AS text, w.suspended, \
         w.filter, w.version, w.ordering = 'fifo' AS ordered, w.paused \
       FROM webhooks AS w JOIN unnest($1::text[], $2::text[]) AS g (tenant_id, environment) \
         ON w.tenant_id = g.tenant_id AND w.environment = g.environment \
       WHERE w.enabled \
     UNION ALL \
     SELECT 1, t.tenant_id, t.name, 0, t.category, FALSE, NULL, 0, FALSE, FALSE FROM event_types AS t \
       WHERE t.tenant_id = ANY($3::text[]) \
         AND substr(t.name, 1, length(t.category) + 1) <> t.category || '.' \
     UNION ALL \
     SELECT 2, w.tenant_id, '', w.id, '', w.suspended, NULL, 0, FALSE, FALSE \
       FROM webhooks AS w JOIN unnest($4::text[], $5::bigint[]) AS n (tenant_id, id) \
         ON w.tenant_id = n.tenant_id AND w.id = n.id \
     UNION ALL \
     SELECT 3, '', '', generation, '', FALSE, NULL, 0, FALSE, FALSE FROM audience_generation";

/// The new events and their deliveries, in one statement; answers each
/// delivery's id with the event and webhook it is for (RETURNING does not
/// promise input order). Deliveries take their ids in the plan's order
/// (`ORDER BY p.n`), as on SQLite: whatever join the planner picks, a
/// batch's older events get the smaller ids, which claims and resumes go
/// by. Planned on a kept audience, `$18` is the
/// generation it was read at: if that is no longer current in this
/// statement's snapshot, nothing is written and the answer is one row of
/// NULLs (`audiences`).
/// INSERT's check that `$18`, the generation a kept audience was read at,
/// is unset or still current (one text for every row source it guards).
macro_rules! current_audience {
    () => {
        "($18::bigint IS NULL OR $18::bigint = (SELECT generation FROM audience_generation))"
    };
}

const INSERT: &str = concat!(
    "WITH e AS (\
       INSERT INTO events (id, tenant_id, event_type, environment, data, idempotency_key, \
         delivery_count, created_at) \
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
         $6::text[], $7::bigint[], $8::bigint[]) \
       WHERE ",
    current_audience!(),
    " RETURNING id, seq, tenant_id, event_type), \
     d AS (INSERT INTO deliveries (tenant_id, event_seq, webhook_id, event_type, status, \
       next_attempt_at, lease_owner, lease_until, created_at, updated_at, ordering_key) \
     SELECT e.tenant_id, e.seq, p.webhook_id, e.event_type, p.status, p.next_at, \
       CASE WHEN p.leased THEN $14::text END, CASE WHEN p.leased THEN $15::bigint END, \
       $16::bigint, $16::bigint, p.ordering_key \
     FROM unnest($9::text[], $10::bigint[], $11::text[], $12::bigint[], $13::bool[], $17::text[]) \
       WITH ORDINALITY AS p (event_id, webhook_id, status, next_at, leased, ordering_key, n) \
     JOIN e ON e.id = p.event_id \
     ORDER BY p.n \
     RETURNING id, event_seq, webhook_id) \
     SELECT d.id, e.id, d.webhook_id FROM d JOIN e ON e.seq = d.event_seq \
     UNION ALL \
     SELECT NULL, NULL, NULL WHERE NOT ",
    current_audience!()
);

/// RECORD and INSERT as one statement (INSERT's parameters after RECORD's
/// 22), answering INSERT's rows: a batch of outcomes and new events that
/// needs no lock, no suspension check and no notification is then one
/// round trip and one transaction of its own (its WAL flush shared with
/// the other lanes'), instead of BEGIN, RECORD, INSERT, COMMIT. What the
/// webhooks' recoveries would answer is not read: only operational events
/// use it, and a batch with an operational tenant takes the transaction.
static RECORD_AND_INSERT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let record = RECORD
        .strip_suffix(" SELECT id FROM s WHERE recovered")
        .expect("RECORD ends with its answer");
    // Planned on a stale kept audience, the statement writes nothing at
    // all, outcomes included: the batch is then written again whole, and
    // a failure of that second statement leaves nothing stored, as a
    // failed batch must.
    let mut record = record.to_owned();
    let current = shift_parameters(current_audience!(), 22);
    for rows in [
        "AS v (id, status, attempted, next_at, code, error))",
        "AS t (id, failures, first_failure, reset_at))",
    ] {
        assert_eq!(record.matches(rows).count(), 1, "{rows}");
        let unguarded = rows.strip_suffix(')').expect("a closing parenthesis");
        record = record.replace(rows, &format!("{unguarded} WHERE {current})"));
    }
    let insert = INSERT.strip_prefix("WITH ").expect("INSERT is a WITH");
    format!("{record}, {}", shift_parameters(insert, 22))
});

/// `text` with each parameter `$n` renumbered `$(n + by)`.
fn shift_parameters(text: &str, by: usize) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            let n: usize = rest[..digits].parse().expect("digits");
            out.push_str(&(n + by).to_string());
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

/// Leases up to `$4` due deliveries and reads their events, in one
/// statement (so one round trip, and no transaction around it). Of a fifo
/// queue only the head is claimable (`hot_sql::queue_head`): another
/// instance's claim sees the head unfinished until its outcome commits,
/// and a row two claims both pick is locked by one and skipped by the other.
pub(super) const CLAIM: &str = concat!(
    "WITH c AS (\
       UPDATE deliveries SET lease_owner = $1, lease_until = $2, next_attempt_at = $2 \
       WHERE id IN (SELECT d.id FROM deliveries AS d WHERE d.status IN ('pending', 'retrying') \
         AND d.next_attempt_at <= $3 AND ",
    crate::store::hot_sql::queue_head!(),
    " ORDER BY d.next_attempt_at, d.id LIMIT $4 FOR UPDATE SKIP LOCKED) \
       RETURNING id, tenant_id, event_seq, webhook_id, event_type, attempts, retry_step, \
         ordering_key IS NOT NULL AS ordered) \
     SELECT c.id AS delivery_id, c.tenant_id, c.event_seq, c.webhook_id, c.event_type, c.attempts, \
       c.retry_step, c.ordered, e.id AS event_id, e.data, e.created_at \
     FROM c JOIN events AS e ON e.seq = c.event_seq"
);

impl PostgresStore {
    pub(super) async fn commit_hot(
        &self,
        batch: CommitBatch,
        now: i64,
    ) -> Result<Committed, CommitFailed> {
        let CommitBatch {
            events,
            lease,
            outcomes,
        } = batch;
        match self
            .commit_in_tx(&events, lease.as_ref(), &outcomes, now)
            .await
        {
            Ok((published, suspended)) => Ok(Committed {
                published,
                suspended,
                outcomes,
            }),
            Err(error) => Err(CommitFailed { error, outcomes }),
        }
    }

    /// Commits on one of the hot connections, which goes back only if the
    /// commit succeeded.
    async fn commit_in_tx(
        &self,
        events: &[NewEvent],
        lease: Option<&Lease>,
        outcomes: &[Outcome],
        now: i64,
    ) -> StoreResult<(PublishBatch, Vec<i64>)> {
        let mut conn = self.hot.take(&self.pool).await?;
        let committed = self
            .commit_on(&mut conn, events, lease, outcomes, now)
            .await;
        if committed.is_ok() {
            conn.done();
        }
        committed
    }

    async fn commit_on(
        &self,
        conn: &mut PgConnection,
        events: &[NewEvent],
        lease: Option<&Lease>,
        outcomes: &[Outcome],
        now: i64,
    ) -> StoreResult<(PublishBatch, Vec<i64>)> {
        use sqlx::Connection;
        let tallies = fold_outcomes(outcomes);
        let operational = self.shared.operational.get();
        // Without an operational tenant, a suspension to check, work to
        // announce or an idempotency key to lock, a batch needs no
        // transaction around its statements: outcomes alone are RECORD,
        // and new events (with outcomes or not) are the audience's read
        // then one statement that writes everything (RECORD_AND_INSERT),
        // which PostgreSQL runs as a transaction of its own. Two round
        // trips instead of five (BEGIN, RECORD, AUDIENCE, INSERT, COMMIT):
        // under load every round trip waits for a core. The audience read
        // outside the write changes nothing: in a transaction at READ
        // COMMITTED it had its own snapshot too.
        let lean = operational.is_none()
            && !tallies.iter().any(|t| t.may_suspend())
            && !leaves_claimable_work(outcomes)
            && events.iter().all(|e| e.idempotency_key.is_none());
        let mut planned = None;
        if lean {
            if events.is_empty() {
                record(conn, outcomes, &tallies, now).await?;
                return Ok((PublishBatch::default(), Vec::new()));
            }
            // A kept audience saves the read; the write checks it is still
            // current (`audiences`). If it was not, nothing was written and
            // the batch goes again on a fresh read, which is not checked:
            // at most two rounds.
            let mut use_kept = true;
            loop {
                let mut plan = PublishPlan::new(events, Vec::new(), now);
                let kept = use_kept.then(|| self.audiences.lookup(&plan)).flatten();
                let (audience, planned_at) = match kept {
                    Some((audience, generation)) => (audience, Some(generation)),
                    None => {
                        let (audience, generation) =
                            audience(conn, &self.shared.filters, &plan).await?;
                        self.audiences.keep(&plan, &audience, generation);
                        (audience, None)
                    }
                };
                plan.fan_out(&audience, lease, now);
                if needs_transaction(&plan) {
                    // Fifo queues to lock, or deliveries left for a claim
                    // to announce: the plan goes into the transaction
                    // below, made again there on a fresh read if it was
                    // made on a kept one.
                    planned = planned_at.is_none().then_some(plan);
                    break;
                }
                let tally = (outcomes, tallies.as_slice());
                match insert(conn, events, &plan, lease, now, tally, planned_at).await? {
                    Some(ids) => return Ok((plan.finish(&ids), Vec::new())),
                    None => {
                        self.audiences.forget();
                        use_kept = false;
                    }
                }
            }
        }
        let mut tx = conn.begin().await?;
        let (suspended, recovered) = if outcomes.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            record(&mut tx, outcomes, &tallies, now).await?
        };
        // Operational events join this batch's events: stored with their cause.
        let with_operational =
            with_operational_events(events, operational, outcomes, &suspended, &recovered, now);
        let published = match planned {
            Some(plan) => write_planned(&mut tx, events, plan, lease, now).await?,
            None if with_operational.is_empty() => PublishBatch::default(),
            None => {
                let events: &[NewEvent] = &with_operational;
                let plan = plan_publish(&mut tx, &self.shared.filters, events, lease, now).await?;
                write_planned(&mut tx, events, plan, lease, now).await?
            }
        };
        // Wake the other instances when work is left for a claim.
        if published.unleased > 0 || leaves_claimable_work(outcomes) {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(WORK_CHANNEL)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok((published, suspended))
    }

    pub(super) async fn claim_hot(&self, c: Claim<'_>) -> StoreResult<Vec<DeliveryJob>> {
        let mut conn = self.hot.take(&self.pool).await?;
        let rows: Vec<ClaimedEventRow> = sqlx::query_as(CLAIM)
            .bind(c.owner)
            .bind(c.lease_until)
            .bind(c.now)
            .bind(c.limit as i64)
            .fetch_all(&mut *conn)
            .await?;
        conn.done();
        let mut events: HashMap<i64, (String, i64, bytes::Bytes)> = HashMap::new();
        let mut claimed = Vec::with_capacity(rows.len());
        for r in rows {
            events.entry(r.row.event_seq).or_insert_with(|| {
                let body = delivery_body(&r.event_id, &r.row.event_type, r.created_at, &r.data);
                (r.event_id, r.created_at, body)
            });
            claimed.push(r.row);
        }
        Ok(claimed_jobs(claimed, &events))
    }
}

/// A row of `AUDIENCE`.
#[derive(sqlx::FromRow)]
struct AudienceRow {
    kind: i32,
    tenant_id: String,
    tag: String,
    id: i64,
    text: String,
    suspended: bool,
    filter: Option<String>,
    version: i64,
    ordered: bool,
    paused: bool,
}

/// A claimed delivery with its event.
#[derive(sqlx::FromRow)]
struct ClaimedEventRow {
    #[sqlx(flatten)]
    row: ClaimedRow,
    event_id: String,
    data: String,
    created_at: i64,
}

/// Reads what the plan asks for (stored idempotency keys, under their
/// locks; the audience) and plans the fan-out (`domain::fanout`).
async fn plan_publish<'a>(
    tx: &mut PgConnection,
    filters: &FilterCache,
    events: &'a [NewEvent],
    lease: Option<&Lease>,
    now: i64,
) -> StoreResult<PublishPlan<'a>> {
    let lookups = key_lookups(events);
    let mut found = Vec::with_capacity(lookups.len());
    if !lookups.is_empty() {
        let mut locks: Vec<i64> = lookups
            .iter()
            .map(|&i| key_lock(&events[i].tenant_id, events[i].idempotency_key.as_deref()))
            .collect();
        locks.sort_unstable();
        locks.dedup();
        sqlx::query(LOCK_KEYS)
            .bind(&locks)
            .execute(&mut *tx)
            .await?;
        let tenants: Vec<&str> = lookups
            .iter()
            .map(|&i| events[i].tenant_id.as_str())
            .collect();
        let keys: Vec<&str> = lookups
            .iter()
            .map(|&i| events[i].idempotency_key.as_deref().unwrap_or_default())
            .collect();
        let rows: Vec<(String, String, i64, String, String, i64, i64)> = sqlx::query_as(FIND_KEYS)
            .bind(&tenants)
            .bind(&keys)
            .fetch_all(&mut *tx)
            .await?;
        let mut stored: HashMap<(String, String), StoredKey> = rows
            .into_iter()
            .map(|(tenant, key, seq, id, event_type, created_at, count)| {
                let answer = PublishedEvent {
                    id,
                    event_type,
                    created_at,
                    deliveries: count as u32,
                };
                ((tenant, key), StoredKey { seq, answer })
            })
            .collect();
        for (&i, (tenant, key)) in lookups.iter().zip(tenants.iter().zip(&keys)) {
            found.push((i, stored.remove(&(tenant.to_string(), key.to_string()))));
        }
    }
    let mut plan = PublishPlan::new(events, found, now);
    if !plan.expired_keys.is_empty() {
        sqlx::query(CLEAR_EXPIRED_KEYS)
            .bind(&plan.expired_keys)
            .execute(&mut *tx)
            .await?;
    }
    let (audience, _) = audience(tx, filters, &plan).await?;
    plan.fan_out(&audience, lease, now);
    Ok(plan)
}

/// Fifo queues to lock, or deliveries a claim must be told of: the plan's
/// writes need a transaction.
fn needs_transaction(plan: &PublishPlan<'_>) -> bool {
    plan.deliveries
        .iter()
        .any(|d| d.ordered || d.left_for_a_claim())
}

/// Writes what the plan planned, in the caller's transaction: the fifo
/// queues' locks, then the events and their deliveries.
async fn write_planned(
    tx: &mut PgConnection,
    events: &[NewEvent],
    plan: PublishPlan<'_>,
    lease: Option<&Lease>,
    now: i64,
) -> StoreResult<PublishBatch> {
    // A fifo queue's deliveries must be inserted in commit order: a commit
    // that adds to a queue waits for any other that is adding to it, so
    // the later one's delivery ids are the larger ones and a claim never
    // finds an older delivery appearing behind one already in flight.
    let mut queue_locks: Vec<i64> = plan
        .deliveries
        .iter()
        .filter(|d| d.ordered)
        .map(|d| {
            let key = events[d.event].ordering_key.as_deref().unwrap_or_default();
            key_lock(&format!("fifo:{}", d.webhook_id), Some(key))
        })
        .collect();
    if !queue_locks.is_empty() {
        queue_locks.sort_unstable();
        queue_locks.dedup();
        sqlx::query(LOCK_KEYS)
            .bind(&queue_locks)
            .execute(&mut *tx)
            .await?;
    }

    let ids = insert(tx, events, &plan, lease, now, (&[], &[]), None)
        .await?
        .ok_or(StoreError::Corrupt(
            "an unchecked insert answered a stale audience",
        ))?;
    Ok(plan.finish(&ids))
}

/// Inserts the plan's new events and their deliveries, in one statement
/// that also records `outcomes` (and their tallies) when there are any;
/// answers the delivery ids, aligned with the plan's deliveries. Given the
/// generation of the kept audience the plan was made on, answers `None`
/// if it is no longer current: then nothing is written.
async fn insert(
    conn: &mut PgConnection,
    events: &[NewEvent],
    plan: &PublishPlan<'_>,
    lease: Option<&Lease>,
    now: i64,
    (outcomes, tallies): (&[Outcome], &[WebhookTally]),
    planned_at: Option<i64>,
) -> StoreResult<Option<Vec<i64>>> {
    let fresh: Vec<&NewEvent> = plan.fresh().map(|i| &events[i]).collect();
    if fresh.is_empty() && outcomes.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let column = |f: fn(&NewEvent) -> &str| fresh.iter().map(|e| f(e)).collect::<Vec<&str>>();
    let counts: Vec<i64> = plan.fresh().map(|i| i64::from(plan.counts[i])).collect();
    let keys: Vec<Option<&str>> = fresh.iter().map(|e| e.idempotency_key.as_deref()).collect();
    let created: Vec<i64> = fresh.iter().map(|e| e.created_at).collect();
    let d = &plan.deliveries;
    let d_events: Vec<&str> = d.iter().map(|d| events[d.event].id.as_str()).collect();
    let d_webhooks: Vec<i64> = d.iter().map(|d| d.webhook_id).collect();
    let d_status: Vec<&str> = d.iter().map(|d| d.status.as_str()).collect();
    let d_next: Vec<Option<i64>> = d.iter().map(|d| d.next_attempt_at).collect();
    let d_leased: Vec<bool> = d.iter().map(|d| d.leased).collect();
    let d_keys: Vec<Option<&str>> = d
        .iter()
        .map(|d| {
            d.ordered
                .then(|| events[d.event].ordering_key.as_deref().unwrap_or_default())
        })
        .collect();
    let query = if outcomes.is_empty() {
        sqlx::query(INSERT)
    } else {
        bind_record(
            sqlx::query(RECORD_AND_INSERT.as_str()),
            outcomes,
            tallies,
            now,
        )
    };
    let rows = query
        .bind(column(|e| &e.id))
        .bind(column(|e| &e.tenant_id))
        .bind(column(|e| &e.event_type))
        .bind(column(|e| &e.environment))
        .bind(column(|e| &e.data))
        .bind(&keys)
        .bind(&counts)
        .bind(&created)
        .bind(&d_events)
        .bind(&d_webhooks)
        .bind(&d_status)
        .bind(&d_next)
        .bind(&d_leased)
        .bind(lease.map(|l| l.owner.as_str()))
        .bind(lease.map(|l| l.until))
        .bind(now)
        .bind(d_keys)
        .bind(planned_at)
        .fetch_all(&mut *conn)
        .await?;
    // Delivery ids aligned with the plan's deliveries.
    let mut by_target: HashMap<(String, i64), i64> = HashMap::with_capacity(rows.len());
    for row in rows {
        let Some(id) = row.try_get::<Option<i64>, _>(0)? else {
            return Ok(None);
        };
        by_target.insert((row.try_get(1)?, row.try_get(2)?), id);
    }
    let ids: Vec<i64> = d
        .iter()
        .map(|d| {
            by_target
                .get(&(events[d.event].id.clone(), d.webhook_id))
                .copied()
                .ok_or(StoreError::Corrupt(
                    "deliveries: an inserted row was not returned",
                ))
        })
        .collect::<StoreResult<_>>()?;
    Ok(Some(ids))
}

/// The webhooks and categories the plan's fan-out needs, and the audience
/// generation they were read at.
async fn audience(
    tx: &mut PgConnection,
    filters: &FilterCache,
    plan: &PublishPlan<'_>,
) -> StoreResult<(Audience, i64)> {
    let mut subscribers = vec![Vec::new(); plan.groups.len()];
    let mut categories = vec![HashMap::new(); plan.tenants.len()];
    let mut named = vec![None; plan.named.len()];
    let mut generation = None;
    let group_of: HashMap<(&str, &str), usize> = plan
        .groups
        .iter()
        .enumerate()
        .map(|(g, &k)| (k, g))
        .collect();
    let tenant_of: HashMap<&str, usize> = plan
        .tenants
        .iter()
        .enumerate()
        .map(|(t, &k)| (k, t))
        .collect();
    let named_of: HashMap<(&str, i64), usize> = plan
        .named
        .iter()
        .enumerate()
        .map(|(n, &k)| (k, n))
        .collect();
    let rows: Vec<AudienceRow> = sqlx::query_as(AUDIENCE)
        .bind(plan.groups.iter().map(|g| g.0).collect::<Vec<_>>())
        .bind(plan.groups.iter().map(|g| g.1).collect::<Vec<_>>())
        .bind(&plan.tenants)
        .bind(plan.named.iter().map(|n| n.0).collect::<Vec<_>>())
        .bind(plan.named.iter().map(|n| n.1).collect::<Vec<_>>())
        .fetch_all(&mut *tx)
        .await?;
    for r in rows {
        let (kind, tenant, tag, id, text, suspended) =
            (r.kind, r.tenant_id, r.tag, r.id, r.text, r.suspended);
        match kind {
            0 => {
                if let Some(&g) = group_of.get(&(tenant.as_str(), tag.as_str())) {
                    let row = SubscriberRow {
                        id,
                        events: text,
                        suspended,
                        filter: r.filter,
                        version: r.version,
                        ordered: r.ordered,
                        paused: r.paused,
                    };
                    subscribers[g].push(subscriber(row, filters)?);
                }
            }
            1 => {
                if let Some(&t) = tenant_of.get(tenant.as_str()) {
                    categories[t].insert(tag, text);
                }
            }
            2 => {
                if let Some(&n) = named_of.get(&(tenant.as_str(), id)) {
                    named[n] = Some(suspended);
                }
            }
            _ => generation = Some(id),
        }
    }
    let generation = generation.ok_or(StoreError::Corrupt(
        "audience_generation: its one row is missing",
    ))?;
    // Fan-out goes through a group's webhooks in id order, as on SQLite.
    for s in &mut subscribers {
        s.sort_unstable_by_key(|s| s.id);
    }
    let audience = Audience {
        subscribers: subscribers.into_iter().map(Arc::new).collect(),
        categories: categories.into_iter().map(Arc::new).collect(),
        named,
    };
    Ok((audience, generation))
}

/// A retry scheduled, or a fifo queue's head ended (its next delivery
/// becomes claimable): work another instance may take.
fn leaves_claimable_work(outcomes: &[Outcome]) -> bool {
    outcomes
        .iter()
        .any(|o| o.next_attempt_at.is_some() || (o.ordered && o.status.is_terminal()))
}

/// Records the outcomes and the failure streaks they make (`tallies`, from
/// `fold_outcomes`); answers the webhooks this suspended, and those a
/// success recovered. RECORD alone when no tally may suspend.
async fn record(
    tx: &mut PgConnection,
    outcomes: &[Outcome],
    tallies: &[WebhookTally],
    now: i64,
) -> StoreResult<(Vec<i64>, Vec<i64>)> {
    let recovered: Vec<i64> = bind_record(sqlx::query(RECORD), outcomes, tallies, now)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;

    let candidates: Vec<_> = tallies.iter().filter(|t| t.may_suspend()).collect();
    if candidates.is_empty() {
        return Ok((Vec::new(), recovered));
    }
    let suspended: Vec<i64> = sqlx::query_scalar(SUSPEND)
        .bind(now)
        .bind(candidates.iter().map(|t| t.webhook_id).collect::<Vec<_>>())
        .bind(candidates.iter().map(|t| t.gone).collect::<Vec<_>>())
        .bind(
            candidates
                .iter()
                .map(|t| i64::from(t.min_failures))
                .collect::<Vec<_>>(),
        )
        .bind(
            candidates
                .iter()
                .map(|t| t.failing_since_at_most(now))
                .collect::<Vec<_>>(),
        )
        .fetch_all(&mut *tx)
        .await?;
    Ok((suspended, recovered))
}

/// RECORD's 22 parameters, bound to `query` (RECORD or RECORD_AND_INSERT).
fn bind_record<'q>(
    query: Query<'q, Postgres, PgArguments>,
    outcomes: &'q [Outcome],
    tallies: &'q [WebhookTally],
    now: i64,
) -> Query<'q, Postgres, PgArguments> {
    let attempted: Vec<(&Outcome, &crate::domain::delivery::AttemptRecord)> = outcomes
        .iter()
        .filter_map(|o| o.attempt.as_ref().map(|a| (o, a)))
        .collect();
    query
        .bind(outcomes.iter().map(|o| o.delivery_id).collect::<Vec<_>>())
        .bind(
            outcomes
                .iter()
                .map(|o| o.status.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            outcomes
                .iter()
                .map(|o| i64::from(o.attempt.is_some()))
                .collect::<Vec<_>>(),
        )
        .bind(
            outcomes
                .iter()
                .map(|o| o.next_attempt_at)
                .collect::<Vec<_>>(),
        )
        .bind(
            outcomes
                .iter()
                .map(|o| {
                    o.attempt
                        .as_ref()
                        .and_then(|a| a.response_status.map(i64::from))
                })
                .collect::<Vec<_>>(),
        )
        .bind(
            outcomes
                .iter()
                .map(|o| o.attempt.as_ref().and_then(|a| a.error.as_deref()))
                .collect::<Vec<_>>(),
        )
        .bind(now)
        .bind(
            attempted
                .iter()
                .map(|(o, _)| o.delivery_id)
                .collect::<Vec<_>>(),
        )
        .bind(
            attempted
                .iter()
                .map(|(o, _)| o.tenant_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            attempted
                .iter()
                .map(|(_, a)| a.attempted_at)
                .collect::<Vec<_>>(),
        )
        .bind(
            attempted
                .iter()
                .map(|(_, a)| a.duration_ms)
                .collect::<Vec<_>>(),
        )
        .bind(
            attempted
                .iter()
                .map(|(_, a)| a.url.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            attempted
                .iter()
                .map(|(_, a)| a.request_headers.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            attempted
                .iter()
                .map(|(_, a)| a.response_status.map(i64::from))
                .collect::<Vec<_>>(),
        )
        .bind(
            attempted
                .iter()
                .map(|(_, a)| a.response_headers.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            attempted
                .iter()
                .map(|(_, a)| a.response_body.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            attempted
                .iter()
                .map(|(_, a)| a.error_kind.map(|k| k.as_str()))
                .collect::<Vec<_>>(),
        )
        .bind(
            attempted
                .iter()
                .map(|(_, a)| a.error.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(tallies.iter().map(|t| t.webhook_id).collect::<Vec<_>>())
        .bind(tallies.iter().map(|t| t.failures).collect::<Vec<_>>())
        .bind(tallies.iter().map(|t| t.first_failure).collect::<Vec<_>>())
        .bind(tallies.iter().map(|t| t.reset_at).collect::<Vec<_>>())
}

/// The advisory lock of one idempotency key, or of one fifo queue (64 bits
/// of the SHA-256 of its scope and key).
fn key_lock(tenant: &str, key: Option<&str>) -> i64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(tenant.as_bytes());
    h.update([0]);
    h.update(key.unwrap_or_default().as_bytes());
    let d = h.finalize();
    i64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_shifted_past_records() {
        assert_eq!(
            shift_parameters("a $1, $22 || '$' $", 22),
            "a $23, $44 || '$' $"
        );
        // RECORD_AND_INSERT takes RECORD's 22 and INSERT's 18.
        let text = RECORD_AND_INSERT.as_str();
        for n in 1..=40 {
            assert!(
                text.contains(&format!("${n}:"))
                    || text.contains(&format!("${n} "))
                    || text.contains(&format!("${n})"))
                    || text.contains(&format!("${n},")),
                "${n} missing"
            );
        }
        assert!(!text.contains("$41"), "{text}");
        assert!(text.ends_with(&format!(
            "WHERE NOT {}",
            shift_parameters(current_audience!(), 22)
        )));
    }
}
