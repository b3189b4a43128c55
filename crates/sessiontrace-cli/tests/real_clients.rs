//! End-to-end: the real binary, fed by OpenTelemetry clients nobody here wrote — the Rust
//! `opentelemetry-otlp` exporters over gRPC (gzip), HTTP protobuf and HTTP JSON, and (when `.ci/run`
//! provides the virtual environment in `SESSIONTRACE_PYTHON`) the Python `opentelemetry-sdk` exporters.
//! Every span a client sent must be found through the query API with its attributes, and every span of
//! the session's trace must be linked to the session.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Span as _, SpanKind, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Compression, Protocol, WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};
use serde_json::{Value, json};
use support::RunningServer;

/// What a client sent, to look for afterwards.
struct Sent {
    session_spans: Vec<(String, String)>,
    other_spans: Vec<(String, String)>,
}

fn start_session(api: &str, name: &str) -> Value {
    let client = reqwest::blocking::Client::new();
    let response = client.post(format!("{api}/api/sessions")).json(&json!({"name": name})).send().unwrap();
    assert_eq!(response.status(), 201);
    response.json().unwrap()
}

fn get(url: &str) -> Value {
    let response = reqwest::blocking::get(url).unwrap();
    assert!(response.status().is_success(), "GET {url} answered {}", response.status());
    response.json().unwrap()
}

/// Records one session trace (a server span with three children, attributes and an event) and one trace
/// outside any session, with `exporter`.
fn record_spans(exporter: impl SpanExporter + 'static, service: &str, traceparent: &str) -> Sent {
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service.to_string()).build())
        .build();
    let tracer = provider.tracer("sessiontrace-e2e");
    let carrier = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    let parent = TraceContextPropagator::new().extract(&carrier);
    let mut sent = Sent { session_spans: vec![], other_spans: vec![] };
    let root = tracer
        .span_builder("POST /checkout")
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("http.response.status_code", 201),
            KeyValue::new("transport", service.to_string()),
        ])
        .start_with_context(&tracer, &parent);
    let root_context = root.span_context().clone();
    sent.session_spans.push((root_context.trace_id().to_string(), root_context.span_id().to_string()));
    let cx = Context::current_with_span(root);
    for step in 0..3 {
        let mut child = tracer.start_with_context(format!("step {step}"), &cx);
        child.set_attribute(KeyValue::new("step", step as i64));
        child.set_attribute(KeyValue::new("ratio", 0.5));
        child.add_event("checkpoint", vec![KeyValue::new("at", step as i64)]);
        let context = child.span_context().clone();
        sent.session_spans.push((context.trace_id().to_string(), context.span_id().to_string()));
        child.end();
    }
    cx.span().end();
    let mut other = tracer.start("background job");
    let context = other.span_context().clone();
    sent.other_spans.push((context.trace_id().to_string(), context.span_id().to_string()));
    other.end();
    provider.force_flush().expect("flush spans");
    provider.shutdown().expect("shut down the tracer provider");
    sent
}

