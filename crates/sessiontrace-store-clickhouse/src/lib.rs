//! The ClickHouse backend of [`sessiontrace_store::Store`], for teams that outgrow one machine.
//!
//! The collector stays stateless: several replicas behind a load balancer can write to one ClickHouse
//! server or cluster. Data goes:
//! - writes ([`Store::write`], replay chunks): encoded as RowBinary on the caller's task
//!   (`insert::Rows`), queued to one writer task that commits in groups: as soon as the previous insert
//!   returned it sends everything queued meanwhile (bounded in rows and bytes), one insert per table,
//!   then answers each caller — only after ClickHouse accepted the rows. An idle writer sends at once.
//!   A full queue or an unreachable server is [`StoreError::Unavailable`] (HTTP 503 / gRPC UNAVAILABLE);
//! - sessions: inserted directly (rare), checked for id and short-id conflicts (within the project) first;
//! - credentials (projects, API keys, users, UI login sessions): inserted directly as new row versions
//!   of small ReplacingMergeTree tables, so every replica reads what any replica wrote;
//! - reads (`query`): SQL over the HTTP interface, answers in RowBinary, subqueries `GLOBAL IN` so the
//!   same statements work over Distributed tables;
//! - retention ([`retention`]): daily partitions, old ones dropped hourly.
//!
//! Every data row carries its project (a `project` column), and every read filters by it.
//!
//! The schema is in [`schema`]; [`ClickHouseStore::open`] checks the server version (18.16 or newer),
//! creates the database and the tables, adds the `project` column to tables from before projects (their
//! rows become project `default`), creates the project `default`, and starts the writer and the
//! retention task.

mod client;
mod insert;
mod query;
pub mod retention;
mod rowbinary;
pub mod schema;

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use sessiontrace_model::records::{LogRecord, MetricPoint, ReplayChunk, WriteBatch};
use sessiontrace_model::signals::{SessionInsights, SignalCounts};
use sessiontrace_model::{ApiKey, LoginSession, Project, ProjectInfo, Session, User};
use sessiontrace_store::{
    LogFilter, MetricFilter, SessionFilter, SessionPage, SessionStats, Store, StoreError, Totals, TraceCatalog,
    TraceSearch, TraceSummary,
};

use client::Client;
pub use client::ServerVersion;
pub use insert::WriterStats;
use insert::{Rows, WriterHandle, WriterLimits};
use rowbinary::RowWriter;
use schema::Features;

/// zstd level for replay chunks, as in the SQLite store (span blocks: `sessiontrace_store::blocks`).
const ZSTD_LEVEL: i32 = 1;

/// How to reach ClickHouse and how to batch.
#[derive(Debug, Clone)]
pub struct ClickHouseConfig {
    /// Base URL of the HTTP interface, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    /// Database of the store's tables; created when missing.
    pub database: String,
    /// Days of data kept; older daily partitions are dropped. 0 keeps everything.
    pub retention_days: u32,
    /// How long a group of writes waits for more after its first one before it is sent. 0 (the default):
    /// a group goes as soon as an insert slot is free, holding whatever queued while the previous insert
    /// ran, so a lone write on an idle writer is sent at once. A few milliseconds here mean fewer, larger
    /// inserts at light load, at the cost of that much latency on every write.
    pub max_group_wait: Duration,
    /// Least time between the starts of two insert groups, a cap on inserts per second per table: under
    /// load a group waits out the rest of it, gathering more writes; a write that finds the writer idle
    /// that long goes at once. 0 (the default): the insert round trip alone spaces the groups, which
    /// measured best on the 2-core benchmark machine (docs/scale-out.md); a ClickHouse that struggles
    /// with many small parts may want a few tens of milliseconds.
    pub min_group_interval: Duration,
    /// Groups whose inserts may be in flight at once (at least 1).
    pub max_inserts_in_flight: usize,
    /// An insert is sent as soon as the queued rows reach this count.
    pub max_rows_per_insert: u64,
    /// ... or this many encoded bytes.
    pub max_bytes_per_insert: usize,
    /// Encoded bytes that may wait for the writer before writes are refused as `Unavailable`.
    pub queue_bytes: usize,
    /// Longest time one request to ClickHouse may take.
    pub request_timeout: Duration,
}

