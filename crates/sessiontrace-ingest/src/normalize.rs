//! Span and log attributes made safe and uniform before storage:
//! - `multiplayer.http.*` capture keys become the OpenTelemetry keys of DESIGN.md section 5;
//! - captured secrets are masked again (headers by name, bodies by JSON key), whatever the SDK did;
//! - over-long string values are cut;
//! - the session a span belongs to is read from its trace id or its `session.id` attributes.

use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, any_value::Value as Kind};
use sessiontrace_model::masking::{MASKED, MaskingRules};
use sessiontrace_model::session_of_trace_id;

use crate::anyvalue::string_attribute;

const REQUEST_HEADER_PREFIX: &str = "http.request.header.";
const RESPONSE_HEADER_PREFIX: &str = "http.response.header.";
const BODY_KEYS: [&str; 2] = ["http.request.body", "http.response.body"];
/// Attribute keys that name the session a span or log belongs to.
pub const SESSION_ATTRIBUTE_KEYS: [&str; 2] = ["session.id", "multiplayer.session.id"];

/// Rewrites `attributes` in place; returns true when anything changed (the block must be re-encoded).
pub fn normalize_attributes(attributes: &mut Vec<KeyValue>, rules: &MaskingRules, max_value_bytes: usize) -> bool {
    let mut changed = false;
    if attributes.iter().any(|kv| kv.key.starts_with("multiplayer.http.")) {
        changed |= rename_multiplayer_keys(attributes);
    }
    for kv in attributes.iter_mut() {
        let key = kv.key.as_str();
        let header = key.strip_prefix(REQUEST_HEADER_PREFIX).or_else(|| key.strip_prefix(RESPONSE_HEADER_PREFIX));
        if let Some(name) = header {
            if rules.is_masked_header(name) {
                changed |= mask_whole_value(&mut kv.value);
            }
        } else if BODY_KEYS.contains(&key)
            && let Some(Kind::StringValue(body)) = kv.value.as_mut().and_then(|v| v.value.as_mut())
            && let Some(masked) = rules.mask_body(body)
        {
            *body = masked;
            changed = true;
        }
        changed |= cut_long_strings(&mut kv.value, max_value_bytes);
    }
    changed
}

/// Replaces a header's value with the mask: a single value of any kind (string, bytes, a number, a
/// nested list) becomes the masked string, and so does each item of an array (a header sent several
/// times). True when it changed anything.
fn mask_whole_value(value: &mut Option<AnyValue>) -> bool {
    let Some(kind) = value.as_mut().and_then(|v| v.value.as_mut()) else { return false };
    match kind {
        Kind::ArrayValue(array) => array.values.iter_mut().fold(false, |changed, item| mask_one(item) | changed),
        _ => mask_one(value.as_mut().expect("checked above")),
    }
}

fn mask_one(value: &mut AnyValue) -> bool {
    match &value.value {
        None => false,
        Some(Kind::StringValue(text)) if text == MASKED => false,
        Some(_) => {
            value.value = Some(Kind::StringValue(MASKED.to_string()));
            true
        }
    }
}

fn cut_long_strings(value: &mut Option<AnyValue>, max_value_bytes: usize) -> bool {
    let Some(Kind::StringValue(text)) = value.as_mut().and_then(|v| v.value.as_mut()) else {
        return false;
    };
    if text.len() <= max_value_bytes {
        return false;
    }
    let mut cut = max_value_bytes;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    true
}

/// `multiplayer.http.request.body` → `http.request.body`, and the JSON-object header attributes
/// `multiplayer.http.request.headers` → one `http.request.header.<name>` string array per header.
fn rename_multiplayer_keys(attributes: &mut Vec<KeyValue>) -> bool {
    let mut changed = false;
    let mut expanded = Vec::new();
    attributes.retain_mut(|kv| {
        let (prefix, is_headers) = match kv.key.as_str() {
            "multiplayer.http.request.body" => ("http.request.body", false),
            "multiplayer.http.response.body" => ("http.response.body", false),
            "multiplayer.http.request.headers" => (REQUEST_HEADER_PREFIX, true),
            "multiplayer.http.response.headers" => (RESPONSE_HEADER_PREFIX, true),
            _ => return true,
        };
        changed = true;
        if !is_headers {
            kv.key = prefix.to_string();
            return true;
        }
        for (name, values) in header_pairs(kv.value.as_ref()) {
            let array = values.into_iter().map(|v| AnyValue { value: Some(Kind::StringValue(v)) }).collect();
            expanded.push(KeyValue {
                key: format!("{prefix}{}", name.to_ascii_lowercase()),
                value: Some(AnyValue { value: Some(Kind::ArrayValue(ArrayValue { values: array })) }),
                ..Default::default()
            });
        }
        false
    });
    attributes.extend(expanded);
    changed
}

