//! Signatures checked by an independent implementation: the official
//! Standard Webhooks Python library (`standardwebhooks`, which
//! `scripts/test` installs) verifies real deliveries, rejects tampered
//! ones, and accepts both
//! signatures while a rotated-out secret is still live (SPEC §6).

use crate::common;

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::common::receiver::{Received, Receiver};
use crate::common::{ServerConfig, TestServer};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// Verifies `argv[1]` (body file) with the headers in `argv[2]` (JSON) and
/// the secret in `argv[3]`. Exit 0: verified; 3: rejected; else: broken.
const VERIFY_PY: &str = r#"
import json, sys
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
body = open(sys.argv[1], "rb").read()
headers = json.load(open(sys.argv[2]))
secret = open(sys.argv[3]).read().strip()
try:
    payload = Webhook(secret).verify(body, headers)
except WebhookVerificationError as e:
    print("rejected:", e)
    sys.exit(3)
print("verified", payload["id"])
"#;

static PYTHON_READY: OnceLock<bool> = OnceLock::new();

/// Fails, saying what to do, unless python3 can import `standardwebhooks`
/// (`scripts/test` installs it; a test never installs anything itself).
fn require_standardwebhooks() {
    let importable = PYTHON_READY.get_or_init(|| {
        Command::new("python3")
            .args(["-c", "import standardwebhooks"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    });
    assert!(
        *importable,
        "python3 cannot import standardwebhooks, the independent verifier of this test: \
         run scripts/test, which installs it (python3 -m pip install standardwebhooks)"
    );
}

/// Runs the Python verifier; true when it accepts.
fn python_verifies(dir: &Path, tag: &str, body: &[u8], headers: &Value, secret: &str) -> bool {
    require_standardwebhooks();
    let body_path = dir.join(format!("{tag}.body"));
    let headers_path = dir.join(format!("{tag}.headers.json"));
    let secret_path = dir.join(format!("{tag}.secret"));
    std::fs::write(&body_path, body).unwrap();
    std::fs::write(&headers_path, headers.to_string()).unwrap();
    std::fs::write(&secret_path, secret).unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg(VERIFY_PY)
        .arg(&body_path)
        .arg(&headers_path)
        .arg(&secret_path)
        .output()
        .expect("running python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => true,
        Some(3) => false,
        _ => panic!(
            "the Python verifier broke ({:?}):\n{stdout}\n{stderr}",
            out.status
        ),
    }
}

/// Every header of a received request, as the verifier takes them.
fn headers_json(r: &Received) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in &r.headers {
        m.insert(k.to_string(), v.to_str().unwrap_or_default().into());
    }
    Value::Object(m)
}

async fn server(dir: &Path) -> TestServer {
    ServerConfig::new(dir)
        .arg("--allow-private-targets")
        .start()
        .await
}

async fn publish(s: &TestServer, data: Value) -> Value {
    let (status, p) = s
        .post(
            "/v1/events",
            json!({"type": "license.created", "data": data}),
        )
        .await;
    assert_eq!(status, 202, "{p}");
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_delivery_verifies_with_the_standard_webhooks_library() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    let w = s.create_webhook(&r.url("/hook"), json!({})).await;
    let secret = w["secret"]
        .as_str()
        .expect("secret in the create answer")
        .to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    // The secret the API shows later is the same.
    let (status, sec) = s
        .get(&format!("/management/webhooks/{}/secret", w["id"]))
        .await;
    assert_eq!(status, 200, "{sec}");
    assert_eq!(sec["secret"], secret.as_str());

    let p = publish(
        &s,
        json!({"license_id": 7, "text": "ünïcødé \"quoted\" \\ back"}),
    )
    .await;
    let got = r.wait_for("/hook", 1, WAIT).await;
    let req = &got[0];
    assert_eq!(req.json()["id"], p["id"]);
    let headers = headers_json(req);

    assert!(
        python_verifies(work.path(), "ok", &req.body, &headers, &secret),
        "standardwebhooks rejected a real delivery; headers {headers}"
    );

    // Tampered body: rejected.
    let mut tampered = req.body.to_vec();
    let pos = tampered
        .iter()
        .position(|b| *b == b'7')
        .expect("a 7 in the body");
    tampered[pos] = b'8';
    assert!(
        !python_verifies(work.path(), "tampered", &tampered, &headers, &secret),
        "a tampered body verified"
    );
    // Tampered webhook-id or timestamp: rejected.
    let mut h = headers.clone();
    h["webhook-id"] = json!("sls-webhook-999999");
    assert!(!python_verifies(work.path(), "id", &req.body, &h, &secret));
    let mut h = headers.clone();
    let ts: i64 = headers["webhook-timestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    h["webhook-timestamp"] = json!((ts - 1).to_string());
    assert!(!python_verifies(work.path(), "ts", &req.body, &h, &secret));
    // Another secret: rejected.
    let other = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    assert!(!python_verifies(
        work.path(),
        "other",
        &req.body,
        &headers,
        other
    ));

    // X-Webhook-Signature carries the same value, so it verifies too.
    let mut h = headers.clone();
    h["webhook-signature"] = headers["x-webhook-signature"].clone();
    assert!(python_verifies(work.path(), "x", &req.body, &h, &secret));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chosen_secret_and_a_test_send_verify_too() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    // The published Standard Webhooks example secret, chosen at creation.
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let w = s
        .create_webhook(&r.url("/hook"), json!({"secret": secret}))
        .await;
    let (status, t) = s
        .post(&format!("/management/webhooks/{}/test", w["id"]), json!({}))
        .await;
    assert_eq!(status, 202, "{t}");
    let got = r.wait_for("/hook", 1, WAIT).await;
    assert_eq!(got[0].json()["type"], "webhook.test");
    assert!(python_verifies(
        work.path(),
        "t",
        &got[0].body,
        &headers_json(&got[0]),
        secret
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_rotation_deliveries_carry_two_signatures_both_verifying() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    let w = s.create_webhook(&r.url("/hook"), json!({})).await;
    let old = w["secret"].as_str().unwrap().to_owned();

    let (status, rot) = s
        .post(
            &format!("/management/webhooks/{}/secret/rotate", w["id"]),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{rot}");
    let new = rot["secret"].as_str().expect("the new secret").to_owned();
    assert!(new.starts_with("whsec_"));
    assert_ne!(new, old);
    assert!(rot["previous_secret_expires_at"].is_string(), "{rot}");

    publish(&s, json!({"after": "rotation"})).await;
    let got = r.wait_for("/hook", 1, WAIT).await;
    let req = &got[0];
    let sig = req.header("webhook-signature").unwrap();
    let parts: Vec<&str> = sig.split(' ').collect();
    assert_eq!(parts.len(), 2, "two live secrets, two signatures: {sig:?}");
    assert!(parts.iter().all(|p| p.starts_with("v1,")), "{sig}");
    assert_ne!(parts[0], parts[1]);
    assert_eq!(req.header("x-webhook-signature").unwrap(), sig);

    let headers = headers_json(req);
    assert!(
        python_verifies(work.path(), "new", &req.body, &headers, &new),
        "the new secret does not verify: {sig}"
    );
    assert!(
        python_verifies(work.path(), "old", &req.body, &headers, &old),
        "the old secret does not verify during its grace period: {sig}"
    );
    let unrelated = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    assert!(!python_verifies(
        work.path(),
        "unrelated",
        &req.body,
        &headers,
        unrelated
    ));

    // Each signature alone verifies with its own secret.
    for (i, p) in parts.iter().enumerate() {
        let mut h = headers.clone();
        h["webhook-signature"] = json!(p);
        let with_new = python_verifies(work.path(), &format!("n{i}"), &req.body, &h, &new);
        let with_old = python_verifies(work.path(), &format!("o{i}"), &req.body, &h, &old);
        assert!(
            with_new ^ with_old,
            "signature {i} must match exactly one secret"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_retry_is_signed_afresh_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    r.script(
        "/hook",
        vec![
            common::receiver::Reply::Status(500),
            common::receiver::Reply::Status(500),
        ],
    );
    let w = s
        .create_webhook(
            &r.url("/hook"),
            json!({"retry_schedule": ["20ms", "1500ms"]}),
        )
        .await;
    let secret = w["secret"].as_str().unwrap().to_owned();
    publish(&s, json!({"retry": true})).await;
    let got = r.wait_for("/hook", 3, WAIT).await;
    for (i, req) in got.iter().enumerate() {
        assert!(
            python_verifies(
                work.path(),
                &format!("a{i}"),
                &req.body,
                &headers_json(req),
                &secret
            ),
            "attempt {i} does not verify"
        );
    }
    // The third attempt came over a second later: a new timestamp, a new signature.
    let ts = |i: usize| got[i].header("webhook-timestamp").unwrap();
    assert_ne!(
        ts(0),
        ts(2),
        "a retry re-used the first attempt's timestamp"
    );
    assert_ne!(
        got[0].header("webhook-signature"),
        got[2].header("webhook-signature")
    );
    assert_eq!(got[0].header("webhook-id"), got[2].header("webhook-id"));
}
