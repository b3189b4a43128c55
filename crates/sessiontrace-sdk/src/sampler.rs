//! [`SessionSampler`]: session traces are always recorded and sampled, spans that start with an exception
//! are sampled, everything else is decided by the sampler it wraps (shared/DESIGN.md section 4).
//!
//! # With parent-based sampling
//! Put the parent-based sampler *inside*:
//! `SessionSampler::new(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(0.1))))`.
//! The session check then runs first, so a session trace is kept even when a proxy or an old SDK cleared
//! the `sampled` flag of the `traceparent` it forwarded; every other trace follows the flag it received,
//! and new roots go to the ratio. Wrapping the other way round
//! (`Sampler::ParentBased(Box::new(SessionSampler::new(..)))`) also works for well-formed session traces,
//! whose `sampled` flag is always set, but a remote parent with the flag cleared would then be dropped.
//!
//! # Exceptions
//! A head sampler decides when a span starts, so it only sees what the span is started with: a span
//! started with `exception.type`, `exception.message`, `error.type` or `otel.status_code = ERROR` among its
//! attributes, or a name of `exception`, is sampled. An exception recorded later on a span that was
//! dropped cannot be recovered here; the server keeps error traces it receives (DESIGN.md section 4).

use opentelemetry::trace::{Link, SpanKind, TraceContextExt, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{Sampler, SamplingDecision, SamplingResult, ShouldSample};

use crate::ids::is_session_trace;

/// A sampler that always keeps session traces; see the module docs.
#[derive(Debug, Clone)]
pub struct SessionSampler {
    fallback: Box<dyn ShouldSample>,
}

impl SessionSampler {
    /// Wraps `fallback`, which decides every trace that is not a session trace and has no exception.
    pub fn new(fallback: impl ShouldSample + 'static) -> Self {
        SessionSampler { fallback: Box::new(fallback) }
    }

    /// The recommended setup: parent-based, new roots kept with probability `ratio` (0.0 to 1.0).
    pub fn parent_based_ratio(ratio: f64) -> Self {
        SessionSampler::new(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio.clamp(0.0, 1.0)))))
    }
}

fn has_exception(name: &str, attributes: &[KeyValue]) -> bool {
    name == "exception"
        || attributes.iter().any(|attribute| match attribute.key.as_str() {
            "exception.type" | "exception.message" | "error.type" => true,
            "otel.status_code" => attribute.value.as_str().eq_ignore_ascii_case("error"),
            _ => false,
        })
}

impl ShouldSample for SessionSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        if is_session_trace(trace_id) || has_exception(name, attributes) {
            let trace_state = parent_context
                .filter(|cx| cx.has_active_span())
                .map(|cx| cx.span().span_context().trace_state().clone())
                .unwrap_or_default();
            return SamplingResult { decision: SamplingDecision::RecordAndSample, attributes: Vec::new(), trace_state };
        }
        self.fallback.should_sample(parent_context, trace_id, name, span_kind, attributes, links)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceState};
    use proptest::prelude::*;

    fn decide(sampler: &SessionSampler, parent: Option<&Context>, trace_id: TraceId, attrs: &[KeyValue]) -> bool {
        let result = sampler.should_sample(parent, trace_id, "GET /", &SpanKind::Server, attrs, &[]);
        result.decision == SamplingDecision::RecordAndSample
    }

    fn session_id() -> TraceId {
        TraceId::from_hex("debdeb0badcafe000000000000000001").unwrap()
    }

    fn remote_parent(trace_id: TraceId, sampled: bool) -> Context {
        let flags = if sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
        let state = TraceState::from_key_value([("vendor", "x")]).unwrap();
        Context::new().with_remote_span_context(SpanContext::new(trace_id, SpanId::from(7u64), flags, true, state))
    }

    #[test]
    fn session_traces_are_kept_even_under_a_sampler_that_keeps_nothing() {
        let sampler = SessionSampler::new(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)));
        assert!(decide(&sampler, None, session_id(), &[]));
        let unsampled_parent = remote_parent(session_id(), false);
        assert!(decide(&sampler, Some(&unsampled_parent), session_id(), &[]));
        let continuous = TraceId::from_hex("cdbcdb0badcafe000000000000000001").unwrap();
        assert!(decide(&sampler, None, continuous, &[]));
        let other = TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap();
        assert!(!decide(&sampler, None, other, &[]));
    }

    #[test]
    fn keeps_the_parent_trace_state() {
        let sampler = SessionSampler::new(Sampler::AlwaysOff);
        let parent = remote_parent(session_id(), true);
        let result = sampler.should_sample(Some(&parent), session_id(), "x", &SpanKind::Internal, &[], &[]);
        assert_eq!(result.trace_state.header(), "vendor=x");
    }

    #[test]
    fn spans_started_with_an_exception_are_kept() {
        let sampler = SessionSampler::new(Sampler::AlwaysOff);
        let other = TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap();
        assert!(decide(&sampler, None, other, &[KeyValue::new("exception.type", "io")]));
        assert!(decide(&sampler, None, other, &[KeyValue::new("otel.status_code", "ERROR")]));
        assert!(!decide(&sampler, None, other, &[KeyValue::new("otel.status_code", "OK")]));
    }

    #[test]
    fn non_session_traces_follow_the_parent_flag() {
        let sampler = SessionSampler::parent_based_ratio(0.0);
        let other = TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap();
        assert!(decide(&sampler, Some(&remote_parent(other, true)), other, &[]));
        assert!(!decide(&sampler, Some(&remote_parent(other, false)), other, &[]));
        assert!(!decide(&sampler, None, other, &[]));
    }

    proptest! {
        #[test]
        fn every_session_trace_is_sampled(short in any::<[u8; 4]>(), rest in any::<[u8; 9]>(), continuous in any::<bool>()) {
            let mut bytes = [0u8; 16];
            bytes[..3].copy_from_slice(if continuous { &[0xcd, 0xbc, 0xdb] } else { &[0xde, 0xbd, 0xeb] });
            bytes[3..7].copy_from_slice(&short);
            bytes[7..].copy_from_slice(&rest);
            let sampler = SessionSampler::new(Sampler::AlwaysOff);
            prop_assert!(decide(&sampler, None, TraceId::from_bytes(bytes), &[]));
        }

        #[test]
        fn ratio_applies_to_other_traces(ratio in 0.0f64..1.0) {
            // Over many random non-session roots the kept share approaches the ratio.
            let sampler = SessionSampler::parent_based_ratio(ratio);
            let kept = (0..2000)
                .filter(|_| decide(&sampler, None, TraceId::from_bytes(sessiontrace_model::TraceId::random().0), &[]))
                .count() as f64 / 2000.0;
            prop_assert!((kept - ratio).abs() < 0.06, "ratio {} kept {}", ratio, kept);
        }
    }
}
