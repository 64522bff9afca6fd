//! The SQLite store: one file under the data directory, WAL mode.
//!
//! Every transaction that writes starts with `BEGIN IMMEDIATE`, so it takes
//! the write lock up front instead of failing "database is locked" when it
//! upgrades from a read.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, QueryBuilder, Sqlite, SqliteConnection, SqlitePool};

use super::rows::{
    ApiKeyRow, WEBHOOK_COLUMNS, WebhookJsonColumns, WebhookRow, open_secret, seal_headers,
    seal_secret,
};
use super::{
    AdminSessionRecord, ApiKeyRecord, AttemptRow, CommitBatch, CommitFailed, Committed,
    DeliveryFilter, DeliveryRecord, EventFilter, EventRecord, EventTypeRecord, HistogramRow, Page,
    QueueStats, Store, StoreError, StoreResult, WebhookFilter, admin_sql, like_escape, migrations,
};
use crate::domain::delivery::DeliveryJob;

mod delivery;
mod hot;
use crate::crypto::Cipher;
use crate::domain::api_key::Permission;
use crate::domain::webhook::{Webhook, WebhookSecrets};

#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Readers: WAL lets them run beside the writer.
    pool: SqlitePool,
    /// The one writer connection: writes queue on this lock in-process
    /// instead of spinning on SQLite's busy handler. Held directly, not in a
    /// pool: a pool's acquire and release cost round trips per transaction.
    writer: Arc<tokio::sync::Mutex<SqliteConnection>>,
    /// The hot path's writer thread (publish, record, claim).
    hot: hot::HotWriter,
    cipher: Arc<Cipher>,
}

/// What the key check seals, to detect a wrong encryption key at start.
const KEY_CHECK: &[u8] = b"hookd encryption key check";

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

impl SqliteStore {
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
        let hot = hot::HotWriter::start(&data_dir.join("hookd.db"), durable)?;
        let store = Self {
            pool,
            writer,
            hot,
            cipher,
        };
        store.migrate().await?;
        store.check_key().await?;
        Ok(store)
    }

    async fn writer(&self) -> tokio::sync::MutexGuard<'_, SqliteConnection> {
        self.writer.lock().await
    }

    pub async fn migrate(&self) -> StoreResult<()> {
        migrations::migrator(migrations::SQLITE)
            .run(&mut *self.writer().await)
            .await?;
        Ok(())
    }

    async fn check_key(&self) -> StoreResult<()> {
        let existing: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'key_check'")
                .fetch_optional(&mut *self.writer().await)
                .await?;
        match existing {
            Some(sealed) => {
                self.cipher.open(&sealed, "hookd:key_check")?;
            }
            None => {
                sqlx::query("INSERT OR IGNORE INTO meta (key, value) VALUES ('key_check', ?)")
                    .bind(self.cipher.seal(KEY_CHECK, "hookd:key_check"))
                    .execute(&mut *self.writer().await)
                    .await?;
            }
        }
        Ok(())
    }

    async fn fetch_webhook(&self, tenant: &str, id: i64) -> StoreResult<Option<Webhook>> {
        let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE tenant_id = ? AND id = ?");
        let row: Option<WebhookRow> = sqlx::query_as(&sql)
            .bind(tenant)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.into_webhook(&self.cipher)).transpose()
    }
}

