//! Durability: spans acknowledged with a 200 survive a SIGKILL of the server right after the last
//! acknowledgement. Several clients send concurrently so the writer's group commits are exercised.
//! A SIGTERM instead stops the server cleanly: the store's writer finishes, deferred index included.

mod support;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as Kind};
use opentelemetry_proto::tonic::trace::v1::Span;
use support::RunningServer;

const CLIENTS: usize = 4;
const REQUESTS_PER_CLIENT: usize = 25;
const SPANS_PER_REQUEST: usize = 100;

fn request(trace_id: [u8; 16]) -> Vec<u8> {
    let spans = (0..SPANS_PER_REQUEST)
        .map(|i| Span {
            trace_id: trace_id.to_vec(),
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            parent_span_id: if i == 0 { vec![] } else { 1u64.to_be_bytes().to_vec() },
            name: format!("op {i}"),
            start_time_unix_nano: 1_700_000_000_000_000_000 + i as u64 * 1000,
            end_time_unix_nano: 1_700_000_000_100_000_000,
            attributes: vec![KeyValue {
                key: "i".into(),
                value: Some(AnyValue { value: Some(Kind::IntValue(i as i64)) }),
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    support::export_body("crash-test", spans)
}

fn trace_id(client: usize, number: usize) -> [u8; 16] {
    let mut id = [0x42u8; 16];
    id[0] = client as u8 + 1;
    id[8..].copy_from_slice(&(number as u64).to_be_bytes());
    id
}

/// Sends every client's requests concurrently; returns the acknowledged trace ids per client.
fn send_concurrently(endpoint: &str) -> Vec<Vec<[u8; 16]>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|client| {
                scope.spawn(move || {
                    let http = reqwest::blocking::Client::new();
                    let mut ok = Vec::new();
                    for number in 0..REQUESTS_PER_CLIENT {
                        let id = trace_id(client, number);
                        let response = http
                            .post(endpoint)
                            .header("content-type", "application/x-protobuf")
                            .body(request(id))
                            .send()
                            .unwrap();
                        assert_eq!(response.status(), 200);
                        ok.push(id);
                    }
                    ok
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn sigterm_stops_cleanly_with_the_trace_index_complete() {
    if std::env::var("SESSIONTRACE_TEST_STORE").as_deref() == Ok("clickhouse") {
        eprintln!("skipped: reads the embedded store's file");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut server = RunningServer::start(dir.path());
    let acknowledged = send_concurrently(&format!("{}/v1/traces", server.otlp_http));
    let status = server.terminate().expect("the server exits within 30 s of SIGTERM");
    assert!(status.success(), "exit status after SIGTERM: {status}");
    // The writer defers the trace index by up to 2 s; a clean stop writes it before the process ends.
    let file = rusqlite::Connection::open(dir.path().join("sessiontrace.db")).unwrap();
    let (indexed_through, last_block): (i64, i64) = file
        .query_row("SELECT indexed_through, (SELECT MAX(id) FROM span_blocks_v1) FROM index_state_v1", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .unwrap();
    assert_eq!(indexed_through, last_block, "every block is indexed");
    let rows: i64 = file.query_row("SELECT COUNT(DISTINCT trace_id) FROM trace_index_v1", [], |r| r.get(0)).unwrap();
    assert_eq!(rows as usize, acknowledged.iter().flatten().count());
}

#[test]
fn acknowledged_spans_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = RunningServer::start(dir.path());
    let endpoint = format!("{}/v1/traces", server.otlp_http);
    let acknowledged = send_concurrently(&endpoint);
    server.kill();

    let server = RunningServer::start(dir.path());
    let mut found = 0;
    for id in acknowledged.iter().flatten() {
        let url = format!("{}/api/traces/{}", server.api, hex::encode(id));
        let trace: serde_json::Value = reqwest::blocking::get(&url).unwrap().json().unwrap();
        found += trace["spans"].as_array().map_or(0, Vec::len);
    }
    assert_eq!(found, CLIENTS * REQUESTS_PER_CLIENT * SPANS_PER_REQUEST);
}
