//! The forward stage of the pipeline: what each upstream's mode gets of a request, offered after the
//! store write (never waited for). `all` and `non-session` see what arrived, dropped traces included, so
//! their bytes are taken before the tail stage holds them; `kept` sees what the routing kept, tail
//! releases included. Forwarded logs are masked as stored ones are.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::LogRecord as OtlpLog;
use prost::Message;
use sessiontrace_ingest::decode::{from_json, from_protobuf};
use sessiontrace_ingest::logs::LogInput;
use sessiontrace_ingest::metrics::MetricInput;
use sessiontrace_ingest::normalize::{normalize_attributes, session_attribute, session_key};
use sessiontrace_ingest::route::{Decision, TraceFacts, take_traces};
use sessiontrace_ingest::traces::HeldTrace;
use sessiontrace_ingest::{IngestConfig, IngestError};
use sessiontrace_model::records::{TraceBlock, TraceIndexEntry};

use super::{ForwardMode, Forwarder};
use crate::signal::Signal;
use crate::tail::{ForwardLogs, Released};

/// The stage: the forwarder and the routing policy that `kept` mode applies to logs.
pub struct ForwardStage {
    forwarder: Arc<Forwarder>,
    ingest: Arc<IngestConfig>,
}

/// A trace request as it arrived: the kept block's bytes and index, and the dropped traces' bytes.
pub struct ArrivedTraces {
    kept_bytes: Vec<u8>,
    kept_index: Vec<TraceIndexEntry>,
    held_bytes: Vec<u8>,
    held_spans: u64,
}

/// What a tail decision released, for `kept` upstreams.
#[derive(Default)]
pub struct ReleasedTraces {
    blocks: Vec<Vec<u8>>,
    logs: ForwardLogs,
}

impl ForwardStage {
    pub fn new(forwarder: Arc<Forwarder>, ingest: Arc<IngestConfig>) -> Self {
        ForwardStage { forwarder, ingest }
    }

    pub fn forwarder(&self) -> &Arc<Forwarder> {
        &self.forwarder
    }

    /// Copies what arrived before the later stages take it apart.
    pub fn arrived_traces(&self, block: Option<&TraceBlock>, held: &[HeldTrace]) -> ArrivedTraces {
        let (kept_bytes, kept_index) = block.map(|b| (b.protobuf.clone(), b.traces.clone())).unwrap_or_default();
        let mut held_bytes = Vec::new();
        for trace in held {
            held_bytes.extend_from_slice(&trace.protobuf);
        }
        let held_spans = held.iter().map(|h| h.entry.span_count as u64).sum();
        ArrivedTraces { kept_bytes, kept_index, held_bytes, held_spans }
    }

    /// Takes what `kept` upstreams need of a tail release before its blocks are written.
    pub fn released_traces(&self, released: &mut Released) -> ReleasedTraces {
        let blocks = if self.forwarder.wants(ForwardMode::Kept) {
            released.blocks.iter().map(|b| b.protobuf.clone()).collect()
        } else {
            Vec::new()
        };
        ReleasedTraces { blocks, logs: std::mem::take(&mut released.forward_logs) }
    }

    /// Offers a trace request to every upstream, each in its mode.
    pub fn offer_traces(&self, arrived: ArrivedTraces, released: ReleasedTraces) {
        let forwarder = &self.forwarder;
        let ArrivedTraces { kept_bytes, kept_index, held_bytes, held_spans } = arrived;
        let kept_spans: u64 = kept_index.iter().map(|e| e.span_count as u64).sum();
        if forwarder.wants(ForwardMode::Kept) {
            forwarder.offer(ForwardMode::Kept, Signal::Traces, &kept_bytes, kept_spans);
            for bytes in &released.blocks {
                forwarder.offer(ForwardMode::Kept, Signal::Traces, bytes, count_spans(bytes));
            }
            forwarder.offer(ForwardMode::Kept, Signal::Logs, &released.logs.protobuf, released.logs.records);
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
            let spans = kept_spans - session_spans + held_spans;
            forwarder.offer(ForwardMode::NonSession, Signal::Traces, &non_session, spans);
        }
    }

