//! [`OpError`], the one error of every operation. Request errors (invalid,
//! not found, conflict, forbidden) carry the text a caller is shown;
//! failures of the service (store, publisher) carry their cause, which is
//! logged and never shown.

use crate::domain::ValidationErrors;
use crate::publish::PublishError;
use crate::store::StoreError;

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// Fields of the input are invalid; every one is named.
    #[error("{}", joined(.0))]
    Invalid(ValidationErrors),
    /// The resource (`what`, e.g. "webhook") does not exist in this tenant.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request contradicts the current state (a duplicate, a change
    /// made since the caller read it).
    #[error("{0}")]
    Conflict(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The store failed (conflicts and stale writes are [`OpError::Conflict`]).
    #[error(transparent)]
    Store(StoreError),
    /// The publisher did not accept the event (test sends).
    #[error(transparent)]
    Publish(PublishError),
}

/// The result of an operation.
pub type OpResult<T> = Result<T, OpError>;

fn joined(errors: &ValidationErrors) -> String {
    errors
        .0
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl OpError {
    /// One invalid field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(ValidationErrors::single(field, message))
    }

    /// A failure of the service rather than of the request, that trying
    /// again shortly may cure.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Store(e) => store_unavailable(e),
            Self::Publish(_) => true,
            _ => false,
        }
    }

    /// What a caller is shown. For a failure of the service, a fixed
    /// description: its cause may name internals.
    pub fn public_detail(&self) -> String {
        match self {
            Self::Store(e) if store_unavailable(e) => {
                "the database is unavailable; try again shortly".into()
            }
            Self::Store(_) => "an unexpected error occurred; it has been logged".into(),
            Self::Publish(PublishError::Unavailable(_)) => {
                "the event could not be stored; nothing was accepted, retry".into()
            }
            Self::Publish(PublishError::Stopped) => {
                "hookd is shutting down; retry on another instance".into()
            }
            other => other.to_string(),
        }
    }

    /// Logs a store failure, whose cause no caller sees; request errors
    /// are the caller's business and are not logged.
    pub fn log(&self) {
        match self {
            Self::Store(e) if store_unavailable(e) => {
                tracing::warn!(error = %e, "database unavailable")
            }
            Self::Store(e) => tracing::error!(error = %e, "store error"),
            _ => {}
        }
    }
}

impl From<ValidationErrors> for OpError {
    fn from(e: ValidationErrors) -> Self {
        Self::Invalid(e)
    }
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(msg) => Self::Conflict(msg),
            StoreError::Stale => {
                Self::Conflict("the resource was changed concurrently; try again".into())
            }
            other => Self::Store(other),
        }
    }
}

impl From<PublishError> for OpError {
    fn from(e: PublishError) -> Self {
        Self::Publish(e)
    }
}

/// Whether the database could not be reached (as opposed to a failed
/// statement): the caller may retry shortly.
pub fn store_unavailable(e: &StoreError) -> bool {
    match e {
        StoreError::Database(
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_),
        ) => true,
        // A server going down answers before it closes: connection
        // exceptions (class 08), "terminating connection due to
        // administrator command", crash shutdown, "the database system is
        // shutting down" (57P01-57P03), too many connections (53300).
        StoreError::Database(sqlx::Error::Database(d)) => d
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P") || c == "53300"),
        _ => false,
    }
}
