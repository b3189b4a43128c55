//! Request templates: each is one exporter batch from one service (one resource, one scope), holding whole
//! traces of `spans_per_trace` spans (a server root, client and database children, internal work). Trace ids
//! are recorded with their byte offsets in the encoded body so the driver can make them unique per send.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value::Value as Kind};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How the bodies are encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    HttpProtobuf,
    HttpJson,
    Grpc,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct WorkloadSpec {
    pub spans_per_request: usize,
    pub spans_per_trace: usize,
    /// Share of traces that belong to a session (0.0–1.0).
    pub session_share: f64,
    /// Share of traces with an error span (0.0–1.0).
    pub error_share: f64,
    /// Session short ids (8 hex) to use for session traces; random ones when empty.
    pub session_short_ids: Vec<String>,
    /// Distinct templates to cycle through.
    pub templates: usize,
    pub seed: u64,
}

impl Default for WorkloadSpec {
    fn default() -> Self {
        WorkloadSpec {
            spans_per_request: 200,
            spans_per_trace: 20,
            session_share: 0.1,
            error_share: 0.05,
            session_short_ids: Vec::new(),
            templates: 32,
            seed: 1,
        }
    }
}

/// One encoded request and where its trace ids are.
#[derive(Debug, Clone)]
pub struct Template {
    pub body: Vec<u8>,
    pub span_count: usize,
    /// Byte offsets of every trace-id occurrence (raw 16 bytes for protobuf, 32 hex chars for JSON).
    pub trace_id_offsets: Vec<usize>,
    /// For each offset, which trace of the request it belongs to (offsets of one trace share an index).
    pub trace_of_offset: Vec<usize>,
    pub trace_count: usize,
    /// For each trace of the request, whether it is a session trace (its first 7 bytes must be kept).
    pub trace_is_session: Vec<bool>,
}

const SERVICES: [&str; 4] = ["gateway", "orders", "inventory", "payments"];
const ROUTES: [&str; 6] = ["/api/cart", "/api/orders", "/api/orders/{id}", "/api/checkout", "/api/stock", "/api/pay"];

fn string(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(Kind::StringValue(value.into())) }),
        ..Default::default()
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(Kind::IntValue(value)) }), ..Default::default() }
}

fn boolean(key: &str, value: bool) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(Kind::BoolValue(value)) }), ..Default::default() }
}

fn trace_id(rng: &mut StdRng, session: Option<&[u8; 4]>) -> [u8; 16] {
    let mut id: [u8; 16] = rng.random();
    match session {
        Some(short) => {
            id[..3].copy_from_slice(&[0xde, 0xbd, 0xeb]);
            id[3..7].copy_from_slice(short);
        }
        // Never start a non-session id with a session prefix by chance.
        None => id[0] = 0x10 | (id[0] & 0x0f),
    }
    id
}

fn spans_of_trace(
    rng: &mut StdRng,
    service: &str,
    trace: [u8; 16],
    count: usize,
    error: bool,
    start: u64,
) -> Vec<Span> {
    let route = ROUTES[rng.random_range(0..ROUTES.len())];
    let mut spans = Vec::with_capacity(count);
    let root_id: [u8; 8] = rng.random();
    let total = 20_000_000 + rng.random_range(0..80_000_000u64);
    for index in 0..count {
        let is_root = index == 0;
        let span_id: [u8; 8] = if is_root { root_id } else { rng.random() };
        let offset = if is_root { 0 } else { rng.random_range(0..total / 2) };
        let duration = if is_root { total } else { rng.random_range(100_000..total / 2) };
        let kind = if is_root {
            SpanKind::Server
        } else if index % 3 == 0 {
            SpanKind::Client
        } else {
            SpanKind::Internal
        };
        let mut attributes = vec![
            string("http.request.method", if index % 4 == 0 { "POST" } else { "GET" }),
            string("url.path", route.replace("{id}", &rng.random_range(1000..9999).to_string())),
            string("http.route", route),
            int("http.response.status_code", if error && is_root { 500 } else { 200 }),
            string("server.address", format!("{service}.internal")),
            int("server.port", 8080),
            string("network.protocol.version", "1.1"),
            string("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0"),
            string("app.customer.tier", ["free", "pro", "enterprise"][index % 3]),
            int("app.cart.items", rng.random_range(0..12)),
            boolean("app.feature.new_checkout", index % 2 == 0),
            string("thread.name", format!("worker-{}", index % 8)),
        ];
        if kind == SpanKind::Client && index % 2 == 0 {
            attributes.push(string("db.system", "postgresql"));
            attributes.push(string("db.query.text", "SELECT id, sku, qty FROM stock WHERE sku = $1 FOR UPDATE"));
        }
        let mut events = Vec::new();
        if index % 10 == 5 {
            events.push(Event {
                time_unix_nano: start + offset + duration / 2,
                name: "cache.miss".into(),
                attributes: vec![string("cache.key", format!("sku:{}", rng.random_range(0..100_000)))],
                dropped_attributes_count: 0,
            });
        }
        let failed = error && index == count - 1;
        if failed {
            events.push(Event {
                time_unix_nano: start + offset + duration,
                name: "exception".into(),
                attributes: vec![
                    string("exception.type", "PaymentDeclined"),
                    string("exception.message", "card declined by issuer"),
                ],
                dropped_attributes_count: 0,
            });
        }
        spans.push(Span {
            trace_id: trace.to_vec(),
            span_id: span_id.to_vec(),
            parent_span_id: if is_root { vec![] } else { root_id.to_vec() },
            name: if is_root { format!("GET {route}") } else { format!("{} step {index}", service) },
            kind: kind as i32,
            start_time_unix_nano: start + offset,
            end_time_unix_nano: start + offset + duration,
            attributes,
            events,
            status: failed.then(|| Status { code: StatusCode::Error as i32, message: "declined".into() }),
            ..Default::default()
        });
    }
    spans
}

