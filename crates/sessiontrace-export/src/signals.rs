//! The session's frustration signals in an export: each rage, dead or error click with its time (`+12.3s`
//! from the session start), the element, the cause (the failing or slow request, its trace id and that
//! trace's error or slowest span) and a link that opens the session at that moment (`?t=` in Unix ms,
//! with the cause's trace selected). Markdown gets a "Frustration signals" section, JSON a `signals`
//! array; both come from the one [`SignalEntry`] per signal.

use std::fmt::Write;

use serde_json::{Value, json};
use sessiontrace_query::signals::SignalView;

use crate::{ExportData, Options, duration, offset, truncate};

/// One signal as both formats show it.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalEntry<'a> {
    pub view: &'a SignalView,
    /// `+12.3s` from the session start.
    pub offset: String,
    /// The session page at the signal's first click, the cause's trace selected.
    pub link: String,
}

/// The link that opens `session_id` at `time_ms` (Unix ms, which the UI's `?t=` accepts as such).
pub fn moment_link(base: &str, session_id: &str, time_ms: f64, trace_id: Option<&str>) -> String {
    let mut link = format!("{}/sessions/{session_id}?t={}", base.trim_end_matches('/'), time_ms.round() as i64);
    if let Some(trace_id) = trace_id {
        let _ = write!(link, "&trace={trace_id}");
    }
    link
}

/// The trace a signal points at: its cause span's, else its cause request's.
fn trace_of(view: &SignalView) -> Option<&str> {
    view.span.as_ref().map(|s| s.trace_id.as_str()).or(view.signal.cause.as_ref().and_then(|c| c.trace_id.as_deref()))
}

/// The signals of an export, oldest first.
pub fn entries<'a>(data: &'a ExportData, options: &Options) -> Vec<SignalEntry<'a>> {
    let base = options.ui_base.as_deref().unwrap_or("");
    data.signals
        .iter()
        .map(|view| SignalEntry {
            view,
            offset: offset(data.start_ms(), view.signal.time_ms),
            link: moment_link(base, &data.session.id, view.signal.time_ms, trace_of(view)),
        })
        .collect()
}

/// `button#pay "Pay now"`.
fn element(view: &SignalView) -> String {
    let signal = &view.signal;
    if signal.text.is_empty() {
        format!("`{}`", signal.selector)
    } else {
        format!("`{}` \"{}\"", signal.selector, truncate(&signal.text, 60))
    }
}

/// One markdown line: `- +12.3s **error click** on `button#pay` → POST /api/pay → 502 (1.60s), trace `…`,
/// error span `POST /pay` (payment) 1.58s: declined · [open at this moment](…)`.
pub fn markdown_line(entry: &SignalEntry) -> String {
    let signal = &entry.view.signal;
    let what = match signal.clicks {
        0 | 1 => format!("{} click", signal.kind.as_str()),
        n => format!("{} click ×{n}", signal.kind.as_str()),
    };
    let mut line = format!("- {} **{what}** on {}", entry.offset, element(entry.view));
    if let Some(cause) = &signal.cause {
        let _ = write!(line, " → {}", truncate(&cause.label, 160));
        if let Some(ms) = cause.duration_ms {
            let _ = write!(line, " ({})", duration(ms));
        }
        if let Some(trace_id) = &cause.trace_id {
            let _ = write!(line, ", trace `{trace_id}`");
        }
    }
    if let Some(span) = &entry.view.span {
        let _ =
            write!(line, ", {} span `{}` ({}) {}", span.reason, span.name, span.service, duration(span.duration_ms));
        if !span.status_message.is_empty() {
            let _ = write!(line, ": {}", truncate(&span.status_message, 120));
        }
    }
    let _ = writeln!(line, " · [open at this moment]({})", entry.link);
    line
}

