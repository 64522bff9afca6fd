//! `/management/webhooks`: create, list, read, change, delete, secrets,
//! unsuspend.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiJson, ApiPath, Auth, MaybeJson, Params};
use crate::catalogue::Catalogue;
use crate::clock::format_rfc3339;
use crate::crypto::{generate_webhook_secret, webhook_secret_bytes};
use crate::domain::ValidationErrors;
use crate::domain::api_key::Permission;
use crate::domain::duration::format_duration_ms;
use crate::domain::webhook::{self as rules, FailureHandling, Headers, Webhook};
use crate::store::{StoreError, WebhookFilter};

/// Attempts of a PATCH that keeps meeting concurrent changes before 409.
const MAX_PATCH_ROUNDS: usize = 50;

/// How long a rotated-out secret keeps signing.
const PREVIOUS_SECRET_GRACE_MS: i64 = 24 * 3_600_000;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailureHandlingIn {
    /// Failed attempts before the webhook may be suspended.
    pub min_failures: i64,
    /// Time without a success before suspension, e.g. `5d`.
    pub suspend_after: String,
}

/// A new webhook.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookIn {
    #[schema(example = "audit-sync")]
    pub name: String,
    #[schema(example = "https://example.com/hooks/license")]
    pub url: String,
    /// Event types or `category.*` wildcards.
    #[schema(example = json!(["license.generated", "license.revoked"]))]
    pub events: Vec<String>,
    pub enabled: Option<bool>,
    /// Default `production`.
    pub environment: Option<String>,
    pub description: Option<String>,
    pub headers: Option<Headers>,
    /// e.g. `500ms`, `10s`; `0s` means the default (10 s); at most 20 s.
    pub timeout: Option<String>,
    /// Deliveries per second; unlimited when absent.
    pub rate_limit: Option<i64>,
    /// Delays before each retry; `[]` means a single attempt.
    pub retry_schedule: Option<Vec<String>>,
    pub failure_handling: Option<FailureHandlingIn>,
    /// A `whsec_` secret to use instead of a generated one.
    pub secret: Option<String>,
}

/// Changes to a webhook: only the fields given change. `null` resets
/// `description`, `rate_limit`, `retry_schedule` and `failure_handling`.
/// The add/remove forms apply removals first, then additions.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    pub name: Option<String>,
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
    pub environment: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    pub headers: Option<Headers>,
    pub timeout: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    pub rate_limit: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>)]
    pub retry_schedule: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<FailureHandlingIn>)]
    pub failure_handling: Option<Option<FailureHandlingIn>>,
    pub add_events: Option<Vec<String>>,
    pub remove_events: Option<Vec<String>>,
    pub add_headers: Option<Headers>,
    pub remove_headers: Option<Vec<String>>,
}

/// Tells "absent" (`None`) from "null" (`Some(None)`).
fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FailureHandlingOut {
    pub min_failures: u32,
    pub suspend_after: String,
}

