//! `/admin/event-types`: the tenant's catalogue by category (built-in and
//! its own types), adding a type, archiving one.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::error::{PageError, render, render_with};
use super::forms::{FieldErrors, Form};
use super::session::{AdminSession, Submitted};
use super::view::{Chrome, display_time};
use crate::catalogue::Catalogue;
use crate::domain::event_type::TEST_EVENT_TYPE;
use crate::ops::OpError;
use crate::ops::event_types::{self as ops, NewEventType};
use crate::state::AppState;

pub struct TypeRow {
    pub name: String,
    pub category: String,
    pub description: String,
    pub builtin: bool,
    pub archived_at: Option<String>,
    pub can_archive: bool,
}

#[derive(Template)]
#[template(path = "admin/event_types.html")]
struct TypesPage {
    chrome: Chrome,
    rows: Vec<TypeRow>,
    name: String,
    category: String,
    description: String,
    errors: FieldErrors,
}

async fn page(
    state: &AppState,
    session: &AdminSession,
    done: Option<&str>,
) -> Result<TypesPage, PageError> {
    let catalogue = Catalogue::load(state.ops.store.as_ref(), &session.tenant).await?;
    let rows = catalogue
        .entries()
        .into_iter()
        .map(|e| TypeRow {
            name: e.name.clone(),
            category: e.category.clone(),
            description: e.description.clone().unwrap_or_default(),
            builtin: e.builtin,
            archived_at: e.archived_at.map(display_time),
            can_archive: e.archived_at.is_none() && e.name != TEST_EVENT_TYPE,
        })
        .collect();
    Ok(TypesPage {
        chrome: Chrome::new(session, "event-types", done),
        rows,
        name: String::new(),
        category: String::new(),
        description: String::new(),
        errors: FieldErrors::default(),
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
    let (name, category, description) = (
        form.text("name"),
        form.text("category"),
        form.text("description"),
    );
    let input = NewEventType {
        name: name.clone(),
        category: (!category.is_empty()).then(|| category.clone()),
        description: (!description.is_empty()).then(|| description.clone()),
    };
    match ops::create_event_type(&state.ops, &session.tenant, input, state.clock.now_ms()).await {
        Ok(_) => Ok(Redirect::to("/admin/event-types?done=type_added").into_response()),
        Err(e @ (OpError::Invalid(_) | OpError::Conflict(_))) => {
            let mut view = page(&state, &session, None).await?;
            match e {
                OpError::Invalid(found) => view.errors.extend(found.0),
                other => view.errors.add("name", other.to_string()),
            }
            view.name = name;
            view.category = category;
            view.description = description;
            Ok(render_with(StatusCode::BAD_REQUEST, &view))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn restore(
    State(state): State<AppState>,
    Submitted { session, form }: Submitted,
) -> Result<Response, PageError> {
    ops::restore_event_type(&state.ops, &session.tenant, &form.text("name")).await?;
    Ok(Redirect::to("/admin/event-types?done=type_restored").into_response())
}

pub async fn archive(
    State(state): State<AppState>,
    Submitted { session, form }: Submitted,
) -> Result<Response, PageError> {
    let now = state.clock.now_ms();
    ops::archive_event_type(&state.ops, &session.tenant, &form.text("name"), now).await?;
    Ok(Redirect::to("/admin/event-types?done=type_archived").into_response())
}
