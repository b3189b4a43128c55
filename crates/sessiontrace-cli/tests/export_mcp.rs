//! Issue 15 end to end, through the real binary: a recorded checkout session (replay events with a
//! typed card, a click, a failing request; a backend trace whose payment call is declined with captured
//! secrets; a warning log) exported by `sessiontrace export` as markdown and JSON — steps to reproduce,
//! the failing payment request with its body, secrets only as `***MASKED***` — and a session of 10,000
//! spans exported within its token budget, with "showing N of M" and the follow-up. The MCP server is
//! driven by the official Python `mcp` client over stdio and streamable HTTP when
//! `SESSIONTRACE_MCP_PYTHON` (or `SESSIONTRACE_PYTHON`) names a Python with `mcp` installed. With
//! authentication on, `/mcp` and the export route need a read key.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::RunningServer;

const SECRETS: &[&str] = &["s3cr3t-t0ken", "hunter2", "4000-0000-0000-0002", "sessioncookie42"];

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

fn kv(key: &str, value: Value) -> Value {
    let value = match value {
        Value::String(text) => json!({"stringValue": text}),
        Value::Number(n) if n.is_u64() => json!({"intValue": n.to_string()}),
        Value::Array(items) => {
            json!({"arrayValue": {"values": items.into_iter().map(|v| json!({"stringValue": v})).collect::<Vec<_>>()}})
        }
        other => json!({"stringValue": other.to_string()}),
    };
    json!({"key": key, "value": value})
}

#[allow(clippy::too_many_arguments)]
fn otlp_span(
    trace_id: &str,
    span_id: &str,
    parent: Option<&str>,
    name: &str,
    kind: u8,
    start_ms: u64,
    ms: u64,
    error: Option<&str>,
    attributes: Vec<Value>,
) -> Value {
    let mut span = json!({"traceId": trace_id, "spanId": span_id, "name": name, "kind": kind,
        "startTimeUnixNano": (start_ms * 1_000_000).to_string(),
        "endTimeUnixNano": ((start_ms + ms) * 1_000_000).to_string(), "attributes": attributes});
    if let Some(parent) = parent {
        span["parentSpanId"] = json!(parent);
    }
    if let Some(message) = error {
        span["status"] = json!({"code": 2, "message": message});
    }
    span
}

fn post(client: &reqwest::blocking::Client, url: String, body: &Value) -> Value {
    let response = client.post(&url).json(body).send().unwrap();
    let status = response.status();
    let text = response.text().unwrap();
    assert!(status.is_success(), "{url}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn send_spans(client: &reqwest::blocking::Client, server: &RunningServer, service: &str, spans: Vec<Value>) {
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [kv("service.name", json!(service))]},
        "scopeSpans": [{"scope": {"name": "e2e"}, "spans": spans}]}]});
    post(client, format!("{}/v1/traces", server.otlp_http), &body);
}

