//! The write path. A caller's [`WriteBatch`] is compressed and encoded as RowBinary rows on the caller's
//! task ([`Rows`]), each row stamped with the caller's project (one short string per row, stored as a
//! LowCardinality dictionary index where the server has it), then queued for the one writer task. The
//! writer commits in groups: as soon as an insert slot is free (`max_in_flight`, one by default) it takes
//! every job queued meanwhile, up to the row and byte bounds, sends one insert per table (all at once),
//! and only then answers every job of the group: an acknowledged write is in ClickHouse. An idle writer
//! sends a lone write at once; under load a write waits for the insert in flight, then goes in the next
//! group, so the groups grow with the load and no one waits for a fixed timer. The one wait: the writers
//! the last group answered send again together, so a group waits for them a little (a quarter of the last
//! insert's time, at most 2 ms) rather than leave without them. Two knobs, both 0 by default,
//! trade latency for fewer inserts: `min_interval` spaces the starts of two groups (a cap on inserts per
//! second, so each ClickHouse part holds more rows), `max_wait` makes every group wait for company.
//!
//! The queue is bounded by bytes (a semaphore of KiB permits held until the job is answered): when
//! ClickHouse is slow or down, new writes fail at once with `Unavailable` instead of piling up.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sessiontrace_model::Project;
use sessiontrace_model::records::{ReplayChunk, WriteBatch};
use sessiontrace_store::StoreError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::client::Client;
use crate::rowbinary::RowWriter;
use crate::schema::{self, TABLES};
use crate::{IdClock, compress, day_of_ms, day_of_ns};
use sessiontrace_store::blocks::encode_block;

/// Encoded rows for each table, in [`TABLES`] order.
pub(crate) struct Rows {
    tables: Vec<RowWriter>,
    counts: Vec<u64>,
}

fn table_slot(name: &str) -> usize {
    TABLES.iter().position(|table| table.name == name).expect("known table")
}

impl Rows {
    pub(crate) fn new() -> Self {
        Rows { tables: TABLES.iter().map(|_| RowWriter::default()).collect(), counts: vec![0; TABLES.len()] }
    }

    fn table(&mut self, name: &str) -> &mut RowWriter {
        let slot = table_slot(name);
        self.counts[slot] += 1;
        &mut self.tables[slot]
    }

    pub(crate) fn bytes(&self) -> usize {
        self.tables.iter().map(|t| t.bytes.len()).sum()
    }

