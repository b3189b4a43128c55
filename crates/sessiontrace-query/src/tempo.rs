//! Tempo's HTTP API shapes (what Grafana's Tempo data source decodes): trace by id as Tempo's
//! `TraceByIDResponse` protobuf or JSON, the bare trace (`/api/traces/{id}`), search results, and the tag
//! names and values of the search drop-downs. The protobuf messages are written here from Tempo's published
//! field numbers (`tempopb`): `Trace { repeated ResourceSpans resourceSpans = 1 }` and
//! `TraceByIDResponse { Trace trace = 1; TraceByIDMetrics metrics = 2; PartialStatus status = 3;
//! string message = 4 }` with `PartialStatus { COMPLETE = 0; PARTIAL = 1 }`.

use std::collections::BTreeSet;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use prost::Message;
use serde_json::{Value, json};
use sessiontrace_model::project::Project;
use sessiontrace_store::{Store, StoreError, TraceSearch};

use crate::search::{SearchOutcome, StoredTrace, TRACE_SPAN_CAP, load_trace};
use crate::traceql::{AttributeScope, Intrinsic};

/// Tempo's `Trace` (tempopb): the trace's spans by resource.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TempoTrace {
    #[prost(message, repeated, tag = "1")]
    pub resource_spans: Vec<ResourceSpans>,
}

/// Tempo's `TraceByIDResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TraceByIdResponse {
    #[prost(message, optional, tag = "1")]
    pub trace: Option<TempoTrace>,
    /// `PartialStatus`: 0 COMPLETE, 1 PARTIAL.
    #[prost(int32, tag = "3")]
    pub status: i32,
    #[prost(string, tag = "4")]
    pub message: String,
}

pub const STATUS_COMPLETE: i32 = 0;
pub const STATUS_PARTIAL: i32 = 1;

fn partial_message(trace: &StoredTrace) -> String {
    if trace.truncated { format!("trace cut at {TRACE_SPAN_CAP} spans") } else { String::new() }
}

/// `/api/v2/traces/{id}` as protobuf.
pub fn trace_by_id_protobuf(trace: &StoredTrace) -> Vec<u8> {
    TraceByIdResponse {
        trace: Some(TempoTrace { resource_spans: trace.resource_spans.clone() }),
        status: if trace.truncated { STATUS_PARTIAL } else { STATUS_COMPLETE },
        message: partial_message(trace),
    }
    .encode_to_vec()
}

/// `/api/v2/traces/{id}` as JSON: `{"trace":{"resourceSpans":[…]}}`, plus `status` and `message` when cut.
pub fn trace_by_id_json(trace: &StoredTrace) -> Value {
    let mut body = json!({"trace": {"resourceSpans": resource_spans_json(trace)}});
    if trace.truncated {
        body["status"] = json!("PARTIAL");
        body["message"] = json!(partial_message(trace));
    }
    body
}

/// `/api/traces/{id}` as protobuf: the bare `Trace`.
pub fn trace_protobuf(trace: &StoredTrace) -> Vec<u8> {
    TempoTrace { resource_spans: trace.resource_spans.clone() }.encode_to_vec()
}

/// `/api/traces/{id}` as JSON: Tempo's v1 shape, `{"batches":[…]}` (OTLP JSON resource spans).
pub fn trace_json(trace: &StoredTrace) -> Value {
    json!({"batches": resource_spans_json(trace)})
}

fn resource_spans_json(trace: &StoredTrace) -> Value {
    serde_json::to_value(&trace.resource_spans).unwrap_or(Value::Array(vec![]))
}

fn key_value_json(key: &str, value: &AnyValue) -> Value {
    json!({"key": key, "value": serde_json::to_value(value).unwrap_or(Value::Null)})
}

