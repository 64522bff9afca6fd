//! Sign-in, sign-out, and the session every other admin page requires.
//!
//! The session cookie holds a random token and its MAC (key derived from
//! the encryption key, so every instance sharing the database accepts it);
//! the store keeps the token's SHA-256 with the hash of the key that signed
//! in, which is checked again on every request: revoking the key, or
//! removing a management key from the configuration, ends its sessions.
//! Sign-out deletes the row, so a copied cookie dies with it.
//!
//! The customer portal (SPEC §11) is the same pages under
//! `/portal/s/{token}/…`: there the session is the signed token in the
//! URL (`PortalToken`, put there by the portal's router), not a cookie,
//! and it is a portal session's only (`kind`), bound to its tenant.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::{PageError, render_with};
use super::forms::{Form, safe_return_path};
use crate::auth::KeyCheck;
use crate::crypto::hash_api_key;
use crate::domain::api_key::{Permission, Principal};
use crate::domain::tenant::{DEFAULT_TENANT, validate_tenant_id};
use crate::state::AppState;
use crate::store::AdminSessionRecord;
use crate::throttle::Client;

pub const SESSION_COOKIE: &str = "hookd_session";
/// Marks the one reload of a page reached by a link from another site.
pub const RELOAD_COOKIE: &str = "hookd_reload";
/// Double-submit token of the sign-in form (there is no session yet).
const LOGIN_COOKIE: &str = "hookd_login";
const SESSION_TTL_MS: i64 = 12 * 3_600_000;
const MAC_PURPOSE: &str = "admin-session";
/// Slows down key guessing through the form.
const FAILED_SIGN_IN_PAUSE: std::time::Duration = std::time::Duration::from_millis(300);

/// A signed-in admin: a management key (any tenant, chosen at sign-in) or
/// a provisioned key with the `admin` permission (its own tenant); or a
/// customer portal opened by a link, for one tenant.
pub struct AdminSession {
    pub tenant: String,
    /// Who signed in (management keys: acting on `tenant`; a portal: the
    /// key that made its link).
    pub principal: Principal,
    pub csrf: String,
    /// Management keys may change service-wide settings and switch
    /// tenants (never in a portal).
    pub bootstrap: bool,
    /// Where this session's pages are: `/admin`, or `/portal/s/{token}`.
    pub base: String,
    /// A portal session, and whether it may only look.
    pub portal: Option<PortalMode>,
    /// Tenants to offer in the switcher (management keys on the admin page).
    pub known_tenants: Vec<String>,
    id_hash: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct PortalMode {
    pub read_only: bool,
    /// `--portal-product-name`, shown in the portal's header.
    pub product_name: String,
}

impl AdminSession {
    pub fn is_portal(&self) -> bool {
        self.portal.is_some()
    }

    pub fn read_only(&self) -> bool {
        self.portal.as_ref().is_some_and(|p| p.read_only)
    }

    /// `path` (starting with `/`) under this session's pages.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// The signed portal-session token of a request under `/portal/s/`.
#[derive(Debug, Clone)]
pub struct PortalToken(pub String);

/// Tenants a management key's switcher lists at most.
const TENANTS_LISTED: u64 = 200;

fn random_token() -> [u8; 32] {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    b
}

pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(name: &str, value: &str, max_age_s: i64, secure: bool) -> HeaderValue {
    set_cookie_at(name, value, "/admin", max_age_s, secure)
}

/// An HttpOnly, SameSite=Strict cookie for `path`.
pub(super) fn set_cookie_at(
    name: &str,
    value: &str,
    path: &str,
    max_age_s: i64,
    secure: bool,
) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}"
    ))
    .expect("cookie text is ASCII")
}

/// `base64(token).base64(mac)`.
fn sign(state: &AppState, token: &[u8]) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(token),
        URL_SAFE_NO_PAD.encode(state.cipher.mac(MAC_PURPOSE, token))
    )
}

fn verify(state: &AppState, value: &str) -> Option<Vec<u8>> {
    let (token, tag) = value.split_once('.')?;
    let token = URL_SAFE_NO_PAD.decode(token).ok()?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    state
        .cipher
        .verify_mac(MAC_PURPOSE, &token, &tag)
        .then_some(token)
}

