//! The PostgreSQL side of the hot path: the commit loop's transaction
//! (outcomes, then events and their deliveries) and lease claims with
//! `FOR UPDATE SKIP LOCKED`.

use std::collections::HashMap;

use sqlx::{PgConnection, Postgres, QueryBuilder};

use super::{PostgresStore, WORK_CHANNEL};
use crate::domain::delivery::{
    DeliveryJob, DeliveryStatus, NewEvent, Outcome, PublishedEvent, delivery_body,
};
use crate::domain::event_type::subscribes_to;
use crate::store::{
    CommitBatch, CommitFailed, Committed, IDEMPOTENCY_WINDOW_MS, Lease, PublishBatch, StoreError,
    StoreResult,
};

/// Rows per multi-row statement (bound parameters stay far under 65,535).
const CHUNK: usize = 500;

/// How one event of a publish batch is answered.
enum Slot {
    Fresh,
    SameAs(usize),
    Replay(PublishedEvent),
}

/// A webhook as fan-out needs it: id, subscriptions, suspended.
type Subscriber = (i64, Vec<String>, bool);

struct PendingDelivery<'a> {
    event: usize,
    webhook_id: i64,
    status: DeliveryStatus,
    next_attempt_at: Option<i64>,
    lease: Option<&'a Lease>,
}

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

    async fn commit_in_tx(
        &self,
        events: &[NewEvent],
        lease: Option<&Lease>,
        outcomes: &[Outcome],
        now: i64,
    ) -> StoreResult<(PublishBatch, Vec<i64>)> {
        let mut tx = self.pool.begin().await?;
        let suspended = if outcomes.is_empty() {
            Vec::new()
        } else {
            record(&mut tx, outcomes, now).await?
        };
        let published = if events.is_empty() {
            PublishBatch::default()
        } else {
            publish(&mut tx, events, lease, now).await?
        };
        // Wake the other instances when work is left for a claim.
        if published.unleased > 0 || outcomes.iter().any(|o| o.next_attempt_at.is_some()) {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(WORK_CHANNEL)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok((published, suspended))
    }

    pub(super) async fn claim_hot(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> StoreResult<Vec<DeliveryJob>> {
        let mut tx = self.pool.begin().await?;
        let claimed: Vec<(i64, String, i64, i64, String, i64, i64)> = sqlx::query_as(
            "UPDATE deliveries SET lease_owner = $1, lease_until = $2, next_attempt_at = $2 WHERE id IN ( \
               SELECT id FROM deliveries WHERE status IN ('pending', 'retrying') AND next_attempt_at <= $3 \
               ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
             RETURNING id, tenant_id, event_seq, webhook_id, event_type, attempts, retry_step",
        )
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await?;
        let mut seqs: Vec<i64> = claimed.iter().map(|c| c.2).collect();
        seqs.sort_unstable();
        seqs.dedup();
        let rows: Vec<(i64, String, String, String, i64)> = sqlx::query_as(
            "SELECT seq, id, event_type, data, created_at FROM events WHERE seq = ANY($1)",
        )
        .bind(&seqs)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let events: HashMap<i64, (String, i64, bytes::Bytes)> = rows
            .into_iter()
            .map(|(seq, id, event_type, data, created_at)| {
                let body = delivery_body(&id, &event_type, created_at, &data);
                (seq, (id, created_at, body))
            })
            .collect();
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
}

async fn publish(
    tx: &mut PgConnection,
    events: &[NewEvent],
    lease: Option<&Lease>,
    now: i64,
) -> StoreResult<PublishBatch> {
    let mut slots: Vec<Slot> = Vec::with_capacity(events.len());
    let mut keys_in_batch: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        let Some(key) = e.idempotency_key.as_deref() else {
            slots.push(Slot::Fresh);
            continue;
        };
        if let Some(&first) = keys_in_batch.get(&(e.tenant_id.as_str(), key)) {
            slots.push(Slot::SameAs(first));
            continue;
        }
        // FOR UPDATE: a concurrent batch with the same key waits for this one.
        let seen: Option<(i64, String, String, i64, i64)> = sqlx::query_as(
            "SELECT seq, id, event_type, created_at, delivery_count FROM events \
             WHERE tenant_id = $1 AND idempotency_key = $2 FOR UPDATE",
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
                    sqlx::query("UPDATE events SET idempotency_key = NULL WHERE seq = $1")
                        .bind(seq)
                        .execute(&mut *tx)
                        .await?;
                }
                keys_in_batch.insert((e.tenant_id.as_str(), key), i);
                slots.push(Slot::Fresh);
            }
        }
    }

    // Fan-out: subscribers per (tenant, environment), custom categories per tenant.
    let mut subs: HashMap<(&str, &str), Vec<Subscriber>> = HashMap::new();
    let mut categories: HashMap<&str, HashMap<String, String>> = HashMap::new();
    let mut counts = vec![0u32; events.len()];
    let mut targets: Vec<Vec<(i64, bool)>> = vec![Vec::new(); events.len()];
    for (i, e) in events.iter().enumerate() {
        if !matches!(slots[i], Slot::Fresh) {
            continue;
        }
        targets[i] = match e.only_webhook {
            Some(id) => sqlx::query_as(
                "SELECT id, suspended FROM webhooks WHERE tenant_id = $1 AND id = $2",
            )
            .bind(&e.tenant_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .into_iter()
            .collect(),
            None => {
                let k = (e.tenant_id.as_str(), e.environment.as_str());
                if let std::collections::hash_map::Entry::Vacant(slot) = subs.entry(k) {
                    let rows: Vec<(i64, String, bool)> = sqlx::query_as(
                        "SELECT id, events, suspended FROM webhooks \
                         WHERE tenant_id = $1 AND environment = $2 AND enabled",
                    )
                    .bind(k.0)
                    .bind(k.1)
                    .fetch_all(&mut *tx)
                    .await?;
                    let parsed = rows
                        .into_iter()
                        .map(|(id, ev, s)| {
                            serde_json::from_str(&ev)
                                .map(|ev| (id, ev, s))
                                .map_err(|_| StoreError::Corrupt("webhooks.events"))
                        })
                        .collect::<StoreResult<Vec<_>>>()?;
                    slot.insert(parsed);
                }
                if !categories.contains_key(k.0) {
                    let rows: Vec<(String, String)> = sqlx::query_as(
                        "SELECT name, category FROM event_types WHERE tenant_id = $1 \
                         AND category <> split_part(name, '.', 1)",
                    )
                    .bind(k.0)
                    .fetch_all(&mut *tx)
                    .await?;
                    categories.insert(k.0, rows.into_iter().collect());
                }
                let category = categories[k.0].get(&e.event_type).map(String::as_str);
                subs[&k]
                    .iter()
                    .filter(|(_, ev, _)| subscribes_to(ev, &e.event_type, category))
                    .map(|(id, _, s)| (*id, *s))
                    .collect()
            }
        };
        counts[i] = targets[i].len() as u32;
    }

    let fresh: Vec<usize> = (0..events.len())
        .filter(|&i| matches!(slots[i], Slot::Fresh))
        .collect();
    let mut seqs: HashMap<String, i64> = HashMap::with_capacity(fresh.len());
    for chunk in fresh.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Postgres>::new(
            "INSERT INTO events (id, tenant_id, event_type, environment, data, idempotency_key, delivery_count, \
             created_at) ",
        );
        qb.push_values(chunk, |mut b, &i| {
            let e = &events[i];
            b.push_bind(&e.id)
                .push_bind(&e.tenant_id)
                .push_bind(&e.event_type)
                .push_bind(&e.environment)
                .push_bind(&e.data)
                .push_bind(&e.idempotency_key)
                .push_bind(i64::from(counts[i]))
                .push_bind(e.created_at);
        });
        qb.push(" RETURNING id, seq");
        let rows: Vec<(String, i64)> = qb.build_query_as().fetch_all(&mut *tx).await?;
        seqs.extend(rows);
    }

    let mut lease_left = lease.map_or(0, |l| l.max);
    let mut pending: Vec<PendingDelivery> = Vec::new();
    for &i in &fresh {
        for &(webhook_id, suspended) in &targets[i] {
            let status = if suspended {
                DeliveryStatus::Diverted
            } else {
                DeliveryStatus::Pending
            };
            let leased = status == DeliveryStatus::Pending && lease_left > 0 && lease.is_some();
            if leased {
                lease_left -= 1;
            }
            pending.push(PendingDelivery {
                event: i,
                webhook_id,
                status,
                next_attempt_at: match (status, leased, lease) {
                    (DeliveryStatus::Diverted, ..) => None,
                    (_, true, Some(l)) => Some(l.until),
                    _ => Some(now),
                },
                lease: if leased { lease } else { None },
            });
        }
    }
    let mut jobs = Vec::new();
    let mut unleased = 0;
    let mut bodies: HashMap<usize, bytes::Bytes> = HashMap::new();
    for chunk in pending.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Postgres>::new(
            "INSERT INTO deliveries (tenant_id, event_seq, webhook_id, event_type, status, next_attempt_at, \
             lease_owner, lease_until, created_at, updated_at) ",
        );
        qb.push_values(chunk, |mut b, d| {
            let e = &events[d.event];
            b.push_bind(&e.tenant_id)
                .push_bind(seqs[&e.id])
                .push_bind(d.webhook_id)
                .push_bind(&e.event_type)
                .push_bind(d.status.as_str())
                .push_bind(d.next_attempt_at)
                .push_bind(d.lease.map(|l| l.owner.clone()))
                .push_bind(d.lease.map(|l| l.until))
                .push_bind(now)
                .push_bind(now);
        });
        qb.push(" RETURNING id, event_seq, webhook_id");
        let rows: Vec<(i64, i64, i64)> = qb.build_query_as().fetch_all(&mut *tx).await?;
        let ids: HashMap<(i64, i64), i64> = rows
            .into_iter()
            .map(|(id, seq, w)| ((seq, w), id))
            .collect();
        for d in chunk {
            if d.status != DeliveryStatus::Pending {
                continue;
            }
            if d.lease.is_none() {
                unleased += 1;
                continue;
            }
            let e = &events[d.event];
            jobs.push(DeliveryJob {
                delivery_id: ids[&(seqs[&e.id], d.webhook_id)],
                tenant_id: e.tenant_id.clone(),
                webhook_id: d.webhook_id,
                event_id: e.id.clone(),
                event_type: e.event_type.clone(),
                event_created_at: e.created_at,
                body: bodies
                    .entry(d.event)
                    .or_insert_with(|| delivery_body(&e.id, &e.event_type, e.created_at, &e.data))
                    .clone(),
                attempts: 0,
                retry_step: 0,
            });
        }
    }

    let answer = |i: usize| PublishedEvent {
        id: events[i].id.clone(),
        event_type: events[i].event_type.clone(),
        created_at: events[i].created_at,
        deliveries: counts[i],
    };
    let results = slots
        .into_iter()
        .enumerate()
        .map(|(i, slot)| match slot {
            Slot::Fresh => answer(i),
            Slot::SameAs(first) => answer(first),
            Slot::Replay(r) => r,
        })
        .collect();
    Ok(PublishBatch {
        results,
        jobs,
        unleased,
    })
}