impl ClickHouseConfig {
    /// The defaults for a server at `url` and a database name.
    pub fn new(url: &str, database: &str) -> Self {
        ClickHouseConfig {
            url: url.to_string(),
            database: database.to_string(),
            retention_days: 30,
            // Group commit without a timer: under load the groups grow by themselves (writes queue while an
            // insert is in flight), so waiting only adds latency.
            max_group_wait: Duration::ZERO,
            min_group_interval: Duration::ZERO,
            max_inserts_in_flight: 1,
            max_rows_per_insert: 200_000,
            max_bytes_per_insert: 32 * 1024 * 1024,
            queue_bytes: 256 * 1024 * 1024,
            request_timeout: Duration::from_secs(15),
        }
    }
}

/// Time-ordered unique ids for blocks and log rows: Unix microseconds × 1024 + a random tail, strictly
/// increasing within the process, so "order by id" is "order of arrival" on each replica.
pub(crate) struct IdClock {
    last: AtomicU64,
}

impl IdClock {
    fn new() -> Self {
        IdClock { last: AtomicU64::new(0) }
    }

    pub(crate) fn next(&self) -> u64 {
        let candidate = (now_ns() / 1000) << 10 | u64::from(rand::random::<u16>() & 0x3ff);
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = candidate.max(last + 1);
            match self.last.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return next,
                Err(current) => last = current,
            }
        }
    }
}

pub(crate) fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// A `Date` (days since 1970-01-01) from Unix milliseconds.
pub(crate) fn day_of_ms(ms: i64) -> u16 {
    ms.div_euclid(86_400_000).clamp(0, i64::from(u16::MAX)) as u16
}

pub(crate) fn day_of_ns(ns: i64) -> u16 {
    day_of_ms(ns / 1_000_000)
}

pub(crate) fn compress(bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    zstd::bulk::compress(bytes, ZSTD_LEVEL).map_err(|e| StoreError::Internal(format!("zstd: {e}")))
}

pub(crate) fn decompress(bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    zstd::stream::decode_all(bytes).map_err(|e| StoreError::Internal(format!("zstd: {e}")))
}

/// The ClickHouse store. Open it inside a tokio runtime: it starts a writer task and a retention task.
pub struct ClickHouseStore {
    client: Client,
    writer: WriterHandle,
    ids: IdClock,
    version: ServerVersion,
    /// Versions of session rows: later changes get larger ones.
    row_versions: IdClock,
    /// Replay chunks being inserted by this process: a concurrent duplicate is answered "already stored".
    replay_in_flight: Mutex<HashSet<(Project, String, u64)>>,
    retention: tokio::task::JoinHandle<()>,
}

impl ClickHouseStore {
    /// Connects, checks the server version, creates the database and tables when missing, and starts the
    /// writer. Fails with a clear message when the server cannot be reached or is too old.
    pub async fn open(config: ClickHouseConfig) -> Result<Self, StoreError> {
        if !schema::is_valid_identifier(&config.database) {
            return Err(StoreError::Internal(format!(
                "clickhouse database name {:?} must be letters, digits and _ (not starting with a digit)",
                config.database
            )));
        }
        let client = Client::new(&config.url, &config.database, config.request_timeout)?;
        let answer = client.execute_global("SELECT version()").await.map_err(|error| match error {
            StoreError::Unavailable(message) => {
                StoreError::Unavailable(format!("{message} (is clickhouse-server running there?)"))
            }
            other => other,
        })?;
        let text = String::from_utf8_lossy(&answer).trim().to_string();
        let version = ServerVersion::parse(&text).ok_or_else(|| {
            StoreError::Internal(format!("{} does not look like clickhouse: version() answered {text:?}", config.url))
        })?;
        if version < schema::MIN_VERSION {
            return Err(StoreError::Internal(format!(
                "clickhouse {version} at {} is too old: sessiontrace needs {} or newer",
                config.url,
                schema::MIN_VERSION
            )));
        }
        let features = Features::for_version(version);
        for statement in schema::single_server_statements(&config.database, features, config.retention_days) {
            client.execute_global(&statement).await?;
        }
        add_project_columns(&client, features).await?;
        tracing::info!(url = %config.url, database = %config.database, %version, ?features, "clickhouse store open");
        let writer = WriterHandle::start(
            client.clone(),
            WriterLimits {
                max_wait: config.max_group_wait,
                min_interval: config.min_group_interval,
                max_in_flight: config.max_inserts_in_flight,
                max_rows: config.max_rows_per_insert,
                max_bytes: config.max_bytes_per_insert,
                queue_bytes: config.queue_bytes,
            },
        );
        let retention_client = client.clone();
        let retention_days = config.retention_days;
        let retention = tokio::spawn(async move {
            if retention_days == 0 {
                return;
            }
            loop {
                if let Err(error) = retention::drop_old_partitions(&retention_client, retention_days).await {
                    tracing::warn!(%error, "dropping old clickhouse partitions failed");
                }
                tokio::time::sleep(retention::PERIOD).await;
            }
        });
        let store = ClickHouseStore {
            client,
            writer,
            ids: IdClock::new(),
            version,
            row_versions: IdClock::new(),
            replay_in_flight: Mutex::new(HashSet::new()),
            retention,
        };
        if !query::project_exists(&store.client, &Project::default()).await? {
            let created_at_ms = (now_ns() / 1_000_000) as i64;
            store.put_project_row(&ProjectInfo { project: Project::default(), created_at_ms }).await?;
        }
        Ok(store)
    }

