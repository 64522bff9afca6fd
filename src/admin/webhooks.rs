//! `/admin/webhooks`: the list (search, filters, pages), the create and
//! edit form, activate/deactivate, delete, new secret, unsuspend. Every
//! change goes through the same operations as the management API.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::error::{PageError, not_found_page, render, render_with};
use super::forms::{FieldErrors, Form, parse_id, safe_return_path_under, schedule_list};
use super::session::{AdminSession, Submitted};
use super::view::{Chrome, display_time};
use super::webhook_control::ControlFields;
use super::webhook_security::SecurityFields;
use crate::catalogue::Catalogue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::crypto::{generate_webhook_secret, webhook_secret_bytes};
use crate::domain::duration::format_duration_ms;
use crate::domain::event_type::{BUILTIN_EVENT_TYPES, category_of};
use crate::domain::webhook::{Headers, Webhook};
use crate::ops::OpError;
use crate::ops::webhook_actions::{
    recover_webhook, send_example as send_example_event, send_test_event,
};
use crate::ops::webhooks::{self as ops, NewWebhook, WebhookChanges};
use crate::state::AppState;
use crate::store::WebhookFilter;

const PAGE_SIZE: u64 = 20;
const MAX_PAGE: u64 = 1_000_000;

pub struct Row {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub environment: String,
    pub events: usize,
    pub status: &'static str,
    pub enabled: bool,
    /// Deliveries wait until resumed (SPEC §12); shown beside the status.
    pub paused: bool,
    pub paused_at: Option<String>,
    pub health: Option<Health>,
}

/// The newest delivery and the last day's failure rate, as shown.
pub struct Health {
    pub last_status: &'static str,
    pub last_code: String,
    pub last_at: String,
    /// `12%` of `recent` deliveries failing (failed, diverted or retrying).
    pub failure_rate: String,
    pub recent: u64,
    pub failing: bool,
}

/// The window of a row's failure rate.
const HEALTH_WINDOW_MS: i64 = 24 * 3_600_000;

impl Health {
    fn new(h: crate::store::WebhookHealth) -> Self {
        let rate = if h.recent == 0 {
            "—".to_owned()
        } else {
            format!("{}%", (h.recent_failing * 100).div_ceil(h.recent))
        };
        Self {
            last_status: h.last_status.as_str(),
            last_code: h
                .last_status_code
                .map(|c| c.to_string())
                .unwrap_or_default(),
            last_at: display_time(h.last_at),
            failure_rate: rate,
            recent: h.recent,
            failing: h.recent_failing > 0,
        }
    }
}

impl Row {
    fn new(w: Webhook, catalogue: &Catalogue) -> Self {
        Self {
            status: status_of(&w),
            events: catalogue.count_subscribed(&w.events),
            id: w.id,
            name: w.name,
            url: w.url,
            environment: w.environment,
            enabled: w.enabled,
            paused: w.control.paused,
            paused_at: w.control.paused_at.map(display_time),
            health: None,
        }
    }
}

fn status_of(w: &Webhook) -> &'static str {
    if w.suspended {
        "Suspended"
    } else if w.enabled {
        "Active"
    } else {
        "Inactive"
    }
}

#[derive(Template)]
#[template(path = "admin/webhooks.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
    q: String,
    environment: String,
    status: String,
    environments: Vec<String>,
    total: u64,
    first: u64,
    last: u64,
    prev_link: Option<String>,
    next_link: Option<String>,
    /// This page's own address, for the toggle forms to come back to.
    here: String,
}

fn list_link(base: &str, q: &str, environment: &str, status: &str, page: u64) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in [("q", q), ("environment", environment), ("status", status)] {
        if !v.is_empty() {
            s.append_pair(k, v);
        }
    }
    if page > 1 {
        s.append_pair("page", &page.to_string());
    }
    let query = s.finish();
    if query.is_empty() {
        format!("{base}/webhooks")
    } else {
        format!("{base}/webhooks?{query}")
    }
}

