//! The client side: [`TracedClient`] wraps a `reqwest::Client`. Each request gets a `client` span (a child
//! of the current OpenTelemetry context, or a new root), the propagation headers of that span, and on
//! session traces the same capture as the server layer ([`crate::capture`]). The response body is tapped
//! as the caller reads it, never buffered, and the span ends when the body is read to the end or dropped.
//!
//! ```no_run
//! # async fn f() -> Result<(), reqwest::Error> {
//! let client = sessiontrace_sdk::TracedClient::new(reqwest::Client::new());
//! let response = client.send(client.get("http://127.0.0.1:3001/orders")).await?;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use opentelemetry::global::BoxedTracer;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use reqwest::{Method, RequestBuilder, ResponseBuilderExt};

use crate::capture::{BodyTap, CaptureConfig, SpanFinisher, TapBody, header_attributes, is_capturable};
use crate::propagation::{HeaderInjector, Injection, SessionPropagator};

struct ClientConfig {
    capture: CaptureConfig,
    propagator: SessionPropagator,
    tracer: Option<BoxedTracer>,
}

/// A `reqwest::Client` whose requests are traced; cheap to clone.
#[derive(Clone)]
pub struct TracedClient {
    client: reqwest::Client,
    config: Arc<ClientConfig>,
}

impl TracedClient {
    /// Wraps `client` with the default capture and W3C injection, using the global tracer provider.
    pub fn new(client: reqwest::Client) -> Self {
        TracedClient::with_settings(client, CaptureConfig::default(), Injection::default(), None)
    }

    /// Wraps `client` with explicit capture, injection and (optionally) tracer.
    pub fn with_settings(
        client: reqwest::Client,
        capture: CaptureConfig,
        injection: Injection,
        tracer: Option<BoxedTracer>,
    ) -> Self {
        TracedClient {
            client,
            config: Arc::new(ClientConfig { capture, propagator: SessionPropagator::new(injection), tracer }),
        }
    }

    /// The wrapped client.
    pub fn inner(&self) -> &reqwest::Client {
        &self.client
    }

    /// A GET request builder; send it with [`send`](Self::send).
    pub fn get(&self, url: impl reqwest::IntoUrl) -> RequestBuilder {
        self.client.get(url)
    }

    /// A POST request builder; send it with [`send`](Self::send).
    pub fn post(&self, url: impl reqwest::IntoUrl) -> RequestBuilder {
        self.client.post(url)
    }

    /// A request builder of any method.
    pub fn request(&self, method: Method, url: impl reqwest::IntoUrl) -> RequestBuilder {
        self.client.request(method, url)
    }

    /// Sends a request built from this client, in a client span named `{METHOD}`.
    pub async fn send(&self, builder: RequestBuilder) -> reqwest::Result<reqwest::Response> {
        self.execute_in(&Context::current(), None, builder.build()?).await
    }

    /// Like [`send`](Self::send), with a span name of your choice (for example `POST /orders`).
    pub async fn send_named(&self, name: &str, builder: RequestBuilder) -> reqwest::Result<reqwest::Response> {
        self.execute_in(&Context::current(), Some(name), builder.build()?).await
    }

    /// Sends `request` in a client span that is a child of `parent` (or a root when `parent` has no span).
    pub async fn execute_in(
        &self,
        parent: &Context,
        name: Option<&str>,
        mut request: reqwest::Request,
    ) -> reqwest::Result<reqwest::Response> {
        let cx = self.start_span(parent, name, &request);
        let span_context = cx.span().span_context().clone();
        self.config.propagator.inject_context(&cx, &mut HeaderInjector(request.headers_mut()));
        let capture = self.config.capture.decide(&span_context);
        let masking = &self.config.capture.masking;
        if capture.headers {
            cx.span().set_attributes(header_attributes("http.request.header", request.headers(), masking));
        }
        if capture.bodies
            && is_capturable(request.headers())
            && let Some(bytes) = request.body().and_then(|body| body.as_bytes())
        {
            let tap = BodyTap::shared(self.config.capture.max_body_bytes);
            BodyTap::record_all(&tap, bytes);
            cx.span().set_attributes(crate::capture::body_attributes("http.request.body", &tap, masking));
        }
        let result = self.client.execute(request).await;
        let response = match result {
            Ok(response) => response,
            Err(error) => {
                let span = cx.span();
                span.set_attribute(KeyValue::new("error.type", error_type(&error)));
                span.set_status(Status::error(error.to_string()));
                span.end();
                return Err(error);
            }
        };
        let span = cx.span();
        let status = response.status().as_u16();
        span.set_attribute(KeyValue::new("http.response.status_code", i64::from(status)));
        if status >= 400 {
            span.set_attribute(KeyValue::new("error.type", status.to_string()));
            span.set_status(Status::error(""));
        }
        if capture.headers {
            span.set_attributes(header_attributes("http.response.header", response.headers(), masking));
        }
        let response_tap = (capture.bodies && is_capturable(response.headers()))
            .then(|| BodyTap::shared(self.config.capture.max_body_bytes));
        let finisher = SpanFinisher::new(cx.clone(), None, response_tap.clone(), masking.clone());
        Ok(wrap_response(response, response_tap, finisher))
    }

    fn start_span(&self, parent: &Context, name: Option<&str>, request: &reqwest::Request) -> Context {
        let url = request.url();
        let mut attributes = vec![
            KeyValue::new("http.request.method", request.method().as_str().to_string()),
            KeyValue::new("url.full", redacted_url(url)),
        ];
        if let Some(host) = url.host_str() {
            attributes.push(KeyValue::new("server.address", host.to_string()));
        }
        if let Some(port) = url.port_or_known_default() {
            attributes.push(KeyValue::new("server.port", i64::from(port)));
        }
        let name = name.map(str::to_string).unwrap_or_else(|| request.method().to_string());
        let build = |tracer: &BoxedTracer| {
            let span = tracer
                .span_builder(name.clone())
                .with_kind(SpanKind::Client)
                .with_attributes(attributes.clone())
                .start_with_context(tracer, parent);
            parent.with_span(span)
        };
        match &self.config.tracer {
            Some(tracer) => build(tracer),
            None => build(&opentelemetry::global::tracer("sessiontrace-sdk")),
        }
    }
}

/// The URL without user info (a password in a URL must not be stored).
fn redacted_url(url: &reqwest::Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.to_string();
    }
    let mut copy = url.clone();
    let _ = copy.set_username("");
    let _ = copy.set_password(None);
    copy.to_string()
}

fn error_type(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else {
        "request"
    }
}

/// The same response with its body wrapped in a tap that also ends the span.
fn wrap_response(
    response: reqwest::Response,
    tap: Option<crate::capture::SharedTap>,
    finisher: SpanFinisher,
) -> reqwest::Response {
    let url = response.url().clone();
    let http_response: http::Response<reqwest::Body> = response.into();
    let (mut parts, body) = http_response.into_parts();
    let url_extension = http::Response::builder().url(url).body(()).map(|r| r.into_parts().0.extensions);
    if let Ok(extensions) = url_extension {
        parts.extensions.extend(extensions);
    }
    let body = reqwest::Body::wrap(TapBody::new(body, tap).with_finisher(finisher));
    reqwest::Response::from(http::Response::from_parts(parts, body))
}
