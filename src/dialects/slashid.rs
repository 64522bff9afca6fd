//! Seed 003's webhook API: `/organizations/webhooks` — create (201), list,
//! get, PATCH, delete `…/{webhook_id}`, and a webhook's triggers
//! (`…/{webhook_id}/triggers`: list, add, remove).
//!
//! `SlashID-OrgID` names the tenant as written (tenant ids are compared
//! exactly on every surface); the key comes in `SlashID-API-Key`, or as
//! §2's bearer.
//! A webhook's `id` is hookd's id in decimal (the document gives no
//! format). A trigger is `{trigger_type: "event", trigger_name}`, one of
//! the webhook's event types; a webhook may exist without triggers.
//!
//! The document's own rules, applied here as pure functions before the
//! operation's: the target URL under the strict policy whatever the
//! service's (`https`, a host that is neither `localhost` nor an IP, no
//! query or fragment), `timeout` a Go duration 0 ≤ t ≤ 20 s (unset shows
//! `"0s"`), and the `SlashID-Required-Consistency(-Timeout)` headers
//! (validated; one region meets either level at once). Answers are
//! `{"result": …}`; errors `{"errors": [{"httpcode", "message"}]}`, made
//! in one place (`IntoResponse for SlashIdError`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    Query, Refusal, Shown, bearer, decimal_id, header, principal_for, read_json, require,
    tenant_named,
};
use crate::domain::api_key::Permission;
use crate::domain::webhook::{Headers, MAX_TIMEOUT_MS, UrlPolicy, Webhook, validate_url};
use crate::ops::OpError;
use crate::ops::webhooks::{self as ops, NewWebhook, SurfaceRules, WebhookChanges};
use crate::state::AppState;
use crate::store::WebhookFilter;
use crate::throttle::{Client, ClientId};

pub const TAG: &str = "seed-003-slashid";

/// The most webhooks one list answer holds (the document has no paging).
const LIST_LIMIT: u64 = 10_000;

/// The only trigger type hookd has: an event (no synchronous hooks).
const EVENT_TRIGGER: &str = "event";

/// This surface's relaxation: a webhook is created without triggers.
const RULES: SurfaceRules = SurfaceRules {
    events_may_be_empty: true,
};

/// A new webhook.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = SlashIdWebhookCreateRequest)]
#[serde(deny_unknown_fields)]
pub struct WebhookCreateRequest {
    /// Human-readable name; need not be unique.
    pub name: String,
    pub description: Option<String>,
    /// https, a host that is not `localhost` nor an IP address, no query
    /// or fragment; unique in the organization.
    #[schema(example = "https://example.com/slashid/webhook")]
    pub target_url: String,
    /// Sent with every request to the webhook; encrypted at rest.
    #[schema(example = json!({"X-Extra-Header": ["value"]}))]
    pub custom_headers: Option<Headers>,
    /// A Go `time.Duration`, 0 to 20 s; `"0s"` or unset: the default.
    #[schema(example = "10s")]
    pub timeout: Option<String>,
}

/// Changes to a webhook: only the fields given change; `custom_headers`
/// replaces the webhook's headers.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = SlashIdWebhookUpdateRequest)]
#[serde(deny_unknown_fields)]
pub struct WebhookUpdateRequest {
    pub name: Option<String>,
    pub description: Option<String>,
    pub target_url: Option<String>,
    pub custom_headers: Option<Headers>,
    pub timeout: Option<String>,
}

/// A webhook.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SlashIdWebhookResponse)]
pub struct WebhookResponse {
    /// hookd's id, in decimal.
    #[schema(example = "42")]
    pub id: String,
    pub name: String,
    /// Empty when none was given.
    pub description: String,
    pub target_url: String,
    pub custom_headers: Headers,
    /// A Go duration; `"0s"`: the default.
    #[schema(example = "0s")]
    pub timeout: String,
}

/// What calls a webhook.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[schema(as = SlashIdTrigger)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// `event` (hookd has no synchronous hooks).
    #[schema(example = "event")]
    pub trigger_type: String,
    /// An event type of the catalogue, or a `category.*` wildcard.
    #[schema(example = "license.created")]
    pub trigger_name: String,
}

