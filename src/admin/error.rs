//! Errors of the admin page, answered as HTML: a redirect to sign-in, or
//! an error page saying what went wrong. The one place where an operation's
//! error becomes a page. Field errors the pages expect never get here: the
//! form they belong to is shown again with them.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::ops::OpError;
use crate::store::StoreError;

#[derive(Debug)]
pub enum PageError {
    /// No valid session: sign in, then come back to `next`.
    SignIn {
        next: String,
    },
    /// A link from another site: the browser withheld the SameSite=Strict
    /// cookie. Loading the page again from here sends it.
    Reload,
    Page {
        status: StatusCode,
        detail: String,
    },
    /// A portal URL whose session has ended (expired, unknown, or its
    /// key revoked): a page saying so, never a sign-in form.
    PortalEnded,
    /// A portal link that opened nothing, and why (SPEC §11).
    PortalLink {
        status: StatusCode,
        title: &'static str,
        detail: String,
    },
}

tokio::task_local! {
    /// The portal pages' base (`/portal/s/{token}`) while a portal request
    /// is served: error pages link back into the portal, not the admin page.
    pub static PORTAL_BASE: String;
}

fn portal_base() -> Option<String> {
    PORTAL_BASE.try_with(Clone::clone).ok()
}

impl PageError {
    pub fn not_found(what: &str) -> Self {
        Self::Page {
            status: StatusCode::NOT_FOUND,
            detail: format!("This {what} does not exist (or belongs to another tenant)."),
        }
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::Page {
            status: StatusCode::FORBIDDEN,
            detail: detail.into(),
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::Page {
            status: StatusCode::BAD_REQUEST,
            detail: detail.into(),
        }
    }
}

/// An operation's error as an error page, with the same status and text
/// as the JSON API's answer to it.
impl From<OpError> for PageError {
    fn from(e: OpError) -> Self {
        e.log();
        let status = match &e {
            OpError::Invalid(_) => StatusCode::BAD_REQUEST,
            OpError::NotFound(_) => StatusCode::NOT_FOUND,
            OpError::Conflict(_) => StatusCode::CONFLICT,
            OpError::Forbidden(_) => StatusCode::FORBIDDEN,
            OpError::Store(_) | OpError::Publish(_) if e.is_unavailable() => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            OpError::Store(_) | OpError::Publish(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::Page {
            status,
            detail: e.public_detail(),
        }
    }
}

/// Like the `From` conversion, but a page opened for something missing
/// says so in the admin page's own words (a link can be stale).
pub fn not_found_page(e: OpError) -> PageError {
    match e {
        OpError::NotFound(what) => PageError::not_found(what),
        other => other.into(),
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        OpError::from(e).into()
    }
}

#[derive(Template)]
#[template(path = "admin/error.html")]
struct ErrorPage {
    status: u16,
    title: String,
    detail: String,
    asset_version: &'static str,
    /// Where the page's links lead: `/admin`, a portal's base, or nowhere
    /// (a portal that is not open).
    base: Option<String>,
    portal: bool,
}

fn error_page(
    status: StatusCode,
    title: String,
    detail: String,
    base: Option<String>,
    portal: bool,
) -> Response {
    let page = ErrorPage {
        status: status.as_u16(),
        title,
        detail,
        asset_version: super::ASSET_VERSION,
        base,
        portal,
    };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering the error page");
            status.into_response()
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignIn { next } => {
                let query = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("next", &next)
                    .finish();
                Redirect::to(&format!("/admin/login?{query}")).into_response()
            }
            PageError::Reload => (
                [
                    (axum::http::header::REFRESH, "0".to_owned()),
                    // Lax, unlike the session: sent even if the browser
                    // still counts the reload as coming from elsewhere.
                    (
                        axum::http::header::SET_COOKIE,
                        format!(
                            "{}=1; Path=/admin; HttpOnly; SameSite=Lax; Max-Age=10",
                            super::session::RELOAD_COOKIE
                        ),
                    ),
                ],
                Html(
                    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
                     <meta http-equiv=\"refresh\" content=\"0\"><title>hookd admin</title>\
                     </head><body><p>Opening the admin page…</p></body></html>",
                ),
            )
                .into_response(),
            PageError::Page { status, detail } => {
                let title = status.canonical_reason().unwrap_or("Error").to_owned();
                match portal_base() {
                    Some(base) => error_page(status, title, detail, Some(base), true),
                    None => error_page(status, title, detail, Some("/admin".into()), false),
                }
            }
            PageError::PortalEnded => error_page(
                StatusCode::UNAUTHORIZED,
                "This portal has closed".into(),
                "This portal session has ended or is not valid: a portal stays open for 4 hours \
                 after its link is used, and closes when the key that made the link is revoked. \
                 Open the portal again from where you found it."
                    .into(),
                None,
                true,
            ),
            PageError::PortalLink {
                status,
                title,
                detail,
            } => error_page(status, title.into(), detail, None, true),
        }
    }
}

/// Renders a page template, or answers a plain 500 (logged).
pub fn render(page: &impl Template) -> Response {
    render_with(StatusCode::OK, page)
}

pub fn render_with(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering an admin page");
            PageError::Page {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                detail: "The page could not be rendered; the error has been logged.".into(),
            }
            .into_response()
        }
    }
}