/// Checks that every sent span is stored with its attributes and that the session's trace is linked.
fn check_stored(api: &str, session: &Value, sent: &Sent, service: &str) {
    let mut by_trace: HashMap<&str, Vec<&str>> = HashMap::new();
    for (trace_id, span_id) in sent.session_spans.iter().chain(&sent.other_spans) {
        by_trace.entry(trace_id.as_str()).or_default().push(span_id.as_str());
    }
    for (trace_id, span_ids) in &by_trace {
        let trace = get(&format!("{api}/api/traces/{trace_id}"));
        let spans = trace["spans"].as_array().unwrap();
        for span_id in span_ids {
            let span = spans
                .iter()
                .find(|s| s["span_id"] == *span_id)
                .unwrap_or_else(|| panic!("span {span_id} of {trace_id} not stored"));
            assert_eq!(span["service"], service);
            if span["name"] == "POST /checkout" {
                assert_eq!(span["kind"], "server");
                assert_eq!(span["attributes"]["http.request.method"], "POST");
                assert_eq!(span["attributes"]["http.response.status_code"], 201);
            }
            if span["name"].as_str().unwrap().starts_with("step") {
                assert_eq!(span["attributes"]["ratio"], 0.5);
                assert_eq!(span["events"][0]["name"], "checkpoint");
            }
        }
    }
    let session_trace = &sent.session_spans[0].0;
    assert!(session_trace.starts_with(session["trace_id_prefix"].as_str().unwrap()));
    let trace = get(&format!("{api}/api/traces/{session_trace}"));
    assert_eq!(trace["session_id"], session["id"]);
    let traces = get(&format!("{api}/api/sessions/{}/traces", session["id"].as_str().unwrap()));
    let linked: Vec<&str> =
        traces["traces"].as_array().unwrap().iter().map(|t| t["trace_id"].as_str().unwrap()).collect();
    assert!(linked.contains(&session_trace.as_str()), "{linked:?}");
    assert!(!linked.contains(&sent.other_spans[0].0.as_str()), "a non-session trace was linked");
}

#[test]
fn rust_exporters_over_http_protobuf_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let server = RunningServer::start(dir.path());
    for (protocol, service) in [(Protocol::HttpBinary, "http-protobuf"), (Protocol::HttpJson, "http-json")] {
        let session = start_session(&server.api, service);
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(protocol)
            .with_endpoint(format!("{}/v1/traces", server.otlp_http))
            .with_timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let sent = record_spans(exporter, service, session["traceparent"].as_str().unwrap());
        check_stored(&server.api, &session, &sent, service);
        let shown = get(&format!("{}/api/sessions/{}", server.api, session["id"].as_str().unwrap()));
        assert_eq!(shown["counts"]["spans"], 4, "{shown}");
    }
}

