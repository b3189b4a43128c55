//! The markdown export: header, summary, steps to reproduce, frustration signals, timeline, failing
//! requests, trace trees and warn/error logs, within the token budget. Sections are filled in priority
//! order (frustration signals, failing requests, trace trees, steps, logs, timeline), each with a share of the budget and what the one before left;
//! they are printed in reading order. Whatever a section leaves out it says, with the follow-up.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use serde_json::Value;
use sessiontrace_query::spans::SpanView;
use sessiontrace_query::timeline::TimelineItem;
use sessiontrace_store::TraceSummary;

use crate::requests::{Request, failing_requests};
use crate::{ExportData, Options, duration, estimate_tokens, offset, truncate};

/// Logs at or above this OpenTelemetry severity number are shown (WARN = 13).
pub const MIN_LOG_SEVERITY: i32 = 13;

/// The tag of a timeline item.
pub fn tag(kind: &str) -> &'static str {
    match kind {
        "click" | "input" | "navigation" => "action",
        "network" => "request",
        "trace" => "trace",
        "log" => "log",
        "console" => "console",
        "error" => "error",
        "signal" => "signal",
        _ => "other",
    }
}

/// One user action, as a step to reproduce.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub time_ms: f64,
    pub text: String,
}

/// Steps to reproduce: navigations, clicks and inputs (values never shown), each click followed by the
/// requests it started. A session without recorded actions gets its backend requests instead.
pub fn steps(data: &ExportData) -> (Vec<Step>, bool) {
    let mut steps: Vec<Step> = Vec::new();
    let items = &data.timeline;
    for (index, item) in items.iter().enumerate() {
        let text = match item.kind {
            "navigation" => format!("Open {}", item.label),
            "input" => {
                format!("Type into {} (value {})", target(&item.label, "input "), sessiontrace_model::masking::MASKED)
            }
            "click" => {
                let mut text = format!("Click {}", target(&item.label, "click "));
                let requests: Vec<&TimelineItem> = items[index + 1..]
                    .iter()
                    .take_while(|next| next.time_ms - item.time_ms < 1_500.0 && next.kind != "click")
                    .filter(|next| next.kind == "network")
                    .collect();
                for request in requests.iter().take(3) {
                    let failed = if request.status == Some("error") { " (fails)" } else { "" };
                    let _ = write!(text, " → {}{failed}", request.label);
                }
                text
            }
            _ => continue,
        };
        steps.push(Step { time_ms: item.time_ms, text });
    }
    if !steps.is_empty() {
        return (steps, true);
    }
    for trace in &data.traces {
        let Some((name, service)) = &trace.root else { continue };
        let failed = if trace.error_count > 0 { " (fails)" } else { "" };
        steps.push(Step {
            time_ms: trace.start_unix_nano as f64 / 1_000_000.0,
            text: format!("{name} ({service}){failed}"),
        });
    }
    (steps, false)
}

fn target(label: &str, prefix: &str) -> String {
    format!("`{}`", label.strip_prefix(prefix).unwrap_or(label))
}

/// Chooses spans by score (errors first, then duration) while their lines fit in `budget`; each
/// chosen span brings its missing ancestors so the tree stays whole. Returns the chosen span ids.
pub fn choose_spans(
    spans: &[SpanView],
    mut cost: impl FnMut(&SpanView, usize) -> usize,
    budget: usize,
) -> HashSet<&str> {
    let by_id: HashMap<&str, &SpanView> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let depths = crate::requests::depths(spans);
    let mut order: Vec<&SpanView> = spans.iter().collect();
    order.sort_by(|a, b| {
        let error =
            |s: &SpanView| s.status.code == "error" || crate::requests::span_status(s).is_some_and(|c| c >= 500);
        error(b).cmp(&error(a)).then(b.duration_ms.total_cmp(&a.duration_ms))
    });
    let mut chosen: HashSet<&str> = HashSet::new();
    let mut used = 0;
    for span in order {
        if chosen.contains(span.span_id.as_str()) {
            continue;
        }
        let mut path = vec![span];
        let mut current = span;
        while let Some(parent) = current.parent_span_id.as_deref().and_then(|p| by_id.get(p)) {
            if chosen.contains(parent.span_id.as_str()) || path.len() >= crate::requests::MAX_DEPTH {
                break;
            }
            path.push(parent);
            current = parent;
        }
        let path_cost: usize = path.iter().map(|s| cost(s, depths.get(s.span_id.as_str()).copied().unwrap_or(0))).sum();
        if used + path_cost > budget {
            continue;
        }
        used += path_cost;
        chosen.extend(path.iter().map(|s| s.span_id.as_str()));
    }
    chosen
}

