//! [`ResponseFuture`]: runs the inner service's future with the server span's context attached (so
//! logs and client calls made while handling the request join the trace), then finishes the response:
//! status, response headers, `x-trace-id`, capture of the response body, HTML meta.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use http::Response;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use opentelemetry::trace::{Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};

use crate::capture::{BodyTap, Capture, SharedTap, SpanFinisher, TapBody, header_attributes, is_capturable};
use crate::propagation::w3c::format_traceparent;

/// What the future needs to finish the span once the response is known.
pub(crate) struct Pending {
    pub cx: Context,
    pub capture: Capture,
    pub request_tap: Option<SharedTap>,
    pub config: std::sync::Arc<super::layer::LayerConfig>,
    pub timer: super::metrics::RequestTimer,
}

pin_project_lite::pin_project! {
    /// The future of [`super::SessionTrace`].
    pub struct ResponseFuture<F> {
        #[pin]
        pub(crate) inner: F,
        pub(crate) pending: Option<Pending>,
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: http_body::Body<Data = Bytes>,
    E: std::fmt::Display,
{
    type Output = Result<Response<TapBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let polled = match this.pending.as_ref() {
            Some(pending) => {
                let _attached = pending.cx.clone().attach();
                this.inner.poll(task)
            }
            None => this.inner.poll(task),
        };
        let Poll::Ready(result) = polled else { return Poll::Pending };
        let Some(pending) = this.pending.take() else {
            // Polled again after completion: nothing left to record.
            return Poll::Ready(result.map(|response| response.map(|body| TapBody::new(body, None))));
        };
        match result {
            Ok(response) => Poll::Ready(Ok(finish_response(pending, response))),
            Err(error) => {
                let span = pending.cx.span();
                pending.timer.finish(500);
                span.set_attribute(KeyValue::new("error.type", "service_error"));
                span.set_status(Status::error(error.to_string()));
                drop(SpanFinisher::new(
                    pending.cx.clone(),
                    pending.request_tap,
                    None,
                    pending.config.capture.masking.clone(),
                ));
                Poll::Ready(Err(error))
            }
        }
    }
}

fn finish_response<B>(pending: Pending, response: Response<B>) -> Response<TapBody<B>>
where
    B: http_body::Body<Data = Bytes>,
{
    let (mut parts, body) = response.into_parts();
    let span = pending.cx.span();
    let status = parts.status.as_u16();
    pending.timer.finish(status);
    span.set_attribute(KeyValue::new("http.response.status_code", i64::from(status)));
    if status >= 500 {
        span.set_attribute(KeyValue::new("error.type", status.to_string()));
        span.set_status(Status::error(""));
    }
    let context = span.span_context().clone();
    if context.is_valid()
        && let Ok(value) = HeaderValue::from_str(&context.trace_id().to_string())
    {
        parts.headers.entry(HeaderName::from_static("x-trace-id")).or_insert(value);
    }
    let masking = &pending.config.capture.masking;
    if pending.capture.headers {
        span.set_attributes(header_attributes("http.response.header", &parts.headers, masking));
    }
    let response_tap = (pending.capture.bodies && is_capturable(&parts.headers))
        .then(|| BodyTap::shared(pending.config.capture.max_body_bytes));
    let is_html = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim_start().to_ascii_lowercase().starts_with("text/html"));
    let meta =
        (pending.config.html_meta && is_html && context.is_valid() && !parts.headers.contains_key("content-encoding"))
            .then(|| Bytes::from(format!("<meta name=\"traceparent\" content=\"{}\">", format_traceparent(&context))));
    if meta.is_some() {
        parts.headers.remove(CONTENT_LENGTH);
    }
    let finisher = SpanFinisher::new(pending.cx.clone(), pending.request_tap, response_tap.clone(), masking.clone());
    let body = TapBody::new(body, response_tap).with_html_meta(meta).with_finisher(finisher);
    Response::from_parts(parts, body)
}
