//! `sessiontrace session start|stop` and `sessiontrace sessions`: small calls to a running server.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::Value;

/// Where the server's API is, and the credential to use.
#[derive(Args, Debug, Clone)]
pub struct ServerArg {
    /// The server's API address.
    #[arg(long, env = "SESSIONTRACE_SERVER", default_value = "http://127.0.0.1:8080", global = true)]
    pub server: String,
    /// An API key (read, ingest or admin) when the server has authentication on.
    #[arg(long, env = "SESSIONTRACE_KEY", hide_env_values = true, global = true)]
    pub key: Option<String>,
    /// The project to use (a key implies its own project; naming another is refused).
    #[arg(long, env = "SESSIONTRACE_PROJECT", global = true)]
    pub project: Option<String>,
}

impl ServerArg {
    /// A request to `path` on the server, with the key and project when given.
    pub fn request(&self, client: &reqwest::Client, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = client.request(method, format!("{}{path}", self.server.trim_end_matches('/')));
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        if let Some(project) = &self.project {
            request = request.header("x-sessiontrace-project", project);
        }
        request
    }

    pub fn get(&self, client: &reqwest::Client, path: &str) -> reqwest::RequestBuilder {
        self.request(client, reqwest::Method::GET, path)
    }

    pub fn post(&self, client: &reqwest::Client, path: &str) -> reqwest::RequestBuilder {
        self.request(client, reqwest::Method::POST, path)
    }
}

#[derive(Subcommand)]
pub enum SessionCommand {
    /// Start a session; prints its id and a traceparent.
    Start(StartArgs),
    /// Stop a session by id or short id.
    Stop {
        id: String,
        #[command(flatten)]
        server: ServerArg,
    },
}

#[derive(Args)]
pub struct StartArgs {
    /// A name to find the session by.
    #[arg(long)]
    name: Option<String>,
    /// manual, continuous or backend.
    #[arg(long, default_value = "backend")]
    kind: String,
    /// Who the session is for.
    #[arg(long)]
    user: Option<String>,
    /// Print `export TRACEPARENT=...` lines for a shell (`eval "$(sessiontrace session start --env)"`).
    #[arg(long)]
    env: bool,
    #[command(flatten)]
    server: ServerArg,
}

#[derive(Args)]
pub struct ListArgs {
    /// Text in the name, id, user or attributes.
    #[arg(long)]
    q: Option<String>,
    /// Only sessions with an error.
    #[arg(long)]
    errors: bool,
    /// Only sessions that touched this service.
    #[arg(long)]
    service: Option<String>,
    #[arg(long, default_value_t = 20)]
    limit: u32,
    #[command(flatten)]
    server: ServerArg,
}

/// Sends a request and returns the JSON answer, or the server's error message.
pub async fn call(request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
    let response =
        request.send().await.context("cannot reach the sessiontrace server (is `sessiontrace serve` running?)")?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let message = body.get("error").and_then(Value::as_str).unwrap_or("no message");
        bail!("server answered {status}: {message}");
    }
    Ok(body)
}

pub async fn session(command: SessionCommand) -> anyhow::Result<ExitCode> {
    let client = reqwest::Client::new();
    match command {
        SessionCommand::Start(args) => {
            let mut body = serde_json::json!({"kind": args.kind});
            if let Some(name) = args.name {
                body["name"] = Value::String(name);
            }
            if let Some(user) = args.user {
                body["user"] = Value::String(user);
            }
            let session = call(args.server.post(&client, "/api/sessions").json(&body)).await?;
            let field = |key: &str| session.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
            if args.env {
                println!("export TRACEPARENT={}", field("traceparent"));
                println!("export TRACESTATE={}", field("tracestate"));
                println!("export SESSIONTRACE_SESSION_ID={}", field("id"));
                println!("export SESSIONTRACE_SHORT_ID={}", field("short_id"));
            } else {
                println!("session started");
                println!("  id:          {}", field("id"));
                println!("  short id:    {}", field("short_id"));
                println!("  trace ids:   {}…", field("trace_id_prefix"));
                println!("  traceparent: {}", field("traceparent"));
                println!("  tracestate:  {}", field("tracestate"));
            }
        }
        SessionCommand::Stop { id, server } => {
            let session = call(server.post(&client, &format!("/api/sessions/{id}/stop"))).await?;
            let counts = &session["counts"];
            println!(
                "session {} stopped: {} traces, {} spans, {} logs, {} errors",
                session["short_id"].as_str().unwrap_or_default(),
                counts["traces"],
                counts["spans"],
                counts["logs"],
                counts["errors"]
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let mut query: Vec<(&str, String)> = vec![("limit", args.limit.to_string())];
    if let Some(q) = args.q {
        query.push(("q", q));
    }
    if args.errors {
        query.push(("has_error", "true".into()));
    }
    if let Some(service) = args.service {
        query.push(("service", service));
    }
    let client = reqwest::Client::new();
    let page = call(args.server.get(&client, "/api/sessions").query(&query)).await?;
    let sessions = page["sessions"].as_array().cloned().unwrap_or_default();
    println!(
        "{:<8}  {:<10}  {:<24}  {:>6}  {:>6}  {:>6}  {:<6}  name",
        "short", "kind", "started", "traces", "spans", "errors", "state"
    );
    for session in &sessions {
        let counts = &session["counts"];
        println!(
            "{:<8}  {:<10}  {:<24}  {:>6}  {:>6}  {:>6}  {:<6}  {}",
            session["short_id"].as_str().unwrap_or_default(),
            session["kind"].as_str().unwrap_or_default(),
            session["started_at"].as_str().unwrap_or_default(),
            counts["traces"],
            counts["spans"],
            counts["errors"],
            if session["live"].as_bool() == Some(true) { "live" } else { "done" },
            session["name"].as_str().unwrap_or("-"),
        );
    }
    println!("{} of {} sessions", sessions.len(), page["total"]);
    Ok(ExitCode::SUCCESS)
}
