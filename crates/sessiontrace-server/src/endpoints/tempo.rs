//! Tempo's HTTP API under `/tempo`, for Grafana's Tempo data source (URL `http://HOST:8080/tempo`):
//! echo, trace by id (v2 `TraceByIDResponse` and v1 bare trace, protobuf or JSON by `Accept`), TraceQL
//! search and the tag drop-downs. Shapes are in `sessiontrace_query::tempo`; everything reads the
//! caller's project only.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;
use sessiontrace_pipeline::RequestContext;
use sessiontrace_query::search::{SearchRequest, StoredTrace, load_trace, search};
use sessiontrace_query::{tempo, traceql};

use crate::endpoints::query::parse_trace_id;
use crate::error::ApiError;
use crate::state::AppState;

/// The Tempo routes, under `/tempo`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tempo/api/echo", get(|| async { "echo" }))
        .route("/tempo/api/v2/traces/{trace_id}", get(trace_v2))
        .route("/tempo/api/traces/{trace_id}", get(trace_v1))
        .route("/tempo/api/search", get(search_traces))
        .route("/tempo/api/v2/search/tags", get(tags))
        .route("/tempo/api/v2/search/tag/{name}/values", get(tag_values))
}

const PROTOBUF: &str = "application/protobuf";

fn wants_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|accept| accept.contains("application/protobuf") || accept.contains("application/x-protobuf"))
}

fn protobuf(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static(PROTOBUF))], bytes).into_response()
}

async fn found_trace(state: &AppState, ctx: &RequestContext, text: &str) -> Result<StoredTrace, ApiError> {
    let trace_id = parse_trace_id(text)?;
    let trace = load_trace(state.store.as_ref(), &ctx.project, trace_id.0).await?;
    if trace.span_count == 0 {
        return Err(ApiError::NotFound(format!("trace not found: {}", trace_id.to_hex())));
    }
    Ok(trace)
}

/// `start`/`end` (Unix seconds) may narrow a lookup; a trace id alone finds the trace, so they are only
/// checked for being numbers.
fn check_window(params: &HashMap<String, String>) -> Result<(), ApiError> {
    for name in ["start", "end"] {
        if let Some(value) = params.get(name).filter(|v| !v.is_empty()) {
            value
                .parse::<i64>()
                .map_err(|_| ApiError::BadRequest(format!("{name} must be Unix seconds, got {value:?}")))?;
        }
    }
    Ok(())
}

async fn trace_v2(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(trace_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_window(&params)?;
    let trace = found_trace(&state, &ctx, &trace_id).await?;
    if wants_protobuf(&headers) {
        return Ok(protobuf(tempo::trace_by_id_protobuf(&trace)));
    }
    Ok(Json(tempo::trace_by_id_json(&trace)).into_response())
}

async fn trace_v1(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(trace_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_window(&params)?;
    let trace = found_trace(&state, &ctx, &trace_id).await?;
    if wants_protobuf(&headers) {
        return Ok(protobuf(tempo::trace_protobuf(&trace)));
    }
    Ok(Json(tempo::trace_json(&trace)).into_response())
}

/// Unix seconds → Unix ns.
fn seconds(params: &HashMap<String, String>, name: &str) -> Result<Option<i64>, ApiError> {
    match params.get(name).filter(|v| !v.is_empty() && *v != "0") {
        None => Ok(None),
        Some(value) => value
            .parse::<i64>()
            .map(|s| Some(s.saturating_mul(1_000_000_000)))
            .map_err(|_| ApiError::BadRequest(format!("{name} must be Unix seconds, got {value:?}"))),
    }
}

fn number(params: &HashMap<String, String>, name: &str, default: u32) -> Result<u32, ApiError> {
    match params.get(name).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(value) => {
            value.parse().map_err(|_| ApiError::BadRequest(format!("{name} must be a positive integer, got {value:?}")))
        }
    }
}

async fn search_traces(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let text = params.get("q").map(String::as_str).unwrap_or("{}");
    let query = traceql::parse(text).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let request = SearchRequest {
        query,
        from_unix_nano: seconds(&params, "start")?,
        to_unix_nano: seconds(&params, "end")?,
        limit: number(&params, "limit", 20)?,
    };
    let spans_per_set = number(&params, "spss", 3)? as usize;
    let outcome = search(state.store.as_ref(), &ctx.project, &request).await?;
    Ok(Json(tempo::search_json(&outcome, &request.query, spans_per_set)))
}

async fn tags(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (from, to) = (seconds(&params, "start")?, seconds(&params, "end")?);
    let scope = params.get("scope").map(String::as_str).filter(|s| !s.is_empty());
    Ok(Json(tempo::tags_json(state.store.as_ref(), &ctx.project, scope, from, to).await?))
}

async fn tag_values(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (from, to) = (seconds(&params, "start")?, seconds(&params, "end")?);
    Ok(Json(tempo::tag_values_json(state.store.as_ref(), &ctx.project, &name, from, to).await?))
}
