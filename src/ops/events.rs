//! The event log: pages of events, and one event with its deliveries.

use crate::store::{DeliveryFilter, DeliveryRecord, EventFilter, EventRecord};

use super::{CursorPage, OpError, OpResult, Services};

/// The most deliveries shown with one event.
const EVENT_DELIVERIES: u64 = 500;

/// Up to `limit` of the tenant's events matching `filter`, newest first,
/// older than the cursor `before` if given.
pub async fn list_events(
    ops: &Services,
    tenant: &str,
    filter: &EventFilter,
    before: Option<i64>,
    limit: u64,
) -> OpResult<CursorPage<EventRecord>> {
    let rows = ops
        .store
        .list_events(tenant, filter, before, limit + 1)
        .await?;
    Ok(CursorPage::from_rows(rows, limit, |e| e.seq))
}

/// One event and (up to 500 of) its deliveries.
pub async fn get_event(
    ops: &Services,
    tenant: &str,
    id: String,
) -> OpResult<(EventRecord, Vec<DeliveryRecord>)> {
    let event = ops
        .store
        .get_event(tenant, &id)
        .await?
        .ok_or(OpError::NotFound("event"))?;
    let filter = DeliveryFilter {
        event_id: Some(id),
        ..DeliveryFilter::default()
    };
    let deliveries = ops
        .store
        .list_deliveries(tenant, &filter, None, EVENT_DELIVERIES)
        .await?;
    Ok((event, deliveries))
}
