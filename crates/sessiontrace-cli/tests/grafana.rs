//! Grafana's Tempo and Jaeger data sources and Jaeger UI against the real binary (issue 16): spans seeded
//! over OTLP/HTTP with an ingest key, then the requests those clients send (headers, parameters, units),
//! answers decoded the way they decode them — protobuf with Tempo's published field numbers (our own
//! message definitions below), JSON into structs that reject unknown fields, a golden file for Jaeger's
//! model — every supported TraceQL construct checked against a brute-force filter of the same spans, the
//! trace → session redirect, and a read key of another project that sees nothing.
//!
//! Runs with `SESSIONTRACE_TEST_STORE=clickhouse` too.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as Kind};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span::SpanKind, status::StatusCode,
};
use prost::Message;
use reqwest::blocking::{Client, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use support::RunningServer;

// ---- Tempo's protobuf, from the published field numbers ----

#[derive(Clone, PartialEq, prost::Message)]
struct TempoTrace {
    #[prost(message, repeated, tag = "1")]
    resource_spans: Vec<ResourceSpans>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TraceByIdResponse {
    #[prost(message, optional, tag = "1")]
    trace: Option<TempoTrace>,
    #[prost(int32, tag = "3")]
    status: i32,
    #[prost(string, tag = "4")]
    message: String,
}

// ---- Tempo's JSON, strictly ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchResponse {
    traces: Vec<TraceSearchMetadata>,
    metrics: SearchMetrics,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SearchMetrics {
    inspected_traces: u32,
    inspected_bytes: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TraceSearchMetadata {
    #[serde(rename = "traceID")]
    trace_id: String,
    #[serde(rename = "rootServiceName")]
    root_service_name: String,
    #[serde(rename = "rootTraceName")]
    root_trace_name: String,
    #[serde(rename = "startTimeUnixNano")]
    start_time_unix_nano: String,
    #[serde(rename = "durationMs")]
    duration_ms: u32,
    #[serde(rename = "spanSets")]
    span_sets: Vec<SpanSet>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpanSet {
    spans: Vec<SearchSpan>,
    matched: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchSpan {
    #[serde(rename = "spanID")]
    span_id: String,
    name: String,
    #[serde(rename = "startTimeUnixNano")]
    start_time_unix_nano: String,
    #[serde(rename = "durationNanos")]
    duration_nanos: String,
    attributes: Vec<SearchAttribute>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchAttribute {
    key: String,
    value: BTreeMap<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TagsResponse {
    scopes: Vec<TagScope>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TagScope {
    name: String,
    tags: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TagValuesResponse {
    tag_values: Vec<TagValue>,
}

#[derive(Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
struct TagValue {
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

// ---- Jaeger's JSON model, strictly (not every decoded field is checked: hence dead_code) ----

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JaegerResponse<T> {
    data: T,
    total: usize,
    limit: usize,
    offset: usize,
    errors: Option<Vec<Value>>,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct JaegerTrace {
    #[serde(rename = "traceID")]
    trace_id: String,
    spans: Vec<JaegerSpan>,
    processes: BTreeMap<String, JaegerProcess>,
    warnings: Option<Vec<String>>,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct JaegerSpan {
    #[serde(rename = "traceID")]
    trace_id: String,
    #[serde(rename = "spanID")]
    span_id: String,
    operation_name: String,
    references: Vec<JaegerReference>,
    start_time: u64,
    duration: u64,
    tags: Vec<JaegerTag>,
    logs: Vec<JaegerLog>,
    #[serde(rename = "processID")]
    process_id: String,
    warnings: Option<Vec<String>>,
    flags: u32,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct JaegerReference {
    ref_type: String,
    #[serde(rename = "traceID")]
    trace_id: String,
    #[serde(rename = "spanID")]
    span_id: String,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JaegerTag {
    key: String,
    #[serde(rename = "type")]
    kind: String,
    value: Value,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JaegerLog {
    timestamp: u64,
    fields: Vec<JaegerTag>,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct JaegerProcess {
    service_name: String,
    tags: Vec<JaegerTag>,
}

// ---- the seeded spans ----

/// One seeded span, flat, for the brute-force filters.
#[derive(Debug, Clone)]
struct Seeded {
    trace: [u8; 16],
    span: Span,
    service: String,
    region: String,
}

impl Seeded {
    fn duration(&self) -> u64 {
        self.span.end_time_unix_nano - self.span.start_time_unix_nano
    }
    fn is_error(&self) -> bool {
        self.span.status.as_ref().is_some_and(|s| s.code == StatusCode::Error as i32)
    }
    fn attr(&self, key: &str) -> Option<&Kind> {
        self.span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()?.value.as_ref())
    }
    fn int(&self, key: &str) -> Option<i64> {
        match self.attr(key) {
            Some(Kind::IntValue(v)) => Some(*v),
            _ => None,
        }
    }
    fn text(&self, key: &str) -> Option<&str> {
        match self.attr(key) {
            Some(Kind::StringValue(v)) => Some(v),
            _ => None,
        }
    }
}

fn kv(key: &str, value: Kind) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

const SERVICES: [&str; 3] = ["checkout", "cart", "payment"];
const REGIONS: [&str; 2] = ["eu", "us"];
const METHODS: [&str; 3] = ["GET", "POST", "DELETE"];

/// 30 traces of 1–4 spans across three services, seconds apart, ending a minute before `now_ns`; a
/// simple LCG makes them the same every run.
fn seed_spans(now_ns: u64) -> Vec<Seeded> {
    let mut state = 0x5eed_u64;
    let mut next = |n: u64| {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % n
    };
    let mut seeded = Vec::new();
    for t in 0..30u64 {
        let mut trace = [0u8; 16];
        trace[0] = 0xa1;
        trace[15] = t as u8 + 1;
        let start = now_ns - 120_000_000_000 + t * 2_000_000_000;
        let root_service = SERVICES[next(3) as usize];
        let spans = 1 + next(4);
        for s in 0..spans {
            let service = if s == 0 { root_service } else { SERVICES[next(3) as usize] };
            let span_start = start + s * 1_000_000;
            let millis = 1 + next(400);
            let status = match next(5) {
                0 => StatusCode::Error,
                1 => StatusCode::Ok,
                _ => StatusCode::Unset,
            };
            let kind = [SpanKind::Server, SpanKind::Client, SpanKind::Internal][next(3) as usize];
            let mut attributes = vec![
                kv("http.method", Kind::StringValue(METHODS[next(3) as usize].into())),
                kv("http.status_code", Kind::IntValue([200, 201, 404, 500, 503][next(5) as usize])),
                kv("retry", Kind::BoolValue(next(2) == 0)),
                kv("ratio", Kind::DoubleValue(next(100) as f64 / 100.0)),
            ];
            if next(3) == 0 {
                attributes.push(kv("region", Kind::StringValue("span-level".into())));
            }
            let mut span_id = [0u8; 8];
            span_id[0] = 0xb2;
            span_id[6] = t as u8 + 1;
            span_id[7] = s as u8 + 1;
            seeded.push(Seeded {
                trace,
                service: service.into(),
                region: REGIONS[next(2) as usize].into(),
                span: Span {
                    trace_id: trace.to_vec(),
                    span_id: span_id.to_vec(),
                    parent_span_id: if s == 0 {
                        vec![]
                    } else {
                        {
                            let mut p = span_id;
                            p[7] = 1;
                            p.to_vec()
                        }
                    },
                    name: if s == 0 {
                        format!("{} /{}", METHODS[(t % 3) as usize], ["cart", "pay", "items"][(t % 3) as usize])
                    } else {
                        format!("db {}", ["select", "insert"][next(2) as usize])
                    },
                    kind: kind as i32,
                    start_time_unix_nano: span_start,
                    end_time_unix_nano: span_start + millis * 1_000_000,
                    status: Some(Status {
                        code: status as i32,
                        message: if status == StatusCode::Error { "boom".into() } else { String::new() },
                    }),
                    attributes,
                    ..Default::default()
                },
            });
        }
    }
    seeded
}

/// One OTLP request per (service, region), as SDKs batch them.
fn export_request(spans: &[Seeded]) -> Vec<u8> {
    let mut groups: BTreeMap<(String, String), Vec<Span>> = BTreeMap::new();
    for seeded in spans {
        groups.entry((seeded.service.clone(), seeded.region.clone())).or_default().push(seeded.span.clone());
    }
    ExportTraceServiceRequest {
        resource_spans: groups
            .into_iter()
            .map(|((service, region), spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", Kind::StringValue(service)),
                        kv("region", Kind::StringValue(region)),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
                ..Default::default()
            })
            .collect(),
    }
    .encode_to_vec()
}

fn cli(data_dir: &Path, args: &[&str]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sessiontrace"));
    command.args(args).arg("--data-dir").arg(data_dir);
    if std::env::var("SESSIONTRACE_TEST_STORE").as_deref() == Ok("clickhouse") {
        let hash = data_dir
            .to_string_lossy()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3));
        command.args(["--store", "clickhouse", "--clickhouse-database", &format!("st_e2e_{hash:016x}")]);
    }
    let output = command.output().expect("run sessiontrace");
    assert!(output.status.success(), "sessiontrace {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

fn create_key(data_dir: &Path, project: &str, kind: &str) -> String {
    cli(data_dir, &["keys", "create", "--project", project, "--kind", kind]).lines().next().unwrap().trim().to_string()
}

struct Grafana {
    client: Client,
    api: String,
    key: String,
}

impl Grafana {
    fn get(&self, path: &str, accept: &str) -> Response {
        self.client
            .get(format!("{}{path}", self.api))
            .bearer_auth(&self.key)
            .header("accept", accept)
            .header("user-agent", "Grafana/12.0.0")
            .send()
            .unwrap()
    }

    fn json<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        let response = self.get(path, "application/json");
        assert_eq!(response.status(), 200, "{path}");
        let text = response.text().unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

type Filter = Box<dyn Fn(&Seeded, &BTreeMap<[u8; 16], TraceFacts>) -> bool>;

/// What the brute force knows of a trace.
#[derive(Debug, Clone)]
struct TraceFacts {
    duration: u64,
    root_name: String,
    root_service: String,
}

fn facts(spans: &[Seeded]) -> BTreeMap<[u8; 16], TraceFacts> {
    let mut by_trace: BTreeMap<[u8; 16], Vec<&Seeded>> = BTreeMap::new();
    for seeded in spans {
        by_trace.entry(seeded.trace).or_default().push(seeded);
    }
    by_trace
        .into_iter()
        .map(|(trace, spans)| {
            let start = spans.iter().map(|s| s.span.start_time_unix_nano).min().unwrap();
            let end = spans.iter().map(|s| s.span.end_time_unix_nano).max().unwrap();
            let root = spans.iter().find(|s| s.span.parent_span_id.is_empty()).unwrap();
            (
                trace,
                TraceFacts {
                    duration: end - start,
                    root_name: root.span.name.clone(),
                    root_service: root.service.clone(),
                },
            )
        })
        .collect()
}

#[test]
fn grafana_tempo_and_jaeger_read_sessiontrace() {
    let dir = tempfile::tempdir().unwrap();
    let ingest = create_key(dir.path(), "shop", "ingest");
    let read = create_key(dir.path(), "shop", "read");
    let other_read = create_key(dir.path(), "blog", "read");
    let server = RunningServer::start(dir.path());
    let client = Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    let now_ns = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    let seeded = seed_spans(now_ns);
    let response = client
        .post(format!("{}/v1/traces", server.otlp_http))
        .bearer_auth(&ingest)
        .header("content-type", "application/x-protobuf")
        .body(export_request(&seeded))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);

    // A recorded session with one trace, for the redirect.
    let session: Value = client
        .post(format!("{}/api/sessions", server.api))
        .bearer_auth(&ingest)
        .json(&json!({"name": "grafana"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let prefix = session["trace_id_prefix"].as_str().unwrap();
    let session_trace_hex = format!("{prefix}{}", "3".repeat(32 - prefix.len()));
    let mut session_trace = [0u8; 16];
    hex::decode_to_slice(&session_trace_hex, &mut session_trace).unwrap();
    let session_span = Seeded {
        trace: session_trace,
        service: "web".into(),
        region: "eu".into(),
        span: Span {
            trace_id: session_trace.to_vec(),
            span_id: vec![0xc3; 8],
            name: "GET /checkout".into(),
            start_time_unix_nano: now_ns - 30_000_000_000,
            end_time_unix_nano: now_ns - 29_000_000_000,
            ..Default::default()
        },
    };
    let response = client
        .post(format!("{}/v1/traces", server.otlp_http))
        .bearer_auth(&ingest)
        .header("content-type", "application/x-protobuf")
        .body(export_request(std::slice::from_ref(&session_span)))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut all = seeded.clone();
    all.push(session_span.clone());

    let grafana = Grafana { client: client.clone(), api: format!("{}/tempo", server.api), key: read.clone() };
    let (start_s, end_s) = (now_ns / 1_000_000_000 - 3600, now_ns / 1_000_000_000 + 60);

    // Save & test.
    let response = grafana.get("/api/echo", "*/*");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().unwrap(), "echo");

    // Trace by id, v2 protobuf as Grafana asks for it.
    let trace_hex = hex::encode(seeded[0].trace);
    let response =
        grafana.get(&format!("/api/v2/traces/{trace_hex}?start={start_s}&end={end_s}"), "application/protobuf");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/protobuf");
    let decoded = TraceByIdResponse::decode(response.bytes().unwrap()).unwrap();
    assert_eq!((decoded.status, decoded.message.as_str()), (0, ""), "COMPLETE");
    let got: BTreeSet<Vec<u8>> = decoded
        .trace
        .unwrap()
        .resource_spans
        .iter()
        .flat_map(|rs| rs.scope_spans.iter().flat_map(|ss| ss.spans.iter().map(|s| s.span_id.clone())))
        .collect();
    let want: BTreeSet<Vec<u8>> =
        seeded.iter().filter(|s| s.trace == seeded[0].trace).map(|s| s.span.span_id.clone()).collect();
    assert_eq!(got, want);
    // … and as JSON: `{"trace":{"resourceSpans":[…]}}` in OTLP JSON.
    let body: Value = grafana.json(&format!("/api/v2/traces/{trace_hex}"));
    assert_eq!(body.as_object().unwrap().keys().collect::<Vec<_>>(), vec!["trace"]);
    let resource_spans: Vec<ResourceSpans> = serde_json::from_value(body["trace"]["resourceSpans"].clone()).unwrap();
    assert_eq!(resource_spans.iter().map(|rs| rs.scope_spans[0].spans.len()).sum::<usize>(), want.len());
    // v1: the bare trace, protobuf (field 1) and JSON (`batches`).
    let response = grafana.get(&format!("/api/traces/{trace_hex}"), "application/protobuf");
    let bare = TempoTrace::decode(response.bytes().unwrap()).unwrap();
    assert_eq!(bare.resource_spans.iter().map(|rs| rs.scope_spans[0].spans.len()).sum::<usize>(), want.len());
    let body: Value = grafana.json(&format!("/api/traces/{trace_hex}"));
    assert!(body["batches"].is_array());
    assert_eq!(grafana.get("/api/v2/traces/00000000000000000000000000000099", "application/protobuf").status(), 404);

    // Search: every supported construct against a brute-force filter of the same spans.
    let trace_facts = facts(&all);
    let cases: Vec<(&str, Filter)> = vec![
        ("{}", Box::new(|_, _| true)),
        (
            r#"{resource.service.name="checkout" && status=error}"#,
            Box::new(|s, _| s.service == "checkout" && s.is_error()),
        ),
        (r#"{resource.service.name != "cart"}"#, Box::new(|s, _| s.service != "cart")),
        (
            r#"{span.http.method =~ "GET|DELETE"}"#,
            Box::new(|s, _| matches!(s.text("http.method"), Some("GET" | "DELETE"))),
        ),
        (r#"{span.http.method !~ "G.*"}"#, Box::new(|s, _| s.text("http.method").is_some_and(|m| !m.starts_with('G')))),
        (r#"{.http.status_code >= 500}"#, Box::new(|s, _| s.int("http.status_code").is_some_and(|c| c >= 500))),
        (
            r#"{.http.status_code < 201 || .http.status_code > 500}"#,
            Box::new(|s, _| s.int("http.status_code").is_some_and(|c| !(201..=500).contains(&c))),
        ),
        (
            r#"{span.http.status_code <= 201 && kind = server}"#,
            Box::new(|s, _| {
                s.int("http.status_code").is_some_and(|c| c <= 201) && s.span.kind == SpanKind::Server as i32
            }),
        ),
        (r#"{.region = "span-level"}"#, Box::new(|s, _| s.text("region") == Some("span-level"))),
        (r#"{.region = "eu"}"#, Box::new(|s, _| s.text("region").is_none() && s.region == "eu")),
        (
            r#"{resource.region = "us" && (status = ok || status = unset)}"#,
            Box::new(|s, _| s.region == "us" && !s.is_error()),
        ),
        (
            r#"{span.retry = true && span.ratio > 0.5}"#,
            Box::new(|s, _| {
                matches!(s.attr("retry"), Some(Kind::BoolValue(true)))
                    && matches!(s.attr("ratio"), Some(Kind::DoubleValue(r)) if *r > 0.5)
            }),
        ),
        (
            r#"{name = "db select" && duration > 200ms}"#,
            Box::new(|s, _| s.span.name == "db select" && s.duration() > 200_000_000),
        ),
        ("{duration >= 100ms && duration < 0.3s}", Box::new(|s, _| (100_000_000..300_000_000).contains(&s.duration()))),
        ("{traceDuration > 350ms}", Box::new(|s, f| f[&s.trace].duration > 350_000_000)),
        (r#"{rootName = "POST /pay"}"#, Box::new(|s, f| f[&s.trace].root_name == "POST /pay")),
        (
            r#"{rootServiceName = "payment" && status != error}"#,
            Box::new(|s, f| f[&s.trace].root_service == "payment" && !s.is_error()),
        ),
        (r#"{statusMessage = "boom"}"#, Box::new(|s, _| s.is_error())),
        (
            r#"{kind = client || kind = internal}"#,
            Box::new(|s, _| s.span.kind != SpanKind::Server as i32 && s.span.kind != 0),
        ),
    ];
    for (query, filter) in &cases {
        let mut expected: BTreeMap<String, u32> = BTreeMap::new();
        for seeded in all.iter().filter(|s| filter(s, &trace_facts)) {
            *expected.entry(hex::encode(seeded.trace)).or_default() += 1;
        }
        let path = format!("/api/search?q={}&limit=100&spss=3&start={start_s}&end={end_s}", encode(query));
        let response: SearchResponse = grafana.json(&path);
        let got: BTreeMap<String, u32> =
            response.traces.iter().map(|t| (t.trace_id.clone(), t.span_sets[0].matched)).collect();
        assert_eq!(got, expected, "{query}");
        assert!(response.metrics.inspected_traces as usize >= got.len());
        assert!(response.metrics.inspected_bytes.parse::<u64>().is_ok());
        for trace in &response.traces {
            let facts = &trace_facts[&<[u8; 16]>::try_from(hex::decode(&trace.trace_id).unwrap()).unwrap()];
            assert_eq!(
                (trace.root_trace_name.as_str(), trace.root_service_name.as_str()),
                (facts.root_name.as_str(), facts.root_service.as_str())
            );
            assert_eq!(u64::from(trace.duration_ms), facts.duration / 1_000_000);
            assert!(trace.start_time_unix_nano.parse::<u64>().is_ok());
            let set = &trace.span_sets[0];
            assert_eq!(set.spans.len(), (set.matched as usize).min(3));
            for span in &set.spans {
                let seeded = all.iter().find(|s| hex::encode(&s.span.span_id) == span.span_id).unwrap();
                assert_eq!(span.name, seeded.span.name);
                assert_eq!(span.duration_nanos, seeded.duration().to_string());
                assert_eq!(span.start_time_unix_nano, seeded.span.start_time_unix_nano.to_string());
                assert!(
                    span.attributes
                        .iter()
                        .any(|a| a.key == "service.name" && a.value["stringValue"] == seeded.service.as_str())
                );
            }
        }
    }
    // Newest first, and the limit holds.
    let response: SearchResponse = grafana.json(&format!("/api/search?q=%7B%7D&limit=5&start={start_s}&end={end_s}"));
    assert_eq!(response.traces.len(), 5);
    let starts: Vec<u64> = response.traces.iter().map(|t| t.start_time_unix_nano.parse().unwrap()).collect();
    assert!(starts.windows(2).all(|w| w[0] >= w[1]), "{starts:?}");
    // A window before the seeded spans finds nothing.
    let response: SearchResponse =
        grafana.json(&format!("/api/search?q=%7B%7D&start={}&end={}", start_s - 7200, start_s - 3600));
    assert!(response.traces.is_empty());
    // Unsupported constructs: 400 naming the part.
    for (query, part) in [
        ("{} | count() > 1", "pipelines"),
        ("{ .a = 1 } >> { .b = 2 }", "structural"),
        ("{ event.name = \"x\" }", "event."),
        ("{ .a = nil }", "nil"),
    ] {
        let response = grafana.get(&format!("/api/search?q={}", encode(query)), "application/json");
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = response.json().unwrap();
        assert!(body["error"].as_str().unwrap().contains(part), "{query}: {body}");
    }

    // The filter drop-downs.
    let tags: TagsResponse = grafana.json(&format!("/api/v2/search/tags?scope=all&start={start_s}&end={end_s}"));
    let scope = |name: &str| tags.scopes.iter().find(|s| s.name == name).unwrap().tags.clone();
    assert_eq!(tags.scopes.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["resource", "span", "intrinsic"]);
    assert_eq!(scope("resource"), ["region", "service.name"]);
    assert_eq!(scope("span"), ["http.method", "http.status_code", "ratio", "region", "retry"]);
    assert!(scope("intrinsic").contains(&"traceDuration".to_string()));
    let only: TagsResponse = grafana.json(&format!("/api/v2/search/tags?scope=span&start={start_s}&end={end_s}"));
    assert_eq!(only.scopes.len(), 1);
    assert_eq!((only.scopes[0].name.as_str(), only.scopes[0].tags.clone()), ("span", scope("span")));
    let values: TagValuesResponse =
        grafana.json(&format!("/api/v2/search/tag/resource.service.name/values?start={start_s}&end={end_s}"));
    let services: Vec<&str> = values.tag_values.iter().map(|v| v.value.as_str()).collect();
    assert_eq!(services, ["cart", "checkout", "payment", "web"]);
    let values: TagValuesResponse = grafana.json("/api/v2/search/tag/span.http.method/values");
    let methods: BTreeSet<TagValue> =
        METHODS.iter().map(|m| TagValue { kind: "string".into(), value: m.to_string() }).collect();
    assert_eq!(values.tag_values, methods.into_iter().collect::<Vec<_>>());
    let values: TagValuesResponse = grafana.json("/api/v2/search/tag/status/values");
    assert_eq!(values.tag_values.len(), 3);
    assert!(values.tag_values.iter().all(|v| v.kind == "keyword"));
    let values: TagValuesResponse = grafana.json("/api/v2/search/tag/span.http.status_code/values");
    assert!(values.tag_values.iter().all(|v| v.kind == "int"));

    // Jaeger, as Grafana's Jaeger data source calls it.
    let jaeger = Grafana { client: client.clone(), api: format!("{}/jaeger", server.api), key: read.clone() };
    let services: JaegerResponse<Vec<String>> = jaeger.json("/api/services");
    assert_eq!(services.data, ["cart", "checkout", "payment", "web"]);
    assert_eq!((services.total, services.limit, services.offset, services.errors.is_none()), (4, 0, 0, true));
    let operations: JaegerResponse<Vec<String>> = jaeger.json("/api/services/checkout/operations");
    let want: BTreeSet<String> = all.iter().filter(|s| s.service == "checkout").map(|s| s.span.name.clone()).collect();
    assert_eq!(operations.data.into_iter().collect::<BTreeSet<_>>(), want);
    let (start_us, end_us) = (start_s * 1_000_000, end_s * 1_000_000);
    let jaeger_cases: Vec<(String, Filter)> = vec![
        (
            format!(
                "service=checkout&operation=&tags=%7B%7D&limit=100&start={start_us}&end={end_us}&lookback=custom&minDuration=&maxDuration="
            ),
            Box::new(|s, _| s.service == "checkout"),
        ),
        (
            format!(
                "service=payment&operation=db%20select&limit=100&start={start_us}&end={end_us}&minDuration=50ms&maxDuration=0.3s"
            ),
            Box::new(|s, _| {
                s.service == "payment"
                    && s.span.name == "db select"
                    && (50_000_000..=300_000_000).contains(&s.duration())
            }),
        ),
        (
            format!(
                "service=cart&tags={}&limit=100&start={start_us}&end={end_us}",
                encode(r#"{"http.status_code":"500","error":"true"}"#)
            ),
            Box::new(|s, _| s.service == "cart" && s.int("http.status_code") == Some(500) && s.is_error()),
        ),
        (
            format!("service=cart&tags={}&limit=100&lookback=2h", encode("http.method=POST")),
            Box::new(|s, _| s.service == "cart" && s.text("http.method") == Some("POST")),
        ),
    ];
    for (params, filter) in &jaeger_cases {
        let expected: BTreeSet<String> =
            all.iter().filter(|s| filter(s, &trace_facts)).map(|s| hex::encode(s.trace)).collect();
        let found: JaegerResponse<Vec<JaegerTrace>> = jaeger.json(&format!("/api/traces?{params}"));
        let got: BTreeSet<String> = found.data.iter().map(|t| t.trace_id.clone()).collect();
        assert_eq!(got, expected, "{params}");
        for trace in &found.data {
            let count = all.iter().filter(|s| hex::encode(s.trace) == trace.trace_id).count();
            assert_eq!(trace.spans.len(), count, "whole traces");
        }
    }
    // One trace in Jaeger's model, against the golden file (times relative to the seeded start).
    let found: JaegerResponse<Vec<JaegerTrace>> = jaeger.json(&format!("/api/traces/{trace_hex}"));
    assert_eq!(found.total, 1);
    let trace = &found.data[0];
    assert!(trace.warnings.is_none());
    for span in &trace.spans {
        assert_eq!(span.trace_id, trace_hex);
        assert!(trace.processes.contains_key(&span.process_id));
        assert!(span.logs.is_empty() && span.warnings.is_none() && span.flags == 0);
        for reference in &span.references {
            assert_eq!((reference.ref_type.as_str(), reference.trace_id.as_str()), ("CHILD_OF", trace_hex.as_str()));
            assert!(trace.spans.iter().any(|s| s.span_id == reference.span_id));
        }
        assert!(span.tags.iter().all(|t| ["string", "bool", "int64", "float64"].contains(&t.kind.as_str())));
    }
    let mut golden: Value = jaeger.json(&format!("/api/traces/{trace_hex}"));
    let base_us = seeded[0].span.start_time_unix_nano / 1_000;
    for span in golden["data"][0]["spans"].as_array_mut().unwrap() {
        span["startTime"] = json!(span["startTime"].as_u64().unwrap() - base_us);
    }
    let golden_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/jaeger_trace.json");
    let pretty = serde_json::to_string_pretty(&golden).unwrap() + "\n";
    if std::env::var("UPDATE_GOLDEN").is_ok() {
        std::fs::create_dir_all(golden_path.parent().unwrap()).unwrap();
        std::fs::write(&golden_path, &pretty).unwrap();
    }
    assert_eq!(pretty, std::fs::read_to_string(&golden_path).expect("the golden file (UPDATE_GOLDEN=1 writes it)"));
    let response = jaeger.get("/api/traces/00000000000000000000000000000099", "application/json");
    assert_eq!(response.status(), 404);
    let missing: JaegerResponse<Option<Vec<JaegerTrace>>> = response.json().unwrap();
    assert!(missing.data.is_none() && missing.errors.unwrap().len() == 1);
    // v3, as current Jaeger UI calls it.
    let body: Value = jaeger.json("/api/v3/services");
    assert_eq!(body, json!({"services": ["cart", "checkout", "payment", "web"]}));
    let body: Value = jaeger.json("/api/v3/operations?service=checkout&span_kind=server");
    assert!(body["operations"].as_array().unwrap().iter().all(|o| o["spanKind"] == "server"));
    let body: Value = jaeger.json(&format!("/api/v3/traces/{trace_hex}"));
    let resource_spans: Vec<ResourceSpans> = serde_json::from_value(body["result"]["resourceSpans"].clone()).unwrap();
    assert_eq!(
        resource_spans.iter().map(|rs| rs.scope_spans[0].spans.len()).sum::<usize>(),
        want_count(&seeded, seeded[0].trace)
    );

    let body: Value = jaeger.json(&format!(
        "/api/v3/traces?query.service_name=payment&query.start_time_min={}&query.start_time_max={}&query.num_traces=100",
        start_us, end_us
    ));
    let resource_spans: Vec<ResourceSpans> = serde_json::from_value(body["result"]["resourceSpans"].clone()).unwrap();
    let got: BTreeSet<Vec<u8>> = resource_spans
        .iter()
        .flat_map(|rs| rs.scope_spans.iter().flat_map(|ss| ss.spans.iter().map(|s| s.trace_id.clone())))
        .collect();
    let want: BTreeSet<Vec<u8>> = all.iter().filter(|s| s.service == "payment").map(|s| s.trace.to_vec()).collect();
    assert_eq!(got, want);
    // The same search as Jaeger UI 2.19+ lists it: one TraceSummary per trace, counted from the spans.
    let body: Value = jaeger.json(&format!(
        "/api/v3/trace-summaries?query.service_name=payment&query.start_time_min={}&query.start_time_max={}&query.num_traces=100",
        start_us, end_us
    ));
    let summaries = body["summaries"].as_array().unwrap();
    let got: BTreeSet<Vec<u8>> =
        summaries.iter().map(|s| hex::decode(s["traceId"].as_str().unwrap()).unwrap()).collect();
    assert_eq!(got, want);
    for summary in summaries {
        let spans: Vec<_> = all.iter().filter(|s| hex::encode(s.trace) == summary["traceId"]).collect();
        let root =
            spans.iter().filter(|s| s.span.parent_span_id.is_empty()).min_by_key(|s| s.span.start_time_unix_nano);
        let start = spans.iter().map(|s| s.span.start_time_unix_nano).min().unwrap();
        let end = spans.iter().map(|s| s.span.end_time_unix_nano).max().unwrap();
        let mut services: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for span in &spans {
            let entry = services.entry(span.service.as_str()).or_default();
            entry.0 += 1;
            entry.1 += usize::from(span.is_error());
        }
        let services: Vec<Value> = services
            .into_iter()
            .map(|(name, (count, errors))| json!({"name": name, "spanCount": count, "errorSpanCount": errors}))
            .collect();
        assert_eq!(
            *summary,
            json!({
                "traceId": summary["traceId"],
                "rootServiceName": root.map_or("", |r| r.service.as_str()),
                "rootOperationName": root.map_or("", |r| r.span.name.as_str()),
                "minStartTimeUnixNano": start.to_string(),
                "maxEndTimeUnixNano": end.to_string(),
                "spanCount": spans.len(),
                "errorSpanCount": spans.iter().filter(|s| s.is_error()).count(),
                "orphanSpanCount": spans.iter().filter(|s| !s.span.parent_span_id.is_empty()
                    && !spans.iter().any(|p| p.span.span_id == s.span.parent_span_id)).count(),
                "services": services,
            })
        );
    }

    // From a trace to its session.
    let response =
        client.get(format!("{}/sessions/by-trace/{session_trace_hex}", server.api)).bearer_auth(&read).send().unwrap();
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let session_id = session["id"].as_str().unwrap();
    assert_eq!(
        location,
        format!(
            "/sessions/{session_id}?trace={session_trace_hex}&t={}",
            session_span.span.start_time_unix_nano / 1_000_000
        )
    );
    let response =
        client.get(format!("{}/sessions/by-trace/{trace_hex}", server.api)).bearer_auth(&read).send().unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.text().unwrap().contains("belongs to no session"));
    let response = client.get(format!("{}/sessions/by-trace/{trace_hex}", server.api)).send().unwrap();
    assert_eq!(response.status(), 401, "the redirect needs a read credential");

    // Another project's read key sees nothing, even by exact id; no key is a 401.
    let blog_tempo = Grafana { client: client.clone(), api: format!("{}/tempo", server.api), key: other_read.clone() };
    let response: SearchResponse = blog_tempo.json(&format!("/api/search?q=%7B%7D&start={start_s}&end={end_s}"));
    assert!(response.traces.is_empty());
    assert_eq!(blog_tempo.get(&format!("/api/v2/traces/{trace_hex}"), "application/protobuf").status(), 404);
    let values: TagValuesResponse = blog_tempo.json("/api/v2/search/tag/resource.service.name/values");
    assert!(values.tag_values.is_empty());
    let blog_jaeger = Grafana { client: client.clone(), api: format!("{}/jaeger", server.api), key: other_read };
    let services: JaegerResponse<Vec<String>> = blog_jaeger.json("/api/services");
    assert!(services.data.is_empty());
    assert_eq!(blog_jaeger.get(&format!("/api/traces/{trace_hex}"), "application/json").status(), 404);
    let response = blog_jaeger
        .client
        .get(format!("{}/sessions/by-trace/{session_trace_hex}", server.api))
        .bearer_auth(&blog_jaeger.key)
        .send()
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(client.get(format!("{}/tempo/api/echo", server.api)).send().unwrap().status(), 401);
    assert_eq!(client.get(format!("{}/tempo/api/echo", server.api)).bearer_auth(&ingest).send().unwrap().status(), 403);
}

fn want_count(seeded: &[Seeded], trace: [u8; 16]) -> usize {
    seeded.iter().filter(|s| s.trace == trace).count()
}
