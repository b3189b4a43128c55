//! What every endpoint shares: the store (reads), the ingest pipeline (writes), its telemetry, the
//! authenticator and the config.

use std::sync::Arc;

use sessiontrace_auth::Authenticator;
use sessiontrace_pipeline::Pipeline;
use sessiontrace_pipeline::telemetry::Counters;
use sessiontrace_store::Store;

use crate::access::AuthCounters;
use crate::config::ServerConfig;

/// Shared state of all endpoints.
#[derive(Clone)]
pub struct AppState {
    /// For reads; every write goes through [`AppState::pipeline`].
    pub store: Arc<dyn Store>,
    pub pipeline: Arc<Pipeline>,
    /// The pipeline's counters, plus what the endpoints count (sessions started, retention).
    pub counters: Arc<Counters>,
    pub config: Arc<ServerConfig>,
    /// Keys, logins and rate limits.
    pub auth: Arc<Authenticator>,
    pub auth_counters: Arc<AuthCounters>,
}
