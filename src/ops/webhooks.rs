//! Webhooks: create, list, read, change (also only while unchanged since
//! the caller read it), delete, the signing secret (read, rotate),
//! unsuspend. Every input is validated here, field by field; every change
//! drops the dispatcher's cached copy of the webhook.

use crate::catalogue::Catalogue;
use crate::config::Settings;
use crate::crypto::{generate_webhook_secret, webhook_secret_bytes};
use crate::domain::ValidationErrors;
use crate::domain::receiver_auth::SignatureScheme;
use crate::domain::webhook::{self as rules, FailureHandling, Headers, Webhook};
use crate::store::{Page, StoreError, WebhookFilter};

use super::webhook_control::{ControlChanges, apply_control};
use super::webhook_security::{SecurityChanges, apply_security, public_keys, rotated};
use super::{OpError, OpResult, Services};

/// Attempts of a change that keeps meeting concurrent changes before 409.
const MAX_UPDATE_ROUNDS: usize = 50;

/// How long a rotated-out secret keeps signing.
const PREVIOUS_SECRET_GRACE_MS: i64 = 24 * 3_600_000;

/// Failure handling as given, before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureHandlingInput {
    /// Failed attempts before the webhook may be suspended.
    pub min_failures: i64,
    /// Time without a success before suspension, e.g. `5d`.
    pub suspend_after: String,
}

/// A new webhook as given, before validation; absent fields take their
/// defaults.
#[derive(Debug, Clone, Default)]
pub struct NewWebhook {
    pub name: String,
    pub url: String,
    /// Event types or `category.*` wildcards.
    pub events: Vec<String>,
    pub enabled: Option<bool>,
    /// The service's default environment when absent.
    pub environment: Option<String>,
    pub description: Option<String>,
    pub headers: Option<Headers>,
    /// e.g. `500ms`; `0s` means the service default.
    pub timeout: Option<String>,
    pub rate_limit: Option<i64>,
    pub retry_schedule: Option<Vec<String>>,
    pub failure_handling: Option<FailureHandlingInput>,
    /// A `whsec_` secret to use instead of a generated one.
    pub secret: Option<String>,
    /// Signing scheme, receiver authentication, private CA (SPEC §13).
    pub security: SecurityChanges,
    /// Filter and ordering (SPEC §12).
    pub control: ControlChanges,
}

/// Changes to a webhook, before validation: only the fields given change.
/// `Some(None)` resets `description`, `rate_limit`, `retry_schedule` and
/// `failure_handling`. The add/remove forms apply removals first, then
/// additions, to the given list (or the stored one).
#[derive(Debug, Clone, Default)]
pub struct WebhookChanges {
    pub name: Option<String>,
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
    pub environment: Option<String>,
    pub description: Option<Option<String>>,
    pub headers: Option<Headers>,
    pub timeout: Option<String>,
    pub rate_limit: Option<Option<i64>>,
    pub retry_schedule: Option<Option<Vec<String>>>,
    pub failure_handling: Option<Option<FailureHandlingInput>>,
    pub add_events: Option<Vec<String>>,
    pub remove_events: Option<Vec<String>>,
    pub add_headers: Option<Headers>,
    pub remove_headers: Option<Vec<String>>,
    /// Signing scheme, receiver authentication, private CA (SPEC §13).
    pub security: SecurityChanges,
    /// Filter and ordering (SPEC §12).
    pub control: ControlChanges,
}

/// Rules a surface relaxes for its own document (the default is hookd's
/// own: every rule applies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SurfaceRules {
    /// A webhook may subscribe to no event type (seed 003 creates one
    /// without triggers and adds them later); it then receives nothing.
    pub events_may_be_empty: bool,
}

/// A webhook's signing secret, and until when the previous one also signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    pub scheme: SignatureScheme,
    /// `v1`: the `whsec_…` secret; `v1a`: the `whpk_…` public key (the
    /// private key is never shown).
    pub secret: String,
    /// Epoch ms; `None` when no previous secret signs any more.
    pub previous_expires_at: Option<i64>,
    /// `v1a`: the public key of the key a rotation replaced, while it signs.
    pub previous_public_key: Option<String>,
}

fn validate_failure_handling(
    errors: &mut ValidationErrors,
    f: &FailureHandlingInput,
) -> Option<FailureHandling> {
    errors.check(
        "failure_handling",
        rules::validate_failure_handling(f.min_failures, &f.suspend_after),
    )
}

