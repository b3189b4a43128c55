//! Storage behind one trait. Ingest hands a [`WriteBatch`] to [`Store::write`], which returns only once the
//! batch is durable; the query layer reads sessions, trace blocks, logs, metric points and replay chunks
//! back. Spans are stored as blocks of received OTLP protobuf (compressed) plus a small per-trace index,
//! so the write path stays light and the full decode happens on read (shared/DESIGN.md section 7).
//!
//! Every record belongs to one project ([`Project`]): each data method takes it, and reads never cross
//! projects. The store also keeps the credentials (projects, API keys, users, UI login sessions) that the
//! server checks (shared/DESIGN.md section 8).
//!
//! Backends: [`sqlite::SqliteStore`] (embedded default). Every backend runs [`conformance::run_all`].

pub mod blocks;
pub mod conformance;
pub mod sqlite;

use async_trait::async_trait;
use sessiontrace_model::records::{LogRecord, MetricPoint, ReplayChunk, WriteBatch};
use sessiontrace_model::signals::{SessionInsights, SignalCounts, SignalKind};
use sessiontrace_model::{ApiKey, LoginSession, Project, ProjectInfo, Session, User};

/// What went wrong in a store.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// What is being created exists already: a session id or short id (in its project), a project.
    #[error("already exists (a session id or short id, or a project name)")]
    Conflict,
    /// The store cannot take writes right now (queue full, server down): the client should retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// This backend cannot answer this (a filter it does not implement): the message says what.
    #[error("not supported by this store: {0}")]
    Unsupported(String),
    /// Anything else: a bug or a broken disk.
    #[error("store failure: {0}")]
    Internal(String),
}

