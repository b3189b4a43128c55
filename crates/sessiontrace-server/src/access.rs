//! Who each request comes from, and whether it may do what it asks (shared/DESIGN.md section 8). One
//! axum middleware ([`authorize`]) in front of every route, and [`grpc_access`] for the OTLP/gRPC
//! services, give every request a [`RequestContext`] whose project comes only from its credential:
//!
//! - an API key in `Authorization: Bearer <key>`, `Authorization: <key>` or `x-api-key: <key>` (gRPC:
//!   the same metadata). Ingest keys reach only the ingest routes, and a browser request with one must
//!   come from one of the key's allowed origins; read keys reach only reads; admin keys both.
//! - a UI login cookie: every project; the project is picked with `x-sessiontrace-project` or
//!   `?project=`; state changes need the session's CSRF token and a same-origin `Origin`.
//! - nothing, while authentication is off (no key, no user: loopback only): project `default` for
//!   writes, any project by name for reads.
//!
//! Refusals answer 401 (+ `WWW-Authenticate`), 403, 429 (+ `Retry-After`) or 503 with a JSON body that
//! says why, and are counted by reason. Credentials are never logged.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sessiontrace_auth::{Login, Refusal, RefusalClass, Scope};
use sessiontrace_model::auth::{ApiKey, KeyKind};
use sessiontrace_model::project::Project;
use sessiontrace_pipeline::RequestContext;

use crate::state::AppState;

/// The login cookie's name.
pub const LOGIN_COOKIE: &str = "sessiontrace_login";
/// The header that picks a project for a logged-in user (or with authentication off).
pub const PROJECT_HEADER: &str = "x-sessiontrace-project";
/// The header that carries the login session's CSRF token on state changes.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What authenticated a request, kept in its extensions next to its [`RequestContext`].
#[derive(Debug, Clone)]
pub enum Caller {
    /// Authentication is off.
    Local,
    Key(Box<ApiKey>),
    User(Box<Login>),
}

/// The scope a route needs; `None` for public routes (health, assets, login).
pub fn scope_of(method: &Method, path: &str) -> Option<Scope> {
    let ingest_session_route = |rest: &str| {
        let mut parts = rest.split('/');
        matches!((parts.next(), parts.next(), parts.next()), (Some(id), Some("stop" | "save" | "events"), None) if !id.is_empty())
    };
    match (method, path) {
        (_, "/healthz") | (_, "/api/auth/login") | (_, "/api/auth/me") | (_, "/api/auth/logout") => None,
        (&Method::POST, "/v1/traces" | "/v1/logs" | "/v1/metrics" | "/api/sessions") => Some(Scope::Ingest),
        (&Method::POST, path) if path.strip_prefix("/api/sessions/").is_some_and(ingest_session_route) => {
            Some(Scope::Ingest)
        }
        (_, "/metrics") => Some(Scope::Read),
        // The MCP server's streamable HTTP endpoint: read-only tools.
        (_, "/mcp") => Some(Scope::Read),
        (_, path)
            if path.starts_with("/api/")
                || path.starts_with("/v1/")
                || path.starts_with("/tempo/")
                || path.starts_with("/jaeger/")
                || path.starts_with("/sessions/by-trace/") =>
        {
            Some(Scope::Read)
        }
        _ => None,
    }
}

/// The API key in a request's headers, if any: `Authorization: Bearer k`, `Authorization: k`, `x-api-key: k`.
pub fn key_in(headers: &HeaderMap) -> Option<String> {
    let text = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::trim);
    if let Some(authorization) = text(header::AUTHORIZATION.as_str()).filter(|v| !v.is_empty()) {
        let key = authorization
            .strip_prefix("Bearer ")
            .or_else(|| authorization.strip_prefix("bearer "))
            .unwrap_or(authorization)
            .trim();
        return Some(key.to_string());
    }
    text("x-api-key").filter(|v| !v.is_empty()).map(str::to_string)
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name && !value.is_empty()).then(|| value.to_string())
    })
}

