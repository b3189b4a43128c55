//! Replay chunk bodies (`POST /api/sessions/{id}/events`, decompressed) through `ingest::replay::parse_chunk`,
//! then what the pipeline derives from stored events (`ingest::signals::derive`: rage/dead/error clicks,
//! the session's facts): never a panic; an accepted chunk keeps its events, counted, timestamps in order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiontrace_ingest::replay::parse_chunk;
use sessiontrace_ingest::signals::{MAX_FACTS, derive};

fuzz_target!(|data: &[u8]| {
    let Ok(chunk) = parse_chunk(data, "5e55105e55105e55105e55105e55105e", 20_000) else { return };
    let events: Vec<serde_json::Value> = serde_json::from_slice(&chunk.events_json).expect("stored events are JSON");
    assert_eq!(events.len(), chunk.event_count as usize);
    assert!(chunk.first_timestamp_ms <= chunk.last_timestamp_ms);
    let insights = derive(&events);
    assert!(insights.clicked.len() <= MAX_FACTS && insights.failed_requests.len() <= MAX_FACTS);
});