/// A `LIKE` pattern from a pattern where `*` stands for any characters (`%`, `_` and `\` taken literally,
/// escaped with `\`): the sessions list's `url=` filter, in both stores.
pub fn wildcard_like(pattern: &str) -> String {
    let mut like = String::with_capacity(pattern.len());
    for character in pattern.chars() {
        match character {
            '*' => like.push('%'),
            '%' | '_' | '\\' => {
                like.push('\\');
                like.push(character);
            }
            other => like.push(other),
        }
    }
    like
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        match &error {
            rusqlite::Error::SqliteFailure(code, _) => match code.code {
                rusqlite::ErrorCode::ConstraintViolation => StoreError::Conflict,
                // Retryable: the write is refused (never half done) until space frees or the device recovers.
                rusqlite::ErrorCode::DiskFull => StoreError::Unavailable(format!("the disk is full: {error}")),
                rusqlite::ErrorCode::SystemIoFailure => StoreError::Unavailable(format!("storage I/O error: {error}")),
                _ => StoreError::Internal(error.to_string()),
            },
            _ => StoreError::Internal(error.to_string()),
        }
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
    /// Frustration signals per kind; `None` from a backend that does not keep them.
    pub signals: Option<SignalCounts>,
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
    /// Sessions with at least one signal of this kind.
    pub signal: Option<SignalKind>,
    /// Sessions that visited a page whose URL or path matches this pattern (`*` = any characters;
    /// ASCII case-insensitive).
    pub url: Option<String>,
    /// Sessions where an element was clicked whose selector (`tag#id.class`) or text contains this
    /// (ASCII case-insensitive).
    pub clicked: Option<String>,
    /// Sessions with (or without) a console error or uncaught error.
    pub console_errors: Option<bool>,
    /// Sessions with (or without) a failed request.
    pub failed_requests: Option<bool>,
    /// Sessions with a failed request to this path (exact), and of this status when given.
    pub failed_path: Option<String>,
    pub failed_status: Option<u64>,
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

impl SessionFilter {
    /// The names of the filters that read what was derived from replay (signals and facts) and are set.
    pub fn insight_filters(&self) -> Vec<&'static str> {
        [
            ("signal", self.signal.is_some()),
            ("url", self.url.is_some()),
            ("clicked", self.clicked.is_some()),
            ("console_errors", self.console_errors.is_some()),
            ("failed_requests", self.failed_requests.is_some()),
            ("failed_path", self.failed_path.is_some()),
            ("failed_status", self.failed_status.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
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

/// Filters of a trace search over the trace index (the Tempo and Jaeger search APIs). Every filter is
/// optional; a backend reads at most [`TraceSearch::SCAN_CAP`] candidate traces (newest first) whose index
/// rows in the window, taken together, pass the filters, merges their rows and keeps those
/// [`TraceSearch::matches`] accepts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceSearch {
    /// Traces that overlap this window (Unix ns).
    pub from_unix_nano: Option<i64>,
    pub to_unix_nano: Option<i64>,
    /// Traces that touched this service.
    pub service: Option<String>,
    /// Traces whose root span's service is this one.
    pub root_service: Option<String>,
    /// Traces whose root span has this name.
    pub root_name: Option<String>,
    /// Traces with (or without) an error span.
    pub has_error: Option<bool>,
    pub min_duration_nanos: Option<i64>,
    pub max_duration_nanos: Option<i64>,
    /// At most this many traces, newest first (0 = [`TraceSearch::DEFAULT_LIMIT`]).
    pub limit: u32,
}

impl TraceSearch {
    /// How many candidate traces a backend reads at most for one search.
    pub const SCAN_CAP: u32 = 10_000;
    pub const DEFAULT_LIMIT: u32 = 20;

    /// The limit, defaulted and capped by [`TraceSearch::SCAN_CAP`].
    pub fn effective_limit(&self) -> usize {
        let limit = if self.limit == 0 { Self::DEFAULT_LIMIT } else { self.limit };
        limit.min(Self::SCAN_CAP) as usize
    }

    /// Whether a merged trace passes every filter.
    pub fn matches(&self, trace: &TraceSummary) -> bool {
        let duration = trace.end_unix_nano - trace.start_unix_nano;
        let root_service = trace.root.as_ref().map(|(_, service)| service.as_str());
        let root_name = trace.root.as_ref().map(|(name, _)| name.as_str());
        self.from_unix_nano.is_none_or(|from| trace.end_unix_nano >= from)
            && self.to_unix_nano.is_none_or(|to| trace.start_unix_nano <= to)
            && self.service.as_ref().is_none_or(|s| trace.services.contains(s))
            && self.root_service.as_deref().is_none_or(|s| root_service == Some(s))
            && self.root_name.as_deref().is_none_or(|n| root_name == Some(n))
            && self.has_error.is_none_or(|has| (trace.error_count > 0) == has)
            && self.min_duration_nanos.is_none_or(|min| duration >= min)
            && self.max_duration_nanos.is_none_or(|max| duration <= max)
    }

    /// Keeps the merged traces that match, newest first, at most the limit.
    pub fn finish(&self, traces: Vec<TraceSummary>) -> Vec<TraceSummary> {
        let mut kept: Vec<TraceSummary> = traces.into_iter().filter(|t| self.matches(t)).collect();
        kept.sort_by(|a, b| b.start_unix_nano.cmp(&a.start_unix_nano).then(a.trace_id.cmp(&b.trace_id)));
        kept.truncate(self.effective_limit());
        kept
    }
}

/// The services and root operations (root service, root span name) the trace index holds for a window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceCatalog {
    pub services: Vec<String>,
    pub root_operations: Vec<(String, String)>,
}

impl TraceCatalog {
    /// How many distinct services and operations a catalog holds at most.
    pub const CAP: usize = 10_000;
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

/// The fill of a store's bounded write queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteQueue {
    /// Writes submitted and not yet answered.
    pub queued: u64,
    /// Most writes that may wait; the next one is refused with [`StoreError::Unavailable`].
    pub capacity: u64,
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
///
/// Every record belongs to one project: data methods take the project first, and a read never returns
/// what another project wrote, even for an exact id (the same trace id or session short id may exist in
/// several projects, each its own). A project that was never created reads as empty; writing to one
/// stores the data all the same. The project `default` exists in every store, and data written before
/// projects existed belongs to it. Credentials (projects, API keys, users, UI login sessions) live in
/// the store too, so every collector replica on one ClickHouse sees the same ones.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Commits spans, logs and metric points together; returns once they are durable.
    async fn write(&self, project: &Project, batch: WriteBatch) -> Result<(), StoreError>;
    /// Adds a new session; [`StoreError::Conflict`] when its id or short id is taken in this project.
    async fn insert_session(&self, project: &Project, session: &Session) -> Result<(), StoreError>;
    /// Replaces a session's stored fields (stop, save).
    async fn update_session(&self, project: &Project, session: &Session) -> Result<(), StoreError>;
    /// A session by long id or short id.
    async fn session(&self, project: &Project, key: &str) -> Result<Option<Session>, StoreError>;
    /// The sessions list, newest first, with their stats.
    async fn list_sessions(&self, project: &Project, filter: &SessionFilter) -> Result<SessionPage, StoreError>;
    /// Counts and services of one session.
    async fn session_stats(&self, project: &Project, session: &Session) -> Result<SessionStats, StoreError>;
    /// The traces of one session, oldest first.
    async fn session_traces(&self, project: &Project, session: &Session) -> Result<Vec<TraceSummary>, StoreError>;
    /// Every stored block (uncompressed OTLP protobuf) that holds spans of this trace. Blocks may hold
    /// other traces too: the caller filters.
    async fn trace_blocks(&self, project: &Project, trace_id: [u8; 16]) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Which session a trace belongs to, if any block of it names one.
    async fn trace_session_key(&self, project: &Project, trace_id: [u8; 16]) -> Result<Option<String>, StoreError>;
    /// Traces of the index that pass `search`, newest first (see [`TraceSearch`]).
    async fn search_traces(&self, project: &Project, search: &TraceSearch) -> Result<Vec<TraceSummary>, StoreError>;
    /// The services and root operations of the traces that overlap a window (Unix ns), sorted.
    async fn trace_catalog(
        &self,
        project: &Project,
        from_unix_nano: Option<i64>,
        to_unix_nano: Option<i64>,
    ) -> Result<TraceCatalog, StoreError>;
    /// Log records, oldest first.
    async fn logs(&self, project: &Project, filter: &LogFilter) -> Result<Vec<LogRecord>, StoreError>;
    /// Metric points, oldest first.
    async fn metric_points(&self, project: &Project, filter: &MetricFilter) -> Result<Vec<MetricPoint>, StoreError>;
    /// Stores a replay chunk once; false when (session, seq) was already stored (nothing changes).
    async fn put_replay_chunk(&self, project: &Project, chunk: ReplayChunk) -> Result<bool, StoreError>;
    /// Replaces what was derived from a session's replay (long id): signals and searchable facts.
    async fn put_session_insights(
        &self,
        project: &Project,
        session_id: &str,
        insights: &SessionInsights,
    ) -> Result<(), StoreError>;
    /// What was last derived from a session's replay; `None` when nothing was (or the backend keeps none).
    async fn session_insights(
        &self,
        project: &Project,
        session_id: &str,
    ) -> Result<Option<SessionInsights>, StoreError>;
    /// Every replay chunk of a session (long id), in seq order.
    async fn replay_chunks(&self, project: &Project, session_id: &str) -> Result<Vec<ReplayChunk>, StoreError>;
    /// Counts of what one project holds, or of everything with `None` (`/api/stats`, the load generator's
    /// check).
    async fn totals(&self, project: Option<&Project>) -> Result<Totals, StoreError>;
    /// Stops accepting writes, finishes what was queued (the embedded store's deferred trace index
    /// included) and ends the store's background work. Later writes fail. Dropping a store does the
    /// same where it can; a server calls this at shutdown so that nothing is left half done.
    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Writes waiting for or being done by the store's writer, and how many may wait before a write is
    /// refused as unavailable (`/metrics`); `None` for a store without such a queue.
    fn write_queue(&self) -> Option<WriteQueue> {
        None
    }
    /// Retention, across all projects: deletes what is older than `cutoff_ms` (Unix milliseconds) and
    /// returns the totals of what went. A backend with retention of its own (ClickHouse drops daily
    /// partitions) deletes nothing here.
    async fn expire_before(&self, cutoff_ms: i64) -> Result<Totals, StoreError> {
        let _ = cutoff_ms;
        Ok(Totals::default())
    }

    // Credentials.

    /// Creates a project; [`StoreError::Conflict`] when it exists.
    async fn create_project(&self, info: &ProjectInfo) -> Result<(), StoreError>;
    /// Every created project (`default` included), by name.
    async fn projects(&self) -> Result<Vec<ProjectInfo>, StoreError>;
    /// Stores a key, or replaces the key with the same id.
    async fn put_key(&self, key: &ApiKey) -> Result<(), StoreError>;
    /// The keys of one project, or of all with `None`, revoked ones included, oldest first.
    async fn keys(&self, project: Option<&Project>) -> Result<Vec<ApiKey>, StoreError>;
    /// The key whose secret hashes to `hash`, revoked or not (the caller tells 401 from 403).
    async fn key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKey>, StoreError>;
    /// Revokes a key for good; false when no key has this id. Revoking twice keeps the first time.
    async fn revoke_key(&self, id: &str, at_ms: i64) -> Result<bool, StoreError>;
    /// Records when keys were last used: `(key id, Unix ms)`, batched by the caller. A time never moves
    /// back; unknown ids are ignored.
    async fn touch_keys(&self, used: &[(String, i64)]) -> Result<(), StoreError>;
    /// Stores a user, or replaces the user with the same name.
    async fn put_user(&self, user: &User) -> Result<(), StoreError>;
    /// A user by name.
    async fn user(&self, name: &str) -> Result<Option<User>, StoreError>;
    /// Every user, by name.
    async fn users(&self) -> Result<Vec<User>, StoreError>;
    /// Stores a new UI login session.
    async fn put_login_session(&self, session: &LoginSession) -> Result<(), StoreError>;
    /// A login session by the hash of its secret id; `None` once deleted.
    async fn login_session(&self, id_hash: &[u8; 32]) -> Result<Option<LoginSession>, StoreError>;
    /// Moves a login session's last-seen time forward (never back).
    async fn touch_login_session(&self, id_hash: &[u8; 32], last_seen_ms: i64) -> Result<(), StoreError>;
    /// Ends a login session (logout); deleting an unknown one is not an error.
    async fn delete_login_session(&self, id_hash: &[u8; 32]) -> Result<(), StoreError>;
    /// Whether any key that is not revoked, or any user, exists: the server turns authentication on then.
    async fn has_credentials(&self) -> Result<bool, StoreError>;
}
