//! End-to-end: the real `sessiontrace serve` binary and the demo shop's four services (each its own
//! process, `sessiontrace demo-service`, exporting over OTLP/HTTP with `sessiontrace-sdk`). A session is
//! started; the test, acting as an instrumented client, sends two requests with the session's
//! `traceparent` and records its own client span with that span id (so the trace has a real root). Then,
//! through the query API: every span of every service is in the one trace, linked to the session; every
//! parent resolves; headers and bodies were captured and masked; a request outside any session has no
//! capture. A second test runs `sessiontrace demo` itself and checks its scripted session.

mod support;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use support::{RunningServer, free_port};

/// The demo services, killed when dropped.
struct Services {
    children: Vec<Child>,
    gateway: String,
}

impl Drop for Services {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_healthy(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if reqwest::blocking::get(format!("{url}/healthz")).is_ok_and(|r| r.status().is_success()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{url} did not become healthy");
}

fn start_services(server: &RunningServer) -> Services {
    let ports: Vec<String> = (0..4).map(|_| format!("127.0.0.1:{}", free_port())).collect();
    let mut services = Services { children: Vec::new(), gateway: format!("http://{}", ports[0]) };
    for name in ["inventory", "payment", "orders", "gateway"] {
        let child = Command::new(env!("CARGO_BIN_EXE_sessiontrace"))
            .args(["demo-service", name])
            .args(["--gateway", &ports[0], "--orders", &ports[1], "--inventory", &ports[2], "--payment", &ports[3]])
            .args(["--sessiontrace-api", &server.api, "--payment-failure-rate", "0"])
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &server.otlp_http)
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .env("OTEL_BLRP_SCHEDULE_DELAY", "100")
            .env_remove("OTEL_SERVICE_NAME")
            .env("DEMO_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start a demo service");
        services.children.push(child);
    }
    for port in &ports {
        wait_healthy(&format!("http://{port}"));
    }
    services
}

fn get(url: &str) -> Option<Value> {
    let response = reqwest::blocking::get(url).ok()?;
    response.status().is_success().then(|| response.json().unwrap())
}

/// Polls the trace until it has at least `spans` spans.
fn wait_for_trace(api: &str, trace_id: &str, spans: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = Value::Null;
    while Instant::now() < deadline {
        if let Some(trace) = get(&format!("{api}/api/traces/{trace_id}")) {
            if trace["spans"].as_array().unwrap().len() >= spans {
                return trace;
            }
            last = trace;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("trace {trace_id} did not reach {spans} spans: {last:#}");
}

fn now_nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

/// Records the test's own client span (the one the session's traceparent names) over OTLP/HTTP JSON.
fn record_root_span(otlp_http: &str, trace_id: &str, span_id: &str, start: u128, end: u128) {
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "e2e-client"}}]},
        "scopeSpans": [{"scope": {"name": "e2e"}, "spans": [{
            "traceId": trace_id, "spanId": span_id, "name": "e2e checkout", "kind": 3,
            "startTimeUnixNano": start.to_string(), "endTimeUnixNano": end.to_string()}]}]}]});
    let response = reqwest::blocking::Client::new().post(format!("{otlp_http}/v1/traces")).json(&body).send().unwrap();
    assert!(response.status().is_success(), "{}", response.text().unwrap());
}

fn attribute<'a>(span: &'a Value, key: &str) -> &'a Value {
    &span["attributes"][key]
}

fn find<'a>(spans: &'a [Value], service: &str, kind: &str, name: &str) -> &'a Value {
    spans
        .iter()
        .find(|s| s["service"] == service && s["kind"] == kind && s["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} span {name:?} of {service}"))
}

