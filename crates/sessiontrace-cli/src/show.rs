//! `sessiontrace show ID`: the session's timeline, then each trace as an indented tree with durations.

use std::collections::HashMap;
use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

use crate::client::{ServerArg, call};

#[derive(Args)]
pub struct ShowArgs {
    /// Session id or short id.
    id: String,
    #[command(flatten)]
    server: ServerArg,
}

fn duration(ms: f64) -> String {
    if ms >= 1000.0 { format!("{:.2}s", ms / 1000.0) } else { format!("{ms:.1}ms") }
}

pub async fn run(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let client = reqwest::Client::new();
    let server = &args.server;
    let timeline = call(server.get(&client, &format!("/api/sessions/{}/timeline", args.id))).await?;
    let session = &timeline["session"];
    let counts = &session["counts"];
    println!(
        "session {} {} ({}, {})",
        session["short_id"].as_str().unwrap_or_default(),
        session["name"].as_str().map(|n| format!("{n:?}")).unwrap_or_default(),
        session["kind"].as_str().unwrap_or_default(),
        if session["live"].as_bool() == Some(true) { "recording" } else { "stopped" }
    );
    println!("  id       {}", session["id"].as_str().unwrap_or_default());
    println!("  started  {}", session["started_at"].as_str().unwrap_or_default());
    println!(
        "  counts   {} traces, {} spans, {} logs, {} replay events, {} errors",
        counts["traces"], counts["spans"], counts["logs"], counts["events"], counts["errors"]
    );
    let services: Vec<&str> = session["services"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    println!("  services {}", if services.is_empty() { "-".to_string() } else { services.join(", ") });

    let start = session["started_at_ms"].as_f64().unwrap_or(0.0);
    println!("\ntimeline");
    for item in timeline["items"].as_array().into_iter().flatten() {
        let offset = (item["time_ms"].as_f64().unwrap_or(start) - start) / 1000.0;
        let mut line = format!(
            "  {offset:+9.3}s  {:<10}  {}",
            item["kind"].as_str().unwrap_or_default(),
            item["label"].as_str().unwrap_or_default()
        );
        if let Some(service) = item["service"].as_str() {
            line.push_str(&format!("  [{service}]"));
        }
        if let Some(ms) = item["duration_ms"].as_f64() {
            line.push_str(&format!("  {}", duration(ms)));
        }
        if item["status"].as_str() == Some("error") {
            line.push_str("  ERROR");
        }
        println!("{line}");
    }

    let analysis = call(server.get(&client, &format!("/api/sessions/{}/analysis", args.id))).await?;
    print_completeness(&analysis["completeness"], start);

    let traces = call(server.get(&client, &format!("/api/sessions/{}/traces", args.id))).await?;
    for trace in traces["traces"].as_array().into_iter().flatten() {
        let trace_id = trace["trace_id"].as_str().unwrap_or_default();
        let detail = call(server.get(&client, &format!("/api/traces/{trace_id}"))).await?;
        println!(
            "\ntrace {trace_id}  {} spans  {}",
            trace["span_count"],
            duration(trace["duration_ms"].as_f64().unwrap_or(0.0))
        );
        print_tree(detail["spans"].as_array().map(Vec::as_slice).unwrap_or(&[]));
    }
    Ok(ExitCode::SUCCESS)
}

/// What the session's backend picture is missing (see `GET /api/sessions/{id}/analysis`).
fn print_completeness(facts: &Value, start_ms: f64) {
    let list = |name: &str| facts[name].as_array().cloned().unwrap_or_default();
    let (orphans, untraced, late, skew) = (list("orphans"), list("untraced_calls"), list("after_stop"), list("skew"));
    println!("\ncompleteness");
    if orphans.is_empty() && untraced.is_empty() && late.is_empty() && skew.is_empty() {
        println!(
            "  complete: every parent span arrived, every browser call has backend spans, no span after the stop, no clock skew"
        );
    }
    if let Some(by_service) = facts["orphans_by_service"].as_object().filter(|m| !m.is_empty()) {
        let parts: Vec<String> = by_service.iter().map(|(service, n)| format!("{service} {n}")).collect();
        println!("  orphan spans (parent never arrived): {}", parts.join(", "));
    }
    for call in &untraced {
        let offset = (call["time_ms"].as_f64().unwrap_or(start_ms) - start_ms) / 1000.0;
        println!(
            "  browser call without backend spans: {offset:+.3}s {} (trace {})",
            call["label"].as_str().unwrap_or_default(),
            call["trace_id"].as_str().unwrap_or_default()
        );
    }
    if !late.is_empty() {
        println!("  spans that started after the session stopped: {}", late.len());
    }
    for pair in &skew {
        println!(
            "  clock skew {} -> {}: up to {:.1}ms ({} spans)",
            pair["parent_service"].as_str().unwrap_or_default(),
            pair["child_service"].as_str().unwrap_or_default(),
            pair["max_ms"].as_f64().unwrap_or_default(),
            pair["spans"]
        );
    }
    if facts["truncated"] == true {
        println!("  (read the first {} spans only)", facts["spans_read"]);
    }
}

/// Prints spans as a tree; spans whose parent was not received are shown as roots.
fn print_tree(spans: &[Value]) {
    let ids: std::collections::HashSet<&str> = spans.iter().filter_map(|s| s["span_id"].as_str()).collect();
    let mut children: HashMap<Option<&str>, Vec<&Value>> = HashMap::new();
    for span in spans {
        let parent = span["parent_span_id"].as_str().filter(|p| ids.contains(p));
        children.entry(parent).or_default().push(span);
    }
    fn walk(span: &Value, prefix: &str, last: bool, children: &HashMap<Option<&str>, Vec<&Value>>) {
        let branch = if last { "└─ " } else { "├─ " };
        let error = if span["status"]["code"].as_str() == Some("error") { "  ERROR" } else { "" };
        println!(
            "{prefix}{branch}{:<14} {}  {}{error}",
            span["service"].as_str().unwrap_or_default(),
            span["name"].as_str().unwrap_or_default(),
            duration(span["duration_ms"].as_f64().unwrap_or(0.0))
        );
        let child_prefix = format!("{prefix}{}", if last { "   " } else { "│  " });
        let kids = children.get(&span["span_id"].as_str()).map(Vec::as_slice).unwrap_or(&[]);
        for (index, child) in kids.iter().enumerate() {
            walk(child, &child_prefix, index + 1 == kids.len(), children);
        }
    }
    let roots = children.get(&None).map(Vec::as_slice).unwrap_or(&[]);
    for (index, root) in roots.iter().enumerate() {
        walk(root, "  ", index + 1 == roots.len(), &children);
    }
}
