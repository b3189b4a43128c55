//! The read side of the API. It asks a [`Store`](sessiontrace_store::Store) for index rows and stored
//! blocks, decodes the blocks fully (the write path never did), and shapes the JSON that docs/api.md
//! documents: sessions with counts, traces with every span, logs, metric points, and one time-ordered
//! timeline that merges the browser's replay events with the backend's traces and logs. For Grafana and
//! Jaeger: a TraceQL subset ([`traceql`]), trace search over the index and decoded spans ([`search`]), and
//! the Tempo ([`tempo`]) and Jaeger ([`jaeger`]) answer shapes; the UI's trace search filters
//! ([`trace_search`]); a session's completeness and service map ([`analysis`]).

pub mod analysis;
pub mod jaeger;
pub mod search;
pub mod sessions;
pub mod signals;
pub mod spans;
pub mod tempo;
pub mod timeline;
pub mod trace_search;
pub mod traceql;

/// Unix nanoseconds as fractional Unix milliseconds.
pub fn nanos_to_ms(nanos: i64) -> f64 {
    nanos as f64 / 1_000_000.0
}
