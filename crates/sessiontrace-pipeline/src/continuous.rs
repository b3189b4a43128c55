//! Continuous sessions (`kind: continuous`, trace prefix `cdbcdb`): their spans, logs and replay chunks
//! are held in memory in a rolling window per session instead of being stored, and persisted when the
//! session is saved — by `POST /api/sessions/{id}/save`, by an error span in one of its traces, or by a
//! span carrying `session.auto_save=true` / `multiplayer.session.auto-save=true`. A save writes the window
//! (what came before the trigger) and switches the session to write-through, so everything after it is
//! stored like any session data until the session stops.
//!
//! The window is measured on the session's own clock: an item older than the newest item's time minus
//! `window` leaves it (counted in `sessiontrace_continuous_expired_total`), so a test or a replayed
//! recording behaves the same as live traffic. Memory is bounded per session and in total (oldest items
//! go first), and a window idle for twice its length in real time is let go. What a window holds is in
//! memory only: a crash loses unsaved continuous data (`sessiontrace_continuous_window_bytes` says how
//! much), which is the point of a continuous session — it is kept only when something asks for it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Kind;
use prost::Message;
use sessiontrace_ingest::route::take_traces;
use sessiontrace_model::project::Project;
use sessiontrace_model::records::{LogRecord, ReplayChunk, TraceBlock};
use sessiontrace_model::{Session, SessionKind, SessionTraceKind, session_of_trace_id};
use sessiontrace_store::{Store, StoreError};

use crate::telemetry::Counters;

pub use sessiontrace_config::pipeline::ContinuousSettings;

/// Whether a session's data is held or written through.
#[derive(Debug, Clone, PartialEq)]
enum Status {
    /// An unsaved continuous session (its long id).
    Holding(String),
    /// Saved already, not continuous, or unknown: stored like any session data.
    WriteThrough,
}

enum Item {
    Spans(TraceBlock),
    Log(LogRecord),
    Replay(ReplayChunk),
}

struct Held {
    time_ns: i64,
    bytes: usize,
    item: Item,
}

struct Window {
    status: Status,
    items: VecDeque<Held>,
    bytes: usize,
    newest_ns: i64,
    last_touch: Instant,
}

impl Window {
    fn new(status: Status) -> Self {
        Window { status, items: VecDeque::new(), bytes: 0, newest_ns: i64::MIN, last_touch: Instant::now() }
    }
}

/// What a save takes out of a window, to be written.
#[derive(Default)]
pub struct Saved {
    pub blocks: Vec<TraceBlock>,
    pub logs: Vec<LogRecord>,
    pub replay: Vec<ReplayChunk>,
    /// Long ids of the sessions saved by a trigger in this request (their `saved_at_ms` is set after the
    /// write).
    pub triggered_sessions: Vec<String>,
}

impl Saved {
    fn take_window(&mut self, window: &mut Window, counters: &Counters) {
        for held in window.items.drain(..) {
            match held.item {
                Item::Spans(block) => {
                    Counters::add(&counters.continuous_spans_saved, block.span_count as u64);
                    self.blocks.push(block);
                }
                Item::Log(log) => {
                    Counters::add(&counters.continuous_logs_saved, 1);
                    self.logs.push(log);
                }
                Item::Replay(chunk) => {
                    Counters::add(&counters.continuous_replay_saved, 1);
                    self.replay.push(chunk);
                }
            }
        }
        window.bytes = 0;
    }
}

/// The windows of every continuous session seen.
pub struct ContinuousSessions {
    settings: ContinuousSettings,
    store: Arc<dyn Store>,
    counters: Arc<Counters>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    windows: HashMap<String, Window>,
    total_bytes: usize,
}

/// True when a span or resource asks for an automatic save.
fn asks_auto_save(attributes: &[KeyValue]) -> bool {
    attributes.iter().any(|kv| {
        (kv.key == "session.auto_save" || kv.key == "multiplayer.session.auto-save")
            && match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Kind::BoolValue(flag)) => *flag,
                Some(Kind::StringValue(text)) => text.eq_ignore_ascii_case("true"),
                _ => false,
            }
    })
}

