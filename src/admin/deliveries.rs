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
    pub event_id: String,
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
    /// What the chart counts, when the log is filtered.
    chart_for: Option<String>,
    ranges: &'static [Range],
    range_label: &'static str,
    rows: Vec<Row>,
    webhooks: Vec<(i64, String)>,
    event_types: Vec<String>,
    filters: LogQuery,
    statuses: Vec<&'static str>,
    next_link: Option<String>,
    first_link: Option<String>,
    /// Why the search found nothing to filter by.
    search_error: Option<String>,
}

impl ListPage {
    fn webhook_selected(&self, id: &i64) -> bool {
        self.filters.webhook_id == Some(*id)
    }

    fn range_link(&self, key: &str) -> String {
        LogQuery {
            range: key.to_owned(),
            cursor: None,
            ..self.filters.clone()
        }
        .link(&self.chrome.base)
    }
}

/// The log's filters as the query names them; each kept as typed so the
/// form shows it back.
#[derive(Clone, Default)]
pub struct LogQuery {
    pub webhook_id: Option<i64>,
    pub status: String,
    pub event_type: String,
    /// Event id (`evt_…`) or delivery id.
    pub q: String,
    /// `YYYY-MM-DDTHH:MM` (UTC), as `datetime-local` inputs send it.
    pub from: String,
    pub to: String,
    pub range: String,
    pub cursor: Option<String>,
}

impl LogQuery {
    fn parse(query: &Form) -> Self {
        Self {
            webhook_id: query
                .text("webhook_id")
                .parse::<i64>()
                .ok()
                .filter(|i| *i > 0),
            status: Some(query.text("status"))
                .filter(|s| DeliveryStatus::parse(s).is_some())
                .unwrap_or_default(),
            event_type: query.text("event_type"),
            q: query.text("q"),
            from: query.text("from"),
            to: query.text("to"),
            range: Range::find(&query.text("range")).key.to_owned(),
            cursor: Some(query.text("cursor")).filter(|c| c.parse::<i64>().is_ok_and(|c| c > 0)),
        }
    }

    pub fn is_filtered(&self) -> bool {
        self.webhook_id.is_some()
            || !self.status.is_empty()
            || !self.event_type.is_empty()
            || !self.q.is_empty()
            || !self.from.is_empty()
            || !self.to.is_empty()
    }

    fn link(&self, base: &str) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        if let Some(id) = self.webhook_id {
            s.append_pair("webhook_id", &id.to_string());
        }
        for (k, v) in [
            ("status", &self.status),
            ("event_type", &self.event_type),
            ("q", &self.q),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !v.is_empty() {
                s.append_pair(k, v);
            }
        }
        s.append_pair("range", &self.range);
        if let Some(c) = &self.cursor {
            s.append_pair("cursor", c);
        }
        format!("{base}/deliveries?{}", s.finish())
    }
}

