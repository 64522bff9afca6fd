//! How hookd signs for a receiver and proves itself to it (SPEC §13): the
//! signature scheme (`v1` HMAC or `v1a` Ed25519), receiver authentication
//! (`basic`, `oauth2_client_credentials`, `mtls`) and a private CA.
//!
//! The validators here turn what a client sent into the stored value or
//! name the offending field (`auth.token_url`, `ca_certificate`, …).
//! Secret parts (passwords, client secrets, private keys) are write-only:
//! a change may leave them out to keep the stored ones. Nothing here does
//! I/O; PEM parsing and the key/certificate match are pure computations.

use serde::{Deserialize, Serialize};

use super::ValidationErrors;
use super::validation::validate_plain_text;
use super::webhook::{Headers, UrlPolicy, validate_url};

/// How deliveries are signed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SignatureScheme {
    /// HMAC-SHA256 with the `whsec_` secret.
    #[default]
    V1,
    /// Ed25519 with a key hookd keeps; receivers verify with the `whpk_` key.
    V1a,
}

impl SignatureScheme {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "v1" => Ok(Self::V1),
            "v1a" => Ok(Self::V1a),
            other => Err(format!(
                "{other:?} is not a signature scheme; expected \"v1\" or \"v1a\""
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V1a => "v1a",
        }
    }
}

/// Ed25519 signing keys (PKCS#8 documents), and the one replaced by the
/// last rotation with the instant it stops signing.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeys {
    pub current: Vec<u8>,
    pub previous: Option<(Vec<u8>, i64)>,
}

impl SigningKeys {
    /// Keys that sign at `now_ms`, with the instant each stops (`None`: never).
    pub fn live(&self, now_ms: i64) -> Vec<(&[u8], Option<i64>)> {
        let mut v = vec![(self.current.as_slice(), None)];
        if let Some((prev, until)) = &self.previous
            && *until > now_ms
        {
            v.push((prev.as_slice(), Some(*until)));
        }
        v
    }
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKeys([redacted])")
    }
}

/// OAuth2 client credentials (RFC 6749 §4.4).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuth2Config {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub scope: Option<String>,
    pub audience: Option<String>,
}

impl std::fmt::Debug for OAuth2Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth2Config")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// How hookd authenticates to the receiver, secret parts included: stored
/// sealed, shown only through [`ReceiverAuth::kind`] and the public parts.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ReceiverAuth {
    Basic {
        username: String,
        password: String,
    },
    #[serde(rename = "oauth2_client_credentials")]
    OAuth2(OAuth2Config),
    Mtls {
        /// PEM: the client certificate, then any intermediates.
        certificate: String,
        /// PEM (PKCS#8, PKCS#1 or SEC1).
        private_key: String,
    },
}

impl std::fmt::Debug for ReceiverAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReceiverAuth({}, [redacted])", self.kind())
    }
}

pub const BASIC: &str = "basic";
pub const OAUTH2: &str = "oauth2_client_credentials";
pub const MTLS: &str = "mtls";

impl ReceiverAuth {
    /// The `type` a client names it by.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Basic { .. } => BASIC,
            Self::OAuth2(_) => OAUTH2,
            Self::Mtls { .. } => MTLS,
        }
    }

    /// Whether hookd sets the `Authorization` header for it.
    pub fn sets_authorization(&self) -> bool {
        !matches!(self, Self::Mtls { .. })
    }
}

/// A webhook's signing and receiver-authentication options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiverSecurity {
    pub signature_scheme: SignatureScheme,
    /// Present once the webhook has signed with `v1a`; kept when it
    /// switches back, so switching again keeps the receivers' public key.
    pub signing_keys: Option<SigningKeys>,
    pub auth: Option<ReceiverAuth>,
    /// PEM: CAs trusted for this webhook's https receiver, besides the
    /// public roots.
    pub ca_certificate: Option<String>,
}

/// Receiver authentication as given, before validation: `type` and the
/// fields of every type, each checked against the type named.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthInput {
    pub kind: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub token_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scope: Option<String>,
    pub audience: Option<String>,
    pub certificate: Option<String>,
    pub private_key: Option<String>,
}

/// Longest PEM accepted (a certificate chain of a few certificates).
pub const MAX_PEM_BYTES: usize = 64 * 1024;
/// Longest user name, password, client id, secret, scope or audience, in
/// characters (as the OpenAPI document's `maxLength` counts).
pub const MAX_VALUE_CHARS: usize = 4096;

