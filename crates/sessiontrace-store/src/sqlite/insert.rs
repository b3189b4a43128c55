//! The single writer. It takes the first queued job, then every job already waiting (up to a bound), runs
//! them in one transaction, each inside its own savepoint so one failing job does not undo the others,
//! commits (fsync of the WAL, `synchronous=FULL`), and only then answers each job.
//!
//! The trace index is written later than the blocks. Random trace ids make every index insert touch a
//! different B-tree page, so indexing each request as it commits would write several pages per request.
//! Instead each block carries its own index entries (`index_data`, durable with the block), and the writer
//! inserts the entries of many blocks at once, sorted by trace id, at most every [`INDEX_FLUSH_INTERVAL`]
//! or [`INDEX_FLUSH_ENTRIES`] entries, recording in `index_state_v1` how far the tables are complete. A
//! due flush is written in slices of consecutive trace ids, one per writer round (so writes queued
//! meanwhile wait for a slice, not the whole flush), each slice touching only its share of the index's
//! pages. A read that needs the index asks for a flush first ([`Job::FlushIndex`]), and opening the store
//! indexes whatever blocks a crash left unindexed, so readers always see every acknowledged span.
//!
//! Projects: a job names its project; the writer turns the name into the small integer id of
//! `projects_v1` through a cache it owns (one hash lookup per job; a name seen for the first time is
//! registered in the job's transaction), and every row, index entry and summary carries that id.
//! Credential changes (projects, keys, users, login sessions) are jobs too: the writer owns the only
//! write connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, params};
use sessiontrace_model::records::{ReplayChunk, TraceIndexEntry, WriteBatch};
use sessiontrace_model::signals::{SessionInsights, SignalCounts};
use sessiontrace_model::{ApiKey, LoginSession, Project, ProjectInfo, Session, User};
use tokio::sync::oneshot;

use super::index_codec;
use crate::StoreError;

/// Jobs committed together at most; bounds the latency of one commit.
const MAX_JOBS_PER_COMMIT: usize = 512;
/// Longest time index entries wait before they are written to the index tables.
pub(crate) const INDEX_FLUSH_INTERVAL: Duration = Duration::from_secs(2);
/// The longest wait between two tries of a failing index write.
const MAX_INDEX_BACKOFF: Duration = Duration::from_secs(5);
/// Most index entries held before they are written.
pub(crate) const INDEX_FLUSH_ENTRIES: usize = 50_000;
/// Most index entries a due flush writes before the writer commits the jobs queued meanwhile: a whole flush
/// can take a hundred milliseconds once the index is large, and every write queued behind it would wait
/// that long. A slice is a run of consecutive trace ids of the whole flush, so its inserts share the
/// index's pages as the whole flush's do: sliced by block instead (each slice a sample of the whole id
/// space), every entry dirtied a page of its own and the writer spent ~2.5× the CPU on the index.
const INDEX_SLICE_ENTRIES: usize = 2048;

/// A block's two blobs as stored: the spans ([`crate::blocks::encode_block`]) and its index entries ([`index_codec`]).
pub(crate) struct StoredBlock {
    pub data: Vec<u8>,
    pub index_data: Vec<u8>,
}

