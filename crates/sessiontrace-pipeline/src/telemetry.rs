//! The pipeline's telemetry: counters (and a few gauges) of every stage, published on `/metrics` in the
//! Prometheus text format. The pipeline owns one [`Counters`] and hands it to each stage when it builds
//! them; the server reads it for `/metrics` and adds what only it sees (sessions started, retention).

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters (and a few gauges) published on `/metrics` in the Prometheus text format.
#[derive(Default)]
pub struct Counters {
    pub spans_received: AtomicU64,
    pub spans_rejected: AtomicU64,
    pub spans_stored: AtomicU64,
    pub spans_kept_session: AtomicU64,
    pub spans_kept_error: AtomicU64,
    pub spans_kept_slow: AtomicU64,
    pub spans_kept_policy: AtomicU64,
    /// Dropped by the probability rule (at once, or when their `decision_wait` ran out).
    pub spans_dropped: AtomicU64,
    /// Dropped because the tail buffer was full and the oldest pending traces were decided early.
    pub spans_dropped_early: AtomicU64,
    pub logs_received: AtomicU64,
    pub logs_rejected: AtomicU64,
    pub logs_stored: AtomicU64,
    pub logs_kept_session: AtomicU64,
    pub logs_kept_trace: AtomicU64,
    pub logs_kept_untraced: AtomicU64,
    pub logs_dropped: AtomicU64,
    pub logs_dropped_early: AtomicU64,
    pub metric_points_stored: AtomicU64,
    pub replay_chunks_stored: AtomicU64,
    pub replay_chunks_duplicate: AtomicU64,
    pub requests_invalid: AtomicU64,
    pub store_failures: AtomicU64,
    pub sessions_started: AtomicU64,
    /// Gauges of the tail buffer.
    pub pending_traces: AtomicU64,
    pub pending_spans: AtomicU64,
    pub pending_logs: AtomicU64,
    pub pending_bytes: AtomicU64,
    /// Traces decided before their `decision_wait` because the buffer was full.
    pub traces_decided_early: AtomicU64,
    /// Continuous sessions: what their windows hold, saved and let go.
    pub continuous_spans_held: AtomicU64,
    pub continuous_spans_saved: AtomicU64,
    pub continuous_spans_expired: AtomicU64,
    pub continuous_logs_held: AtomicU64,
    pub continuous_logs_saved: AtomicU64,
    pub continuous_logs_expired: AtomicU64,
    pub continuous_replay_held: AtomicU64,
    pub continuous_replay_saved: AtomicU64,
    pub continuous_replay_expired: AtomicU64,
    pub continuous_saves: AtomicU64,
    pub continuous_window_bytes: AtomicU64,
    /// Retention: what passes deleted for being older than `retention_days`.
    pub retention_spans_deleted: AtomicU64,
    pub retention_logs_deleted: AtomicU64,
    pub retention_metric_points_deleted: AtomicU64,
    pub retention_sessions_deleted: AtomicU64,
}

/// One exposition row: metric name, labels (`key="value"` pairs, possibly empty), help, kind, value.
type Row<'a> = (&'a str, String, &'a str, &'a str, u64);

