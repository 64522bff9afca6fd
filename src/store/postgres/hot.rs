//! The PostgreSQL side of the hot path: the commit loop's transaction
//! (outcomes, then events and their deliveries) and lease claims with
//! `FOR UPDATE SKIP LOCKED`.

use std::collections::HashMap;

use sqlx::{PgConnection, Postgres, QueryBuilder};

use super::{PostgresStore, WORK_CHANNEL};
use crate::domain::delivery::{DeliveryJob, NewEvent, Outcome, PublishedEvent, delivery_body};
use crate::domain::fanout::{Audience, Lease, PublishBatch, PublishPlan, StoredKey, key_lookups};
use crate::domain::tally::fold_outcomes;
use crate::store::hot_sql::{
    CLEAR_EXPIRED_KEY, CUSTOM_CATEGORIES, Claim, ClaimedRow, INSERT_ATTEMPT_COLUMNS,
    INSERT_DELIVERY_COLUMNS, INSERT_EVENT_COLUMNS, NAMED_WEBHOOK, SUBSCRIBERS, SUSPEND_IF_FAILING,
    TALLY_ADD, TALLY_RESET, claim_sql, claimed_jobs, find_key_sql, subscriber,
};
use crate::store::{CommitBatch, CommitFailed, Committed, StoreResult};

/// Rows per multi-row statement (bound parameters stay far under 65,535).
const CHUNK: usize = 500;

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

    pub(super) async fn claim_hot(&self, c: Claim<'_>) -> StoreResult<Vec<DeliveryJob>> {
        let mut tx = self.pool.begin().await?;
        let claimed: Vec<ClaimedRow> = sqlx::query_as(claim_sql!(" FOR UPDATE SKIP LOCKED"))
            .bind(c.owner)
            .bind(c.lease_until)
            .bind(c.now)
            .bind(c.limit as i64)
            .fetch_all(&mut *tx)
            .await?;
        let mut seqs: Vec<i64> = claimed.iter().map(|c| c.event_seq).collect();
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
        Ok(claimed_jobs(claimed, &events))
    }
}

/// Reads what the plan asks for, then writes what it plans (`domain::fanout`).
async fn publish(
    tx: &mut PgConnection,
    events: &[NewEvent],
    lease: Option<&Lease>,
    now: i64,
) -> StoreResult<PublishBatch> {
    let mut found = Vec::new();
    for i in key_lookups(events) {
        let e = &events[i];
        let stored: Option<(i64, String, String, i64, i64)> =
            sqlx::query_as(find_key_sql!(" FOR UPDATE"))
                .bind(&e.tenant_id)
                .bind(&e.idempotency_key)
                .fetch_optional(&mut *tx)
                .await?;
        let stored = stored.map(|(seq, id, event_type, created_at, count)| StoredKey {
            seq,
            answer: PublishedEvent {
                id,
                event_type,
                created_at,
                deliveries: count as u32,
            },
        });
        found.push((i, stored));
    }
    let mut plan = PublishPlan::new(events, found, now);
    for &seq in &plan.expired_keys {
        sqlx::query(CLEAR_EXPIRED_KEY)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
    }
    let audience = audience(tx, &plan).await?;
    plan.fan_out(&audience, lease, now);

    let fresh: Vec<usize> = plan.fresh().collect();
    // Sequence numbers by event index (RETURNING does not promise VALUES order).
    let mut seqs = vec![0i64; events.len()];
    for chunk in fresh.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Postgres>::new(INSERT_EVENT_COLUMNS);
        qb.push_values(chunk, |mut b, &i| {
            let e = &events[i];
            b.push_bind(&e.id)
                .push_bind(&e.tenant_id)
                .push_bind(&e.event_type)
                .push_bind(&e.environment)
                .push_bind(&e.data)
                .push_bind(&e.idempotency_key)
                .push_bind(i64::from(plan.counts[i]))
                .push_bind(e.created_at);
        });
        qb.push(" RETURNING id, seq");
        let rows: Vec<(String, i64)> = qb.build_query_as().fetch_all(&mut *tx).await?;
        let index: HashMap<&str, usize> =
            chunk.iter().map(|&i| (events[i].id.as_str(), i)).collect();
        for (id, seq) in rows {
            if let Some(&i) = index.get(id.as_str()) {
                seqs[i] = seq;
            }
        }
    }

    let mut ids = Vec::with_capacity(plan.deliveries.len());
    for chunk in plan.deliveries.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Postgres>::new(INSERT_DELIVERY_COLUMNS);
        qb.push_values(chunk, |mut b, d| {
            let e = &events[d.event];
            let lease = lease.filter(|_| d.leased);
            b.push_bind(&e.tenant_id)
                .push_bind(seqs[d.event])
                .push_bind(d.webhook_id)
                .push_bind(&e.event_type)
                .push_bind(d.status.as_str())
                .push_bind(d.next_attempt_at)
                .push_bind(lease.map(|l| l.owner.clone()))
                .push_bind(lease.map(|l| l.until))
                .push_bind(now)
                .push_bind(now);
        });
        qb.push(" RETURNING id, event_seq, webhook_id");
        let rows: Vec<(i64, i64, i64)> = qb.build_query_as().fetch_all(&mut *tx).await?;
        let by_target: HashMap<(i64, i64), i64> = rows
            .into_iter()
            .map(|(id, seq, w)| ((seq, w), id))
            .collect();
        ids.extend(
            chunk
                .iter()
                .map(|d| by_target[&(seqs[d.event], d.webhook_id)]),
        );
    }
    Ok(plan.finish(&ids))
}

