//! Jaeger's query API JSON model (what Grafana's Jaeger data source and Jaeger UI read): traces as
//! `{traceID, spans[], processes{}}` with `spans[] = {traceID, spanID, operationName, references,
//! startTime, duration, tags, logs, processID, …}`, times and durations in microseconds; the OTLP kind,
//! status and scope become the tags Jaeger's own OTLP translation writes (`span.kind`, `error`,
//! `otel.status_code`, `otel.status_description`, `otel.scope.name`, `otel.scope.version`). Also the
//! search of `/api/traces?service=&operation=&tags=&minDuration=&maxDuration=` as a TraceQL filter.

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode};
use serde_json::{Map, Value, json};

use crate::search::StoredTrace;
use crate::traceql::{AttributeScope, Condition, Expr, Field, Intrinsic, Literal, Op, Pattern, Query};

fn tag(key: &str, value: &AnyValue) -> Value {
    match value.value.as_ref() {
        Some(any_value::Value::StringValue(text)) => json!({"key": key, "type": "string", "value": text}),
        Some(any_value::Value::BoolValue(flag)) => json!({"key": key, "type": "bool", "value": flag}),
        Some(any_value::Value::IntValue(int)) => json!({"key": key, "type": "int64", "value": int}),
        Some(any_value::Value::DoubleValue(float)) => json!({"key": key, "type": "float64", "value": float}),
        Some(any_value::Value::BytesValue(bytes)) => json!({"key": key, "type": "binary", "value": hex::encode(bytes)}),
        _ => json!({"key": key, "type": "string", "value": sessiontrace_ingest::anyvalue::to_json(value).to_string()}),
    }
}

fn string_tag(key: &str, value: &str) -> Value {
    json!({"key": key, "type": "string", "value": value})
}

fn tags(attributes: &[KeyValue]) -> Vec<Value> {
    attributes.iter().filter_map(|kv| kv.value.as_ref().map(|value| tag(&kv.key, value))).collect()
}

/// One trace in Jaeger's model. Processes are numbered `p1`, `p2`, … by resource, in order.
pub fn trace_json(trace_id: [u8; 16], trace: &StoredTrace) -> Value {
    let trace_hex = hex::encode(trace_id);
    let mut processes = Map::new();
    let mut spans = Vec::new();
    for (index, resource_spans) in trace.resource_spans.iter().enumerate() {
        let process_id = format!("p{}", index + 1);
        let resource = resource_spans.resource.as_ref().map_or(&[][..], |r| r.attributes.as_slice());
        let service = sessiontrace_ingest::traces::service_name(resource);
        let process_tags: Vec<Value> = resource
            .iter()
            .filter(|kv| kv.key != "service.name")
            .filter_map(|kv| kv.value.as_ref().map(|v| tag(&kv.key, v)))
            .collect();
        processes.insert(process_id.clone(), json!({"serviceName": service, "tags": process_tags}));
        for scope_spans in &resource_spans.scope_spans {
            for span in &scope_spans.spans {
                let mut span_tags = tags(&span.attributes);
                if let Some(scope) = scope_spans.scope.as_ref().filter(|s| !s.name.is_empty()) {
                    span_tags.push(string_tag("otel.scope.name", &scope.name));
                    if !scope.version.is_empty() {
                        span_tags.push(string_tag("otel.scope.version", &scope.version));
                    }
                }
                let kind = match SpanKind::try_from(span.kind) {
                    Ok(SpanKind::Server) => Some("server"),
                    Ok(SpanKind::Client) => Some("client"),
                    Ok(SpanKind::Producer) => Some("producer"),
                    Ok(SpanKind::Consumer) => Some("consumer"),
                    Ok(SpanKind::Internal) => Some("internal"),
                    _ => None,
                };
                if let Some(kind) = kind {
                    span_tags.push(string_tag("span.kind", kind));
                }
                if let Some(status) = &span.status {
                    match StatusCode::try_from(status.code) {
                        Ok(StatusCode::Error) => {
                            span_tags.push(json!({"key": "error", "type": "bool", "value": true}));
                            span_tags.push(string_tag("otel.status_code", "ERROR"));
                        }
                        Ok(StatusCode::Ok) => span_tags.push(string_tag("otel.status_code", "OK")),
                        _ => {}
                    }
                    if !status.message.is_empty() {
                        span_tags.push(string_tag("otel.status_description", &status.message));
                    }
                }
                let mut references = Vec::new();
                if !span.parent_span_id.is_empty() {
                    references.push(json!({
                        "refType": "CHILD_OF",
                        "traceID": trace_hex,
                        "spanID": hex::encode(&span.parent_span_id),
                    }));
                }
                for link in &span.links {
                    references.push(json!({
                        "refType": "FOLLOWS_FROM",
                        "traceID": hex::encode(&link.trace_id),
                        "spanID": hex::encode(&link.span_id),
                    }));
                }
                let logs: Vec<Value> = span
                    .events
                    .iter()
                    .map(|event| {
                        let mut fields = vec![string_tag("event", &event.name)];
                        fields.extend(tags(&event.attributes));
                        json!({"timestamp": event.time_unix_nano / 1_000, "fields": fields})
                    })
                    .collect();
                spans.push(json!({
                    "traceID": trace_hex,
                    "spanID": hex::encode(&span.span_id),
                    "operationName": span.name,
                    "references": references,
                    "startTime": span.start_time_unix_nano / 1_000,
                    "duration": span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano) / 1_000,
                    "tags": span_tags,
                    "logs": logs,
                    "processID": process_id,
                    "warnings": null,
                    "flags": span.flags & 0xff,
                }));
            }
        }
    }
    json!({"traceID": trace_hex, "spans": spans, "processes": processes, "warnings": null})
}

