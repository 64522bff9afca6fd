//! The "Receiver authentication" part of the webhook form (SPEC §13):
//! signature scheme, auth type with its fields, private CA. Secret parts
//! are never put back into the page; left empty, they keep the stored ones
//! (the operation's rule for write-only parts).

use super::forms::Form;
use crate::domain::FieldError;
use crate::domain::receiver_auth::{AuthInput, ReceiverAuth, ReceiverSecurity};
use crate::ops::webhook_security::SecurityChanges;

/// The section's fields as typed (secret parts only as typed, never stored).
#[derive(Default)]
pub struct SecurityFields {
    pub signature_scheme: String,
    /// Empty: none.
    pub auth_type: String,
    pub username: String,
    pub password: String,
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub scope: String,
    pub audience: String,
    pub certificate: String,
    pub private_key: String,
    pub ca_certificate: String,
    /// The stored auth has secret parts that an empty input keeps.
    pub stored_secret: bool,
}

/// A multi-line value as typed (PEM keeps its line breaks).
fn block(form: &Form, name: &str) -> String {
    form.raw(name).unwrap_or_default().trim().to_owned()
}

impl SecurityFields {
    pub fn from_form(form: &Form) -> Self {
        Self {
            signature_scheme: form.text("signature_scheme"),
            auth_type: form.text("auth_type"),
            username: form.text("auth_username"),
            password: form.raw("auth_password").unwrap_or_default().to_owned(),
            token_url: form.text("auth_token_url"),
            client_id: form.text("auth_client_id"),
            client_secret: form
                .raw("auth_client_secret")
                .unwrap_or_default()
                .to_owned(),
            scope: form.text("auth_scope"),
            audience: form.text("auth_audience"),
            certificate: block(form, "auth_certificate"),
            private_key: block(form, "auth_private_key"),
            ca_certificate: block(form, "ca_certificate"),
            stored_secret: false,
        }
    }

    pub fn from_security(s: &ReceiverSecurity) -> Self {
        let mut f = Self {
            signature_scheme: s.signature_scheme.as_str().to_owned(),
            ca_certificate: s.ca_certificate.clone().unwrap_or_default(),
            stored_secret: s.auth.is_some(),
            ..Self::default()
        };
        if let Some(a) = &s.auth {
            f.auth_type = a.kind().to_owned();
            match a {
                ReceiverAuth::Basic { username, .. } => f.username = username.clone(),
                ReceiverAuth::OAuth2(c) => {
                    f.token_url = c.token_url.clone();
                    f.client_id = c.client_id.clone();
                    f.scope = c.scope.clone().unwrap_or_default();
                    f.audience = c.audience.clone().unwrap_or_default();
                }
                ReceiverAuth::Mtls { certificate, .. } => f.certificate = certificate.clone(),
            }
        }
        f
    }

    /// The parts a save compares (`Fields::fingerprint`); secrets are
    /// never in the page, so never in its fingerprint.
    pub fn fingerprint_parts(&self) -> [&str; 9] {
        [
            &self.signature_scheme,
            &self.auth_type,
            &self.username,
            &self.token_url,
            &self.client_id,
            &self.scope,
            &self.audience,
            &self.certificate,
            &self.ca_certificate,
        ]
    }

    /// The change the form asks for: everything as shown, the auth of the
    /// chosen type (its fields only; empty secrets keep the stored ones).
    pub fn changes(&self) -> SecurityChanges {
        let given = |v: &str| (!v.is_empty()).then(|| v.to_owned());
        let auth = match self.auth_type.as_str() {
            "" => None,
            kind => {
                let mut input = AuthInput {
                    kind: kind.to_owned(),
                    ..AuthInput::default()
                };
                match kind {
                    "basic" => {
                        input.username = Some(self.username.clone());
                        input.password = given(&self.password);
                    }
                    "oauth2_client_credentials" => {
                        input.token_url = Some(self.token_url.clone());
                        input.client_id = Some(self.client_id.clone());
                        input.client_secret = given(&self.client_secret);
                        input.scope = given(&self.scope);
                        input.audience = given(&self.audience);
                    }
                    _ => {
                        input.certificate = Some(self.certificate.clone());
                        input.private_key = given(&self.private_key);
                    }
                }
                Some(input)
            }
        };
        SecurityChanges {
            signature_scheme: given(&self.signature_scheme),
            auth: Some(auth),
            ca_certificate: Some(given(&self.ca_certificate)),
        }
    }

    /// The operation names `auth.<part>`; the form's inputs are `auth_<part>`.
    pub fn input_names(errors: Vec<FieldError>) -> Vec<FieldError> {
        errors
            .into_iter()
            .map(|mut e| {
                if let Some(part) = e.field.strip_prefix("auth.") {
                    e.field = format!("auth_{part}");
                }
                e
            })
            .collect()
    }

    pub fn is(&self, auth_type: &str) -> bool {
        self.auth_type == auth_type
    }
}
