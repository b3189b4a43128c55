//! The tail buffer: non-session traces that the probability rule would drop are held in memory for
//! `decision_wait`, because a later request may show that the trace has an error (another service, a
//! later export batch of the same SDK) or is slow (the root usually ends, and is exported, last). When
//! that happens the held spans and logs are stored with the new ones, and the trace is remembered as kept
//! for a while so its stragglers are kept too. When the wait runs out the trace is dropped.
//!
//! Bounded: when the held bytes exceed `max_bytes`, the oldest pending traces are decided early (dropped,
//! since nothing so far says keep), counted in `sessiontrace_tail_decided_early_total` and
//! `sessiontrace_spans_dropped_total{reason="early"}`, never lost silently. Held data is in memory only:
//! a crash loses the pending traces (`sessiontrace_tail_pending_*` says how many), which by definition
//! are non-session traces the policy would have dropped unless an error or slow root arrived in time.
//! Session data never waits here.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sessiontrace_ingest::route::{Decision, KeepReason, RoutingPolicy, TraceFacts};
use sessiontrace_ingest::traces::HeldTrace;
use sessiontrace_model::project::Project;
use sessiontrace_model::records::{LogRecord, TraceBlock, TraceIndexEntry};

use crate::telemetry::Counters;

/// The buffer's key of a trace: its id in project `default`, and for other projects the id mixed with
/// the project's name, so that a request of one project never releases (or keeps) another's held data.
fn scoped(project: &Project, trace_id: &[u8; 16]) -> [u8; 16] {
    if project.is_default() {
        return *trace_id;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut key = *trace_id;
    for (index, byte) in project.as_str().bytes().enumerate() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        key[index % 16] ^= (hash >> 24) as u8;
    }
    for (slot, byte) in key.iter_mut().zip(hash.to_le_bytes().iter().cycle()) {
        *slot ^= byte;
    }
    key
}

pub use sessiontrace_config::pipeline::TailSettings;

/// Held spans and logs of one trace.
struct Pending {
    first_seen: Instant,
    entry: Option<TraceIndexEntry>,
    protobuf: Vec<u8>,
    logs: Vec<LogRecord>,
    /// The held logs as OTLP for upstreams in `kept` mode (empty without one).
    forward_logs: ForwardLogs,
    bytes: usize,
}

/// Log records as concatenated `ExportLogsServiceRequest` encodings (a valid request), and how many.
#[derive(Debug, Default)]
pub struct ForwardLogs {
    pub protobuf: Vec<u8>,
    pub records: u64,
}

impl ForwardLogs {
    pub fn append(&mut self, other: ForwardLogs) {
        self.protobuf.extend_from_slice(&other.protobuf);
        self.records += other.records;
    }
}

#[derive(Default)]
struct TailState {
    pending: HashMap<[u8; 16], Pending>,
    /// Arrival order, for expiry and early decisions; may name traces already decided (skipped).
    order: VecDeque<([u8; 16], Instant)>,
    bytes: usize,
    /// Spans and log records held, kept in step with `pending` so publishing costs nothing.
    spans: u64,
    logs: u64,
    kept: HashMap<[u8; 16], Instant>,
    kept_order: VecDeque<([u8; 16], Instant)>,
}

/// What the buffer decided to keep: write it with the request that triggered it.
#[derive(Debug, Default)]
pub struct Released {
    pub blocks: Vec<TraceBlock>,
    pub logs: Vec<LogRecord>,
    /// The released logs as OTLP, for upstreams in `kept` mode (when [`TailBuffer::on_held_logs`] was
    /// given them).
    pub forward_logs: ForwardLogs,
    /// Spans released, by the reason their trace is kept.
    pub error_spans: u64,
    pub slow_spans: u64,
}

impl Released {
    /// Adds what another decision released.
    pub fn absorb(&mut self, more: Released) {
        self.blocks.extend(more.blocks);
        self.logs.extend(more.logs);
        self.forward_logs.append(more.forward_logs);
        self.error_spans += more.error_spans;
        self.slow_spans += more.slow_spans;
    }

