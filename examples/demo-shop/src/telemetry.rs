//! Telemetry setup of a demo service: `sessiontrace_sdk::init` (spans and logs over OTLP, from the
//! `OTEL_*` variables), and a `tracing` subscriber printing to stderr and exporting logs.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

/// Sets up tracing for `service_name`; keep the guard until the service stops.
pub fn install(service_name: &str) -> sessiontrace_sdk::Guard {
    let guard = sessiontrace_sdk::init(service_name);
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
