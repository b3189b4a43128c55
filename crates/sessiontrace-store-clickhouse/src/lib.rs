//! The ClickHouse backend of [`sessiontrace_store::Store`], for teams that outgrow one machine.
//!
//! The collector stays stateless: several replicas behind a load balancer can write to one ClickHouse
//! server or cluster. Data goes:
//! - writes ([`Store::write`], replay chunks): encoded as RowBinary on the caller's task
//!   (`insert::Rows`), queued to one writer task that sends at most one group of queued writes per
//!   `flush_interval`, one insert per table, then answers each caller — only after ClickHouse accepted
//!   the rows.
//!   A full queue or an unreachable server is [`StoreError::Unavailable`] (HTTP 503 / gRPC UNAVAILABLE);
//! - sessions: inserted directly (rare), checked for id and short-id conflicts first;
//! - reads (`query`): SQL over the HTTP interface, answers in RowBinary, subqueries `GLOBAL IN` so the
//!   same statements work over Distributed tables;
//! - retention ([`retention`]): daily partitions, old ones dropped hourly.
//!
//! The schema is in [`schema`]; [`ClickHouseStore::open`] checks the server version (18.16 or newer),
//! creates the database and the tables, and starts the writer and the retention task.

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
use sessiontrace_model::Session;
use sessiontrace_model::records::{LogRecord, MetricPoint, ReplayChunk, WriteBatch};
use sessiontrace_store::{
    LogFilter, MetricFilter, SessionFilter, SessionPage, SessionStats, Store, StoreError, Totals, TraceSummary,
};

use client::Client;
pub use client::ServerVersion;
use insert::{Rows, WriterHandle, WriterLimits};
use rowbinary::RowWriter;
use schema::Features;

/// zstd level for span blocks and replay chunks, as in the SQLite store.
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
    /// At most one group of inserts per interval: a write waits at most this long for others to share
    /// its inserts (an idle writer sends at once).
    pub flush_interval: Duration,
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
            // Short enough that one exporter waiting for its answer still gets thousands of spans/s through,
            // long enough that a busy collector sends a handful of inserts per second per table.
            flush_interval: Duration::from_millis(200),
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
    replay_in_flight: Mutex<HashSet<(String, u64)>>,
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
        tracing::info!(url = %config.url, database = %config.database, %version, ?features, "clickhouse store open");
        let writer = WriterHandle::start(
            client.clone(),
            WriterLimits {
                flush_interval: config.flush_interval,
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
        Ok(ClickHouseStore {
            client,
            writer,
            ids: IdClock::new(),
            version,
            row_versions: IdClock::new(),
            replay_in_flight: Mutex::new(HashSet::new()),
            retention,
        })
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
    async fn put_session_row(&self, session: &Session, created_ns: u64, deleted: bool) -> Result<(), StoreError> {
        let mut row = RowWriter::default();
        row.date(day_of_ms(session.started_at_ms));
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

    async fn write(&self, batch: WriteBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let rows = Rows::from_batch(&batch, &self.ids)?;
        self.writer.submit(rows).await
    }

    async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        let short_id = session.short_id.to_hex();
        if !query::owners(&self.client, &session.id, &short_id).await?.is_empty() {
            return Err(StoreError::Conflict);
        }
        let created_ns = now_ns();
        self.put_session_row(session, created_ns, false).await?;
        // ClickHouse has no unique constraint: two replicas may both pass the check above. Each looks
        // again after its insert; of two racing inserts at least one sees the other (reads follow
        // inserts), and whoever sees another owner hides its row and reports the conflict. At worst both
        // yield and both clients retry with new short ids; never do two sessions share one.
        let owners = query::owners(&self.client, &session.id, &short_id).await?;
        if owners.iter().any(|(id, _)| id != &session.id) {
            self.put_session_row(session, created_ns, true).await?;
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    async fn update_session(&self, session: &Session) -> Result<(), StoreError> {
        // `created_ns` of the first row is kept by `min()`; updates only add a newer version.
        self.put_session_row(session, u64::MAX, false).await
    }

    async fn session(&self, key: &str) -> Result<Option<Session>, StoreError> {
        query::session(&self.client, key).await
    }

    async fn list_sessions(&self, filter: &SessionFilter) -> Result<SessionPage, StoreError> {
        query::list_sessions(&self.client, filter).await
    }

    async fn session_stats(&self, session: &Session) -> Result<SessionStats, StoreError> {
        let mut stats = query::sessions_stats(&self.client, std::slice::from_ref(session)).await?;
        Ok(stats.pop().unwrap_or_default())
    }

    async fn session_traces(&self, session: &Session) -> Result<Vec<TraceSummary>, StoreError> {
        query::session_traces(&self.client, session).await
    }

    async fn trace_blocks(&self, trace_id: [u8; 16]) -> Result<Vec<Vec<u8>>, StoreError> {
        query::trace_blocks(&self.client, &trace_id).await
    }

    async fn trace_session_key(&self, trace_id: [u8; 16]) -> Result<Option<String>, StoreError> {
        query::trace_session_key(&self.client, &trace_id).await
    }

    async fn logs(&self, filter: &LogFilter) -> Result<Vec<LogRecord>, StoreError> {
        query::logs(&self.client, filter).await
    }

    async fn metric_points(&self, filter: &MetricFilter) -> Result<Vec<MetricPoint>, StoreError> {
        query::metric_points(&self.client, filter).await
    }

    async fn put_replay_chunk(&self, chunk: ReplayChunk) -> Result<bool, StoreError> {
        let key = (chunk.session_id.clone(), chunk.seq);
        if !self.replay_in_flight.lock().expect("replay lock").insert(key.clone()) {
            return Ok(false);
        }
        let outcome = async {
            if query::replay_chunk_exists(&self.client, &chunk.session_id, chunk.seq).await? {
                return Ok(false);
            }
            self.writer.submit(Rows::from_replay_chunk(&chunk)?).await?;
            Ok(true)
        }
        .await;
        self.replay_in_flight.lock().expect("replay lock").remove(&key);
        outcome
    }

    async fn replay_chunks(&self, session_id: &str) -> Result<Vec<ReplayChunk>, StoreError> {
        query::replay_chunks(&self.client, session_id).await
    }

    async fn totals(&self) -> Result<Totals, StoreError> {
        query::totals(&self.client).await
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