/// `{"result": …}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SlashIdWebhookEnvelope)]
pub struct WebhookEnvelope {
    pub result: WebhookResponse,
}

/// `{"meta": {"pagination": …}, "result": […]}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SlashIdWebhookListEnvelope)]
pub struct WebhookListEnvelope {
    pub meta: Meta,
    pub result: Vec<WebhookResponse>,
}

/// The envelope's `meta` of a list (the document's schema).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SlashIdMeta)]
pub struct Meta {
    pub pagination: Pagination,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SlashIdPagination)]
pub struct Pagination {
    /// How many were returned.
    pub limit: u64,
    pub offset: u64,
    /// How many the organization has.
    pub total_count: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SlashIdTriggerListEnvelope)]
pub struct TriggerListEnvelope {
    pub result: Vec<Trigger>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SlashIdErrorItem {
    /// The HTTP status.
    pub httpcode: u16,
    /// What is wrong, the field named.
    pub message: String,
}

/// This API's error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlashIdErrorBody {
    pub errors: Vec<SlashIdErrorItem>,
}

/// A refusal in this API's shape.
#[derive(Debug)]
pub struct SlashIdError(Refusal);

impl From<Refusal> for SlashIdError {
    fn from(e: Refusal) -> Self {
        SlashIdError(e)
    }
}

impl From<OpError> for SlashIdError {
    fn from(e: OpError) -> Self {
        SlashIdError(e.into())
    }
}

/// hookd's field names as this API names them.
fn field_name(field: &str) -> String {
    match field {
        "url" => "target_url",
        "headers" => "custom_headers",
        "events" | "add_events" => "trigger_name",
        "add_headers" => "custom_headers",
        other => other,
    }
    .to_owned()
}

/// The one place a refusal becomes this API's answer: one error per
/// field at fault, else one with the message.
impl IntoResponse for SlashIdError {
    fn into_response(self) -> Response {
        let shown = Shown::of(self.0, field_name);
        let httpcode = shown.status.as_u16();
        let errors = if shown.fields.is_empty() {
            vec![SlashIdErrorItem {
                httpcode,
                message: shown.message.clone(),
            }]
        } else {
            shown
                .fields
                .iter()
                .map(|(f, m)| SlashIdErrorItem {
                    httpcode,
                    message: format!("{f}: {m}"),
                })
                .collect()
        };
        let mut resp = (shown.status, Json(SlashIdErrorBody { errors })).into_response();
        shown.add_headers(&mut resp);
        resp
    }
}

type Answer<T> = Result<T, SlashIdError>;

/// A Go `time.Duration` string (`"500ms"`, `"1.5s"`, `"1m30s"`, `"-2s"`,
/// `"0"`) in nanoseconds.
pub fn parse_go_duration(s: &str) -> Result<i128, String> {
    let bad = || format!("{s:?} is not a Go duration such as \"500ms\", \"1.5s\" or \"10s\"");
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    // Far beyond any timeout; keeps the arithmetic exact.
    const LIMIT: i128 = 1 << 100;
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int, after) = rest.split_at(int_len);
        let (frac, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.bytes().take_while(u8::is_ascii_digit).count();
                a.split_at(n)
            }
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(bad());
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit_ns: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        let digits = |d: &str| -> Result<i128, String> {
            if d.len() > 30 {
                return Err(bad());
            }
            Ok(d.parse::<i128>().unwrap_or(0))
        };
        let mut part = digits(int)?.checked_mul(unit_ns).ok_or_else(bad)?;
        if !frac.is_empty() {
            // Digits beyond a nanosecond of an hour change nothing.
            let frac = &frac[..frac.len().min(18)];
            part += digits(frac)? * unit_ns / 10i128.pow(frac.len() as u32);
        }
        total = total.checked_add(part).ok_or_else(bad)?;
        if total > LIMIT {
            return Err(bad());
        }
        rest = after;
    }
    Ok(if negative { -total } else { total })
}

