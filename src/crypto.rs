//! Key material: webhook secrets, API keys, and the cipher that keeps
//! secrets encrypted at rest.
//!
//! Secrets and custom header values are sealed with XChaCha20-Poly1305
//! (random 192-bit nonce per value, so no nonce bookkeeping). API keys are
//! random 256-bit values, so a single SHA-256 is enough to store them (and to
//! compare them in constant time); a
//! slow hash protects low-entropy passwords, which these are not.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const WEBHOOK_SECRET_PREFIX: &str = "whsec_";
/// How a `v1a` public key is shown (Standard Webhooks).
pub const PUBLIC_KEY_PREFIX: &str = "whpk_";
const API_KEY_PREFIX: &str = "hk_";
const NONCE_LEN: usize = 24;

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// A new signing secret: `whsec_` + base64 of 32 random bytes.
pub fn generate_webhook_secret() -> String {
    format!(
        "{WEBHOOK_SECRET_PREFIX}{}",
        STANDARD.encode(random_bytes::<32>())
    )
}

/// The key bytes of a `whsec_` secret, as Standard Webhooks defines them.
pub fn webhook_secret_bytes(secret: &str) -> Result<Vec<u8>, String> {
    let b64 = secret
        .strip_prefix(WEBHOOK_SECRET_PREFIX)
        .ok_or_else(|| "must start with \"whsec_\"".to_string())?;
    let bytes = STANDARD
        .decode(b64)
        .map_err(|_| "must be \"whsec_\" followed by base64".to_string())?;
    if !(24..=64).contains(&bytes.len()) {
        return Err("must hold between 24 and 64 bytes of key".into());
    }
    Ok(bytes)
}

/// A new Ed25519 signing key for `v1a` signatures, as a PKCS#8 document
/// (what is sealed at rest).
pub fn generate_signing_key() -> Vec<u8> {
    let rng = ring::rand::SystemRandom::new();
    ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
        .expect("the system random generator works")
        .as_ref()
        .to_vec()
}

/// The key pair of a stored signing key.
pub fn signing_key_pair(pkcs8: &[u8]) -> Result<ring::signature::Ed25519KeyPair, String> {
    ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
        .map_err(|e| format!("not an Ed25519 key: {e}"))
}

/// The public key receivers verify with: `whpk_` + base64 of its 32 bytes.
pub fn signing_public_key(pkcs8: &[u8]) -> Result<String, String> {
    use ring::signature::KeyPair;
    let pair = signing_key_pair(pkcs8)?;
    Ok(format!(
        "{PUBLIC_KEY_PREFIX}{}",
        STANDARD.encode(pair.public_key().as_ref())
    ))
}

/// A new provisioned API key (plaintext, shown once).
pub fn generate_api_key() -> String {
    format!(
        "{API_KEY_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>())
    )
}

/// What is stored for an API key.
pub fn hash_api_key(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

#[derive(Debug, thiserror::Error)]
pub enum CipherError {
    #[error("encryption key must be 32 bytes, given as base64 or hex")]
    BadKey,
    #[error("a sealed value could not be opened: wrong encryption key or corrupted data")]
    Open,
    #[error("reading or writing the key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
}

/// Seals and opens values stored at rest.
#[derive(Clone)]
pub struct Cipher {
    aead: XChaCha20Poly1305,
    /// For MACs (signed cookies), derived from the same key so that every
    /// instance sharing the key verifies what another signed.
    mac_key: [u8; 32],
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(..)")
    }
}

