//! `traceparent` / `tracestate` parsing (sessiontrace-sdk's W3C propagator): never a panic; what parses
//! is written back in a form that parses to the same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiontrace_sdk::propagation::w3c;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (traceparent, tracestate) = text.split_once('\n').unwrap_or((text, ""));
    let lines: Vec<&str> = tracestate.split('\n').collect();
    if let Some(received) = w3c::extract(&[traceparent], &lines) {
        let header = w3c::format_traceparent(&received.span_context);
        assert_eq!(header.len(), 55);
        let again = w3c::parse_traceparent(&header).expect("a written traceparent parses");
        assert_eq!(again.0, received.span_context.trace_id());
        assert_eq!(again.1, received.span_context.span_id());
        assert_eq!(again.2, received.span_context.trace_flags());
    }
    if let Some(list) = w3c::parse_tracestate(&lines) {
        let header = list.header();
        let again = w3c::parse_tracestate(&[&header]).expect("a written tracestate parses");
        assert_eq!(again, list);
        assert!(list.members().count() <= w3c::MAX_TRACESTATE_MEMBERS);
    }
});
