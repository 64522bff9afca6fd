//! The SQL both backends share, written once and compiled once per backend:
//! `store::sqlite` and `store::postgres` each include this directory as a
//! module (`#[path]`), after naming `Db` (the sqlx database) and `Backend`
//! (their store type). Each backend provides what differs: `reader()` (the
//! read pool), `writer()` (a connection that may write), `begin_write` (a
//! write transaction: `BEGIN IMMEDIATE` on SQLite), `begin_snapshot` (a
//! read transaction whose statements share one snapshot), the hot path
//! (`commit_hot`, `claim_hot`) and the instance methods (`heartbeat_impl`,
//! …). Here is the `Store` implementation itself.
//!
//! Invariant: one SQL text per query, with `$N` placeholders (sqlx binds
//! them by number on SQLite as on PostgreSQL), and only SQL both databases
//! run the same way. A query that cannot be written so belongs to its
//! backend.

mod operational;
mod store_impl;

use super::{Backend, Db};
use crate::crypto::Cipher;
use crate::domain::delivery::DeliveryStatus;
use crate::domain::webhook::Webhook;
use crate::store::rows::{
    DELIVERY_COLUMNS, EVENT_COLUMNS, SecurityColumns, WebhookJsonColumns, seal_headers,
};
use crate::store::{
    DeliveryFilter, EventFilter, PlannedQuery, StoreError, StoreResult, WebhookFilter, like_escape,
};

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

/// A delivery's attempts, oldest first.
const LIST_ATTEMPTS: &str = "SELECT id, attempted_at, duration_ms, url, request_headers, \
     response_status, response_headers, response_body, error_kind, error FROM attempts \
     WHERE tenant_id = $1 AND delivery_id = $2 ORDER BY id";

/// The events one batch of the retention purge deletes (`Backend::PURGE_EVENTS`
/// deletes them by `seq`): created before `$1`, none of their deliveries
/// still waiting, oldest first. Their deliveries and attempts go with
/// them (ON DELETE CASCADE). Ordered by `created_at`, so the range of
/// `events_created` is the whole read: in `seq` order SQLite walks every
/// event when none is past retention, which is the purge's usual tick
/// (tests/it/query_plans.rs).
macro_rules! purge_batch {
    () => {
        "SELECT seq FROM events e WHERE e.created_at < $1 AND NOT EXISTS (SELECT 1 \
         FROM deliveries d WHERE d.event_seq = e.seq AND d.status IN ('pending', 'retrying')) \
         ORDER BY e.created_at LIMIT $2"
    };
}
pub(crate) use purge_batch;

