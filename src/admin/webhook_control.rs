//! Delivery control on the webhook pages (SPEC §12): the form's payload
//! filter (JSON typed into a textarea) and ordering, and the Pause /
//! Resume actions of the list and the webhook's page. The values go
//! through the same operations as the JSON API, so a refused filter names
//! its operator or path here exactly as the API's 400 does.

use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::Value;

use super::error::PageError;
use super::forms::{FieldErrors, Form, parse_id};
use super::session::Submitted;
use super::webhooks::back_to;
use crate::domain::FieldError;
use crate::domain::control::DeliveryControl;
use crate::ops::webhook_control::{self as ops, ControlChanges};
use crate::state::AppState;

/// The section's fields as typed.
#[derive(Default)]
pub struct ControlFields {
    /// The filter document as JSON text; empty: every subscribed event.
    pub filter: String,
    /// `none` or `fifo`.
    pub ordering: String,
}

impl ControlFields {
    pub fn from_form(form: &Form) -> Self {
        Self {
            filter: form.raw("filter").unwrap_or_default().trim().to_owned(),
            ordering: form.text("ordering"),
        }
    }

    pub fn from_control(c: &DeliveryControl) -> Self {
        // Stored compact; shown indented, as one would write it.
        let filter = c
            .filter
            .as_deref()
            .map(|text| {
                serde_json::from_str::<Value>(text)
                    .and_then(|v| serde_json::to_string_pretty(&v))
                    .unwrap_or_else(|_| text.to_owned())
            })
            .unwrap_or_default();
        Self {
            filter,
            ordering: c.ordering.as_str().to_owned(),
        }
    }

    /// The parts a save compares (`Fields::fingerprint`).
    pub fn fingerprint_parts(&self) -> [&str; 2] {
        [&self.filter, &self.ordering]
    }

    /// The change the form asks for: the filter as typed (empty clears it)
    /// and the ordering chosen. Text that is not JSON goes to `errors`;
    /// the operation judges the rest.
    pub fn changes(&self, errors: &mut FieldErrors) -> ControlChanges {
        let filter = if self.filter.is_empty() {
            None
        } else {
            match serde_json::from_str::<Value>(&self.filter) {
                Ok(doc) => Some(doc),
                Err(e) => {
                    errors.add("filter", format!("is not JSON: {e}"));
                    None
                }
            }
        };
        ControlChanges {
            filter: Some(filter),
            ordering: (!self.ordering.is_empty()).then(|| self.ordering.clone()),
        }
    }

    pub fn is_fifo(&self) -> bool {
        self.ordering == "fifo"
    }

    /// A refusal inside the filter names where (`filter.data.a.$gt`), as
    /// the API does; the form has one input for the whole document, so the
    /// message carries that name.
    pub fn input_names(errors: Vec<FieldError>) -> Vec<FieldError> {
        errors
            .into_iter()
            .map(|mut e| {
                if e.field != "filter" && e.field.starts_with("filter") {
                    e.message = format!("{}: {}", e.field, e.message);
                    e.field = "filter".into();
                }
                e
            })
            .collect()
    }
}

/// "Pause": the webhook's deliveries wait until it is resumed.
pub async fn pause(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Submitted { session, form }: Submitted,
) -> Result<Response, PageError> {
    let id = parse_id(&id, "webhook")?;
    ops::pause_webhook(&state.ops, &session.tenant, id, state.clock.now_ms()).await?;
    let default = session.at(&format!("/webhooks/{id}"));
    Ok(back_to(&session, &form, &default, "paused", id))
}

/// "Resume": the waiting deliveries go out in publish order.
pub async fn resume(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Submitted { session, form }: Submitted,
) -> Result<Response, PageError> {
    let id = parse_id(&id, "webhook")?;
    ops::resume_webhook(&state.ops, &session.tenant, id, state.clock.now_ms()).await?;
    let default = session.at(&format!("/webhooks/{id}"));
    Ok(back_to(&session, &form, &default, "resumed", id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_inside_the_filter_keeps_its_path_in_the_message() {
        let named = ControlFields::input_names(vec![
            FieldError {
                field: "filter.data.amount.$regex".into(),
                message: "unknown operator $regex".into(),
            },
            FieldError {
                field: "filter".into(),
                message: "must be an object of conditions".into(),
            },
            FieldError {
                field: "url".into(),
                message: "bad".into(),
            },
        ]);
        assert_eq!(named[0].field, "filter");
        assert_eq!(
            named[0].message,
            "filter.data.amount.$regex: unknown operator $regex"
        );
        assert_eq!(named[1].message, "must be an object of conditions");
        assert_eq!(named[2].field, "url");
    }

    #[test]
    fn typed_text_that_is_not_json_is_refused_and_empty_clears() {
        let mut errors = FieldErrors::default();
        let typed = ControlFields {
            filter: "{\"data.a\": ".into(),
            ordering: "fifo".into(),
        };
        typed.changes(&mut errors);
        assert!(errors.get("filter").is_some_and(|m| m.contains("not JSON")));
        let mut errors = FieldErrors::default();
        let cleared = ControlFields::default().changes(&mut errors);
        assert!(errors.is_empty());
        assert_eq!(cleared.filter, Some(None));
        assert_eq!(cleared.ordering, None);
    }
}
