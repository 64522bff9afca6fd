//! `v1a` signatures checked by an independent Ed25519 implementation
//! (Python `cryptography`, which `scripts/test` installs), before and
//! across a rotation of the key.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};

use super::{WAIT, server};
use crate::common::receiver::{Received, Receiver};

/// Verifies, as a receiver would, the body in `argv[1]` with the headers
/// in `argv[2]` (JSON) against the `whpk_` key in `argv[3]`: exit 0 when a
/// `v1a` signature of `{id}.{timestamp}.{body}` verifies, 3 when none does.
const VERIFY_PY: &str = r#"
import base64, json, sys
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
body = open(sys.argv[1], "rb").read()
headers = json.load(open(sys.argv[2]))
key = open(sys.argv[3]).read().strip()
assert key.startswith("whpk_"), key
public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key[len("whpk_"):]))
signed = (headers["webhook-id"] + "." + headers["webhook-timestamp"] + ".").encode() + body
for sig in headers["webhook-signature"].split(" "):
    version, _, value = sig.partition(",")
    if version != "v1a":
        continue
    try:
        public.verify(base64.b64decode(value), signed)
        print("verified")
        sys.exit(0)
    except InvalidSignature:
        pass
print("rejected")
sys.exit(3)
"#;

static PYTHON_READY: OnceLock<bool> = OnceLock::new();

/// Fails, saying what to do, unless python3 can import `cryptography`
/// (`scripts/test` installs it; a test never installs anything itself).
fn require_cryptography() {
    let importable = PYTHON_READY.get_or_init(|| {
        Command::new("python3")
            .args([
                "-c",
                "import cryptography.hazmat.primitives.asymmetric.ed25519",
            ])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    });
    assert!(
        *importable,
        "python3 cannot import cryptography, the independent Ed25519 verifier of this test: \
         run scripts/test, which installs it (python3 -m pip install cryptography)"
    );
}

fn python_verifies(dir: &Path, tag: &str, body: &[u8], headers: &Value, key: &str) -> bool {
    require_cryptography();
    let paths = [
        dir.join(format!("{tag}.body")),
        dir.join(format!("{tag}.headers.json")),
        dir.join(format!("{tag}.key")),
    ];
    std::fs::write(&paths[0], body).unwrap();
    std::fs::write(&paths[1], headers.to_string()).unwrap();
    std::fs::write(&paths[2], key).unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg(VERIFY_PY)
        .args(&paths)
        .output()
        .expect("running python3");
    match out.status.code() {
        Some(0) => true,
        Some(3) => false,
        _ => panic!(
            "the Python verifier broke ({:?}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn headers_json(r: &Received) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in &r.headers {
        m.insert(k.to_string(), v.to_str().unwrap_or_default().into());
    }
    Value::Object(m)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1a_deliveries_verify_with_the_public_key_before_and_across_a_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    let w = s
        .create_webhook(&r.url("/hook"), json!({"signature_scheme": "v1a"}))
        .await;
    assert_eq!(w["signature_scheme"], "v1a", "{w}");
    assert!(
        w.get("secret").is_none(),
        "a v1a webhook shows no secret: {w}"
    );
    let old = w["public_key"].as_str().expect("public_key").to_owned();
    assert!(old.starts_with("whpk_"), "{old}");
    let (status, sec) = s
        .get(&format!("/management/webhooks/{}/secret", w["id"]))
        .await;
    assert_eq!(status, 200, "{sec}");
    assert_eq!(sec["public_key"], old.as_str(), "{sec}");
    assert_eq!(sec["signature_scheme"], "v1a");

    let (status, _) = s
        .post(
            "/v1/events",
            json!({"type": "license.created", "data": {"n": "ünï \"q\""}}),
        )
        .await;
    assert_eq!(status, 202);
    let got = r.wait_for("/hook", 1, WAIT).await;
    let (body, headers) = (&got[0].body, headers_json(&got[0]));
    let sig = headers["webhook-signature"].as_str().unwrap();
    assert!(sig.starts_with("v1a,") && !sig.contains(' '), "{sig}");
    assert_eq!(headers["x-webhook-signature"], sig);
    assert!(
        python_verifies(work.path(), "a", body, &headers, &old),
        "{headers}"
    );
    let mut tampered = body.to_vec();
    tampered.push(b' ');
    assert!(!python_verifies(
        work.path(),
        "t",
        &tampered,
        &headers,
        &old
    ));
    let mut h = headers.clone();
    h["webhook-id"] = json!("sls-webhook-999999");
    assert!(!python_verifies(work.path(), "i", body, &h, &old));

    // Rotation: a new key; the old one keeps signing alongside for 24 h.
    let (status, rot) = s
        .post(
            &format!("/management/webhooks/{}/secret/rotate", w["id"]),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{rot}");
    let new = rot["public_key"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(rot["previous_public_key"], old.as_str(), "{rot}");
    assert!(rot["previous_public_key_expires_at"].is_string(), "{rot}");
    // A chosen secret makes no sense for an Ed25519 key.
    let (status, e) = s
        .post(
            &format!("/management/webhooks/{}/secret/rotate", w["id"]),
            json!({"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}),
        )
        .await;
    crate::common::assert_field_error(status, &e, "secret");

    let (status, _) = s
        .post(
            "/v1/events",
            json!({"type": "license.created", "data": {"after": "rotation"}}),
        )
        .await;
    assert_eq!(status, 202);
    let got = r.wait_for("/hook", 2, WAIT).await;
    let (body, headers) = (&got[1].body, headers_json(&got[1]));
    let parts: Vec<&str> = headers["webhook-signature"]
        .as_str()
        .unwrap()
        .split(' ')
        .collect();
    assert_eq!(parts.len(), 2, "two live keys, two signatures: {parts:?}");
    assert!(python_verifies(work.path(), "new", body, &headers, &new));
    assert!(python_verifies(work.path(), "old", body, &headers, &old));
    for (i, p) in parts.iter().enumerate() {
        let mut h = headers.clone();
        h["webhook-signature"] = json!(p);
        let with_new = python_verifies(work.path(), &format!("n{i}"), body, &h, &new);
        let with_old = python_verifies(work.path(), &format!("o{i}"), body, &h, &old);
        assert!(
            with_new ^ with_old,
            "signature {i} must match exactly one key"
        );
    }

    // Back to v1: HMAC again, with the webhook's secret.
    let (status, w2) = s
        .patch(
            &format!("/management/webhooks/{}", w["id"]),
            json!({"signature_scheme": "v1"}),
        )
        .await;
    assert_eq!(status, 200, "{w2}");
    let (_, sec) = s
        .get(&format!("/management/webhooks/{}/secret", w["id"]))
        .await;
    assert!(
        sec["secret"].as_str().unwrap().starts_with("whsec_"),
        "{sec}"
    );
    let (status, _) = s
        .post("/v1/events", json!({"type": "license.created", "data": {}}))
        .await;
    assert_eq!(status, 202);
    let got = r.wait_for("/hook", 3, WAIT).await;
    assert!(
        got[2]
            .header("webhook-signature")
            .unwrap()
            .starts_with("v1,")
    );
}
