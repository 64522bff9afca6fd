//! The one place where errors become HTTP answers: RFC 9457 problem
//! details (`application/problem#json`), never a bare 500 page.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{FieldError, ValidationErrors};
use crate::ops::OpError;
use crate::publish::PublishError;
use crate::store::StoreError;

/// An RFC 9457 problem details body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Field-level errors (validation problems); empty otherwise.
    pub errors: Vec<FieldError>,
}

/// An error answered to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub retry_after_s: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after_s: None,
        }
    }

    pub fn validation(errors: ValidationErrors) -> Self {
        let detail = errors
            .0
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            errors: errors.0,
            ..Self::new(StatusCode::BAD_REQUEST, "validation-error", detail)
        }
    }

    /// A 400 naming one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::validation(ValidationErrors::single(field, message))
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API key is required: send Authorization: Bearer <key>",
        )
    }

    /// Too many wrong keys from this client (SPEC §14).
    pub fn too_many_failures(retry_after_s: u64) -> Self {
        Self {
            retry_after_s: Some(retry_after_s),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-failed-authentications",
                format!(
                    "too many invalid API keys from this address: try again in {retry_after_s} s"
                ),
            )
        }
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("{what} not found"),
        )
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self {
            retry_after_s: Some(1),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
        }
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(e: ValidationErrors) -> Self {
        Self::validation(e)
    }
}

/// Every operation's error becomes an answer here, and only here.
impl From<OpError> for ApiError {
    fn from(e: OpError) -> Self {
        match e {
            OpError::Invalid(errors) => Self::validation(errors),
            OpError::NotFound(what) => Self::not_found(what),
            OpError::Conflict(detail) => Self::conflict(detail),
            OpError::Forbidden(detail) => Self::forbidden(detail),
            OpError::Store(_) | OpError::Publish(_) => {
                e.log();
                // The detail is a fixed description: the cause is logged only.
                let detail = e.public_detail();
                if e.is_unavailable() {
                    Self::unavailable(detail)
                } else {
                    Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal-error", detail)
                }
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        OpError::from(e).into()
    }
}

impl From<PublishError> for ApiError {
    fn from(e: PublishError) -> Self {
        OpError::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let title = self
            .status
            .canonical_reason()
            .unwrap_or("Error")
            .to_string();
        let body = Problem {
            kind: format!("https://hookd.dev/problems/{}", self.kind),
            title,
            status: self.status.as_u16(),
            detail: self.detail,
            errors: self.errors,
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(s) = self.retry_after_s {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}
