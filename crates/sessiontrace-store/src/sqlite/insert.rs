//! The single writer. It takes the first queued job, then every job already waiting (up to a bound), runs
//! them in one transaction, each inside its own savepoint so one failing job does not undo the others,
//! commits (fsync of the WAL, `synchronous=FULL`), and only then answers each job.

use std::sync::mpsc::Receiver;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, params};
use sessiontrace_model::Session;
use sessiontrace_model::records::{ReplayChunk, WriteBatch};
use tokio::sync::oneshot;

use crate::StoreError;

/// Jobs committed together at most; bounds the latency of one commit.
const MAX_JOBS_PER_COMMIT: usize = 512;

/// One unit of work for the writer.
pub(crate) enum Job {
    Write { batch: WriteBatch, compressed: Vec<Vec<u8>>, reply: oneshot::Sender<Result<(), StoreError>> },
    InsertSession { session: Session, reply: oneshot::Sender<Result<(), StoreError>> },
    UpdateSession { session: Session, reply: oneshot::Sender<Result<(), StoreError>> },
    PutReplayChunk { chunk: ReplayChunk, compressed: Vec<u8>, reply: oneshot::Sender<Result<bool, StoreError>> },
}

/// A job's answer, held until the commit.
enum Done {
    Unit(oneshot::Sender<Result<(), StoreError>>, Result<(), StoreError>),
    Flag(oneshot::Sender<Result<bool, StoreError>>, Result<bool, StoreError>),
}

pub(crate) struct Writer {
    connection: Connection,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

pub(crate) fn session_params(session: &Session) -> [rusqlite::types::Value; 11] {
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
    ]
}

impl Writer {
    pub(crate) fn new(connection: Connection) -> Self {
        Writer { connection }
    }

    pub(crate) fn run(mut self, jobs: Receiver<Job>) {
        while let Ok(first) = jobs.recv() {
            let mut pending = vec![first];
            while pending.len() < MAX_JOBS_PER_COMMIT {
                match jobs.try_recv() {
                    Ok(job) => pending.push(job),
                    Err(_) => break,
                }
            }
            self.commit(pending);
        }
    }

    fn commit(&mut self, jobs: Vec<Job>) {
        let mut done = Vec::with_capacity(jobs.len());
        let outcome = (|| -> Result<(), rusqlite::Error> {
            let transaction = self.connection.transaction()?;
            for job in jobs {
                done.push(run_job(&transaction, job));
            }
            transaction.commit()
        })();
        let commit_error = outcome.err().map(|e| e.to_string());
        if let Some(error) = &commit_error {
            tracing::error!(%error, jobs = done.len(), "sqlite commit failed");
        }
        for answer in done {
            let failed =
                || StoreError::Internal(format!("commit failed: {}", commit_error.clone().unwrap_or_default()));
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

/// Runs one job inside a savepoint of the open transaction.
fn run_job(connection: &Connection, job: Job) -> Done {
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
    match job {
        Job::Write { batch, compressed, reply } => {
            Done::Unit(reply, in_savepoint(connection, || write_batch(connection, &batch, &compressed)))
        }
        Job::InsertSession { session, reply } => Done::Unit(
            reply,
            in_savepoint(connection, || {
                let mut statement = connection.prepare_cached(
                    "INSERT INTO sessions_v1 (id, short_id, kind, name, user_json, attributes_json, tags_json,
                     capture_json, started_ms, stopped_ms, saved_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )?;
                statement.execute(rusqlite::params_from_iter(session_params(&session)))?;
                Ok(())
            }),
        ),
        Job::UpdateSession { session, reply } => Done::Unit(
            reply,
            in_savepoint(connection, || {
                let mut statement = connection.prepare_cached(
                    "UPDATE sessions_v1 SET short_id = ?2, kind = ?3, name = ?4, user_json = ?5, attributes_json = ?6,
                     tags_json = ?7, capture_json = ?8, started_ms = ?9, stopped_ms = ?10, saved_ms = ?11 WHERE id = ?1",
                )?;
                statement.execute(rusqlite::params_from_iter(session_params(&session)))?;
                Ok(())
            }),
        ),
        Job::PutReplayChunk { chunk, compressed, reply } => Done::Flag(
            reply,
            in_savepoint(connection, || {
                let mut statement = connection.prepare_cached(
                    "INSERT OR IGNORE INTO replay_chunks_v1 (session_id, seq, event_count, first_ms, last_ms, data)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                let inserted = statement.execute(params![
                    chunk.session_id,
                    chunk.seq as i64,
                    chunk.event_count,
                    chunk.first_timestamp_ms,
                    chunk.last_timestamp_ms,
                    compressed
                ])?;
                Ok(inserted == 1)
            }),
        ),
    }
}

fn write_batch(connection: &Connection, batch: &WriteBatch, compressed: &[Vec<u8>]) -> Result<(), StoreError> {
    let received_ms = now_ms();
    let mut insert_block =
        connection.prepare_cached("INSERT INTO span_blocks_v1 (received_ms, span_count, data) VALUES (?1, ?2, ?3)")?;
    let mut insert_index = connection.prepare_cached(
        "INSERT INTO trace_index_v1 (trace_id, block_id, session_key, services, start_ns, end_ns, span_count,
         error_count, root_name, root_service) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for (block, data) in batch.trace_blocks.iter().zip(compressed) {
        insert_block.execute(params![received_ms, block.span_count, data])?;
        let block_id = connection.last_insert_rowid();
        for trace in &block.traces {
            let (root_name, root_service) = trace.root.clone().unzip();
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
                root_service
            ])?;
        }
    }
    if !batch.logs.is_empty() {
        let mut insert_log = connection.prepare_cached(
            "INSERT INTO logs_v1 (time_ns, trace_id, span_id, session_key, service, severity_number, severity_text,
             body, attributes_json, resource_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
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
                log.resource_json
            ])?;
        }
    }
    if !batch.metric_points.is_empty() {
        let mut insert_point = connection.prepare_cached(
            "INSERT INTO metric_points_v1 (time_ns, service, name, kind, unit, value, attributes_json, detail_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
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
                point.detail_json
            ])?;
        }
    }
    Ok(())
}