/// A form posted from another site is refused, whatever it carries. A
/// current browser says where a request comes from (`Sec-Fetch-Site`):
/// only this origin (or the user typing the address) passes. Without that
/// header, an `Origin` must name the host the request was sent to — as the
/// client saw it, which behind a proxy may be `X-Forwarded-Host` rather
/// than `Host`. Neither header (not a browser): the CSRF token still guards.
fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Some(origin_host) = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest)
    else {
        return false; // `null`, or not a URL
    };
    ["x-forwarded-host", "host"]
        .iter()
        .filter_map(|name| headers.get(*name))
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(',').next())
        .any(|host| host.trim().eq_ignore_ascii_case(origin_host))
}

impl FromRequestParts<AppState> for AdminSession {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        if let Some(PortalToken(token)) = parts.extensions.get::<PortalToken>().cloned() {
            return portal_session(state, token).await;
        }
        // Nested under /admin, `parts.uri` lacks the prefix: the original has it.
        let original = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or(&parts.uri, |o| &o.0);
        let next = if parts.method == Method::GET {
            original
                .path_and_query()
                .map_or("/admin/webhooks", |p| p.as_str())
        } else {
            "/admin/webhooks"
        };
        let sign_in = || PageError::SignIn {
            next: next.to_owned(),
        };
        let Some(value) = cookie(&parts.headers, SESSION_COOKIE) else {
            let from_elsewhere = parts
                .headers
                .get("sec-fetch-site")
                .is_some_and(|v| v.as_bytes() == b"cross-site");
            // Once only: a browser that still withholds the cookie signs in.
            let reloaded = cookie(&parts.headers, RELOAD_COOKIE).is_some();
            if parts.method == Method::GET && from_elsewhere && !reloaded {
                return Err(PageError::Reload);
            }
            return Err(sign_in());
        };
        let token = verify(state, value).ok_or_else(sign_in)?;
        let id_hash = Sha256::digest(&token).to_vec();
        let now = state.clock.now_ms();
        let record = state
            .ops
            .store
            .find_admin_session(&id_hash, now)
            .await?
            .filter(|r| r.kind == "admin")
            .ok_or_else(sign_in)?;
        let principal = state
            .ops
            .authenticator
            .principal_for_session(&record.key_ref, &record.tenant_id, now)
            .await?;
        match principal {
            Some(p) if p.has(Permission::Admin) => Ok(AdminSession {
                tenant: p.tenant().to_owned(),
                csrf: record.csrf_token,
                bootstrap: p.is_bootstrap(),
                known_tenants: if p.is_bootstrap() {
                    state.ops.store.list_tenants(TENANTS_LISTED).await?
                } else {
                    Vec::new()
                },
                principal: p,
                base: "/admin".into(),
                portal: None,
                id_hash,
            }),
            _ => {
                state.ops.store.delete_admin_session(&id_hash).await?;
                Err(sign_in())
            }
        }
    }
}

/// The portal session a URL token names: its MAC, its row (a portal
/// kind, not expired) and the key that made its link (still valid).
/// Anything else is a page saying the portal has ended, never a sign-in.
async fn portal_session(state: &AppState, token: String) -> Result<AdminSession, PageError> {
    use crate::ops::portal_links::{SESSION_PURPOSE, verify_token};
    let ended = || PageError::PortalEnded;
    let raw = verify_token(&state.cipher, SESSION_PURPOSE, &token).ok_or_else(ended)?;
    let id_hash = Sha256::digest(&raw).to_vec();
    let now = state.clock.now_ms();
    let record = state
        .ops
        .store
        .find_admin_session(&id_hash, now)
        .await?
        .ok_or_else(ended)?;
    let read_only = match record.kind.as_str() {
        "portal" => false,
        "portal_read_only" => true,
        _ => return Err(ended()),
    };
    let principal = state
        .ops
        .authenticator
        .principal_for_session(&record.key_ref, &record.tenant_id, now)
        .await?
        .filter(|p| p.has(Permission::Admin) && p.tenant() == record.tenant_id)
        .ok_or_else(ended)?;
    Ok(AdminSession {
        tenant: record.tenant_id,
        principal,
        csrf: record.csrf_token,
        bootstrap: false,
        base: format!("/portal/s/{token}"),
        portal: Some(PortalMode {
            read_only,
            product_name: state.ops.settings.portal_product_name.clone(),
        }),
        known_tenants: Vec::new(),
        id_hash,
    })
}

