//! `GET /api/sessions/{id}/export?format=md|json&max_tokens=&max_body=&replay=`: one session as markdown
//! or JSON for people, tickets and AI assistants, rendered by `sessiontrace-export` within its caps.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use sessiontrace_export::{ExportError, Format, Options};
use sessiontrace_pipeline::RequestContext;

use crate::error::ApiError;
use crate::state::AppState;

/// The export route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/sessions/{id}/export", get(export))
}

/// Query parameters of the export.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    /// Picks the project of a logged-in user (read by the access check, not here).
    #[allow(dead_code)]
    project: Option<String>,
    /// `md` (default) or `json`.
    format: Option<String>,
    /// Token budget (≈ characters / 4), default 8000.
    max_tokens: Option<usize>,
    /// Cap of each captured body in bytes, default 2048.
    max_body: Option<usize>,
    /// Replay events in the JSON.
    replay: Option<bool>,
}

/// Options from the query, with the defaults and bounds in one place.
fn options(query: &ExportQuery) -> Result<(Format, Options), ApiError> {
    let format = match query.format.as_deref() {
        None => Format::Markdown,
        Some(text) => Format::parse(text)
            .ok_or_else(|| ApiError::BadRequest(format!("format must be md or json, got {text:?}")))?,
    };
    let defaults = Options::default();
    let max_tokens = query.max_tokens.unwrap_or(defaults.max_tokens);
    if !(100..=1_000_000).contains(&max_tokens) {
        return Err(ApiError::BadRequest(format!("max_tokens must be between 100 and 1000000, got {max_tokens}")));
    }
    let max_body = query.max_body.unwrap_or(defaults.max_body).min(1 << 20);
    Ok((format, Options { max_tokens, max_body, include_replay: query.replay.unwrap_or(false), ..defaults }))
}

async fn export(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<String>,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let (format, options) = options(&query)?;
    let text = sessiontrace_export::export(state.store.as_ref(), &ctx.project, &id, format, &options).await.map_err(
        |error| match error {
            ExportError::UnknownSession(key) => ApiError::NotFound(format!("no session {key:?}")),
            ExportError::Store(error) => error.into(),
        },
    )?;
    let content_type = match format {
        Format::Markdown => "text/markdown; charset=utf-8",
        Format::Json => "application/json",
    };
    Ok(([(header::CONTENT_TYPE, content_type)], text).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(format: Option<&str>, max_tokens: Option<usize>) -> ExportQuery {
        ExportQuery { project: None, format: format.map(str::to_string), max_tokens, max_body: None, replay: None }
    }

    #[test]
    fn reads_format_and_budget() {
        let (format, defaults) = options(&query(None, None)).unwrap();
        assert_eq!(format, Format::Markdown);
        assert_eq!(defaults.max_tokens, 8_000);
        assert_eq!(defaults.max_body, 2_048);
        assert_eq!(options(&query(Some("json"), Some(500))).unwrap().0, Format::Json);
        assert!(options(&query(Some("xml"), None)).is_err());
        assert!(options(&query(None, Some(10))).is_err());
    }
}
