//! The SQLite side of publishing and delivery: group-committed inserts,
//! lease claims, batched outcome records, the logs and the purge.

use std::collections::HashMap;

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::SqliteStore;
use crate::domain::delivery::{
    DeliveryJob, DeliveryStatus, NewEvent, Outcome, PublishedEvent, delivery_body,
};
use crate::domain::event_type::subscribes_to;
use crate::store::{
    AttemptRow, DeliveryFilter, DeliveryRecord, EventFilter, EventRecord, IDEMPOTENCY_WINDOW_MS,
    Lease, PublishBatch, QueueStats, StoreError, StoreResult,
};

/// Rows per multi-row INSERT (bound parameters stay well under SQLite's limit).
const CHUNK: usize = 400;

const DELIVERY_COLUMNS: &str = "d.id, d.tenant_id, e.id AS event_id, d.event_type, d.webhook_id, d.status, \
     d.attempts, d.next_attempt_at, d.last_status_code, d.last_error, d.created_at, d.updated_at";

#[derive(sqlx::FromRow)]
pub(super) struct DeliveryRow {
    id: i64,
    tenant_id: String,
    event_id: String,
    event_type: String,
    webhook_id: i64,
    status: String,
    attempts: i64,
    next_attempt_at: Option<i64>,
    last_status_code: Option<i64>,
    last_error: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl DeliveryRow {
    fn into_record(self) -> StoreResult<DeliveryRecord> {
        Ok(DeliveryRecord {
            status: DeliveryStatus::parse(&self.status)
                .ok_or(StoreError::Corrupt("deliveries.status"))?,
            id: self.id,
            tenant_id: self.tenant_id,
            event_id: self.event_id,
            event_type: self.event_type,
            webhook_id: self.webhook_id,
            attempts: self.attempts as u32,
            next_attempt_at: self.next_attempt_at,
            last_status_code: self.last_status_code.map(|c| c as u16),
            last_error: self.last_error,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct EventRow {
    seq: i64,
    id: String,
    tenant_id: String,
    event_type: String,
    environment: String,
    data: String,
    idempotency_key: Option<String>,
    delivery_count: i64,
    created_at: i64,
}

impl From<EventRow> for EventRecord {
    fn from(r: EventRow) -> Self {
        Self {
            seq: r.seq,
            id: r.id,
            tenant_id: r.tenant_id,
            event_type: r.event_type,
            environment: r.environment,
            data: r.data,
            idempotency_key: r.idempotency_key,
            delivery_count: r.delivery_count as u32,
            created_at: r.created_at,
        }
    }
}

const EVENT_COLUMNS: &str = "seq, id, tenant_id, event_type, environment, data, idempotency_key, delivery_count, created_at";

/// A webhook as fan-out needs it.
struct Subscriber {
    id: i64,
    events: Vec<String>,
    suspended: bool,
}

async fn subscribers(
    conn: &mut SqliteConnection,
    tenant: &str,
    environment: &str,
) -> StoreResult<Vec<Subscriber>> {
    let rows: Vec<(i64, String, bool)> = sqlx::query_as(
        "SELECT id, events, suspended FROM webhooks WHERE tenant_id = ? AND environment = ? AND enabled",
    )
    .bind(tenant)
    .bind(environment)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|(id, events, suspended)| {
            Ok(Subscriber {
                id,
                events: serde_json::from_str(&events)
                    .map_err(|_| StoreError::Corrupt("webhooks.events"))?,
                suspended,
            })
        })
        .collect()
}

/// How one event of a publish batch is answered.
enum Slot {
    /// Stored now.
    Fresh,
    /// Its idempotency key was seen earlier in this batch, at this index.
    SameAs(usize),
    /// Its idempotency key was seen within the window: the first answer.
    Replay(PublishedEvent),
}

/// A delivery about to be inserted.
struct PendingDelivery {
    event_index: usize,
    webhook_id: i64,
    status: DeliveryStatus,
    leased: bool,
}

impl SqliteStore {
    pub(super) async fn claim_due_impl(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> StoreResult<Vec<DeliveryJob>> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let claimed: Vec<(i64, String, i64, i64, String, i64, i64)> = sqlx::query_as(
            "UPDATE deliveries SET lease_owner = ?, lease_until = ?, next_attempt_at = ? WHERE id IN ( \
               SELECT id FROM deliveries WHERE status IN ('pending', 'retrying') AND next_attempt_at <= ? \
               ORDER BY next_attempt_at LIMIT ?) \
             RETURNING id, tenant_id, event_seq, webhook_id, event_type, attempts, retry_step",
        )
        .bind(owner)
        .bind(lease_until)
        .bind(lease_until)
        .bind(now)
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await?;
        let jobs = self.jobs_for(&mut tx, claimed).await?;
        tx.commit().await?;
        Ok(jobs)
    }

    /// Joins claimed rows with their events' bodies.
    async fn jobs_for(
        &self,
        conn: &mut SqliteConnection,
        claimed: Vec<(i64, String, i64, i64, String, i64, i64)>,
    ) -> StoreResult<Vec<DeliveryJob>> {
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let mut seqs: Vec<i64> = claimed.iter().map(|c| c.2).collect();
        seqs.sort_unstable();
        seqs.dedup();
        let mut events: HashMap<i64, (String, i64, bytes::Bytes)> = HashMap::new();
        for chunk in seqs.chunks(CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "SELECT seq, id, event_type, data, created_at FROM events WHERE seq IN (",
            );
            let mut sep = qb.separated(", ");
            for s in chunk {
                sep.push_bind(*s);
            }
            qb.push(")");
            let rows: Vec<(i64, String, String, String, i64)> =
                qb.build_query_as().fetch_all(&mut *conn).await?;
            for (seq, id, event_type, data, created_at) in rows {
                let body = delivery_body(&id, &event_type, created_at, &data);
                events.insert(seq, (id, created_at, body));
            }
        }
        Ok(claimed
            .into_iter()
            .filter_map(
                |(delivery_id, tenant_id, seq, webhook_id, event_type, attempts, retry_step)| {
                    let (event_id, created_at, body) = events.get(&seq)?.clone();
                    Some(DeliveryJob {
                        delivery_id,
                        tenant_id,
                        webhook_id,
                        event_id,
                        event_type,
                        event_created_at: created_at,
                        body,
                        attempts: attempts as u32,
                        retry_step: retry_step as u32,
                    })
                },
            )
            .collect())
    }

    /// Publishes and records in one transaction: one commit (and one
    /// fsync) for everything the hot path wrote since the last one.
    pub(super) async fn commit_batch_impl(
        &self,
        events: &[NewEvent],
        lease: Option<&Lease>,
        outcomes: &[Outcome],
        now: i64,
    ) -> StoreResult<(PublishBatch, Vec<i64>)> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let suspended = if outcomes.is_empty() {
            Vec::new()
        } else {
            record_in(&mut tx, outcomes, now).await?
        };
        let published = if events.is_empty() {
            PublishBatch::default()
        } else {
            publish_in(&mut tx, events, lease, now).await?
        };
        tx.commit().await?;
        Ok((published, suspended))
    }
}

/// Stores events and their deliveries within the caller's transaction.
async fn publish_in(
    tx: &mut SqliteConnection,
    events: &[NewEvent],
    lease: Option<&Lease>,
    now: i64,
) -> StoreResult<PublishBatch> {
    let mut slots: Vec<Slot> = Vec::with_capacity(events.len());
    let mut fresh: Vec<usize> = Vec::with_capacity(events.len());
    let mut keys_in_batch: HashMap<(&str, &str), usize> = HashMap::new();

    // Idempotency: replay a key seen within the window, here or earlier in this batch.
    for (i, e) in events.iter().enumerate() {
        let Some(key) = e.idempotency_key.as_deref() else {
            slots.push(Slot::Fresh);
            fresh.push(i);
            continue;
        };
        if let Some(&first) = keys_in_batch.get(&(e.tenant_id.as_str(), key)) {
            slots.push(Slot::SameAs(first));
            continue;
        }
        let seen: Option<(i64, String, String, i64, i64)> = sqlx::query_as(
            "SELECT seq, id, event_type, created_at, delivery_count FROM events \
             WHERE tenant_id = ? AND idempotency_key = ?",
        )
        .bind(&e.tenant_id)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        match seen {
            Some((_, id, event_type, created_at, count))
                if created_at > now - IDEMPOTENCY_WINDOW_MS =>
            {
                slots.push(Slot::Replay(PublishedEvent {
                    id,
                    event_type,
                    created_at,
                    deliveries: count as u32,
                }));
            }
            seen => {
                if let Some((seq, ..)) = seen {
                    // Expired: the key is free again.
                    sqlx::query("UPDATE events SET idempotency_key = NULL WHERE seq = ?")
                        .bind(seq)
                        .execute(&mut *tx)
                        .await?;
                }
                keys_in_batch.insert((e.tenant_id.as_str(), key), i);
                slots.push(Slot::Fresh);
                fresh.push(i);
            }
        }
    }

    // Fan-out, one query per (tenant, environment) in the batch.
    let mut subs: HashMap<(&str, &str), Vec<Subscriber>> = HashMap::new();
    let mut pending: Vec<PendingDelivery> = Vec::new();
    let mut counts = vec![0u32; events.len()];
    let mut lease_left = lease.map_or(0, |l| l.max);
    for &i in &fresh {
        let e = &events[i];
        let targets: Vec<(i64, bool)> = match e.only_webhook {
            Some(id) => {
                sqlx::query_as("SELECT id, suspended FROM webhooks WHERE tenant_id = ? AND id = ?")
                    .bind(&e.tenant_id)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .into_iter()
                    .collect()
            }
            None => {
                let k = (e.tenant_id.as_str(), e.environment.as_str());
                if let std::collections::hash_map::Entry::Vacant(slot) = subs.entry(k) {
                    slot.insert(subscribers(&mut *tx, k.0, k.1).await?);
                }
                subs[&k]
                    .iter()
                    .filter(|s| subscribes_to(&s.events, &e.event_type))
                    .map(|s| (s.id, s.suspended))
                    .collect()
            }
        };
        counts[i] = targets.len() as u32;
        for (webhook_id, suspended) in targets {
            let status = if suspended {
                DeliveryStatus::Diverted
            } else {
                DeliveryStatus::Pending
            };
            let leased = status == DeliveryStatus::Pending && lease_left > 0;
            if leased {
                lease_left -= 1;
            }
            pending.push(PendingDelivery {
                event_index: i,
                webhook_id,
                status,
                leased,
            });
        }
    }

    // Events, then deliveries, in multi-row inserts.
    let mut seqs: HashMap<String, i64> = HashMap::with_capacity(fresh.len());
    for chunk in fresh.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO events (id, tenant_id, event_type, environment, data, idempotency_key, \
             delivery_count, created_at) ",
        );
        qb.push_values(chunk, |mut b, &i| {
            let e = &events[i];
            b.push_bind(&e.id)
                .push_bind(&e.tenant_id)
                .push_bind(&e.event_type)
                .push_bind(&e.environment)
                .push_bind(&e.data)
                .push_bind(&e.idempotency_key)
                .push_bind(counts[i] as i64)
                .push_bind(e.created_at);
        });
        qb.push(" RETURNING id, seq");
        let rows: Vec<(String, i64)> = qb.build_query_as().fetch_all(&mut *tx).await?;
        seqs.extend(rows);
    }

