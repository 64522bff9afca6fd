//! The hot path's writer: publishes, outcomes and claims run on one thread
//! that owns its own SQLite connection and executes each transaction
//! synchronously. A transaction costs one hand-off between threads instead
//! of one per statement (sqlx runs every statement on its connection's
//! thread, and each round trip waits for both threads to be scheduled).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};

use crate::domain::delivery::{
    DeliveryJob, DeliveryStatus, NewEvent, Outcome, PublishedEvent, delivery_body,
};
use crate::domain::event_type::subscribes_to;
use crate::store::{IDEMPOTENCY_WINDOW_MS, Lease, PublishBatch, StoreError, StoreResult};

type Reply<T> = oneshot::Sender<StoreResult<T>>;

enum Job {
    Commit {
        events: Vec<NewEvent>,
        lease: Option<Lease>,
        outcomes: Vec<Outcome>,
        now: i64,
        reply: Reply<(PublishBatch, Vec<i64>)>,
    },
    Claim {
        owner: String,
        now: i64,
        lease_until: i64,
        limit: usize,
        reply: Reply<Vec<DeliveryJob>>,
    },
}

/// The handle to the writer thread; the thread ends when it is dropped.
#[derive(Debug, Clone)]
pub(super) struct HotWriter {
    jobs: mpsc::UnboundedSender<Job>,
}

impl HotWriter {
    /// Opens a connection to an existing, migrated database and starts the thread.
    pub fn start(db: &Path, full_sync: bool) -> StoreResult<Self> {
        let conn = Connection::open(db)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(
            None,
            "synchronous",
            if full_sync { "FULL" } else { "NORMAL" },
        )?;
        conn.set_prepared_statement_cache_capacity(64);
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        std::thread::Builder::new()
            .name("hookd-sqlite-writer".into())
            .spawn(move || {
                let mut conn = conn;
                while let Some(job) = rx.blocking_recv() {
                    match job {
                        Job::Commit {
                            events,
                            lease,
                            outcomes,
                            now,
                            reply,
                        } => {
                            let _ = reply.send(commit(
                                &mut conn,
                                &events,
                                lease.as_ref(),
                                &outcomes,
                                now,
                            ));
                        }
                        Job::Claim {
                            owner,
                            now,
                            lease_until,
                            limit,
                            reply,
                        } => {
                            let _ = reply.send(claim(&mut conn, &owner, now, lease_until, limit));
                        }
                    }
                }
            })
            .map_err(|_| StoreError::Corrupt("could not start the SQLite writer thread"))?;
        Ok(Self { jobs: tx })
    }

    async fn ask<T>(&self, job: impl FnOnce(Reply<T>) -> Job) -> StoreResult<T> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(job(reply))
            .map_err(|_| StoreError::Corrupt("the SQLite writer thread has stopped"))?;
        answer
            .await
            .map_err(|_| StoreError::Corrupt("the SQLite writer thread has stopped"))?
    }

    pub async fn commit(
        &self,
        events: &[NewEvent],
        lease: Option<&Lease>,
        outcomes: &[Outcome],
        now: i64,
    ) -> StoreResult<(PublishBatch, Vec<i64>)> {
        let (events, lease, outcomes) = (events.to_vec(), lease.cloned(), outcomes.to_vec());
        self.ask(|reply| Job::Commit {
            events,
            lease,
            outcomes,
            now,
            reply,
        })
        .await
    }

    pub async fn claim(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> StoreResult<Vec<DeliveryJob>> {
        let owner = owner.to_owned();
        self.ask(|reply| Job::Claim {
            owner,
            now,
            lease_until,
            limit,
            reply,
        })
        .await
    }
}

fn commit(
    conn: &mut Connection,
    events: &[NewEvent],
    lease: Option<&Lease>,
    outcomes: &[Outcome],
    now: i64,
) -> StoreResult<(PublishBatch, Vec<i64>)> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let suspended = if outcomes.is_empty() {
        Vec::new()
    } else {
        record(&tx, outcomes, now)?
    };
    let published = if events.is_empty() {
        PublishBatch::default()
    } else {
        publish(&tx, events, lease, now)?
    };
    tx.commit()?;
    Ok((published, suspended))
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

/// A webhook as fan-out needs it.
struct Subscriber {
    id: i64,
    events: Vec<String>,
    suspended: bool,
}

fn subscribers(conn: &Connection, tenant: &str, environment: &str) -> StoreResult<Vec<Subscriber>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, events, suspended FROM webhooks WHERE tenant_id = ?1 AND environment = ?2 AND enabled",
    )?;
    let rows = stmt.query_map(params![tenant, environment], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, bool>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, events, suspended) = row?;
        out.push(Subscriber {
            id,
            events: serde_json::from_str(&events)
                .map_err(|_| StoreError::Corrupt("webhooks.events"))?,
            suspended,
        });
    }
    Ok(out)
}

