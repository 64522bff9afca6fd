//! Basic authentication: the header on every attempt, the password kept
//! when a PATCH leaves it out, never shown.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use super::{WAIT, assert_hidden, attempts, publish, server, wait_delivery};
use crate::common::receiver::{Receiver, Reply};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_goes_with_every_attempt_and_its_password_is_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    r.script("/hook", vec![Reply::Status(500)]);
    let password = "pw-5e1f0c9d2b";
    let w = s
        .create_webhook(
            &r.url("/hook"),
            json!({
                "auth": {"type": "basic", "username": "hookd", "password": password},
                "retry_schedule": ["50ms"],
            }),
        )
        .await;
    assert_eq!(
        w["auth"],
        json!({"type": "basic", "username": "hookd"}),
        "{w}"
    );
    assert_hidden(&w.to_string(), &[password], "the create answer");

    let event = publish(&s).await;
    let d = wait_delivery(&s, &event, |d| d["status"] == "succeeded").await;
    assert_eq!(attempts(&d).len(), 2, "{d}");
    let expected = format!("Basic {}", STANDARD.encode(format!("hookd:{password}")));
    let got = r.wait_for("/hook", 2, WAIT).await;
    for req in &got {
        assert_eq!(
            req.header("authorization").as_deref(),
            Some(expected.as_str())
        );
    }
    for a in attempts(&d) {
        assert_eq!(a["request_headers"]["authorization"], "[redacted]", "{d}");
    }
    let encoded = STANDARD.encode(format!("hookd:{password}"));
    assert_hidden(&d.to_string(), &[password, &encoded], "the attempt record");

    // A new user name alone keeps the stored password.
    let (status, w2) = s
        .patch(
            &format!("/management/webhooks/{}", w["id"]),
            json!({"auth": {"type": "basic", "username": "other"}}),
        )
        .await;
    assert_eq!(status, 200, "{w2}");
    assert_eq!(w2["auth"]["username"], "other");
    publish(&s).await;
    let got = r.wait_for("/hook", 3, WAIT).await;
    let expected = format!("Basic {}", STANDARD.encode(format!("other:{password}")));
    assert_eq!(
        got[2].header("authorization").as_deref(),
        Some(expected.as_str())
    );

    // `null` removes it: no Authorization any more.
    let (status, w3) = s
        .patch(
            &format!("/management/webhooks/{}", w["id"]),
            json!({"auth": null}),
        )
        .await;
    assert_eq!(status, 200, "{w3}");
    assert!(w3["auth"].is_null(), "{w3}");
    publish(&s).await;
    let got = r.wait_for("/hook", 4, WAIT).await;
    assert_eq!(got[3].header("authorization"), None);
    let (_, listed) = s.get("/management/webhooks").await;
    assert_hidden(&listed.to_string(), &[password], "the list");
}
