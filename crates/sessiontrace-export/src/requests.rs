//! Failing requests (4xx/5xx, network errors) from the recorder's network events and from the backend's
//! HTTP spans, with their headers and bodies masked again and capped.

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use sessiontrace_model::masking::{MASKED, MaskingRules};
use sessiontrace_query::spans::SpanView;

use crate::ExportData;

/// One failing request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub time_ms: f64,
    /// `browser` (the recorder saw it) or `backend` (a span).
    pub source: &'static str,
    pub method: String,
    pub url: String,
    pub status: Option<u64>,
    pub error: Option<String>,
    pub duration_ms: Option<f64>,
    pub service: Option<String>,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub request_headers: Vec<(String, String)>,
    pub request_body: Option<Body>,
    pub response_headers: Vec<(String, String)>,
    pub response_body: Option<Body>,
}

/// A body, masked and capped.
#[derive(Debug, Clone, PartialEq)]
pub struct Body {
    pub text: String,
    /// Its size before the cap, in bytes.
    pub bytes: usize,
    pub cut: bool,
}

/// A header value as shown: masked headers as the marker, whatever was sent.
pub fn header_value(rules: &MaskingRules, name: &str, value: &str) -> String {
    if rules.is_masked_header(name) { MASKED.to_string() } else { value.to_string() }
}

/// A body masked again and cut at `max_bytes` (on a character boundary).
pub fn body(rules: &MaskingRules, text: &str, max_bytes: usize) -> Body {
    let masked = rules.mask_body(text).unwrap_or_else(|| text.to_string());
    let bytes = masked.len();
    if bytes <= max_bytes {
        return Body { text: masked, bytes, cut: false };
    }
    let mut end = max_bytes;
    while !masked.is_char_boundary(end) {
        end -= 1;
    }
    // Masking the cut text again: a value cut open could no longer parse as JSON.
    let cut = &masked[..end];
    let text = rules.mask_body(cut).unwrap_or_else(|| cut.to_string());
    Body { text, bytes, cut: true }
}

/// Masks captured headers and bodies in span attributes (JSON output) and caps bodies.
pub fn mask_attributes(rules: &MaskingRules, attributes: &Map<String, Value>, max_body: usize) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in attributes {
        let header = key.strip_prefix("http.request.header.").or_else(|| key.strip_prefix("http.response.header."));
        let shown = match (header, value) {
            (Some(name), _) if rules.is_masked_header(name) => json!([MASKED]),
            _ if key == "http.request.body" || key == "http.response.body" => match value.as_str() {
                Some(text) => {
                    let capped = body(rules, text, max_body);
                    if capped.cut {
                        out.insert(format!("{key}.export_cut_at_bytes"), json!(max_body));
                    }
                    Value::String(capped.text)
                }
                None => value.clone(),
            },
            _ => value.clone(),
        };
        out.insert(key.clone(), shown);
    }
    out
}

fn headers_of(rules: &MaskingRules, span: &SpanView, prefix: &str) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = span
        .attributes
        .iter()
        .filter_map(|(key, value)| {
            let name = key.strip_prefix(prefix)?;
            let text = match value {
                Value::Array(values) => values
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                    .collect::<Vec<_>>()
                    .join(", "),
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            Some((name.to_string(), header_value(rules, name, &text)))
        })
        .collect();
    headers.sort();
    headers
}

fn headers_of_payload(rules: &MaskingRules, headers: Option<&Value>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = headers
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, value)| {
            let text = value.as_str().map_or_else(|| value.to_string(), str::to_string);
            (name.to_ascii_lowercase(), header_value(rules, name, &text))
        })
        .collect();
    out.sort();
    out
}

fn attribute_str<'a>(span: &'a SpanView, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|key| span.attributes.get(*key).and_then(Value::as_str))
}

/// The HTTP status of a span, if it has one.
pub fn span_status(span: &SpanView) -> Option<u64> {
    ["http.response.status_code", "http.status_code"].iter().find_map(|key| {
        let value = span.attributes.get(*key)?;
        value.as_u64().or_else(|| value.as_str().and_then(|s| s.parse().ok()))
    })
}

fn is_http(span: &SpanView) -> bool {
    attribute_str(span, &["http.request.method", "http.method"]).is_some()
}

fn span_failed(span: &SpanView) -> bool {
    is_http(span) && (span_status(span).is_some_and(|s| s >= 400) || span.status.code == "error")
}

fn from_span(rules: &MaskingRules, span: &SpanView, max_body: usize) -> Request {
    let method = attribute_str(span, &["http.request.method", "http.method"]).unwrap_or("?").to_string();
    let url = attribute_str(span, &["url.full", "http.url", "url.path", "http.target", "http.route"])
        .map(str::to_string)
        .unwrap_or_else(|| span.name.clone());
    let text_body =
        |key: &str| span.attributes.get(key).and_then(Value::as_str).map(|text| body(rules, text, max_body));
    Request {
        time_ms: span.start_ms,
        source: "backend",
        method,
        url,
        status: span_status(span),
        error: (!span.status.message.is_empty()).then(|| span.status.message.clone()),
        duration_ms: Some(span.duration_ms),
        service: Some(format!("{} ({})", span.service, span.kind)),
        trace_id: Some(span.trace_id.clone()),
        span_id: Some(span.span_id.clone()),
        request_headers: headers_of(rules, span, "http.request.header."),
        request_body: text_body("http.request.body"),
        response_headers: headers_of(rules, span, "http.response.header."),
        response_body: text_body("http.response.body"),
    }
}

