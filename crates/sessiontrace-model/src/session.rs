//! A recording session: its ids, kind, who it is for and what it asks the SDKs to capture.
//! Stored by the store crate, created by the server's session API.

use serde::{Deserialize, Serialize};

use crate::ids::{SessionTraceKind, ShortId, SpanId, TraceId, sampled_traceparent};

/// How a session was started (shared/DESIGN.md section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    /// Started and stopped by a person or an SDK.
    #[default]
    Manual,
    /// A rolling window, saved on demand or on an error.
    Continuous,
    /// Started from the CLI or API for work with no browser.
    Backend,
}

impl SessionKind {
    /// The trace-id prefix family of this kind.
    pub fn trace_kind(self) -> SessionTraceKind {
        match self {
            SessionKind::Continuous => SessionTraceKind::Continuous,
            SessionKind::Manual | SessionKind::Backend => SessionTraceKind::Recorded,
        }
    }

    /// The lowercase name used in the API and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Manual => "manual",
            SessionKind::Continuous => "continuous",
            SessionKind::Backend => "backend",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "manual" => Some(SessionKind::Manual),
            "continuous" => Some(SessionKind::Continuous),
            "backend" => Some(SessionKind::Backend),
            _ => None,
        }
    }
}

/// What the SDK middleware captures on this session's traces (DESIGN.md section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureSettings {
    /// Capture request and response headers.
    #[serde(default = "default_true")]
    pub headers: bool,
    /// Capture request and response bodies.
    #[serde(default = "default_true")]
    pub bodies: bool,
}

fn default_true() -> bool {
    true
}

impl Default for CaptureSettings {
    fn default() -> Self {
        CaptureSettings { headers: true, bodies: true }
    }
}

/// A recording session as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// Long unique id (32 lowercase hex).
    pub id: String,
    /// 8 lowercase hex, encoded in every trace id of the session.
    pub short_id: ShortId,
    pub kind: SessionKind,
    pub name: Option<String>,
    /// Free-form user description (string or object), as JSON.
    pub user: serde_json::Value,
    /// Free-form attributes, as a JSON object.
    pub attributes: serde_json::Value,
    pub tags: Vec<String>,
    pub capture: CaptureSettings,
    /// Unix milliseconds.
    pub started_at_ms: i64,
    /// Unix milliseconds; `None` while the session records.
    pub stopped_at_ms: Option<i64>,
    /// Unix milliseconds of the last save of a continuous session.
    pub saved_at_ms: Option<i64>,
}

impl Session {
    /// The 14 hex characters every trace id of this session starts with.
    pub fn trace_id_prefix(&self) -> String {
        format!("{}{}", self.kind.trace_kind().prefix_hex(), self.short_id)
    }

    /// A fresh `traceparent` for a root span of this session, sampled flag set.
    pub fn new_traceparent(&self) -> String {
        let trace_id = TraceId::for_session(self.kind.trace_kind(), self.short_id);
        sampled_traceparent(trace_id, SpanId::random())
    }

    /// The W3C `tracestate` that carries this session's capture choice to every service on the trace
    /// (`sessiontrace=hb`, `h`, `b` or `0`; read by sessiontrace-sdk's capture layer).
    pub fn capture_tracestate(&self) -> String {
        let mut value = String::new();
        if self.capture.headers {
            value.push('h');
        }
        if self.capture.bodies {
            value.push('b');
        }
        if value.is_empty() {
            value.push('0');
        }
        format!("sessiontrace={value}")
    }

    /// A new long id: 16 random bytes as hex.
    pub fn new_id() -> String {
        use rand::Rng;
        let bytes: [u8; 16] = rand::rng().random();
        hex::encode(bytes)
    }

    /// Whether `key` (a long id or a short id) names this session.
    pub fn is_named_by(&self, key: &str) -> bool {
        self.id == key || self.short_id.to_hex() == key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_sampled_and_carries_the_prefix() {
        let session = Session {
            id: Session::new_id(),
            short_id: ShortId::from_hex("0badcafe").unwrap(),
            kind: SessionKind::Manual,
            name: None,
            user: serde_json::Value::Null,
            attributes: serde_json::json!({}),
            tags: vec![],
            capture: CaptureSettings::default(),
            started_at_ms: 0,
            stopped_at_ms: None,
            saved_at_ms: None,
        };
        let traceparent = session.new_traceparent();
        assert!(traceparent.starts_with("00-debdeb0badcafe"), "{traceparent}");
        assert!(traceparent.ends_with("-01"));
        assert_eq!(traceparent.len(), 55);
        assert_eq!(session.trace_id_prefix(), "debdeb0badcafe");
        assert_eq!(session.capture_tracestate(), "sessiontrace=hb");
        let headers_only = Session { capture: CaptureSettings { headers: true, bodies: false }, ..session.clone() };
        assert_eq!(headers_only.capture_tracestate(), "sessiontrace=h");
        let nothing = Session { capture: CaptureSettings { headers: false, bodies: false }, ..session };
        assert_eq!(nothing.capture_tracestate(), "sessiontrace=0");
    }
}
