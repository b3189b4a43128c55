//! A service in another language keeps a session's trace: a Python stdlib HTTP server instrumented with
//! the Python `opentelemetry-sdk` and a parent-based sampler that samples nothing of its own, called with
//! the session's `traceparent`, records its spans in the session's trace (the sampled flag of session
//! traces does it, no sessiontrace code in the service). Its own traffic stays unsampled. Needs
//! `SESSIONTRACE_PYTHON` (a venv with opentelemetry-sdk and the OTLP exporters); skipped without it.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::RunningServer;

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn python_service_with_parent_based_always_off_keeps_the_session_trace() {
    let Some(python) = support::python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = RunningServer::start(dir.path());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/session_service.py");
    let mut child = KillOnDrop(
        Command::new(python)
            .arg(script)
            .args(["--otlp-http", &server.otlp_http])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the python service"),
    );
    let mut port = String::new();
    BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut port).unwrap();
    let service = format!("http://127.0.0.1:{}", port.trim());

    let client = reqwest::blocking::Client::new();
    let session: Value = client
        .post(format!("{}/api/sessions", server.api))
        .json(&json!({"name": "python"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let traceparent = session["traceparent"].as_str().unwrap();
    let in_session: Value =
        client.get(format!("{service}/work")).header("traceparent", traceparent).send().unwrap().json().unwrap();
    assert_eq!(in_session["trace_id"].as_str().unwrap(), &traceparent[3..35]);
    assert_eq!(in_session["sampled"], true);
    let own: Value = client.get(format!("{service}/work")).send().unwrap().json().unwrap();
    assert_eq!(own["sampled"], false, "ParentBased(ALWAYS_OFF) samples none of its own roots");

    let url = format!("{}/api/traces/{}", server.api, in_session["trace_id"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    let trace: Value = loop {
        let response = client.get(&url).send().unwrap();
        if response.status().is_success() {
            let trace: Value = response.json().unwrap();
            if trace["spans"].as_array().unwrap().len() >= 2 {
                break trace;
            }
        }
        assert!(Instant::now() < deadline, "the python service's session spans were not stored");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(trace["session_id"], session["id"]);
    let spans = trace["spans"].as_array().unwrap();
    assert!(spans.iter().all(|s| s["service"] == "py-service"));
    let server_span = spans.iter().find(|s| s["name"] == "GET /work").unwrap();
    assert_eq!(server_span["span_id"], in_session["span_id"]);
    assert_eq!(server_span["parent_span_id"].as_str().unwrap(), &traceparent[36..52]);
    let own_trace =
        client.get(format!("{}/api/traces/{}", server.api, own["trace_id"].as_str().unwrap())).send().unwrap();
    assert_eq!(own_trace.status(), 404, "an unsampled trace was exported");
}