/// The document's timeout rule: a Go duration, not negative, at most
/// 20 s; hookd keeps milliseconds, so a finer one is refused.
pub fn timeout_ms(s: &str) -> Result<u64, String> {
    let ns = parse_go_duration(s)?;
    if ns < 0 {
        return Err("cannot be negative".into());
    }
    if ns > i128::from(MAX_TIMEOUT_MS) * 1_000_000 {
        return Err("may not be more than 20 seconds".into());
    }
    if ns % 1_000_000 != 0 {
        return Err("must be a whole number of milliseconds".into());
    }
    Ok((ns / 1_000_000) as u64)
}

/// Milliseconds as Go's `Duration.String()` shows them: `0s`, `500ms`,
/// `1.5s`, `20s`, `1m30s`.
pub fn format_go_duration(ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1_000 {
        return format!("{ms}ms");
    }
    let (h, rem) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rem) = (rem / 60_000, rem % 60_000);
    let (s, frac) = (rem / 1_000, rem % 1_000);
    let secs = if frac == 0 {
        format!("{s}s")
    } else {
        let f = format!("{frac:03}");
        format!("{s}.{}s", f.trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

/// The document's URL rule, whatever the service's policy: hookd's strict
/// policy (https, a host that is not `localhost` nor an IP address, no
/// query or fragment).
pub fn check_target_url(url: &str) -> Result<(), String> {
    // hookd's own rule (a written host, §14) with the strict policy.
    validate_url(url, UrlPolicy::Strict)
        .map(|_| ())
        .map_err(|m| m.replace(" (the URL policy is strict)", ""))
}

/// `SlashID-Required-Consistency`: `local_region` or `all_regions`.
pub fn check_consistency(value: Option<&str>) -> Result<(), String> {
    match value {
        None | Some("local_region") | Some("all_regions") => Ok(()),
        Some(v) => Err(format!(
            "{v:?} is not a consistency level; expected local_region or all_regions"
        )),
    }
}

/// `SlashID-Required-Consistency-Timeout`: an integer of seconds, 1 to 120.
pub fn check_consistency_timeout(value: Option<&str>) -> Result<(), String> {
    match value {
        None => Ok(()),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=120).contains(&n) => Ok(()),
            _ => Err(format!("{v:?} must be an integer between 1 and 120")),
        },
    }
}

/// The tenant `SlashID-OrgID` names, as written.
pub fn tenant_of_org(org: &str) -> Result<String, Refusal> {
    tenant_named(org, "SlashID-OrgID")
}

/// Who calls, on which organization: 401 without a known key, 400 without
/// `SlashID-OrgID` or with a bad consistency header, 404 for another
/// tenant's key, 403 without `permission`. The consistency asked for is
/// met as soon as the request is done: hookd runs in one region.
async fn tenant_for(
    state: &AppState,
    client: Option<ClientId>,
    headers: &HeaderMap,
    permission: Permission,
) -> Result<String, Refusal> {
    let key = header(headers, "slashid-api-key")
        .or_else(|| bearer(headers))
        .ok_or(Refusal::Unauthenticated(
            "an API key is required: send SlashID-API-Key",
        ))?;
    let org = header(headers, "slashid-orgid")
        .ok_or_else(|| Refusal::malformed("SlashID-OrgID", "is required"))?;
    let tenant = tenant_of_org(org)?;
    let principal = principal_for(state, client, Some(key), &tenant, "organization").await?;
    require(&principal, permission)?;
    let raw = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    check_consistency(raw("slashid-required-consistency"))
        .map_err(|m| Refusal::malformed("SlashID-Required-Consistency", m))?;
    check_consistency_timeout(raw("slashid-required-consistency-timeout"))
        .map_err(|m| Refusal::malformed("SlashID-Required-Consistency-Timeout", m))?;
    Ok(tenant)
}

fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, Refusal> {
    p.map(|Path(v)| v)
        .map_err(|e| Refusal::malformed("webhook_id", e.body_text()))
}

fn webhook_id(s: &str) -> Result<i64, Refusal> {
    decimal_id(s).ok_or(Refusal::Op(OpError::NotFound("webhook")))
}

/// The document's timeout as hookd's (`"…ms"`), or a 400 naming it.
fn timeout(t: Option<String>) -> Result<Option<String>, Refusal> {
    t.map(|t| {
        timeout_ms(&t)
            .map(|ms| format!("{ms}ms"))
            .map_err(|m| Refusal::malformed("timeout", m))
    })
    .transpose()
}