fn span_line(span: &SpanView, depth: usize) -> String {
    let indent = "  ".repeat(depth.min(12));
    let mut line = format!("{indent}- {} `{}` {} {}", span.service, span.name, span.kind, duration(span.duration_ms));
    if let Some(status) = crate::requests::span_status(span) {
        let _ = write!(line, " → {status}");
    }
    if span.status.code == "error" {
        line.push_str(" **ERROR**");
        if !span.status.message.is_empty() {
            let _ = write!(line, ": {}", truncate(&span.status.message, 120));
        }
    }
    for event in span.events.iter().filter(|e| e["name"] == "exception").take(1) {
        let message = event["attributes"]["exception.message"].as_str().unwrap_or_default();
        let _ = write!(line, " (exception: {})", truncate(message, 120));
    }
    line.push('\n');
    line
}

/// A trace tree of the chosen spans, children by start time.
fn tree(spans: &[SpanView], chosen: &HashSet<&str>) -> String {
    let ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let mut children: HashMap<Option<&str>, Vec<&SpanView>> = HashMap::new();
    for span in spans.iter().filter(|s| chosen.contains(s.span_id.as_str())) {
        let parent = span.parent_span_id.as_deref().filter(|p| ids.contains(p));
        children.entry(parent).or_default().push(span);
    }
    let mut out = String::new();
    let mut stack: Vec<(&SpanView, usize)> =
        children.get(&None).into_iter().flatten().rev().map(|span| (*span, 0)).collect();
    while let Some((span, depth)) = stack.pop() {
        out.push_str(&span_line(span, depth));
        if let Some(kids) = children.get(&Some(span.span_id.as_str())) {
            stack.extend(kids.iter().rev().map(|kid| (*kid, depth + 1)));
        }
    }
    out
}

fn fence(out: &mut String, language: &str, text: &str) {
    let ticks = if text.contains("```") { "````" } else { "```" };
    let _ = writeln!(out, "{ticks}{language}\n{}\n{ticks}", text.trim_end());
}

fn request_block(number: usize, request: &Request, start_ms: f64) -> String {
    let mut out = String::new();
    let status = match (request.status, &request.error) {
        (Some(0) | None, Some(error)) => format!("network error: {}", truncate(error, 200)),
        (Some(status), _) => status.to_string(),
        (None, None) => "failed".into(),
    };
    let _ = writeln!(out, "### {number}. {} {} → {status}", request.method, truncate(&request.url, 200));
    let mut facts = vec![format!("{} {}", offset(start_ms, request.time_ms), request.source)];
    if let Some(service) = &request.service {
        facts.push(service.clone());
    }
    if let Some(ms) = request.duration_ms {
        facts.push(duration(ms));
    }
    if let Some(trace_id) = &request.trace_id {
        facts.push(format!("trace `{trace_id}`"));
    }
    if let Some(span_id) = &request.span_id {
        facts.push(format!("span `{span_id}`"));
    }
    if let (Some(error), Some(status)) = (&request.error, request.status)
        && status != 0
    {
        facts.push(format!("error: {}", truncate(error, 200)));
    }
    let _ = writeln!(out, "{}\n", facts.join(" · "));
    for (title, headers, body) in [
        ("Request", &request.request_headers, &request.request_body),
        ("Response", &request.response_headers, &request.response_body),
    ] {
        if !headers.is_empty() {
            let text: String =
                headers.iter().map(|(name, value)| format!("{name}: {}\n", truncate(value, 300))).collect();
            let _ = writeln!(out, "{title} headers:");
            fence(&mut out, "http", &text);
        }
        if let Some(body) = body {
            let cut =
                if body.cut { format!(" (first bytes of {}, cut at the body cap)", body.bytes) } else { String::new() };
            let _ = writeln!(out, "{title} body{cut}:");
            let language = if body.text.trim_start().starts_with(['{', '[']) { "json" } else { "text" };
            fence(&mut out, language, &body.text);
        }
    }
    out.push('\n');
    out
}

