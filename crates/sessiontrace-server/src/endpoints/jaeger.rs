//! Jaeger's query API under `/jaeger`, for Grafana's Jaeger data source and Jaeger UI (URL
//! `http://HOST:8080/jaeger`): services, operations, trace search and trace by id in Jaeger's JSON model
//! (`sessiontrace_query::jaeger`), and the v3 routes (OTLP JSON) for services, operations and a trace.
//! Times in the v1 API are microseconds; everything reads the caller's project only.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::Router;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::{Value, json};
use sessiontrace_model::project::Project;
use sessiontrace_pipeline::RequestContext;
use sessiontrace_pipeline::clock::now_ms;
use sessiontrace_query::jaeger;
use sessiontrace_query::search::{SearchRequest, load_trace, search};
use sessiontrace_store::Store;

use crate::endpoints::query::parse_trace_id;
use crate::error::ApiError;
use crate::state::AppState;

/// The Jaeger routes, under `/jaeger`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/jaeger/api/services", get(services))
        .route("/jaeger/api/services/{service}/operations", get(service_operations))
        .route("/jaeger/api/operations", get(operations))
        .route("/jaeger/api/traces", get(find_traces))
        .route("/jaeger/api/traces/{trace_id}", get(trace))
        .route("/jaeger/api/v3/services", get(services_v3))
        .route("/jaeger/api/v3/operations", get(operations_v3))
        .route("/jaeger/api/v3/traces", get(find_traces_v3))
        .route("/jaeger/api/v3/traces/{trace_id}", get(trace_v3))
        .route("/jaeger/api/v3/trace-summaries", get(trace_summaries_v3))
}

/// How many recent traces of a service are decoded to list its operations (with the root operations of
/// the trace index).
const OPERATION_SAMPLE_TRACES: u32 = 100;

type Params = HashMap<String, String>;

/// A parameter by any of its names (snake_case, camelCase, `query.`-prefixed), non-empty.
fn param<'a>(params: &'a Params, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|name| params.get(*name).map(String::as_str).filter(|v| !v.is_empty()))
}

/// Microseconds, or an RFC 3339 time, as Unix ns.
fn time_param(params: &Params, names: &[&str]) -> Result<Option<i64>, ApiError> {
    let Some(text) = param(params, names) else { return Ok(None) };
    if let Ok(micros) = text.parse::<i64>() {
        return Ok(Some(micros.saturating_mul(1_000)));
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| Some(t.unix_timestamp_nanos() as i64))
        .map_err(|_| {
            ApiError::BadRequest(format!("{} must be Unix microseconds or an RFC 3339 time, got {text:?}", names[0]))
        })
}

fn kind_name(kind: i32) -> &'static str {
    match SpanKind::try_from(kind) {
        Ok(SpanKind::Server) => "server",
        Ok(SpanKind::Client) => "client",
        Ok(SpanKind::Producer) => "producer",
        Ok(SpanKind::Consumer) => "consumer",
        Ok(SpanKind::Internal) => "internal",
        _ => "",
    }
}

/// The operations (span name → kind) of a service: root operations of the index, and the span names of
/// its recent traces.
async fn operations_of(
    store: &dyn Store,
    project: &Project,
    service: &str,
) -> Result<BTreeMap<String, String>, ApiError> {
    let catalog = store.trace_catalog(project, None, None).await?;
    let mut operations: BTreeMap<String, String> = catalog
        .root_operations
        .into_iter()
        .filter(|(root_service, _)| root_service == service)
        .map(|(_, name)| (name, String::new()))
        .collect();
    let request = SearchRequest {
        query: jaeger::search_query(Some(service), None, &[], None, None),
        from_unix_nano: None,
        to_unix_nano: None,
        limit: OPERATION_SAMPLE_TRACES,
    };
    for found in search(store, project, &request).await?.traces {
        for (resource_spans, span) in found.trace.spans() {
            let resource = resource_spans.resource.as_ref().map_or(&[][..], |r| r.attributes.as_slice());
            if sessiontrace_ingest::traces::service_name(resource) == service {
                let kind = kind_name(span.kind).to_string();
                operations.entry(span.name.clone()).and_modify(|k| k.clone_from(&kind)).or_insert(kind);
            }
        }
    }
    Ok(operations)
}