    let mut jobs = Vec::new();
    let mut bodies: HashMap<usize, bytes::Bytes> = HashMap::new();
    let mut unleased = 0;
    for chunk in pending.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO deliveries (tenant_id, event_seq, webhook_id, event_type, status, \
             next_attempt_at, lease_owner, lease_until, created_at, updated_at) ",
        );
        qb.push_values(chunk, |mut b, d| {
            let e = &events[d.event_index];
            b.push_bind(&e.tenant_id)
                .push_bind(seqs[&e.id])
                .push_bind(d.webhook_id)
                .push_bind(&e.event_type)
                .push_bind(d.status.as_str())
                // A leased delivery falls due again only if its lease runs out.
                .push_bind((d.status == DeliveryStatus::Pending).then_some(
                    match (d.leased, lease) {
                        (true, Some(l)) => l.until,
                        _ => now,
                    },
                ))
                .push_bind(d.leased.then(|| lease.map(|l| l.owner.clone())).flatten())
                .push_bind(d.leased.then(|| lease.map(|l| l.until)).flatten())
                .push_bind(now)
                .push_bind(now);
        });
        qb.push(" RETURNING id, event_seq, webhook_id");
        let rows: Vec<(i64, i64, i64)> = qb.build_query_as().fetch_all(&mut *tx).await?;
        let by_key: HashMap<(i64, i64), i64> = rows
            .into_iter()
            .map(|(id, seq, w)| ((seq, w), id))
            .collect();
        for d in chunk {
            let e = &events[d.event_index];
            if d.status != DeliveryStatus::Pending {
                continue;
            }
            if !d.leased {
                unleased += 1;
                continue;
            }
            let delivery_id = by_key[&(seqs[&e.id], d.webhook_id)];
            let body = bodies
                .entry(d.event_index)
                .or_insert_with(|| delivery_body(&e.id, &e.event_type, e.created_at, &e.data))
                .clone();
            jobs.push(DeliveryJob {
                delivery_id,
                tenant_id: e.tenant_id.clone(),
                webhook_id: d.webhook_id,
                event_id: e.id.clone(),
                event_type: e.event_type.clone(),
                event_created_at: e.created_at,
                body,
                attempts: 0,
                retry_step: 0,
            });
        }
    }

    let fresh_answer = |i: usize| PublishedEvent {
        id: events[i].id.clone(),
        event_type: events[i].event_type.clone(),
        created_at: events[i].created_at,
        deliveries: counts[i],
    };
    let results = slots
        .into_iter()
        .enumerate()
        .map(|(i, slot)| match slot {
            Slot::Fresh => fresh_answer(i),
            Slot::SameAs(first) => fresh_answer(first),
            Slot::Replay(r) => r,
        })
        .collect();
    Ok(PublishBatch {
        results,
        jobs,
        unleased,
    })
}

