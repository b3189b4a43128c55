//! The vocabulary of sessiontrace: sessions and their short ids, the trace-id encoding that marks a trace
//! as belonging to a session (shared/DESIGN.md section 2), the masking rules that keep secrets out of
//! storage (section 5), the project every record belongs to and the credential records (section 8). No I/O
//! and no async here: ingest, store, query and the SDK build on these types.

pub mod auth;
pub mod ids;
pub mod masking;
pub mod project;
pub mod session;
pub mod signals;

pub use auth::{ApiKey, KeyKind, LoginSession, ProjectInfo, Role, User};
pub use ids::{SessionTraceKind, SpanId, TraceId, session_of_trace_id};
pub use project::Project;
pub use session::{CaptureSettings, Session, SessionKind};
pub mod records;