fn publish(
    conn: &Connection,
    events: &[NewEvent],
    lease: Option<&Lease>,
    now: i64,
) -> StoreResult<PublishBatch> {
    // Idempotency: replay a key seen within the window, here or earlier in this batch.
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
        let seen = conn
            .prepare_cached(
                "SELECT seq, id, event_type, created_at, delivery_count FROM events \
                 WHERE tenant_id = ?1 AND idempotency_key = ?2",
            )?
            .query_row(params![e.tenant_id, key], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .optional()?;
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
                    conn.prepare_cached("UPDATE events SET idempotency_key = NULL WHERE seq = ?1")?
                        .execute([seq])?;
                }
                keys_in_batch.insert((e.tenant_id.as_str(), key), i);
                slots.push(Slot::Fresh);
            }
        }
    }

    let mut subs: HashMap<(&str, &str), Vec<Subscriber>> = HashMap::new();
    let mut counts = vec![0u32; events.len()];
    let mut lease_left = lease.map_or(0, |l| l.max);
    let mut jobs = Vec::new();
    let mut unleased = 0;
    let mut insert_event = conn.prepare_cached(
        "INSERT INTO events (id, tenant_id, event_type, environment, data, idempotency_key, delivery_count, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7)",
    )?;
    let mut set_count =
        conn.prepare_cached("UPDATE events SET delivery_count = ?1 WHERE seq = ?2")?;
    let mut insert_delivery = conn.prepare_cached(
        "INSERT INTO deliveries (tenant_id, event_seq, webhook_id, event_type, status, next_attempt_at, \
         lease_owner, lease_until, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
    )?;
    for (i, e) in events.iter().enumerate() {
        if !matches!(slots[i], Slot::Fresh) {
            continue;
        }
        // Fan-out: one query per (tenant, environment) in the batch.
        let targets: Vec<(i64, bool)> = match e.only_webhook {
            Some(id) => conn
                .prepare_cached(
                    "SELECT id, suspended FROM webhooks WHERE tenant_id = ?1 AND id = ?2",
                )?
                .query_row(params![e.tenant_id, id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?
                .into_iter()
                .collect(),
            None => {
                let k = (e.tenant_id.as_str(), e.environment.as_str());
                if let std::collections::hash_map::Entry::Vacant(slot) = subs.entry(k) {
                    slot.insert(subscribers(conn, k.0, k.1)?);
                }
                subs[&k]
                    .iter()
                    .filter(|s| subscribes_to(&s.events, &e.event_type))
                    .map(|s| (s.id, s.suspended))
                    .collect()
            }
        };
        insert_event.execute(params![
            e.id,
            e.tenant_id,
            e.event_type,
            e.environment,
            e.data,
            e.idempotency_key,
            e.created_at
        ])?;
        let seq = conn.last_insert_rowid();
        counts[i] = targets.len() as u32;
        if !targets.is_empty() {
            set_count.execute(params![counts[i], seq])?;
        }
        let mut body = None;
        for (webhook_id, suspended) in targets {
            let status = if suspended {
                DeliveryStatus::Diverted
            } else {
                DeliveryStatus::Pending
            };
            let leased = status == DeliveryStatus::Pending && lease_left > 0 && lease.is_some();
            if leased {
                lease_left -= 1;
            }
            // A leased delivery falls due again only if its lease runs out.
            let next_attempt_at = match (status, leased, lease) {
                (DeliveryStatus::Diverted, ..) => None,
                (_, true, Some(l)) => Some(l.until),
                _ => Some(now),
            };
            insert_delivery.execute(params![
                e.tenant_id,
                seq,
                webhook_id,
                e.event_type,
                status.as_str(),
                next_attempt_at,
                leased.then(|| lease.map(|l| l.owner.as_str())).flatten(),
                leased.then(|| lease.map(|l| l.until)).flatten(),
                now
            ])?;
            if status != DeliveryStatus::Pending {
                continue;
            }
            if !leased {
                unleased += 1;
                continue;
            }
            jobs.push(DeliveryJob {
                delivery_id: conn.last_insert_rowid(),
                tenant_id: e.tenant_id.clone(),
                webhook_id,
                event_id: e.id.clone(),
                event_type: e.event_type.clone(),
                event_created_at: e.created_at,
                body: body
                    .get_or_insert_with(|| {
                        delivery_body(&e.id, &e.event_type, e.created_at, &e.data)
                    })
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

/// Records attempts and the deliveries' new state; returns the webhooks suspended.
fn record(conn: &Connection, outcomes: &[Outcome], now: i64) -> StoreResult<Vec<i64>> {
    let mut insert_attempt = conn.prepare_cached(
        "INSERT INTO attempts (delivery_id, tenant_id, attempted_at, duration_ms, url, request_headers, \
         response_status, response_headers, response_body, error_kind, error) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    let mut update = conn.prepare_cached(
        "UPDATE deliveries SET status = ?1, attempts = attempts + ?2, retry_step = retry_step + ?2, \
         next_attempt_at = ?3, lease_owner = NULL, lease_until = NULL, \
         last_status_code = COALESCE(?4, last_status_code), \
         last_error = CASE WHEN ?2 = 1 THEN ?5 ELSE last_error END, updated_at = ?6 WHERE id = ?7",
    )?;
    for o in outcomes {
        let (code, error) = match &o.attempt {
            Some(a) => {
                insert_attempt.execute(params![
                    o.delivery_id,
                    o.tenant_id,
                    a.attempted_at,
                    a.duration_ms,
                    a.url,
                    a.request_headers,
                    a.response_status,
                    a.response_headers,
                    a.response_body,
                    a.error_kind.map(|k| k.as_str()),
                    a.error
                ])?;
                (a.response_status, a.error.as_deref())
            }
            None => (None, None),
        };
        update.execute(params![
            o.status.as_str(),
            i64::from(o.attempt.is_some()),
            o.next_attempt_at,
            code,
            error,
            now,
            o.delivery_id
        ])?;
    }
    update_failure_tracking(conn, outcomes, now)
}

/// Per webhook, in outcome order: a success resets the failure count; the
/// failures after the last success add to it. Then suspends webhooks whose
/// failure handling says so, and those that answered 410.
fn update_failure_tracking(
    conn: &Connection,
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
            // Only touch the row when there is something to reset or record.
            conn.prepare_cached(
                "UPDATE webhooks SET failure_count = ?1, failing_since = ?2, last_success_at = ?3 \
                 WHERE id = ?4 AND (failure_count != ?1 OR failing_since IS NOT ?2 OR last_success_at IS NULL \
                 OR last_success_at < ?3 - 1000)",
            )?
            .execute(params![t.failures, t.first_failure, at, webhook_id])?;
        } else if t.failures > 0 {
            conn.prepare_cached(
                "UPDATE webhooks SET failure_count = failure_count + ?1, \
                 failing_since = COALESCE(failing_since, ?2) WHERE id = ?3",
            )?
            .execute(params![t.failures, t.first_failure, webhook_id])?;
        }
        if t.failures == 0 && !t.gone {
            continue;
        }
        let changed = conn
            .prepare_cached(
                "UPDATE webhooks SET suspended = TRUE, suspended_at = ?1, version = version + 1 \
                 WHERE id = ?2 AND NOT suspended AND (?3 OR (failure_count >= ?4 AND failing_since <= ?5))",
            )?
            .execute(params![now, webhook_id, t.gone, t.min_failures, now - t.suspend_after_ms as i64])?;
        if changed > 0 {
            suspended.push(webhook_id);
        }
    }
    Ok(suspended)
}

/// Leases up to `limit` due deliveries and joins them with their events.
fn claim(
    conn: &mut Connection,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: usize,
) -> StoreResult<Vec<DeliveryJob>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut claimed: Vec<(i64, String, i64, i64, String, i64, i64)> = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "UPDATE deliveries SET lease_owner = ?1, lease_until = ?2, next_attempt_at = ?2 WHERE id IN ( \
               SELECT id FROM deliveries WHERE status IN ('pending', 'retrying') AND next_attempt_at <= ?3 \
               ORDER BY next_attempt_at LIMIT ?4) \
             RETURNING id, tenant_id, event_seq, webhook_id, event_type, attempts, retry_step",
        )?;
        let rows = stmt.query_map(params![owner, lease_until, now, limit as i64], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })?;
        for row in rows {
            claimed.push(row?);
        }
    }
    let mut bodies: HashMap<i64, (String, i64, bytes::Bytes)> = HashMap::new();
    {
        let mut event = tx
            .prepare_cached("SELECT id, event_type, data, created_at FROM events WHERE seq = ?1")?;
        for c in &claimed {
            if bodies.contains_key(&c.2) {
                continue;
            }
            let found = event
                .query_row([c.2], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                })
                .optional()?;
            if let Some((id, event_type, data, created_at)) = found {
                let body = delivery_body(&id, &event_type, created_at, &data);
                bodies.insert(c.2, (id, created_at, body));
            }
        }
    }
    tx.commit()?;
    Ok(claimed
        .into_iter()
        .filter_map(
            |(delivery_id, tenant_id, seq, webhook_id, event_type, attempts, retry_step)| {
                let (event_id, created_at, body) = bodies.get(&seq)?.clone();
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
