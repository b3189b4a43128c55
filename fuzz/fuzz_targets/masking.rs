//! Masking: captured header attributes and JSON bodies never keep a secret, whatever their shape.
//! The first byte picks the case: a header attribute (name and value from the input, the value as a
//! string, bytes, an array or a nested value), or a body through `MaskingRules::mask_body`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, any_value::Value as Kind};
use sessiontrace_ingest::normalize::normalize_attributes;
use sessiontrace_model::masking::{MASKED, MaskingRules};

/// Every string or bytes inside `value` is the mask.
fn only_masks(value: &Option<AnyValue>) -> bool {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        None => true,
        Some(Kind::StringValue(text)) => text == MASKED,
        Some(Kind::BytesValue(bytes)) => bytes.is_empty(),
        Some(Kind::ArrayValue(array)) => array.values.iter().all(|item| only_masks(&Some(item.clone()))),
        Some(Kind::KvlistValue(list)) => list.values.iter().all(|kv| only_masks(&kv.value)),
        // Any other kind is replaced by the mask string.
        Some(_) => false,
    }
}

/// Every value under a masked key in `value` is the mask.
fn json_is_masked(rules: &MaskingRules, value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Object(map) => {
            map.iter().all(
                |(key, child)| {
                    if rules.is_masked_body_key(key) { child == MASKED } else { json_is_masked(rules, child) }
                },
            )
        }
        serde_json::Value::Array(items) => items.iter().all(|item| json_is_masked(rules, item)),
        _ => true,
    }
}

fuzz_target!(|data: &[u8]| {
    let rules = MaskingRules::default();
    let Some((&mode, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    if mode % 2 == 0 {
        let (name, value) = text.split_once(':').unwrap_or(("authorization", &text));
        let string = |s: &str| AnyValue { value: Some(Kind::StringValue(s.to_string())) };
        let value = match mode / 2 % 4 {
            0 => string(value),
            1 => AnyValue { value: Some(Kind::BytesValue(value.as_bytes().to_vec())) },
            2 => AnyValue {
                value: Some(Kind::ArrayValue(ArrayValue {
                    values: vec![string(value), AnyValue { value: Some(Kind::BytesValue(value.as_bytes().to_vec())) }],
                })),
            },
            _ => AnyValue { value: Some(Kind::ArrayValue(ArrayValue { values: vec![string(value)] })) },
        };
        let prefix = if mode & 0x80 == 0 { "http.request.header." } else { "http.response.header." };
        let mut attributes =
            vec![KeyValue { key: format!("{prefix}{name}"), value: Some(value), ..Default::default() }];
        normalize_attributes(&mut attributes, &rules, 256 * 1024);
        if rules.is_masked_header(name) {
            assert!(only_masks(&attributes[0].value), "{name}: {:?}", attributes[0].value);
        }
    } else {
        let masked = rules.mask_body(&text);
        if let Ok(original) = serde_json::from_str::<serde_json::Value>(&text)
            && (text.trim_start().starts_with('{') || text.trim_start().starts_with('['))
        {
            let after = match &masked {
                Some(masked) => serde_json::from_str(masked).expect("a masked JSON body is JSON"),
                None => original,
            };
            assert!(json_is_masked(&rules, &after), "{text} → {masked:?}");
        }
    }
});
