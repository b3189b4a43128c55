//! From bytes on the wire to records a store can write. Every span, log and metric passes here, whatever
//! receiver it came through (OTLP/HTTP protobuf or JSON, OTLP/gRPC):
//!
//! 1. [`decode`]: content type, gzip, size limit, protobuf or JSON (the OTLP JSON mapping) → OTLP types;
//!    protobuf trace requests first try [`scan`], a read of the wire format that takes only the index
//!    fields and keeps the received bytes, and fall back to the full decode when it cannot vouch for them;
//! 2. [`normalize`]: ids validated, `multiplayer.*` capture keys renamed, secrets masked, the session of
//!    each span found (trace-id prefix, `session.id`, `multiplayer.session.id`);
//! 3. [`route`]: the one place that decides, per trace, whether it is kept;
//! 4. [`traces`], [`logs`], [`metrics`]: the kept data as a [`WriteBatch`](sessiontrace_model::records::WriteBatch):
//!    span blocks (the received protobuf, re-encoded only when normalization changed it) with a per-trace
//!    index, log records and metric points.
//!
//! Replay chunks of the browser recorder take [`replay`] (the body checked, the events kept as received);
//! once stored, [`signals`] derives a session's frustration signals and facts from its events ([`rrweb`]).
//!
//! Nothing here does I/O; the server awaits the store's commit before it answers the client.

pub mod anyvalue;
pub mod decode;
pub mod error;
pub mod index;
pub mod logs;
pub mod metrics;
pub mod normalize;
pub mod replay;
pub mod route;
pub mod rrweb;
pub mod scan;
pub mod signals;
pub mod traces;

pub use error::IngestError;

use sessiontrace_model::masking::MaskingRules;

/// Settings the ingest path needs, built once by the server from its config.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Largest request body accepted, before and after decompression.
    pub max_body_bytes: usize,
    /// Largest attribute string value kept; longer values are cut.
    pub max_attribute_value_bytes: usize,
    pub masking: MaskingRules,
    pub routing: route::RoutingPolicy,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_body_bytes: 16 * 1024 * 1024,
            max_attribute_value_bytes: 256 * 1024,
            masking: MaskingRules::default(),
            routing: route::RoutingPolicy::default(),
        }
    }
}
