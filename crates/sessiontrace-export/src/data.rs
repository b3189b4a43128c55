//! What an export reads from the store, once, before either format shapes it.

use serde_json::Value;
use sessiontrace_model::Session;
use sessiontrace_model::project::Project;
use sessiontrace_model::records::LogRecord;
use sessiontrace_query::signals::{SignalView, session_signals};
use sessiontrace_query::spans::{SpanView, trace_spans};
use sessiontrace_query::timeline::{TimelineItem, replay_events, session_timeline};
use sessiontrace_store::{LogFilter, SessionStats, Store, StoreError, TraceSummary};

use crate::Options;

/// How many traces are read span by span: the failing ones first, then the slowest.
pub const DETAIL_TRACES: usize = 8;

/// Everything an export may show of one session.
#[derive(Debug, Clone)]
pub struct ExportData {
    pub session: Session,
    pub stats: SessionStats,
    /// The merged timeline, by time.
    pub timeline: Vec<TimelineItem>,
    /// Every trace of the session, oldest first.
    pub traces: Vec<TraceSummary>,
    /// The traces read in full (failing first, then slowest) with their spans by start time.
    pub detailed: Vec<(TraceSummary, Vec<SpanView>)>,
    /// The session's logs, oldest first.
    pub logs: Vec<LogRecord>,
    /// The frustration signals, oldest first, each with its cause trace's error or slowest span.
    pub signals: Vec<SignalView>,
    /// The replay events, when asked for.
    pub replay: Option<Vec<Value>>,
}

impl ExportData {
    /// The session start in Unix ms.
    pub fn start_ms(&self) -> f64 {
        self.session.started_at_ms as f64
    }

    /// The trace with the longest duration.
    pub fn slowest_trace(&self) -> Option<&TraceSummary> {
        self.traces.iter().max_by_key(|t| t.end_unix_nano - t.start_unix_nano)
    }
}

/// The traces worth reading in full: failing ones (most errors, then longest) and then the slowest.
pub fn detail_candidates(traces: &[TraceSummary]) -> Vec<&TraceSummary> {
    let duration = |t: &TraceSummary| t.end_unix_nano - t.start_unix_nano;
    let mut failing: Vec<&TraceSummary> = traces.iter().filter(|t| t.error_count > 0).collect();
    failing.sort_by(|a, b| b.error_count.cmp(&a.error_count).then(duration(b).cmp(&duration(a))));
    let mut slow: Vec<&TraceSummary> = traces.iter().filter(|t| t.error_count == 0).collect();
    slow.sort_by_key(|t| std::cmp::Reverse(duration(t)));
    let mut chosen: Vec<&TraceSummary> = failing.into_iter().take(DETAIL_TRACES - 1).collect();
    // Always one slow trace, even in a session full of errors.
    chosen.extend(slow.into_iter().take(DETAIL_TRACES - chosen.len()));
    chosen
}

/// Reads one session for an export.
pub async fn gather(
    store: &dyn Store,
    project: &Project,
    session: Session,
    options: &Options,
) -> Result<ExportData, StoreError> {
    let stats = store.session_stats(project, &session).await?;
    let timeline = session_timeline(store, project, &session).await?;
    let traces = store.session_traces(project, &session).await?;
    let mut detailed = Vec::new();
    for summary in detail_candidates(&traces) {
        let spans = trace_spans(store, project, summary.trace_id).await?;
        detailed.push((summary.clone(), spans));
    }
    let filter = LogFilter {
        session_keys: vec![session.id.clone(), session.short_id.to_hex()],
        limit: Some(10_000),
        ..Default::default()
    };
    let logs = store.logs(project, &filter).await?;
    let signals = session_signals(store, project, &session).await?;
    let replay = if options.include_replay { Some(replay_events(store, project, &session).await?) } else { None };
    Ok(ExportData { session, stats, timeline, traces, detailed, logs, signals, replay })
}
