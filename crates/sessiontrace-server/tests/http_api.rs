//! Router tests without a socket (`tower::ServiceExt::oneshot`): bad input gets a clear 4xx and leaves
//! the server serving with nothing lost; replay chunks are idempotent; sessions link their spans.

use std::io::Write;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as Kind};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::{Value, json};
use sessiontrace_server::config::ServerConfig;
use tower::ServiceExt;

struct TestServer {
    router: Router,
    _dir: tempfile::TempDir,
}

impl TestServer {
    fn new() -> Self {
        Self::with(|_| {})
    }

    fn with(change: impl FnOnce(&mut ServerConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig { data_dir: dir.path().to_path_buf(), ..Default::default() };
        change(&mut config);
        let state = sessiontrace_server::build_state(config).unwrap();
        TestServer { router: sessiontrace_server::api_router(state), _dir: dir }
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, Vec<u8>) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        (status, response.into_body().collect().await.unwrap().to_bytes().to_vec())
    }

    async fn post(&self, path: &str, content_type: &str, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
        let request = Request::post(path).header(header::CONTENT_TYPE, content_type).body(Body::from(body)).unwrap();
        self.send(request).await
    }

    async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let (status, body) = self.send(Request::get(path).body(Body::empty()).unwrap()).await;
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    async fn start_session(&self) -> Value {
        let (status, body) = self.post("/api/sessions", "application/json", br#"{"name":"test"}"#.to_vec()).await;
        assert_eq!(status, StatusCode::CREATED);
        serde_json::from_slice(&body).unwrap()
    }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(Kind::StringValue(value.into())) }),
        ..Default::default()
    }
}

