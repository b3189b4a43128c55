//! The session API: start, stop, save, list and show sessions (shared/DESIGN.md section 6). A started
//! session answers with its trace-id prefix and a ready `traceparent` with the sampled flag set.

use axum::Json;
use axum::Router;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;
use sessiontrace_model::ids::ShortId;
use sessiontrace_model::project::Project;
use sessiontrace_model::signals::SignalKind;
use sessiontrace_model::{CaptureSettings, Session, SessionKind};
use sessiontrace_pipeline::RequestContext;
use sessiontrace_query::sessions::session_json;
use sessiontrace_query::signals::session_signals;
use sessiontrace_store::{SessionFilter, StoreError};

use crate::endpoints::read_body;
use crate::error::ApiError;
use crate::limits;
use sessiontrace_pipeline::clock::now_ms;
use sessiontrace_pipeline::telemetry::Counters;

use crate::state::AppState;

/// The session routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/sessions", post(start_session).get(list_sessions))
        .route("/api/sessions/{id}", get(show_session))
        .route("/api/sessions/{id}/stop", post(stop_session))
        .route("/api/sessions/{id}/save", post(save_session))
}

/// The body of `POST /api/sessions`; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartSession {
    name: Option<String>,
    kind: Option<String>,
    user: Option<Value>,
    attributes: Option<serde_json::Map<String, Value>>,
    tags: Option<Vec<String>>,
    capture: Option<CaptureSettings>,
}

impl StartSession {
    /// Every field within `limits`.
    fn check_limits(&self) -> Result<(), limits::LimitExceeded> {
        if let Some(name) = &self.name {
            limits::check_string("name", name)?;
        }
        if let Some(user) = &self.user {
            limits::check_json("user", user)?;
        }
        if let Some(attributes) = &self.attributes {
            limits::check_attributes(attributes)?;
        }
        if let Some(tags) = &self.tags {
            limits::check_tags(tags)?;
        }
        Ok(())
    }
}

/// Finds a session by long id or short id, or answers 404.
pub async fn find_session(state: &AppState, project: &Project, key: &str) -> Result<Session, ApiError> {
    state.store.session(project, key).await?.ok_or_else(|| ApiError::NotFound(format!("no session {key:?}")))
}

async fn start_session(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = read_body(body, limits::MAX_SESSION_BODY_BYTES, state.config.body_read_timeout()).await?;
    let request: StartSession = if body.iter().all(u8::is_ascii_whitespace) {
        StartSession::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("invalid session request: {e}")))?
    };
    request.check_limits()?;
    let kind = match request.kind.as_deref() {
        None => SessionKind::Manual,
        Some(text) => SessionKind::parse(text)
            .ok_or_else(|| ApiError::BadRequest(format!("kind must be manual, continuous or backend, got {text:?}")))?,
    };
    let mut session = Session {
        id: Session::new_id(),
        short_id: ShortId::random(),
        kind,
        name: request.name,
        user: request.user.unwrap_or(Value::Null),
        attributes: Value::Object(request.attributes.unwrap_or_default()),
        tags: request.tags.unwrap_or_default(),
        capture: request.capture.unwrap_or_default(),
        started_at_ms: now_ms(),
        stopped_at_ms: None,
        saved_at_ms: None,
    };
    // Short ids are 32 bits: retry the rare collision with a new one.
    for _ in 0..8 {
        match state.store.insert_session(&ctx.project, &session).await {
            Ok(()) => {
                Counters::add(&state.counters.sessions_started, 1);
                tracing::info!(session_id = %session.id, short_id = %session.short_id, kind = session.kind.as_str(), "session started");
                return Ok((StatusCode::CREATED, Json(session_json(&session, None))));
            }
            Err(StoreError::Conflict) => {
                session.id = Session::new_id();
                session.short_id = ShortId::random();
            }
            Err(error) => return Err(error.into()),
        }
    }
    Err(ApiError::Internal("could not find a free short id".into()))
}

/// `GET /api/sessions/{id}`; `?include=completeness` adds what its backend picture is missing (this
/// reads every span of the session, so it is not in the default answer that live pages poll).
async fn show_session(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<String>,
    Query(params): Query<std::collections::HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let session = find_session(&state, &ctx.project, &id).await?;
    let stats = state.store.session_stats(&ctx.project, &session).await?;
    let signals = session_signals(state.store.as_ref(), &ctx.project, &session).await?;
    let mut body = session_json(&session, Some(&stats));
    body["signal_list"] = serde_json::to_value(signals).map_err(|e| ApiError::Internal(e.to_string()))?;
    if params.get("include").is_some_and(|include| include.split(',').any(|part| part == "completeness")) {
        let (completeness, _) =
            sessiontrace_query::analysis::session_analysis(state.store.as_ref(), &ctx.project, &session).await?;
        body["completeness"] = serde_json::to_value(completeness).unwrap_or(Value::Null);
    }
    Ok(Json(body))
}

