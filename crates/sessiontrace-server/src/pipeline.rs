//! The one path every signal takes after its receiver: ingest (decode, normalize, route) and then the
//! store, whose commit is awaited before the receiver answers. OTLP/HTTP and OTLP/gRPC both call here.
//!
//! With the default config (ratio 1.0, no forwarding, no continuous session) that is all it does. The
//! optional stages of issue 7 hook in around the write, each skipped when it has nothing to do:
//! - [`tail`](crate::tail): traces the probability rule drops are held for `decision_wait`; a later error
//!   or slow root releases them into the same write as the request that decided it;
//! - [`continuous`](crate::continuous): traces and logs of unsaved continuous sessions go to their window
//!   instead of the store; a trigger writes the window with the request;
//! - [`forward`](crate::forward): after the commit, what each upstream's mode asks for is offered to its
//!   queue, without waiting.

use std::collections::{HashMap, HashSet};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use sessiontrace_ingest::decode::{from_json, from_protobuf};
use sessiontrace_ingest::logs::{LogInput, PreparedLogs};
use sessiontrace_ingest::metrics::MetricInput;
use sessiontrace_ingest::normalize::{normalize_attributes, session_attribute, session_key};
use sessiontrace_ingest::route::{Decision, KeepReason, TraceFacts, take_traces};
use sessiontrace_ingest::traces::{PreparedTraces, TraceInput};
use sessiontrace_model::Session;
use sessiontrace_model::records::{LogRecord, TraceBlock, WriteBatch};

use crate::continuous::Saved;
use crate::error::ApiError;
use crate::forward::ForwardMode;
use crate::signal::Signal;
use crate::state::{AppState, Counters};

/// What a trace export answers: how many spans were refused and why.
pub struct TraceOutcome {
    pub rejected_spans: u64,
    pub rejection_message: Option<String>,
}