/// The given secret if valid, else a generated one when none was given.
fn validate_secret(errors: &mut ValidationErrors, secret: Option<String>) -> Option<String> {
    match secret {
        None => Some(generate_webhook_secret()),
        Some(s) => errors.check("secret", webhook_secret_bytes(&s).map(|_| s)),
    }
}

/// Checks the subscriptions a change results in against the catalogue.
/// Only new ones must be live: existing subscriptions to an archived type
/// keep working. Each error names the field the client sent: an entry
/// brought by `add_events` is reported under `add_events`, the others
/// (and an empty result) under `events`.
fn check_events(
    errors: &mut ValidationErrors,
    catalogue: &Catalogue,
    changes: &WebhookChanges,
    result: &[String],
    existing: &[String],
    surface: SurfaceRules,
) {
    let added = changes.add_events.as_deref().unwrap_or_default();
    let field_of = |e: &String| {
        if added.contains(e) && !changes.events.as_ref().is_some_and(|ev| ev.contains(e)) {
            "add_events"
        } else {
            "events"
        }
    };
    if result.is_empty() {
        if !surface.events_may_be_empty {
            errors.check("events", rules::validate_events_syntax(result));
        }
        return;
    }
    for field in ["events", "add_events"] {
        let mine: Vec<String> = result
            .iter()
            .filter(|e| field_of(e) == field)
            .cloned()
            .collect();
        if mine.is_empty() {
            continue;
        }
        match rules::validate_events_syntax(&mine) {
            Err(m) => errors.add(field, m),
            Ok(events) => {
                let unknown = catalogue.unknown(events.iter().filter(|e| !existing.contains(e)));
                if !unknown.is_empty() {
                    errors.add(
                        field,
                        format!("unsupported event types: {}", unknown.join(", ")),
                    );
                }
            }
        }
    }
}

/// Which field to blame for invalid headers after a change: `headers` when
/// the map sent there is invalid by itself, else `add_headers` when
/// additions were sent (they, or their sum with the rest, broke a rule).
fn headers_field(changes: &WebhookChanges) -> &'static str {
    let headers_valid = changes
        .headers
        .as_ref()
        .is_none_or(|h| rules::validate_headers(h).is_ok());
    if headers_valid && changes.add_headers.is_some() {
        "add_headers"
    } else {
        "headers"
    }
}

/// The store's uniqueness conflict on a webhook is its URL's.
fn url_conflict(e: StoreError) -> OpError {
    match e {
        StoreError::Conflict(_) => OpError::field(
            "url",
            "a webhook with this URL already exists in this tenant",
        ),
        other => other.into(),
    }
}

/// Validates and stores a new webhook; answers it with its secret (which
/// the caller shows once).
pub async fn create_webhook(
    ops: &Services,
    tenant: &str,
    input: NewWebhook,
    now: i64,
) -> OpResult<(Webhook, String)> {
    create_webhook_with(ops, tenant, input, SurfaceRules::default(), now).await
}

/// [`create_webhook`] under a surface's relaxed `surface` rules.
pub async fn create_webhook_with(
    ops: &Services,
    tenant: &str,
    input: NewWebhook,
    surface: SurfaceRules,
    now: i64,
) -> OpResult<(Webhook, String)> {
    let catalogue = Catalogue::load(ops.store.as_ref(), tenant).await?;
    let mut errors = ValidationErrors::new();
    let secret = validate_secret(&mut errors, input.secret);
    // A new webhook is a blank one with every given field changed.
    let blank = Webhook {
        id: 0,
        tenant_id: tenant.to_owned(),
        name: String::new(),
        url: String::new(),
        events: Vec::new(),
        enabled: true,
        environment: ops.settings.default_environment().to_owned(),
        description: None,
        headers: Headers::new(),
        timeout_ms: 0,
        rate_limit: None,
        retry_schedule_ms: None,
        failure_handling: None,
        suspended: false,
        suspended_at: None,
        created_at: 0,
        updated_at: 0,
        version: 0,
        security: Default::default(),
        control: Default::default(),
    };
    let changes = WebhookChanges {
        name: Some(input.name),
        url: Some(input.url),
        events: Some(input.events),
        enabled: input.enabled,
        environment: input.environment,
        description: input.description.map(Some),
        headers: input.headers,
        timeout: input.timeout,
        rate_limit: input.rate_limit.map(Some),
        retry_schedule: input.retry_schedule.map(Some),
        failure_handling: input.failure_handling.map(Some),
        security: input.security,
        control: input.control,
        ..WebhookChanges::default()
    };
    let draft = apply_changes(
        &ops.settings,
        &catalogue,
        &blank,
        &changes,
        surface,
        &mut errors,
    );
    errors.into_result()?;
    let secret = secret.expect("a secret error was reported above");
    let created = ops
        .store
        .create_webhook(&draft, &secret, now)
        .await
        .map_err(url_conflict)?;
    // An operational event may be due (SPEC §12).
    ops.wake_dispatcher();
    tracing::info!(webhook.id = created.id, tenant = %tenant, "webhook created");
    Ok((created, secret))
}

