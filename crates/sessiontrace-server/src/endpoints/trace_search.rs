//! `GET /api/traces/search`: every stored trace (not only those of sessions), found by service, operation,
//! status, trace duration, `key=value` attributes, a TraceQL expression and a time window, newest first,
//! in pages. The filters become one TraceQL query (`sessiontrace_query::trace_search`) for the engine
//! that serves Tempo's search too. Each result names the session the trace belongs to, if any.
//!
//! Parameters: `q` (TraceQL), `service`, `operation`, `status` (`error` | `ok`), `min_ms`, `max_ms`
//! (trace duration), `attr` (`key=value`, repeatable), `from`, `to` (Unix ms or RFC 3339), `limit`
//! (default 20, at most 100), `cursor` (from the previous page's `next_cursor`).

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::{Extension, Query, State};
use axum::routing::get;
use serde_json::{Value, json};
use sessiontrace_pipeline::RequestContext;
use sessiontrace_query::search::{SearchRequest, search};
use sessiontrace_query::spans::trace_summary_json;
use sessiontrace_query::trace_search::TraceFilters;

use crate::endpoints::sessions::parse_time_ms;
use crate::error::ApiError;
use crate::state::AppState;

/// The most results one page holds.
const MAX_LIMIT: u32 = 100;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/traces/search", get(search_traces))
}

fn number(name: &str, text: &str) -> Result<f64, ApiError> {
    text.parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| ApiError::BadRequest(format!("{name} must be a non-negative number, got {text:?}")))
}

/// The filters of the query string (`attr` may repeat).
fn filters(pairs: &[(String, String)]) -> Result<TraceFilters, ApiError> {
    let mut filters = TraceFilters::default();
    for (name, value) in pairs.iter().filter(|(_, value)| !value.trim().is_empty()) {
        let value = value.trim();
        match name.as_str() {
            "q" => filters.traceql = Some(value.to_string()),
            "service" => filters.service = Some(value.to_string()),
            "operation" => filters.operation = Some(value.to_string()),
            "status" => {
                filters.error = Some(match value {
                    "error" => true,
                    "ok" => false,
                    _ => return Err(ApiError::BadRequest(format!("status must be error or ok, got {value:?}"))),
                })
            }
            "min_ms" => filters.min_duration_nanos = Some((number(name, value)? * 1e6) as i64),
            "max_ms" => filters.max_duration_nanos = Some((number(name, value)? * 1e6) as i64),
            "attr" => {
                let (key, wanted) = value.split_once('=').ok_or_else(|| {
                    ApiError::BadRequest(format!("attr must be key=value (e.g. http.status_code=500), got {value:?}"))
                })?;
                filters.attributes.push((key.trim().to_string(), wanted.trim().to_string()));
            }
            _ => {}
        }
    }
    Ok(filters)
}

async fn search_traces(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let query = filters(&pairs)?.query().map_err(|e| ApiError::BadRequest(format!("q: {e}")))?;
    let one = |name: &str| pairs.iter().rev().find(|(n, v)| n == name && !v.trim().is_empty()).map(|(_, v)| v.trim());
    let from = one("from").map(|t| parse_time_ms("from", t)).transpose()?;
    let mut to = one("to").map(|t| parse_time_ms("to", t)).transpose()?.map(|ms| ms.saturating_mul(1_000_000));
    if let Some(cursor) = one("cursor") {
        // The cursor is the start (Unix ns) of the last trace shown: the next page starts before it.
        let before: i64 =
            cursor.parse().map_err(|_| ApiError::BadRequest(format!("cursor {cursor:?} is not one this API gave")))?;
        to = Some(to.map_or(before - 1, |to| to.min(before - 1)));
    }
    let limit = match one("limit") {
        Some(text) => (number("limit", text)? as u32).clamp(1, MAX_LIMIT),
        None => 20,
    };
    let request =
        SearchRequest { query, from_unix_nano: from.map(|ms| ms.saturating_mul(1_000_000)), to_unix_nano: to, limit };
    let outcome = search(state.store.as_ref(), &ctx.project, &request).await?;
    let mut sessions: HashMap<String, Value> = HashMap::new();
    let mut traces = Vec::with_capacity(outcome.traces.len());
    for found in &outcome.traces {
        let mut row = trace_summary_json(&found.summary);
        if let Some(key) = state.store.trace_session_key(&ctx.project, found.summary.trace_id).await? {
            if !sessions.contains_key(&key) {
                let session = state.store.session(&ctx.project, &key).await?;
                let value = session
                    .map_or(Value::Null, |s| json!({"id": s.id, "short_id": s.short_id.to_string(), "name": s.name}));
                sessions.insert(key.clone(), value);
            }
            row["session"] = sessions[&key].clone();
        }
        row["matched_spans"] = json!(found.matched.len());
        traces.push(row);
    }
    let full = outcome.traces.len() as u32 >= limit;
    let next_cursor = full.then(|| outcome.traces.last().map(|t| t.summary.start_unix_nano.to_string())).flatten();
    Ok(Json(json!({
        "traces": traces,
        "next_cursor": next_cursor,
        "inspected_traces": outcome.inspected_traces,
        "capped": outcome.capped,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_query_string_becomes_filters_with_clear_errors() {
        let got = filters(&pairs(&[
            ("service", "cart"),
            ("status", "error"),
            ("attr", "http.method = POST"),
            ("min_ms", "1.5"),
            ("q", " "),
        ]))
        .unwrap();
        assert_eq!(got.service.as_deref(), Some("cart"));
        assert_eq!(got.error, Some(true));
        assert_eq!(got.attributes, [("http.method".to_string(), "POST".to_string())]);
        assert_eq!(got.min_duration_nanos, Some(1_500_000));
        assert_eq!(got.traceql, None);
        for bad in [("status", "broken"), ("attr", "novalue"), ("max_ms", "-1")] {
            let Err(ApiError::BadRequest(error)) = filters(&pairs(&[bad])) else { panic!("{bad:?} accepted") };
            assert!(error.contains(bad.0), "{bad:?}: {error}");
        }
    }
}
