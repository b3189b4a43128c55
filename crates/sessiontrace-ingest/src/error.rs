//! Why a request was refused. Each variant maps to one HTTP status and one gRPC code in the server.

/// A request that cannot be accepted, with what was wrong.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum IngestError {
    /// Malformed body, bad ids, bad gzip: HTTP 400 / gRPC INVALID_ARGUMENT.
    #[error("{0}")]
    InvalidRequest(String),
    /// Body over the configured limit: HTTP 413 / gRPC RESOURCE_EXHAUSTED.
    #[error("request body is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// Content type that is neither OTLP protobuf nor JSON: HTTP 415.
    #[error("unsupported content type {0:?}: use application/x-protobuf or application/json")]
    UnsupportedContentType(String),
}

impl IngestError {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        IngestError::InvalidRequest(message.into())
    }
}
