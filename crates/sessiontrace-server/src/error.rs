//! One mapping from an error to an HTTP status and a gRPC code. Internal errors show the client a short
//! id to quote; the log has the whole chain under that id.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sessiontrace_ingest::IngestError;
use sessiontrace_store::StoreError;

/// An error an endpoint answers with.
#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    /// A field over one of the size limits of `limits`: 400 with the field and the limit in the JSON.
    OverLimit(crate::limits::LimitExceeded),
    NotFound(String),
    TooLarge(String),
    /// The request body did not arrive in time: 408.
    Timeout(String),
    UnsupportedMediaType(String),
    Conflict(String),
    /// The store cannot answer this request (a filter it does not implement).
    NotImplemented(String),
    /// Retryable: the store cannot take the write now.
    Unavailable(String),
    Internal(String),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::OverLimit(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The gRPC status of this error.
    pub fn grpc_status(&self) -> tonic::Status {
        let message = self.message();
        match self {
            ApiError::BadRequest(_) | ApiError::OverLimit(_) | ApiError::UnsupportedMediaType(_) => {
                tonic::Status::invalid_argument(message)
            }
            ApiError::NotFound(_) => tonic::Status::not_found(message),
            ApiError::TooLarge(_) => tonic::Status::resource_exhausted(message),
            ApiError::Timeout(_) => tonic::Status::deadline_exceeded(message),
            ApiError::Conflict(_) => tonic::Status::already_exists(message),
            ApiError::NotImplemented(_) => tonic::Status::unimplemented(message),
            ApiError::Unavailable(_) => tonic::Status::unavailable(message),
            ApiError::Internal(_) => tonic::Status::internal(message),
        }
    }

    /// What the client is told.
    pub fn message(&self) -> String {
        match self {
            ApiError::BadRequest(m)
            | ApiError::NotFound(m)
            | ApiError::TooLarge(m)
            | ApiError::Timeout(m)
            | ApiError::UnsupportedMediaType(m)
            | ApiError::Conflict(m)
            | ApiError::NotImplemented(m)
            | ApiError::Unavailable(m)
            | ApiError::Internal(m) => m.clone(),
            ApiError::OverLimit(exceeded) => exceeded.to_string(),
        }
    }
}

impl From<crate::limits::LimitExceeded> for ApiError {
    fn from(exceeded: crate::limits::LimitExceeded) -> Self {
        ApiError::OverLimit(exceeded)
    }
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> Self {
        match error {
            IngestError::InvalidRequest(message) => ApiError::BadRequest(message),
            IngestError::TooLarge { .. } => ApiError::TooLarge(error.to_string()),
            IngestError::UnsupportedContentType(_) => ApiError::UnsupportedMediaType(error.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict => ApiError::Conflict(error.to_string()),
            StoreError::Unsupported(_) => ApiError::NotImplemented(error.to_string()),
            StoreError::Unavailable(message) => {
                ApiError::Unavailable(format!("store unavailable, retry later: {message}"))
            }
            StoreError::Internal(message) => {
                let id = format!("{:08x}", rand_id());
                tracing::error!(error_id = %id, error = %message, "internal store error");
                ApiError::Internal(format!("internal error {id}"))
            }
        }
    }
}

fn rand_id() -> u32 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos() ^ (d.as_secs() as u32))
}

impl From<sessiontrace_pipeline::PipelineError> for ApiError {
    fn from(error: sessiontrace_pipeline::PipelineError) -> Self {
        match error {
            sessiontrace_pipeline::PipelineError::Ingest(error) => error.into(),
            sessiontrace_pipeline::PipelineError::Store(error) => error.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            ApiError::OverLimit(exceeded) => serde_json::json!({
                "error": self.message(),
                "field": exceeded.field,
                "limit": exceeded.limit,
                "unit": exceeded.unit,
            }),
            _ => serde_json::json!({"error": self.message()}),
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