pub async fn list(
    State(state): State<AppState>,
    session: AdminSession,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let query = Form::parse(query.unwrap_or_default().as_bytes());
    let q = query.text("q");
    let environment = query.text("environment");
    let status = query.text("status");
    // Bounded: past the last page is an empty page, not an overflow.
    let page = query
        .text("page")
        .parse::<u64>()
        .unwrap_or(1)
        .clamp(1, MAX_PAGE);
    let (enabled, suspended) = match status.as_str() {
        "active" => (Some(true), Some(false)),
        "inactive" => (Some(false), Some(false)),
        "suspended" => (None, Some(true)),
        _ => (None, None),
    };
    let filter = WebhookFilter {
        q: (!q.is_empty()).then(|| q.clone()),
        environment: (!environment.is_empty()).then(|| environment.clone()),
        enabled,
        suspended,
        ..WebhookFilter::default()
    };
    let offset = (page - 1) * PAGE_SIZE;
    let found = ops::list_webhooks(&state.ops, &session.tenant, filter, offset, PAGE_SIZE).await?;
    let catalogue = Catalogue::load(state.ops.store.as_ref(), &session.tenant).await?;
    let shown = found.items.len() as u64;
    let ids: Vec<i64> = found.items.iter().map(|w| w.id).collect();
    let now = state.clock.now_ms();
    let mut health: std::collections::HashMap<i64, Health> = state
        .ops
        .store
        .webhook_health(&session.tenant, &ids, now - HEALTH_WINDOW_MS)
        .await?
        .into_iter()
        .map(|h| (h.webhook_id, Health::new(h)))
        .collect();
    let page_view = ListPage {
        chrome: Chrome::new(&session, "webhooks", query.raw("done")),
        rows: found
            .items
            .into_iter()
            .map(|w| {
                let mut row = Row::new(w, &catalogue);
                row.health = health.remove(&row.id);
                row
            })
            .collect(),
        total: found.total,
        first: if shown == 0 { 0 } else { offset + 1 },
        last: offset + shown,
        prev_link: (page > 1)
            .then(|| list_link(&session.base, &q, &environment, &status, page - 1)),
        next_link: (offset + shown < found.total)
            .then(|| list_link(&session.base, &q, &environment, &status, page + 1)),
        here: list_link(&session.base, &q, &environment, &status, page),
        environments: state.ops.settings.environments.clone(),
        q,
        environment,
        status,
    };
    Ok(render(&page_view))
}

/// The form's fields as the user typed them.
#[derive(Default)]
pub struct Fields {
    pub name: String,
    pub url: String,
    pub environment: String,
    pub description: String,
    pub secret: String,
    pub enabled: bool,
    pub events: Vec<String>,
    pub headers: String,
    pub timeout: String,
    pub rate_limit: String,
    pub retry_schedule: String,
    /// Signing scheme, receiver authentication, private CA (SPEC §13).
    pub security: SecurityFields,
    /// Payload filter and ordering (SPEC §12).
    pub control: ControlFields,
}

impl Fields {
    fn from_form(form: &Form) -> Self {
        Self {
            name: form.text("name"),
            url: form.text("url"),
            environment: form.text("environment"),
            description: form.text("description"),
            secret: form.text("secret"),
            enabled: form.checked("enabled"),
            events: form.all("events"),
            headers: form.raw("headers").unwrap_or_default().trim().to_owned(),
            timeout: form.text("timeout"),
            rate_limit: form.text("rate_limit"),
            retry_schedule: form.text("retry_schedule"),
            security: SecurityFields::from_form(form),
            control: ControlFields::from_form(form),
        }
    }

