//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256(key, "{id}.{ts}.{body}")>`
//! where the key is the base64-decoded part of the `whsec_` secret, and
//! `v1a,<base64 Ed25519 signature of "{id}.{ts}.{body}">` (SPEC §13),
//! verified with the `whpk_` public key.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::crypto::webhook_secret_bytes;

type HmacSha256 = Hmac<Sha256>;

/// One `v1,…` signature.
pub fn sign(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    signature_header([&Signer::hmac(key)], msg_id, &timestamp.to_string(), body)
}

/// A key that signs deliveries.
#[derive(Clone)]
pub enum Signer {
    /// `v1`: HMAC-SHA256 already keyed with the decoded `whsec_` secret
    /// (a copy of this state signs: the key's two blocks are not hashed
    /// again for every delivery).
    Hmac(HmacSha256),
    /// `v1a`: an Ed25519 key pair.
    Ed25519(Arc<ring::signature::Ed25519KeyPair>),
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Hmac(_) => "Signer::Hmac(..)",
            Self::Ed25519(_) => "Signer::Ed25519(..)",
        })
    }
}

impl Signer {
    /// A `v1` signer of the decoded secret `key`.
    pub fn hmac(key: &[u8]) -> Self {
        Self::Hmac(HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length"))
    }

    /// Appends one `v1,…` or `v1a,…` signature of `{msg_id}.{timestamp}.{body}` to `out`.
    fn sign_into(&self, out: &mut String, msg_id: &str, timestamp: &str, body: &[u8]) {
        let signed = [msg_id.as_bytes(), b".", timestamp.as_bytes(), b".", body];
        match self {
            Self::Hmac(keyed) => {
                let mut mac = keyed.clone();
                for part in signed {
                    mac.update(part);
                }
                out.push_str("v1,");
                STANDARD.encode_string(mac.finalize().into_bytes(), out);
            }
            Self::Ed25519(pair) => {
                out.push_str("v1a,");
                STANDARD.encode_string(pair.sign(&signed.concat()).as_ref(), out);
            }
        }
    }
}

/// The `webhook-signature` value: one signature per live key, space-separated.
pub fn signature_header<'a>(
    keys: impl IntoIterator<Item = &'a Signer>,
    msg_id: &str,
    timestamp: &str,
    body: &[u8],
) -> String {
    // "v1," and 44 base64 characters; "v1a," and 88.
    let mut out = String::with_capacity(96);
    for key in keys {
        if !out.is_empty() {
            out.push(' ');
        }
        key.sign_into(&mut out, msg_id, timestamp, body);
    }
    out
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the secret is not a whsec_ secret: {0}")]
    BadSecret(String),
    #[error("the webhook-timestamp header is missing or not a number")]
    BadTimestamp,
    #[error("the timestamp is more than {0} s away from now")]
    Stale(i64),
    #[error("no signature matches")]
    NoMatch,
}

/// Verifies a delivery as a receiver would: the timestamp within
/// `tolerance_s` of `now_s`, and any `v1` signature matching.
pub fn verify(
    secret: &str,
    msg_id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now_s: i64,
    tolerance_s: i64,
) -> Result<(), VerifyError> {
    let key = webhook_secret_bytes(secret).map_err(VerifyError::BadSecret)?;
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    if (now_s - ts).abs() > tolerance_s {
        return Err(VerifyError::Stale(tolerance_s));
    }
    let expected = sign(&key, msg_id, ts, body);
    let expected_b64 = expected.as_bytes();
    let matched = signatures.split(' ').any(|candidate| {
        use subtle::ConstantTimeEq;
        candidate.len() == expected_b64.len()
            && bool::from(candidate.as_bytes().ct_eq(expected_b64))
    });
    if matched {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The published Standard Webhooks test vector.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn key() -> Vec<u8> {
        STANDARD
            .decode(SECRET.trim_start_matches("whsec_"))
            .unwrap()
    }

    #[test]
    fn matches_the_standard_webhooks_test_vector() {
        assert_eq!(sign(&key(), MSG_ID, TIMESTAMP, BODY), EXPECTED);
    }

    #[test]
    fn two_live_secrets_give_two_space_separated_signatures() {
        let h = signature_header(
            &[Signer::hmac(&key()), Signer::hmac(&[1; 32])],
            MSG_ID,
            &TIMESTAMP.to_string(),
            BODY,
        );
        let parts: Vec<&str> = h.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], EXPECTED);
    }

    #[test]
    fn v1a_signs_id_timestamp_and_body_with_ed25519() {
        use ring::signature::{ED25519, KeyPair, UnparsedPublicKey};
        let pkcs8 = crate::crypto::generate_signing_key();
        let pair = Arc::new(crate::crypto::signing_key_pair(&pkcs8).unwrap());
        let signer = Signer::Ed25519(pair.clone());
        let sig = signature_header([&signer], MSG_ID, &TIMESTAMP.to_string(), BODY);
        let raw = STANDARD.decode(sig.strip_prefix("v1a,").unwrap()).unwrap();
        let public = UnparsedPublicKey::new(&ED25519, pair.public_key().as_ref().to_vec());
        let signed = format!(
            "{MSG_ID}.{TIMESTAMP}.{}",
            std::str::from_utf8(BODY).unwrap()
        );
        assert!(public.verify(signed.as_bytes(), &raw).is_ok());
        assert!(public.verify(b"msg.1.{}", &raw).is_err());
    }

    #[test]
    fn verify_accepts_the_vector_and_rejects_tampering() {
        let ts = TIMESTAMP.to_string();
        assert_eq!(
            verify(SECRET, MSG_ID, &ts, EXPECTED, BODY, TIMESTAMP, 300),
            Ok(())
        );
        assert_eq!(
            verify(
                SECRET,
                MSG_ID,
                &ts,
                &format!("v1,bogus {EXPECTED}"),
                BODY,
                TIMESTAMP,
                300
            ),
            Ok(())
        );
        assert_eq!(
            verify(
                SECRET,
                MSG_ID,
                &ts,
                EXPECTED,
                b"{\"test\": 1}",
                TIMESTAMP,
                300
            ),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(SECRET, MSG_ID, &ts, EXPECTED, BODY, TIMESTAMP + 301, 300),
            Err(VerifyError::Stale(300))
        );
    }
}