    /// Writes the writer answered and the insert groups that carried them.
    pub fn writer_stats(&self) -> WriterStats {
        self.writer.stats()
    }

    /// The connected server's version.
    pub fn server_version(&self) -> ServerVersion {
        self.version
    }

    /// Drops the daily partitions older than `days` days now (the retention task does this hourly);
    /// returns how many were dropped.
    pub async fn drop_old_partitions(&self, days: u32) -> Result<usize, StoreError> {
        retention::drop_old_partitions(&self.client, days).await
    }

    /// One row of `sessions_v1`.
    async fn put_session_row(
        &self,
        project: &Project,
        session: &Session,
        created_ns: u64,
        deleted: bool,
    ) -> Result<(), StoreError> {
        let mut row = RowWriter::default();
        row.date(day_of_ms(session.started_at_ms));
        row.string(project.as_str().as_bytes());
        row.string(session.id.as_bytes());
        row.string(session.short_id.to_hex().as_bytes());
        row.string(session.kind.as_str().as_bytes());
        row.nullable(session.name.as_deref(), |w, v| w.string(v.as_bytes()));
        row.string(session.user.to_string().as_bytes());
        row.string(session.attributes.to_string().as_bytes());
        row.string(serde_json::to_string(&session.tags).unwrap_or_else(|_| "[]".into()).as_bytes());
        row.string(serde_json::to_string(&session.capture).unwrap_or_else(|_| "{}".into()).as_bytes());
        row.i64(session.started_at_ms);
        row.nullable(session.stopped_at_ms, |w, v| w.i64(v));
        row.nullable(session.saved_at_ms, |w, v| w.i64(v));
        row.u64(created_ns);
        row.u64(self.row_versions.next());
        row.u8(u8::from(deleted));
        self.client.insert(schema::SESSIONS, &schema::column_names(schema::SESSIONS), row.bytes).await
    }

    /// Inserts rows of one credentials table.
    async fn insert_rows(&self, table: &str, row: RowWriter) -> Result<(), StoreError> {
        self.client.insert(table, &schema::column_names(table), row.bytes).await
    }

    async fn put_project_row(&self, info: &ProjectInfo) -> Result<(), StoreError> {
        let mut row = RowWriter::default();
        row.string(info.project.as_str().as_bytes());
        row.i64(info.created_at_ms);
        row.u64(self.row_versions.next());
        self.insert_rows(schema::PROJECTS, row).await
    }