    fn from_webhook(w: &Webhook) -> Self {
        let headers = w
            .headers
            .iter()
            .flat_map(|(name, values)| values.iter().map(move |v| format!("{name}: {v}")))
            .collect::<Vec<_>>()
            .join("\n");
        Self {
            name: w.name.clone(),
            url: w.url.clone(),
            environment: w.environment.clone(),
            description: w.description.clone().unwrap_or_default(),
            secret: String::new(),
            enabled: w.enabled,
            events: w.events.clone(),
            headers,
            timeout: if w.timeout_ms == 0 {
                String::new()
            } else {
                format_duration_ms(w.timeout_ms)
            },
            rate_limit: w.rate_limit.map(|r| r.to_string()).unwrap_or_default(),
            retry_schedule: match &w.retry_schedule_ms {
                None => String::new(),
                Some(s) if s.is_empty() => "none".into(),
                Some(s) => s
                    .iter()
                    .map(|&ms| format_duration_ms(ms))
                    .collect::<Vec<_>>()
                    .join(", "),
            },
            security: SecurityFields::from_security(&w.security),
            control: ControlFields::from_control(&w.control),
        }
    }

    /// A digest of the editable values: a form carries the one it was
    /// opened with, so a save can tell whether the webhook changed since.
    fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for part in [
            &self.name,
            &self.url,
            &self.environment,
            &self.description,
            &self.events.join(","),
            &self.headers,
            &self.timeout,
            &self.rate_limit,
            &self.retry_schedule,
        ]
        .map(String::as_str)
        .into_iter()
        .chain(self.security.fingerprint_parts())
        .chain(self.control.fingerprint_parts())
        {
            h.update(part.as_bytes());
            h.update([0]);
        }
        h.update([u8::from(self.enabled)]);
        URL_SAFE_NO_PAD.encode(&h.finalize()[..16])
    }

    /// The typed-in values the API cannot take as they are (header lines,
    /// the rate limit, the schedule list), parsed; what fails goes to `errors`.
    fn parse(&self, errors: &mut FieldErrors) -> Parsed {
        let mut headers = Headers::new();
        for (n, line) in self.headers.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            match line.split_once(':') {
                Some((name, value)) if !name.trim().is_empty() => headers
                    .entry(name.trim().to_owned())
                    .or_default()
                    .push(value.trim().to_owned()),
                _ => errors.add(
                    "headers",
                    format!("line {}: write one header per line as `Name: value`", n + 1),
                ),
            }
        }
        let rate_limit = if self.rate_limit.is_empty() {
            None
        } else {
            match self.rate_limit.parse::<i64>() {
                Ok(r) => Some(r),
                Err(_) => {
                    errors.add(
                        "rate_limit",
                        "must be a whole number of deliveries per second",
                    );
                    None
                }
            }
        };
        let retry_schedule = schedule_list(&self.retry_schedule);
        Parsed {
            headers,
            rate_limit,
            retry_schedule,
        }
    }
}

struct Parsed {
    headers: Headers,
    rate_limit: Option<i64>,
    retry_schedule: Option<Vec<String>>,
}

pub struct EventOption {
    pub name: String,
    pub description: String,
    pub checked: bool,
}

pub struct Category {
    pub name: String,
    pub title: String,
    /// Subscribed with `category.*` (today's types and future ones).
    pub wildcard: bool,
    pub events: Vec<EventOption>,
}

/// The catalogue's live types grouped by category, ticked as subscribed.
/// Built-in categories and types keep the catalogue's order (license
/// first, then created, updated, deleted…); a tenant's own follow by name.
fn categories(catalogue: &Catalogue, selected: &[String]) -> Vec<Category> {
    let rank = |name: &str| {
        BUILTIN_EVENT_TYPES
            .iter()
            .position(|(n, _)| *n == name)
            .unwrap_or(usize::MAX)
    };
    let category_rank = |category: &str| {
        BUILTIN_EVENT_TYPES
            .iter()
            .position(|(n, _)| category_of(n) == category)
            .unwrap_or(usize::MAX)
    };
    let mut entries = catalogue.entries();
    entries.sort_by_cached_key(|e| {
        (
            category_rank(&e.category),
            e.category.clone(),
            rank(&e.name),
            e.name.clone(),
        )
    });
    let mut out: Vec<Category> = Vec::new();
    for e in entries {
        if e.archived_at.is_some() && !selected.contains(&e.name) {
            continue;
        }
        if out.last().is_none_or(|c| c.name != e.category) {
            let mut title = e.category.replace(['_', '-'], " ");
            if let Some(first) = title.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            out.push(Category {
                wildcard: selected.contains(&format!("{}.*", e.category)),
                name: e.category.clone(),
                title: format!("{title} events"),
                events: Vec::new(),
            });
        }
        let category = out.last_mut().expect("pushed above");
        category.events.push(EventOption {
            name: e.name.clone(),
            description: e.description.clone().unwrap_or_default(),
            checked: selected.contains(&e.name),
        });
    }
    out
}

