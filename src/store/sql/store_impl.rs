//! The `Store` implementation in the SQL both databases run. The hot path
//! and the instance methods hand over to the backend.

use std::sync::Arc;

use async_trait::async_trait;

use super::{
    API_KEY_COLUMNS, Backend, Builder, EDITABLE_COLUMNS, EDITABLE_VALUES, LIST_ATTEMPTS,
    SealedSecrets, bind_editable, list_deliveries_query, list_events_query, push_webhook_filter,
    url_conflict,
};
use crate::domain::api_key::Permission;
use crate::domain::delivery::DeliveryJob;
use crate::domain::delivery::DeliveryStatus;
use crate::domain::operational::{Happening, OperationalTarget};
use crate::domain::webhook::{Webhook, WebhookSecrets};
use crate::store::hot_sql::Claim;
use crate::store::rows::{
    ApiKeyRow, DELIVERY_COLUMNS, DeliveryRow, EVENT_COLUMNS, EventRow, WEBHOOK_COLUMNS,
    WebhookJsonColumns, WebhookRow, open_secret, seal_secret,
};
use crate::store::{
    AdminSessionRecord, ApiKeyRecord, AttemptRow, CommitBatch, CommitFailed, Committed,
    DeliveryFilter, DeliveryRecord, EventFilter, EventRecord, EventTypeRecord, HistogramRow, Page,
    PortalLinkRecord, PortalLinkUse, QueueStats, Store, StoreError, StoreResult, WebhookFilter,
    WebhookHealth,
};