/// One unit of work for the writer.
pub(crate) enum Job {
    Write {
        project: Project,
        batch: WriteBatch,
        /// Each block's stored data and index data, made before the job is queued (off the writer).
        stored: Vec<StoredBlock>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    InsertSession {
        project: Project,
        session: Session,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    UpdateSession {
        project: Project,
        session: Session,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    PutReplayChunk {
        project: Project,
        chunk: ReplayChunk,
        compressed: Vec<u8>,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    /// Replaces what was derived from a session's replay.
    PutInsights {
        project: Project,
        session_id: String,
        insights: Box<SessionInsights>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// A change of the credentials; the answer is false only for a key revocation of an unknown id.
    Credentials {
        change: CredentialChange,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    /// Write every pending index entry now (a read needs the index complete).
    FlushIndex {
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// The blocks of one trace whose index entries are still pending, as `(project_id, block_id)`: how a
    /// read by trace id finds the last seconds' traces while the index cannot be written (a full disk).
    PendingBlocks {
        trace_id: [u8; 16],
        reply: oneshot::Sender<Result<Vec<(i64, i64)>, StoreError>>,
    },
    /// Delete one slice of what is older than the cutoff (retention); the answer says whether more is left.
    Expire {
        cutoff_ms: i64,
        reply: oneshot::Sender<Result<(crate::Totals, bool), StoreError>>,
    },
    /// The last job: commit what was queued before it, flush the index, and end the thread.
    Close,
}

/// The credential changes the writer makes (see [`crate::Store`] for what each means).
pub(crate) enum CredentialChange {
    CreateProject(ProjectInfo),
    PutKey(ApiKey),
    RevokeKey { id: String, at_ms: i64 },
    TouchKeys(Vec<(String, i64)>),
    PutUser(User),
    PutLoginSession(LoginSession),
    TouchLoginSession { id_hash: [u8; 32], last_seen_ms: i64 },
    DeleteLoginSession { id_hash: [u8; 32] },
}

/// One trace index entry of a committed block, waiting for the index tables.
#[derive(Debug, Clone)]
pub(crate) struct IndexedEntry {
    pub(crate) block_id: i64,
    pub(crate) project_id: i64,
    pub(crate) entry: TraceIndexEntry,
}

impl IndexedEntry {
    /// The order entries are written in, and a flush's progress is recorded by: a block holds one entry
    /// per trace, so this is unique.
    pub(crate) fn key(&self) -> ([u8; 16], i64) {
        (self.entry.trace_id, self.block_id)
    }
}

/// A flush under way: every unindexed entry of the blocks up to `through`, in [`IndexedEntry::key`]
/// order, of which the first `written` are in the index tables.
struct Flushing {
    through: i64,
    entries: Vec<IndexedEntry>,
    written: usize,
}

impl Flushing {
    fn unwritten(&self) -> &[IndexedEntry] {
        &self.entries[self.written..]
    }
}

/// Project names to `projects_v1` ids, as the writer knows them. A name not yet known is registered
/// (without `created_ms`: written to, never created) in the open transaction; if that transaction fails
/// the cache is cleared, so it never holds an id that was not committed.
#[derive(Default)]
pub(crate) struct ProjectIds {
    ids: std::collections::HashMap<String, i64>,
}

impl ProjectIds {
    pub(crate) fn get_or_register(&mut self, connection: &Connection, project: &Project) -> rusqlite::Result<i64> {
        if let Some(&id) = self.ids.get(project.as_str()) {
            return Ok(id);
        }
        connection
            .prepare_cached("INSERT OR IGNORE INTO projects_v1 (name, created_ms) VALUES (?1, NULL)")?
            .execute([project.as_str()])?;
        let id: i64 = connection
            .prepare_cached("SELECT id FROM projects_v1 WHERE name = ?1")?
            .query_row([project.as_str()], |row| row.get(0))?;
        self.ids.insert(project.as_str().to_string(), id);
        Ok(id)
    }

    fn clear(&mut self) {
        self.ids.clear();
    }
}

/// A job's answer, held until the commit.
enum Done {
    Unit(oneshot::Sender<Result<(), StoreError>>, Result<(), StoreError>),
    Flag(oneshot::Sender<Result<bool, StoreError>>, Result<bool, StoreError>),
}

pub(crate) struct Writer {
    connection: Connection,
    /// Index entries of committed blocks not yet in the index tables nor in `flushing`, in block order.
    pending: Vec<IndexedEntry>,
    pending_since: Option<Instant>,
    /// A due flush being written a slice per writer round (see [`INDEX_SLICE_ENTRIES`]).
    flushing: Option<Flushing>,
    /// After a failed index write (a full disk): when to try again, and the back-off that set it (250 ms,
    /// doubling up to 5 s), so that a failing flush is neither retried in a busy loop nor logged per try.
    index_retry: Option<(Instant, Duration)>,
    /// `pending.len()`, for readers deciding whether to ask for a flush.
    pending_count: Arc<AtomicUsize>,
    projects: ProjectIds,
}

/// Puts the calling thread under `SCHED_BATCH`: the same share of the CPU as any thread, but a wakeup does
/// not preempt the thread running. When the writer shares a core with the request handlers, a job sent
/// to it no longer switches that core to the writer at once, one job per commit (and per fsync): the
/// handlers go on reading requests, and the writer commits what queued meanwhile. On an idle core it runs
/// at once as before.
pub(crate) fn yield_on_wakeup() {
    use thread_priority::{NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityOsValue, ThreadSchedulePolicy};
    let batch = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch);
    let nice_zero = ThreadPriority::Os(ThreadPriorityOsValue::default());
    if let Err(error) =
        thread_priority::set_thread_priority_and_policy(thread_priority::thread_native_id(), nice_zero, batch)
    {
        tracing::debug!(?error, "SCHED_BATCH not available; the thread keeps its policy");
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The values of a `sessions_v2` row, `?1`..`?12` (the project id last).
pub(crate) fn session_params(session: &Session, project_id: i64) -> [rusqlite::types::Value; 12] {
    use rusqlite::types::Value as V;
    let text = |s: String| V::Text(s);
    let optional_int = |v: Option<i64>| v.map_or(V::Null, V::Integer);
    [
        text(session.id.clone()),
        text(session.short_id.to_hex()),
        text(session.kind.as_str().to_string()),
        session.name.clone().map_or(V::Null, V::Text),
        text(session.user.to_string()),
        text(session.attributes.to_string()),
        text(serde_json::to_string(&session.tags).unwrap_or_else(|_| "[]".into())),
        text(serde_json::to_string(&session.capture).unwrap_or_else(|_| "{}".into())),
        V::Integer(session.started_at_ms),
        optional_int(session.stopped_at_ms),
        optional_int(session.saved_at_ms),
        V::Integer(project_id),
    ]
}

impl Writer {
    pub(crate) fn new(connection: Connection, pending_count: Arc<AtomicUsize>) -> Self {
        Writer {
            connection,
            pending: Vec::new(),
            pending_since: None,
            flushing: None,
            index_retry: None,
            pending_count,
            projects: ProjectIds::default(),
        }
    }

    /// Whether the pending index entries are due to be written: enough of them or old enough, and not
    /// waiting out the back-off of a failed write.
    fn index_due(&self) -> bool {
        let due = self.pending.len() >= INDEX_FLUSH_ENTRIES
            || self.pending_since.is_some_and(|since| since.elapsed() >= INDEX_FLUSH_INTERVAL);
        due && self.retry_allowed()
    }

    /// Whether an index write may be tried now: no failed one is waiting out its back-off.
    fn retry_allowed(&self) -> bool {
        self.index_retry.is_none_or(|(at, _)| Instant::now() >= at)
    }

    pub(crate) fn run(mut self, jobs: Receiver<Box<Job>>) {
        yield_on_wakeup();
        loop {
            let wait = match self.index_retry {
                Some((at, _)) => at.saturating_duration_since(Instant::now()),
                None if self.flushing.is_some() => Duration::ZERO,
                None => self
                    .pending_since
                    .map_or(Duration::from_secs(3600), |since| INDEX_FLUSH_INTERVAL.saturating_sub(since.elapsed())),
            };
            let first = match jobs.recv_timeout(wait) {
                Ok(job) => *job,
                // A failed flush is logged and its entries kept for the next one.
                Err(RecvTimeoutError::Timeout) => {
                    self.flush_step();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.flush_index();
                    return;
                }
            };
            let mut flush_replies = Vec::new();
            let mut pending_lookups = Vec::new();
            let mut expire_replies = Vec::new();
            let mut batch = Vec::new();
            let mut closing = false;
            let mut next = Some(first);
            while let Some(job) = next.take() {
                match job {
                    Job::FlushIndex { reply } => flush_replies.push(reply),
                    Job::PendingBlocks { trace_id, reply } => pending_lookups.push((trace_id, reply)),
                    Job::Expire { cutoff_ms, reply } => expire_replies.push((cutoff_ms, reply)),
                    Job::Close => closing = true,
                    job => batch.push(job),
                }
                if batch.len() < MAX_JOBS_PER_COMMIT && !closing {
                    next = jobs.try_recv().ok().map(|job| *job);
                }
            }
            if !batch.is_empty() {
                self.commit(batch);
            }
            if flush_replies.is_empty() {
                self.flush_step();
            } else {
                let outcome = self.flush_index();
                for reply in flush_replies {
                    let _ = reply.send(outcome.clone());
                }
            }
            for (trace_id, reply) in pending_lookups {
                let flushing = self.flushing.as_ref().map_or(&[][..], Flushing::unwritten);
                let blocks = flushing.iter().chain(&self.pending).filter(|indexed| indexed.entry.trace_id == trace_id);
                let _ = reply.send(Ok(blocks.map(|indexed| (indexed.project_id, indexed.block_id)).collect()));
            }
            for (cutoff_ms, reply) in expire_replies {
                let _ = reply.send(self.expire(cutoff_ms));
            }
            if closing {
                // Jobs sent after the close are dropped with the receiver: their callers get an error.
                let outcome = self.flush_index();
                tracing::debug!(index_flushed = outcome.is_ok(), "sqlite writer stopped");
                return;
            }
        }
    }

    /// One retention slice in its own transaction, after the pending index is written (so no index entry
    /// of a deleted block arrives later).
    fn expire(&mut self, cutoff_ms: i64) -> Result<(crate::Totals, bool), StoreError> {
        self.flush_index()?;
        let transaction = self.connection.transaction()?;
        let outcome = super::retention::expire_slice(&transaction, cutoff_ms)?;
        transaction.commit()?;
        Ok(outcome)
    }

    /// Writes every pending index entry now: what is left of a flush under way, then the rest.
    pub(crate) fn flush_index(&mut self) -> Result<(), StoreError> {
        loop {
            if self.flushing.is_none() && !self.start_flush() {
                return Ok(());
            }
            self.write_slice(usize::MAX)?;
        }
    }

    /// Goes on with a due flush: one slice of the entries that were pending when it became due.
    fn flush_step(&mut self) {
        if self.flushing.is_none() && (!self.index_due() || !self.start_flush()) {
            return;
        }
        if self.retry_allowed() {
            let _ = self.write_slice(INDEX_SLICE_ENTRIES);
        }
    }

    /// Makes every pending entry a flush, sorted for writing; false if nothing is pending.
    fn start_flush(&mut self) -> bool {
        let Some(through) = self.pending.last().map(|indexed| indexed.block_id) else { return false };
        let mut entries = std::mem::take(&mut self.pending);
        entries.sort_unstable_by_key(IndexedEntry::key);
        self.flushing = Some(Flushing { through, entries, written: 0 });
        // What arrives from now on is due one interval after it arrives.
        self.pending_since = None;
        true
    }

    /// Writes the next `limit` entries of the flush under way (all that are left, at most), and records how
    /// far it got in the same transaction.
    fn write_slice(&mut self, limit: usize) -> Result<(), StoreError> {
        let Some(flushing) = self.flushing.take() else { return Ok(()) };
        let end = flushing.written.saturating_add(limit).min(flushing.entries.len());
        let slice = &flushing.entries[flushing.written..end];
        let complete = end == flushing.entries.len();
        let through = flushing.through;
        let outcome = self.without_sync(|connection| insert_index_entries(connection, slice, through, complete));
        let written = slice.len();
        match &outcome {
            Ok(()) => {
                if self.index_retry.take().is_some() {
                    tracing::info!(entries = written, "the trace index is written again");
                }
                if !complete {
                    self.flushing = Some(Flushing { written: end, ..flushing });
                }
            }
            Err(error) => {
                let backoff =
                    self.index_retry.map_or(Duration::from_millis(250), |(_, last)| (last * 2).min(MAX_INDEX_BACKOFF));
                if self.index_retry.is_none() {
                    tracing::error!(%error, entries = written, "writing the trace index failed; will retry with back-off");
                } else {
                    tracing::debug!(%error, entries = written, ?backoff, "writing the trace index failed again");
                }
                self.index_retry = Some((Instant::now() + backoff, backoff));
                self.flushing = Some(flushing);
            }
        }
        self.count_pending();
        outcome
    }

    /// Publishes how many entries are not in the index tables yet, for readers.
    fn count_pending(&self) {
        let unwritten = self.flushing.as_ref().map_or(0, |flushing| flushing.unwritten().len());
        self.pending_count.store(self.pending.len() + unwritten, Ordering::Release);
    }

    /// Runs `work` with `synchronous=NORMAL`: its commit writes the WAL without waiting for the disk. Only
    /// for what need not be durable on its own: the index (rebuilt from the blocks after a crash, see
    /// [`recover_index`]). Its frames become durable with the next commit's sync, which covers the whole
    /// WAL, or with the checkpoint's, which syncs the WAL before copying it.
    fn without_sync<T>(&mut self, work: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        self.connection.pragma_update(None, "synchronous", "NORMAL")?;
        let outcome = work(&mut self.connection);
        // Acknowledged writes must not run without the sync: if this fails, the writer stops here.
        self.connection
            .pragma_update(None, "synchronous", "FULL")
            .expect("the writer could not turn synchronous=FULL back on");
        outcome.map_err(StoreError::from)
    }

    fn commit(&mut self, jobs: Vec<Job>) {
        let mut done = Vec::with_capacity(jobs.len());
        let mut indexed: Vec<IndexedEntry> = Vec::new();
        let projects = &mut self.projects;
        let outcome = (|| -> Result<(), rusqlite::Error> {
            let transaction = self.connection.transaction()?;
            for job in jobs {
                done.push(run_job(&transaction, projects, job, &mut indexed));
            }
            transaction.commit()
        })();
        let commit_error = outcome.err().map(StoreError::from);
        if let Some(error) = &commit_error {
            self.projects.clear();
            tracing::error!(%error, jobs = done.len(), "sqlite commit failed");
        } else if !indexed.is_empty() {
            self.pending_since.get_or_insert_with(Instant::now);
            self.pending.extend(indexed);
            self.count_pending();
        }
        for answer in done {
            // A full disk stays retryable (503); anything else is an internal error.
            let failed = || match &commit_error {
                Some(StoreError::Unavailable(why)) => StoreError::Unavailable(format!("commit failed: {why}")),
                other => StoreError::Internal(format!(
                    "commit failed: {}",
                    other.as_ref().map(|e| e.to_string()).unwrap_or_default()
                )),
            };
            match answer {
                Done::Unit(reply, result) => {
                    let _ = reply.send(if commit_error.is_some() { Err(failed()) } else { result });
                }
                Done::Flag(reply, result) => {
                    let _ = reply.send(if commit_error.is_some() { Err(failed()) } else { result });
                }
            }
        }
    }
}

/// Runs one job inside a savepoint of the open transaction; a write adds its blocks' index entries to
/// `indexed` (kept only if the job and the transaction succeed). The job's project id is resolved before
/// the savepoint, so a failing job never rolls back an id the cache already holds.
fn run_job(connection: &Connection, projects: &mut ProjectIds, job: Job, indexed: &mut Vec<IndexedEntry>) -> Done {
    fn in_savepoint<T>(connection: &Connection, work: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        connection.execute_batch("SAVEPOINT job")?;
        match work() {
            Ok(value) => {
                connection.execute_batch("RELEASE job")?;
                Ok(value)
            }
            Err(error) => {
                connection.execute_batch("ROLLBACK TO job; RELEASE job")?;
                Err(error)
            }
        }
    }
    // A job's project id is resolved before its savepoint (see `ProjectIds`).
    match job {
        Job::Write { project, batch, stored, reply } => {
            let project_id = match projects.get_or_register(connection, &project) {
                Ok(id) => id,
                Err(error) => return Done::Unit(reply, Err(error.into())),
            };
            let mut entries = Vec::new();
            let result =
                in_savepoint(connection, || write_batch(connection, project_id, &batch, &stored, &mut entries));
            if result.is_ok() {
                indexed.extend(entries);
            }
            Done::Unit(reply, result)
        }
        // Taken out of the batch by `run`; answered there after the flush.
        Job::FlushIndex { reply } => Done::Unit(reply, Ok(())),
        Job::Expire { .. } | Job::Close | Job::PendingBlocks { .. } => {
            unreachable!("Writer::run takes retention, close and pending-block jobs out of the batch")
        }
        Job::InsertSession { project, session, reply } => {
            let project_id = match projects.get_or_register(connection, &project) {
                Ok(id) => id,
                Err(error) => return Done::Unit(reply, Err(error.into())),
            };
            let result = in_savepoint(connection, || {
                let mut statement = connection.prepare_cached(
                    "INSERT INTO sessions_v2 (id, short_id, kind, name, user_json, attributes_json, tags_json,
                     capture_json, started_ms, stopped_ms, saved_ms, project_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )?;
                statement.execute(rusqlite::params_from_iter(session_params(&session, project_id)))?;
                Ok(())
            });
            Done::Unit(reply, result)
        }
        Job::UpdateSession { project, session, reply } => {
            let project_id = match projects.get_or_register(connection, &project) {
                Ok(id) => id,
                Err(error) => return Done::Unit(reply, Err(error.into())),
            };
            let result = in_savepoint(connection, || {
                let mut statement = connection.prepare_cached(
                    "UPDATE sessions_v2 SET short_id = ?2, kind = ?3, name = ?4, user_json = ?5, attributes_json = ?6,
                     tags_json = ?7, capture_json = ?8, started_ms = ?9, stopped_ms = ?10, saved_ms = ?11
                     WHERE project_id = ?12 AND id = ?1",
                )?;
                statement.execute(rusqlite::params_from_iter(session_params(&session, project_id)))?;
                Ok(())
            });
            Done::Unit(reply, result)
        }
        Job::Credentials { change, reply } => {
            let project_id = match &change {
                CredentialChange::PutKey(key) => match projects.get_or_register(connection, &key.project) {
                    Ok(id) => id,
                    Err(error) => return Done::Flag(reply, Err(error.into())),
                },
                _ => 0,
            };
            Done::Flag(reply, in_savepoint(connection, || change_credentials(connection, project_id, change)))
        }
        Job::PutInsights { project, session_id, insights, reply } => {
            let project_id = match projects.get_or_register(connection, &project) {
                Ok(id) => id,
                Err(error) => return Done::Unit(reply, Err(error.into())),
            };
            let result = in_savepoint(connection, || put_insights(connection, project_id, &session_id, &insights));
            Done::Unit(reply, result)
        }
        Job::PutReplayChunk { project, chunk, compressed, reply } => {
            let project_id = match projects.get_or_register(connection, &project) {
                Ok(id) => id,
                Err(error) => return Done::Flag(reply, Err(error.into())),
            };
            let result = in_savepoint(connection, || {
                let mut statement = connection.prepare_cached(
                    "INSERT OR IGNORE INTO replay_chunks_v2 (project_id, session_id, seq, event_count, first_ms,
                     last_ms, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                let inserted = statement.execute(params![
                    project_id,
                    chunk.session_id,
                    chunk.seq as i64,
                    chunk.event_count,
                    chunk.first_timestamp_ms,
                    chunk.last_timestamp_ms,
                    compressed
                ])?;
                Ok(inserted == 1)
            });
            Done::Flag(reply, result)
        }
    }
}

/// One credential change inside the job's savepoint; `project_id` is the key's for [`CredentialChange::PutKey`].
fn change_credentials(connection: &Connection, project_id: i64, change: CredentialChange) -> Result<bool, StoreError> {
    match change {
        CredentialChange::CreateProject(info) => {
            // A name only registered by data written to it becomes created; a created one is a conflict.
            let changed = connection
                .prepare_cached(
                    "INSERT INTO projects_v1 (name, created_ms) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET created_ms = excluded.created_ms WHERE created_ms IS NULL",
                )?
                .execute(params![info.project.as_str(), info.created_at_ms])?;
            if changed == 0 {
                return Err(StoreError::Conflict);
            }
        }
        CredentialChange::PutKey(key) => {
            let origins = serde_json::to_string(&key.allowed_origins).unwrap_or_else(|_| "[]".into());
            connection
                .prepare_cached(
                    "INSERT INTO api_keys_v1 (id, hash, project_id, kind, name, prefix, allowed_origins_json,
                     bytes_per_second, requests_per_second, created_ms, revoked_ms, last_used_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                     ON CONFLICT (id) DO UPDATE SET hash = excluded.hash, project_id = excluded.project_id,
                       kind = excluded.kind, name = excluded.name, prefix = excluded.prefix,
                       allowed_origins_json = excluded.allowed_origins_json,
                       bytes_per_second = excluded.bytes_per_second, requests_per_second = excluded.requests_per_second,
                       created_ms = excluded.created_ms, revoked_ms = excluded.revoked_ms,
                       last_used_ms = excluded.last_used_ms",
                )?
                .execute(params![
                    key.id,
                    &key.hash[..],
                    project_id,
                    key.kind.as_str(),
                    key.name,
                    key.prefix,
                    origins,
                    key.bytes_per_second.map(|n| n.min(i64::MAX as u64) as i64),
                    key.requests_per_second.map(|n| n.min(i64::MAX as u64) as i64),
                    key.created_at_ms,
                    key.revoked_at_ms,
                    key.last_used_ms
                ])?;
        }
        CredentialChange::RevokeKey { id, at_ms } => {
            let changed = connection
                .prepare_cached("UPDATE api_keys_v1 SET revoked_ms = COALESCE(revoked_ms, ?2) WHERE id = ?1")?
                .execute(params![id, at_ms])?;
            return Ok(changed > 0);
        }
        CredentialChange::TouchKeys(used) => {
            let mut statement = connection.prepare_cached(
                "UPDATE api_keys_v1 SET last_used_ms = MAX(COALESCE(last_used_ms, ?2), ?2) WHERE id = ?1",
            )?;
            for (id, at_ms) in used {
                statement.execute(params![id, at_ms])?;
            }
        }
        CredentialChange::PutUser(user) => {
            connection
                .prepare_cached(
                    "INSERT OR REPLACE INTO users_v1 (name, role, password_hash, created_ms, disabled)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    user.name,
                    user.role.as_str(),
                    user.password_hash,
                    user.created_at_ms,
                    user.disabled
                ])?;
        }
        CredentialChange::PutLoginSession(session) => {
            connection
                .prepare_cached(
                    "INSERT OR REPLACE INTO login_sessions_v1 (id_hash, user_name, csrf_token, created_ms, last_seen_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    &session.id_hash[..],
                    session.user,
                    session.csrf_token,
                    session.created_at_ms,
                    session.last_seen_ms
                ])?;
        }
        CredentialChange::TouchLoginSession { id_hash, last_seen_ms } => {
            connection
                .prepare_cached("UPDATE login_sessions_v1 SET last_seen_ms = MAX(last_seen_ms, ?2) WHERE id_hash = ?1")?
                .execute(params![&id_hash[..], last_seen_ms])?;
        }
        CredentialChange::DeleteLoginSession { id_hash } => {
            connection.prepare_cached("DELETE FROM login_sessions_v1 WHERE id_hash = ?1")?.execute([&id_hash[..]])?;
        }
    }
    Ok(true)
}

fn write_batch(
    connection: &Connection,
    project_id: i64,
    batch: &WriteBatch,
    stored: &[StoredBlock],
    indexed: &mut Vec<IndexedEntry>,
) -> Result<(), StoreError> {
    let received_ms = now_ms();
    let mut insert_block = connection.prepare_cached(
        "INSERT INTO span_blocks_v1 (received_ms, span_count, data, index_data, project_id)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (block, stored) in batch.trace_blocks.iter().zip(stored) {
        insert_block.execute(params![received_ms, block.span_count, stored.data, stored.index_data, project_id])?;
        let block_id = connection.last_insert_rowid();
        indexed.extend(block.traces.iter().map(|trace| IndexedEntry { block_id, project_id, entry: trace.clone() }));
    }
    if !batch.logs.is_empty() {
        let mut insert_log = connection.prepare_cached(
            "INSERT INTO logs_v1 (time_ns, trace_id, span_id, session_key, service, severity_number, severity_text,
             body, attributes_json, resource_json, project_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        for log in &batch.logs {
            insert_log.execute(params![
                log.time_unix_nano,
                log.trace_id.as_ref().map(|id| &id[..]),
                log.span_id.as_ref().map(|id| &id[..]),
                log.session_key,
                log.service,
                log.severity_number,
                log.severity_text,
                log.body,
                log.attributes_json,
                log.resource_json,
                project_id
            ])?;
        }
    }
    if !batch.metric_points.is_empty() {
        let mut insert_point = connection.prepare_cached(
            "INSERT INTO metric_points_v1 (time_ns, service, name, kind, unit, value, attributes_json, detail_json,
             project_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for point in &batch.metric_points {
            insert_point.execute(params![
                point.time_unix_nano,
                point.service,
                point.name,
                point.kind,
                point.unit,
                point.value,
                point.attributes_json,
                point.detail_json,
                project_id
            ])?;
        }
    }
    Ok(())
}

/// What `index_state_v1` says the index tables hold.
struct IndexState {
    /// Every entry of the blocks up to here.
    indexed_through: i64,
    /// A flush under way: of the blocks up to the first, every entry up to the key.
    flushed: Option<(i64, ([u8; 16], i64))>,
}

impl IndexState {
    fn read(connection: &Connection) -> rusqlite::Result<Self> {
        connection.query_row(
            "SELECT indexed_through, flush_through, flushed_trace, flushed_block FROM index_state_v1 WHERE id = 0",
            [],
            |row| {
                let trace: Option<Vec<u8>> = row.get(2)?;
                let key = trace.and_then(|t| <[u8; 16]>::try_from(t).ok()).zip(row.get::<_, Option<i64>>(3)?);
                Ok(IndexState { indexed_through: row.get(0)?, flushed: row.get::<_, Option<i64>>(1)?.zip(key) })
            },
        )
    }

    fn holds(&self, indexed: &IndexedEntry) -> bool {
        indexed.block_id <= self.indexed_through
            || self.flushed.is_some_and(|(through, key)| indexed.block_id <= through && indexed.key() <= key)
    }
}

/// Inserts index entries (in [`IndexedEntry::key`] order, for page locality) and records how far the index
/// is complete, in one transaction. `entries` are all or part of a flush of every unindexed entry of the
/// blocks up to `through`: when `complete`, the last part, which moves `indexed_through` to `through`;
/// otherwise the flush's progress is recorded (`flush_through` and the last key written), and [`recover_index`]
/// goes on from there after a crash.
///
/// Idempotent: an entry the recorded state says is written already is skipped, read inside this
/// transaction, so a flush and a recovery that race (a writer still flushing while the file is opened
/// again), or a recovery after a crash in the middle of a flush, never index one entry twice.
pub(crate) fn insert_index_entries(
    connection: &mut Connection,
    entries: &[IndexedEntry],
    through: i64,
    complete: bool,
) -> Result<(), rusqlite::Error> {
    let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let state = IndexState::read(&transaction)?;
        let fresh: Vec<&IndexedEntry> = entries.iter().filter(|indexed| !state.holds(indexed)).collect();
        if complete {
            transaction.execute(
                "UPDATE index_state_v1 SET indexed_through = MAX(indexed_through, ?1), flush_through = NULL,
                 flushed_trace = NULL, flushed_block = NULL WHERE id = 0",
                [through],
            )?;
        } else if let Some(last) = entries.last() {
            transaction.execute(
                "UPDATE index_state_v1 SET flush_through = ?1, flushed_trace = ?2, flushed_block = ?3 WHERE id = 0",
                params![through, &last.entry.trace_id[..], last.block_id],
            )?;
        }
        let entries = fresh;
        let mut insert_index = transaction.prepare_cached(
            "INSERT INTO trace_index_v1 (trace_id, block_id, session_key, services, start_ns, end_ns, span_count,
             error_count, root_name, root_service, project_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        for &IndexedEntry { block_id, project_id, entry: trace } in &entries {
            let (root_name, root_service) = trace.root.as_ref().map(|(name, service)| (name, service)).unzip();
            insert_index.execute(params![
                &trace.trace_id[..],
                block_id,
                trace.session_key,
                trace.services.join(","),
                trace.start_unix_nano,
                trace.end_unix_nano,
                trace.span_count,
                trace.error_count,
                root_name,
                root_service,
                project_id
            ])?;
        }
        // Session totals and services, summed in memory first: one upsert per session of the batch.
        let mut sessions: std::collections::HashMap<(i64, &str), (u64, u64, Vec<&str>)> =
            std::collections::HashMap::new();
        for indexed in entries.iter().copied() {
            let trace = &indexed.entry;
            let Some(key) = trace.session_key.as_deref() else { continue };
            let summary = sessions.entry((indexed.project_id, key)).or_default();
            summary.0 += u64::from(trace.span_count);
            summary.1 += u64::from(trace.error_count);
            for service in &trace.services {
                if !summary.2.contains(&service.as_str()) {
                    summary.2.push(service);
                }
            }
        }
        let mut upsert_summary = transaction.prepare_cached(
            "INSERT INTO session_summary_v2 (project_id, session_key, spans, errors) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (project_id, session_key)
             DO UPDATE SET spans = spans + excluded.spans, errors = errors + excluded.errors",
        )?;
        let mut insert_service = transaction.prepare_cached(
            "INSERT OR IGNORE INTO session_services_v2 (project_id, session_key, service) VALUES (?1, ?2, ?3)",
        )?;
        for ((project_id, key), (spans, errors, services)) in &sessions {
            upsert_summary.execute(params![project_id, key, spans, errors])?;
            for service in services {
                insert_service.execute(params![project_id, key, service])?;
            }
        }
    }
    transaction.commit()
}

/// Indexes the blocks a crash left unindexed (those after `index_state_v1.indexed_through`); returns how
/// many entries those blocks hold.
pub(crate) fn recover_index(connection: &mut Connection) -> Result<usize, StoreError> {
    let through: i64 =
        connection.query_row("SELECT indexed_through FROM index_state_v1 WHERE id = 0", [], |row| row.get(0))?;
    let mut entries: Vec<IndexedEntry> = Vec::new();
    {
        let mut statement =
            connection.prepare("SELECT id, project_id, index_data FROM span_blocks_v1 WHERE id > ?1 ORDER BY id")?;
        let mut rows = statement.query([through])?;
        while let Some(row) = rows.next()? {
            let block_id: i64 = row.get(0)?;
            let project_id: i64 = row.get(1)?;
            let data: Vec<u8> = row.get(2)?;
            let decoded = index_codec::decode(&data)
                .ok_or_else(|| StoreError::Internal(format!("block {block_id} has an unreadable index")))?;
            entries.extend(decoded.into_iter().map(|entry| IndexedEntry { block_id, project_id, entry }));
        }
    }
    entries.sort_unstable_by_key(IndexedEntry::key);
    let count = entries.len();
    if let Some(through) = entries.iter().map(|indexed| indexed.block_id).max() {
        // Entries a flush cut short by the crash wrote already are skipped (see `insert_index_entries`).
        insert_index_entries(connection, &entries, through, true)?;
    }
    Ok(count)
}

/// Replaces a session's insights row and facts.
fn put_insights(
    connection: &Connection,
    project_id: i64,
    session_id: &str,
    insights: &SessionInsights,
) -> Result<(), StoreError> {
    let counts = SignalCounts::of(&insights.signals);
    let json = serde_json::to_string(insights).map_err(|e| StoreError::Internal(e.to_string()))?;
    connection
        .prepare_cached(
            "INSERT OR REPLACE INTO session_insights_v1 (project_id, session_id, rage, dead, error, console_errors,
             failed_requests, insights_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            project_id,
            session_id,
            counts.rage,
            counts.dead,
            counts.error,
            insights.console_errors,
            !insights.failed_requests.is_empty(),
            json
        ])?;
    connection
        .prepare_cached("DELETE FROM session_facts_v1 WHERE project_id = ?1 AND session_id = ?2")?
        .execute(params![project_id, session_id])?;
    let mut insert = connection.prepare_cached(
        "INSERT INTO session_facts_v1 (project_id, session_id, kind, value, detail, status)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for url in &insights.urls {
        insert.execute(params![project_id, session_id, "url", url, "", 0])?;
    }
    for clicked in &insights.clicked {
        insert.execute(params![project_id, session_id, "click", clicked.selector, clicked.text, 0])?;
    }
    for failed in &insights.failed_requests {
        insert.execute(params![project_id, session_id, "failed", failed.path, failed.method, failed.status])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(blocks: std::ops::Range<i64>, per_block: u8) -> Vec<IndexedEntry> {
        let entry = |block_id: i64, n: u8| {
            let mut trace_id = [n; 16];
            trace_id[..8].copy_from_slice(&block_id.to_be_bytes());
            trace_id.reverse();
            let entry = TraceIndexEntry {
                trace_id,
                session_key: Some("0a0b0c0d".into()),
                services: vec!["api".into()],
                start_unix_nano: block_id,
                end_unix_nano: block_id + 1,
                span_count: 1,
                error_count: 0,
                root: None,
            };
            IndexedEntry { block_id, project_id: crate::sqlite::schema::DEFAULT_PROJECT_ID, entry }
        };
        blocks.flat_map(|block| (0..per_block).map(move |n| entry(block, n))).collect()
    }

    fn indexed(connection: &Connection) -> (i64, i64) {
        let rows = connection.query_row("SELECT COUNT(*) FROM trace_index_v1", [], |r| r.get(0)).unwrap();
        let through = connection.query_row("SELECT indexed_through FROM index_state_v1", [], |r| r.get(0)).unwrap();
        (rows, through)
    }

    /// A writer on a fresh store whose `span_blocks_v1` holds `blocks` (empty data) carrying `entries`.
    fn writer_over_blocks(path: &std::path::Path, blocks: std::ops::Range<i64>, per_block: u8) -> Writer {
        drop(crate::sqlite::SqliteStore::open(path).unwrap());
        let connection = Connection::open(path).unwrap();
        for block in blocks.clone() {
            let entries: Vec<TraceIndexEntry> =
                entries(block..block + 1, per_block).into_iter().map(|indexed| indexed.entry).collect();
            connection
                .execute(
                    "INSERT INTO span_blocks_v1 (id, received_ms, span_count, data, index_data) VALUES (?1, 0, ?2, x'', ?3)",
                    params![block, per_block, index_codec::encode(&entries).unwrap()],
                )
                .unwrap();
        }
        Writer::new(connection, Arc::default())
    }

    fn flush_state(connection: &Connection) -> (Option<i64>, Option<i64>) {
        connection
            .query_row("SELECT flush_through, flushed_block FROM index_state_v1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
    }

    fn session_spans(connection: &Connection) -> i64 {
        connection.query_row("SELECT COALESCE(SUM(spans), 0) FROM session_summary_v2", [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn a_due_flush_is_written_in_slices_of_consecutive_trace_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let mut writer = writer_over_blocks(&path, 1..1, 10);
        // 5,000 entries in 500 blocks, pending for longer than the interval: the flush is due.
        let all = entries(1..501, 10);
        writer.pending = all.clone();
        writer.pending_since = Some(Instant::now() - INDEX_FLUSH_INTERVAL);
        writer.flush_step();
        // One slice: the 2,048 smallest trace ids of the whole flush, whatever their blocks; the index is
        // complete through no block yet, and the progress is recorded.
        let mut sorted: Vec<_> = all.iter().map(IndexedEntry::key).collect();
        sorted.sort_unstable();
        assert_eq!(indexed(&writer.connection), (2048, 0));
        assert_eq!(flush_state(&writer.connection), (Some(500), Some(sorted[2047].1)));
        let largest_written: Vec<u8> =
            writer.connection.query_row("SELECT MAX(trace_id) FROM trace_index_v1", [], |r| r.get(0)).unwrap();
        assert_eq!(largest_written, sorted[2047].0);
        assert_eq!(writer.pending_count.load(Ordering::Acquire), 5000 - 2048);
        // Entries committed meanwhile are not part of this flush.
        writer.pending.extend(entries(501..511, 10));
        writer.pending_since = Some(Instant::now());
        writer.flush_step();
        assert_eq!(indexed(&writer.connection), (4096, 0));
        writer.flush_step();
        assert_eq!(indexed(&writer.connection), (5000, 500));
        assert_eq!(flush_state(&writer.connection), (None, None));
        assert!(writer.flushing.is_none());
        assert_eq!(writer.pending.len(), 100);
        // Not due yet; a full flush (a read, a close) writes the rest.
        writer.flush_step();
        assert_eq!(indexed(&writer.connection), (5000, 500));
        writer.flush_index().unwrap();
        assert_eq!(indexed(&writer.connection), (5100, 510));
        assert!(writer.pending.is_empty() && writer.flushing.is_none());
        assert_eq!(writer.pending_count.load(Ordering::Acquire), 0);
        // The synchronous mode is back to FULL for the acknowledged writes.
        let mode: i64 = writer.connection.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, 2);
    }

    #[test]
    fn a_flush_cut_short_is_finished_on_open_without_indexing_an_entry_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let mut writer = writer_over_blocks(&path, 1..501, 10);
        writer.pending = entries(1..501, 10);
        writer.pending_since = Some(Instant::now() - INDEX_FLUSH_INTERVAL);
        writer.flush_step();
        writer.flush_step();
        assert_eq!(indexed(&writer.connection), (4096, 0));
        assert_eq!(session_spans(&writer.connection), 4096);
        // The process stops here (no close): opening the file again finishes the flush.
        drop(writer);
        let store = crate::sqlite::SqliteStore::open(&path).unwrap();
        drop(store);
        let connection = Connection::open(&path).unwrap();
        assert_eq!(indexed(&connection), (5000, 500));
        assert_eq!(flush_state(&connection), (None, None));
        let distinct: i64 = connection
            .query_row("SELECT COUNT(*) FROM (SELECT DISTINCT trace_id, block_id FROM trace_index_v1)", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(distinct, 5000);
        assert_eq!(session_spans(&connection), 5000, "session totals count each entry once");
    }
}
