//! The server side: [`SessionTrace`], a tower `Service` that traces each HTTP request (works with axum's
//! `Router::layer`, hyper via `tower::ServiceBuilder`, any tower stack).
//!
//! For each request it
//! 1. reads the caller's trace context ([`crate::propagation::SessionPropagator`]); with none, but with the
//!    recorder's `sessiontrace_session=<short_id>` cookie, it starts a trace of that session;
//! 2. opens the `server` span with the HTTP semantic-convention attributes (`http.request.method`,
//!    `url.path`, `url.query`, `url.scheme`, `server.address`, `server.port`, `user_agent.original`,
//!    `network.protocol.version`, `http.route` under axum) and attaches its context while the inner
//!    service runs, so logs and outgoing calls join the trace;
//! 3. on session traces that ask for it ([`crate::capture`]), records request headers at once and copies
//!    the request body's first bytes as the service reads it (never buffering, never reading streams);
//! 4. on the response ([`future`]): `http.response.status_code`, error status for 5xx, the `x-trace-id`
//!    header, response headers, the response body tap, and optionally the `<meta name="traceparent">` tag;
//! 5. ends the span when the response body has been sent or dropped, after writing the body attributes.

mod future;
mod layer;
mod metrics;

use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use http::{Request, Response};
use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use tower::Service;

pub use future::ResponseFuture;
pub use layer::SessionTraceLayer;

use crate::capture::{BodyTap, TapBody, header_attributes, is_capturable};
use crate::ids::{SessionKind, with_session_trace};
use crate::propagation::HeaderExtractor;
use future::Pending;
use layer::LayerConfig;

/// The recorder's cookie naming the session a page records (DESIGN.md section 3).
pub const SESSION_COOKIE: &str = "sessiontrace_session";

/// The service [`SessionTraceLayer`] builds; see the module docs.
#[derive(Clone)]
pub struct SessionTrace<S> {
    inner: S,
    config: Arc<LayerConfig>,
}

/// The short id in a `sessiontrace_session` cookie, if the request has a well-formed one.
pub fn session_cookie(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|value| value.len() == 8 && value.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

fn route_of(request: &http::request::Parts) -> Option<String> {
    #[cfg(feature = "axum")]
    if let Some(path) = request.extensions.get::<axum::extract::MatchedPath>() {
        return Some(path.as_str().to_string());
    }
    let _ = request;
    None
}

fn request_attributes(parts: &http::request::Parts, route: Option<&str>) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new("http.request.method", parts.method.as_str().to_string()),
        KeyValue::new("url.path", parts.uri.path().to_string()),
        KeyValue::new("url.scheme", parts.uri.scheme_str().unwrap_or("http").to_string()),
    ];
    if let Some(query) = parts.uri.query() {
        attributes.push(KeyValue::new("url.query", query.to_string()));
    }
    if let Some(route) = route {
        attributes.push(KeyValue::new("http.route", route.to_string()));
    }
    let host = parts
        .uri
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| parts.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).map(str::to_string));
    if let Some(host) = host {
        match host.rsplit_once(':').and_then(|(name, port)| Some((name, port.parse::<i64>().ok()?))) {
            Some((name, port)) => {
                attributes.push(KeyValue::new("server.address", name.to_string()));
                attributes.push(KeyValue::new("server.port", port));
            }
            None => attributes.push(KeyValue::new("server.address", host)),
        }
    }
    if let Some(agent) = parts.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()) {
        attributes.push(KeyValue::new("user_agent.original", agent.to_string()));
    }
    let version = match parts.version {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "1.1",
    };
    attributes.push(KeyValue::new("network.protocol.version", version));
    attributes
}

impl<S> SessionTrace<S> {
    /// Opens the server span of a request and returns its context.
    fn start_span(&self, parts: &http::request::Parts, route: Option<&str>) -> Context {
        let parent_cx = self.config.propagator.extract_context(&HeaderExtractor(&parts.headers));
        let has_parent = parent_cx.span().span_context().is_valid();
        let name = match route {
            Some(route) => format!("{} {route}", parts.method),
            None => parts.method.to_string(),
        };
        let attributes = request_attributes(parts, route);
        let global;
        let tracer: &BoxedTracer = match &self.config.tracer {
            Some(tracer) => tracer,
            None => {
                global = opentelemetry::global::tracer("sessiontrace-sdk");
                &global
            }
        };
        let start = || {
            let builder = tracer.span_builder(name).with_kind(SpanKind::Server).with_attributes(attributes);
            parent_cx.with_span(builder.start_with_context(tracer, &parent_cx))
        };
        // A page navigation carries no trace header: the recorder's cookie makes it a session trace.
        match (has_parent, session_cookie(&parts.headers)) {
            (false, Some(short_id)) => with_session_trace(SessionKind::Recorded, &short_id, start),
            _ => start(),
        }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionTrace<S>
where
    S: Service<Request<TapBody<ReqBody>>, Response = Response<ResBody>>,
    S::Error: std::fmt::Display,
    ReqBody: http_body::Body<Data = Bytes>,
    ResBody: http_body::Body<Data = Bytes>,
{
    type Response = Response<TapBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (parts, body) = request.into_parts();
        let route = route_of(&parts);
        let timer = metrics::RequestTimer::start(&parts.method, route.as_deref());
        let cx = self.start_span(&parts, route.as_deref());
        let span_context = cx.span().span_context().clone();
        let capture = self.config.capture.decide(&span_context);
        if capture.headers {
            cx.span().set_attributes(header_attributes(
                "http.request.header",
                &parts.headers,
                &self.config.capture.masking,
            ));
        }
        let request_tap = (capture.bodies && is_capturable(&parts.headers))
            .then(|| BodyTap::shared(self.config.capture.max_body_bytes));
        let request = Request::from_parts(parts, TapBody::new(body, request_tap.clone()));
        let inner = {
            let _attached = cx.clone().attach();
            self.inner.call(request)
        };
        ResponseFuture {
            inner,
            pending: Some(Pending { cx, capture, request_tap, config: self.config.clone(), timer }),
        }
    }
}

#[cfg(test)]
mod tests;
