//! Storage behind one trait. Ingest hands a [`WriteBatch`] to [`Store::write`], which returns only once the
//! batch is durable; the query layer reads sessions, trace blocks, logs, metric points and replay chunks
//! back. Spans are stored as blocks of received OTLP protobuf (compressed) plus a small per-trace index,
//! so the write path stays light and the full decode happens on read (shared/DESIGN.md section 7).
//!
//! Backends: [`sqlite::SqliteStore`] (embedded default). Every backend runs [`conformance::run_all`].

pub mod conformance;
pub mod sqlite;

use async_trait::async_trait;
use sessiontrace_model::Session;
use sessiontrace_model::records::{LogRecord, MetricPoint, ReplayChunk, WriteBatch};

/// What went wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A session with this id or short id already exists.
    #[error("session id or short id already exists")]
    Conflict,
    /// The store cannot take writes right now (queue full, server down): the client should retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or a broken disk.
    #[error("store failure: {0}")]
    Internal(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(code, _) = &error
            && code.code == rusqlite::ErrorCode::ConstraintViolation
        {
            return StoreError::Conflict;
        }
        StoreError::Internal(error.to_string())
    }
}

/// Counts of what a session holds, and the services its traces touched.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionStats {
    pub traces: u64,
    pub spans: u64,
    pub logs: u64,
    pub events: u64,
    pub errors: u64,
    pub services: Vec<String>,
}

/// Filters of the sessions list. All are optional; `limit` defaults to 50.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    /// Text in the name, id, short id, user, tags or attributes.
    pub text: Option<String>,
    /// Text in the user field.
    pub user: Option<String>,
    /// Sessions with a trace that touched this service.
    pub service: Option<String>,
    pub has_error: Option<bool>,
    /// Sessions that overlap this window (Unix ms).
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

/// One page of the sessions list, newest first.
#[derive(Debug, Clone, Default)]
pub struct SessionPage {
    pub sessions: Vec<(Session, SessionStats)>,
    pub total: u64,
}

/// One trace of a session, from the index alone.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSummary {
    pub trace_id: [u8; 16],
    pub root: Option<(String, String)>,
    pub services: Vec<String>,
    pub start_unix_nano: i64,
    pub end_unix_nano: i64,
    pub span_count: u64,
    pub error_count: u64,
}

/// One trace's index row from one block, as a backend reads it back for [`summarize_traces`].
#[derive(Debug, Clone, PartialEq)]
pub struct TraceIndexRow {
    pub trace_id: [u8; 16],
    pub services: Vec<String>,
    pub start_unix_nano: i64,
    pub end_unix_nano: i64,
    pub span_count: u64,
    pub error_count: u64,
    pub root: Option<(String, String)>,
}

/// Merges index rows, oldest first, into one summary per trace (first-seen order): times widened, counts
/// summed, services joined and sorted, and the root taken from the earliest block that names one.
pub fn summarize_traces(rows: impl IntoIterator<Item = TraceIndexRow>) -> Vec<TraceSummary> {
    let mut traces: Vec<TraceSummary> = Vec::new();
    let mut position = std::collections::HashMap::new();
    for row in rows {
        let slot = *position.entry(row.trace_id).or_insert_with(|| {
            traces.push(TraceSummary {
                trace_id: row.trace_id,
                root: None,
                services: vec![],
                start_unix_nano: i64::MAX,
                end_unix_nano: i64::MIN,
                span_count: 0,
                error_count: 0,
            });
            traces.len() - 1
        });
        let summary = &mut traces[slot];
        let is_earliest_block = row.start_unix_nano < summary.start_unix_nano || summary.root.is_none();
        summary.start_unix_nano = summary.start_unix_nano.min(row.start_unix_nano);
        summary.end_unix_nano = summary.end_unix_nano.max(row.end_unix_nano);
        summary.span_count += row.span_count;
        summary.error_count += row.error_count;
        if let (Some(root), true) = (row.root, is_earliest_block) {
            summary.root = Some(root);
        }
        for service in row.services.into_iter().filter(|s| !s.is_empty()) {
            if !summary.services.contains(&service) {
                summary.services.push(service);
            }
        }
    }
    for summary in &mut traces {
        summary.services.sort();
    }
    traces
}