    pub fn span_count(&self) -> u64 {
        self.error_spans + self.slow_spans
    }
}

/// The tail buffer.
pub struct TailBuffer {
    settings: TailSettings,
    policy: RoutingPolicy,
    state: Mutex<TailState>,
}

/// Merges `more` (a later part of the same trace) into `entry`.
fn merge_entry(entry: &mut TraceIndexEntry, more: &TraceIndexEntry) {
    for service in &more.services {
        if !entry.services.contains(service) {
            entry.services.push(service.clone());
        }
    }
    entry.services.sort();
    entry.start_unix_nano = entry.start_unix_nano.min(more.start_unix_nano);
    entry.end_unix_nano = entry.end_unix_nano.max(more.end_unix_nano);
    entry.span_count += more.span_count;
    entry.error_count += more.error_count;
    if more.root.is_some() && entry.root.is_none() {
        entry.root = more.root.clone();
    }
}

impl TailBuffer {
    pub fn new(settings: TailSettings, policy: RoutingPolicy) -> Self {
        TailBuffer { settings, policy, state: Mutex::new(TailState::default()) }
    }

    /// The tail stage of a trace request: the traces its block keeps for an error or a slow root release
    /// what was held of them, and the traces the policy dropped (`held`) are held or kept. Counts the
    /// spans dropped at once (`dropped_spans` of the request less those held here).
    pub fn route_traces(
        &self,
        project: &Project,
        block: Option<&TraceBlock>,
        held: Vec<HeldTrace>,
        dropped_spans: u64,
        counters: &Counters,
    ) -> Released {
        let held_spans: u64 = held.iter().map(|h| h.entry.span_count as u64).sum();
        Counters::add(&counters.spans_dropped, dropped_spans - held_spans);
        let decided: Vec<([u8; 16], KeepReason)> = block
            .iter()
            .flat_map(|b| &b.traces)
            .filter(|entry| entry.session_key.is_none())
            .filter_map(|entry| {
                let facts = TraceFacts {
                    trace_id: &entry.trace_id,
                    is_session: false,
                    has_error: entry.error_count > 0,
                    duration_ns: entry.end_unix_nano.saturating_sub(entry.start_unix_nano).max(0) as u64,
                };
                match self.policy.decide(facts) {
                    Decision::Keep(reason @ (KeepReason::Error | KeepReason::Slow)) => Some((entry.trace_id, reason)),
                    _ => None,
                }
            })
            .collect();
        let mut released = self.on_kept(project, &decided, counters);
        released.absorb(self.on_held_traces(project, held, counters));
        released
    }

    /// The tail stage of a log request: error logs of non-session traces keep their traces (releasing
    /// what was held), and logs of dropped traces (`held`) are held or kept. Returns what was released
    /// and the held logs to keep now; counts the logs dropped at once.
    pub fn route_logs(
        &self,
        project: &Project,
        records: &[LogRecord],
        held: Vec<LogRecord>,
        forward_held: HashMap<[u8; 16], ForwardLogs>,
        dropped: u64,
        counters: &Counters,
    ) -> (Released, Vec<LogRecord>) {
        Counters::add(&counters.logs_dropped, dropped - held.len() as u64);
        let error_traces: Vec<([u8; 16], KeepReason)> = records
            .iter()
            .filter(|log| log.session_key.is_none() && log.severity_number >= 17)
            .filter_map(|log| log.trace_id.map(|id| (id, KeepReason::Error)))
            .collect();
        let released = self.on_kept(project, &error_traces, counters);
        let kept_now = self.on_held_logs(project, held, forward_held, counters);
        (released, kept_now)
    }

