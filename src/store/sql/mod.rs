//! The SQL both backends share, written once and compiled once per backend:
//! `store::sqlite` and `store::postgres` each include this directory as a
//! module (`#[path]`), after naming `Db` (the sqlx database) and `Backend`
//! (their store type). Each backend provides what differs: `reader()` (the
//! read pool), `writer()` (a connection that may write), `begin_write` (a
//! write transaction: `BEGIN IMMEDIATE` on SQLite), the hot path
//! (`commit_hot`, `claim_hot`) and the instance methods (`heartbeat_impl`,
//! …). Here is the `Store` implementation itself.
//!
//! Invariant: one SQL text per query, with `$N` placeholders (sqlx binds
//! them by number on SQLite as on PostgreSQL), and only SQL both databases
//! run the same way. A query that cannot be written so belongs to its
//! backend.

mod catalogue;
mod deliveries;
mod store_impl;
mod webhooks;

use super::{Backend, Db};
use crate::store::StoreResult;

/// What the key check seals, to detect a wrong encryption key at start.
const KEY_CHECK: &[u8] = b"hookd encryption key check";

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

impl Backend {
    /// Seals a known value on first start; afterwards, opens it: a wrong
    /// encryption key fails here instead of on the first secret read.
    pub(super) async fn check_key(&self) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('key_check', $1) ON CONFLICT (key) DO NOTHING",
        )
        .bind(self.cipher.seal(KEY_CHECK, "hookd:key_check"))
        .execute(&mut *self.writer().await?)
        .await?;
        let sealed: Vec<u8> = sqlx::query_scalar("SELECT value FROM meta WHERE key = 'key_check'")
            .fetch_one(&mut *self.writer().await?)
            .await?;
        self.cipher.open(&sealed, "hookd:key_check")?;
        Ok(())
    }
}

/// Keeps `Db` named in this module for the children's `QueryBuilder`s.
type Builder<'a> = sqlx::QueryBuilder<'a, Db>;