/// Checks `input` against its type; secret parts left out are taken from
/// `current` when it is of the same type (an OAuth2 client secret only
/// while the token URL stays, so it cannot be sent elsewhere). Errors name
/// `auth.<field>`.
pub fn validate_auth(
    input: &AuthInput,
    current: Option<&ReceiverAuth>,
    policy: UrlPolicy,
    errors: &mut ValidationErrors,
) -> Option<ReceiverAuth> {
    let given = |name: &'static str, v: &Option<String>| v.as_ref().map(|_| name);
    let all = [
        given("username", &input.username),
        given("password", &input.password),
        given("token_url", &input.token_url),
        given("client_id", &input.client_id),
        given("client_secret", &input.client_secret),
        given("scope", &input.scope),
        given("audience", &input.audience),
        given("certificate", &input.certificate),
        given("private_key", &input.private_key),
    ];
    let allowed: &[&str] = match input.kind.as_str() {
        BASIC => &["username", "password"],
        OAUTH2 => &[
            "token_url",
            "client_id",
            "client_secret",
            "scope",
            "audience",
        ],
        MTLS => &["certificate", "private_key"],
        other => {
            errors.add(
                "auth.type",
                format!(
                    "{other:?} is not an auth type; expected one of: {BASIC}, {OAUTH2}, {MTLS}"
                ),
            );
            return None;
        }
    };
    let before = errors.0.len();
    for name in all.into_iter().flatten() {
        if !allowed.contains(&name) {
            errors.add(
                format!("auth.{name}"),
                format!("is not a field of auth type {:?}", input.kind),
            );
        }
    }
    let auth = match input.kind.as_str() {
        BASIC => {
            let kept = match current {
                Some(ReceiverAuth::Basic { password, .. }) => Some(password.clone()),
                _ => None,
            };
            let username = required(errors, "username", &input.username)
                .and_then(|u| errors.check("auth.username", check_username(u)));
            let password = secret(errors, "password", &input.password, kept);
            Some(ReceiverAuth::Basic {
                username: username?,
                password: password?,
            })
        }
        OAUTH2 => {
            let token_url = required(errors, "token_url", &input.token_url)
                .and_then(|u| errors.check("auth.token_url", validate_url(u, policy)));
            let kept = match (current, &token_url) {
                (Some(ReceiverAuth::OAuth2(c)), Some(url)) if &c.token_url == url => {
                    Some(c.client_secret.clone())
                }
                _ => None,
            };
            let client_id = required(errors, "client_id", &input.client_id)
                .and_then(|v| errors.check("auth.client_id", check_value(v, false)));
            let client_secret = secret(errors, "client_secret", &input.client_secret, kept);
            let scope = optional(errors, "scope", &input.scope);
            let audience = optional(errors, "audience", &input.audience);
            Some(ReceiverAuth::OAuth2(OAuth2Config {
                token_url: token_url?,
                client_id: client_id?,
                client_secret: client_secret?,
                scope: scope?,
                audience: audience?,
            }))
        }
        _ => {
            let kept = match current {
                Some(ReceiverAuth::Mtls { private_key, .. }) => Some(private_key.clone()),
                _ => None,
            };
            let certificate = required(errors, "certificate", &input.certificate).and_then(|c| {
                errors.check("auth.certificate", pem::certificates(c).map(|_| c.clone()))
            });
            let private_key = match (&input.private_key, kept) {
                (Some(k), _) => {
                    errors.check("auth.private_key", pem::private_key(k).map(|_| k.clone()))
                }
                (None, Some(k)) => Some(k),
                (None, None) => {
                    errors.add("auth.private_key", "is required");
                    None
                }
            };
            let (certificate, private_key) = (certificate?, private_key?);
            errors.check(
                "auth.private_key",
                pem::check_identity(&certificate, &private_key),
            )?;
            Some(ReceiverAuth::Mtls {
                certificate,
                private_key,
            })
        }
    };
    if errors.0.len() > before {
        return None;
    }
    auth
}

fn required<'a>(
    errors: &mut ValidationErrors,
    name: &str,
    value: &'a Option<String>,
) -> Option<&'a String> {
    match value {
        Some(v) if !v.is_empty() => Some(v),
        _ => {
            errors.add(format!("auth.{name}"), "is required");
            None
        }
    }
}

/// A write-only part: the one given, else the stored one.
fn secret(
    errors: &mut ValidationErrors,
    name: &str,
    value: &Option<String>,
    kept: Option<String>,
) -> Option<String> {
    match (value, kept) {
        (Some(v), _) => errors.check(&format!("auth.{name}"), check_value(v, true)),
        (None, Some(k)) => Some(k),
        (None, None) => {
            errors.add(format!("auth.{name}"), "is required");
            None
        }
    }
}