/// Records outcomes within the caller's transaction; returns the webhooks suspended.
async fn record_in(
    tx: &mut SqliteConnection,
    outcomes: &[Outcome],
    now: i64,
) -> StoreResult<Vec<i64>> {
    let attempted: Vec<&Outcome> = outcomes.iter().filter(|o| o.attempt.is_some()).collect();
    for chunk in attempted.chunks(CHUNK / 2) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO attempts (delivery_id, tenant_id, attempted_at, duration_ms, url, request_headers, \
             response_status, response_headers, response_body, error_kind, error) ",
        );
        qb.push_values(chunk, |mut b, o| {
            let a = o.attempt.as_ref().expect("filtered to attempted");
            b.push_bind(o.delivery_id)
                .push_bind(&o.tenant_id)
                .push_bind(a.attempted_at)
                .push_bind(a.duration_ms)
                .push_bind(&a.url)
                .push_bind(&a.request_headers)
                .push_bind(a.response_status.map(i64::from))
                .push_bind(&a.response_headers)
                .push_bind(&a.response_body)
                .push_bind(a.error_kind.map(|k| k.as_str()))
                .push_bind(&a.error);
        });
        qb.build().execute(&mut *tx).await?;
    }
    // One UPDATE … FROM (VALUES …) per chunk: a statement per outcome
    // costs a round trip to SQLite's worker thread each.
    for chunk in outcomes.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "WITH v (v_id, v_status, v_attempted, v_next, v_code, v_error) AS (",
        );
        qb.push_values(chunk, |mut b, o| {
            let (code, error) = match &o.attempt {
                Some(a) => (a.response_status.map(i64::from), a.error.clone()),
                None => (None, None),
            };
            b.push_bind(o.delivery_id)
                .push_bind(o.status.as_str())
                .push_bind(i64::from(o.attempt.is_some()))
                .push_bind(o.next_attempt_at)
                .push_bind(code)
                .push_bind(error);
        });
        qb.push(
            ") UPDATE deliveries SET status = v.v_status, attempts = attempts + v.v_attempted, \
             retry_step = retry_step + v.v_attempted, next_attempt_at = v.v_next, \
             lease_owner = NULL, lease_until = NULL, \
             last_status_code = COALESCE(v.v_code, last_status_code), \
             last_error = CASE WHEN v.v_attempted = 1 THEN v.v_error ELSE last_error END, updated_at = ",
        )
        .push_bind(now)
        .push(" FROM v WHERE deliveries.id = v.v_id");
        qb.build().execute(&mut *tx).await?;
    }
    update_failure_tracking(&mut *tx, outcomes, now).await
}

