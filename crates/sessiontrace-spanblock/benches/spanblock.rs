//! Bytes per span and encode/decode speed of the column format against zstd of the protobuf, on the load
//! generator's 200-span requests (32 templates, so the figures are not one lucky block).
//!
//! Run: `cargo bench -p sessiontrace-spanblock --bench spanblock`. It prints the stored bytes per span at
//! each zstd level first; criterion then prints time per block and spans per second.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sessiontrace_loadgen::workload::{Protocol, WorkloadSpec, templates};
use sessiontrace_spanblock::{Encoder, decode};
use std::hint::black_box;

fn benches(c: &mut Criterion) {
    let requests = templates(&WorkloadSpec::default(), Protocol::HttpProtobuf);
    let spans: usize = requests.iter().map(|t| t.span_count).sum();
    let raw: usize = requests.iter().map(|t| t.body.len()).sum();
    println!("{} requests, {spans} spans, {:.1} bytes/span of protobuf", requests.len(), raw as f64 / spans as f64);
    for level in [1, 3, 6] {
        let plain: usize = requests.iter().map(|t| zstd::bulk::compress(&t.body, level).unwrap().len()).sum();
        let mut encoder = Encoder::new(level).unwrap();
        let columns: usize = requests.iter().map(|t| encoder.encode(&t.body).unwrap().len()).sum();
        println!(
            "zstd level {level}: protobuf {:.2} bytes/span, columns {:.2} bytes/span ({:+.1}%)",
            plain as f64 / spans as f64,
            columns as f64 / spans as f64,
            (columns as f64 / plain as f64 - 1.0) * 100.0
        );
    }

    let body = &requests[0].body;
    let mut group = c.benchmark_group("spanblock");
    group.throughput(Throughput::Elements(requests[0].span_count as u64));
    let mut encoder = Encoder::new(1).unwrap();
    group.bench_function("columns_encode_200_spans", |b| b.iter(|| encoder.encode(black_box(body)).unwrap()));
    let mut plain = zstd::bulk::Compressor::new(1).unwrap();
    group.bench_function("zstd1_encode_200_spans", |b| b.iter(|| plain.compress(black_box(body)).unwrap()));
    let columns = encoder.encode(body).unwrap();
    group.bench_function("columns_decode_200_spans", |b| b.iter(|| decode(black_box(&columns)).unwrap()));
    let zstd1 = zstd::bulk::compress(body, 1).unwrap();
    group.bench_function("zstd1_decode_200_spans", |b| b.iter(|| decode(black_box(&zstd1)).unwrap()));
    group.finish();
}

criterion_group!(group, benches);
criterion_main!(group);