async fn record(tx: &mut PgConnection, outcomes: &[Outcome], now: i64) -> StoreResult<Vec<i64>> {
    let attempted: Vec<&Outcome> = outcomes.iter().filter(|o| o.attempt.is_some()).collect();
    for chunk in attempted.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Postgres>::new(
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
    for chunk in outcomes.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Postgres>::new(
            "UPDATE deliveries AS d SET status = v.v_status, attempts = d.attempts + v.v_attempted, \
             retry_step = d.retry_step + v.v_attempted, next_attempt_at = v.v_next, lease_owner = NULL, \
             lease_until = NULL, last_status_code = COALESCE(v.v_code, d.last_status_code), \
             last_error = CASE WHEN v.v_attempted = 1 THEN v.v_error ELSE d.last_error END, updated_at = ",
        );
        qb.push_bind(now).push(" FROM (");
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
            ") AS v (v_id, v_status, v_attempted, v_next, v_code, v_error) WHERE d.id = v.v_id",
        );
        qb.build().execute(&mut *tx).await?;
    }
    update_failure_tracking(tx, outcomes, now).await
}

/// As on SQLite: a success resets the failure count, later failures add to
/// it; then suspension by failure handling or a 410.
async fn update_failure_tracking(
    tx: &mut PgConnection,
    outcomes: &[Outcome],
    now: i64,
) -> StoreResult<Vec<i64>> {
    let tallies = crate::store::failure_tallies(outcomes);
    let mut suspended = Vec::new();
    for (webhook_id, t) in tallies {
        if let Some(at) = t.reset_at {
            sqlx::query(
                // Only when a failure streak ends: a webhook that keeps
                // succeeding is never written, so instances sharing it do
                // not queue on its row.
                "UPDATE webhooks SET failure_count = $1, failing_since = $2, last_success_at = $3 WHERE id = $4 \
                 AND (failure_count <> $1 OR failing_since IS DISTINCT FROM $2)",
            )
            .bind(t.failures)
            .bind(t.first_failure)
            .bind(at)
            .bind(webhook_id)
            .execute(&mut *tx)
            .await?;
        } else if t.failures > 0 {
            sqlx::query(
                "UPDATE webhooks SET failure_count = failure_count + $1, \
                 failing_since = COALESCE(failing_since, $2) WHERE id = $3",
            )
            .bind(t.failures)
            .bind(t.first_failure)
            .bind(webhook_id)
            .execute(&mut *tx)
            .await?;
        }
        if t.failures == 0 && !t.gone {
            continue;
        }
        let r = sqlx::query(
            "UPDATE webhooks SET suspended = TRUE, suspended_at = $1, version = version + 1 \
             WHERE id = $2 AND NOT suspended AND ($3 OR (failure_count >= $4 AND failing_since <= $5))",
        )
        .bind(now)
        .bind(webhook_id)
        .bind(t.gone)
        .bind(i64::from(t.min_failures))
        .bind(now - t.suspend_after_ms as i64)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() > 0 {
            suspended.push(webhook_id);
        }
    }
    Ok(suspended)
}