/// The origin of a browser request: `Origin`, else the scheme and host of `Referer`.
fn request_origin(headers: &HeaderMap) -> Option<String> {
    let text = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    if let Some(origin) = text(header::ORIGIN.as_str()).filter(|o| *o != "null") {
        return Some(origin.trim_end_matches('/').to_string());
    }
    let referer = text(header::REFERER.as_str())?;
    let (scheme, rest) = referer.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    Some(format!("{scheme}://{host}"))
}

/// The project a request names (header or `project=` query parameter), if any.
fn named_project(headers: &HeaderMap, query: Option<&str>) -> Result<Option<Project>, Refusal> {
    let from_header = headers.get(PROJECT_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
    let from_query = query.and_then(|q| {
        q.split('&').find_map(|pair| pair.strip_prefix("project=").map(|v| v.replace("%2D", "-").replace("%5F", "_")))
    });
    match from_header.or(from_query) {
        None => Ok(None),
        Some(name) => Project::new(&name).map(Some).map_err(Refusal::WrongScope),
    }
}

/// The client's address: the socket's, or `X-Forwarded-For`'s first entry behind a trusted proxy.
pub fn client_address(state: &AppState, headers: &HeaderMap, socket: Option<SocketAddr>) -> IpAddr {
    if state.config.trust_proxy
        && let Some(forwarded) = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok())
        && let Some(address) = forwarded.split(',').next().and_then(|a| a.trim().parse().ok())
    {
        return address;
    }
    socket.map_or(IpAddr::from([127, 0, 0, 1]), |s| s.ip())
}

/// Whether the request came over TLS (here, or to a trusted proxy in front).
pub fn is_secure(state: &AppState, headers: &HeaderMap) -> bool {
    state.config.tls_cert.is_some()
        || (state.config.trust_proxy && headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()) == Some("https"))
}

/// Checks a key against a scope, the browser origin (ingest keys) and a named project.
fn key_may(key: &ApiKey, scope: Scope, origin: Option<&str>, named: Option<&Project>) -> Result<(), Refusal> {
    if !scope.allows_key(key.kind) {
        return Err(Refusal::WrongScope(format!(
            "a{} {} key cannot {}",
            if key.kind == KeyKind::Ingest { "n" } else { "" },
            key.kind,
            match scope {
                Scope::Ingest => "write (use an ingest key)",
                Scope::Read => "read (use a read key or log in)",
                Scope::Admin => "manage keys, projects or users (use an admin key)",
            }
        )));
    }
    if key.kind == KeyKind::Ingest
        && let Some(origin) = origin
        && !key.allowed_origins.iter().any(|allowed| allowed.trim_end_matches('/') == origin)
    {
        return Err(Refusal::OriginNotAllowed(origin.to_string()));
    }
    if let Some(named) = named
        && *named != key.project
    {
        return Err(Refusal::WrongScope(format!("this key belongs to project {}, not {named}", key.project)));
    }
    Ok(())
}