/// The failing requests of a session, by time: each the recorder saw, then per failing trace the
/// outermost failing HTTP span (what the caller saw) and the innermost (where it failed).
pub fn failing_requests(data: &ExportData, max_body: usize) -> Vec<Request> {
    let rules = MaskingRules::default();
    let mut requests = Vec::new();
    for item in data.timeline.iter().filter(|item| item.kind == "network") {
        let payload = &item.detail;
        let status = payload.get("status").and_then(Value::as_u64);
        let error = payload
            .get("error")
            .filter(|e| !e.is_null())
            .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_string));
        if !(status.is_some_and(|s| s >= 400 || s == 0) || error.is_some()) {
            continue;
        }
        let text_body = |side: &str| {
            payload
                .get(side)
                .and_then(|s| s.get("body"))
                .and_then(Value::as_str)
                .map(|text| body(&rules, text, max_body))
        };
        requests.push(Request {
            time_ms: item.time_ms,
            source: "browser",
            method: payload.get("method").and_then(Value::as_str).unwrap_or("GET").to_string(),
            url: payload.get("url").and_then(Value::as_str).unwrap_or_default().to_string(),
            status,
            error,
            duration_ms: item.duration_ms,
            service: None,
            trace_id: item.trace_id.clone(),
            span_id: item.span_id.clone(),
            request_headers: headers_of_payload(&rules, payload.get("request").and_then(|r| r.get("headers"))),
            request_body: text_body("request"),
            response_headers: headers_of_payload(&rules, payload.get("response").and_then(|r| r.get("headers"))),
            response_body: text_body("response"),
        });
    }
    for (_, spans) in &data.detailed {
        let failing: Vec<&SpanView> = spans.iter().filter(|span| span_failed(span)).collect();
        if failing.is_empty() {
            continue;
        }
        let depth = depths(spans);
        let depth_of = |span: &SpanView| depth.get(span.span_id.as_str()).copied().unwrap_or(0);
        let outermost = failing.iter().min_by_key(|span| depth_of(span)).copied();
        let innermost = failing.iter().max_by_key(|span| depth_of(span)).copied();
        for span in [outermost, innermost].into_iter().flatten() {
            if !requests.iter().any(|r: &Request| r.span_id.as_deref() == Some(span.span_id.as_str())) {
                requests.push(from_span(&rules, span, max_body));
            }
        }
    }
    requests.sort_by(|a, b| a.time_ms.total_cmp(&b.time_ms));
    requests
}

/// Deepest ancestor walk: traces are never this deep, and a cycle of parents ends here.
pub const MAX_DEPTH: usize = 256;

/// Each span's depth in its trace (roots and spans with unknown parents are 0).
pub fn depths(spans: &[SpanView]) -> HashMap<&str, usize> {
    let parents: HashMap<&str, &str> =
        spans.iter().filter_map(|s| Some((s.span_id.as_str(), s.parent_span_id.as_deref()?))).collect();
    spans
        .iter()
        .map(|span| {
            let mut depth = 0;
            let mut current = span.span_id.as_str();
            // Bounded: a broken trace may name its parents in a cycle.
            while let Some(parent) = parents.get(current) {
                depth += 1;
                current = parent;
                if depth >= MAX_DEPTH {
                    break;
                }
            }
            (span.span_id.as_str(), depth)
        })
        .collect()
}

/// A request as JSON (the export's `requests`).
pub fn request_json(request: &Request) -> Value {
    let headers = |headers: &[(String, String)]| {
        Value::Object(headers.iter().map(|(name, value)| (name.clone(), Value::String(value.clone()))).collect())
    };
    let body = |body: &Option<Body>| {
        body.as_ref().map_or(Value::Null, |b| json!({"text": b.text, "bytes": b.bytes, "cut": b.cut}))
    };
    json!({
        "time_ms": request.time_ms,
        "source": request.source,
        "method": request.method,
        "url": request.url,
        "status": request.status,
        "error": request.error,
        "duration_ms": request.duration_ms,
        "service": request.service,
        "trace_id": request.trace_id,
        "span_id": request.span_id,
        "request": {"headers": headers(&request.request_headers), "body": body(&request.request_body)},
        "response": {"headers": headers(&request.response_headers), "body": body(&request.response_body)},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_masked_again_and_cut() {
        let rules = MaskingRules::default();
        let shown = body(&rules, r#"{"user":"ann","password":"hunter2"}"#, 2048);
        assert_eq!(shown.text, r#"{"user":"ann","password":"***MASKED***"}"#);
        assert!(!shown.cut);
        let long = format!(r#"{{"note":"{}","token":"abcdef"}}"#, "x".repeat(100));
        let cut = body(&rules, &long, 40);
        assert!(cut.cut);
        assert!(cut.text.len() <= 40 + MASKED.len());
        assert!(!cut.text.contains("abcdef"));
        assert_eq!(header_value(&rules, "Authorization", "Bearer x"), MASKED);
        assert_eq!(header_value(&rules, "content-type", "text/plain"), "text/plain");
    }
}