    pub(crate) fn rows(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Spans (as blocks plus index rows), logs and metric points of one write.
    pub(crate) fn from_batch(project: &Project, batch: &WriteBatch, ids: &IdClock) -> Result<Self, StoreError> {
        let project = project.as_str().as_bytes();
        let mut rows = Rows::new();
        let received_ns = crate::now_ns() as i64;
        let day = day_of_ns(received_ns);
        for block in &batch.trace_blocks {
            let block_id = ids.next();
            let data = encode_block(&block.protobuf)?;
            let row = rows.table(schema::SPAN_BLOCKS);
            row.date(day);
            row.string(project);
            row.u64(block_id);
            row.i64(received_ns);
            row.u32(block.span_count);
            row.string(&data);
            for trace in &block.traces {
                let session_key = trace.session_key.as_deref().unwrap_or_default();
                let targets: &[&str] = if session_key.is_empty() {
                    &[schema::TRACE_INDEX]
                } else {
                    &[schema::TRACE_INDEX, schema::SESSION_TRACES]
                };
                for target in targets {
                    let row = rows.table(target);
                    row.date(day);
                    row.string(project);
                    row.fixed(&trace.trace_id);
                    row.i64(trace.start_unix_nano);
                    row.i64(trace.end_unix_nano);
                    row.u64(block_id);
                    row.string(session_key.as_bytes());
                    row.strings(&trace.services);
                    row.u32(trace.span_count);
                    row.u32(trace.error_count);
                    let (root_name, root_service) = trace.root.clone().unzip();
                    row.nullable(root_name, |w, v| w.string(v.as_bytes()));
                    row.nullable(root_service, |w, v| w.string(v.as_bytes()));
                }
            }
        }
        for log in &batch.logs {
            let log_id = ids.next();
            let row = rows.table(schema::LOGS);
            row.date(day);
            row.string(project);
            row.string(log.session_key.as_deref().unwrap_or_default().as_bytes());
            row.i64(log.time_unix_nano);
            row.u64(log_id);
            row.nullable(log.trace_id, |w, v| w.fixed(&v));
            row.nullable(log.span_id, |w, v| w.fixed(&v));
            row.string(log.service.as_bytes());
            row.i32(log.severity_number);
            row.string(log.severity_text.as_bytes());
            row.string(log.body.as_bytes());
            row.string(log.attributes_json.as_bytes());
            row.string(log.resource_json.as_bytes());
        }
        for point in &batch.metric_points {
            let row = rows.table(schema::METRIC_POINTS);
            row.date(day);
            row.string(project);
            row.string(point.service.as_bytes());
            row.string(point.name.as_bytes());
            row.i64(point.time_unix_nano);
            row.string(point.kind.as_bytes());
            row.string(point.unit.as_bytes());
            row.nullable(point.value, |w, v| w.u64(v.to_bits()));
            row.string(point.attributes_json.as_bytes());
            row.string(point.detail_json.as_bytes());
        }
        Ok(rows)
    }

    /// One replay chunk, stamped with the time it was first accepted.
    pub(crate) fn from_replay_chunk(project: &Project, chunk: &ReplayChunk) -> Result<Self, StoreError> {
        let mut rows = Rows::new();
        let inserted_ns = crate::now_ns();
        let data = compress(&chunk.events_json)?;
        let row = rows.table(schema::REPLAY_CHUNKS);
        row.date(day_of_ms(inserted_ns as i64 / 1_000_000));
        row.string(project.as_str().as_bytes());
        row.string(chunk.session_id.as_bytes());
        row.u64(chunk.seq);
        row.u64(inserted_ns);
        row.u64(u64::MAX - inserted_ns);
        row.u32(chunk.event_count);
        row.i64(chunk.first_timestamp_ms);
        row.i64(chunk.last_timestamp_ms);
        row.string(&data);
        Ok(rows)
    }

    fn append(&mut self, other: Rows) {
        for (slot, (writer, count)) in other.tables.into_iter().zip(other.counts).enumerate() {
            self.tables[slot].bytes.extend_from_slice(&writer.bytes);
            self.counts[slot] += count;
        }
    }
}

/// Bounds of the writer.
#[derive(Debug, Clone)]
pub(crate) struct WriterLimits {
    /// How long a group waits for more writes after its first one (0: it goes as soon as a slot is free).
    pub(crate) max_wait: Duration,
    /// Least time between the starts of two groups: a cap on inserts per second.
    pub(crate) min_interval: Duration,
    /// Groups whose inserts may be in flight at once.
    pub(crate) max_in_flight: usize,
    pub(crate) max_rows: u64,
    pub(crate) max_bytes: usize,
    pub(crate) queue_bytes: usize,
}

/// What the writer did so far: writes answered and the insert groups that carried them (each group is
/// one insert per table it has rows for).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Writes answered (succeeded or failed).
    pub writes: u64,
    /// Groups sent.
    pub groups: u64,
}

#[derive(Default)]
struct Counters {
    writes: AtomicU64,
    groups: AtomicU64,
    /// How long the last group's inserts took, in microseconds.
    last_insert_micros: AtomicU64,
}

struct Job {
    rows: Rows,
    reply: oneshot::Sender<Result<(), StoreError>>,
    /// The job's share of the queue budget, given back when the job is answered.
    permit: OwnedSemaphorePermit,
}

/// What the writer task receives: rows to insert, or the request to finish and stop.
enum Message {
    Job(Job),
    /// Insert what was queued before this message, then end the task.
    Close,
}