/// Per webhook, in outcome order: a success resets the failure count; the
/// failures after the last success add to it. Then suspends webhooks whose
/// failure handling says so, and those that answered 410.
async fn update_failure_tracking(
    conn: &mut SqliteConnection,
    outcomes: &[Outcome],
    now: i64,
) -> StoreResult<Vec<i64>> {
    #[derive(Default)]
    struct Tally {
        reset_at: Option<i64>,
        failures: i64,
        first_failure: Option<i64>,
        gone: bool,
        min_failures: u32,
        suspend_after_ms: u64,
    }
    let mut tallies: HashMap<i64, Tally> = HashMap::new();
    for o in outcomes {
        let Some(a) = &o.attempt else { continue };
        let t = tallies.entry(o.webhook_id).or_default();
        t.min_failures = o.min_failures;
        t.suspend_after_ms = o.suspend_after_ms;
        if o.status == DeliveryStatus::Succeeded {
            t.reset_at = Some(a.attempted_at);
            t.failures = 0;
            t.first_failure = None;
        } else {
            t.failures += 1;
            t.first_failure.get_or_insert(a.attempted_at);
            t.gone |= o.gone;
        }
    }
    let mut suspended = Vec::new();
    for (webhook_id, t) in tallies {
        if let Some(at) = t.reset_at {
            sqlx::query(
                "UPDATE webhooks SET failure_count = ?, failing_since = ?, last_success_at = ? WHERE id = ?",
            )
            .bind(t.failures)
            .bind(t.first_failure)
            .bind(at)
            .bind(webhook_id)
            .execute(&mut *conn)
            .await?;
        } else if t.failures > 0 {
            sqlx::query(
                "UPDATE webhooks SET failure_count = failure_count + ?, \
                 failing_since = COALESCE(failing_since, ?) WHERE id = ?",
            )
            .bind(t.failures)
            .bind(t.first_failure)
            .bind(webhook_id)
            .execute(&mut *conn)
            .await?;
        }
        if t.failures == 0 && !t.gone {
            continue;
        }
        let r = sqlx::query(
            "UPDATE webhooks SET suspended = TRUE, suspended_at = ?, version = version + 1 \
             WHERE id = ? AND NOT suspended AND (? OR (failure_count >= ? AND failing_since <= ?))",
        )
        .bind(now)
        .bind(webhook_id)
        .bind(t.gone)
        .bind(i64::from(t.min_failures))
        .bind(now - t.suspend_after_ms as i64)
        .execute(&mut *conn)
        .await?;
        if r.rows_affected() > 0 {
            suspended.push(webhook_id);
        }
    }
    Ok(suspended)
}