async fn services(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
) -> Result<Json<Value>, ApiError> {
    let catalog = state.store.trace_catalog(&ctx.project, None, None).await?;
    let total = catalog.services.len();
    Ok(Json(jaeger::envelope(json!(catalog.services), total)))
}

async fn service_operations(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(service): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let operations = operations_of(state.store.as_ref(), &ctx.project, &service).await?;
    let names: Vec<&String> = operations.keys().collect();
    Ok(Json(jaeger::envelope(json!(names), names.len())))
}

fn kind_matches(wanted: Option<&str>, kind: &str) -> bool {
    wanted.is_none_or(|wanted| wanted.eq_ignore_ascii_case(kind))
}

/// `{name, spanKind}` of the operations of the service that `service_names` name, of the kind that
/// `kind_names` name (any when absent): the v1 and v3 operations routes differ only in names and envelope.
async fn operation_list(
    state: &AppState,
    ctx: &RequestContext,
    params: &Params,
    service_names: &[&str],
    kind_names: &[&str],
) -> Result<Vec<Value>, ApiError> {
    let service = param(params, service_names).ok_or_else(|| ApiError::BadRequest("service is required".into()))?;
    let wanted = param(params, kind_names);
    let operations = operations_of(state.store.as_ref(), &ctx.project, service).await?;
    Ok(operations
        .iter()
        .filter(|(_, kind)| kind_matches(wanted, kind))
        .map(|(name, kind)| json!({"name": name, "spanKind": kind}))
        .collect())
}

async fn operations(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Query(params): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let data = operation_list(&state, &ctx, &params, &["service"], &["spanKind", "span_kind"]).await?;
    let total = data.len();
    Ok(Json(jaeger::envelope(Value::Array(data), total)))
}

async fn find_traces(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Query(params): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let duration = |names: &[&str]| -> Result<Option<i64>, ApiError> {
        param(&params, names)
            .map(|text| {
                jaeger::parse_duration(text).ok_or_else(|| {
                    ApiError::BadRequest(format!("{} must be a duration like 1.2s or 100ms, got {text:?}", names[0]))
                })
            })
            .transpose()
    };
    let tags = match param(&params, &["tags"]) {
        Some(text) => jaeger::parse_tags(text).map_err(ApiError::BadRequest)?,
        None => vec![],
    };
    let query = jaeger::search_query(
        param(&params, &["service", "serviceName", "service_name"]),
        param(&params, &["operation", "operationName", "operation_name"]),
        &tags,
        duration(&["minDuration", "min_duration"])?,
        duration(&["maxDuration", "max_duration"])?,
    );
    let mut from = time_param(&params, &["start", "startTimeMin", "start_time_min"])?;
    let to = time_param(&params, &["end", "startTimeMax", "start_time_max"])?;
    if from.is_none()
        && let Some(lookback) =
            param(&params, &["lookback"]).filter(|l| *l != "custom").and_then(jaeger::parse_duration)
    {
        from = Some(now_ms() * 1_000_000 - lookback);
    }
    let limit = match param(&params, &["limit"]) {
        Some(text) => {
            text.parse().map_err(|_| ApiError::BadRequest(format!("limit must be a number, got {text:?}")))?
        }
        None => 20,
    };
    let request = SearchRequest { query, from_unix_nano: from, to_unix_nano: to, limit };
    let outcome = search(state.store.as_ref(), &ctx.project, &request).await?;
    let data: Vec<Value> =
        outcome.traces.iter().map(|found| jaeger::trace_json(found.summary.trace_id, &found.trace)).collect();
    let total = data.len();
    Ok(Json(jaeger::envelope(Value::Array(data), total)))
}

