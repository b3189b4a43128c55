//! The embedded default: one SQLite file in WAL mode with `synchronous=FULL`. One writer thread owns the
//! write connection and commits whatever jobs are queued in one transaction (group commit), answering
//! each job only after that commit; reads use a small pool of read-only connections on blocking threads.
//! Retention ([`retention`]) runs on the writer too, a slice at a time. WAL checkpoints run on a thread of
//! their own ([`checkpoint`]), off the commit path.
//!
//! Projects are small integer ids on every row (`projects_v1`, see [`schema`]): the writer maps names to
//! ids from a cache, reads look the id up once per call. Credentials are tables of the same file, changed
//! through the writer like everything else.

mod checkpoint;
mod index_codec;
mod insert;
mod query;
mod retention;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};
use sessiontrace_model::records::{LogRecord, MetricPoint, ReplayChunk, WriteBatch};
use sessiontrace_model::signals::SessionInsights;
use sessiontrace_model::{ApiKey, LoginSession, Project, ProjectInfo, Session, User};
use tokio::sync::oneshot;

use crate::{
    LogFilter, MetricFilter, SessionFilter, SessionPage, SessionStats, Store, StoreError, Totals, TraceCatalog,
    TraceSearch, TraceSummary, WriteQueue,
};
use insert::{CredentialChange, Job, Writer};

/// zstd level for replay chunks and index entries (span blocks: [`crate::blocks`]).
const ZSTD_LEVEL: i32 = 1;
/// The page size of a new database file (see [`SqliteStore::open`]).
const PAGE_SIZE: i64 = 2048;
/// Jobs that may wait for the writer before callers are told to retry.
const QUEUE_DEPTH: usize = 4096;
/// The writer connection's page cache, KiB.
const WRITER_CACHE_KIB: i64 = 512;

/// The embedded SQLite store.
pub struct SqliteStore {
    path: PathBuf,
    /// Boxed: the channel's ring of QUEUE_DEPTH slots is allocated and touched up front, 16 bytes a slot
    /// this way instead of a whole `Job` (1.3 MB resident for an idle server before).
    jobs: std::sync::mpsc::SyncSender<Box<Job>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    /// Index entries the writer holds back (see `insert.rs`); reads of the index flush them first.
    pending_index: Arc<AtomicUsize>,
    /// Jobs submitted to the writer and not yet answered (the `/metrics` queue gauge).
    queued: AtomicUsize,
    /// The writer and checkpoint threads until the store is closed ([`SqliteStore::close`] or drop).
    threads: Mutex<Option<Threads>>,
}

/// The store's threads, stopped together by [`Threads::stop`].
struct Threads {
    writer: std::thread::JoinHandle<()>,
    checkpointer: checkpoint::Checkpointer,
}

impl Threads {
    /// Queues the writer's last job and waits for the thread to end, then stops the checkpoint thread,
    /// whose last checkpoint so sees the last commit.
    fn stop(self, jobs: &std::sync::mpsc::SyncSender<Box<Job>>) {
        // A blocking send: a full queue is drained by the writer first. It fails only if the writer is gone.
        let _ = jobs.send(Box::new(Job::Close));
        if self.writer.join().is_err() {
            tracing::error!("the sqlite writer thread panicked");
        }
        drop(self.checkpointer);
    }
}

/// One job counted in [`SqliteStore::queued`] while it exists (a cancelled caller uncounts it too).
struct Queued<'a>(&'a AtomicUsize);

