//! The one table from error code to HTTP status. Handlers return [`ApiError`]; internals
//! are logged, never sent to the caller.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// The closed set of errors the API answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidJson,
    InvalidLead,
    PayloadTooLarge,
    UnsupportedMediaType,
    Unauthorized,
    /// The Host or Origin is not this server's (DNS rebinding, cross-site requests).
    Forbidden,
    NotFound,
    MethodNotAllowed,
    NotReady,
    Suppressed,
    /// An Idempotency-Key or external_id used before with a different lead.
    IdempotencyConflict,
    RequestTimeout,
    TooManyRequests,
    /// A 4xx that axum answered itself (a path or query that does not parse).
    BadRequest,
    /// A query parameter the list and stats routes do not accept (the console, issue 24).
    InvalidQuery,
    /// The request lost a race with another person's (a claimed or resolved review item).
    Conflict,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidLead => "invalid_lead",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::IdempotencyConflict => "idempotency_conflict",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::TooManyRequests => "too_many_requests",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::NotReady => "not_ready",
            ErrorCode::Suppressed => "suppressed",
            ErrorCode::InvalidQuery => "invalid_query",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Internal => "internal",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidJson => StatusCode::BAD_REQUEST,
            ErrorCode::InvalidLead => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::IdempotencyConflict => StatusCode::CONFLICT,
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Suppressed => StatusCode::CONFLICT,
            ErrorCode::InvalidQuery => StatusCode::BAD_REQUEST,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Logs the cause and answers with a generic message.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error while serving a request");
        Self::new(
            ErrorCode::Internal,
            "internal error; the operator's logs have the details",
        )
    }
}

/// Rides on an error answer so the refusal counter (server::refusals) knows its code and
/// reason without parsing the body.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub code: ErrorCode,
    pub reason: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "code": self.code.as_str(), "message": self.message });
        if let Some(f) = &self.field {
            body["field"] = json!(f);
        }
        let mut response = (self.code.status(), Json(json!({ "error": body }))).into_response();
        response.extensions_mut().insert(Refusal {
            code: self.code,
            reason: self.message,
        });
        response
    }
}
