//! Read endpoints over traces, logs, metrics and a session's timeline.

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::routing::get;
use serde::Deserialize;
use serde_json::Value;
use sessiontrace_model::TraceId;
use sessiontrace_pipeline::RequestContext;
use sessiontrace_query::analysis::{service_map, session_analysis};
use sessiontrace_query::sessions::session_json;
use sessiontrace_query::spans::{logs_json, trace_spans, trace_summary_json};
use sessiontrace_query::timeline::session_timeline;
use sessiontrace_store::{LogFilter, MetricFilter};

use sessiontrace_pipeline::clock::now_ms;

use crate::endpoints::sessions::{find_session, parse_time_ms};
use crate::error::ApiError;
use crate::state::AppState;

/// The query routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/traces/{trace_id}", get(show_trace))
        .route("/api/traces/{trace_id}/map", get(trace_map))
        .route("/api/sessions/{id}/traces", get(session_traces))
        .route("/api/sessions/{id}/timeline", get(timeline))
        .route("/api/sessions/{id}/analysis", get(analysis))
        .route("/api/sessions/{id}/logs", get(session_logs))
        .route("/api/logs", get(logs))
        .route("/api/metrics", get(metrics))
        .route("/api/stats", get(stats))
}

pub fn parse_trace_id(text: &str) -> Result<TraceId, ApiError> {
    TraceId::from_hex(&text.to_ascii_lowercase())
        .map_err(|e| ApiError::BadRequest(format!("invalid trace id {text:?}: {e}")))
}

/// The spans of the trace named by `text` in the caller's project: 400 for a bad id, 404 when it has none.
async fn stored_trace(
    state: &AppState,
    ctx: &RequestContext,
    text: &str,
) -> Result<(TraceId, Vec<sessiontrace_query::spans::SpanView>), ApiError> {
    let trace_id = parse_trace_id(text)?;
    let spans = trace_spans(state.store.as_ref(), &ctx.project, trace_id.0).await?;
    if spans.is_empty() {
        return Err(ApiError::NotFound(format!("no spans of trace {trace_id}")));
    }
    Ok((trace_id, spans))
}

async fn show_trace(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(trace_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (trace_id, mut spans) = stored_trace(&state, &ctx, &trace_id).await?;
    let session_key = state.store.trace_session_key(&ctx.project, trace_id.0).await?;
    let session = match &session_key {
        Some(key) => state.store.session(&ctx.project, key).await?,
        None => None,
    };
    // Spans name their session by whatever linked them (short id or long id): show the long id.
    if let Some(session) = &session {
        for span in &mut spans {
            if span.session_id.as_deref().is_some_and(|key| session.is_named_by(key)) {
                span.session_id = Some(session.id.clone());
            }
        }
    }
    let session_id = session.map(|s| s.id).or(session_key);
    Ok(Json(serde_json::json!({"trace_id": trace_id.to_hex(), "session_id": session_id, "spans": spans})))
}

/// `GET /api/traces/{trace_id}/map`: the map of one trace's calls between services (the same edges as a
/// session's map: a span whose parent is on another service).
async fn trace_map(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(trace_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (trace_id, spans) = stored_trace(&state, &ctx, &trace_id).await?;
    Ok(Json(serde_json::json!({"trace_id": trace_id.to_hex(), "map": service_map(&spans, &[])})))
}

/// `GET /api/sessions/{id}/analysis`: what the session's backend picture is missing (`completeness`) and
/// the map of its services' calls (`map`).
async fn analysis(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let session = find_session(&state, &ctx.project, &id).await?;
    let (completeness, map) = session_analysis(state.store.as_ref(), &ctx.project, &session).await?;
    Ok(Json(serde_json::json!({"session_id": session.id, "completeness": completeness, "map": map})))
}

async fn session_traces(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let session = find_session(&state, &ctx.project, &id).await?;
    let traces = state.store.session_traces(&ctx.project, &session).await?;
    let traces: Vec<Value> = traces.iter().map(trace_summary_json).collect();
    Ok(Json(serde_json::json!({"traces": traces})))
}

async fn timeline(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let session = find_session(&state, &ctx.project, &id).await?;
    let stats = state.store.session_stats(&ctx.project, &session).await?;
    let items = session_timeline(state.store.as_ref(), &ctx.project, &session).await?;
    Ok(Json(serde_json::json!({"session": session_json(&session, Some(&stats)), "items": items})))
}

async fn session_logs(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let session = find_session(&state, &ctx.project, &id).await?;
    let filter = LogFilter {
        session_keys: vec![session.id.clone(), session.short_id.to_hex()],
        limit: Some(10_000),
        ..Default::default()
    };
    Ok(Json(serde_json::json!({"logs": logs_json(state.store.as_ref(), &ctx.project, &filter).await?})))
}

/// Query parameters of `GET /api/logs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogsQuery {
    /// Picks the project of a logged-in user (read by the access check, not here).
    #[allow(dead_code)]
    project: Option<String>,
    trace_id: Option<String>,
    service: Option<String>,
    q: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<u32>,
}

async fn logs(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    query: Result<Query<LogsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let filter = LogFilter {
        trace_id: query.trace_id.as_deref().map(parse_trace_id).transpose()?.map(|id| id.0),
        session_keys: vec![],
        service: query.service,
        text: query.q,
        from_unix_nano: query.from.as_deref().map(|t| parse_time_ms("from", t)).transpose()?.map(|ms| ms * 1_000_000),
        to_unix_nano: query.to.as_deref().map(|t| parse_time_ms("to", t)).transpose()?.map(|ms| ms * 1_000_000),
        limit: query.limit,
    };
    Ok(Json(serde_json::json!({"logs": logs_json(state.store.as_ref(), &ctx.project, &filter).await?})))
}

/// Query parameters of `GET /api/metrics`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsQuery {
    /// Picks the project of a logged-in user (read by the access check, not here).
    #[allow(dead_code)]
    project: Option<String>,
    service: Option<String>,
    name: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// The points of the services this session touched, over its window.
    session: Option<String>,
    limit: Option<u32>,
}

