//! The event-type catalogue and subscription matching.
//!
//! A type's name is dot-separated lowercase segments (`license.activated`);
//! its category is the first segment unless the tenant gave it another one
//! (`invoice.paid` in `billing`). A subscription is either an exact name or
//! `category.*`, which matches every type whose name starts with
//! `category.` and every type of that category. Archiving a type never
//! changes which existing subscriptions receive it.

/// The event type hookd sends for `POST /management/webhooks/{id}/test`.
pub const TEST_EVENT_TYPE: &str = "webhook.test";

/// Seeded types: every event the seeds name, plus `webhook.test`.
pub const BUILTIN_EVENT_TYPES: &[(&str, &str)] = &[
    // Operational events (SPEC §12): published by hookd alone, into the
    // operator tenant (`domain::operational`).
    (
        "hookd.delivery.exhausted",
        "A delivery of a tenant exhausted its retry schedule (operational).",
    ),
    (
        "hookd.webhook.created",
        "A tenant's webhook was created (operational).",
    ),
    (
        "hookd.webhook.deleted",
        "A tenant's webhook was deleted (operational).",
    ),
    (
        "hookd.webhook.paused",
        "A tenant's webhook was paused (operational).",
    ),
    (
        "hookd.webhook.recovered",
        "A tenant's webhook succeeded after failures (operational).",
    ),
    (
        "hookd.webhook.resumed",
        "A tenant's webhook was resumed (operational).",
    ),
    (
        "hookd.webhook.suspended",
        "A tenant's webhook was suspended (operational).",
    ),
    (
        "hookd.webhook.unsuspended",
        "A tenant's webhook was unsuspended (operational).",
    ),
    (
        "hookd.webhook.updated",
        "A tenant's webhook was changed (operational).",
    ),
    ("license.generated", "A license was generated."),
    ("license.created", "A license was created."),
    ("license.updated", "A license was updated."),
    ("license.deleted", "A license was deleted."),
    ("license.assigned", "A license was assigned to a customer."),
    ("license.activated", "A license was activated on a device."),
    ("license.deactivated", "A license was deactivated."),
    ("license.suspended", "A license was suspended."),
    ("license.expired", "A license expired."),
    ("license.revoked", "A license was revoked."),
    ("license.validated", "A license passed validation."),
    ("license.validation_failed", "A license failed validation."),
    ("activation.created", "An activation was created."),
    ("activation.deleted", "An activation was deleted."),
    ("activation.failed", "An activation attempt failed."),
    ("product.created", "A product was created."),
    ("product.updated", "A product was updated."),
    ("product.deleted", "A product was deleted."),
    ("contract.created", "A contract was created."),
    ("contract.updated", "A contract was updated."),
    ("contract.deleted", "A contract was deleted."),
    ("contract.suspended", "A contract was suspended."),
    ("telemetry.received", "Telemetry was received."),
    ("telemetry.flagged", "Telemetry was flagged for review."),
    // Named by seed 002's document.
    (
        "business_validation_rule.assignment.created",
        "A business validation rule was assigned.",
    ),
    ("redemption.succeeded", "A redemption succeeded."),
    (TEST_EVENT_TYPE, "A test event sent on request."),
];

pub fn is_builtin(name: &str) -> bool {
    BUILTIN_EVENT_TYPES.iter().any(|(n, _)| *n == name)
}

/// The category of a type name: its first segment.
pub fn category_of(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Checks an event type name such as `invoice.paid`.
pub fn validate_event_type_name(name: &str) -> Result<(), String> {
    if name.len() > 128 {
        return Err("must be at most 128 characters".into());
    }
    let segments: Vec<&str> = name.split('.').collect();
    if segments.len() < 2 || !segments.iter().all(|s| valid_segment(s)) {
        return Err(format!(
            "{name:?} is not an event type name; expected dot-separated lowercase segments such as \"invoice.paid\""
        ));
    }
    Ok(())
}

/// A subscription entry: an exact type or a `category.*` wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subscription<'a> {
    Exact(&'a str),
    Category(&'a str),
}

impl<'a> Subscription<'a> {
    /// Parses the syntax only; whether the type exists is the caller's check.
    pub fn parse(s: &'a str) -> Option<Self> {
        if let Some(category) = s.strip_suffix(".*") {
            return valid_segment(category).then_some(Subscription::Category(category));
        }
        validate_event_type_name(s)
            .ok()
            .map(|_| Subscription::Exact(s))
    }
}

/// Whether a webhook subscribed to `subscriptions` receives `event_type`,
/// whose category is `category` when the tenant set one apart from its
/// first segment.
pub fn subscribes_to(subscriptions: &[String], event_type: &str, category: Option<&str>) -> bool {
    subscriptions.iter().any(|s| match s.strip_suffix(".*") {
        Some(wildcard) => {
            category == Some(wildcard)
                || event_type
                    .strip_prefix(wildcard)
                    .is_some_and(|rest| rest.starts_with('.'))
        }
        None => s == event_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_matches_its_category_only() {
        let subs = vec!["license.*".to_string()];
        assert!(subscribes_to(&subs, "license.activated", None));
        assert!(!subscribes_to(&subs, "licenses.activated", None));
        assert!(!subscribes_to(&subs, "activation.created", None));
    }

    #[test]
    fn wildcard_matches_a_tenant_category_too() {
        let subs = vec!["billing.*".to_string()];
        assert!(subscribes_to(&subs, "invoice.paid", Some("billing")));
        assert!(!subscribes_to(&subs, "invoice.paid", None));
    }

    #[test]
    fn exact_subscription_matches_exactly() {
        let subs = vec!["license.revoked".to_string()];
        assert!(subscribes_to(&subs, "license.revoked", None));
        assert!(!subscribes_to(&subs, "license.revoked_x", None));
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_event_type_name("invoice.paid").is_ok());
        assert!(validate_event_type_name("a.b_c.d2").is_ok());
        assert!(validate_event_type_name("invoice").is_err());
        assert!(validate_event_type_name("Invoice.Paid").is_err());
        assert!(validate_event_type_name("invoice..paid").is_err());
        assert!(validate_event_type_name("invoice.paid!").is_err());
    }

    #[test]
    fn subscription_syntax() {
        assert_eq!(
            Subscription::parse("license.*"),
            Some(Subscription::Category("license"))
        );
        assert_eq!(
            Subscription::parse("license.created"),
            Some(Subscription::Exact("license.created"))
        );
        assert_eq!(Subscription::parse("*"), None);
        assert_eq!(Subscription::parse("license.*.x"), None);
    }

    #[test]
    fn catalogue_has_seed_events_and_test_event() {
        for name in [
            "license.generated",
            "license.validation_failed",
            "telemetry.flagged",
            "webhook.test",
        ] {
            assert!(is_builtin(name), "{name}");
        }
        for (name, _) in BUILTIN_EVENT_TYPES {
            assert!(validate_event_type_name(name).is_ok(), "{name}");
        }
    }
}
