//! OTLP trace requests to a [`TraceBlock`]: ids checked (a span with a bad id is rejected and reported
//! through OTLP partial success; a request with only bad spans is refused), attributes normalized and
//! masked, each trace routed, and the per-trace index built. The block keeps the received protobuf bytes
//! untouched when nothing had to change, so the common case costs one decode and no encode.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use prost::Message;
use sessiontrace_model::records::{TraceBlock, TraceIndexEntry};

use crate::anyvalue::string_attribute;
use crate::decode::{from_json, from_protobuf};
use crate::index::{IndexBuilder, SpanFacts};
use crate::normalize::{check_id, normalize_attributes, session_attribute, session_key};
use crate::route::{Decision, KeepReason, TraceFacts, take_traces};
use crate::scan::scan_traces;
use crate::{IngestConfig, IngestError};

/// A trace request as it arrived.
pub enum TraceInput {
    /// OTLP protobuf bytes (already decompressed).
    Protobuf(Vec<u8>),
    /// OTLP JSON bytes (already decompressed).
    Json(Vec<u8>),
    /// Already decoded (the gRPC receiver).
    Decoded(ExportTraceServiceRequest),
}

/// The outcome of one request.
#[derive(Debug, Default)]
pub struct PreparedTraces {
    /// What to store; `None` when no span is kept.
    pub block: Option<TraceBlock>,
    pub received_spans: u64,
    /// Spans refused for bad ids (OTLP partial success `rejected_spans`).
    pub rejected_spans: u64,
    /// What was wrong with the first refused span.
    pub rejection_message: Option<String>,
    /// Spans kept, by the reason they were kept.
    pub kept_session_spans: u64,
    pub kept_error_spans: u64,
    pub kept_slow_spans: u64,
    pub kept_policy_spans: u64,
    /// Spans the routing policy dropped (held ones included).
    pub dropped_spans: u64,
    /// With [`RoutingPolicy::hold_dropped`](crate::route::RoutingPolicy::hold_dropped): the dropped traces,
    /// one request each, for the server's tail buffer and forwarder. Empty otherwise.
    pub held: Vec<HeldTrace>,
    /// The fast path's index, until the block is built.
    pending_index: Vec<TraceIndexEntry>,
}

/// A trace the policy dropped, handed back whole (as far as this request holds it).
#[derive(Debug, Clone)]
pub struct HeldTrace {
    pub entry: TraceIndexEntry,
    /// An `ExportTraceServiceRequest` with only this trace's spans, protobuf-encoded.
    pub protobuf: Vec<u8>,
}

/// The service name in a resource's attributes, or `unknown_service` as the OpenTelemetry spec says.
pub fn service_name(attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue]) -> String {
    string_attribute(attributes, "service.name").unwrap_or("unknown_service").to_string()
}

