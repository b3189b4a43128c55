//! A session's frustration signals as the API shows them: what the store kept when the replay was stored
//! (`sessiontrace_ingest::signals`), each cause's backend trace read now, since spans often arrive after
//! the replay chunk that named the trace: the trace's first error span, else its slowest span, among the
//! backend's spans (the browser's own span of the call, which fails whenever the answer does, names no
//! cause) unless the trace has only browser spans.

use std::collections::HashMap;

use serde::Serialize;
use sessiontrace_model::project::Project;
use sessiontrace_model::signals::Signal;
use sessiontrace_model::{Session, TraceId};
use sessiontrace_store::{Store, StoreError};

use crate::spans::{SpanView, trace_spans};

/// The span a signal's trace points at.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CauseSpan {
    pub trace_id: String,
    pub span_id: String,
    pub name: String,
    pub service: String,
    pub duration_ms: f64,
    /// `error` when the trace has an error span (this one), else `slowest`.
    pub reason: &'static str,
    pub status_message: String,
}

/// One signal with the span its trace points at, when the trace is stored.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SignalView {
    #[serde(flatten)]
    pub signal: Signal,
    pub span: Option<CauseSpan>,
}

/// At most this many distinct traces are read for one session's signals.
pub const MAX_TRACES_READ: usize = 50;

/// The signals of a session, oldest first, each with its cause's span.
pub async fn session_signals(
    store: &dyn Store,
    project: &Project,
    session: &Session,
) -> Result<Vec<SignalView>, StoreError> {
    let Some(insights) = store.session_insights(project, &session.id).await? else { return Ok(Vec::new()) };
    let mut spans: HashMap<String, Option<CauseSpan>> = HashMap::new();
    let mut views = Vec::with_capacity(insights.signals.len());
    for signal in insights.signals {
        let trace = signal.cause.as_ref().and_then(|c| c.trace_id.clone());
        let span = match trace {
            Some(trace_hex) if spans.contains_key(&trace_hex) => spans[&trace_hex].clone(),
            Some(trace_hex) if spans.len() < MAX_TRACES_READ => {
                let span = cause_span(store, project, &trace_hex).await?;
                spans.insert(trace_hex, span.clone());
                span
            }
            _ => None,
        };
        views.push(SignalView { signal, span });
    }
    Ok(views)
}

async fn cause_span(store: &dyn Store, project: &Project, trace_hex: &str) -> Result<Option<CauseSpan>, StoreError> {
    let Ok(trace_id) = TraceId::from_hex(trace_hex) else { return Ok(None) };
    let spans = trace_spans(store, project, trace_id.0).await?;
    Ok(choose(&spans).map(|(span, reason)| CauseSpan {
        trace_id: span.trace_id.clone(),
        span_id: span.span_id.clone(),
        name: span.name.clone(),
        service: span.service.clone(),
        duration_ms: span.duration_ms,
        reason,
        status_message: span.status.message.clone(),
    }))
}

/// The span a cause points at and why (`error` or `slowest`), from a trace's spans by start time.
fn choose(spans: &[SpanView]) -> Option<(&SpanView, &'static str)> {
    let backend: Vec<&SpanView> = spans.iter().filter(|s| !s.is_browser()).collect();
    let candidates = if backend.is_empty() { spans.iter().collect() } else { backend };
    if let Some(error) = candidates.iter().find(|s| s.status.code == "error") {
        return Some((error, "error"));
    }
    candidates.into_iter().max_by(|a, b| a.duration_ms.total_cmp(&b.duration_ms)).map(|span| (span, "slowest"))
}

#[cfg(test)]
mod tests {
    use super::choose;
    use crate::spans::tests::span;

    #[test]
    fn the_backend_error_span_else_the_slowest_and_the_browser_only_alone() {
        let mut browser = span("t", "b", None, "browser", 0.0, 1_700.0, true);
        browser.resource.insert("telemetry.sdk.language".into(), "webjs".into());
        let gateway = span("t", "g", Some("b"), "gateway", 10.0, 1_650.0, true);
        let inventory = span("t", "i", Some("g"), "inventory", 20.0, 1_640.0, true);
        let spans = vec![browser.clone(), gateway.clone(), inventory];
        let (chosen, reason) = choose(&spans).unwrap();
        assert_eq!((chosen.span_id.as_str(), reason), ("g", "error"));
        let calm: Vec<_> = [
            span("t", "g", Some("b"), "gateway", 10.0, 300.0, false),
            span("t", "d", Some("g"), "db", 20.0, 50.0, false),
        ]
        .into_iter()
        .chain([browser.clone()])
        .collect();
        assert_eq!(choose(&calm).map(|(s, r)| (s.span_id.as_str(), r)), Some(("g", "slowest")));
        assert_eq!(choose(&[browser]).map(|(s, r)| (s.span_id.as_str(), r)), Some(("b", "error")));
        assert!(choose(&[]).is_none());
    }
}
