//! Incoming trace-context headers (sessiontrace-sdk's propagation): never a panic; what parses is written
//! back in a form that parses to the same thing. Two readings of one input:
//! - the W3C parsers alone: the first line is a `traceparent`, the others `tracestate` lines;
//! - every line `name: value` is a request header, read by `SessionPropagator` through `HeaderExtractor`
//!   as the tower layer does (`traceparent` + `tracestate`, then `b3`, then `X-B3-*`, then
//!   `x-trace-id` + `x-span-id`); a context found is injected in each format and read back.
#![no_main]

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use sessiontrace_propagation::{HeaderExtractor, HeaderInjector, Injection, SessionPropagator, w3c};

fn w3c_parsers(text: &str) {
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
}

fn propagator(text: &str) {
    let mut headers = HeaderMap::new();
    for line in text.split('\n') {
        let Some((name, value)) = line.split_once(':') else { continue };
        let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name.trim().as_bytes()), HeaderValue::from_bytes(value.trim().as_bytes()))
        else {
            continue;
        };
        headers.append(name, value);
    }
    let reader = SessionPropagator::default();
    let received = reader.extract_context(&HeaderExtractor(&headers));
    let context = received.span().span_context().clone();
    if !context.is_valid() {
        return;
    }
    let formats = [
        (Injection { w3c: true, b3_single: false, b3_multi: false, x_trace_id: false }, true),
        (Injection { w3c: false, b3_single: true, b3_multi: false, x_trace_id: false }, true),
        (Injection { w3c: false, b3_single: false, b3_multi: true, x_trace_id: false }, true),
        // x-trace-id carries no flag: read back as sampled.
        (Injection { w3c: false, b3_single: false, b3_multi: false, x_trace_id: true }, false),
    ];
    for (injection, carries_sampled) in formats {
        let mut written = HeaderMap::new();
        SessionPropagator::new(injection).inject_context(&received, &mut HeaderInjector(&mut written));
        let again = reader.extract_span_context(&HeaderExtractor(&written)).expect("an injected context reads back");
        assert_eq!(again.trace_id(), context.trace_id(), "{injection:?}: {written:?}");
        assert_eq!(again.span_id(), context.span_id(), "{injection:?}: {written:?}");
        if carries_sampled {
            assert_eq!(again.is_sampled(), context.is_sampled(), "{injection:?}: {written:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    w3c_parsers(text);
    propagator(text);
});
