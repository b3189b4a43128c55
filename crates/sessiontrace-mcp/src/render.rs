//! Markdown of the tools' answers (lists, trace trees, spans, logs, actions) and the budget cut.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use serde_json::Value;
use sessiontrace_export::{duration, truncate};
use sessiontrace_model::masking::MaskingRules;

/// Cuts a text at a line boundary so that it stays within `max_tokens` (≈ characters / 4), saying so
/// and how to get the rest.
pub fn fit(text: String, max_tokens: usize, more: &str) -> String {
    let budget = max_tokens.saturating_mul(4);
    if text.chars().count() <= budget {
        return text;
    }
    let note = format!("\n_cut at the {max_tokens}-token budget; {more}_\n");
    let room = budget.saturating_sub(note.chars().count());
    let mut out = String::new();
    let mut used = 0;
    for line in text.split_inclusive('\n') {
        let length = line.chars().count();
        if used + length > room {
            break;
        }
        used += length;
        out.push_str(line);
    }
    if out.is_empty() {
        out = text.chars().take(room).collect();
    }
    out.push_str(&note);
    out
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// The sessions list as a table.
pub fn sessions(page: &Value, offset: usize) -> String {
    let sessions = page["sessions"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let total = page["total"].as_u64().unwrap_or(sessions.len() as u64);
    let mut out =
        String::from("| short id | name | user | started | state | traces | spans | errors | signals | services |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for session in sessions {
        let counts = &session["counts"];
        let services: Vec<String> = session["services"].as_array().into_iter().flatten().map(text_of).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            text_of(&session["short_id"]),
            truncate(&text_of(&session["name"]), 60).replace('|', "/"),
            truncate(&text_of(&session["user"]), 40).replace('|', "/"),
            text_of(&session["started_at"]),
            if session["live"] == true { "recording" } else { "stopped" },
            counts["traces"],
            counts["spans"],
            counts["errors"],
            signal_counts(&session["signals"]),
            truncate(&services.join(", "), 80),
        );
    }
    let shown = sessions.len();
    let _ = write!(out, "\nshowing {} to {} of {total} sessions (newest first)", offset + 1.min(shown), offset + shown);
    if ((offset + shown) as u64) < total {
        let _ = write!(out, "; next page: `cursor: \"{}\"`", offset + shown);
    }
    out.push('\n');
    out
}

/// `rage 1, error 2` (kinds with none left out), `0` for none, `-` from a store that keeps none.
fn signal_counts(signals: &Value) -> String {
    if !signals.is_object() {
        return "-".into();
    }
    let kinds: Vec<String> = ["rage", "dead", "error"]
        .into_iter()
        .filter_map(|kind| signals[kind].as_u64().filter(|&n| n > 0).map(|n| format!("{kind} {n}")))
        .collect();
    if kinds.is_empty() { "0".into() } else { kinds.join(", ") }
}

fn is_error(span: &Value) -> bool {
    span["status"]["code"] == "error"
}

fn span_line(span: &Value, depth: usize) -> String {
    let mut line = format!(
        "{}- {} `{}` {} {} span `{}`",
        "  ".repeat(depth.min(12)),
        text_of(&span["service"]),
        truncate(&text_of(&span["name"]), 120),
        text_of(&span["kind"]),
        duration(span["duration_ms"].as_f64().unwrap_or(0.0)),
        text_of(&span["span_id"]),
    );
    let status = span["attributes"]["http.response.status_code"].as_u64();
    if let Some(status) = status {
        let _ = write!(line, " → {status}");
    }
    if is_error(span) {
        line.push_str(" **ERROR**");
        if let Some(message) = span["status"]["message"].as_str().filter(|m| !m.is_empty()) {
            let _ = write!(line, ": {}", truncate(message, 120));
        }
    }
    line.push('\n');
    line
}

/// Spans of a trace chosen by score (errors, then duration) up to `max_spans`, each with its ancestors;
/// restricted to the subtree of `under` and to errors when asked. Returns the chosen span ids in trace
/// order and how many spans were eligible.
pub fn choose(spans: &[Value], under: Option<&str>, errors_only: bool, max_spans: usize) -> (Vec<usize>, usize) {
    let id = |span: &Value| span["span_id"].as_str().unwrap_or_default().to_string();
    let index: HashMap<String, usize> = spans.iter().enumerate().map(|(i, s)| (id(s), i)).collect();
    let parent = |i: usize| spans[i]["parent_span_id"].as_str().and_then(|p| index.get(p)).copied();
    let ancestors = |mut i: usize| {
        let mut path = vec![i];
        while let Some(p) = parent(i) {
            if path.len() >= sessiontrace_export::MAX_DEPTH {
                break;
            }
            path.push(p);
            i = p;
        }
        path
    };
    let eligible: Vec<usize> = (0..spans.len())
        .filter(|&i| under.is_none_or(|root| ancestors(i).iter().any(|&a| id(&spans[a]) == root)))
        .filter(|&i| !errors_only || is_error(&spans[i]))
        .collect();
    let mut order = eligible.clone();
    order.sort_by(|&a, &b| {
        is_error(&spans[b]).cmp(&is_error(&spans[a])).then(
            spans[b]["duration_ms"].as_f64().unwrap_or(0.0).total_cmp(&spans[a]["duration_ms"].as_f64().unwrap_or(0.0)),
        )
    });
    let mut chosen: HashSet<usize> = HashSet::new();
    for i in order {
        let path: Vec<usize> = ancestors(i).into_iter().filter(|a| !chosen.contains(a)).collect();
        if chosen.len() + path.len() > max_spans {
            continue;
        }
        chosen.extend(path);
    }
    let mut chosen: Vec<usize> = chosen.into_iter().collect();
    chosen.sort_unstable();
    (chosen, eligible.len())
}

/// A trace tree of the chosen spans.
pub fn tree(spans: &[Value], chosen: &[usize]) -> String {
    let ids: HashSet<&str> = chosen.iter().filter_map(|&i| spans[i]["span_id"].as_str()).collect();
    let mut children: HashMap<Option<&str>, Vec<usize>> = HashMap::new();
    for &i in chosen {
        let parent = spans[i]["parent_span_id"].as_str().filter(|p| ids.contains(p));
        children.entry(parent).or_default().push(i);
    }
    let mut out = String::new();
    let mut stack: Vec<(usize, usize)> = children.get(&None).into_iter().flatten().rev().map(|&i| (i, 0)).collect();
    while let Some((i, depth)) = stack.pop() {
        out.push_str(&span_line(&spans[i], depth));
        if let Some(kids) = children.get(&spans[i]["span_id"].as_str()) {
            stack.extend(kids.iter().rev().map(|&kid| (kid, depth + 1)));
        }
    }
    out
}

/// Every attribute, event and link of one span, captured headers and bodies masked again and capped.
pub fn span(span: &Value, max_body: usize) -> String {
    let rules = MaskingRules::default();
    let attributes = span["attributes"].as_object().cloned().unwrap_or_default();
    let attributes = sessiontrace_export::mask_attributes(&rules, &attributes, max_body);
    let mut out = format!(
        "# Span `{}` {}\n\n- trace `{}`, parent `{}`\n- service {}, kind {}, {}\n- status {}{}\n",
        truncate(&text_of(&span["name"]), 200),
        text_of(&span["span_id"]),
        text_of(&span["trace_id"]),
        text_of(&span["parent_span_id"]),
        text_of(&span["service"]),
        text_of(&span["kind"]),
        duration(span["duration_ms"].as_f64().unwrap_or(0.0)),
        text_of(&span["status"]["code"]),
        span["status"]["message"].as_str().filter(|m| !m.is_empty()).map(|m| format!(": {m}")).unwrap_or_default(),
    );
    out.push_str("\n## Attributes\n\n");
    let mut bodies = Vec::new();
    for (key, value) in &attributes {
        if key == "http.request.body" || key == "http.response.body" {
            bodies.push((key.clone(), text_of(value)));
            continue;
        }
        let _ = writeln!(out, "- `{key}`: {}", truncate(&text_of(value), 500));
    }
    for (key, body) in bodies {
        let _ = writeln!(out, "\n`{key}`:\n```\n{}\n```", body.replace("```", "'''"));
    }
    let events = span["events"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if !events.is_empty() {
        out.push_str("\n## Events\n\n");
        for event in events.iter().take(50) {
            let _ = writeln!(out, "- {} {}", text_of(&event["name"]), truncate(&event["attributes"].to_string(), 1000));
        }
        if events.len() > 50 {
            let _ = writeln!(out, "- … {} more events", events.len() - 50);
        }
    }
    let links = span["links"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    for link in links.iter().take(20) {
        let _ = writeln!(out, "- link: trace `{}` span `{}`", text_of(&link["trace_id"]), text_of(&link["span_id"]));
    }
    let _ = writeln!(out, "\nresource: {}", truncate(&span["resource"].to_string(), 500));
    out
}

/// Log records, one line each.
pub fn logs(logs: &[&Value], start_ms: Option<f64>) -> String {
    let mut out = String::new();
    for log in logs {
        let time = log["time_ms"].as_f64().unwrap_or(0.0);
        let when = match start_ms {
            Some(start) => sessiontrace_export::offset(start, time),
            None => format!("{time:.0}ms"),
        };
        let level = log["severity_text"].as_str().filter(|s| !s.is_empty()).unwrap_or("INFO").to_uppercase();
        let mut line =
            format!("- {when} {level} {}: {}", text_of(&log["service"]), truncate(&text_of(&log["body"]), 500));
        if let Some(trace_id) = log["trace_id"].as_str() {
            let _ = write!(line, " (trace `{trace_id}`)");
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// OpenTelemetry severity number of a level name.
pub fn severity_number(level: &str) -> Option<i64> {
    Some(match level.to_ascii_lowercase().as_str() {
        "trace" => 1,
        "debug" => 5,
        "info" => 9,
        "warn" | "warning" => 13,
        "error" => 17,
        "fatal" => 21,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fit_cuts_at_lines_and_says_so() {
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        let cut = fit(text, 100, "more: ask with max_tokens 1000");
        assert!(cut.chars().count() <= 400, "{}", cut.len());
        assert!(cut.ends_with("_cut at the 100-token budget; more: ask with max_tokens 1000_\n"));
        assert_eq!(fit("short".into(), 100, ""), "short");
    }

    #[test]
    fn sessions_show_their_signal_counts() {
        let page = json!({"total": 3, "sessions": [
            {"short_id": "1a2b3c4d", "signals": {"rage": 1, "dead": 0, "error": 2}, "counts": {}},
            {"short_id": "2b3c4d5e", "signals": {"rage": 0, "dead": 0, "error": 0}, "counts": {}},
            {"short_id": "3c4d5e6f", "signals": null, "counts": {}}]});
        let table = sessions(&page, 0);
        let cells: Vec<&str> = table.lines().skip(2).take(3).map(|row| row.split(" | ").nth(8).unwrap()).collect();
        assert_eq!(cells, ["rage 1, error 2", "0", "-"], "{table}");
    }

    #[test]
    fn choose_keeps_errors_with_their_ancestors() {
        let spans: Vec<Value> = (0..100)
            .map(|i| {
                json!({"span_id": format!("{i}"), "parent_span_id": if i == 0 { Value::Null } else { json!(format!("{}", (i - 1) / 3)) },
                    "duration_ms": i, "status": {"code": if i == 70 { "error" } else { "unset" }}})
            })
            .collect();
        let (chosen, total) = choose(&spans, None, false, 10);
        assert_eq!(total, 100);
        assert!(chosen.len() <= 10);
        // 70 → 23 → 7 → 2 → 0
        for i in [70, 23, 7, 2, 0] {
            assert!(chosen.contains(&i), "{chosen:?}");
        }
        let (errors, eligible) = choose(&spans, None, true, 100);
        assert_eq!(eligible, 1);
        assert_eq!(errors, vec![0, 2, 7, 23, 70]);
    }
}
