//! Trace search for the Tempo and Jaeger APIs: the trace index narrows the candidates (project, window,
//! service, root, errors, trace duration: [`TraceSearch`]), then each candidate's stored blocks are
//! decoded and its spans checked against a TraceQL filter ([`Query`]). A trace matches when one of its
//! spans does. At most [`DECODE_CAP`] candidates are decoded per search; a search that stops there says so.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use sessiontrace_model::project::Project;
use sessiontrace_store::{Store, StoreError, TraceSearch, TraceSummary};

use crate::traceql::{Query, SpanContext, TraceFacts};

/// How many candidate traces one search decodes at most.
pub const DECODE_CAP: u32 = 2_000;
/// How many spans a trace lookup returns at most; a larger trace is cut there (Tempo's PARTIAL status).
pub const TRACE_SPAN_CAP: usize = 100_000;

/// One trace as stored: its spans grouped by resource and scope, only the spans of that trace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredTrace {
    pub resource_spans: Vec<ResourceSpans>,
    pub span_count: usize,
    /// True when the trace had more than [`TRACE_SPAN_CAP`] spans and was cut.
    pub truncated: bool,
    pub bytes: usize,
}

impl StoredTrace {
    /// Every span with its resource's attributes.
    pub fn spans(&self) -> impl Iterator<Item = (&ResourceSpans, &Span)> {
        self.resource_spans
            .iter()
            .flat_map(|rs| rs.scope_spans.iter().flat_map(move |ss| ss.spans.iter().map(move |span| (rs, span))))
    }
}

/// The spans of one trace from its stored blocks, in block order; empty when the trace is unknown.
pub async fn load_trace(store: &dyn Store, project: &Project, trace_id: [u8; 16]) -> Result<StoredTrace, StoreError> {
    let blocks = store.trace_blocks(project, trace_id).await?;
    let mut trace = StoredTrace::default();
    for block in blocks {
        trace.bytes += block.len();
        let request = ExportTraceServiceRequest::decode(block.as_slice())
            .map_err(|e| StoreError::Internal(format!("stored block does not decode: {e}")))?;
        for mut resource_spans in request.resource_spans {
            let scope_spans: Vec<ScopeSpans> = std::mem::take(&mut resource_spans.scope_spans)
                .into_iter()
                .filter_map(|mut scope_spans| {
                    scope_spans.spans.retain(|span| span.trace_id == trace_id);
                    let room = TRACE_SPAN_CAP - trace.span_count;
                    if scope_spans.spans.len() > room {
                        scope_spans.spans.truncate(room);
                        trace.truncated = true;
                    }
                    trace.span_count += scope_spans.spans.len();
                    (!scope_spans.spans.is_empty()).then_some(scope_spans)
                })
                .collect();
            if !scope_spans.is_empty() {
                resource_spans.scope_spans = scope_spans;
                trace.resource_spans.push(resource_spans);
            }
        }
    }
    Ok(trace)
}

/// What a search asks for.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub query: Query,
    pub from_unix_nano: Option<i64>,
    pub to_unix_nano: Option<i64>,
    pub limit: u32,
}

/// A trace that matched, with the spans that did.
#[derive(Debug, Clone)]
pub struct FoundTrace {
    pub summary: TraceSummary,
    pub trace: StoredTrace,
    /// Positions of the matching spans in [`StoredTrace::spans`] order.
    pub matched: Vec<usize>,
}

/// The result of a search with what it read.
#[derive(Debug, Clone, Default)]
pub struct SearchOutcome {
    pub traces: Vec<FoundTrace>,
    pub inspected_traces: u32,
    pub inspected_bytes: u64,
    /// More candidates were left unread ([`DECODE_CAP`]).
    pub capped: bool,
}

/// The facts a TraceQL condition may ask of a trace.
pub fn trace_facts(summary: &TraceSummary) -> TraceFacts {
    TraceFacts {
        duration_nanos: summary.end_unix_nano - summary.start_unix_nano,
        root_name: summary.root.as_ref().map(|(name, _)| name.clone()),
        root_service: summary.root.as_ref().map(|(_, service)| service.clone()),
    }
}

/// Runs a search: newest matching traces first, at most `limit` (default 20).
pub async fn search(
    store: &dyn Store,
    project: &Project,
    request: &SearchRequest,
) -> Result<SearchOutcome, StoreError> {
    let hints = request.query.index_hints();
    let limit = (if request.limit == 0 { TraceSearch::DEFAULT_LIMIT } else { request.limit.min(DECODE_CAP) }) as usize;
    let mut index_search = TraceSearch {
        from_unix_nano: request.from_unix_nano,
        to_unix_nano: request.to_unix_nano,
        service: hints.service,
        root_service: hints.root_service,
        root_name: hints.root_name,
        has_error: hints.has_error.then_some(true),
        min_duration_nanos: hints.min_trace_duration_nanos,
        max_duration_nanos: hints.max_trace_duration_nanos,
        // Without a span condition every candidate matches: ask for the limit. With one, candidates are
        // asked for a page at a time, newest first, until enough match or DECODE_CAP were decoded.
        limit: if request.query.filter.is_none() { limit as u32 } else { (limit as u32 * 4).clamp(50, DECODE_CAP) },
    };
    let mut outcome = SearchOutcome::default();
    let mut seen = std::collections::HashSet::new();
    loop {
        let candidates = store.search_traces(project, &index_search).await?;
        let page_was_full = candidates.len() as u32 >= index_search.limit;
        let earliest_end = candidates.iter().map(|summary| summary.end_unix_nano).min();
        let mut new_candidates = 0;
        for summary in candidates {
            if outcome.traces.len() >= limit || outcome.inspected_traces >= DECODE_CAP {
                break;
            }
            if !seen.insert(summary.trace_id) {
                continue;
            }
            new_candidates += 1;
            let trace = load_trace(store, project, summary.trace_id).await?;
            outcome.inspected_traces += 1;
            outcome.inspected_bytes += trace.bytes as u64;
            let facts = trace_facts(&summary);
            let matched: Vec<usize> = trace
                .spans()
                .enumerate()
                .filter(|(_, (resource_spans, span))| {
                    let resource = resource_spans.resource.as_ref().map_or(&[][..], |r| r.attributes.as_slice());
                    request.query.matches_span(SpanContext { span, resource, trace: &facts })
                })
                .map(|(position, _)| position)
                .collect();
            if !matched.is_empty() {
                outcome.traces.push(FoundTrace { summary, trace, matched });
            }
        }
        if outcome.traces.len() >= limit || request.query.filter.is_none() {
            break;
        }
        if outcome.inspected_traces >= DECODE_CAP {
            outcome.capped = true;
            break;
        }
        if !page_was_full {
            break;
        }
        // The next page ends where this one's scan could have stopped: every candidate here ends no
        // earlier than that point, so the earliest end skips nothing (what is seen again is skipped). A
        // page of nothing new is asked again twice as large.
        if new_candidates == 0 {
            if index_search.limit >= TraceSearch::SCAN_CAP {
                outcome.capped = true;
                break;
            }
            index_search.limit = (index_search.limit * 2).min(TraceSearch::SCAN_CAP);
        } else if let Some(earliest_end) = earliest_end {
            index_search.to_unix_nano = Some(earliest_end);
        }
    }
    Ok(outcome)
}
