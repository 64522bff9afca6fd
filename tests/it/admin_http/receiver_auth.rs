//! The form's "Receiver authentication" section (SPEC §13): set on
//! create, shown without its secrets, kept when a save leaves a secret
//! empty, refused next to its field, `v1a` with its public key.

use super::*;
use crate::common::receiver::Receiver;
use crate::common::tls_receiver::TestCa;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

#[tokio::test]
async fn receiver_auth_is_set_on_the_form_and_its_secrets_are_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    let admin = sign_in(&s, MGMT_KEY, "").await;
    let new = admin.page("/admin/webhooks/new").await;
    let mut fields = form_fields(&new, "/admin/webhooks");
    let password = "form-password-3c9e";
    set(&mut fields, "name", "with auth");
    set(&mut fields, "url", &r.url("/form"));
    set_all(&mut fields, "events", &["license.created"]);
    set(&mut fields, "auth_type", "basic");
    set(&mut fields, "auth_username", "ann");
    set(&mut fields, "auth_password", password);
    let p = admin.post_raw("/admin/webhooks", &fields, &[]).await;
    assert_eq!(p.status, 303, "{}", p.body);
    let w = webhooks_of(&s, "default").await.pop().unwrap();
    assert_eq!(
        w["auth"],
        json!({"type": "basic", "username": "ann"}),
        "{w}"
    );
    let id = w["id"].as_i64().unwrap();

    // The edit form shows the user name, never the password; saving it
    // unchanged keeps the password.
    let edit = admin.page(&format!("/admin/webhooks/{id}")).await;
    assert!(!edit.contains(password), "the page shows the password");
    let fields = form_fields(&edit, &format!("/admin/webhooks/{id}"));
    assert_eq!(value_of(&fields, "auth_type"), Some("basic"));
    assert_eq!(value_of(&fields, "auth_username"), Some("ann"));
    assert_eq!(value_of(&fields, "auth_password"), Some(""));
    let p = admin
        .post_raw(&format!("/admin/webhooks/{id}"), &fields, &[])
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    publish(&s, "default", "license.created").await;
    let got = r.wait_for("/form", 1, WAIT).await;
    let expected = format!("Basic {}", STANDARD.encode(format!("ann:{password}")));
    assert_eq!(
        got[0].header("authorization").as_deref(),
        Some(expected.as_str())
    );

    // A client key that is not the certificate's: shown next to its field.
    let ca = TestCa::new("form CA");
    let (client, other) = (ca.client("c"), ca.client("o"));
    let mut bad = fields.clone();
    set(&mut bad, "url", "https://hooks.example.test/form");
    set(&mut bad, "auth_type", "mtls");
    set(&mut bad, "auth_certificate", &client.cert_pem);
    set(&mut bad, "auth_private_key", &other.key_pem);
    let p = admin
        .post_raw(&format!("/admin/webhooks/{id}"), &bad, &[])
        .await;
    assert_eq!(p.status, 400, "{}", p.body);
    assert!(
        field_error(&p.body, "auth_private_key").is_some_and(|m| m.contains("does not match")),
        "{}",
        p.body
    );
    assert!(
        !p.body.contains(other.key_pem.lines().nth(1).unwrap()),
        "the key is shown back"
    );

    // v1a: the page shows the public key the API shows.
    let mut v1a = fields.clone();
    set(&mut v1a, "signature_scheme", "v1a");
    let p = admin
        .post_raw(&format!("/admin/webhooks/{id}"), &v1a, &[])
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let public = secret_of(&s, "default", id).await["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(public.starts_with("whpk_"));
    let edit = admin.page(&format!("/admin/webhooks/{id}")).await;
    assert!(edit.contains("Public key (v1a)"), "{edit}");
    assert!(edit.contains(&public), "{edit}");
}