fn triggers_save(piece: &ExportTraceServiceRequest) -> bool {
    piece.resource_spans.iter().any(|resource_spans| {
        resource_spans.resource.as_ref().is_some_and(|r| asks_auto_save(&r.attributes))
            || resource_spans.scope_spans.iter().flat_map(|s| &s.spans).any(|span| asks_auto_save(&span.attributes))
    })
}

/// Windows are per project: short ids are unique within a project only.
fn window_key(project: &Project, short_id: &str) -> String {
    format!("{project}/{short_id}")
}

/// The short id of a continuous-session trace id.
fn continuous_short_id(trace_id: &[u8]) -> Option<String> {
    match session_of_trace_id(trace_id) {
        Some((SessionTraceKind::Continuous, short)) => Some(short.to_hex()),
        _ => None,
    }
}

impl ContinuousSessions {
    pub fn new(settings: ContinuousSettings, store: Arc<dyn Store>, counters: Arc<Counters>) -> Self {
        ContinuousSessions { settings, store, counters, state: Mutex::new(State::default()) }
    }

    /// The status of a project's short id, asking the store the first time it is seen.
    async fn status(&self, project: &Project, short_id: &str) -> Result<Status, StoreError> {
        let key = window_key(project, short_id);
        if let Some(window) = self.state.lock().expect("continuous lock").windows.get(&key) {
            return Ok(window.status.clone());
        }
        let status = match self.store.session(project, short_id).await? {
            Some(session) => Self::status_of(&session),
            None => Status::WriteThrough,
        };
        let mut state = self.state.lock().expect("continuous lock");
        Ok(state.windows.entry(key).or_insert_with(|| Window::new(status)).status.clone())
    }

    fn status_of(session: &Session) -> Status {
        if session.kind == SessionKind::Continuous && session.saved_at_ms.is_none() {
            Status::Holding(session.id.clone())
        } else {
            Status::WriteThrough
        }
    }

    /// Takes the traces of unsaved continuous sessions out of `block` into their windows; a trace with an
    /// error or an auto-save attribute saves its session, and the saved data comes back to be written.
    /// A block with no `cdbcdb` trace is returned untouched without any work.
    pub async fn intercept_traces(
        &self,
        project: &Project,
        block: TraceBlock,
    ) -> Result<(Option<TraceBlock>, Saved), StoreError> {
        let mut saved = Saved::default();
        if !block.traces.iter().any(|entry| continuous_short_id(&entry.trace_id).is_some()) {
            return Ok((Some(block), saved));
        }
        let mut holding: HashMap<String, String> = HashMap::new();
        for entry in &block.traces {
            if let Some(short) = continuous_short_id(&entry.trace_id)
                && !holding.contains_key(&short)
                && let Status::Holding(id) = self.status(project, &short).await?
            {
                holding.insert(short, id);
            }
        }
        let held_ids: Vec<[u8; 16]> = block
            .traces
            .iter()
            .filter(|e| continuous_short_id(&e.trace_id).is_some_and(|s| holding.contains_key(&s)))
            .map(|e| e.trace_id)
            .collect();
        if held_ids.is_empty() {
            return Ok((Some(block), saved));
        }
        let mut request = ExportTraceServiceRequest::decode(block.protobuf.as_slice())
            .map_err(|e| StoreError::Internal(format!("stored block does not decode: {e}")))?;
        let pieces = take_traces(&mut request, &held_ids);
        let (held_entries, rest_entries): (Vec<_>, Vec<_>) =
            block.traces.into_iter().partition(|e| held_ids.contains(&e.trace_id));
        let rest = (!rest_entries.is_empty()).then(|| TraceBlock {
            protobuf: request.encode_to_vec(),
            span_count: rest_entries.iter().map(|e| e.span_count).sum(),
            traces: rest_entries,
        });
        let mut state = self.state.lock().expect("continuous lock");
        for (entry, piece) in held_entries.into_iter().zip(pieces) {
            let short = continuous_short_id(&entry.trace_id).expect("continuous");
            let trigger = entry.error_count > 0 || triggers_save(&piece);
            let time_ns = entry.end_unix_nano;
            let block =
                TraceBlock { protobuf: piece.encode_to_vec(), span_count: entry.span_count, traces: vec![entry] };
            let window = state
                .windows
                .entry(window_key(project, &short))
                .or_insert_with(|| Window::new(Status::Holding(holding[&short].clone())));
            if window.status == Status::WriteThrough {
                // Saved by an earlier trace of this same request.
                saved.blocks.push(block);
                continue;
            }
            if trigger {
                // The window ends at the trigger: what is older than `window` before it is let go first.
                window.newest_ns = window.newest_ns.max(time_ns);
                evict_older_than(window, window.newest_ns.saturating_sub(self.window_ns()), &self.counters);
                saved.take_window(window, &self.counters);
                saved.blocks.push(block);
                if let Status::Holding(id) = std::mem::replace(&mut window.status, Status::WriteThrough) {
                    tracing::info!(session_id = %id, "continuous session saved by its traces");
                    saved.triggered_sessions.push(id);
                }
                continue;
            }
            Counters::add(&self.counters.continuous_spans_held, block.span_count as u64);
            let bytes = block.protobuf.len() + 256;
            let status = Status::Holding(holding[&short].clone());
            self.push(
                &mut state,
                window_key(project, &short),
                status,
                Held { time_ns, bytes, item: Item::Spans(block) },
            );
        }
        state.recount(&self.counters);
        Ok((rest, saved))
    }

