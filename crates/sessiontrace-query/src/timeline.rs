//! One time-ordered list of what happened in a session: the user's clicks, inputs and navigations and the
//! recorder's network, console and error events (all read from the rrweb replay events), the backend
//! traces (from the index) and the logs. Each item carries the trace it belongs to, when known.

use serde::Serialize;
use serde_json::Value;
use sessiontrace_ingest::rrweb::{
    CUSTOM, FULL_SNAPSHOT, INCREMENTAL, META, MOUSE_CLICK, NodeNames, PLUGIN, PLUGIN_CONSOLE, SOURCE_INPUT,
    SOURCE_MOUSE_INTERACTION, SOURCE_MUTATION, TAG_CONSOLE, TAG_ERROR, TAG_NETWORK, string_field, truncate,
};
use sessiontrace_model::project::Project;
use sessiontrace_store::{LogFilter, Store, StoreError};

use sessiontrace_model::Session;

use crate::nanos_to_ms;
use crate::signals::{SignalView, session_signals};
use sessiontrace_model::signals::SignalKind;

/// One timeline item (docs/api.md).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TimelineItem {
    pub time_ms: f64,
    pub kind: &'static str,
    pub label: String,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub service: Option<String>,
    pub duration_ms: Option<f64>,
    pub status: Option<&'static str>,
    pub level: Option<String>,
    pub detail: Value,
}

impl TimelineItem {
    pub(crate) fn new(time_ms: f64, kind: &'static str, label: String) -> Self {
        TimelineItem {
            time_ms,
            kind,
            label,
            trace_id: None,
            span_id: None,
            service: None,
            duration_ms: None,
            status: None,
            level: None,
            detail: Value::Object(Default::default()),
        }
    }
}

/// Timeline items from rrweb events, in event order.
pub fn items_from_replay(events: &[Value]) -> Vec<TimelineItem> {
    let mut names = NodeNames::default();
    let mut items = Vec::new();
    let mut last_input: Option<(u64, f64)> = None;
    for event in events {
        let time_ms = event.get("timestamp").and_then(Value::as_f64).unwrap_or(0.0);
        let data = event.get("data").unwrap_or(&Value::Null);
        match event.get("type").and_then(Value::as_u64) {
            Some(FULL_SNAPSHOT) => names.visit(data.get("node").unwrap_or(&Value::Null)),
            Some(META) => {
                if let Some(href) = string_field(data, "href") {
                    let mut item = TimelineItem::new(time_ms, "navigation", href.clone());
                    item.detail = serde_json::json!({"href": href});
                    items.push(item);
                }
            }
            Some(INCREMENTAL) => match data.get("source").and_then(Value::as_u64) {
                Some(SOURCE_MUTATION) => {
                    for added in data.get("adds").and_then(Value::as_array).into_iter().flatten() {
                        names.visit(added.get("node").unwrap_or(&Value::Null));
                    }
                }
                Some(SOURCE_MOUSE_INTERACTION) if data.get("type").and_then(Value::as_u64) == Some(MOUSE_CLICK) => {
                    let node = data.get("id").and_then(Value::as_u64);
                    let mut item = TimelineItem::new(time_ms, "click", format!("click {}", names.name(node)));
                    item.detail = serde_json::json!({"node_id": node});
                    items.push(item);
                }
                Some(SOURCE_INPUT) => {
                    let node = data.get("id").and_then(Value::as_u64).unwrap_or(0);
                    // One item per field being typed into, not one per keystroke.
                    let same_field = last_input.is_some_and(|(id, at)| id == node && time_ms - at < 2_000.0);
                    last_input = Some((node, time_ms));
                    if !same_field {
                        let mut item = TimelineItem::new(time_ms, "input", format!("input {}", names.name(Some(node))));
                        item.detail = serde_json::json!({"node_id": node});
                        items.push(item);
                    }
                }
                _ => {}
            },
            Some(CUSTOM) => {
                let payload = data.get("payload").unwrap_or(&Value::Null);
                match data.get("tag").and_then(Value::as_str) {
                    Some(TAG_NETWORK) => items.push(network_item(time_ms, payload)),
                    Some(TAG_CONSOLE) => {
                        let level = string_field(payload, "level").unwrap_or_else(|| "log".into());
                        let mut item = TimelineItem::new(
                            time_ms,
                            "console",
                            truncate(&string_field(payload, "message").unwrap_or_default(), 200),
                        );
                        item.status = (level == "error").then_some("error");
                        item.level = Some(level);
                        item.detail = payload.clone();
                        items.push(item);
                    }
                    Some(TAG_ERROR) => {
                        let mut item = TimelineItem::new(
                            time_ms,
                            "error",
                            truncate(&string_field(payload, "message").unwrap_or_default(), 200),
                        );
                        item.status = Some("error");
                        item.level = Some("error".into());
                        item.detail = payload.clone();
                        items.push(item);
                    }
                    _ => {}
                }
            }
            Some(PLUGIN) if data.get("plugin").and_then(Value::as_str) == Some(PLUGIN_CONSOLE) => {
                let payload = data.get("payload").unwrap_or(&Value::Null);
                let level = string_field(payload, "level").unwrap_or_else(|| "log".into());
                let message = payload
                    .get("payload")
                    .and_then(Value::as_array)
                    .map(|parts| {
                        parts
                            .iter()
                            .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_string))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default();
                let mut item = TimelineItem::new(time_ms, "console", truncate(&message, 200));
                item.level = Some(level);
                item.detail = payload.clone();
                items.push(item);
            }
            _ => {}
        }
    }
    items
}

