//! `sessiontrace mcp`: the MCP server over stdio (`claude mcp add sessiontrace -- sessiontrace mcp
//! --server URL`). Its tools call a running server's query API with `--key` / `--project`; stdout
//! carries only MCP messages.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::anyhow;
use clap::Args;
use sessiontrace_mcp::{Api, ApiAnswer, Caller};

use crate::client::ServerArg;

#[derive(Args)]
pub struct McpArgs {
    #[command(flatten)]
    server: ServerArg,
}

/// The query API of a running server over HTTP.
struct HttpApi {
    server: ServerArg,
    client: reqwest::Client,
}

#[async_trait::async_trait]
impl Api for HttpApi {
    async fn get(&self, _caller: &Caller, path_and_query: &str) -> Result<ApiAnswer, String> {
        let response = self.server.get(&self.client, path_and_query).send().await.map_err(|e| {
            format!(
                "The sessiontrace server at {} cannot be reached ({e}); is `sessiontrace serve` running?",
                self.server.server
            )
        })?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| format!("The server's answer could not be read: {e}."))?;
        Ok(ApiAnswer { status, body })
    }
}

pub async fn run(args: McpArgs) -> anyhow::Result<ExitCode> {
    let api = HttpApi { server: args.server, client: reqwest::Client::new() };
    sessiontrace_mcp::serve_stdio(Arc::new(api)).await.map_err(|e| anyhow!(e))?;
    Ok(ExitCode::SUCCESS)
}
