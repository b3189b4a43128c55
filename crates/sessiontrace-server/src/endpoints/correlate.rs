//! From a trace to the session that produced it: `GET /sessions/by-trace/{trace_id}` redirects (303) to
//! the session page with the trace selected and its start time (`/sessions/{id}?trace=…&t=<Unix ms>`), or
//! answers 404 saying the trace belongs to no session (with its trace page). Grafana's trace correlation
//! link (an external link with `${__trace.traceId}`) points here.

use axum::Router;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sessiontrace_pipeline::RequestContext;

use crate::endpoints::query::parse_trace_id;
use crate::error::ApiError;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/sessions/by-trace/{trace_id}", get(by_trace))
}

/// The `project=` parameter of the request, kept on the redirect (a logged-in user's project).
fn project_param(query: Option<&str>) -> Option<String> {
    query?.split('&').find(|pair| pair.starts_with("project=")).map(str::to_string)
}

async fn by_trace(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(trace_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let trace_id = parse_trace_id(&trace_id)?;
    let store = state.store.as_ref();
    let Some(key) = store.trace_session_key(&ctx.project, trace_id.0).await? else {
        let known = !store.trace_blocks(&ctx.project, trace_id.0).await?.is_empty();
        let message = if known {
            format!("trace {trace_id} belongs to no session; its spans are at /traces/{trace_id}")
        } else {
            format!("no trace {trace_id}")
        };
        return Err(ApiError::NotFound(message));
    };
    let session = store.session(&ctx.project, &key).await?;
    let session_id = session.as_ref().map_or(key.clone(), |s| s.id.clone());
    let started_ms = match session.as_ref() {
        Some(session) => {
            let traces = store.session_traces(&ctx.project, session).await?;
            traces.iter().find(|t| t.trace_id == trace_id.0).map(|t| t.start_unix_nano / 1_000_000)
        }
        // Spans that name a session that was never started here: the page still opens, without a time.
        None => None,
    };
    let mut location = format!("/sessions/{session_id}?trace={}", trace_id.to_hex());
    if let Some(ms) = started_ms {
        location.push_str(&format!("&t={ms}"));
    }
    if let Some(project) = project_param(query.as_deref()) {
        location.push('&');
        location.push_str(&project);
    }
    let location = HeaderValue::from_str(&location).map_err(|e| ApiError::Internal(format!("bad redirect: {e}")))?;
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response())
}
