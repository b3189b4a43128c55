//! Trace-context propagation (shared/DESIGN.md section 3): [`SessionPropagator`] reads `traceparent`
//! (+ `tracestate`), then B3 (single `b3`, then `X-B3-*`), then `x-trace-id` + `x-span-id`, taking the first
//! that is well-formed; it writes the headers [`Injection`] selects (W3C by default).
//!
//! What a `traceparent` carried that a [`SpanContext`] cannot always hold travels beside it in the extracted
//! [`Context`] ([`ReceivedW3c`]): the `random` flag (OpenTelemetry's SDK clears every flag on a span its
//! sampler dropped) and `tracestate` members whose Level 2 keys OpenTelemetry's `TraceState` refuses.
//! Injection puts them back on any span of the same trace, so they leave as they arrived as long as the
//! outgoing context descends from the extracted one (the tower layer and the traced client do that).
//!
//! It implements OpenTelemetry's [`TextMapPropagator`], so it can be installed globally
//! (`opentelemetry::global::set_text_map_propagator`) and used with any carrier; [`HeaderExtractor`] and
//! [`HeaderInjector`] adapt an `http::HeaderMap`.

pub mod b3;
pub mod w3c;
pub mod xtrace;

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use opentelemetry::Context;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceId, TraceState};

/// Which headers [`SessionPropagator`] writes on outgoing requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Injection {
    /// `traceparent` and `tracestate` (on by default).
    pub w3c: bool,
    /// The single `b3` header.
    pub b3_single: bool,
    /// `X-B3-TraceId`, `X-B3-SpanId`, `X-B3-Sampled`.
    pub b3_multi: bool,
    /// `x-trace-id` and `x-span-id`.
    pub x_trace_id: bool,
}

impl Default for Injection {
    fn default() -> Self {
        Injection { w3c: true, b3_single: false, b3_multi: false, x_trace_id: false }
    }
}

impl Injection {
    /// Reads an `OTEL_PROPAGATORS`-style list: `tracecontext`, `b3`, `b3multi`, `xtraceid`; unknown names
    /// (for example `baggage`) are ignored; an empty selection falls back to W3C.
    pub fn from_names(names: &str) -> Self {
        let mut injection = Injection { w3c: false, b3_single: false, b3_multi: false, x_trace_id: false };
        for name in names.split(',').map(str::trim) {
            match name {
                "tracecontext" => injection.w3c = true,
                "b3" => injection.b3_single = true,
                "b3multi" => injection.b3_multi = true,
                "xtraceid" | "x-trace-id" => injection.x_trace_id = true,
                _ => {}
            }
        }
        if injection == (Injection { w3c: false, b3_single: false, b3_multi: false, x_trace_id: false }) {
            injection.w3c = true;
        }
        injection
    }
}

const FIELDS: [&str; 9] = [
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-sampled",
    "x-b3-flags",
    "x-trace-id",
    "x-span-id",
];

/// What the W3C headers carried, kept in the extracted [`Context`] (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedW3c {
    trace_id: TraceId,
    random: bool,
    tracestate: w3c::TraceStateList,
    /// The trace state the remote span context was given: while a span's state is still this one, nothing
    /// changed it, and the full received list is sent on.
    projected: TraceState,
}

impl ReceivedW3c {
    fn new(received: &w3c::Received) -> Self {
        let context = &received.span_context;
        ReceivedW3c {
            trace_id: context.trace_id(),
            random: context.trace_flags() & w3c::RANDOM == w3c::RANDOM,
            tracestate: received.tracestate.clone(),
            projected: context.trace_state().clone(),
        }
    }
}

/// The propagator of DESIGN.md section 3; see the module docs.
#[derive(Debug, Clone)]
pub struct SessionPropagator {
    injection: Injection,
    fields: Vec<String>,
}

impl Default for SessionPropagator {
    fn default() -> Self {
        SessionPropagator::new(Injection::default())
    }
}

impl SessionPropagator {
    /// A propagator that reads every supported format and writes the ones `injection` selects.
    pub fn new(injection: Injection) -> Self {
        SessionPropagator { injection, fields: FIELDS.iter().map(|f| f.to_string()).collect() }
    }

    /// The remote span context in the carrier, by DESIGN.md's order of preference.
    pub fn extract_span_context(&self, extractor: &dyn Extractor) -> Option<SpanContext> {
        self.extract_remote(extractor).map(|(context, _)| context)
    }

    /// A new [`Context`] with the carrier's remote span context (if any) and what its W3C headers carried.
    pub fn extract_context(&self, extractor: &dyn Extractor) -> Context {
        self.extract_with_context(&Context::new(), extractor)
    }

    fn extract_remote(&self, extractor: &dyn Extractor) -> Option<(SpanContext, Option<ReceivedW3c>)> {
        let all = |key: &str| extractor.get_all(key).unwrap_or_default();
        let traceparent = all("traceparent");
        if !traceparent.is_empty()
            && let Some(received) = w3c::extract(&traceparent, &all("tracestate"))
        {
            let kept = ReceivedW3c::new(&received);
            return Some((received.span_context, Some(kept)));
        }
        if let Some(context) = extractor.get("b3").and_then(b3::extract_single) {
            return Some((context, None));
        }
        if let (Some(trace), Some(span)) = (extractor.get("x-b3-traceid"), extractor.get("x-b3-spanid"))
            && let Some(context) =
                b3::extract_multi(trace, span, extractor.get("x-b3-sampled"), extractor.get("x-b3-flags"))
        {
            return Some((context, None));
        }
        if let (Some(trace), Some(span)) = (extractor.get("x-trace-id"), extractor.get("x-span-id")) {
            return xtrace::extract(trace, span).map(|context| (context, None));
        }
        None
    }
}