fn network_item(time_ms: f64, payload: &Value) -> TimelineItem {
    let method = string_field(payload, "method").unwrap_or_else(|| "GET".into());
    let url = string_field(payload, "url").unwrap_or_default();
    let status = payload.get("status").and_then(Value::as_u64);
    let failed = payload.get("error").is_some_and(|e| !e.is_null()) || status.is_some_and(|s| s >= 500 || s == 0);
    let label = match status {
        Some(status) => format!("{method} {url} → {status}"),
        None => format!("{method} {url}"),
    };
    let start = payload.get("start_ms").and_then(Value::as_f64).unwrap_or(time_ms);
    let mut item = TimelineItem::new(start, "network", label);
    item.trace_id = string_field(payload, "trace_id");
    item.span_id = string_field(payload, "span_id");
    item.duration_ms = payload.get("duration_ms").and_then(Value::as_f64);
    item.status = Some(if failed { "error" } else { "ok" });
    item.detail = payload.clone();
    item
}

/// Timeline items of kind `signal`, linked to the cause's trace and span.
pub fn signal_items(signals: &[SignalView]) -> Vec<TimelineItem> {
    signals
        .iter()
        .map(|view| {
            let signal = &view.signal;
            let what = match signal.kind {
                SignalKind::Rage => format!("rage click ×{}", signal.clicks),
                SignalKind::Dead => "dead click".to_string(),
                SignalKind::Error => "error click".to_string(),
            };
            let target = if signal.text.is_empty() {
                signal.selector.clone()
            } else {
                format!("{} \"{}\"", signal.selector, signal.text)
            };
            let label = match &signal.cause {
                Some(cause) if signal.kind != SignalKind::Dead => format!("{what} {target} → {}", cause.label),
                _ => format!("{what} {target}"),
            };
            let mut item = TimelineItem::new(signal.time_ms, "signal", label);
            item.status = Some(if signal.kind == SignalKind::Error { "error" } else { "warning" });
            item.trace_id = view
                .span
                .as_ref()
                .map(|s| s.trace_id.clone())
                .or_else(|| signal.cause.as_ref().and_then(|c| c.trace_id.clone()));
            item.span_id = view.span.as_ref().map(|s| s.span_id.clone());
            item.service = view.span.as_ref().map(|s| s.service.clone());
            item.detail = serde_json::to_value(view).unwrap_or_default();
            item
        })
        .collect()
}

/// All replay events of a session, in order.
pub async fn replay_events(store: &dyn Store, project: &Project, session: &Session) -> Result<Vec<Value>, StoreError> {
    let mut events = Vec::new();
    for chunk in store.replay_chunks(project, &session.id).await? {
        if let Ok(Value::Array(chunk_events)) = serde_json::from_slice::<Value>(&chunk.events_json) {
            events.extend(chunk_events);
        }
    }
    Ok(events)
}

/// `{"events": [...]}` of a session as JSON bytes, joined from the stored chunks without parsing them
/// (each chunk is stored as the JSON array the server wrote): tens of thousands of events stay cheap.
pub async fn replay_events_json(
    store: &dyn Store,
    project: &Project,
    session: &Session,
) -> Result<Vec<u8>, StoreError> {
    let chunks = store.replay_chunks(project, &session.id).await?;
    let mut body = Vec::with_capacity(chunks.iter().map(|c| c.events_json.len()).sum::<usize>() + 16);
    body.extend_from_slice(b"{\"events\":[");
    let mut first = true;
    for chunk in &chunks {
        let text = chunk.events_json.trim_ascii();
        let Some(inner) = text.strip_prefix(b"[").and_then(|t| t.strip_suffix(b"]")) else {
            return Err(StoreError::Internal(format!("replay chunk {} is not a JSON array", chunk.seq)));
        };
        if inner.trim_ascii().is_empty() {
            continue;
        }
        if !first {
            body.push(b',');
        }
        body.extend_from_slice(inner);
        first = false;
    }
    body.extend_from_slice(b"]}");
    Ok(body)
}