pub struct Editing {
    pub id: i64,
    /// `v1a`: `secret` is the public key, and rotating makes a new key pair.
    pub v1a: bool,
    /// Of the stored values this form shows (see `Fields::fingerprint`).
    pub fingerprint: String,
    pub secret: String,
    pub previous_secret_until: Option<String>,
    pub suspended: bool,
    pub suspended_at: Option<String>,
    pub paused: bool,
    pub paused_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Template)]
#[template(path = "admin/webhook_form.html")]
struct FormPage {
    chrome: Chrome,
    editing: Option<Editing>,
    fields: Fields,
    errors: FieldErrors,
    environments: Vec<String>,
    categories: Vec<Category>,
    /// Subscriptions the catalogue does not list (kept as they are).
    other_events: Vec<String>,
    /// Event types with an example ("Send example").
    examples: Vec<String>,
}

impl FormPage {
    /// The folded advanced fields open when one of them holds an error
    /// (so the focus can reach it).
    fn advanced_open(&self) -> bool {
        ["headers", "timeout", "rate_limit", "retry_schedule"]
            .iter()
            .any(|f| self.errors.get(f).is_some())
    }

    fn selected_environment(&self, env: &str) -> bool {
        self.fields.environment == env
    }
}

async fn form_page(
    state: &AppState,
    session: &AdminSession,
    editing: Option<Editing>,
    fields: Fields,
    errors: FieldErrors,
    done: Option<&str>,
) -> Result<FormPage, PageError> {
    let catalogue = Catalogue::load(state.ops.store.as_ref(), &session.tenant).await?;
    let categories = categories(&catalogue, &fields.events);
    let examples = catalogue
        .entries()
        .into_iter()
        .filter(|e| e.example.is_some() && e.archived_at.is_none())
        .map(|e| e.name.clone())
        .collect();
    let other_events = fields
        .events
        .iter()
        .filter(|e| {
            !categories
                .iter()
                .any(|c| c.events.iter().any(|o| &o.name == *e) || **e == format!("{}.*", c.name))
        })
        .cloned()
        .collect();
    // A webhook in an environment no longer configured keeps showing it
    // (saving then says it is not valid) instead of silently moving.
    let mut environments = state.ops.settings.environments.clone();
    if !fields.environment.is_empty() && !environments.contains(&fields.environment) {
        environments.push(fields.environment.clone());
    }
    Ok(FormPage {
        chrome: Chrome::new(session, "webhooks", done),
        editing,
        environments,
        categories,
        other_events,
        examples,
        fields,
        errors,
    })
}

pub async fn new_form(
    State(state): State<AppState>,
    session: AdminSession,
) -> Result<Response, PageError> {
    let fields = Fields {
        environment: state.ops.settings.default_environment().to_owned(),
        enabled: true,
        secret: generate_webhook_secret(),
        ..Fields::default()
    };
    let page = form_page(&state, &session, None, fields, FieldErrors::default(), None).await?;
    Ok(render(&page))
}

