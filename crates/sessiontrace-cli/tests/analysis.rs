//! Issue 20 through the real binary: a session's completeness facts and service map
//! (`GET /api/sessions/{id}/analysis`, `?include=completeness` on the session, `sessiontrace show`):
//! a browser call into gateway → orders → payment with orders' clock 5 ms early, a span whose parent
//! never arrived, a browser call whose trace has no backend span, and a span after the session stopped.

mod support;

use std::process::Command;

use serde_json::{Value, json};
use support::RunningServer;

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

fn post(client: &reqwest::blocking::Client, url: String, body: &Value) -> Value {
    let response = client.post(&url).json(body).send().unwrap();
    let status = response.status();
    let text = response.text().unwrap();
    assert!(status.is_success(), "{url}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn get(client: &reqwest::blocking::Client, url: String) -> Value {
    let response = client.get(&url).send().unwrap();
    assert!(response.status().is_success(), "{url}: {}", response.status());
    response.json().unwrap()
}

/// (trace, span, parent, start ms, duration ms, error)
type Spec<'a> = (&'a str, &'a str, Option<&'a str>, u64, u64, bool);

fn spans_of(service: &str, specs: &[Spec]) -> Value {
    let spans: Vec<Value> = specs
        .iter()
        .map(|(trace, span, parent, start, ms, error)| {
            let mut span = json!({"traceId": trace, "spanId": span, "name": format!("{service} call"), "kind": 2,
                "startTimeUnixNano": (start * 1_000_000).to_string(),
                "endTimeUnixNano": ((start + ms) * 1_000_000).to_string()});
            if let Some(parent) = parent {
                span["parentSpanId"] = json!(parent);
            }
            if *error {
                span["status"] = json!({"code": 2, "message": "failed"});
            }
            span
        })
        .collect();
    json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": spans}]}]})
}

fn network(trace: &str, span: &str, at: u64, status: u16) -> Value {
    json!({"type": 5, "timestamp": at, "data": {"tag": "sessiontrace/network", "payload": {
        "method": "POST", "url": "/api/checkout", "status": status, "start_ms": at, "duration_ms": 40,
        "trace_id": trace, "span_id": span}}})
}