/// One trace as Jaeger's v3 `TraceSummary` (what Jaeger UI 2.19+ lists as a search result, from
/// `/api/v3/trace-summaries`): root service and operation (the earliest span without a parent), first
/// start and last end in Unix ns as decimal strings, span, error and orphan counts (a parent that is not
/// in the trace), and per service its span and error counts.
pub fn trace_summary_json(trace_id: [u8; 16], trace: &StoredTrace) -> Value {
    use std::collections::{BTreeMap, HashSet};
    let ids: HashSet<&[u8]> = trace.spans().map(|(_, span)| span.span_id.as_slice()).collect();
    let (mut min_start, mut max_end) = (u64::MAX, 0u64);
    let (mut errors, mut orphans) = (0usize, 0usize);
    let mut root: Option<(String, &opentelemetry_proto::tonic::trace::v1::Span)> = None;
    let mut services: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (resource_spans, span) in trace.spans() {
        let resource = resource_spans.resource.as_ref().map_or(&[][..], |r| r.attributes.as_slice());
        let service = sessiontrace_ingest::traces::service_name(resource);
        let failed = span.status.as_ref().is_some_and(|s| s.code == StatusCode::Error as i32);
        min_start = min_start.min(span.start_time_unix_nano);
        max_end = max_end.max(span.end_time_unix_nano);
        errors += usize::from(failed);
        let counts = services.entry(service.clone()).or_default();
        counts.0 += 1;
        counts.1 += usize::from(failed);
        if span.parent_span_id.is_empty() {
            if root.as_ref().is_none_or(|(_, r)| span.start_time_unix_nano < r.start_time_unix_nano) {
                root = Some((service, span));
            }
        } else if !ids.contains(span.parent_span_id.as_slice()) {
            orphans += 1;
        }
    }
    let (root_service, root_operation) =
        root.map_or((String::new(), ""), |(service, span)| (service, span.name.as_str()));
    let services: Vec<Value> = services
        .into_iter()
        .map(|(name, (spans, errors))| json!({"name": name, "spanCount": spans, "errorSpanCount": errors}))
        .collect();
    json!({
        "traceId": hex::encode(trace_id),
        "rootServiceName": root_service,
        "rootOperationName": root_operation,
        "minStartTimeUnixNano": if min_start == u64::MAX { 0 } else { min_start }.to_string(),
        "maxEndTimeUnixNano": max_end.to_string(),
        "spanCount": trace.span_count,
        "errorSpanCount": errors,
        "orphanSpanCount": orphans,
        "services": services,
    })
}

/// Jaeger's response envelope.
pub fn envelope(data: Value, total: usize) -> Value {
    json!({"data": data, "total": total, "limit": 0, "offset": 0, "errors": null})
}