fn target_url(u: &str) -> Result<(), Refusal> {
    check_target_url(u).map_err(|m| Refusal::malformed("target_url", m))
}

impl From<Webhook> for WebhookResponse {
    fn from(w: Webhook) -> Self {
        WebhookResponse {
            id: w.id.to_string(),
            name: w.name,
            description: w.description.unwrap_or_default(),
            target_url: w.url,
            custom_headers: w.headers,
            timeout: format_go_duration(w.timeout_ms),
        }
    }
}

#[utoipa::path(
    post, path = "/organizations/webhooks", tag = TAG,
    description = "Creates a webhook without triggers; add them through `…/{webhook_id}/triggers`.",
    params(
        ("SlashID-OrgID" = String, Header, description = "The organization (the tenant)"),
        ("SlashID-Required-Consistency" = Option<String>, Header, description = "`local_region` (default) or `all_regions`; met at once"),
        ("SlashID-Required-Consistency-Timeout" = Option<u32>, Header, description = "1 to 120 seconds"),
    ),
    request_body = WebhookCreateRequest,
    responses(
        (status = 201, body = WebhookEnvelope),
        (status = 400, body = SlashIdErrorBody),
        (status = 401, body = SlashIdErrorBody),
        (status = 403, body = SlashIdErrorBody),
        (status = 404, body = SlashIdErrorBody),
    ),
    security(("slashid_api_key" = []), ("bearer" = []))
)]
pub async fn create_webhook(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer<(StatusCode, Json<WebhookEnvelope>)> {
    let tenant = tenant_for(&state, client, &headers, Permission::WebhooksWrite).await?;
    let input: WebhookCreateRequest = read_json(body, &state)?;
    target_url(&input.target_url)?;
    let new = NewWebhook {
        name: input.name,
        url: input.target_url,
        events: Vec::new(),
        description: input.description,
        headers: input.custom_headers,
        timeout: timeout(input.timeout)?,
        ..NewWebhook::default()
    };
    let now = state.clock.now_ms();
    let (created, _secret) = ops::create_webhook_with(&state.ops, &tenant, new, RULES, now).await?;
    Ok((
        StatusCode::CREATED,
        Json(WebhookEnvelope {
            result: created.into(),
        }),
    ))
}

#[utoipa::path(
    get, path = "/organizations/webhooks", tag = TAG,
    params(("SlashID-OrgID" = String, Header, description = "The organization (the tenant)")),
    responses(
        (status = 200, body = WebhookListEnvelope),
        (status = 400, body = SlashIdErrorBody),
        (status = 401, body = SlashIdErrorBody),
        (status = 403, body = SlashIdErrorBody),
        (status = 404, body = SlashIdErrorBody),
    ),
    security(("slashid_api_key" = []), ("bearer" = []))
)]
pub async fn list_webhooks(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
) -> Answer<Json<WebhookListEnvelope>> {
    let tenant = tenant_for(&state, client, &headers, Permission::WebhooksList).await?;
    let page =
        ops::list_webhooks(&state.ops, &tenant, WebhookFilter::default(), 0, LIST_LIMIT).await?;
    Ok(Json(WebhookListEnvelope {
        meta: Meta {
            pagination: Pagination {
                limit: page.items.len() as u64,
                offset: 0,
                total_count: page.total,
            },
        },
        result: page.items.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(
    get, path = "/organizations/webhooks/{webhook_id}", tag = TAG,
    params(
        ("webhook_id" = String, Path),
        ("SlashID-OrgID" = String, Header, description = "The organization (the tenant)"),
    ),
    responses(
        (status = 200, body = WebhookEnvelope),
        (status = 400, body = SlashIdErrorBody),
        (status = 401, body = SlashIdErrorBody),
        (status = 403, body = SlashIdErrorBody),
        (status = 404, body = SlashIdErrorBody),
    ),
    security(("slashid_api_key" = []), ("bearer" = []))
)]
pub async fn get_webhook(
    State(state): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    Client(client): Client,
    headers: HeaderMap,
) -> Answer<Json<WebhookEnvelope>> {
    let id = path(p)?;
    let tenant = tenant_for(&state, client, &headers, Permission::WebhooksRead).await?;
    let w = ops::get_webhook(&state.ops, &tenant, webhook_id(&id)?).await?;
    Ok(Json(WebhookEnvelope { result: w.into() }))
}

#[utoipa::path(
    patch, path = "/organizations/webhooks/{webhook_id}", tag = TAG,
    description = "Changes the fields given; `custom_headers` replaces the webhook's headers.",
    params(
        ("webhook_id" = String, Path),
        ("SlashID-OrgID" = String, Header, description = "The organization (the tenant)"),
        ("SlashID-Required-Consistency" = Option<String>, Header),
        ("SlashID-Required-Consistency-Timeout" = Option<u32>, Header),
    ),
    request_body = WebhookUpdateRequest,
    responses(
        (status = 200, body = WebhookEnvelope),
        (status = 400, body = SlashIdErrorBody),
        (status = 401, body = SlashIdErrorBody),
        (status = 403, body = SlashIdErrorBody),
        (status = 404, body = SlashIdErrorBody),
    ),
    security(("slashid_api_key" = []), ("bearer" = []))
)]
pub async fn update_webhook(
    State(state): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    Client(client): Client,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer<Json<WebhookEnvelope>> {
    let id = path(p)?;
    let tenant = tenant_for(&state, client, &headers, Permission::WebhooksWrite).await?;
    let id = webhook_id(&id)?;
    let input: WebhookUpdateRequest = read_json(body, &state)?;
    if let Some(u) = &input.target_url {
        target_url(u)?;
    }
    let changes = WebhookChanges {
        name: input.name,
        url: input.target_url,
        description: input.description.map(Some),
        headers: input.custom_headers,
        timeout: timeout(input.timeout)?,
        ..WebhookChanges::default()
    };
    let now = state.clock.now_ms();
    let w = ops::update_webhook_with(&state.ops, &tenant, id, &changes, RULES, now).await?;
    Ok(Json(WebhookEnvelope { result: w.into() }))
}

#[utoipa::path(
    delete, path = "/organizations/webhooks/{webhook_id}", tag = TAG,
    params(
        ("webhook_id" = String, Path),
        ("SlashID-OrgID" = String, Header, description = "The organization (the tenant)"),
        ("SlashID-Required-Consistency" = Option<String>, Header),
        ("SlashID-Required-Consistency-Timeout" = Option<u32>, Header),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, body = SlashIdErrorBody),
        (status = 401, body = SlashIdErrorBody),
        (status = 403, body = SlashIdErrorBody),
        (status = 404, body = SlashIdErrorBody),
    ),
    security(("slashid_api_key" = []), ("bearer" = []))
)]
pub async fn delete_webhook(
    State(state): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    Client(client): Client,
    headers: HeaderMap,
) -> Answer<StatusCode> {
    let id = path(p)?;
    let tenant = tenant_for(&state, client, &headers, Permission::WebhooksWrite).await?;
    ops::delete_webhook(&state.ops, &tenant, webhook_id(&id)?, state.clock.now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, path = "/organizations/webhooks/{webhook_id}/triggers", tag = TAG,
    params(
        ("webhook_id" = String, Path),
        ("SlashID-OrgID" = String, Header, description = "The organization (the tenant)"),
    ),
    responses(
        (status = 200, body = TriggerListEnvelope),
        (status = 400, body = SlashIdErrorBody),
        (status = 401, body = SlashIdErrorBody),
        (status = 403, body = SlashIdErrorBody),
        (status = 404, body = SlashIdErrorBody),
    ),
    security(("slashid_api_key" = []), ("bearer" = []))
)]
pub async fn list_triggers(
    State(state): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    Client(client): Client,
    headers: HeaderMap,
) -> Answer<Json<TriggerListEnvelope>> {
    let id = path(p)?;
    let tenant = tenant_for(&state, client, &headers, Permission::WebhooksRead).await?;
    let w = ops::get_webhook(&state.ops, &tenant, webhook_id(&id)?).await?;
    Ok(Json(TriggerListEnvelope {
        result: w
            .events
            .into_iter()
            .map(|e| Trigger {
                trigger_type: EVENT_TRIGGER.to_owned(),
                trigger_name: e,
            })
            .collect(),
    }))
}

