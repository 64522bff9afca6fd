//! `/admin/deliveries`: the delivery log with its chart and filters, one
//! delivery with every attempt, and Retry.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};

use super::chart::{self, Chart, RANGES, Range};
use super::error::{PageError, not_found_page, render};
use super::forms::{Form, parse_id};
use super::session::{AdminSession, Submitted};
use super::view::{Chrome, display_time};
use crate::domain::delivery::DeliveryStatus;
use crate::ops::deliveries::{get_delivery, list_deliveries, retry_delivery};
use crate::state::AppState;
use crate::store::{AttemptRow, DeliveryFilter, DeliveryRecord, WebhookFilter};

const PAGE_SIZE: u64 = 25;
/// Webhooks offered in the filter (and named in the log).
const WEBHOOKS_LISTED: u64 = 500;

pub struct Row {
    pub id: i64,
    pub time: String,
    pub webhook_id: i64,
    pub webhook: String,
    pub event_type: String,
    pub status: &'static str,
    pub response_status: String,
    pub attempts: u32,
}

#[derive(Template)]
#[template(path = "admin/deliveries.html")]
struct ListPage {
    chrome: Chrome,
    chart: Chart,
    /// The webhook the chart is limited to, if the log is.
    chart_for: Option<String>,
    ranges: &'static [Range],
    range: &'static str,
    range_label: &'static str,
    rows: Vec<Row>,
    webhooks: Vec<(i64, String)>,
    webhook_id: Option<i64>,
    status: String,
    statuses: Vec<&'static str>,
    next_link: Option<String>,
    first_link: Option<String>,
}

impl ListPage {
    fn webhook_selected(&self, id: &i64) -> bool {
        self.webhook_id == Some(*id)
    }

    fn range_link(&self, key: &str) -> String {
        link(self.webhook_id, &self.status, key, None)
    }
}

fn link(webhook_id: Option<i64>, status: &str, range: &str, cursor: Option<&str>) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    if let Some(id) = webhook_id {
        s.append_pair("webhook_id", &id.to_string());
    }
    if !status.is_empty() {
        s.append_pair("status", status);
    }
    s.append_pair("range", range);
    if let Some(c) = cursor {
        s.append_pair("cursor", c);
    }
    format!("/admin/deliveries?{}", s.finish())
}

async fn webhook_names(state: &AppState, tenant: &str) -> Result<HashMap<i64, String>, PageError> {
    let page = state
        .ops
        .store
        .list_webhooks(tenant, &WebhookFilter::default(), 0, WEBHOOKS_LISTED)
        .await?;
    Ok(page.items.into_iter().map(|w| (w.id, w.name)).collect())
}

fn row(d: DeliveryRecord, names: &HashMap<i64, String>) -> Row {
    Row {
        id: d.id,
        time: display_time(d.created_at),
        webhook_id: d.webhook_id,
        webhook: names
            .get(&d.webhook_id)
            .cloned()
            .unwrap_or_else(|| format!("#{} (deleted)", d.webhook_id)),
        event_type: d.event_type,
        status: d.status.as_str(),
        response_status: d
            .last_status_code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "—".into()),
        attempts: d.attempts,
    }
}

pub async fn list(
    State(state): State<AppState>,
    session: AdminSession,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let query = Form::parse(query.unwrap_or_default().as_bytes());
    let range = Range::find(&query.text("range"));
    let webhook_id = query
        .text("webhook_id")
        .parse::<i64>()
        .ok()
        .filter(|i| *i > 0);
    let status_text = query.text("status");
    let status = DeliveryStatus::parse(&status_text);
    let status_text = if status.is_some() {
        status_text
    } else {
        String::new()
    };
    let cursor = query.text("cursor").parse::<i64>().ok().filter(|c| *c > 0);

    let now = state.clock.now_ms();
    let since = range.since(now);
    let histogram = state
        .ops
        .store
        .delivery_histogram(&session.tenant, webhook_id, since, range.bucket_ms)
        .await?;
    let filter = DeliveryFilter {
        webhook_id,
        status,
        ..DeliveryFilter::default()
    };
    let page = list_deliveries(&state.ops, &session.tenant, &filter, cursor, PAGE_SIZE).await?;
    let (found, next_cursor) = (page.items, page.next_cursor.map(|c| c.to_string()));
    let mut names = webhook_names(&state, &session.tenant).await?;
    let mut webhooks: Vec<(i64, String)> = names.iter().map(|(k, v)| (*k, v.clone())).collect();
    // Beyond the first webhooks listed, name those on this page one by one.
    let mut missing: Vec<i64> = found
        .iter()
        .map(|d| d.webhook_id)
        .chain(webhook_id)
        .filter(|id| !names.contains_key(id))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    for id in missing {
        if let Some(w) = state.ops.store.get_webhook(&session.tenant, id).await? {
            if Some(id) == webhook_id {
                webhooks.push((id, w.name.clone()));
            }
            names.insert(id, w.name);
        }
    }
    webhooks.sort_by_key(|w| w.1.to_lowercase());
    let page = ListPage {
        chrome: Chrome::new(&session, "deliveries", query.raw("done")),
        chart: chart::build(range, since, &histogram),
        chart_for: webhook_id.and_then(|id| names.get(&id).cloned()),
        ranges: &RANGES,
        range: range.key,
        range_label: range.label,
        rows: found.into_iter().map(|d| row(d, &names)).collect(),
        webhooks,
        webhook_id,
        next_link: next_cursor
            .as_deref()
            .map(|c| link(webhook_id, &status_text, range.key, Some(c))),
        first_link: cursor.map(|_| link(webhook_id, &status_text, range.key, None)),
        status: status_text,
        statuses: DeliveryStatus::ALL.iter().map(|s| s.as_str()).collect(),
    };
    Ok(render(&page))
}

