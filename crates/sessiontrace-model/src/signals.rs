//! What a session's replay tells about the user, derived when a replay chunk is stored (ingest's
//! `signals` module writes it, the store keeps it, the sessions list filters on it): frustration
//! signals (rage, dead and error clicks, each with the network call or error that followed) and a small
//! index of facts (pages visited, elements clicked, console errors, failed requests).

use serde::{Deserialize, Serialize};

/// The kinds of frustration signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignalKind {
    /// Several clicks on the same element in a short time.
    Rage,
    /// A click nothing visible followed: no DOM change, navigation or network call.
    Dead,
    /// A click followed by an uncaught error, a console error or a failed request.
    Error,
}

impl SignalKind {
    pub const ALL: [SignalKind; 3] = [SignalKind::Rage, SignalKind::Dead, SignalKind::Error];

    pub fn as_str(self) -> &'static str {
        match self {
            SignalKind::Rage => "rage",
            SignalKind::Dead => "dead",
            SignalKind::Error => "error",
        }
    }

    pub fn parse(text: &str) -> Option<SignalKind> {
        SignalKind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// What followed a click: the network call it triggered (with its trace) or the error it raised.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SignalCause {
    /// `network`, `error` (uncaught error or rejection) or `console` (console.error).
    pub kind: String,
    /// `GET /api/x → 502`, or the error's message.
    pub label: String,
    pub method: Option<String>,
    pub url: Option<String>,
    /// The HTTP status (0 = no answer).
    pub status: Option<u64>,
    pub failed: bool,
    pub start_ms: Option<f64>,
    pub duration_ms: Option<f64>,
    /// The backend trace of the network call (hex), from the call's `traceparent`.
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
}

/// One frustration signal of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    pub kind: SignalKind,
    /// The first click's time, Unix ms.
    pub time_ms: f64,
    /// The last click's time (the same as `time_ms` for one click).
    pub end_ms: f64,
    /// How many clicks on the element the signal covers.
    pub clicks: u32,
    /// The clicked element: rrweb node id, CSS-like selector (`button#pay.primary`) and text.
    pub node_id: Option<u64>,
    pub selector: String,
    pub text: String,
    /// What followed the click; for an error click the failure, for others the network call made.
    pub cause: Option<SignalCause>,
}

/// Counts of signals per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalCounts {
    pub rage: u64,
    pub dead: u64,
    pub error: u64,
}

impl SignalCounts {
    pub fn of(signals: &[Signal]) -> SignalCounts {
        let mut counts = SignalCounts::default();
        for signal in signals {
            match signal.kind {
                SignalKind::Rage => counts.rage += 1,
                SignalKind::Dead => counts.dead += 1,
                SignalKind::Error => counts.error += 1,
            }
        }
        counts
    }

    pub fn get(&self, kind: SignalKind) -> u64 {
        match kind {
            SignalKind::Rage => self.rage,
            SignalKind::Dead => self.dead,
            SignalKind::Error => self.error,
        }
    }
}

/// An element the user clicked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClickedElement {
    pub selector: String,
    pub text: String,
}

/// A request that failed: status ≥ 400, or 0 for no answer (network error, aborted).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FailedRequest {
    pub method: String,
    /// The URL's path, without query or fragment.
    pub path: String,
    pub status: u64,
}

/// Everything derived from a session's replay events; a store replaces the whole of it on each
/// derivation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionInsights {
    pub signals: Vec<Signal>,
    /// Pages visited: full URLs and their paths, without duplicates, in first-seen order.
    pub urls: Vec<String>,
    pub clicked: Vec<ClickedElement>,
    pub console_errors: bool,
    pub failed_requests: Vec<FailedRequest>,
}