/// One element of the JSON `signals` array.
pub fn json_value(entry: &SignalEntry, start_ms: f64) -> Value {
    let signal = &entry.view.signal;
    json!({
        "kind": signal.kind,
        "time_ms": signal.time_ms,
        "offset": entry.offset,
        "offset_s": ((signal.time_ms - start_ms) / 100.0).round() / 10.0,
        "clicks": signal.clicks,
        "element": {"selector": signal.selector, "text": signal.text},
        "cause": signal.cause,
        "span": entry.view.span,
        "link": entry.link,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiontrace_model::signals::{Signal, SignalCause, SignalKind};
    use sessiontrace_query::signals::CauseSpan;

    fn view(kind: SignalKind, cause: Option<SignalCause>, span: Option<CauseSpan>) -> SignalView {
        SignalView {
            signal: Signal {
                kind,
                time_ms: 13_300.0,
                end_ms: 13_900.0,
                clicks: if kind == SignalKind::Rage { 5 } else { 1 },
                node_id: Some(7),
                selector: "button#forecast".into(),
                text: "Stock forecast".into(),
                cause,
            },
            span,
        }
    }

    fn failing() -> (SignalCause, CauseSpan) {
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736".to_string();
        let cause = SignalCause {
            kind: "network".into(),
            label: "GET /api/forecast → 503".into(),
            method: Some("GET".into()),
            url: Some("http://shop.test/api/forecast".into()),
            status: Some(503),
            failed: true,
            start_ms: Some(13_310.0),
            duration_ms: Some(1_620.0),
            trace_id: Some(trace.clone()),
            span_id: Some("00f067aa0ba902b7".into()),
        };
        let span = CauseSpan {
            trace_id: trace,
            span_id: "a2fb4a1d1a96d312".into(),
            name: "GET /forecast".into(),
            service: "inventory".into(),
            duration_ms: 1_601.0,
            reason: "error",
            status_message: "timed out".into(),
        };
        (cause, span)
    }

    fn entry(view: &SignalView) -> SignalEntry<'_> {
        SignalEntry {
            view,
            offset: offset(1_000.0, view.signal.time_ms),
            link: moment_link("http://ui/", "s1", view.signal.time_ms, trace_of(view)),
        }
    }

    #[test]
    fn an_error_click_names_its_request_trace_span_and_moment() {
        let (cause, span) = failing();
        let view = view(SignalKind::Error, Some(cause), Some(span));
        let entry = entry(&view);
        let line = markdown_line(&entry);
        assert!(line.starts_with("- +12.3s **error click** on `button#forecast` \"Stock forecast\""), "{line}");
        assert!(line.contains("→ GET /api/forecast → 503 (1.62s), trace `4bf92f3577b34da6a3ce929d0e0e4736`"), "{line}");
        assert!(line.contains("error span `GET /forecast` (inventory) 1.60s: timed out"), "{line}");
        assert!(
            line.ends_with(
                "[open at this moment](http://ui/sessions/s1?t=13300&trace=4bf92f3577b34da6a3ce929d0e0e4736)\n"
            ),
            "{line}"
        );
        let value = json_value(&entry, 1_000.0);
        assert_eq!(value["kind"], "error");
        assert_eq!(value["offset"], "+12.3s");
        assert_eq!(value["offset_s"], 12.3);
        assert_eq!(value["element"]["selector"], "button#forecast");
        assert_eq!(value["cause"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(value["cause"]["status"], 503);
        assert_eq!(value["span"]["reason"], "error");
        assert_eq!(value["span"]["name"], "GET /forecast");
        assert_eq!(value["link"], "http://ui/sessions/s1?t=13300&trace=4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn a_dead_click_has_no_cause_and_a_rage_click_counts_its_clicks() {
        let dead = view(SignalKind::Dead, None, None);
        let line = markdown_line(&entry(&dead));
        assert_eq!(
            line,
            "- +12.3s **dead click** on `button#forecast` \"Stock forecast\" · [open at this moment](http://ui/sessions/s1?t=13300)\n"
        );
        assert_eq!(json_value(&entry(&dead), 1_000.0)["cause"], Value::Null);
        let rage = view(SignalKind::Rage, None, None);
        assert!(markdown_line(&entry(&rage)).contains("**rage click ×5**"));
        assert_eq!(moment_link("", "s1", 1.6, None), "/sessions/s1?t=2");
    }
}
