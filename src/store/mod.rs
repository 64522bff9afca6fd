//! Persistence behind one interface, `Store`, with one implementation per
//! database. This module and its children are the only code that knows
//! which database is in use.
//!
//! Invariants: every query is scoped by `tenant_id`; secrets and header
//! values are sealed by the store before they reach the database and never
//! leave it sealed; times are epoch milliseconds passed in by the caller.

use async_trait::async_trait;

use crate::crypto::CipherError;
use crate::domain::api_key::Permission;
use crate::domain::delivery::{DeliveryJob, DeliveryStatus, NewEvent, Outcome};
use crate::domain::webhook::{Webhook, WebhookSecrets};

mod hot_sql;
mod migrations;
pub mod postgres;
mod rows;
pub mod sqlite;

pub use crate::domain::fanout::{IDEMPOTENCY_WINDOW_MS, Lease, PublishBatch};
use crate::domain::operational::OperationalTarget;
pub use postgres::PostgresStore;

/// What a store's hot path shares with its management side: where
/// operational events go (set once at start, `Store::set_operational_target`)
/// and the compiled filters.
#[derive(Debug, Clone, Default)]
pub(crate) struct HotShared {
    pub operational: std::sync::Arc<std::sync::OnceLock<OperationalTarget>>,
    pub filters: std::sync::Arc<hot_sql::FilterCache>,
}
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken; the message names it.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The row changed since it was read (optimistic concurrency).
    #[error("the record was changed concurrently")]
    Stale,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Cipher(#[from] CipherError),
    /// A stored value could not be decoded.
    #[error("corrupt stored value in {0}")]
    Corrupt(&'static str),
    /// One failure that several callers waited on (the dispatcher's
    /// target cache loads a webhook once for all the jobs that need it).
    #[error(transparent)]
    Shared(std::sync::Arc<StoreError>),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Filters of the webhook list; `None` means "any".
#[derive(Debug, Clone, Default)]
pub struct WebhookFilter {
    /// Case-insensitive substring of name or URL.
    pub q: Option<String>,
    pub environment: Option<String>,
    pub enabled: Option<bool>,
    pub suspended: Option<bool>,
    /// Webhooks that receive this type (exactly or through `category.*`).
    pub event_type: Option<String>,
    /// The type's category, when the tenant set one apart from its first segment.
    pub event_category: Option<String>,
    /// Exactly this name.
    pub name: Option<String>,
    /// Enabled and not suspended (`true`), or disabled or suspended (`false`).
    pub active: Option<bool>,
    /// Webhooks that receive at least one of these types (exactly or
    /// through `category.*`).
    pub any_event_type: Vec<String>,
    /// The categories of `any_event_type` that the tenant set apart from
    /// their first segment.
    pub any_event_category: Vec<String>,
}

/// One page of a list with its total count.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// A tenant-defined (or tenant-archived) event type as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EventTypeRecord {
    pub name: String,
    pub category: String,
    pub description: Option<String>,
    pub archived_at: Option<i64>,
    pub created_at: i64,
    /// JSON Schema of the type's `data`, as JSON text (checked when saved).
    pub data_schema: Option<String>,
    /// An example `data`, as JSON text.
    pub example: Option<String>,
}

/// A provisioned API key, without its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: i64,
    pub tenant_id: String,
    pub name: String,
    pub permissions: Vec<Permission>,
    pub created_at: i64,
}

/// What one group commit writes.
#[derive(Debug, Default)]
pub struct CommitBatch {
    pub events: Vec<NewEvent>,
    pub lease: Option<Lease>,
    pub outcomes: Vec<Outcome>,
}

/// A committed batch.
#[derive(Debug)]
pub struct Committed {
    pub published: PublishBatch,
    /// Webhooks suspended by the recorded outcomes.
    pub suspended: Vec<i64>,
    /// The outcomes recorded, handed back.
    pub outcomes: Vec<Outcome>,
}

/// A batch that was not committed: nothing of it is stored.
#[derive(Debug)]
pub struct CommitFailed {
    pub error: StoreError,
    /// Its outcomes, to be recorded by a later batch.
    pub outcomes: Vec<Outcome>,
}

