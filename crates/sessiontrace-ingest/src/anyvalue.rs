//! OTLP `AnyValue` and attribute lists as JSON, for storage of logs and metrics and for the query API.

use base64::Engine;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as Kind};
use serde_json::{Map, Value};

/// One value as JSON: strings, bools, numbers, arrays, kvlists as objects, bytes as base64.
pub fn to_json(value: &AnyValue) -> Value {
    match &value.value {
        None => Value::Null,
        Some(Kind::StringValue(text)) => Value::String(text.clone()),
        Some(Kind::BoolValue(flag)) => Value::Bool(*flag),
        Some(Kind::IntValue(number)) => Value::from(*number),
        Some(Kind::DoubleValue(number)) => serde_json::Number::from_f64(*number).map_or(Value::Null, Value::Number),
        Some(Kind::ArrayValue(array)) => Value::Array(array.values.iter().map(to_json).collect()),
        Some(Kind::KvlistValue(list)) => Value::Object(attributes_to_map(&list.values)),
        Some(Kind::BytesValue(bytes)) => Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
        // String-table references exist only in the profiles signal, which is not received.
        Some(Kind::StringValueStrindex(_)) => Value::Null,
    }
}

/// Attributes as a JSON object (a later duplicate key wins).
pub fn attributes_to_map(attributes: &[KeyValue]) -> Map<String, Value> {
    attributes.iter().map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(Value::Null, to_json))).collect()
}

/// Attributes as a JSON object string.
pub fn attributes_to_json_string(attributes: &[KeyValue]) -> String {
    Value::Object(attributes_to_map(attributes)).to_string()
}

/// The string value of attribute `key`, if present and a string.
pub fn string_attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
        Kind::StringValue(text) => Some(text.as_str()),
        _ => None,
    })
}

/// The text of a log body: a string as is, anything else as JSON.
pub fn body_text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(Kind::StringValue(text)) => text.clone(),
        Some(_) => to_json(value.expect("checked above")).to_string(),
    }
}
