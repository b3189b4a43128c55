//! What a session's backend picture is missing, and the map of its calls, from its spans and the browser's
//! network calls (the replay's `network` timeline items):
//! - **completeness**: spans whose parent never arrived (per service), browser calls whose trace has no
//!   backend span, spans that started after the session stopped, and the clock skew seen between each pair
//!   of services (a child span starting before its parent on another service, or after it ended);
//! - **service map**: services as nodes, calls between them as edges (a span whose parent is on another
//!   service, and the browser's calls into the first service) with count, errors and p50 duration.
//!
//! Both are pure functions over [`SpanView`]s; [`session_spans`] loads a session's spans with a cap.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use sessiontrace_model::Project;
use sessiontrace_model::session::Session;
use sessiontrace_store::{Store, StoreError};

use crate::spans::{SpanView, trace_spans};
use crate::timeline::TimelineItem;

/// The most spans read for a session's analysis; more are left out and `truncated` says so.
pub const MAX_SPANS: usize = 50_000;

/// The name the browser has on the map (its calls are the `network` items of the replay).
pub const BROWSER: &str = "browser";

/// Skew smaller than this is clock jitter, not reported.
const SKEW_REPORT_MS: f64 = 1.0;

/// A session's spans (every trace of it, each sorted by start), at most [`MAX_SPANS`]; `true` when cut.
pub async fn session_spans(
    store: &dyn Store,
    project: &Project,
    session: &Session,
) -> Result<(Vec<SpanView>, bool), StoreError> {
    let mut spans = Vec::new();
    for trace in store.session_traces(project, session).await? {
        if spans.len() >= MAX_SPANS {
            return Ok((spans, true));
        }
        spans.extend(trace_spans(store, project, trace.trace_id).await?);
    }
    let truncated = spans.len() > MAX_SPANS;
    spans.truncate(MAX_SPANS);
    Ok((spans, truncated))
}

/// A session's completeness facts and service map, from its stored spans and replay.
pub async fn session_analysis(
    store: &dyn Store,
    project: &Project,
    session: &Session,
) -> Result<(Completeness, ServiceMap), StoreError> {
    let (spans, truncated) = session_spans(store, project, session).await?;
    let items = crate::timeline::items_from_replay(&crate::timeline::replay_events(store, project, session).await?);
    let network: Vec<&TimelineItem> = items.iter().filter(|item| item.kind == "network").collect();
    Ok((completeness(&spans, &network, session.stopped_at_ms, truncated), service_map(&spans, &network)))
}

/// A span the completeness facts point at.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SpanRef {
    pub trace_id: String,
    pub span_id: String,
    pub service: String,
    pub name: String,
}

impl SpanRef {
    fn of(span: &SpanView) -> Self {
        SpanRef {
            trace_id: span.trace_id.clone(),
            span_id: span.span_id.clone(),
            service: span.service.clone(),
            name: span.name.clone(),
        }
    }
}

/// A browser call whose trace has no backend span.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UntracedCall {
    pub time_ms: f64,
    pub label: String,
    pub trace_id: String,
}

/// The clock skew seen between a parent's service and a child's service.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Skew {
    pub parent_service: String,
    pub child_service: String,
    /// The largest amount a child lay outside its parent, in ms.
    pub max_ms: f64,
    /// How many parent → child pairs were outside.
    pub spans: usize,
    /// One such child span.
    pub example: SpanRef,
}

/// What the session's backend picture is missing.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Completeness {
    /// Orphan spans (their parent never arrived), by service.
    pub orphans_by_service: BTreeMap<String, usize>,
    /// The orphans themselves (the first 100).
    pub orphans: Vec<SpanRef>,
    pub untraced_calls: Vec<UntracedCall>,
    pub after_stop: Vec<SpanRef>,
    pub skew: Vec<Skew>,
    pub spans_read: usize,
    /// More spans than [`MAX_SPANS`]: the facts cover the first ones only.
    pub truncated: bool,
}

impl Completeness {
    /// Nothing is missing.
    pub fn is_complete(&self) -> bool {
        self.orphans.is_empty() && self.untraced_calls.is_empty() && self.after_stop.is_empty() && self.skew.is_empty()
    }
}