/// A form posted by a signed-in admin, from this site, with the session's
/// CSRF token. Every state-changing admin route takes one.
pub struct Submitted {
    pub session: AdminSession,
    pub form: Form,
}

impl FromRequest<AppState> for Submitted {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, PageError> {
        let (mut parts, body) = req.into_parts();
        if !same_origin(&parts.headers) {
            return Err(PageError::forbidden(
                "This form was sent from another site and has been refused.",
            ));
        }
        let session = AdminSession::from_request_parts(&mut parts, state).await?;
        if session.read_only() {
            return Err(PageError::forbidden(
                "This portal is read-only: it shows your webhooks and deliveries but changes nothing.",
            ));
        }
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|e| PageError::Page {
                status: e.status(),
                detail: format!("The form could not be read: {}", e.body_text()),
            })?;
        let form = Form::parse(&bytes);
        let given = form.raw("csrf_token").unwrap_or_default();
        if !bool::from(given.as_bytes().ct_eq(session.csrf.as_bytes())) {
            return Err(PageError::forbidden(
                "This form has expired or did not come from this page. Go back, reload the page and try again.",
            ));
        }
        Ok(Self { session, form })
    }
}

#[derive(askama::Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    tenant: String,
    error: Option<String>,
    signed_out: bool,
    asset_version: &'static str,
}

fn login_response(
    state: &AppState,
    status: StatusCode,
    next: &str,
    tenant: &str,
    error: Option<String>,
    signed_out: bool,
) -> Response {
    let csrf = URL_SAFE_NO_PAD.encode(random_token());
    let page = LoginPage {
        csrf: csrf.clone(),
        next: safe_return_path(next).unwrap_or("").to_owned(),
        tenant: tenant.to_owned(),
        error,
        signed_out,
        asset_version: super::ASSET_VERSION,
    };
    let mut resp = render_with(status, &page);
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            LOGIN_COOKIE,
            &csrf,
            3_600,
            state.ops.settings.admin_secure_cookies,
        ),
    );
    resp
}

pub async fn login_page(
    axum::extract::State(state): axum::extract::State<AppState>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let q = Form::parse(query.unwrap_or_default().as_bytes());
    login_response(
        &state,
        StatusCode::OK,
        &q.text("next"),
        "",
        None,
        q.checked("signed_out"),
    )
}

pub async fn login_submit(
    axum::extract::State(state): axum::extract::State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = Form::parse(&body);
    let next = form.text("next");
    let tenant_given = form.text("tenant");
    let fail = |status, message: &str| {
        Ok(login_response(
            &state,
            status,
            &next,
            &tenant_given,
            Some(message.to_owned()),
            false,
        ))
    };
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    let given = form.raw("csrf_token").unwrap_or_default();
    if !same_origin(&headers)
        || expected.is_empty()
        || !bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
    {
        return fail(
            StatusCode::FORBIDDEN,
            "The sign-in form expired or came from another site. Please sign in again.",
        );
    }
    let key = form.text("api_key");
    if key.is_empty() {
        return fail(StatusCode::BAD_REQUEST, "Enter an API key.");
    }
    let tenant = if tenant_given.is_empty() {
        DEFAULT_TENANT.to_owned()
    } else {
        tenant_given.clone()
    };
    if let Err(m) = validate_tenant_id(&tenant) {
        return fail(StatusCode::BAD_REQUEST, &format!("Tenant: {m}"));
    }
    let key_hash = hash_api_key(&key);
    let now = state.clock.now_ms();
    let principal = match state
        .ops
        .authenticator
        .check_key(client, &key_hash, Some(&tenant), now)
        .await?
    {
        KeyCheck::Valid(principal) => principal,
        KeyCheck::Unknown => {
            tracing::warn!(tenant = %tenant, "admin sign-in refused: unknown key");
            tokio::time::sleep(FAILED_SIGN_IN_PAUSE).await;
            return fail(StatusCode::UNAUTHORIZED, "This API key is not valid.");
        }
        KeyCheck::Throttled(t) => {
            tracing::warn!(tenant = %tenant, "admin sign-in refused: too many failures from this address");
            let mut resp = login_response(
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                &next,
                &tenant_given,
                Some(format!(
                    "Too many failed sign-ins from your address. Try again in {} seconds.",
                    t.retry_after_s
                )),
                false,
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(t.retry_after_s));
            return Ok(resp);
        }
    };
    if !principal.has(Permission::Admin) {
        tracing::warn!(tenant = %principal.tenant(), "admin sign-in refused: the key lacks admin");
        tokio::time::sleep(FAILED_SIGN_IN_PAUSE).await;
        return fail(
            StatusCode::FORBIDDEN,
            "This API key lacks the admin permission the admin page needs.",
        );
    }
    let token = random_token();
    let record = AdminSessionRecord {
        id_hash: Sha256::digest(token).to_vec(),
        key_ref: state.ops.authenticator.session_key_ref(&key_hash),
        tenant_id: principal.tenant().to_owned(),
        csrf_token: URL_SAFE_NO_PAD.encode(random_token()),
        created_at: now,
        expires_at: now + SESSION_TTL_MS,
        kind: "admin".into(),
    };
    state.ops.store.create_admin_session(&record).await?;
    match &principal {
        Principal::Bootstrap { tenant } => {
            tracing::info!(tenant = %tenant, key = "management", "admin signed in")
        }
        Principal::ApiKey { id, tenant, .. } => {
            tracing::info!(tenant = %tenant, key.id = id, "admin signed in")
        }
    }
    let target = safe_return_path(&next).unwrap_or("/admin/webhooks");
    let mut resp = Redirect::to(target).into_response();
    let secure = state.ops.settings.admin_secure_cookies;
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            &sign(&state, &token),
            SESSION_TTL_MS / 1000,
            secure,
        ),
    );
    h.append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, "", 0, secure));
    Ok(resp)
}

