//! One session as text: the renderer behind `sessiontrace export`, `GET /api/sessions/{id}/export` and
//! the MCP server's `get_session` (shared/DESIGN.md section 9). No HTTP here.
//!
//! [`gather`] reads what a session holds through the [`Store`] trait (the session, its timeline, its
//! traces, the spans of the failing and slowest ones, its logs, its frustration signals); [`markdown`] and
//! [`json`] shape it.
//! Both keep to stated caps — a token budget (≈ characters / 4), a body cap, spans chosen by score
//! (errors, then duration) — and say "showing N of M" with the exact follow-up that gets the rest.
//! Everything shown goes through the masking rules again on the way out, so nothing unmasked is ever
//! produced, whatever a recorder or SDK sent.

mod data;
mod json;
mod markdown;
mod requests;
pub mod signals;

pub use data::{ExportData, gather};
pub use json::{SCHEMA, json};
pub use markdown::markdown;
pub use requests::{MAX_DEPTH, Request, body, failing_requests, header_value, mask_attributes};

use sessiontrace_model::project::Project;
use sessiontrace_store::{Store, StoreError};

/// Default token budget of the markdown (≈ 4 characters per token).
pub const DEFAULT_MAX_TOKENS: usize = 8_000;
/// Default cap of each captured body, in bytes.
pub const DEFAULT_MAX_BODY: usize = 2_048;

/// The two formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Json,
}

impl Format {
    /// `md` / `markdown` or `json`.
    pub fn parse(text: &str) -> Option<Format> {
        match text {
            "md" | "markdown" => Some(Format::Markdown),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// What an export includes and how much of it.
#[derive(Debug, Clone)]
pub struct Options {
    /// Token budget (markdown: the whole text; JSON: sets how many spans, items and logs are kept).
    pub max_tokens: usize,
    /// Cap of each captured request or response body, in bytes.
    pub max_body: usize,
    /// Base URL of the server's UI for the session link (`http://127.0.0.1:8080`); relative when `None`.
    pub ui_base: Option<String>,
    /// Replay events in the JSON (never in the markdown).
    pub include_replay: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { max_tokens: DEFAULT_MAX_TOKENS, max_body: DEFAULT_MAX_BODY, ui_base: None, include_replay: false }
    }
}

impl Options {
    /// The budget in characters.
    pub fn max_chars(&self) -> usize {
        self.max_tokens.saturating_mul(4)
    }
}

/// What went wrong in an export.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("no session {0:?} in this project")]
    UnknownSession(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The session named by `key` (id or short id) in one format.
pub async fn export(
    store: &dyn Store,
    project: &Project,
    key: &str,
    format: Format,
    options: &Options,
) -> Result<String, ExportError> {
    let Some(session) = store.session(project, key).await? else {
        return Err(ExportError::UnknownSession(key.to_string()));
    };
    let data = gather(store, project, session, options).await?;
    Ok(match format {
        Format::Markdown => markdown(&data, options),
        Format::Json => {
            let mut text = serde_json::to_string_pretty(&json(&data, options)).unwrap_or_default();
            text.push('\n');
            text
        }
    })
}

/// Token estimate of a text (≈ characters / 4, rounded up).
pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}

/// Seconds from the session start, `+12.3s`.
pub fn offset(session_start_ms: f64, time_ms: f64) -> String {
    let seconds = (time_ms - session_start_ms) / 1000.0;
    if seconds < 0.0 { format!("-{:.1}s", -seconds) } else { format!("+{seconds:.1}s") }
}

/// A duration for people: `12.5ms`, `1.20s`.
pub fn duration(ms: f64) -> String {
    if ms >= 1000.0 { format!("{:.2}s", ms / 1000.0) } else { format!("{ms:.1}ms") }
}

/// The first `max_chars` characters of a text, `…` when cut.
pub fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max_chars).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_durations() {
        assert_eq!(offset(1000.0, 13_300.0), "+12.3s");
        assert_eq!(offset(1000.0, 800.0), "-0.2s");
        assert_eq!(duration(12.54), "12.5ms");
        assert_eq!(duration(1200.0), "1.20s");
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(Format::parse("md"), Some(Format::Markdown));
        assert_eq!(Format::parse("xml"), None);
    }
}
