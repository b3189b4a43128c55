//! The orders service's `POST /test` against the W3C Trace Context test harness's expectations, with the
//! harness played by this test: an axum server that records the headers of each callback it receives.
//! A participating service keeps the trace id, puts its own span id in `parent-id`, writes version 00,
//! passes `tracestate` on unchanged, and starts a new trace when the incoming `traceparent` is invalid.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::json;
use sessiontrace_sdk::{SessionIdGenerator, SessionSampler};

type Seen = Arc<Mutex<Vec<HeaderMap>>>;

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    address
}

struct Harness {
    client: reqwest::Client,
    orders: SocketAddr,
    callback: String,
    seen: Seen,
}

impl Harness {
    async fn start() -> Harness {
        let provider = SdkTracerProvider::builder()
            .with_sampler(SessionSampler::parent_based_ratio(1.0))
            .with_id_generator(SessionIdGenerator)
            .build();
        opentelemetry::global::set_tracer_provider(provider);
        let seen: Seen = Arc::default();
        let record = seen.clone();
        let callback = Router::new().route(
            "/callback",
            post(move |headers: HeaderMap| async move {
                record.lock().unwrap().push(headers);
                "ok"
            }),
        );
        let callback = format!("http://{}/callback", serve(callback).await);
        let topology = demo_shop::Topology {
            gateway: "127.0.0.1:1".parse().unwrap(),
            orders: "127.0.0.1:1".parse().unwrap(),
            inventory: "127.0.0.1:1".parse().unwrap(),
            payment: "127.0.0.1:1".parse().unwrap(),
            sessiontrace_api: "http://127.0.0.1:1".into(),
            payment_failure_rate: 0.0,
        };
        let orders = serve(demo_shop::orders::router(&topology)).await;
        Harness { client: reqwest::Client::new(), orders, callback, seen }
    }

    /// Sends `/test` with the headers and returns the (traceparent, tracestate) of the callback.
    async fn call(&self, headers: &[(&str, &str)]) -> (String, Option<String>) {
        self.seen.lock().unwrap().clear();
        let mut request = self
            .client
            .post(format!("http://{}/test", self.orders))
            .json(&json!([{"url": self.callback, "arguments": []}]));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        assert!(response.status().is_success());
        let seen = self.seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let header = |name: &str| seen[0].get(name).map(|v| v.to_str().unwrap().to_string());
        (header("traceparent").expect("the callback carries a traceparent"), header("tracestate"))
    }
}

const TRACE: &str = "12345678901234567890123456789012";
const PARENT: &str = "1234567890123456";

fn parts(traceparent: &str) -> Vec<String> {
    traceparent.split('-').map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_expectations() {
    let harness = Harness::start().await;

    // Valid: trace id kept, parent id replaced, tracestate passed on unchanged.
    let (traceparent, tracestate) =
        harness.call(&[("traceparent", &format!("00-{TRACE}-{PARENT}-01")), ("tracestate", "foo=1,bar=2")]).await;
    let fields = parts(&traceparent);
    assert_eq!((fields[0].as_str(), fields[1].as_str(), fields[3].as_str()), ("00", TRACE, "01"));
    assert_ne!(fields[2], PARENT);
    assert_eq!(tracestate.as_deref(), Some("foo=1,bar=2"));

    // A future version with more fields is understood and answered in version 00.
    let (traceparent, _) = harness.call(&[("traceparent", &format!("cc-{TRACE}-{PARENT}-01-future-stuff"))]).await;
    assert_eq!(&parts(&traceparent)[..2], ["00", TRACE]);

    // Invalid headers start a new trace and drop the tracestate.
    let invalid = [
        format!("00-{}-{PARENT}-01", TRACE.to_uppercase().replace('1', "A")),
        format!("00-00000000000000000000000000000000-{PARENT}-01"),
        format!("00-{TRACE}-0000000000000000-01"),
        format!("ff-{TRACE}-{PARENT}-01"),
        format!("00-{TRACE}-{PARENT}-01-extra"),
        format!("00-{TRACE}-{PARENT}"),
    ];
    for header in &invalid {
        let (traceparent, tracestate) = harness.call(&[("traceparent", header), ("tracestate", "foo=1")]).await;
        assert_ne!(parts(&traceparent)[1], TRACE, "{header} was accepted");
        assert_eq!(parts(&traceparent).len(), 4);
        assert_eq!(tracestate, None, "{header}: tracestate kept without a valid traceparent");
    }

    // 32 tracestate members pass, 33 are dropped; the traceparent holds either way.
    let members: Vec<String> = (0..33).map(|i| format!("k{i}=v{i}")).collect();
    let thirty_two = members[..32].join(",");
    let valid = format!("00-{TRACE}-{PARENT}-01");
    let (_, tracestate) = harness.call(&[("traceparent", &valid), ("tracestate", &thirty_two)]).await;
    assert_eq!(tracestate.as_deref(), Some(thirty_two.as_str()));
    let (traceparent, tracestate) = harness.call(&[("traceparent", &valid), ("tracestate", &members.join(","))]).await;
    assert_eq!(parts(&traceparent)[1], TRACE);
    assert_eq!(tracestate, None);

    // A session trace stays a session trace through the harness endpoint.
    let session = "debdeb0badcafe000000000000000001";
    let (traceparent, _) = harness.call(&[("traceparent", &format!("00-{session}-{PARENT}-01"))]).await;
    assert_eq!(parts(&traceparent)[1], session);
}