/// Decodes, checks, normalizes, routes and indexes one trace request. Protobuf requests first try the
/// [`scan`](crate::scan) fast path, which stores the received bytes as they are; anything it cannot vouch
/// for takes the full decode below, with the same result.
pub fn prepare(input: TraceInput, config: &IngestConfig) -> Result<PreparedTraces, IngestError> {
    let (mut request, mut original) = match input {
        TraceInput::Protobuf(bytes) => {
            if let Some((index, span_count)) = scan_traces(&bytes, config)
                && let Some(outcome) = route_unchanged(index, span_count, config)
            {
                return Ok(outcome.with_block(bytes));
            }
            (from_protobuf::<ExportTraceServiceRequest>(&bytes, "trace")?, Some(bytes))
        }
        TraceInput::Json(bytes) => (from_json::<ExportTraceServiceRequest>(&bytes, "resourceSpans")?, None),
        TraceInput::Decoded(request) => (request, None),
    };
    let mut outcome = PreparedTraces::default();
    let mut changed = false;
    let mut builder = IndexBuilder::default();

    for (resource_number, resource_spans) in request.resource_spans.iter_mut().enumerate() {
        let resource_attributes = resource_spans.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or(&[]);
        let service = service_name(resource_attributes);
        let resource_session = session_attribute(resource_attributes).map(str::to_string);
        for scope_spans in &mut resource_spans.scope_spans {
            let before = scope_spans.spans.len();
            outcome.received_spans += before as u64;
            scope_spans.spans.retain_mut(|span| {
                let ids_ok = check_id(&span.trace_id, 16, "trace_id", false)
                    .and_then(|_| check_id(&span.span_id, 8, "span_id", false))
                    .and_then(|_| check_id(&span.parent_span_id, 8, "parent_span_id", true));
                if let Err(message) = ids_ok {
                    outcome.rejected_spans += 1;
                    outcome
                        .rejection_message
                        .get_or_insert_with(|| format!("span {:?} (resource {resource_number}): {message}", span.name));
                    return false;
                }
                changed |=
                    normalize_attributes(&mut span.attributes, &config.masking, config.max_attribute_value_bytes);
                builder.add(SpanFacts {
                    trace_id: span.trace_id.as_slice().try_into().expect("checked length"),
                    session_key: session_key(&span.trace_id, &span.attributes, resource_session.as_deref()),
                    service: &service,
                    name: span.name.as_bytes(),
                    start_unix_nano: span.start_time_unix_nano,
                    end_unix_nano: span.end_time_unix_nano,
                    has_error: span.status.as_ref().is_some_and(|s| s.code == StatusCode::Error as i32)
                        || span.events.iter().any(|e| e.name == "exception"),
                    is_true_root: span.parent_span_id.is_empty(),
                });
                true
            });
            changed |= scope_spans.spans.len() != before;
        }
    }

    if outcome.received_spans > 0 && outcome.rejected_spans == outcome.received_spans {
        let message = outcome.rejection_message.take().unwrap_or_default();
        return Err(IngestError::InvalidRequest(format!("every span was rejected; first: {message}")));
    }

    let mut index = builder.finish();
    let dropped = outcome.route(&mut index, config);
    if !dropped.is_empty() {
        changed = true;
        if config.routing.hold_dropped {
            let ids: Vec<[u8; 16]> = dropped.iter().map(|entry| entry.trace_id).collect();
            let pieces = take_traces(&mut request, &ids);
            outcome.held = dropped
                .into_iter()
                .zip(pieces)
                .map(|(entry, piece)| HeldTrace { entry, protobuf: piece.encode_to_vec() })
                .collect();
        } else {
            for scope_spans in request.resource_spans.iter_mut().flat_map(|r| r.scope_spans.iter_mut()) {
                scope_spans.spans.retain(|span| !dropped.iter().any(|entry| span.trace_id == entry.trace_id));
            }
        }
    }
    if index.is_empty() {
        return Ok(outcome);
    }
    if changed {
        for resource_spans in &mut request.resource_spans {
            resource_spans.scope_spans.retain(|s| !s.spans.is_empty());
        }
        request.resource_spans.retain(|r| !r.scope_spans.is_empty());
        original = None;
    }
    let span_count = index.iter().map(|e| e.span_count).sum();
    let protobuf = original.unwrap_or_else(|| request.encode_to_vec());
    outcome.block = Some(TraceBlock { protobuf, span_count, traces: index });
    Ok(outcome)
}

/// Routing of a fast-path request: `None` when a trace is dropped, since dropping means rewriting.
fn route_unchanged(mut index: Vec<TraceIndexEntry>, span_count: u64, config: &IngestConfig) -> Option<PreparedTraces> {
    let mut outcome = PreparedTraces { received_spans: span_count, ..Default::default() };
    let dropped = outcome.route(&mut index, config);
    if !dropped.is_empty() {
        return None;
    }
    outcome.pending_index = index;
    Some(outcome)
}