    /// Traces this request kept for an error or a slow root (or an error log): their held parts are
    /// released, and later parts will be kept on arrival.
    pub fn on_kept(&self, project: &Project, traces: &[([u8; 16], KeepReason)], counters: &Counters) -> Released {
        let mut released = Released::default();
        if traces.is_empty() {
            return released;
        }
        let now = Instant::now();
        let mut state = self.state.lock().expect("tail lock");
        for (trace_id, reason) in traces {
            let key = scoped(project, trace_id);
            state.remember(key, now, self.settings.remember_kept);
            if let Some(pending) = state.take(&key) {
                release(pending, *reason, &mut released);
            }
        }
        state.publish(counters);
        released
    }

    /// Traces the policy dropped in this request: kept at once when their trace was kept before or the
    /// merged trace is now slow, otherwise held.
    pub fn on_held_traces(&self, project: &Project, held: Vec<HeldTrace>, counters: &Counters) -> Released {
        let mut released = Released::default();
        if held.is_empty() {
            return released;
        }
        let now = Instant::now();
        let mut state = self.state.lock().expect("tail lock");
        for trace in held {
            let trace_id = trace.entry.trace_id;
            let key = scoped(project, &trace_id);
            if state.kept.contains_key(&key) {
                let spans = trace.entry.span_count as u64;
                released.blocks.push(TraceBlock {
                    protobuf: trace.protobuf,
                    span_count: trace.entry.span_count,
                    traces: vec![trace.entry],
                });
                released.error_spans += spans;
                continue;
            }
            let trace_spans = trace.entry.span_count as u64;
            let pending = state.entry(key, now);
            pending.bytes += trace.protobuf.len();
            pending.protobuf.extend_from_slice(&trace.protobuf);
            match &mut pending.entry {
                Some(entry) => merge_entry(entry, &trace.entry),
                None => pending.entry = Some(trace.entry),
            }
            state.bytes += trace.protobuf.len();
            state.spans += trace_spans;
            let entry = state.pending[&key].entry.as_ref().expect("set above");
            let facts = TraceFacts {
                trace_id: &trace_id,
                is_session: false,
                has_error: entry.error_count > 0,
                duration_ns: entry.end_unix_nano.saturating_sub(entry.start_unix_nano).max(0) as u64,
            };
            if let sessiontrace_ingest::route::Decision::Keep(reason) = self.policy.decide(facts) {
                state.remember(key, now, self.settings.remember_kept);
                let pending = state.take(&key).expect("present");
                release(pending, reason, &mut released);
            }
        }
        state.shrink_to_budget(self.settings.max_bytes, counters);
        state.publish(counters);
        released
    }

    /// Logs of dropped traces: kept at once when their trace was kept, otherwise held with it (with their
    /// OTLP form from `forward`, by trace, when an upstream takes kept logs). Returns the logs to keep now.
    pub fn on_held_logs(
        &self,
        project: &Project,
        logs: Vec<LogRecord>,
        mut forward: HashMap<[u8; 16], ForwardLogs>,
        counters: &Counters,
    ) -> Vec<LogRecord> {
        let mut keep = Vec::new();
        if logs.is_empty() {
            return keep;
        }
        let now = Instant::now();
        let mut state = self.state.lock().expect("tail lock");
        for log in logs {
            let Some(trace_id) = log.trace_id else {
                keep.push(log);
                continue;
            };
            let key = scoped(project, &trace_id);
            if state.kept.contains_key(&key) {
                keep.push(log);
                continue;
            }
            let forward_logs = forward.remove(&trace_id).unwrap_or_default();
            let size = log.body.len() + log.attributes_json.len() + log.resource_json.len() + 128;
            let size = size + forward_logs.protobuf.len();
            let pending = state.entry(key, now);
            pending.bytes += size;
            pending.logs.push(log);
            pending.forward_logs.append(forward_logs);
            state.bytes += size;
            state.logs += 1;
        }
        state.shrink_to_budget(self.settings.max_bytes, counters);
        state.publish(counters);
        keep
    }

