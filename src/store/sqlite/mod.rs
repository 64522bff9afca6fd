//! The SQLite store: one file under the data directory, WAL mode.
//!
//! What is SQLite's own is here: opening the file, the one writer
//! connection, `BEGIN IMMEDIATE`, and the hot path on its own thread
//! (`hot`). The queries both databases share are compiled in from
//! `store/sql/` (see `store::sql`'s header).
//!
//! Every transaction that writes starts with `BEGIN IMMEDIATE`, so it takes
//! the write lock up front instead of failing "database is locked" when it
//! upgrades from a read.

use crate::store::HotShared;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, Row, SqliteConnection, SqlitePool, Transaction};

use super::hot_sql::Claim;
use super::{CommitBatch, CommitFailed, Committed, StoreResult, migrations};
use crate::crypto::Cipher;
use crate::domain::delivery::DeliveryJob;

mod checkpointer;
mod hot;

/// The names the shared queries compile against.
type Db = sqlx::Sqlite;
type Backend = SqliteStore;

// Compiled once per backend on purpose (see `store/sql/mod.rs`).
#[allow(clippy::duplicate_mod)]
#[path = "../sql/mod.rs"]
mod sql;

/// The lock both writers take around a write transaction, in the order
/// they asked for it (Tokio's mutex is fair). Without it the two met only
/// at SQLite's lock, whose busy handler retries on a timer: a management
/// write (a pause, say) waited seconds while the hot writer's transactions
/// followed each other back to back.
type WriteGate = Arc<tokio::sync::Mutex<SqliteConnection>>;

/// What a WAL that grew past it (a long read held its checkpoints back) is
/// cut back to when it starts over: both writers' `journal_size_limit`, in
/// bytes. Under load the WAL starts over every checkpoint period at a few
/// megabytes (`checkpointer`), well below it.
const WAL_SIZE_LIMIT: i64 = 64 << 20;

#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Readers: WAL lets them run beside the writer.
    pool: SqlitePool,
    /// The one writer connection: writes queue on this lock in-process
    /// instead of spinning on SQLite's busy handler. Held directly, not in a
    /// pool: a pool's acquire and release cost round trips per transaction.
    /// The hot writer thread takes the same lock around each of its
    /// transactions (`WriteGate`).
    writer: WriteGate,
    /// The hot path's writer thread (publish, record, claim).
    hot: hot::HotWriter,
    /// Checkpoints the WAL off the writers' threads (`checkpointer`).
    _checkpoints: checkpointer::Checkpointer,
    cipher: Arc<Cipher>,
    shared: HotShared,
}

impl SqliteStore {
    /// One writer: a second commit in flight would only wait for it.
    const COMMIT_LANES: usize = 1;

    /// Opens (creating if needed) `<data_dir>/hookd.db`, migrates it and
    /// checks the encryption key against the one it was written with.
    /// `durable` selects `synchronous = FULL` over `NORMAL`.
    pub async fn open(data_dir: &Path, cipher: Arc<Cipher>, durable: bool) -> StoreResult<Self> {
        // FULL syncs the WAL at every commit (power-loss safe); NORMAL only at
        // checkpoints (safe against a process crash, which is what SIGKILL is).
        let synchronous = if durable {
            SqliteSynchronous::Full
        } else {
            SqliteSynchronous::Normal
        };
        // Created 0600 before SQLite opens it: SQLite gives the `-wal` and
        // `-shm` files the database file's mode.
        crate::data_dir::open_private_file(&data_dir.join("hookd.db")).map_err(sqlx::Error::Io)?;
        let base = SqliteConnectOptions::from_str("sqlite://")?
            .filename(data_dir.join("hookd.db"))
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("temp_store", "memory");
        let writer = base
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            // The checkpointer thread checkpoints (`checkpointer`).
            .pragma("wal_autocheckpoint", "0")
            .pragma("journal_size_limit", WAL_SIZE_LIMIT.to_string())
            .connect()
            .await?;
        let writer = Arc::new(tokio::sync::Mutex::new(writer));
        // No ping before each use: for SQLite it is a round trip to the
        // connection's thread, and a local file does not drop connections.
        let pool = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(8)
            .min_connections(1)
            .connect_with(base.read_only(true))
            .await?;
        let shared = HotShared::default();
        let hot = hot::HotWriter::start(
            &data_dir.join("hookd.db"),
            durable,
            shared.clone(),
            writer.clone(),
        )?;
        let checkpoints =
            checkpointer::Checkpointer::start(&data_dir.join("hookd.db"), durable, writer.clone())?;
        let store = Self {
            pool,
            writer,
            hot,
            _checkpoints: checkpoints,
            cipher,
            shared,
        };
        store.migrate().await?;
        store.check_key().await?;
        Ok(store)
    }

