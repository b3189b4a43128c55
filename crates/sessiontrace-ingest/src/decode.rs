//! Request bodies to OTLP types: content type, `Content-Encoding` (gzip, deflate, zstd), the size limit (before
//! and after decompression: a bomb is refused, not inflated), then protobuf
//! (prost) or the OTLP JSON mapping (lowerCamelCase keys, hex ids, int64 as strings). Proto field names in
//! snake_case are accepted too, as the proto3 JSON mapping asks of parsers; a JSON body with no OTLP data
//! under any known key is refused rather than answered with an empty success.

use std::io::Read;

use serde_json::Value;

use crate::IngestError;

/// How the body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// Reads a `Content-Type` header value; `None` header means protobuf is not assumed.
    pub fn from_content_type(content_type: Option<&str>) -> Result<Self, IngestError> {
        let Some(content_type) = content_type else {
            return Err(IngestError::UnsupportedContentType(String::new()));
        };
        let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
            "application/json" => Ok(Encoding::Json),
            _ => Err(IngestError::UnsupportedContentType(content_type.to_string())),
        }
    }

    /// The `Content-Type` of answers in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// Undoes `Content-Encoding` (identity, gzip, deflate or zstd) within `limit` bytes.
pub fn decompress(body: Vec<u8>, content_encoding: Option<&str>, limit: usize) -> Result<Vec<u8>, IngestError> {
    if body.len() > limit {
        return Err(IngestError::TooLarge { limit });
    }
    let encoding = content_encoding.map(|e| e.trim().to_ascii_lowercase());
    let decoder: Box<dyn Read + '_> = match encoding.as_deref() {
        None | Some("") | Some("identity") => return Ok(body),
        Some("gzip") | Some("x-gzip") => Box::new(flate2::read::MultiGzDecoder::new(&body[..])),
        // HTTP's "deflate" is the zlib format.
        Some("deflate") => Box::new(flate2::read::ZlibDecoder::new(&body[..])),
        Some("zstd") => Box::new(
            zstd::stream::read::Decoder::new(&body[..])
                .map_err(|error| IngestError::invalid(format!("body is not valid zstd: {error}")))?,
        ),
        Some(other) => {
            return Err(IngestError::invalid(format!(
                "unsupported content encoding {other:?}: use gzip, zstd, deflate or none"
            )));
        }
    };
    let name = encoding.unwrap_or_default();
    // A guess for the common ratio, never above what the limit lets through.
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit.saturating_add(1)));
    decoder
        .take((limit as u64).saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|error| IngestError::invalid(format!("body is not valid {name}: {error}")))?;
    if out.len() > limit {
        return Err(IngestError::TooLarge { limit });
    }
    Ok(out)
}

/// Decodes an OTLP message from protobuf.
pub fn from_protobuf<M: prost::Message + Default>(body: &[u8], what: &str) -> Result<M, IngestError> {
    M::decode(body)
        .map_err(|error| IngestError::invalid(format!("body is not a valid OTLP {what} protobuf message: {error}")))
}

/// Decodes an OTLP message from the OTLP JSON mapping. `top_key` is the message's one top-level field
/// (`resourceSpans`, `resourceLogs`, `resourceMetrics`).
pub fn from_json<M: serde::de::DeserializeOwned + Default + PartialEq>(
    body: &[u8],
    top_key: &str,
) -> Result<M, IngestError> {
    // The common case — lowerCamelCase keys, the expected top-level field — parses straight into the
    // OTLP types; anything else takes the slower path below, which renames keys or explains the error.
    // `names_top_key` finds the key anywhere, nested too, and the typed parse ignores unknown fields: an
    // empty message may be a body whose top-level key is unknown, which the slower path refuses.
    let names_top_key = contains(body, format!("\"{top_key}\"").as_bytes());
    if names_top_key
        && !has_snake_case_key(body)
        && let Ok(message) = serde_json::from_slice::<M>(body)
        && message != M::default()
    {
        return Ok(message);
    }
    let mut value: Value = serde_json::from_slice(body)
        .map_err(|error| IngestError::invalid(format!("body is not valid JSON: {error}")))?;
    let Value::Object(top) = &value else {
        return Err(IngestError::invalid("OTLP JSON body must be an object"));
    };
    if !top.is_empty() {
        let known = top.keys().any(|key| key == top_key || snake_to_camel(key) == top_key);
        if !known {
            let keys: Vec<&str> = top.keys().map(String::as_str).collect();
            return Err(IngestError::invalid(format!("OTLP JSON body has no {top_key:?} field (found {keys:?})")));
        }
    }
    camel_case_keys(&mut value);
    serde_json::from_value(value).map_err(|error| IngestError::invalid(format!("body is not valid OTLP JSON: {error}")))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// Whether any object key (a string followed by `:`) contains `_`. Errs on the side of `true` for odd
/// input (escaped quotes): that only costs the slower path.
fn has_snake_case_key(body: &[u8]) -> bool {
    let mut in_string = false;
    let mut escaped = false;
    let mut string_start = 0;
    let mut last_string: Option<(usize, usize)> = None;
    for (position, &byte) in body.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
                last_string = Some((string_start, position));
            }
            continue;
        }
        match byte {
            b'"' => {
                in_string = true;
                string_start = position + 1;
            }
            b':' => {
                if let Some((start, end)) = last_string.take()
                    && body[start..end].contains(&b'_')
                {
                    return true;
                }
            }
            b' ' | b'\n' | b'\r' | b'\t' => {}
            _ => last_string = None,
        }
    }
    false
}