fn push_webhook_filter(qb: &mut QueryBuilder<'_, Sqlite>, tenant: &str, f: &WebhookFilter) {
    qb.push(" WHERE tenant_id = ").push_bind(tenant.to_owned());
    if let Some(q) = &f.q {
        let pattern = format!("%{}%", like_escape(&q.to_lowercase()));
        qb.push(" AND search_text LIKE ")
            .push_bind(pattern)
            .push(" ESCAPE '\\'");
    }
    if let Some(env) = &f.environment {
        qb.push(" AND environment = ").push_bind(env.clone());
    }
    if let Some(enabled) = f.enabled {
        qb.push(" AND enabled = ").push_bind(enabled);
    }
    if let Some(suspended) = f.suspended {
        qb.push(" AND suspended = ").push_bind(suspended);
    }
    if let Some(t) = &f.event_type {
        // `events` is a JSON array of validated names, which cannot contain
        // quotes, so a quoted substring match is exact.
        let exact = format!("%\"{}\"%", like_escape(t));
        let wildcard = format!(
            "%\"{}.*\"%",
            like_escape(crate::domain::event_type::category_of(t))
        );
        qb.push(" AND (events LIKE ")
            .push_bind(exact)
            .push(" ESCAPE '\\' OR events LIKE ")
            .push_bind(wildcard)
            .push(" ESCAPE '\\'");
        if let Some(c) = &f.event_category {
            qb.push(" OR events LIKE ")
                .push_bind(format!("%\"{}.*\"%", like_escape(c)))
                .push(" ESCAPE '\\'");
        }
        qb.push(")");
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_webhook(&self, w: &Webhook, secret: &str, now: i64) -> StoreResult<Webhook> {
        let json = WebhookJsonColumns::of(w);
        let sql = format!(
            "INSERT INTO webhooks (tenant_id, name, url, events, enabled, environment, description, \
             headers, timeout_ms, rate_limit, retry_schedule, failure_handling, suspended, secret, \
             created_at, updated_at, version, search_text) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, FALSE, ?, ?, ?, 1, ?) RETURNING {WEBHOOK_COLUMNS}"
        );
        let row: WebhookRow = sqlx::query_as(&sql)
            .bind(&w.tenant_id)
            .bind(&w.name)
            .bind(&w.url)
            .bind(&json.events)
            .bind(w.enabled)
            .bind(&w.environment)
            .bind(&w.description)
            .bind(seal_headers(&self.cipher, &w.tenant_id, &w.headers))
            .bind(w.timeout_ms as i64)
            .bind(w.rate_limit.map(i64::from))
            .bind(&json.retry_schedule)
            .bind(&json.failure_handling)
            .bind(seal_secret(&self.cipher, &w.tenant_id, "secret", secret))
            .bind(now)
            .bind(now)
            .bind(&json.search_text)
            .fetch_one(&mut *self.writer().await)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict("a webhook with this URL already exists".into())
                } else {
                    e.into()
                }
            })?;
        row.into_webhook(&self.cipher)
    }

    async fn get_webhook(&self, tenant: &str, id: i64) -> StoreResult<Option<Webhook>> {
        self.fetch_webhook(tenant, id).await
    }

    async fn list_webhooks(
        &self,
        tenant: &str,
        filter: &WebhookFilter,
        offset: u64,
        limit: u64,
    ) -> StoreResult<Page<Webhook>> {
        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM webhooks");
        push_webhook_filter(&mut count, tenant, filter);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;

        let mut qb = QueryBuilder::<Sqlite>::new(format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks"));
        push_webhook_filter(&mut qb, tenant, filter);
        qb.push(" ORDER BY id LIMIT ")
            .push_bind(limit as i64)
            .push(" OFFSET ")
            .push_bind(offset as i64);
        let rows: Vec<WebhookRow> = qb.build_query_as().fetch_all(&self.pool).await?;
        let items = rows
            .into_iter()
            .map(|r| r.into_webhook(&self.cipher))
            .collect::<StoreResult<_>>()?;
        Ok(Page {
            items,
            total: total as u64,
        })
    }

    async fn update_webhook(&self, w: &Webhook, now: i64) -> StoreResult<Option<Webhook>> {
        let json = WebhookJsonColumns::of(w);
        let sql = format!(
            "UPDATE webhooks SET name = ?, url = ?, events = ?, enabled = ?, environment = ?, \
             description = ?, headers = ?, timeout_ms = ?, rate_limit = ?, retry_schedule = ?, \
             failure_handling = ?, search_text = ?, updated_at = ?, version = version + 1 \
             WHERE tenant_id = ? AND id = ? AND version = ? RETURNING {WEBHOOK_COLUMNS}"
        );
        let row: Option<WebhookRow> = sqlx::query_as(&sql)
            .bind(&w.name)
            .bind(&w.url)
            .bind(&json.events)
            .bind(w.enabled)
            .bind(&w.environment)
            .bind(&w.description)
            .bind(seal_headers(&self.cipher, &w.tenant_id, &w.headers))
            .bind(w.timeout_ms as i64)
            .bind(w.rate_limit.map(i64::from))
            .bind(&json.retry_schedule)
            .bind(&json.failure_handling)
            .bind(&json.search_text)
            .bind(now)
            .bind(&w.tenant_id)
            .bind(w.id)
            .bind(w.version)
            .fetch_optional(&mut *self.writer().await)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict("a webhook with this URL already exists".into())
                } else {
                    e.into()
                }
            })?;
        match row {
            Some(r) => Ok(Some(r.into_webhook(&self.cipher)?)),
            None => match self.fetch_webhook(&w.tenant_id, w.id).await? {
                Some(_) => Err(StoreError::Stale),
                None => Ok(None),
            },
        }
    }

    async fn delete_webhook(&self, tenant: &str, id: i64) -> StoreResult<bool> {
        let mut writer = self.writer().await;
        let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
        let r = sqlx::query("DELETE FROM webhooks WHERE tenant_id = ? AND id = ?")
            .bind(tenant)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        // Unfinished deliveries have nowhere to go; their log stays.
        sqlx::query(
            "UPDATE deliveries SET status = 'failed', last_error = 'webhook deleted', next_attempt_at = NULL, \
             lease_owner = NULL, lease_until = NULL WHERE tenant_id = ? AND webhook_id = ? \
             AND status IN ('pending', 'retrying')",
        )
        .bind(tenant)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    async fn get_webhook_secrets(
        &self,
        tenant: &str,
        id: i64,
    ) -> StoreResult<Option<WebhookSecrets>> {
        let row: Option<(Vec<u8>, Option<Vec<u8>>, Option<i64>)> = sqlx::query_as(
            "SELECT secret, previous_secret, previous_secret_expires_at FROM webhooks \
             WHERE tenant_id = ? AND id = ?",
        )
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some((secret, previous, until)) = row else {
            return Ok(None);
        };
        let previous = match (previous, until) {
            (Some(p), Some(until)) => Some((
                open_secret(&self.cipher, tenant, "previous_secret", &p)?,
                until,
            )),
            _ => None,
        };
        Ok(Some(WebhookSecrets {
            current: open_secret(&self.cipher, tenant, "secret", &secret)?,
            previous,
        }))
    }

    async fn rotate_webhook_secret(
        &self,
        tenant: &str,
        id: i64,
        new_secret: &str,
        previous_until: i64,
        now: i64,
    ) -> StoreResult<bool> {
        let mut writer = self.writer().await;
        let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
        let current: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT secret FROM webhooks WHERE tenant_id = ? AND id = ?")
                .bind(tenant)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(current) = current else {
            return Ok(false);
        };
        // Re-seal under the previous_secret context: a sealed value is bound to its column.
        let old = open_secret(&self.cipher, tenant, "secret", &current)?;
        sqlx::query(
            "UPDATE webhooks SET secret = ?, previous_secret = ?, previous_secret_expires_at = ?, \
             updated_at = ?, version = version + 1 WHERE tenant_id = ? AND id = ?",
        )
        .bind(seal_secret(&self.cipher, tenant, "secret", new_secret))
        .bind(seal_secret(&self.cipher, tenant, "previous_secret", &old))
        .bind(previous_until)
        .bind(now)
        .bind(tenant)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn set_webhook_suspended(
        &self,
        tenant: &str,
        id: i64,
        suspended: bool,
        now: i64,
    ) -> StoreResult<Option<Webhook>> {
        let sql = format!(
            "UPDATE webhooks SET suspended = ?, \
             suspended_at = CASE WHEN ? THEN COALESCE(suspended_at, ?) ELSE NULL END, \
             failure_count = 0, failing_since = NULL, \
             updated_at = ?, version = version + 1 \
             WHERE tenant_id = ? AND id = ? RETURNING {WEBHOOK_COLUMNS}"
        );
        let row: Option<WebhookRow> = sqlx::query_as(&sql)
            .bind(suspended)
            .bind(suspended)
            .bind(now)
            .bind(now)
            .bind(tenant)
            .bind(id)
            .fetch_optional(&mut *self.writer().await)
            .await?;
        row.map(|r| r.into_webhook(&self.cipher)).transpose()
    }

    async fn list_event_types(&self, tenant: &str) -> StoreResult<Vec<EventTypeRecord>> {
        let rows: Vec<(String, String, Option<String>, Option<i64>, i64)> = sqlx::query_as(
            "SELECT name, category, description, archived_at, created_at FROM event_types \
             WHERE tenant_id = ? ORDER BY name",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(name, category, description, archived_at, created_at)| EventTypeRecord {
                    name,
                    category,
                    description,
                    archived_at,
                    created_at,
                },
            )
            .collect())
    }

    async fn create_event_type(&self, tenant: &str, r: &EventTypeRecord) -> StoreResult<()> {
        let done = sqlx::query(
            "INSERT INTO event_types (tenant_id, name, category, description, archived_at, created_at) \
             VALUES (?, ?, ?, ?, NULL, ?) \
             ON CONFLICT (tenant_id, name) DO UPDATE SET archived_at = NULL, \
             category = excluded.category, description = excluded.description \
             WHERE event_types.archived_at IS NOT NULL",
        )
        .bind(tenant)
        .bind(&r.name)
        .bind(&r.category)
        .bind(&r.description)
        .bind(r.created_at)
        .execute(&mut *self.writer().await)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "event type {:?} already exists",
                r.name
            )));
        }
        Ok(())
    }

    async fn archive_event_type(&self, tenant: &str, r: &EventTypeRecord) -> StoreResult<()> {
        let at = r.archived_at.unwrap_or(r.created_at);
        sqlx::query(
            "INSERT INTO event_types (tenant_id, name, category, description, archived_at, created_at) \
             VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (tenant_id, name) DO UPDATE SET archived_at = COALESCE(event_types.archived_at, excluded.archived_at)",
        )
        .bind(tenant)
        .bind(&r.name)
        .bind(&r.category)
        .bind(&r.description)
        .bind(at)
        .bind(r.created_at)
        .execute(&mut *self.writer().await)
        .await?;
        Ok(())
    }

    async fn restore_event_type(&self, tenant: &str, name: &str) -> StoreResult<bool> {
        let r = sqlx::query(admin_sql::RESTORE_EVENT_TYPE)
            .bind(tenant)
            .bind(name)
            .execute(&mut *self.writer().await)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn create_api_key(
        &self,
        tenant: &str,
        name: &str,
        key_hash: &[u8],
        permissions: &[Permission],
        now: i64,
    ) -> StoreResult<ApiKeyRecord> {
        let row: ApiKeyRow = sqlx::query_as(
            "INSERT INTO api_keys (tenant_id, name, key_hash, permissions, created_at) \
             VALUES (?, ?, ?, ?, ?) RETURNING id, tenant_id, name, permissions, created_at",
        )
        .bind(tenant)
        .bind(name)
        .bind(key_hash)
        .bind(serde_json::to_string(permissions).expect("permissions serialize"))
        .bind(now)
        .fetch_one(&mut *self.writer().await)
        .await?;
        row.into_record()
    }

    async fn list_api_keys(&self, tenant: Option<&str>) -> StoreResult<Vec<ApiKeyRecord>> {
        let rows: Vec<ApiKeyRow> = sqlx::query_as(
            "SELECT id, tenant_id, name, permissions, created_at FROM api_keys \
             WHERE revoked_at IS NULL AND (? IS NULL OR tenant_id = ?) ORDER BY id",
        )
        .bind(tenant)
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(ApiKeyRow::into_record).collect()
    }

    async fn revoke_api_key(&self, tenant: &str, id: i64, now: i64) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE api_keys SET revoked_at = ? WHERE tenant_id = ? AND id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(tenant)
        .bind(id)
        .execute(&mut *self.writer().await)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn find_api_key(&self, key_hash: &[u8]) -> StoreResult<Option<ApiKeyRecord>> {
        let row: Option<ApiKeyRow> = sqlx::query_as(
            "SELECT id, tenant_id, name, permissions, created_at FROM api_keys \
             WHERE key_hash = ? AND revoked_at IS NULL",
        )
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(ApiKeyRow::into_record).transpose()
    }

    async fn commit_batch(&self, batch: CommitBatch, now: i64) -> Result<Committed, CommitFailed> {
        self.hot.commit(batch, now).await
    }

    async fn claim_due_deliveries(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> StoreResult<Vec<DeliveryJob>> {
        self.hot.claim(owner, now, lease_until, limit).await
    }

    async fn release_leases(&self, owner: Option<&str>, now: i64) -> StoreResult<u64> {
        self.release_leases_impl(owner, now).await
    }

    async fn next_due_at(&self) -> StoreResult<Option<i64>> {
        self.next_due_at_impl().await
    }

    async fn retry_delivery(
        &self,
        tenant: &str,
        id: i64,
        now: i64,
    ) -> StoreResult<Option<DeliveryRecord>> {
        self.retry_delivery_impl(tenant, id, now).await
    }

    async fn recover_webhook(
        &self,
        tenant: &str,
        webhook_id: i64,
        since: i64,
        now: i64,
    ) -> StoreResult<u64> {
        self.recover_webhook_impl(tenant, webhook_id, since, now)
            .await
    }

    async fn list_deliveries(
        &self,
        tenant: &str,
        filter: &DeliveryFilter,
        before: Option<i64>,
        limit: u64,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        self.list_deliveries_impl(tenant, filter, before, limit)
            .await
    }

    async fn get_delivery(
        &self,
        tenant: &str,
        id: i64,
    ) -> StoreResult<Option<(DeliveryRecord, Vec<AttemptRow>)>> {
        self.get_delivery_impl(tenant, id).await
    }

    async fn get_event(&self, tenant: &str, id: &str) -> StoreResult<Option<EventRecord>> {
        self.get_event_impl(tenant, id).await
    }

    async fn list_events(
        &self,
        tenant: &str,
        filter: &EventFilter,
        before: Option<i64>,
        limit: u64,
    ) -> StoreResult<Vec<EventRecord>> {
        self.list_events_impl(tenant, filter, before, limit).await
    }

    async fn purge_events(&self, before: i64, batch: u64) -> StoreResult<u64> {
        self.purge_events_impl(before, batch).await
    }

    async fn queue_stats(&self, now: i64) -> StoreResult<QueueStats> {
        self.queue_stats_impl(now).await
    }

    async fn create_admin_session(&self, session: &AdminSessionRecord) -> StoreResult<()> {
        let mut conn = self.writer().await;
        sqlx::query(admin_sql::DELETE_EXPIRED_SESSIONS)
            .bind(session.created_at)
            .execute(&mut *conn)
            .await?;
        sqlx::query(admin_sql::INSERT_SESSION)
            .bind(&session.id_hash)
            .bind(&session.key_ref)
            .bind(&session.tenant_id)
            .bind(&session.csrf_token)
            .bind(session.created_at)
            .bind(session.expires_at)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn find_admin_session(
        &self,
        id_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<AdminSessionRecord>> {
        let row: Option<admin_sql::SessionRow> = sqlx::query_as(admin_sql::FIND_SESSION)
            .bind(id_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(Into::into))
    }

    async fn set_admin_session_tenant(&self, id_hash: &[u8], tenant: &str) -> StoreResult<()> {
        sqlx::query(admin_sql::SET_SESSION_TENANT)
            .bind(tenant)
            .bind(id_hash)
            .execute(&mut *self.writer().await)
            .await?;
        Ok(())
    }

    async fn delete_admin_session(&self, id_hash: &[u8]) -> StoreResult<()> {
        sqlx::query(admin_sql::DELETE_SESSION)
            .bind(id_hash)
            .execute(&mut *self.writer().await)
            .await?;
        Ok(())
    }

    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(admin_sql::GET_SETTING)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        sqlx::query(admin_sql::PUT_SETTING)
            .bind(key)
            .bind(value)
            .execute(&mut *self.writer().await)
            .await?;
        Ok(())
    }

    async fn delete_setting(&self, key: &str) -> StoreResult<()> {
        sqlx::query(admin_sql::DELETE_SETTING)
            .bind(key)
            .execute(&mut *self.writer().await)
            .await?;
        Ok(())
    }

    async fn delivery_histogram(
        &self,
        tenant: &str,
        webhook_id: Option<i64>,
        since: i64,
        bucket_ms: i64,
    ) -> StoreResult<Vec<HistogramRow>> {
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(admin_sql::DELIVERY_HISTOGRAM)
            .bind(since)
            .bind(bucket_ms.max(1))
            .bind(tenant)
            .bind(webhook_id)
            .fetch_all(&self.pool)
            .await?;
        admin_sql::histogram_rows(rows)
    }
}
