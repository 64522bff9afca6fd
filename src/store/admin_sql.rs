//! SQL of the admin page's queries, shared by both backends: `$N`
//! placeholders, which sqlx binds by number on SQLite as on PostgreSQL.

pub(crate) const INSERT_SESSION: &str = "INSERT INTO admin_sessions \
     (id_hash, key_ref, tenant_id, csrf_token, created_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6)";

pub(crate) const DELETE_EXPIRED_SESSIONS: &str =
    "DELETE FROM admin_sessions WHERE expires_at <= $1";

pub(crate) const FIND_SESSION: &str = "SELECT id_hash, key_ref, tenant_id, csrf_token, \
     created_at, expires_at FROM admin_sessions WHERE id_hash = $1 AND expires_at > $2";

pub(crate) const SET_SESSION_TENANT: &str =
    "UPDATE admin_sessions SET tenant_id = $1 WHERE id_hash = $2";

pub(crate) const DELETE_SESSION: &str = "DELETE FROM admin_sessions WHERE id_hash = $1";

pub(crate) const GET_SETTING: &str = "SELECT value FROM settings WHERE key = $1";

/// Only a tenant row can be un-archived (built-ins have one once archived).
pub(crate) const RESTORE_EVENT_TYPE: &str = "UPDATE event_types SET archived_at = NULL \
     WHERE tenant_id = $1 AND name = $2 AND archived_at IS NOT NULL";

pub(crate) const DELETE_SETTING: &str = "DELETE FROM settings WHERE key = $1";

pub(crate) const PUT_SETTING: &str = "INSERT INTO settings (key, value) VALUES ($1, $2) \
     ON CONFLICT (key) DO UPDATE SET value = excluded.value";

/// Ids grow with creation time, so the window starts after the newest
/// delivery created before it: found by walking the (tenant, id) index
/// backwards, the count reads only the window's rows.
pub(crate) const DELIVERY_HISTOGRAM: &str = "SELECT (created_at - $1) / $2 AS bucket, status, \
     COUNT(*) AS n FROM deliveries \
     WHERE tenant_id = $3 AND created_at >= $1 AND id > COALESCE((SELECT id FROM deliveries \
     WHERE tenant_id = $3 AND created_at < $1 ORDER BY id DESC LIMIT 1), 0) \
     AND ($4 IS NULL OR webhook_id = $4) \
     GROUP BY bucket, status";

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    pub id_hash: Vec<u8>,
    pub key_ref: Vec<u8>,
    pub tenant_id: String,
    pub csrf_token: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl From<SessionRow> for super::AdminSessionRecord {
    fn from(r: SessionRow) -> Self {
        Self {
            id_hash: r.id_hash,
            key_ref: r.key_ref,
            tenant_id: r.tenant_id,
            csrf_token: r.csrf_token,
            created_at: r.created_at,
            expires_at: r.expires_at,
        }
    }
}

/// (bucket, status, count) rows into histogram rows.
pub(crate) fn histogram_rows(
    rows: Vec<(i64, String, i64)>,
) -> super::StoreResult<Vec<super::HistogramRow>> {
    rows.into_iter()
        .map(|(bucket, status, n)| {
            Ok(super::HistogramRow {
                bucket,
                status: crate::domain::delivery::DeliveryStatus::parse(&status)
                    .ok_or(super::StoreError::Corrupt("deliveries.status"))?,
                count: n as u64,
            })
        })
        .collect()
}
