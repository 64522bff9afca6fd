//! WAL checkpoints on a thread of their own. By default SQLite checkpoints
//! in whichever connection's commit finds the WAL past 1,000 pages: that
//! commit then copies the WAL into the database file and fsyncs it before
//! it returns, and on the hot writer every publish and outcome waiting for
//! the next commit waits for that too (a few milliseconds, about once a
//! second under load: the p99 of scenario c). The writers turn automatic
//! checkpoints off (`wal_autocheckpoint = 0`) and this thread runs a
//! PASSIVE checkpoint every `EVERY` from its own connection: it takes no
//! write lock, so commits go on beside it, and a WAL the writers have
//! moved on from is restarted by their next commit as before.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use rusqlite::Connection;

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
    pub fn start(db: &Path, full_sync: bool) -> StoreResult<Self> {
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
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
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
