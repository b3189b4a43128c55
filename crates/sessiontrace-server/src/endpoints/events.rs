//! Replay events of the browser recorder: `POST /api/sessions/{id}/events` stores a chunk
//! `{seq, events}` once per (session, seq) (a re-sent chunk changes nothing), `GET` returns every event
//! in seq order. Bodies may be gzip-compressed and of any content type (keepalive fetches send text).
//! Chunks of an unsaved continuous session are held in its rolling window (`sessiontrace_pipeline::continuous`).

use axum::Json;
use axum::Router;
use axum::extract::{Extension, Path, Request, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::Value;
use sessiontrace_ingest::decode::decompress;
use sessiontrace_ingest::replay::{ChunkError, parse_chunk};
use sessiontrace_pipeline::{ReplayOutcome, RequestContext};
use sessiontrace_query::timeline::replay_events_json;

use crate::endpoints::read_body;
use crate::endpoints::sessions::find_session;
use crate::error::ApiError;
use crate::state::AppState;

/// The replay-event routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/sessions/{id}/events", post(put_events).get(get_events))
}

async fn put_events(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let (parts, body) = request.into_parts();
    let limit = state.config.max_replay_chunk_bytes;
    let raw = read_body(body, limit, state.config.body_read_timeout()).await?;
    let content_encoding = parts.headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok());
    let bytes = decompress(raw, content_encoding, limit)?;
    let session = find_session(&state, &ctx.project, &id).await?;
    let chunk = parse_chunk(&bytes, &session.id, state.config.max_events_per_chunk).map_err(|error| match error {
        ChunkError::TooManyEvents { .. } => ApiError::TooLarge(error.to_string()),
        ChunkError::Invalid(message) => ApiError::BadRequest(message),
    })?;
    let seq = chunk.seq;
    // An unsaved continuous session keeps its replay in its rolling window until it is saved.
    Ok(Json(match state.pipeline.accept_replay(&ctx, &session, chunk).await? {
        ReplayOutcome::Held => serde_json::json!({"seq": seq, "stored": true, "held": true}),
        outcome => serde_json::json!({"seq": seq, "stored": outcome == ReplayOutcome::Stored}),
    }))
}

async fn get_events(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let session = find_session(&state, &ctx.project, &id).await?;
    let body = replay_events_json(state.store.as_ref(), &ctx.project, &session).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body))
}
