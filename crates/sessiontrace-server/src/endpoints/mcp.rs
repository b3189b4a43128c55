//! `/mcp`: the MCP server (crate `sessiontrace-mcp`) over streamable HTTP on the API port. Its tools
//! call this server's own API router in process with the caller's credential headers, so every tool
//! answer passes the same access check, project and masking as the REST API; `/mcp` itself needs the
//! read scope (`access::scope_of`) when authentication is on.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use sessiontrace_mcp::{Api, ApiAnswer, Caller};
use tower::ServiceExt;

/// The largest API answer a tool reads (an export or a trace of many spans).
const MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;

/// The API router, called in process.
struct RouterApi {
    router: Router,
}

#[async_trait::async_trait]
impl Api for RouterApi {
    async fn get(&self, caller: &Caller, path_and_query: &str) -> Result<ApiAnswer, String> {
        let mut request = http::Request::get(path_and_query);
        for (name, value) in &caller.headers {
            request = request.header(name, value);
        }
        let request =
            request.body(Body::empty()).map_err(|e| format!("The request {path_and_query:?} is invalid: {e}."))?;
        let response = self.router.clone().oneshot(request).await.map_err(|e| format!("The API failed: {e}."))?;
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), MAX_ANSWER_BYTES)
            .await
            .map_err(|e| format!("The API answer could not be read: {e}."))?;
        Ok(ApiAnswer { status, body: String::from_utf8_lossy(&body).into_owned() })
    }
}

/// The `/mcp` route over `api` (the API router with its access check, without `/mcp`).
/// `loopback_only`: the server started without authentication, so it listens on loopback only and
/// the MCP transport also refuses other `Host` names (DNS rebinding).
pub fn routes(api: Router, loopback_only: bool) -> Router {
    let service = sessiontrace_mcp::http_service(Arc::new(RouterApi { router: api }), loopback_only);
    Router::new().route_service("/mcp", service)
}
