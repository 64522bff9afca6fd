//! The PostgreSQL store: any number of instances share one database.
//!
//! Deliveries are claimed with `FOR UPDATE SKIP LOCKED`, so instances never
//! take the same one; `NOTIFY hookd_work` wakes idle instances when work
//! is left for a claim. Migrations run under sqlx's advisory lock, so
//! instances starting together apply them once.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::{PgPool, Postgres, QueryBuilder};
use tokio::sync::Notify;

use super::rows::{
    ApiKeyRow, WEBHOOK_COLUMNS, WebhookJsonColumns, WebhookRow, open_secret, seal_headers,
    seal_secret,
};
use super::{
    AdminSessionRecord, ApiKeyRecord, AttemptRow, CommitBatch, CommitFailed, Committed,
    DeliveryFilter, DeliveryRecord, EventFilter, EventRecord, EventTypeRecord, HistogramRow, Page,
    QueueStats, Store, StoreError, StoreResult, WebhookFilter, admin_sql, like_escape, migrations,
};
use crate::crypto::Cipher;
use crate::domain::api_key::Permission;
use crate::domain::delivery::DeliveryJob;
use crate::domain::webhook::{Webhook, WebhookSecrets};

mod delivery;
mod hot;

/// The channel instances notify when work is left for a claim.
const WORK_CHANNEL: &str = "hookd_work";

#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    cipher: Arc<Cipher>,
    /// Fires when another instance (or this one) announced claimable work.
    work: Arc<Notify>,
}

/// What the key check seals, to detect a wrong encryption key at start.
const KEY_CHECK: &[u8] = b"hookd encryption key check";

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

impl PostgresStore {
    /// Connects, migrates, checks the encryption key, and starts listening
    /// for work notifications.
    pub async fn open(url: &str, cipher: Arc<Cipher>) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        let store = Self {
            pool,
            cipher,
            work: Arc::new(Notify::new()),
        };
        store.migrate().await?;
        store.check_key().await?;
        store.listen_for_work();
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

    pub async fn migrate(&self) -> StoreResult<()> {
        migrations::migrator(migrations::POSTGRES)
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn check_key(&self) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('key_check', $1) ON CONFLICT (key) DO NOTHING",
        )
        .bind(self.cipher.seal(KEY_CHECK, "hookd:key_check"))
        .execute(&self.pool)
        .await?;
        let sealed: Vec<u8> = sqlx::query_scalar("SELECT value FROM meta WHERE key = 'key_check'")
            .fetch_one(&self.pool)
            .await?;
        self.cipher.open(&sealed, "hookd:key_check")?;
        Ok(())
    }

    async fn fetch_webhook(&self, tenant: &str, id: i64) -> StoreResult<Option<Webhook>> {
        let sql =
            format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE tenant_id = $1 AND id = $2");
        let row: Option<WebhookRow> = sqlx::query_as(&sql)
            .bind(tenant)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.into_webhook(&self.cipher)).transpose()
    }
}