/// Ingests one trace request and returns once its kept spans are durable.
pub async fn accept_traces(state: &AppState, input: TraceInput) -> Result<TraceOutcome, ApiError> {
    let counters = &state.counters;
    let mut prepared: PreparedTraces =
        sessiontrace_ingest::traces::prepare(input, &state.ingest).inspect_err(|_| {
            Counters::add(&counters.requests_invalid, 1);
        })?;
    Counters::add(&counters.spans_received, prepared.received_spans);
    Counters::add(&counters.spans_rejected, prepared.rejected_spans);
    let outcome =
        TraceOutcome { rejected_spans: prepared.rejected_spans, rejection_message: prepared.rejection_message.take() };
    let held = std::mem::take(&mut prepared.held);
    let held_spans: u64 = held.iter().map(|h| h.entry.span_count as u64).sum();
    // Forwarding in `all` / `non-session` mode sees what was dropped too, so its bytes are taken first.
    let forward_held = state.forwarder.as_ref().filter(|_| !held.is_empty()).map(|_| {
        let mut bytes = Vec::new();
        for trace in &held {
            bytes.extend_from_slice(&trace.protobuf);
        }
        bytes
    });
    let forward_block =
        state.forwarder.as_ref().and(prepared.block.as_ref()).map(|b| (b.protobuf.clone(), b.traces.clone()));

    let mut released = crate::tail::Released::default();
    match &state.tail {
        Some(tail) => {
            Counters::add(&counters.spans_dropped, prepared.dropped_spans - held_spans);
            let decided: Vec<([u8; 16], KeepReason)> = prepared
                .block
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
                    match state.ingest.routing.decide(facts) {
                        Decision::Keep(reason @ (KeepReason::Error | KeepReason::Slow)) => {
                            Some((entry.trace_id, reason))
                        }
                        _ => None,
                    }
                })
                .collect();
            released = tail.on_kept(&decided, counters);
            let more = tail.on_held_traces(held, counters);
            released.blocks.extend(more.blocks);
            released.logs.extend(more.logs);
            released.forward_logs.append(more.forward_logs);
            released.error_spans += more.error_spans;
            released.slow_spans += more.slow_spans;
        }
        None => Counters::add(&counters.spans_dropped, prepared.dropped_spans),
    }

    let (block, saved) = match prepared.block.take() {
        Some(block) => state.continuous.intercept_traces(block).await?,
        None => (None, Saved::default()),
    };
    let released_blocks: Vec<Vec<u8>> = match &state.forwarder {
        Some(forwarder) if forwarder.wants(ForwardMode::Kept) => {
            released.blocks.iter().map(|b| b.protobuf.clone()).collect()
        }
        _ => Vec::new(),
    };
    let released_logs = std::mem::take(&mut released.forward_logs);
    let mut blocks: Vec<TraceBlock> = block.into_iter().collect();
    blocks.extend(released.blocks);
    let stored = write_with_saved(state, blocks, released.logs, saved).await?;
    Counters::add(&counters.spans_stored, stored.spans);
    Counters::add(&counters.logs_stored, stored.logs);
    Counters::add(&counters.spans_kept_session, prepared.kept_session_spans);
    Counters::add(&counters.spans_kept_error, prepared.kept_error_spans + released.error_spans);
    Counters::add(&counters.spans_kept_slow, prepared.kept_slow_spans + released.slow_spans);
    Counters::add(&counters.spans_kept_policy, prepared.kept_policy_spans);

    if let Some(forwarder) = &state.forwarder {
        let (kept_bytes, kept_index) = forward_block.unwrap_or_default();
        let kept_spans: u64 = kept_index.iter().map(|e| e.span_count as u64).sum();
        let held_bytes = forward_held.unwrap_or_default();
        if forwarder.wants(ForwardMode::Kept) {
            forwarder.offer(ForwardMode::Kept, Signal::Traces, &kept_bytes, kept_spans);
            for bytes in &released_blocks {
                let spans = count_spans(bytes);
                forwarder.offer(ForwardMode::Kept, Signal::Traces, bytes, spans);
            }
            forwarder.offer(ForwardMode::Kept, Signal::Logs, &released_logs.protobuf, released_logs.records);
        }
        if forwarder.wants(ForwardMode::All) {
            let mut all = kept_bytes.clone();
            all.extend_from_slice(&held_bytes);
            forwarder.offer(ForwardMode::All, Signal::Traces, &all, kept_spans + held_spans);
        }
        if forwarder.wants(ForwardMode::NonSession) {
            let session_ids: Vec<[u8; 16]> =
                kept_index.iter().filter(|e| e.session_key.is_some()).map(|e| e.trace_id).collect();
            let session_spans: u64 =
                kept_index.iter().filter(|e| e.session_key.is_some()).map(|e| e.span_count as u64).sum();
            let mut non_session = if session_ids.is_empty() {
                kept_bytes
            } else if session_spans == kept_spans {
                Vec::new()
            } else {
                let mut request = ExportTraceServiceRequest::decode(kept_bytes.as_slice()).unwrap_or_default();
                take_traces(&mut request, &session_ids);
                request.encode_to_vec()
            };
            non_session.extend_from_slice(&held_bytes);
            forwarder.offer(
                ForwardMode::NonSession,
                Signal::Traces,
                &non_session,
                kept_spans - session_spans + held_spans,
            );
        }
    }
    Ok(outcome)
}

fn count_spans(protobuf: &[u8]) -> u64 {
    ExportTraceServiceRequest::decode(protobuf)
        .map(|r| r.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len() as u64).sum())
        .unwrap_or(0)
}

/// What one write stored.
#[derive(Default)]
struct Stored {
    spans: u64,
    logs: u64,
}

