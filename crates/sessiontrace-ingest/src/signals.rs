//! Frustration signals and the facts the sessions list searches, derived from a session's rrweb events
//! (pure: events in, [`SessionInsights`] out). The pipeline runs [`derive`] over all of a session's stored
//! events each time a chunk is stored and the store replaces what it had, so a signal whose clicks and
//! consequences arrive in different chunks (a request that fails after the next flush, a rage burst cut
//! by a flush) is found once its last piece arrives, whatever order chunks come in.
//!
//! The rules, on clicks grouped per element (rrweb node id, within one page load) whenever a click comes
//! within [`RAGE_WINDOW_MS`] of the previous one on the same element:
//! - rage: at least [`RAGE_MIN_CLICKS`] clicks of a group within [`RAGE_WINDOW_MS`] (a double-click is
//!   two clicks, never rage);
//! - dead: from the first click to [`FOLLOW_WINDOW_MS`] after the last, no DOM mutation, scroll, input,
//!   navigation or network call started, and no error (that is an error click); clicks on form fields
//!   (input, textarea, select, option) never count, as focusing a field changes nothing visible;
//! - error: within that window an uncaught error or rejection, a `console.error`, or a network call that
//!   failed (status ≥ 400, or no answer), started before the next click on any element: what follows
//!   the next click is that click's consequence (a request failing 2 s after a click is not the fault of
//!   the field clicked 2 s before it).
//!
//! A rage-clicked group also gives its dead or error signal. Each signal carries its cause: the failure
//! for an error click, else the first network call the clicks started, with the call's trace id, so the
//! reader can open the backend trace (its error or slowest span is read from the store on view).

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use sessiontrace_model::signals::{ClickedElement, FailedRequest, SessionInsights, Signal, SignalCause, SignalKind};

use crate::rrweb::{
    CUSTOM, INCREMENTAL, META, MOUSE_CLICK, NodeNames, PLUGIN, PLUGIN_CONSOLE, SOURCE_INPUT, SOURCE_MOUSE_INTERACTION,
    SOURCE_MUTATION, SOURCE_SCROLL, TAG_CONSOLE, TAG_ERROR, TAG_NETWORK, string_field, truncate, url_path,
};

/// Clicks on one element at most this far apart belong to one group; a rage click needs
/// [`RAGE_MIN_CLICKS`] of them within this window.
pub const RAGE_WINDOW_MS: f64 = 1_500.0;
pub const RAGE_MIN_CLICKS: usize = 4;
/// How long after a click its consequences (DOM change, navigation, network call, error) count.
pub const FOLLOW_WINDOW_MS: f64 = 3_000.0;
/// A request failed when its status is at least this, or 0 (no answer).
pub const FAILED_STATUS: u64 = 400;
/// At most this many distinct clicked elements and failed requests are kept per session.
pub const MAX_FACTS: usize = 500;

const FORM_FIELDS: [&str; 4] = ["input", "textarea", "select", "option"];

struct Click {
    time_ms: f64,
    page: u32,
    node_id: Option<u64>,
    selector: String,
    text: String,
    form_field: bool,
}

struct Network {
    start_ms: f64,
    cause: SignalCause,
}

struct Failure {
    time_ms: f64,
    cause: SignalCause,
}

