//! Operational events (SPEC §12): what hookd publishes about its own
//! webhooks and deliveries into the operator tenant, as ordinary events of
//! the `hookd` category. Pure: the store writes the event in the same
//! transaction as its cause.
//!
//! Invariant: a cause in the operator tenant itself makes no event, so an
//! operational webhook that fails (or is suspended) cannot feed itself.

use super::delivery::NewEvent;

/// The category, and the prefix no publisher may use.
pub const CATEGORY: &str = "hookd";
pub const OPERATIONAL_PREFIX: &str = "hookd.";

/// The event types, in the catalogue's order.
pub const EVENT_TYPES: [&str; 9] = [
    "hookd.delivery.exhausted",
    "hookd.webhook.created",
    "hookd.webhook.deleted",
    "hookd.webhook.paused",
    "hookd.webhook.recovered",
    "hookd.webhook.resumed",
    "hookd.webhook.suspended",
    "hookd.webhook.unsuspended",
    "hookd.webhook.updated",
];

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Happening {
    Created,
    Updated,
    Deleted,
    Paused,
    Resumed,
    /// By failure handling or a 410.
    Suspended,
    Unsuspended,
    /// The first success after failures.
    Recovered,
    /// A delivery became `failed`.
    Exhausted,
}

impl Happening {
    pub fn event_type(self) -> &'static str {
        match self {
            Happening::Created => "hookd.webhook.created",
            Happening::Updated => "hookd.webhook.updated",
            Happening::Deleted => "hookd.webhook.deleted",
            Happening::Paused => "hookd.webhook.paused",
            Happening::Resumed => "hookd.webhook.resumed",
            Happening::Suspended => "hookd.webhook.suspended",
            Happening::Unsuspended => "hookd.webhook.unsuspended",
            Happening::Recovered => "hookd.webhook.recovered",
            Happening::Exhausted => "hookd.delivery.exhausted",
        }
    }
}

/// The delivery an `Exhausted` cause is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRef {
    pub delivery_id: i64,
    pub event_id: String,
    pub event_type: String,
}

/// A change that causes an operational event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub happening: Happening,
    pub tenant: String,
    pub webhook_id: i64,
    pub delivery: Option<DeliveryRef>,
}

/// Where operational events go: `--operational-tenant`, in its default
/// environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationalTarget {
    pub tenant: String,
    pub environment: String,
}

impl OperationalTarget {
    /// The event a cause makes, `None` for a cause in the operator tenant
    /// (no loop). `id` is a fresh event id.
    pub fn event(&self, cause: &Cause, id: String, now: i64) -> Option<NewEvent> {
        if cause.tenant == self.tenant {
            return None;
        }
        let mut data = serde_json::json!({
            "tenant": cause.tenant,
            "webhook_id": cause.webhook_id,
        });
        if let Some(d) = &cause.delivery {
            data["delivery_id"] = d.delivery_id.into();
            data["event_id"] = d.event_id.clone().into();
            data["event_type"] = d.event_type.clone().into();
        }
        Some(NewEvent {
            id,
            tenant_id: self.tenant.clone(),
            event_type: cause.happening.event_type().to_owned(),
            environment: self.environment.clone(),
            data: data.to_string(),
            idempotency_key: None,
            created_at: now,
            only_webhook: None,
            ordering_key: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> OperationalTarget {
        OperationalTarget {
            tenant: "ops".into(),
            environment: "production".into(),
        }
    }

    #[test]
    fn a_delivery_cause_carries_its_event_in_data() {
        let cause = Cause {
            happening: Happening::Exhausted,
            tenant: "acme".into(),
            webhook_id: 7,
            delivery: Some(DeliveryRef {
                delivery_id: 9,
                event_id: "evt_1".into(),
                event_type: "license.created".into(),
            }),
        };
        let e = target().event(&cause, "evt_x".into(), 5).unwrap();
        assert_eq!(e.tenant_id, "ops");
        assert_eq!(e.event_type, "hookd.delivery.exhausted");
        let data: serde_json::Value = serde_json::from_str(&e.data).unwrap();
        assert_eq!(
            data,
            serde_json::json!({"tenant": "acme", "webhook_id": 7, "delivery_id": 9,
                "event_id": "evt_1", "event_type": "license.created"})
        );
    }

    #[test]
    fn the_operator_tenant_causes_none() {
        let cause = Cause {
            happening: Happening::Suspended,
            tenant: "ops".into(),
            webhook_id: 1,
            delivery: None,
        };
        assert!(target().event(&cause, "evt_x".into(), 5).is_none());
    }

    #[test]
    fn every_happening_has_a_listed_type() {
        use Happening::*;
        for h in [
            Created,
            Updated,
            Deleted,
            Paused,
            Resumed,
            Suspended,
            Unsuspended,
            Recovered,
            Exhausted,
        ] {
            assert!(EVENT_TYPES.contains(&h.event_type()));
        }
    }
}
