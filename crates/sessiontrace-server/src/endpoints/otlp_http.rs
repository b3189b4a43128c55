//! OTLP/HTTP: `POST /v1/traces`, `/v1/logs`, `/v1/metrics` with protobuf or JSON bodies, gzip or not.
//! Answers follow the OTLP/HTTP spec: the export response (with partial success when some data was
//! refused) in the request's encoding, or a `google.rpc.Status` with the message and a 4xx/5xx status.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use prost::Message;
use sessiontrace_ingest::decode::{Encoding, decompress};

use std::sync::Arc;

use crate::access::{Caller, refusal_response, take_bytes};
use crate::admission::Receiver;
use crate::endpoints::export::{ExportAnswer, export};
use crate::endpoints::{discard_body, read_body};
use crate::error::ApiError;
use sessiontrace_pipeline::RequestContext;
use sessiontrace_pipeline::signal::Signal;

use crate::state::AppState;

/// The OTLP/HTTP routes: `POST` of each signal's path.
pub fn routes() -> Router<AppState> {
    Signal::ALL.into_iter().fold(Router::new(), |router, signal| {
        router.route(
            signal.http_path(),
            post(move |State(state): State<AppState>, request: Request| export_http(state, signal, request)),
        )
    })
}

/// `google.rpc.Status`, the body of an OTLP/HTTP error answer.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

fn encoded(encoding: Encoding, answer: &ExportAnswer) -> Response {
    let body = match encoding {
        Encoding::Protobuf => answer.to_protobuf(),
        Encoding::Json => answer.to_json().to_string().into_bytes(),
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, encoding.content_type())], body).into_response()
}

fn error_response(encoding: Encoding, error: ApiError) -> Response {
    let status = error.status();
    let code = error.grpc_status().code() as i32;
    let message = error.message();
    // 503 is the retryable "at capacity" (counted on /metrics): under overload it is the normal answer.
    if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        tracing::warn!(%status, %message, "otlp export failed");
    } else {
        tracing::debug!(%status, %message, "otlp export refused");
    }
    let mut response = match encoding {
        Encoding::Protobuf => {
            let body = RpcStatus { code, message }.encode_to_vec();
            (status, [(header::CONTENT_TYPE, encoding.content_type())], body).into_response()
        }
        Encoding::Json => {
            let body = serde_json::json!({"code": code, "message": message}).to_string();
            (status, [(header::CONTENT_TYPE, encoding.content_type())], body).into_response()
        }
    };
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    response
}

/// Content type, size limit and gzip: the decoded body and its encoding.
async fn body_of(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Encoding, Vec<u8>), (Encoding, ApiError)> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let encoding = Encoding::from_content_type(content_type).map_err(|e| (Encoding::Json, ApiError::from(e)))?;
    let limit = state.config.max_body_bytes;
    let raw = read_body(body, limit, state.config.body_read_timeout()).await.map_err(|e| (encoding, e))?;
    let content_encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok());
    let decoded = decompress(raw, content_encoding, limit).map_err(|e| (encoding, ApiError::from(e)))?;
    Ok((encoding, decoded))
}

async fn export_http(state: AppState, signal: Signal, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let context = parts.extensions.get::<RequestContext>().cloned().unwrap_or_default();
    let caller = parts.extensions.get::<Arc<Caller>>().cloned().unwrap_or_else(|| Arc::new(Caller::Local));
    // Refused without decoding when the budget is spent: the excess of an overload costs little. The body
    // is still read (and dropped) so the client gets the 503 instead of a reset connection.
    if let Err(error) = state.admission.check(Receiver::OtlpHttp) {
        discard_body(body, state.config.body_read_timeout()).await;
        let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        return error_response(Encoding::from_content_type(content_type).unwrap_or(Encoding::Json), error);
    }
    let (encoding, bytes) = match body_of(&state, &parts.headers, body).await {
        Ok(decoded) => decoded,
        Err((encoding, error)) => return error_response(encoding, error),
    };
    if let Err(refusal) = take_bytes(&state, &context, &caller, bytes.len()) {
        return refusal_response(&state, &refusal);
    }
    let _admitted = match state.admission.admit(Receiver::OtlpHttp, bytes.len()) {
        Ok(admitted) => admitted,
        Err(error) => return error_response(encoding, error),
    };
    match export(&state, &context, signal, encoding, bytes).await {
        Ok(answer) => encoded(encoding, &answer),
        Err(error) => error_response(encoding, error),
    }
}