async fn stop_session(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut session = find_session(&state, &ctx.project, &id).await?;
    if session.stopped_at_ms.is_none() {
        session.stopped_at_ms = Some(now_ms());
        state.store.update_session(&ctx.project, &session).await?;
        tracing::info!(session_id = %session.id, "session stopped");
    }
    let stats = state.store.session_stats(&ctx.project, &session).await?;
    Ok(Json(session_json(&session, Some(&stats))))
}

async fn save_session(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut session = find_session(&state, &ctx.project, &id).await?;
    // A continuous session's rolling window is written first, so a saved session has what came before.
    state.pipeline.save_session(&ctx, &session).await?;
    session.saved_at_ms = Some(now_ms());
    state.store.update_session(&ctx.project, &session).await?;
    let stats = state.store.session_stats(&ctx.project, &session).await?;
    Ok(Json(session_json(&session, Some(&stats))))
}

/// Query parameters of `GET /api/sessions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Picks the project of a logged-in user (read by the access check, not here).
    #[allow(dead_code)]
    project: Option<String>,
    q: Option<String>,
    user: Option<String>,
    service: Option<String>,
    has_error: Option<bool>,
    from: Option<String>,
    to: Option<String>,
    /// `rage`, `dead` or `error`.
    signal: Option<String>,
    url: Option<String>,
    clicked: Option<String>,
    console_errors: Option<String>,
    failed_requests: Option<String>,
    failed_path: Option<String>,
    failed_status: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

/// `true` or `false`, else a 400 that names the parameter.
fn parse_flag(name: &str, text: Option<&str>) -> Result<Option<bool>, ApiError> {
    match text {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(ApiError::BadRequest(format!("{name} must be true or false, got {other:?}"))),
    }
}

/// A filter value that must not be empty when given.
fn non_empty(name: &str, text: Option<String>) -> Result<Option<String>, ApiError> {
    match text {
        Some(value) if value.trim().is_empty() => Err(ApiError::BadRequest(format!("{name} must not be empty"))),
        other => Ok(other),
    }
}

/// A time given as Unix milliseconds or RFC 3339.
pub fn parse_time_ms(name: &str, text: &str) -> Result<i64, ApiError> {
    if let Ok(ms) = text.parse::<f64>() {
        return Ok(ms as i64);
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| {
            ApiError::BadRequest(format!("{name} must be Unix milliseconds or an RFC 3339 time, got {text:?}"))
        })
}

async fn list_sessions(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let filter = SessionFilter {
        text: query.q,
        user: query.user,
        service: query.service,
        has_error: query.has_error,
        from_ms: query.from.as_deref().map(|t| parse_time_ms("from", t)).transpose()?,
        to_ms: query.to.as_deref().map(|t| parse_time_ms("to", t)).transpose()?,
        signal: query
            .signal
            .as_deref()
            .map(|kind| {
                SignalKind::parse(kind).ok_or_else(|| {
                    ApiError::BadRequest(format!("signal must be one of rage, dead, error, got {kind:?}"))
                })
            })
            .transpose()?,
        url: non_empty("url", query.url)?,
        clicked: non_empty("clicked", query.clicked)?,
        console_errors: parse_flag("console_errors", query.console_errors.as_deref())?,
        failed_requests: parse_flag("failed_requests", query.failed_requests.as_deref())?,
        failed_path: non_empty("failed_path", query.failed_path)?,
        failed_status: query
            .failed_status
            .as_deref()
            .map(|status| match status.parse::<u64>() {
                Ok(code) if (100..=599).contains(&code) || code == 0 => Ok(code),
                _ => Err(ApiError::BadRequest(format!(
                    "failed_status must be an HTTP status (100-599, or 0 for no answer), got {status:?}"
                ))),
            })
            .transpose()?,
        limit: query.limit,
        offset: query.offset,
    };
    let page = state.store.list_sessions(&ctx.project, &filter).await?;
    let sessions: Vec<Value> = page.sessions.iter().map(|(s, stats)| session_json(s, Some(stats))).collect();
    Ok(Json(serde_json::json!({"sessions": sessions, "total": page.total})))
}