/// `Some(None)` when absent, `None` when invalid.
fn optional(
    errors: &mut ValidationErrors,
    name: &str,
    value: &Option<String>,
) -> Option<Option<String>> {
    match value {
        None => Some(None),
        Some(v) => errors
            .check(&format!("auth.{name}"), check_value(v, false))
            .map(Some),
    }
}

fn check_value(v: &str, may_be_empty_or_spaced: bool) -> Result<String, String> {
    if v.is_empty() && !may_be_empty_or_spaced {
        return Err("must not be empty".into());
    }
    if v.chars().count() > MAX_VALUE_CHARS {
        return Err(format!("must be at most {MAX_VALUE_CHARS} characters"));
    }
    validate_plain_text(v, false)?;
    Ok(v.to_owned())
}

/// RFC 7617: the user-id of Basic authentication cannot contain a colon.
fn check_username(u: &str) -> Result<String, String> {
    if u.contains(':') {
        return Err("must not contain a colon (RFC 7617)".into());
    }
    check_value(u, false)
}

/// Checks a `ca_certificate`: one or more PEM certificates, each usable as
/// a trust anchor.
pub fn validate_ca_certificate(pem: &str) -> Result<String, String> {
    pem::trust_anchors(pem)?;
    Ok(pem.to_owned())
}

/// Rules between fields: what hookd sets itself cannot also be a custom
/// header, and a client certificate needs an https receiver. Errors name
/// `auth`.
pub fn check_consistency(
    security: &ReceiverSecurity,
    url: &str,
    headers: &Headers,
    errors: &mut ValidationErrors,
) {
    let Some(auth) = &security.auth else {
        return;
    };
    if auth.sets_authorization()
        && headers
            .keys()
            .any(|h| h.eq_ignore_ascii_case("authorization"))
    {
        errors.add(
            "auth",
            format!(
                "auth type {:?} sets the Authorization header: remove the custom Authorization header first",
                auth.kind()
            ),
        );
    }
    if matches!(auth, ReceiverAuth::Mtls { .. }) && !url.starts_with("https://") {
        errors.add(
            "auth",
            "a client certificate is presented over TLS only: the URL must use https",
        );
    }
}

/// PEM documents: certificates, private keys, and whether they belong
/// together, through rustls (the TLS stack that will use them).
pub mod pem {
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    fn size(pem: &str) -> Result<(), String> {
        if pem.len() > super::MAX_PEM_BYTES {
            return Err(format!("must be at most {} bytes", super::MAX_PEM_BYTES));
        }
        Ok(())
    }

