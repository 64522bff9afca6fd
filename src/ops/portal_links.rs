//! Customer-portal links (SPEC §11): make one, and open one into a portal
//! session. A link is `base64(token).base64(mac)`: 32 random bytes and
//! their HMAC under a key derived from the encryption key, so a link that
//! was altered or cut short is told apart (and refused) without a database
//! read. The store keeps the token's SHA-256, the tenant, the key that made
//! the link, and when it was used: a link opens once, before it expires.
//!
//! A portal session's token travels in the portal's URLs (an embedding
//! page on another site cannot rely on cookies): it is signed the same way
//! under its own purpose, stored hashed like an admin session, bound to
//! one tenant and expires after [`PORTAL_SESSION_TTL_MS`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::crypto::Cipher;
use crate::domain::ValidationErrors;
use crate::domain::api_key::{Permission, Principal};
use crate::domain::duration::parse_plain_duration_ms;
use crate::domain::tenant::validate_tenant_id;
use crate::store::{AdminSessionRecord, PortalLinkRecord, PortalLinkUse};

use super::{OpError, OpResult, Services};

pub const DEFAULT_EXPIRY_MS: i64 = 3_600_000;
pub const MAX_EXPIRY_MS: i64 = 24 * 3_600_000;
/// How long a portal stays open once its link is used.
pub const PORTAL_SESSION_TTL_MS: i64 = 4 * 3_600_000;
const LINK_PURPOSE: &str = "portal-link";
pub const SESSION_PURPOSE: &str = "portal-session";

/// A link as asked for.
#[derive(Debug, Clone, Default)]
pub struct NewPortalLink {
    /// The caller's tenant when absent.
    pub tenant: Option<String>,
    /// A duration (`1h`, `30m`); 1 h when absent, at most 24 h.
    pub expires_in: Option<String>,
    pub read_only: bool,
}

/// A link made: the token to put in its URL, and when it expires.
#[derive(Debug, Clone)]
pub struct MadePortalLink {
    pub token: String,
    pub tenant: String,
    pub expires_at: i64,
    pub read_only: bool,
}

fn random_token() -> [u8; 32] {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    b
}

/// `base64(token).base64(mac)` under `purpose`.
pub fn sign_token(cipher: &Cipher, purpose: &str, token: &[u8]) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(token),
        URL_SAFE_NO_PAD.encode(cipher.mac(purpose, token))
    )
}

/// The token of a signed value, if its MAC holds.
pub fn verify_token(cipher: &Cipher, purpose: &str, value: &str) -> Option<Vec<u8>> {
    let (token, tag) = value.split_once('.')?;
    let token = URL_SAFE_NO_PAD.decode(token).ok()?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    cipher.verify_mac(purpose, &token, &tag).then_some(token)
}

/// Makes a single-use link to `input.tenant`'s portal. `key_ref` is the
/// caller's key as sessions reference it: the portal lives only as long
/// as that key does. A provisioned key makes links for its own tenant.
pub async fn create_portal_link(
    ops: &Services,
    cipher: &Cipher,
    principal: &Principal,
    key_ref: Vec<u8>,
    input: NewPortalLink,
    now: i64,
) -> OpResult<MadePortalLink> {
    if !principal.has(Permission::Admin) {
        return Err(OpError::Forbidden(
            "this API key lacks the \"admin\" permission".into(),
        ));
    }
    let mut errors = ValidationErrors::new();
    let tenant = input
        .tenant
        .unwrap_or_else(|| principal.tenant().to_owned());
    errors.check("tenant", validate_tenant_id(&tenant));
    if !principal.is_bootstrap() && tenant != principal.tenant() {
        return Err(OpError::Forbidden(
            "a provisioned key makes portal links for its own tenant only".into(),
        ));
    }
    let expires_in = match input.expires_in.as_deref() {
        None => Some(DEFAULT_EXPIRY_MS),
        Some(text) => match parse_plain_duration_ms(text) {
            Ok(ms) if ms > 0 && ms as i64 <= MAX_EXPIRY_MS => Some(ms as i64),
            Ok(_) => {
                errors.add("expires_in", "must be longer than 0 and at most 24h");
                None
            }
            Err(e) => {
                errors.add("expires_in", e);
                None
            }
        },
    };
    errors.into_result()?;
    let token = random_token();
    let link = PortalLinkRecord {
        id_hash: Sha256::digest(token).to_vec(),
        tenant_id: tenant.clone(),
        key_ref,
        read_only: input.read_only,
        created_at: now,
        expires_at: now + expires_in.expect("validated"),
    };
    ops.store.create_portal_link(&link).await?;
    tracing::info!(tenant = %tenant, read_only = input.read_only, "portal link made");
    Ok(MadePortalLink {
        token: sign_token(cipher, LINK_PURPOSE, &token),
        tenant,
        expires_at: link.expires_at,
        read_only: link.read_only,
    })
}

/// Why a link opened no portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkRefused {
    /// The MAC does not hold: altered, cut short, or made elsewhere.
    Tampered,
    Unknown,
    Used(i64),
    Expired(i64),
    /// The key that made it was revoked (or the management key removed).
    KeyGone,
}

/// An opened portal: the signed session token for the portal's URLs.
#[derive(Debug, Clone)]
pub struct OpenedPortal {
    pub session: String,
    pub tenant: String,
}

/// Uses a link (once) and opens a portal session for its tenant.
pub async fn open_portal_link(
    ops: &Services,
    cipher: &Cipher,
    link: &str,
    now: i64,
) -> OpResult<Result<OpenedPortal, LinkRefused>> {
    let Some(token) = verify_token(cipher, LINK_PURPOSE, link) else {
        return Ok(Err(LinkRefused::Tampered));
    };
    let link = match ops
        .store
        .open_portal_link(&Sha256::digest(&token), now)
        .await?
    {
        PortalLinkUse::Opened(link) => link,
        PortalLinkUse::Used(at) => return Ok(Err(LinkRefused::Used(at))),
        PortalLinkUse::Expired(at) => return Ok(Err(LinkRefused::Expired(at))),
        PortalLinkUse::Unknown => return Ok(Err(LinkRefused::Unknown)),
    };
    let maker = ops
        .authenticator
        .principal_for_session(&link.key_ref, &link.tenant_id, now)
        .await?;
    if !maker.is_some_and(|p| p.has(Permission::Admin) && p.tenant() == link.tenant_id) {
        return Ok(Err(LinkRefused::KeyGone));
    }
    let session = random_token();
    ops.store
        .create_admin_session(&AdminSessionRecord {
            id_hash: Sha256::digest(session).to_vec(),
            key_ref: link.key_ref,
            tenant_id: link.tenant_id.clone(),
            csrf_token: URL_SAFE_NO_PAD.encode(random_token()),
            created_at: now,
            expires_at: now + PORTAL_SESSION_TTL_MS,
            kind: if link.read_only {
                "portal_read_only"
            } else {
                "portal"
            }
            .into(),
        })
        .await?;
    tracing::info!(tenant = %link.tenant_id, read_only = link.read_only, "portal opened");
    Ok(Ok(OpenedPortal {
        session: sign_token(cipher, SESSION_PURPOSE, &session),
        tenant: link.tenant_id,
    }))
}
