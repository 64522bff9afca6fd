//! `/admin/event-types`: the tenant's catalogue by category (built-in and
//! its own types) with each type's schema and example, adding a type,
//! setting a schema and example, archiving one. The portal shows the
//! catalogue (read only).

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
use crate::ops::event_types::{self as ops, EventTypeChanges, NewEventType};
use crate::state::AppState;

pub struct TypeRow {
    pub name: String,
    pub category: String,
    pub description: String,
    pub builtin: bool,
    pub archived_at: Option<String>,
    pub can_archive: bool,
    /// Pretty-printed JSON, empty when none.
    pub schema: String,
    pub example: String,
}

fn pretty(text: &Option<String>) -> String {
    text.as_deref()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "admin/event_types.html")]
struct TypesPage {
    chrome: Chrome,
    rows: Vec<TypeRow>,
    name: String,
    category: String,
    description: String,
    schema: String,
    example: String,
    errors: FieldErrors,
    /// The type whose schema form failed, with its errors and what was typed.
    editing: Option<(String, FieldErrors, String, String)>,
}

impl TypesPage {
    fn edit_error(&self, name: &str, field: &str) -> Option<String> {
        self.editing
            .as_ref()
            .filter(|(n, _, _, _)| n == name)
            .and_then(|(_, e, _, _)| e.get(field).map(str::to_owned))
    }

    /// What the edit form of `t` shows: its values, or what was typed.
    fn edit_values(&self, t: &TypeRow) -> (String, String) {
        match &self.editing {
            Some((n, _, s, e)) if *n == t.name => (s.clone(), e.clone()),
            _ => (t.schema.clone(), t.example.clone()),
        }
    }
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
            schema: pretty(&e.data_schema),
            example: pretty(&e.example),
        })
        .collect();
    Ok(TypesPage {
        chrome: Chrome::new(session, "event-types", done),
        rows,
        name: String::new(),
        category: String::new(),
        description: String::new(),
        schema: String::new(),
        example: String::new(),
        errors: FieldErrors::default(),
        editing: None,
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
    let (schema, example) = (form.text("schema"), form.text("example"));
    let input = NewEventType {
        name: name.clone(),
        category: (!category.is_empty()).then(|| category.clone()),
        description: (!description.is_empty()).then(|| description.clone()),
        schema: (!schema.is_empty()).then(|| schema.clone()),
        example: (!example.is_empty()).then(|| example.clone()),
    };
    match ops::create_event_type(&state.ops, &session.tenant, input, state.clock.now_ms()).await {
        Ok(_) => Ok(Redirect::to(&session.at("/event-types?done=type_added")).into_response()),
        Err(e @ (OpError::Invalid(_) | OpError::Conflict(_))) => {
            let mut view = page(&state, &session, None).await?;
            match e {
                OpError::Invalid(found) => view.errors.extend(found.0),
                other => view.errors.add("name", other.to_string()),
            }
            view.name = name;
            view.category = category;
            view.description = description;
            view.schema = schema;
            view.example = example;
            Ok(render_with(StatusCode::BAD_REQUEST, &view))
        }
        Err(e) => Err(e.into()),
    }
}

/// Sets (or, left empty, removes) a type's schema and example.
pub async fn update(
    State(state): State<AppState>,
    Submitted { session, form }: Submitted,
) -> Result<Response, PageError> {
    let name = form.text("name");
    let (schema, example) = (form.text("schema"), form.text("example"));
    let changes = EventTypeChanges {
        description: None,
        schema: Some((!schema.is_empty()).then(|| schema.clone())),
        example: Some((!example.is_empty()).then(|| example.clone())),
    };
    let now = state.clock.now_ms();
    match ops::update_event_type(&state.ops, &session.tenant, &name, changes, now).await {
        Ok(_) => Ok(Redirect::to(&session.at("/event-types?done=type_schema")).into_response()),
        Err(OpError::Invalid(found)) => {
            let mut view = page(&state, &session, None).await?;
            let mut errors = FieldErrors::default();
            errors.extend(found.0);
            view.editing = Some((name, errors, schema, example));
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
    Ok(Redirect::to(&session.at("/event-types?done=type_restored")).into_response())
}

pub async fn archive(
    State(state): State<AppState>,
    Submitted { session, form }: Submitted,
) -> Result<Response, PageError> {
    let now = state.clock.now_ms();
    ops::archive_event_type(&state.ops, &session.tenant, &form.text("name"), now).await?;
    Ok(Redirect::to(&session.at("/event-types?done=type_archived")).into_response())
}
