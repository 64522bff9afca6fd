//! A webhook's delivery control (SPEC §12) as operations: the `filter` and
//! `ordering` a create or change carries, and pause / resume.

use serde_json::Value;

use super::{OpError, OpResult, Services};
use crate::domain::ValidationErrors;
use crate::domain::control::{Ordering, validate_filter};
use crate::domain::webhook::Webhook;

/// How fast a resumed backlog is made due when the webhook sets no rate
/// limit (deliveries per second): fast enough for any backlog to drain in
/// minutes, slow enough that other webhooks' due work interleaves with it.
pub const RESUME_PACE_PER_S: f64 = 1_000.0;

/// The §12 fields a create or change carries; `None` leaves one as it is.
#[derive(Debug, Clone, Default)]
pub struct ControlChanges {
    /// `Some(None)` clears the filter.
    pub filter: Option<Option<Value>>,
    /// `"fifo"` or `"none"`.
    pub ordering: Option<String>,
}

/// Applies `changes` to `w`, recording every invalid field in `errors`
/// (a filter's names the operator or path: `filter.data.amount.$gt`).
pub fn apply_control(w: &mut Webhook, changes: &ControlChanges, errors: &mut ValidationErrors) {
    if let Some(f) = &changes.filter {
        w.control.filter = match f {
            None | Some(Value::Null) => None,
            Some(doc) => match validate_filter(doc) {
                Ok(text) => Some(text),
                Err(e) => {
                    errors.add(e.field, e.message);
                    None
                }
            },
        };
    }
    if let Some(o) = &changes.ordering
        && let Some(o) = errors.check("ordering", Ordering::parse(o))
    {
        w.control.ordering = o;
    }
}

/// Pauses a webhook: its waiting deliveries, and new ones, wait without
/// being attempted or aging until it is resumed.
pub async fn pause_webhook(ops: &Services, tenant: &str, id: i64, now: i64) -> OpResult<Webhook> {
    set_paused(ops, tenant, id, true, now).await
}

/// Resumes a paused webhook: its waiting deliveries go out in publish
/// order at its rate limit (or at `RESUME_PACE_PER_S`), paced by
/// `ops::backlog_pacer`.
pub async fn resume_webhook(ops: &Services, tenant: &str, id: i64, now: i64) -> OpResult<Webhook> {
    set_paused(ops, tenant, id, false, now).await
}

async fn set_paused(
    ops: &Services,
    tenant: &str,
    id: i64,
    paused: bool,
    now: i64,
) -> OpResult<Webhook> {
    let (w, changed) = ops
        .store
        .set_webhook_paused(tenant, id, paused, now)
        .await?
        .ok_or(OpError::NotFound("webhook"))?;
    ops.webhook_changed(id);
    ops.pacer.forget(id).await;
    // The change is committed: a slice that fails now is the maintenance
    // loop's to redo (a pause's parking is kept to retry; a resumed backlog
    // is found in the store), not a failure of the request.
    if paused {
        // The pause is in force once committed: this instance's dispatcher
        // has forgotten the webhook and parks whatever of it it claims.
        // Parking the waiting deliveries (a slice, then one a tick) is
        // background work, so the answer does not wait behind a writer
        // busy with other webhooks' traffic.
        let (store, pacer, tenant) = (ops.store.clone(), ops.pacer.clone(), tenant.to_owned());
        tokio::spawn(async move {
            if let Err(e) = pacer.park(store.as_ref(), &tenant, id).await {
                tracing::warn!(error = %e, webhook.id = id, "the first slice of a pause failed; the next tick retries");
            }
        });
    } else if let Err(e) = ops
        .pacer
        .pace(ops.store.as_ref(), tenant, id, w.rate_limit, now)
        .await
    {
        // The backlog's first slice goes now; the maintenance loop paces
        // the rest.
        tracing::warn!(error = %e, webhook.id = id, "the first slice of a resume failed; the next tick retries");
    }
    // Resumed deliveries (and an operational event) are due now.
    ops.wake_dispatcher();
    if changed {
        let what = if paused { "paused" } else { "resumed" };
        tracing::info!(webhook.id = id, tenant = %tenant, "webhook {what}");
    }
    Ok(w)
}