/// The webhooks and categories the plan's fan-out needs.
async fn audience(tx: &mut PgConnection, plan: &PublishPlan<'_>) -> StoreResult<Audience> {
    let mut audience = Audience::default();
    for &(tenant, environment) in &plan.groups {
        let rows: Vec<(i64, String, bool)> = sqlx::query_as(SUBSCRIBERS)
            .bind(tenant)
            .bind(environment)
            .fetch_all(&mut *tx)
            .await?;
        let subscribers = rows
            .iter()
            .map(|(id, events, suspended)| subscriber(*id, events, *suspended))
            .collect::<StoreResult<Vec<_>>>()?;
        audience.subscribers.push(subscribers);
    }
    for &tenant in &plan.tenants {
        let rows: Vec<(String, String)> = sqlx::query_as(CUSTOM_CATEGORIES)
            .bind(tenant)
            .fetch_all(&mut *tx)
            .await?;
        audience.categories.push(rows.into_iter().collect());
    }
    for &(tenant, id) in &plan.named {
        let suspended: Option<bool> = sqlx::query_scalar(NAMED_WEBHOOK)
            .bind(tenant)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        audience.named.push(suspended);
    }
    Ok(audience)
}

async fn record(tx: &mut PgConnection, outcomes: &[Outcome], now: i64) -> StoreResult<Vec<i64>> {
    let attempted: Vec<&Outcome> = outcomes.iter().filter(|o| o.attempt.is_some()).collect();
    for chunk in attempted.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Postgres>::new(INSERT_ATTEMPT_COLUMNS);
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
    let mut suspended = Vec::new();
    for t in fold_outcomes(outcomes) {
        let write = match t.reset_at {
            Some(at) => sqlx::query(TALLY_RESET)
                .bind(t.failures)
                .bind(t.first_failure)
                .bind(at)
                .bind(t.webhook_id),
            None => sqlx::query(TALLY_ADD)
                .bind(t.failures)
                .bind(t.first_failure)
                .bind(t.webhook_id),
        };
        write.execute(&mut *tx).await?;
        if t.may_suspend() {
            let r = sqlx::query(SUSPEND_IF_FAILING)
                .bind(now)
                .bind(t.webhook_id)
                .bind(t.gone)
                .bind(i64::from(t.min_failures))
                .bind(t.failing_since_at_most(now))
                .execute(&mut *tx)
                .await?;
            if r.rows_affected() > 0 {
                suspended.push(t.webhook_id);
            }
        }
    }
    Ok(suspended)
}