#[test]
fn a_session_request_is_one_trace_across_every_service_with_capture_and_masking() {
    let dir = tempfile::tempdir().unwrap();
    let server = RunningServer::start(dir.path());
    let services = start_services(&server);
    let client = reqwest::blocking::Client::new();
    let session: Value = client
        .post(format!("{}/api/sessions", server.api))
        .json(&json!({"name": "e2e demo", "capture": {"headers": true, "bodies": true}}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let traceparent = session["traceparent"].as_str().unwrap().to_string();
    let trace_id = traceparent[3..35].to_string();
    let root_span_id = traceparent[36..52].to_string();

    let start = now_nanos();
    let login = client
        .post(format!("{}/api/login", services.gateway))
        .header("traceparent", &traceparent)
        .json(&json!({"user": "ann", "password": "hunter2"}))
        .send()
        .unwrap();
    assert_eq!(login.status(), 200);
    assert_eq!(login.headers()["x-trace-id"].to_str().unwrap(), trace_id);
    let checkout = client
        .post(format!("{}/api/checkout", services.gateway))
        .header("traceparent", &traceparent)
        .header("authorization", "Bearer s3cr3t-t0ken")
        .json(&json!({"sku": "tea", "qty": 1, "card_number": "4242-4242-4242-4242"}))
        .send()
        .unwrap();
    assert_eq!(checkout.status(), 201, "{:?}", checkout.text());
    record_root_span(&server.otlp_http, &trace_id, &root_span_id, start, now_nanos());

    // A request outside any session: traced, never captured.
    let outside = client
        .post(format!("{}/api/login", services.gateway))
        .json(&json!({"user": "bob", "password": "outside-pass"}))
        .send()
        .unwrap();
    let outside_trace = outside.headers()["x-trace-id"].to_str().unwrap().to_string();
    assert!(!outside_trace.starts_with("debdeb"));

    // root + gateway login + checkout: gateway server/client, orders server + 2 clients, inventory server +
    // db span, payment server.
    let trace = wait_for_trace(&server.api, &trace_id, 10);
    assert_eq!(trace["session_id"], session["id"]);
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 10, "{trace:#}");
    let services_seen: HashSet<&str> = spans.iter().map(|s| s["service"].as_str().unwrap()).collect();
    assert_eq!(services_seen, HashSet::from(["e2e-client", "gateway", "orders", "inventory", "payment"]));
    let ids: HashSet<&str> = spans.iter().map(|s| s["span_id"].as_str().unwrap()).collect();
    let mut roots = 0;
    for span in spans {
        assert_eq!(span["trace_id"], trace_id.as_str());
        match span["parent_span_id"].as_str() {
            Some(parent) => assert!(ids.contains(parent), "orphan span {span:#}"),
            None => roots += 1,
        }
    }
    assert_eq!(roots, 1);

    let login_span = find(spans, "gateway", "server", "POST /api/login");
    assert_eq!(attribute(login_span, "http.request.body"), r#"{"user":"ann","password":"***MASKED***"}"#);
    assert_eq!(attribute(login_span, "http.response.body"), r#"{"user":"ann","token":"***MASKED***"}"#);
    assert_eq!(attribute(login_span, "http.request.header.content-type"), &json!(["application/json"]));
    assert_eq!(attribute(login_span, "http.response.status_code"), 200);
    let checkout_span = find(spans, "gateway", "server", "POST /api/checkout");
    assert_eq!(attribute(checkout_span, "http.request.header.authorization"), &json!(["***MASKED***"]));
    let orders_span = find(spans, "orders", "server", "POST /orders");
    assert_eq!(attribute(orders_span, "http.request.header.authorization"), &json!(["***MASKED***"]));
    assert!(attribute(orders_span, "http.request.body").as_str().unwrap().contains(r#""card_number":"***MASKED***""#));
    let pay_client = find(spans, "orders", "client", "POST /pay");
    assert!(attribute(pay_client, "http.response.body").as_str().unwrap().contains("paid"));
    let db_span = find(spans, "inventory", "client", "UPDATE products");
    assert_eq!(attribute(db_span, "db.system.name"), "sqlite");
    let stored = trace.to_string();
    for secret in ["hunter2", "s3cr3t-t0ken", "4242-4242"] {
        assert!(!stored.contains(secret), "{secret} stored unmasked");
    }

    let deadline = Instant::now() + Duration::from_secs(20);
    let logs = loop {
        let logs = get(&format!("{}/api/sessions/{}/logs", server.api, session["id"].as_str().unwrap())).unwrap();
        if logs["logs"].as_array().unwrap().len() >= 5 || Instant::now() > deadline {
            break logs;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let logs = logs["logs"].as_array().unwrap();
    assert!(logs.iter().any(|l| l["body"] == "order paid" && l["service"] == "orders"), "{logs:#?}");
    assert!(logs.iter().all(|l| l["trace_id"] == trace_id.as_str()));

    let outside = wait_for_trace(&server.api, &outside_trace, 1);
    assert!(outside["session_id"].is_null());
    let outside_span = &outside["spans"][0];
    let keys: Vec<&String> = outside_span["attributes"].as_object().unwrap().keys().collect();
    assert!(
        keys.iter().all(|k| !k.starts_with("http.request.header.") && !k.starts_with("http.request.body")),
        "{keys:?}"
    );
    assert!(!outside.to_string().contains("outside-pass"));
}

#[test]
fn the_demo_command_drives_a_session_with_no_orphan_spans() {
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..7).map(|_| free_port()).collect();
    let address = |index: usize| format!("127.0.0.1:{}", ports[index]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_sessiontrace"))
        .arg("demo")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--http", &address(0), "--otlp-http", &address(1), "--otlp-grpc", &address(2)])
        .args(["--gateway", &address(3), "--orders", &address(4), "--inventory", &address(5), "--payment", &address(6)])
        .args(["--payment-failure-rate", "0"])
        .env("SESSIONTRACE_LOG", "warn")
        .env("DEMO_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    let mut session_id = None;
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(id) = line.trim().strip_prefix("sessiontrace show ") {
            session_id = id.split_whitespace().next().map(str::to_string);
        }
        let done = line.starts_with("Ctrl-C");
        lines.push(line);
        if done {
            break;
        }
    }
    let output = lines.join("\n");
    let page = format!("demo page: http://{}/", address(3));
    assert!(lines.iter().any(|l| l == &page), "{output}");
    assert!(output.contains(&format!("http://{}/test", address(4))), "{output}");
    assert_eq!(lines.iter().filter(|l| l.contains("] ")).count(), 5, "{output}");
    let session_id = session_id.unwrap_or_else(|| panic!("no session printed: {output}"));
    let api = format!("http://{}", address(0));

    // 5 traces; the two checkouts have 9 spans each (driver, gateway x2, orders x3, inventory x2, payment).
    let deadline = Instant::now() + Duration::from_secs(30);
    let traces = loop {
        let traces = get(&format!("{api}/api/sessions/{session_id}/traces")).unwrap();
        let spans: u64 = traces["traces"].as_array().unwrap().iter().map(|t| t["span_count"].as_u64().unwrap()).sum();
        if spans >= 27 || Instant::now() > deadline {
            break traces;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let traces = traces["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 5, "{traces:#?}");
    for summary in traces {
        let trace = get(&format!("{api}/api/traces/{}", summary["trace_id"].as_str().unwrap())).unwrap();
        let spans = trace["spans"].as_array().unwrap();
        let ids: HashSet<&str> = spans.iter().map(|s| s["span_id"].as_str().unwrap()).collect();
        let roots: Vec<&Value> = spans.iter().filter(|s| s["parent_span_id"].is_null()).collect();
        assert_eq!(roots.len(), 1, "{trace:#}");
        assert_eq!(roots[0]["service"], "demo-driver");
        assert_eq!(roots[0]["kind"], "client");
        for span in spans {
            if let Some(parent) = span["parent_span_id"].as_str() {
                assert!(ids.contains(parent), "orphan {span:#}");
            }
        }
    }
    // SIGTERM, as a terminal's Ctrl-C would: the command stops its services before it exits.
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(reqwest::blocking::get(format!("http://{}/healthz", address(3))).is_err(), "the gateway outlived the demo");
}