/// A Go duration (`1.5s`, `100ms`, `250us`, `2m`, `1h`) or plain microseconds, in nanoseconds.
pub fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(micros) = text.parse::<i64>() {
        return Some(micros.saturating_mul(1_000));
    }
    let units = [("ns", 1.0), ("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9)];
    for (unit, scale) in units {
        if let Some(number) = text.strip_suffix(unit)
            && let Ok(value) = number.parse::<f64>()
            && value.is_finite()
            && value >= 0.0
        {
            return Some((value * scale).round() as i64);
        }
    }
    None
}

/// The tags filter: JSON (`{"k":"v"}`) or logfmt (`k=v k2="v 2"`).
pub fn parse_tags(text: &str) -> Result<Vec<(String, String)>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(vec![]);
    }
    if text.starts_with('{') {
        let object: Map<String, Value> = serde_json::from_str(text).map_err(|e| format!("invalid tags JSON: {e}"))?;
        return Ok(object
            .into_iter()
            .map(|(key, value)| (key, value.as_str().map_or_else(|| value.to_string(), str::to_string)))
            .collect());
    }
    let mut pairs = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=').ok_or_else(|| format!("invalid tags {text:?}: expected key=value"))?;
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').ok_or_else(|| format!("invalid tags {text:?}: unterminated quote"))?;
            (quoted[..end].to_string(), &quoted[end + 1..])
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        pairs.push((key.trim().to_string(), value));
        rest = next.trim_start();
    }
    Ok(pairs)
}

fn condition(field: Field, op: Op, value: Literal) -> Expr {
    Expr::Condition(Condition { field, op, value, regex: None::<Pattern> })
}

/// The span filter of a Jaeger search: a span of the service, with the operation, every tag and a
/// duration within the bounds. A tag matches a string attribute equal to its text, or a number or
/// boolean attribute equal to its parsed value.
pub fn search_query(
    service: Option<&str>,
    operation: Option<&str>,
    tags: &[(String, String)],
    min_duration_nanos: Option<i64>,
    max_duration_nanos: Option<i64>,
) -> Query {
    let mut parts: Vec<Expr> = Vec::new();
    if let Some(service) = service {
        parts.push(condition(
            Field::Attribute(AttributeScope::Resource, "service.name".into()),
            Op::Eq,
            Literal::String(service.into()),
        ));
    }
    if let Some(operation) = operation {
        parts.push(condition(Field::Intrinsic(Intrinsic::Name), Op::Eq, Literal::String(operation.into())));
    }
    for (key, value) in tags {
        let field = || Field::Attribute(AttributeScope::Any, key.clone());
        let mut alternatives = condition(field(), Op::Eq, Literal::String(value.clone()));
        let typed = if let Ok(int) = value.parse::<i64>() {
            Some(Literal::Int(int))
        } else if let Ok(float) = value.parse::<f64>() {
            Some(Literal::Float(float))
        } else {
            value.parse::<bool>().ok().map(Literal::Bool)
        };
        if let Some(typed) = typed {
            alternatives = Expr::Or(Box::new(alternatives), Box::new(condition(field(), Op::Eq, typed)));
        }
        if key == "error" && value == "true" {
            alternatives = Expr::Or(
                Box::new(alternatives),
                Box::new(condition(
                    Field::Intrinsic(Intrinsic::Status),
                    Op::Eq,
                    Literal::Status(crate::traceql::StatusValue::Error),
                )),
            );
        }
        parts.push(alternatives);
    }
    if let Some(min) = min_duration_nanos {
        parts.push(condition(Field::Intrinsic(Intrinsic::Duration), Op::Ge, Literal::Duration(min)));
    }
    if let Some(max) = max_duration_nanos {
        parts.push(condition(Field::Intrinsic(Intrinsic::Duration), Op::Le, Literal::Duration(max)));
    }
    let filter = parts.into_iter().reduce(|left, right| Expr::And(Box::new(left), Box::new(right)));
    Query { filter }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_tags_parse_leniently() {
        assert_eq!(parse_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_duration("100ms"), Some(100_000_000));
        assert_eq!(parse_duration("250us"), Some(250_000));
        assert_eq!(parse_duration("2m"), Some(120_000_000_000));
        assert_eq!(parse_duration("1500"), Some(1_500_000));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_tags(r#"{"http.status_code":"500","error":"true"}"#).unwrap().len(), 2);
        assert_eq!(
            parse_tags(r#"http.method=GET note="a b""#).unwrap(),
            vec![("http.method".to_string(), "GET".to_string()), ("note".to_string(), "a b".to_string())]
        );
        assert!(parse_tags("novalue").is_err());
    }

    #[test]
    fn a_search_is_a_span_filter() {
        let query =
            search_query(Some("api"), Some("GET /"), &[("http.status_code".into(), "500".into())], Some(1_000), None);
        assert_eq!(
            query.to_string(),
            r#"{ (((resource.service.name = "api" && name = "GET /") && (.http.status_code = "500" || .http.status_code = 500)) && duration >= 1000ns) }"#
        );
        assert_eq!(query.index_hints().service.as_deref(), Some("api"));
    }
}