fn traces(trace_id: &[u8], spans: usize) -> ExportTraceServiceRequest {
    let spans = (0..spans)
        .map(|i| Span {
            trace_id: trace_id.to_vec(),
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            parent_span_id: if i == 0 { vec![] } else { 1u64.to_be_bytes().to_vec() },
            name: format!("op {i}"),
            start_time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
            end_time_unix_nano: 1_700_000_000_100_000_000,
            attributes: vec![kv("http.request.header.authorization", "Bearer secret"), kv("n", &i.to_string())],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: vec![kv("service.name", "api")], ..Default::default() }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_default()
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_loses_nothing() {
    let server = TestServer::with(|config| config.max_body_bytes = 64 * 1024);
    let good_trace = [7u8; 16];
    let (status, _) = server.post("/v1/traces", "application/x-protobuf", traces(&good_trace, 3).encode_to_vec()).await;
    assert_eq!(status, StatusCode::OK);

    let json = "application/json";
    let cases: Vec<(&str, Request<Body>, StatusCode, &str)> = vec![
        (
            "malformed protobuf",
            Request::post("/v1/traces")
                .header(header::CONTENT_TYPE, "application/x-protobuf")
                .body(Body::from(vec![0x0a, 0xff, 0xff]))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "not a valid OTLP trace protobuf",
        ),
        (
            "malformed JSON",
            Request::post("/v1/traces")
                .header(header::CONTENT_TYPE, json)
                .body(Body::from("{\"resourceSpans\": ["))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "not valid JSON",
        ),
        (
            "JSON without OTLP keys",
            Request::post("/v1/traces")
                .header(header::CONTENT_TYPE, json)
                .body(Body::from(r#"{"spans":[{"name":"x"}]}"#))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "no \"resourceSpans\" field",
        ),
        (
            "wrong content type",
            Request::post("/v1/traces").header(header::CONTENT_TYPE, "text/plain").body(Body::from("hello")).unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported content type",
        ),
        (
            "bad gzip",
            Request::post("/v1/traces")
                .header(header::CONTENT_TYPE, "application/x-protobuf")
                .header(header::CONTENT_ENCODING, "gzip")
                .body(Body::from("not gzip at all"))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "not valid gzip",
        ),
        (
            "bad zstd",
            Request::post("/v1/traces")
                .header(header::CONTENT_TYPE, "application/x-protobuf")
                .header(header::CONTENT_ENCODING, "zstd")
                .body(Body::from("not zstd either"))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "not valid zstd",
        ),
        (
            "an encoding the server does not speak",
            Request::post("/v1/traces")
                .header(header::CONTENT_TYPE, "application/x-protobuf")
                .header(header::CONTENT_ENCODING, "br")
                .body(Body::from(traces(&[1; 16], 1).encode_to_vec()))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "use gzip, zstd, deflate or none",
        ),
        (
            "trace id of the wrong length",
            Request::post("/v1/traces")
                .header(header::CONTENT_TYPE, "application/x-protobuf")
                .body(Body::from(traces(&[1, 2, 3], 1).encode_to_vec()))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "trace_id must be 16 bytes",
        ),
        (
            "all-zero trace id",
            Request::post("/v1/traces")
                .header(header::CONTENT_TYPE, "application/x-protobuf")
                .body(Body::from(traces(&[0; 16], 1).encode_to_vec()))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "trace_id must not be all zeros",
        ),
        (
            "oversized body",
            Request::post("/v1/traces")
                .header(header::CONTENT_TYPE, "application/x-protobuf")
                .body(Body::from(vec![0u8; 65 * 1024]))
                .unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than the limit",
        ),
        (
            "oversized after gzip",
            Request::post("/v1/traces")
                .header(header::CONTENT_TYPE, "application/x-protobuf")
                .header(header::CONTENT_ENCODING, "gzip")
                .body(Body::from(gzip(&vec![0u8; 200 * 1024])))
                .unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than the limit",
        ),
    ];
    for (name, request, expected_status, expected_message) in cases {
        let (status, body) = server.send(request).await;
        assert_eq!(status, expected_status, "{name}: {}", String::from_utf8_lossy(&body));
        let text =
            if body.first() == Some(&b'{') { message(&body) } else { String::from_utf8_lossy(&body).to_string() };
        let text = if text.is_empty() {
            // Protobuf answers carry a google.rpc.Status: field 2 is the message.
            String::from_utf8_lossy(&body).to_string()
        } else {
            text
        };
        assert!(text.contains(expected_message), "{name}: {text:?} should mention {expected_message:?}");
    }

    // The server still serves, and what was accepted before is intact.
    let (status, trace) = server.get_json(&format!("/api/traces/{}", hex::encode(good_trace))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(trace["spans"].as_array().unwrap().len(), 3);
    assert_eq!(trace["spans"][0]["attributes"]["http.request.header.authorization"], "***MASKED***");
    let (status, _) = server.post("/v1/traces", "application/x-protobuf", traces(&[8; 16], 2).encode_to_vec()).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn partial_success_reports_rejected_spans() {
    let server = TestServer::new();
    let mut request = traces(&[9; 16], 2);
    request.resource_spans[0].scope_spans[0].spans[1].span_id = vec![0; 8];
    let (status, body) = server.post("/v1/traces", "application/json", serde_json::to_vec(&request).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["partialSuccess"]["rejectedSpans"], json!("1"), "{answer}");
    assert!(answer["partialSuccess"]["errorMessage"].as_str().unwrap().contains("span_id must not be all zeros"));
    let (_, trace) = server.get_json(&format!("/api/traces/{}", hex::encode([9u8; 16]))).await;
    assert_eq!(trace["spans"].as_array().unwrap().len(), 1);
}

/// OTLP/HTTP bodies compressed the ways the OpenTelemetry Collector's exporter can send them.
#[tokio::test]
async fn zstd_and_deflate_bodies_are_read() {
    use std::io::Write;
    let server = TestServer::new();
    let zstd_body = zstd::encode_all(&traces(&[21; 16], 2).encode_to_vec()[..], 1).unwrap();
    let mut deflate = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    deflate.write_all(&traces(&[22; 16], 3).encode_to_vec()).unwrap();
    for (encoding, body, trace_id, spans) in
        [("zstd", zstd_body, [21u8; 16], 2), ("deflate", deflate.finish().unwrap(), [22u8; 16], 3)]
    {
        let request = Request::post("/v1/traces")
            .header(header::CONTENT_TYPE, "application/x-protobuf")
            .header(header::CONTENT_ENCODING, encoding)
            .body(Body::from(body))
            .unwrap();
        let (status, answer) = server.send(request).await;
        assert_eq!(status, StatusCode::OK, "{encoding}: {}", String::from_utf8_lossy(&answer));
        let (_, trace) = server.get_json(&format!("/api/traces/{}", hex::encode(trace_id))).await;
        assert_eq!(trace["spans"].as_array().unwrap().len(), spans, "{encoding}");
    }
}

#[tokio::test]
async fn gzip_json_with_snake_case_keys_is_read() {
    let server = TestServer::new();
    let body = br#"{"resource_spans":[{"resource":{"attributes":[{"key":"service.name","value":{"string_value":"py"}}]},
      "scope_spans":[{"spans":[{"trace_id":"0af7651916cd43dd8448eb211c80319c","span_id":"b7ad6b7169203331","name":"snake",
      "start_time_unix_nano":"1700000000000000000","end_time_unix_nano":"1700000000000000001"}]}]}]}"#;
    let request = Request::post("/v1/traces")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(gzip(body)))
        .unwrap();
    let (status, answer) = server.send(request).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer));
    let (_, trace) = server.get_json("/api/traces/0af7651916cd43dd8448eb211c80319c").await;
    assert_eq!(trace["spans"][0]["name"], "snake");
    assert_eq!(trace["spans"][0]["service"], "py");
}