/// Field errors re-show the form (400) with what was typed; any other
/// failure is an error page.
async fn invalid(
    state: &AppState,
    session: &AdminSession,
    editing: Option<Editing>,
    fields: Fields,
    mut errors: FieldErrors,
    op_error: Option<OpError>,
) -> Result<Response, PageError> {
    match op_error {
        Some(OpError::Invalid(found)) => errors.extend(ControlFields::input_names(
            SecurityFields::input_names(found.0),
        )),
        Some(other) => return Err(other.into()),
        None => {}
    }
    let page = form_page(state, session, editing, fields, errors, None).await?;
    Ok(render_with(StatusCode::BAD_REQUEST, &page))
}

pub async fn create(
    State(state): State<AppState>,
    Submitted { session, form }: Submitted,
) -> Result<Response, PageError> {
    let fields = Fields::from_form(&form);
    let mut errors = FieldErrors::default();
    let parsed = fields.parse(&mut errors);
    let control = fields.control.changes(&mut errors);
    if !errors.is_empty() {
        return invalid(&state, &session, None, fields, errors, None).await;
    }
    let input = NewWebhook {
        name: fields.name.clone(),
        url: fields.url.clone(),
        events: fields.events.clone(),
        enabled: Some(fields.enabled),
        environment: Some(fields.environment.clone()),
        description: (!fields.description.is_empty()).then(|| fields.description.clone()),
        headers: Some(parsed.headers),
        timeout: (!fields.timeout.is_empty()).then(|| fields.timeout.clone()),
        rate_limit: parsed.rate_limit,
        retry_schedule: parsed.retry_schedule,
        failure_handling: None,
        secret: (!fields.secret.is_empty()).then(|| fields.secret.clone()),
        security: fields.security.changes(),
        control,
    };
    match ops::create_webhook(&state.ops, &session.tenant, input, state.clock.now_ms()).await {
        Ok(_) => Ok(Redirect::to(&session.at("/webhooks?done=created")).into_response()),
        Err(e) => invalid(&state, &session, None, fields, errors, Some(e)).await,
    }
}

async fn editing(
    state: &AppState,
    session: &AdminSession,
    w: &Webhook,
) -> Result<Editing, PageError> {
    // A read-only portal never receives the secret, not even hidden.
    let v1a = w.security.signature_scheme == crate::domain::receiver_auth::SignatureScheme::V1a;
    let (secret, previous_secret_until) = if session.read_only() {
        (String::new(), None)
    } else {
        let s = ops::read_secret(&state.ops, &session.tenant, w.id, state.clock.now_ms()).await?;
        (s.secret, s.previous_expires_at.map(display_time))
    };
    Ok(Editing {
        id: w.id,
        v1a,
        fingerprint: Fields::from_webhook(w).fingerprint(),
        secret,
        previous_secret_until,
        suspended: w.suspended,
        suspended_at: w.suspended_at.map(display_time),
        paused: w.control.paused,
        paused_at: w.control.paused_at.map(display_time),
        created_at: display_time(w.created_at),
        updated_at: display_time(w.updated_at),
    })
}

async fn load(state: &AppState, session: &AdminSession, id: i64) -> Result<Webhook, PageError> {
    ops::get_webhook(&state.ops, &session.tenant, id)
        .await
        .map_err(not_found_page)
}

pub async fn edit_form(
    State(state): State<AppState>,
    session: AdminSession,
    axum::extract::Path(id): axum::extract::Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let id = parse_id(&id, "webhook")?;
    let query = Form::parse(query.unwrap_or_default().as_bytes());
    let w = load(&state, &session, id).await?;
    let editing = editing(&state, &session, &w).await?;
    let page = form_page(
        &state,
        &session,
        Some(editing),
        Fields::from_webhook(&w),
        FieldErrors::default(),
        query.raw("done"),
    )
    .await?;
    Ok(render(&page))
}

