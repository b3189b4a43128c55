//! OTLP/gRPC against the real tonic server on a loopback port: a good export (gzip, zstd) is stored; bad
//! protobuf, a request whose every span has a bad id, and an oversized request get INVALID_ARGUMENT or
//! RESOURCE_EXHAUSTED with what was wrong; one bad span among good ones is a partial success; an unknown
//! method is UNIMPLEMENTED; and after all of it the server still serves with nothing lost.

use axum::body::Body;
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use sessiontrace_pipeline::codec::PassThrough;
use sessiontrace_server::config::ServerConfig;
use sessiontrace_server::state::AppState;
use tonic::Code;
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;
use tower::ServiceExt;

const TRACES: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const LOGS: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

fn span(trace_id: &[u8], span_id: u8) -> Span {
    Span {
        trace_id: trace_id.to_vec(),
        span_id: vec![span_id; 8],
        name: "GET /items".into(),
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_001_000_000,
        ..Default::default()
    }
}

fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

/// Starts the OTLP/gRPC server on a free loopback port; returns the state and a channel to it.
async fn start(max_body_bytes: usize) -> (AppState, Channel, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig { data_dir: dir.path().to_path_buf(), max_body_bytes, ..Default::default() };
    let state = sessiontrace_server::build_state(config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let routes = sessiontrace_server::endpoints::otlp_grpc::router(state.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let channel = Channel::from_shared(format!("http://{address}")).unwrap().connect().await.unwrap();
    (state, channel, dir)
}

/// Sends `bytes` as they are to a gRPC method.
async fn send_raw(channel: &Channel, path: &'static str, bytes: Vec<u8>) -> Result<Vec<u8>, tonic::Status> {
    let mut client = tonic::client::Grpc::new(channel.clone());
    client.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static(path);
    client.unary(tonic::Request::new(bytes), path, PassThrough).await.map(|r| r.into_inner())
}

/// Span count of a stored trace, read through the query API.
async fn stored_spans(state: &AppState, trace_id: &[u8]) -> usize {
    let request = http::Request::get(format!("/api/traces/{}", hex::encode(trace_id))).body(Body::empty()).unwrap();
    let response = sessiontrace_server::api_router(state.clone()).oneshot(request).await.unwrap();
    if response.status() == http::StatusCode::NOT_FOUND {
        return 0;
    }
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let trace: serde_json::Value = serde_json::from_slice(&body).unwrap();
    trace["spans"].as_array().unwrap().len()
}

#[tokio::test]
async fn grpc_bad_input_gets_a_clear_status_and_loses_nothing() {
    let (state, channel, _dir) = start(64 * 1024).await;
    let good = [7u8; 16];
    let mut client = TraceServiceClient::new(channel.clone()).send_compressed(CompressionEncoding::Gzip);
    let answer = client.export(request(vec![span(&good, 1), span(&good, 2)])).await.unwrap().into_inner();
    assert_eq!(answer.partial_success, None);
    assert_eq!(stored_spans(&state, &good).await, 2);

    let error = send_raw(&channel, TRACES, vec![0x0a, 0xff, 0xff]).await.unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument, "{error:?}");
    assert!(error.message().contains("not a valid OTLP trace protobuf"), "{}", error.message());

    let error = send_raw(&channel, LOGS, vec![0x0a, 0xff, 0xff]).await.unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument, "{error:?}");

    let error = client.export(request(vec![span(&[0u8; 16], 1)])).await.unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument, "{error:?}");
    assert!(error.message().contains("every span was rejected"), "{}", error.message());

    let partial = [8u8; 16];
    let answer = client.export(request(vec![span(&partial, 1), span(&[1, 2, 3], 2)])).await.unwrap().into_inner();
    let partial_success = answer.partial_success.expect("one span was refused");
    assert_eq!(partial_success.rejected_spans, 1);
    assert!(partial_success.error_message.contains("trace_id"), "{}", partial_success.error_message);
    assert_eq!(stored_spans(&state, &partial).await, 1);

    let mut big = span(&[9u8; 16], 1);
    big.name = "x".repeat(100 * 1024);
    let error = client.export(request(vec![big])).await.unwrap_err();
    assert_eq!(error.code(), Code::ResourceExhausted, "{error:?}");
    assert!(error.message().contains("larger than the limit of 65536 bytes"), "{}", error.message());

    let error =
        send_raw(&channel, "/opentelemetry.proto.collector.trace.v1.TraceService/Nope", Vec::new()).await.unwrap_err();
    assert_eq!(error.code(), Code::Unimplemented, "{error:?}");

    // zstd, which the OpenTelemetry Collector's gRPC exporter can send.
    let zstd = [11u8; 16];
    let mut zstd_client = TraceServiceClient::new(channel.clone()).send_compressed(CompressionEncoding::Zstd);
    zstd_client.export(request(vec![span(&zstd, 1), span(&zstd, 2)])).await.unwrap();
    assert_eq!(stored_spans(&state, &zstd).await, 2);

    // Still serving, and what was accepted before is all there.
    let after = [10u8; 16];
    let answer = send_raw(&channel, TRACES, request(vec![span(&after, 1)]).encode_to_vec()).await.unwrap();
    assert!(answer.is_empty(), "an export without partial success answers an empty message");
    assert_eq!(stored_spans(&state, &after).await, 1);
    assert_eq!(stored_spans(&state, &good).await, 2);
}