/// A row kept elsewhere: name, labels, help, kind, value.
pub type ExpositionRow = (&'static str, String, &'static str, &'static str, u64);

impl Counters {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets a gauge.
    pub fn set(gauge: &AtomicU64, n: u64) {
        gauge.store(n, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every counter, then `extra` rows (the forwarder's, which it
    /// keeps per upstream).
    pub fn render(&self, extra: Vec<ExpositionRow>) -> String {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let label = |key: &str, value: &str| format!("{key}=\"{value}\"");
        let counter = "counter";
        let gauge = "gauge";
        let spans_kept = "Spans kept, by the reason they were kept";
        let spans_dropped = "Spans dropped, by reason (probability; early = tail buffer full)";
        let logs_kept = "Log records kept, by reason (session, trace kept, no trace)";
        let logs_dropped = "Log records dropped with their trace, by reason";
        let continuous_held = "Continuous-session items put in the rolling window, by signal";
        let continuous_saved = "Continuous-session items persisted by a save, by signal";
        let continuous_expired = "Continuous-session items that left the window unsaved, by signal";
        let retention = "sessiontrace_retention_deleted_total";
        let retention_help = "Items deleted for being older than retention_days (embedded store), by kind";
        let mut rows: Vec<Row<'_>> = vec![
            (
                "sessiontrace_spans_received_total",
                String::new(),
                "Spans received in valid requests",
                counter,
                get(&self.spans_received),
            ),
            (
                "sessiontrace_spans_rejected_total",
                String::new(),
                "Spans refused for bad ids",
                counter,
                get(&self.spans_rejected),
            ),
            (
                "sessiontrace_spans_stored_total",
                String::new(),
                "Spans durably stored",
                counter,
                get(&self.spans_stored),
            ),
            (
                "sessiontrace_spans_kept_total",
                label("reason", "session"),
                spans_kept,
                counter,
                get(&self.spans_kept_session),
            ),
            (
                "sessiontrace_spans_kept_total",
                label("reason", "error"),
                spans_kept,
                counter,
                get(&self.spans_kept_error),
            ),
            ("sessiontrace_spans_kept_total", label("reason", "slow"), spans_kept, counter, get(&self.spans_kept_slow)),
            (
                "sessiontrace_spans_kept_total",
                label("reason", "probability"),
                spans_kept,
                counter,
                get(&self.spans_kept_policy),
            ),
            (
                "sessiontrace_spans_dropped_total",
                label("reason", "probability"),
                spans_dropped,
                counter,
                get(&self.spans_dropped),
            ),
            (
                "sessiontrace_spans_dropped_total",
                label("reason", "early"),
                spans_dropped,
                counter,
                get(&self.spans_dropped_early),
            ),
            (
                "sessiontrace_logs_received_total",
                String::new(),
                "Log records received",
                counter,
                get(&self.logs_received),
            ),
            (
                "sessiontrace_logs_rejected_total",
                String::new(),
                "Log records refused for bad ids",
                counter,
                get(&self.logs_rejected),
            ),
            (
                "sessiontrace_logs_stored_total",
                String::new(),
                "Log records durably stored",
                counter,
                get(&self.logs_stored),
            ),
            (
                "sessiontrace_logs_kept_total",
                label("reason", "session"),
                logs_kept,
                counter,
                get(&self.logs_kept_session),
            ),
            ("sessiontrace_logs_kept_total", label("reason", "trace"), logs_kept, counter, get(&self.logs_kept_trace)),
            (
                "sessiontrace_logs_kept_total",
                label("reason", "untraced"),
                logs_kept,
                counter,
                get(&self.logs_kept_untraced),
            ),
            (
                "sessiontrace_logs_dropped_total",
                label("reason", "probability"),
                logs_dropped,
                counter,
                get(&self.logs_dropped),
            ),
            (
                "sessiontrace_logs_dropped_total",
                label("reason", "early"),
                logs_dropped,
                counter,
                get(&self.logs_dropped_early),
            ),
            (
                "sessiontrace_metric_points_stored_total",
                String::new(),
                "Metric points durably stored",
                counter,
                get(&self.metric_points_stored),
            ),
            (
                "sessiontrace_replay_chunks_stored_total",
                String::new(),
                "Replay chunks stored",
                counter,
                get(&self.replay_chunks_stored),
            ),
            (
                "sessiontrace_replay_chunks_duplicate_total",
                String::new(),
                "Replay chunks received again and ignored",
                counter,
                get(&self.replay_chunks_duplicate),
            ),
            (
                "sessiontrace_requests_invalid_total",
                String::new(),
                "Requests refused as invalid",
                counter,
                get(&self.requests_invalid),
            ),
            (
                "sessiontrace_store_failures_total",
                String::new(),
                "Writes the store failed",
                counter,
                get(&self.store_failures),
            ),
            (
                "sessiontrace_sessions_started_total",
                String::new(),
                "Sessions started",
                counter,
                get(&self.sessions_started),
            ),
            (
                "sessiontrace_tail_pending_traces",
                String::new(),
                "Traces held in memory for a tail decision (lost on a crash)",
                gauge,
                get(&self.pending_traces),
            ),
            (
                "sessiontrace_tail_pending_spans",
                String::new(),
                "Spans held in memory for a tail decision (lost on a crash)",
                gauge,
                get(&self.pending_spans),
            ),
            (
                "sessiontrace_tail_pending_logs",
                String::new(),
                "Log records held in memory for a tail decision",
                gauge,
                get(&self.pending_logs),
            ),
            (
                "sessiontrace_tail_pending_bytes",
                String::new(),
                "Bytes held by the tail buffer",
                gauge,
                get(&self.pending_bytes),
            ),
            (
                "sessiontrace_tail_decided_early_total",
                String::new(),
                "Traces decided before decision_wait because the buffer was full",
                counter,
                get(&self.traces_decided_early),
            ),
            (
                "sessiontrace_continuous_held_total",
                label("signal", "spans"),
                continuous_held,
                counter,
                get(&self.continuous_spans_held),
            ),
            (
                "sessiontrace_continuous_held_total",
                label("signal", "logs"),
                continuous_held,
                counter,
                get(&self.continuous_logs_held),
            ),
            (
                "sessiontrace_continuous_held_total",
                label("signal", "replay_chunks"),
                continuous_held,
                counter,
                get(&self.continuous_replay_held),
            ),
            (
                "sessiontrace_continuous_saved_total",
                label("signal", "spans"),
                continuous_saved,
                counter,
                get(&self.continuous_spans_saved),
            ),
            (
                "sessiontrace_continuous_saved_total",
                label("signal", "logs"),
                continuous_saved,
                counter,
                get(&self.continuous_logs_saved),
            ),
            (
                "sessiontrace_continuous_saved_total",
                label("signal", "replay_chunks"),
                continuous_saved,
                counter,
                get(&self.continuous_replay_saved),
            ),
            (
                "sessiontrace_continuous_expired_total",
                label("signal", "spans"),
                continuous_expired,
                counter,
                get(&self.continuous_spans_expired),
            ),
            (
                "sessiontrace_continuous_expired_total",
                label("signal", "logs"),
                continuous_expired,
                counter,
                get(&self.continuous_logs_expired),
            ),
            (
                "sessiontrace_continuous_expired_total",
                label("signal", "replay_chunks"),
                continuous_expired,
                counter,
                get(&self.continuous_replay_expired),
            ),
            (
                "sessiontrace_continuous_saves_total",
                String::new(),
                "Continuous sessions saved (API, error span or auto-save attribute)",
                counter,
                get(&self.continuous_saves),
            ),
            (
                "sessiontrace_continuous_window_bytes",
                String::new(),
                "Bytes held by continuous-session windows (lost on a crash)",
                gauge,
                get(&self.continuous_window_bytes),
            ),
            (retention, label("kind", "spans"), retention_help, counter, get(&self.retention_spans_deleted)),
            (retention, label("kind", "logs"), retention_help, counter, get(&self.retention_logs_deleted)),
            (
                retention,
                label("kind", "metric_points"),
                retention_help,
                counter,
                get(&self.retention_metric_points_deleted),
            ),
            (retention, label("kind", "sessions"), retention_help, counter, get(&self.retention_sessions_deleted)),
        ];
        for (name, labels, help, kind, value) in &extra {
            rows.push((name, labels.clone(), help, kind, *value));
        }
        let mut text = String::new();
        let mut last_name = "";
        for (name, labels, help, kind, value) in rows {
            if name != last_name {
                text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
                last_name = name;
            }
            if labels.is_empty() {
                text.push_str(&format!("{name} {value}\n"));
            } else {
                text.push_str(&format!("{name}{{{labels}}} {value}\n"));
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labelled_rows_share_one_help_line() {
        let counters = Counters::default();
        Counters::add(&counters.spans_kept_error, 3);
        let text = counters.render(Vec::new());
        assert_eq!(text.matches("# TYPE sessiontrace_spans_kept_total counter").count(), 1);
        assert!(text.contains("sessiontrace_spans_kept_total{reason=\"error\"} 3\n"), "{text}");
        assert!(text.contains("# TYPE sessiontrace_tail_pending_traces gauge"), "{text}");
    }
}