fn timeline_line(item: &TimelineItem, start_ms: f64) -> String {
    let mut line = format!("{} [{}] {}", offset(start_ms, item.time_ms), tag(item.kind), truncate(&item.label, 160));
    if let Some(service) = &item.service {
        let _ = write!(line, " ({service})");
    }
    if let Some(ms) = item.duration_ms {
        let _ = write!(line, " {}", duration(ms));
    }
    if item.status == Some("error") {
        line.push_str(" ERROR");
    }
    if let Some(trace_id) = &item.trace_id {
        let _ = write!(line, " trace `{trace_id}`");
    }
    line.push('\n');
    line
}

fn timeline_rank(item: &TimelineItem) -> u8 {
    match (item.status, tag(item.kind)) {
        (Some("error"), _) | (_, "error") => 0,
        (_, "action" | "signal") => 1,
        (_, "request" | "trace") => 2,
        _ => 3,
    }
}

/// Fills a section with entries (in priority order) while they fit in `allowance` characters, then
/// says what is left out. Entries keep `(order, text)`; the chosen ones are printed by `order`.
fn fill(entries: Vec<(f64, String)>, allowance: usize, what: &str, more: &str) -> (String, usize, usize) {
    let total = entries.len();
    let note_room = 200 + more.len();
    let mut used = 0;
    let mut chosen = Vec::new();
    for (order, text) in entries {
        if used + text.len() + note_room > allowance {
            continue;
        }
        used += text.len();
        chosen.push((order, text));
    }
    let shown = chosen.len();
    chosen.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: String = chosen.into_iter().map(|(_, text)| text).collect();
    if shown < total {
        let _ = writeln!(out, "\n_showing {shown} of {total} {what}; {more}_");
    }
    (out, shown, total)
}