/// The handle callers use. The task behind it ends after [`WriterHandle::close`], or when the handle is
/// dropped (having inserted what was queued: every queued job still has a caller waiting for it).
pub(crate) struct WriterHandle {
    jobs: mpsc::UnboundedSender<Message>,
    budget: Arc<Semaphore>,
    budget_kib: u32,
    counters: Arc<Counters>,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl WriterHandle {
    /// Starts the writer task on the current tokio runtime.
    pub(crate) fn start(client: Client, limits: WriterLimits) -> Self {
        let (jobs, receiver) = mpsc::unbounded_channel();
        let budget_kib = (limits.queue_bytes / 1024).clamp(1, u32::MAX as usize >> 4) as u32;
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn(run(client, receiver, limits, counters.clone()));
        WriterHandle {
            jobs,
            budget: Arc::new(Semaphore::new(budget_kib as usize)),
            budget_kib,
            counters,
            task: std::sync::Mutex::new(Some(task)),
        }
    }

    /// Inserts what is queued, answers it, and waits for the task to end; later writes fail.
    pub(crate) async fn close(&self) {
        let task = self.task.lock().expect("writer task lock").take();
        if let Some(task) = task {
            let _ = self.jobs.send(Message::Close);
            if let Err(error) = task.await {
                tracing::error!(%error, "the clickhouse writer task failed");
            }
        }
    }

    pub(crate) fn stats(&self) -> WriterStats {
        WriterStats {
            writes: self.counters.writes.load(Ordering::Relaxed),
            groups: self.counters.groups.load(Ordering::Relaxed),
        }
    }

    /// Queues rows and waits until the insert that holds them was accepted.
    pub(crate) async fn submit(&self, rows: Rows) -> Result<(), StoreError> {
        if rows.rows() == 0 {
            return Ok(());
        }
        let kib = ((rows.bytes() / 1024) as u32 + 1).min(self.budget_kib);
        let permit = self.budget.clone().try_acquire_many_owned(kib).map_err(|_| {
            StoreError::Unavailable("clickhouse write queue is full: clickhouse is slower than ingest".into())
        })?;
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Message::Job(Job { rows, reply, permit }))
            .map_err(|_| StoreError::Internal("the clickhouse writer has stopped".into()))?;
        answer.await.map_err(|_| StoreError::Internal("the clickhouse writer dropped a job".into()))?
    }
}

/// The jobs of one group and their size, which bounds how many more it takes.
struct Group {
    jobs: Vec<Job>,
    rows: u64,
    bytes: usize,
}

impl Group {
    fn new(first: Job) -> Self {
        let (rows, bytes) = (first.rows.rows(), first.rows.bytes());
        Group { jobs: vec![first], rows, bytes }
    }

    fn push(&mut self, job: Job) {
        self.rows += job.rows.rows();
        self.bytes += job.rows.bytes();
        self.jobs.push(job);
    }

    fn has_room(&self, limits: &WriterLimits) -> bool {
        self.rows < limits.max_rows && self.bytes < limits.max_bytes
    }

    /// Takes writes as they come until `until`, until the group holds `wanted` jobs, or until it is full;
    /// true if the writer was told to close meanwhile.
    async fn gather(
        &mut self,
        receiver: &mut mpsc::UnboundedReceiver<Message>,
        limits: &WriterLimits,
        until: Instant,
        wanted: usize,
    ) -> bool {
        while self.jobs.len() < wanted && self.has_room(limits) {
            tokio::select! {
                next = receiver.recv() => match next {
                    Some(Message::Job(job)) => self.push(job),
                    Some(Message::Close) => return true,
                    None => break,
                },
                _ = tokio::time::sleep_until(until) => break,
            }
        }
        false
    }
}

