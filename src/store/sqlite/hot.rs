//! The hot path's writer: publishes, outcomes and claims run on one thread
//! that owns its own SQLite connection and executes each transaction
//! synchronously. A transaction costs one hand-off between threads instead
//! of one per statement (sqlx runs every statement on its connection's
//! thread, and each round trip waits for both threads to be scheduled).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, Value};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};

use crate::domain::delivery::{DeliveryJob, NewEvent, Outcome, PublishedEvent, delivery_body};
use crate::domain::fanout::{Audience, Lease, PublishBatch, PublishPlan, StoredKey, key_lookups};
use crate::domain::tally::fold_outcomes;
use crate::store::HotShared;
use crate::store::hot_sql::{
    CLEAR_EXPIRED_KEY, CUSTOM_CATEGORIES, Claim, ClaimedRow, FilterCache, INSERT_ATTEMPT_COLUMNS,
    INSERT_DELIVERY_COLUMNS, INSERT_EVENT_COLUMNS, NAMED_WEBHOOK, SUBSCRIBERS, SUSPEND_IF_FAILING,
    SubscriberRow, TALLY_ADD, TALLY_RESET, claim_sql, claimed_jobs, find_key_sql, subscriber,
    with_operational_events,
};
use crate::store::{CommitBatch, CommitFailed, Committed, StoreError, StoreResult};

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
    pub fn start(
        db: &Path,
        full_sync: bool,
        shared: HotShared,
        gate: super::WriteGate,
    ) -> StoreResult<Self> {
        let conn = Connection::open(db)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // No foreign-key checks on this connection: it writes deliveries
        // only for the events of its own transaction and attempts only for
        // deliveries that exist (`INSERT_ATTEMPTS`), and deletes nothing;
        // a checked key makes every multi-row statement keep a statement
        // journal. Every other connection keeps them on (the purge's
        // cascades).
        conn.pragma_update(None, "foreign_keys", "OFF")?;
        conn.pragma_update(
            None,
            "synchronous",
            if full_sync { "FULL" } else { "NORMAL" },
        )?;
        // The checkpointer thread checkpoints (`checkpointer`), not commits.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.pragma_update(None, "journal_size_limit", super::WAL_SIZE_LIMIT)?;
        // A statement that may fail halfway keeps a statement journal (to
        // undo itself alone); past 64 KiB SQLite spills it to a temporary
        // file unless temporary storage is memory: measured, those writes
        // were 4 % of hookd's CPU in scenario b. The hot path's multi-row
        // statements need none (`OR ROLLBACK`: a failure ends the whole
        // batch, which is what happens anyway); this is for the others.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.set_prepared_statement_cache_capacity(64);
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        std::thread::Builder::new()
            .name("hookd-sqlite-writer".into())
            .spawn(move || {
                let mut conn = conn;
                while let Some(job) = rx.blocking_recv() {
                    // Behind any write the sqlx writer asked for first.
                    let _turn = gate.blocking_lock();
                    match job {
                        Job::Commit { batch, now, reply } => {
                            let CommitBatch {
                                events,
                                lease,
                                outcomes,
                            } = batch;
                            let result = match commit(
                                &mut conn,
                                &shared,
                                &events,
                                lease.as_ref(),
                                &outcomes,
                                now,
                            ) {
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

    pub async fn claim(&self, c: Claim<'_>) -> StoreResult<Vec<DeliveryJob>> {
        let owner = c.owner.to_owned();
        self.ask(|reply| Job::Claim {
            owner,
            now: c.now,
            lease_until: c.lease_until,
            limit: c.limit,
            reply,
        })
        .await
    }
}

fn commit(
    conn: &mut Connection,
    shared: &HotShared,
    events: &[NewEvent],
    lease: Option<&Lease>,
    outcomes: &[Outcome],
    now: i64,
) -> StoreResult<(PublishBatch, Vec<i64>)> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (suspended, recovered) = if outcomes.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        record(&tx, outcomes, now)?
    };
    // Operational events join this batch's events: stored with their cause.
    let events = with_operational_events(
        events,
        shared.operational.get(),
        outcomes,
        &suspended,
        &recovered,
        now,
    );
    let events: &[NewEvent] = &events;
    let published = if events.is_empty() {
        PublishBatch::default()
    } else {
        publish(&tx, &shared.filters, events, lease, now)?
    };
    tx.commit()?;
    Ok((published, suspended))
}

/// Reads what the plan asks for, then writes what it plans (`domain::fanout`).
fn publish(
    conn: &Connection,
    filters: &FilterCache,
    events: &[NewEvent],
    lease: Option<&Lease>,
    now: i64,
) -> StoreResult<PublishBatch> {
    let mut find_key = conn.prepare_cached(find_key_sql!(""))?;
    let found = key_lookups(events)
        .into_iter()
        .map(|i| {
            let stored = find_key
                .query_row(
                    params![events[i].tenant_id, events[i].idempotency_key],
                    |r| {
                        Ok(StoredKey {
                            seq: r.get(0)?,
                            answer: PublishedEvent {
                                id: r.get(1)?,
                                event_type: r.get(2)?,
                                created_at: r.get(3)?,
                                deliveries: r.get::<_, i64>(4)? as u32,
                            },
                        })
                    },
                )
                .optional()?;
            Ok((i, stored))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    drop(find_key);
    let mut plan = PublishPlan::new(events, found, now);
    for &seq in &plan.expired_keys {
        conn.prepare_cached(CLEAR_EXPIRED_KEY)?.execute([seq])?;
    }
    plan.fan_out(&audience(conn, filters, &plan)?, lease, now);

    let mut insert_event = conn.prepare_cached(&format!(
        "{INSERT_EVENT_COLUMNS} VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ))?;
    let mut seqs = vec![0i64; events.len()];
    for i in plan.fresh().collect::<Vec<_>>() {
        let e = &events[i];
        insert_event.execute(params![
            e.id,
            e.tenant_id,
            e.event_type,
            e.environment,
            e.data,
            e.idempotency_key,
            plan.counts[i],
            e.created_at
        ])?;
        seqs[i] = conn.last_insert_rowid();
    }
    let ids = run_chunked(
        conn,
        &plan.deliveries,
        &INSERT_DELIVERIES,
        None,
        |d, out| {
            let e = &events[d.event];
            let lease = lease.filter(|_| d.leased);
            out.extend([
                text(e.tenant_id.as_str()),
                int(seqs[d.event]),
                int(d.webhook_id),
                text(e.event_type.as_str()),
                text(d.status.as_str()),
                int(d.next_attempt_at),
                text(lease.map(|l| l.owner.as_str())),
                int(lease.map(|l| l.until)),
                int(now),
                int(now),
                text(
                    d.ordered
                        .then(|| e.ordering_key.as_deref().unwrap_or_default()),
                ),
            ]);
        },
    )?;
    Ok(plan.finish(&ids))
}

/// The webhooks and categories the plan's fan-out needs.
fn audience(conn: &Connection, filters: &FilterCache, plan: &PublishPlan) -> StoreResult<Audience> {
    let mut audience = Audience::default();
    for &(tenant, environment) in &plan.groups {
        let mut stmt = conn.prepare_cached(SUBSCRIBERS)?;
        let rows = stmt.query_map(params![tenant, environment], |r| {
            Ok(SubscriberRow {
                id: r.get(0)?,
                events: r.get(1)?,
                suspended: r.get(2)?,
                filter: r.get(3)?,
                version: r.get(4)?,
                ordered: r.get(5)?,
                paused: r.get(6)?,
            })
        })?;
        let mut subscribers = Vec::new();
        for row in rows {
            subscribers.push(subscriber(row?, filters)?);
        }
        audience.subscribers.push(Arc::new(subscribers));
    }
    for &tenant in &plan.tenants {
        let mut stmt = conn.prepare_cached(CUSTOM_CATEGORIES)?;
        let rows = stmt.query_map([tenant], |r| Ok((r.get(0)?, r.get(1)?)))?;
        audience.categories.push(Arc::new(
            rows.collect::<Result<HashMap<String, String>, _>>()?,
        ));
    }
    for &(tenant, id) in &plan.named {
        let suspended = conn
            .prepare_cached(NAMED_WEBHOOK)?
            .query_row(params![tenant, id], |r| r.get(0))
            .optional()?;
        audience.named.push(suspended);
    }
    Ok(audience)
}

/// A multi-row statement `prefix VALUES (?, …), (?, …) suffix`, its text
/// made once for each chunk size in `CHUNKS` (the prepared-statement cache
/// finds statements by text).
struct Chunked {
    columns: usize,
    /// By `CHUNKS`' order.
    texts: [String; CHUNKS.len()],
}

impl Chunked {
    fn new(prefix: &str, columns: usize, suffix: &str) -> Self {
        let row = format!("({})", vec!["?"; columns].join(", "));
        Self {
            columns,
            texts: CHUNKS.map(|n| {
                format!(
                    "{prefix}VALUES {}{suffix}",
                    vec![row.as_str(); n].join(", ")
                )
            }),
        }
    }
}

/// Statement shapes used for multi-row statements: few enough to stay in
/// the prepared-statement cache, large enough to amortise each execution.
const CHUNKS: [usize; 3] = [32, 8, 1];

/// The multi-row inserts, each of which ends the transaction if it fails
/// (`OR ROLLBACK`): the batch fails as a whole anyway, and a statement
/// that cannot fail halfway needs no statement journal.
static INSERT_DELIVERIES: LazyLock<Chunked> =
    LazyLock::new(|| Chunked::new(&or_rollback(INSERT_DELIVERY_COLUMNS), 11, ""));
/// Attempts are written only for deliveries that still exist: a webhook
/// deleted while its attempt was in flight fails the delivery, and the
/// purge may remove it (with its event) before the outcome is recorded.
static INSERT_ATTEMPTS: LazyLock<Chunked> = LazyLock::new(|| {
    let insert = format!(
        "{} SELECT * FROM (",
        or_rollback(INSERT_ATTEMPT_COLUMNS).trim_end()
    );
    Chunked::new(
        &insert,
        11,
        ") AS v WHERE EXISTS (SELECT 1 FROM deliveries AS d WHERE d.id = v.column1)",
    )
});
/// The outcomes' new delivery states: one UPDATE … FROM (VALUES …) per
/// chunk, `updated_at` bound after the rows.
static UPDATE_DELIVERIES: LazyLock<Chunked> = LazyLock::new(|| {
    Chunked::new(
        "WITH v (v_id, v_status, v_attempted, v_next, v_code, v_error) AS (",
        6,
        ") UPDATE OR ROLLBACK deliveries SET status = v.v_status, attempts = attempts + v.v_attempted, \
         retry_step = retry_step + v.v_attempted, next_attempt_at = v.v_next, \
         lease_owner = NULL, lease_until = NULL, last_status_code = COALESCE(v.v_code, last_status_code), \
         last_error = CASE WHEN v.v_attempted = 1 THEN v.v_error ELSE last_error END, updated_at = ? \
         FROM v WHERE deliveries.id = v.v_id",
    )
});

fn or_rollback(insert: &str) -> String {
    let columns = insert
        .strip_prefix("INSERT INTO ")
        .expect("an INSERT INTO statement");
    format!("INSERT OR ROLLBACK INTO {columns}")
}

/// Bound values, borrowed where they can be: no box per value.
type Binds<'a> = Vec<ToSqlOutput<'a>>;

fn int(v: impl Into<Option<i64>>) -> ToSqlOutput<'static> {
    v.into()
        .map_or(ToSqlOutput::Owned(Value::Null), ToSqlOutput::from)
}

fn text<'a>(v: impl Into<Option<&'a str>>) -> ToSqlOutput<'a> {
    ToSqlOutput::Borrowed(v.into().into())
}

/// Runs `statement` over `rows` in chunks of the sizes in `CHUNKS`, with
/// `trailing` bound after the rows. Returns the rowids an INSERT gave the
/// rows (SQLite numbers the rows of one INSERT into an AUTOINCREMENT table
/// consecutively).
fn run_chunked<'a, T>(
    conn: &Connection,
    rows: &'a [T],
    statement: &Chunked,
    trailing: Option<i64>,
    bind: impl Fn(&'a T, &mut Binds<'a>),
) -> StoreResult<Vec<i64>> {
    let mut ids = Vec::with_capacity(rows.len());
    let mut rest = rows;
    let mut binds: Binds<'a> = Vec::new();
    while !rest.is_empty() {
        let size = CHUNKS
            .iter()
            .position(|&c| c <= rest.len())
            .unwrap_or(CHUNKS.len() - 1);
        let n = CHUNKS[size];
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        binds.clear();
        binds.reserve(n * statement.columns + 1);
        for r in chunk {
            bind(r, &mut binds);
        }
        if let Some(t) = trailing {
            binds.push(int(t));
        }
        conn.prepare_cached(&statement.texts[size])?
            .execute(rusqlite::params_from_iter(binds.iter()))?;
        let last = conn.last_insert_rowid();
        ids.extend((0..n as i64).map(|k| last - (n as i64 - 1) + k));
    }
    Ok(ids)
}

/// Records attempts and the deliveries' new state; returns the webhooks
/// suspended, and those whose failure streak a success ended.
fn record(conn: &Connection, outcomes: &[Outcome], now: i64) -> StoreResult<(Vec<i64>, Vec<i64>)> {
    let attempted: Vec<&Outcome> = outcomes.iter().filter(|o| o.attempt.is_some()).collect();
    run_chunked(conn, &attempted, &INSERT_ATTEMPTS, None, |o, out| {
        let a = o.attempt.as_ref().expect("filtered to attempted");
        out.extend([
            int(o.delivery_id),
            text(o.tenant_id.as_str()),
            int(a.attempted_at),
            int(a.duration_ms),
            text(a.url.as_str()),
            text(a.request_headers.as_str()),
            int(a.response_status.map(i64::from)),
            text(a.response_headers.as_deref()),
            text(a.response_body.as_deref()),
            text(a.error_kind.map(|k| k.as_str())),
            text(a.error.as_deref()),
        ]);
    })?;
    run_chunked(conn, outcomes, &UPDATE_DELIVERIES, Some(now), |o, out| {
        let (code, error) = match &o.attempt {
            Some(a) => (a.response_status, a.error.as_deref()),
            None => (None, None),
        };
        out.extend([
            int(o.delivery_id),
            text(o.status.as_str()),
            int(i64::from(o.attempt.is_some())),
            int(o.next_attempt_at),
            int(code.map(i64::from)),
            text(error),
        ]);
    })?;
    let mut suspended = Vec::new();
    let mut recovered = Vec::new();
    for t in fold_outcomes(outcomes) {
        match t.reset_at {
            Some(at) => {
                let changed = conn.prepare_cached(TALLY_RESET)?.execute(params![
                    t.failures,
                    t.first_failure,
                    at,
                    t.webhook_id
                ])?;
                // A stored streak that a success replaced by none.
                if changed > 0 && t.failures == 0 {
                    recovered.push(t.webhook_id);
                }
                changed
            }
            None => conn.prepare_cached(TALLY_ADD)?.execute(params![
                t.failures,
                t.first_failure,
                t.webhook_id
            ])?,
        };
        if t.may_suspend()
            && conn.prepare_cached(SUSPEND_IF_FAILING)?.execute(params![
                now,
                t.webhook_id,
                t.gone,
                t.min_failures,
                t.failing_since_at_most(now)
            ])? > 0
        {
            suspended.push(t.webhook_id);
        }
    }
    Ok((suspended, recovered))
}

/// Leases up to `limit` due deliveries and joins them with their events.
/// A claimed delivery's event.
pub(super) const CLAIMED_EVENT: &str =
    "SELECT id, event_type, data, created_at FROM events WHERE seq = $1";

fn claim(
    conn: &mut Connection,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: usize,
) -> StoreResult<Vec<DeliveryJob>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut claimed = Vec::new();
    {
        let mut stmt = tx.prepare_cached(claim_sql!(""))?;
        let rows = stmt.query_map(params![owner, lease_until, now, limit as i64], |r| {
            Ok(ClaimedRow {
                delivery_id: r.get(0)?,
                tenant_id: r.get(1)?,
                event_seq: r.get(2)?,
                webhook_id: r.get(3)?,
                event_type: r.get(4)?,
                attempts: r.get(5)?,
                retry_step: r.get(6)?,
                ordered: r.get(7)?,
            })
        })?;
        for row in rows {
            claimed.push(row?);
        }
    }
    let mut bodies: HashMap<i64, (String, i64, bytes::Bytes)> = HashMap::new();
    {
        let mut event = tx.prepare_cached(CLAIMED_EVENT)?;
        for c in &claimed {
            if bodies.contains_key(&c.event_seq) {
                continue;
            }
            let found = event
                .query_row([c.event_seq], |r| {
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
                bodies.insert(c.event_seq, (id, created_at, body));
            }
        }
    }
    tx.commit()?;
    Ok(claimed_jobs(claimed, &bodies))
}