impl Cipher {
    pub fn from_key(key: &[u8; 32]) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key size");
        mac.update(b"hookd/mac-key/v1");
        Self {
            aead: XChaCha20Poly1305::new(key.into()),
            mac_key: mac.finalize().into_bytes().into(),
        }
    }

    /// HMAC-SHA256 of `data` for `purpose` (a MAC for one purpose does not
    /// verify for another).
    pub fn mac(&self, purpose: &str, data: &[u8]) -> [u8; 32] {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.mac_key).expect("HMAC takes any key size");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// Checks a MAC made by [`Cipher::mac`], in constant time.
    pub fn verify_mac(&self, purpose: &str, data: &[u8], tag: &[u8]) -> bool {
        bool::from(subtle::ConstantTimeEq::ct_eq(
            &self.mac(purpose, data)[..],
            tag,
        ))
    }

    /// Parses a key given as base64 (standard or URL-safe) or 64 hex digits.
    pub fn from_encoded(s: &str) -> Result<Self, CipherError> {
        let s = s.trim();
        let bytes = if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| CipherError::BadKey)?
        } else {
            STANDARD
                .decode(s)
                .or_else(|_| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')))
                .map_err(|_| CipherError::BadKey)?
        };
        let key: [u8; 32] = bytes.try_into().map_err(|_| CipherError::BadKey)?;
        Ok(Self::from_key(&key))
    }

    /// The configured key, else the one in `<data_dir>/encryption_key`,
    /// generated there (mode 0600) on first start.
    pub fn load_or_create(configured: Option<&str>, data_dir: &Path) -> Result<Self, CipherError> {
        if let Some(k) = configured {
            return Self::from_encoded(k);
        }
        let path = data_dir.join("encryption_key");
        let io_err = |source| CipherError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(s) => Self::from_encoded(&s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let encoded = STANDARD.encode(random_bytes::<32>());
                write_private_file(&path, &encoded).map_err(io_err)?;
                Self::from_encoded(&encoded)
            }
            Err(e) => Err(io_err(e)),
        }
    }

    /// Encrypts `plaintext`; `context` binds the value to its place (a
    /// sealed secret copied into another column or tenant will not open).
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Vec<u8> {
        let nonce = random_bytes::<NONCE_LEN>();
        let ct = self
            .aead
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, CipherError> {
        if sealed.len() < NONCE_LEN {
            return Err(CipherError::Open);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        self.aead
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| CipherError::Open)
    }
}

/// Creates `path` with mode 0600 and writes `contents`; fails if it exists.
pub fn write_private_file(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_verify_only_for_their_key_purpose_and_data() {
        let a = Cipher::from_key(&[1; 32]);
        let b = Cipher::from_key(&[2; 32]);
        let tag = a.mac("session", b"token");
        assert!(a.verify_mac("session", b"token", &tag));
        assert!(Cipher::from_key(&[1; 32]).verify_mac("session", b"token", &tag));
        assert!(!b.verify_mac("session", b"token", &tag));
        assert!(!a.verify_mac("csrf", b"token", &tag));
        assert!(!a.verify_mac("session", b"tokeN", &tag));
        assert!(!a.verify_mac("session", b"token", &tag[..31]));
    }

    #[test]
    fn sealed_values_open_only_with_same_key_and_context() {
        let c = Cipher::from_key(&[7u8; 32]);
        let sealed = c.seal(b"whsec_abc", "webhook:t1:secret");
        assert!(!sealed.windows(9).any(|w| w == b"whsec_abc"));
        assert_eq!(c.open(&sealed, "webhook:t1:secret").unwrap(), b"whsec_abc");
        assert!(c.open(&sealed, "webhook:t2:secret").is_err());
        let other = Cipher::from_key(&[8u8; 32]);
        assert!(other.open(&sealed, "webhook:t1:secret").is_err());
        assert!(c.open(&sealed[..10], "webhook:t1:secret").is_err());
    }

    #[test]
    fn two_seals_of_one_value_differ() {
        let c = Cipher::from_key(&[1u8; 32]);
        assert_ne!(c.seal(b"x", "ctx"), c.seal(b"x", "ctx"));
    }

    #[test]
    fn keys_parse_from_base64_and_hex_only_at_32_bytes() {
        assert!(Cipher::from_encoded(&STANDARD.encode([3u8; 32])).is_ok());
        assert!(Cipher::from_encoded(&"ab".repeat(32)).is_ok());
        assert!(Cipher::from_encoded(&STANDARD.encode([3u8; 16])).is_err());
        assert!(Cipher::from_encoded("not a key").is_err());
    }

    #[test]
    fn generated_key_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = Cipher::load_or_create(None, dir.path()).unwrap();
        let sealed = a.seal(b"v", "c");
        let b = Cipher::load_or_create(None, dir.path()).unwrap();
        assert_eq!(b.open(&sealed, "c").unwrap(), b"v");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("encryption_key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn signing_keys_are_ed25519_and_show_a_whpk_public_key_of_32_bytes() {
        let k = generate_signing_key();
        let public = signing_public_key(&k).unwrap();
        let raw = STANDARD
            .decode(public.strip_prefix(PUBLIC_KEY_PREFIX).unwrap())
            .unwrap();
        assert_eq!(raw.len(), 32);
        assert_ne!(k, generate_signing_key());
        assert!(signing_public_key(b"junk").is_err());
    }

    #[test]
    fn webhook_secrets_are_whsec_base64_of_32_random_bytes() {
        let s = generate_webhook_secret();
        assert_eq!(webhook_secret_bytes(&s).unwrap().len(), 32);
        assert_ne!(s, generate_webhook_secret());
        assert!(webhook_secret_bytes("abc").is_err());
        assert!(webhook_secret_bytes("whsec_!!").is_err());
    }
}