/// The search answer, in Tempo's names: `traces[]` with `traceID, rootServiceName, rootTraceName,
/// startTimeUnixNano, durationMs, spanSets[{spans[{spanID, name, startTimeUnixNano, durationNanos,
/// attributes}], matched}]` and `metrics`. Each span set lists at most `spans_per_set` spans, with the
/// attributes the query read and the span's `service.name`.
pub fn search_json(outcome: &SearchOutcome, query: &crate::traceql::Query, spans_per_set: usize) -> Value {
    let read_attributes = query.attributes();
    let traces: Vec<Value> = outcome
        .traces
        .iter()
        .map(|found| {
            let spans: Vec<_> = found.trace.spans().collect();
            let shown: Vec<Value> = found
                .matched
                .iter()
                .take(spans_per_set)
                .map(|&position| {
                    let (resource_spans, span) = spans[position];
                    let resource = resource_spans.resource.as_ref().map_or(&[][..], |r| r.attributes.as_slice());
                    let mut attributes: Vec<Value> = Vec::new();
                    let mut add = |attributes_of: &[KeyValue], name: &str| {
                        if let Some(value) =
                            attributes_of.iter().find(|kv| kv.key == name).and_then(|kv| kv.value.as_ref())
                            && !attributes.iter().any(|a| a["key"] == name)
                        {
                            attributes.push(key_value_json(name, value));
                        }
                    };
                    add(resource, "service.name");
                    for (scope, name) in &read_attributes {
                        if *scope != AttributeScope::Resource {
                            add(&span.attributes, name);
                        }
                        if *scope != AttributeScope::Span {
                            add(resource, name);
                        }
                    }
                    json!({
                        "spanID": hex::encode(&span.span_id),
                        "name": span.name,
                        "startTimeUnixNano": span.start_time_unix_nano.to_string(),
                        "durationNanos": span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano).to_string(),
                        "attributes": attributes,
                    })
                })
                .collect();
            let (root_name, root_service) = found.summary.root.clone().unzip();
            let duration_ms = (found.summary.end_unix_nano - found.summary.start_unix_nano).max(0) / 1_000_000;
            json!({
                "traceID": hex::encode(found.summary.trace_id),
                "rootServiceName": root_service.unwrap_or_else(|| "<root span not yet received>".into()),
                "rootTraceName": root_name.unwrap_or_default(),
                "startTimeUnixNano": found.summary.start_unix_nano.to_string(),
                "durationMs": duration_ms,
                "spanSets": [{"spans": shown, "matched": found.matched.len()}],
            })
        })
        .collect();
    json!({
        "traces": traces,
        "metrics": {
            "inspectedTraces": outcome.inspected_traces,
            "inspectedBytes": outcome.inspected_bytes.to_string(),
        },
    })
}

/// How many recent traces are decoded to list attribute names and values.
pub const TAG_SAMPLE_TRACES: u32 = 200;
/// How many values a tag lists at most.
pub const TAG_VALUES_CAP: usize = 1_000;

async fn sample_traces(
    store: &dyn Store,
    project: &Project,
    from_unix_nano: Option<i64>,
    to_unix_nano: Option<i64>,
) -> Result<Vec<StoredTrace>, StoreError> {
    let search = TraceSearch { from_unix_nano, to_unix_nano, limit: TAG_SAMPLE_TRACES, ..Default::default() };
    let mut traces = Vec::new();
    for summary in store.search_traces(project, &search).await? {
        traces.push(load_trace(store, project, summary.trace_id).await?);
    }
    Ok(traces)
}

/// `/api/v2/search/tags`: attribute names of recent traces by scope, and the intrinsics; only the scope
/// asked for (`resource`, `span`, `intrinsic`) when one is, every scope for none or `all`.
pub async fn tags_json(
    store: &dyn Store,
    project: &Project,
    scope: Option<&str>,
    from_unix_nano: Option<i64>,
    to_unix_nano: Option<i64>,
) -> Result<Value, StoreError> {
    let mut resource_tags = BTreeSet::from(["service.name".to_string()]);
    let mut span_tags = BTreeSet::new();
    for trace in sample_traces(store, project, from_unix_nano, to_unix_nano).await? {
        for (resource_spans, span) in trace.spans() {
            if let Some(resource) = &resource_spans.resource {
                resource_tags.extend(resource.attributes.iter().map(|kv| kv.key.clone()));
            }
            span_tags.extend(span.attributes.iter().map(|kv| kv.key.clone()));
        }
    }
    let intrinsics: Vec<String> = Intrinsic::ALL.iter().map(|(name, _)| name.to_string()).collect();
    let scopes: Vec<Value> = [
        ("resource", resource_tags.into_iter().collect()),
        ("span", span_tags.into_iter().collect()),
        ("intrinsic", intrinsics),
    ]
    .into_iter()
    .filter(|(name, _)| scope.is_none_or(|wanted| wanted == "all" || wanted == *name))
    .map(|(name, tags): (&str, Vec<String>)| json!({"name": name, "tags": tags}))
    .collect();
    Ok(json!({"scopes": scopes}))
}