    pub async fn migrate(&self) -> StoreResult<()> {
        migrations::migrator(migrations::SQLITE)
            .run(&mut *self.writer().await?)
            .await?;
        Ok(())
    }

    // --- what the shared queries need of a backend ----------------------

    fn reader(&self) -> &SqlitePool {
        &self.pool
    }

    async fn writer(&self) -> StoreResult<tokio::sync::MutexGuard<'_, SqliteConnection>> {
        Ok(self.writer.lock().await)
    }

    async fn begin_write(conn: &mut SqliteConnection) -> sqlx::Result<Transaction<'_, Db>> {
        conn.begin_with("BEGIN IMMEDIATE").await
    }

    /// A read transaction whose statements all see one snapshot: in WAL
    /// mode a deferred transaction keeps the snapshot its first read took.
    async fn begin_snapshot(&self) -> sqlx::Result<Transaction<'static, Db>> {
        self.pool.begin().await
    }

    async fn commit_hot(&self, batch: CommitBatch, now: i64) -> Result<Committed, CommitFailed> {
        self.hot.commit(batch, now).await
    }

    async fn claim_hot(&self, claim: Claim<'_>) -> StoreResult<Vec<DeliveryJob>> {
        self.hot.claim(claim).await
    }

    // One instance per database (the data directory's lock): no heartbeats,
    // no other instance's leases, no one to wake.

    async fn heartbeat_impl(&self, _owner: &str, _now: i64) -> StoreResult<()> {
        Ok(())
    }

    async fn release_dead_leases_impl(&self, _now: i64, _dead_before: i64) -> StoreResult<u64> {
        Ok(0)
    }

    async fn forget_instance_impl(&self, _owner: &str) -> StoreResult<()> {
        Ok(())
    }

    fn work_signal_impl(&self) -> Option<Arc<tokio::sync::Notify>> {
        None
    }

    /// One batch of the retention purge (`sql::purge_batch`).
    const PURGE_EVENTS: &str = concat!(
        "DELETE FROM events WHERE seq IN (",
        sql::purge_batch!(),
        ")"
    );

    /// One slice of a pause's parking (`sql::park_slice`; SQLite's one writer needs no row lock).
    const PARK: &str = concat!(
        "UPDATE deliveries SET next_attempt_at = NULL WHERE id IN (",
        sql::park_slice!(),
        ") RETURNING id"
    );

    // --- query plans (`sql::Backend::explain`) ---------------------------

    const EXPLAIN: &str = "EXPLAIN QUERY PLAN ";

    /// The `detail` of each row of EXPLAIN QUERY PLAN, in its order
    /// ("SEARCH d USING INDEX deliveries_due (next_attempt_at<?)", …).
    fn plan_lines(rows: Vec<SqliteRow>) -> StoreResult<Vec<String>> {
        Ok(rows
            .iter()
            .map(|r| r.try_get::<String, _>("detail"))
            .collect::<Result<_, _>>()?)
    }

    /// The hot writer's claim, then its read of the claimed events.
    async fn explain_claim(&self, now: i64, limit: usize) -> StoreResult<Vec<String>> {
        let claim = format!("{}{}", Self::EXPLAIN, super::hot_sql::claim_sql!(""));
        let mut lines = Self::plan_lines(
            sqlx::query(&claim)
                .bind("explain")
                .bind(now + 1)
                .bind(now)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?,
        )?;
        let events = format!("{}{}", Self::EXPLAIN, hot::CLAIMED_EVENT);
        lines.extend(Self::plan_lines(
            sqlx::query(&events)
                .bind(1i64)
                .fetch_all(&self.pool)
                .await?,
        )?);
        Ok(lines)
    }
}