/// Everything derived from a session's events (in any order; they are sorted by time here).
pub fn derive(events: &[Value]) -> SessionInsights {
    let mut names = NodeNames::default();
    let mut insights = SessionInsights::default();
    let mut clicks = Vec::new();
    // Times of what shows a click did something (mutations, scrolls, inputs, navigations).
    let mut reactions = Vec::new();
    let mut networks = Vec::new();
    let mut failures = Vec::new();
    let mut seen_urls = HashSet::new();
    let mut seen_clicked = HashSet::new();
    let mut seen_failed = HashSet::new();
    let mut page = 0u32;

    let mut ordered: Vec<&Value> = events.iter().collect();
    ordered.sort_by(|a, b| time_of(a).total_cmp(&time_of(b)));
    for event in ordered {
        let time_ms = time_of(event);
        let data = event.get("data").unwrap_or(&Value::Null);
        names.learn(event);
        match event.get("type").and_then(Value::as_u64) {
            Some(META) => {
                page += 1;
                reactions.push(time_ms);
                if let Some(href) = string_field(data, "href") {
                    for url in [url_path(&href), href] {
                        if seen_urls.insert(url.clone()) {
                            insights.urls.push(url);
                        }
                    }
                }
            }
            Some(INCREMENTAL) => match data.get("source").and_then(Value::as_u64) {
                Some(SOURCE_MUTATION) if mutation_changes_something(data) => reactions.push(time_ms),
                Some(SOURCE_SCROLL | SOURCE_INPUT) => reactions.push(time_ms),
                Some(SOURCE_MOUSE_INTERACTION) if data.get("type").and_then(Value::as_u64) == Some(MOUSE_CLICK) => {
                    let node_id = data.get("id").and_then(Value::as_u64);
                    let info = names.info(node_id);
                    let selector = info.map_or_else(|| "element".into(), |i| i.selector());
                    let text = info.and_then(|i| i.label.clone()).map(|l| truncate(&l, 60)).unwrap_or_default();
                    let form_field = info.is_some_and(|i| FORM_FIELDS.contains(&i.tag.to_ascii_lowercase().as_str()));
                    let element = ClickedElement { selector: selector.clone(), text: text.clone() };
                    if insights.clicked.len() < MAX_FACTS && seen_clicked.insert(element.clone()) {
                        insights.clicked.push(element);
                    }
                    clicks.push(Click { time_ms, page, node_id, selector, text, form_field });
                }
                _ => {}
            },
            Some(CUSTOM) => {
                let payload = data.get("payload").unwrap_or(&Value::Null);
                match data.get("tag").and_then(Value::as_str) {
                    Some(TAG_NETWORK) => {
                        let network = network_of(time_ms, payload);
                        if network.cause.failed {
                            let cause = &network.cause;
                            let failed = FailedRequest {
                                method: cause.method.clone().unwrap_or_default(),
                                path: url_path(cause.url.as_deref().unwrap_or("")),
                                status: cause.status.unwrap_or(0),
                            };
                            if insights.failed_requests.len() < MAX_FACTS && seen_failed.insert(failed.clone()) {
                                insights.failed_requests.push(failed);
                            }
                        }
                        networks.push(network);
                    }
                    Some(TAG_ERROR) => failures.push(error_failure(time_ms, "error", payload)),
                    Some(TAG_CONSOLE) if string_field(payload, "level").as_deref() == Some("error") => {
                        failures.push(error_failure(time_ms, "console", payload));
                    }
                    _ => {}
                }
            }
            Some(PLUGIN) if data.get("plugin").and_then(Value::as_str) == Some(PLUGIN_CONSOLE) => {
                let payload = data.get("payload").unwrap_or(&Value::Null);
                if string_field(payload, "level").as_deref() == Some("error") {
                    let message = payload.get("payload").map(Value::to_string).unwrap_or_default();
                    failures.push(error_failure(time_ms, "console", &serde_json::json!({"message": message})));
                }
            }
            _ => {}
        }
    }
    insights.console_errors = !failures.is_empty();
    networks.sort_by(|a, b| a.start_ms.total_cmp(&b.start_ms));
    insights.signals = signals_of(&clicks, &reactions, &networks, &failures);
    insights
}

fn time_of(event: &Value) -> f64 {
    event.get("timestamp").and_then(Value::as_f64).unwrap_or(0.0)
}

/// A mutation that adds, removes or changes anything (rrweb sometimes sends empty ones).
fn mutation_changes_something(data: &Value) -> bool {
    ["adds", "removes", "texts", "attributes"]
        .iter()
        .any(|key| data.get(key).and_then(Value::as_array).is_some_and(|list| !list.is_empty()))
}

fn network_of(time_ms: f64, payload: &Value) -> Network {
    let method = string_field(payload, "method").unwrap_or_else(|| "GET".into());
    let url = string_field(payload, "url").unwrap_or_default();
    let status = payload.get("status").and_then(Value::as_u64);
    let has_error = payload.get("error").is_some_and(|e| !e.is_null());
    let failed = has_error || status.is_none_or(|s| s == 0 || s >= FAILED_STATUS);
    let start_ms = payload.get("start_ms").and_then(Value::as_f64).unwrap_or(time_ms);
    let label = match status {
        Some(status) => format!("{method} {} → {status}", url_path(&url)),
        None => format!("{method} {}", url_path(&url)),
    };
    Network {
        start_ms,
        cause: SignalCause {
            kind: "network".into(),
            label,
            method: Some(method),
            url: Some(url),
            status,
            failed,
            start_ms: Some(start_ms),
            duration_ms: payload.get("duration_ms").and_then(Value::as_f64),
            trace_id: string_field(payload, "trace_id"),
            span_id: string_field(payload, "span_id"),
        },
    }
}

