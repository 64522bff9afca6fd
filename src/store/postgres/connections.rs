//! Connections the hot path (commits and claims) keeps outside sqlx's
//! pool. sqlx pings every connection its pool takes back (one more round
//! trip and one more statement for PostgreSQL per commit, on two shared
//! cores); these are reused as they are. A connection goes back only after
//! its work succeeded: one whose statement or transaction failed, or
//! whose work was abandoned halfway (a dropped future), is closed, and the
//! next commit takes another from the pool.

use std::sync::{Arc, Mutex};

use sqlx::PgConnection;
use sqlx::postgres::PgPool;

/// The idle hot connections.
#[derive(Clone, Default)]
pub(super) struct HotConnections {
    idle: Arc<Mutex<Vec<PgConnection>>>,
}

impl std::fmt::Debug for HotConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotConnections").finish_non_exhaustive()
    }
}

impl HotConnections {
    /// Idle connections kept: one per commit lane and one for claims.
    const KEEP: usize = super::PostgresStore::COMMIT_LANES + 1;

    /// An idle hot connection, or one detached from `pool` (which may
    /// then open a replacement for its own users).
    pub(super) async fn take(&self, pool: &PgPool) -> sqlx::Result<HotConnection> {
        let idle = self.idle.lock().expect("hot connections").pop();
        let conn = match idle {
            Some(c) => c,
            None => pool.acquire().await?.detach(),
        };
        Ok(HotConnection {
            conn,
            home: self.idle.clone(),
        })
    }
}

/// A hot connection in use; `done` gives it back, dropping closes it.
pub(super) struct HotConnection {
    conn: PgConnection,
    home: Arc<Mutex<Vec<PgConnection>>>,
}

impl HotConnection {
    /// Its work succeeded: it is idle again, with no transaction open.
    pub(super) fn done(self) {
        let mut idle = self.home.lock().expect("hot connections");
        if idle.len() < HotConnections::KEEP {
            idle.push(self.conn);
        }
    }
}

impl std::ops::Deref for HotConnection {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for HotConnection {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}
