//! The one place that decides whether a trace is kept. Every span block passes through
//! [`RoutingPolicy::decide`] before it is written (docs/sampling.md tells the whole policy):
//!
//! 1. session traces (trace-id prefix or `session.id` / `multiplayer.session.id`): always kept;
//! 2. traces with an error (error status or an `exception` event): kept;
//! 3. traces slower than [`RoutingPolicy::slow_trace_ns`] (first span start to last span end, which is the
//!    root's duration once the root is seen): kept;
//! 4. the rest by a consistent probability on the trace id, so every replica decides a trace the same way.
//!
//! A trace dropped by rule 4 may still turn out to have an error or be slow in a later request (another
//! service, a later export batch). When the server holds such traces for a tail decision it asks the
//! ingest path to hand them back instead of discarding them ([`RoutingPolicy::hold_dropped`]); the helpers
//! at the bottom split a request per trace for that.

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

/// Why a trace was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepReason {
    Session,
    Error,
    /// The trace (its root, once seen) lasted longer than the slow threshold.
    Slow,
    Policy,
}

impl KeepReason {
    /// The label used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            KeepReason::Session => "session",
            KeepReason::Error => "error",
            KeepReason::Slow => "slow",
            KeepReason::Policy => "probability",
        }
    }
}

/// The decision for one trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Keep(KeepReason),
    Drop,
}

/// What the router knows of a trace when it decides.
#[derive(Debug, Clone, Copy)]
pub struct TraceFacts<'a> {
    pub trace_id: &'a [u8; 16],
    pub is_session: bool,
    pub has_error: bool,
    /// Last span end minus first span start of the spans seen so far, in nanoseconds (0 when unknown).
    pub duration_ns: u64,
}

/// The configured policy.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingPolicy {
    /// Share of non-session, non-error traces kept, 0.0 to 1.0.
    pub sampling_ratio: f64,
    /// Traces lasting longer than this are kept; `None` disables the rule.
    pub slow_trace_ns: Option<u64>,
    /// Hand dropped traces and logs back to the caller (the server's tail buffer or forwarder) instead of
    /// discarding them. Off by default, so the common path never copies what it drops.
    pub hold_dropped: bool,
}

impl Default for RoutingPolicy {
    fn default() -> Self {
        RoutingPolicy { sampling_ratio: 1.0, slow_trace_ns: None, hold_dropped: false }
    }
}

impl RoutingPolicy {
    /// A policy that keeps everything it is shown, with a ratio only (the tests' shorthand).
    pub fn with_ratio(sampling_ratio: f64) -> Self {
        RoutingPolicy { sampling_ratio, ..Default::default() }
    }

    /// Decides one trace. The probability is consistent: it reads the trace id's last 8 bytes (random in
    /// W3C ids), so every replica decides the same trace the same way.
    pub fn decide(&self, facts: TraceFacts<'_>) -> Decision {
        if facts.is_session {
            return Decision::Keep(KeepReason::Session);
        }
        if facts.has_error {
            return Decision::Keep(KeepReason::Error);
        }
        if self.slow_trace_ns.is_some_and(|threshold| facts.duration_ns > threshold) {
            return Decision::Keep(KeepReason::Slow);
        }
        if self.keeps_by_probability(facts.trace_id) { Decision::Keep(KeepReason::Policy) } else { Decision::Drop }
    }

    /// The consistent-probability rule alone.
    pub fn keeps_by_probability(&self, trace_id: &[u8; 16]) -> bool {
        if self.sampling_ratio >= 1.0 {
            return true;
        }
        let random = u64::from_be_bytes(trace_id[8..].try_into().expect("8 bytes"));
        let threshold = (self.sampling_ratio.max(0.0) * u64::MAX as f64) as u64;
        random < threshold
    }

    /// True when no trace can ever be dropped (ratio 1.0): the server then skips every tail stage.
    pub fn keeps_everything(&self) -> bool {
        self.sampling_ratio >= 1.0
    }
}