/// The caller and context of a request that needs `scope`, from its headers.
pub async fn authenticate(
    state: &AppState,
    scope: Scope,
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(RequestContext, Caller), Refusal> {
    let named = named_project(headers, query)?;
    if !state.auth.enabled() {
        // Loopback only, no credentials anywhere: writes go to `default`, reads to the project named.
        let project = if scope == Scope::Ingest { Project::default() } else { named.unwrap_or_default() };
        return Ok((RequestContext::for_project(project, "local"), Caller::Local));
    }
    if let Some(secret) = key_in(headers) {
        let key = state.auth.key(&secret).await?;
        key_may(&key, scope, request_origin(headers).as_deref(), named.as_ref())?;
        state.auth.take_request(Some(&key), &key.project)?;
        let context = RequestContext::for_project(key.project.clone(), format!("key {}", key.id));
        return Ok((context, Caller::Key(Box::new(key))));
    }
    if let Some(token) = cookie(headers, LOGIN_COOKIE) {
        let login = state.auth.login(&token).await?;
        if *method != Method::GET && *method != Method::HEAD {
            check_csrf(state, headers, &login)?;
        }
        let project = named.unwrap_or_default();
        state.auth.take_request(None, &project)?;
        let context = RequestContext::for_project(project, format!("user {}", login.user.name));
        return Ok((context, Caller::User(Box::new(login))));
    }
    Err(Refusal::Missing)
}

/// A state change with a login cookie: same-origin `Origin` (when sent) and the session's CSRF token.
pub fn check_csrf(state: &AppState, headers: &HeaderMap, login: &Login) -> Result<(), Refusal> {
    if let Some(origin) = request_origin(headers) {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let scheme = if is_secure(state, headers) { "https" } else { "http" };
        if origin != format!("{scheme}://{host}") {
            return Err(Refusal::Csrf(format!("cross-origin request from {origin} refused")));
        }
    }
    let token = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if token.is_empty() || token != login.session.csrf_token {
        return Err(Refusal::Csrf(format!("missing or wrong {CSRF_HEADER} header")));
    }
    Ok(())
}

/// The answer to a refusal: status, `WWW-Authenticate` or `Retry-After`, and a JSON body.
pub fn refusal_response(state: &AppState, refusal: &Refusal) -> Response {
    state.auth_counters.count(refusal);
    let status = match refusal.class() {
        RefusalClass::Unauthenticated => StatusCode::UNAUTHORIZED,
        RefusalClass::Forbidden => StatusCode::FORBIDDEN,
        RefusalClass::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        RefusalClass::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    };
    tracing::debug!(%status, reason = refusal.reason(), "request refused");
    let mut response = (status, axum::Json(serde_json::json!({"error": refusal.message()}))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"sessiontrace\""));
    }
    if let Some(wait) = refusal.retry_after() {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    }
    response
}

/// The gRPC status of a refusal: UNAUTHENTICATED, PERMISSION_DENIED, RESOURCE_EXHAUSTED with
/// `RetryInfo`, or UNAVAILABLE.
pub fn refusal_status(state: &AppState, refusal: &Refusal) -> tonic::Status {
    use tonic_types::{ErrorDetails, StatusExt};
    state.auth_counters.count(refusal);
    let message = refusal.message();
    let code = match refusal.class() {
        RefusalClass::Unauthenticated => tonic::Code::Unauthenticated,
        RefusalClass::Forbidden => tonic::Code::PermissionDenied,
        RefusalClass::TooManyRequests => tonic::Code::ResourceExhausted,
        RefusalClass::Unavailable => tonic::Code::Unavailable,
    };
    let Some(wait) = refusal.retry_after() else { return tonic::Status::new(code, message) };
    // RetryInfo where gRPC's rich errors put it (grpc-status-details-bin, read by Go and Java clients),
    // and as `google.rpc.retryinfo-bin`, the trailer the Python OTLP exporter reads.
    let mut status = tonic::Status::with_error_details(code, message, ErrorDetails::with_retry_info(Some(wait)));
    let delay = prost_types_duration(wait);
    let info = tonic_types::pb::RetryInfo { retry_delay: Some(delay) };
    status.metadata_mut().insert_bin(
        "google.rpc.retryinfo-bin",
        tonic::metadata::MetadataValue::from_bytes(&prost::Message::encode_to_vec(&info)),
    );
    status
}

fn prost_types_duration(wait: std::time::Duration) -> prost_types::Duration {
    prost_types::Duration { seconds: wait.as_secs() as i64, nanos: wait.subsec_nanos() as i32 }
}