/// A page of the tenant's webhooks matching `filter`. Its
/// `event_category` is looked up here, from the catalogue entry of its
/// `event_type`.
pub async fn list_webhooks(
    ops: &Services,
    tenant: &str,
    mut filter: WebhookFilter,
    offset: u64,
    limit: u64,
) -> OpResult<Page<Webhook>> {
    if filter.event_type.is_some() || !filter.any_event_type.is_empty() {
        let catalogue = Catalogue::load(ops.store.as_ref(), tenant).await?;
        let category = |t: &String| catalogue.get(t).map(|e| e.category.clone());
        filter.event_category = filter.event_type.as_ref().and_then(category);
        filter.any_event_category = filter.any_event_type.iter().filter_map(category).collect();
    }
    Ok(ops
        .store
        .list_webhooks(tenant, &filter, offset, limit)
        .await?)
}

/// One webhook of the tenant.
pub async fn get_webhook(ops: &Services, tenant: &str, id: i64) -> OpResult<Webhook> {
    ops.store
        .get_webhook(tenant, id)
        .await?
        .ok_or(OpError::NotFound("webhook"))
}

/// Applies `changes` to `current`, recording every invalid field in `errors`.
fn apply_changes(
    settings: &Settings,
    catalogue: &Catalogue,
    current: &Webhook,
    changes: &WebhookChanges,
    surface: SurfaceRules,
    errors: &mut ValidationErrors,
) -> Webhook {
    let mut w = current.clone();
    if let Some(n) = &changes.name {
        w.name = errors
            .check("name", rules::validate_name(n))
            .unwrap_or_default();
    }
    if let Some(u) = &changes.url {
        w.url = errors
            .check("url", rules::validate_url(u, settings.url_policy))
            .unwrap_or_default();
    }
    if let Some(e) = changes.enabled {
        w.enabled = e;
    }
    if let Some(env) = &changes.environment {
        w.environment = errors
            .check(
                "environment",
                rules::validate_environment(env, &settings.environments),
            )
            .unwrap_or_default();
    }
    if let Some(d) = &changes.description {
        w.description = match d {
            Some(d) => errors.check("description", rules::validate_description(d)),
            None => None,
        };
    }
    if changes.events.is_some() || changes.add_events.is_some() || changes.remove_events.is_some() {
        let base = changes
            .events
            .clone()
            .unwrap_or_else(|| current.events.clone());
        let events = rules::patch_events(
            &base,
            changes.remove_events.as_deref().unwrap_or_default(),
            changes.add_events.as_deref().unwrap_or_default(),
        );
        check_events(
            errors,
            catalogue,
            changes,
            &events,
            &current.events,
            surface,
        );
        w.events = events;
    }
    if changes.headers.is_some()
        || changes.add_headers.is_some()
        || changes.remove_headers.is_some()
    {
        let base = changes
            .headers
            .clone()
            .unwrap_or_else(|| current.headers.clone());
        let headers = rules::patch_headers(
            &base,
            changes.remove_headers.as_deref().unwrap_or_default(),
            &changes.add_headers.clone().unwrap_or_default(),
        );
        w.headers = errors
            .check(headers_field(changes), rules::validate_headers(&headers))
            .unwrap_or_default();
    }
    if let Some(t) = &changes.timeout {
        w.timeout_ms = errors
            .check("timeout", rules::validate_timeout(t))
            .unwrap_or_default();
    }
    if let Some(r) = &changes.rate_limit {
        w.rate_limit = r.and_then(|r| errors.check("rate_limit", rules::validate_rate_limit(r)));
    }
    if let Some(s) = &changes.retry_schedule {
        w.retry_schedule_ms = s
            .as_ref()
            .and_then(|s| errors.check("retry_schedule", rules::validate_retry_schedule(s)));
    }
    if let Some(f) = &changes.failure_handling {
        w.failure_handling = f
            .as_ref()
            .and_then(|f| validate_failure_handling(errors, f));
    }
    apply_security(
        &mut w,
        &current.security,
        &changes.security,
        settings.url_policy,
        errors,
    );
    apply_control(&mut w, &changes.control, errors);
    w
}

