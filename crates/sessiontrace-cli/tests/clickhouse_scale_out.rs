//! Scale-out on real servers: two ClickHouse servers as two shards of the cluster `sessiontrace_test`
//! (scripts/clickhouse.sh writes it into their configs), the store's tables as `<name>_local` on each
//! with a Distributed table over both under the plain name (docs/scale-out.md), and two `sessiontrace
//! serve` processes, one per server, writing at the same time. A session whose traces were split over both
//! collectors must read back whole through either one.
//!
//! Needs `SESSIONTRACE_CLICKHOUSE_URL` and `SESSIONTRACE_CLICKHOUSE_URL_2` (`.ci/run` starts both);
//! skips with a printed reason otherwise.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::{Value, json};
use sessiontrace_store_clickhouse::ServerVersion;
use sessiontrace_store_clickhouse::schema::{self, Features};
use support::RunningServer;

const CLUSTER: &str = "sessiontrace_test";
const TRACES: usize = 24;

fn clickhouse(url: &str, sql: &str) -> String {
    let response = reqwest::blocking::Client::new()
        .post(format!("{url}/"))
        .body(sql.to_string())
        .timeout(Duration::from_secs(30))
        .send()
        .unwrap_or_else(|e| panic!("clickhouse at {url}: {e}"));
    let status = response.status();
    let text = response.text().unwrap();
    assert!(status.is_success(), "clickhouse at {url} refused {sql}: {text}");
    text.trim().to_string()
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    hasher.finish()
}

fn string_value(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        ..Default::default()
    }
}

