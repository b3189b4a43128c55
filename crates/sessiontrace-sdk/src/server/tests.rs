//! Router tests of the layer with `tower::ServiceExt::oneshot` and an in-memory span exporter.

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider, SpanData};
use tower::ServiceExt;

use super::SessionTraceLayer;
use crate::{SessionIdGenerator, SessionSampler};

const SESSION_TRACEPARENT: &str = "00-debdeb0badcafe000000000000000001-b7ad6b7169203331-01";

fn app(html_meta: bool) -> (Router, InMemorySpanExporter, SdkTracerProvider) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .with_sampler(SessionSampler::new(Sampler::ParentBased(Box::new(Sampler::AlwaysOn))))
        .with_id_generator(SessionIdGenerator)
        .build();
    let tracer = BoxedTracer::new(Box::new(provider.tracer("test")));
    let router = Router::new()
        .route("/echo/{id}", post(|body: String| async move { ([("content-type", "application/json")], body) }))
        .route("/page", get(|| async { axum::response::Html("<html><head><title>t</title></head></html>") }))
        .route("/fail", get(|| async { StatusCode::BAD_GATEWAY }))
        .layer(SessionTraceLayer::new().with_tracer(tracer).with_html_meta(html_meta));
    (router, exporter, provider)
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv: &KeyValue| &kv.value)
}

async fn send(router: Router, request: Request<Body>) -> (http::response::Parts, bytes::Bytes) {
    let response = router.oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    (parts, body.collect().await.unwrap().to_bytes())
}

const LOGIN: &str = r#"{"user":"ann","password":"hunter2"}"#;

#[tokio::test]
async fn session_request_is_traced_captured_and_masked() {
    let (router, exporter, _provider) = app(false);
    let request = Request::post("/echo/7?x=1")
        .header("traceparent", SESSION_TRACEPARENT)
        .header("authorization", "Bearer secret")
        .header("content-type", "application/json")
        .header("host", "shop.local:3000")
        .body(Body::from(LOGIN))
        .unwrap();
    let (parts, body) = send(router, request).await;
    assert_eq!(body, LOGIN, "the service sees and sends the body unchanged");
    assert_eq!(parts.headers["x-trace-id"], "debdeb0badcafe000000000000000001");
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 1);
    let span = &spans[0];
    assert_eq!(span.name, "POST /echo/{id}");
    assert_eq!(span.parent_span_id.to_string(), "b7ad6b7169203331");
    assert_eq!(span.span_context.trace_id().to_string(), "debdeb0badcafe000000000000000001");
    assert_eq!(attribute(span, "http.route").unwrap().as_str(), "/echo/{id}");
    assert_eq!(attribute(span, "url.query").unwrap().as_str(), "x=1");
    assert_eq!(attribute(span, "server.port"), Some(&Value::I64(3000)));
    assert_eq!(attribute(span, "http.response.status_code"), Some(&Value::I64(200)));
    assert_eq!(attribute(span, "http.request.header.authorization").unwrap().to_string(), "[\"***MASKED***\"]");
    let masked = r#"{"user":"ann","password":"***MASKED***"}"#;
    assert_eq!(attribute(span, "http.request.body").unwrap().as_str(), masked);
    assert_eq!(attribute(span, "http.response.body").unwrap().as_str(), masked);
    assert!(attribute(span, "http.response.header.content-type").is_some());
    assert!(attribute(span, "http.request.body.truncated").is_none());
}

#[tokio::test]
async fn requests_outside_a_session_are_not_captured() {
    let (router, exporter, _provider) = app(false);
    let request = Request::post("/echo/1").header("content-type", "application/json").body(Body::from(LOGIN)).unwrap();
    let (parts, body) = send(router, request).await;
    assert_eq!(body, LOGIN);
    let spans = exporter.get_finished_spans().unwrap();
    let span = &spans[0];
    assert_eq!(parts.headers["x-trace-id"].to_str().unwrap(), span.span_context.trace_id().to_string());
    assert!(!span.span_context.trace_id().to_string().starts_with("debdeb"));
    assert!(span.attributes.iter().all(|kv| !kv.key.as_str().starts_with("http.request.header")));
    assert!(attribute(span, "http.request.body").is_none());
}

#[tokio::test]
async fn session_cookie_starts_a_session_trace_and_html_gets_the_meta_tag() {
    let (router, exporter, _provider) = app(true);
    let request =
        Request::get("/page").header("cookie", "a=b; sessiontrace_session=0badcafe").body(Body::empty()).unwrap();
    let (parts, body) = send(router, request).await;
    let spans = exporter.get_finished_spans().unwrap();
    let context = &spans[0].span_context;
    assert!(context.trace_id().to_string().starts_with("debdeb0badcafe"));
    assert_eq!(spans[0].parent_span_id, opentelemetry::trace::SpanId::INVALID);
    let meta = format!("<meta name=\"traceparent\" content=\"00-{}-{}-01\">", context.trace_id(), context.span_id());
    assert_eq!(String::from_utf8(body.to_vec()).unwrap(), format!("<html><head>{meta}<title>t</title></head></html>"));
    assert!(parts.headers.get("content-length").is_none());
}