/// The markdown of a session within `options.max_tokens` (≈ characters / 4).
pub fn markdown(data: &ExportData, options: &Options) -> String {
    let session = &data.session;
    let start = data.start_ms();
    let short = session.short_id.to_hex();
    let budget = options.max_chars();
    let follow_bigger =
        format!("more: `sessiontrace export {short} --max-tokens {}`", options.max_tokens.saturating_mul(4).max(1000));

    let requests = failing_requests(data, options.max_body);
    let (steps, from_actions) = steps(data);

    // Header and summary: always shown.
    let mut header = String::new();
    let title = session.name.as_deref().map(|n| truncate(n, 120)).unwrap_or_else(|| "(unnamed)".into());
    let _ = writeln!(header, "# Session {short}: {title}\n");
    // The session lasts until it stopped or until the last thing it holds, whichever is later.
    let last_item = data.timeline.iter().map(|i| i.time_ms + i.duration_ms.unwrap_or(0.0)).reduce(f64::max);
    let end_ms = match (session.stopped_at_ms.map(|ms| ms as f64), last_item) {
        (Some(stopped), Some(last)) => Some(stopped.max(last)),
        (stopped, last) => stopped.or(last),
    };
    let _ = writeln!(
        header,
        "- id: `{}` ({}, {})",
        session.id,
        session.kind.as_str(),
        if session.stopped_at_ms.is_some() { "stopped" } else { "recording" }
    );
    if !session.user.is_null() {
        let user = match &session.user {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        let _ = writeln!(header, "- user: {}", truncate(&user, 200));
    }
    let duration_text = end_ms.map(|end| duration(end - start)).unwrap_or_else(|| "-".into());
    let _ = writeln!(
        header,
        "- started: {}, duration {duration_text}",
        sessiontrace_query::sessions::rfc3339(session.started_at_ms)
    );
    let services = if data.stats.services.is_empty() { "-".to_string() } else { data.stats.services.join(", ") };
    let _ = writeln!(header, "- services: {}", truncate(&services, 400));
    let stats = &data.stats;
    let _ = writeln!(
        header,
        "- counts: {} traces, {} spans, {} logs, {} replay events, {} errors",
        stats.traces, stats.spans, stats.logs, stats.events, stats.errors
    );
    let base = options.ui_base.as_deref().unwrap_or("").trim_end_matches('/');
    let _ = writeln!(header, "- UI: {base}/sessions/{}\n", session.id);
    let mut summary = format!("**Summary:** {} errors; {} failing requests", stats.errors, requests.len());
    if let Some(first) = requests.first() {
        let status = first.status.map_or_else(|| "network error".to_string(), |s| s.to_string());
        let _ = write!(summary, " (first: {} {} → {status})", first.method, truncate(&first.url, 80));
    }
    if let Some(slowest) = data.slowest_trace() {
        let name = slowest.root.as_ref().map_or("trace", |(name, _)| name.as_str());
        let _ = write!(
            summary,
            "; slowest trace `{}` {} ({})",
            truncate(name, 80),
            duration((slowest.end_unix_nano - slowest.start_unix_nano) as f64 / 1_000_000.0),
            hex::encode(slowest.trace_id)
        );
    }
    summary.push_str(".\n\n");
    header.push_str(&summary);

    let footer_room = 200;
    let mut remaining = budget.saturating_sub(header.len() + footer_room);

    // Frustration signals first: few lines, each naming its cause; up to a quarter of the budget.
    let signal_entries: Vec<(f64, String)> = crate::signals::entries(data, options)
        .iter()
        .enumerate()
        .map(|(i, entry)| (i as f64, crate::signals::markdown_line(entry)))
        .collect();
    let (signals_text, _, _) = fill(
        signal_entries,
        remaining / 4,
        "frustration signals",
        &format!("all: `signal_list` of `GET /api/sessions/{short}`"),
    );
    remaining = remaining.saturating_sub(signals_text.len());

    let step_entries: Vec<(f64, String)> = steps
        .iter()
        .enumerate()
        .map(|(i, step)| (i as f64, format!("{}. {} {}\n", i + 1, offset(start, step.time_ms), step.text)))
        .collect();
    let mut log_entries: Vec<(std::cmp::Reverse<i32>, f64, String)> = data
        .logs
        .iter()
        .enumerate()
        .filter(|(_, log)| log.severity_number >= MIN_LOG_SEVERITY)
        .map(|(index, log)| {
            let time = log.time_unix_nano as f64 / 1_000_000.0;
            let level =
                if log.severity_text.is_empty() { "WARN".to_string() } else { log.severity_text.to_uppercase() };
            let mut line = format!("- {} {level} {}: {}", offset(start, time), log.service, truncate(&log.body, 300));
            if let Some(trace_id) = log.trace_id {
                let _ = write!(line, " (trace `{}`)", hex::encode(trace_id));
            }
            line.push('\n');
            (std::cmp::Reverse(log.severity_number), index as f64, line)
        })
        .collect();
    log_entries.sort_by_key(|(rank, _, _)| *rank);
    let log_entries: Vec<(f64, String)> = log_entries.into_iter().map(|(_, order, line)| (order, line)).collect();
    let mut timeline_entries: Vec<(u8, f64, String)> =
        data.timeline.iter().map(|item| (timeline_rank(item), item.time_ms, timeline_line(item, start))).collect();
    timeline_entries.sort_by_key(|(rank, _, _)| *rank);
    let timeline_entries: Vec<(f64, String)> = timeline_entries.into_iter().map(|(_, t, line)| (t, line)).collect();

    // Room kept for the smaller sections (what they need, up to a share each), so that requests and
    // traces, filled first, can take the rest of the budget.
    let need = |entries: &[(f64, String)]| {
        if entries.is_empty() { 0 } else { entries.iter().map(|(_, text)| text.len()).sum::<usize>() + 300 }
    };
    let reserved = need(&step_entries).min(remaining / 10)
        + need(&log_entries).min(remaining / 10)
        + need(&timeline_entries).min(remaining / 5);

    // Failing requests: up to half of what the smaller sections leave.
    let request_entries: Vec<(f64, String)> =
        requests.iter().enumerate().map(|(i, r)| (i as f64, request_block(i + 1, r, start))).collect();
    let (requests_text, _, _) = fill(
        request_entries,
        remaining.saturating_sub(reserved) / 2,
        "failing requests",
        &format!("{follow_bigger}, or `sessiontrace export {short} --max-body BYTES`"),
    );
    remaining = remaining.saturating_sub(requests_text.len());

    // Trace trees of failing and slow traces: the rest but the reserve, shared by the trees.
    let mut traces_text = String::new();
    let trees = data.detailed.len();
    let traces_allowance = remaining.saturating_sub(reserved);
    for (index, (trace, spans)) in data.detailed.iter().enumerate() {
        let share = traces_allowance.saturating_sub(traces_text.len()) / (trees - index).max(1);
        traces_text.push_str(&trace_section(trace, spans, share));
    }
    let undetailed = data.traces.len().saturating_sub(data.detailed.len());
    if undetailed > 0 {
        let _ = writeln!(
            traces_text,
            "_{undetailed} other traces without errors are in the timeline; each: `GET /api/traces/TRACE_ID`_\n"
        );
    }
    remaining = remaining.saturating_sub(traces_text.len());

    // Steps to reproduce, then warn and error logs, then the timeline (errors and actions first).
    let steps_allowance = need(&step_entries).min(remaining * 2 / 5).max(remaining / 10);
    let (steps_text, _, _) = fill(step_entries, steps_allowance, "steps", &format!("all: `sessiontrace show {short}`"));
    remaining = remaining.saturating_sub(steps_text.len());
    let logs_allowance = need(&log_entries).min(remaining / 2).max(remaining / 10);
    let (logs_text, _, _) = fill(
        log_entries,
        logs_allowance,
        "warn/error logs (errors first)",
        &format!("all: `GET /api/sessions/{short}/logs`"),
    );
    remaining = remaining.saturating_sub(logs_text.len());
    let (timeline_text, _, _) = fill(
        timeline_entries,
        remaining,
        "timeline items (errors, then actions, then requests and traces kept first)",
        &format!("all: `sessiontrace show {short}`"),
    );

    let mut out = header;
    let sections = [
        (
            if from_actions {
                "## Steps to reproduce"
            } else {
                "## Steps to reproduce (no recorded browser actions: the session's requests)"
            },
            steps_text,
        ),
        ("## Frustration signals", signals_text),
        ("## Timeline", timeline_text),
        ("## Failing requests", requests_text),
        ("## Traces (failing and slowest; errors and longest spans first)", traces_text),
        ("## Warn and error logs", logs_text),
    ];
    for (title, text) in sections {
        if text.trim().is_empty() {
            continue;
        }
        let _ = writeln!(out, "{title}\n");
        out.push_str(&text);
        if !out.ends_with("\n\n") {
            out.push('\n');
        }
    }
    let footer = format!(
        "---\n_export: ≈{} tokens of a {}-token budget; bodies capped at {} bytes; masked values stay masked._\n",
        estimate_tokens(&out) + 30,
        options.max_tokens,
        options.max_body
    );
    out.push_str(&footer);
    if out.len() > budget {
        // Section titles and a header longer than the budget: cut, and say so.
        let note = format!("\n\n_cut at the {}-token budget; {follow_bigger}_\n", options.max_tokens);
        let mut end = budget.saturating_sub(note.len());
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push_str(&note);
    }
    out
}

fn trace_section(trace: &TraceSummary, spans: &[SpanView], allowance: usize) -> String {
    let trace_id = hex::encode(trace.trace_id);
    let (name, service) = trace.root.clone().unwrap_or_else(|| ("trace".into(), "?".into()));
    let mut out = format!(
        "### `{}` ({service}) {}, {} spans, {} errors\ntrace `{trace_id}`\n\n",
        truncate(&name, 120),
        duration((trace.end_unix_nano - trace.start_unix_nano) as f64 / 1_000_000.0),
        spans.len(),
        trace.error_count,
    );
    let more = format!("all spans: `GET /api/traces/{trace_id}`");
    let note_room = 120 + more.len();
    let budget = allowance.saturating_sub(out.len() + note_room);
    let chosen = choose_spans(spans, |span, depth| span_line(span, depth).len(), budget);
    out.push_str(&tree(spans, &chosen));
    if chosen.len() < spans.len() {
        let _ = writeln!(out, "\n_showing {} of {} spans (errors, then longest); {more}_", chosen.len(), spans.len());
    }
    out.push('\n');
    if chosen.is_empty() && allowance < out.len() {
        return String::new();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, json};
    use sessiontrace_model::ids::ShortId;
    use sessiontrace_model::{CaptureSettings, Session, SessionKind};
    use sessiontrace_query::spans::StatusView;
    use sessiontrace_store::SessionStats;

    const T0: i64 = 1_795_000_000_000;

    fn span(trace: &str, id: usize, parent: Option<usize>, name: &str, start_ms: f64, ms: f64) -> SpanView {
        SpanView {
            trace_id: trace.into(),
            span_id: format!("{id:016x}"),
            parent_span_id: parent.map(|p| format!("{p:016x}")),
            name: name.into(),
            kind: "server",
            service: "payment".into(),
            start_time_unix_nano: String::new(),
            end_time_unix_nano: String::new(),
            start_ms,
            end_ms: start_ms + ms,
            duration_ms: ms,
            status: StatusView { code: "unset", message: String::new() },
            attributes: Map::new(),
            events: vec![],
            links: vec![],
            resource: Map::new(),
            scope: Value::Null,
            session_id: None,
        }
    }

    /// A session with one trace of `spans` spans whose span 1 is a failing payment with captured secrets.
    fn data(spans: usize) -> ExportData {
        let trace = "debdeb1a2b3c4d000000000000000001";
        let start = T0 as f64;
        let mut all = vec![span(trace, 0, None, "POST /api/checkout", start + 100.0, 900.0)];
        let mut pay = span(trace, 1, Some(0), "POST /pay", start + 200.0, 50.0);
        pay.status = StatusView { code: "error", message: "card declined".into() };
        for (key, value) in [
            ("http.request.method", json!("POST")),
            ("url.path", json!("/pay")),
            ("http.response.status_code", json!(402)),
            ("http.request.header.authorization", json!(["Bearer s3cr3t"])),
            ("http.request.body", json!(r#"{"card_number":"4000-0000-0000-0002","amount":12}"#)),
            ("http.response.body", json!(r#"{"error":"card declined"}"#)),
        ] {
            pay.attributes.insert(key.into(), value);
        }
        all.push(pay);
        for id in 2..spans {
            all.push(span(
                trace,
                id,
                Some(id / 7),
                &format!("SELECT {id}"),
                start + 300.0 + id as f64,
                (id % 97) as f64,
            ));
        }
        let summary = TraceSummary {
            trace_id: hex::decode(trace).unwrap().try_into().unwrap(),
            root: Some(("POST /api/checkout".into(), "gateway".into())),
            services: vec!["payment".into()],
            start_unix_nano: (T0 + 100) * 1_000_000,
            end_unix_nano: (T0 + 1000) * 1_000_000,
            span_count: spans as u64,
            error_count: 1,
        };
        let mut click = TimelineItem {
            time_ms: start + 50.0,
            kind: "click",
            label: "click button#pay \"Pay now\"".into(),
            trace_id: None,
            span_id: None,
            service: None,
            duration_ms: None,
            status: None,
            level: None,
            detail: json!({}),
        };
        let mut input = click.clone();
        input.kind = "input";
        input.label = "input input#card".into();
        input.time_ms = start + 20.0;
        let mut network = click.clone();
        network.kind = "network";
        network.label = "POST /api/checkout → 402".into();
        network.time_ms = start + 60.0;
        network.status = Some("error");
        network.detail = json!({"method": "POST", "url": "/api/checkout", "status": 402,
            "request": {"headers": {"Authorization": "Bearer s3cr3t"}, "body": "{\"password\":\"hunter2\"}"}});
        click.time_ms = start + 50.0;
        let signal = sessiontrace_query::signals::SignalView {
            signal: sessiontrace_model::signals::Signal {
                kind: sessiontrace_model::signals::SignalKind::Error,
                time_ms: start + 50.0,
                end_ms: start + 50.0,
                clicks: 1,
                node_id: Some(4),
                selector: "button#pay".into(),
                text: "Pay now".into(),
                cause: Some(sessiontrace_model::signals::SignalCause {
                    kind: "network".into(),
                    label: "POST /api/checkout → 402".into(),
                    status: Some(402),
                    failed: true,
                    duration_ms: Some(900.0),
                    trace_id: Some(trace.into()),
                    ..Default::default()
                }),
            },
            span: None,
        };
        let mut signal_item = click.clone();
        signal_item.kind = "signal";
        signal_item.label = "error click button#pay \"Pay now\" → POST /api/checkout → 402".into();
        signal_item.status = Some("error");
        signal_item.trace_id = Some(trace.into());
        ExportData {
            session: Session {
                id: "5f0c".repeat(8),
                short_id: ShortId::from_hex("1a2b3c4d").unwrap(),
                kind: SessionKind::Manual,
                name: Some("checkout bug".into()),
                user: json!({"id": "ann"}),
                attributes: json!({}),
                tags: vec![],
                capture: CaptureSettings { headers: true, bodies: true },
                started_at_ms: T0,
                stopped_at_ms: Some(T0 + 2000),
                saved_at_ms: None,
            },
            stats: SessionStats { traces: 1, spans: spans as u64, errors: 1, ..Default::default() },
            timeline: vec![input, click, signal_item, network],
            traces: vec![summary.clone()],
            detailed: vec![(summary, all)],
            logs: vec![],
            signals: vec![signal],
            replay: None,
        }
    }

    #[test]
    fn shows_steps_the_failing_payment_and_masks_secrets() {
        let text = markdown(&data(5), &Options::default());
        assert!(text.contains("## Steps to reproduce"), "{text}");
        assert!(text.contains("Type into `input#card` (value ***MASKED***)"), "{text}");
        assert!(text.contains("Click `button#pay \"Pay now\"` → POST /api/checkout → 402 (fails)"), "{text}");
        assert!(text.contains("POST /pay → 402"), "{text}");
        assert!(text.contains(r#"{"card_number":"***MASKED***","amount":12}"#), "{text}");
        assert!(text.contains(r#"{"error":"card declined"}"#), "{text}");
        assert!(text.contains("authorization: ***MASKED***"), "{text}");
        assert!(text.contains("+0.1s [request] POST /api/checkout → 402"), "{text}");
        for secret in ["s3cr3t", "hunter2", "4000-0000"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        let value = crate::json(&data(5), &Options::default());
        assert_eq!(value["schema"], "sessiontrace.export/v1");
        let all = value.to_string();
        for secret in ["s3cr3t", "hunter2", "4000-0000"] {
            assert!(!all.contains(secret), "{secret} in {all}");
        }
    }

    #[test]
    fn carries_the_frustration_signals_with_their_cause_and_moment() {
        let options = Options { ui_base: Some("http://ui".into()), ..Options::default() };
        let text = markdown(&data(5), &options);
        let section =
            text.split("## Frustration signals\n\n").nth(1).expect("the section").split("\n## ").next().unwrap();
        let trace = "debdeb1a2b3c4d000000000000000001";
        let moment = format!("http://ui/sessions/{}?t={}&trace={trace}", "5f0c".repeat(8), T0 + 50);
        assert_eq!(
            section.trim_end(),
            format!(
                "- +0.1s **error click** on `button#pay` \"Pay now\" → POST /api/checkout → 402 (900.0ms), trace \
                 `{trace}` · [open at this moment]({moment})"
            )
        );
        assert!(text.contains("+0.1s [signal] error click button#pay"), "{text}");
        assert!(text.find("## Steps to reproduce") < text.find("## Frustration signals"), "{text}");
        let value = crate::json(&data(5), &options);
        let signals = value["signals"].as_array().unwrap();
        assert_eq!(signals.len(), 1);
        assert_eq!(signals[0]["kind"], "error");
        assert_eq!(signals[0]["offset"], "+0.1s");
        assert_eq!(signals[0]["cause"]["trace_id"], trace);
        assert_eq!(signals[0]["link"], moment);
        assert_eq!(value["timeline"][2]["tag"], "signal");
    }

    #[test]
    fn many_spans_stay_within_the_budget_and_say_so() {
        let data = data(10_000);
        for max_tokens in [1_000, 8_000, 20_000] {
            let options = Options { max_tokens, ..Options::default() };
            let text = markdown(&data, &options);
            assert!(text.len() <= options.max_chars(), "{} > {}", text.len(), options.max_chars());
            assert!(text.contains("POST /pay"), "{text}");
            assert!(text.contains("of 10000 spans (errors, then longest); all spans: `GET /api/traces/"), "{text}");
        }
        let value = crate::json(&data, &Options::default());
        assert_eq!(value["traces"][0]["spans_shown"], 80);
        assert_eq!(value["truncated"][0]["total"], 10_000);
    }
}
