//! `sessiontrace loadgen`: realistic OTLP traffic against a running server (or any OTLP receiver), encoded
//! before the clock starts. With `--api` it can first create sessions to attach traces to, and afterwards
//! check through `/api/stats` that every accepted span is stored.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use sessiontrace_loadgen::drive::{self, DriveSpec};
use sessiontrace_loadgen::workload::{self, Protocol, WorkloadSpec};

use crate::client::call;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ProtocolArg {
    HttpProtobuf,
    HttpJson,
    Grpc,
}

#[derive(Args, Debug)]
pub struct LoadgenArgs {
    /// Wire protocol.
    #[arg(long, value_enum, default_value = "http-protobuf")]
    protocol: ProtocolArg,
    /// OTLP endpoint base URL [default: http://127.0.0.1:4318, or :4317 for grpc].
    #[arg(long)]
    endpoint: Option<String>,
    /// Concurrent connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Target spans per second; 0 sends flat out.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Seconds to run (default 10 unless --spans is given).
    #[arg(long)]
    duration: Option<f64>,
    /// Spans to send in all.
    #[arg(long)]
    spans: Option<u64>,
    #[arg(long, default_value_t = 200)]
    spans_per_request: usize,
    #[arg(long, default_value_t = 20)]
    spans_per_trace: usize,
    /// Share of traces that belong to a session.
    #[arg(long, default_value_t = 0.1)]
    session_share: f64,
    /// Share of traces with an error.
    #[arg(long, default_value_t = 0.05)]
    error_share: f64,
    /// Gzip request bodies.
    #[arg(long)]
    gzip: bool,
    /// The server's API (for --create-sessions and --verify).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    api: String,
    /// Create this many sessions through the API first and spread session traces over them.
    #[arg(long, default_value_t = 0)]
    create_sessions: usize,
    /// A file of session short ids (one per line) to spread session traces over.
    #[arg(long)]
    sessions_file: Option<PathBuf>,
    /// After the run, check through the API that every accepted span is stored.
    #[arg(long)]
    verify: bool,
    /// Print the summary as JSON (stdout) instead of text.
    #[arg(long)]
    json: bool,
    /// No progress lines.
    #[arg(long)]
    quiet: bool,
    /// An ingest key, sent on every request (a server with authentication on).
    #[arg(long, env = "SESSIONTRACE_INGEST_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Append one JSON line per --interval seconds to this file: accepted spans/s, refusals, errors and
    /// latency percentiles of that interval (for soaks).
    #[arg(long)]
    interval_log: Option<PathBuf>,
    /// Seconds per --interval-log line.
    #[arg(long, default_value_t = 60.0)]
    interval: f64,
    /// A read key for --verify's counts (a server with authentication on).
    #[arg(long, env = "SESSIONTRACE_READ_KEY", hide_env_values = true)]
    read_key: Option<String>,
    /// Write this many encoded request bodies (fresh trace ids each) to --bodies-dir as body-N.bin and
    /// exit without sending: for other load tools (bench/ingest.sh --tool wrk).
    #[arg(long, requires = "bodies_dir")]
    write_bodies: Option<usize>,
    /// Where --write-bodies writes.
    #[arg(long)]
    bodies_dir: Option<PathBuf>,
}

