//! `/admin/api-keys`: the tenant's provisioned API keys — list, create
//! (the plaintext shown once, on the answer page itself, never in an
//! address), revoke after a confirmation.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::error::{PageError, render, render_with};
use super::forms::{FieldErrors, Form, parse_id};
use super::session::{AdminSession, Submitted};
use super::view::{Chrome, display_time};
use crate::domain::api_key::Permission;
use crate::http::AppState;
use crate::store::ApiKeyRecord;

pub struct KeyRow {
    pub id: i64,
    pub name: String,
    pub permissions: String,
    pub created_at: String,
}

impl From<ApiKeyRecord> for KeyRow {
    fn from(r: ApiKeyRecord) -> Self {
        Self {
            id: r.id,
            name: r.name,
            permissions: r
                .permissions
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            created_at: display_time(r.created_at),
        }
    }
}

pub struct PermissionOption {
    pub value: &'static str,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "admin/api_keys.html")]
struct KeysPage {
    chrome: Chrome,
    rows: Vec<KeyRow>,
    name: String,
    permissions: Vec<PermissionOption>,
    errors: FieldErrors,
    /// The key just created: shown this once.
    created: Option<(String, String)>,
}

impl KeysPage {
    fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field)
    }
}

fn options(selected: &[String]) -> Vec<PermissionOption> {
    Permission::ALL
        .iter()
        .map(|p| PermissionOption {
            value: p.as_str(),
            checked: selected.iter().any(|s| s == p.as_str()),
        })
        .collect()
}

async fn page(
    state: &AppState,
    session: &AdminSession,
    done: Option<&str>,
) -> Result<KeysPage, PageError> {
    let rows = state
        .store
        .list_api_keys(Some(&session.tenant))
        .await?
        .into_iter()
        .map(KeyRow::from)
        .collect();
    Ok(KeysPage {
        chrome: Chrome::new(session, "api-keys", done),
        rows,
        name: String::new(),
        permissions: options(&[]),
        errors: FieldErrors::default(),
        created: None,
    })
}

pub async fn list(
    State(state): State<AppState>,
    session: AdminSession,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let query = Form::parse(query.unwrap_or_default().as_bytes());
    Ok(render(&page(&state, &session, query.raw("done")).await?))
}

pub async fn create(
    State(state): State<AppState>,
    Submitted { session, form }: Submitted,
) -> Result<Response, PageError> {
    let name = form.text("name");
    let permissions = form.all("permissions");
    match crate::http::api_keys::create(&state, &session.tenant, &name, &permissions).await {
        Ok((record, key)) => {
            let mut view = page(&state, &session, None).await?;
            view.created = Some((record.name, key));
            Ok(render_with(StatusCode::CREATED, &view))
        }
        Err(e) if !e.errors.is_empty() => {
            let mut view = page(&state, &session, None).await?;
            view.errors.extend(e.errors);
            view.name = name;
            view.permissions = options(&permissions);
            Ok(render_with(StatusCode::BAD_REQUEST, &view))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "admin/api_key_revoke.html")]
struct RevokePage {
    chrome: Chrome,
    row: KeyRow,
}

async fn find(state: &AppState, session: &AdminSession, id: i64) -> Result<KeyRow, PageError> {
    state
        .store
        .list_api_keys(Some(&session.tenant))
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .map(KeyRow::from)
        .ok_or_else(|| PageError::not_found("API key"))
}

pub async fn revoke_confirm(
    State(state): State<AppState>,
    session: AdminSession,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = parse_id(&id, "API key")?;
    let row = find(&state, &session, id).await?;
    Ok(render(&RevokePage {
        chrome: Chrome::new(&session, "api-keys", None),
        row,
    }))
}

pub async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Submitted { session, .. }: Submitted,
) -> Result<Response, PageError> {
    let id = parse_id(&id, "API key")?;
    crate::http::api_keys::revoke(&state, &session.tenant, id).await?;
    Ok(Redirect::to("/admin/api-keys?done=key_revoked").into_response())
}
