//! The delivery and event logs, re-queueing, lease release, the purge and
//! the queue's size. The hot path (publish, record, claim) is each
//! backend's own.

use super::{Backend, Builder};
use crate::domain::delivery::DeliveryStatus;
use crate::store::rows::{DELIVERY_COLUMNS, DeliveryRow, EVENT_COLUMNS, EventRow};
use crate::store::{
    AttemptRow, DeliveryFilter, DeliveryRecord, EventFilter, EventRecord, QueueStats, StoreError,
    StoreResult,
};

impl Backend {
    pub(super) async fn release_leases_impl(
        &self,
        owner: Option<&str>,
        now: i64,
    ) -> StoreResult<u64> {
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

    pub(super) async fn next_due_at_impl(&self) -> StoreResult<Option<i64>> {
        // Leased deliveries are due at their lease's end, so one MIN covers both.
        Ok(sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE status IN ('pending', 'retrying')",
        )
        .fetch_one(self.reader())
        .await?)
    }

    pub(super) async fn retry_delivery_impl(
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
            return match self.get_delivery_impl(tenant, id).await? {
                Some(_) => Err(StoreError::Conflict(
                    "an attempt of this delivery is under way; retry it when it ends".into(),
                )),
                None => Ok(None),
            };
        }
        Ok(self.get_delivery_impl(tenant, id).await?.map(|(d, _)| d))
    }

    pub(super) async fn recover_webhook_impl(
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

    pub(super) async fn list_deliveries_impl(
        &self,
        tenant: &str,
        f: &DeliveryFilter,
        before: Option<i64>,
        limit: u64,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        let mut qb = Builder::new(format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.tenant_id = "
        ));
        qb.push_bind(tenant.to_owned());
        if let Some(b) = before {
            qb.push(" AND d.id < ").push_bind(b);
        }
        if let Some(w) = f.webhook_id {
            qb.push(" AND d.webhook_id = ").push_bind(w);
        }
        if let Some(t) = &f.event_type {
            qb.push(" AND d.event_type = ").push_bind(t.clone());
        }
        match f.status {
            Some(DeliveryStatus::Diverted) => {
                qb.push(" AND d.status IN ('diverted', 'failed')");
            }
            Some(s) => {
                qb.push(" AND d.status = ").push_bind(s.as_str());
            }
            None => {}
        }
        if let Some(id) = &f.event_id {
            qb.push(" AND e.id = ").push_bind(id.clone());
        }
        if let Some(s) = f.since {
            qb.push(" AND d.created_at >= ").push_bind(s);
        }
        if let Some(u) = f.until {
            qb.push(" AND d.created_at < ").push_bind(u);
        }
        qb.push(" ORDER BY d.id DESC LIMIT ")
            .push_bind(limit as i64);
        let rows: Vec<DeliveryRow> = qb.build_query_as().fetch_all(self.reader()).await?;
        rows.into_iter().map(DeliveryRow::into_record).collect()
    }

    pub(super) async fn get_delivery_impl(
        &self,
        tenant: &str,
        id: i64,
    ) -> StoreResult<Option<(DeliveryRecord, Vec<AttemptRow>)>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.event_seq \
             WHERE d.tenant_id = $1 AND d.id = $2"
        );
        let Some(row): Option<DeliveryRow> = sqlx::query_as(&sql)
            .bind(tenant)
            .bind(id)
            .fetch_optional(self.reader())
            .await?
        else {
            return Ok(None);
        };
        #[allow(clippy::type_complexity)]
        let attempts: Vec<(i64, i64, i64, String, String, Option<i64>, Option<String>, Option<String>, Option<String>, Option<String>)> =
            sqlx::query_as(
                "SELECT id, attempted_at, duration_ms, url, request_headers, response_status, response_headers, \
                 response_body, error_kind, error FROM attempts WHERE tenant_id = $1 AND delivery_id = $2 ORDER BY id",
            )
            .bind(tenant)
            .bind(id)
            .fetch_all(self.reader())
            .await?;
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

    pub(super) async fn get_event_impl(
        &self,
        tenant: &str,
        id: &str,
    ) -> StoreResult<Option<EventRecord>> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE tenant_id = $1 AND id = $2");
        let row: Option<EventRow> = sqlx::query_as(&sql)
            .bind(tenant)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        Ok(row.map(EventRecord::from))
    }

    pub(super) async fn list_events_impl(
        &self,
        tenant: &str,
        f: &EventFilter,
        before: Option<i64>,
        limit: u64,
    ) -> StoreResult<Vec<EventRecord>> {
        let mut qb = Builder::new(format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE tenant_id = "
        ));
        qb.push_bind(tenant.to_owned());
        if let Some(b) = before {
            qb.push(" AND seq < ").push_bind(b);
        }
        if let Some(t) = &f.event_type {
            qb.push(" AND event_type = ").push_bind(t.clone());
        }
        if let Some(s) = f.since {
            qb.push(" AND created_at >= ").push_bind(s);
        }
        if let Some(u) = f.until {
            qb.push(" AND created_at < ").push_bind(u);
        }
        qb.push(" ORDER BY seq DESC LIMIT ").push_bind(limit as i64);
        let rows: Vec<EventRow> = qb.build_query_as().fetch_all(self.reader()).await?;
        Ok(rows.into_iter().map(EventRecord::from).collect())
    }

    pub(super) async fn purge_events_impl(&self, before: i64, batch: u64) -> StoreResult<u64> {
        // Deliveries and attempts go with their event (ON DELETE CASCADE).
        let r = sqlx::query(
            "DELETE FROM events WHERE seq IN (SELECT seq FROM events e WHERE e.created_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq \
             AND d.status IN ('pending', 'retrying')) ORDER BY seq LIMIT $2)",
        )
        .bind(before)
        .bind(batch as i64)
        .execute(&mut *self.writer().await?)
        .await?;
        Ok(r.rows_affected())
    }

    pub(super) async fn queue_stats_impl(&self, _now: i64) -> StoreResult<QueueStats> {
        let (depth, oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(next_attempt_at) FROM deliveries WHERE status IN ('pending', 'retrying')",
        )
        .fetch_one(self.reader())
        .await?;
        Ok(QueueStats {
            depth: depth as u64,
            oldest_due_at: oldest,
        })
    }
}