/// The middleware: public routes pass; others get their context or a refusal.
pub async fn authorize(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(scope) = scope_of(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let method = request.method().clone();
    let query = request.uri().query().map(str::to_string);
    match authenticate(&state, scope, &method, request.headers(), query.as_deref()).await {
        Ok((context, caller)) => {
            request.extensions_mut().insert(context);
            request.extensions_mut().insert(Arc::new(caller));
            next.run(request).await
        }
        Err(refusal) => refusal_response(&state, &refusal),
    }
}

/// The same checks for an OTLP/gRPC export (metadata are HTTP/2 headers; no cookies, no origin).
pub async fn grpc_access(state: &AppState, headers: &HeaderMap) -> Result<(RequestContext, Caller), tonic::Status> {
    let mut headers = headers.clone();
    headers.remove(header::COOKIE);
    authenticate(state, Scope::Ingest, &Method::POST, &headers, None)
        .await
        .map_err(|refusal| refusal_status(state, &refusal))
}

/// Takes a body's bytes from the caller's byte limits.
pub fn take_bytes(state: &AppState, context: &RequestContext, caller: &Caller, bytes: usize) -> Result<(), Refusal> {
    if matches!(caller, Caller::Local) {
        return Ok(());
    }
    let key = match caller {
        Caller::Key(key) => Some(key.as_ref()),
        _ => None,
    };
    state.auth.take_bytes(key, &context.project, bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_need_the_scope_of_what_they_do() {
        assert_eq!(scope_of(&Method::POST, "/v1/traces"), Some(Scope::Ingest));
        assert_eq!(scope_of(&Method::POST, "/api/sessions"), Some(Scope::Ingest));
        assert_eq!(scope_of(&Method::POST, "/api/sessions/abc/events"), Some(Scope::Ingest));
        assert_eq!(scope_of(&Method::POST, "/api/sessions/abc/stop"), Some(Scope::Ingest));
        assert_eq!(scope_of(&Method::GET, "/api/sessions/abc/events"), Some(Scope::Read));
        assert_eq!(scope_of(&Method::GET, "/api/sessions"), Some(Scope::Read));
        assert_eq!(scope_of(&Method::GET, "/api/traces/00"), Some(Scope::Read));
        assert_eq!(scope_of(&Method::POST, "/api/sessions/abc/other"), Some(Scope::Read));
        assert_eq!(scope_of(&Method::GET, "/metrics"), Some(Scope::Read));
        assert_eq!(scope_of(&Method::GET, "/api/sessions/abc/export"), Some(Scope::Read));
        assert_eq!(scope_of(&Method::POST, "/mcp"), Some(Scope::Read));
        assert_eq!(scope_of(&Method::GET, "/mcp"), Some(Scope::Read));
        assert_eq!(scope_of(&Method::GET, "/healthz"), None);
        assert_eq!(scope_of(&Method::GET, "/recorder.js"), None);
        assert_eq!(scope_of(&Method::GET, "/sessions/abc"), None);
        assert_eq!(scope_of(&Method::POST, "/api/auth/login"), None);
    }

    #[test]
    fn grafana_and_jaeger_apis_and_the_trace_redirect_need_read() {
        for path in [
            "/tempo/api/echo",
            "/tempo/api/v2/traces/00",
            "/tempo/api/search",
            "/tempo/api/v2/search/tag/name/values",
            "/jaeger/api/services",
            "/jaeger/api/traces/00",
            "/jaeger/api/v3/services",
            "/sessions/by-trace/00",
        ] {
            assert_eq!(scope_of(&Method::GET, path), Some(Scope::Read), "{path}");
        }
        assert_eq!(scope_of(&Method::GET, "/sessions/by-trace"), None, "the UI's own pages stay public");
    }

    #[test]
    fn keys_are_found_in_every_accepted_header() {
        let with = |name: &str, value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
            key_in(&headers)
        };
        assert_eq!(with("authorization", "Bearer st_ing_x").as_deref(), Some("st_ing_x"));
        assert_eq!(with("authorization", "st_ing_x").as_deref(), Some("st_ing_x"));
        assert_eq!(with("x-api-key", "st_read_y").as_deref(), Some("st_read_y"));
        assert_eq!(with("accept", "*/*"), None);
    }
}
