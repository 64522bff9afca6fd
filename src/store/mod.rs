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
use crate::domain::webhook::{Webhook, WebhookSecrets};

mod migrations;
mod rows;
pub mod sqlite;

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
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Cipher(#[from] CipherError),
    /// A stored value could not be decoded.
    #[error("corrupt stored value in {0}")]
    Corrupt(&'static str),
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
}

/// One page of a list with its total count.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// A tenant-defined (or tenant-archived) event type as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTypeRecord {
    pub name: String,
    pub category: String,
    pub description: Option<String>,
    pub archived_at: Option<i64>,
    pub created_at: i64,
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

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks the database answers (readiness).
    async fn ping(&self) -> StoreResult<()>;

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
    async fn delete_webhook(&self, tenant: &str, id: i64) -> StoreResult<bool>;
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

    // --- event types ----------------------------------------------------

    /// The tenant's own rows (custom types and archived built-ins).
    async fn list_event_types(&self, tenant: &str) -> StoreResult<Vec<EventTypeRecord>>;
    /// Inserts a type, or revives an archived one; `Conflict` if it is live.
    async fn create_event_type(&self, tenant: &str, record: &EventTypeRecord) -> StoreResult<()>;
    /// Marks a type archived (inserting a row for a built-in one).
    async fn archive_event_type(&self, tenant: &str, record: &EventTypeRecord) -> StoreResult<()>;

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
