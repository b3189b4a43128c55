//! Sessions as the API shows them: stored fields, the trace-id prefix, a fresh `traceparent` and counts.

use serde_json::{Value, json};
use sessiontrace_model::Session;
use sessiontrace_store::SessionStats;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Unix milliseconds as an RFC 3339 UTC timestamp.
pub fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// The API's session object.
pub fn session_json(session: &Session, stats: Option<&SessionStats>) -> Value {
    let default_stats = SessionStats::default();
    let stats = stats.unwrap_or(&default_stats);
    json!({
        "id": session.id,
        "short_id": session.short_id.to_hex(),
        "kind": session.kind.as_str(),
        "name": session.name,
        "user": session.user,
        "attributes": session.attributes,
        "tags": session.tags,
        "capture": session.capture,
        "trace_id_prefix": session.trace_id_prefix(),
        "traceparent": session.new_traceparent(),
        "tracestate": session.capture_tracestate(),
        "started_at": rfc3339(session.started_at_ms),
        "started_at_ms": session.started_at_ms,
        "stopped_at": session.stopped_at_ms.map(rfc3339),
        "stopped_at_ms": session.stopped_at_ms,
        "saved_at_ms": session.saved_at_ms,
        "live": session.stopped_at_ms.is_none(),
        "counts": {
            "traces": stats.traces,
            "spans": stats.spans,
            "logs": stats.logs,
            "events": stats.events,
            "errors": stats.errors,
        },
        "services": stats.services,
        // Frustration signals per kind; null from a store that keeps none.
        "signals": stats.signals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times() {
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