/// `Store::list_deliveries`'s query, newest first, after `prefix` (empty,
/// or the backend's EXPLAIN).
fn list_deliveries_query<'a>(
    prefix: &str,
    tenant: &str,
    f: &DeliveryFilter,
    before: Option<i64>,
    limit: u64,
) -> Builder<'a> {
    let mut qb = Builder::new(format!(
        "{prefix}SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.tenant_id = "
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
    qb
}

/// `Store::list_events`'s query, newest first, after `prefix`.
fn list_events_query<'a>(
    prefix: &str,
    tenant: &str,
    f: &EventFilter,
    before: Option<i64>,
    limit: u64,
) -> Builder<'a> {
    let mut qb = Builder::new(format!(
        "{prefix}SELECT {EVENT_COLUMNS} FROM events WHERE tenant_id = "
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
    qb
}

impl Backend {
    /// The plan the database makes for one of the store's queries, with
    /// the arguments it names: the text the store runs, after the
    /// backend's EXPLAIN (`Backend::EXPLAIN`), one line per step of the
    /// plan (`Backend::plan_lines`). Nothing is executed.
    pub async fn explain(&self, q: &PlannedQuery) -> StoreResult<Vec<String>> {
        let prefix = Self::EXPLAIN;
        let rows = match q {
            PlannedQuery::Claim { now, limit } => return self.explain_claim(*now, *limit).await,
            PlannedQuery::ListDeliveries {
                tenant,
                filter,
                before,
                limit,
            } => {
                list_deliveries_query(prefix, tenant, filter, *before, *limit)
                    .build()
                    .fetch_all(self.reader())
                    .await?
            }
            PlannedQuery::ListEvents {
                tenant,
                filter,
                before,
                limit,
            } => {
                list_events_query(prefix, tenant, filter, *before, *limit)
                    .build()
                    .fetch_all(self.reader())
                    .await?
            }
            PlannedQuery::ListAttempts {
                tenant,
                delivery_id,
            } => {
                sqlx::query(&format!("{prefix}{LIST_ATTEMPTS}"))
                    .bind(tenant)
                    .bind(delivery_id)
                    .fetch_all(self.reader())
                    .await?
            }
            PlannedQuery::ResumedBacklogs => {
                sqlx::query(&format!("{prefix}{RESUMED_BACKLOGS}"))
                    .fetch_all(self.reader())
                    .await?
            }
            PlannedQuery::Park {
                tenant,
                webhook_id,
                limit,
            } => {
                sqlx::query(&format!("{prefix}{}", Self::PARK))
                    .bind(tenant)
                    .bind(webhook_id)
                    .bind(0_i64)
                    .bind(i64::from(*limit))
                    .fetch_all(self.reader())
                    .await?
            }
            PlannedQuery::Unpark {
                tenant,
                webhook_id,
                limit,
            } => {
                sqlx::query(&format!("{prefix}{UNPARK}"))
                    .bind(0_i64)
                    .bind(1.0_f64)
                    .bind(tenant)
                    .bind(webhook_id)
                    .bind(i64::from(*limit))
                    .fetch_all(self.reader())
                    .await?
            }
            PlannedQuery::PurgeEvents { before, batch } => {
                sqlx::query(&format!("{prefix}{}", Self::PURGE_EVENTS))
                    .bind(before)
                    .bind(*batch as i64)
                    .fetch_all(self.reader())
                    .await?
            }
        };
        Self::plan_lines(rows)
    }
}

/// Makes a slice of a resumed webhook's parked deliveries due
/// (`Store::unpark_deliveries`). The slice is chosen first (index
/// `deliveries_parked`, at most `$5` rows) and numbered after, so the
/// statement's cost is the slice's, not the backlog's. A paused webhook's
/// rows stay parked even if a pacer still holds it.
pub(super) const UNPARK: &str = "UPDATE deliveries SET next_attempt_at = $1 + CAST((r.n - 1) * $2 AS BIGINT) \
     FROM (SELECT rid, row_number() OVER (ORDER BY rid) AS n FROM \
       (SELECT d.id AS rid FROM deliveries AS d \
         WHERE d.tenant_id = $3 AND d.webhook_id = $4 \
         AND d.status IN ('pending', 'retrying') AND d.next_attempt_at IS NULL \
         AND d.lease_owner IS NULL \
         AND NOT EXISTS (SELECT 1 FROM webhooks AS w WHERE w.id = $4 AND w.paused) \
         ORDER BY d.id LIMIT $5) AS p) AS r \
     WHERE deliveries.id = r.rid";

/// The slice of a paused webhook's waiting deliveries that one statement
/// parks (`Backend::PARK`, `Store::park_deliveries`): chosen through
/// `deliveries_waiting` from the id where the last slice ended, so the
/// statement's cost is the slice's. Leased ones finish their attempt; the
/// claim parks them later. PostgreSQL adds `FOR UPDATE SKIP LOCKED`: a row
/// a claim is leasing meanwhile is left to that claim (only `id IN` would
/// be checked again, and an in-flight delivery would lose its lease's
/// due time).
macro_rules! park_slice {
    () => {
        "SELECT d.id FROM deliveries AS d WHERE d.tenant_id = $1 AND d.webhook_id = $2 \
         AND d.status IN ('pending', 'retrying') AND d.id > $3 \
         AND d.next_attempt_at IS NOT NULL AND d.lease_owner IS NULL \
         AND EXISTS (SELECT 1 FROM webhooks AS w WHERE w.id = $2 AND w.paused) \
         ORDER BY d.id LIMIT $4"
    };
}
pub(crate) use park_slice;

/// The webhooks not paused that hold parked deliveries
/// (`Store::resumed_backlogs`, every 0.5 s on every instance).
pub(super) const RESUMED_BACKLOGS: &str = "SELECT w.tenant_id, w.id, w.rate_limit FROM webhooks AS w \
     WHERE NOT w.paused AND EXISTS (SELECT 1 FROM deliveries AS d WHERE d.webhook_id = w.id \
       AND d.status IN ('pending', 'retrying') AND d.next_attempt_at IS NULL) \
     ORDER BY w.id";

const API_KEY_COLUMNS: &str = "id, tenant_id, name, permissions, created_at";

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
        push_receives_any(qb, std::slice::from_ref(t), f.event_category.as_slice());
    }
    if let Some(name) = &f.name {
        qb.push(" AND name = ").push_bind(name.clone());
    }
    match f.active {
        Some(true) => {
            qb.push(" AND enabled = ")
                .push_bind(true)
                .push(" AND suspended = ")
                .push_bind(false);
        }
        Some(false) => {
            qb.push(" AND (enabled = ")
                .push_bind(false)
                .push(" OR suspended = ")
                .push_bind(true)
                .push(")");
        }
        None => {}
    }
    if !f.any_event_type.is_empty() {
        push_receives_any(qb, &f.any_event_type, &f.any_event_category);
    }
}

