//! WAL checkpoints on a thread of their own. By default SQLite checkpoints
//! in whichever connection's commit finds the WAL past 1,000 pages: that
//! commit then copies the WAL into the database file and fsyncs it before
//! it returns, and on the hot writer every publish and outcome waiting for
//! the next commit waits for that too (a few milliseconds, about once a
//! second under load: the p99 of scenario c). The writers turn automatic
//! checkpoints off (`wal_autocheckpoint = 0`) and this thread checkpoints
//! every `EVERY` from its own connection, in two passes:
//!
//! 1. a PASSIVE checkpoint beside the writers (it takes no write lock):
//!    it copies the bulk of the WAL while commits go on;
//! 2. a second PASSIVE checkpoint between two write transactions (it
//!    holds the writers' `WriteGate`), which copies only what was
//!    committed during the first.
//!
//! Why the second: SQLite starts the WAL over from its beginning only when
//! a write transaction begins with every frame already copied back. The
//! hot writer's transactions follow each other back to back under load,
//! so a checkpoint beside them never ends between two of them: the WAL
//! grew by every commit, without bound (630 MB in 15 s of scenario b), and
//! each page appended to a file that grows costs the kernel a block
//! allocation and zeroing (7 % of hookd's CPU in that profile). After the
//! second pass the next commit rewrites the WAL from its start, in pages
//! the kernel already holds.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use rusqlite::Connection;

use super::WriteGate;
use crate::store::{StoreError, StoreResult};

/// How often the WAL is copied back. Short enough that the WAL stays a few
/// megabytes under load; a checkpoint with nothing new to copy costs a
/// read of the WAL index.
const EVERY: Duration = Duration::from_millis(200);

/// Runs while a clone of it is held; dropping the last (with the store)
/// ends the thread after one last checkpoint.
#[derive(Debug, Clone)]
pub(super) struct Checkpointer {
    _running: mpsc::Sender<()>,
}

impl Checkpointer {
    /// Opens its own connection to `db` (synchronous as the writers', so
    /// a checkpoint fsyncs the database file when they fsync their commits).
    /// `gate` is the writers' lock, held for the second pass.
    pub fn start(db: &Path, full_sync: bool, gate: WriteGate) -> StoreResult<Self> {
        let conn = Connection::open(db)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(
            None,
            "synchronous",
            if full_sync { "FULL" } else { "NORMAL" },
        )?;
        let (running, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("hookd-sqlite-checkpoint".into())
            .spawn(move || {
                loop {
                    // Nothing is ever sent: the channel closes with the store.
                    let last = stopped.recv_timeout(EVERY) != Err(RecvTimeoutError::Timeout);
                    match checkpoint(&conn) {
                        // Started over, and nothing committed since.
                        Ok(0) => {}
                        Ok(_) => {
                            let _between_writes = gate.blocking_lock();
                            if let Err(e) = checkpoint(&conn) {
                                tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; retrying"),
                    }
                    if last {
                        return;
                    }
                }
            })
            .map_err(|_| StoreError::Corrupt("could not start the SQLite checkpoint thread"))?;
        Ok(Self { _running: running })
    }
}

/// A PASSIVE checkpoint; the frames in the WAL.
fn checkpoint(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;
    use std::sync::Arc;
    use std::time::Instant;

    use sqlx::ConnectOptions;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};

    use super::*;

    /// How many times the WAL started over: its header's checkpoint
    /// sequence number, which each restart increments.
    fn restarts(wal: &Path) -> u32 {
        let mut header = [0u8; 16];
        std::io::Read::read_exact(&mut std::fs::File::open(wal).unwrap(), &mut header).unwrap();
        u32::from_be_bytes(header[12..16].try_into().unwrap())
    }

    /// A writer that commits back to back, taking the gate around each
    /// transaction as the hot writer does, until the WAL has started over
    /// three times or `bound` has passed; how many times it did.
    fn write_back_to_back(db: &Path, gate: WriteGate, bound: Duration) -> u32 {
        let conn = Connection::open(db).unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
        let wal = db.with_extension("db-wal");
        let started = Instant::now();
        loop {
            {
                let _turn = gate.blocking_lock();
                conn.execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (zeroblob(500)); COMMIT")
                    .unwrap();
            }
            let restarts = restarts(&wal);
            if restarts >= 3 || started.elapsed() > bound {
                return restarts;
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wal_written_back_to_back_starts_over_instead_of_growing() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let mut writer = SqliteConnectOptions::from_str("sqlite://")
            .unwrap()
            .filename(&db)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .connect()
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (x BLOB)")
            .execute(&mut writer)
            .await
            .unwrap();
        let gate: WriteGate = Arc::new(tokio::sync::Mutex::new(writer));
        let checkpoints = Checkpointer::start(&db, false, gate.clone()).unwrap();
        let (db2, gate2) = (db.clone(), gate.clone());
        // Three checkpoint periods suffice; ten seconds leave room for a
        // busy machine. Without the pass between writes, none (or by
        // chance one) ended between two transactions in fifty periods.
        let restarts = tokio::task::spawn_blocking(move || {
            write_back_to_back(&db2, gate2, Duration::from_secs(10))
        })
        .await
        .unwrap();
        drop(checkpoints);
        assert!(restarts >= 3, "the WAL started over {restarts} times");
    }
}