/// Writes blocks and logs with what a continuous-session save took out of its windows, then the saved
/// replay chunks, then marks the sessions a trigger saved.
async fn write_with_saved(
    state: &AppState,
    mut blocks: Vec<TraceBlock>,
    mut logs: Vec<LogRecord>,
    saved: Saved,
) -> Result<Stored, ApiError> {
    let window_spans: u64 = saved.blocks.iter().map(|b| b.span_count as u64).sum();
    let window_logs = saved.logs.len() as u64;
    blocks.extend(saved.blocks);
    logs.extend(saved.logs);
    let stored = Stored { spans: blocks.iter().map(|b| b.span_count as u64).sum(), logs: logs.len() as u64 };
    if !blocks.is_empty() || !logs.is_empty() {
        let written = write(state, WriteBatch { trace_blocks: blocks, logs, ..Default::default() }).await;
        if written.is_err() && (window_spans > 0 || window_logs > 0 || !saved.replay.is_empty()) {
            // The client retries its own request; what came out of a continuous window is gone with
            // this failed write, so it is counted and logged rather than lost quietly.
            let counters = &state.counters;
            Counters::add(&counters.continuous_spans_expired, window_spans);
            Counters::add(&counters.continuous_logs_expired, window_logs);
            Counters::add(&counters.continuous_replay_expired, saved.replay.len() as u64);
            tracing::error!(
                spans = window_spans,
                logs = window_logs,
                replay_chunks = saved.replay.len(),
                "continuous window lost: the store write of its save failed"
            );
        }
        written?;
    }
    for chunk in saved.replay {
        let stored_chunk = state.store.put_replay_chunk(chunk).await?;
        let counter =
            if stored_chunk { &state.counters.replay_chunks_stored } else { &state.counters.replay_chunks_duplicate };
        Counters::add(counter, 1);
    }
    for id in saved.triggered_sessions {
        if let Some(mut session) = state.store.session(&id).await?
            && session.saved_at_ms.is_none()
        {
            session.saved_at_ms = Some(crate::endpoints::sessions::now_ms());
            state.store.update_session(&session).await?;
            Counters::add(&state.counters.continuous_saves, 1);
        }
    }
    Ok(stored)
}

/// `POST /api/sessions/{id}/save` of a continuous session: writes its window; later data is written
/// through. The caller sets `saved_at_ms`.
pub async fn save_continuous(state: &AppState, session: &Session) -> Result<(), ApiError> {
    let saved = state.continuous.save(session);
    let stored = write_with_saved(state, Vec::new(), Vec::new(), saved).await?;
    Counters::add(&state.counters.spans_stored, stored.spans);
    Counters::add(&state.counters.logs_stored, stored.logs);
    Counters::add(&state.counters.continuous_saves, 1);
    tracing::info!(session_id = %session.id, spans = stored.spans, logs = stored.logs, "continuous session saved");
    Ok(())
}

/// What a log export answers.
pub struct LogOutcome {
    pub rejected: u64,
    pub rejection_message: Option<String>,
}

