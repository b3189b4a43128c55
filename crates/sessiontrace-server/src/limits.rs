//! The sizes the session API accepts, in one place (docs/api.md lists them). A value over a limit is
//! refused with 400 and a JSON error naming the field (`name`, `attributes.plan`, `tags[3]`, …) and
//! the limit, before anything reaches the store; a body over [`MAX_SESSION_BODY_BYTES`] is a 413 before it
//! is parsed.

use serde_json::Value;

/// Largest `POST /api/sessions` body.
pub const MAX_SESSION_BODY_BYTES: usize = 64 * 1024;
/// Longest string anywhere in a session (name, a tag, a string inside `user` or an attribute), in bytes.
pub const MAX_STRING_BYTES: usize = 1024;
/// Longest attribute key, in bytes.
pub const MAX_KEY_BYTES: usize = 256;
/// Most attributes, most tags, most entries of one object or array inside `user` or an attribute.
pub const MAX_ENTRIES: usize = 64;
/// Most levels of nesting of `user` or of one attribute's value.
pub const MAX_DEPTH: usize = 4;
/// Largest `user`, and largest value of one attribute, as compact JSON, in bytes.
pub const MAX_JSON_BYTES: usize = 4096;

/// A value over one of the limits: which field, what limit, and what the value had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitExceeded {
    /// The field's path in the request body, e.g. `attributes.plan` or `tags[3]`.
    pub field: String,
    /// What is limited: `bytes`, `entries` or `depth`.
    pub unit: &'static str,
    /// The largest allowed.
    pub limit: usize,
    /// What the request had (for `depth`, at least this).
    pub actual: usize,
}

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.unit {
            "bytes" => "is longer than",
            "entries" => "has more entries than",
            _ => "is nested deeper than",
        };
        write!(f, "{} {what} the limit of {} {} (it has {})", self.field, self.limit, self.unit, self.actual)
    }
}

fn check(field: impl FnOnce() -> String, unit: &'static str, limit: usize, actual: usize) -> Result<(), LimitExceeded> {
    if actual <= limit {
        return Ok(());
    }
    Err(LimitExceeded { field: field(), unit, limit, actual })
}

/// A string field: at most [`MAX_STRING_BYTES`].
pub fn check_string(field: &str, value: &str) -> Result<(), LimitExceeded> {
    check(|| field.to_string(), "bytes", MAX_STRING_BYTES, value.len())
}

/// Tags: at most [`MAX_ENTRIES`], each a bounded string.
pub fn check_tags(tags: &[String]) -> Result<(), LimitExceeded> {
    check(|| "tags".to_string(), "entries", MAX_ENTRIES, tags.len())?;
    for (index, tag) in tags.iter().enumerate() {
        check_string(&format!("tags[{index}]"), tag)?;
    }
    Ok(())
}

/// Attributes: at most [`MAX_ENTRIES`], keys at most [`MAX_KEY_BYTES`], each value a bounded JSON value.
pub fn check_attributes(attributes: &serde_json::Map<String, Value>) -> Result<(), LimitExceeded> {
    check(|| "attributes".to_string(), "entries", MAX_ENTRIES, attributes.len())?;
    for (key, value) in attributes {
        let shown_key: String = key.chars().take(64).collect();
        check(|| format!("attributes key {shown_key:?}"), "bytes", MAX_KEY_BYTES, key.len())?;
        check_json(&format!("attributes.{shown_key}"), value)?;
    }
    Ok(())
}

/// A free-form JSON value (`user`, one attribute's value): at most [`MAX_JSON_BYTES`] as compact JSON,
/// [`MAX_DEPTH`] levels, [`MAX_ENTRIES`] entries per object or array, strings and keys of at most
/// [`MAX_STRING_BYTES`].
pub fn check_json(field: &str, value: &Value) -> Result<(), LimitExceeded> {
    check_value(field, value, 1)?;
    let size = serde_json::to_vec(value).map_or(usize::MAX, |bytes| bytes.len());
    check(|| field.to_string(), "bytes", MAX_JSON_BYTES, size)
}

