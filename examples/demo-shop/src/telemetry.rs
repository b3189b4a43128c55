//! Telemetry setup of a demo service: `sessiontrace_sdk::init_with` (spans, logs and metrics over OTLP, from the
//! `OTEL_*` variables), and a `tracing` subscriber printing to stderr and exporting logs.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

/// Sets up tracing for `service_name`; keep the guard until the service stops.
pub fn install(service_name: &str) -> sessiontrace_sdk::Guard {
    // Metrics every 5 s (not the SDK's 60 s), so a short recorded visit has its services' request rates
    // and latencies beside it; OTEL_METRIC_EXPORT_INTERVAL still wins.
    let guard = sessiontrace_sdk::init_with(sessiontrace_sdk::Options {
        service_name: service_name.to_string(),
        metric_export_interval: Some(std::time::Duration::from_secs(5)),
        ..Default::default()
    });
    let filter = EnvFilter::try_from_env("DEMO_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_filter(filter))
        .with(guard.log_layer())
        .try_init();
    guard
}

/// The demo's tracer, for spans the services open themselves (SQLite queries).
pub fn tracer() -> opentelemetry::global::BoxedTracer {
    opentelemetry::global::tracer("demo-shop")
}
