//! The HTTP and gRPC endpoints. Each file serves one area and has a `routes()` (or a tonic service).

pub mod assets;
pub mod auth;
pub mod correlate;
pub mod events;
pub mod export;
pub mod health;
pub mod jaeger;
pub mod mcp;
pub mod otlp_grpc;
pub mod otlp_http;
pub mod query;
pub mod session_export;
pub mod sessions;
pub mod tempo;
pub mod trace_search;

use axum::body::Body;

use crate::error::ApiError;

/// Reads a request body of at most `limit` bytes within `deadline`; more is a 413, slower a 408.
pub async fn read_body(body: Body, limit: usize, deadline: std::time::Duration) -> Result<Vec<u8>, ApiError> {
    let Ok(read) = tokio::time::timeout(deadline, axum::body::to_bytes(body, limit)).await else {
        return Err(ApiError::Timeout(format!("the request body did not arrive within {} ms", deadline.as_millis())));
    };
    match read {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(error) => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
            while let Some(current) = source {
                if current.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                    return Err(ApiError::TooLarge(format!("request body is larger than the limit of {limit} bytes")));
                }
                if current.downcast_ref::<tower_http::timeout::TimeoutError>().is_some() {
                    return Err(ApiError::Timeout(format!("the request body stopped arriving: {error}")));
                }
                source = current.source();
            }
            Err(ApiError::BadRequest(format!("could not read the request body: {error}")))
        }
    }
}

/// Reads a request body to its end without keeping it (at most `deadline`), so that a refusal sent
/// without reading the body does not reset the connection while the client is still writing.
pub async fn discard_body(body: Body, deadline: std::time::Duration) {
    use http_body_util::BodyExt;
    let mut body = body;
    let drain = async { while let Some(Ok(_)) = body.frame().await {} };
    let _ = tokio::time::timeout(deadline, drain).await;
}
