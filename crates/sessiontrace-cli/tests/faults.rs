//! Faults (issue 17), end to end against the real binary:
//! - a full disk: the data directory is a small tmpfs holding a ballast file; spans are sent until the
//!   store refuses. The refusal is a retryable 503 with `Retry-After` (never a 500, never a crash), reads
//!   keep answering, and once the ballast is deleted ingest resumes by itself (no restart); every
//!   acknowledged span is then stored, and the store opens cleanly after a restart. The real Python
//!   OpenTelemetry SDK (OTLP/HTTP, then gRPC), exporting while the disk is full, is refused (503 /
//!   `UNAVAILABLE`), retries on its own and delivers every span once space frees. Needs root (mount);
//!   skipped, saying so, elsewhere and on the ClickHouse pass;
//! - a forwarding upstream that accepts connections and never answers: ingest is neither slowed nor
//!   blocked, every request is acknowledged and stored, and what could not be forwarded is counted.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as Kind};
use opentelemetry_proto::tonic::trace::v1::Span;
use reqwest::blocking::Client;
use serde_json::Value;
use support::RunningServer;

/// A tmpfs mounted for the test's life.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `mib` MiB at `dir`, or `None` (the test is skipped) where mounting is not allowed.
    fn mount(dir: &Path, mib: u32) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir)
            .output()
            .ok()?;
        if !output.status.success() {
            eprintln!("skipped: cannot mount a tmpfs here: {}", String::from_utf8_lossy(&output.stderr).trim());
            return None;
        }
        Some(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// 100 spans of one trace with incompressible attribute values (so that the disk fills quickly).
fn trace_body(trace_id: [u8; 16]) -> Vec<u8> {
    let spans = (0..100u64)
        .map(|i| Span {
            trace_id: trace_id.to_vec(),
            span_id: (i + 1).to_be_bytes().to_vec(),
            parent_span_id: if i == 0 { Vec::new() } else { 1u64.to_be_bytes().to_vec() },
            name: format!("op {i}"),
            start_time_unix_nano: 1_700_000_000_000_000_000 + i * 1000,
            end_time_unix_nano: 1_700_000_000_100_000_000,
            attributes: vec![KeyValue {
                key: "payload".into(),
                value: Some(AnyValue { value: Some(Kind::StringValue(hex::encode(rand::random::<[u8; 128]>()))) }),
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    support::export_body("filler", spans)
}

fn post(client: &Client, server: &RunningServer, trace_id: [u8; 16]) -> reqwest::blocking::Response {
    client
        .post(format!("{}/v1/traces", server.otlp_http))
        .header("content-type", "application/x-protobuf")
        .body(trace_body(trace_id))
        .send()
        .unwrap()
}

fn spans_of(client: &Client, server: &RunningServer, trace_id: [u8; 16]) -> usize {
    let response = client.get(format!("{}/api/traces/{}", server.api, hex::encode(trace_id))).send().unwrap();
    assert_eq!(response.status(), 200, "trace {}", hex::encode(trace_id));
    response.json::<Value>().unwrap()["spans"].as_array().unwrap().len()
}

fn store_failures(client: &Client, server: &RunningServer) -> u64 {
    let text = client.get(format!("{}/metrics", server.api)).send().unwrap().text().unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("sessiontrace_store_failures_total "))
        .and_then(|value| value.trim().parse().ok())
        .expect("sessiontrace_store_failures_total in /metrics")
}

/// The real Python SDK (`tests/python/keyed_export.py`, 3 spans, one export each, OTLP_TIMEOUT 30 s)
/// exports while the disk is full: the server refuses (its store failure counter moves), `reserve` is
/// deleted, and every export ends in success with its span stored: the SDK retried the 503 /
/// `UNAVAILABLE` on its own. A full SQLite may still fit a small write in WAL space it already has, so an
/// export that met no refusal proves nothing: the disk is filled again (spans until a 503) and the export
/// repeated, at most 5 times. Nothing without SESSIONTRACE_PYTHON.
fn sdk_retries_through_a_full_disk(
    client: &Client,
    server: &RunningServer,
    protocol: &str,
    endpoint: &str,
    reserve: &Path,
) {
    let Some(python) = support::python() else { return };
    for attempt in 1..=5 {
        let started = Instant::now();
        while post(client, server, rand::random()).status() != 503 {
            assert!(started.elapsed() < Duration::from_secs(30), "the disk did not fill again");
        }
        let before = store_failures(client, server);
        let mut exporter = Command::new(&python)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/keyed_export.py"))
            .args(["--spans", "3", "--service", "py-disk-full"])
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
            .env("OTEL_EXPORTER_OTLP_INSECURE", "true")
            // Long enough for the SDK's back-off to wait for the space.
            .env("OTEL_EXPORTER_OTLP_TIMEOUT", "30")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run the python exporter");
        let refused = loop {
            if store_failures(client, server) > before {
                break true;
            }
            if exporter.try_wait().unwrap().is_some() {
                break false;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "{protocol}: the SDK's export never ended");
            std::thread::sleep(Duration::from_millis(20));
        };
        if refused {
            std::fs::remove_file(reserve).unwrap();
        }
        let output = exporter.wait_with_output().unwrap();
        assert!(output.status.success(), "{protocol}: the python exporter failed");
        let sent: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert!(sent["exported"].as_array().unwrap().iter().all(|ok| ok == true), "{protocol}: {sent}");
        for trace in sent["trace_ids"].as_array().unwrap() {
            let url = format!("{}/api/traces/{}", server.api, trace.as_str().unwrap());
            let body: Value = client.get(url).send().unwrap().json().unwrap();
            assert_eq!(body["spans"].as_array().map(Vec::len), Some(1), "{protocol}: the SDK's span of {trace}");
        }
        if refused {
            eprintln!(
                "{protocol}: the Python SDK was refused on a full disk, retried, and delivered (attempt {attempt})"
            );
            return;
        }
    }
    panic!("{protocol}: the SDK's exports fitted in the full store 5 times: no refusal to retry");
}

#[test]
fn a_full_disk_refuses_writes_retryably_and_ingest_resumes_when_space_frees() {
    if support::uses_clickhouse() {
        eprintln!("skipped: the disk-full test is about the embedded store");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(_tmpfs) = Tmpfs::mount(&dir.path().join("fs"), 32) else { return };
    let ballast = dir.path().join("fs/ballast");
    std::fs::write(&ballast, vec![0u8; 6 << 20]).unwrap();
    // Space freed for the Python SDK's retries, one reserve per protocol. Freed space first goes to what the
    // full disk held back: the WAL checkpoint grows the database by the pages written since the last one,
    // and the trace index flush is due. A 3 MiB reserve was sometimes all taken by those on a loaded machine
    // (CI), and the SDK's next exports were refused until its 30 s timeout.
    let reserves = ["http", "grpc"].map(|protocol| dir.path().join(format!("fs/reserve-{protocol}")));
    for reserve in &reserves {
        std::fs::write(reserve, vec![0u8; 7 << 20]).unwrap();
    }
    let data = dir.path().join("fs/data");
    let mut server = RunningServer::start(&data);
    let client = Client::new();

    // Fill the disk: every 200 is acknowledged (durable); the first refusal must be a retryable 503.
    let mut acked = Vec::new();
    let refused = loop {
        assert!(acked.len() < 5000, "the disk never filled");
        let trace_id = rand::random::<[u8; 16]>();
        let response = post(&client, &server, trace_id);
        match response.status().as_u16() {
            200 => acked.push(trace_id),
            503 => {
                let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
                let text = response.text().unwrap();
                assert_eq!(retry_after.as_deref(), Some("1"), "{text}");
                assert!(text.contains("disk is full"), "the answer says why: {text}");
                break trace_id;
            }
            other => panic!("a full disk answered {other}: {}", response.text().unwrap()),
        }
    };
    assert!(acked.len() > 10, "some writes went through first ({})", acked.len());
    eprintln!("disk full after {} acknowledged traces of 100 spans", acked.len());

    // While full: writes keep being refused the same way, reads keep answering.
    assert_eq!(post(&client, &server, rand::random()).status(), 503);
    assert_eq!(spans_of(&client, &server, acked[0]), 100);
    assert_eq!(spans_of(&client, &server, *acked.last().unwrap()), 100);
    let sessions = client.get(format!("{}/api/sessions", server.api)).send().unwrap();
    assert_eq!(sessions.status(), 200);
    assert_eq!(client.get(format!("{}/healthz", server.api)).send().unwrap().status(), 200);

    // The real Python SDK, exporting while the disk is full, is refused and delivers once space frees.
    for ((protocol, endpoint), reserve) in
        [("http/protobuf", &server.otlp_http), ("grpc", &server.otlp_grpc)].into_iter().zip(&reserves)
    {
        sdk_retries_through_a_full_disk(&client, &server, protocol, endpoint, reserve);
    }

    // Space frees: the refused request, retried as an exporter would, goes through without a restart.
    std::fs::remove_file(&ballast).unwrap();
    let started = Instant::now();
    loop {
        match post(&client, &server, refused).status().as_u16() {
            200 => break,
            503 if started.elapsed() < Duration::from_secs(30) => std::thread::sleep(Duration::from_millis(200)),
            other => panic!("ingest did not resume after space freed: {other}"),
        }
    }
    eprintln!("ingest resumed {} ms after space freed", started.elapsed().as_millis());
    acked.push(refused);
    for _ in 0..5 {
        let trace_id = rand::random::<[u8; 16]>();
        assert_eq!(post(&client, &server, trace_id).status(), 200);
        acked.push(trace_id);
    }

    // Every acknowledged span is there, before and after a restart (the store opens cleanly).
    for &trace_id in &acked {
        assert_eq!(spans_of(&client, &server, trace_id), 100);
    }
    assert!(server.terminate().is_some_and(|status| status.success()), "a clean stop");
    let server = RunningServer::start(&data);
    for &trace_id in &acked {
        assert_eq!(spans_of(&client, &server, trace_id), 100);
    }
}

#[test]
fn a_hanging_upstream_never_slows_or_blocks_ingest() {
    // An upstream that accepts every connection and then never reads or answers.
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = upstream.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in upstream.incoming() {
            held.push(stream);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("forward.toml");
    std::fs::write(
        &config,
        format!(
            "[[forward]]\nname = \"hanging\"\nendpoint = \"http://{address}\"\ntimeout_ms = 300\nmax_retries = 1\n\
             initial_backoff_ms = 50\nqueue_capacity = 8\nconcurrency = 2\n"
        ),
    )
    .unwrap();
    let server = RunningServer::start_with(&dir.path().join("data"), &["--config", config.to_str().unwrap()]);
    let client = Client::new();
    let mut sent = Vec::new();
    let mut slowest = Duration::ZERO;
    for _ in 0..60 {
        let trace_id = rand::random::<[u8; 16]>();
        let started = Instant::now();
        assert_eq!(post(&client, &server, trace_id).status(), 200);
        slowest = slowest.max(started.elapsed());
        sent.push(trace_id);
    }
    eprintln!("60 requests acknowledged while the upstream hangs; slowest {} ms", slowest.as_millis());
    // An attempt gives up after 300 ms, but acknowledgements never wait for it.
    assert!(slowest < Duration::from_millis(2000), "an acknowledgement waited for the upstream: {slowest:?}");
    for &trace_id in &sent {
        assert_eq!(spans_of(&client, &server, trace_id), 100);
    }
    // Nothing reached the upstream; what was offered is accounted for as queued, failed or dropped.
    let metrics = client.get(format!("{}/metrics", server.api)).send().unwrap().text().unwrap();
    let value = |prefix: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(prefix) && l.contains("signal=\"traces\""))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(value("sessiontrace_forward_sent_total"), 0, "{metrics}");
    let given_up = value("sessiontrace_forward_failed_total") + value("sessiontrace_forward_queue_full_total");
    assert!(given_up > 0, "the hanging upstream's losses are counted: {metrics}");
}