/// The completeness facts of a session's spans and its browser calls (`network` timeline items).
pub fn completeness(
    spans: &[SpanView],
    network: &[&TimelineItem],
    stopped_at_ms: Option<i64>,
    truncated: bool,
) -> Completeness {
    let ids: HashMap<(&str, &str), &SpanView> =
        spans.iter().map(|s| ((s.trace_id.as_str(), s.span_id.as_str()), s)).collect();
    // The browser's own span ids: a server span whose parent is one of them has its parent (the call).
    let browser: HashSet<(&str, &str)> =
        network.iter().filter_map(|item| Some((item.trace_id.as_deref()?, item.span_id.as_deref()?))).collect();
    // A trace with a backend span: the browser's own spans (the recorder exports them) do not count.
    let traced: HashSet<&str> = spans.iter().filter(|s| !s.is_browser()).map(|s| s.trace_id.as_str()).collect();
    let mut facts = Completeness { spans_read: spans.len(), truncated, ..Completeness::default() };
    let mut skew: BTreeMap<(String, String), Skew> = BTreeMap::new();
    for span in spans {
        let Some(parent_id) = span.parent_span_id.as_deref() else { continue };
        let key = (span.trace_id.as_str(), parent_id);
        match ids.get(&key) {
            None if !browser.contains(&key) => {
                *facts.orphans_by_service.entry(span.service.clone()).or_default() += 1;
                if facts.orphans.len() < 100 {
                    facts.orphans.push(SpanRef::of(span));
                }
            }
            Some(parent) if parent.service != span.service => {
                // A child that starts before its parent started, or after it ended, was timed by another
                // clock (ending after the parent is normal: asynchronous work, a page's documentLoad).
                // To the microsecond: the times are Unix ms as floats.
                let outside =
                    ((parent.start_ms - span.start_ms).max(span.start_ms - parent.end_ms) * 1e3).round() / 1e3;
                if outside >= SKEW_REPORT_MS {
                    let entry = skew.entry((parent.service.clone(), span.service.clone())).or_insert_with(|| Skew {
                        parent_service: parent.service.clone(),
                        child_service: span.service.clone(),
                        max_ms: 0.0,
                        spans: 0,
                        example: SpanRef::of(span),
                    });
                    entry.spans += 1;
                    if outside > entry.max_ms {
                        entry.max_ms = outside;
                        entry.example = SpanRef::of(span);
                    }
                }
            }
            _ => {}
        }
    }
    facts.skew = skew.into_values().collect();
    for item in network {
        if let Some(trace_id) = item.trace_id.as_deref().filter(|t| !traced.contains(t)) {
            facts.untraced_calls.push(UntracedCall {
                time_ms: item.time_ms,
                label: item.label.clone(),
                trace_id: trace_id.to_string(),
            });
        }
    }
    if let Some(stop) = stopped_at_ms {
        facts.after_stop = spans.iter().filter(|s| s.start_ms > stop as f64).map(SpanRef::of).collect();
    }
    facts
}

/// A service on the map.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Node {
    pub service: String,
    pub spans: usize,
    pub errors: usize,
}

/// Calls from one service to another.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub calls: usize,
    pub errors: usize,
    pub p50_ms: f64,
    /// The traces these calls belong to (the first 50), to filter the timeline by.
    pub trace_ids: Vec<String>,
}

/// Services and the calls between them.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct ServiceMap {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

/// The calls on one edge so far: their durations, errors and traces.
type EdgeCalls = (Vec<f64>, usize, Vec<String>);

fn is_error(span: &SpanView) -> bool {
    span.status.code == "error"
}

