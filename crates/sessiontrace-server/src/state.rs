//! What every endpoint shares: the store (reads), the ingest pipeline (writes), its telemetry, the
//! authenticator and the config.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sessiontrace_auth::{Authenticator, Refusal};
use sessiontrace_pipeline::Pipeline;
use sessiontrace_pipeline::telemetry::{Counters, ExpositionRow};
use sessiontrace_store::Store;

use crate::admission::Admission;
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
    /// The OTLP receivers' in-flight bytes budgets.
    pub admission: Arc<Admission>,
}

/// Refusals by reason, for `/metrics`.
#[derive(Default)]
pub struct AuthCounters {
    refused: [AtomicU64; Refusal::REASONS.len()],
}

impl AuthCounters {
    pub fn count(&self, refusal: &Refusal) {
        if let Some(slot) = Refusal::REASONS.iter().position(|reason| *reason == refusal.reason()) {
            self.refused[slot].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn rows(&self) -> Vec<ExpositionRow> {
        Refusal::REASONS
            .iter()
            .zip(&self.refused)
            .map(|(reason, count)| {
                (
                    "sessiontrace_auth_refused_total",
                    format!("reason=\"{reason}\""),
                    "Requests refused by authentication, authorization or rate limits, by reason",
                    "counter",
                    count.load(Ordering::Relaxed),
                )
            })
            .collect()
    }
}