impl<'a> Queued<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Queued(count)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl SqliteStore {
    /// Opens (or creates) the database file `path`, creating tables as needed, and starts the writer.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| StoreError::Internal(format!("cannot create {}: {e}", parent.display())))?;
        }
        let mut connection = Connection::open(path)?;
        // Only a new file takes this (an existing one keeps its page size). A block row (~6 KB) keeps its
        // tail in a leaf page and the rest in full overflow pages; with 4 KiB pages those tails of up to
        // 4 KB packed one per leaf page, ~9 bytes per span of padding. 2 KiB pages: a 2M-span store 17%
        // smaller, and each random trace-index insert writes half the bytes.
        connection.pragma_update(None, "page_size", PAGE_SIZE)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        // The writer's page cache (SQLite's default is 2,000 KiB a connection). Most pages it writes are
        // a block's, appended and never read again; what it reads back is mostly the index tables'
        // interior pages. At 512 KiB a flat-out `bench/ingest.sh` run (~20M spans) kept its throughput.
        connection.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        connection.pragma_update(None, "busy_timeout", 5000)?;
        // Checkpoints are the checkpoint thread's job (see `checkpoint`), never a commit's.
        connection.pragma_update(None, "wal_autocheckpoint", 0)?;
        // When the WAL starts again from its beginning, a file grown past 64 MiB is cut back to that.
        connection.pragma_update(None, "journal_size_limit", 64 << 20)?;
        connection.execute_batch(schema::TABLES)?;
        schema::migrate(&connection, insert::now_ms())?;
        connection.execute_batch(schema::INDEXES)?;
        let recovered = insert::recover_index(&mut connection)?;
        if recovered > 0 {
            tracing::info!(entries = recovered, "indexed blocks written before the last stop");
        }
        let checkpointer = checkpoint::Checkpointer::start(path)?;
        let (jobs, receiver) = std::sync::mpsc::sync_channel(QUEUE_DEPTH);
        let pending_index = Arc::new(AtomicUsize::new(0));
        let writer = Writer::new(connection, pending_index.clone());
        let writer = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|e| StoreError::Internal(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            jobs,
            readers: Arc::new(Mutex::new(Vec::new())),
            pending_index,
            queued: AtomicUsize::new(0),
            threads: Mutex::new(Some(Threads { writer, checkpointer })),
        })
    }

    /// Stops the writer: jobs queued before this call are committed and answered, the deferred trace index
    /// is flushed, and the thread is joined; later writes fail with "the writer has stopped". Blocks the
    /// calling thread until then (dropping the store does the same); [`Store::close`] is the async form.
    pub fn close_blocking(&self) {
        let threads = self.threads.lock().expect("threads lock").take();
        if let Some(threads) = threads {
            threads.stop(&self.jobs);
        }
    }

    async fn submit<T: Send + 'static>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Job,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let queued = Queued::enter(&self.queued);
        self.jobs.try_send(Box::new(make(reply))).map_err(|error| match error {
            std::sync::mpsc::TrySendError::Full(_) => StoreError::Unavailable("write queue is full".into()),
            std::sync::mpsc::TrySendError::Disconnected(_) => StoreError::Internal("the writer has stopped".into()),
        })?;
        let answer = answer.await;
        drop(queued);
        answer.map_err(|_| StoreError::Internal("the writer dropped a job".into()))?
    }

    /// Makes the trace index complete before a read that uses it. `false` when the deferred entries could
    /// not be written because the store cannot write now (a full disk): the read goes on with the index as
    /// it is, which misses at most the traces of the last seconds (a read by trace id still finds them,
    /// see `trace_blocks`), rather than failing every read while writes are refused.
    async fn index_ready(&self) -> Result<bool, StoreError> {
        if self.pending_index.load(Ordering::Acquire) == 0 {
            return Ok(true);
        }
        match self.submit(|reply| Job::FlushIndex { reply }).await {
            Ok(()) => Ok(true),
            Err(StoreError::Unavailable(why)) => {
                tracing::warn!(%why, "the trace index cannot be written now; reading it as it is");
                Ok(false)
            }
            Err(error) => Err(error),
        }
    }

    /// Runs a read of one project's data: `T::default()` (nothing) when the project was never written to.
    async fn read_project<T: Default + Send + 'static>(
        &self,
        project: &Project,
        work: impl FnOnce(&Connection, i64) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let project = project.clone();
        self.read(move |c| match query::project_id(c, &project)? {
            Some(project_id) => work(c, project_id),
            None => Ok(T::default()),
        })
        .await
    }

    async fn change_credentials(&self, change: CredentialChange) -> Result<bool, StoreError> {
        self.submit(|reply| Job::Credentials { change, reply }).await
    }

    /// Runs a read on a pooled read-only connection on a blocking thread.
    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let readers = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = readers.lock().expect("reader pool lock").pop();
            let connection = match pooled {
                Some(connection) => connection,
                None => {
                    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                    let connection = Connection::open_with_flags(&path, flags)?;
                    connection.pragma_update(None, "busy_timeout", 5000)?;
                    connection
                }
            };
            let result = work(&connection);
            readers.lock().expect("reader pool lock").push(connection);
            result
        })
        .await
        .map_err(|e| StoreError::Internal(format!("read task failed: {e}")))?
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        if let Some(threads) = self.threads.get_mut().ok().and_then(Option::take) {
            threads.stop(&self.jobs);
        }
    }
}