async fn metrics(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    query: Result<Query<MetricsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let mut filter = MetricFilter {
        services: query.service.into_iter().collect(),
        name: query.name,
        from_unix_nano: query.from.as_deref().map(|t| parse_time_ms("from", t)).transpose()?.map(|ms| ms * 1_000_000),
        to_unix_nano: query.to.as_deref().map(|t| parse_time_ms("to", t)).transpose()?.map(|ms| ms * 1_000_000),
        limit: query.limit,
    };
    if let Some(key) = &query.session {
        let session = find_session(&state, &ctx.project, key).await?;
        if filter.services.is_empty() {
            filter.services = state.store.session_stats(&ctx.project, &session).await?.services;
            if filter.services.is_empty() {
                return Ok(Json(serde_json::json!({"points": []})));
            }
        }
        filter.from_unix_nano.get_or_insert(session.started_at_ms * 1_000_000);
        filter.to_unix_nano.get_or_insert(session.stopped_at_ms.unwrap_or_else(now_ms) * 1_000_000);
    }
    let points: Vec<Value> = state
        .store
        .metric_points(&ctx.project, &filter)
        .await?
        .into_iter()
        .map(|p| {
            serde_json::json!({
                "time_ms": sessiontrace_query::nanos_to_ms(p.time_unix_nano),
                "service": p.service,
                "name": p.name,
                "kind": p.kind,
                "unit": p.unit,
                "value": p.value,
                "attributes": serde_json::from_str::<Value>(&p.attributes_json).unwrap_or(Value::Null),
                "detail": serde_json::from_str::<Value>(&p.detail_json).unwrap_or(Value::Null),
            })
        })
        .collect();
    Ok(Json(serde_json::json!({"points": points})))
}

async fn stats(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
) -> Result<Json<Value>, ApiError> {
    let totals = state.store.totals(Some(&ctx.project)).await?;
    Ok(Json(serde_json::json!({
        "spans": totals.spans,
        "span_blocks": totals.span_blocks,
        "logs": totals.logs,
        "metric_points": totals.metric_points,
        "sessions": totals.sessions,
        "replay_chunks": totals.replay_chunks,
    })))
}