async fn run(
    client: Client,
    mut receiver: mpsc::UnboundedReceiver<Message>,
    limits: WriterLimits,
    counters: Arc<Counters>,
) {
    // Group commit: a group starts when an insert slot is free and a job is queued, and takes whatever
    // queued while the slots were busy. Waiting for the slot before receiving is what makes the groups:
    // writes that arrive during an insert stay in the channel and leave together afterwards.
    let slots = Arc::new(Semaphore::new(limits.max_in_flight.max(1)));
    let mut in_flight = JoinSet::new();
    let mut closing = false;
    let mut last_start: Option<Instant> = None;
    let mut last_jobs = 0;
    while !closing {
        let slot = slots.clone().acquire_owned().await.expect("the slots are never closed");
        while in_flight.try_join_next().is_some() {}
        // Writes already queued when the slot freed came from other writers than the last group's, who were
        // answered just now and come back together.
        let queued = !receiver.is_empty();
        let mut group = match receiver.recv().await {
            Some(Message::Job(job)) => Group::new(job),
            Some(Message::Close) | None => break,
        };
        while group.has_room(&limits) {
            match receiver.try_recv() {
                Ok(Message::Job(job)) => group.push(job),
                Ok(Message::Close) => {
                    closing = true;
                    break;
                }
                Err(_) => break,
            }
        }
        // The last group's writers, answered together, send again together: the group waits a little for
        // them (a quarter of the last insert's time, at most 2 ms). Otherwise a closed loop of clients
        // splits into cohorts that take turns, and each write waits for the other cohort's insert before
        // its own: at 4 connections, groups of 1 and 3 in turn, or 2 and 2, p50 2.3–2.5 inserts' time.
        let expected = if queued { group.jobs.len() + last_jobs } else { last_jobs };
        if group.jobs.len() < expected && !closing {
            let last_insert = Duration::from_micros(counters.last_insert_micros.load(Ordering::Relaxed));
            let until = Instant::now() + (last_insert / 4).min(Duration::from_millis(2));
            closing = group.gather(&mut receiver, &limits, until, expected).await;
        }
        // The group waits for company until `max_wait` after its first write, and at least until
        // `min_interval` after the previous group started (an idle writer's lone write goes at once).
        let now = Instant::now();
        let deadline = (now + limits.max_wait).max(last_start.map_or(now, |last| last + limits.min_interval));
        if deadline > now && !closing {
            closing = group.gather(&mut receiver, &limits, deadline, usize::MAX).await;
        }
        last_start = Some(Instant::now());
        last_jobs = group.jobs.len();
        let (group_client, group_counters) = (client.clone(), counters.clone());
        in_flight.spawn(async move {
            flush(&group_client, group.jobs, &group_counters).await;
            drop(slot);
        });
    }
    while in_flight.join_next().await.is_some() {}
    tracing::debug!("clickhouse writer stopped");
}

/// One insert per table for the whole group, then every job's answer.
async fn flush(client: &Client, group: Vec<Job>, counters: &Counters) {
    let mut merged = Rows::new();
    let mut replies = Vec::with_capacity(group.len());
    for job in group {
        merged.append(job.rows);
        replies.push((job.reply, job.permit));
    }
    let started = std::time::Instant::now();
    // The tables' inserts go at once: a group waits one insert round trip, not one per table (a block
    // and its trace index are two or three tables). If one fails and another lands, the whole group is
    // refused and retried: what landed is then an orphan block, or index rows whose block a read of the
    // trace does not find (it reads the blocks that exist), as a half-done sequential group left before.
    let mut inserts = JoinSet::new();
    for (slot, table) in TABLES.iter().enumerate() {
        if merged.counts[slot] == 0 {
            continue;
        }
        let rows = std::mem::take(&mut merged.tables[slot].bytes);
        let client = client.clone();
        inserts.spawn(async move {
            let result = client.insert(table.name, &schema::column_names(table.name), rows).await;
            if let Err(error) = &result {
                tracing::warn!(table = table.name, %error, "clickhouse insert failed");
            }
            result
        });
    }
    let mut outcome: Result<(), StoreError> = Ok(());
    while let Some(result) = inserts.join_next().await {
        let result = result.unwrap_or_else(|error| Err(StoreError::Internal(format!("insert task failed: {error}"))));
        if outcome.is_ok() {
            outcome = result;
        }
    }
    tracing::debug!(
        jobs = replies.len(),
        rows = merged.rows(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "clickhouse flush"
    );
    counters.last_insert_micros.store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    counters.groups.fetch_add(1, Ordering::Relaxed);
    counters.writes.fetch_add(replies.len() as u64, Ordering::Relaxed);
    for (reply, permit) in replies {
        // Give the budget back before answering, so the caller's next write finds it free.
        drop(permit);
        let _ = reply.send(outcome.clone());
    }
}