/// A management key's session moves to another tenant.
pub async fn switch_tenant(
    axum::extract::State(state): axum::extract::State<AppState>,
    submitted: Submitted,
) -> Result<Response, PageError> {
    let Submitted { session, form } = submitted;
    if !session.bootstrap {
        return Err(PageError::forbidden(
            "This key belongs to one tenant: sign in with a management key to act on another.",
        ));
    }
    // A known tenant from the list, or a new one typed under the explicit
    // "New tenant" choice (the list's empty value).
    let tenant = match form.text("tenant") {
        t if !t.is_empty() => t,
        _ => match form.text("new_tenant") {
            t if !t.is_empty() => t,
            _ => {
                return Err(PageError::bad_request(
                    "New tenant: type the new tenant's id, or choose a tenant from the list.",
                ));
            }
        },
    };
    validate_tenant_id(&tenant).map_err(|m| PageError::bad_request(format!("Tenant: {m}")))?;
    state
        .ops
        .store
        .set_admin_session_tenant(&session.id_hash, &tenant)
        .await?;
    Ok(Redirect::to("/admin/webhooks").into_response())
}

pub async fn logout(
    axum::extract::State(state): axum::extract::State<AppState>,
    submitted: Submitted,
) -> Result<Response, PageError> {
    state
        .ops
        .store
        .delete_admin_session(&submitted.session.id_hash)
        .await?;
    let mut resp = Redirect::to("/admin/login?signed_out=1").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            "",
            0,
            state.ops.settings.admin_secure_cookies,
        ),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let h = headers(&[("cookie", "a=1; hookd_session=x.y"), ("cookie", "b=2")]);
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("x.y"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "hookd"), None);
    }

    #[test]
    fn forms_through_a_proxy_pass() {
        // nginx's default sends the upstream address as Host.
        let h = headers(&[
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-host", "hooks.example.com"),
            ("origin", "https://hooks.example.com"),
        ]);
        assert!(same_origin(&h));
        // A browser that says so is believed, whatever the proxy did to Host.
        assert!(same_origin(&headers(&[
            ("origin", "https://hooks.example.com"),
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "hooks.example.com"),
            ("sec-fetch-site", "same-site")
        ])));
    }

    #[test]
    fn cross_site_forms_are_refused() {
        let host = ("host", "127.0.0.1:8080");
        assert!(same_origin(&headers(&[host])));
        assert!(same_origin(&headers(&[
            host,
            ("origin", "http://127.0.0.1:8080")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("origin", "http://evil.test")
        ])));
        assert!(!same_origin(&headers(&[host, ("origin", "null")])));
        assert!(!same_origin(&headers(&[
            host,
            ("sec-fetch-site", "cross-site")
        ])));
    }
}