fn snake_to_camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper_next = false;
    for c in key.chars() {
        if c == '_' {
            upper_next = true;
        } else if upper_next {
            out.extend(c.to_uppercase());
            upper_next = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Renames snake_case object keys (proto field names) to lowerCamelCase (JSON names), except inside
/// values that hold user data (`kvlistValue` keys are under `key`, never object keys, so all keys are
/// field names).
fn camel_case_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.keys().any(|key| key.contains('_')) {
                let entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
                for (key, child) in entries {
                    let key = if key.contains('_') { snake_to_camel(&key) } else { key };
                    map.insert(key, child);
                }
            }
            map.values_mut().for_each(camel_case_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(camel_case_keys),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

    #[test]
    fn content_types() {
        assert_eq!(Encoding::from_content_type(Some("application/json; charset=utf-8")), Ok(Encoding::Json));
        assert_eq!(Encoding::from_content_type(Some("application/x-protobuf")), Ok(Encoding::Protobuf));
        assert!(Encoding::from_content_type(Some("text/plain")).is_err());
        assert!(Encoding::from_content_type(None).is_err());
    }

    #[test]
    fn gzip_limits_and_errors() {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&vec![b'a'; 10_000]).unwrap();
        let gz = encoder.finish().unwrap();
        assert_eq!(decompress(gz.clone(), Some("gzip"), 20_000).unwrap().len(), 10_000);
        assert_eq!(decompress(gz, Some("gzip"), 5_000), Err(IngestError::TooLarge { limit: 5_000 }));
        assert!(matches!(decompress(b"not gzip".to_vec(), Some("gzip"), 100), Err(IngestError::InvalidRequest(_))));
        assert!(matches!(decompress(vec![0; 200], None, 100), Err(IngestError::TooLarge { .. })));
    }

    #[test]
    fn bombs_are_refused_at_the_limit_in_every_encoding() {
        use std::io::Write;
        let zeros = vec![0u8; 8 << 20];
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gzip.write_all(&zeros).unwrap();
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        zlib.write_all(&zeros).unwrap();
        let zstd = zstd::encode_all(&zeros[..], 19).unwrap();
        for (encoding, body) in [("gzip", gzip.finish().unwrap()), ("deflate", zlib.finish().unwrap()), ("zstd", zstd)]
        {
            assert!(body.len() < 64 * 1024, "{encoding}: {} bytes", body.len());
            assert_eq!(decompress(body, Some(encoding), 64 * 1024), Err(IngestError::TooLarge { limit: 64 * 1024 }));
        }
        // No limit is too large to add one to (`limit = usize::MAX` overflowed in debug builds).
        let mut small = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        small.write_all(b"hello").unwrap();
        assert_eq!(decompress(small.finish().unwrap(), Some("gzip"), usize::MAX).unwrap(), b"hello");
    }

    #[test]
    fn finds_snake_case_keys_but_not_snake_case_values() {
        assert!(has_snake_case_key(br#"{"resource_spans": []}"#));
        assert!(!has_snake_case_key(br#"{"resourceSpans": [{"key": "db_name", "value": {"stringValue": "a_b:c"}}]}"#));
        assert!(!has_snake_case_key(br#"{"k": "quote \" inside_", "x": 1}"#));
    }

    #[test]
    fn snake_case_json_is_read_and_unknown_top_keys_refused() {
        let snake = br#"{"resource_spans":[{"scope_spans":[{"spans":[{"trace_id":"5b8efff798038103d269b633813fc60c","span_id":"eee19b7ec3c1b174","name":"x","start_time_unix_nano":"1"}]}]}]}"#;
        let request: ExportTraceServiceRequest = from_json(snake, "resourceSpans").unwrap();
        let span = &request.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.name, "x");
        assert_eq!(span.trace_id.len(), 16);
        let wrong = br#"{"spans":[]}"#;
        let error = from_json::<ExportTraceServiceRequest>(wrong, "resourceSpans").unwrap_err();
        assert!(error.to_string().contains("resourceSpans"), "{error}");
        assert!(from_json::<ExportTraceServiceRequest>(b"{}", "resourceSpans").is_ok());
        assert!(from_json::<ExportTraceServiceRequest>(br#"{"resourceSpans": []}"#, "resourceSpans").is_ok());
        // Found by fuzz/fuzz_targets/otlp_json.rs: the top-level key unknown, `resourceSpans` only nested
        // inside it. The camelCase body took the fast path and was answered with an empty success, its
        // snake_case spelling was refused; both are refused now.
        let nested = br#"{"spansdceSpans":[{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"x"}]}]}]}]}"#;
        let error = from_json::<ExportTraceServiceRequest>(nested, "resourceSpans").unwrap_err();
        assert!(error.to_string().contains("spansdceSpans"), "{error}");
        let nested_snake = br#"{"spansdce_spans":[{"resource_spans":[{"scope_spans":[{"spans":[{"name":"x"}]}]}]}]}"#;
        assert!(from_json::<ExportTraceServiceRequest>(nested_snake, "resourceSpans").is_err());
        assert!(from_json::<ExportTraceServiceRequest>(b"[1]", "resourceSpans").is_err());
    }
}