/// Ingests one log request and returns once its records are durable.
pub async fn accept_logs(state: &AppState, input: LogInput) -> Result<LogOutcome, ApiError> {
    let counters = &state.counters;
    // Forwarding needs the request itself, so it is decoded here once, masked as for storage, and
    // handed to ingest decoded.
    let (input, forward_request) = match &state.forwarder {
        Some(_) => {
            let mut request = match input {
                LogInput::Protobuf(bytes) => from_protobuf::<ExportLogsServiceRequest>(&bytes, "logs"),
                LogInput::Json(bytes) => from_json::<ExportLogsServiceRequest>(&bytes, "resourceLogs"),
                LogInput::Decoded(request) => Ok(request),
            }
            .inspect_err(|_| Counters::add(&counters.requests_invalid, 1))?;
            mask_logs(&mut request, &state.ingest);
            (LogInput::Decoded(request.clone()), Some(request))
        }
        None => (input, None),
    };
    let mut prepared: PreparedLogs = sessiontrace_ingest::logs::prepare(input, &state.ingest).inspect_err(|_| {
        Counters::add(&counters.requests_invalid, 1);
    })?;
    Counters::add(&counters.logs_received, prepared.received);
    Counters::add(&counters.logs_rejected, prepared.rejected);
    let held = std::mem::take(&mut prepared.held);
    let held_count = held.len() as u64;
    let mut records = std::mem::take(&mut prepared.records);
    let mut released = crate::tail::Released::default();
    // Trace ids whose held logs this request keeps because the trace was kept after they arrived.
    let mut kept_late = HashSet::new();
    match &state.tail {
        Some(tail) => {
            Counters::add(&counters.logs_dropped, prepared.dropped - held_count);
            let error_traces: Vec<([u8; 16], KeepReason)> = records
                .iter()
                .filter(|log| log.session_key.is_none() && log.severity_number >= 17)
                .filter_map(|log| log.trace_id.map(|id| (id, KeepReason::Error)))
                .collect();
            released = tail.on_kept(&error_traces, counters);
            let forward_held = match (&state.forwarder, &forward_request) {
                (Some(forwarder), Some(request)) if forwarder.wants(ForwardMode::Kept) && !held.is_empty() => {
                    logs_by_trace(request, &held.iter().filter_map(|log| log.trace_id).collect())
                }
                _ => HashMap::new(),
            };
            let kept_now = tail.on_held_logs(held, forward_held, counters);
            kept_late.extend(kept_now.iter().filter_map(|log| log.trace_id));
            records.extend(kept_now);
        }
        None => Counters::add(&counters.logs_dropped, prepared.dropped),
    }
    for log in &records {
        let counter = match (&log.session_key, &log.trace_id) {
            (Some(_), _) => &counters.logs_kept_session,
            (None, Some(_)) => &counters.logs_kept_trace,
            (None, None) => &counters.logs_kept_untraced,
        };
        Counters::add(counter, 1);
    }
    let records = state.continuous.intercept_logs(records).await?;
    let mut logs = records;
    logs.extend(released.logs);
    let stored = write_with_saved(state, released.blocks, logs, Saved::default()).await?;
    Counters::add(&counters.logs_stored, stored.logs);
    Counters::add(&counters.spans_stored, stored.spans);
    Counters::add(&counters.spans_kept_error, released.error_spans);

    if let (Some(forwarder), Some(request)) = (&state.forwarder, forward_request) {
        forward_logs(state, forwarder, request, &kept_late);
        let released_logs = released.forward_logs;
        forwarder.offer(ForwardMode::Kept, Signal::Logs, &released_logs.protobuf, released_logs.records);
    }
    Ok(LogOutcome { rejected: prepared.rejected, rejection_message: prepared.rejection_message })
}

/// Masks a log request as for storage: attributes (headers, keys) and secrets in string bodies.
fn mask_logs(request: &mut ExportLogsServiceRequest, config: &sessiontrace_ingest::IngestConfig) {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    for resource_logs in &mut request.resource_logs {
        for log in resource_logs.scope_logs.iter_mut().flat_map(|s| s.log_records.iter_mut()) {
            normalize_attributes(&mut log.attributes, &config.masking, config.max_attribute_value_bytes);
            if let Some(Value::StringValue(body)) = log.body.as_mut().and_then(|b| b.value.as_mut())
                && let Some(masked) = config.masking.mask_body(body)
            {
                *body = masked;
            }
        }
    }
}

/// The logs of the given traces, one request per trace (resource and scope kept).
fn logs_by_trace(
    request: &ExportLogsServiceRequest,
    trace_ids: &HashSet<[u8; 16]>,
) -> HashMap<[u8; 16], crate::tail::ForwardLogs> {
    use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
    let mut by_trace: HashMap<[u8; 16], ExportLogsServiceRequest> = HashMap::new();
    for resource_logs in &request.resource_logs {
        for scope_logs in &resource_logs.scope_logs {
            for log in &scope_logs.log_records {
                let Ok(trace_id) = <[u8; 16]>::try_from(log.trace_id.as_slice()) else { continue };
                if !trace_ids.contains(&trace_id) {
                    continue;
                }
                let piece = by_trace.entry(trace_id).or_default();
                // One ResourceLogs/ScopeLogs per source scope: start a new pair when the source changed.
                let same_scope = piece.resource_logs.last().is_some_and(|r| {
                    r.resource == resource_logs.resource
                        && r.scope_logs.last().is_some_and(|s| s.scope == scope_logs.scope)
                });
                if !same_scope {
                    piece.resource_logs.push(ResourceLogs {
                        resource: resource_logs.resource.clone(),
                        scope_logs: vec![ScopeLogs {
                            scope: scope_logs.scope.clone(),
                            schema_url: scope_logs.schema_url.clone(),
                            log_records: Vec::new(),
                        }],
                        schema_url: resource_logs.schema_url.clone(),
                    });
                }
                let scope = piece.resource_logs.last_mut().and_then(|r| r.scope_logs.last_mut()).expect("pushed");
                scope.log_records.push(log.clone());
            }
        }
    }
    by_trace
        .into_iter()
        .map(|(trace_id, piece)| {
            (trace_id, crate::tail::ForwardLogs { protobuf: piece.encode_to_vec(), records: count_logs(&piece) })
        })
        .collect()
}

