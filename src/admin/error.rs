//! Errors of the admin page, answered as HTML: a redirect to sign-in, or
//! an error page saying what went wrong. Field errors never get here: the
//! form they belong to is shown again with them.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::http::error::ApiError;
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

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        Self::Page {
            status: e.status,
            detail: e.detail,
        }
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        ApiError::from(e).into()
    }
}

#[derive(Template)]
#[template(path = "admin/error.html")]
struct ErrorPage {
    status: u16,
    title: String,
    detail: String,
    asset_version: &'static str,
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
                let page = ErrorPage {
                    status: status.as_u16(),
                    title: status.canonical_reason().unwrap_or("Error").to_owned(),
                    detail,
                    asset_version: super::ASSET_VERSION,
                };
                match page.render() {
                    Ok(html) => (status, Html(html)).into_response(),
                    Err(e) => {
                        tracing::error!(error = %e, "rendering the error page");
                        status.into_response()
                    }
                }
            }
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
