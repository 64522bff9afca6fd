//! The customer portal (SPEC §11): a link opens it, then the tenant pages
//! of the admin page serve it under `/portal/s/{token}/…`.
//!
//! Why the session is a token in the URL: the portal is meant to be framed
//! by another site, and browsers that block third-party cookies would
//! never send a cookie to a framed hookd. So every link and form of a
//! portal page carries the signed session token in its path (the pages
//! build their addresses from `AdminSession::base`). What keeps that safe:
//! - the token is 32 random bytes with an HMAC (junk costs no database
//!   read); the store holds its SHA-256 only, bound to one tenant, with an
//!   expiry (4 h) and the key that made the link (revoked key: closed);
//! - a portal token opens portal sessions only, never the admin page (its
//!   own MAC purpose and session kind), and no key, setting or tenant
//!   switch is routed under `/portal/s/`;
//! - forms still need the session's CSRF token and a same-origin request
//!   (`Sec-Fetch-Site`), so a page elsewhere cannot post into a portal even
//!   knowing its URL;
//! - `Referrer-Policy: no-referrer` keeps the URL out of other sites' logs
//!   (the pages link nowhere else anyway), `Cache-Control: no-store` out of
//!   caches, and request logs show `/portal/s/…` without the token;
//! - `frame-ancestors` lists only `--portal-frame-ancestors`.

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get};
use tower_service::Service;

use super::error::{PORTAL_BASE, PageError};
use super::session::PortalToken;
use super::view::display_time;
use crate::ops::portal_links::{LinkRefused, open_portal_link};
use crate::state::AppState;

/// `/portal/…`: opening a link, the theme, and the portal's pages.
pub fn portal_routes(state: AppState) -> Router<AppState> {
    let pages = super::tenant_pages()
        .fallback(|| async {
            PageError::Page {
                status: StatusCode::NOT_FOUND,
                detail: "There is no such page in this portal.".into(),
            }
        })
        .with_state(state.clone());
    let frame_ancestors = frame_ancestors(&state.ops.settings.portal_frame_ancestors);
    let serve = move |req: Request| {
        let mut pages = pages.clone();
        async move { serve_page(&mut pages, req).await }
    };
    Router::new()
        .route("/portal/links/{link}", get(open_link))
        .route("/portal/theme.css", get(theme))
        // Nested as a service: a route with a `{*rest}` capture would hand
        // its parameter on to the pages' own `Path` extractors.
        .nest_service("/portal/s", any::<_, _, ()>(serve))
        .layer(axum::middleware::from_fn(move |req, next| {
            portal_headers(frame_ancestors.clone(), req, next)
        }))
}

/// Takes the session token off the path (`/{token}/webhooks` →
/// `/webhooks`), hands it to the session extractor, and serves the page
/// with the portal's base known to its error pages.
async fn serve_page(pages: &mut Router, mut req: Request) -> Response {
    let path = req.uri().path().trim_start_matches('/');
    let (token, rest) = path.split_once('/').unwrap_or((path, ""));
    if token.is_empty() {
        return PageError::PortalEnded.into_response();
    }
    let token = token.to_owned();
    let rest = if rest.is_empty() {
        "/webhooks".to_owned()
    } else {
        format!("/{rest}")
    };
    let path_and_query = match req.uri().query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest,
    };
    let Ok(uri) = path_and_query.parse() else {
        return PageError::bad_request("This address is not valid.").into_response();
    };
    *req.uri_mut() = uri;
    req.extensions_mut().insert(PortalToken(token.clone()));
    let base = format!("/portal/s/{token}");
    PORTAL_BASE
        .scope(base, async move {
            // A Router is always ready: no `poll_ready` needed.
            match pages.call(req).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            }
        })
        .await
}

fn frame_ancestors(origins: &[String]) -> HeaderValue {
    let sources = if origins.is_empty() {
        "'none'".to_owned()
    } else {
        origins.join(" ")
    };
    HeaderValue::from_str(&format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; frame-ancestors {sources}; base-uri 'none'"
    ))
    .expect("origins were validated at start")
}