/// Filters of a logs query.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub trace_id: Option<[u8; 16]>,
    /// Session keys (long id and short id).
    pub session_keys: Vec<String>,
    pub service: Option<String>,
    /// Text in the body.
    pub text: Option<String>,
    pub from_unix_nano: Option<i64>,
    pub to_unix_nano: Option<i64>,
    pub limit: Option<u32>,
}

/// Filters of a metric points query.
#[derive(Debug, Clone, Default)]
pub struct MetricFilter {
    /// Points of any of these services (all services when empty).
    pub services: Vec<String>,
    pub name: Option<String>,
    pub from_unix_nano: Option<i64>,
    pub to_unix_nano: Option<i64>,
    pub limit: Option<u32>,
}

/// How much a store holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub spans: u64,
    pub span_blocks: u64,
    pub logs: u64,
    pub metric_points: u64,
    pub sessions: u64,
    pub replay_chunks: u64,
}

impl Totals {
    /// Adds another count (retention passes add up what their slices deleted).
    pub fn add(&mut self, other: &Totals) {
        self.spans += other.spans;
        self.span_blocks += other.span_blocks;
        self.logs += other.logs;
        self.metric_points += other.metric_points;
        self.sessions += other.sessions;
        self.replay_chunks += other.replay_chunks;
    }
}

/// The storage contract. Writes return only once durable.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Commits spans, logs and metric points together; returns once they are durable.
    async fn write(&self, batch: WriteBatch) -> Result<(), StoreError>;
    /// Adds a new session; [`StoreError::Conflict`] when its id or short id is taken.
    async fn insert_session(&self, session: &Session) -> Result<(), StoreError>;
    /// Replaces a session's stored fields (stop, save).
    async fn update_session(&self, session: &Session) -> Result<(), StoreError>;
    /// A session by long id or short id.
    async fn session(&self, key: &str) -> Result<Option<Session>, StoreError>;
    /// The sessions list, newest first, with their stats.
    async fn list_sessions(&self, filter: &SessionFilter) -> Result<SessionPage, StoreError>;
    /// Counts and services of one session.
    async fn session_stats(&self, session: &Session) -> Result<SessionStats, StoreError>;
    /// The traces of one session, oldest first.
    async fn session_traces(&self, session: &Session) -> Result<Vec<TraceSummary>, StoreError>;
    /// Every stored block (uncompressed OTLP protobuf) that holds spans of this trace. Blocks may hold
    /// other traces too: the caller filters.
    async fn trace_blocks(&self, trace_id: [u8; 16]) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Which session a trace belongs to, if any block of it names one.
    async fn trace_session_key(&self, trace_id: [u8; 16]) -> Result<Option<String>, StoreError>;
    /// Log records, oldest first.
    async fn logs(&self, filter: &LogFilter) -> Result<Vec<LogRecord>, StoreError>;
    /// Metric points, oldest first.
    async fn metric_points(&self, filter: &MetricFilter) -> Result<Vec<MetricPoint>, StoreError>;
    /// Stores a replay chunk once; false when (session, seq) was already stored (nothing changes).
    async fn put_replay_chunk(&self, chunk: ReplayChunk) -> Result<bool, StoreError>;
    /// Every replay chunk of a session (long id), in seq order.
    async fn replay_chunks(&self, session_id: &str) -> Result<Vec<ReplayChunk>, StoreError>;
    /// Counts of everything stored (`/api/stats`, the load generator's check).
    async fn totals(&self) -> Result<Totals, StoreError> {
        Err(StoreError::Unavailable("this backend does not count its totals".into()))
    }
    /// Stops accepting writes, finishes what was queued (the embedded store's deferred trace index
    /// included) and ends the store's background work. Later writes fail. Dropping a store does the
    /// same where it can; a server calls this at shutdown so that nothing is left half done.
    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Retention: deletes what is older than `cutoff_ms` (Unix milliseconds) and returns the totals of
    /// what went. A backend with retention of its own (ClickHouse drops daily partitions) deletes nothing
    /// here.
    async fn expire_before(&self, cutoff_ms: i64) -> Result<Totals, StoreError> {
        let _ = cutoff_ms;
        Ok(Totals::default())
    }
}
