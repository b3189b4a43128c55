//! Criterion benchmarks of the SDK's hot paths: the sampler decision, `traceparent` extract + inject,
//! masking a 10 KiB JSON body, and what the tower layer adds to a request with and without capture.
//! Run: `cargo bench -p sessiontrace-sdk --bench sdk` (figures print to the terminal; nothing fails).

use std::hint::black_box;

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Request};
use http_body_util::BodyExt;
use opentelemetry::global::BoxedTracer;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanKind, TraceId, TracerProvider as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, ShouldSample, SpanData, SpanExporter};
use sessiontrace_model::masking::MaskingRules;
use sessiontrace_sdk::capture::{BodyTap, body_attributes};
use sessiontrace_sdk::propagation::{HeaderExtractor, HeaderInjector};
use sessiontrace_sdk::{SessionIdGenerator, SessionPropagator, SessionSampler, SessionTraceLayer};
use tower::ServiceExt;

/// Drops every batch: the benchmark measures the SDK, not an exporter.
#[derive(Debug)]
struct NullExporter;

impl SpanExporter for NullExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        black_box(batch);
        Ok(())
    }
}

fn sampler(c: &mut Criterion) {
    let sampler = SessionSampler::parent_based_ratio(0.1);
    let session = TraceId::from_hex("debdeb0badcafe000000000000000001").unwrap();
    let other = TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap();
    c.bench_function("sampler/session trace", |b| {
        b.iter(|| sampler.should_sample(None, black_box(session), "GET /", &SpanKind::Server, &[], &[]))
    });
    c.bench_function("sampler/other trace (parent-based ratio)", |b| {
        b.iter(|| sampler.should_sample(None, black_box(other), "GET /", &SpanKind::Server, &[], &[]))
    });
}

fn propagation(c: &mut Criterion) {
    let propagator = SessionPropagator::default();
    let mut incoming = HeaderMap::new();
    incoming.insert("traceparent", HeaderValue::from_static("00-debdeb0badcafe000000000000000001-b7ad6b7169203331-01"));
    incoming.insert("tracestate", HeaderValue::from_static("vendor=a,sessiontrace=hb"));
    c.bench_function("traceparent/extract+inject", |b| {
        b.iter(|| {
            let cx = propagator.extract(&HeaderExtractor(black_box(&incoming)));
            let mut outgoing = HeaderMap::new();
            propagator.inject_context(&cx, &mut HeaderInjector(&mut outgoing));
            outgoing
        })
    });
}

fn json_body(bytes: usize) -> String {
    let mut items = Vec::new();
    let mut index = 0;
    while items.iter().map(|s: &String| s.len() + 1).sum::<usize>() < bytes {
        items.push(format!(
            r#"{{"id":{index},"user":"user{index}","password":"pw-{index}","note":"some text for item {index}","tags":["a","b"]}}"#
        ));
        index += 1;
    }
    format!("[{}]", items.join(","))
}

fn masking(c: &mut Criterion) {
    let body = json_body(10 * 1024);
    let rules = MaskingRules::default();
    let tap = BodyTap::shared(64 * 1024);
    BodyTap::record_all(&tap, body.as_bytes());
    c.bench_function("masking/10 KiB JSON body", |b| b.iter(|| body_attributes("http.request.body", &tap, &rules)));
    // For scale: what a JSON parse and re-serialization of the same body costs on its own.
    c.bench_function("masking/reference: serde_json parse + serialize", |b| {
        b.iter(|| serde_json::to_string(&serde_json::from_str::<serde_json::Value>(black_box(&body)).unwrap()).unwrap())
    });
    let clean = body.replace("password", "nickname");
    c.bench_function("masking/10 KiB JSON body with nothing to mask", |b| {
        b.iter(|| rules.mask_body(black_box(&clean)))
    });
}

fn layer(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _entered = runtime.enter();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(NullExporter)
        .with_sampler(SessionSampler::new(Sampler::ParentBased(Box::new(Sampler::AlwaysOn))))
        .with_id_generator(SessionIdGenerator)
        .build();
    let handler = || post(|body: String| async move { ([("content-type", "application/json")], body) });
    let plain: Router = Router::new().route("/echo", handler());
    let traced: Router = Router::new()
        .route("/echo", handler())
        .layer(SessionTraceLayer::new().with_tracer(BoxedTracer::new(Box::new(provider.tracer("bench")))));
    let body = r#"{"user":"ann","password":"hunter2","items":[{"sku":"tea","qty":2}]}"#;
    let request = |traceparent: Option<&str>| {
        let mut builder =
            Request::post("/echo").header("content-type", "application/json").header("authorization", "Bearer x");
        if let Some(traceparent) = traceparent {
            builder = builder.header("traceparent", traceparent);
        }
        builder.body(Body::from(body)).unwrap()
    };
    let run = |router: &Router, traceparent: Option<&'static str>| {
        let router = router.clone();
        runtime.block_on(async move {
            let response = router.oneshot(request(traceparent)).await.unwrap();
            response.into_body().collect().await.unwrap().to_bytes()
        })
    };
    c.bench_function("layer/none (baseline)", |b| b.iter(|| run(&plain, None)));
    c.bench_function("layer/request outside a session", |b| b.iter(|| run(&traced, None)));
    let session = Some("00-debdeb0badcafe000000000000000001-b7ad6b7169203331-01");
    c.bench_function("layer/session request with capture", |b| b.iter(|| run(&traced, session)));
    let _ = provider.shutdown();
}

criterion_group!(benches, sampler, propagation, masking, layer);
criterion_main!(benches);
