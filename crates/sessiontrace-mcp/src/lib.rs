//! The MCP server (shared/DESIGN.md section 9): read-only tools that give an AI assistant a recorded
//! session in the fewest tokens — `list_sessions`, `get_session` (the export), `get_trace`, `get_span`,
//! `search_logs`, `get_user_actions`, `find_sessions_by_trace` — with the official Rust SDK `rmcp`.
//!
//! The tools only call the query API through [`Api`]: `sessiontrace mcp` (stdio) gives them an HTTP
//! client to a server, and the server's `/mcp` (streamable HTTP) gives them its own router in process,
//! with the caller's credential headers, so both see exactly what the REST API shows that caller.

mod render;
mod tools;

use std::sync::Arc;

pub use tools::SessionTools;

/// Credential headers of the MCP caller, passed on to every API call (empty over stdio: the API client
/// carries its own key).
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub headers: Vec<(String, String)>,
}

/// Headers that name who the caller is and which project it reads.
pub const CREDENTIAL_HEADERS: &[&str] = &["authorization", "x-api-key", "cookie", PROJECT_HEADER];

/// The header that names the project to read.
const PROJECT_HEADER: &str = "x-sessiontrace-project";

impl Caller {
    /// The credential headers of an HTTP request.
    pub fn from_headers(headers: &http::HeaderMap) -> Caller {
        let headers = CREDENTIAL_HEADERS
            .iter()
            .filter_map(|name| {
                let value = headers.get(*name)?.to_str().ok()?;
                Some((name.to_string(), value.to_string()))
            })
            .collect();
        Caller { headers }
    }

    /// The credential headers of an HTTP request, and the project its URL names (`/mcp?project=shop`,
    /// for MCP clients that cannot set headers) when no `x-sessiontrace-project` header does.
    pub fn from_request(parts: &http::request::Parts) -> Caller {
        let mut caller = Caller::from_headers(&parts.headers);
        if caller.headers.iter().any(|(name, _)| name == PROJECT_HEADER) {
            return caller;
        }
        let query = parts.uri.query().unwrap_or_default();
        if let Some((_, project)) = form_urlencoded::parse(query.as_bytes()).find(|(name, _)| name == "project") {
            caller.headers.push((PROJECT_HEADER.to_string(), project.into_owned()));
        }
        caller
    }
}

/// One answer of the query API.
#[derive(Debug, Clone)]
pub struct ApiAnswer {
    pub status: u16,
    pub body: String,
}

/// The query API as the tools see it.
#[async_trait::async_trait]
pub trait Api: Send + Sync + 'static {
    /// `GET path_and_query` as `caller`; `Err` with a sentence when the server cannot be reached.
    async fn get(&self, caller: &Caller, path_and_query: &str) -> Result<ApiAnswer, String>;
}

/// The tools over an API.
pub fn tools(api: Arc<dyn Api>) -> SessionTools {
    SessionTools::new(api)
}

/// The streamable HTTP service for `/mcp`, over an API.
pub fn http_service(
    api: Arc<dyn Api>,
    loopback_only: bool,
) -> rmcp::transport::streamable_http_server::StreamableHttpService<
    SessionTools,
    rmcp::transport::streamable_http_server::session::local::LocalSessionManager,
> {
    use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
    let mut config = StreamableHttpServerConfig::default().with_sse_keep_alive(None);
    if !loopback_only {
        // Authentication on: the credential is the check, whatever host name the server is reached by.
        // Without it the default (loopback host names only) guards against DNS rebinding.
        config = config.disable_allowed_hosts();
    }
    StreamableHttpService::new(move || Ok(SessionTools::new(api.clone())), Default::default(), config)
}

/// Serves the tools over stdin/stdout until the client closes them.
pub async fn serve_stdio(api: Arc<dyn Api>) -> Result<(), String> {
    use rmcp::ServiceExt;
    let service = SessionTools::new(api)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| format!("the MCP client did not initialize: {e}"))?;
    service.waiting().await.map_err(|e| format!("the MCP server stopped: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut request = http::Request::post(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_project_comes_from_the_header_or_else_the_url() {
        let caller = Caller::from_request(&parts("/mcp?project=shop%2Deu", &[("x-api-key", "k")]));
        assert_eq!(caller.headers, [("x-api-key".into(), "k".into()), (PROJECT_HEADER.into(), "shop-eu".into())]);
        let caller = Caller::from_request(&parts("/mcp?project=b", &[(PROJECT_HEADER, "a")]));
        assert_eq!(caller.headers, [(PROJECT_HEADER.into(), "a".into())]);
        assert!(Caller::from_request(&parts("/mcp", &[("host", "x")])).headers.is_empty());
    }
}