fn count_logs(request: &ExportLogsServiceRequest) -> u64 {
    request.resource_logs.iter().flat_map(|r| &r.scope_logs).map(|s| s.log_records.len() as u64).sum()
}

/// Offers a (masked) log request to the upstreams, filtered per mode. `kept` mode gets the logs kept
/// now: those the policy keeps and those of traces kept after they arrived (`kept_late`); logs held
/// for a tail decision follow when it releases them.
fn forward_logs(
    state: &AppState,
    forwarder: &crate::forward::Forwarder,
    request: ExportLogsServiceRequest,
    kept_late: &HashSet<[u8; 16]>,
) {
    let config = &state.ingest;
    let filtered = |keep: &dyn Fn(&opentelemetry_proto::tonic::logs::v1::LogRecord, Option<&str>) -> bool| {
        let mut copy = request.clone();
        for resource_logs in &mut copy.resource_logs {
            let attributes = resource_logs.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or(&[]);
            let resource_session = session_attribute(attributes).map(str::to_string);
            for scope_logs in &mut resource_logs.scope_logs {
                scope_logs.log_records.retain(|log| keep(log, resource_session.as_deref()));
            }
        }
        copy
    };
    let is_session = |log: &opentelemetry_proto::tonic::logs::v1::LogRecord, resource_session: Option<&str>| {
        session_key(&log.trace_id, &log.attributes, resource_session).is_some()
    };
    if forwarder.wants(ForwardMode::All) {
        forwarder.offer(ForwardMode::All, Signal::Logs, &request.encode_to_vec(), count_logs(&request));
    }
    if forwarder.wants(ForwardMode::NonSession) {
        let non_session = filtered(&|log, resource| !is_session(log, resource));
        forwarder.offer(ForwardMode::NonSession, Signal::Logs, &non_session.encode_to_vec(), count_logs(&non_session));
    }
    if forwarder.wants(ForwardMode::Kept) {
        let kept = filtered(&|log, resource| {
            let Ok(trace_id) = <[u8; 16]>::try_from(log.trace_id.as_slice()) else { return true };
            if kept_late.contains(&trace_id) {
                return true;
            }
            let facts = TraceFacts {
                trace_id: &trace_id,
                is_session: is_session(log, resource),
                has_error: log.severity_number >= 17,
                duration_ns: 0,
            };
            config.routing.decide(facts) != Decision::Drop
        });
        forwarder.offer(ForwardMode::Kept, Signal::Logs, &kept.encode_to_vec(), count_logs(&kept));
    }
}

/// Ingests one metrics request and returns once its points are durable.
pub async fn accept_metrics(state: &AppState, input: MetricInput) -> Result<(), ApiError> {
    // Metrics carry no trace: every mode forwards them all, as received.
    let forward_bytes = state.forwarder.as_ref().map(|_| match &input {
        MetricInput::Protobuf(bytes) => Some(bytes.clone()),
        MetricInput::Json(bytes) => {
            from_json::<ExportMetricsServiceRequest>(bytes, "resourceMetrics").ok().map(|r| r.encode_to_vec())
        }
        MetricInput::Decoded(request) => Some(request.encode_to_vec()),
    });
    let points = sessiontrace_ingest::metrics::prepare(input, &state.ingest).inspect_err(|_| {
        Counters::add(&state.counters.requests_invalid, 1);
    })?;
    let stored = points.len() as u64;
    write(state, WriteBatch { metric_points: points, ..Default::default() }).await?;
    Counters::add(&state.counters.metric_points_stored, stored);
    if let (Some(forwarder), Some(Some(bytes))) = (&state.forwarder, forward_bytes) {
        for mode in [ForwardMode::All, ForwardMode::NonSession, ForwardMode::Kept] {
            forwarder.offer(mode, Signal::Metrics, &bytes, stored);
        }
    }
    Ok(())
}