fn error_failure(time_ms: f64, kind: &str, payload: &Value) -> Failure {
    Failure {
        time_ms,
        cause: SignalCause {
            kind: kind.into(),
            label: truncate(&string_field(payload, "message").unwrap_or_default(), 200),
            failed: true,
            start_ms: Some(time_ms),
            ..Default::default()
        },
    }
}

/// Groups clicks per element and applies the rules (module docs).
fn signals_of(clicks: &[Click], reactions: &[f64], networks: &[Network], failures: &[Failure]) -> Vec<Signal> {
    let mut groups: Vec<Vec<&Click>> = Vec::new();
    let mut open: HashMap<(u32, Option<u64>), usize> = HashMap::new();
    for click in clicks {
        let key = (click.page, click.node_id);
        match open.get(&key) {
            Some(&group) if click.time_ms - groups[group].last().map_or(f64::MIN, |c| c.time_ms) <= RAGE_WINDOW_MS => {
                groups[group].push(click);
            }
            _ => {
                open.insert(key, groups.len());
                groups.push(vec![click]);
            }
        }
    }
    let mut signals = Vec::new();
    for group in groups {
        let first = group[0];
        let last = group[group.len() - 1];
        let window = |t: f64| t >= first.time_ms && t <= last.time_ms + FOLLOW_WINDOW_MS;
        let next_click = clicks.iter().map(|c| c.time_ms).find(|&t| t > last.time_ms).unwrap_or(f64::INFINITY);
        let own = |t: f64| window(t) && t < next_click;
        let started: Vec<&Network> = networks.iter().filter(|n| window(n.start_ms)).collect();
        let failure = started
            .iter()
            .find(|n| n.cause.failed && own(n.start_ms))
            .map(|n| n.cause.clone())
            .or_else(|| failures.iter().find(|f| own(f.time_ms)).map(|f| f.cause.clone()));
        let reacted = !started.is_empty() || reactions.iter().any(|&t| window(t));
        let first_call = started.first().map(|n| n.cause.clone());
        let signal = |kind, cause| Signal {
            kind,
            time_ms: first.time_ms,
            end_ms: last.time_ms,
            clicks: group.len() as u32,
            node_id: first.node_id,
            selector: first.selector.clone(),
            text: first.text.clone(),
            cause,
        };
        if is_rage(&group) {
            signals.push(signal(SignalKind::Rage, failure.clone().or_else(|| first_call.clone())));
        }
        if let Some(cause) = failure {
            signals.push(signal(SignalKind::Error, Some(cause)));
        } else if !reacted && !first.form_field {
            signals.push(signal(SignalKind::Dead, None));
        }
    }
    signals.sort_by(|a, b| a.time_ms.total_cmp(&b.time_ms));
    signals
}