pub struct AttemptView {
    pub number: usize,
    pub time: String,
    pub duration_ms: i64,
    pub url: String,
    pub response_status: String,
    pub error_kind: String,
    pub error: String,
    pub request_headers: String,
    pub response_headers: String,
    pub response_body: String,
}

fn pretty_json(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| text.to_owned())
}

impl AttemptView {
    fn new(number: usize, a: AttemptRow) -> Self {
        Self {
            number,
            time: display_time(a.attempted_at),
            duration_ms: a.duration_ms,
            url: a.url,
            response_status: a
                .response_status
                .map(|c| c.to_string())
                .unwrap_or_else(|| "—".into()),
            error_kind: a.error_kind.unwrap_or_default(),
            error: a.error.unwrap_or_default(),
            request_headers: pretty_json(&a.request_headers),
            response_headers: a
                .response_headers
                .as_deref()
                .map(pretty_json)
                .unwrap_or_default(),
            response_body: a.response_body.unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/delivery.html")]
struct DetailPage {
    chrome: Chrome,
    row: Row,
    event_id: String,
    payload: String,
    next_attempt: Option<String>,
    last_error: String,
    webhook_exists: bool,
    webhook_suspended: bool,
    attempts: Vec<AttemptView>,
    here: String,
}

pub async fn detail(
    State(state): State<AppState>,
    session: AdminSession,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let id = parse_id(&id, "delivery")?;
    let query = Form::parse(query.unwrap_or_default().as_bytes());
    let (delivery, attempts) = get_delivery(&state.ops, &session.tenant, id)
        .await
        .map_err(not_found_page)?;
    let webhook = state
        .ops
        .store
        .get_webhook(&session.tenant, delivery.webhook_id)
        .await?;
    let event = state
        .ops
        .store
        .get_event(&session.tenant, &delivery.event_id)
        .await?;
    let names: HashMap<i64, String> = webhook.iter().map(|w| (w.id, w.name.clone())).collect();
    let page = DetailPage {
        chrome: Chrome::new(&session, "deliveries", query.raw("done")),
        event_id: delivery.event_id.clone(),
        payload: event.map(|e| pretty_json(&e.data)).unwrap_or_default(),
        next_attempt: (!delivery.status.is_terminal())
            .then_some(delivery.next_attempt_at)
            .flatten()
            .map(display_time),
        last_error: delivery.last_error.clone().unwrap_or_default(),
        webhook_exists: webhook.is_some(),
        webhook_suspended: webhook.as_ref().is_some_and(|w| w.suspended),
        attempts: attempts
            .into_iter()
            .enumerate()
            .map(|(i, a)| AttemptView::new(i + 1, a))
            .collect(),
        here: format!("/admin/deliveries/{id}"),
        row: row(delivery, &names),
    };
    Ok(render(&page))
}

pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Submitted { session, .. }: Submitted,
) -> Result<Response, PageError> {
    let id = parse_id(&id, "delivery")?;
    let (delivery, _) = get_delivery(&state.ops, &session.tenant, id)
        .await
        .map_err(not_found_page)?;
    // It would only be diverted again: say so instead of "queued".
    if let Some(w) = state
        .ops
        .store
        .get_webhook(&session.tenant, delivery.webhook_id)
        .await?
        .filter(|w| w.suspended)
    {
        return Err(PageError::Page {
            status: axum::http::StatusCode::CONFLICT,
            detail: format!(
                "The webhook “{}” is suspended, so this delivery would only be diverted again. \
                 Unsuspend it first (on the delivery's page or the webhook's), then retry.",
                w.name
            ),
        });
    }
    retry_delivery(&state.ops, &session.tenant, id, state.clock.now_ms()).await?;
    Ok(Redirect::to(&format!("/admin/deliveries/{id}?done=retried")).into_response())
}
