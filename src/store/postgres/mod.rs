//! The PostgreSQL store: any number of instances share one database.
//!
//! What is PostgreSQL's own is here: the pool, `LISTEN`/`NOTIFY`, instance
//! heartbeats, and the hot path (`hot`). The queries both databases share
//! are compiled in from `store/sql/` (see `store::sql`'s header).
//!
//! Deliveries are claimed with `FOR UPDATE SKIP LOCKED`, so instances never
//! take the same one; `NOTIFY hookd_work` wakes idle instances when work
//! is left for a claim. Migrations run under sqlx's advisory lock, so
//! instances starting together apply them once.

use crate::store::HotShared;
use std::sync::Arc;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgListener, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Row, Transaction};
use tokio::sync::Notify;

use super::{StoreResult, migrations};
use crate::crypto::Cipher;

mod audiences;
mod connections;
mod hot;

/// The names the shared queries compile against.
type Db = Postgres;
type Backend = PostgresStore;

// Compiled once per backend on purpose (see `store/sql/mod.rs`).
#[allow(clippy::duplicate_mod)]
#[path = "../sql/mod.rs"]
mod sql;

/// The channel instances notify when work is left for a claim.
const WORK_CHANNEL: &str = "hookd_work";

#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    cipher: Arc<Cipher>,
    /// Fires when another instance (or this one) announced claimable work.
    work: Arc<Notify>,
    shared: HotShared,
    /// The hot path's own connections (`connections`).
    hot: connections::HotConnections,
    /// Audiences kept between batches (`audiences`).
    audiences: Arc<audiences::Audiences>,
}

impl PostgresStore {
    /// Commits in flight at once (`Store::commit_lanes`). Measured with
    /// hookd-bench on 2 cores (docs/benchmarks.md): more lanes than this
    /// only lengthened each commit.
    const COMMIT_LANES: usize = 4;

