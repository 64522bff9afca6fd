//! The admin web page (`/admin`): server-rendered HTML forms over the same
//! operations as the management API. Sign-in with a management or admin
//! API key opens a session (an HttpOnly, SameSite=Strict cookie signed with
//! a key derived from the encryption key); every form carries the
//! session's CSRF token. No asset comes from another host: the stylesheet
//! and the small script are compiled into the binary, and the chart is SVG
//! drawn by the server.
//!
//! The customer portal (`portal`, SPEC §11) serves the tenant pages of
//! this module (`tenant_pages`: webhooks, deliveries, the event catalogue,
//! the API reference) under `/portal/s/{token}` for one tenant, with the
//! same handlers: what a page gains here shows in the portal too.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::state::AppState;

mod api_keys;
mod api_reference;
mod chart;
mod deliveries;
mod error;
mod event_types;
mod forms;
mod portal;
mod session;
mod settings;
mod view;
mod webhook_control;
mod webhook_security;
mod webhooks;

pub use error::PageError;
pub use portal::{portal_routes, redact_portal_path};

/// The pages of one tenant: the admin page's and the portal's alike.
fn tenant_pages() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/webhooks/new", get(webhooks::new_form))
        .route(
            "/webhooks/{id}",
            get(webhooks::edit_form).post(webhooks::update),
        )
        .route("/webhooks/{id}/toggle", post(webhooks::toggle))
        .route(
            "/webhooks/{id}/delete",
            get(webhooks::delete_confirm).post(webhooks::delete),
        )
        .route("/webhooks/{id}/secret", post(webhooks::rotate_secret))
        .route("/webhooks/{id}/unsuspend", post(webhooks::unsuspend))
        .route("/webhooks/{id}/test", post(webhooks::send_test))
        .route("/webhooks/{id}/example", post(webhooks::send_example))
        .route("/webhooks/{id}/recover", post(webhooks::recover))
        .route("/webhooks/{id}/pause", post(webhook_control::pause))
        .route("/webhooks/{id}/resume", post(webhook_control::resume))
        .route("/deliveries", get(deliveries::list))
        .route("/deliveries/{id}", get(deliveries::detail))
        .route("/deliveries/{id}/retry", post(deliveries::retry))
        .route("/event-types", get(event_types::list))
        .route("/api-reference", get(api_reference::show))
}

/// The admin page's routes, to be nested under `/admin`.
pub fn routes() -> Router<AppState> {
    tenant_pages()
        .route("/", get(|| async { Redirect::to("/admin/webhooks") }))
        .route(
            "/login",
            get(session::login_page).post(session::login_submit),
        )
        .route("/logout", post(session::logout))
        .route("/tenant", post(session::switch_tenant))
        .route("/event-types", post(event_types::create))
        .route("/event-types/edit", post(event_types::update))
        .route("/event-types/archive", post(event_types::archive))
        .route("/event-types/restore", post(event_types::restore))
        .route("/api-keys", get(api_keys::list).post(api_keys::create))
        .route(
            "/api-keys/{id}/revoke",
            get(api_keys::revoke_confirm).post(api_keys::revoke),
        )
        .route("/settings", get(settings::show).post(settings::save))
        .route("/settings/reset", post(settings::reset))
        .route("/static/app.css", get(stylesheet))
        .route("/static/app.js", get(script))
        .route("/static/favicon.svg", get(favicon))
        .fallback(|| async {
            PageError::Page {
                status: axum::http::StatusCode::NOT_FOUND,
                detail: "There is no such page.".into(),
            }
        })
        .layer(axum::middleware::from_fn(security_headers))
}

/// Pages are private and never framed; scripts and styles come from this
/// origin only (no inline code, so an injected tag cannot run).
async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    // Nested: the path seen here lacks the `/admin` prefix.
    let is_static = req.uri().path().starts_with("/static/");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !is_static {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// Changes with each build's assets, so browsers fetch new ones.
pub(crate) const ASSET_VERSION: &str = env!("CARGO_PKG_VERSION");

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../assets/admin/app.css"),
    )
}

async fn favicon() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../../assets/admin/favicon.svg"),
    )
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../assets/admin/app.js"),
    )
}
