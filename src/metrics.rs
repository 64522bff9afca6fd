//! Prometheus metrics: names and labels in one place (docs/metrics.md
//! describes each; ops/prometheus/ alerts on them).

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::domain::delivery::Outcome;

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
            let _ = metrics::set_global_recorder(recorder);
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

pub fn delivery_outcome(o: &Outcome) {
    if let Some(a) = &o.attempt {
        histogram!("hookd_attempt_duration_seconds").record(a.duration_ms as f64 / 1000.0);
        counter!("hookd_attempts_total", "result" => a.error_kind.map_or("success", |k| k.as_str())).increment(1);
    }
    counter!("hookd_deliveries_total", "outcome" => o.status.as_str()).increment(1);
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