    /// Takes the logs of unsaved continuous sessions into their windows; returns the others.
    pub async fn intercept_logs(&self, project: &Project, logs: Vec<LogRecord>) -> Result<Vec<LogRecord>, StoreError> {
        if !logs.iter().any(|log| log.trace_id.is_some_and(|t| continuous_short_id(&t).is_some())) {
            return Ok(logs);
        }
        let mut keep = Vec::with_capacity(logs.len());
        for log in logs {
            let Some(short) = log.trace_id.and_then(|t| continuous_short_id(&t)) else {
                keep.push(log);
                continue;
            };
            let status = self.status(project, &short).await?;
            if status == Status::WriteThrough {
                keep.push(log);
                continue;
            }
            Counters::add(&self.counters.continuous_logs_held, 1);
            let bytes = log.body.len() + log.attributes_json.len() + log.resource_json.len() + 128;
            let mut state = self.state.lock().expect("continuous lock");
            let key = window_key(project, &short);
            self.push(&mut state, key, status, Held { time_ns: log.time_unix_nano, bytes, item: Item::Log(log) });
            state.recount(&self.counters);
        }
        Ok(keep)
    }

    /// Holds a replay chunk of an unsaved continuous session; gives it back when it should be stored.
    pub async fn intercept_replay(
        &self,
        project: &Project,
        session: &Session,
        chunk: ReplayChunk,
    ) -> Result<Option<ReplayChunk>, StoreError> {
        if session.kind != SessionKind::Continuous {
            return Ok(Some(chunk));
        }
        let short = session.short_id.to_hex();
        let status = self.status(project, &short).await?;
        if status == Status::WriteThrough {
            return Ok(Some(chunk));
        }
        Counters::add(&self.counters.continuous_replay_held, 1);
        let time_ns = chunk.last_timestamp_ms.saturating_mul(1_000_000);
        let bytes = chunk.events_json.len() + 128;
        let mut state = self.state.lock().expect("continuous lock");
        self.push(&mut state, window_key(project, &short), status, Held { time_ns, bytes, item: Item::Replay(chunk) });
        state.recount(&self.counters);
        Ok(None)
    }

    /// `POST /api/sessions/{id}/save`: the window's content, to be written; later data is written through.
    pub fn save(&self, project: &Project, session: &Session) -> Saved {
        let mut saved = Saved::default();
        let mut state = self.state.lock().expect("continuous lock");
        let key = window_key(project, &session.short_id.to_hex());
        let window = state.windows.entry(key).or_insert_with(|| Window::new(Status::WriteThrough));
        saved.take_window(window, &self.counters);
        window.status = Status::WriteThrough;
        state.recount(&self.counters);
        saved
    }

