//! Event types, API keys, and the admin page's sessions, settings and chart.

use super::Backend;
use crate::domain::api_key::Permission;
use crate::store::rows::{ApiKeyRow, SessionRow};
use crate::store::{
    AdminSessionRecord, ApiKeyRecord, EventTypeRecord, HistogramRow, StoreError, StoreResult,
};

const API_KEY_COLUMNS: &str = "id, tenant_id, name, permissions, created_at";

impl Backend {
    pub(super) async fn list_event_types_impl(
        &self,
        tenant: &str,
    ) -> StoreResult<Vec<EventTypeRecord>> {
        Ok(sqlx::query_as(
            "SELECT name, category, description, archived_at, created_at FROM event_types \
             WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(tenant)
        .fetch_all(self.reader())
        .await?)
    }

    pub(super) async fn create_event_type_impl(
        &self,
        tenant: &str,
        r: &EventTypeRecord,
    ) -> StoreResult<()> {
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
        .execute(&mut *self.writer().await?)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "event type {:?} already exists",
                r.name
            )));
        }
        Ok(())
    }

    pub(super) async fn archive_event_type_impl(
        &self,
        tenant: &str,
        r: &EventTypeRecord,
    ) -> StoreResult<()> {
        let at = r.archived_at.unwrap_or(r.created_at);
        sqlx::query(
            "INSERT INTO event_types (tenant_id, name, category, description, archived_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (tenant_id, name) DO UPDATE \
             SET archived_at = COALESCE(event_types.archived_at, excluded.archived_at)",
        )
        .bind(tenant)
        .bind(&r.name)
        .bind(&r.category)
        .bind(&r.description)
        .bind(at)
        .bind(r.created_at)
        .execute(&mut *self.writer().await?)
        .await?;
        Ok(())
    }

    /// Only a tenant row can be un-archived (built-ins have one once archived).
    pub(super) async fn restore_event_type_impl(
        &self,
        tenant: &str,
        name: &str,
    ) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE event_types SET archived_at = NULL \
             WHERE tenant_id = $1 AND name = $2 AND archived_at IS NOT NULL",
        )
        .bind(tenant)
        .bind(name)
        .execute(&mut *self.writer().await?)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    pub(super) async fn create_api_key_impl(
        &self,
        tenant: &str,
        name: &str,
        key_hash: &[u8],
        permissions: &[Permission],
        now: i64,
    ) -> StoreResult<ApiKeyRecord> {
        let sql = format!(
            "INSERT INTO api_keys (tenant_id, name, key_hash, permissions, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {API_KEY_COLUMNS}"
        );
        let row: ApiKeyRow = sqlx::query_as(&sql)
            .bind(tenant)
            .bind(name)
            .bind(key_hash)
            .bind(serde_json::to_string(permissions).expect("permissions serialize"))
            .bind(now)
            .fetch_one(&mut *self.writer().await?)
            .await?;
        row.into_record()
    }

    pub(super) async fn list_api_keys_impl(
        &self,
        tenant: Option<&str>,
    ) -> StoreResult<Vec<ApiKeyRecord>> {
        let sql = format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys \
             WHERE revoked_at IS NULL AND ($1 IS NULL OR tenant_id = $2) ORDER BY id"
        );
        let rows: Vec<ApiKeyRow> = sqlx::query_as(&sql)
            .bind(tenant)
            .bind(tenant)
            .fetch_all(self.reader())
            .await?;
        rows.into_iter().map(ApiKeyRow::into_record).collect()
    }

    pub(super) async fn revoke_api_key_impl(
        &self,
        tenant: &str,
        id: i64,
        now: i64,
    ) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE tenant_id = $2 AND id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(tenant)
        .bind(id)
        .execute(&mut *self.writer().await?)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    pub(super) async fn find_api_key_impl(
        &self,
        key_hash: &[u8],
    ) -> StoreResult<Option<ApiKeyRecord>> {
        let sql = format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
        );
        let row: Option<ApiKeyRow> = sqlx::query_as(&sql)
            .bind(key_hash)
            .fetch_optional(self.reader())
            .await?;
        row.map(ApiKeyRow::into_record).transpose()
    }

    pub(super) async fn create_admin_session_impl(
        &self,
        s: &AdminSessionRecord,
    ) -> StoreResult<()> {
        let mut conn = self.writer().await?;
        sqlx::query("DELETE FROM admin_sessions WHERE expires_at <= $1")
            .bind(s.created_at)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO admin_sessions \
             (id_hash, key_ref, tenant_id, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&s.id_hash)
        .bind(&s.key_ref)
        .bind(&s.tenant_id)
        .bind(&s.csrf_token)
        .bind(s.created_at)
        .bind(s.expires_at)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    pub(super) async fn find_admin_session_impl(
        &self,
        id_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<AdminSessionRecord>> {
        let row: Option<SessionRow> = sqlx::query_as(
            "SELECT id_hash, key_ref, tenant_id, csrf_token, created_at, expires_at \
             FROM admin_sessions WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(self.reader())
        .await?;
        Ok(row.map(Into::into))
    }

    pub(super) async fn set_admin_session_tenant_impl(
        &self,
        id_hash: &[u8],
        tenant: &str,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE admin_sessions SET tenant_id = $1 WHERE id_hash = $2")
            .bind(tenant)
            .bind(id_hash)
            .execute(&mut *self.writer().await?)
            .await?;
        Ok(())
    }

    pub(super) async fn delete_admin_session_impl(&self, id_hash: &[u8]) -> StoreResult<()> {
        sqlx::query("DELETE FROM admin_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&mut *self.writer().await?)
            .await?;
        Ok(())
    }

    pub(super) async fn get_setting_impl(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_optional(self.reader())
                .await?,
        )
    }

    pub(super) async fn put_setting_impl(&self, key: &str, value: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&mut *self.writer().await?)
        .await?;
        Ok(())
    }

    pub(super) async fn delete_setting_impl(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM settings WHERE key = $1")
            .bind(key)
            .execute(&mut *self.writer().await?)
            .await?;
        Ok(())
    }

    /// Ids grow with creation time, so the window starts after the newest
    /// delivery created before it: found by walking the (tenant, id) index
    /// backwards, the count reads only the window's rows.
    pub(super) async fn delivery_histogram_impl(
        &self,
        tenant: &str,
        webhook_id: Option<i64>,
        since: i64,
        bucket_ms: i64,
    ) -> StoreResult<Vec<HistogramRow>> {
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT (created_at - $1) / $2 AS bucket, status, COUNT(*) AS n FROM deliveries \
             WHERE tenant_id = $3 AND created_at >= $1 AND id > COALESCE((SELECT id FROM deliveries \
             WHERE tenant_id = $3 AND created_at < $1 ORDER BY id DESC LIMIT 1), 0) \
             AND ($4 IS NULL OR webhook_id = $4) \
             GROUP BY bucket, status",
        )
        .bind(since)
        .bind(bucket_ms.max(1))
        .bind(tenant)
        .bind(webhook_id)
        .fetch_all(self.reader())
        .await?;
        rows.into_iter()
            .map(|(bucket, status, n)| {
                Ok(HistogramRow {
                    bucket,
                    status: crate::domain::delivery::DeliveryStatus::parse(&status)
                        .ok_or(StoreError::Corrupt("deliveries.status"))?,
                    count: n as u64,
                })
            })
            .collect()
    }
}
