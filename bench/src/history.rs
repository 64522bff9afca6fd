//! Delivered history: the rows hookd leaves behind once it has delivered
//! an event (the event; one delivery per webhook it fanned out to, status
//! `succeeded` after one attempt; that attempt, answered 200), written
//! straight into hookd's schema with set-based SQL, a chunk of about a
//! million deliveries per transaction, so memory stays bounded and a
//! load of millions takes minutes, not hours.
//!
//! The bench's scale mode (`--preload-rows`) loads it before scenarios a
//! and b; hookd's query-plan test (tests/it/query_plans.rs) loads a small
//! one the same way, so both see rows in the shapes the store writes
//! (`store::hot_sql`'s and `store::postgres::hot`'s inserts). Rows take
//! ids after the largest already there; events are evenly spaced in time
//! from `oldest_ms` to `newest_ms`, oldest first.

use std::path::Path;
use std::time::{Duration, Instant};

/// What to load.
#[derive(Debug, Clone)]
pub struct History {
    /// Delivered deliveries, rounded up to whole events.
    pub deliveries: u64,
    /// Deliveries per event: each event went to webhooks 1..=fanout
    /// (ids the webhooks a fresh database's first `fanout` creations get).
    pub fanout: u64,
    pub tenant: String,
    pub environment: String,
    pub event_type: String,
    /// `created_at` of the oldest and of the newest event (epoch ms).
    pub oldest_ms: i64,
    pub newest_ms: i64,
    /// The receivers' base URL: webhook `w`'s attempts went to `{url}/{w}`.
    pub url: String,
}

/// What a load wrote and how long it took (on PostgreSQL, VACUUM ANALYZE
/// included).
#[derive(Debug, Clone, Copy)]
pub struct Loaded {
    pub events: u64,
    pub deliveries: u64,
    pub elapsed: Duration,
}

/// Deliveries per transaction (rounded to whole events).
const CHUNK_DELIVERIES: u64 = 1_000_000;

/// The SQL dialect a statement is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Sqlite,
    Postgres,
}

/// The first ids of the loaded rows (one past the largest there).
#[derive(Debug, Clone, Copy)]
struct Bases {
    seq: i64,
    delivery: i64,
    attempt: i64,
}

impl History {
    /// Events to load: `deliveries` over `fanout`, rounded up.
    pub fn events(&self) -> u64 {
        self.deliveries.div_ceil(self.fanout.max(1))
    }

    /// `created_at` of event `i` (0 is the oldest).
    pub fn created_at(&self, i: u64) -> i64 {
        let last = self.events().saturating_sub(1).max(1) as i128;
        let span = i128::from(self.newest_ms - self.oldest_ms);
        self.oldest_ms + (span * i as i128 / last) as i64
    }