fn push_webhook_filter(qb: &mut QueryBuilder<'_, Postgres>, tenant: &str, f: &WebhookFilter) {
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
impl Store for PostgresStore {
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, FALSE, $13, $14, $15, 1, $16) RETURNING {WEBHOOK_COLUMNS}"
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
            .fetch_one(&self.pool)
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
        let mut count = QueryBuilder::<Postgres>::new("SELECT COUNT(*) FROM webhooks");
        push_webhook_filter(&mut count, tenant, filter);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;

        let mut qb =
            QueryBuilder::<Postgres>::new(format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks"));
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
            "UPDATE webhooks SET name = $1, url = $2, events = $3, enabled = $4, environment = $5, \
             description = $6, headers = $7, timeout_ms = $8, rate_limit = $9, retry_schedule = $10, \
             failure_handling = $11, search_text = $12, updated_at = $13, version = version + 1 \
             WHERE tenant_id = $14 AND id = $15 AND version = $16 RETURNING {WEBHOOK_COLUMNS}"
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
            .fetch_optional(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query("DELETE FROM webhooks WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        // Unfinished deliveries have nowhere to go; their log stays.
        sqlx::query(
            "UPDATE deliveries SET status = 'failed', last_error = 'webhook deleted', next_attempt_at = NULL, \
             lease_owner = NULL, lease_until = NULL WHERE tenant_id = $1 AND webhook_id = $2 \
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
             WHERE tenant_id = $1 AND id = $2",
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
        let mut tx = self.pool.begin().await?;
        let current: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT secret FROM webhooks WHERE tenant_id = $1 AND id = $2")
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
            "UPDATE webhooks SET secret = $1, previous_secret = $2, previous_secret_expires_at = $3, \
             updated_at = $4, version = version + 1 WHERE tenant_id = $5 AND id = $6",
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
            "UPDATE webhooks SET suspended = $1, \
             suspended_at = CASE WHEN $2 THEN COALESCE(suspended_at, $3) ELSE NULL END, \
             failure_count = 0, failing_since = NULL, \
             updated_at = $4, version = version + 1 \
             WHERE tenant_id = $5 AND id = $6 RETURNING {WEBHOOK_COLUMNS}"
        );
        let row: Option<WebhookRow> = sqlx::query_as(&sql)
            .bind(suspended)
            .bind(suspended)
            .bind(now)
            .bind(now)
            .bind(tenant)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.into_webhook(&self.cipher)).transpose()
    }

    async fn list_event_types(&self, tenant: &str) -> StoreResult<Vec<EventTypeRecord>> {
        let rows: Vec<(String, String, Option<String>, Option<i64>, i64)> = sqlx::query_as(
            "SELECT name, category, description, archived_at, created_at FROM event_types \
             WHERE tenant_id = $1 ORDER BY name",
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
             VALUES ($1, $2, $3, $4, NULL, $5) \
             ON CONFLICT (tenant_id, name) DO UPDATE SET archived_at = NULL, \
             category = excluded.category, description = excluded.description \
             WHERE event_types.archived_at IS NOT NULL",
        )
        .bind(tenant)
        .bind(&r.name)
        .bind(&r.category)
        .bind(&r.description)
        .bind(r.created_at)
        .execute(&self.pool)
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
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (tenant_id, name) DO UPDATE SET archived_at = COALESCE(event_types.archived_at, excluded.archived_at)",
        )
        .bind(tenant)
        .bind(&r.name)
        .bind(&r.category)
        .bind(&r.description)
        .bind(at)
        .bind(r.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn restore_event_type(&self, tenant: &str, name: &str) -> StoreResult<bool> {
        let r = sqlx::query(admin_sql::RESTORE_EVENT_TYPE)
            .bind(tenant)
            .bind(name)
            .execute(&mut *self.pool.acquire().await?)
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
             VALUES ($1, $2, $3, $4, $5) RETURNING id, tenant_id, name, permissions, created_at",
        )
        .bind(tenant)
        .bind(name)
        .bind(key_hash)
        .bind(serde_json::to_string(permissions).expect("permissions serialize"))
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        row.into_record()
    }

    async fn list_api_keys(&self, tenant: Option<&str>) -> StoreResult<Vec<ApiKeyRecord>> {
        let rows: Vec<ApiKeyRow> = sqlx::query_as(
            "SELECT id, tenant_id, name, permissions, created_at FROM api_keys \
             WHERE revoked_at IS NULL AND ($1 IS NULL OR tenant_id = $2) ORDER BY id",
        )
        .bind(tenant)
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(ApiKeyRow::into_record).collect()
    }

    async fn revoke_api_key(&self, tenant: &str, id: i64, now: i64) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE tenant_id = $2 AND id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(tenant)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn find_api_key(&self, key_hash: &[u8]) -> StoreResult<Option<ApiKeyRecord>> {
        let row: Option<ApiKeyRow> = sqlx::query_as(
            "SELECT id, tenant_id, name, permissions, created_at FROM api_keys \
             WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(ApiKeyRow::into_record).transpose()
    }

    async fn commit_batch(&self, batch: CommitBatch, now: i64) -> Result<Committed, CommitFailed> {
        self.commit_hot(batch, now).await
    }

    async fn claim_due_deliveries(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> StoreResult<Vec<DeliveryJob>> {
        self.claim_hot(owner, now, lease_until, limit).await
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
        let mut conn = self.pool.acquire().await?;
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
            .execute(&mut *self.pool.acquire().await?)
            .await?;
        Ok(())
    }

    async fn delete_admin_session(&self, id_hash: &[u8]) -> StoreResult<()> {
        sqlx::query(admin_sql::DELETE_SESSION)
            .bind(id_hash)
            .execute(&mut *self.pool.acquire().await?)
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
            .execute(&mut *self.pool.acquire().await?)
            .await?;
        Ok(())
    }

    async fn delete_setting(&self, key: &str) -> StoreResult<()> {
        sqlx::query(admin_sql::DELETE_SETTING)
            .bind(key)
            .execute(&mut *self.pool.acquire().await?)
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

    async fn heartbeat(&self, owner: &str, now: i64) -> StoreResult<()> {
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

    async fn release_dead_leases(&self, now: i64, dead_before: i64) -> StoreResult<u64> {
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

    async fn forget_instance(&self, owner: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM instances WHERE owner = $1")
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    fn work_signal(&self) -> Option<Arc<Notify>> {
        Some(self.work.clone())
    }
}