impl PreparedTraces {
    /// Decides every trace of `index`, counts spans by decision, removes dropped traces from the index
    /// and returns their entries.
    fn route(&mut self, index: &mut Vec<TraceIndexEntry>, config: &IngestConfig) -> Vec<TraceIndexEntry> {
        let mut dropped = Vec::new();
        index.retain(|entry| {
            let facts = TraceFacts {
                trace_id: &entry.trace_id,
                is_session: entry.session_key.is_some(),
                has_error: entry.error_count > 0,
                duration_ns: entry.end_unix_nano.saturating_sub(entry.start_unix_nano).max(0) as u64,
            };
            let spans = entry.span_count as u64;
            match config.routing.decide(facts) {
                Decision::Keep(KeepReason::Session) => self.kept_session_spans += spans,
                Decision::Keep(KeepReason::Error) => self.kept_error_spans += spans,
                Decision::Keep(KeepReason::Slow) => self.kept_slow_spans += spans,
                Decision::Keep(KeepReason::Policy) => self.kept_policy_spans += spans,
                Decision::Drop => {
                    self.dropped_spans += spans;
                    dropped.push(entry.clone());
                    return false;
                }
            }
            true
        });
        dropped
    }

    /// The fast path's block: the received bytes with the index the scan built.
    fn with_block(mut self, protobuf: Vec<u8>) -> Self {
        let index = std::mem::take(&mut self.pending_index);
        if !index.is_empty() {
            let span_count = index.iter().map(|e| e.span_count).sum();
            self.block = Some(TraceBlock { protobuf, span_count, traces: index });
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::RoutingPolicy;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as Kind};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(Kind::StringValue(value.into())) }),
            ..Default::default()
        }
    }

    fn span(trace: [u8; 16], id: u8, parent: Option<u8>, error: bool) -> Span {
        Span {
            trace_id: trace.to_vec(),
            span_id: vec![id; 8],
            parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
            name: format!("span{id}"),
            start_time_unix_nano: 1_000 + id as u64,
            end_time_unix_nano: 2_000 + id as u64,
            status: error.then(|| Status { code: StatusCode::Error as i32, message: "boom".into() }),
            ..Default::default()
        }
    }

    fn request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource { attributes: vec![kv("service.name", service)], ..Default::default() }),
                scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
                ..Default::default()
            }],
        }
    }

    const SESSION_TRACE: [u8; 16] = [0xde, 0xbd, 0xeb, 0xaa, 0xbb, 0xcc, 0xdd, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    const OTHER_TRACE: [u8; 16] = [5; 16];

    #[test]
    fn untouched_protobuf_is_stored_as_received() {
        let bytes = request("api", vec![span(OTHER_TRACE, 1, None, false), span(OTHER_TRACE, 2, Some(1), false)])
            .encode_to_vec();
        let outcome = prepare(TraceInput::Protobuf(bytes.clone()), &IngestConfig::default()).unwrap();
        let block = outcome.block.unwrap();
        assert_eq!(block.protobuf, bytes);
        assert_eq!(block.span_count, 2);
        assert_eq!(
            block.traces,
            vec![TraceIndexEntry {
                trace_id: OTHER_TRACE,
                session_key: None,
                services: vec!["api".into()],
                start_unix_nano: 1_001,
                end_unix_nano: 2_002,
                span_count: 2,
                error_count: 0,
                root: Some(("span1".into(), "api".into())),
            }]
        );
    }

    #[test]
    fn a_trace_continued_from_elsewhere_uses_its_earliest_span_as_root() {
        let mut server = span(OTHER_TRACE, 2, Some(9), false);
        server.start_time_unix_nano = 500;
        let child = span(OTHER_TRACE, 3, Some(2), false);
        let outcome =
            prepare(TraceInput::Decoded(request("api", vec![child, server])), &IngestConfig::default()).unwrap();
        assert_eq!(outcome.block.unwrap().traces[0].root, Some(("span2".into(), "api".into())));
        let with_root = vec![span(OTHER_TRACE, 3, Some(2), false), span(OTHER_TRACE, 1, None, false)];
        let outcome = prepare(TraceInput::Decoded(request("api", with_root)), &IngestConfig::default()).unwrap();
        assert_eq!(outcome.block.unwrap().traces[0].root, Some(("span1".into(), "api".into())));
    }

    #[test]
    fn bad_ids_are_rejected_partially_or_wholly() {
        let mut bad = span(OTHER_TRACE, 3, None, false);
        bad.trace_id = vec![0; 16];
        let mixed = request("api", vec![span(OTHER_TRACE, 1, None, false), bad.clone()]);
        let outcome = prepare(TraceInput::Decoded(mixed), &IngestConfig::default()).unwrap();
        assert_eq!((outcome.rejected_spans, outcome.block.unwrap().span_count), (1, 1));
        assert!(outcome.rejection_message.unwrap().contains("trace_id must not be all zeros"));
        let error = prepare(TraceInput::Decoded(request("api", vec![bad])), &IngestConfig::default()).unwrap_err();
        assert!(error.to_string().contains("all zeros"), "{error}");
        assert!(prepare(TraceInput::Protobuf(vec![0xff, 0xff, 0xff]), &IngestConfig::default()).is_err());
    }

    #[test]
    fn routing_keeps_sessions_and_errors_whole() {
        let config = IngestConfig { routing: RoutingPolicy::with_ratio(0.0), ..Default::default() };
        let mut spans = vec![span(SESSION_TRACE, 1, None, false), span(OTHER_TRACE, 2, None, false)];
        let error_trace = [6u8; 16];
        spans.push(span(error_trace, 3, None, false));
        spans.push(span(error_trace, 4, Some(3), true));
        let mut with_attribute = span([8; 16], 5, None, false);
        with_attribute.attributes.push(kv("session.id", "s-long-id"));
        spans.push(with_attribute);
        let outcome = prepare(TraceInput::Decoded(request("api", spans)), &config).unwrap();
        let block = outcome.block.unwrap();
        let kept: Vec<_> = block.traces.iter().map(|t| (t.trace_id, t.session_key.clone())).collect();
        assert_eq!(
            kept,
            vec![(SESSION_TRACE, Some("aabbccdd".into())), (error_trace, None), ([8; 16], Some("s-long-id".into()))]
        );
        assert_eq!((outcome.kept_session_spans, outcome.kept_error_spans, outcome.dropped_spans), (2, 2, 1));
        let stored = ExportTraceServiceRequest::decode(block.protobuf.as_slice()).unwrap();
        assert_eq!(stored.resource_spans[0].scope_spans[0].spans.len(), 4);
    }

    #[test]
    fn dropped_traces_are_handed_back_when_held() {
        let mut routing = RoutingPolicy::with_ratio(0.0);
        routing.hold_dropped = true;
        routing.slow_trace_ns = Some(5_000);
        let config = IngestConfig { routing, ..Default::default() };
        let mut slow = span([9; 16], 7, None, false);
        slow.end_time_unix_nano = 10_000;
        let spans = vec![
            span(OTHER_TRACE, 1, None, false),
            span(SESSION_TRACE, 2, None, false),
            span(OTHER_TRACE, 3, Some(1), false),
            slow,
        ];
        let bytes = request("api", spans).encode_to_vec();
        let outcome = prepare(TraceInput::Protobuf(bytes), &config).unwrap();
        assert_eq!((outcome.kept_session_spans, outcome.kept_slow_spans, outcome.dropped_spans), (1, 1, 2));
        let block = outcome.block.unwrap();
        assert_eq!(block.traces.iter().map(|t| t.trace_id).collect::<Vec<_>>(), vec![SESSION_TRACE, [9; 16]]);
        assert_eq!(outcome.held.len(), 1);
        assert_eq!((outcome.held[0].entry.trace_id, outcome.held[0].entry.span_count), (OTHER_TRACE, 2));
        let held = ExportTraceServiceRequest::decode(outcome.held[0].protobuf.as_slice()).unwrap();
        let names: Vec<_> = held.resource_spans[0].scope_spans[0].spans.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, vec!["span1", "span3"]);
        assert_eq!(service_name(&held.resource_spans[0].resource.as_ref().unwrap().attributes), "api");
    }

    #[test]
    fn masking_reencodes_the_block() {
        let mut secret = span(SESSION_TRACE, 1, None, false);
        secret.attributes.push(kv("http.request.body", r#"{"password":"hunter2"}"#));
        let bytes = request("api", vec![secret]).encode_to_vec();
        let block = prepare(TraceInput::Protobuf(bytes.clone()), &IngestConfig::default()).unwrap().block.unwrap();
        assert_ne!(block.protobuf, bytes);
        let text = String::from_utf8_lossy(&block.protobuf);
        assert!(text.contains("***MASKED***") && !text.contains("hunter2"));
    }
}