impl SqliteStore {
    pub(super) async fn release_leases_impl(
        &self,
        owner: Option<&str>,
        now: i64,
    ) -> StoreResult<u64> {
        let r = sqlx::query(
            "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL, next_attempt_at = ? \
             WHERE lease_until IS NOT NULL AND status IN ('pending', 'retrying') \
             AND (? IS NULL OR lease_owner = ?)",
        )
        .bind(now)
        .bind(owner)
        .bind(owner)
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected())
    }

    pub(super) async fn next_due_at_impl(&self) -> StoreResult<Option<i64>> {
        // Leased deliveries are due at their lease's end, so one MIN covers both.
        Ok(sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE status IN ('pending', 'retrying')",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    pub(super) async fn retry_delivery_impl(
        &self,
        tenant: &str,
        id: i64,
        now: i64,
    ) -> StoreResult<Option<DeliveryRecord>> {
        let r = sqlx::query(
            "UPDATE deliveries SET status = CASE WHEN attempts = 0 THEN 'pending' ELSE 'retrying' END, \
             retry_step = 0, next_attempt_at = ?, lease_owner = NULL, lease_until = NULL, updated_at = ? \
             WHERE tenant_id = ? AND id = ? AND (lease_until IS NULL OR lease_until < ?)",
        )
        .bind(now)
        .bind(now)
        .bind(tenant)
        .bind(id)
        .bind(now)
        .execute(&self.writer)
        .await?;
        if r.rows_affected() == 0 {
            return match self.get_delivery_impl(tenant, id).await? {
                Some(_) => Err(StoreError::Conflict(
                    "an attempt of this delivery is under way; retry it when it ends".into(),
                )),
                None => Ok(None),
            };
        }
        Ok(self.get_delivery_impl(tenant, id).await?.map(|(d, _)| d))
    }

    pub(super) async fn recover_webhook_impl(
        &self,
        tenant: &str,
        webhook_id: i64,
        since: i64,
        now: i64,
    ) -> StoreResult<u64> {
        let r = sqlx::query(
            "UPDATE deliveries SET status = CASE WHEN attempts = 0 THEN 'pending' ELSE 'retrying' END, \
             retry_step = 0, next_attempt_at = ?, lease_owner = NULL, lease_until = NULL, updated_at = ? \
             WHERE tenant_id = ? AND webhook_id = ? AND status IN ('failed', 'diverted') AND created_at >= ?",
        )
        .bind(now)
        .bind(now)
        .bind(tenant)
        .bind(webhook_id)
        .bind(since)
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected())
    }

    pub(super) async fn list_deliveries_impl(
        &self,
        tenant: &str,
        f: &DeliveryFilter,
        before: Option<i64>,
        limit: u64,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        let mut qb = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.tenant_id = "
        ));
        qb.push_bind(tenant.to_owned());
        if let Some(b) = before {
            qb.push(" AND d.id < ").push_bind(b);
        }
        if let Some(w) = f.webhook_id {
            qb.push(" AND d.webhook_id = ").push_bind(w);
        }
        if let Some(t) = &f.event_type {
            qb.push(" AND d.event_type = ").push_bind(t.clone());
        }
        match f.status {
            Some(DeliveryStatus::Diverted) => {
                qb.push(" AND d.status IN ('diverted', 'failed')");
            }
            Some(s) => {
                qb.push(" AND d.status = ").push_bind(s.as_str());
            }
            None => {}
        }
        if let Some(id) = &f.event_id {
            qb.push(" AND e.id = ").push_bind(id.clone());
        }
        if let Some(s) = f.since {
            qb.push(" AND d.created_at >= ").push_bind(s);
        }
        if let Some(u) = f.until {
            qb.push(" AND d.created_at < ").push_bind(u);
        }
        qb.push(" ORDER BY d.id DESC LIMIT ")
            .push_bind(limit as i64);
        let rows: Vec<DeliveryRow> = qb.build_query_as().fetch_all(&self.pool).await?;
        rows.into_iter().map(DeliveryRow::into_record).collect()
    }

    pub(super) async fn get_delivery_impl(
        &self,
        tenant: &str,
        id: i64,
    ) -> StoreResult<Option<(DeliveryRecord, Vec<AttemptRow>)>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.event_seq \
             WHERE d.tenant_id = ? AND d.id = ?"
        );
        let Some(row): Option<DeliveryRow> = sqlx::query_as(&sql)
            .bind(tenant)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        #[allow(clippy::type_complexity)]
        let attempts: Vec<(i64, i64, i64, String, String, Option<i64>, Option<String>, Option<String>, Option<String>, Option<String>)> =
            sqlx::query_as(
                "SELECT id, attempted_at, duration_ms, url, request_headers, response_status, response_headers, \
                 response_body, error_kind, error FROM attempts WHERE tenant_id = ? AND delivery_id = ? ORDER BY id",
            )
            .bind(tenant)
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        let attempts = attempts
            .into_iter()
            .map(|a| AttemptRow {
                id: a.0,
                attempted_at: a.1,
                duration_ms: a.2,
                url: a.3,
                request_headers: a.4,
                response_status: a.5.map(|s| s as u16),
                response_headers: a.6,
                response_body: a.7,
                error_kind: a.8,
                error: a.9,
            })
            .collect();
        Ok(Some((row.into_record()?, attempts)))
    }

    pub(super) async fn get_event_impl(
        &self,
        tenant: &str,
        id: &str,
    ) -> StoreResult<Option<EventRecord>> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE tenant_id = ? AND id = ?");
        let row: Option<EventRow> = sqlx::query_as(&sql)
            .bind(tenant)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(EventRecord::from))
    }

    pub(super) async fn list_events_impl(
        &self,
        tenant: &str,
        f: &EventFilter,
        before: Option<i64>,
        limit: u64,
    ) -> StoreResult<Vec<EventRecord>> {
        let mut qb = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE tenant_id = "
        ));
        qb.push_bind(tenant.to_owned());
        if let Some(b) = before {
            qb.push(" AND seq < ").push_bind(b);
        }
        if let Some(t) = &f.event_type {
            qb.push(" AND event_type = ").push_bind(t.clone());
        }
        if let Some(s) = f.since {
            qb.push(" AND created_at >= ").push_bind(s);
        }
        if let Some(u) = f.until {
            qb.push(" AND created_at < ").push_bind(u);
        }
        qb.push(" ORDER BY seq DESC LIMIT ").push_bind(limit as i64);
        let rows: Vec<EventRow> = qb.build_query_as().fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(EventRecord::from).collect())
    }

    pub(super) async fn purge_events_impl(&self, before: i64, batch: u64) -> StoreResult<u64> {
        // Deliveries and attempts go with their event (ON DELETE CASCADE).
        let r = sqlx::query(
            "DELETE FROM events WHERE seq IN (SELECT seq FROM events e WHERE e.created_at < ? \
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq \
             AND d.status IN ('pending', 'retrying')) ORDER BY seq LIMIT ?)",
        )
        .bind(before)
        .bind(batch as i64)
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected())
    }

    pub(super) async fn queue_stats_impl(&self, _now: i64) -> StoreResult<QueueStats> {
        let (depth, oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(next_attempt_at) FROM deliveries WHERE status IN ('pending', 'retrying')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(QueueStats {
            depth: depth as u64,
            oldest_due_at: oldest,
        })
    }
}