    /// Forwarding needs the log request itself: it is decoded here once, masked as for storage, and
    /// handed on to ingest decoded.
    pub fn decode_logs(&self, input: LogInput) -> Result<(LogInput, ExportLogsServiceRequest), IngestError> {
        let mut request = match input {
            LogInput::Protobuf(bytes) => from_protobuf::<ExportLogsServiceRequest>(&bytes, "logs"),
            LogInput::Json(bytes) => from_json::<ExportLogsServiceRequest>(&bytes, "resourceLogs"),
            LogInput::Decoded(request) => Ok(request),
        }?;
        mask_logs(&mut request, &self.ingest);
        Ok((LogInput::Decoded(request.clone()), request))
    }

    /// The OTLP form of held logs, by trace, when a `kept` upstream will want them on release.
    pub fn held_logs(
        &self,
        request: &ExportLogsServiceRequest,
        held: &[sessiontrace_model::records::LogRecord],
    ) -> HashMap<[u8; 16], ForwardLogs> {
        if !self.forwarder.wants(ForwardMode::Kept) || held.is_empty() {
            return HashMap::new();
        }
        logs_by_trace(request, &held.iter().filter_map(|log| log.trace_id).collect())
    }

    /// Offers a (masked) log request to the upstreams, filtered per mode. `kept` mode gets the logs kept
    /// now: those the policy keeps and those of traces kept after they arrived (`kept_late`), then what
    /// a tail decision released; logs held for a later decision follow when it releases them.
    pub fn offer_logs(&self, request: ExportLogsServiceRequest, kept_late: &HashSet<[u8; 16]>, released: ForwardLogs) {
        let forwarder = &self.forwarder;
        let filtered = |keep: &dyn Fn(&OtlpLog, Option<&str>) -> bool| {
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
        let is_session = |log: &OtlpLog, resource_session: Option<&str>| {
            session_key(&log.trace_id, &log.attributes, resource_session).is_some()
        };
        if forwarder.wants(ForwardMode::All) {
            forwarder.offer(ForwardMode::All, Signal::Logs, &request.encode_to_vec(), count_logs(&request));
        }
        if forwarder.wants(ForwardMode::NonSession) {
            let non_session = filtered(&|log, resource| !is_session(log, resource));
            let count = count_logs(&non_session);
            forwarder.offer(ForwardMode::NonSession, Signal::Logs, &non_session.encode_to_vec(), count);
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
                self.ingest.routing.decide(facts) != Decision::Drop
            });
            forwarder.offer(ForwardMode::Kept, Signal::Logs, &kept.encode_to_vec(), count_logs(&kept));
        }
        forwarder.offer(ForwardMode::Kept, Signal::Logs, &released.protobuf, released.records);
    }

    /// Metrics carry no trace: every mode gets them all, as received (protobuf).
    pub fn metrics_bytes(&self, input: &MetricInput) -> Option<Vec<u8>> {
        match input {
            MetricInput::Protobuf(bytes) => Some(bytes.clone()),
            MetricInput::Json(bytes) => {
                from_json::<ExportMetricsServiceRequest>(bytes, "resourceMetrics").ok().map(|r| r.encode_to_vec())
            }
            MetricInput::Decoded(request) => Some(request.encode_to_vec()),
        }
    }

    pub fn offer_metrics(&self, bytes: &[u8], points: u64) {
        for mode in [ForwardMode::All, ForwardMode::NonSession, ForwardMode::Kept] {
            self.forwarder.offer(mode, Signal::Metrics, bytes, points);
        }
    }
}

fn count_spans(protobuf: &[u8]) -> u64 {
    ExportTraceServiceRequest::decode(protobuf)
        .map(|r| r.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len() as u64).sum())
        .unwrap_or(0)
}

fn count_logs(request: &ExportLogsServiceRequest) -> u64 {
    request.resource_logs.iter().flat_map(|r| &r.scope_logs).map(|s| s.log_records.len() as u64).sum()
}

/// Masks a log request as for storage: attributes (headers, keys) and secrets in string bodies.
fn mask_logs(request: &mut ExportLogsServiceRequest, config: &IngestConfig) {
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
fn logs_by_trace(request: &ExportLogsServiceRequest, trace_ids: &HashSet<[u8; 16]>) -> HashMap<[u8; 16], ForwardLogs> {
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
            (trace_id, ForwardLogs { protobuf: piece.encode_to_vec(), records: count_logs(&piece) })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as Kind};
    use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};

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
        mask_logs(&mut request, &IngestConfig::default());
        let encoded = format!("{request:?}");
        assert!(!encoded.contains("hunter2") && !encoded.contains("Bearer abc"), "{encoded}");
        assert!(encoded.contains("bob"), "{encoded}");
    }
}
