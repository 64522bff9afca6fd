//! A webhook's signing scheme, receiver authentication and private CA
//! (SPEC §13), as the webhook operations change them: validated against
//! the stored value (write-only parts may be left out), an Ed25519 key
//! made when a webhook first signs with `v1a`, and its rotation.

use crate::crypto::{generate_signing_key, signing_public_key};
use crate::domain::ValidationErrors;
use crate::domain::receiver_auth::{
    self as rules, AuthInput, ReceiverSecurity, SignatureScheme, SigningKeys,
};
use crate::domain::webhook::{UrlPolicy, Webhook};

/// Changes to the §13 options, before validation: only the fields given
/// change; `Some(None)` clears `auth` and `ca_certificate`.
#[derive(Debug, Clone, Default)]
pub struct SecurityChanges {
    /// `v1` or `v1a`.
    pub signature_scheme: Option<String>,
    pub auth: Option<Option<AuthInput>>,
    pub ca_certificate: Option<Option<String>>,
}

impl SecurityChanges {
    pub fn is_empty(&self) -> bool {
        self.signature_scheme.is_none() && self.auth.is_none() && self.ca_certificate.is_none()
    }
}

/// Applies `changes` to `w.security` (whose URL and headers are already
/// the changed ones), recording every invalid field in `errors`.
pub(super) fn apply_security(
    w: &mut Webhook,
    current: &ReceiverSecurity,
    changes: &SecurityChanges,
    policy: UrlPolicy,
    errors: &mut ValidationErrors,
) {
    let s = &mut w.security;
    if let Some(scheme) = &changes.signature_scheme
        && let Some(scheme) = errors.check("signature_scheme", SignatureScheme::parse(scheme))
    {
        s.signature_scheme = scheme;
    }
    // The first switch to v1a makes the key; a webhook that switches back
    // and forth keeps it, so its receivers keep their public key.
    if s.signature_scheme == SignatureScheme::V1a && s.signing_keys.is_none() {
        s.signing_keys = Some(SigningKeys {
            current: generate_signing_key(),
            previous: None,
        });
    }
    match &changes.auth {
        None => {}
        Some(None) => s.auth = None,
        Some(Some(input)) => {
            s.auth = rules::validate_auth(input, current.auth.as_ref(), policy, errors);
        }
    }
    match &changes.ca_certificate {
        None => {}
        Some(None) => s.ca_certificate = None,
        Some(Some(pem)) => {
            s.ca_certificate = errors.check("ca_certificate", rules::validate_ca_certificate(pem));
        }
    }
    let security = w.security.clone();
    rules::check_consistency(&security, &w.url, &w.headers, errors);
}

/// A `v1a` webhook's public keys: the current one, and the one a rotation
/// replaced with the instant it stops signing, if it still does at `now`.
pub fn public_keys(keys: &SigningKeys, now: i64) -> (String, Option<(String, i64)>) {
    let show = |k: &[u8]| signing_public_key(k).unwrap_or_else(|e| format!("[unusable key: {e}]"));
    (
        show(&keys.current),
        keys.previous
            .as_ref()
            .filter(|(_, until)| *until > now)
            .map(|(k, until)| (show(k), *until)),
    )
}

/// `keys` after a rotation: a new current key; the old one signs until `until`.
pub(super) fn rotated(keys: &SigningKeys, until: i64) -> SigningKeys {
    SigningKeys {
        current: generate_signing_key(),
        previous: Some((keys.current.clone(), until)),
    }
}
