//! The vocabulary of sessiontrace: sessions and their short ids, the trace-id encoding that marks a trace
//! as belonging to a session (shared/DESIGN.md section 2), and the masking rules that keep secrets out of
//! storage (section 5). No I/O and no async here: ingest, store, query and the SDK build on these types.

pub mod ids;
pub mod masking;
pub mod session;

pub use ids::{SessionTraceKind, SpanId, TraceId, session_of_trace_id};
pub use session::{CaptureSettings, Session, SessionKind};
pub mod records;