/// One request of `spec.spans_per_request` spans from `service`, with its trace ids.
pub fn request(
    spec: &WorkloadSpec,
    rng: &mut StdRng,
    service: &str,
    start: u64,
) -> (ExportTraceServiceRequest, Vec<([u8; 16], bool)>) {
    let traces = spec.spans_per_request.div_ceil(spec.spans_per_trace);
    let sessions: Vec<[u8; 4]> = spec
        .session_short_ids
        .iter()
        .filter_map(|s| hex::decode(s).ok().and_then(|b| <[u8; 4]>::try_from(b.as_slice()).ok()))
        .collect();
    let mut spans = Vec::with_capacity(spec.spans_per_request);
    let mut ids = Vec::with_capacity(traces);
    for trace_number in 0..traces {
        let is_session = rng.random_bool(spec.session_share.clamp(0.0, 1.0));
        let short = if sessions.is_empty() { rng.random() } else { sessions[rng.random_range(0..sessions.len())] };
        let id = trace_id(rng, is_session.then_some(&short));
        let count = spec.spans_per_trace.min(spec.spans_per_request - trace_number * spec.spans_per_trace);
        let error = rng.random_bool(spec.error_share.clamp(0.0, 1.0));
        spans.extend(spans_of_trace(rng, service, id, count, error, start + trace_number as u64 * 1_000_000));
        ids.push((id, is_session));
    }
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    string("service.name", service),
                    string("service.version", "1.4.2"),
                    string("deployment.environment.name", "production"),
                    string("host.name", format!("{service}-7d9f8b-x2k4q")),
                    string("telemetry.sdk.language", "rust"),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "sessiontrace-loadgen".into(),
                    version: "0.1.0".into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    (request, ids)
}

fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    haystack.windows(needle.len()).enumerate().filter(|(_, w)| *w == needle).map(|(i, _)| i).collect()
}

/// Encodes `spec.templates` requests in `protocol`, with the offsets of their trace ids.
pub fn templates(spec: &WorkloadSpec, protocol: Protocol) -> Vec<Template> {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let start = 1_790_000_000_000_000_000u64;
    (0..spec.templates)
        .map(|number| {
            let service = SERVICES[number % SERVICES.len()];
            let (request, ids) = request(spec, &mut rng, service, start + number as u64 * 1_000_000_000);
            let body = match protocol {
                Protocol::HttpProtobuf | Protocol::Grpc => request.encode_to_vec(),
                Protocol::HttpJson => serde_json::to_vec(&request).expect("OTLP JSON"),
            };
            let mut trace_id_offsets = Vec::new();
            let mut trace_of_offset = Vec::new();
            for (trace_number, (id, _)) in ids.iter().enumerate() {
                let needle = match protocol {
                    Protocol::HttpJson => hex::encode(id).into_bytes(),
                    _ => id.to_vec(),
                };
                for offset in find_all(&body, &needle) {
                    trace_id_offsets.push(offset);
                    trace_of_offset.push(trace_number);
                }
            }
            Template {
                span_count: request.resource_spans[0].scope_spans[0].spans.len(),
                body,
                trace_id_offsets,
                trace_of_offset,
                trace_count: ids.len(),
                trace_is_session: ids.iter().map(|(_, s)| *s).collect(),
            }
        })
        .collect()
}

/// A random salt for [`patch_trace_ids`]: another run's trace ids differ from this one's.
pub fn new_salt() -> u64 {
    rand::random::<u64>() & 0x00ff_ffff_ffff_ffff
}

/// Writes a unique tail into every trace id of `body` (a copy of `template.body`): the last 8 bytes of
/// trace `t` become `unique * 64 + t` mixed with `salt`, so no two sends share a trace id.
pub fn patch_trace_ids(template: &Template, body: &mut [u8], protocol: Protocol, unique: u64, salt: u64) {
    for (offset, trace) in template.trace_id_offsets.iter().zip(&template.trace_of_offset) {
        let tail = ((unique << 6) | *trace as u64) ^ salt;
        match protocol {
            Protocol::HttpJson => {
                let text = hex::encode(tail.to_be_bytes());
                body[offset + 16..offset + 32].copy_from_slice(text.as_bytes());
            }
            _ => body[offset + 8..offset + 16].copy_from_slice(&tail.to_be_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_realistic_and_ids_patchable() {
        let spec = WorkloadSpec { templates: 4, ..Default::default() };
        let templates = templates(&spec, Protocol::HttpProtobuf);
        let bytes_per_span = templates.iter().map(|t| t.body.len()).sum::<usize>()
            / templates.iter().map(|t| t.span_count).sum::<usize>();
        assert!((350..650).contains(&bytes_per_span), "{bytes_per_span} bytes per span");
        assert_eq!(templates[0].trace_id_offsets.len(), 200, "one trace id per span");
        let mut body = templates[0].body.clone();
        patch_trace_ids(&templates[0], &mut body, Protocol::HttpProtobuf, 7, 0);
        let decoded = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
        let first = &decoded.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(&first.trace_id[8..], &(7u64 << 6).to_be_bytes());

        let json = super::templates(&WorkloadSpec { templates: 1, ..Default::default() }, Protocol::HttpJson);
        let mut body = json[0].body.clone();
        patch_trace_ids(&json[0], &mut body, Protocol::HttpJson, 9, 0);
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let id = value["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"].as_str().unwrap();
        assert!(id.ends_with(&hex::encode((9u64 << 6).to_be_bytes())), "{id}");
    }
}
