//! The delivery engine end to end (SPEC §5–§7): fan-out, the delivered
//! request, retries and their schedule, Retry-After, redirects, timeouts,
//! connection errors, 410 and failure-handling suspension, unsuspend,
//! recover, manual retry, test sends, idempotent publishing, batches,
//! validation, permissions, the response-body limit, the delivery log's
//! cursor, tenant isolation and metrics.
//!
//! Every test runs the real binary against a real HTTP receiver on
//! 127.0.0.1 (hence `--allow-private-targets`) with millisecond retry
//! schedules, and waits by polling with deadlines.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::receiver::{Receiver, Reply, closing_server};
use crate::common::{ServerConfig, TestServer, assert_field_error, send};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};

mod connections;
mod failures;
mod log;
mod publishing;
mod requests;
mod retries;
mod suspension;

const WAIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- helpers

/// A server that may deliver to 127.0.0.1, with a fast default schedule.
async fn server(dir: &Path) -> TestServer {
    ServerConfig::new(dir)
        .arg("--allow-private-targets")
        .arg("--retry-schedule")
        .arg("50ms,100ms")
        .start()
        .await
}

/// Publishes one event; asserts 202 and answers the body.
async fn publish(s: &TestServer, body: Value) -> Value {
    let (status, json) = s.post("/v1/events", body.clone()).await;
    assert_eq!(status, 202, "publishing {body} answered {status}: {json}");
    json
}

async fn publish_type(s: &TestServer, event_type: &str) -> Value {
    publish(s, json!({"type": event_type, "data": {"n": 1}})).await
}

/// The event with its deliveries.
async fn event(s: &TestServer, id: &str) -> Value {
    let (status, json) = s.get(&format!("/management/events/{id}")).await;
    assert_eq!(status, 200, "GET event {id}: {json}");
    json
}

/// The id of the only delivery of `event_id`.
async fn only_delivery(s: &TestServer, event_id: &str) -> i64 {
    let e = event(s, event_id).await;
    let ds = e["deliveries"].as_array().expect("deliveries array");
    assert_eq!(ds.len(), 1, "expected one delivery for {event_id}: {e}");
    ds[0]["id"].as_i64().unwrap()
}

async fn delivery(s: &TestServer, id: i64) -> Value {
    let (status, json) = s.get(&format!("/management/deliveries/{id}")).await;
    assert_eq!(status, 200, "GET delivery {id}: {json}");
    json
}

/// Polls the delivery until `pred` holds.
async fn wait_delivery(
    s: &TestServer,
    id: i64,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let d = delivery(s, id).await;
        if pred(&d) {
            return d;
        }
        if Instant::now() > deadline {
            panic!(
                "delivery {id}: still not {what} after {WAIT:?}: {d}\nlog:\n{}",
                s.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_status(s: &TestServer, id: i64, status: &str) -> Value {
    wait_delivery(s, id, status, |d| d["status"] == status).await
}

/// Polls the webhook until `pred` holds.
async fn wait_webhook(s: &TestServer, id: i64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, w) = s.get(&format!("/management/webhooks/{id}")).await;
        assert_eq!(status, 200, "{w}");
        if pred(&w) {
            return w;
        }
        if Instant::now() > deadline {
            panic!("webhook {id}: still not {what} after {WAIT:?}: {w}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn wid(w: &Value) -> i64 {
    w["id"].as_i64().expect("webhook id")
}

fn attempts(d: &Value) -> &Vec<Value> {
    d["attempts"].as_array().expect("attempts array")
}

/// All deliveries matching `query` (follows the cursor).
async fn list_all(s: &TestServer, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => format!("/management/deliveries?{query}"),
            Some(c) => format!("/management/deliveries?{query}&cursor={c}"),
        };
        let (status, page) = s.get(&path).await;
        assert_eq!(status, 200, "GET {path}: {page}");
        out.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

fn now_rfc3339_minus(secs: i64) -> String {
    let t = time::OffsetDateTime::now_utc() - time::Duration::seconds(secs);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}