    /// Drops the traces whose `decision_wait` ran out and forgets old kept ids; run by a ticker.
    pub fn expire(&self, now: Instant, counters: &Counters) {
        let mut state = self.state.lock().expect("tail lock");
        while let Some(&(trace_id, seen)) = state.order.front() {
            if now.duration_since(seen) < self.settings.decision_wait {
                break;
            }
            state.order.pop_front();
            if state.pending.get(&trace_id).is_some_and(|p| p.first_seen == seen)
                && let Some(pending) = state.take(&trace_id)
            {
                count_dropped(&pending, &counters.spans_dropped, &counters.logs_dropped);
            }
        }
        while let Some(&(trace_id, at)) = state.kept_order.front() {
            if now < at {
                break;
            }
            state.kept_order.pop_front();
            if state.kept.get(&trace_id) == Some(&at) {
                state.kept.remove(&trace_id);
            }
        }
        state.publish(counters);
    }

    /// Number of traces pending (tests and `/metrics`).
    pub fn pending_traces(&self) -> usize {
        self.state.lock().expect("tail lock").pending.len()
    }
}

fn release(pending: Pending, reason: KeepReason, released: &mut Released) {
    if let Some(entry) = pending.entry {
        let spans = entry.span_count as u64;
        match reason {
            KeepReason::Slow => released.slow_spans += spans,
            _ => released.error_spans += spans,
        }
        released.blocks.push(TraceBlock {
            protobuf: pending.protobuf,
            span_count: entry.span_count,
            traces: vec![entry],
        });
    }
    released.logs.extend(pending.logs);
    released.forward_logs.append(pending.forward_logs);
}

fn count_dropped(pending: &Pending, spans: &std::sync::atomic::AtomicU64, logs: &std::sync::atomic::AtomicU64) {
    Counters::add(spans, pending.entry.as_ref().map_or(0, |e| e.span_count as u64));
    Counters::add(logs, pending.logs.len() as u64);
}

impl TailState {
    fn entry(&mut self, trace_id: [u8; 16], now: Instant) -> &mut Pending {
        let order = &mut self.order;
        self.pending.entry(trace_id).or_insert_with(|| {
            order.push_back((trace_id, now));
            Pending {
                first_seen: now,
                entry: None,
                protobuf: Vec::new(),
                logs: Vec::new(),
                forward_logs: ForwardLogs::default(),
                bytes: 0,
            }
        })
    }

    fn take(&mut self, trace_id: &[u8; 16]) -> Option<Pending> {
        let pending = self.pending.remove(trace_id)?;
        self.bytes -= pending.bytes;
        self.spans -= pending.entry.as_ref().map_or(0, |e| e.span_count as u64);
        self.logs -= pending.logs.len() as u64;
        Some(pending)
    }

    fn remember(&mut self, trace_id: [u8; 16], now: Instant, for_how_long: Duration) {
        let until = now + for_how_long;
        self.kept.insert(trace_id, until);
        self.kept_order.push_back((trace_id, until));
    }

    /// Decides the oldest pending traces early (dropped) until the buffer fits its budget.
    fn shrink_to_budget(&mut self, max_bytes: usize, counters: &Counters) {
        while self.bytes > max_bytes {
            let Some((trace_id, seen)) = self.order.pop_front() else { break };
            if self.pending.get(&trace_id).is_none_or(|p| p.first_seen != seen) {
                continue;
            }
            let pending = self.take(&trace_id).expect("present");
            Counters::add(&counters.traces_decided_early, 1);
            count_dropped(&pending, &counters.spans_dropped_early, &counters.logs_dropped_early);
        }
        if self.pending.is_empty() {
            self.order.clear();
        }
    }