fn check_value(path: &str, value: &Value, depth: usize) -> Result<(), LimitExceeded> {
    match value {
        Value::String(text) => check_string(path, text),
        Value::Array(items) => {
            check(|| path.to_string(), "depth", MAX_DEPTH, depth)?;
            check(|| path.to_string(), "entries", MAX_ENTRIES, items.len())?;
            for (index, item) in items.iter().enumerate() {
                check_value(&format!("{path}[{index}]"), item, depth + 1)?;
            }
            Ok(())
        }
        Value::Object(entries) => {
            check(|| path.to_string(), "depth", MAX_DEPTH, depth)?;
            check(|| path.to_string(), "entries", MAX_ENTRIES, entries.len())?;
            for (key, item) in entries {
                let shown_key: String = key.chars().take(64).collect();
                check(|| format!("{path} key {shown_key:?}"), "bytes", MAX_STRING_BYTES, key.len())?;
                check_value(&format!("{path}.{shown_key}"), item, depth + 1)?;
            }
            Ok(())
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refusal(result: Result<(), LimitExceeded>) -> (String, &'static str, usize) {
        let error = result.expect_err("accepted");
        (error.field, error.unit, error.limit)
    }

    #[test]
    fn strings_are_bounded_at_the_limit() {
        assert!(check_string("name", &"n".repeat(MAX_STRING_BYTES)).is_ok());
        let error = check_string("name", &"n".repeat(MAX_STRING_BYTES + 1)).unwrap_err();
        assert_eq!(error.to_string(), "name is longer than the limit of 1024 bytes (it has 1025)");
        // Bytes, not characters.
        assert!(check_string("name", &"é".repeat(MAX_STRING_BYTES / 2 + 1)).is_err());
    }

    #[test]
    fn tags_are_counted_and_each_bounded() {
        let tags: Vec<String> = (0..MAX_ENTRIES).map(|i| format!("t{i}")).collect();
        assert!(check_tags(&tags).is_ok());
        let mut too_many = tags.clone();
        too_many.push("one more".into());
        assert_eq!(refusal(check_tags(&too_many)), ("tags".into(), "entries", MAX_ENTRIES));
        let mut long = tags;
        long[3] = "x".repeat(MAX_STRING_BYTES + 1);
        assert_eq!(refusal(check_tags(&long)), ("tags[3]".into(), "bytes", MAX_STRING_BYTES));
    }

    #[test]
    fn attributes_are_counted_keyed_and_each_value_bounded() {
        let attributes = |value: Value| value.as_object().unwrap().clone();
        let many: serde_json::Map<String, Value> = (0..=MAX_ENTRIES).map(|i| (format!("k{i}"), json!(i))).collect();
        assert_eq!(refusal(check_attributes(&many)), ("attributes".into(), "entries", MAX_ENTRIES));
        let long_key = attributes(json!({ "k".repeat(MAX_KEY_BYTES + 1): 1 }));
        assert_eq!(refusal(check_attributes(&long_key)).2, MAX_KEY_BYTES);
        let long_value = attributes(json!({"plan": "p".repeat(MAX_STRING_BYTES + 1)}));
        assert_eq!(refusal(check_attributes(&long_value)), ("attributes.plan".into(), "bytes", MAX_STRING_BYTES));
        let nested = attributes(json!({"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}));
        assert_eq!(refusal(check_attributes(&nested)), ("attributes.a.b.c.d.e".into(), "depth", MAX_DEPTH));
        let ok = attributes(json!({"plan": "pro", "seats": 3, "flags": [true, null], "x": {"y": {"z": 1}}}));
        assert!(check_attributes(&ok).is_ok());
    }

    #[test]
    fn json_values_are_bounded_in_total() {
        assert!(check_json("user", &json!({"id": "u1", "email": "a@b.c"})).is_ok());
        let wide: Vec<Value> = (0..40).map(|_| json!("v".repeat(200))).collect();
        assert_eq!(refusal(check_json("user", &json!({"list": wide}))), ("user".into(), "bytes", MAX_JSON_BYTES));
        let entries: Vec<Value> = (0..=MAX_ENTRIES).map(|i| json!(i)).collect();
        assert_eq!(refusal(check_json("user", &json!({"ids": entries}))), ("user.ids".into(), "entries", MAX_ENTRIES));
    }
}
