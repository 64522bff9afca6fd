//! Webhooks: create, read, list with filters, optimistic update, delete,
//! secrets and their rotation, suspension.

use super::{Backend, Builder, is_unique_violation};
use crate::domain::webhook::{Webhook, WebhookSecrets};
use crate::store::rows::{
    WEBHOOK_COLUMNS, WebhookJsonColumns, WebhookRow, open_secret, seal_headers, seal_secret,
};
use crate::store::{Page, StoreError, StoreResult, WebhookFilter, like_escape};

/// The current secret, the previous one and its expiry, sealed.
type SealedSecrets = (Vec<u8>, Option<Vec<u8>>, Option<i64>);

fn url_conflict(e: sqlx::Error) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Conflict("a webhook with this URL already exists".into())
    } else {
        e.into()
    }
}

fn push_webhook_filter(qb: &mut Builder<'_>, tenant: &str, f: &WebhookFilter) {
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

impl Backend {
    pub(super) async fn create_webhook_impl(
        &self,
        w: &Webhook,
        secret: &str,
        now: i64,
    ) -> StoreResult<Webhook> {
        let json = WebhookJsonColumns::of(w);
        let sql = format!(
            "INSERT INTO webhooks (tenant_id, name, url, events, enabled, environment, description, \
             headers, timeout_ms, rate_limit, retry_schedule, failure_handling, suspended, secret, \
             created_at, updated_at, version, search_text) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, FALSE, $13, $14, $15, 1, $16) \
             RETURNING {WEBHOOK_COLUMNS}"
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
            .fetch_one(&mut *self.writer().await?)
            .await
            .map_err(url_conflict)?;
        row.into_webhook(&self.cipher)
    }

    pub(super) async fn get_webhook_impl(
        &self,
        tenant: &str,
        id: i64,
    ) -> StoreResult<Option<Webhook>> {
        let sql =
            format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE tenant_id = $1 AND id = $2");
        let row: Option<WebhookRow> = sqlx::query_as(&sql)
            .bind(tenant)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| r.into_webhook(&self.cipher)).transpose()
    }

    pub(super) async fn list_webhooks_impl(
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

    pub(super) async fn update_webhook_impl(
        &self,
        w: &Webhook,
        now: i64,
    ) -> StoreResult<Option<Webhook>> {
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
            .fetch_optional(&mut *self.writer().await?)
            .await
            .map_err(url_conflict)?;
        match row {
            Some(r) => Ok(Some(r.into_webhook(&self.cipher)?)),
            None => match self.get_webhook_impl(&w.tenant_id, w.id).await? {
                Some(_) => Err(StoreError::Stale),
                None => Ok(None),
            },
        }
    }

    pub(super) async fn delete_webhook_impl(&self, tenant: &str, id: i64) -> StoreResult<bool> {
        let mut conn = self.writer().await?;
        let mut tx = Self::begin_write(&mut conn).await?;
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

    pub(super) async fn get_webhook_secrets_impl(
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

    pub(super) async fn rotate_webhook_secret_impl(
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

    pub(super) async fn set_webhook_suspended_impl(
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
            .fetch_optional(&mut *self.writer().await?)
            .await?;
        row.map(|r| r.into_webhook(&self.cipher)).transpose()
    }
}
