//! Trace ids that carry a session (shared/DESIGN.md section 2).
//!
//! [`SessionIdGenerator`] is installed in the tracer provider. It gives a new root span a trace id of the
//! form `<debdeb|cdbcdb><short_id><18 random hex>` in two cases:
//! - the process has an active session ([`set_active_session`]; a backend session the service started
//!   itself through the API, see the `session` module);
//! - the caller asked for one root span of a given session ([`with_session_trace`]), which the tower layer
//!   does for a request that carries the recorder's `sessiontrace_session` cookie but no trace header.
//!
//! Otherwise ids are random and never start with a session prefix. Span ids are always random.

use std::cell::Cell;
use std::sync::RwLock;

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::IdGenerator;
use sessiontrace_model::ids::{SessionTraceKind, ShortId};

pub use sessiontrace_model::ids::SessionTraceKind as SessionKind;

/// The session whose prefix new root trace ids get, process-wide.
static ACTIVE_SESSION: RwLock<Option<(SessionTraceKind, ShortId)>> = RwLock::new(None);

thread_local! {
    /// A session for the next root trace id generated on this thread (see [`with_session_trace`]).
    static NEXT_ROOT_SESSION: Cell<Option<(SessionTraceKind, ShortId)>> = const { Cell::new(None) };
}

/// Makes new root traces of this process belong to the session with `short_id` (8 lowercase hex) until
/// [`clear_active_session`]. Returns false, and changes nothing, when `short_id` is not 8 lowercase hex.
pub fn set_active_session(kind: SessionTraceKind, short_id: &str) -> bool {
    let Some(short) = ShortId::from_hex(short_id) else {
        tracing::warn!(short_id, "sessiontrace: ignoring an active session with a malformed short id");
        return false;
    };
    match ACTIVE_SESSION.write() {
        Ok(mut active) => *active = Some((kind, short)),
        Err(poisoned) => *poisoned.into_inner() = Some((kind, short)),
    }
    true
}

/// New root traces get random ids again.
pub fn clear_active_session() {
    match ACTIVE_SESSION.write() {
        Ok(mut active) => *active = None,
        Err(poisoned) => *poisoned.into_inner() = None,
    }
}

/// The active session's short id, if any.
pub fn active_session() -> Option<(SessionTraceKind, String)> {
    let active = match ACTIVE_SESSION.read() {
        Ok(active) => *active,
        Err(poisoned) => *poisoned.into_inner(),
    };
    active.map(|(kind, short)| (kind, short.to_hex()))
}

/// Runs `start_span` so that a root span it starts on this thread gets a trace id of the given session.
/// The tower layer uses it to start a session trace from the `sessiontrace_session` cookie.
pub fn with_session_trace<T>(kind: SessionTraceKind, short_id: &str, start_span: impl FnOnce() -> T) -> T {
    let Some(short) = ShortId::from_hex(short_id) else { return start_span() };
    NEXT_ROOT_SESSION.with(|next| next.set(Some((kind, short))));
    let result = start_span();
    NEXT_ROOT_SESSION.with(|next| next.set(None));
    result
}

/// A random trace id of the session, as an OpenTelemetry id.
pub fn session_trace_id(kind: SessionTraceKind, short_id: &str) -> Option<TraceId> {
    let short = ShortId::from_hex(short_id)?;
    Some(TraceId::from_bytes(sessiontrace_model::TraceId::for_session(kind, short).0))
}

/// The session a trace id names, if it starts with a session prefix.
pub fn session_of(trace_id: TraceId) -> Option<(SessionTraceKind, String)> {
    sessiontrace_model::session_of_trace_id(&trace_id.to_bytes()).map(|(kind, short)| (kind, short.to_hex()))
}

/// Whether a trace id starts with a session prefix (`debdeb` or `cdbcdb`).
pub fn is_session_trace(trace_id: TraceId) -> bool {
    sessiontrace_model::session_of_trace_id(&trace_id.to_bytes()).is_some()
}

/// The id generator of a sessiontrace-instrumented service; see the module docs.
#[derive(Debug, Default, Clone, Copy)]
pub struct SessionIdGenerator;

impl IdGenerator for SessionIdGenerator {
    fn new_trace_id(&self) -> TraceId {
        let session = NEXT_ROOT_SESSION.with(|next| next.take()).or_else(|| match ACTIVE_SESSION.read() {
            Ok(active) => *active,
            Err(poisoned) => *poisoned.into_inner(),
        });
        let id = match session {
            Some((kind, short)) => sessiontrace_model::TraceId::for_session(kind, short),
            None => sessiontrace_model::TraceId::random(),
        };
        TraceId::from_bytes(id.0)
    }

    fn new_span_id(&self) -> SpanId {
        SpanId::from_bytes(sessiontrace_model::SpanId::random().0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // The active session is process-wide: one test touches it, the others use the thread-local path.
    #[test]
    fn active_session_prefixes_new_trace_ids_until_cleared() {
        assert!(!set_active_session(SessionTraceKind::Recorded, "XYZ"));
        assert!(set_active_session(SessionTraceKind::Recorded, "0badcafe"));
        let id = SessionIdGenerator.new_trace_id();
        assert!(id.to_string().starts_with("debdeb0badcafe"), "{id}");
        assert_eq!(session_of(id), Some((SessionTraceKind::Recorded, "0badcafe".into())));
        assert_eq!(active_session(), Some((SessionTraceKind::Recorded, "0badcafe".into())));
        clear_active_session();
        assert_eq!(active_session(), None);
        for _ in 0..200 {
            assert!(!is_session_trace(SessionIdGenerator.new_trace_id()));
        }
    }

    #[test]
    fn with_session_trace_applies_to_one_root_only() {
        let (first, second) = with_session_trace(SessionTraceKind::Continuous, "1a2b3c4d", || {
            (SessionIdGenerator.new_trace_id(), SessionIdGenerator.new_trace_id())
        });
        assert!(first.to_string().starts_with("cdbcdb1a2b3c4d"));
        assert!(!second.to_string().starts_with("cdbcdb1a2b3c4d"));
        assert!(!SessionIdGenerator.new_trace_id().to_string().starts_with("cdbcdb"));
    }

    proptest! {
        #[test]
        fn session_trace_ids_round_trip(short in any::<[u8; 4]>(), continuous in any::<bool>()) {
            let kind = if continuous { SessionTraceKind::Continuous } else { SessionTraceKind::Recorded };
            let short_hex = ShortId(short).to_hex();
            let id = session_trace_id(kind, &short_hex).unwrap();
            prop_assert_eq!(session_of(id), Some((kind, short_hex.clone())));
            prop_assert_eq!(id.to_string().len(), 32);
            let prefix = format!("{}{}", kind.prefix_hex(), short_hex);
            prop_assert!(id.to_string().starts_with(&prefix));
            prop_assert_ne!(id, TraceId::INVALID);
        }

        #[test]
        fn foreign_prefixes_are_not_sessions(bytes in any::<[u8; 16]>()) {
            let id = TraceId::from_bytes(bytes);
            let expect = bytes[..3] == [0xde, 0xbd, 0xeb] || bytes[..3] == [0xcd, 0xbc, 0xdb];
            prop_assert_eq!(is_session_trace(id), expect);
            prop_assert_ne!(SessionIdGenerator.new_span_id(), SpanId::INVALID);
        }
    }
}