    /// A row of `api_keys_v1`: `version` is u64::MAX for a revocation, which then wins for good.
    async fn put_key_row(&self, key: &ApiKey, version: u64) -> Result<(), StoreError> {
        let mut row = RowWriter::default();
        row.string(key.id.as_bytes());
        row.fixed(&key.hash);
        row.string(key.project.as_str().as_bytes());
        row.string(key.kind.as_str().as_bytes());
        row.nullable(key.name.as_deref(), |w, v| w.string(v.as_bytes()));
        row.string(key.prefix.as_bytes());
        row.strings(&key.allowed_origins);
        row.nullable(key.bytes_per_second, |w, v| w.u64(v));
        row.nullable(key.requests_per_second, |w, v| w.u64(v));
        row.i64(key.created_at_ms);
        row.nullable(key.revoked_at_ms, |w, v| w.i64(v));
        row.nullable(key.last_used_ms, |w, v| w.i64(v));
        row.u64(version);
        self.insert_rows(schema::API_KEYS, row).await
    }

    /// A row of `login_sessions_v1`: a logout is the row again with `deleted` and version u64::MAX.
    async fn put_login_row(&self, session: &LoginSession, deleted: bool, version: u64) -> Result<(), StoreError> {
        let mut row = RowWriter::default();
        row.fixed(&session.id_hash);
        row.string(session.user.as_bytes());
        row.string(session.csrf_token.as_bytes());
        row.i64(session.created_at_ms);
        row.i64(session.last_seen_ms);
        row.u8(u8::from(deleted));
        row.u64(version);
        self.insert_rows(schema::LOGIN_SESSIONS, row).await
    }
}

/// The store's tables that have a `project` column.
async fn tables_with_project(client: &Client) -> Result<HashSet<String>, StoreError> {
    let sql = format!(
        "SELECT table FROM system.columns WHERE database = {} AND name = 'project' FORMAT RowBinary",
        rowbinary::quote(client.database())
    );
    let answer = client.execute(&sql).await?;
    let mut reader = rowbinary::RowReader::new(&answer);
    let mut tables = HashSet::new();
    while !reader.is_empty() {
        tables.insert(reader.string()?);
    }
    Ok(tables)
}

/// Gives the data tables created before projects their `project` column (`DEFAULT 'default'`). 18.16 has
/// no `ADD COLUMN IF NOT EXISTS`, so the columns are looked up first; when another replica adds one at
/// the same moment, the failed `ALTER` is forgiven if the column is there after all.
async fn add_project_columns(client: &Client, features: Features) -> Result<(), StoreError> {
    let present = tables_with_project(client).await?;
    for table in schema::TABLES.iter().filter(|table| table.holds == schema::Holds::Data) {
        if present.contains(table.name) {
            continue;
        }
        let statement = schema::add_project_column(&format!("{}.{}", client.database(), table.name), features);
        if let Err(error) = client.execute(&statement).await
            && !tables_with_project(client).await?.contains(table.name)
        {
            return Err(error);
        }
        tracing::info!(table = table.name, "rows written before projects now belong to the project default");
    }
    Ok(())
}

impl Drop for ClickHouseStore {
    fn drop(&mut self) {
        self.retention.abort();
    }
}

#[async_trait]
impl Store for ClickHouseStore {
    async fn close(&self) -> Result<(), StoreError> {
        self.retention.abort();
        self.writer.close().await;
        Ok(())
    }

    async fn write(&self, project: &Project, batch: WriteBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let rows = Rows::from_batch(project, &batch, &self.ids)?;
        self.writer.submit(rows).await
    }