/// A webhook as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookOut {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    /// RFC 3339 UTC.
    pub created_at: String,
    pub updated_at: String,
    pub environment: String,
    pub description: Option<String>,
    pub headers: Headers,
    /// `0s` means the service default.
    pub timeout: String,
    pub rate_limit: Option<u32>,
    /// `null` means the service default schedule.
    pub retry_schedule: Option<Vec<String>>,
    /// `null` means the service defaults.
    pub failure_handling: Option<FailureHandlingOut>,
    pub suspended: bool,
    pub suspended_at: Option<String>,
    /// The signing secret: in the create answer only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<Webhook> for WebhookOut {
    fn from(w: Webhook) -> Self {
        Self {
            id: w.id,
            name: w.name,
            url: w.url,
            events: w.events,
            enabled: w.enabled,
            created_at: format_rfc3339(w.created_at),
            updated_at: format_rfc3339(w.updated_at),
            environment: w.environment,
            description: w.description,
            headers: w.headers,
            timeout: format_duration_ms(w.timeout_ms),
            rate_limit: w.rate_limit,
            retry_schedule: w
                .retry_schedule_ms
                .map(|s| s.into_iter().map(format_duration_ms).collect()),
            failure_handling: w.failure_handling.map(|f| FailureHandlingOut {
                min_failures: f.min_failures,
                suspend_after: format_duration_ms(f.suspend_after_ms),
            }),
            suspended: w.suspended,
            suspended_at: w.suspended_at.map(format_rfc3339),
            secret: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub data: Vec<WebhookOut>,
    pub total: u64,
    pub offset: u64,
    pub limit: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecretOut {
    /// The current signing secret (`whsec_…`).
    pub secret: String,
    /// Until when the previous secret also signs, if one does.
    pub previous_secret_expires_at: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretIn {
    /// A `whsec_` secret to use instead of a generated one.
    pub secret: Option<String>,
}

fn validate_failure_handling(
    errors: &mut ValidationErrors,
    f: &FailureHandlingIn,
) -> Option<FailureHandling> {
    errors.check(
        "failure_handling",
        rules::validate_failure_handling(f.min_failures, &f.suspend_after),
    )
}

fn validate_secret(errors: &mut ValidationErrors, secret: &Option<String>) -> Option<String> {
    match secret {
        None => Some(generate_webhook_secret()),
        Some(s) => errors.check("secret", webhook_secret_bytes(s).map(|_| s.clone())),
    }
}

/// Checks subscriptions against the catalogue. Only `new` ones must be
/// live: existing subscriptions to an archived type keep working.
fn check_events(
    errors: &mut ValidationErrors,
    catalogue: &Catalogue,
    new: &[String],
    existing: &[String],
) {
    match rules::validate_events_syntax(new) {
        Err(m) => errors.add("events", m),
        Ok(events) => {
            let unknown = catalogue.unknown(events.iter().filter(|e| !existing.contains(e)));
            if !unknown.is_empty() {
                errors.add(
                    "events",
                    format!("unsupported event types: {}", unknown.join(", ")),
                );
            }
        }
    }
}

fn url_conflict(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(_) => ApiError::field(
            "url",
            "a webhook with this URL already exists in this tenant",
        ),
        other => other.into(),
    }
}

#[utoipa::path(
    post, path = "/management/webhooks", tag = "webhooks",
    request_body = WebhookIn,
    responses(
        (status = 201, description = "Created; `secret` is shown here only", body = WebhookOut),
        (status = 400, description = "Invalid field", body = Problem),
        (status = 401, description = "Missing or invalid key", body = Problem),
        (status = 403, description = "Key lacks webhooks:write", body = Problem),
        (status = 413, description = "Body too large", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn create_webhook(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(input): ApiJson<WebhookIn>,
) -> ApiResult<Response> {
    let tenant = auth.require(Permission::WebhooksWrite)?;
    let (created, secret) = create(&state, tenant, input).await?;
    let location = format!("/management/webhooks/{}", created.id);
    let mut out = WebhookOut::from(created);
    out.secret = Some(secret);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(out),
    )
        .into_response())
}

/// Validates and stores a new webhook; answers it with its secret.
pub(crate) async fn create(
    state: &AppState,
    tenant: &str,
    input: WebhookIn,
) -> ApiResult<(Webhook, String)> {
    let catalogue = Catalogue::load(state.store.as_ref(), tenant).await?;
    let mut errors = ValidationErrors::new();
    let secret = validate_secret(&mut errors, &input.secret);
    // A new webhook is a blank one with every given field patched in.
    let blank = Webhook {
        id: 0,
        tenant_id: tenant.to_owned(),
        name: String::new(),
        url: String::new(),
        events: Vec::new(),
        enabled: true,
        environment: state.settings.default_environment().to_owned(),
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
    };
    let patch = WebhookPatch {
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
        ..WebhookPatch::default()
    };
    let draft = apply_patch(state, &catalogue, &blank, &patch, &mut errors);
    errors.into_result()?;
    let secret = secret.expect("a secret error was reported above");
    let created = state
        .store
        .create_webhook(&draft, &secret, state.clock.now_ms())
        .await
        .map_err(url_conflict)?;
    tracing::info!(webhook.id = created.id, tenant = %tenant, "webhook created");
    Ok((created, secret))
}

#[utoipa::path(
    get, path = "/management/webhooks", tag = "webhooks",
    params(
        ("q" = Option<String>, Query, description = "Substring of name or URL, ignoring case"),
        ("environment" = Option<String>, Query),
        ("enabled" = Option<bool>, Query),
        ("suspended" = Option<bool>, Query),
        ("event_type" = Option<String>, Query, description = "Webhooks receiving this type"),
        ("offset" = Option<u64>, Query),
        ("limit" = Option<u64>, Query, description = "1–500, default 50"),
    ),
    responses(
        (status = 200, body = WebhookList),
        (status = 400, body = Problem),
        (status = 401, body = Problem),
        (status = 403, body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn list_webhooks(
    State(state): State<AppState>,
    auth: Auth,
    params: Params,
) -> ApiResult<Json<WebhookList>> {
    let tenant = auth.require(Permission::WebhooksList)?;
    let (offset, limit) = params.page()?;
    let event_type = params.string("event_type");
    let event_category = match &event_type {
        Some(t) => Catalogue::load(state.store.as_ref(), tenant)
            .await?
            .get(t)
            .map(|e| e.category.clone()),
        None => None,
    };
    let filter = WebhookFilter {
        q: params.string("q"),
        environment: params.string("environment"),
        enabled: params.bool("enabled")?,
        suspended: params.bool("suspended")?,
        event_type,
        event_category,
    };
    let page = state
        .store
        .list_webhooks(tenant, &filter, offset, limit)
        .await?;
    Ok(Json(WebhookList {
        data: page.items.into_iter().map(WebhookOut::from).collect(),
        total: page.total,
        offset,
        limit,
    }))
}

pub(crate) async fn load(state: &AppState, tenant: &str, id: i64) -> ApiResult<Webhook> {
    state
        .store
        .get_webhook(tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))
}

#[utoipa::path(
    get, path = "/management/webhooks/{id}", tag = "webhooks",
    params(("id" = i64, Path)),
    responses((status = 200, body = WebhookOut), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn get_webhook(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<WebhookOut>> {
    let tenant = auth.require(Permission::WebhooksRead)?;
    Ok(Json(load(&state, tenant, id).await?.into()))
}

/// Applies a patch to `current`, recording every invalid field in `errors`.
fn apply_patch(
    state: &AppState,
    catalogue: &Catalogue,
    current: &Webhook,
    patch: &WebhookPatch,
    errors: &mut ValidationErrors,
) -> Webhook {
    let settings = &state.settings;
    let mut w = current.clone();
    if let Some(n) = &patch.name {
        w.name = errors
            .check("name", rules::validate_name(n))
            .unwrap_or_default();
    }
    if let Some(u) = &patch.url {
        w.url = errors
            .check("url", rules::validate_url(u, settings.url_policy))
            .unwrap_or_default();
    }
    if let Some(e) = patch.enabled {
        w.enabled = e;
    }
    if let Some(env) = &patch.environment {
        w.environment = errors
            .check(
                "environment",
                rules::validate_environment(env, &settings.environments),
            )
            .unwrap_or_default();
    }
    if let Some(d) = &patch.description {
        w.description = match d {
            Some(d) => errors.check("description", rules::validate_description(d)),
            None => None,
        };
    }
    if patch.events.is_some() || patch.add_events.is_some() || patch.remove_events.is_some() {
        let base = patch
            .events
            .clone()
            .unwrap_or_else(|| current.events.clone());
        let events = rules::patch_events(
            &base,
            patch.remove_events.as_deref().unwrap_or_default(),
            patch.add_events.as_deref().unwrap_or_default(),
        );
        check_events(errors, catalogue, &events, &current.events);
        w.events = events;
    }
    if patch.headers.is_some() || patch.add_headers.is_some() || patch.remove_headers.is_some() {
        let base = patch
            .headers
            .clone()
            .unwrap_or_else(|| current.headers.clone());
        let headers = rules::patch_headers(
            &base,
            patch.remove_headers.as_deref().unwrap_or_default(),
            &patch.add_headers.clone().unwrap_or_default(),
        );
        w.headers = errors
            .check("headers", rules::validate_headers(&headers))
            .unwrap_or_default();
    }
    if let Some(t) = &patch.timeout {
        w.timeout_ms = errors
            .check("timeout", rules::validate_timeout(t))
            .unwrap_or_default();
    }
    if let Some(r) = &patch.rate_limit {
        w.rate_limit = r.and_then(|r| errors.check("rate_limit", rules::validate_rate_limit(r)));
    }
    if let Some(s) = &patch.retry_schedule {
        w.retry_schedule_ms = s
            .as_ref()
            .and_then(|s| errors.check("retry_schedule", rules::validate_retry_schedule(s)));
    }
    if let Some(f) = &patch.failure_handling {
        w.failure_handling = f
            .as_ref()
            .and_then(|f| validate_failure_handling(errors, f));
    }
    w
}

#[utoipa::path(
    patch, path = "/management/webhooks/{id}", tag = "webhooks",
    params(("id" = i64, Path)),
    request_body = WebhookPatch,
    responses((status = 200, body = WebhookOut), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn update_webhook(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(patch): ApiJson<WebhookPatch>,
) -> ApiResult<Json<WebhookOut>> {
    let tenant = auth.require(Permission::WebhooksWrite)?;
    Ok(Json(update(&state, tenant, id, &patch).await?.into()))
}

/// Applies a validated patch to a stored webhook.
pub(crate) async fn update(
    state: &AppState,
    tenant: &str,
    id: i64,
    patch: &WebhookPatch,
) -> ApiResult<Webhook> {
    update_if(state, tenant, id, patch, &|_| true).await
}

/// Like [`update`], only while `unchanged` holds for the stored webhook
/// (else 409): the check and the write see the same row version, so a form
/// opened earlier cannot silently undo a change made since.
pub(crate) async fn update_if(
    state: &AppState,
    tenant: &str,
    id: i64,
    patch: &WebhookPatch,
    unchanged: &(dyn Fn(&Webhook) -> bool + Sync),
) -> ApiResult<Webhook> {
    let catalogue = Catalogue::load(state.store.as_ref(), tenant).await?;
    // Read-modify-write guarded by the row version; retry when another
    // change landed in between, so concurrent add/remove patches compose.
    // Each round lets at least one writer through, so the bound is only a
    // guard against a pathological storm; a short random pause spreads
    // the retries out.
    for round in 0..MAX_PATCH_ROUNDS {
        if round > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(
                rand::random::<u64>() % 5 + 1,
            ))
            .await;
        }
        let current = load(state, tenant, id).await?;
        if !unchanged(&current) {
            return Err(ApiError::conflict(
                "the webhook was changed since this form was opened",
            ));
        }
        let mut errors = ValidationErrors::new();
        let updated = apply_patch(state, &catalogue, &current, patch, &mut errors);
        errors.into_result()?;
        if updated == current {
            return Ok(current);
        }
        match state
            .store
            .update_webhook(&updated, state.clock.now_ms())
            .await
        {
            Ok(Some(w)) => {
                state.webhook_changed(id);
                tracing::info!(webhook.id = id, tenant = %tenant, "webhook updated");
                return Ok(w);
            }
            Ok(None) => return Err(ApiError::not_found("webhook")),
            Err(StoreError::Stale) => continue,
            Err(e) => return Err(url_conflict(e)),
        }
    }
    Err(StoreError::Stale.into())
}

#[utoipa::path(
    delete, path = "/management/webhooks/{id}", tag = "webhooks",
    params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn delete_webhook(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let tenant = auth.require(Permission::WebhooksWrite)?;
    delete(&state, tenant, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn delete(state: &AppState, tenant: &str, id: i64) -> ApiResult<()> {
    if state.store.delete_webhook(tenant, id).await? {
        state.webhook_changed(id);
        tracing::info!(webhook.id = id, tenant = %tenant, "webhook deleted");
        Ok(())
    } else {
        Err(ApiError::not_found("webhook"))
    }
}

#[utoipa::path(
    get, path = "/management/webhooks/{id}/secret", tag = "webhooks",
    description = "The signing secret (and until when the previous one still signs). Needs webhooks:write: a secret lets its holder forge deliveries.",
    params(("id" = i64, Path)),
    responses((status = 200, body = SecretOut), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn get_webhook_secret(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<SecretOut>> {
    let tenant = auth.require(Permission::WebhooksWrite)?;
    Ok(Json(secret(&state, tenant, id).await?))
}

/// The current secret, and until when the previous one signs.
pub(crate) async fn secret(state: &AppState, tenant: &str, id: i64) -> ApiResult<SecretOut> {
    let secrets = state
        .store
        .get_webhook_secrets(tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    let now = state.clock.now_ms();
    Ok(SecretOut {
        secret: secrets.current,
        previous_secret_expires_at: secrets
            .previous
            .filter(|(_, until)| *until > now)
            .map(|(_, until)| format_rfc3339(until)),
    })
}

#[utoipa::path(
    post, path = "/management/webhooks/{id}/secret/rotate", tag = "webhooks",
    description = "Replaces the secret; the old one keeps signing alongside for 24 hours.",
    params(("id" = i64, Path)),
    request_body(content = Option<RotateSecretIn>),
    responses((status = 200, body = SecretOut), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    MaybeJson(input): MaybeJson<RotateSecretIn>,
) -> ApiResult<Json<SecretOut>> {
    let tenant = auth.require(Permission::WebhooksWrite)?;
    Ok(Json(rotate_secret(&state, tenant, id, input.secret).await?))
}

/// Replaces the secret (a generated one unless `given`); the old one
/// keeps signing for the grace period.
pub(crate) async fn rotate_secret(
    state: &AppState,
    tenant: &str,
    id: i64,
    given: Option<String>,
) -> ApiResult<SecretOut> {
    let mut errors = ValidationErrors::new();
    let secret = validate_secret(&mut errors, &given);
    errors.into_result()?;
    let secret = secret.expect("validated above");
    let now = state.clock.now_ms();
    let until = now + PREVIOUS_SECRET_GRACE_MS;
    if !state
        .store
        .rotate_webhook_secret(tenant, id, &secret, until, now)
        .await?
    {
        return Err(ApiError::not_found("webhook"));
    }
    state.webhook_changed(id);
    tracing::info!(webhook.id = id, tenant = %tenant, "webhook secret rotated");
    Ok(SecretOut {
        secret,
        previous_secret_expires_at: Some(format_rfc3339(until)),
    })
}

#[utoipa::path(
    post, path = "/management/webhooks/{id}/unsuspend", tag = "webhooks",
    params(("id" = i64, Path)),
    responses((status = 200, body = WebhookOut), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn unsuspend_webhook(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<WebhookOut>> {
    let tenant = auth.require(Permission::WebhooksWrite)?;
    Ok(Json(unsuspend(&state, tenant, id).await?.into()))
}

pub(crate) async fn unsuspend(state: &AppState, tenant: &str, id: i64) -> ApiResult<Webhook> {
    let w = state
        .store
        .set_webhook_suspended(tenant, id, false, state.clock.now_ms())
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    state.webhook_changed(id);
    tracing::info!(webhook.id = id, tenant = %tenant, "webhook unsuspended");
    Ok(w)
}
