//! OTLP JSON trace requests through `prepare`: never a panic, whatever the bytes. Both spellings of the
//! keys: a body that parses as JSON is also sent with every object key in snake_case (`resource_spans`,
//! `trace_id`, …, as proto3 JSON parsers must accept), and both must come out the same. The lowerCamelCase
//! body usually takes `decode::from_json`'s fast path (straight into the OTLP types) and the snake_case one
//! the renaming path, so this also checks the two paths agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sessiontrace_ingest::IngestConfig;
use sessiontrace_ingest::traces::{PreparedTraces, TraceInput, prepare};

/// `traceId` → `trace_id`; only ASCII capitals, so `decode`'s snake → camel renaming gives the key back.
fn camel_to_snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Every object key in snake_case, or `None` when a key already has `_` (renaming could not be undone).
fn snake_case_keys(value: &Value) -> Option<Value> {
    Some(match value {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (key, child) in map {
                if key.contains('_') {
                    return None;
                }
                out.insert(camel_to_snake(key), snake_case_keys(child)?);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(snake_case_keys).collect::<Option<_>>()?),
        other => other.clone(),
    })
}

/// What two spellings of one request must share.
fn counts(outcome: &PreparedTraces) -> [u64; 7] {
    [
        outcome.received_spans,
        outcome.rejected_spans,
        outcome.kept_session_spans,
        outcome.kept_error_spans,
        outcome.kept_slow_spans,
        outcome.kept_policy_spans,
        outcome.dropped_spans,
    ]
}

fuzz_target!(|data: &[u8]| {
    let config = IngestConfig::default();
    let camel = prepare(TraceInput::Json(data.to_vec()), &config);
    let Ok(value) = serde_json::from_slice::<Value>(data) else { return };
    let Some(snake_value) = snake_case_keys(&value) else { return };
    let snake_body = serde_json::to_vec(&snake_value).expect("a JSON value is written");
    let snake = prepare(TraceInput::Json(snake_body), &config);
    match (&camel, &snake) {
        (Ok(camel), Ok(snake)) => assert_eq!(counts(camel), counts(snake), "{snake_value}"),
        (Err(_), Err(_)) => {}
        _ => panic!(
            "camelCase {:?} but snake_case {:?}: {snake_value}",
            camel.as_ref().map(counts),
            snake.as_ref().map(counts)
        ),
    }
});