/// Whether some [`RAGE_MIN_CLICKS`] clicks of the group fall within [`RAGE_WINDOW_MS`].
fn is_rage(group: &[&Click]) -> bool {
    group.windows(RAGE_MIN_CLICKS).any(|w| w[RAGE_MIN_CLICKS - 1].time_ms - w[0].time_ms <= RAGE_WINDOW_MS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T0: f64 = 1_700_000_000_000.0;

    fn page() -> Vec<Value> {
        vec![
            json!({"type": 4, "timestamp": T0, "data": {"href": "http://shop.test/cart?x=1", "width": 800, "height": 600}}),
            json!({"type": 2, "timestamp": T0 + 1.0, "data": {"node": {"type": 0, "id": 1, "childNodes": [
                {"type": 2, "id": 5, "tagName": "button", "attributes": {"id": "pay", "class": "btn"},
                 "childNodes": [{"type": 3, "id": 6, "textContent": "Pay now"}]},
                {"type": 2, "id": 7, "tagName": "button", "attributes": {"id": "noop"},
                 "childNodes": [{"type": 3, "id": 8, "textContent": "Does nothing"}]},
                {"type": 2, "id": 9, "tagName": "input", "attributes": {"id": "email"}, "childNodes": []}
            ]}}}),
        ]
    }

    fn click(at: f64, node: u64) -> Value {
        json!({"type": 3, "timestamp": T0 + at, "data": {"source": 2, "type": 2, "id": node, "x": 1, "y": 1}})
    }

    fn mutation(at: f64) -> Value {
        json!({"type": 3, "timestamp": T0 + at, "data": {"source": 0, "texts": [], "attributes": [], "removes": [],
            "adds": [{"parentId": 1, "nextId": null, "node": {"type": 2, "id": 20, "tagName": "ul", "attributes": {}, "childNodes": []}}]}})
    }

    fn network(at: f64, duration: f64, status: u64) -> Value {
        json!({"type": 5, "timestamp": T0 + at + duration, "data": {"tag": "sessiontrace/network", "payload": {
            "method": "POST", "url": "http://shop.test/api/pay?card=1", "status": status, "start_ms": T0 + at,
            "duration_ms": duration, "trace_id": "debdeb0102030405aaaaaaaaaaaaaaaa", "span_id": "0102030405060708"}}})
    }

    fn check(extra: Vec<Value>) -> Vec<(SignalKind, f64, u32, String)> {
        let mut events = page();
        events.extend(extra);
        derive(&events).signals.into_iter().map(|s| (s.kind, s.time_ms - T0, s.clicks, s.selector)).collect()
    }

    #[test]
    fn four_quick_clicks_on_one_element_are_a_rage_click() {
        let signals =
            check(vec![click(100.0, 5), click(400.0, 5), click(700.0, 5), click(1000.0, 5), mutation(1050.0)]);
        assert_eq!(signals, vec![(SignalKind::Rage, 100.0, 4, "button#pay.btn".into())]);
    }

    #[test]
    fn a_double_click_or_slow_clicks_are_not_rage() {
        // A double-click, answered by a mutation: nothing.
        assert_eq!(check(vec![click(100.0, 5), click(250.0, 5), mutation(300.0)]), vec![]);
        // Four clicks, each 1 s apart: one group (gaps ≤ 1.5 s) but never four within 1.5 s.
        let slow = vec![click(0.0, 5), click(1000.0, 5), click(2000.0, 5), click(3000.0, 5), mutation(3100.0)];
        assert_eq!(check(slow), vec![]);
        // Four quick clicks spread over two elements: not rage.
        let spread = vec![click(0.0, 5), click(200.0, 7), click(400.0, 5), click(600.0, 7), mutation(700.0)];
        assert_eq!(check(spread), vec![]);
    }

    #[test]
    fn a_click_nothing_follows_is_dead() {
        assert_eq!(check(vec![click(100.0, 7)]), vec![(SignalKind::Dead, 100.0, 1, "button#noop".into())]);
        // Something only after the window: still dead.
        assert_eq!(check(vec![click(100.0, 7), mutation(3200.0)]).len(), 1);
        // Something before the click does not count.
        assert_eq!(check(vec![mutation(50.0), click(100.0, 7)]).len(), 1);
    }

    #[test]
    fn a_click_that_changes_the_dom_navigates_or_calls_the_network_is_not_dead() {
        // Opens a menu: a mutation adds it.
        assert_eq!(check(vec![click(100.0, 7), mutation(150.0)]), vec![]);
        // An empty mutation is not a change.
        let empty = json!({"type": 3, "timestamp": T0 + 150.0, "data": {"source": 0, "texts": [], "attributes": [], "removes": [], "adds": []}});
        assert_eq!(check(vec![click(100.0, 7), empty]).len(), 1);
        // Navigates.
        let navigation = json!({"type": 4, "timestamp": T0 + 900.0, "data": {"href": "http://shop.test/next"}});
        assert_eq!(check(vec![click(100.0, 7), navigation]), vec![]);
        // Starts a request that answers 200 after the window: started within it, so not dead.
        assert_eq!(check(vec![click(100.0, 7), network(200.0, 5_000.0, 200)]), vec![]);
        // Focusing a form field changes nothing and is not dead.
        assert_eq!(check(vec![click(100.0, 9)]), vec![]);
    }

    #[test]
    fn a_click_followed_by_a_failed_request_or_an_error_is_an_error_click() {
        let events = vec![click(100.0, 5), network(150.0, 4_000.0, 502)];
        assert_eq!(check(events.clone()), vec![(SignalKind::Error, 100.0, 1, "button#pay.btn".into())]);
        let mut all = page();
        all.extend(events);
        let insights = derive(&all);
        let cause = insights.signals[0].cause.clone().unwrap();
        assert_eq!(cause.trace_id.as_deref(), Some("debdeb0102030405aaaaaaaaaaaaaaaa"));
        assert_eq!((cause.status, cause.label.as_str()), (Some(502), "POST /api/pay → 502"));
        assert_eq!(
            insights.failed_requests,
            vec![FailedRequest { method: "POST".into(), path: "/api/pay".into(), status: 502 }]
        );
        assert!(!insights.console_errors);

        // 4xx fails too; a network error has status 0.
        assert_eq!(check(vec![click(100.0, 5), network(150.0, 10.0, 404)])[0].0, SignalKind::Error);
        assert_eq!(check(vec![click(100.0, 5), network(150.0, 10.0, 0)])[0].0, SignalKind::Error);
        // An uncaught error, a console error.
        let error = json!({"type": 5, "timestamp": T0 + 2_000.0, "data": {"tag": "sessiontrace/error", "payload": {"message": "boom"}}});
        assert_eq!(check(vec![click(100.0, 7), error.clone()])[0].0, SignalKind::Error);
        let console = json!({"type": 5, "timestamp": T0 + 300.0, "data": {"tag": "sessiontrace/console", "payload": {"level": "error", "message": "bad"}}});
        assert_eq!(check(vec![click(100.0, 7), console])[0].0, SignalKind::Error);
        // Outside the window: the click is dead, not an error click.
        let late = json!({"type": 5, "timestamp": T0 + 3_200.0, "data": {"tag": "sessiontrace/error", "payload": {"message": "boom"}}});
        assert_eq!(check(vec![click(100.0, 7), late])[0].0, SignalKind::Dead);
        // A request that succeeded is no error.
        assert_eq!(check(vec![click(100.0, 5), network(150.0, 10.0, 201)]), vec![]);
        // What starts after the next click is that click's: the field clicked first is no error click.
        let fields = check(vec![click(100.0, 9), click(900.0, 5), network(950.0, 10.0, 502)]);
        assert_eq!(fields, vec![(SignalKind::Error, 900.0, 1, "button#pay.btn".into())]);
        let later = json!({"type": 5, "timestamp": T0 + 1_000.0, "data": {"tag": "sessiontrace/error", "payload": {"message": "boom"}}});
        assert_eq!(
            check(vec![click(100.0, 7), click(600.0, 5), later]).iter().filter(|s| s.0 == SignalKind::Error).count(),
            1
        );
    }

    #[test]
    fn a_rage_click_on_a_dead_button_is_rage_and_dead() {
        let kinds: Vec<_> = check(vec![click(100.0, 7), click(300.0, 7), click(500.0, 7), click(700.0, 7)])
            .into_iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(kinds, vec![SignalKind::Rage, SignalKind::Dead]);
    }

    #[test]
    fn signals_across_chunks_are_found_whatever_the_order() {
        // The failed call's event is emitted when it ends, in a later chunk, and chunks may come reversed.
        let mut events = vec![network(150.0, 4_000.0, 503)];
        events.extend(page());
        events.push(click(100.0, 5));
        let insights = derive(&events);
        assert_eq!(insights.signals.len(), 1);
        assert_eq!(insights.signals[0].kind, SignalKind::Error);
    }

    #[test]
    fn collects_urls_clicked_elements_and_console_errors() {
        let mut events = page();
        events.push(click(100.0, 5));
        events.push(mutation(120.0));
        events.push(click(200.0, 5));
        events.push(json!({"type": 6, "timestamp": T0 + 300.0, "data": {"plugin": "rrweb/console@1", "payload": {"level": "error", "payload": ["x"]}}}));
        let insights = derive(&events);
        assert_eq!(insights.urls, vec!["/cart".to_string(), "http://shop.test/cart?x=1".to_string()]);
        assert_eq!(
            insights.clicked,
            vec![ClickedElement { selector: "button#pay.btn".into(), text: "Pay now".into() }]
        );
        assert!(insights.console_errors);
    }
}