/// ` AND (…)`: the webhook receives one of `types`, exactly or through a
/// `category.*` wildcard of the type's first segment or of `categories`.
fn push_receives_any(qb: &mut Builder<'_>, types: &[String], categories: &[String]) {
    // `events` is a JSON array of validated names, which cannot contain
    // quotes, so a quoted substring match is exact.
    let mut patterns: Vec<String> = Vec::new();
    for t in types {
        patterns.push(format!("%\"{}\"%", like_escape(t)));
        patterns.push(format!(
            "%\"{}.*\"%",
            like_escape(crate::domain::event_type::category_of(t))
        ));
    }
    for c in categories {
        patterns.push(format!("%\"{}.*\"%", like_escape(c)));
    }
    patterns.sort();
    patterns.dedup();
    qb.push(" AND (");
    for (i, p) in patterns.into_iter().enumerate() {
        if i > 0 {
            qb.push(" OR ");
        }
        qb.push("events LIKE ").push_bind(p).push(" ESCAPE '\\'");
    }
    qb.push(")");
}

/// The columns a webhook's owner edits, bound as `$1`…`$18` by
/// `bind_editable` (the same order in an INSERT and an UPDATE).
const EDITABLE_COLUMNS: &str = "name, url, events, enabled, environment, description, headers, \
     timeout_ms, rate_limit, retry_schedule, failure_handling, search_text, \
     signature_scheme, signing_keys, auth, ca_certificate, filter, ordering";
const EDITABLE_VALUES: &str =
    "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18";

type WebhookQuery<'q, O> = sqlx::query::QueryAs<'q, Db, O, <Db as sqlx::Database>::Arguments<'q>>;

fn bind_editable<'q, O>(
    q: WebhookQuery<'q, O>,
    w: &'q Webhook,
    json: &'q WebhookJsonColumns,
    cipher: &Cipher,
) -> WebhookQuery<'q, O> {
    let security = SecurityColumns::of(cipher, &w.tenant_id, &w.security);
    q.bind(&w.name)
        .bind(&w.url)
        .bind(&json.events)
        .bind(w.enabled)
        .bind(&w.environment)
        .bind(&w.description)
        .bind(seal_headers(cipher, &w.tenant_id, &w.headers))
        .bind(w.timeout_ms as i64)
        .bind(w.rate_limit.map(i64::from))
        .bind(&json.retry_schedule)
        .bind(&json.failure_handling)
        .bind(&json.search_text)
        .bind(security.signature_scheme)
        .bind(security.signing_keys)
        .bind(security.auth)
        .bind(&w.security.ca_certificate)
        .bind(&w.control.filter)
        .bind(w.control.ordering.as_str())
}