    /// Puts an item in a holding window (re-created with `status` if a sweep let it go meanwhile), then
    /// applies the time window and the memory bounds.
    fn push(&self, state: &mut State, key: String, status: Status, held: Held) {
        let window_ns = self.window_ns();
        let window = state.windows.entry(key).or_insert_with(|| Window::new(status));
        window.last_touch = Instant::now();
        window.newest_ns = window.newest_ns.max(held.time_ns);
        window.bytes += held.bytes;
        window.items.push_back(held);
        let counters = &self.counters;
        evict_older_than(window, window.newest_ns.saturating_sub(window_ns), counters);
        while window.bytes > self.settings.max_bytes_per_session && window.items.len() > 1 {
            let oldest = window.items.pop_front().expect("non-empty");
            window.bytes -= oldest.bytes;
            expired(&oldest.item, counters);
        }
        state.recount_bytes();
        while state.total_bytes > self.settings.max_bytes_total {
            let Some(largest) = state.windows.values_mut().max_by_key(|w| w.bytes) else { break };
            let Some(oldest) = largest.items.pop_front() else { break };
            largest.bytes -= oldest.bytes;
            expired(&oldest.item, counters);
            state.total_bytes -= oldest.bytes;
        }
    }

    fn window_ns(&self) -> i64 {
        self.settings.window.as_nanos().min(i64::MAX as u128) as i64
    }

    /// Lets go of windows idle for twice their length (run by a ticker).
    pub fn sweep(&self, now: Instant) {
        let idle = self.settings.window * 2;
        let mut state = self.state.lock().expect("continuous lock");
        let counters = &self.counters;
        state.windows.retain(|_, window| {
            if now.duration_since(window.last_touch) < idle.max(Duration::from_secs(10)) {
                return true;
            }
            for held in &window.items {
                expired(&held.item, counters);
            }
            false
        });
        state.recount(counters);
    }
}

/// Lets go of the items of `window` older than `cutoff_ns`.
fn evict_older_than(window: &mut Window, cutoff_ns: i64, counters: &Counters) {
    if !window.items.iter().any(|h| h.time_ns < cutoff_ns) {
        return;
    }
    let mut freed = 0;
    window.items.retain(|held| {
        let keep = held.time_ns >= cutoff_ns;
        if !keep {
            freed += held.bytes;
            expired(&held.item, counters);
        }
        keep
    });
    window.bytes -= freed;
}

fn expired(item: &Item, counters: &Counters) {
    match item {
        Item::Spans(block) => Counters::add(&counters.continuous_spans_expired, block.span_count as u64),
        Item::Log(_) => Counters::add(&counters.continuous_logs_expired, 1),
        Item::Replay(_) => Counters::add(&counters.continuous_replay_expired, 1),
    }
}

impl State {
    fn recount_bytes(&mut self) {
        self.total_bytes = self.windows.values().map(|w| w.bytes).sum();
    }

    fn recount(&mut self, counters: &Counters) {
        self.recount_bytes();
        Counters::set(&counters.continuous_window_bytes, self.total_bytes as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::AnyValue;

    #[test]
    fn auto_save_attributes() {
        let kv = |key: &str, value: Kind| KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        };
        assert!(asks_auto_save(&[kv("session.auto_save", Kind::BoolValue(true))]));
        assert!(asks_auto_save(&[kv("multiplayer.session.auto-save", Kind::StringValue("true".into()))]));
        assert!(!asks_auto_save(&[kv("session.auto_save", Kind::BoolValue(false))]));
        assert!(!asks_auto_save(&[kv("other", Kind::BoolValue(true))]));
    }

    #[test]
    fn only_continuous_prefixes_are_held() {
        let mut id = [0u8; 16];
        id[..3].copy_from_slice(&[0xcd, 0xbc, 0xdb]);
        id[3..7].copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(continuous_short_id(&id).as_deref(), Some("01020304"));
        id[..3].copy_from_slice(&[0xde, 0xbd, 0xeb]);
        assert_eq!(continuous_short_id(&id), None);
    }
}
