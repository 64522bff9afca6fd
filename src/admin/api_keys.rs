//! `/admin/api-keys`: the tenant's provisioned API keys — list, create
//! (the plaintext shown once, on the answer page itself, never in an
//! address), revoke after a confirmation.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::error::{PageError, render, render_with};
use super::forms::{FieldErrors, Form, parse_id};
use super::session::{AdminSession, Submitted, cookie, set_cookie_at};
use super::view::{Chrome, display_time};
use crate::domain::api_key::Permission;
use crate::ops::OpError;
use crate::ops::api_keys as ops;
use crate::state::AppState;
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
    let rows = ops::list_api_keys(state.ops.store.as_ref(), Some(&session.tenant))
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

/// The key just created travels from the POST to the page that shows it
/// in a short-lived cookie, sealed (encrypted, bound to the tenant): so a
/// reload shows the list without creating another key, and the key is
/// never part of an address.
const NEW_KEY_COOKIE: &str = "hookd_new_key";
const NEW_KEY_PATH: &str = "/admin/api-keys";

fn seal_context(tenant: &str) -> String {
    format!("admin-new-key:{tenant}")
}

pub async fn list(
    State(state): State<AppState>,
    session: AdminSession,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let query = Form::parse(query.unwrap_or_default().as_bytes());
    let mut view = page(&state, &session, query.raw("done")).await?;
    let Some(sealed) = cookie(&headers, NEW_KEY_COOKIE) else {
        return Ok(render(&view));
    };
    view.created = URL_SAFE_NO_PAD
        .decode(sealed)
        .ok()
        .and_then(|b| state.cipher.open(&b, &seal_context(&session.tenant)).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|text| {
            let (name, key) = text.split_once('\n')?;
            Some((name.to_owned(), key.to_owned()))
        });
    // Shown once: the cookie goes with this answer.
    let mut resp = render(&view);
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie_at(
            NEW_KEY_COOKIE,
            "",
            NEW_KEY_PATH,
            0,
            state.ops.settings.admin_secure_cookies,
        ),
    );
    Ok(resp)
}

pub async fn create(
    State(state): State<AppState>,
    Submitted { session, form }: Submitted,
) -> Result<Response, PageError> {
    let name = form.text("name");
    let permissions = form.all("permissions");
    let created = ops::create_api_key(
        state.ops.store.as_ref(),
        &session.principal,
        &session.tenant,
        &name,
        &permissions,
        state.clock.now_ms(),
    )
    .await;
    match created {
        Ok((record, key)) => {
            let sealed = state.cipher.seal(
                format!("{}\n{key}", record.name).as_bytes(),
                &seal_context(&session.tenant),
            );
            let mut resp = Redirect::to("/admin/api-keys?done=key_created").into_response();
            resp.headers_mut().append(
                header::SET_COOKIE,
                set_cookie_at(
                    NEW_KEY_COOKIE,
                    &URL_SAFE_NO_PAD.encode(sealed),
                    NEW_KEY_PATH,
                    60,
                    state.ops.settings.admin_secure_cookies,
                ),
            );
            Ok(resp)
        }
        Err(OpError::Invalid(found)) => {
            let mut view = page(&state, &session, None).await?;
            view.errors.extend(found.0);
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
    ops::list_api_keys(state.ops.store.as_ref(), Some(&session.tenant))
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
    ops::revoke_api_key(
        state.ops.store.as_ref(),
        Some(&state.ops.authenticator),
        &session.tenant,
        id,
        state.clock.now_ms(),
    )
    .await?;
    Ok(Redirect::to("/admin/api-keys?done=key_revoked").into_response())
}