pub async fn update(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    Submitted { session, form }: Submitted,
) -> Result<Response, PageError> {
    let id = parse_id(&id, "webhook")?;
    let w = load(&state, &session, id).await?;
    let editing = editing(&state, &session, &w).await?;
    let fields = Fields::from_form(&form);
    let mut errors = FieldErrors::default();
    let parsed = fields.parse(&mut errors);
    let control = fields.control.changes(&mut errors);
    // A secret generated on the page replaces the current one on save.
    let new_secret = form.text("new_secret");
    if !new_secret.is_empty()
        && let Err(m) = webhook_secret_bytes(&new_secret)
    {
        errors.add("secret", m);
    }
    if !errors.is_empty() {
        return invalid(&state, &session, Some(editing), fields, errors, None).await;
    }
    let changes = WebhookChanges {
        name: Some(fields.name.clone()),
        url: Some(fields.url.clone()),
        events: Some(fields.events.clone()),
        enabled: Some(fields.enabled),
        environment: Some(fields.environment.clone()),
        description: Some((!fields.description.is_empty()).then(|| fields.description.clone())),
        headers: Some(parsed.headers),
        // An empty timeout goes back to the service default.
        timeout: Some(if fields.timeout.is_empty() {
            "0s".into()
        } else {
            fields.timeout.clone()
        }),
        rate_limit: Some(parsed.rate_limit),
        retry_schedule: Some(parsed.retry_schedule),
        security: fields.security.changes(),
        control,
        ..WebhookChanges::default()
    };
    let opened_with = form.text("fingerprint");
    let unchanged = |w: &Webhook| {
        opened_with.is_empty() || Fields::from_webhook(w).fingerprint() == opened_with
    };
    let now = state.clock.now_ms();
    match ops::update_webhook_if(&state.ops, &session.tenant, id, &changes, &unchanged, now).await {
        Ok(_) if new_secret.is_empty() => {
            Ok(Redirect::to(&session.at("/webhooks?done=saved")).into_response())
        }
        Ok(_) => {
            ops::rotate_secret(&state.ops, &session.tenant, id, Some(new_secret), now).await?;
            Ok(Redirect::to(&session.at("/webhooks?done=saved_rotated")).into_response())
        }
        Err(OpError::Conflict(_)) => {
            // `editing` holds the current values' fingerprint: saving again
            // overwrites them knowingly.
            errors.add(
                "form",
                "This webhook was changed (through the API or another window) since you opened \
                 this form. Your values are below; saving again replaces the current ones.",
            );
            invalid(&state, &session, Some(editing), fields, errors, None).await
        }
        Err(e) => invalid(&state, &session, Some(editing), fields, errors, Some(e)).await,
    }
}

/// Back where the form came from (an admin page only), confirming `done`,
/// with the keyboard focus back on webhook `id`'s toggle when it is there.
pub(super) fn back_to(
    session: &AdminSession,
    form: &Form,
    default: &str,
    done: &str,
    id: i64,
) -> Response {
    let base = safe_return_path_under(form.raw("return_to").unwrap_or_default(), &session.base)
        .unwrap_or(default);
    let (path, query) = base.split_once('?').unwrap_or((base, ""));
    let done = format!("done={done}");
    let mut params: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("done="))
        .collect();
    params.push(&done);
    Redirect::to(&format!("{path}?{}#toggle-{id}", params.join("&"))).into_response()
}

pub async fn toggle(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    Submitted { session, form }: Submitted,
) -> Result<Response, PageError> {
    let id = parse_id(&id, "webhook")?;
    load(&state, &session, id).await?;
    // The state the button showed, not a flip of whatever is stored now: a
    // double click or a stale page cannot do the opposite of its label.
    let enabled = match form.text("enabled").as_str() {
        "true" => true,
        "false" => false,
        _ => {
            return Err(PageError::bad_request(
                "The form did not say whether to activate or deactivate the webhook.",
            ));
        }
    };
    let changes = WebhookChanges {
        enabled: Some(enabled),
        ..WebhookChanges::default()
    };
    let now = state.clock.now_ms();
    let updated = ops::update_webhook(&state.ops, &session.tenant, id, &changes, now).await?;
    let done = if updated.enabled {
        "enabled"
    } else {
        "disabled"
    };
    Ok(back_to(&session, &form, &session.at("/webhooks"), done, id))
}

