//! Receiver authentication and signing options (SPEC §13), end to end:
//! OAuth2 client credentials against a token server on loopback that
//! counts, expires and fails on cue (`oauth2`); Basic authentication
//! (`basic`); a client certificate presented to an https receiver that
//! requires one, and a private CA trusted for one webhook alone (`mtls`);
//! `v1a` Ed25519 signatures checked by Python `cryptography`, across a
//! rotation (`v1a`); what the API shows, clears and refuses
//! (`validation`).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{ServerConfig, TestServer};

mod basic;
mod mtls;
mod oauth2;
mod v1a;
mod validation;

const WAIT: Duration = Duration::from_secs(30);

/// A server that may deliver to 127.0.0.1.
async fn server(dir: &Path) -> TestServer {
    ServerConfig::new(dir)
        .arg("--allow-private-targets")
        .start()
        .await
}

async fn publish(s: &TestServer) -> String {
    let (status, p) = s
        .post(
            "/v1/events",
            json!({"type": "license.created", "data": {"n": 1}}),
        )
        .await;
    assert_eq!(status, 202, "{p}");
    p["id"].as_str().unwrap().to_owned()
}

/// The only delivery of event `event_id`, once `pred` holds for it.
async fn wait_delivery(s: &TestServer, event_id: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, e) = s.get(&format!("/management/events/{event_id}")).await;
        assert_eq!(status, 200, "{e}");
        if let Some(id) = e["deliveries"][0]["id"].as_i64() {
            let (status, d) = s.get(&format!("/management/deliveries/{id}")).await;
            assert_eq!(status, 200, "{d}");
            if pred(&d) {
                return d;
            }
            if Instant::now() > deadline {
                panic!("delivery {id} did not get there: {d}\nlog:\n{}", s.log());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_status(s: &TestServer, event_id: &str, status: &str) -> Value {
    wait_delivery(s, event_id, |d| d["status"] == status).await
}

fn attempts(d: &Value) -> &Vec<Value> {
    d["attempts"].as_array().expect("attempts")
}

/// Asserts none of `secrets` appears in `text`.
fn assert_hidden(text: &str, secrets: &[&str], what: &str) {
    for s in secrets {
        assert!(!text.contains(s), "{what} shows {s:?}: {text}");
    }
}
