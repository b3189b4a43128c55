//! OTLP/HTTP: `POST /v1/traces`, `/v1/logs`, `/v1/metrics` with protobuf or JSON bodies, gzip or not.
//! Answers follow the OTLP/HTTP spec: the export response (with partial success when some data was
//! refused) in the request's encoding, or a `google.rpc.Status` with the message and a 4xx/5xx status.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsPartialSuccess, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceResponse};
use prost::Message;
use sessiontrace_ingest::decode::{Encoding, decompress};
use sessiontrace_ingest::logs::LogInput;
use sessiontrace_ingest::metrics::MetricInput;
use sessiontrace_ingest::traces::TraceInput;

use crate::endpoints::read_body;
use crate::error::ApiError;
use crate::pipeline;
use crate::state::AppState;

/// The OTLP/HTTP routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/traces", post(export_traces))
        .route("/v1/logs", post(export_logs))
        .route("/v1/metrics", post(export_metrics))
}

/// `google.rpc.Status`, the body of an OTLP/HTTP error answer.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

fn encoded<M: Message + serde::Serialize>(encoding: Encoding, status: StatusCode, message: &M) -> Response {
    let body = match encoding {
        Encoding::Protobuf => message.encode_to_vec(),
        Encoding::Json => {
            // An absent partial success is omitted, not sent as `null`.
            let mut value = serde_json::to_value(message).unwrap_or_default();
            if let Some(object) = value.as_object_mut() {
                object.retain(|_, field| !field.is_null());
                // The OTLP JSON mapping writes int64 counts as decimal strings.
                if let Some(partial) = object.get_mut("partialSuccess").and_then(|p| p.as_object_mut()) {
                    for (_, field) in partial.iter_mut().filter(|(_, f)| f.is_number()) {
                        *field = serde_json::Value::String(field.to_string());
                    }
                }
            }
            value.to_string().into_bytes()
        }
    };
    (status, [(header::CONTENT_TYPE, encoding.content_type())], body).into_response()
}

fn error_response(encoding: Encoding, error: ApiError) -> Response {
    let status = error.status();
    let code = error.grpc_status().code() as i32;
    let message = error.message();
    if status.is_server_error() {
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
    let raw = read_body(body, limit).await.map_err(|e| (encoding, e))?;
    let content_encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok());
    let decoded = decompress(raw, content_encoding, limit).map_err(|e| (encoding, ApiError::from(e)))?;
    Ok((encoding, decoded))
}

async fn export_traces(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let (encoding, bytes) = match body_of(&state, &parts.headers, body).await {
        Ok(decoded) => decoded,
        Err((encoding, error)) => return error_response(encoding, error),
    };
    let input = match encoding {
        Encoding::Protobuf => TraceInput::Protobuf(bytes),
        Encoding::Json => TraceInput::Json(bytes),
    };
    match pipeline::accept_traces(&state, input).await {
        Ok(outcome) => {
            let partial_success = (outcome.rejected_spans > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: outcome.rejected_spans as i64,
                error_message: outcome.rejection_message.unwrap_or_default(),
            });
            encoded(encoding, StatusCode::OK, &ExportTraceServiceResponse { partial_success })
        }
        Err(error) => error_response(encoding, error),
    }
}

async fn export_logs(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let (encoding, bytes) = match body_of(&state, &parts.headers, body).await {
        Ok(decoded) => decoded,
        Err((encoding, error)) => return error_response(encoding, error),
    };
    let input = match encoding {
        Encoding::Protobuf => LogInput::Protobuf(bytes),
        Encoding::Json => LogInput::Json(bytes),
    };
    match pipeline::accept_logs(&state, input).await {
        Ok(outcome) => {
            let partial_success = (outcome.rejected > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: outcome.rejected as i64,
                error_message: outcome.rejection_message.unwrap_or_default(),
            });
            encoded(encoding, StatusCode::OK, &ExportLogsServiceResponse { partial_success })
        }
        Err(error) => error_response(encoding, error),
    }
}

async fn export_metrics(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let (encoding, bytes) = match body_of(&state, &parts.headers, body).await {
        Ok(decoded) => decoded,
        Err((encoding, error)) => return error_response(encoding, error),
    };
    let input = match encoding {
        Encoding::Protobuf => MetricInput::Protobuf(bytes),
        Encoding::Json => MetricInput::Json(bytes),
    };
    match pipeline::accept_metrics(&state, input).await {
        Ok(()) => encoded(encoding, StatusCode::OK, &ExportMetricsServiceResponse { partial_success: None }),
        Err(error) => error_response(encoding, error),
    }
}