/// Applies validated changes to a stored webhook.
pub async fn update_webhook(
    ops: &Services,
    tenant: &str,
    id: i64,
    changes: &WebhookChanges,
    now: i64,
) -> OpResult<Webhook> {
    update_webhook_if(ops, tenant, id, changes, &|_| true, now).await
}

/// [`update_webhook`] under a surface's relaxed `surface` rules.
pub async fn update_webhook_with(
    ops: &Services,
    tenant: &str,
    id: i64,
    changes: &WebhookChanges,
    surface: SurfaceRules,
    now: i64,
) -> OpResult<Webhook> {
    update_checked(ops, tenant, id, changes, surface, &|_| true, now).await
}

/// Like [`update_webhook`], only while `unchanged` holds for the stored
/// webhook (else a conflict): the check and the write see the same row
/// version, so a form opened earlier cannot silently undo a change made
/// since.
pub async fn update_webhook_if(
    ops: &Services,
    tenant: &str,
    id: i64,
    changes: &WebhookChanges,
    unchanged: &(dyn Fn(&Webhook) -> bool + Sync),
    now: i64,
) -> OpResult<Webhook> {
    update_checked(
        ops,
        tenant,
        id,
        changes,
        SurfaceRules::default(),
        unchanged,
        now,
    )
    .await
}

async fn update_checked(
    ops: &Services,
    tenant: &str,
    id: i64,
    changes: &WebhookChanges,
    surface: SurfaceRules,
    unchanged: &(dyn Fn(&Webhook) -> bool + Sync),
    now: i64,
) -> OpResult<Webhook> {
    let catalogue = Catalogue::load(ops.store.as_ref(), tenant).await?;
    // Read-modify-write guarded by the row version; retry when another
    // change landed in between, so concurrent add/remove changes compose.
    // Each round lets at least one writer through, so the bound is only a
    // guard against a pathological storm; a short random pause spreads
    // the retries out.
    for round in 0..MAX_UPDATE_ROUNDS {
        if round > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(
                rand::random::<u64>() % 5 + 1,
            ))
            .await;
        }
        let current = get_webhook(ops, tenant, id).await?;
        if !unchanged(&current) {
            return Err(OpError::Conflict(
                "the webhook was changed since this form was opened".into(),
            ));
        }
        let mut errors = ValidationErrors::new();
        let updated = apply_changes(
            &ops.settings,
            &catalogue,
            &current,
            changes,
            surface,
            &mut errors,
        );
        errors.into_result()?;
        if updated == current {
            return Ok(current);
        }
        match ops.store.update_webhook(&updated, now).await {
            Ok(Some(w)) => {
                ops.webhook_changed(id);
                tracing::info!(webhook.id = id, tenant = %tenant, "webhook updated");
                return Ok(w);
            }
            Ok(None) => return Err(OpError::NotFound("webhook")),
            Err(StoreError::Stale) => continue,
            Err(e) => return Err(url_conflict(e)),
        }
    }
    Err(StoreError::Stale.into())
}

/// Deletes a webhook (and with it its deliveries' target).
pub async fn delete_webhook(ops: &Services, tenant: &str, id: i64, now: i64) -> OpResult<()> {
    if ops.store.delete_webhook(tenant, id, now).await? {
        ops.webhook_changed(id);
        tracing::info!(webhook.id = id, tenant = %tenant, "webhook deleted");
        Ok(())
    } else {
        Err(OpError::NotFound("webhook"))
    }
}

