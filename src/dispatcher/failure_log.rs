//! Failed and refused attempts at the default log level, so that someone
//! watching the log sees why a delivery did not arrive — bounded, so that
//! a receiver that is down does not flood it: at most `PER_WINDOW` lines
//! per `WINDOW`, then one line saying how many were left out.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::delivery::AttemptRecord;

const WINDOW: Duration = Duration::from_secs(10);
const PER_WINDOW: u32 = 10;

/// The budget of failure lines (one per dispatcher).
pub struct FailureLog {
    state: Mutex<Window>,
}

struct Window {
    started: Instant,
    logged: u32,
    left_out: u64,
}

impl Default for FailureLog {
    fn default() -> Self {
        Self {
            state: Mutex::new(Window {
                started: Instant::now(),
                logged: 0,
                left_out: 0,
            }),
        }
    }
}

impl FailureLog {
    /// Logs one attempt that did not succeed, if the window has room.
    /// `next` says what happens to the delivery now.
    pub fn attempt_failed(
        &self,
        delivery_id: i64,
        webhook_id: i64,
        attempt: i64,
        record: &AttemptRecord,
        next: &str,
    ) {
        let left_out = {
            let mut w = self.state.lock().expect("failure log lock");
            let mut left_out = 0;
            if w.started.elapsed() >= WINDOW {
                left_out = w.left_out;
                *w = Window {
                    started: Instant::now(),
                    logged: 0,
                    left_out: 0,
                };
            }
            if w.logged >= PER_WINDOW {
                w.left_out += 1;
                return;
            }
            w.logged += 1;
            left_out
        };
        if left_out > 0 {
            tracing::warn!(
                left_out,
                "{left_out} more failed attempts were not logged (at most {PER_WINDOW} per {} s)",
                WINDOW.as_secs()
            );
        }
        // The URL is the stored one (no credentials: URLs with a user name
        // are refused); headers and bodies are not logged.
        let reason = reason(record);
        tracing::warn!(
            delivery.id = delivery_id,
            webhook.id = webhook_id,
            attempt,
            url = %record.url,
            http.status = record.response_status,
            error.kind = record.error_kind.map(|k| k.as_str()),
            next,
            "delivery attempt failed: {reason}"
        );
    }
}

/// Why an attempt failed, in words.
pub fn reason(record: &AttemptRecord) -> String {
    match (record.response_status, &record.error) {
        (Some(s), _) => format!("the receiver answered {s}"),
        (None, Some(e)) => e.clone(),
        (None, None) => "no answer".into(),
    }
}