/// Framable by the configured origins only; the URL (it holds the session)
/// is never sent as a referrer, and no page is cached.
async fn portal_headers(csp: HeaderValue, req: Request, next: axum::middleware::Next) -> Response {
    let is_theme = req.uri().path() == "/portal/theme.css";
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, csp);
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !is_theme {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// The accent colour from `--portal-accent-color` (validated `#rrggbb`),
/// as a stylesheet: the pages allow no inline style.
async fn theme(State(state): State<AppState>) -> Response {
    let accent = &state.ops.settings.portal_accent_color;
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        format!(
            ":root {{ --accent: {accent}; --accent-dark: color-mix(in srgb, {accent} 80%, black); \
             --focus-ring: {accent}; }}\n"
        ),
    )
        .into_response()
}

/// Uses a link once and opens its portal; anything else is a page that
/// says why, and opens nothing.
async fn open_link(State(state): State<AppState>, Path(link): Path<String>) -> Response {
    let now = state.clock.now_ms();
    let refused = |status, title, detail: String| PageError::PortalLink {
        status,
        title,
        detail,
    };
    match open_portal_link(&state.ops, &state.cipher, &link, now).await {
        Ok(Ok(opened)) => {
            Redirect::to(&format!("/portal/s/{}/webhooks", opened.session)).into_response()
        }
        Ok(Err(why)) => {
            tracing::info!(reason = ?why, "portal link refused");
            let ask = "Ask for a new link where you found this one.";
            match why {
                LinkRefused::Tampered => refused(
                    StatusCode::BAD_REQUEST,
                    "This link is not valid",
                    format!(
                        "This portal link has been altered or cut short, so it opens nothing. \
                         Check that it was copied whole, or {}",
                        ask.to_lowercase()
                    ),
                ),
                LinkRefused::Unknown => refused(
                    StatusCode::NOT_FOUND,
                    "This link is not known",
                    format!("This portal link was not made by this service. {ask}"),
                ),
                LinkRefused::Used(at) => refused(
                    StatusCode::GONE,
                    "This link was already used",
                    format!(
                        "A portal link opens the portal once, and this one was used at {}. {ask}",
                        display_time(at)
                    ),
                ),
                LinkRefused::Expired(at) => refused(
                    StatusCode::GONE,
                    "This link has expired",
                    format!("This portal link expired at {}. {ask}", display_time(at)),
                ),
                LinkRefused::KeyGone => refused(
                    StatusCode::FORBIDDEN,
                    "This link was withdrawn",
                    format!("The key that made this portal link has been revoked. {ask}"),
                ),
            }
            .into_response()
        }
        Err(e) => PageError::from(e).into_response(),
    }
}

/// A request path as logs may show it: a portal's session token or link
/// is a credential, so it becomes `…`.
pub fn redact_portal_path(path: &str) -> std::borrow::Cow<'_, str> {
    for prefix in ["/portal/s/", "/portal/links/"] {
        if let Some(rest) = path.strip_prefix(prefix) {
            let after = rest.find('/').map_or("", |i| &rest[i..]);
            return format!("{prefix}…{after}").into();
        }
    }
    path.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_paths_hide_portal_tokens() {
        assert_eq!(
            redact_portal_path("/portal/s/abc.def/webhooks/5"),
            "/portal/s/…/webhooks/5"
        );
        assert_eq!(
            redact_portal_path("/portal/links/abc.def"),
            "/portal/links/…"
        );
        assert_eq!(redact_portal_path("/admin/webhooks"), "/admin/webhooks");
    }

    #[test]
    fn frame_ancestors_name_the_configured_origins_or_none() {
        let none = frame_ancestors(&[]);
        assert!(none.to_str().unwrap().contains("frame-ancestors 'none';"));
        let some = frame_ancestors(&["http://localhost:3000".into(), "https://a.example".into()]);
        assert!(
            some.to_str()
                .unwrap()
                .contains("frame-ancestors http://localhost:3000 https://a.example;")
        );
    }
}