/// The current secret, and until when the previous one signs (if it
/// still does at `now`); for a `v1a` webhook, its public keys.
pub async fn read_secret(
    ops: &Services,
    tenant: &str,
    id: i64,
    now: i64,
) -> OpResult<WebhookSecret> {
    let webhook = get_webhook(ops, tenant, id).await?;
    if let (SignatureScheme::V1a, Some(keys)) = (
        webhook.security.signature_scheme,
        &webhook.security.signing_keys,
    ) {
        let (current, previous) = public_keys(keys, now);
        return Ok(WebhookSecret {
            scheme: SignatureScheme::V1a,
            secret: current,
            previous_expires_at: previous.as_ref().map(|(_, until)| *until),
            previous_public_key: previous.map(|(k, _)| k),
        });
    }
    let secrets = ops
        .store
        .get_webhook_secrets(tenant, id)
        .await?
        .ok_or(OpError::NotFound("webhook"))?;
    Ok(WebhookSecret {
        scheme: SignatureScheme::V1,
        secret: secrets.current,
        previous_expires_at: secrets
            .previous
            .filter(|(_, until)| *until > now)
            .map(|(_, until)| until),
        previous_public_key: None,
    })
}

/// Replaces the secret (a generated one unless `given`); the old one
/// keeps signing for 24 hours. A `v1a` webhook gets a new Ed25519 key
/// instead (never a given one), with the same overlap.
pub async fn rotate_secret(
    ops: &Services,
    tenant: &str,
    id: i64,
    given: Option<String>,
    now: i64,
) -> OpResult<WebhookSecret> {
    let webhook = get_webhook(ops, tenant, id).await?;
    if webhook.security.signature_scheme == SignatureScheme::V1a {
        if given.is_some() {
            return Err(OpError::field(
                "secret",
                "a v1a webhook signs with an Ed25519 key hookd makes; no secret can be given",
            ));
        }
        return rotate_signing_key(ops, tenant, id, now).await;
    }
    let mut errors = ValidationErrors::new();
    let secret = validate_secret(&mut errors, given);
    errors.into_result()?;
    let secret = secret.expect("validated above");
    let until = now + PREVIOUS_SECRET_GRACE_MS;
    if !ops
        .store
        .rotate_webhook_secret(tenant, id, &secret, until, now)
        .await?
    {
        return Err(OpError::NotFound("webhook"));
    }
    ops.webhook_changed(id);
    tracing::info!(webhook.id = id, tenant = %tenant, "webhook secret rotated");
    Ok(WebhookSecret {
        scheme: SignatureScheme::V1,
        secret,
        previous_expires_at: Some(until),
        previous_public_key: None,
    })
}

/// A new Ed25519 key for a `v1a` webhook; the old one keeps signing for
/// the same 24 hours as a rotated-out secret.
async fn rotate_signing_key(
    ops: &Services,
    tenant: &str,
    id: i64,
    now: i64,
) -> OpResult<WebhookSecret> {
    let until = now + PREVIOUS_SECRET_GRACE_MS;
    for _ in 0..MAX_UPDATE_ROUNDS {
        let mut w = get_webhook(ops, tenant, id).await?;
        let Some(keys) = &w.security.signing_keys else {
            return Err(OpError::Conflict(
                "the webhook no longer signs with v1a".into(),
            ));
        };
        w.security.signing_keys = Some(rotated(keys, until));
        match ops.store.update_webhook(&w, now).await {
            Ok(Some(w)) => {
                ops.webhook_changed(id);
                tracing::info!(webhook.id = id, tenant = %tenant, "webhook signing key rotated");
                let keys = w.security.signing_keys.as_ref().expect("written above");
                let (current, previous) = public_keys(keys, now);
                return Ok(WebhookSecret {
                    scheme: SignatureScheme::V1a,
                    secret: current,
                    previous_expires_at: Some(until),
                    previous_public_key: previous.map(|(k, _)| k),
                });
            }
            Ok(None) => return Err(OpError::NotFound("webhook")),
            Err(StoreError::Stale) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Stale.into())
}

/// Lifts a suspension: deliveries go out again.
pub async fn unsuspend_webhook(
    ops: &Services,
    tenant: &str,
    id: i64,
    now: i64,
) -> OpResult<Webhook> {
    let w = ops
        .store
        .set_webhook_suspended(tenant, id, false, now)
        .await?
        .ok_or(OpError::NotFound("webhook"))?;
    ops.webhook_changed(id);
    tracing::info!(webhook.id = id, tenant = %tenant, "webhook unsuspended");
    Ok(w)
}