/// One OTLP request with one span of each trace: the root spans for one collector, children for the other.
/// Every span starts at `base` (Unix ns) or just after: the order of arrival does not decide the root.
fn request(service: &str, trace_ids: &[Vec<u8>], root: bool, base: u64) -> Vec<u8> {
    let spans = trace_ids
        .iter()
        .map(|trace_id| {
            let root_span_id = {
                let mut id = trace_id[8..].to_vec();
                id[7] ^= 1;
                id
            };
            let (span_id, parent_span_id) = if root {
                (root_span_id, Vec::new())
            } else {
                let mut id = trace_id[8..].to_vec();
                id[7] ^= 2;
                (id, root_span_id)
            };
            Span {
                trace_id: trace_id.clone(),
                span_id,
                parent_span_id,
                name: if root { "GET /cart".into() } else { "SELECT cart".into() },
                kind: if root { 2 } else { 3 },
                // The root starts first and ends last, as a real one does.
                start_time_unix_nano: if root { base } else { base + 1_000_000 },
                end_time_unix_nano: base + if root { 5_000_000 } else { 2_000_000 },
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: vec![string_value("service.name", service)], ..Default::default() }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn get(url: &str) -> Value {
    let response = reqwest::blocking::get(url).unwrap();
    assert!(response.status().is_success(), "GET {url} answered {}", response.status());
    response.json().unwrap()
}

#[test]
fn two_collectors_over_two_shards_read_back_a_whole_session() {
    let urls = [std::env::var("SESSIONTRACE_CLICKHOUSE_URL"), std::env::var("SESSIONTRACE_CLICKHOUSE_URL_2")];
    let [Ok(first_url), Ok(second_url)] = urls else {
        eprintln!(
            "skipping the clickhouse scale-out test: set SESSIONTRACE_CLICKHOUSE_URL and SESSIONTRACE_CLICKHOUSE_URL_2 \
             (two servers started by scripts/clickhouse.sh with both TCP ports as the cluster)"
        );
        return;
    };
    let database = format!("st_scale_{:016x}", random_u64());
    for url in [&first_url, &second_url] {
        let shards = clickhouse(url, &format!("SELECT count() FROM system.clusters WHERE cluster = '{CLUSTER}'"));
        assert_eq!(shards, "2", "clickhouse at {url} has no two-shard cluster {CLUSTER} (see scripts/clickhouse.sh)");
        let version = ServerVersion::parse(&clickhouse(url, "SELECT version()")).unwrap();
        for statement in schema::cluster_statements(&database, CLUSTER, Features::for_version(version), 0, false) {
            clickhouse(url, &statement);
        }
    }
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let collectors: Vec<RunningServer> = [&first_url, &second_url]
        .iter()
        .zip(&dirs)
        .map(|(url, dir)| {
            RunningServer::start_with(
                dir.path(),
                &["--store", "clickhouse", "--clickhouse-url", url, "--clickhouse-database", &database],
            )
        })
        .collect();

    let client = reqwest::blocking::Client::new();
    let session: Value = client
        .post(format!("{}/api/sessions", collectors[0].api))
        .json(&json!({"name": "scale-out"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = session["id"].as_str().unwrap().to_string();
    let prefix = session["trace_id_prefix"].as_str().unwrap().to_string();
    let trace_ids: Vec<Vec<u8>> =
        (0..TRACES).map(|_| hex::decode(format!("{prefix}{:018x}", random_u64() >> 8)).unwrap()).collect();

    // Both collectors at once: each gets root spans of half the traces and child spans of the other half,
    // one request per trace, from two threads each.
    let (first_half, second_half) = trace_ids.split_at(TRACES / 2);
    let base = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let plan: Vec<(String, &str, &[Vec<u8>], bool)> = vec![
        (collectors[0].otlp_http.clone(), "frontend", first_half, true),
        (collectors[0].otlp_http.clone(), "cart", second_half, false),
        (collectors[1].otlp_http.clone(), "frontend", second_half, true),
        (collectors[1].otlp_http.clone(), "cart", first_half, false),
    ];
    std::thread::scope(|scope| {
        for (endpoint, service, traces, root) in &plan {
            scope.spawn(move || {
                let client = reqwest::blocking::Client::new();
                for trace_id in traces.iter() {
                    let response = client
                        .post(format!("{endpoint}/v1/traces"))
                        .header("content-type", "application/x-protobuf")
                        .body(request(service, std::slice::from_ref(trace_id), *root, base))
                        .send()
                        .unwrap();
                    assert_eq!(response.status(), 200, "{endpoint}: {:?}", response.text());
                }
            });
        }
    });
    for (seq, collector) in collectors.iter().enumerate() {
        let events =
            json!({"seq": seq, "events": [{"type": 4, "timestamp": 1_700_000_000_000u64 + seq as u64, "data": {}}]});
        let response = client.post(format!("{}/api/sessions/{id}/events", collector.api)).json(&events).send().unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }

    let expected: HashSet<String> = trace_ids.iter().map(hex::encode).collect();
    for collector in &collectors {
        let traces = get(&format!("{}/api/sessions/{id}/traces", collector.api));
        let traces = traces["traces"].as_array().unwrap();
        let seen: HashSet<String> = traces.iter().map(|t| t["trace_id"].as_str().unwrap().to_string()).collect();
        assert_eq!(seen, expected, "every trace of the session through {}", collector.api);
        for trace in traces {
            assert_eq!(trace["span_count"], 2, "{trace}");
            assert_eq!(trace["root_name"], "GET /cart", "{trace}");
            assert_eq!(trace["services"], json!(["cart", "frontend"]), "{trace}");
        }
        let one = trace_ids.iter().map(hex::encode).next().unwrap();
        let trace = get(&format!("{}/api/traces/{one}", collector.api));
        assert_eq!(trace["spans"].as_array().unwrap().len(), 2, "{trace}");
        assert_eq!(trace["session_id"], json!(id));
        let shown = get(&format!("{}/api/sessions/{id}", collector.api));
        assert_eq!(shown["counts"]["traces"], TRACES, "{shown}");
        assert_eq!(shown["counts"]["spans"], 2 * TRACES, "{shown}");
        assert_eq!(shown["counts"]["events"], 2, "{shown}");
    }
    // The rows really are spread over both shards.
    for url in [&first_url, &second_url] {
        let blocks = clickhouse(url, &format!("SELECT count() FROM {database}.span_blocks_v1_local"));
        assert!(blocks.parse::<u64>().unwrap() > 0, "no span blocks on the shard at {url}");
    }
    drop(collectors);
    for url in [&first_url, &second_url] {
        clickhouse(url, &format!("DROP DATABASE IF EXISTS {database}"));
    }
}
