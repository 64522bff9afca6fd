//! Prometheus metrics: names and labels in one place (docs/metrics.md
//! describes each; ops/prometheus/ alerts on them).

use metrics::{Counter, Histogram, counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::domain::delivery::{DeliveryStatus, ErrorKind, Outcome};

/// Installs the process-wide recorder (once) and returns its renderer.
pub fn install() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    20.0,
                ])
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_ok() {
                let _ = DELIVERY.set(DeliveryMetrics::register());
            }
            handle
        })
        .clone()
}

pub fn http_request(method: &str, route: &str, status: u16, seconds: f64) {
    counter!("hookd_http_requests_total", "method" => method.to_owned(), "route" => route.to_owned(),
        "status" => status.to_string())
    .increment(1);
    histogram!("hookd_http_request_duration_seconds", "route" => route.to_owned()).record(seconds);
}

/// The per-delivery series, registered once: looking a series up by name
/// and labels on every attempt (a key built, hashed and found) was a
/// measurable share of the engine's CPU.
struct DeliveryMetrics {
    duration: Histogram,
    /// By `ErrorKind::ALL`'s order, then success last.
    attempts: Vec<Counter>,
    /// By `DeliveryStatus::ALL`'s order.
    deliveries: Vec<Counter>,
}

static DELIVERY: std::sync::OnceLock<DeliveryMetrics> = std::sync::OnceLock::new();

impl DeliveryMetrics {
    fn register() -> Self {
        let results = ErrorKind::ALL.iter().map(|k| k.as_str()).chain(["success"]);
        Self {
            duration: histogram!("hookd_attempt_duration_seconds"),
            attempts: results
                .map(|r| counter!("hookd_attempts_total", "result" => r))
                .collect(),
            deliveries: DeliveryStatus::ALL
                .iter()
                .map(|s| counter!("hookd_deliveries_total", "outcome" => s.as_str()))
                .collect(),
        }
    }
}

pub fn delivery_outcome(o: &Outcome) {
    // Without the recorder (some tests) there is nothing to count.
    let Some(m) = DELIVERY.get() else { return };
    if let Some(a) = &o.attempt {
        m.duration.record(a.duration_ms as f64 / 1000.0);
        let result = a.error_kind.map_or(ErrorKind::ALL.len(), |k| k as usize);
        m.attempts[result].increment(1);
    }
    m.deliveries[o.status as usize].increment(1);
}

/// One transaction of the commit loop (publishes and outcomes together):
/// its result and how long it took, fsync included.
pub fn store_commit(committed: bool, seconds: f64) {
    let result = if committed { "committed" } else { "failed" };
    counter!("hookd_store_commits_total", "result" => result).increment(1);
    histogram!("hookd_store_commit_duration_seconds").record(seconds);
}

pub fn events_published(n: usize) {
    counter!("hookd_events_published_total").increment(n as u64);
}

/// (event, webhook) pairs a webhook's payload filter turned away (SPEC §12).
pub fn events_filtered(n: u64) {
    if n > 0 {
        counter!("hookd_events_filtered_total").increment(n);
    }
}

pub fn queue(depth: u64, oldest_pending_age_s: f64) {
    gauge!("hookd_queue_depth").set(depth as f64);
    gauge!("hookd_oldest_pending_age_seconds").set(oldest_pending_age_s);
}

pub fn suspended_webhooks(n: u64) {
    gauge!("hookd_webhooks_suspended").set(n as f64);
}

/// The maintenance loop's last pass, in Unix seconds.
pub fn heartbeat(now_ms: i64) {
    gauge!("hookd_heartbeat_timestamp_seconds").set(now_ms as f64 / 1000.0);
}