#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub webhook_id: Option<i64>,
    pub event_type: Option<String>,
    /// `Diverted` also matches `Failed`: failed deliveries are listed among
    /// the diverted ones (§6).
    pub status: Option<DeliveryStatus>,
    pub event_id: Option<String>,
    /// Created at or after (ms).
    pub since: Option<i64>,
    /// Created before (ms).
    pub until: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: i64,
    pub tenant_id: String,
    pub event_id: String,
    pub event_type: String,
    pub webhook_id: i64,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<i64>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRow {
    pub id: i64,
    pub attempted_at: i64,
    pub duration_ms: i64,
    pub url: String,
    pub request_headers: String,
    pub response_status: Option<u16>,
    pub response_headers: Option<String>,
    pub response_body: Option<String>,
    pub error_kind: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub seq: i64,
    pub id: String,
    pub tenant_id: String,
    pub event_type: String,
    pub environment: String,
    pub data: String,
    pub idempotency_key: Option<String>,
    pub delivery_count: u32,
    pub created_at: i64,
}

#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub event_type: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// A webhook whose parked deliveries are being made due (SPEC §12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumedBacklog {
    pub tenant_id: String,
    pub webhook_id: i64,
    /// Its rate limit (deliveries per second), the backlog's pace.
    pub rate_limit: Option<u32>,
}

/// One of the store's queries whose plan must stay on indexes however
/// large the tables grow (issue 11): the hot path's claim, the management
/// lists and the retention purge, with the arguments they run with.
/// `SqliteStore::explain` and `PostgresStore::explain` answer the plan the
/// database makes for the very text the store runs (tests/it/query_plans.rs).
#[derive(Debug, Clone)]
pub enum PlannedQuery {
    /// `Store::claim_due_deliveries` (on SQLite also its read of the
    /// claimed deliveries' events).
    Claim { now: i64, limit: usize },
    /// `Store::list_deliveries`: the management API's and admin page's
    /// delivery lists, and an event's deliveries.
    ListDeliveries {
        tenant: String,
        filter: DeliveryFilter,
        before: Option<i64>,
        limit: u64,
    },
    /// `Store::list_events`.
    ListEvents {
        tenant: String,
        filter: EventFilter,
        before: Option<i64>,
        limit: u64,
    },
    /// A delivery's attempts (`Store::get_delivery`).
    ListAttempts { tenant: String, delivery_id: i64 },
    /// One batch of the retention purge (`Store::purge_events`).
    PurgeEvents { before: i64, batch: u64 },
    /// The pacer's search for resumed backlogs (`Store::resumed_backlogs`).
    ResumedBacklogs,
    /// One slice of a pause's parking (`Store::park_deliveries`).
    Park {
        tenant: String,
        webhook_id: i64,
        limit: u32,
    },
    /// One slice of a resumed backlog (`Store::unpark_deliveries`).
    Unpark {
        tenant: String,
        webhook_id: i64,
        limit: u32,
    },
}

/// The backlog, for metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueStats {
    /// Deliveries pending or retrying.
    pub depth: u64,
    /// The oldest due-but-unattempted delivery's due time.
    pub oldest_due_at: Option<i64>,
    /// Webhooks suspended (by 410 or failure handling), all tenants.
    pub suspended_webhooks: u64,
}

/// A signed-in admin page session. The browser holds the token; the store
/// keeps its SHA-256 (`id_hash`), so a database read does not yield
/// usable sessions.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AdminSessionRecord {
    pub id_hash: Vec<u8>,
    /// Which key signed in (see `Authenticator::session_key_ref`),
    /// re-checked on every request.
    pub key_ref: Vec<u8>,
    pub tenant_id: String,
    pub csrf_token: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// `admin` (the admin page's cookie), `portal` or `portal_read_only`
    /// (a token in the portal's URLs): a token opens its own kind only.
    pub kind: String,
}

