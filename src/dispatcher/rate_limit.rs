//! Per-webhook rate limits, as a GCRA (virtual scheduling) reservation:
//! each delivery reserves the next free slot, with a burst of up to one
//! second's worth of deliveries.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct RateLimiter {
    /// Webhook id → theoretical arrival time of the next delivery (ms, fractional).
    tat: Mutex<HashMap<i64, f64>>,
}

impl RateLimiter {
    /// Reserves a slot for one delivery at `per_second`; returns how long to
    /// wait (ms) before sending.
    pub fn reserve(&self, webhook_id: i64, per_second: u32, now_ms: i64) -> u64 {
        let interval = 1000.0 / f64::from(per_second.max(1));
        let tolerance = 1000.0 - interval;
        let now = now_ms as f64;
        let mut map = self.tat.lock().expect("rate limiter");
        let tat = map.entry(webhook_id).or_insert(now);
        let start = tat.max(now);
        let wait = (start - tolerance - now).max(0.0);
        *tat = start + interval;
        wait.ceil() as u64
    }

    /// Gives back a reservation that will not be used.
    pub fn refund(&self, webhook_id: i64, per_second: u32) {
        let interval = 1000.0 / f64::from(per_second.max(1));
        if let Some(tat) = self.tat.lock().expect("rate limiter").get_mut(&webhook_id) {
            *tat -= interval;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_of_burst_then_one_slot_per_interval() {
        let r = RateLimiter::default();
        let waits: Vec<u64> = (0..12).map(|_| r.reserve(1, 10, 0)).collect();
        assert_eq!(&waits[..10], &[0; 10]);
        assert_eq!(waits[10], 100);
        assert_eq!(waits[11], 200);
    }

    #[test]
    fn webhooks_have_separate_budgets_and_refunds_return_slots() {
        let r = RateLimiter::default();
        for _ in 0..10 {
            r.reserve(1, 10, 0);
        }
        assert_eq!(r.reserve(2, 10, 0), 0);
        assert_eq!(r.reserve(1, 10, 0), 100);
        r.refund(1, 10);
        assert_eq!(r.reserve(1, 10, 0), 100);
    }

    #[test]
    fn budget_refills_with_time() {
        let r = RateLimiter::default();
        for _ in 0..10 {
            r.reserve(1, 10, 0);
        }
        assert_eq!(r.reserve(1, 10, 1_000), 0);
    }
}
