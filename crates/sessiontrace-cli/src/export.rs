//! `sessiontrace export SESSION`: the session as markdown or JSON (`GET /api/sessions/{id}/export`),
//! printed or written to a file, for a ticket or an AI assistant.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde_json::Value;

use crate::client::ServerArg;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ExportFormat {
    Md,
    Json,
}

#[derive(Args)]
pub struct ExportArgs {
    /// Session id or short id.
    session: String,
    /// Markdown for people and assistants, or JSON (schema sessiontrace.export/v1).
    #[arg(long, value_enum, default_value = "md")]
    format: ExportFormat,
    /// Token budget (≈ characters / 4).
    #[arg(long, default_value_t = 8_000)]
    max_tokens: usize,
    /// Cap of each captured request or response body, in bytes.
    #[arg(long, default_value_t = 2_048)]
    max_body: usize,
    /// Include the replay events (JSON only).
    #[arg(long)]
    replay: bool,
    /// Write to this file instead of stdout.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    #[command(flatten)]
    server: ServerArg,
}

pub async fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let format = match args.format {
        ExportFormat::Md => "md",
        ExportFormat::Json => "json",
    };
    let query = [
        ("format", format.to_string()),
        ("max_tokens", args.max_tokens.to_string()),
        ("max_body", args.max_body.to_string()),
        ("replay", args.replay.to_string()),
    ];
    let client = reqwest::Client::new();
    let response = args
        .server
        .get(&client, &format!("/api/sessions/{}/export", args.session))
        .query(&query)
        .send()
        .await
        .context("cannot reach the sessiontrace server (is `sessiontrace serve` running?)")?;
    let status = response.status();
    let text = response.text().await.context("cannot read the export")?;
    if !status.is_success() {
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|body| body.get("error").and_then(Value::as_str).map(str::to_string))
            .unwrap_or(text);
        bail!("server answered {status}: {message}");
    }
    match args.out {
        Some(path) => {
            std::fs::write(&path, &text).with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {} ({} bytes, ≈{} tokens)", path.display(), text.len(), text.chars().count().div_ceil(4));
        }
        None => {
            use std::io::Write;
            std::io::stdout().write_all(text.as_bytes())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
