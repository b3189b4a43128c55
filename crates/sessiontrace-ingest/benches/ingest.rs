//! Hot functions of the write path on realistic 200-span requests (the load generator's workload):
//! full OTLP protobuf decode, `traces::prepare` from protobuf and from JSON, session detection, masking of
//! a 10 KiB JSON body, and the store's zstd block encoder.
//!
//! Run: `cargo bench -p sessiontrace-ingest --bench ingest`. Criterion prints time per iteration and
//! throughput in spans (elements) per second.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use sessiontrace_ingest::IngestConfig;
use sessiontrace_ingest::traces::{TraceInput, prepare};
use sessiontrace_loadgen::workload::{Protocol, WorkloadSpec, templates};
use sessiontrace_model::masking::MaskingRules;
use std::hint::black_box;

fn benches(c: &mut Criterion) {
    let spec = WorkloadSpec { templates: 1, ..Default::default() };
    let protobuf = templates(&spec, Protocol::HttpProtobuf).remove(0);
    let json = templates(&spec, Protocol::HttpJson).remove(0);
    let spans = protobuf.span_count as u64;
    let config = IngestConfig::default();
    println!(
        "request: {spans} spans, {} bytes protobuf ({} bytes/span), {} bytes JSON",
        protobuf.body.len(),
        protobuf.body.len() / spans as usize,
        json.body.len()
    );

    let mut group = c.benchmark_group("otlp");
    group.throughput(Throughput::Elements(spans));
    group.bench_function("prost_decode_200_spans", |b| {
        b.iter(|| ExportTraceServiceRequest::decode(black_box(protobuf.body.as_slice())).unwrap())
    });
    group.bench_function("prepare_protobuf_200_spans", |b| {
        b.iter(|| prepare(TraceInput::Protobuf(black_box(protobuf.body.clone())), &config).unwrap())
    });
    group.bench_function("prepare_json_200_spans", |b| {
        b.iter(|| prepare(TraceInput::Json(black_box(json.body.clone())), &config).unwrap())
    });
    let decoded = ExportTraceServiceRequest::decode(protobuf.body.as_slice()).unwrap();
    let all_spans: Vec<_> = decoded.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans).collect();
    group.bench_function("session_detection_200_spans", |b| {
        b.iter(|| {
            all_spans
                .iter()
                .filter(|span| {
                    sessiontrace_ingest::normalize::session_key(&span.trace_id, &span.attributes, None).is_some()
                })
                .count()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(spans));
    group.bench_function("zstd1_block_200_spans", |b| {
        b.iter(|| zstd::bulk::compress(black_box(&protobuf.body), 1).unwrap())
    });
    let compressed = zstd::bulk::compress(&protobuf.body, 1).unwrap();
    println!(
        "zstd-1: {} -> {} bytes ({:.1}x, {} bytes/span)",
        protobuf.body.len(),
        compressed.len(),
        protobuf.body.len() as f64 / compressed.len() as f64,
        compressed.len() / spans as usize
    );
    group.finish();

    let body = ten_kib_json();
    let rules = MaskingRules::default();
    let mut group = c.benchmark_group("masking");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("json_body_10kib", |b| b.iter(|| rules.mask_body(black_box(&body)).unwrap()));
    group.finish();
}

/// A 10 KiB JSON body with nested objects and a few secrets.
fn ten_kib_json() -> String {
    let mut items = Vec::new();
    let mut number = 0;
    while serde_json::to_string(&items).unwrap().len() < 10 * 1024 {
        items.push(serde_json::json!({"sku": format!("sku-{number}"), "qty": number % 5, "price": 19.99,
            "customer": {"name": "Ann", "email": "ann@example.com", "password": "hunter2", "card_number": "4111"}}));
        number += 1;
    }
    serde_json::json!({"order": {"items": items, "token": "abc"}}).to_string()
}

criterion_group!(ingest, benches);
criterion_main!(ingest);