#[test]
fn rust_exporters_over_grpc_with_logs_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let server = RunningServer::start(dir.path());
    let session = start_session(&server.api, "grpc");
    let traceparent = session["traceparent"].as_str().unwrap().to_string();
    let endpoint = server.otlp_grpc.clone();
    // tonic channels run on a tokio runtime: build the exporters inside one, use them from plain threads.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (span_exporter, log_exporter, metric_exporter) = {
        let _entered = runtime.enter();
        let spans = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .with_compression(Compression::Gzip)
            .build()
            .unwrap();
        let logs =
            opentelemetry_otlp::LogExporter::builder().with_tonic().with_endpoint(endpoint.clone()).build().unwrap();
        let metrics =
            opentelemetry_otlp::MetricExporter::builder().with_tonic().with_endpoint(endpoint).build().unwrap();
        (spans, logs, metrics)
    };
    let sent = record_spans(span_exporter, "grpc", &traceparent);

    // Logs: one inside the session's trace, one outside any trace.
    let logger_provider = SdkLoggerProvider::builder()
        .with_batch_exporter(log_exporter)
        .with_resource(Resource::builder().with_service_name("grpc").build())
        .build();
    let carrier = HashMap::from([("traceparent".to_string(), traceparent.clone())]);
    let session_context = TraceContextPropagator::new().extract(&carrier);
    let logger = logger_provider.logger("e2e");
    {
        let _attached = session_context.attach();
        let mut record = logger.create_log_record();
        record.set_body("payment declined".into());
        record.set_severity_number(Severity::Error);
        record.set_severity_text("ERROR");
        record.add_attribute("order.id", "A-17");
        logger.emit(record);
    }
    let mut unrelated = logger.create_log_record();
    unrelated.set_body("cache warmed".into());
    logger.emit(unrelated);

    // Metrics: a counter of the same service.
    let meter_provider = SdkMeterProvider::builder()
        .with_periodic_exporter(metric_exporter)
        .with_resource(Resource::builder().with_service_name("grpc").build())
        .build();
    meter_provider.meter("e2e").u64_counter("orders.created").build().add(3, &[KeyValue::new("region", "eu")]);
    logger_provider.shutdown().expect("flush logs");
    meter_provider.shutdown().expect("flush metrics");

    let api = server.api.clone();
    check_stored(&api, &session, &sent, "grpc");
    let id = session["id"].as_str().unwrap();
    let logs = get(&format!("{api}/api/sessions/{id}/logs"));
    let logs = logs["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0]["body"], "payment declined");
    assert_eq!(logs[0]["severity_text"], "ERROR");
    assert_eq!(logs[0]["attributes"]["order.id"], "A-17");
    assert_eq!(logs[0]["trace_id"].as_str().unwrap(), &sent.session_spans[0].0);
    let by_trace = get(&format!("{api}/api/logs?trace_id={}", sent.session_spans[0].0));
    assert_eq!(by_trace["logs"].as_array().unwrap().len(), 1);
    let all = get(&format!("{api}/api/logs?service=grpc"));
    assert_eq!(all["logs"].as_array().unwrap().len(), 2);
    let points = get(&format!("{api}/api/metrics?service=grpc&name=orders.created"));
    let points = points["points"].as_array().unwrap();
    assert!(!points.is_empty(), "no metric point stored");
    assert_eq!(points.last().unwrap()["value"], 3.0);
    assert_eq!(points.last().unwrap()["attributes"]["region"], "eu");
    let session_points = get(&format!("{api}/api/metrics?session={id}"));
    assert!(!session_points["points"].as_array().unwrap().is_empty(), "metrics over the session's window");
    let timeline = get(&format!("{api}/api/sessions/{id}/timeline"));
    let kinds: Vec<&str> = timeline["items"].as_array().unwrap().iter().map(|i| i["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"trace") && kinds.contains(&"log"), "{kinds:?}");
    drop(runtime);
}

/// Runs tests/python/otlp_clients.py in the virtual environment `.ci/run` builds, then checks that
/// everything the Python SDK sent over HTTP and gRPC is stored and linked.
#[test]
fn python_sdk_clients() {
    let Some(python) = support::python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = RunningServer::start(dir.path());
    let session = start_session(&server.api, "python");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/otlp_clients.py");
    let output = std::process::Command::new(python)
        .arg(script)
        .args(["--http", &server.otlp_http, "--grpc", &server.otlp_grpc])
        .args(["--traceparent", session["traceparent"].as_str().unwrap()])
        .output()
        .expect("run the python client");
    assert!(output.status.success(), "python client failed: {}", String::from_utf8_lossy(&output.stderr));
    let sent: Value = serde_json::from_slice(&output.stdout).expect("python client prints what it sent as JSON");
    let spans = sent["spans"].as_array().unwrap();
    assert!(spans.len() >= 8, "{sent}");
    for span in spans {
        let trace_id = span["trace_id"].as_str().unwrap();
        let trace = get(&format!("{}/api/traces/{trace_id}", server.api));
        let stored = trace["spans"].as_array().unwrap().iter().find(|s| s["span_id"] == span["span_id"]);
        let stored = stored.unwrap_or_else(|| panic!("python span {span} not stored"));
        assert_eq!(stored["service"], span["service"]);
        assert_eq!(stored["attributes"]["client"], "python");
        if span["session"].as_bool() == Some(true) {
            assert_eq!(trace["session_id"], session["id"], "{span}");
        }
    }
    let id = session["id"].as_str().unwrap();
    let shown = get(&format!("{}/api/sessions/{id}", server.api));
    let session_spans = spans.iter().filter(|s| s["session"].as_bool() == Some(true)).count();
    assert_eq!(shown["counts"]["spans"].as_u64().unwrap() as usize, session_spans, "{shown}");
    let logs = get(&format!("{}/api/sessions/{id}/logs", server.api));
    assert_eq!(logs["logs"].as_array().unwrap().len(), sent["session_logs"].as_u64().unwrap() as usize);
}
