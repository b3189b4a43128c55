//! Spans read back from stored blocks: every block that holds a trace is decoded, its spans of that trace
//! kept, and each span rendered with its resource, scope, attributes, events, links and status.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind, status::StatusCode};
use prost::Message;
use serde::Serialize;
use serde_json::{Map, Value};
use sessiontrace_ingest::anyvalue::attributes_to_map;
use sessiontrace_ingest::normalize::session_key;
use sessiontrace_ingest::traces::service_name;
use sessiontrace_model::project::Project;
use sessiontrace_store::{LogFilter, Store, StoreError, TraceSummary};

use crate::nanos_to_ms;

/// One span as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SpanView {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub name: String,
    pub kind: &'static str,
    pub service: String,
    pub start_time_unix_nano: String,
    pub end_time_unix_nano: String,
    pub start_ms: f64,
    pub end_ms: f64,
    pub duration_ms: f64,
    pub status: StatusView,
    pub attributes: Map<String, Value>,
    pub events: Vec<Value>,
    pub links: Vec<Value>,
    pub resource: Map<String, Value>,
    pub scope: Value,
    pub session_id: Option<String>,
}

impl SpanView {
    /// A span the browser's OpenTelemetry SDK made (the recorder's fetch/XHR spans), not a backend's.
    pub fn is_browser(&self) -> bool {
        self.resource.get("telemetry.sdk.language").and_then(serde_json::Value::as_str) == Some("webjs")
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatusView {
    pub code: &'static str,
    pub message: String,
}

fn kind_name(kind: i32) -> &'static str {
    match SpanKind::try_from(kind) {
        Ok(SpanKind::Internal) => "internal",
        Ok(SpanKind::Server) => "server",
        Ok(SpanKind::Client) => "client",
        Ok(SpanKind::Producer) => "producer",
        Ok(SpanKind::Consumer) => "consumer",
        _ => "unspecified",
    }
}

fn span_view(
    span: &Span,
    service: &str,
    resource: &Map<String, Value>,
    scope: &Value,
    resource_session: Option<&str>,
) -> SpanView {
    let status = span.status.as_ref();
    let code = match status.map(|s| StatusCode::try_from(s.code)) {
        Some(Ok(StatusCode::Ok)) => "ok",
        Some(Ok(StatusCode::Error)) => "error",
        _ => "unset",
    };
    let start = span.start_time_unix_nano as i64;
    let end = span.end_time_unix_nano.max(span.start_time_unix_nano) as i64;
    SpanView {
        trace_id: hex::encode(&span.trace_id),
        span_id: hex::encode(&span.span_id),
        parent_span_id: (!span.parent_span_id.is_empty()).then(|| hex::encode(&span.parent_span_id)),
        name: span.name.clone(),
        kind: kind_name(span.kind),
        service: service.to_string(),
        start_time_unix_nano: span.start_time_unix_nano.to_string(),
        end_time_unix_nano: span.end_time_unix_nano.to_string(),
        start_ms: nanos_to_ms(start),
        end_ms: nanos_to_ms(end),
        duration_ms: (end - start) as f64 / 1_000_000.0,
        status: StatusView { code, message: status.map(|s| s.message.clone()).unwrap_or_default() },
        attributes: attributes_to_map(&span.attributes),
        events: span
            .events
            .iter()
            .map(|event| {
                serde_json::json!({
                    "name": event.name,
                    "time_unix_nano": event.time_unix_nano.to_string(),
                    "time_ms": nanos_to_ms(event.time_unix_nano as i64),
                    "attributes": attributes_to_map(&event.attributes),
                })
            })
            .collect(),
        links: span
            .links
            .iter()
            .map(|link| {
                serde_json::json!({
                    "trace_id": hex::encode(&link.trace_id),
                    "span_id": hex::encode(&link.span_id),
                    "attributes": attributes_to_map(&link.attributes),
                })
            })
            .collect(),
        resource: resource.clone(),
        scope: scope.clone(),
        session_id: session_key(&span.trace_id, &span.attributes, resource_session),
    }
}

/// Every stored span of a trace, sorted by start time; empty when the trace is unknown.
pub async fn trace_spans(
    store: &dyn Store,
    project: &Project,
    trace_id: [u8; 16],
) -> Result<Vec<SpanView>, StoreError> {
    let blocks = store.trace_blocks(project, trace_id).await?;
    let mut spans = Vec::new();
    for block in blocks {
        let request = ExportTraceServiceRequest::decode(block.as_slice())
            .map_err(|e| StoreError::Internal(format!("stored block does not decode: {e}")))?;
        for resource_spans in &request.resource_spans {
            let resource_attributes = resource_spans.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or(&[]);
            let service = service_name(resource_attributes);
            let resource = attributes_to_map(resource_attributes);
            let resource_session = sessiontrace_ingest::normalize::session_attribute(resource_attributes);
            for scope_spans in &resource_spans.scope_spans {
                let scope = scope_spans
                    .scope
                    .as_ref()
                    .map_or(Value::Null, |scope| serde_json::json!({"name": scope.name, "version": scope.version}));
                for span in scope_spans.spans.iter().filter(|span| span.trace_id == trace_id) {
                    spans.push(span_view(span, &service, &resource, &scope, resource_session));
                }
            }
        }
    }
    spans.sort_by(|a, b| a.start_ms.total_cmp(&b.start_ms));
    Ok(spans)
}

/// A trace summary as the API shows it.
pub fn trace_summary_json(trace: &TraceSummary) -> Value {
    let (root_name, root_service) = trace.root.clone().unzip();
    serde_json::json!({
        "trace_id": hex::encode(trace.trace_id),
        "root_name": root_name,
        "root_service": root_service,
        "services": trace.services,
        "start_ms": nanos_to_ms(trace.start_unix_nano),
        "end_ms": nanos_to_ms(trace.end_unix_nano),
        "duration_ms": (trace.end_unix_nano - trace.start_unix_nano) as f64 / 1_000_000.0,
        "span_count": trace.span_count,
        "error_count": trace.error_count,
    })
}

/// Log records as the API shows them.
pub async fn logs_json(store: &dyn Store, project: &Project, filter: &LogFilter) -> Result<Vec<Value>, StoreError> {
    let records = store.logs(project, filter).await?;
    Ok(records
        .into_iter()
        .map(|log| {
            let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
            serde_json::json!({
                "time_unix_nano": log.time_unix_nano.to_string(),
                "time_ms": nanos_to_ms(log.time_unix_nano),
                "severity_text": log.severity_text,
                "severity_number": log.severity_number,
                "body": log.body,
                "trace_id": log.trace_id.map(hex::encode),
                "span_id": log.span_id.map(hex::encode),
                "service": log.service,
                "attributes": parse(&log.attributes_json),
                "resource": parse(&log.resource_json),
                "session_id": log.session_key,
            })
        })
        .collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A span for the analysis and signals tests.
    pub(crate) fn span(
        trace: &str,
        id: &str,
        parent: Option<&str>,
        service: &str,
        start: f64,
        end: f64,
        error: bool,
    ) -> SpanView {
        SpanView {
            trace_id: trace.into(),
            span_id: id.into(),
            parent_span_id: parent.map(str::to_string),
            name: format!("{service} op"),
            kind: "server",
            service: service.into(),
            start_time_unix_nano: String::new(),
            end_time_unix_nano: String::new(),
            start_ms: start,
            end_ms: end,
            duration_ms: end - start,
            status: StatusView { code: if error { "error" } else { "ok" }, message: String::new() },
            attributes: Default::default(),
            events: vec![],
            links: vec![],
            resource: Default::default(),
            scope: serde_json::Value::Null,
            session_id: None,
        }
    }
}