fn not_found(trace_id: &str) -> Response {
    let body = json!({"data": null, "total": 0, "limit": 0, "offset": 0,
        "errors": [{"code": 404, "msg": format!("trace not found: {trace_id}")}]});
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

async fn trace(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(trace_id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_trace_id(&trace_id)?;
    let trace = load_trace(state.store.as_ref(), &ctx.project, id.0).await?;
    if trace.span_count == 0 {
        return Ok(not_found(&id.to_hex()));
    }
    Ok(Json(jaeger::envelope(json!([jaeger::trace_json(id.0, &trace)]), 1)).into_response())
}

async fn services_v3(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
) -> Result<Json<Value>, ApiError> {
    let catalog = state.store.trace_catalog(&ctx.project, None, None).await?;
    Ok(Json(json!({"services": catalog.services})))
}

async fn operations_v3(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Query(params): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let service_names = ["service", "query.service", "serviceName", "service_name"];
    let data =
        operation_list(&state, &ctx, &params, &service_names, &["span_kind", "spanKind", "query.span_kind"]).await?;
    Ok(Json(json!({"operations": data})))
}

async fn trace_v3(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(trace_id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_trace_id(&trace_id)?;
    let trace = load_trace(state.store.as_ref(), &ctx.project, id.0).await?;
    if trace.span_count == 0 {
        return Err(ApiError::NotFound(format!("trace not found: {}", id.to_hex())));
    }
    let resource_spans = serde_json::to_value(&trace.resource_spans).unwrap_or(Value::Array(vec![]));
    Ok(Json(json!({"result": {"resourceSpans": resource_spans}})).into_response())
}

/// The search of `/api/v3/traces` and `/api/v3/trace-summaries`: `query.service_name=&query.operation_name=
/// &query.attributes=&query.start_time_min=&query.start_time_max=&query.duration_min=&query.duration_max=
/// &query.num_traces=` (times RFC 3339 or Unix µs; names with or without `query.`, snake or camel case).
fn v3_search(params: &Params) -> Result<SearchRequest, ApiError> {
    let duration = |names: &[&str]| -> Result<Option<i64>, ApiError> {
        param(params, names)
            .map(|text| {
                jaeger::parse_duration(text).ok_or_else(|| {
                    ApiError::BadRequest(format!("{} must be a duration like 1.2s, got {text:?}", names[0]))
                })
            })
            .transpose()
    };
    let tags = match param(params, &["query.attributes", "attributes", "tags"]) {
        Some(text) => jaeger::parse_tags(text).map_err(ApiError::BadRequest)?,
        None => vec![],
    };
    let query = jaeger::search_query(
        param(params, &["query.service_name", "query.serviceName", "service_name", "serviceName", "service"]),
        param(params, &["query.operation_name", "query.operationName", "operation_name", "operationName", "operation"]),
        &tags,
        duration(&["query.duration_min", "query.durationMin", "duration_min", "durationMin"])?,
        duration(&["query.duration_max", "query.durationMax", "duration_max", "durationMax"])?,
    );
    let from = time_param(params, &["query.start_time_min", "query.startTimeMin", "start_time_min", "startTimeMin"])?;
    let to = time_param(params, &["query.start_time_max", "query.startTimeMax", "start_time_max", "startTimeMax"])?;
    let limit = match param(
        params,
        &["query.num_traces", "query.numTraces", "query.search_depth", "query.searchDepth", "num_traces", "limit"],
    ) {
        Some(text) => {
            text.parse().map_err(|_| ApiError::BadRequest(format!("num_traces must be a number, got {text:?}")))?
        }
        None => 20,
    };
    Ok(SearchRequest { query, from_unix_nano: from, to_unix_nano: to, limit })
}

/// `GET /api/v3/traces?…` (see [`v3_search`]) → every matching trace's spans in one
/// `{"result":{"resourceSpans":[…]}}`.
async fn find_traces_v3(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Query(params): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let outcome = search(state.store.as_ref(), &ctx.project, &v3_search(&params)?).await?;
    let resource_spans: Vec<_> = outcome.traces.into_iter().flat_map(|found| found.trace.resource_spans).collect();
    let resource_spans = serde_json::to_value(&resource_spans).unwrap_or(Value::Array(vec![]));
    Ok(Json(json!({"result": {"resourceSpans": resource_spans}})))
}

/// `GET /api/v3/trace-summaries?…` (the same search) → `{"summaries":[TraceSummary…]}`, newest first:
/// what Jaeger UI 2.19+ lists, without shipping every span.
async fn trace_summaries_v3(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Query(params): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let outcome = search(state.store.as_ref(), &ctx.project, &v3_search(&params)?).await?;
    let summaries: Vec<Value> =
        outcome.traces.iter().map(|found| jaeger::trace_summary_json(found.summary.trace_id, &found.trace)).collect();
    Ok(Json(json!({"summaries": summaries})))
}