    /// How many of the loaded events were created before `cutoff`.
    pub fn events_before(&self, cutoff: i64) -> u64 {
        let (mut lo, mut hi) = (0u64, self.events());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.created_at(mid) < cutoff {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The three INSERTs of events `lo..hi` (indices from 0, the oldest).
    fn chunk_sql(&self, d: Dialect, b: Bases, lo: u64, hi: u64) -> [String; 3] {
        let f = self.fanout.max(1);
        let last = self.events().saturating_sub(1).max(1);
        let span = self.newest_ms - self.oldest_ms;
        let oldest = self.oldest_ms;
        // `i` runs over the chunk's events, `k` over each event's webhooks.
        let with = match d {
            Dialect::Postgres => format!(
                "WITH s (i) AS (SELECT generate_series({lo}::bigint, {hi}::bigint - 1)), \
                 k (k) AS (SELECT generate_series(0::bigint, {f}::bigint - 1)) "
            ),
            Dialect::Sqlite => format!(
                "WITH RECURSIVE s (i) AS (SELECT {lo} UNION ALL SELECT i + 1 FROM s WHERE i + 1 < {hi}), \
                 k (k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM k WHERE k + 1 < {f}) "
            ),
        };
        let seq = format!("({} + i)", b.seq);
        let event_id = match d {
            Dialect::Postgres => format!("'evt_' || lpad({seq}::text, 26, '0')"),
            Dialect::Sqlite => format!("printf('evt_%026d', {seq})"),
        };
        let t = format!("({oldest} + {span} * i / {last})");
        let delivery = format!("({} + i * {f} + k)", b.delivery);
        let attempt = format!("({} + i * {f} + k)", b.attempt);
        let (tenant, env, ty) = (
            quote(&self.tenant),
            quote(&self.environment),
            quote(&self.event_type),
        );
        let url = quote(&format!("{}/", self.url));
        let events = format!(
            "{with}INSERT INTO events (seq, id, tenant_id, event_type, environment, data, \
             idempotency_key, delivery_count, created_at) \
             SELECT {seq}, {event_id}, {tenant}, {ty}, {env}, \
             '{{\"license\":\"lic_' || i || '\",\"plan\":\"pro\",\"seats\":' || (i % 50 + 1) || \
             ',\"customer\":\"cus_' || (i % 9973) || '\"}}', NULL, {f}, {t} FROM s"
        );
        let deliveries = format!(
            "{with}INSERT INTO deliveries (id, tenant_id, event_seq, webhook_id, event_type, \
             status, attempts, retry_step, next_attempt_at, lease_owner, lease_until, \
             last_status_code, last_error, created_at, updated_at, ordering_key) \
             SELECT {delivery}, {tenant}, {seq}, 1 + k, {ty}, 'succeeded', 1, 1, NULL, NULL, \
             NULL, 200, NULL, {t}, {t} + 40, NULL FROM s CROSS JOIN k"
        );
        // The headers hookd records of a request (its own; signatures as sent).
        let attempts = format!(
            "{with}INSERT INTO attempts (id, delivery_id, tenant_id, attempted_at, duration_ms, \
             url, request_headers, response_status, response_headers, response_body, \
             error_kind, error) \
             SELECT {attempt}, {delivery}, {tenant}, {t} + 5, 20 + (i + k) % 40, {url} || (1 + k), \
             '{{\"content-type\":\"application/json\",\"user-agent\":\"hookd/0.1.0\",\
             \"idempotency-key\":\"sls-webhook-' || {delivery} || '\",\
             \"webhook-id\":\"sls-webhook-' || {delivery} || '\",\
             \"webhook-timestamp\":\"' || ({t} / 1000) || '\",\
             \"webhook-signature\":\"v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=\",\
             \"x-webhook-signature\":\"v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=\"}}', \
             200, '{{\"content-length\":\"2\",\"content-type\":\"text/plain; charset=utf-8\",\
             \"date\":\"Wed, 02 Dec 2026 06:00:00 GMT\"}}', 'ok', NULL, NULL FROM s CROSS JOIN k"
        );
        [events, deliveries, attempts]
    }

    /// Events per transaction.
    fn chunk_events(&self) -> u64 {
        (CHUNK_DELIVERIES / self.fanout.max(1)).max(1)
    }

    /// Loads into hookd's SQLite database at `db` (migrated; hookd may be
    /// running). `progress` is told the deliveries loaded so far.
    ///
    /// No ANALYZE: hookd never runs it on SQLite, so a live database has no
    /// statistics and its planner picks indexes by their shape alone.
    /// Statistics would make plans hookd never runs (with them, SQLite
    /// walks a one-tenant table in rowid order for the lists and the
    /// purge: tests/it/query_plans.rs shows it).
    pub fn load_sqlite(&self, db: &Path, mut progress: impl FnMut(u64)) -> anyhow::Result<Loaded> {
        let started = Instant::now();
        let mut conn = rusqlite::Connection::open(db)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        // A crash mid-load loses only the bench's copy; 256 MB of page cache.
        conn.pragma_update(None, "synchronous", "OFF")?;
        conn.pragma_update(None, "cache_size", -262_144)?;
        let max = |sql: &str| -> rusqlite::Result<i64> { conn.query_row(sql, [], |r| r.get(0)) };
        let bases = Bases {
            seq: max("SELECT COALESCE(MAX(seq), 0) + 1 FROM events")?,
            delivery: max("SELECT COALESCE(MAX(id), 0) + 1 FROM deliveries")?,
            attempt: max("SELECT COALESCE(MAX(id), 0) + 1 FROM attempts")?,
        };
        let (total, step) = (self.events(), self.chunk_events());
        let mut lo = 0;
        while lo < total {
            let hi = (lo + step).min(total);
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            for sql in self.chunk_sql(Dialect::Sqlite, bases, lo, hi) {
                tx.execute(&sql, [])?;
            }
            tx.commit()?;
            // Keep the WAL from growing by a whole load.
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            lo = hi;
            progress(hi * self.fanout.max(1));
        }
        Ok(Loaded {
            events: total,
            deliveries: total * self.fanout.max(1),
            elapsed: started.elapsed(),
        })
    }

    /// Loads into hookd's PostgreSQL database at `url` (migrated; hookd
    /// may be running), then VACUUM (ANALYZE), so the tables start as a
    /// long-running database's would (statistics, visibility map) and
    /// autovacuum has nothing to catch up on during a measurement.
    pub async fn load_postgres(
        &self,
        url: &str,
        mut progress: impl FnMut(u64),
    ) -> anyhow::Result<Loaded> {
        use sqlx::Connection;
        let started = Instant::now();
        let mut conn = sqlx::PgConnection::connect(url).await?;
        sqlx::raw_sql("SET synchronous_commit = off")
            .execute(&mut conn)
            .await?;
        let (seq, delivery, attempt): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT COALESCE(MAX(seq), 0) + 1 FROM events)::bigint, \
             (SELECT COALESCE(MAX(id), 0) + 1 FROM deliveries)::bigint, \
             (SELECT COALESCE(MAX(id), 0) + 1 FROM attempts)::bigint",
        )
        .fetch_one(&mut conn)
        .await?;
        let bases = Bases {
            seq,
            delivery,
            attempt,
        };
        let (total, step) = (self.events(), self.chunk_events());
        let mut lo = 0;
        while lo < total {
            let hi = (lo + step).min(total);
            let mut tx = conn.begin().await?;
            for sql in self.chunk_sql(Dialect::Postgres, bases, lo, hi) {
                sqlx::raw_sql(&sql).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            lo = hi;
            progress(hi * self.fanout.max(1));
        }
        // Identity columns continue after the explicit ids.
        sqlx::raw_sql(
            "SELECT setval(pg_get_serial_sequence('events', 'seq'), MAX(seq)) FROM events \
             HAVING MAX(seq) IS NOT NULL; \
             SELECT setval(pg_get_serial_sequence('deliveries', 'id'), MAX(id)) FROM deliveries \
             HAVING MAX(id) IS NOT NULL; \
             SELECT setval(pg_get_serial_sequence('attempts', 'id'), MAX(id)) FROM attempts \
             HAVING MAX(id) IS NOT NULL",
        )
        .execute(&mut conn)
        .await?;
        // Alone: VACUUM runs outside any transaction.
        sqlx::raw_sql("VACUUM (ANALYZE) events, deliveries, attempts")
            .execute(&mut conn)
            .await?;
        Ok(Loaded {
            events: total,
            deliveries: total * self.fanout.max(1),
            elapsed: started.elapsed(),
        })
    }
}

/// A string as an SQL literal.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(deliveries: u64, fanout: u64) -> History {
        History {
            deliveries,
            fanout,
            tenant: "default".into(),
            environment: "production".into(),
            event_type: "license.created".into(),
            oldest_ms: 1_000,
            newest_ms: 10_000,
            url: "http://127.0.0.1:9/r".into(),
        }
    }

    #[test]
    fn events_are_evenly_spaced_from_the_oldest_to_the_newest() {
        let h = history(100, 10);
        assert_eq!(h.events(), 10);
        assert_eq!(h.created_at(0), 1_000);
        assert_eq!(h.created_at(9), 10_000);
        assert_eq!(h.created_at(3), 4_000);
    }

    #[test]
    fn deliveries_round_up_to_whole_events() {
        assert_eq!(history(101, 10).events(), 11);
    }

    #[test]
    fn events_before_a_cutoff_are_counted_exactly() {
        let h = history(100, 10);
        assert_eq!(h.events_before(0), 0);
        assert_eq!(h.events_before(4_000), 3);
        assert_eq!(h.events_before(4_001), 4);
        assert_eq!(h.events_before(20_000), 10);
    }

    #[test]
    fn sqlite_loads_rows_in_the_shapes_hookd_writes() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("hookd.db");
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, \
             tenant_id TEXT, event_type TEXT, environment TEXT, data TEXT, idempotency_key TEXT, \
             delivery_count INTEGER, created_at INTEGER);
             CREATE TABLE deliveries (id INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT, \
             event_seq INTEGER, webhook_id INTEGER, event_type TEXT, status TEXT, attempts INTEGER, \
             retry_step INTEGER, next_attempt_at INTEGER, lease_owner TEXT, lease_until INTEGER, \
             last_status_code INTEGER, last_error TEXT, created_at INTEGER, updated_at INTEGER, \
             ordering_key TEXT);
             CREATE TABLE attempts (id INTEGER PRIMARY KEY AUTOINCREMENT, delivery_id INTEGER, \
             tenant_id TEXT, attempted_at INTEGER, duration_ms INTEGER, url TEXT, \
             request_headers TEXT, response_status INTEGER, response_headers TEXT, \
             response_body TEXT, error_kind TEXT, error TEXT);",
        )
        .unwrap();
        let loaded = history(25, 3).load_sqlite(&db, |_| {}).unwrap();
        assert_eq!((loaded.events, loaded.deliveries), (9, 27));
        let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(count("SELECT COUNT(*) FROM events"), 9);
        assert_eq!(
            count("SELECT COUNT(*) FROM deliveries WHERE status = 'succeeded'"),
            27
        );
        assert_eq!(
            count(
                "SELECT COUNT(*) FROM attempts a JOIN deliveries d ON d.id = a.delivery_id \
                 JOIN events e ON e.seq = d.event_seq WHERE json_valid(a.request_headers) \
                 AND json_valid(e.data) AND a.url = 'http://127.0.0.1:9/r/' || d.webhook_id"
            ),
            27
        );
        assert_eq!(
            count("SELECT COUNT(DISTINCT webhook_id) FROM deliveries"),
            3
        );
        assert_eq!(count("SELECT MIN(created_at) FROM events"), 1_000);
        assert_eq!(count("SELECT MAX(created_at) FROM events"), 10_000);
        // A second load continues after the first's ids.
        history(3, 3).load_sqlite(&db, |_| {}).unwrap();
        assert_eq!(count("SELECT COUNT(DISTINCT id) FROM events"), 10);
        assert_eq!(count("SELECT MAX(id) FROM attempts"), 30);
    }
}