/// Only `event` triggers exist in hookd.
fn event_trigger(trigger_type: &str) -> Result<(), Refusal> {
    if trigger_type == EVENT_TRIGGER {
        Ok(())
    } else {
        Err(Refusal::malformed(
            "trigger_type",
            format!("{trigger_type:?} is not supported; the only trigger type is \"event\""),
        ))
    }
}

#[utoipa::path(
    post, path = "/organizations/webhooks/{webhook_id}/triggers", tag = TAG,
    params(
        ("webhook_id" = String, Path),
        ("SlashID-OrgID" = String, Header, description = "The organization (the tenant)"),
        ("SlashID-Required-Consistency" = Option<String>, Header),
        ("SlashID-Required-Consistency-Timeout" = Option<u32>, Header),
    ),
    request_body = Trigger,
    responses(
        (status = 201, description = "Added (adding a trigger the webhook has is no change)"),
        (status = 400, body = SlashIdErrorBody),
        (status = 401, body = SlashIdErrorBody),
        (status = 403, body = SlashIdErrorBody),
        (status = 404, body = SlashIdErrorBody),
    ),
    security(("slashid_api_key" = []), ("bearer" = []))
)]
pub async fn add_trigger(
    State(state): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    Client(client): Client,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer<StatusCode> {
    let id = path(p)?;
    let tenant = tenant_for(&state, client, &headers, Permission::WebhooksWrite).await?;
    let id = webhook_id(&id)?;
    let t: Trigger = read_json(body, &state)?;
    event_trigger(&t.trigger_type)?;
    let changes = WebhookChanges {
        add_events: Some(vec![t.trigger_name]),
        ..WebhookChanges::default()
    };
    let now = state.clock.now_ms();
    ops::update_webhook_with(&state.ops, &tenant, id, &changes, RULES, now).await?;
    Ok(StatusCode::CREATED)
}

#[utoipa::path(
    delete, path = "/organizations/webhooks/{webhook_id}/triggers", tag = TAG,
    params(
        ("webhook_id" = String, Path),
        ("trigger_type" = String, Query, description = "`event`"),
        ("trigger_name" = String, Query, description = "The event type"),
        ("SlashID-OrgID" = String, Header, description = "The organization (the tenant)"),
        ("SlashID-Required-Consistency" = Option<String>, Header),
        ("SlashID-Required-Consistency-Timeout" = Option<u32>, Header),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, body = SlashIdErrorBody),
        (status = 401, body = SlashIdErrorBody),
        (status = 403, body = SlashIdErrorBody),
        (status = 404, body = SlashIdErrorBody, description = "No such webhook, or it has no such trigger"),
    ),
    security(("slashid_api_key" = []), ("bearer" = []))
)]
pub async fn remove_trigger(
    State(state): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    Client(client): Client,
    headers: HeaderMap,
) -> Answer<StatusCode> {
    let id = path(p)?;
    let tenant = tenant_for(&state, client, &headers, Permission::WebhooksWrite).await?;
    let id = webhook_id(&id)?;
    let q = Query::parse(query.as_deref())?;
    let required = |name: &'static str| {
        q.string(name)
            .ok_or_else(|| Refusal::malformed(name, "is required"))
    };
    event_trigger(&required("trigger_type")?)?;
    let name = required("trigger_name")?;
    let w = ops::get_webhook(&state.ops, &tenant, id).await?;
    if !w.events.contains(&name) {
        return Err(OpError::NotFound("trigger").into());
    }
    let changes = WebhookChanges {
        remove_events: Some(vec![name]),
        ..WebhookChanges::default()
    };
    let now = state.clock.now_ms();
    ops::update_webhook_with(&state.ops, &tenant, id, &changes, RULES, now).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_as_go_does() {
        let ms = 1_000_000;
        for (s, ns) in [
            ("0", 0),
            ("0s", 0),
            ("500ms", 500 * ms),
            ("1.5s", 1_500 * ms),
            ("20s", 20_000 * ms),
            ("1m30s", 90_000 * ms),
            ("1h", 3_600_000 * ms),
            (".5s", 500 * ms),
            ("1.s", 1_000 * ms),
            ("1500us", 1_500_000),
            ("1500µs", 1_500_000),
            ("7ns", 7),
            ("-2s", -2_000 * ms),
            ("+3ms", 3 * ms),
            ("1s500ms", 1_500 * ms),
        ] {
            assert_eq!(parse_go_duration(s), Ok(ns), "{s}");
        }
        for s in [
            "", "-", "s", "10", "1.5", "10 s", "10S", "1d", "abc", ".s", "1..5s",
        ] {
            assert!(parse_go_duration(s).is_err(), "{s:?}");
        }
        assert!(parse_go_duration(&"9".repeat(40)).is_err());
    }

    #[test]
    fn timeouts_are_0_to_20_seconds_in_whole_milliseconds() {
        assert_eq!(timeout_ms("0s"), Ok(0));
        assert_eq!(timeout_ms("500ms"), Ok(500));
        assert_eq!(timeout_ms("1.5s"), Ok(1_500));
        assert_eq!(timeout_ms("20s"), Ok(20_000));
        assert_eq!(timeout_ms("20000ms"), Ok(20_000));
        assert!(timeout_ms("20.001s").unwrap_err().contains("20 seconds"));
        assert!(timeout_ms("1m").unwrap_err().contains("20 seconds"));
        assert!(timeout_ms("-1s").unwrap_err().contains("negative"));
        assert!(timeout_ms("1500us").unwrap_err().contains("milliseconds"));
        assert!(timeout_ms("ten").is_err());
    }

    #[test]
    fn durations_show_as_go_shows_them() {
        for (ms, s) in [
            (0, "0s"),
            (1, "1ms"),
            (500, "500ms"),
            (1_000, "1s"),
            (1_500, "1.5s"),
            (1_230, "1.23s"),
            (10_000, "10s"),
            (20_000, "20s"),
            (90_000, "1m30s"),
            (3_600_000, "1h0m0s"),
        ] {
            assert_eq!(format_go_duration(ms), s, "{ms}");
            if ms <= 20_000 {
                assert_eq!(timeout_ms(s), Ok(ms), "{s}");
            }
        }
    }

    #[test]
    fn target_urls_follow_the_documents_rules() {
        assert!(check_target_url("https://example.com/hooks").is_ok());
        assert!(check_target_url("https://example.com").is_ok());
        for bad in [
            "http://example.com/hooks",
            "https://localhost/x",
            "https://api.localhost/x",
            "https://LOCALHOST./x",
            "https://127.0.0.1/x",
            "https://[::1]/x",
            "https://10.0.0.1:8443/x",
            "https://example.com/x?a=1",
            "https://example.com/x?",
            "https://example.com/x#frag",
            "https:///x",
            "https:x",
            "example.com/x",
            "",
        ] {
            let e = check_target_url(bad).expect_err(bad);
            assert!(!e.contains("policy"), "{bad}: {e}");
        }
    }

    #[test]
    fn consistency_headers_take_the_documents_values() {
        assert!(check_consistency(None).is_ok());
        assert!(check_consistency(Some("local_region")).is_ok());
        assert!(check_consistency(Some("all_regions")).is_ok());
        assert!(check_consistency(Some("global")).is_err());
        assert!(check_consistency(Some("")).is_err());
        assert!(check_consistency_timeout(None).is_ok());
        assert!(check_consistency_timeout(Some("1")).is_ok());
        assert!(check_consistency_timeout(Some("120")).is_ok());
        for bad in ["0", "121", "-1", "1.5", "thirty", ""] {
            assert!(check_consistency_timeout(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_org_id_names_a_tenant() {
        assert_eq!(
            tenant_of_org("AF5FBD30-7CE7-4548-8B30-4CD59CB2ABA1").unwrap(),
            "AF5FBD30-7CE7-4548-8B30-4CD59CB2ABA1",
            "as written: X-Tenant-Id and API keys name it so too"
        );
        assert_eq!(tenant_of_org("org_1").unwrap(), "org_1");
        assert!(tenant_of_org("a b").is_err());
    }
}
