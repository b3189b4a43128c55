//! A replay chunk's body (`{"seq": N, "events": [...]}`, already decompressed) → a
//! [`ReplayChunk`] the pipeline stores: the body must be JSON, `seq` a whole number, `events` an array of at
//! most the configured number of rrweb events, each with a numeric `type` and `timestamp`. The events are
//! kept as received; [`signals`](crate::signals) reads them after the store has the chunk.

use serde_json::Value;
use sessiontrace_model::records::ReplayChunk;

/// Why a replay chunk body was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChunkError {
    /// Not a chunk: HTTP 400.
    #[error("{0}")]
    Invalid(String),
    /// More events than the limit: HTTP 413.
    #[error("{count} events in one chunk; the limit is {limit}")]
    TooManyEvents { count: usize, limit: usize },
}

/// Reads one chunk body of session `session_id`, with at most `max_events` events.
pub fn parse_chunk(body: &[u8], session_id: &str, max_events: usize) -> Result<ReplayChunk, ChunkError> {
    let mut chunk: Value = serde_json::from_slice(body)
        .map_err(|error| ChunkError::Invalid(format!("events body is not valid JSON: {error}")))?;
    let seq = chunk
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or_else(|| ChunkError::Invalid("events body needs \"seq\", a whole number from 0".into()))?;
    let Some(Value::Array(events)) = chunk.get_mut("events").map(Value::take) else {
        return Err(ChunkError::Invalid("events body needs \"events\", an array of rrweb events".into()));
    };
    if events.len() > max_events {
        return Err(ChunkError::TooManyEvents { count: events.len(), limit: max_events });
    }
    let mut first_timestamp_ms = i64::MAX;
    let mut last_timestamp_ms = i64::MIN;
    for (index, event) in events.iter().enumerate() {
        let has_type = event.get("type").is_some_and(Value::is_u64);
        let timestamp = event.get("timestamp").and_then(Value::as_f64);
        let (true, Some(ms)) = (has_type, timestamp) else {
            return Err(ChunkError::Invalid(format!(
                "event {index} is not an rrweb event: it needs a numeric \"type\" and \"timestamp\""
            )));
        };
        // `as` saturates: a timestamp beyond i64's range is clamped, never a panic.
        first_timestamp_ms = first_timestamp_ms.min(ms as i64);
        last_timestamp_ms = last_timestamp_ms.max(ms as i64);
    }
    if events.is_empty() {
        (first_timestamp_ms, last_timestamp_ms) = (0, 0);
    }
    let events_json = serde_json::to_vec(&events)
        .map_err(|error| ChunkError::Invalid(format!("events cannot be written back as JSON: {error}")))?;
    Ok(ReplayChunk {
        session_id: session_id.to_string(),
        seq,
        event_count: u32::try_from(events.len()).unwrap_or(u32::MAX),
        first_timestamp_ms,
        last_timestamp_ms,
        events_json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &str) -> Result<(u64, u32, i64, i64), ChunkError> {
        parse_chunk(body.as_bytes(), "s", 3)
            .map(|chunk| (chunk.seq, chunk.event_count, chunk.first_timestamp_ms, chunk.last_timestamp_ms))
    }

    #[test]
    fn reads_chunks_and_refuses_what_is_not_one() {
        assert_eq!(
            check(r#"{"seq":2,"events":[{"type":3,"timestamp":20},{"type":2,"timestamp":10.5}]}"#),
            Ok((2, 2, 10, 20))
        );
        assert_eq!(check(r#"{"seq":0,"events":[]}"#), Ok((0, 0, 0, 0)));
        assert!(matches!(check("nope"), Err(ChunkError::Invalid(_))));
        assert!(matches!(check(r#"{"seq":-1,"events":[]}"#), Err(ChunkError::Invalid(_))));
        assert!(matches!(check(r#"{"seq":1,"events":{}}"#), Err(ChunkError::Invalid(_))));
        assert!(matches!(check(r#"{"seq":1,"events":[{"type":"x","timestamp":1}]}"#), Err(ChunkError::Invalid(_))));
        assert_eq!(
            check(
                r#"{"seq":1,"events":[{"type":1,"timestamp":1},{"type":1,"timestamp":1},{"type":1,"timestamp":1},{"type":1,"timestamp":1}]}"#
            ),
            Err(ChunkError::TooManyEvents { count: 4, limit: 3 })
        );
    }

    #[test]
    fn timestamps_out_of_range_saturate() {
        assert_eq!(
            check(r#"{"seq":1,"events":[{"type":1,"timestamp":1e300},{"type":1,"timestamp":-1e300}]}"#),
            Ok((1, 2, i64::MIN, i64::MAX))
        );
    }
}
