//! §9: the document is usable, not only valid. A client generated from
//! `/openapi.json` by an independent generator (`openapi-python-client`,
//! which `scripts/test` installs) creates a webhook, publishes an event
//! and reads the delivery back, and reads a 404 as the document's
//! `Problem`; then, through the routes the portal added, gives an event
//! type a schema and example, sends the example to the webhook, reads a
//! 409 as `Problem`, and makes a portal link.

use std::process::Command;
use std::time::Duration;

use crate::common::ServerConfig;
use crate::common::receiver::Receiver;
use serde_json::Value;

/// Drives the generated package (`hookd_client`, on `sys.path` from
/// argv[1]) against the server in HOOKD_URL with the key in HOOKD_KEY;
/// prints one JSON line of what it saw.
const CLIENT_PY: &str = r#"
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
from hookd_client import AuthenticatedClient
from hookd_client.api.webhooks import create_webhook, get_webhook
from hookd_client.api.events import publish_event
from hookd_client.api.deliveries import list_deliveries, get_delivery
from hookd_client.api.event_types import update_event_type
from hookd_client.api.webhooks import send_example
from hookd_client.api.portal import create_portal_link
from hookd_client.models import WebhookIn, WebhookOut, EventIn, PublishedOut, DeliveryList, DeliveryDetail, Problem
from hookd_client.models import EventTypePatch, EventTypeOut, SendExampleIn, PortalLinkIn, PortalLinkOut

client = AuthenticatedClient(base_url=os.environ["HOOKD_URL"], token=os.environ["HOOKD_KEY"],
                             raise_on_unexpected_status=True)
webhook = create_webhook.sync(client=client, body=WebhookIn.from_dict({
    "name": "generated client", "url": os.environ["RECEIVER_URL"],
    "events": ["license.created"]}))
assert isinstance(webhook, WebhookOut), webhook
event = publish_event.sync(client=client, body=EventIn.from_dict({
    "type": "license.created", "data": {"license_id": 42}}))
assert isinstance(event, PublishedOut), event
deadline = time.time() + 30
while True:
    page = list_deliveries.sync(client=client, webhook_id=webhook.id)
    assert isinstance(page, DeliveryList), page
    done = [d for d in page.data if d.status.value == "succeeded"]
    if done or time.time() > deadline:
        break
    time.sleep(0.2)
assert done, [d.to_dict() for d in page.data]
detail = get_delivery.sync(client=client, id=done[0].id)
assert isinstance(detail, DeliveryDetail), detail
missing = get_webhook.sync(client=client, id=webhook.id + 1000)
assert isinstance(missing, Problem), missing
typed = update_event_type.sync(client=client, name="license.created", body=EventTypePatch.from_dict({
    "schema": {"type": "object", "required": ["license_id"]}, "example": {"license_id": 7}}))
assert isinstance(typed, EventTypeOut), typed
example = send_example.sync(client=client, id=webhook.id,
                            body=SendExampleIn.from_dict({"event_type": "license.created"}))
assert isinstance(example, PublishedOut), example
no_example = send_example.sync(client=client, id=webhook.id,
                               body=SendExampleIn.from_dict({"event_type": "license.updated"}))
assert isinstance(no_example, Problem), no_example
link = create_portal_link.sync(client=client, body=PortalLinkIn.from_dict({"expires_in": "30m"}))
assert isinstance(link, PortalLinkOut), link
print(json.dumps({"webhook": webhook.id, "secret": webhook.secret, "event": event.id,
                  "delivery": detail.to_dict(), "missing": missing.to_dict(),
                  "schema": typed.to_dict()["schema"], "example_event": example.id,
                  "no_example": no_example.to_dict(), "link": link.to_dict()}))
"#;

/// Fails, saying what to do, unless the generator is installed
/// (`scripts/test` installs it; a test never installs anything itself).
fn require_generator() {
    let ok = Command::new("openapi-python-client")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "openapi-python-client, the independent generator of this test, is not installed: \
         run scripts/test, which installs it (python3 -m pip install openapi-python-client)"
    );
}

#[tokio::test]
async fn a_generated_python_client_creates_a_webhook_publishes_and_reads_the_delivery() {
    require_generator();
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start().await;
    let s = ServerConfig::new(&dir.path().join("data"))
        .arg("--allow-private-targets")
        .start()
        .await;
    let doc = s
        .client
        .get(s.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let doc_path = dir.path().join("openapi.json");
    std::fs::write(&doc_path, doc).unwrap();
    let out_dir = dir.path().join("client");
    let generated = tokio::task::spawn_blocking({
        let (doc_path, out_dir) = (doc_path.clone(), out_dir.clone());
        move || {
            Command::new("openapi-python-client")
                .arg("generate")
                .arg("--path")
                .arg(&doc_path)
                .arg("--output-path")
                .arg(&out_dir)
                .arg("--overwrite")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&generated.stdout),
        String::from_utf8_lossy(&generated.stderr)
    );
    assert!(generated.status.success(), "generation failed:\n{said}");
    // The generator warns about what it could not model; the document
    // must leave it nothing to skip.
    assert!(
        !said.contains("Warning") && !said.contains("Unable"),
        "the generator skipped parts of the document:\n{said}"
    );

    let script = dir.path().join("client.py");
    std::fs::write(&script, CLIENT_PY).unwrap();
    let run = tokio::task::spawn_blocking({
        let (url, receiver_url) = (s.url(""), receiver.url("/generated"));
        move || {
            Command::new("python3")
                .arg(&script)
                .arg(&out_dir)
                .env("HOOKD_URL", url.trim_end_matches('/'))
                .env("HOOKD_KEY", crate::common::MGMT_KEY)
                .env("RECEIVER_URL", receiver_url)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        run.status.success(),
        "the generated client failed:\n{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let seen: Value = serde_json::from_slice(&run.stdout).expect("one JSON line");

    // What the client read back is what the receiver got (then the
    // example, sent after).
    let got = receiver
        .wait_for("/generated", 2, Duration::from_secs(20))
        .await;
    assert_eq!(got.len(), 2);
    let (examples, got): (Vec<_>, Vec<_>) = got
        .into_iter()
        .partition(|r| r.json()["data"] == serde_json::json!({"license_id": 7}));
    assert_eq!((examples.len(), got.len()), (1, 1), "{seen}");
    let body = got[0].json();
    assert_eq!(body["type"], "license.created");
    assert_eq!(body["data"]["license_id"], 42);
    assert_eq!(seen["delivery"]["status"], "succeeded", "{seen}");
    assert_eq!(seen["delivery"]["event_id"], seen["event"], "{seen}");
    assert_eq!(seen["delivery"]["webhook_id"], seen["webhook"], "{seen}");
    // Seed 000's message id: `sls-webhook-` and the delivery's id.
    assert_eq!(
        got[0].header("webhook-id"),
        Some(format!("sls-webhook-{}", seen["delivery"]["id"])),
        "{seen}"
    );
    assert!(seen["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(seen["missing"]["status"], 404, "{seen}");
    assert_eq!(seen["schema"]["required"][0], "license_id", "{seen}");
    assert_eq!(seen["no_example"]["status"], 409, "{seen}");
    assert!(
        seen["link"]["url"]
            .as_str()
            .unwrap()
            .contains("/portal/links/"),
        "{seen}"
    );
}
