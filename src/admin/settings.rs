//! `/admin/settings`: the service-wide default retry schedule and failure
//! handling. They apply to webhooks without their own, from the next
//! attempt on, on every instance (each reloads them within seconds).
//! Only management keys may change them: they are not one tenant's.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::error::{PageError, render, render_with};
use super::forms::{FieldErrors, Form, schedule_list};
use super::session::{AdminSession, Submitted};
use super::view::Chrome;
use crate::dispatcher::DeliveryPolicy;
use crate::domain::duration::format_duration_ms;
use crate::domain::webhook::{
    validate_min_failures, validate_retry_schedule, validate_suspend_after,
};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "admin/settings.html")]
struct SettingsPage {
    chrome: Chrome,
    can_edit: bool,
    retry_schedule: String,
    min_failures: String,
    suspend_after: String,
    errors: FieldErrors,
    /// The flags' values, for reference.
    startup: String,
}

fn schedule_text(ms: &[u64]) -> String {
    if ms.is_empty() {
        return "none".into();
    }
    ms.iter()
        .map(|&m| format_duration_ms(m))
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(p: &DeliveryPolicy) -> String {
    format!(
        "retries after {}; suspend after {} failed attempts and {} without a success",
        schedule_text(&p.retry_schedule_ms),
        p.min_failures,
        format_duration_ms(p.suspend_after_ms)
    )
}

fn page(state: &AppState, session: &AdminSession, done: Option<&str>) -> SettingsPage {
    let current = state.policy.read().expect("policy lock").clone();
    SettingsPage {
        chrome: Chrome::new(session, "settings", done),
        can_edit: session.bootstrap,
        retry_schedule: schedule_text(&current.retry_schedule_ms),
        min_failures: current.min_failures.to_string(),
        suspend_after: format_duration_ms(current.suspend_after_ms),
        errors: FieldErrors::default(),
        startup: describe(&DeliveryPolicy::from_settings(&state.ops.settings)),
    }
}

pub async fn show(
    State(state): State<AppState>,
    session: AdminSession,
    RawQuery(query): RawQuery,
) -> Response {
    let query = Form::parse(query.unwrap_or_default().as_bytes());
    render(&page(&state, &session, query.raw("done")))
}

/// Parses the form into a policy; every invalid field goes to `errors`.
fn parse(form: &Form, errors: &mut FieldErrors) -> Option<DeliveryPolicy> {
    let schedule = match schedule_list(&form.text("retry_schedule")) {
        None => {
            errors.add(
                "retry_schedule",
                "is required: durations such as `5s, 5m, 30m`, or `none` for a single attempt",
            );
            None
        }
        Some(steps) => validate_retry_schedule(&steps)
            .map_err(|m| errors.add("retry_schedule", m))
            .ok(),
    };
    let min_failures = match form.text("min_failures").parse::<i64>() {
        Ok(n) => validate_min_failures(n)
            .map_err(|m| errors.add("min_failures", m))
            .ok(),
        Err(_) => {
            errors.add("min_failures", "must be a whole number");
            None
        }
    };
    let suspend_after_ms = validate_suspend_after(&form.text("suspend_after"))
        .map_err(|m| errors.add("suspend_after", m))
        .ok();
    if !errors.is_empty() {
        return None;
    }
    Some(DeliveryPolicy {
        retry_schedule_ms: schedule?,
        min_failures: min_failures?,
        suspend_after_ms: suspend_after_ms?,
    })
}

/// Back to the flags' values (forgets what was saved).
pub async fn reset(
    State(state): State<AppState>,
    Submitted { session, .. }: Submitted,
) -> Result<Response, PageError> {
    if !session.bootstrap {
        return Err(PageError::forbidden(
            "The default delivery settings apply to every tenant: only a management key may change them.",
        ));
    }
    DeliveryPolicy::forget_saved(state.ops.store.as_ref()).await?;
    crate::dispatcher::policy::refresh(
        state.ops.store.as_ref(),
        &state.ops.settings,
        &state.policy,
    )
    .await?;
    tracing::info!("default delivery policy reset to the start-up values from the admin page");
    Ok(Redirect::to("/admin/settings?done=settings_reset").into_response())
}

pub async fn save(
    State(state): State<AppState>,
    Submitted { session, form }: Submitted,
) -> Result<Response, PageError> {
    if !session.bootstrap {
        return Err(PageError::forbidden(
            "The default delivery settings apply to every tenant: only a management key may change them.",
        ));
    }
    let mut errors = FieldErrors::default();
    let Some(policy) = parse(&form, &mut errors) else {
        let mut view = page(&state, &session, None);
        view.retry_schedule = form.text("retry_schedule");
        view.min_failures = form.text("min_failures");
        view.suspend_after = form.text("suspend_after");
        view.errors = errors;
        return Ok(render_with(StatusCode::BAD_REQUEST, &view));
    };
    policy.save(state.ops.store.as_ref()).await?;
    *state.policy.write().expect("policy lock") = policy.clone();
    tracing::info!(
        ?policy,
        "default delivery policy changed from the admin page"
    );
    Ok(Redirect::to("/admin/settings?done=settings").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_form_becomes_a_policy() {
        let mut e = FieldErrors::default();
        let p = parse(
            &Form::parse(b"retry_schedule=10s%2C+1m&min_failures=3&suspend_after=2h"),
            &mut e,
        )
        .unwrap();
        assert_eq!(p.retry_schedule_ms, vec![10_000, 60_000]);
        assert_eq!((p.min_failures, p.suspend_after_ms), (3, 7_200_000));
        let none = parse(
            &Form::parse(b"retry_schedule=none&min_failures=1&suspend_after=1d"),
            &mut e,
        )
        .unwrap();
        assert!(none.retry_schedule_ms.is_empty());
        assert!(e.is_empty());
    }

    #[test]
    fn each_invalid_field_is_named() {
        let mut e = FieldErrors::default();
        let p = parse(
            &Form::parse(b"retry_schedule=5x&min_failures=0&suspend_after=soon"),
            &mut e,
        );
        assert!(p.is_none());
        assert!(e.get("retry_schedule").is_some());
        assert!(e.get("min_failures").is_some());
        assert!(e.get("suspend_after").is_some(), "every field is checked");
        let mut e = FieldErrors::default();
        assert!(
            parse(
                &Form::parse(b"retry_schedule=5s&min_failures=0&suspend_after=1d"),
                &mut e
            )
            .is_none()
        );
        assert!(e.get("min_failures").is_some());
        let mut e = FieldErrors::default();
        assert!(
            parse(
                &Form::parse(b"retry_schedule=5s&min_failures=2&suspend_after=later"),
                &mut e
            )
            .is_none()
        );
        assert!(e.get("suspend_after").is_some());
        let mut e = FieldErrors::default();
        assert!(
            parse(
                &Form::parse(b"retry_schedule=&min_failures=2&suspend_after=1d"),
                &mut e
            )
            .is_none()
        );
        assert!(e.get("retry_schedule").is_some());
    }
}
