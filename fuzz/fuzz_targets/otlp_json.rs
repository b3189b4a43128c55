//! OTLP JSON trace requests through `prepare`: never a panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiontrace_ingest::IngestConfig;
use sessiontrace_ingest::traces::{TraceInput, prepare};

fuzz_target!(|data: &[u8]| {
    let _ = prepare(TraceInput::Json(data.to_vec()), &IngestConfig::default());
});