#[async_trait]
impl Store for Backend {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(self.reader()).await?;
        Ok(())
    }

    fn set_operational_target(&self, target: OperationalTarget) {
        let _ = self.shared.operational.set(target);
    }

    async fn create_webhook(&self, w: &Webhook, secret: &str, now: i64) -> StoreResult<Webhook> {
        let json = WebhookJsonColumns::of(w);
        let sql = format!(
            "INSERT INTO webhooks ({EDITABLE_COLUMNS}, tenant_id, secret, created_at, updated_at, \
             suspended, version) VALUES ({EDITABLE_VALUES}, $19, $20, $21, $21, FALSE, 1) \
             RETURNING {WEBHOOK_COLUMNS}"
        );
        let mut conn = self.writer().await?;
        let mut tx = Self::begin_write(&mut conn).await?;
        let row: WebhookRow = bind_editable(sqlx::query_as(&sql), w, &json, &self.cipher)
            .bind(&w.tenant_id)
            .bind(seal_secret(&self.cipher, &w.tenant_id, "secret", secret))
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(url_conflict)?;
        self.publish_operational(&mut tx, Happening::Created, &w.tenant_id, row.id, now)
            .await?;
        tx.commit().await?;
        row.into_webhook(&self.cipher)
    }

    async fn get_webhook(&self, tenant: &str, id: i64) -> StoreResult<Option<Webhook>> {
        let sql =
            format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE tenant_id = $1 AND id = $2");
        let row: Option<WebhookRow> = sqlx::query_as(&sql)
            .bind(tenant)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| r.into_webhook(&self.cipher)).transpose()
    }

    async fn list_webhooks(
        &self,
        tenant: &str,
        filter: &WebhookFilter,
        offset: u64,
        limit: u64,
    ) -> StoreResult<Page<Webhook>> {
        let mut count = Builder::new("SELECT COUNT(*) FROM webhooks");
        push_webhook_filter(&mut count, tenant, filter);
        let total: i64 = count.build_query_scalar().fetch_one(self.reader()).await?;

        let mut qb = Builder::new(format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks"));
        push_webhook_filter(&mut qb, tenant, filter);
        qb.push(" ORDER BY id LIMIT ")
            .push_bind(limit as i64)
            .push(" OFFSET ")
            .push_bind(offset as i64);
        let rows: Vec<WebhookRow> = qb.build_query_as().fetch_all(self.reader()).await?;
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
            "UPDATE webhooks SET ({EDITABLE_COLUMNS}, updated_at, version) = \
             ({EDITABLE_VALUES}, $19, version + 1) \
             WHERE tenant_id = $20 AND id = $21 AND version = $22 RETURNING {WEBHOOK_COLUMNS}"
        );
        let mut conn = self.writer().await?;
        let mut tx = Self::begin_write(&mut conn).await?;
        let row: Option<WebhookRow> = bind_editable(sqlx::query_as(&sql), w, &json, &self.cipher)
            .bind(now)
            .bind(&w.tenant_id)
            .bind(w.id)
            .bind(w.version)
            .fetch_optional(&mut *tx)
            .await
            .map_err(url_conflict)?;
        if row.is_some() {
            self.publish_operational(&mut tx, Happening::Updated, &w.tenant_id, w.id, now)
                .await?;
        }
        tx.commit().await?;
        drop(conn);
        match row {
            Some(r) => Ok(Some(r.into_webhook(&self.cipher)?)),
            None => match self.get_webhook(&w.tenant_id, w.id).await? {
                Some(_) => Err(StoreError::Stale),
                None => Ok(None),
            },
        }
    }

    async fn delete_webhook(&self, tenant: &str, id: i64, now: i64) -> StoreResult<bool> {
        let mut conn = self.writer().await?;
        let mut tx = Self::begin_write(&mut conn).await?;
        // Unfinished deliveries have nowhere to go; their log stays. Before
        // the webhook's row goes: on PostgreSQL its deletion bumps the
        // audience generation (a lock held to the commit), and a hot
        // commit holding some of these deliveries may be waiting for that
        // lock to suspend another webhook.
        sqlx::query(
            "UPDATE deliveries SET status = 'failed', last_error = 'webhook deleted', next_attempt_at = NULL, \
             lease_owner = NULL, lease_until = NULL WHERE tenant_id = $1 AND webhook_id = $2 \
             AND status IN ('pending', 'retrying')",
        )
        .bind(tenant)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let r = sqlx::query("DELETE FROM webhooks WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() > 0 {
            self.publish_operational(&mut tx, Happening::Deleted, tenant, id, now)
                .await?;
        }
        tx.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    async fn get_webhook_secrets(
        &self,
        tenant: &str,
        id: i64,
    ) -> StoreResult<Option<WebhookSecrets>> {
        let row: Option<SealedSecrets> = sqlx::query_as(
            "SELECT secret, previous_secret, previous_secret_expires_at FROM webhooks \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(id)
        .fetch_optional(self.reader())
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
        let mut conn = self.writer().await?;
        let mut tx = Self::begin_write(&mut conn).await?;
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
        let mut conn = self.writer().await?;
        let mut tx = Self::begin_write(&mut conn).await?;
        let was: Option<bool> =
            sqlx::query_scalar("SELECT suspended FROM webhooks WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let row: Option<WebhookRow> = sqlx::query_as(&sql)
            .bind(suspended)
            .bind(suspended)
            .bind(now)
            .bind(now)
            .bind(tenant)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if was.is_some_and(|was| was != suspended) {
            let happening = if suspended {
                Happening::Suspended
            } else {
                Happening::Unsuspended
            };
            self.publish_operational(&mut tx, happening, tenant, id, now)
                .await?;
        }
        tx.commit().await?;
        row.map(|r| r.into_webhook(&self.cipher)).transpose()
    }

    async fn set_webhook_paused(
        &self,
        tenant: &str,
        id: i64,
        paused: bool,
        now: i64,
    ) -> StoreResult<Option<(Webhook, bool)>> {
        let mut conn = self.writer().await?;
        let mut tx = Self::begin_write(&mut conn).await?;
        let sql = format!(
            "UPDATE webhooks SET paused = $1, \
             paused_at = CASE WHEN $1 THEN COALESCE(paused_at, $2) ELSE NULL END, \
             updated_at = CASE WHEN paused <> $1 THEN $2 ELSE updated_at END, \
             version = version + CASE WHEN paused <> $1 THEN 1 ELSE 0 END \
             WHERE tenant_id = $3 AND id = $4 RETURNING {WEBHOOK_COLUMNS}"
        );
        let was: Option<bool> =
            sqlx::query_scalar("SELECT paused FROM webhooks WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(was) = was else {
            return Ok(None);
        };
        let row: WebhookRow = sqlx::query_as(&sql)
            .bind(paused)
            .bind(now)
            .bind(tenant)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let changed = was != paused;
        if changed {
            let happening = if paused {
                Happening::Paused
            } else {
                Happening::Resumed
            };
            self.publish_operational(&mut tx, happening, tenant, id, now)
                .await?;
        }
        tx.commit().await?;
        Ok(Some((row.into_webhook(&self.cipher)?, changed)))
    }

    async fn park_deliveries(
        &self,
        tenant: &str,
        id: i64,
        after: i64,
        limit: u32,
    ) -> StoreResult<(u64, i64)> {
        let ids: Vec<i64> = sqlx::query_scalar(Backend::PARK)
            .bind(tenant)
            .bind(id)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&mut *self.writer().await?)
            .await?;
        Ok((ids.len() as u64, ids.into_iter().max().unwrap_or(after)))
    }

    async fn unpark_deliveries(
        &self,
        tenant: &str,
        id: i64,
        from: i64,
        spacing_ms: f64,
        limit: u32,
    ) -> StoreResult<u64> {
        let done = sqlx::query(super::UNPARK)
            .bind(from)
            .bind(spacing_ms)
            .bind(tenant)
            .bind(id)
            .bind(i64::from(limit))
            .execute(&mut *self.writer().await?)
            .await?;
        Ok(done.rows_affected())
    }

    async fn resumed_backlogs(&self) -> StoreResult<Vec<crate::store::ResumedBacklog>> {
        let rows: Vec<(String, i64, Option<i64>)> = sqlx::query_as(super::RESUMED_BACKLOGS)
            .fetch_all(self.reader())
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(tenant_id, webhook_id, rate)| crate::store::ResumedBacklog {
                    tenant_id,
                    webhook_id,
                    rate_limit: rate.and_then(|r| u32::try_from(r).ok()),
                },
            )
            .collect())
    }

    async fn list_event_types(&self, tenant: &str) -> StoreResult<Vec<EventTypeRecord>> {
        Ok(sqlx::query_as(
            "SELECT name, category, description, archived_at, created_at, data_schema, example \
             FROM event_types \
             WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(tenant)
        .fetch_all(self.reader())
        .await?)
    }

    async fn create_event_type(&self, tenant: &str, r: &EventTypeRecord) -> StoreResult<()> {
        let done = sqlx::query(
            "INSERT INTO event_types \
             (tenant_id, name, category, description, archived_at, created_at, data_schema, example) \
             VALUES ($1, $2, $3, $4, NULL, $5, $6, $7) \
             ON CONFLICT (tenant_id, name) DO UPDATE SET archived_at = NULL, \
             category = excluded.category, description = excluded.description, \
             data_schema = excluded.data_schema, example = excluded.example \
             WHERE event_types.archived_at IS NOT NULL",
        )
        .bind(tenant)
        .bind(&r.name)
        .bind(&r.category)
        .bind(&r.description)
        .bind(r.created_at)
        .bind(&r.data_schema)
        .bind(&r.example)
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

    async fn archive_event_type(&self, tenant: &str, r: &EventTypeRecord) -> StoreResult<()> {
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

    async fn update_event_type(&self, tenant: &str, r: &EventTypeRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO event_types \
             (tenant_id, name, category, description, archived_at, created_at, data_schema, example) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (tenant_id, name) DO UPDATE SET description = excluded.description, \
             data_schema = excluded.data_schema, example = excluded.example",
        )
        .bind(tenant)
        .bind(&r.name)
        .bind(&r.category)
        .bind(&r.description)
        .bind(r.archived_at)
        .bind(r.created_at)
        .bind(&r.data_schema)
        .bind(&r.example)
        .execute(&mut *self.writer().await?)
        .await?;
        Ok(())
    }

    /// Only a tenant row can be un-archived (built-ins have one once archived).
    async fn restore_event_type(&self, tenant: &str, name: &str) -> StoreResult<bool> {
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

    async fn create_api_key(
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

    async fn list_api_keys(&self, tenant: Option<&str>) -> StoreResult<Vec<ApiKeyRecord>> {
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

    async fn revoke_api_key(&self, tenant: &str, id: i64, now: i64) -> StoreResult<bool> {
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

    async fn find_api_key(&self, key_hash: &[u8]) -> StoreResult<Option<ApiKeyRecord>> {
        let sql = format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
        );
        let row: Option<ApiKeyRow> = sqlx::query_as(&sql)
            .bind(key_hash)
            .fetch_optional(self.reader())
            .await?;
        row.map(ApiKeyRow::into_record).transpose()
    }

    async fn commit_batch(&self, batch: CommitBatch, now: i64) -> Result<Committed, CommitFailed> {
        self.commit_hot(batch, now).await
    }

    fn commit_lanes(&self) -> usize {
        Backend::COMMIT_LANES
    }

    async fn claim_due_deliveries(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> StoreResult<Vec<DeliveryJob>> {
        self.claim_hot(Claim {
            owner,
            now,
            lease_until,
            limit,
        })
        .await
    }

    async fn release_leases(&self, owner: Option<&str>, now: i64) -> StoreResult<u64> {
        let r = sqlx::query(
            "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL, next_attempt_at = $1 \
             WHERE lease_until IS NOT NULL AND status IN ('pending', 'retrying') \
             AND ($2 IS NULL OR lease_owner = $3)",
        )
        .bind(now)
        .bind(owner)
        .bind(owner)
        .execute(&mut *self.writer().await?)
        .await?;
        Ok(r.rows_affected())
    }

    async fn next_due_at(&self) -> StoreResult<Option<i64>> {
        // Leased deliveries are due at their lease's end, so one MIN covers
        // both. A fifo queue's waiting deliveries are due but not claimable
        // until their head ends (which wakes the scheduler): not counted, or
        // the scheduler would spin on them.
        Ok(sqlx::query_scalar(concat!(
            "SELECT MIN(d.next_attempt_at) FROM deliveries AS d \
             WHERE d.status IN ('pending', 'retrying') AND ",
            crate::store::hot_sql::queue_head!()
        ))
        .fetch_one(self.reader())
        .await?)
    }

    async fn retry_delivery(
        &self,
        tenant: &str,
        id: i64,
        now: i64,
    ) -> StoreResult<Option<DeliveryRecord>> {
        let r = sqlx::query(
            "UPDATE deliveries SET status = CASE WHEN attempts = 0 THEN 'pending' ELSE 'retrying' END, \
             retry_step = 0, next_attempt_at = $1, lease_owner = NULL, lease_until = NULL, updated_at = $2 \
             WHERE tenant_id = $3 AND id = $4 AND (lease_until IS NULL OR lease_until < $5)",
        )
        .bind(now)
        .bind(now)
        .bind(tenant)
        .bind(id)
        .bind(now)
        .execute(&mut *self.writer().await?)
        .await?;
        if r.rows_affected() == 0 {
            return match self.get_delivery(tenant, id).await? {
                Some(_) => Err(StoreError::Conflict(
                    "an attempt of this delivery is under way; retry it when it ends".into(),
                )),
                None => Ok(None),
            };
        }
        Ok(self.get_delivery(tenant, id).await?.map(|(d, _)| d))
    }

    async fn recover_webhook(
        &self,
        tenant: &str,
        webhook_id: i64,
        since: i64,
        now: i64,
    ) -> StoreResult<u64> {
        let r = sqlx::query(
            "UPDATE deliveries SET status = CASE WHEN attempts = 0 THEN 'pending' ELSE 'retrying' END, \
             retry_step = 0, next_attempt_at = $1, lease_owner = NULL, lease_until = NULL, updated_at = $2 \
             WHERE tenant_id = $3 AND webhook_id = $4 AND status IN ('failed', 'diverted') AND created_at >= $5",
        )
        .bind(now)
        .bind(now)
        .bind(tenant)
        .bind(webhook_id)
        .bind(since)
        .execute(&mut *self.writer().await?)
        .await?;
        Ok(r.rows_affected())
    }

    async fn list_deliveries(
        &self,
        tenant: &str,
        f: &DeliveryFilter,
        before: Option<i64>,
        limit: u64,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        let mut qb = list_deliveries_query("", tenant, f, before, limit);
        let rows: Vec<DeliveryRow> = qb.build_query_as().fetch_all(self.reader()).await?;
        rows.into_iter().map(DeliveryRow::into_record).collect()
    }

    async fn get_delivery(
        &self,
        tenant: &str,
        id: i64,
    ) -> StoreResult<Option<(DeliveryRecord, Vec<AttemptRow>)>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.event_seq \
             WHERE d.tenant_id = $1 AND d.id = $2"
        );
        // One snapshot for both reads: an outcome committed between them
        // would otherwise show an attempt the delivery's status and count
        // do not include yet.
        let mut tx = self.begin_snapshot().await?;
        let Some(row): Option<DeliveryRow> = sqlx::query_as(&sql)
            .bind(tenant)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        #[allow(clippy::type_complexity)]
        let attempts: Vec<(
            i64,
            i64,
            i64,
            String,
            String,
            Option<i64>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        )> = sqlx::query_as(LIST_ATTEMPTS)
            .bind(tenant)
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let attempts = attempts
            .into_iter()
            .map(|a| AttemptRow {
                id: a.0,
                attempted_at: a.1,
                duration_ms: a.2,
                url: a.3,
                request_headers: a.4,
                response_status: a.5.map(|s| s as u16),
                response_headers: a.6,
                response_body: a.7,
                error_kind: a.8,
                error: a.9,
            })
            .collect();
        Ok(Some((row.into_record()?, attempts)))
    }

    async fn get_event(&self, tenant: &str, id: &str) -> StoreResult<Option<EventRecord>> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE tenant_id = $1 AND id = $2");
        let row: Option<EventRow> = sqlx::query_as(&sql)
            .bind(tenant)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        Ok(row.map(EventRecord::from))
    }

    async fn list_events(
        &self,
        tenant: &str,
        f: &EventFilter,
        before: Option<i64>,
        limit: u64,
    ) -> StoreResult<Vec<EventRecord>> {
        let mut qb = list_events_query("", tenant, f, before, limit);
        let rows: Vec<EventRow> = qb.build_query_as().fetch_all(self.reader()).await?;
        Ok(rows.into_iter().map(EventRecord::from).collect())
    }

    async fn purge_events(&self, before: i64, batch: u64) -> StoreResult<u64> {
        let r = sqlx::query(Backend::PURGE_EVENTS)
            .bind(before)
            .bind(batch as i64)
            .execute(&mut *self.writer().await?)
            .await?;
        Ok(r.rows_affected())
    }

    async fn queue_stats(&self, _now: i64) -> StoreResult<QueueStats> {
        let (depth, oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(next_attempt_at) FROM deliveries WHERE status IN ('pending', 'retrying')",
        )
        .fetch_one(self.reader())
        .await?;
        let (suspended,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM webhooks WHERE suspended")
            .fetch_one(self.reader())
            .await?;
        Ok(QueueStats {
            depth: depth as u64,
            oldest_due_at: oldest,
            suspended_webhooks: suspended as u64,
        })
    }

    async fn create_admin_session(&self, s: &AdminSessionRecord) -> StoreResult<()> {
        let mut conn = self.writer().await?;
        sqlx::query("DELETE FROM admin_sessions WHERE expires_at <= $1")
            .bind(s.created_at)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO admin_sessions \
             (id_hash, key_ref, tenant_id, csrf_token, created_at, expires_at, kind) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&s.id_hash)
        .bind(&s.key_ref)
        .bind(&s.tenant_id)
        .bind(&s.csrf_token)
        .bind(s.created_at)
        .bind(s.expires_at)
        .bind(&s.kind)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn find_admin_session(
        &self,
        id_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<AdminSessionRecord>> {
        let session: Option<AdminSessionRecord> = sqlx::query_as(
            "SELECT id_hash, key_ref, tenant_id, csrf_token, created_at, expires_at, kind \
             FROM admin_sessions WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(self.reader())
        .await?;
        Ok(session)
    }

    async fn set_admin_session_tenant(&self, id_hash: &[u8], tenant: &str) -> StoreResult<()> {
        sqlx::query("UPDATE admin_sessions SET tenant_id = $1 WHERE id_hash = $2")
            .bind(tenant)
            .bind(id_hash)
            .execute(&mut *self.writer().await?)
            .await?;
        Ok(())
    }

    async fn delete_admin_session(&self, id_hash: &[u8]) -> StoreResult<()> {
        sqlx::query("DELETE FROM admin_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&mut *self.writer().await?)
            .await?;
        Ok(())
    }

    async fn create_portal_link(&self, link: &PortalLinkRecord) -> StoreResult<()> {
        let mut conn = self.writer().await?;
        // Kept a day past expiry, so a late click still hears "expired".
        sqlx::query("DELETE FROM portal_links WHERE expires_at <= $1")
            .bind(link.created_at - 86_400_000)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO portal_links \
             (id_hash, tenant_id, key_ref, read_only, created_at, expires_at, used_at) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL)",
        )
        .bind(&link.id_hash)
        .bind(&link.tenant_id)
        .bind(&link.key_ref)
        .bind(link.read_only)
        .bind(link.created_at)
        .bind(link.expires_at)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn open_portal_link(&self, id_hash: &[u8], now: i64) -> StoreResult<PortalLinkUse> {
        let mut conn = self.writer().await?;
        let opened: Option<PortalLinkRecord> = sqlx::query_as(
            "UPDATE portal_links SET used_at = $2 \
             WHERE id_hash = $1 AND used_at IS NULL AND expires_at > $2 \
             RETURNING id_hash, tenant_id, key_ref, read_only, created_at, expires_at",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(link) = opened {
            return Ok(PortalLinkUse::Opened(link));
        }
        let found: Option<(Option<i64>, i64)> =
            sqlx::query_as("SELECT used_at, expires_at FROM portal_links WHERE id_hash = $1")
                .bind(id_hash)
                .fetch_optional(&mut *conn)
                .await?;
        Ok(match found {
            Some((Some(used_at), _)) => PortalLinkUse::Used(used_at),
            Some((None, expires_at)) => PortalLinkUse::Expired(expires_at),
            None => PortalLinkUse::Unknown,
        })
    }

    async fn list_tenants(&self, limit: u64) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT tenant_id FROM webhooks UNION SELECT tenant_id FROM api_keys \
             UNION SELECT tenant_id FROM event_types UNION SELECT tenant_id FROM admin_sessions \
             ORDER BY 1 LIMIT $1",
        )
        .bind(limit as i64)
        .fetch_all(self.reader())
        .await?)
    }

    async fn webhook_health(
        &self,
        tenant: &str,
        ids: &[i64],
        since: i64,
    ) -> StoreResult<Vec<WebhookHealth>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = Builder::new(
            "SELECT d.webhook_id, d.status, d.last_status_code, d.updated_at, \
             (SELECT COUNT(*) FROM deliveries r WHERE r.tenant_id = d.tenant_id \
              AND r.webhook_id = d.webhook_id AND r.created_at >= ",
        );
        qb.push_bind(since)
            .push(
                ") AS recent, (SELECT COUNT(*) FROM deliveries r WHERE r.tenant_id = d.tenant_id \
                 AND r.webhook_id = d.webhook_id AND r.status IN ('failed', 'diverted', 'retrying') \
                 AND r.created_at >= ",
            )
            .push_bind(since)
            .push(
                ") AS failing FROM deliveries d WHERE d.id IN \
                 (SELECT MAX(id) FROM deliveries WHERE tenant_id = ",
            )
            .push_bind(tenant.to_owned())
            .push(" AND webhook_id IN (");
        let mut list = qb.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        qb.push(") GROUP BY webhook_id)");
        let rows: Vec<(i64, String, Option<i64>, i64, i64, i64)> =
            qb.build_query_as().fetch_all(self.reader()).await?;
        rows.into_iter()
            .map(|(webhook_id, status, code, at, recent, failing)| {
                Ok(WebhookHealth {
                    webhook_id,
                    last_status: DeliveryStatus::parse(&status)
                        .ok_or(StoreError::Corrupt("deliveries.status"))?,
                    last_status_code: code.and_then(|c| u16::try_from(c).ok()),
                    last_at: at,
                    recent: recent as u64,
                    recent_failing: failing as u64,
                })
            })
            .collect()
    }

    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_optional(self.reader())
                .await?,
        )
    }

    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
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

    async fn delete_setting(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM settings WHERE key = $1")
            .bind(key)
            .execute(&mut *self.writer().await?)
            .await?;
        Ok(())
    }

    /// Ids grow with creation time, so the window starts after the newest
    /// delivery created before it: found by walking the (tenant, id) index
    /// backwards, the count reads only the window's rows.
    async fn delivery_histogram(
        &self,
        tenant: &str,
        f: &DeliveryFilter,
        since: i64,
        bucket_ms: i64,
    ) -> StoreResult<Vec<HistogramRow>> {
        let mut qb = Builder::new("SELECT (created_at - ");
        qb.push_bind(since)
            .push(") / ")
            .push_bind(bucket_ms.max(1))
            .push(" AS bucket, status, COUNT(*) AS n FROM deliveries WHERE tenant_id = ")
            .push_bind(tenant.to_owned())
            .push(" AND created_at >= ")
            .push_bind(since)
            .push(" AND id > COALESCE((SELECT id FROM deliveries WHERE tenant_id = ")
            .push_bind(tenant.to_owned())
            .push(" AND created_at < ")
            .push_bind(since)
            .push(" ORDER BY id DESC LIMIT 1), 0)");
        if let Some(w) = f.webhook_id {
            qb.push(" AND webhook_id = ").push_bind(w);
        }
        if let Some(t) = &f.event_type {
            qb.push(" AND event_type = ").push_bind(t.clone());
        }
        match f.status {
            Some(DeliveryStatus::Diverted) => {
                qb.push(" AND status IN ('diverted', 'failed')");
            }
            Some(s) => {
                qb.push(" AND status = ").push_bind(s.as_str());
            }
            None => {}
        }
        if let Some(id) = &f.event_id {
            qb.push(" AND event_seq IN (SELECT seq FROM events WHERE tenant_id = ")
                .push_bind(tenant.to_owned())
                .push(" AND id = ")
                .push_bind(id.clone())
                .push(")");
        }
        if let Some(s) = f.since {
            qb.push(" AND created_at >= ").push_bind(s);
        }
        if let Some(u) = f.until {
            qb.push(" AND created_at < ").push_bind(u);
        }
        qb.push(" GROUP BY bucket, status");
        let rows: Vec<(i64, String, i64)> = qb.build_query_as().fetch_all(self.reader()).await?;
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

    async fn heartbeat(&self, owner: &str, now: i64) -> StoreResult<()> {
        self.heartbeat_impl(owner, now).await
    }

    async fn release_dead_leases(&self, now: i64, dead_before: i64) -> StoreResult<u64> {
        self.release_dead_leases_impl(now, dead_before).await
    }

    async fn forget_instance(&self, owner: &str) -> StoreResult<()> {
        self.forget_instance_impl(owner).await
    }

    fn work_signal(&self) -> Option<Arc<tokio::sync::Notify>> {
        self.work_signal_impl()
    }
}
