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

/// Most bytes of an oversized body read and dropped after the limit, so that the client (still writing)
/// gets its 413 instead of a reset connection; a body announced larger than this is answered at once.
const OVERSIZED_DRAIN_BYTES: u64 = 16 << 20;

/// Reads a request body of at most `limit` bytes within `deadline`; more is a 413, slower a 408. After
/// the limit the rest of the body is read and dropped (up to [`OVERSIZED_DRAIN_BYTES`], within the
/// deadline) before the 413, so a client still writing it reads the answer rather than a broken pipe.
pub async fn read_body(body: Body, limit: usize, deadline: std::time::Duration) -> Result<Vec<u8>, ApiError> {
    use http_body::Body as _;
    use http_body_util::BodyExt;
    let started = std::time::Instant::now();
    let announced = body.size_hint().exact();
    let mut body = body;
    let read = async {
        let mut bytes = Vec::with_capacity(announced.map_or(0, |n| n.min(limit as u64) as usize));
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                if bytes.len() + data.len() > limit {
                    return Ok(None);
                }
                bytes.extend_from_slice(&data);
            }
        }
        Ok::<_, axum::Error>(Some(bytes))
    };
    let too_large = || ApiError::TooLarge(format!("request body is larger than the limit of {limit} bytes"));
    match tokio::time::timeout(deadline, read).await {
        Err(_) => Err(ApiError::Timeout(format!("the request body did not arrive within {} ms", deadline.as_millis()))),
        Ok(Ok(Some(bytes))) => Ok(bytes),
        Ok(Ok(None)) => {
            if announced.is_none_or(|n| n <= limit as u64 + OVERSIZED_DRAIN_BYTES) {
                let mut drained = 0u64;
                let drain = async {
                    while let Some(Ok(frame)) = body.frame().await {
                        drained += frame.data_ref().map_or(0, |data| data.len() as u64);
                        if drained > OVERSIZED_DRAIN_BYTES {
                            break;
                        }
                    }
                };
                let _ = tokio::time::timeout(deadline.saturating_sub(started.elapsed()), drain).await;
            }
            Err(too_large())
        }
        Ok(Err(error)) => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
            while let Some(current) = source {
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
