//! Request/response capture on session traces (shared/DESIGN.md section 5): which requests are
//! captured, header and body attributes, masking, the size limit, and [`TapBody`], the body wrapper that
//! copies what passes through it without changing, delaying or buffering the stream.
//!
//! # Does the session ask for capture?
//! Only session traces (trace id prefix `debdeb`/`cdbcdb`) are ever captured. For those, the
//! `tracestate` member `sessiontrace` decides when present: its value lists what to capture, `h` for
//! headers and `b` for bodies (`sessiontrace=hb`, `sessiontrace=h`, `sessiontrace=0` for nothing). It
//! travels with the trace, so every service downstream follows the same choice. Without that member the
//! service's [`CaptureConfig`] applies, which captures headers and bodies by default; switch either off
//! there to never capture it, whatever the session asks.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use opentelemetry::trace::{SpanContext, TraceContextExt};
use opentelemetry::{Array, Context, KeyValue, StringValue, Value};
use sessiontrace_model::masking::{MASKED, MaskingRules};

use crate::ids::is_session_trace;

/// The `tracestate` key that carries a session's capture choice.
pub const TRACESTATE_KEY: &str = "sessiontrace";

/// Default body size limit: 64 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// What a service may capture on session traces.
#[derive(Debug, Clone)]
pub struct CaptureConfig {
    /// Capture request and response headers of session traces (default on).
    pub headers: bool,
    /// Capture request and response bodies of session traces (default on).
    pub bodies: bool,
    /// Bytes of a body kept; a longer body is cut and flagged `*.body.truncated` (default 64 KiB).
    pub max_body_bytes: usize,
    /// Header names and JSON keys masked (default: DESIGN.md section 5's lists).
    pub masking: MaskingRules,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            headers: true,
            bodies: true,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            masking: MaskingRules::default(),
        }
    }
}

/// What is captured for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capture {
    pub headers: bool,
    pub bodies: bool,
}

impl CaptureConfig {
    /// The capture of a request whose span has `context`; see the module docs.
    pub fn decide(&self, context: &SpanContext) -> Capture {
        if !context.is_valid() || !is_session_trace(context.trace_id()) {
            return Capture::default();
        }
        let asked = match context.trace_state().get(TRACESTATE_KEY) {
            Some(value) => Capture { headers: value.contains('h'), bodies: value.contains('b') },
            None => Capture { headers: true, bodies: true },
        };
        Capture { headers: asked.headers && self.headers, bodies: asked.bodies && self.bodies }
    }
}

/// `prefix.<lowercase name>` string-array attributes of `headers`, masked values replaced.
pub fn header_attributes(prefix: &str, headers: &HeaderMap, masking: &MaskingRules) -> Vec<KeyValue> {
    let mut attributes = Vec::with_capacity(headers.keys_len());
    for name in headers.keys() {
        let masked = masking.is_masked_header(name.as_str());
        let values: Vec<StringValue> = headers
            .get_all(name)
            .iter()
            .map(
                |value| {
                    if masked { MASKED.into() } else { String::from_utf8_lossy(value.as_bytes()).into_owned().into() }
                },
            )
            .collect();
        attributes.push(KeyValue::new(format!("{prefix}.{}", name.as_str()), Value::Array(Array::String(values))));
    }
    attributes
}

/// Content types whose bodies are streams and are never read.
pub fn is_streaming(headers: &HeaderMap) -> bool {
    let content_type = content_type(headers);
    content_type.starts_with("text/event-stream")
        || content_type.contains("ndjson")
        || content_type.starts_with("application/grpc")
        || content_type.starts_with("application/octet-stream")
        || content_type.starts_with("multipart/")
}