#[tokio::test]
async fn large_bodies_are_cut_and_flagged_and_errors_marked() {
    let (router, exporter, _provider) = app(false);
    let big = format!("{{\"data\":\"{}\"}}", "x".repeat(70 * 1024));
    let request = Request::post("/echo/2")
        .header("traceparent", SESSION_TRACEPARENT)
        .header("content-type", "application/json")
        .body(Body::from(big.clone()))
        .unwrap();
    let (_, body) = send(router.clone(), request).await;
    assert_eq!(body.len(), big.len());
    let request = Request::get("/fail").header("traceparent", SESSION_TRACEPARENT).body(Body::empty()).unwrap();
    send(router, request).await;
    let spans = exporter.get_finished_spans().unwrap();
    let echo = spans.iter().find(|s| s.name == "POST /echo/{id}").unwrap();
    assert_eq!(attribute(echo, "http.request.body").unwrap().as_str().len(), 64 * 1024);
    assert_eq!(attribute(echo, "http.request.body.truncated"), Some(&Value::Bool(true)));
    let fail = spans.iter().find(|s| s.name == "GET /fail").unwrap();
    assert_eq!(fail.status, opentelemetry::trace::Status::error(""));
}

#[tokio::test]
async fn streaming_bodies_are_never_captured() {
    let (router, exporter, _provider) = app(false);
    let request = Request::post("/echo/3")
        .header("traceparent", SESSION_TRACEPARENT)
        .header("content-type", "text/event-stream")
        .body(Body::from("data: 1\n\n"))
        .unwrap();
    send(router, request).await;
    let spans = exporter.get_finished_spans().unwrap();
    assert!(attribute(&spans[0], "http.request.body").is_none());
    assert!(attribute(&spans[0], "http.request.header.content-type").is_some());
}

/// A downstream call made inside the handler: what the propagator writes from the current context.
async fn outgoing_headers(sampler: Sampler, traceparent: &str, tracestate: &str) -> (String, String) {
    use crate::propagation::SessionPropagator;
    use opentelemetry::propagation::TextMapPropagator;
    use std::collections::HashMap;
    let provider = SdkTracerProvider::builder().with_sampler(sampler).build();
    let tracer = BoxedTracer::new(Box::new(provider.tracer("test")));
    let router = Router::new()
        .route(
            "/",
            get(|| async {
                let mut out: HashMap<String, String> = HashMap::new();
                SessionPropagator::default().inject_context(&opentelemetry::Context::current(), &mut out);
                format!("{}\n{}", out["traceparent"], out.get("tracestate").cloned().unwrap_or_default())
            }),
        )
        .layer(SessionTraceLayer::new().with_tracer(tracer));
    let request = Request::get("/").header("traceparent", traceparent).header("tracestate", tracestate);
    let (_, body) = send(router, request.body(Body::empty()).unwrap()).await;
    let text = String::from_utf8(body.to_vec()).unwrap();
    let (parent, state) = text.split_once('\n').unwrap();
    (parent.to_string(), state.to_string())
}

#[tokio::test]
async fn the_random_flag_and_level_2_tracestate_leave_as_they_arrived() {
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let key = format!("{}@{}", "t".repeat(200), "v".repeat(55));
    let state = format!("foo@=1,{key}=2,rojo=3");
    let parent_based = || Sampler::ParentBased(Box::new(Sampler::AlwaysOn));
    for (flags, expect) in [("02", "02"), ("03", "03"), ("01", "01"), ("00", "00")] {
        let incoming = format!("00-{trace}-b7ad6b7169203331-{flags}");
        let (outgoing, outgoing_state) = outgoing_headers(parent_based(), &incoming, &state).await;
        assert!(outgoing.starts_with(&format!("00-{trace}-")), "{outgoing}");
        assert!(!outgoing.contains("b7ad6b7169203331"), "a new span id: {outgoing}");
        assert!(outgoing.ends_with(&format!("-{expect}")), "flags {flags} left as {outgoing}");
        assert_eq!(outgoing_state, state, "flags {flags}");
    }
    // Sampled is the local decision, random is what arrived.
    let (outgoing, _) = outgoing_headers(Sampler::AlwaysOff, &format!("00-{trace}-b7ad6b7169203331-03"), "").await;
    assert!(outgoing.ends_with("-02"), "{outgoing}");
    let (outgoing, _) = outgoing_headers(Sampler::AlwaysOn, &format!("00-{trace}-b7ad6b7169203331-02"), "").await;
    assert!(outgoing.ends_with("-03"), "{outgoing}");
    // Duplicated keys: the list is kept, the first of each key.
    let (_, outgoing_state) =
        outgoing_headers(parent_based(), &format!("00-{trace}-b7ad6b7169203331-01"), "foo=1,foo=2").await;
    assert_eq!(outgoing_state, "foo=1");
}
