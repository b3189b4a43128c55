//! What every endpoint shares: the store, the ingest settings, the counters and the config.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sessiontrace_ingest::IngestConfig;
use sessiontrace_store::Store;

use crate::config::ServerConfig;

/// Shared state of all endpoints.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub ingest: Arc<IngestConfig>,
    pub counters: Arc<Counters>,
    pub config: Arc<ServerConfig>,
}

/// Counters published on `/metrics` in the Prometheus text format.
#[derive(Default)]
pub struct Counters {
    pub spans_received: AtomicU64,
    pub spans_rejected: AtomicU64,
    pub spans_stored: AtomicU64,
    pub spans_kept_session: AtomicU64,
    pub spans_kept_error: AtomicU64,
    pub spans_kept_policy: AtomicU64,
    pub spans_dropped: AtomicU64,
    pub logs_received: AtomicU64,
    pub logs_rejected: AtomicU64,
    pub logs_stored: AtomicU64,
    pub logs_dropped: AtomicU64,
    pub metric_points_stored: AtomicU64,
    pub replay_chunks_stored: AtomicU64,
    pub replay_chunks_duplicate: AtomicU64,
    pub requests_invalid: AtomicU64,
    pub store_failures: AtomicU64,
    pub sessions_started: AtomicU64,
}

impl Counters {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let rows: [(&str, &str, &AtomicU64); 17] = [
            ("sessiontrace_spans_received_total", "Spans received in valid requests", &self.spans_received),
            ("sessiontrace_spans_rejected_total", "Spans refused for bad ids", &self.spans_rejected),
            ("sessiontrace_spans_stored_total", "Spans durably stored", &self.spans_stored),
            (
                "sessiontrace_spans_kept_session_total",
                "Spans kept because their trace belongs to a session",
                &self.spans_kept_session,
            ),
            (
                "sessiontrace_spans_kept_error_total",
                "Spans kept because their trace has an error",
                &self.spans_kept_error,
            ),
            ("sessiontrace_spans_kept_policy_total", "Spans kept by the sampling policy", &self.spans_kept_policy),
            ("sessiontrace_spans_dropped_total", "Spans dropped by the sampling policy", &self.spans_dropped),
            ("sessiontrace_logs_received_total", "Log records received", &self.logs_received),
            ("sessiontrace_logs_rejected_total", "Log records refused for bad ids", &self.logs_rejected),
            ("sessiontrace_logs_stored_total", "Log records durably stored", &self.logs_stored),
            ("sessiontrace_logs_dropped_total", "Log records dropped with their trace", &self.logs_dropped),
            ("sessiontrace_metric_points_stored_total", "Metric points durably stored", &self.metric_points_stored),
            ("sessiontrace_replay_chunks_stored_total", "Replay chunks stored", &self.replay_chunks_stored),
            (
                "sessiontrace_replay_chunks_duplicate_total",
                "Replay chunks received again and ignored",
                &self.replay_chunks_duplicate,
            ),
            ("sessiontrace_requests_invalid_total", "Requests refused as invalid", &self.requests_invalid),
            ("sessiontrace_store_failures_total", "Writes the store failed", &self.store_failures),
            ("sessiontrace_sessions_started_total", "Sessions started", &self.sessions_started),
        ];
        let mut text = String::new();
        for (name, help, counter) in rows {
            text.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                counter.load(Ordering::Relaxed)
            ));
        }
        text
    }
}
