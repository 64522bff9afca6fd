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
use crate::store::{
    CommitBatch, CommitFailed, Committed, IDEMPOTENCY_WINDOW_MS, Lease, PublishBatch, StoreError,
    StoreResult,
};

type Reply<T> = oneshot::Sender<StoreResult<T>>;

enum Job {
    Commit {
        batch: CommitBatch,
        now: i64,
        reply: oneshot::Sender<Result<Committed, CommitFailed>>,
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
                        Job::Commit { batch, now, reply } => {
                            let CommitBatch {
                                events,
                                lease,
                                outcomes,
                            } = batch;
                            let result =
                                match commit(&mut conn, &events, lease.as_ref(), &outcomes, now) {
                                    Ok((published, suspended)) => Ok(Committed {
                                        published,
                                        suspended,
                                        outcomes,
                                    }),
                                    Err(error) => Err(CommitFailed { error, outcomes }),
                                };
                            let _ = reply.send(result);
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

    pub async fn commit(&self, batch: CommitBatch, now: i64) -> Result<Committed, CommitFailed> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Corrupt("the SQLite writer thread has stopped");
        if let Err(mpsc::error::SendError(Job::Commit { batch, .. })) =
            self.jobs.send(Job::Commit { batch, now, reply })
        {
            return Err(CommitFailed {
                error: stopped(),
                outcomes: batch.outcomes,
            });
        }
        // A thread that died mid-batch took the outcomes with it; their
        // leases bring the deliveries back.
        answer.await.unwrap_or_else(|_| {
            Err(CommitFailed {
                error: stopped(),
                outcomes: Vec::new(),
            })
        })
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

/// The tenant's types whose category is not their name's first segment.
fn custom_categories(conn: &Connection, tenant: &str) -> StoreResult<HashMap<String, String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, category FROM event_types WHERE tenant_id = ?1 \
         AND category != substr(name, 1, instr(name, '.') - 1)",
    )?;
    let rows = stmt.query_map([tenant], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
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
    let mut categories: HashMap<&str, HashMap<String, String>> = HashMap::new();
    let mut counts = vec![0u32; events.len()];
    let mut lease_left = lease.map_or(0, |l| l.max);
    let mut rows: Vec<DeliveryRow> = Vec::new();
    let mut insert_event = conn.prepare_cached(
        "INSERT INTO events (id, tenant_id, event_type, environment, data, idempotency_key, delivery_count, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
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
                if let std::collections::hash_map::Entry::Vacant(slot) = categories.entry(k.0) {
                    slot.insert(custom_categories(conn, k.0)?);
                }
                let category = categories[k.0].get(&e.event_type).map(String::as_str);
                subs[&k]
                    .iter()
                    .filter(|s| subscribes_to(&s.events, &e.event_type, category))
                    .map(|s| (s.id, s.suspended))
                    .collect()
            }
        };
        counts[i] = targets.len() as u32;
        insert_event.execute(params![
            e.id,
            e.tenant_id,
            e.event_type,
            e.environment,
            e.data,
            e.idempotency_key,
            counts[i],
            e.created_at
        ])?;
        let seq = conn.last_insert_rowid();
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
            rows.push(DeliveryRow {
                event: i,
                seq,
                webhook_id,
                status,
                next_attempt_at,
                lease: if leased { lease } else { None },
            });
        }
    }

    let ids = run_chunked(
        conn,
        &rows,
        "INSERT INTO deliveries (tenant_id, event_seq, webhook_id, event_type, status, next_attempt_at, \
         lease_owner, lease_until, created_at, updated_at) VALUES ",
        10,
        "",
        None,
        |d, out| {
            let e = &events[d.event];
            out.push(Box::new(&e.tenant_id));
            out.push(Box::new(d.seq));
            out.push(Box::new(d.webhook_id));
            out.push(Box::new(&e.event_type));
            out.push(Box::new(d.status.as_str()));
            out.push(Box::new(d.next_attempt_at));
            out.push(Box::new(d.lease.map(|l| l.owner.as_str())));
            out.push(Box::new(d.lease.map(|l| l.until)));
            out.push(Box::new(now));
            out.push(Box::new(now));
        },
    )?;
    let mut jobs = Vec::new();
    let mut unleased = 0;
    let mut bodies: HashMap<usize, bytes::Bytes> = HashMap::new();
    for (d, delivery_id) in rows.iter().zip(ids) {
        if d.status != DeliveryStatus::Pending {
            continue;
        }
        if d.lease.is_none() {
            unleased += 1;
            continue;
        }
        let e = &events[d.event];
        jobs.push(DeliveryJob {
            delivery_id,
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

/// A delivery about to be inserted.
struct DeliveryRow<'a> {
    /// Index of its event in the batch.
    event: usize,
    seq: i64,
    webhook_id: i64,
    status: DeliveryStatus,
    next_attempt_at: Option<i64>,
    lease: Option<&'a Lease>,
}

/// Statement shapes used for multi-row statements: few enough to stay in
/// the prepared-statement cache, large enough to amortise each execution.
const CHUNKS: [usize; 3] = [32, 8, 1];

type Binds<'a> = Vec<Box<dyn rusqlite::ToSql + 'a>>;

/// Runs `prefix (?, …), (?, …) suffix` over `rows` in chunks of the sizes in
/// `CHUNKS`, with `trailing` bound after the rows. Returns the rowids an
/// INSERT gave the rows (SQLite numbers the rows of one INSERT into an
/// AUTOINCREMENT table consecutively).
#[allow(clippy::too_many_arguments)]
fn run_chunked<'a, T>(
    conn: &Connection,
    rows: &'a [T],
    prefix: &str,
    columns: usize,
    suffix: &str,
    trailing: Option<i64>,
    bind: impl Fn(&'a T, &mut Binds<'a>),
) -> StoreResult<Vec<i64>> {
    let mut ids = Vec::with_capacity(rows.len());
    let mut rest = rows;
    while !rest.is_empty() {
        let n = CHUNKS.into_iter().find(|&c| c <= rest.len()).unwrap_or(1);
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        let row = format!("({})", vec!["?"; columns].join(", "));
        let sql = format!("{prefix}{}{suffix}", vec![row; n].join(", "));
        let mut binds: Binds<'a> = Vec::with_capacity(n * columns + 1);
        for r in chunk {
            bind(r, &mut binds);
        }
        if let Some(t) = trailing {
            binds.push(Box::new(t));
        }
        conn.prepare_cached(&sql)?
            .execute(rusqlite::params_from_iter(binds.iter()))?;
        let last = conn.last_insert_rowid();
        ids.extend((0..n as i64).map(|k| last - (n as i64 - 1) + k));
    }
    Ok(ids)
}

/// Records attempts and the deliveries' new state; returns the webhooks suspended.
fn record(conn: &Connection, outcomes: &[Outcome], now: i64) -> StoreResult<Vec<i64>> {
    let attempted: Vec<&Outcome> = outcomes.iter().filter(|o| o.attempt.is_some()).collect();
    run_chunked(
        conn,
        &attempted,
        "INSERT INTO attempts (delivery_id, tenant_id, attempted_at, duration_ms, url, request_headers, \
         response_status, response_headers, response_body, error_kind, error) VALUES ",
        11,
        "",
        None,
        |o, out| {
            let a = o.attempt.as_ref().expect("filtered to attempted");
            out.push(Box::new(o.delivery_id));
            out.push(Box::new(&o.tenant_id));
            out.push(Box::new(a.attempted_at));
            out.push(Box::new(a.duration_ms));
            out.push(Box::new(&a.url));
            out.push(Box::new(&a.request_headers));
            out.push(Box::new(a.response_status));
            out.push(Box::new(&a.response_headers));
            out.push(Box::new(&a.response_body));
            out.push(Box::new(a.error_kind.map(|k| k.as_str())));
            out.push(Box::new(&a.error));
        },
    )?;
    // One UPDATE … FROM (VALUES …) per chunk.
    run_chunked(
        conn,
        outcomes,
        "WITH v (v_id, v_status, v_attempted, v_next, v_code, v_error) AS (VALUES ",
        6,
        ") UPDATE deliveries SET status = v.v_status, attempts = attempts + v.v_attempted, \
         retry_step = retry_step + v.v_attempted, next_attempt_at = v.v_next, \
         lease_owner = NULL, lease_until = NULL, last_status_code = COALESCE(v.v_code, last_status_code), \
         last_error = CASE WHEN v.v_attempted = 1 THEN v.v_error ELSE last_error END, updated_at = ? \
         FROM v WHERE deliveries.id = v.v_id",
        Some(now),
        |o, out| {
            let (code, error) = match &o.attempt {
                Some(a) => (a.response_status, a.error.as_deref()),
                None => (None, None),
            };
            out.push(Box::new(o.delivery_id));
            out.push(Box::new(o.status.as_str()));
            out.push(Box::new(i64::from(o.attempt.is_some())));
            out.push(Box::new(o.next_attempt_at));
            out.push(Box::new(code));
            out.push(Box::new(error));
        },
    )?;
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
    let tallies = crate::store::failure_tallies(outcomes);
    let mut suspended = Vec::new();
    for (webhook_id, t) in tallies {
        if let Some(at) = t.reset_at {
            conn.prepare_cached(
                // Only when a failure streak ends: a webhook that keeps
                // succeeding is never written.
                "UPDATE webhooks SET failure_count = ?1, failing_since = ?2, last_success_at = ?3 \
                 WHERE id = ?4 AND (failure_count != ?1 OR failing_since IS NOT ?2)",
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
