//! The JSON export, schema `sessiontrace.export/v1`: the session, summary, steps, frustration signals,
//! timeline, failing requests, the failing and slowest traces with their spans (OpenTelemetry field names, captured
//! headers and bodies masked and capped), warn/error logs, and what was left out with the follow-up.
//! The token budget sets how many spans (budget / 100), timeline items (budget / 20) and logs
//! (budget / 40) are kept; replay events only when asked.

use serde_json::{Value, json};
use sessiontrace_model::masking::MaskingRules;
use sessiontrace_query::spans::trace_summary_json;

use crate::markdown::{MIN_LOG_SEVERITY, choose_spans, steps, tag};
use crate::requests::{failing_requests, mask_attributes, request_json};
use crate::{ExportData, Options, truncate};

/// The schema name every JSON export carries.
pub const SCHEMA: &str = "sessiontrace.export/v1";

/// The JSON export of a session.
pub fn json(data: &ExportData, options: &Options) -> Value {
    let rules = MaskingRules::default();
    let session = &data.session;
    let short = session.short_id.to_hex();
    let start = data.start_ms();
    let max_spans = (options.max_tokens / 100).max(20);
    let max_items = (options.max_tokens / 20).max(50);
    let max_logs = (options.max_tokens / 40).max(20);
    let mut truncated = Vec::new();

    let requests = failing_requests(data, options.max_body);
    let (steps, from_actions) = steps(data);

    let mut timeline: Vec<(usize, Value)> = data
        .timeline
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let mut value = serde_json::to_value(item).unwrap_or(Value::Null);
            value["tag"] = json!(tag(item.kind));
            value["offset_s"] = json!(((item.time_ms - start) / 100.0).round() / 10.0);
            // Network payloads carry what the recorder captured: mask it again, cap the bodies.
            if item.kind == "network" {
                for side in ["request", "response"] {
                    let detail = &mut value["detail"][side];
                    if let Some(headers) = detail.get_mut("headers").and_then(Value::as_object_mut) {
                        for (name, header) in headers.iter_mut() {
                            let text = header.as_str().map_or_else(|| header.to_string(), str::to_string);
                            *header = json!(crate::requests::header_value(&rules, name, &text));
                        }
                    }
                    if let Some(body) = detail.get("body").and_then(Value::as_str).map(str::to_string) {
                        detail["body"] = json!(crate::requests::body(&rules, &body, options.max_body).text);
                    }
                }
            }
            (index, value)
        })
        .collect();
    if timeline.len() > max_items {
        let total = timeline.len();
        // Keep errors and actions first, then the rest in time order.
        timeline.sort_by_key(|(index, value)| {
            let error = value["status"] == "error" || value["tag"] == "error";
            let action = value["tag"] == "action";
            (!error, !action, *index)
        });
        timeline.truncate(max_items);
        timeline.sort_by_key(|(index, _)| *index);
        truncated.push(json!({"section": "timeline", "shown": max_items, "total": total,
            "more": format!("GET /api/sessions/{short}/timeline")}));
    }

    let mut spans_left = max_spans;
    let traces: Vec<Value> = data
        .detailed
        .iter()
        .map(|(summary, spans)| {
            let budget = spans_left;
            let chosen = choose_spans(spans, |_, _| 1, budget);
            spans_left = spans_left.saturating_sub(chosen.len());
            let trace_id = hex::encode(summary.trace_id);
            if chosen.len() < spans.len() {
                truncated.push(json!({"section": "spans", "trace_id": trace_id, "shown": chosen.len(),
                    "total": spans.len(), "more": format!("GET /api/traces/{trace_id}")}));
            }
            let spans: Vec<Value> = spans
                .iter()
                .filter(|span| chosen.contains(span.span_id.as_str()))
                .map(|span| {
                    let mut value = serde_json::to_value(span).unwrap_or(Value::Null);
                    value["attributes"] = Value::Object(mask_attributes(&rules, &span.attributes, options.max_body));
                    value
                })
                .collect();
            let mut trace = trace_summary_json(summary);
            trace["spans_total"] = json!(summary.span_count);
            trace["spans_shown"] = json!(spans.len());
            trace["spans"] = Value::Array(spans);
            trace
        })
        .collect();
    let other_traces: Vec<Value> = data
        .traces
        .iter()
        .filter(|t| !data.detailed.iter().any(|(d, _)| d.trace_id == t.trace_id))
        .map(trace_summary_json)
        .collect();

    let warn_logs: Vec<_> = data.logs.iter().filter(|log| log.severity_number >= MIN_LOG_SEVERITY).collect();
    if warn_logs.len() > max_logs {
        truncated.push(json!({"section": "logs", "shown": max_logs, "total": warn_logs.len(),
            "more": format!("GET /api/sessions/{short}/logs")}));
    }
    let logs: Vec<Value> = warn_logs
        .iter()
        .take(max_logs)
        .map(|log| {
            json!({
                "time_unix_nano": log.time_unix_nano.to_string(),
                "time_ms": log.time_unix_nano as f64 / 1_000_000.0,
                "severity_text": log.severity_text,
                "severity_number": log.severity_number,
                "body": truncate(&log.body, 2_000),
                "service": log.service,
                "trace_id": log.trace_id.map(hex::encode),
                "span_id": log.span_id.map(hex::encode),
            })
        })
        .collect();

    let signals: Vec<Value> = crate::signals::entries(data, options)
        .iter()
        .take(max_items)
        .map(|entry| crate::signals::json_value(entry, start))
        .collect();
    if data.signals.len() > max_items {
        truncated.push(json!({"section": "signals", "shown": max_items, "total": data.signals.len(),
            "more": format!("GET /api/sessions/{short}")}));
    }

    let slowest = data.slowest_trace().map(trace_summary_json);
    let mut export = json!({
        "schema": SCHEMA,
        "session": sessiontrace_query::sessions::session_json(session, Some(&data.stats)),
        "ui_path": format!("/sessions/{}", session.id),
        "summary": {
            "errors": data.stats.errors,
            "failing_requests": requests.len(),
            "slowest_trace": slowest,
        },
        "steps_source": if from_actions { "actions" } else { "requests" },
        "steps": steps.iter().map(|step| json!({"time_ms": step.time_ms,
            "offset_s": ((step.time_ms - start) / 100.0).round() / 10.0, "text": step.text})).collect::<Vec<_>>(),
        "signals": signals,
        "timeline": timeline.into_iter().map(|(_, value)| value).collect::<Vec<_>>(),
        "requests": requests.iter().map(request_json).collect::<Vec<_>>(),
        "traces": traces,
        "other_traces": other_traces,
        "logs": logs,
        "truncated": truncated,
        "limits": {"max_tokens": options.max_tokens, "max_body": options.max_body, "max_spans": max_spans,
            "max_timeline_items": max_items, "max_logs": max_logs},
    });
    if let Some(replay) = &data.replay {
        export["replay"] = Value::Array(replay.clone());
    }
    export
}
