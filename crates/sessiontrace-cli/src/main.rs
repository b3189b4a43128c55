//! The `sessiontrace` binary: `serve` runs the collector; `session`, `sessions`, `show` and `export` talk to a
//! running server over its HTTP API; `keys`, `projects` and `users` manage credentials in the store.

mod admin;
mod client;
mod demo;
mod export;
mod loadgen;
mod mcp;
mod serve;
mod show;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "sessiontrace",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("SESSIONTRACE_GIT_COMMIT"), ")"),
    about = "Full-stack session recordings: every backend span of a recorded session, kept"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: OTLP receivers, API and UI, embedded store.
    Serve(serve::ServeArgs),
    /// Start or stop a session.
    #[command(subcommand)]
    Session(client::SessionCommand),
    /// List sessions, newest first.
    Sessions(client::ListArgs),
    /// Print a session's timeline and its traces as trees.
    Show(show::ShowArgs),
    /// A session as markdown or JSON for a ticket or an AI assistant, within a token budget.
    Export(export::ExportArgs),
    /// The MCP server over stdio, for AI assistants (its tools read a running server's API).
    Mcp(mcp::McpArgs),
    /// Start the server and a demo shop of instrumented services, drive a recorded session through them.
    Demo(demo::DemoArgs),
    /// Run one demo shop service (started by `demo`).
    #[command(hide = true)]
    DemoService(demo::DemoServiceArgs),
    /// Send realistic OTLP traffic to a server and report spans/s, latency and errors.
    Loadgen(loadgen::LoadgenArgs),
    /// API keys: create (shown once), list, revoke.
    #[command(subcommand)]
    Keys(admin::KeysCommand),
    /// Projects: create, list.
    #[command(subcommand)]
    Projects(admin::ProjectsCommand),
    /// UI users: add (password hashed with argon2id), list.
    #[command(subcommand)]
    Users(admin::UsersCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            if is_broken_pipe(&error) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Session(command) => client::session(command).await,
            Command::Sessions(args) => client::list(args).await,
            Command::Show(args) => show::run(args).await,
            Command::Export(args) => export::run(args).await,
            Command::Mcp(args) => mcp::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::DemoService(args) => demo::run_service(args).await,
            Command::Loadgen(args) => loadgen::run(args).await,
            Command::Keys(command) => admin::keys(command).await,
            Command::Projects(command) => admin::projects(command).await,
            Command::Users(command) => admin::users(command).await,
        }
    })
}