    fn publish(&self, counters: &Counters) {
        Counters::set(&counters.pending_traces, self.pending.len() as u64);
        Counters::set(&counters.pending_spans, self.spans);
        Counters::set(&counters.pending_logs, self.logs);
        Counters::set(&counters.pending_bytes, self.bytes as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(trace: u8, spans: u32, start: i64, end: i64, errors: u32) -> HeldTrace {
        HeldTrace {
            entry: TraceIndexEntry {
                trace_id: [trace; 16],
                session_key: None,
                services: vec!["api".into()],
                start_unix_nano: start,
                end_unix_nano: end,
                span_count: spans,
                error_count: errors,
                root: None,
            },
            protobuf: vec![trace; 100],
        }
    }

    fn buffer(max_bytes: usize) -> TailBuffer {
        let settings = TailSettings {
            decision_wait: Duration::from_millis(50),
            max_bytes,
            remember_kept: Duration::from_secs(60),
        };
        let policy = RoutingPolicy { sampling_ratio: 0.0, slow_trace_ns: Some(1_000), hold_dropped: true };
        TailBuffer::new(settings, policy)
    }

    #[test]
    fn a_later_error_releases_the_held_part_and_keeps_stragglers() {
        let counters = Counters::default();
        let d = Project::default();
        let tail = buffer(1 << 20);
        assert!(tail.on_held_traces(&d, vec![held(1, 2, 0, 10, 0), held(2, 1, 0, 10, 0)], &counters).blocks.is_empty());
        assert_eq!(counters.pending_spans.load(std::sync::atomic::Ordering::Relaxed), 3);
        let released = tail.on_kept(&d, &[([1; 16], KeepReason::Error)], &counters);
        assert_eq!((released.blocks.len(), released.error_spans), (1, 2));
        let straggler = tail.on_held_traces(&d, vec![held(1, 1, 0, 10, 0)], &counters);
        assert_eq!(straggler.error_spans, 1);
        std::thread::sleep(Duration::from_millis(60));
        tail.expire(Instant::now(), &counters);
        assert_eq!(tail.pending_traces(), 0);
        assert_eq!(counters.spans_dropped.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[test]
    fn an_error_in_one_project_never_releases_another_projects_trace() {
        let counters = Counters::default();
        let tail = buffer(1 << 20);
        let (a, b) = (Project::new("a").unwrap(), Project::new("b").unwrap());
        assert!(tail.on_held_traces(&a, vec![held(1, 2, 0, 10, 0)], &counters).blocks.is_empty());
        assert!(tail.on_kept(&b, &[([1; 16], KeepReason::Error)], &counters).blocks.is_empty());
        assert!(tail.on_kept(&Project::default(), &[([1; 16], KeepReason::Error)], &counters).blocks.is_empty());
        assert_eq!(tail.on_kept(&a, &[([1; 16], KeepReason::Error)], &counters).blocks.len(), 1);
    }

    #[test]
    fn a_trace_that_becomes_slow_is_kept_whole() {
        let counters = Counters::default();
        let d = Project::default();
        let tail = buffer(1 << 20);
        assert!(tail.on_held_traces(&d, vec![held(1, 2, 100, 600, 0)], &counters).blocks.is_empty());
        let released = tail.on_held_traces(&d, vec![held(1, 1, 0, 1_500, 0)], &counters);
        assert_eq!((released.slow_spans, released.blocks[0].traces[0].span_count), (3, 3));
        assert_eq!(released.blocks[0].protobuf.len(), 200);
    }

    #[test]
    fn a_full_buffer_decides_the_oldest_early_and_counts_it() {
        let counters = Counters::default();
        let d = Project::default();
        let tail = buffer(250);
        tail.on_held_traces(&d, vec![held(1, 1, 0, 1, 0), held(2, 1, 0, 1, 0), held(3, 4, 0, 1, 0)], &counters);
        assert_eq!(tail.pending_traces(), 2);
        assert_eq!(counters.traces_decided_early.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(counters.spans_dropped_early.load(std::sync::atomic::Ordering::Relaxed), 1);
        let logs = tail.on_held_logs(
            &d,
            vec![LogRecord {
                time_unix_nano: 0,
                trace_id: Some([9; 16]),
                span_id: None,
                session_key: None,
                service: "api".into(),
                severity_number: 9,
                severity_text: String::new(),
                body: "x".into(),
                attributes_json: "{}".into(),
                resource_json: "{}".into(),
            }],
            HashMap::new(),
            &counters,
        );
        assert!(logs.is_empty());
    }
}
