//! Secrets never reach storage unmasked (shared/DESIGN.md section 5). The SDK masks before sending; the
//! server masks again at ingest with the same rules, so a misconfigured service cannot store a secret.

/// What a masked value is replaced with.
pub const MASKED: &str = "***MASKED***";

/// Headers masked by default (lowercase).
pub const DEFAULT_MASKED_HEADERS: &[&str] =
    &["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token"];

/// JSON body keys masked by default, at any depth, compared case-insensitively.
pub const DEFAULT_MASKED_BODY_KEYS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "api_key",
    "apikey",
    "authorization",
    "credit_card",
    "card_number",
    "cvv",
    "ssn",
];

/// The masking rules in force: the defaults plus whatever the configuration adds.
#[derive(Debug, Clone)]
pub struct MaskingRules {
    headers: Vec<String>,
    body_keys: Vec<String>,
}

impl Default for MaskingRules {
    fn default() -> Self {
        MaskingRules {
            headers: DEFAULT_MASKED_HEADERS.iter().map(|s| s.to_string()).collect(),
            body_keys: DEFAULT_MASKED_BODY_KEYS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl MaskingRules {
    /// The defaults extended with extra header names and body keys.
    pub fn with_extra(extra_headers: &[String], extra_body_keys: &[String]) -> Self {
        let mut rules = MaskingRules::default();
        rules.headers.extend(extra_headers.iter().map(|h| h.to_ascii_lowercase()));
        rules.body_keys.extend(extra_body_keys.iter().map(|k| k.to_ascii_lowercase()));
        rules
    }

    /// Whether the header named `name` (any case) is masked.
    pub fn is_masked_header(&self, name: &str) -> bool {
        self.headers.iter().any(|h| h.eq_ignore_ascii_case(name))
    }

    /// Whether a JSON key is masked.
    pub fn is_masked_body_key(&self, key: &str) -> bool {
        self.body_keys.iter().any(|k| k.eq_ignore_ascii_case(key))
    }

    /// Masks a body. JSON bodies have masked keys replaced at any depth; a form-encoded body has masked
    /// field values replaced. Returns `None` when nothing changed.
    pub fn mask_body(&self, body: &str) -> Option<String> {
        let trimmed = body.trim_start();
        if trimmed.starts_with('{') || trimmed.starts_with('[') {
            return self.mask_json_body(body);
        }
        self.mask_form_body(body)
    }

    fn mask_json_body(&self, body: &str) -> Option<String> {
        let Ok(mut value) = serde_json::from_str::<serde_json::Value>(body) else {
            // Truncated or invalid JSON: mask `"key": "value"` pairs textually so a cut body is safe too.
            return self.mask_json_text(body);
        };
        if self.mask_json_value(&mut value) { serde_json::to_string(&value).ok() } else { None }
    }

    /// Masks masked keys in a JSON value in place; true when something changed.
    pub fn mask_json_value(&self, value: &mut serde_json::Value) -> bool {
        match value {
            serde_json::Value::Object(map) => {
                let mut changed = false;
                for (key, child) in map.iter_mut() {
                    if self.is_masked_body_key(key) {
                        if child != &serde_json::Value::String(MASKED.into()) {
                            *child = serde_json::Value::String(MASKED.into());
                            changed = true;
                        }
                    } else {
                        changed |= self.mask_json_value(child);
                    }
                }
                changed
            }
            serde_json::Value::Array(items) => {
                items.iter_mut().fold(false, |changed, item| self.mask_json_value(item) | changed)
            }
            _ => false,
        }
    }

    /// Textual masking for JSON that does not parse (cut at the size limit): replaces the value after
    /// each masked key up to the next `,` `}` or end.
    fn mask_json_text(&self, body: &str) -> Option<String> {
        let lower = body.to_ascii_lowercase();
        let mut out = String::with_capacity(body.len());
        let mut cursor = 0;
        let mut changed = false;
        let bytes = body.as_bytes();
        while let Some(found) = lower[cursor..].find('"') {
            let key_start = cursor + found + 1;
            let Some(key_len) = lower[key_start..].find('"') else { break };
            let key_end = key_start + key_len;
            let key = &body[key_start..key_end];
            let after = lower[key_end + 1..].trim_start();
            if self.is_masked_body_key(key) && after.starts_with(':') {
                let colon = key_end + 1 + (lower[key_end + 1..].len() - after.len());
                let mut value_end = colon + 1;
                let mut in_string = false;
                while value_end < bytes.len() {
                    let b = bytes[value_end];
                    if b == b'"' && bytes[value_end - 1] != b'\\' {
                        in_string = !in_string;
                    } else if !in_string && (b == b',' || b == b'}' || b == b']') {
                        break;
                    }
                    value_end += 1;
                }
                out.push_str(&body[cursor..=colon]);
                out.push('"');
                out.push_str(MASKED);
                out.push('"');
                cursor = value_end;
                changed = true;
            } else {
                out.push_str(&body[cursor..=key_end]);
                cursor = key_end + 1;
            }
        }
        out.push_str(&body[cursor..]);
        changed.then_some(out)
    }

    fn mask_form_body(&self, body: &str) -> Option<String> {
        if !body.contains('=') || body.contains(char::is_whitespace) {
            return None;
        }
        let mut changed = false;
        let masked: Vec<String> = body
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, value)) if self.is_masked_body_key(key) && value != MASKED => {
                    changed = true;
                    format!("{key}={MASKED}")
                }
                _ => pair.to_string(),
            })
            .collect();
        changed.then(|| masked.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expect: Option<&str>) {
        assert_eq!(MaskingRules::default().mask_body(input).as_deref(), expect, "input: {input}");
    }

    #[test]
    fn masks_json_keys_at_any_depth_case_insensitively() {
        check(
            r#"{"user":"ann","Password":"hunter2","nested":{"list":[{"API_KEY":"k"}]}}"#,
            Some(r#"{"user":"ann","Password":"***MASKED***","nested":{"list":[{"API_KEY":"***MASKED***"}]}}"#),
        );
        check(r#"{"user":"ann"}"#, None);
        check(r#"{"password":"***MASKED***"}"#, None);
    }

    #[test]
    fn masks_cut_json_and_form_bodies() {
        check(
            r#"{"user":"ann","password":"hunter2","note":"abc"#,
            Some(r#"{"user":"ann","password":"***MASKED***","note":"abc"#),
        );
        check(r#"{"password":"hun"#, Some(r#"{"password":"***MASKED***""#));
        check("user=ann&password=hunter2", Some("user=ann&password=***MASKED***"));
        check("plain text with password=1 inside", None);
    }

    #[test]
    fn headers_are_case_insensitive_and_extendable() {
        let rules = MaskingRules::with_extra(&["X-Secret-Header".into()], &[]);
        assert!(rules.is_masked_header("Authorization"));
        assert!(rules.is_masked_header("x-secret-header"));
        assert!(!rules.is_masked_header("content-type"));
    }
}