#[tokio::test]
async fn a_session_links_spans_by_prefix_and_attribute_even_after_it_stopped() {
    let server = TestServer::new();
    let session = server.start_session().await;
    let id = session["id"].as_str().unwrap();
    let traceparent = session["traceparent"].as_str().unwrap();
    assert!(traceparent.starts_with(&format!("00-{}", session["trace_id_prefix"].as_str().unwrap())));
    assert!(traceparent.ends_with("-01"));
    assert_eq!(session["tracestate"], "sessiontrace=hb", "capture on by default, carried to every service");
    let session_trace = hex::decode(&traceparent[3..35]).unwrap();
    let (status, _) = server.post(&format!("/api/sessions/{id}/stop"), "application/json", vec![]).await;
    assert_eq!(status, StatusCode::OK);

    // Spans that arrive after the stop are still the session's.
    server.post("/v1/traces", "application/x-protobuf", traces(&session_trace, 4).encode_to_vec()).await;
    let mut tagged = traces(&[3; 16], 2);
    tagged.resource_spans[0].scope_spans[0].spans[0].attributes.push(kv("multiplayer.session.id", id));
    server.post("/v1/traces", "application/x-protobuf", tagged.encode_to_vec()).await;
    server.post("/v1/traces", "application/x-protobuf", traces(&[4; 16], 2).encode_to_vec()).await;

    let short_id = session["short_id"].as_str().unwrap();
    let (status, shown) = server.get_json(&format!("/api/sessions/{short_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["counts"]["traces"], 2);
    assert_eq!(shown["counts"]["spans"], 6);
    assert_eq!(shown["live"], false);
    let (_, listed) = server.get_json(&format!("/api/sessions/{id}/traces")).await;
    let mut trace_ids: Vec<&str> =
        listed["traces"].as_array().unwrap().iter().map(|t| t["trace_id"].as_str().unwrap()).collect();
    trace_ids.sort();
    let mut expected = vec![hex::encode(&session_trace), hex::encode([3u8; 16])];
    expected.sort();
    assert_eq!(trace_ids, expected);
    let (_, timeline) = server.get_json(&format!("/api/sessions/{id}/timeline")).await;
    assert_eq!(timeline["items"].as_array().unwrap().iter().filter(|i| i["kind"] == "trace").count(), 2);
    let (status, _) = server.get_json("/api/sessions/ffffffff").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn replay_chunks_are_stored_once_and_returned_in_order() {
    let server = TestServer::with(|config| config.max_events_per_chunk = 3);
    let session = server.start_session().await;
    let id = session["id"].as_str().unwrap();
    let path = format!("/api/sessions/{id}/events");
    let chunk = |seq: u64, first: u64| json!({"seq": seq, "events": [{"type": 3, "timestamp": first, "data": {}}, {"type": 3, "timestamp": first + 1, "data": {}}]});
    for (seq, first, expect_stored) in [(1, 20, true), (0, 10, true), (1, 99, false)] {
        let (status, body) = server.post(&path, "text/plain", chunk(seq, first).to_string().into_bytes()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["stored"], expect_stored);
    }
    let gzipped = Request::post(&path)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(gzip(chunk(2, 30).to_string().as_bytes())))
        .unwrap();
    assert_eq!(server.send(gzipped).await.0, StatusCode::OK);
    let (_, events) = server.get_json(&path).await;
    let times: Vec<u64> =
        events["events"].as_array().unwrap().iter().map(|e| e["timestamp"].as_u64().unwrap()).collect();
    assert_eq!(times, vec![10, 11, 20, 21, 30, 31]);

    let too_many = json!({"seq": 5, "events": [{"type":3,"timestamp":1},{"type":3,"timestamp":2},{"type":3,"timestamp":3},{"type":3,"timestamp":4}]});
    let (status, body) = server.post(&path, "application/json", too_many.to_string().into_bytes()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{}", String::from_utf8_lossy(&body));
    let (status, body) = server.post(&path, "application/json", br#"{"events":[]}"#.to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("seq"));
    let (status, body) =
        server.post(&path, "application/json", br#"{"seq":9,"events":[{"no":"type"}]}"#.to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("not an rrweb event"));
    let (status, _) =
        server.post("/api/sessions/nope/events", "application/json", chunk(0, 1).to_string().into_bytes()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn session_requests_are_validated() {
    let server = TestServer::new();
    let (status, body) = server.post("/api/sessions", "application/json", br#"{"kind":"weekly"}"#.to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("kind must be"));
    let (status, body) = server.post("/api/sessions", "application/json", br#"{"nmae":"typo"}"#.to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("unknown field"));
    let (status, session) =
        server.post("/api/sessions", "application/json", br#"{"kind":"continuous"}"#.to_vec()).await;
    assert_eq!(status, StatusCode::CREATED);
    let session: Value = serde_json::from_slice(&session).unwrap();
    assert!(session["trace_id_prefix"].as_str().unwrap().starts_with("cdbcdb"));
    let (status, _) = server.get_json("/api/sessions?has_error=maybe").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = server.get_json("/api/traces/xyz").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn cors_preflight_allows_loopback_pages_and_traceparent() {
    let server = TestServer::new();
    let preflight = |origin: &str| {
        Request::builder()
            .method("OPTIONS")
            .uri("/v1/traces")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type,traceparent")
            .body(Body::empty())
            .unwrap()
    };
    let response = server.router.clone().oneshot(preflight("http://127.0.0.1:5173")).await.unwrap();
    assert_eq!(response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "http://127.0.0.1:5173");
    let allowed = response.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap().to_string();
    assert!(allowed.contains("traceparent"), "{allowed}");
    let response = server.router.clone().oneshot(preflight("https://evil.example")).await.unwrap();
    assert!(response.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
}

/// The retention task asks the store to delete what is older than `retention_days` 10 s after start and
/// hourly (the clock is paused and advanced by tokio here): a log stamped 40 days ago goes, one stamped now
/// stays.
#[tokio::test(start_paused = true)]
async fn retention_deletes_old_data_after_start() {
    let server = TestServer::with(|config| config.retention_days = 30);
    let now_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let forty_days_ns = 40 * 86_400 * 1_000_000_000u64;
    let logs = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"timeUnixNano": (now_ns - forty_days_ns).to_string(), "body": {"stringValue": "old"}},
        {"timeUnixNano": now_ns.to_string(), "body": {"stringValue": "new"}}
    ]}]}]});
    let (status, _) = server.post("/v1/logs", "application/json", logs.to_string().into_bytes()).await;
    assert_eq!(status, StatusCode::OK, "both logs are stored before the answer");
    // (No count here: with the clock paused, tokio may already have advanced to the first pass while the
    // write was committing. Past the second pass too, so the write was surely before one of them.)
    tokio::time::sleep(std::time::Duration::from_secs(3_700)).await;
    let mut deleted = String::new();
    for _ in 0..100 {
        let (_, metrics) = server.send(Request::get("/metrics").body(Body::empty()).unwrap()).await;
        let text = String::from_utf8(metrics).unwrap();
        deleted = text
            .lines()
            .find(|l| l.starts_with("sessiontrace_retention_deleted_total{kind=\"logs\"}"))
            .unwrap_or("")
            .into();
        if deleted.ends_with(" 1") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        tokio::task::yield_now().await;
    }
    assert_eq!(deleted, "sessiontrace_retention_deleted_total{kind=\"logs\"} 1");
    let (_, stats) = server.get_json("/api/stats").await;
    assert_eq!(stats["logs"], 1);
    let (_, logs) = server.get_json("/api/logs?limit=10").await;
    assert_eq!(logs["logs"][0]["body"], "new");
}
