//! The server layer's request metrics, with the OpenTelemetry HTTP semantic conventions' names:
//! `http.server.request.duration` (a histogram, seconds, until the response headers) and
//! `http.server.request.count`, each by `http.request.method`, `http.route` and
//! `http.response.status_code`. The instruments come from the global meter provider at the first request
//! (so the layer may be built before [`crate::init`]); without one they record nothing.

use std::sync::OnceLock;
use std::time::Instant;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};

/// The instruments, made once.
pub(crate) struct ServerMetrics {
    duration: Histogram<f64>,
    count: Counter<u64>,
}

fn instruments() -> &'static ServerMetrics {
    static METRICS: OnceLock<ServerMetrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let meter = opentelemetry::global::meter("sessiontrace-sdk");
        ServerMetrics {
            duration: meter
                .f64_histogram("http.server.request.duration")
                .with_unit("s")
                .with_description("Duration of HTTP server requests, until the response headers")
                .with_boundaries(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
                .build(),
            count: meter
                .u64_counter("http.server.request.count")
                .with_unit("{request}")
                .with_description("HTTP server requests")
                .build(),
        }
    })
}

/// One request being measured.
pub(crate) struct RequestTimer {
    started: Instant,
    attributes: Vec<KeyValue>,
}

impl RequestTimer {
    pub(crate) fn start(method: &http::Method, route: Option<&str>) -> Self {
        let mut attributes = vec![KeyValue::new("http.request.method", method.to_string())];
        if let Some(route) = route {
            attributes.push(KeyValue::new("http.route", route.to_string()));
        }
        RequestTimer { started: Instant::now(), attributes }
    }

    /// Records the request with its response status.
    pub(crate) fn finish(mut self, status: u16) {
        self.attributes.push(KeyValue::new("http.response.status_code", i64::from(status)));
        let metrics = instruments();
        metrics.duration.record(self.started.elapsed().as_secs_f64(), &self.attributes);
        metrics.count.add(1, &self.attributes);
    }
}