    async fn insert_session(&self, project: &Project, session: &Session) -> Result<(), StoreError> {
        let short_id = session.short_id.to_hex();
        if !query::owners(&self.client, project, &session.id, &short_id).await?.is_empty() {
            return Err(StoreError::Conflict);
        }
        let created_ns = now_ns();
        self.put_session_row(project, session, created_ns, false).await?;
        // ClickHouse has no unique constraint: two replicas may both pass the check above. Each looks
        // again after its insert; of two racing inserts at least one sees the other (reads follow
        // inserts), and whoever sees another owner hides its row and reports the conflict. At worst both
        // yield and both clients retry with new short ids; never do two sessions share one.
        let owners = query::owners(&self.client, project, &session.id, &short_id).await?;
        if owners.iter().any(|(id, _)| id != &session.id) {
            self.put_session_row(project, session, created_ns, true).await?;
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    async fn update_session(&self, project: &Project, session: &Session) -> Result<(), StoreError> {
        // `created_ns` of the first row is kept by `min()`; updates only add a newer version.
        self.put_session_row(project, session, u64::MAX, false).await
    }

    async fn session(&self, project: &Project, key: &str) -> Result<Option<Session>, StoreError> {
        query::session(&self.client, project, key).await
    }

    async fn list_sessions(&self, project: &Project, filter: &SessionFilter) -> Result<SessionPage, StoreError> {
        query::list_sessions(&self.client, project, filter).await
    }

    async fn session_stats(&self, project: &Project, session: &Session) -> Result<SessionStats, StoreError> {
        let mut stats = query::sessions_stats(&self.client, project, std::slice::from_ref(session)).await?;
        Ok(stats.pop().unwrap_or_default())
    }

    async fn session_traces(&self, project: &Project, session: &Session) -> Result<Vec<TraceSummary>, StoreError> {
        query::session_traces(&self.client, project, session).await
    }

    async fn search_traces(&self, project: &Project, search: &TraceSearch) -> Result<Vec<TraceSummary>, StoreError> {
        query::search_traces(&self.client, project, search).await
    }

    async fn trace_catalog(
        &self,
        project: &Project,
        from_unix_nano: Option<i64>,
        to_unix_nano: Option<i64>,
    ) -> Result<TraceCatalog, StoreError> {
        query::trace_catalog(&self.client, project, from_unix_nano, to_unix_nano).await
    }

    async fn trace_blocks(&self, project: &Project, trace_id: [u8; 16]) -> Result<Vec<Vec<u8>>, StoreError> {
        query::trace_blocks(&self.client, project, &trace_id).await
    }

    async fn trace_session_key(&self, project: &Project, trace_id: [u8; 16]) -> Result<Option<String>, StoreError> {
        query::trace_session_key(&self.client, project, &trace_id).await
    }

    async fn logs(&self, project: &Project, filter: &LogFilter) -> Result<Vec<LogRecord>, StoreError> {
        query::logs(&self.client, project, filter).await
    }

    async fn metric_points(&self, project: &Project, filter: &MetricFilter) -> Result<Vec<MetricPoint>, StoreError> {
        query::metric_points(&self.client, project, filter).await
    }

    async fn put_replay_chunk(&self, project: &Project, chunk: ReplayChunk) -> Result<bool, StoreError> {
        let key = (project.clone(), chunk.session_id.clone(), chunk.seq);
        if !self.replay_in_flight.lock().expect("replay lock").insert(key.clone()) {
            return Ok(false);
        }
        let outcome = async {
            if query::replay_chunk_exists(&self.client, project, &chunk.session_id, chunk.seq).await? {
                return Ok(false);
            }
            self.writer.submit(Rows::from_replay_chunk(project, &chunk)?).await?;
            Ok(true)
        }
        .await;
        self.replay_in_flight.lock().expect("replay lock").remove(&key);
        outcome
    }

    /// A new version of the session's row of `session_insights_v1`, inserted at once (not batched), so
    /// the next read of the list sees it.
    async fn put_session_insights(
        &self,
        project: &Project,
        session_id: &str,
        insights: &SessionInsights,
    ) -> Result<(), StoreError> {
        let counts = SignalCounts::of(&insights.signals);
        let json = serde_json::to_string(insights).map_err(|error| StoreError::Internal(error.to_string()))?;
        let (selectors, texts): (Vec<String>, Vec<String>) =
            insights.clicked.iter().map(|c| (c.selector.clone(), c.text.clone())).unzip();
        let paths: Vec<String> = insights.failed_requests.iter().map(|f| f.path.clone()).collect();
        let statuses: Vec<u32> =
            insights.failed_requests.iter().map(|f| u32::try_from(f.status).unwrap_or(u32::MAX)).collect();
        let mut row = RowWriter::default();
        row.date(day_of_ns(now_ns() as i64));
        row.string(project.as_str().as_bytes());
        row.string(session_id.as_bytes());
        row.u64(self.row_versions.next());
        for count in [counts.rage, counts.dead, counts.error] {
            row.u32(u32::try_from(count).unwrap_or(u32::MAX));
        }
        row.u8(u8::from(insights.console_errors));
        row.strings(&insights.urls);
        row.strings(&selectors);
        row.strings(&texts);
        row.strings(&paths);
        row.u32s(&statuses);
        row.string(json.as_bytes());
        self.insert_rows(schema::SESSION_INSIGHTS, row).await
    }

    async fn session_insights(
        &self,
        project: &Project,
        session_id: &str,
    ) -> Result<Option<SessionInsights>, StoreError> {
        query::session_insights(&self.client, project, session_id).await
    }

    async fn replay_chunks(&self, project: &Project, session_id: &str) -> Result<Vec<ReplayChunk>, StoreError> {
        query::replay_chunks(&self.client, project, session_id).await
    }

    async fn totals(&self, project: Option<&Project>) -> Result<Totals, StoreError> {
        query::totals(&self.client, project).await
    }

    async fn create_project(&self, info: &ProjectInfo) -> Result<(), StoreError> {
        // Check then insert, like sessions: two replicas creating one name at the same moment both
        // succeed, and the project exists once (rows collapse by name; the earliest time is kept).
        if query::project_exists(&self.client, &info.project).await? {
            return Err(StoreError::Conflict);
        }
        self.put_project_row(info).await
    }

    async fn projects(&self) -> Result<Vec<ProjectInfo>, StoreError> {
        query::projects(&self.client).await
    }

    async fn put_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.put_key_row(key, self.row_versions.next()).await
    }

    async fn keys(&self, project: Option<&Project>) -> Result<Vec<ApiKey>, StoreError> {
        query::keys(&self.client, project).await
    }

    async fn key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKey>, StoreError> {
        query::key_by_hash(&self.client, hash).await
    }

    async fn revoke_key(&self, id: &str, at_ms: i64) -> Result<bool, StoreError> {
        let Some(key) = query::key_by_id(&self.client, id).await? else { return Ok(false) };
        if key.is_revoked() {
            return Ok(true);
        }
        self.put_key_row(&ApiKey { revoked_at_ms: Some(at_ms), ..key }, u64::MAX).await?;
        Ok(true)
    }

    async fn touch_keys(&self, used: &[(String, i64)]) -> Result<(), StoreError> {
        if used.is_empty() {
            return Ok(());
        }
        let mut rows = RowWriter::default();
        for (id, at_ms) in used {
            rows.string(id.as_bytes());
            rows.i64(*at_ms);
        }
        self.insert_rows(schema::API_KEY_USAGE, rows).await
    }

    async fn put_user(&self, user: &User) -> Result<(), StoreError> {
        let mut row = RowWriter::default();
        row.string(user.name.as_bytes());
        row.string(user.role.as_str().as_bytes());
        row.string(user.password_hash.as_bytes());
        row.i64(user.created_at_ms);
        row.u8(u8::from(user.disabled));
        row.u64(self.row_versions.next());
        self.insert_rows(schema::USERS, row).await
    }

    async fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        query::user(&self.client, name).await
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        query::users(&self.client).await
    }