pub(crate) fn compress(bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    thread_local! {
        // A compression context per thread: creating one per block costs as much as a small block.
        static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> = const { std::cell::RefCell::new(None) };
    }
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot =
                Some(zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(|e| StoreError::Internal(format!("zstd: {e}")))?);
        }
        let compressor = slot.as_mut().expect("set above");
        compressor.compress(bytes).map_err(|e| StoreError::Internal(format!("zstd: {e}")))
    })
}

pub(crate) fn decompress(bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    zstd::stream::decode_all(bytes).map_err(|e| StoreError::Internal(format!("zstd: {e}")))
}

#[async_trait]
impl Store for SqliteStore {
    async fn write(&self, project: &Project, batch: WriteBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let stored = batch
            .trace_blocks
            .iter()
            .map(|block| {
                Ok(insert::StoredBlock {
                    data: crate::blocks::encode_block(&block.protobuf)?,
                    index_data: index_codec::encode(&block.traces)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let project = project.clone();
        self.submit(|reply| Job::Write { project, batch, stored, reply }).await
    }

    async fn insert_session(&self, project: &Project, session: &Session) -> Result<(), StoreError> {
        let (project, session) = (project.clone(), session.clone());
        self.submit(|reply| Job::InsertSession { project, session, reply }).await
    }

    async fn update_session(&self, project: &Project, session: &Session) -> Result<(), StoreError> {
        let (project, session) = (project.clone(), session.clone());
        self.submit(|reply| Job::UpdateSession { project, session, reply }).await
    }

    async fn session(&self, project: &Project, key: &str) -> Result<Option<Session>, StoreError> {
        let key = key.to_string();
        self.read_project(project, move |c, p| query::session(c, p, &key)).await
    }

    async fn list_sessions(&self, project: &Project, filter: &SessionFilter) -> Result<SessionPage, StoreError> {
        self.index_ready().await?;
        let filter = filter.clone();
        self.read_project(project, move |c, p| query::list_sessions(c, p, &filter)).await
    }

    async fn session_stats(&self, project: &Project, session: &Session) -> Result<SessionStats, StoreError> {
        self.index_ready().await?;
        let session = session.clone();
        self.read_project(project, move |c, p| query::session_stats(c, p, &session)).await
    }

    async fn session_traces(&self, project: &Project, session: &Session) -> Result<Vec<TraceSummary>, StoreError> {
        self.index_ready().await?;
        let session = session.clone();
        self.read_project(project, move |c, p| query::session_traces(c, p, &session)).await
    }

    async fn trace_blocks(&self, project: &Project, trace_id: [u8; 16]) -> Result<Vec<Vec<u8>>, StoreError> {
        // With the index behind (a full disk), the writer names the blocks it has not indexed yet.
        let unindexed = if self.index_ready().await? {
            Vec::new()
        } else {
            self.submit(|reply| Job::PendingBlocks { trace_id, reply }).await.unwrap_or_default()
        };
        self.read_project(project, move |c, p| {
            let extra: Vec<i64> =
                unindexed.iter().filter(|(project_id, _)| *project_id == p).map(|(_, b)| *b).collect();
            query::trace_blocks(c, p, &trace_id, &extra)
        })
        .await
    }

    async fn search_traces(&self, project: &Project, search: &TraceSearch) -> Result<Vec<TraceSummary>, StoreError> {
        self.index_ready().await?;
        let search = search.clone();
        self.read_project(project, move |c, p| query::search_traces(c, p, &search)).await
    }

    async fn trace_catalog(
        &self,
        project: &Project,
        from_unix_nano: Option<i64>,
        to_unix_nano: Option<i64>,
    ) -> Result<TraceCatalog, StoreError> {
        self.index_ready().await?;
        self.read_project(project, move |c, p| query::trace_catalog(c, p, from_unix_nano, to_unix_nano)).await
    }

    async fn trace_session_key(&self, project: &Project, trace_id: [u8; 16]) -> Result<Option<String>, StoreError> {
        self.index_ready().await?;
        self.read_project(project, move |c, p| query::trace_session_key(c, p, &trace_id)).await
    }

    async fn logs(&self, project: &Project, filter: &LogFilter) -> Result<Vec<LogRecord>, StoreError> {
        self.index_ready().await?;
        let filter = filter.clone();
        self.read_project(project, move |c, p| query::logs(c, p, &filter)).await
    }

    async fn metric_points(&self, project: &Project, filter: &MetricFilter) -> Result<Vec<MetricPoint>, StoreError> {
        let filter = filter.clone();
        self.read_project(project, move |c, p| query::metric_points(c, p, &filter)).await
    }

    async fn put_replay_chunk(&self, project: &Project, chunk: ReplayChunk) -> Result<bool, StoreError> {
        let compressed = compress(&chunk.events_json)?;
        let project = project.clone();
        self.submit(|reply| Job::PutReplayChunk { project, chunk, compressed, reply }).await
    }

    async fn put_session_insights(
        &self,
        project: &Project,
        session_id: &str,
        insights: &SessionInsights,
    ) -> Result<(), StoreError> {
        let (project, session_id, insights) = (project.clone(), session_id.to_string(), Box::new(insights.clone()));
        self.submit(|reply| Job::PutInsights { project, session_id, insights, reply }).await
    }

    async fn session_insights(
        &self,
        project: &Project,
        session_id: &str,
    ) -> Result<Option<SessionInsights>, StoreError> {
        let session_id = session_id.to_string();
        self.read_project(project, move |c, p| query::session_insights(c, p, &session_id)).await
    }

    async fn replay_chunks(&self, project: &Project, session_id: &str) -> Result<Vec<ReplayChunk>, StoreError> {
        let session_id = session_id.to_string();
        self.read_project(project, move |c, p| query::replay_chunks(c, p, &session_id)).await
    }

    async fn totals(&self, project: Option<&Project>) -> Result<Totals, StoreError> {
        match project {
            Some(project) => self.read_project(project, |c, p| query::totals(c, Some(p))).await,
            None => self.read(|c| query::totals(c, None)).await,
        }
    }

    async fn close(&self) -> Result<(), StoreError> {
        let threads = self.threads.lock().expect("threads lock").take();
        if let Some(threads) = threads {
            let jobs = self.jobs.clone();
            tokio::task::spawn_blocking(move || threads.stop(&jobs))
                .await
                .map_err(|e| StoreError::Internal(format!("closing the store failed: {e}")))?;
        }
        Ok(())
    }

    /// One slice per writer job, so that writes go on in between (see [`retention`]).
    async fn expire_before(&self, cutoff_ms: i64) -> Result<Totals, StoreError> {
        let mut total = Totals::default();
        loop {
            let (expired, more) = self.submit(|reply| Job::Expire { cutoff_ms, reply }).await?;
            total.add(&expired);
            if !more {
                return Ok(total);
            }
        }
    }

    async fn create_project(&self, info: &ProjectInfo) -> Result<(), StoreError> {
        self.change_credentials(CredentialChange::CreateProject(info.clone())).await.map(|_| ())
    }

    fn write_queue(&self) -> Option<WriteQueue> {
        Some(WriteQueue { queued: self.queued.load(Ordering::Relaxed) as u64, capacity: QUEUE_DEPTH as u64 })
    }

    async fn projects(&self) -> Result<Vec<ProjectInfo>, StoreError> {
        self.read(query::projects).await
    }

    async fn put_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.change_credentials(CredentialChange::PutKey(key.clone())).await.map(|_| ())
    }

    async fn keys(&self, project: Option<&Project>) -> Result<Vec<ApiKey>, StoreError> {
        let project = project.cloned();
        self.read(move |c| query::keys(c, project.as_ref())).await
    }

    async fn key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKey>, StoreError> {
        let hash = *hash;
        self.read(move |c| query::key_by_hash(c, &hash)).await
    }

    async fn revoke_key(&self, id: &str, at_ms: i64) -> Result<bool, StoreError> {
        self.change_credentials(CredentialChange::RevokeKey { id: id.to_string(), at_ms }).await
    }

    async fn touch_keys(&self, used: &[(String, i64)]) -> Result<(), StoreError> {
        if used.is_empty() {
            return Ok(());
        }
        self.change_credentials(CredentialChange::TouchKeys(used.to_vec())).await.map(|_| ())
    }

    async fn put_user(&self, user: &User) -> Result<(), StoreError> {
        self.change_credentials(CredentialChange::PutUser(user.clone())).await.map(|_| ())
    }

    async fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        let name = name.to_string();
        self.read(move |c| query::user(c, &name)).await
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        self.read(query::users).await
    }

    async fn put_login_session(&self, session: &LoginSession) -> Result<(), StoreError> {
        self.change_credentials(CredentialChange::PutLoginSession(session.clone())).await.map(|_| ())
    }

    async fn login_session(&self, id_hash: &[u8; 32]) -> Result<Option<LoginSession>, StoreError> {
        let id_hash = *id_hash;
        self.read(move |c| query::login_session(c, &id_hash)).await
    }

    async fn touch_login_session(&self, id_hash: &[u8; 32], last_seen_ms: i64) -> Result<(), StoreError> {
        let change = CredentialChange::TouchLoginSession { id_hash: *id_hash, last_seen_ms };
        self.change_credentials(change).await.map(|_| ())
    }

    async fn delete_login_session(&self, id_hash: &[u8; 32]) -> Result<(), StoreError> {
        self.change_credentials(CredentialChange::DeleteLoginSession { id_hash: *id_hash }).await.map(|_| ())
    }

    async fn has_credentials(&self) -> Result<bool, StoreError> {
        self.read(query::has_credentials).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> Project {
        Project::default()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
        crate::conformance::run_all(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blocks_written_before_a_crash_are_indexed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let batch = crate::conformance::sample_batch();
        let trace_id = batch.trace_blocks[0].traces[0].trace_id;
        {
            let store = SqliteStore::open(&path).unwrap();
            store.write(&project(), batch.clone()).await.unwrap();
        }
        // A crash between the block's commit and the index flush leaves the block unindexed.
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute_batch("DELETE FROM trace_index_v1; UPDATE index_state_v1 SET indexed_through = 0;").unwrap();
        drop(raw);
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(
            store.trace_blocks(&project(), trace_id).await.unwrap(),
            vec![batch.trace_blocks[0].protobuf.clone()]
        );
        let raw = rusqlite::Connection::open(&path).unwrap();
        let after: i64 = raw.query_row("SELECT COUNT(*) FROM trace_index_v1", [], |r| r.get(0)).unwrap();
        assert_eq!(after, 1, "recovered entries are indexed exactly once");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blocks_are_stored_as_columns_and_plain_blocks_from_before_still_read() {
        use sessiontrace_spanblock::Format;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let mut block =
            crate::conformance::block(sessiontrace_model::ids::TraceId::random(), Some("0a0b0c0d".into()), "api", 0);
        let trace_id = block.traces[0].trace_id;
        // A real OTLP request of two spans, encoded by hand (field tag, length, payload).
        let field = |tag: u8, payload: &[u8]| [&[tag, payload.len() as u8][..], payload].concat();
        let span = |id: u8| {
            let times = [&[0x39][..], &1_000u64.to_le_bytes(), &[0x41], &2_000u64.to_le_bytes()].concat();
            [field(0x0a, &trace_id), field(0x12, &[id; 8]), field(0x2a, b"GET /"), times].concat()
        };
        let spans = [field(0x12, &span(1)), field(0x12, &span(2))].concat();
        block.protobuf = field(0x0a, &field(0x12, &spans));
        let batch = WriteBatch { trace_blocks: vec![block], ..Default::default() };
        let protobuf = batch.trace_blocks[0].protobuf.clone();
        let store = SqliteStore::open(&path).unwrap();
        store.write(&project(), batch).await.unwrap();
        store.close().await.unwrap();
        let raw = rusqlite::Connection::open(&path).unwrap();
        let data: Vec<u8> = raw.query_row("SELECT data FROM span_blocks_v1", [], |r| r.get(0)).unwrap();
        assert_eq!(sessiontrace_spanblock::format(&data), Some(Format::Columns));
        // A block as stores before the column format wrote it: zstd of the protobuf.
        let plain = zstd::bulk::compress(&protobuf, 1).unwrap();
        raw.execute("UPDATE span_blocks_v1 SET data = ?1", [&plain]).unwrap();
        drop(raw);
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.trace_blocks(&project(), trace_id).await.unwrap(), vec![protobuf]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn indexing_is_idempotent_and_close_finishes_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let block =
            crate::conformance::block(sessiontrace_model::ids::TraceId::random(), Some("0a0b0c0d".into()), "api", 0);
        let batch = WriteBatch { trace_blocks: vec![block], ..Default::default() };
        let store = SqliteStore::open(&path).unwrap();
        store.write(&project(), batch.clone()).await.unwrap();
        // The index entries are still held back by the writer; closing must write them.
        store.close().await.unwrap();
        let error = store.write(&project(), batch.clone()).await.unwrap_err();
        assert!(error.to_string().contains("the writer has stopped"), "{error}");
        let mut raw = rusqlite::Connection::open(&path).unwrap();
        let count = |raw: &rusqlite::Connection| -> i64 {
            raw.query_row("SELECT COUNT(*) FROM trace_index_v1", [], |r| r.get(0)).unwrap()
        };
        assert_eq!(count(&raw), 1, "close flushed the deferred index");
        // A second recovery, or a late flush of the same entries, adds nothing.
        assert_eq!(insert::recover_index(&mut raw).unwrap(), 0);
        let data: Vec<u8> = raw.query_row("SELECT index_data FROM span_blocks_v1", [], |r| r.get(0)).unwrap();
        let entries: Vec<_> = index_codec::decode(&data)
            .unwrap()
            .into_iter()
            .map(|entry| insert::IndexedEntry { block_id: 1, project_id: schema::DEFAULT_PROJECT_ID, entry })
            .collect();
        insert::insert_index_entries(&mut raw, &entries, 1, true).unwrap();
        assert_eq!(count(&raw), 1, "entries of an indexed block are not inserted again");
        let spans: i64 = raw.query_row("SELECT SUM(spans) FROM session_summary_v2", [], |r| r.get(0)).unwrap();
        assert_eq!(spans, 3, "session totals count the block once");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retention_deletes_what_is_older_than_the_cutoff() {
        use crate::conformance::{block, new_session};
        use sessiontrace_model::ids::TraceId;
        let now_ms = insert::now_ms;
        let log = |time_ms: i64, session_key: &str| LogRecord {
            time_unix_nano: time_ms * 1_000_000,
            trace_id: None,
            span_id: None,
            session_key: Some(session_key.to_string()),
            service: "api".into(),
            severity_number: 9,
            severity_text: "INFO".into(),
            body: format!("at {time_ms}"),
            attributes_json: "{}".into(),
            resource_json: "{}".into(),
        };
        let point = |time_ms: i64| MetricPoint {
            time_unix_nano: time_ms * 1_000_000,
            service: "api".into(),
            name: "requests".into(),
            kind: "sum".into(),
            unit: "1".into(),
            value: Some(1.0),
            attributes_json: "{}".into(),
            detail_json: "{}".into(),
        };
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();

        // Before the cutoff: a session stopped in 2023 with its trace, log and replay, and a metric point.
        let mut old = new_session("old");
        old.stopped_at_ms = Some(old.started_at_ms + 5_000);
        store.insert_session(&project(), &old).await.unwrap();
        let old_trace = TraceId::random();
        let old_key = old.short_id.to_hex();
        let old_batch = WriteBatch {
            trace_blocks: vec![block(old_trace, Some(old_key.clone()), "api", 0)],
            logs: vec![log(old.started_at_ms, &old_key)],
            metric_points: vec![point(old.started_at_ms)],
        };
        store.write(&project(), old_batch).await.unwrap();
        let chunk = ReplayChunk {
            session_id: old.id.clone(),
            seq: 0,
            event_count: 1,
            first_timestamp_ms: old.started_at_ms,
            last_timestamp_ms: old.started_at_ms,
            events_json: b"[{}]".to_vec(),
        };
        assert!(store.put_replay_chunk(&project(), chunk).await.unwrap());
        std::thread::sleep(std::time::Duration::from_millis(5));
        let cutoff = now_ms();
        std::thread::sleep(std::time::Duration::from_millis(5));

        // After it: a session started now, with the same kinds of data.
        let mut new = new_session("new");
        new.started_at_ms = now_ms();
        store.insert_session(&project(), &new).await.unwrap();
        let new_trace = TraceId::random();
        let new_key = new.short_id.to_hex();
        let new_block = block(new_trace, Some(new_key.clone()), "api", 0);
        let new_batch = WriteBatch {
            trace_blocks: vec![new_block.clone()],
            logs: vec![log(new.started_at_ms, &new_key)],
            metric_points: vec![point(new.started_at_ms)],
        };
        store.write(&project(), new_batch).await.unwrap();

        let expired = store.expire_before(cutoff).await.unwrap();
        let expected = Totals { spans: 3, span_blocks: 1, logs: 1, metric_points: 1, sessions: 1, replay_chunks: 1 };
        assert_eq!(expired, expected);
        assert!(store.trace_blocks(&project(), old_trace.0).await.unwrap().is_empty());
        assert_eq!(store.trace_blocks(&project(), new_trace.0).await.unwrap(), vec![new_block.protobuf]);
        assert_eq!(store.session(&project(), &old.id).await.unwrap(), None);
        assert!(store.replay_chunks(&project(), &old.id).await.unwrap().is_empty());
        let listed = store.list_sessions(&project(), &SessionFilter::default()).await.unwrap();
        assert_eq!(listed.sessions.iter().map(|(s, _)| s.id.clone()).collect::<Vec<_>>(), vec![new.id.clone()]);
        let stats = store.session_stats(&project(), &new).await.unwrap();
        assert_eq!((stats.traces, stats.spans, stats.logs), (1, 3, 1));
        let totals = store.totals(None).await.unwrap();
        assert_eq!(
            totals,
            Totals { spans: 3, span_blocks: 1, logs: 1, metric_points: 1, sessions: 1, replay_chunks: 0 }
        );
        assert_eq!(store.expire_before(cutoff).await.unwrap(), Totals::default(), "nothing older is left");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_checkpoint_thread_copies_the_wal_into_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = SqliteStore::open(&path).unwrap();
        let size = |name: &str| std::fs::metadata(dir.path().join(name)).map_or(0, |m| m.len());
        let empty = size("store.db");
        let mut ids = Vec::new();
        for _ in 0..200 {
            let id = sessiontrace_model::ids::TraceId::random();
            let block = crate::conformance::block(id, None, "api", 0);
            store.write(&project(), WriteBatch { trace_blocks: vec![block], ..Default::default() }).await.unwrap();
            ids.push(id.0);
        }
        // Commits never checkpoint (`wal_autocheckpoint=0`): only the checkpoint thread moves pages into the
        // database file, while the store stays open.
        let deadline = std::time::Instant::now() + checkpoint::INTERVAL * 20;
        while size("store.db") <= empty && std::time::Instant::now() < deadline {
            tokio::time::sleep(checkpoint::INTERVAL / 5).await;
        }
        assert!(
            size("store.db") > empty,
            "nothing was checkpointed: {} bytes, {} in the WAL",
            empty,
            size("store.db-wal")
        );
        for id in &ids {
            assert_eq!(store.trace_blocks(&project(), *id).await.unwrap().len(), 1);
        }
        // Closing runs a last TRUNCATE checkpoint: the WAL is empty and every block is in the file.
        store.close().await.unwrap();
        assert_eq!(size("store.db-wal"), 0, "the WAL is emptied at close");
        let raw = rusqlite::Connection::open(&path).unwrap();
        let blocks: i64 = raw.query_row("SELECT COUNT(*) FROM span_blocks_v1", [], |r| r.get(0)).unwrap();
        assert_eq!(blocks, 200);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blocks_written_after_retention_emptied_the_store_are_indexed() {
        use crate::conformance::block;
        use sessiontrace_model::ids::TraceId;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = SqliteStore::open(&path).unwrap();
        let batch = |id: TraceId| WriteBatch {
            trace_blocks: vec![block(id, Some("0a0b0c0d".into()), "api", 0)],
            ..Default::default()
        };
        for _ in 0..3 {
            store.write(&project(), batch(TraceId::random())).await.unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
        let expired = store.expire_before(insert::now_ms()).await.unwrap();
        assert_eq!(expired.span_blocks, 3, "everything expired: the table is empty");
        // The next block gets id 1 again; it must be indexed, now and after a restart.
        let fresh = TraceId::random();
        store.write(&project(), batch(fresh)).await.unwrap();
        assert_eq!(store.trace_blocks(&project(), fresh.0).await.unwrap().len(), 1);
        let found = store.search_traces(&project(), &TraceSearch::default()).await.unwrap();
        assert_eq!(found.iter().map(|t| t.trace_id).collect::<Vec<_>>(), vec![fresh.0]);
        store.close().await.unwrap();
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.trace_blocks(&project(), fresh.0).await.unwrap().len(), 1);
    }

    #[test]
    fn a_projects_span_totals_read_an_index_not_the_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        drop(SqliteStore::open(&path).unwrap());
        let raw = rusqlite::Connection::open(&path).unwrap();
        for sql in [
            "SELECT SUM(span_count) FROM span_blocks_v1 WHERE project_id = ?1",
            "SELECT COUNT(*) FROM span_blocks_v1 WHERE project_id = ?1",
        ] {
            let plan: String = raw.query_row(&format!("EXPLAIN QUERY PLAN {sql}"), [1], |row| row.get(3)).unwrap();
            assert!(plan.contains("COVERING INDEX span_blocks_v1_project"), "{sql}: {plan}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_new_file_gets_small_pages_and_an_older_file_keeps_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let page_size = |path: &Path| -> i64 {
            rusqlite::Connection::open(path).unwrap().query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap()
        };
        let new = dir.path().join("new.db");
        SqliteStore::open(&new).unwrap().close().await.unwrap();
        assert_eq!(page_size(&new), PAGE_SIZE);
        // A file made before (4 KiB pages, WAL) opens, keeps its pages and stores and reads.
        let old = dir.path().join("old.db");
        rusqlite::Connection::open(&old)
            .unwrap()
            .execute_batch("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE t (a); DROP TABLE t;")
            .unwrap();
        let store = SqliteStore::open(&old).unwrap();
        let batch = crate::conformance::sample_batch();
        store.write(&project(), batch.clone()).await.unwrap();
        let trace_id = batch.trace_blocks[0].traces[0].trace_id;
        assert_eq!(
            store.trace_blocks(&project(), trace_id).await.unwrap(),
            vec![batch.trace_blocks[0].protobuf.clone()]
        );
        store.close().await.unwrap();
        assert_eq!(page_size(&old), 4096);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn data_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let batch = crate::conformance::sample_batch();
        {
            let store = SqliteStore::open(&path).unwrap();
            store.write(&project(), batch.clone()).await.unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let trace_id = batch.trace_blocks[0].traces[0].trace_id;
        assert_eq!(
            store.trace_blocks(&project(), trace_id).await.unwrap(),
            vec![batch.trace_blocks[0].protobuf.clone()]
        );
    }
}