#[test]
fn completeness_and_the_service_map_of_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let server = RunningServer::start(dir.path());
    let client = reqwest::blocking::Client::new();
    let session = post(&client, format!("{}/api/sessions", server.api), &json!({"name": "analysis"}));
    let id = session["id"].as_str().unwrap().to_string();
    let prefix = session["trace_id_prefix"].as_str().unwrap().to_string();
    let trace = |n: u8| format!("{prefix}{:0>width$}", n, width = 32 - prefix.len());
    let (t1, t2, t9) = (trace(1), trace(2), trace(9));
    let t0 = now_ms() - 10_000; // everything happened before the stop below
    let events = json!({"seq": 0, "events": [
        {"type": 4, "timestamp": t0, "data": {"href": "http://shop.test/", "width": 800, "height": 600}},
        network(&t1, "b100000000000001", t0 + 100, 502),
        network(&t9, "b900000000000009", t0 + 400, 200),
    ]});
    post(&client, format!("{}/api/sessions/{id}/events", server.api), &events);
    let traces = format!("{}/v1/traces", server.otlp_http);
    let g1 = "a000000000000001";
    let o1 = "a000000000000002";
    post(&client, traces.clone(), &spans_of("gateway", &[(&t1, g1, Some("b100000000000001"), t0 + 105, 30, false)]));
    // orders' clock runs 5 ms early: its span starts before the gateway span that called it.
    post(&client, traces.clone(), &spans_of("orders", &[(&t1, o1, Some(g1), t0 + 100, 20, true)]));
    post(&client, traces.clone(), &spans_of("payment", &[(&t1, "a000000000000003", Some(o1), t0 + 110, 5, true)]));
    post(
        &client,
        traces.clone(),
        &spans_of("orders", &[(&t2, "a000000000000004", Some("ffffffffffffffff"), t0 + 200, 10, false)]),
    );
    post(&client, format!("{}/api/sessions/{id}/stop", server.api), &json!({}));
    let stopped = get(&client, format!("{}/api/sessions/{id}", server.api))["stopped_at_ms"].as_u64().unwrap();
    post(&client, traces, &spans_of("payment", &[(&t2, "a000000000000005", None, stopped + 5_000, 10, false)]));

    let analysis = get(&client, format!("{}/api/sessions/{id}/analysis", server.api));
    let facts = &analysis["completeness"];
    assert_eq!(facts["orphans_by_service"], json!({"orders": 1}), "{facts:#}");
    assert_eq!(facts["orphans"][0]["span_id"], "a000000000000004");
    assert_eq!(facts["untraced_calls"].as_array().unwrap().len(), 1);
    assert_eq!(facts["untraced_calls"][0]["trace_id"], t9.as_str());
    assert_eq!(facts["after_stop"][0]["span_id"], "a000000000000005");
    assert_eq!(
        facts["skew"],
        json!([{"parent_service": "gateway", "child_service": "orders", "max_ms": 5.0, "spans": 1,
        "example": {"trace_id": t1, "span_id": o1, "service": "orders", "name": "orders call"}}])
    );

    let map = &analysis["map"];
    let nodes: Vec<&str> = map["nodes"].as_array().unwrap().iter().map(|n| n["service"].as_str().unwrap()).collect();
    assert_eq!(nodes, ["browser", "gateway", "orders", "payment"]);
    let edges: Vec<(String, String, u64, u64)> = map["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["from"].as_str().unwrap().into(),
                e["to"].as_str().unwrap().into(),
                e["calls"].as_u64().unwrap(),
                e["errors"].as_u64().unwrap(),
            )
        })
        .collect();
    let edge = |a: &str, b: &str, calls, errors| (a.to_string(), b.to_string(), calls, errors);
    assert_eq!(
        edges,
        [edge("browser", "gateway", 1, 1), edge("gateway", "orders", 1, 1), edge("orders", "payment", 1, 1)]
    );

    // One trace's map: its own calls only (no browser node: the replay is the session's).
    let trace_map = &get(&client, format!("{}/api/traces/{t1}/map", server.api))["map"];
    let nodes: Vec<&str> =
        trace_map["nodes"].as_array().unwrap().iter().map(|n| n["service"].as_str().unwrap()).collect();
    assert_eq!(nodes, ["gateway", "orders", "payment"], "{trace_map:#}");
    assert_eq!(trace_map["edges"].as_array().unwrap().len(), 2, "{trace_map:#}");
    let unknown = client.get(format!("{}/api/traces/{}/map", server.api, "f".repeat(32))).send().unwrap();
    assert_eq!(unknown.status(), 404);

    // The same facts in the session JSON when asked for, and in `sessiontrace show`.
    let with = get(&client, format!("{}/api/sessions/{id}?include=completeness", server.api));
    assert_eq!(with["completeness"], *facts);
    assert!(get(&client, format!("{}/api/sessions/{id}", server.api)).get("completeness").is_none());
    let output =
        Command::new(env!("CARGO_BIN_EXE_sessiontrace")).args(["show", &id, "--server", &server.api]).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}{}", String::from_utf8_lossy(&output.stderr));
    assert!(text.contains("orphan spans (parent never arrived): orders 1"), "{text}");
    let untraced = text.lines().find(|l| l.contains("browser call without backend spans:")).unwrap_or_default();
    assert!(untraced.ends_with(&format!("POST /api/checkout → 200 (trace {t9})")), "{text}");
    assert!(text.contains("spans that started after the session stopped: 1"), "{text}");
    assert!(text.contains("clock skew gateway -> orders: up to 5.0ms (1 spans)"), "{text}");
}