    async fn put_login_session(&self, session: &LoginSession) -> Result<(), StoreError> {
        self.put_login_row(session, false, self.row_versions.next()).await
    }

    async fn login_session(&self, id_hash: &[u8; 32]) -> Result<Option<LoginSession>, StoreError> {
        query::login_session(&self.client, id_hash).await
    }

    async fn touch_login_session(&self, id_hash: &[u8; 32], last_seen_ms: i64) -> Result<(), StoreError> {
        let mut row = RowWriter::default();
        row.fixed(id_hash);
        row.i64(last_seen_ms);
        self.insert_rows(schema::LOGIN_SESSION_SEEN, row).await
    }

    async fn delete_login_session(&self, id_hash: &[u8; 32]) -> Result<(), StoreError> {
        let Some(session) = query::login_session(&self.client, id_hash).await? else { return Ok(()) };
        self.put_login_row(&session, true, u64::MAX).await
    }

    async fn has_credentials(&self) -> Result<bool, StoreError> {
        query::has_credentials(&self.client).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_days_are_counted_from_the_epoch() {
        let clock = IdClock::new();
        let ids: Vec<u64> = (0..1000).map(|_| clock.next()).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(day_of_ms(0), 0);
        assert_eq!(day_of_ms(1_700_000_000_000), 19_675);
    }
}
