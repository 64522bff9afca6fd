//! `/admin/api-reference` (and the portal's): what a receiver gets and how
//! it checks it: the payload, the headers, signature verification with
//! Standard Webhooks libraries, and the link to `/openapi.json`.

use askama::Template;
use axum::response::Response;

use super::error::{PageError, render};
use super::session::AdminSession;
use super::view::Chrome;

#[derive(Template)]
#[template(path = "admin/api_reference.html")]
struct ReferencePage {
    chrome: Chrome,
    idempotency_prefix: String,
}

pub async fn show(
    axum::extract::State(state): axum::extract::State<crate::state::AppState>,
    session: AdminSession,
) -> Result<Response, PageError> {
    Ok(render(&ReferencePage {
        chrome: Chrome::new(&session, "api-reference", None),
        idempotency_prefix: state.ops.settings.idempotency_prefix.clone(),
    }))
}