/// Header name/values from a JSON-object string or a kvlist value.
fn header_pairs(value: Option<&AnyValue>) -> Vec<(String, Vec<String>)> {
    let text_of = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match value.and_then(|v| v.value.as_ref()) {
        Some(Kind::StringValue(json)) => match serde_json::from_str::<serde_json::Value>(json) {
            Ok(serde_json::Value::Object(map)) => map
                .iter()
                .map(|(name, v)| match v {
                    serde_json::Value::Array(items) => (name.clone(), items.iter().map(text_of).collect()),
                    other => (name.clone(), vec![text_of(other)]),
                })
                .collect(),
            _ => vec![],
        },
        Some(Kind::KvlistValue(list)) => list
            .values
            .iter()
            .map(|kv| {
                let json = kv.value.as_ref().map_or(serde_json::Value::Null, crate::anyvalue::to_json);
                match json {
                    serde_json::Value::Array(items) => (kv.key.clone(), items.iter().map(text_of).collect()),
                    other => (kv.key.clone(), vec![text_of(&other)]),
                }
            })
            .collect(),
        _ => vec![],
    }
}

/// The session a span belongs to: the short id in its trace id, else a session attribute of the span,
/// else one of its resource.
pub fn session_key(trace_id: &[u8], attributes: &[KeyValue], resource_session: Option<&str>) -> Option<String> {
    if let Some((_, short_id)) = session_of_trace_id(trace_id) {
        return Some(short_id.to_hex());
    }
    session_attribute(attributes).or(resource_session).map(str::to_string)
}

/// The value of `session.id` or `multiplayer.session.id`, when set and not empty.
pub fn session_attribute(attributes: &[KeyValue]) -> Option<&str> {
    SESSION_ATTRIBUTE_KEYS.iter().find_map(|key| string_attribute(attributes, key)).filter(|value| !value.is_empty())
}

