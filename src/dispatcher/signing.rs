//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256(key, "{id}.{ts}.{body}")>`
//! where the key is the base64-decoded part of the `whsec_` secret.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::crypto::webhook_secret_bytes;

type HmacSha256 = Hmac<Sha256>;

/// One `v1,…` signature.
pub fn sign(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` value: one signature per live key, space-separated.
pub fn signature_header(keys: &[Vec<u8>], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|k| sign(k, msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
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
        let h = signature_header(&[key(), vec![1; 32]], MSG_ID, TIMESTAMP, BODY);
        let parts: Vec<&str> = h.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], EXPECTED);
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