async fn write(state: &AppState, batch: WriteBatch) -> Result<(), ApiError> {
    state.store.write(batch).await.map_err(|error| {
        Counters::add(&state.counters.store_failures, 1);
        ApiError::from(error)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerConfig;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as Kind};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord as OtlpLog, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use std::sync::atomic::Ordering;

    #[test]
    fn forwarded_logs_are_masked_as_for_storage() {
        let text = |value: &str| Some(AnyValue { value: Some(Kind::StringValue(value.into())) });
        let mut request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![OtlpLog {
                        body: text(r#"{"user":"bob","password":"hunter2"}"#),
                        attributes: vec![KeyValue {
                            key: "http.request.header.authorization".into(),
                            value: text("Bearer abc"),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        mask_logs(&mut request, &sessiontrace_ingest::IngestConfig::default());
        let encoded = format!("{request:?}");
        assert!(!encoded.contains("hunter2") && !encoded.contains("Bearer abc"), "{encoded}");
        assert!(encoded.contains("bob"), "{encoded}");
    }

    fn state(change: impl FnOnce(&mut ServerConfig)) -> (AppState, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig { data_dir: dir.path().to_path_buf(), ..Default::default() };
        change(&mut config);
        (crate::build_state(config).unwrap(), dir)
    }

    fn spans(trace: [u8; 16], ids: &[u8]) -> Vec<u8> {
        let spans = ids
            .iter()
            .map(|id| Span {
                trace_id: trace.to_vec(),
                span_id: vec![*id; 8],
                name: format!("span{id}"),
                start_time_unix_nano: 1_000,
                end_time_unix_nano: 2_000,
                ..Default::default()
            })
            .collect();
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: "service.name".into(),
                        value: Some(AnyValue { value: Some(Kind::StringValue("api".into())) }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    }

    #[tokio::test]
    async fn the_default_config_stores_the_received_bytes() {
        let (state, _dir) = state(|_| {});
        assert!(state.tail.is_none() && state.forwarder.is_none());
        let bytes = spans([4; 16], &[1, 2]);
        accept_traces(&state, TraceInput::Protobuf(bytes.clone())).await.unwrap();
        assert_eq!(state.store.trace_blocks([4; 16]).await.unwrap(), vec![bytes]);
    }

    #[tokio::test]
    async fn an_error_log_keeps_the_held_spans_of_its_trace() {
        let (state, _dir) = state(|config| {
            config.sampling_ratio = 0.0;
            config.decision_wait_ms = 60_000;
        });
        let trace = [4; 16];
        accept_traces(&state, TraceInput::Protobuf(spans(trace, &[1, 2]))).await.unwrap();
        assert!(state.store.trace_blocks(trace).await.unwrap().is_empty());
        assert_eq!(state.counters.pending_spans.load(Ordering::Relaxed), 2);
        let log = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![OtlpLog { trace_id: trace.to_vec(), severity_number: 17, ..Default::default() }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        accept_logs(&state, LogInput::Decoded(log)).await.unwrap();
        assert_eq!(state.store.trace_blocks(trace).await.unwrap().len(), 1);
        assert_eq!(state.counters.pending_spans.load(Ordering::Relaxed), 0);
        assert_eq!(state.counters.spans_kept_error.load(Ordering::Relaxed), 2);
        // A straggler of the kept trace is kept on arrival.
        accept_traces(&state, TraceInput::Protobuf(spans(trace, &[3]))).await.unwrap();
        assert_eq!(state.store.trace_blocks(trace).await.unwrap().len(), 2);
        assert_eq!(state.counters.spans_stored.load(Ordering::Relaxed), 3);
        assert_eq!(state.counters.spans_dropped.load(Ordering::Relaxed), 0);
    }
}
