//! API errors: every failure is an `application/problem+json` body (RFC 9457)
//! with a stable machine-readable `code`, never a bare 500 for bad input.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::store::StoreError;

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the error kind.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// Stable code clients match on, e.g. `INVALID_CREDENTIALS`.
    pub code: &'static str,
    pub detail: String,
    /// Field a validation error is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    /// Seconds to wait before retrying (rate limits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub field: Option<&'static str>,
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError { status, code, detail: detail.into(), field: None, retry_after: None }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn validation(field: &'static str, code: &'static str, detail: impl Into<String>) -> ApiError {
        let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED", detail);
        e.field = Some(field);
        e.code = code_for_validation(code);
        e
    }

    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, code, detail)
    }

    pub fn forbidden(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, code, detail)
    }

    pub fn not_found(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, detail)
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn unavailable(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, detail)
    }

    pub fn rate_limited(retry_after: Duration) -> ApiError {
        let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", "too many requests; slow down");
        e.retry_after = Some(retry_after);
        e
    }

    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "internal error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "something went wrong on our side")
    }
}

/// Validation codes are namespaced so clients can tell them apart from
/// other errors while the `field` says where.
fn code_for_validation(code: &'static str) -> &'static str {
    match code {
        "too_short" => "VALUE_TOO_SHORT",
        "too_long" => "VALUE_TOO_LONG",
        "invalid_chars" => "VALUE_INVALID_CHARS",
        "reserved" => "VALUE_RESERVED",
        "too_common" | "too_simple" => "PASSWORD_TOO_WEAK",
        "invalid_start" => "VALUE_INVALID_START",
        "double_space" => "VALUE_DOUBLE_SPACE",
        "out_of_range" => "VALUE_OUT_OF_RANGE",
        "contains_username" => "PASSWORD_CONTAINS_USERNAME",
        _ => "VALIDATION_FAILED",
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "store unavailable");
                ApiError::unavailable("STORE_UNAVAILABLE", "the database is unavailable; try again shortly")
            }
            StoreError::NotFound => ApiError::not_found("NOT_FOUND", "not found"),
            StoreError::Conflict(what) => ApiError::conflict("CONFLICT", format!("{what} already exists")),
            other => ApiError::internal(other),
        }
    }
}

impl From<directory::DirectoryError> for ApiError {
    fn from(e: directory::DirectoryError) -> ApiError {
        tracing::warn!(error = %e, "directory error");
        ApiError::unavailable("DIRECTORY_UNAVAILABLE", "the game directory is unavailable; try again shortly")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error").to_string();
        let retry_after = self.retry_after.map(|d| d.as_secs().max(1));
        let problem = Problem {
            kind: format!("https://trespasser.dev/errors/{}", self.code.to_ascii_lowercase().replace('_', "-")),
            title,
            status: self.status.as_u16(),
            code: self.code,
            detail: self.detail,
            field: self.field,
            retry_after,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_else(|_| b"{}".to_vec());
        let mut resp = (self.status, body).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(secs) = retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            h.insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
