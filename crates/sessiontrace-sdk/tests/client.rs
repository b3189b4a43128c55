//! `TracedClient` against a real local HTTP server: the client span, the injected headers, capture on
//! session traces only, and the span ending when the body has been read.

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;
use opentelemetry::Value;
use opentelemetry::global::BoxedTracer;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanKind, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use sessiontrace_sdk::{CaptureConfig, Injection, SessionIdGenerator, SessionPropagator, SessionSampler, TracedClient};

async fn echo_server() -> String {
    let router = Router::new().route(
        "/echo",
        post(|headers: HeaderMap, body: String| async move {
            let traceparent = headers.get("traceparent").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
            ([("content-type", "application/json".to_string()), ("x-seen-traceparent", traceparent)], body)
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}/echo")
}

fn client() -> (TracedClient, InMemorySpanExporter, SdkTracerProvider) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .with_sampler(SessionSampler::parent_based_ratio(1.0))
        .with_id_generator(SessionIdGenerator)
        .build();
    let tracer = BoxedTracer::new(Box::new(provider.tracer("client-test")));
    let client = TracedClient::with_settings(
        reqwest::Client::new(),
        CaptureConfig::default(),
        Injection::default(),
        Some(tracer),
    );
    (client, exporter, provider)
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| &kv.value)
}

const BODY: &str = r#"{"user":"ann","password":"hunter2"}"#;

#[tokio::test]
async fn session_calls_are_propagated_and_captured() {
    let url = echo_server().await;
    let (client, exporter, _provider) = client();
    let carrier = std::collections::HashMap::from([(
        "traceparent".to_string(),
        "00-debdeb0badcafe000000000000000001-b7ad6b7169203331-01".to_string(),
    )]);
    let parent = SessionPropagator::default().extract(&carrier);
    let request =
        client.post(&url).header("authorization", "Bearer x").body(BODY).header("content-type", "application/json");
    let response = client.execute_in(&parent, Some("POST /echo"), request.build().unwrap()).await.unwrap();
    let seen = response.headers()["x-seen-traceparent"].to_str().unwrap().to_string();
    assert_eq!(response.url().as_str(), url, "the response keeps its URL");
    assert!(exporter.get_finished_spans().unwrap().is_empty(), "the span ends with the body, not before");
    assert_eq!(response.text().await.unwrap(), BODY, "the caller reads the body unchanged");
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 1);
    let span = &spans[0];
    assert_eq!(span.span_kind, SpanKind::Client);
    assert_eq!(span.parent_span_id.to_string(), "b7ad6b7169203331");
    assert_eq!(seen, format!("00-debdeb0badcafe000000000000000001-{}-01", span.span_context.span_id()));
    let masked = r#"{"user":"ann","password":"***MASKED***"}"#;
    assert_eq!(attribute(span, "http.request.body").unwrap().as_str(), masked);
    assert_eq!(attribute(span, "http.response.body").unwrap().as_str(), masked);
    assert_eq!(attribute(span, "http.request.header.authorization").unwrap().to_string(), "[\"***MASKED***\"]");
    assert_eq!(attribute(span, "http.response.status_code"), Some(&Value::I64(200)));
}

#[tokio::test]
async fn calls_outside_a_session_are_not_captured_and_failures_are_marked() {
    let url = echo_server().await;
    let (client, exporter, _provider) = client();
    let response = client.send(client.post(&url).body(BODY)).await.unwrap();
    assert_eq!(response.text().await.unwrap(), BODY);
    let refused = client.send(client.post("http://127.0.0.1:1/nothing")).await;
    assert!(refused.is_err());
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 2);
    assert!(spans[0].parent_span_id == opentelemetry::trace::SpanId::INVALID);
    assert!(attribute(&spans[0], "http.request.body").is_none());
    assert_eq!(attribute(&spans[1], "error.type").unwrap().as_str(), "connect");
}
