//! Row shapes shared by the backends, and the sealing of secret columns.

use crate::crypto::Cipher;
use crate::domain::api_key::Permission;
use crate::domain::control::{DeliveryControl, Ordering};
use crate::domain::receiver_auth::{ReceiverAuth, ReceiverSecurity, SignatureScheme, SigningKeys};
use crate::domain::webhook::{FailureHandling, Headers, Webhook};

use super::{ApiKeyRecord, DeliveryRecord, EventRecord, StoreError, StoreResult};
use crate::domain::delivery::DeliveryStatus;

/// The `aad` that binds a sealed value to its tenant and column.
pub(super) fn seal_context(tenant: &str, column: &str) -> String {
    format!("hookd:{tenant}:webhooks.{column}")
}

pub(super) fn seal_headers(cipher: &Cipher, tenant: &str, headers: &Headers) -> Vec<u8> {
    let json = serde_json::to_vec(headers).expect("a string map always serializes");
    cipher.seal(&json, &seal_context(tenant, "headers"))
}

pub(super) fn seal_secret(cipher: &Cipher, tenant: &str, column: &str, secret: &str) -> Vec<u8> {
    cipher.seal(secret.as_bytes(), &seal_context(tenant, column))
}

pub(super) fn open_secret(
    cipher: &Cipher,
    tenant: &str,
    column: &str,
    sealed: &[u8],
) -> StoreResult<String> {
    let bytes = cipher.open(sealed, &seal_context(tenant, column))?;
    String::from_utf8(bytes).map_err(|_| StoreError::Corrupt("webhooks.secret"))
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct WebhookRow {
    pub id: i64,
    pub tenant_id: String,
    pub name: String,
    pub url: String,
    pub events: String,
    pub enabled: bool,
    pub environment: String,
    pub description: Option<String>,
    pub headers: Vec<u8>,
    pub timeout_ms: i64,
    pub rate_limit: Option<i64>,
    pub retry_schedule: Option<String>,
    pub failure_handling: Option<String>,
    pub suspended: bool,
    pub suspended_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
    // SPEC §13: `signing_keys` and `auth` are sealed JSON.
    pub signature_scheme: String,
    pub signing_keys: Option<Vec<u8>>,
    pub auth: Option<Vec<u8>>,
    pub ca_certificate: Option<String>,
    // SPEC §12.
    pub filter: Option<String>,
    pub ordering: String,
    pub paused: bool,
    pub paused_at: Option<i64>,
}

/// The column list matching `WebhookRow`, for SELECTs.
pub(super) const WEBHOOK_COLUMNS: &str = "id, tenant_id, name, url, events, enabled, environment, \
     description, headers, timeout_ms, rate_limit, retry_schedule, failure_handling, suspended, \
     suspended_at, created_at, updated_at, version, \
     signature_scheme, signing_keys, auth, ca_certificate, filter, ordering, paused, paused_at";

/// Seals a serialisable secret value into its column.
fn seal_json<T: serde::Serialize>(cipher: &Cipher, tenant: &str, column: &str, v: &T) -> Vec<u8> {
    let json = serde_json::to_vec(v).expect("secret values serialize");
    cipher.seal(&json, &seal_context(tenant, column))
}

fn open_json<T: serde::de::DeserializeOwned>(
    cipher: &Cipher,
    tenant: &str,
    column: &'static str,
    sealed: Option<&[u8]>,
    corrupt: &'static str,
) -> StoreResult<Option<T>> {
    sealed
        .map(|s| {
            let json = cipher.open(s, &seal_context(tenant, column))?;
            serde_json::from_slice(&json).map_err(|_| StoreError::Corrupt(corrupt))
        })
        .transpose()
}

/// The columns of [`ReceiverSecurity`], sealed where secret, ready to bind.
pub(super) struct SecurityColumns {
    pub signature_scheme: &'static str,
    pub signing_keys: Option<Vec<u8>>,
    pub auth: Option<Vec<u8>>,
}

impl SecurityColumns {
    pub fn of(cipher: &Cipher, tenant: &str, s: &ReceiverSecurity) -> Self {
        Self {
            signature_scheme: s.signature_scheme.as_str(),
            signing_keys: s
                .signing_keys
                .as_ref()
                .map(|k| seal_json(cipher, tenant, "signing_keys", k)),
            auth: s
                .auth
                .as_ref()
                .map(|a| seal_json(cipher, tenant, "auth", a)),
        }
    }
}

impl WebhookRow {
    fn security(&self, cipher: &Cipher) -> StoreResult<ReceiverSecurity> {
        let t = &self.tenant_id;
        Ok(ReceiverSecurity {
            signature_scheme: SignatureScheme::parse(&self.signature_scheme)
                .map_err(|_| StoreError::Corrupt("webhooks.signature_scheme"))?,
            signing_keys: open_json::<SigningKeys>(
                cipher,
                t,
                "signing_keys",
                self.signing_keys.as_deref(),
                "webhooks.signing_keys",
            )?,
            auth: open_json::<ReceiverAuth>(
                cipher,
                t,
                "auth",
                self.auth.as_deref(),
                "webhooks.auth",
            )?,
            ca_certificate: self.ca_certificate.clone(),
        })
    }

    pub fn into_webhook(self, cipher: &Cipher) -> StoreResult<Webhook> {
        let headers_json = cipher.open(&self.headers, &seal_context(&self.tenant_id, "headers"))?;
        let security = self.security(cipher)?;
        Ok(Webhook {
            security,
            control: DeliveryControl {
                filter: self.filter,
                ordering: Ordering::parse(&self.ordering)
                    .map_err(|_| StoreError::Corrupt("webhooks.ordering"))?,
                paused: self.paused,
                paused_at: self.paused_at,
            },
            headers: serde_json::from_slice(&headers_json)
                .map_err(|_| StoreError::Corrupt("webhooks.headers"))?,
            events: serde_json::from_str(&self.events)
                .map_err(|_| StoreError::Corrupt("webhooks.events"))?,
            retry_schedule_ms: self
                .retry_schedule
                .map(|s| serde_json::from_str(&s))
                .transpose()
                .map_err(|_| StoreError::Corrupt("webhooks.retry_schedule"))?,
            failure_handling: self
                .failure_handling
                .map(|s| serde_json::from_str::<FailureHandling>(&s))
                .transpose()
                .map_err(|_| StoreError::Corrupt("webhooks.failure_handling"))?,
            id: self.id,
            tenant_id: self.tenant_id,
            name: self.name,
            url: self.url,
            enabled: self.enabled,
            environment: self.environment,
            description: self.description,
            timeout_ms: self.timeout_ms.max(0) as u64,
            rate_limit: self.rate_limit.map(|r| r as u32),
            suspended: self.suspended,
            suspended_at: self.suspended_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
        })
    }
}

/// The JSON-encoded columns of a webhook, ready to bind.
pub(super) struct WebhookJsonColumns {
    /// Name and URL lowercased in Rust (full Unicode; SQLite's LOWER is ASCII-only).
    pub search_text: String,
    pub events: String,
    pub retry_schedule: Option<String>,
    pub failure_handling: Option<String>,
}

impl WebhookJsonColumns {
    pub fn of(w: &Webhook) -> Self {
        Self {
            search_text: format!("{}\n{}", w.name.to_lowercase(), w.url.to_lowercase()),
            events: serde_json::to_string(&w.events).expect("strings serialize"),
            retry_schedule: w
                .retry_schedule_ms
                .as_ref()
                .map(|s| serde_json::to_string(s).expect("numbers serialize")),
            failure_handling: w
                .failure_handling
                .as_ref()
                .map(|f| serde_json::to_string(f).expect("numbers serialize")),
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct ApiKeyRow {
    pub id: i64,
    pub tenant_id: String,
    pub name: String,
    pub permissions: String,
    pub created_at: i64,
}

impl ApiKeyRow {
    pub fn into_record(self) -> StoreResult<ApiKeyRecord> {
        Ok(ApiKeyRecord {
            permissions: serde_json::from_str::<Vec<Permission>>(&self.permissions)
                .map_err(|_| StoreError::Corrupt("api_keys.permissions"))?,
            id: self.id,
            tenant_id: self.tenant_id,
            name: self.name,
            created_at: self.created_at,
        })
    }
}

pub(crate) const DELIVERY_COLUMNS: &str = "d.id, d.tenant_id, e.id AS event_id, d.event_type, d.webhook_id, d.status, \
     d.attempts, d.next_attempt_at, d.last_status_code, d.last_error, d.created_at, d.updated_at";

#[derive(sqlx::FromRow)]
pub(crate) struct DeliveryRow {
    id: i64,
    tenant_id: String,
    event_id: String,
    event_type: String,
    webhook_id: i64,
    status: String,
    attempts: i64,
    next_attempt_at: Option<i64>,
    last_status_code: Option<i64>,
    last_error: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl DeliveryRow {
    pub(crate) fn into_record(self) -> StoreResult<DeliveryRecord> {
        Ok(DeliveryRecord {
            status: DeliveryStatus::parse(&self.status)
                .ok_or(StoreError::Corrupt("deliveries.status"))?,
            id: self.id,
            tenant_id: self.tenant_id,
            event_id: self.event_id,
            event_type: self.event_type,
            webhook_id: self.webhook_id,
            attempts: self.attempts as u32,
            next_attempt_at: self.next_attempt_at,
            last_status_code: self.last_status_code.map(|c| c as u16),
            last_error: self.last_error,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    seq: i64,
    id: String,
    tenant_id: String,
    event_type: String,
    environment: String,
    data: String,
    idempotency_key: Option<String>,
    delivery_count: i64,
    created_at: i64,
}

impl From<EventRow> for EventRecord {
    fn from(r: EventRow) -> Self {
        Self {
            seq: r.seq,
            id: r.id,
            tenant_id: r.tenant_id,
            event_type: r.event_type,
            environment: r.environment,
            data: r.data,
            idempotency_key: r.idempotency_key,
            delivery_count: r.delivery_count as u32,
            created_at: r.created_at,
        }
    }
}

pub(crate) const EVENT_COLUMNS: &str = "seq, id, tenant_id, event_type, environment, data, idempotency_key, delivery_count, created_at";