/// A customer-portal link (SPEC §11) as stored: the token's SHA-256, the
/// tenant it opens and the key that made it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PortalLinkRecord {
    pub id_hash: Vec<u8>,
    pub tenant_id: String,
    pub key_ref: Vec<u8>,
    pub read_only: bool,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A webhook's recent delivery health, for the admin list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookHealth {
    pub webhook_id: i64,
    /// The newest delivery's status, response code and last change.
    pub last_status: DeliveryStatus,
    pub last_status_code: Option<u16>,
    pub last_at: i64,
    /// Deliveries created since the window's start, and how many of them
    /// failed, were diverted or are retrying.
    pub recent: u64,
    pub recent_failing: u64,
}

/// What opening a portal link found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortalLinkUse {
    /// Unused and in time: now marked used.
    Opened(PortalLinkRecord),
    /// Opened before (at this time, epoch ms).
    Used(i64),
    /// Expired at this time (epoch ms).
    Expired(i64),
    Unknown,
}

/// Deliveries created in one time bucket with one (current) status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramRow {
    /// Index of the bucket from `since` (0 is the oldest).
    pub bucket: i64,
    pub status: DeliveryStatus,
    pub count: u64,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks the database answers (readiness).
    async fn ping(&self) -> StoreResult<()>;

    /// From now on, webhook changes and delivery outcomes of other tenants
    /// publish operational events into `target` (SPEC §12), each in the
    /// transaction of its cause. Set once, at start; later calls are ignored.
    fn set_operational_target(&self, target: OperationalTarget);

    // --- webhooks -------------------------------------------------------

    /// Inserts a webhook; `id`, `version` and the timestamps are assigned.
    async fn create_webhook(
        &self,
        webhook: &Webhook,
        secret: &str,
        now: i64,
    ) -> StoreResult<Webhook>;
    async fn get_webhook(&self, tenant: &str, id: i64) -> StoreResult<Option<Webhook>>;
    async fn list_webhooks(
        &self,
        tenant: &str,
        filter: &WebhookFilter,
        offset: u64,
        limit: u64,
    ) -> StoreResult<Page<Webhook>>;
    /// Writes every mutable field of `webhook` if its `version` is still
    /// current; `Stale` otherwise, `None` if it no longer exists.
    async fn update_webhook(&self, webhook: &Webhook, now: i64) -> StoreResult<Option<Webhook>>;
    async fn delete_webhook(&self, tenant: &str, id: i64, now: i64) -> StoreResult<bool>;
    async fn get_webhook_secrets(
        &self,
        tenant: &str,
        id: i64,
    ) -> StoreResult<Option<WebhookSecrets>>;
    /// Makes `new_secret` current; the old one stays live until `previous_until`.
    async fn rotate_webhook_secret(
        &self,
        tenant: &str,
        id: i64,
        new_secret: &str,
        previous_until: i64,
        now: i64,
    ) -> StoreResult<bool>;
    async fn set_webhook_suspended(
        &self,
        tenant: &str,
        id: i64,
        suspended: bool,
        now: i64,
    ) -> StoreResult<Option<Webhook>>;
    /// Pauses or resumes a webhook, with its operational event, in one
    /// transaction; answers it and whether it changed (`None` if absent).
    /// Neither touches its deliveries: a pause's waiting ones are parked
    /// by [`Store::park_deliveries`], a slice at a time, and a resume's
    /// parked ones paced out by [`Store::unpark_deliveries`].
    async fn set_webhook_paused(
        &self,
        tenant: &str,
        id: i64,
        paused: bool,
        now: i64,
    ) -> StoreResult<Option<(Webhook, bool)>>;

    /// Parks (no due time: no claim takes them, none ages) the next
    /// `limit` waiting, unleased deliveries of a paused webhook with an id
    /// above `after`, in id order; answers how many and the last one's id.
    /// Fewer than `limit` means none is left. One short statement however
    /// long the backlog; nothing for a webhook that is not paused.
    async fn park_deliveries(
        &self,
        tenant: &str,
        id: i64,
        after: i64,
        limit: u32,
    ) -> StoreResult<(u64, i64)>;

    /// Makes the oldest `limit` parked deliveries of a webhook that is not
    /// paused due, in publish order, the first at `from` and each next
    /// `spacing_ms` later; answers how many. One short statement however
    /// long the backlog.
    async fn unpark_deliveries(
        &self,
        tenant: &str,
        id: i64,
        from: i64,
        spacing_ms: f64,
        limit: u32,
    ) -> StoreResult<u64>;

    /// The webhooks not paused that still hold parked deliveries (a
    /// resumed backlog being paced out, or a job a stale cache parked).
    async fn resumed_backlogs(&self) -> StoreResult<Vec<ResumedBacklog>>;

    // --- event types ----------------------------------------------------

    /// The tenant's own rows (custom types and archived built-ins).
    async fn list_event_types(&self, tenant: &str) -> StoreResult<Vec<EventTypeRecord>>;
    /// Inserts a type, or revives an archived one; `Conflict` if it is live.
    async fn create_event_type(&self, tenant: &str, record: &EventTypeRecord) -> StoreResult<()>;
    /// Marks a type archived (inserting a row for a built-in one).
    async fn archive_event_type(&self, tenant: &str, record: &EventTypeRecord) -> StoreResult<()>;
    /// Un-archives a type; false when it was not archived.
    async fn restore_event_type(&self, tenant: &str, name: &str) -> StoreResult<bool>;
    /// Sets a type's description, schema and example, adding the tenant's
    /// row for a built-in type that has none.
    async fn update_event_type(&self, tenant: &str, record: &EventTypeRecord) -> StoreResult<()>;

    // --- API keys -------------------------------------------------------

    async fn create_api_key(
        &self,
        tenant: &str,
        name: &str,
        key_hash: &[u8],
        permissions: &[Permission],
        now: i64,
    ) -> StoreResult<ApiKeyRecord>;
    /// Live keys, of one tenant or of all.
    async fn list_api_keys(&self, tenant: Option<&str>) -> StoreResult<Vec<ApiKeyRecord>>;
    async fn revoke_api_key(&self, tenant: &str, id: i64, now: i64) -> StoreResult<bool>;
    /// The live key with this hash.
    async fn find_api_key(&self, key_hash: &[u8]) -> StoreResult<Option<ApiKeyRecord>>;

    // --- publishing and delivery -----------------------------------------

    /// The hot path's group commit, in one transaction. Outcomes first:
    /// attempts, delivery states, failure tracking, suspension by failure
    /// handling. Then events and their deliveries: idempotency replays,
    /// fan-out to enabled subscribed webhooks (suspended ones get `diverted`
    /// deliveries), leases on up to `lease.max` new ones. The batch is moved
    /// in (no copy on the way to a writer thread) and its outcomes handed
    /// back, recorded or not.
    async fn commit_batch(&self, batch: CommitBatch, now: i64) -> Result<Committed, CommitFailed>;
    /// How many `commit_batch` calls may run at once. One on SQLite (one
    /// writer: a second would only wait for the lock); several on
    /// PostgreSQL, whose group commit merges the WAL flushes of
    /// transactions that commit together.
    fn commit_lanes(&self) -> usize {
        1
    }
    /// Leases up to `limit` due deliveries whose lease is free or expired.
    async fn claim_due_deliveries(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> StoreResult<Vec<DeliveryJob>>;
    /// Frees leases (those of `owner`, or every lease when `None`), making
    /// their deliveries due at `now`.
    async fn release_leases(&self, owner: Option<&str>, now: i64) -> StoreResult<u64>;
    /// The earliest due time among unleased pending deliveries.
    async fn next_due_at(&self) -> StoreResult<Option<i64>>;
    /// Re-queues one delivery for an immediate attempt with a fresh schedule;
    /// `Conflict` while an attempt of it is under way.
    async fn retry_delivery(
        &self,
        tenant: &str,
        id: i64,
        now: i64,
    ) -> StoreResult<Option<DeliveryRecord>>;
    /// Re-queues a webhook's failed and diverted deliveries created since `since`.
    async fn recover_webhook(
        &self,
        tenant: &str,
        webhook_id: i64,
        since: i64,
        now: i64,
    ) -> StoreResult<u64>;
    /// Newest first, ids below `before` (the cursor).
    async fn list_deliveries(
        &self,
        tenant: &str,
        filter: &DeliveryFilter,
        before: Option<i64>,
        limit: u64,
    ) -> StoreResult<Vec<DeliveryRecord>>;
    async fn get_delivery(
        &self,
        tenant: &str,
        id: i64,
    ) -> StoreResult<Option<(DeliveryRecord, Vec<AttemptRow>)>>;
    async fn get_event(&self, tenant: &str, id: &str) -> StoreResult<Option<EventRecord>>;
    /// Newest first, sequence numbers below `before` (the cursor).
    async fn list_events(
        &self,
        tenant: &str,
        filter: &EventFilter,
        before: Option<i64>,
        limit: u64,
    ) -> StoreResult<Vec<EventRecord>>;
    /// Deletes up to `batch` events older than `before` whose deliveries are
    /// all finished, with their deliveries and attempts. Returns how many.
    async fn purge_events(&self, before: i64, batch: u64) -> StoreResult<u64>;
    async fn queue_stats(&self, now: i64) -> StoreResult<QueueStats>;

    // --- admin page ------------------------------------------------------

    /// Stores a new session (and drops expired ones).
    async fn create_admin_session(&self, session: &AdminSessionRecord) -> StoreResult<()>;
    /// The unexpired session with this token hash.
    async fn find_admin_session(
        &self,
        id_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<AdminSessionRecord>>;
    /// Moves a session to another tenant (management keys act on any).
    async fn set_admin_session_tenant(&self, id_hash: &[u8], tenant: &str) -> StoreResult<()>;
    async fn delete_admin_session(&self, id_hash: &[u8]) -> StoreResult<()>;
    /// Stores a new portal link (and drops links expired a day ago).
    async fn create_portal_link(&self, link: &PortalLinkRecord) -> StoreResult<()>;
    /// Marks a link used, once: of two concurrent openings one wins.
    async fn open_portal_link(&self, id_hash: &[u8], now: i64) -> StoreResult<PortalLinkUse>;
    /// Tenants that hold anything (webhooks, keys, event types, sessions),
    /// sorted, at most `limit`.
    async fn list_tenants(&self, limit: u64) -> StoreResult<Vec<String>>;
    /// The health of these webhooks (those with deliveries only): the
    /// newest delivery, and the counts since `since`.
    async fn webhook_health(
        &self,
        tenant: &str,
        ids: &[i64],
        since: i64,
    ) -> StoreResult<Vec<WebhookHealth>>;
    /// A service-wide setting (JSON text), e.g. the default delivery policy.
    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>>;
    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()>;
    async fn delete_setting(&self, key: &str) -> StoreResult<()>;
    /// The tenant's deliveries matching `filter` (webhook, event type,
    /// status, event, time bounds) created since `since`,
    /// counted per `bucket_ms`-wide bucket and current status (the admin
    /// page's chart, which follows the log's filters).
    async fn delivery_histogram(
        &self,
        tenant: &str,
        filter: &DeliveryFilter,
        since: i64,
        bucket_ms: i64,
    ) -> StoreResult<Vec<HistogramRow>>;

    /// Records that instance `owner` is alive at `now` (shared databases only).
    async fn heartbeat(&self, _owner: &str, _now: i64) -> StoreResult<()> {
        Ok(())
    }

    /// Frees the leases of instances whose heartbeat is older than
    /// `dead_before`, making their deliveries due at `now`; forgets those
    /// instances. Returns how many deliveries were freed.
    async fn release_dead_leases(&self, _now: i64, _dead_before: i64) -> StoreResult<u64> {
        Ok(0)
    }

    /// Forgets instance `owner` (it stopped cleanly).
    async fn forget_instance(&self, _owner: &str) -> StoreResult<()> {
        Ok(())
    }

    /// Fires when another instance announced work to claim (`None`: this
    /// backend serves one instance, whose own scheduler is woken directly).
    fn work_signal(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        None
    }
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
pub(crate) fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