    /// Connects, migrates, checks the encryption key, and starts listening
    /// for work notifications.
    pub async fn open(url: &str, cipher: Arc<Cipher>) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .min_connections(1)
            // No ping when a connection leaves the pool: a round trip per
            // transaction, paid on the hot path. A broken connection fails
            // its statement instead, and the commit loop retries the batch.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        let store = Self {
            pool,
            cipher,
            work: Arc::new(Notify::new()),
            shared: HotShared::default(),
            hot: connections::HotConnections::default(),
            audiences: Arc::default(),
        };
        store.migrate().await?;
        store.check_key().await?;
        store.listen_for_work();
        store.analyze_young_tables();
        Ok(store)
    }

    /// Keeps a LISTEN connection open (reconnecting with backoff) and turns
    /// each notification into a wake-up of this instance's scheduler.
    fn listen_for_work(&self) {
        let pool = self.pool.clone();
        let work = self.work.clone();
        tokio::spawn(async move {
            let mut failures = 0u32;
            loop {
                let listener = async {
                    let mut l = PgListener::connect_with(&pool).await?;
                    l.listen(WORK_CHANNEL).await?;
                    Ok::<_, sqlx::Error>(l)
                };
                match listener.await {
                    Ok(mut l) => {
                        failures = 0;
                        while l.recv().await.is_ok() {
                            work.notify_one();
                        }
                    }
                    Err(e) => {
                        failures += 1;
                        tracing::warn!(error = %e, "listening for work notifications failed; retrying");
                    }
                }
                // Whatever was missed meanwhile, the scheduler's poll finds.
                work.notify_one();
                tokio::time::sleep(Duration::from_millis(
                    (200u64 << failures.min(5)).min(5_000),
                ))
                .await;
            }
        });
    }

    /// Gives the planner statistics of the hot tables as soon as they hold
    /// rows. A table PostgreSQL never analyzed is planned with default
    /// selectivities (a third of the rows for a range), so the claim and
    /// purge read whole tables until autovacuum's first ANALYZE, a minute
    /// or more after the first rows (measured: ~90 sequential scans of
    /// `deliveries` a second in the bench's first minute). Each table is
    /// analyzed once, when it has `YOUNG_ROWS` changes and no statistics;
    /// autovacuum keeps them from then on. The task ends when all have
    /// some, when the pool closes, or after `WATCH` (by then autovacuum has
    /// analyzed any table with 50 changes; one with fewer is planned well
    /// enough without).
    fn analyze_young_tables(&self) {
        const HOT_TABLES: [&str; 3] = ["events", "deliveries", "attempts"];
        const YOUNG_ROWS: i64 = 1_000;
        const WATCH: Duration = Duration::from_secs(600);
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            while started.elapsed() < WATCH && !pool.is_closed() {
                let unanalyzed: sqlx::Result<Vec<(String, i64)>> = sqlx::query_as(
                    "SELECT relname::text, n_mod_since_analyze FROM pg_stat_user_tables \
                     WHERE schemaname = current_schema() AND relname = ANY($1) \
                     AND last_analyze IS NULL AND last_autoanalyze IS NULL",
                )
                .bind(&HOT_TABLES[..])
                .fetch_all(&pool)
                .await;
                match unanalyzed {
                    Ok(tables) if tables.is_empty() => return,
                    Ok(tables) => {
                        for (table, _) in tables.iter().filter(|(_, n)| *n >= YOUNG_ROWS) {
                            // The name comes from HOT_TABLES, not from input.
                            if let Err(e) = sqlx::query(&format!("ANALYZE {table}"))
                                .execute(&pool)
                                .await
                            {
                                tracing::debug!(error = %e, table, "first ANALYZE failed; retrying");
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "reading table statistics failed"),
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        });
    }

    pub async fn migrate(&self) -> StoreResult<()> {
        migrations::migrator(migrations::POSTGRES)
            .run(&self.pool)
            .await?;
        Ok(())
    }

    // --- what the shared queries need of a backend ----------------------

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    async fn writer(&self) -> StoreResult<PoolConnection<Postgres>> {
        Ok(self.pool.acquire().await?)
    }

    async fn begin_write(conn: &mut PgConnection) -> sqlx::Result<Transaction<'_, Db>> {
        conn.begin().await
    }

    /// A read-only transaction whose statements all see one snapshot
    /// (under READ COMMITTED each statement would take its own).
    async fn begin_snapshot(&self) -> sqlx::Result<Transaction<'static, Db>> {
        self.pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
    }

    async fn heartbeat_impl(&self, owner: &str, now: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO instances (owner, heartbeat_at) VALUES ($1, $2) \
             ON CONFLICT (owner) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
        )
        .bind(owner)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn release_dead_leases_impl(&self, now: i64, dead_before: i64) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(
            "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL, next_attempt_at = $1 \
             WHERE lease_owner IS NOT NULL AND status IN ('pending', 'retrying') \
             AND lease_owner IN (SELECT owner FROM instances WHERE heartbeat_at < $2)",
        )
        .bind(now)
        .bind(dead_before)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM instances WHERE heartbeat_at < $1")
            .bind(dead_before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if r.rows_affected() > 0 {
            self.work.notify_one();
        }
        Ok(r.rows_affected())
    }

    async fn forget_instance_impl(&self, owner: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM instances WHERE owner = $1")
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    fn work_signal_impl(&self) -> Option<Arc<Notify>> {
        Some(self.work.clone())
    }

    /// One batch of the retention purge (`sql::purge_batch`), its events
    /// gathered into an array first so they are deleted through the
    /// primary key: with `seq IN (…)` the planner may hash-join a
    /// sequential scan of every event (tests/it/query_plans.rs).
    const PURGE_EVENTS: &str = concat!(
        "DELETE FROM events WHERE seq = ANY(ARRAY(",
        sql::purge_batch!(),
        "))"
    );

    /// One slice of a pause's parking (`sql::park_slice`, its rows locked: a claim leasing one meanwhile keeps it).
    const PARK: &str = concat!(
        "UPDATE deliveries SET next_attempt_at = NULL WHERE id IN (",
        sql::park_slice!(),
        " FOR UPDATE SKIP LOCKED) RETURNING id"
    );

    // --- query plans (`sql::Backend::explain`) ---------------------------

    const EXPLAIN: &str = "EXPLAIN (FORMAT JSON) ";

    /// The plan's nodes, depth first, one line each, indented by depth:
    /// "Index Scan using deliveries_due on deliveries", "Seq Scan on events", …
    fn plan_lines(rows: Vec<PgRow>) -> StoreResult<Vec<String>> {
        fn walk(node: &serde_json::Value, depth: usize, out: &mut Vec<String>) {
            let mut line = format!(
                "{}{}",
                "  ".repeat(depth),
                node["Node Type"].as_str().unwrap_or("?")
            );
            if let Some(index) = node["Index Name"].as_str() {
                line.push_str(&format!(" using {index}"));
            }
            if let Some(table) = node["Relation Name"].as_str() {
                line.push_str(&format!(" on {table}"));
            }
            out.push(line);
            for child in node["Plans"].as_array().into_iter().flatten() {
                walk(child, depth + 1, out);
            }
        }
        let mut out = Vec::new();
        for r in rows {
            let plan: serde_json::Value = r.try_get(0)?;
            for p in plan.as_array().into_iter().flatten() {
                walk(&p["Plan"], 0, &mut out);
            }
        }
        Ok(out)
    }

    /// The hot path's claim (its events read in the same statement).
    async fn explain_claim(&self, now: i64, limit: usize) -> StoreResult<Vec<String>> {
        let claim = format!("{}{}", Self::EXPLAIN, hot::CLAIM);
        Self::plan_lines(
            sqlx::query(&claim)
                .bind("explain")
                .bind(now + 1)
                .bind(now)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?,
        )
    }
}