/// The whole timeline of a session, sorted by time.
pub async fn session_timeline(
    store: &dyn Store,
    project: &Project,
    session: &Session,
) -> Result<Vec<TimelineItem>, StoreError> {
    let events = replay_events(store, project, session).await?;
    let mut items = items_from_replay(&events);
    items.extend(signal_items(&session_signals(store, project, session).await?));
    for trace in store.session_traces(project, session).await? {
        let (name, service) = trace.root.clone().unzip();
        let mut item =
            TimelineItem::new(nanos_to_ms(trace.start_unix_nano), "trace", name.unwrap_or_else(|| "trace".into()));
        item.trace_id = Some(hex::encode(trace.trace_id));
        item.service = service.or_else(|| trace.services.first().cloned());
        item.duration_ms = Some((trace.end_unix_nano - trace.start_unix_nano) as f64 / 1_000_000.0);
        item.status = Some(if trace.error_count > 0 { "error" } else { "ok" });
        item.detail = serde_json::json!({"span_count": trace.span_count, "error_count": trace.error_count, "services": trace.services});
        items.push(item);
    }
    let keys = vec![session.id.clone(), session.short_id.to_hex()];
    for log in store.logs(project, &LogFilter { session_keys: keys, limit: Some(10_000), ..Default::default() }).await?
    {
        let mut item = TimelineItem::new(nanos_to_ms(log.time_unix_nano), "log", truncate(&log.body, 200));
        item.trace_id = log.trace_id.map(hex::encode);
        item.span_id = log.span_id.map(hex::encode);
        item.service = Some(log.service.clone());
        item.status = (log.severity_number >= 17).then_some("error");
        item.level = Some(if log.severity_text.is_empty() { "info".into() } else { log.severity_text.to_lowercase() });
        items.push(item);
    }
    items.sort_by(|a, b| a.time_ms.total_cmp(&b.time_ms));
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_clicks_inputs_navigation_and_custom_events() {
        let events = vec![
            json!({"type": 4, "timestamp": 1000, "data": {"href": "http://127.0.0.1:3000/", "width": 800, "height": 600}}),
            json!({"type": 2, "timestamp": 1001, "data": {"node": {"type": 0, "id": 1, "childNodes": [
                {"type": 2, "id": 5, "tagName": "button", "attributes": {"id": "pay"}, "childNodes": [{"type": 3, "id": 6, "textContent": "Pay now"}]},
                {"type": 2, "id": 7, "tagName": "input", "attributes": {"id": "email"}, "childNodes": []}
            ]}}}),
            json!({"type": 3, "timestamp": 1100, "data": {"source": 5, "id": 7, "text": "***"}}),
            json!({"type": 3, "timestamp": 1200, "data": {"source": 5, "id": 7, "text": "****"}}),
            json!({"type": 3, "timestamp": 1300, "data": {"source": 2, "type": 2, "id": 5, "x": 1, "y": 2}}),
            json!({"type": 5, "timestamp": 1310, "data": {"tag": "sessiontrace/network", "payload": {
                "method": "POST", "url": "/api/pay", "status": 500, "start_ms": 1305, "duration_ms": 20,
                "trace_id": "debdeb0102030405aaaaaaaaaaaaaaaaaa", "span_id": "0102030405060708"}}}),
            json!({"type": 5, "timestamp": 1400, "data": {"tag": "sessiontrace/error", "payload": {"message": "boom", "kind": "error"}}}),
        ];
        let items = items_from_replay(&events);
        let summary: Vec<_> = items.iter().map(|i| (i.kind, i.label.as_str(), i.time_ms)).collect();
        assert_eq!(
            summary,
            vec![
                ("navigation", "http://127.0.0.1:3000/", 1000.0),
                ("input", "input input#email", 1100.0),
                ("click", "click button#pay \"Pay now\"", 1300.0),
                ("network", "POST /api/pay → 500", 1305.0),
                ("error", "boom", 1400.0),
            ]
        );
        assert_eq!(items[3].status, Some("error"));
        assert_eq!(items[3].trace_id.as_deref(), Some("debdeb0102030405aaaaaaaaaaaaaaaaaa"));
    }
}
