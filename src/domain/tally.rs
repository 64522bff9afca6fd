//! Outcome folding: what a batch of delivery outcomes does to each
//! webhook's failure tracking (§6 failure handling). Pure: the store
//! writes what this folds, with the two statements in `store::hot_sql`.

use std::collections::BTreeMap;

use super::delivery::{DeliveryStatus, Outcome};

/// What one batch's outcomes change on one webhook.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookTally {
    pub webhook_id: i64,
    /// When its last success in the batch happened, if one did: the stored
    /// failure streak is replaced by `failures`; else (`failures` > 0, as a
    /// tally exists only for an attempt) they add to it.
    pub reset_at: Option<i64>,
    /// Failed attempts after that success (or in all the batch).
    pub failures: i64,
    /// When the first of those failures happened.
    pub first_failure: Option<i64>,
    /// The receiver answered 410 Gone: suspend now.
    pub gone: bool,
    /// The webhook's failure handling (from its latest outcome).
    pub min_failures: u32,
    pub suspend_after_ms: u64,
}

impl WebhookTally {
    /// Whether suspension must be checked after the tally is written: only
    /// a failure (or a 410) can suspend.
    pub fn may_suspend(&self) -> bool {
        self.failures > 0 || self.gone
    }

    /// A streak that started at or before this time is long enough.
    pub fn failing_since_at_most(&self, now: i64) -> i64 {
        now - self.suspend_after_ms as i64
    }
}

/// Per webhook, in outcome order: a success resets the failure count; the
/// failures after the last success add to it. Outcomes without an attempt
/// (a diverted or deferred delivery) count for nothing. Ordered by webhook
/// id, so concurrent transactions (several instances) lock webhook rows in
/// the same order and cannot deadlock on them.
pub fn fold_outcomes(outcomes: &[Outcome]) -> Vec<WebhookTally> {
    let mut tallies: BTreeMap<i64, WebhookTally> = BTreeMap::new();
    for o in outcomes {
        let Some(a) = &o.attempt else { continue };
        let t = tallies.entry(o.webhook_id).or_insert_with(|| WebhookTally {
            webhook_id: o.webhook_id,
            ..WebhookTally::default()
        });
        t.min_failures = o.min_failures;
        t.suspend_after_ms = o.suspend_after_ms;
        if o.status == DeliveryStatus::Succeeded {
            t.reset_at = Some(a.attempted_at);
            t.failures = 0;
            t.first_failure = None;
        } else {
            t.failures += 1;
            t.first_failure.get_or_insert(a.attempted_at);
            t.gone |= o.gone;
        }
    }
    tallies.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::delivery::AttemptRecord;

    fn outcome(webhook_id: i64, status: DeliveryStatus, at: Option<i64>, gone: bool) -> Outcome {
        Outcome {
            delivery_id: at.unwrap_or(0),
            tenant_id: "t".into(),
            webhook_id,
            status,
            next_attempt_at: None,
            attempt: at.map(|attempted_at| AttemptRecord {
                attempted_at,
                duration_ms: 1,
                url: "https://hooks.example.test/".into(),
                request_headers: "{}".into(),
                response_status: Some(500),
                response_headers: None,
                response_body: None,
                error_kind: None,
                error: None,
            }),
            min_failures: 3,
            suspend_after_ms: 60_000,
            gone,
            ordered: false,
            exhausted: None,
        }
    }

    #[test]
    fn failures_after_the_last_success_count_from_it() {
        use DeliveryStatus::*;
        let t = fold_outcomes(&[
            outcome(1, Retrying, Some(10), false),
            outcome(1, Succeeded, Some(20), false),
            outcome(1, Retrying, Some(30), false),
            outcome(1, Failed, Some(40), false),
        ]);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].reset_at, Some(20));
        assert_eq!(t[0].failures, 2);
        assert_eq!(t[0].first_failure, Some(30));
        assert!(t[0].may_suspend());
    }

    #[test]
    fn a_success_last_clears_the_streak_and_cannot_suspend() {
        use DeliveryStatus::*;
        let t = fold_outcomes(&[
            outcome(1, Retrying, Some(10), true),
            outcome(1, Succeeded, Some(20), false),
        ]);
        assert_eq!(t[0].failures, 0);
        assert_eq!(t[0].first_failure, None);
        // 410 then success: `gone` stays (the 410 was answered).
        assert!(t[0].gone);
    }

    #[test]
    fn outcomes_without_an_attempt_count_for_nothing() {
        let t = fold_outcomes(&[outcome(1, DeliveryStatus::Diverted, None, false)]);
        assert!(t.is_empty());
    }

    #[test]
    fn tallies_come_in_webhook_order_with_their_handling() {
        use DeliveryStatus::*;
        let t = fold_outcomes(&[
            outcome(9, Retrying, Some(1), false),
            outcome(2, Retrying, Some(2), true),
        ]);
        let ids: Vec<_> = t.iter().map(|t| t.webhook_id).collect();
        assert_eq!(ids, vec![2, 9]);
        assert!(t[0].gone && !t[1].gone);
        assert_eq!(t[0].failing_since_at_most(100_000), 40_000);
        assert_eq!(t[1].reset_at, None);
    }
}
