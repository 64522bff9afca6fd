//! Actions on a webhook's deliveries: a test send, and recovery of what
//! failed or was diverted. Both reach the engine (the publisher, the
//! scheduler), not only the store.

use crate::domain::delivery::{NewEvent, PublishedEvent};
use crate::domain::event_type::TEST_EVENT_TYPE;
use crate::publish::new_event_id;

use super::webhooks::get_webhook;
use super::{OpError, OpResult, Services};

/// Publishes a `webhook.test` event to webhook `id` alone, whatever its
/// subscriptions.
pub async fn send_test_event(
    ops: &Services,
    tenant: &str,
    id: i64,
    now: i64,
) -> OpResult<PublishedEvent> {
    let webhook = get_webhook(ops, tenant, id).await?;
    let data = serde_json::json!({
        "webhook_id": webhook.id,
        "message": "This is a test event sent by hookd.",
    });
    let event = NewEvent {
        id: new_event_id(now),
        tenant_id: tenant.to_owned(),
        event_type: TEST_EVENT_TYPE.to_owned(),
        environment: webhook.environment,
        data: data.to_string(),
        idempotency_key: None,
        created_at: now,
        only_webhook: Some(webhook.id),
        ordering_key: None,
    };
    let mut results = ops.publisher.publish(vec![event]).await?;
    Ok(results.remove(0))
}

/// Re-queues the webhook's failed and diverted deliveries created at or
/// after `since` (epoch ms), with fresh schedules; answers how many.
pub async fn recover_webhook(
    ops: &Services,
    tenant: &str,
    id: i64,
    since: i64,
    now: i64,
) -> OpResult<u64> {
    get_webhook(ops, tenant, id).await?;
    let requeued = ops.store.recover_webhook(tenant, id, since, now).await?;
    ops.wake_dispatcher();
    tracing::info!(webhook.id = id, tenant = %tenant, requeued, "deliveries recovered");
    Ok(requeued)
}

/// Publishes the example of `event_type` (from the tenant's catalogue) to
/// webhook `id` alone, whatever its subscriptions: how a receiver is
/// tried with a real payload before real events flow.
pub async fn send_example(
    ops: &Services,
    tenant: &str,
    id: i64,
    event_type: &str,
    now: i64,
) -> OpResult<PublishedEvent> {
    let webhook = get_webhook(ops, tenant, id).await?;
    let catalogue = crate::catalogue::Catalogue::load(ops.store.as_ref(), tenant).await?;
    let entry = catalogue
        .get(event_type)
        .ok_or(OpError::NotFound("event type"))?;
    // The request is well formed; the type's state is what stands in the
    // way, and a PATCH of the type changes it: a conflict, not bad input.
    let Some(example) = entry.example.clone() else {
        return Err(OpError::Conflict(format!(
            "{event_type} has no example to send: set one with PATCH /management/event-types/{event_type}"
        )));
    };
    let event = NewEvent {
        id: new_event_id(now),
        tenant_id: tenant.to_owned(),
        event_type: entry.name.clone(),
        environment: webhook.environment,
        data: example,
        idempotency_key: None,
        ordering_key: None,
        created_at: now,
        only_webhook: Some(webhook.id),
    };
    let mut results = ops.publisher.publish(vec![event]).await?;
    Ok(results.remove(0))
}