    /// Every `CERTIFICATE` block of `pem`, at least one, each a parseable
    /// X.509 certificate.
    pub fn certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
        size(pem)?;
        let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("is not valid PEM: {e}"))?;
        if certs.is_empty() {
            return Err("must hold a PEM certificate (-----BEGIN CERTIFICATE-----)".into());
        }
        for (i, c) in certs.iter().enumerate() {
            rustls::server::ParsedCertificate::try_from(c).map_err(|e| {
                format!(
                    "certificate {} is not a valid X.509 certificate: {e}",
                    i + 1
                )
            })?;
        }
        Ok(certs)
    }

    /// The private key of `pem` (PKCS#8, PKCS#1 or SEC1), of a kind TLS
    /// can sign with.
    pub fn private_key(pem: &str) -> Result<PrivateKeyDer<'static>, String> {
        size(pem)?;
        let key = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| {
            "must hold a PEM private key (-----BEGIN PRIVATE KEY-----, RSA or EC)".to_string()
        })?;
        rustls::crypto::ring::sign::any_supported_type(&key)
            .map_err(|_| "is not an RSA, ECDSA or Ed25519 key TLS can use".to_string())?;
        Ok(key)
    }

    /// Whether the key is the one the first certificate certifies.
    pub fn check_identity(certificate: &str, private_key: &str) -> Result<(), String> {
        let certs = certificates(certificate)?;
        let key = self::private_key(private_key)?;
        let signer = rustls::crypto::ring::sign::any_supported_type(&key)
            .map_err(|_| "is not a key TLS can use".to_string())?;
        rustls::sign::CertifiedKey::new(certs, signer)
            .keys_match()
            .map_err(|e| match e {
                rustls::Error::InconsistentKeys(_) => {
                    "does not match the certificate (its public key differs)".to_string()
                }
                other => format!("cannot be checked against the certificate: {other}"),
            })
    }

    /// The client configuration's identity: certificates and key.
    pub fn identity(
        certificate: &str,
        private_key: &str,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
        Ok((certificates(certificate)?, self::private_key(private_key)?))
    }

    /// Trust anchors from PEM certificates.
    pub fn trust_anchors(pem: &str) -> Result<Arc<rustls::RootCertStore>, String> {
        let certs = certificates(pem)?;
        let mut roots = rustls::RootCertStore::empty();
        for (i, c) in certs.into_iter().enumerate() {
            roots
                .add(c)
                .map_err(|e| format!("certificate {} cannot be a trust anchor: {e}", i + 1))?;
        }
        Ok(Arc::new(roots))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(kind: &str) -> AuthInput {
        AuthInput {
            kind: kind.into(),
            ..AuthInput::default()
        }
    }

    fn check(i: &AuthInput, current: Option<&ReceiverAuth>) -> Result<ReceiverAuth, Vec<String>> {
        let mut errors = ValidationErrors::new();
        let auth = validate_auth(i, current, UrlPolicy::Strict, &mut errors);
        match auth {
            Some(a) if errors.is_empty() => Ok(a),
            _ => Err(errors.0.into_iter().map(|e| e.field).collect()),
        }
    }

    #[test]
    fn unknown_types_and_foreign_fields_name_the_field() {
        assert_eq!(check(&input("digest"), None), Err(vec!["auth.type".into()]));
        let mut i = input("basic");
        i.username = Some("u".into());
        i.password = Some("p".into());
        i.token_url = Some("https://x.test/t".into());
        assert_eq!(check(&i, None), Err(vec!["auth.token_url".into()]));
    }

    #[test]
    fn basic_needs_a_colon_free_user_and_keeps_a_stored_password() {
        let mut i = input("basic");
        i.username = Some("a:b".into());
        i.password = Some("p".into());
        assert_eq!(check(&i, None), Err(vec!["auth.username".into()]));
        i.username = Some("ann".into());
        i.password = None;
        assert_eq!(check(&i, None), Err(vec!["auth.password".into()]));
        let stored = ReceiverAuth::Basic {
            username: "old".into(),
            password: "kept".into(),
        };
        assert_eq!(
            check(&i, Some(&stored)),
            Ok(ReceiverAuth::Basic {
                username: "ann".into(),
                password: "kept".into()
            })
        );
    }

    #[test]
    fn oauth2_token_urls_follow_the_url_policy_and_a_new_one_needs_the_secret_again() {
        let mut i = input("oauth2_client_credentials");
        i.token_url = Some("http://auth.example.test/token".into());
        i.client_id = Some("id".into());
        i.client_secret = Some("s".into());
        assert_eq!(check(&i, None), Err(vec!["auth.token_url".into()]));
        i.token_url = Some("https://auth.example.test/token".into());
        let stored = check(&i, None).unwrap();
        i.client_secret = None;
        i.scope = Some("read write".into());
        let kept = check(&i, Some(&stored)).unwrap();
        let ReceiverAuth::OAuth2(c) = &kept else {
            panic!()
        };
        assert_eq!(c.client_secret, "s");
        assert_eq!(c.scope.as_deref(), Some("read write"));
        i.token_url = Some("https://elsewhere.example.test/token".into());
        assert_eq!(
            check(&i, Some(&stored)),
            Err(vec!["auth.client_secret".into()])
        );
    }

    #[test]
    fn pem_that_is_not_a_certificate_or_key_is_refused() {
        let mut i = input("mtls");
        i.certificate = Some("not pem".into());
        i.private_key =
            Some("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into());
        let fields = check(&i, None).unwrap_err();
        assert!(
            fields.contains(&"auth.certificate".to_string()),
            "{fields:?}"
        );
        assert!(
            fields.contains(&"auth.private_key".to_string()),
            "{fields:?}"
        );
        assert!(
            validate_ca_certificate(
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
            )
            .is_err()
        );
    }

    #[test]
    fn debug_output_never_shows_secret_parts() {
        let a = ReceiverAuth::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{a:?}").contains("hunter2"));
        let k = SigningKeys {
            current: vec![42; 8],
            previous: None,
        };
        assert!(!format!("{k:?}").contains("42"));
    }

    #[test]
    fn a_rotated_out_key_signs_only_during_its_grace() {
        let k = SigningKeys {
            current: vec![1],
            previous: Some((vec![2], 1_000)),
        };
        assert_eq!(k.live(999).len(), 2);
        assert_eq!(k.live(1_000).len(), 1);
    }
}