/// `2026-11-24T07:40` (or with seconds), read as UTC.
fn parse_local_time(text: &str) -> Option<i64> {
    let text = if text.len() == 16 {
        format!("{text}:00Z")
    } else {
        format!("{text}Z")
    };
    crate::clock::parse_rfc3339(&text).ok()
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
        event_id: d.event_id,
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
    let filters = LogQuery::parse(&query);
    let range = Range::find(&filters.range);
    let mut search_error = None;
    let mut filter = DeliveryFilter {
        webhook_id: filters.webhook_id,
        status: DeliveryStatus::parse(&filters.status),
        event_type: Some(filters.event_type.clone()).filter(|t| !t.is_empty()),
        since: parse_local_time(&filters.from),
        until: parse_local_time(&filters.to),
        ..DeliveryFilter::default()
    };
    for (text, name) in [(&filters.from, "From"), (&filters.to, "To")] {
        if !text.is_empty() && parse_local_time(text).is_none() {
            search_error = Some(format!(
                "{name}: write a date and time such as 2026-11-24T07:40 (UTC)."
            ));
        }
    }
    let q = filters.q.trim();
    if !q.is_empty() {
        if q.starts_with("evt_") {
            filter.event_id = Some(q.to_owned());
        } else if let Ok(id) = q.trim_start_matches('#').parse::<i64>() {
            // A delivery id names one delivery: open it.
            if get_delivery(&state.ops, &session.tenant, id).await.is_ok() {
                return Ok(Redirect::to(&session.at(&format!("/deliveries/{id}"))).into_response());
            }
            search_error = Some(format!("No delivery has the id {id}."));
            filter.event_id = Some(String::new());
        } else {
            search_error =
                Some("Search by an event id (evt_…) or a delivery id (a number).".into());
            filter.event_id = Some(String::new());
        }
    }
    let cursor = filters
        .cursor
        .as_deref()
        .and_then(|c| c.parse::<i64>().ok());

    let now = state.clock.now_ms();
    let since = range.since(now);
    let histogram = state
        .ops
        .store
        .delivery_histogram(&session.tenant, &filter, since, range.bucket_ms)
        .await?;
    let page = list_deliveries(&state.ops, &session.tenant, &filter, cursor, PAGE_SIZE).await?;
    let (found, next_cursor) = (page.items, page.next_cursor.map(|c| c.to_string()));
    let mut names = webhook_names(&state, &session.tenant).await?;
    let mut webhooks: Vec<(i64, String)> = names.iter().map(|(k, v)| (*k, v.clone())).collect();
    // Beyond the first webhooks listed, name those on this page one by one.
    let mut missing: Vec<i64> = found
        .iter()
        .map(|d| d.webhook_id)
        .chain(filters.webhook_id)
        .filter(|id| !names.contains_key(id))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    for id in missing {
        if let Some(w) = state.ops.store.get_webhook(&session.tenant, id).await? {
            if Some(id) == filters.webhook_id {
                webhooks.push((id, w.name.clone()));
            }
            names.insert(id, w.name);
        }
    }
    webhooks.sort_by_key(|w| w.1.to_lowercase());
    let catalogue =
        crate::catalogue::Catalogue::load(state.ops.store.as_ref(), &session.tenant).await?;
    let event_types = catalogue.entries().iter().map(|e| e.name.clone()).collect();
    let chart_for = filters.is_filtered().then(|| {
        let mut parts = Vec::new();
        if let Some(name) = filters.webhook_id.and_then(|id| names.get(&id)) {
            parts.push(format!("to {name}"));
        }
        if !filters.event_type.is_empty() {
            parts.push(format!("of {}", filters.event_type));
        }
        if !filters.status.is_empty() {
            parts.push(format!("now {}", filters.status));
        }
        if filter.event_id.as_deref().is_some_and(|e| !e.is_empty()) {
            parts.push(format!("of event {q}"));
        }
        if parts.is_empty() {
            "matching the filters".to_owned()
        } else {
            parts.join(", ")
        }
    });
    let page = ListPage {
        chrome: Chrome::new(&session, "deliveries", query.raw("done")),
        chart: chart::build(range, since, &histogram),
        chart_for,
        ranges: &RANGES,
        range_label: range.label,
        rows: found.into_iter().map(|d| row(d, &names)).collect(),
        webhooks,
        event_types,
        next_link: next_cursor.map(|c| {
            LogQuery {
                cursor: Some(c),
                ..filters.clone()
            }
            .link(&session.base)
        }),
        first_link: cursor.map(|_| {
            LogQuery {
                cursor: None,
                ..filters.clone()
            }
            .link(&session.base)
        }),
        filters,
        statuses: DeliveryStatus::ALL.iter().map(|s| s.as_str()).collect(),
        search_error,
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
        here: session.at(&format!("/deliveries/{id}")),
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
    Ok(Redirect::to(&session.at(&format!("/deliveries/{id}?done=retried"))).into_response())
}