impl TextMapPropagator for SessionPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let context = span.span_context();
        if !context.is_valid() {
            return;
        }
        if self.injection.w3c {
            let received = cx.get::<ReceivedW3c>().filter(|received| received.trace_id == context.trace_id());
            let mut flags = context.trace_flags();
            if received.is_some_and(|received| received.random) {
                flags = flags | w3c::RANDOM;
            }
            injector.set("traceparent", w3c::format_traceparent_with_flags(context, flags));
            let state = match received {
                Some(received) if *context.trace_state() == received.projected => received.tracestate.header(),
                _ => context.trace_state().header(),
            };
            if !state.is_empty() {
                injector.set("tracestate", state);
            }
        }
        if self.injection.b3_single {
            injector.set("b3", b3::format_single(context));
        }
        if self.injection.b3_multi {
            injector.set("x-b3-traceid", context.trace_id().to_string());
            injector.set("x-b3-spanid", context.span_id().to_string());
            injector.set("x-b3-sampled", if context.is_sampled() { "1" } else { "0" }.to_string());
        }
        if self.injection.x_trace_id {
            injector.set("x-trace-id", context.trace_id().to_string());
            injector.set("x-span-id", context.span_id().to_string());
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match self.extract_remote(extractor) {
            Some((context, Some(received))) => cx.with_remote_span_context(context).with_value(received),
            Some((context, None)) => cx.with_remote_span_context(context),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

/// Reads headers from an `http::HeaderMap` (names are case-insensitive; several lines of one header are
/// all seen by [`Extractor::get_all`]).
pub struct HeaderExtractor<'a>(pub &'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let values: Vec<&str> = self.0.get_all(key).iter().filter_map(|value| value.to_str().ok()).collect();
        (!values.is_empty()).then_some(values)
    }
}

/// Writes headers into an `http::HeaderMap`, replacing earlier values; invalid values are skipped.
pub struct HeaderInjector<'a>(pub &'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(key.as_bytes()), HeaderValue::from_str(&value)) else {
            return;
        };
        self.0.insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn extract(headers: &[(&str, &str)]) -> Option<String> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        SessionPropagator::default().extract_span_context(&HeaderExtractor(&map)).map(|c| c.trace_id().to_string())
    }

    const W3C: &str = "00-debdeb0badcafe000000000000000001-b7ad6b7169203331-01";
    const B3: &str = "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1";

    #[test]
    fn extraction_follows_the_order_of_preference() {
        let all = [
            ("traceparent", W3C),
            ("b3", B3),
            ("x-trace-id", "11111111111111111111111111111111"),
            ("x-span-id", "2222222222222222"),
        ];
        assert_eq!(extract(&all).as_deref(), Some("debdeb0badcafe000000000000000001"));
        assert_eq!(extract(&all[1..]).as_deref(), Some("80f198ee56343ba864fe8b2a57d3eff7"));
        assert_eq!(extract(&all[2..]).as_deref(), Some("11111111111111111111111111111111"));
        // A malformed traceparent falls through to the next format.
        let bad_w3c = [("traceparent", "00-XYZ"), ("b3", B3)];
        assert_eq!(extract(&bad_w3c).as_deref(), Some("80f198ee56343ba864fe8b2a57d3eff7"));
        let multi = [("X-B3-TraceId", "80f198ee56343ba864fe8b2a57d3eff7"), ("X-B3-SpanId", "e457b5a2e4d86bd1")];
        assert_eq!(extract(&multi).as_deref(), Some("80f198ee56343ba864fe8b2a57d3eff7"));
        assert_eq!(extract(&[("traceparent", W3C), ("traceparent", W3C)]), None, "duplicated traceparent");
        assert_eq!(extract(&[]), None);
    }

    #[test]
    fn injection_is_configurable_and_round_trips() {
        let mut map = HeaderMap::new();
        map.insert("traceparent", HeaderValue::from_static(W3C));
        map.insert("tracestate", HeaderValue::from_static("vendor=a,other=b"));
        let propagator = SessionPropagator::default();
        let cx = propagator.extract(&HeaderExtractor(&map));
        let all = SessionPropagator::new(Injection::from_names("tracecontext,b3,b3multi,xtraceid"));
        let mut out: HashMap<String, String> = HashMap::new();
        all.inject_context(&cx, &mut out);
        assert_eq!(out["traceparent"], W3C);
        assert_eq!(out["tracestate"], "vendor=a,other=b");
        assert_eq!(out["b3"], "debdeb0badcafe000000000000000001-b7ad6b7169203331-1");
        assert_eq!(out["x-b3-sampled"], "1");
        assert_eq!(out["x-trace-id"], "debdeb0badcafe000000000000000001");
        assert_eq!(out["x-span-id"], "b7ad6b7169203331");
        let mut only_w3c: HashMap<String, String> = HashMap::new();
        propagator.inject_context(&cx, &mut only_w3c);
        assert_eq!(only_w3c.len(), 2);
        assert_eq!(Injection::from_names("baggage"), Injection::default());
    }
}