/// The recorded checkout session; returns (session, checkout trace id, payment span id).
fn record_checkout(server: &RunningServer) -> (Value, String, String) {
    let client = reqwest::blocking::Client::new();
    let session = post(
        &client,
        format!("{}/api/sessions", server.api),
        &json!({"name": "checkout bug", "user": {"id": "ann"}, "capture": {"headers": true, "bodies": true}}),
    );
    let id = session["id"].as_str().unwrap().to_string();
    let traceparent = session["traceparent"].as_str().unwrap();
    let trace_id = traceparent[3..35].to_string();
    let t0 = now_ms();

    let (root, gateway, orders, payment) =
        ("1111111111111111", "2222222222222222", "3333333333333333", "4444444444444444");
    send_spans(
        &client,
        server,
        "gateway",
        vec![
            otlp_span(&trace_id, root, None, "POST /api/checkout", 3, t0 + 1_200, 80, None, vec![]),
            otlp_span(
                &trace_id,
                gateway,
                Some(root),
                "POST /api/checkout",
                2,
                t0 + 1_205,
                70,
                Some("payment declined"),
                vec![
                    kv("http.request.method", json!("POST")),
                    kv("url.path", json!("/api/checkout")),
                    kv("http.response.status_code", json!(402)),
                    kv("http.request.header.authorization", json!(["Bearer s3cr3t-t0ken"])),
                    kv("http.request.header.cookie", json!(["sid=sessioncookie42"])),
                    kv("http.request.body", json!(r#"{"sku":"pot","qty":1,"card_number":"4000-0000-0000-0002"}"#)),
                    kv("http.response.body", json!(r#"{"error":"card declined"}"#)),
                ],
            ),
        ],
    );
    send_spans(
        &client,
        server,
        "orders",
        vec![otlp_span(
            &trace_id,
            orders,
            Some(gateway),
            "POST /orders",
            2,
            t0 + 1_210,
            60,
            Some("payment failed"),
            vec![
                kv("http.request.method", json!("POST")),
                kv("url.path", json!("/orders")),
                kv("http.response.status_code", json!(402)),
            ],
        )],
    );
    send_spans(
        &client,
        server,
        "payment",
        vec![otlp_span(
            &trace_id,
            payment,
            Some(orders),
            "POST /pay",
            2,
            t0 + 1_220,
            30,
            Some("card declined"),
            vec![
                kv("http.request.method", json!("POST")),
                kv("url.path", json!("/pay")),
                kv("http.response.status_code", json!(402)),
                kv("http.request.header.authorization", json!(["Bearer s3cr3t-t0ken"])),
                kv(
                    "http.request.body",
                    json!(r#"{"order_id":"o-17","amount":12,"card_number":"4000-0000-0000-0002"}"#),
                ),
                kv("http.response.body", json!(r#"{"error":"card declined"}"#)),
            ],
        )],
    );
    let logs = json!({"resourceLogs": [{"resource": {"attributes": [kv("service.name", json!("payment"))]},
        "scopeLogs": [{"logRecords": [{"timeUnixNano": ((t0 + 1_240) * 1_000_000).to_string(),
            "severityNumber": 13, "severityText": "WARN", "body": {"stringValue": "card declined"},
            "traceId": trace_id, "spanId": payment}]}]}]});
    post(&client, format!("{}/v1/logs", server.otlp_http), &logs);

    let events = json!({"seq": 0, "events": [
        {"type": 4, "timestamp": t0 + 100, "data": {"href": "http://shop.test/checkout", "width": 800, "height": 600}},
        {"type": 2, "timestamp": t0 + 101, "data": {"node": {"type": 0, "id": 1, "childNodes": [
            {"type": 2, "id": 5, "tagName": "button", "attributes": {"id": "pay"}, "childNodes": [{"type": 3, "id": 6, "textContent": "Pay now"}]},
            {"type": 2, "id": 7, "tagName": "input", "attributes": {"id": "card"}, "childNodes": []}]}}},
        {"type": 3, "timestamp": t0 + 500, "data": {"source": 5, "id": 7, "text": "*******************"}},
        {"type": 3, "timestamp": t0 + 1_100, "data": {"source": 2, "type": 2, "id": 5, "x": 1, "y": 2}},
        {"type": 5, "timestamp": t0 + 1_290, "data": {"tag": "sessiontrace/network", "payload": {
            "method": "POST", "url": "/api/checkout", "status": 402, "start_ms": t0 + 1_195, "duration_ms": 95,
            "trace_id": trace_id, "span_id": root,
            "request": {"headers": {"Authorization": "Bearer s3cr3t-t0ken", "content-type": "application/json"},
                        "body": "{\"sku\":\"pot\",\"password\":\"hunter2\"}"},
            "response": {"headers": {"content-type": "application/json"}, "body": "{\"error\":\"card declined\"}"}}}},
        {"type": 5, "timestamp": t0 + 1_300, "data": {"tag": "sessiontrace/error", "payload": {"message": "Uncaught PaymentError: card declined", "kind": "error"}}}
    ]});
    post(&client, format!("{}/api/sessions/{id}/events", server.api), &events);
    post(&client, format!("{}/api/sessions/{id}/stop", server.api), &json!({}));

    // Spans and logs are acknowledged once durable; wait until the index shows the whole trace.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let trace: Value =
            client.get(format!("{}/api/traces/{trace_id}", server.api)).send().unwrap().json().unwrap_or(Value::Null);
        if trace["spans"].as_array().is_some_and(|s| s.len() == 4) {
            break;
        }
        assert!(Instant::now() < deadline, "the checkout trace did not arrive: {trace:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
    (session, trace_id, payment.to_string())
}

/// `sessiontrace export` against the server; (exit success, stdout, stderr).
fn export(server: &RunningServer, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_sessiontrace"))
        .arg("export")
        .args(args)
        .args(["--server", &server.api])
        .env_remove("SESSIONTRACE_KEY")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn assert_no_secret(text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret} appears unmasked in:\n{text}");
    }
}

#[test]
fn export_shows_steps_the_failing_payment_and_only_masked_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let server = RunningServer::start(dir.path());
    let (session, trace_id, payment) = record_checkout(&server);
    let short = session["short_id"].as_str().unwrap();

    let (ok, markdown, stderr) = export(&server, &[short]);
    assert!(ok, "{stderr}");
    println!("{markdown}");
    assert_no_secret(&markdown);
    assert!(markdown.starts_with(&format!("# Session {short}: checkout bug")), "{markdown}");
    assert!(markdown.contains(r#"- user: {"id":"ann"}"#), "{markdown}");
    assert!(markdown.contains("- services: gateway, orders, payment"), "{markdown}");
    assert!(markdown.contains("**Summary:** 3 errors;"), "{markdown}");
    // Steps to reproduce from the recorded actions, the typed value masked.
    assert!(markdown.contains("## Steps to reproduce\n"), "{markdown}");
    assert!(markdown.contains("1. +0.1s Open http://shop.test/checkout"), "{markdown}");
    assert!(markdown.contains("2. +0.5s Type into `input#card` (value ***MASKED***)"), "{markdown}");
    assert!(markdown.contains("3. +1.1s Click `button#pay \"Pay now\"` → POST /api/checkout → 402"), "{markdown}");
    // The merged timeline with every tag.
    for tag in ["[action]", "[request]", "[trace]", "[log]", "[error]"] {
        assert!(markdown.contains(tag), "no {tag} in {markdown}");
    }
    // The failing payment request with its masked headers and body, and the browser's view.
    assert!(markdown.contains("## Failing requests"), "{markdown}");
    assert!(markdown.contains("POST /pay → 402"), "{markdown}");
    assert!(markdown.contains(&format!("span `{payment}`")), "{markdown}");
    assert!(markdown.contains(r#"{"order_id":"o-17","amount":12,"card_number":"***MASKED***"}"#), "{markdown}");
    assert!(markdown.contains(r#"{"error":"card declined"}"#), "{markdown}");
    assert!(markdown.contains("authorization: ***MASKED***"), "{markdown}");
    assert!(markdown.contains(r#"{"sku":"pot","password":"***MASKED***"}"#), "{markdown}");
    // The trace tree and the warning.
    assert!(markdown.contains(&format!("trace `{trace_id}`")), "{markdown}");
    assert!(markdown.contains("- payment `POST /pay` server 30.0ms → 402 **ERROR**: card declined"), "{markdown}");
    assert!(markdown.contains("WARN payment: card declined"), "{markdown}");

    let out = dir.path().join("export.json");
    let (ok, _, stderr) = export(&server, &[short, "--format", "json", "--out", out.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert_no_secret(&text);
    let value: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["schema"], "sessiontrace.export/v1");
    assert_eq!(value["session"]["short_id"], short);
    assert_eq!(value["steps_source"], "actions");
    let pay = value["requests"].as_array().unwrap().iter().find(|r| r["url"] == "/pay").expect("the payment request");
    assert_eq!(pay["status"], 402);
    assert_eq!(pay["response"]["body"]["text"], r#"{"error":"card declined"}"#);
    assert_eq!(pay["request"]["headers"]["authorization"], "***MASKED***");
    let spans = value["traces"][0]["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 4);
    assert!(spans.iter().all(|s| s["trace_id"] == trace_id.as_str() && s["start_time_unix_nano"].is_string()));
    assert!(value.get("replay").is_none());

    // The API route's own checks.
    let client = reqwest::blocking::Client::new();
    let bad = client.get(format!("{}/api/sessions/{short}/export?format=xml", server.api)).send().unwrap();
    assert_eq!(bad.status(), 400);
    let md = client.get(format!("{}/api/sessions/{short}/export", server.api)).send().unwrap();
    assert_eq!(md.headers()["content-type"], "text/markdown; charset=utf-8");
    let (ok, _, stderr) = export(&server, &["0badc0de"]);
    assert!(!ok);
    assert!(stderr.contains("404") && stderr.contains("no session"), "{stderr}");
}

/// One session with one trace of `spans` spans (2 errors deep inside), sent in blocks of 2,000.
fn record_big_session(server: &RunningServer, spans: usize) -> (String, String) {
    let client = reqwest::blocking::Client::new();
    let session = post(&client, format!("{}/api/sessions", server.api), &json!({"name": "big"}));
    let trace_id = session["traceparent"].as_str().unwrap()[3..35].to_string();
    let t0 = now_ms();
    let all: Vec<Value> = (0..spans)
        .map(|i| {
            let parent = (i > 0).then(|| format!("{:016x}", (i - 1) / 4 + 1));
            let error = (i == 7_777 || i == 9_001).then_some("db timeout");
            otlp_span(
                &trace_id,
                &format!("{:016x}", i + 1),
                parent.as_deref(),
                &format!("SELECT {i}"),
                3,
                t0 + i as u64 / 10,
                (i % 97) as u64,
                error,
                vec![kv("db.system.name", json!("sqlite"))],
            )
        })
        .collect();
    for block in all.chunks(2_000) {
        send_spans(&client, server, "orders", block.to_vec());
    }
    post(&client, format!("{}/api/sessions/{}/stop", server.api, session["id"].as_str().unwrap()), &json!({}));
    (session["short_id"].as_str().unwrap().to_string(), trace_id)
}

#[test]
fn a_session_of_10000_spans_exports_within_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let server = RunningServer::start(dir.path());
    let (short, trace_id) = record_big_session(&server, 10_000);
    for max_tokens in [2_000usize, 8_000] {
        let started = Instant::now();
        let (ok, markdown, stderr) = export(&server, &[&short, "--max-tokens", &max_tokens.to_string()]);
        let elapsed = started.elapsed();
        assert!(ok, "{stderr}");
        println!("export of 10,000 spans, --max-tokens {max_tokens}: {} bytes in {elapsed:?}", markdown.len());
        assert!(markdown.chars().count() <= max_tokens * 4, "{} chars over {max_tokens} tokens", markdown.len());
        assert!(markdown.contains("of 10000 spans (errors, then longest)"), "{markdown}");
        assert!(markdown.contains(&format!("all spans: `GET /api/traces/{trace_id}`")), "{markdown}");
        assert!(markdown.contains("SELECT 7777") && markdown.contains("SELECT 9001"), "errors first: {markdown}");
    }
    let (ok, json_text, stderr) = export(&server, &[&short, "--format", "json"]);
    assert!(ok, "{stderr}");
    let value: Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(value["traces"][0]["spans_total"], 10_000);
    assert_eq!(value["traces"][0]["spans_shown"], 80);
    assert_eq!(value["truncated"][0]["more"], format!("GET /api/traces/{trace_id}"));
    println!("JSON export of 10,000 spans: {} bytes", json_text.len());
}

/// A Python with the official `mcp` package, or `None` after saying the test is skipped.
fn mcp_python() -> Option<String> {
    let python = std::env::var("SESSIONTRACE_MCP_PYTHON").or_else(|_| std::env::var("SESSIONTRACE_PYTHON")).ok();
    let has_mcp = python
        .as_deref()
        .is_some_and(|p| Command::new(p).args(["-c", "import mcp"]).output().is_ok_and(|o| o.status.success()));
    if !has_mcp {
        eprintln!("skipped: no Python with the `mcp` package (SESSIONTRACE_MCP_PYTHON or SESSIONTRACE_PYTHON)");
        return None;
    }
    python
}

#[test]
fn the_python_mcp_client_drives_both_transports() {
    let Some(python) = mcp_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = RunningServer::start(dir.path());
    let (session, trace_id, payment) = record_checkout(&server);
    let (big_short, big_trace) = record_big_session(&server, 10_000);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/mcp_client.py");
    for transport in ["stdio", "http"] {
        let output = Command::new(&python)
            .arg(script)
            .args(["--transport", transport, "--server", &server.api, "--binary", env!("CARGO_BIN_EXE_sessiontrace")])
            .args(["--session", session["short_id"].as_str().unwrap(), "--trace", &trace_id, "--span", &payment])
            .args(["--big-session", &big_short, "--big-trace", &big_trace])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{transport}: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        let answers: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
        let tools: Vec<&str> = answers["tools"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        assert_eq!(
            tools,
            [
                "find_sessions_by_trace",
                "get_session",
                "get_span",
                "get_trace",
                "get_user_actions",
                "list_sessions",
                "search_logs"
            ],
            "{transport}"
        );
        let call = |name: &str| -> (&str, bool) {
            let answer = &answers["calls"][name];
            (
                answer["text"].as_str().unwrap_or_else(|| panic!("{transport} {name}: {answers:#}")),
                answer["is_error"] == true,
            )
        };
        let text_of = |name: &str| {
            let (text, is_error) = call(name);
            assert!(!is_error, "{transport} {name}: {text}");
            assert_no_secret(text);
            // Every answer within its default budget of 8,000 tokens (≈ 4 characters each).
            assert!(text.chars().count() <= 32_000, "{transport} {name}: {} chars", text.len());
            text
        };
        assert!(text_of("list_sessions").contains("checkout bug"));
        assert!(text_of("get_session").contains(r#""card_number":"***MASKED***""#));
        assert!(text_of("get_session_steps").contains("## Steps to reproduce"));
        assert!(!text_of("get_session_steps").contains("## Timeline"));
        assert!(text_of("get_session_json").contains("sessiontrace.export/v1"));
        assert!(text_of("get_trace").contains("POST /pay"));
        assert!(text_of("get_span").contains(r#"{"error":"card declined"}"#));
        assert!(text_of("get_span").contains("***MASKED***"));
        assert!(text_of("search_logs").contains("card declined"));
        assert!(
            text_of("get_user_actions").contains("Type into")
                || text_of("get_user_actions").contains("(value ***MASKED***)")
        );
        assert!(text_of("find_sessions_by_trace").contains(session["short_id"].as_str().unwrap()));
        assert!(text_of("get_session_big").contains("of 10000 spans"));
        assert!(text_of("get_trace_big").contains("of 10000 spans"));
        // Paging with the cursor: each of the two sessions once, one per page, then no cursor.
        let pages: Vec<Vec<String>> = serde_json::from_value(answers["pages"].clone()).unwrap();
        let mut seen: Vec<&str> = pages.iter().flatten().map(String::as_str).collect();
        seen.sort_unstable();
        let mut expected = [session["short_id"].as_str().unwrap(), big_short.as_str()];
        expected.sort_unstable();
        assert_eq!((pages.len(), seen), (2, expected.to_vec()), "{transport}: {pages:?}");
        if transport == "http" {
            // `/mcp?project=elsewhere` reads that project (empty), not `default`.
            let other = &answers["other_project"];
            assert_eq!(other["total"], 0, "{other}");
        }
        let (text, is_error) = call("get_session_unknown");
        assert!(is_error && text.starts_with("No session") && text.ends_with('.'), "{transport}: {text}");
        let (text, is_error) = call("get_trace_bad_id");
        assert!(is_error && text.starts_with("A trace id is 32 hexadecimal"), "{transport}: {text}");
    }
}

/// `sessiontrace keys create` in a data folder; the secret.
fn create_key(data_dir: &std::path::Path, kind: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_sessiontrace"))
        .args(["keys", "create", "--project", "default", "--kind", kind, "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().lines().next().unwrap().trim().to_string()
}

#[test]
fn with_authentication_on_mcp_and_export_need_a_read_key() {
    if support::uses_clickhouse() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ingest = create_key(dir.path(), "ingest");
    let read = create_key(dir.path(), "read");
    let server = RunningServer::start(dir.path());
    let client = reqwest::blocking::Client::new();
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}}});
    let mcp = |key: Option<&str>| {
        let mut request = client
            .post(format!("{}/mcp", server.api))
            .header("accept", "application/json, text/event-stream")
            .json(&initialize);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send().unwrap().status().as_u16()
    };
    assert_eq!(mcp(None), 401);
    assert_eq!(mcp(Some(&ingest)), 403);
    assert_eq!(mcp(Some(&read)), 200);
    let export = |key: Option<&str>| {
        let mut request = client.get(format!("{}/api/sessions/0badc0de/export", server.api));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send().unwrap().status().as_u16()
    };
    assert_eq!(export(None), 401);
    assert_eq!(export(Some(&ingest)), 403);
    assert_eq!(export(Some(&read)), 404);
}