/// Splits a request into one request per trace id in `trace_ids` (resource and scope kept around each
/// span), in the order of `trace_ids`; the spans of those traces are removed from `request`.
pub fn take_traces(request: &mut ExportTraceServiceRequest, trace_ids: &[[u8; 16]]) -> Vec<ExportTraceServiceRequest> {
    let wanted: HashMap<&[u8], usize> = trace_ids.iter().enumerate().map(|(slot, id)| (id.as_slice(), slot)).collect();
    let mut per_trace: Vec<ExportTraceServiceRequest> = vec![ExportTraceServiceRequest::default(); trace_ids.len()];
    let position = |id: &[u8]| wanted.get(id).copied();
    for resource_spans in &mut request.resource_spans {
        for scope_spans in &mut resource_spans.scope_spans {
            if !scope_spans.spans.iter().any(|span| wanted.contains_key(span.trace_id.as_slice())) {
                continue;
            }
            let (taken, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut scope_spans.spans)
                .into_iter()
                .partition(|s| wanted.contains_key(s.trace_id.as_slice()));
            scope_spans.spans = kept;
            for span in taken {
                let Some(slot) = position(&span.trace_id) else { continue };
                let target = &mut per_trace[slot];
                let same_resource = target.resource_spans.last().is_some_and(|r| {
                    r.resource == resource_spans.resource && r.schema_url == resource_spans.schema_url
                });
                if !same_resource {
                    target.resource_spans.push(opentelemetry_proto::tonic::trace::v1::ResourceSpans {
                        resource: resource_spans.resource.clone(),
                        scope_spans: Vec::new(),
                        schema_url: resource_spans.schema_url.clone(),
                    });
                }
                let target_resource = target.resource_spans.last_mut().expect("pushed above");
                let same_scope = target_resource
                    .scope_spans
                    .last()
                    .is_some_and(|s| s.scope == scope_spans.scope && s.schema_url == scope_spans.schema_url);
                if !same_scope {
                    target_resource.scope_spans.push(opentelemetry_proto::tonic::trace::v1::ScopeSpans {
                        scope: scope_spans.scope.clone(),
                        spans: Vec::new(),
                        schema_url: scope_spans.schema_url.clone(),
                    });
                }
                target_resource.scope_spans.last_mut().expect("pushed above").spans.push(span);
            }
        }
    }
    for resource_spans in &mut request.resource_spans {
        resource_spans.scope_spans.retain(|s| !s.spans.is_empty());
    }
    request.resource_spans.retain(|r| !r.scope_spans.is_empty());
    per_trace
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn facts(id: &[u8; 16], is_session: bool, has_error: bool, duration_ns: u64) -> TraceFacts<'_> {
        TraceFacts { trace_id: id, is_session, has_error, duration_ns }
    }

    #[test]
    fn sessions_errors_and_slow_traces_are_always_kept() {
        let policy = RoutingPolicy { sampling_ratio: 0.0, slow_trace_ns: Some(1_000), hold_dropped: false };
        let id = [7u8; 16];
        assert_eq!(policy.decide(facts(&id, true, false, 0)), Decision::Keep(KeepReason::Session));
        assert_eq!(policy.decide(facts(&id, false, true, 0)), Decision::Keep(KeepReason::Error));
        assert_eq!(policy.decide(facts(&id, false, false, 1_001)), Decision::Keep(KeepReason::Slow));
        assert_eq!(policy.decide(facts(&id, false, false, 1_000)), Decision::Drop);
    }

    #[test]
    fn ratio_is_roughly_honoured() {
        let policy = RoutingPolicy::with_ratio(0.25);
        let kept = (0..20_000u64)
            .filter(|i| {
                let mut id = [1u8; 16];
                id[8..].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
                policy.decide(facts(&id, false, false, 0)) != Decision::Drop
            })
            .count();
        assert!((4_500..5_500).contains(&kept), "kept {kept}");
    }

    #[test]
    fn a_higher_ratio_keeps_a_superset() {
        // Consistency across ratios: a trace kept at 0.1 is kept at 0.5, so raising the ratio on some
        // replicas never loses what the others keep.
        let (low, high) = (RoutingPolicy::with_ratio(0.1), RoutingPolicy::with_ratio(0.5));
        for i in 0..5_000u64 {
            let mut id = [3u8; 16];
            id[8..].copy_from_slice(&i.wrapping_mul(0x2545_F491_4F6C_DD1D).to_be_bytes());
            assert!(!low.keeps_by_probability(&id) || high.keeps_by_probability(&id));
        }
    }

    #[test]
    fn take_traces_splits_per_trace_and_keeps_the_rest() {
        let span = |trace: u8, id: u8| Span { trace_id: vec![trace; 16], span_id: vec![id; 8], ..Default::default() };
        let mut request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![span(1, 1), span(2, 2), span(1, 3), span(3, 4)],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let taken = take_traces(&mut request, &[[3; 16], [1; 16]]);
        let ids = |r: &ExportTraceServiceRequest| -> Vec<u8> {
            r.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans).map(|s| s.span_id[0]).collect()
        };
        assert_eq!(ids(&taken[0]), vec![4]);
        assert_eq!(ids(&taken[1]), vec![1, 3]);
        assert_eq!(ids(&request), vec![2]);
        let mut all = ExportTraceServiceRequest::default();
        assert!(take_traces(&mut all, &[[1; 16]])[0].resource_spans.is_empty());
    }
}
