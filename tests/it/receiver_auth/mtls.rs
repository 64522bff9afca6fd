//! mTLS: a webhook presents its client certificate to an https receiver
//! that requires one; `ca_certificate` makes hookd trust a private CA for
//! that webhook alone.

use std::sync::atomic::Ordering;

use serde_json::json;

use super::{assert_hidden, attempts, publish, server, wait_status};
use crate::common::tls_receiver::{TestCa, TlsReceiver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_presents_its_client_certificate_to_a_receiver_that_requires_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let server_ca = TestCa::new("receiver CA");
    let client_ca = TestCa::new("client CA");
    let receiver = TlsReceiver::start(&server_ca.server(), &client_ca).await;
    let client = client_ca.client("hookd-client");

    let w = s
        .create_webhook(
            &receiver.url("/hook"),
            json!({
                "auth": {"type": "mtls", "certificate": client.cert_pem, "private_key": client.key_pem},
                "ca_certificate": server_ca.pem(),
            }),
        )
        .await;
    assert_eq!(w["auth"]["type"], "mtls");
    assert_eq!(w["auth"]["certificate"], client.cert_pem.as_str());
    assert_eq!(w["ca_certificate"], server_ca.pem().as_str());
    assert_hidden(&w.to_string(), &[&client.key_pem], "the create answer");

    let event = publish(&s).await;
    let d = wait_status(&s, &event, "succeeded").await;
    assert_eq!(attempts(&d).len(), 1, "{d}");
    assert_eq!(receiver.seen(), vec![client.der.clone()]);
    let (_, got) = s.get(&format!("/management/webhooks/{}", w["id"])).await;
    assert_hidden(&got.to_string(), &[&client.key_pem], "the webhook");
    assert_hidden(&d.to_string(), &[&client.key_pem], "the attempt record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_is_trusted_for_its_webhook_alone() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let server_ca = TestCa::new("receiver CA");
    let client_ca = TestCa::new("client CA");
    let receiver = TlsReceiver::start(&server_ca.server(), &client_ca).await;
    let client = client_ca.client("hookd-client");
    let identity =
        json!({"type": "mtls", "certificate": client.cert_pem, "private_key": client.key_pem});

    // The same identity without the CA: the receiver's certificate is not
    // trusted (the public roots do not know the test CA).
    s.create_webhook(
        &receiver.url("/untrusted"),
        json!({"auth": identity, "retry_schedule": [], "events": ["license.updated"]}),
    )
    .await;
    // The CA without an identity: trusted, but the receiver wants a client
    // certificate.
    s.create_webhook(
        &receiver.url("/anonymous"),
        json!({"ca_certificate": server_ca.pem(), "retry_schedule": [], "events": ["license.deleted"]}),
    )
    .await;
    // Both: delivered.
    s.create_webhook(
        &receiver.url("/both"),
        json!({"auth": identity, "ca_certificate": server_ca.pem()}),
    )
    .await;

    let publish_type = |t: &'static str| {
        let s = &s;
        async move {
            let (status, p) = s.post("/v1/events", json!({"type": t, "data": {}})).await;
            assert_eq!(status, 202, "{p}");
            p["id"].as_str().unwrap().to_owned()
        }
    };
    let untrusted = publish_type("license.updated").await;
    let d = wait_status(&s, &untrusted, "failed").await;
    assert_eq!(attempts(&d)[0]["error_kind"], "tls", "{d}");

    let anonymous = publish_type("license.deleted").await;
    let d = wait_status(&s, &anonymous, "failed").await;
    let kind = attempts(&d)[0]["error_kind"].as_str().unwrap().to_owned();
    assert!(kind == "tls" || kind == "connect", "{d}");
    assert!(receiver.failed_handshakes.load(Ordering::SeqCst) >= 2);

    let both = publish(&s).await;
    wait_status(&s, &both, "succeeded").await;
    assert_eq!(receiver.seen(), vec![client.der.clone()]);
}
