//! Operational events of management changes (SPEC §12), written inside the
//! change's own transaction: the event and its deliveries, planned by
//! `domain::fanout` like any publish (filters and ordering included),
//! inserted unleased and due now, so any instance's scheduler claims them.

use std::collections::HashMap;
use std::sync::Arc;

use super::Backend;
use super::Db;
use crate::domain::fanout::{Audience, PublishPlan};
use crate::domain::operational::{Cause, Happening};
use crate::store::StoreResult;
use crate::store::hot_sql::{
    CUSTOM_CATEGORIES, INSERT_DELIVERY_COLUMNS, INSERT_EVENT_COLUMNS, SUBSCRIBERS, SubscriberRow,
    subscriber,
};

type Conn = <Db as sqlx::Database>::Connection;

/// A row of `SUBSCRIBERS`: id, events, suspended, filter, version,
/// ordered, paused.
type SubscriberTuple = (i64, String, bool, Option<String>, i64, bool, bool);

impl Backend {
    /// Publishes the operational event of `happening` to webhook `id` of
    /// `tenant`, if an operator tenant is set and it is not that tenant.
    pub(super) async fn publish_operational(
        &self,
        conn: &mut Conn,
        happening: Happening,
        tenant: &str,
        id: i64,
        now: i64,
    ) -> StoreResult<()> {
        let Some(target) = self.shared.operational.get() else {
            return Ok(());
        };
        let cause = Cause {
            happening,
            tenant: tenant.to_owned(),
            webhook_id: id,
            delivery: None,
        };
        let Some(event) = target.event(&cause, crate::publish::new_event_id(now), now) else {
            return Ok(());
        };
        let events = [event];
        let mut plan = PublishPlan::new(&events, [], now);
        let mut audience = Audience::default();
        for &(tenant, environment) in &plan.groups {
            let rows: Vec<SubscriberTuple> = sqlx::query_as(SUBSCRIBERS)
                .bind(tenant)
                .bind(environment)
                .fetch_all(&mut *conn)
                .await?;
            let mut subscribers = Vec::with_capacity(rows.len());
            for (id, events, suspended, filter, version, ordered, paused) in rows {
                let row = SubscriberRow {
                    id,
                    events,
                    suspended,
                    filter,
                    version,
                    ordered,
                    paused,
                };
                subscribers.push(subscriber(row, &self.shared.filters)?);
            }
            // Fan-out goes through a group's webhooks in id order, as on the hot path.
            subscribers.sort_unstable_by_key(|s| s.id);
            audience.subscribers.push(Arc::new(subscribers));
        }
        for &tenant in &plan.tenants {
            let rows: Vec<(String, String)> = sqlx::query_as(CUSTOM_CATEGORIES)
                .bind(tenant)
                .fetch_all(&mut *conn)
                .await?;
            audience
                .categories
                .push(Arc::new(rows.into_iter().collect::<HashMap<_, _>>()));
        }
        plan.fan_out(&audience, None, now);
        let e = &events[0];
        let insert_event =
            format!("{INSERT_EVENT_COLUMNS} VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq");
        let seq: i64 = sqlx::query_scalar(&insert_event)
            .bind(&e.id)
            .bind(&e.tenant_id)
            .bind(&e.event_type)
            .bind(&e.environment)
            .bind(&e.data)
            .bind(&e.idempotency_key)
            .bind(i64::from(plan.counts[0]))
            .bind(e.created_at)
            .fetch_one(&mut *conn)
            .await?;
        let insert_delivery = format!(
            "{INSERT_DELIVERY_COLUMNS} VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, $7, $7, $8)"
        );
        for d in &plan.deliveries {
            sqlx::query(&insert_delivery)
                .bind(&e.tenant_id)
                .bind(seq)
                .bind(d.webhook_id)
                .bind(&e.event_type)
                .bind(d.status.as_str())
                .bind(d.next_attempt_at)
                .bind(now)
                .bind(d.ordered.then_some(""))
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}