fn typed_value(value: &AnyValue) -> Option<(&'static str, String)> {
    match value.value.as_ref()? {
        any_value::Value::StringValue(text) => Some(("string", text.clone())),
        any_value::Value::IntValue(int) => Some(("int", int.to_string())),
        any_value::Value::DoubleValue(float) => Some(("float", float.to_string())),
        any_value::Value::BoolValue(boolean) => Some(("bool", boolean.to_string())),
        _ => None,
    }
}

/// `/api/v2/search/tag/{name}/values`: `{"tagValues":[{"type","value"}]}` for a scoped name
/// (`resource.x`, `span.x`, `.x`) or an intrinsic. Services and root names come from the trace index,
/// other values from recent traces.
pub async fn tag_values_json(
    store: &dyn Store,
    project: &Project,
    name: &str,
    from_unix_nano: Option<i64>,
    to_unix_nano: Option<i64>,
) -> Result<Value, StoreError> {
    let mut values: BTreeSet<(&'static str, String)> = BTreeSet::new();
    let keyword = |names: &[&str]| names.iter().map(|n| ("keyword", n.to_string())).collect::<BTreeSet<_>>();
    match name {
        "status" => values = keyword(&["error", "ok", "unset"]),
        "kind" => values = keyword(&["unspecified", "internal", "server", "client", "producer", "consumer"]),
        "resource.service.name" | "rootServiceName" | "rootName" | "service.name" => {
            let catalog = store.trace_catalog(project, from_unix_nano, to_unix_nano).await?;
            match name {
                "rootServiceName" => values.extend(catalog.root_operations.into_iter().map(|(s, _)| ("string", s))),
                "rootName" => values.extend(catalog.root_operations.into_iter().map(|(_, n)| ("string", n))),
                _ => values.extend(catalog.services.into_iter().map(|s| ("string", s))),
            }
        }
        _ => {
            let (scope, key) = if let Some(key) = name.strip_prefix("resource.") {
                (AttributeScope::Resource, key)
            } else if let Some(key) = name.strip_prefix("span.") {
                (AttributeScope::Span, key)
            } else if let Some(key) = name.strip_prefix('.') {
                (AttributeScope::Any, key)
            } else {
                (AttributeScope::Any, name)
            };
            let intrinsic = Intrinsic::ALL.iter().find(|(n, _)| *n == name).map(|(_, i)| *i);
            for trace in sample_traces(store, project, from_unix_nano, to_unix_nano).await? {
                for (resource_spans, span) in trace.spans() {
                    if values.len() >= TAG_VALUES_CAP {
                        break;
                    }
                    if intrinsic == Some(Intrinsic::Name) {
                        values.insert(("string", span.name.clone()));
                        continue;
                    }
                    if intrinsic == Some(Intrinsic::StatusMessage) {
                        if let Some(status) = span.status.as_ref().filter(|s| !s.message.is_empty()) {
                            values.insert(("string", status.message.clone()));
                        }
                        continue;
                    }
                    let resource = resource_spans.resource.as_ref().map_or(&[][..], |r| r.attributes.as_slice());
                    let mut sources: Vec<&[KeyValue]> = Vec::new();
                    if scope != AttributeScope::Resource {
                        sources.push(&span.attributes);
                    }
                    if scope != AttributeScope::Span {
                        sources.push(resource);
                    }
                    for attributes in sources {
                        if let Some(found) = attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref())
                            && let Some(typed) = typed_value(found)
                        {
                            values.insert(typed);
                        }
                    }
                }
            }
        }
    }
    let tag_values: Vec<Value> =
        values.into_iter().take(TAG_VALUES_CAP).map(|(kind, value)| json!({"type": kind, "value": value})).collect();
    Ok(json!({"tagValues": tag_values}))
}