/// The map of the calls in `spans`; `network` adds the browser and its calls into the first backend
/// service of each trace (the span whose parent is the browser's call).
pub fn service_map(spans: &[SpanView], network: &[&TimelineItem]) -> ServiceMap {
    let by_id: HashMap<(&str, &str), &SpanView> =
        spans.iter().map(|s| ((s.trace_id.as_str(), s.span_id.as_str()), s)).collect();
    let browser_calls: HashMap<(&str, &str), &TimelineItem> = network
        .iter()
        .filter_map(|item| Some(((item.trace_id.as_deref()?, item.span_id.as_deref()?), *item)))
        .collect();
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    let mut edges: BTreeMap<(String, String), EdgeCalls> = BTreeMap::new();
    let mut add_edge = |from: &str, to: &str, duration: f64, error: bool, trace: &str| {
        let entry = edges.entry((from.to_string(), to.to_string())).or_default();
        entry.0.push(duration);
        entry.1 += usize::from(error);
        if entry.2.len() < 50 && !entry.2.iter().any(|t| t == trace) {
            entry.2.push(trace.to_string());
        }
    };
    for span in spans {
        let node = nodes.entry(span.service.clone()).or_insert_with(|| Node {
            service: span.service.clone(),
            spans: 0,
            errors: 0,
        });
        node.spans += 1;
        node.errors += usize::from(is_error(span));
        let Some(parent_id) = span.parent_span_id.as_deref() else { continue };
        let key = (span.trace_id.as_str(), parent_id);
        if let Some(parent) = by_id.get(&key) {
            if parent.service != span.service {
                add_edge(&parent.service, &span.service, span.duration_ms, is_error(span), &span.trace_id);
            }
        } else if let Some(call) = browser_calls.get(&key) {
            let failed = call.status == Some("error") || is_error(span);
            add_edge(BROWSER, &span.service, call.duration_ms.unwrap_or(span.duration_ms), failed, &span.trace_id);
        }
    }
    if edges.keys().any(|(from, _)| from == BROWSER) {
        let calls = network.len();
        let errors = network.iter().filter(|i| i.status == Some("error")).count();
        nodes.insert(BROWSER.into(), Node { service: BROWSER.into(), spans: calls, errors });
    }
    let edges = edges
        .into_iter()
        .map(|((from, to), (mut durations, errors, trace_ids))| {
            durations.sort_by(f64::total_cmp);
            let p50_ms = durations[(durations.len() - 1) / 2];
            Edge { from, to, calls: durations.len(), errors, p50_ms, trace_ids }
        })
        .collect();
    ServiceMap { nodes: nodes.into_values().collect(), edges }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::spans::tests::span;

    fn call(trace: &str, span_id: &str, time: f64, status: &'static str) -> TimelineItem {
        let mut item = TimelineItem::new(time, "network", format!("POST /api {trace}"));
        item.trace_id = Some(trace.into());
        item.span_id = Some(span_id.into());
        item.duration_ms = Some(30.0);
        item.status = Some(status);
        item
    }

    fn spans() -> Vec<SpanView> {
        vec![
            // t1: browser call b1 → gateway → orders (skewed 5 ms early) → payment (error)
            span("t1", "g1", Some("b1"), "gateway", 100.0, 200.0, false),
            span("t1", "o1", Some("g1"), "orders", 95.0, 150.0, false),
            span("t1", "p1", Some("o1"), "payment", 110.0, 140.0, true),
            // t2: a parent that never arrived
            span("t2", "o2", Some("lost"), "orders", 300.0, 320.0, false),
            // t3: after the session stopped
            span("t3", "g3", None, "gateway", 2_000.0, 2_010.0, false),
        ]
    }

    #[test]
    fn completeness_names_orphans_untraced_calls_late_spans_and_skew() {
        let calls = [call("t1", "b1", 99.0, "ok"), call("t9", "b9", 500.0, "error")];
        let network: Vec<&TimelineItem> = calls.iter().collect();
        // The browser SDK's own span of the untraced call does not make it traced.
        let mut browser = span("t9", "b9", None, "browser", 500.0, 530.0, false);
        browser.resource.insert("telemetry.sdk.language".into(), "webjs".into());
        let mut all = spans();
        all.push(browser);
        let facts = completeness(&all, &network, Some(1_000), false);
        assert_eq!(facts.orphans_by_service, BTreeMap::from([("orders".to_string(), 1)]));
        assert_eq!(facts.orphans[0].span_id, "o2");
        assert_eq!(facts.untraced_calls.iter().map(|c| c.trace_id.as_str()).collect::<Vec<_>>(), ["t9"]);
        assert_eq!(facts.after_stop.iter().map(|s| s.span_id.as_str()).collect::<Vec<_>>(), ["g3"]);
        assert_eq!(facts.skew.len(), 1);
        let skew = &facts.skew[0];
        assert_eq!(
            (skew.parent_service.as_str(), skew.child_service.as_str(), skew.max_ms),
            ("gateway", "orders", 5.0)
        );
        assert!(!facts.is_complete());
        // The gateway span's parent is the browser's call: not an orphan.
        assert!(facts.orphans.iter().all(|o| o.span_id != "g1"));
    }

    #[test]
    fn a_session_with_every_parent_and_no_late_span_is_complete() {
        let all = vec![span("t", "a", None, "a", 0.0, 10.0, false), span("t", "b", Some("a"), "b", 1.0, 9.0, false)];
        assert!(completeness(&all, &[], Some(100), false).is_complete());
    }

    #[test]
    fn the_map_has_the_browser_services_and_calls_with_counts_errors_and_p50() {
        let calls = [call("t1", "b1", 99.0, "ok")];
        let network: Vec<&TimelineItem> = calls.iter().collect();
        let mut all = spans();
        all.push(span("t4", "o4", Some("g4"), "payment", 0.0, 50.0, false));
        all.push(span("t4", "g4", None, "orders", 0.0, 60.0, false));
        let map = service_map(&all, &network);
        let names: Vec<&str> = map.nodes.iter().map(|n| n.service.as_str()).collect();
        assert_eq!(names, ["browser", "gateway", "orders", "payment"]);
        let edges: Vec<(&str, &str, usize, usize, f64)> =
            map.edges.iter().map(|e| (e.from.as_str(), e.to.as_str(), e.calls, e.errors, e.p50_ms)).collect();
        assert_eq!(
            edges,
            [("browser", "gateway", 1, 0, 30.0), ("gateway", "orders", 1, 0, 55.0), ("orders", "payment", 2, 1, 30.0),]
        );
        assert_eq!(map.edges[2].trace_ids, ["t1", "t4"]);
    }
}