#[derive(Template)]
#[template(path = "admin/webhook_delete.html")]
struct DeletePage {
    chrome: Chrome,
    id: i64,
    name: String,
    url: String,
}

pub async fn delete_confirm(
    State(state): State<AppState>,
    session: AdminSession,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, PageError> {
    let id = parse_id(&id, "webhook")?;
    let w = load(&state, &session, id).await?;
    Ok(render(&DeletePage {
        chrome: Chrome::new(&session, "webhooks", None),
        id,
        name: w.name,
        url: w.url,
    }))
}

pub async fn delete(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    Submitted { session, .. }: Submitted,
) -> Result<Response, PageError> {
    let id = parse_id(&id, "webhook")?;
    ops::delete_webhook(&state.ops, &session.tenant, id, state.clock.now_ms()).await?;
    Ok(Redirect::to(&session.at("/webhooks?done=deleted")).into_response())
}

pub async fn rotate_secret(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    Submitted { session, .. }: Submitted,
) -> Result<Response, PageError> {
    let id = parse_id(&id, "webhook")?;
    ops::rotate_secret(&state.ops, &session.tenant, id, None, state.clock.now_ms()).await?;
    Ok(Redirect::to(&session.at(&format!("/webhooks/{id}?done=rotated"))).into_response())
}

pub async fn unsuspend(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    Submitted { session, form }: Submitted,
) -> Result<Response, PageError> {
    let id = parse_id(&id, "webhook")?;
    ops::unsuspend_webhook(&state.ops, &session.tenant, id, state.clock.now_ms()).await?;
    Ok(back_to(
        &session,
        &form,
        &session.at(&format!("/webhooks/{id}")),
        "unsuspended",
        id,
    ))
}

pub async fn send_test(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    Submitted { session, .. }: Submitted,
) -> Result<Response, PageError> {
    let id = parse_id(&id, "webhook")?;
    send_test_event(&state.ops, &session.tenant, id, state.clock.now_ms()).await?;
    Ok(
        Redirect::to(&session.at(&format!("/deliveries?webhook_id={id}&done=tested")))
            .into_response(),
    )
}

/// Sends an event type's example to this webhook alone.
pub async fn send_example(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    Submitted { session, form }: Submitted,
) -> Result<Response, PageError> {
    let id = parse_id(&id, "webhook")?;
    let event_type = form.text("event_type");
    send_example_event(
        &state.ops,
        &session.tenant,
        id,
        &event_type,
        state.clock.now_ms(),
    )
    .await?;
    Ok(
        Redirect::to(&session.at(&format!("/deliveries?webhook_id={id}&done=example_sent")))
            .into_response(),
    )
}

/// "Retry all failed and diverted": re-queues the webhook's failed and
/// diverted deliveries of the last `RECOVER_WINDOW_MS`.
pub async fn recover(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    Submitted { session, form }: Submitted,
) -> Result<Response, PageError> {
    let id = parse_id(&id, "webhook")?;
    let now = state.clock.now_ms();
    let w = load(&state, &session, id).await?;
    if w.suspended {
        return Err(PageError::Page {
            status: StatusCode::CONFLICT,
            detail: format!(
                "The webhook “{}” is suspended: its deliveries would only be diverted again. Unsuspend it first.",
                w.name
            ),
        });
    }
    recover_webhook(
        &state.ops,
        &session.tenant,
        id,
        now - RECOVER_WINDOW_MS,
        now,
    )
    .await?;
    Ok(back_to(
        &session,
        &form,
        &session.at(&format!("/webhooks/{id}")),
        "recovered",
        id,
    ))
}

/// How far back "Retry all failed and diverted" reaches (the retention
/// default: what is older is likely purged anyway).
const RECOVER_WINDOW_MS: i64 = 30 * 24 * 3_600_000;