/// Writes `count` bodies cycling through `templates`, each with its trace ids made unique.
fn write_bodies(
    templates: &[workload::Template],
    protocol: Protocol,
    count: usize,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let salt = workload::new_salt();
    for number in 0..count {
        let template = &templates[number % templates.len()];
        let mut body = template.body.clone();
        workload::patch_trace_ids(template, &mut body, protocol, number as u64, salt);
        let path = dir.join(format!("body-{number}.bin"));
        std::fs::write(&path, body).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

async fn stored_spans(api: &str, read_key: Option<&str>) -> anyhow::Result<u64> {
    let mut request = reqwest::Client::new().get(format!("{api}/api/stats"));
    if let Some(key) = read_key {
        request = request.bearer_auth(key);
    }
    let stats = call(request).await?;
    stats["spans"].as_u64().context("/api/stats has no span count")
}

pub async fn run(args: LoadgenArgs) -> anyhow::Result<ExitCode> {
    let protocol = match args.protocol {
        ProtocolArg::HttpProtobuf => Protocol::HttpProtobuf,
        ProtocolArg::HttpJson => Protocol::HttpJson,
        ProtocolArg::Grpc => Protocol::Grpc,
    };
    let endpoint = args.endpoint.clone().unwrap_or_else(|| {
        if protocol == Protocol::Grpc { "http://127.0.0.1:4317".into() } else { "http://127.0.0.1:4318".into() }
    });
    let mut session_short_ids: Vec<String> = Vec::new();
    if let Some(file) = &args.sessions_file {
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        session_short_ids.extend(text.lines().map(str::trim).filter(|l| l.len() == 8).map(str::to_string));
    }
    if args.create_sessions > 0 {
        let client = reqwest::Client::new();
        for number in 0..args.create_sessions {
            let body = serde_json::json!({"name": format!("loadgen session {number}"), "kind": "backend", "user": format!("user-{}", number % 97)});
            let mut request = client.post(format!("{}/api/sessions", args.api)).json(&body);
            if let Some(key) = &args.key {
                request = request.bearer_auth(key);
            }
            let session = call(request).await?;
            session_short_ids.push(session["short_id"].as_str().unwrap_or_default().to_string());
        }
        if !args.quiet {
            eprintln!("created {} sessions", args.create_sessions);
        }
    }
    let spec = WorkloadSpec {
        spans_per_request: args.spans_per_request,
        spans_per_trace: args.spans_per_trace,
        session_share: args.session_share,
        error_share: args.error_share,
        session_short_ids,
        ..Default::default()
    };
    let templates = workload::templates(&spec, protocol);
    if let (Some(count), Some(dir)) = (args.write_bodies, &args.bodies_dir) {
        let span_count = templates[0].span_count;
        anyhow::ensure!(templates.iter().all(|t| t.span_count == span_count), "templates differ in span count");
        write_bodies(&templates, protocol, count, dir)?;
        println!("{span_count}");
        return Ok(ExitCode::SUCCESS);
    }
    let bytes: usize = templates.iter().map(|t| t.body.len()).sum();
    let spans: usize = templates.iter().map(|t| t.span_count).sum();
    if !args.quiet {
        eprintln!("{} request templates, {} bytes per span encoded", templates.len(), bytes / spans.max(1));
    }
    let before = if args.verify { Some(stored_spans(&args.api, args.read_key.as_deref()).await?) } else { None };
    let duration = match (args.duration, args.spans) {
        (Some(seconds), _) => Some(Duration::from_secs_f64(seconds)),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(10)),
    };
    let drive_spec = DriveSpec {
        protocol,
        endpoint,
        connections: args.connections,
        rate: args.rate,
        duration,
        max_spans: args.spans,
        gzip: args.gzip,
        progress: !args.quiet,
        key: args.key.clone(),
        interval_log: args
            .interval_log
            .clone()
            .map(|path| drive::IntervalLog { path, every: Duration::from_secs_f64(args.interval.max(1.0)) }),
    };
    let report = drive::run(templates, drive_spec).await?;
    let mut summary = report.to_json();
    let mut verified_ok = true;
    if let Some(before) = before {
        let stored = stored_spans(&args.api, args.read_key.as_deref()).await? - before;
        verified_ok = stored == report.spans_accepted;
        summary["spans_stored"] = stored.into();
        summary["verified"] = verified_ok.into();
    }
    if args.json {
        println!("{summary}");
    } else {
        println!("spans sent      {}", report.spans_sent);
        println!(
            "spans accepted  {} ({} requests, {} refused to retry later, {} errors)",
            report.spans_accepted, report.requests, report.refused, report.errors
        );
        if let Some(refusal) = &report.first_refusal {
            println!("first refusal   {refusal}");
        }
        if let Some(error) = &report.first_error {
            println!("first error     {error}");
        }
        println!(
            "throughput      {:.0} accepted spans/s over {:.1}s",
            report.accepted_per_second(),
            report.elapsed.as_secs_f64()
        );
        println!(
            "latency         p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms (accepted requests)",
            report.percentile_ms(0.5),
            report.percentile_ms(0.9),
            report.percentile_ms(0.99),
            report.percentile_ms(1.0)
        );
        if let Some(stored) = summary.get("spans_stored") {
            println!(
                "spans stored    {stored} ({})",
                if verified_ok { "all accepted spans are stored" } else { "MISMATCH" }
            );
        }
    }
    Ok(if verified_ok && report.errors == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