/// Checks an OTLP id field; `optional` allows an empty value (parent span id, log trace context).
pub fn check_id(bytes: &[u8], expected: usize, what: &str, optional: bool) -> Result<(), String> {
    if bytes.is_empty() && optional {
        return Ok(());
    }
    if bytes.len() != expected {
        return Err(format!(
            "{what} must be {expected} bytes ({} hex characters), got {} bytes",
            expected * 2,
            bytes.len()
        ));
    }
    if bytes.iter().all(|b| *b == 0) {
        return Err(format!("{what} must not be all zeros"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string_value(text: String) -> Option<AnyValue> {
        Some(AnyValue { value: Some(Kind::StringValue(text)) })
    }

    fn string_kv(key: &str, value: &str) -> KeyValue {
        KeyValue { key: key.into(), value: string_value(value.into()), ..Default::default() }
    }

    fn rendered(attributes: &[KeyValue]) -> serde_json::Value {
        serde_json::Value::Object(crate::anyvalue::attributes_to_map(attributes))
    }

    #[test]
    fn masks_header_values_of_every_kind() {
        // Seen while writing fuzz/fuzz_targets/masking.rs (whose invariant this breaks): a bytes, numeric
        // or nested header value was stored as sent.
        let kinds = [
            Kind::BytesValue(b"Bearer abc".to_vec()),
            Kind::IntValue(12345),
            Kind::KvlistValue(Default::default()),
            Kind::ArrayValue(ArrayValue {
                values: vec![
                    AnyValue { value: Some(Kind::BytesValue(b"a=b".to_vec())) },
                    AnyValue { value: Some(Kind::StringValue("c=d".into())) },
                    AnyValue { value: Some(Kind::ArrayValue(Default::default())) },
                ],
            }),
        ];
        for kind in kinds {
            let mut attributes = vec![KeyValue {
                key: "http.request.header.authorization".into(),
                value: Some(AnyValue { value: Some(kind.clone()) }),
                ..Default::default()
            }];
            assert!(normalize_attributes(&mut attributes, &MaskingRules::default(), 1024), "{kind:?}");
            let masked = |value: &AnyValue| value.value == Some(Kind::StringValue(MASKED.into()));
            match attributes[0].value.as_ref().and_then(|v| v.value.as_ref()).unwrap() {
                Kind::ArrayValue(array) => assert!(array.values.iter().all(masked), "{kind:?}"),
                _ => assert!(masked(attributes[0].value.as_ref().unwrap()), "{kind:?}"),
            }
            assert!(
                !normalize_attributes(&mut attributes, &MaskingRules::default(), 1024),
                "masking twice changes nothing"
            );
        }
    }

    #[test]
    fn masks_headers_and_bodies() {
        let mut attributes = vec![
            string_kv("http.request.header.authorization", "Bearer abc"),
            KeyValue {
                key: "http.response.header.set-cookie".into(),
                value: Some(AnyValue {
                    value: Some(Kind::ArrayValue(ArrayValue { values: vec![string_value("a=b".into()).unwrap()] })),
                }),
                ..Default::default()
            },
            string_kv("http.request.header.content-type", "application/json"),
            string_kv("http.request.body", r#"{"user":"ann","password":"hunter2"}"#),
        ];
        assert!(normalize_attributes(&mut attributes, &MaskingRules::default(), 1024));
        assert_eq!(
            rendered(&attributes),
            serde_json::json!({
                "http.request.header.authorization": "***MASKED***",
                "http.response.header.set-cookie": ["***MASKED***"],
                "http.request.header.content-type": "application/json",
                "http.request.body": r#"{"user":"ann","password":"***MASKED***"}"#,
            })
        );
        assert!(!normalize_attributes(&mut attributes, &MaskingRules::default(), 1024), "second pass changes nothing");
    }

    #[test]
    fn renames_multiplayer_keys() {
        let mut attributes = vec![
            string_kv("multiplayer.http.request.body", r#"{"token":"t"}"#),
            string_kv("multiplayer.http.request.headers", r#"{"Authorization":"Basic x","Accept":["a","b"]}"#),
        ];
        assert!(normalize_attributes(&mut attributes, &MaskingRules::default(), 1024));
        assert_eq!(
            rendered(&attributes),
            serde_json::json!({
                "http.request.body": r#"{"token":"***MASKED***"}"#,
                "http.request.header.authorization": ["***MASKED***"],
                "http.request.header.accept": ["a", "b"],
            })
        );
    }

    #[test]
    fn cuts_long_values_on_char_boundaries() {
        let mut attributes = vec![string_kv("note", "ééééé")];
        assert!(normalize_attributes(&mut attributes, &MaskingRules::default(), 3));
        assert_eq!(rendered(&attributes), serde_json::json!({"note": "é"}));
    }

    #[test]
    fn finds_the_session() {
        let mut trace_id = [9u8; 16];
        assert_eq!(session_key(&trace_id, &[string_kv("session.id", "abc")], None).as_deref(), Some("abc"));
        assert_eq!(session_key(&trace_id, &[], Some("res")).as_deref(), Some("res"));
        assert_eq!(session_key(&trace_id, &[], None), None);
        trace_id[..7].copy_from_slice(&[0xde, 0xbd, 0xeb, 0x12, 0x34, 0x56, 0x78]);
        assert_eq!(session_key(&trace_id, &[], None).as_deref(), Some("12345678"));
    }

    #[test]
    fn checks_ids() {
        assert!(check_id(&[1; 16], 16, "trace_id", false).is_ok());
        assert!(check_id(&[], 8, "parent_span_id", true).is_ok());
        assert!(check_id(&[], 16, "trace_id", false).unwrap_err().contains("got 0 bytes"));
        assert!(check_id(&[0; 8], 8, "span_id", false).unwrap_err().contains("all zeros"));
    }
}
