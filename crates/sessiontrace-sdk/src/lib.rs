//! `sessiontrace-sdk`: what a Rust service adds so that every span of a recorded session is kept and
//! linked (shared/DESIGN.md sections 2 to 5). Built on the `opentelemetry` / `opentelemetry_sdk` crates;
//! spans and logs leave over OTLP to a sessiontrace server (or any collector).
//!
//! - [`SessionSampler`] ([`sampler`]): session traces always sampled, the rest to your sampler.
//! - [`SessionIdGenerator`] ([`ids`]): root trace ids carry the active session's prefix.
//! - [`SessionPropagator`] ([`propagation`]): W3C trace context, B3, `x-trace-id`.
//! - [`SessionTraceLayer`] ([`server`]): a tower layer for HTTP servers, with capture ([`capture`]).
//! - [`TracedClient`] ([`client`]): a traced `reqwest` client.
//! - [`init`]: one call that sets all of it up from `OTEL_*` variables; [`session`]: backend sessions.
//!
//! The SDK never panics in your service: problems are logged through `tracing` and the request goes on.
//!
//! ```no_run
//! # async fn run() {
//! use tracing_subscriber::prelude::*;
//! let guard = sessiontrace_sdk::init("orders");
//! tracing_subscriber::registry().with(tracing_subscriber::fmt::layer()).with(guard.log_layer()).init();
//! let app: axum::Router = axum::Router::new()
//!     .route("/orders", axum::routing::post(|| async { "created" }))
//!     .layer(sessiontrace_sdk::SessionTraceLayer::new());
//! # }
//! ```

pub mod capture;
pub mod client;
pub mod ids;
pub mod init;
pub use sessiontrace_propagation as propagation;
pub mod sampler;
pub mod server;
pub mod session;

pub use capture::CaptureConfig;
pub use client::TracedClient;
pub use ids::SessionIdGenerator;
pub use init::{Guard, Options, init, init_with, try_init, try_init_with};
pub use propagation::{Injection, SessionPropagator};
pub use sampler::SessionSampler;
pub use server::{SessionTrace, SessionTraceLayer};