/// Whether a body with these headers is text worth capturing: not a stream, not compressed, and a textual
/// content type (or none given).
pub fn is_capturable(headers: &HeaderMap) -> bool {
    if is_streaming(headers) {
        return false;
    }
    let encoded = headers
        .get(http::header::CONTENT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| !value.eq_ignore_ascii_case("identity"));
    if encoded {
        return false;
    }
    let content_type = content_type(headers);
    content_type.is_empty()
        || content_type.starts_with("text/")
        || content_type.starts_with("application/json")
        || content_type.starts_with("application/x-www-form-urlencoded")
        || content_type.starts_with("application/xml")
        || content_type.starts_with("application/javascript")
        || content_type.starts_with("application/graphql")
        || content_type.contains("+json")
        || content_type.contains("+xml")
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// The first bytes of a body, as they passed through a [`TapBody`].
#[derive(Debug, Default)]
pub struct BodyTap {
    kept: Vec<u8>,
    seen: usize,
    limit: usize,
}

/// A tap shared between the body wrapper and whoever writes the span's attributes.
pub type SharedTap = Arc<Mutex<BodyTap>>;

impl BodyTap {
    /// A tap that keeps at most `limit` bytes.
    pub fn shared(limit: usize) -> SharedTap {
        Arc::new(Mutex::new(BodyTap { kept: Vec::new(), seen: 0, limit }))
    }

    fn record(&mut self, data: &[u8]) {
        self.seen += data.len();
        let room = self.limit.saturating_sub(self.kept.len());
        self.kept.extend_from_slice(&data[..room.min(data.len())]);
    }

    /// Records bytes known in full up front (a client request body).
    pub fn record_all(tap: &SharedTap, data: &[u8]) {
        if let Ok(mut tap) = tap.lock() {
            tap.record(data);
        }
    }
}

/// `prefix` (`http.request.body`) and, when cut, `prefix.truncated` for what the tap saw, masked.
pub fn body_attributes(prefix: &str, tap: &SharedTap, masking: &MaskingRules) -> Vec<KeyValue> {
    let Ok(tap) = tap.lock() else { return Vec::new() };
    if tap.seen == 0 {
        return Vec::new();
    }
    let text = match std::str::from_utf8(&tap.kept) {
        Ok(text) => text.to_string(),
        // Cut inside a UTF-8 character: drop the partial character.
        Err(error) if error.error_len().is_none() => {
            String::from_utf8_lossy(&tap.kept[..error.valid_up_to()]).into_owned()
        }
        Err(_) => String::from_utf8_lossy(&tap.kept).into_owned(),
    };
    let text = masking.mask_body(&text).unwrap_or(text);
    let mut attributes = vec![KeyValue::new(prefix.to_string(), text)];
    if tap.seen > tap.kept.len() {
        attributes.push(KeyValue::new(format!("{prefix}.truncated"), true));
    }
    attributes
}

/// Ends a span once its response body is done (or dropped), after writing the captured bodies.
pub struct SpanFinisher {
    cx: Context,
    request_tap: Option<SharedTap>,
    response_tap: Option<SharedTap>,
    masking: MaskingRules,
}

impl SpanFinisher {
    /// A finisher for the span in `cx`.
    pub fn new(
        cx: Context,
        request_tap: Option<SharedTap>,
        response_tap: Option<SharedTap>,
        masking: MaskingRules,
    ) -> Self {
        SpanFinisher { cx, request_tap, response_tap, masking }
    }
}

impl Drop for SpanFinisher {
    fn drop(&mut self) {
        let span = self.cx.span();
        if let Some(tap) = &self.request_tap {
            span.set_attributes(body_attributes("http.request.body", tap, &self.masking));
        }
        if let Some(tap) = &self.response_tap {
            span.set_attributes(body_attributes("http.response.body", tap, &self.masking));
        }
        span.end();
    }
}

pin_project_lite::pin_project! {
    /// A body passed on unchanged while its first bytes are copied into a tap. It can also insert a
    /// `<meta name="traceparent">` tag after `<head>` in the first data frame of an HTML page, and it ends
    /// the span of its response when the stream ends or the body is dropped.
    pub struct TapBody<B> {
        #[pin]
        inner: B,
        tap: Option<SharedTap>,
        meta: Option<Bytes>,
        finisher: Option<SpanFinisher>,
    }
}

impl<B> TapBody<B> {
    /// Wraps `inner`; `tap: None` passes it through untouched.
    pub fn new(inner: B, tap: Option<SharedTap>) -> Self {
        TapBody { inner, tap, meta: None, finisher: None }
    }

    /// Also inserts `meta` (a complete HTML tag) after the `<head>` tag of the first data frame.
    pub fn with_html_meta(mut self, meta: Option<Bytes>) -> Self {
        self.meta = meta;
        self
    }

    /// Also ends a span when the body ends or is dropped.
    pub fn with_finisher(mut self, finisher: SpanFinisher) -> Self {
        self.finisher = Some(finisher);
        self
    }
}

/// `data` with `meta` inserted right after the first `<head>` or `<head ...>` tag, if there is one.
pub fn insert_after_head(data: &Bytes, meta: &[u8]) -> Option<Bytes> {
    let lower = data.to_ascii_lowercase();
    let start = lower.windows(5).position(|window| window == b"<head")?;
    let after = lower.get(start + 5).copied()?;
    if after != b'>' && !after.is_ascii_whitespace() {
        return None;
    }
    let close = start + lower[start..].iter().position(|&b| b == b'>')? + 1;
    let mut out = Vec::with_capacity(data.len() + meta.len());
    out.extend_from_slice(&data[..close]);
    out.extend_from_slice(meta);
    out.extend_from_slice(&data[close..]);
    Some(Bytes::from(out))
}

impl<B> Body for TapBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                let frame = match frame.into_data() {
                    Ok(data) => {
                        let data = match this.meta.take() {
                            Some(meta) => insert_after_head(&data, &meta).unwrap_or(data),
                            None => data,
                        };
                        if let Some(tap) = this.tap.as_ref()
                            && let Ok(mut tap) = tap.lock()
                        {
                            tap.record(&data);
                        }
                        Frame::data(data)
                    }
                    Err(frame) => frame,
                };
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                this.finisher.take();
                Poll::Ready(None)
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.meta {
            Some(_) => SizeHint::default(),
            None => self.inner.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use http_body_util::{BodyExt, Full};
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};

    fn context(trace: &str, state: &str) -> SpanContext {
        let state = if state.is_empty() { TraceState::NONE } else { state.parse().unwrap() };
        SpanContext::new(TraceId::from_hex(trace).unwrap(), SpanId::from(1u64), TraceFlags::SAMPLED, true, state)
    }

    #[test]
    fn only_session_traces_are_captured_and_tracestate_decides() {
        let config = CaptureConfig::default();
        let session = "debdeb0badcafe000000000000000001";
        assert_eq!(config.decide(&context(session, "")), Capture { headers: true, bodies: true });
        assert_eq!(config.decide(&context(session, "sessiontrace=h")), Capture { headers: true, bodies: false });
        assert_eq!(config.decide(&context(session, "sessiontrace=0")), Capture::default());
        assert_eq!(config.decide(&context("0af7651916cd43dd8448eb211c80319c", "")), Capture::default());
        let no_bodies = CaptureConfig { bodies: false, ..CaptureConfig::default() };
        assert_eq!(no_bodies.decide(&context(session, "sessiontrace=hb")), Capture { headers: true, bodies: false });
    }

    #[test]
    fn headers_are_masked_and_grouped() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer abc"));
        headers.append("accept", HeaderValue::from_static("a"));
        headers.append("accept", HeaderValue::from_static("b"));
        let attributes = header_attributes("http.request.header", &headers, &MaskingRules::default());
        let find = |key: &str| attributes.iter().find(|kv| kv.key.as_str() == key).unwrap().value.to_string();
        assert_eq!(find("http.request.header.authorization"), "[\"***MASKED***\"]");
        assert_eq!(find("http.request.header.accept"), "[\"a\",\"b\"]");
    }

    #[test]
    fn content_types() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
            headers
        };
        assert!(is_capturable(&with("application/json; charset=utf-8")));
        assert!(is_capturable(&with("application/problem+json")));
        assert!(is_capturable(&HeaderMap::new()));
        assert!(!is_capturable(&with("text/event-stream")));
        assert!(!is_capturable(&with("application/x-ndjson")));
        assert!(!is_capturable(&with("application/grpc")));
        assert!(!is_capturable(&with("image/png")));
    }

    #[tokio::test]
    async fn tap_passes_the_body_unchanged_and_keeps_the_first_bytes() {
        let body = Bytes::from(format!("{{\"password\":\"hunter2\",\"pad\":\"{}\"}}", "x".repeat(100)));
        let tap = BodyTap::shared(40);
        let out = TapBody::new(Full::new(body.clone()), Some(tap.clone())).collect().await.unwrap().to_bytes();
        assert_eq!(out, body);
        let attributes = body_attributes("http.request.body", &tap, &MaskingRules::default());
        let captured = attributes[0].value.as_str();
        assert!(captured.starts_with("{\"password\":\"***MASKED***\",\"pad\":\"xxx"), "{captured}");
        assert!(!captured.contains("hunter2"));
        assert_eq!(attributes[1].key.as_str(), "http.request.body.truncated");
    }

    #[tokio::test]
    async fn html_meta_goes_after_head() {
        let page = Bytes::from_static(b"<!doctype html><html><HEAD lang=en><title>x</title></head></html>");
        let meta = Bytes::from_static(b"<meta name=\"traceparent\" content=\"00-a-b-01\">");
        let out = TapBody::new(Full::new(page), None).with_html_meta(Some(meta)).collect().await.unwrap().to_bytes();
        assert_eq!(
            out,
            Bytes::from_static(
                b"<!doctype html><html><HEAD lang=en><meta name=\"traceparent\" content=\"00-a-b-01\"><title>x</title></head></html>"
            )
        );
        assert!(insert_after_head(&Bytes::from_static(b"<header>no head</header>"), b"<meta>").is_none());
    }
}
