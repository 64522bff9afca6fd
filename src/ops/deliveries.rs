//! The delivery log, one delivery with its attempts, and manual retry.

use crate::store::{AttemptRow, DeliveryFilter, DeliveryRecord};

use super::{CursorPage, OpError, OpResult, Services};

/// Up to `limit` of the tenant's deliveries matching `filter`, newest
/// first, older than the cursor `before` if given.
pub async fn list_deliveries(
    ops: &Services,
    tenant: &str,
    filter: &DeliveryFilter,
    before: Option<i64>,
    limit: u64,
) -> OpResult<CursorPage<DeliveryRecord>> {
    let rows = ops
        .store
        .list_deliveries(tenant, filter, before, limit + 1)
        .await?;
    Ok(CursorPage::from_rows(rows, limit, |d| d.id))
}

/// One delivery with every attempt, oldest first.
pub async fn get_delivery(
    ops: &Services,
    tenant: &str,
    id: i64,
) -> OpResult<(DeliveryRecord, Vec<AttemptRow>)> {
    ops.store
        .get_delivery(tenant, id)
        .await?
        .ok_or(OpError::NotFound("delivery"))
}

/// Re-queues a delivery for an attempt now, with a fresh schedule,
/// whatever its status.
pub async fn retry_delivery(
    ops: &Services,
    tenant: &str,
    id: i64,
    now: i64,
) -> OpResult<DeliveryRecord> {
    let d = ops
        .store
        .retry_delivery(tenant, id, now)
        .await?
        .ok_or(OpError::NotFound("delivery"))?;
    ops.wake_dispatcher();
    tracing::info!(delivery.id = id, tenant = %tenant, "delivery re-queued by request");
    Ok(d)
}
