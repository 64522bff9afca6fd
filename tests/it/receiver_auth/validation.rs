//! What the API refuses (400 naming the field), shows and clears.

use reqwest::Method;
use serde_json::{Value, json};

use super::assert_hidden;
use crate::common::tls_receiver::TestCa;
use crate::common::{ServerConfig, TestServer, assert_field_error, send};

const HOOKS: &str = "/management/webhooks";

async fn refused(s: &TestServer, extra: Value, field: &str) {
    let mut body =
        json!({"name": "v", "url": "https://hooks.example.test/v", "events": ["license.created"]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (status, e) = s.post(HOOKS, body).await;
    assert_field_error(status, &e, field);
}

#[tokio::test]
async fn bad_receiver_auth_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let s = ServerConfig::new(dir.path())
        .arg("--url-policy")
        .arg("strict")
        .start()
        .await;
    let ca = TestCa::new("CA");
    let client = ca.client("c");
    let other = ca.client("other");

    refused(&s, json!({"auth": {"type": "digest"}}), "auth.type").await;
    refused(&s, json!({"auth": {"username": "u"}}), "auth.type").await;
    refused(
        &s,
        json!({"auth": {"type": "basic", "password": "p"}}),
        "auth.username",
    )
    .await;
    refused(
        &s,
        json!({"auth": {"type": "basic", "username": "u", "password": "p", "client_id": "x"}}),
        "auth.client_id",
    )
    .await;
    // A non-https token URL under the strict URL policy.
    refused(
        &s,
        json!({"auth": {"type": "oauth2_client_credentials", "token_url": "http://auth.example.test/token",
                        "client_id": "i", "client_secret": "s"}}),
        "auth.token_url",
    )
    .await;
    refused(
        &s,
        json!({"auth": {"type": "oauth2_client_credentials", "token_url": "https://auth.example.test/token",
                        "client_id": "i"}}),
        "auth.client_secret",
    )
    .await;
    // Bad PEM, and a key that is not the certificate's.
    refused(
        &s,
        json!({"auth": {"type": "mtls", "certificate": "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
                        "private_key": client.key_pem}}),
        "auth.certificate",
    )
    .await;
    refused(
        &s,
        json!({"auth": {"type": "mtls", "certificate": client.cert_pem, "private_key": "not a key"}}),
        "auth.private_key",
    )
    .await;
    refused(
        &s,
        json!({"auth": {"type": "mtls", "certificate": client.cert_pem, "private_key": other.key_pem}}),
        "auth.private_key",
    )
    .await;
    refused(
        &s,
        json!({"ca_certificate": "no PEM here"}),
        "ca_certificate",
    )
    .await;
    refused(&s, json!({"signature_scheme": "v2"}), "signature_scheme").await;
    // hookd sets Authorization itself for basic and OAuth2.
    refused(
        &s,
        json!({"auth": {"type": "basic", "username": "u", "password": "p"},
               "headers": {"Authorization": ["Bearer x"]}}),
        "auth",
    )
    .await;
    // Wrong JSON types are 400s too, never 500s.
    let (status, _) = send(s.req(Method::POST, HOOKS).json(&json!({
        "name": "v", "url": "https://hooks.example.test/v", "events": ["license.created"],
        "auth": "basic"
    })))
    .await;
    assert_eq!(status, 400);

    // The same rules on PATCH.
    let w = s
        .create_webhook("https://hooks.example.test/ok", json!({}))
        .await;
    let path = format!("{HOOKS}/{}", w["id"]);
    let (status, e) = s
        .patch(
            &path,
            json!({"auth": {"type": "mtls", "certificate": client.cert_pem, "private_key": other.key_pem}}),
        )
        .await;
    assert_field_error(status, &e, "auth.private_key");
    let (status, e) = s.patch(&path, json!({"auth": {"type": "nope"}})).await;
    assert_field_error(status, &e, "auth.type");
}

#[tokio::test]
async fn answers_show_the_options_without_their_secrets_and_null_clears_them() {
    let dir = tempfile::tempdir().unwrap();
    let s = crate::common::TestServer::start(dir.path()).await;
    let ca = TestCa::new("CA");
    let client = ca.client("c");
    let w = s
        .create_webhook("https://hooks.example.test/opts", json!({}))
        .await;
    assert_eq!(w["signature_scheme"], "v1", "{w}");
    assert!(w["auth"].is_null() && w["ca_certificate"].is_null(), "{w}");
    let path = format!("{HOOKS}/{}", w["id"]);

    let (status, o) = s
        .patch(
            &path,
            json!({"auth": {"type": "oauth2_client_credentials", "token_url": "https://auth.example.test/token",
                            "client_id": "cid", "client_secret": "oauth-secret-77", "scope": "a b"}}),
        )
        .await;
    assert_eq!(status, 200, "{o}");
    assert_eq!(
        o["auth"],
        json!({"type": "oauth2_client_credentials", "token_url": "https://auth.example.test/token",
               "client_id": "cid", "scope": "a b"})
    );
    let (status, m) = s
        .patch(
            &path,
            json!({"auth": {"type": "mtls", "certificate": client.cert_pem, "private_key": client.key_pem},
                   "ca_certificate": ca.pem()}),
        )
        .await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["auth"]["certificate"], client.cert_pem.as_str());
    assert_eq!(m["ca_certificate"], ca.pem().as_str());
    // A renewed certificate for the same key needs no key again.
    let (status, m2) = s
        .patch(
            &path,
            json!({"auth": {"type": "mtls", "certificate": client.cert_pem}}),
        )
        .await;
    assert_eq!(status, 200, "{m2}");
    for (_, path) in [("get", path.clone()), ("list", HOOKS.to_string())] {
        let (_, body) = s.get(&path).await;
        assert_hidden(
            &body.to_string(),
            &["oauth-secret-77", &client.key_pem],
            "an answer",
        );
    }
    let (status, cleared) = s
        .patch(&path, json!({"auth": null, "ca_certificate": null}))
        .await;
    assert_eq!(status, 200, "{cleared}");
    assert!(cleared["auth"].is_null(), "{cleared}");
    assert!(cleared["ca_certificate"].is_null(), "{cleared}");
    let (_, got) = s.get(&path).await;
    assert!(
        got["auth"].is_null() && got["ca_certificate"].is_null(),
        "{got}"
    );
}
