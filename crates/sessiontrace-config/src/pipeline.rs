//! The settings the pipeline (`sessiontrace_pipeline`) is built from, derived from the config by
//! [`ServerConfig::pipeline_settings`](crate::ServerConfig::pipeline_settings). Plain values: the stages
//! that use them live in the pipeline crate.

use std::time::Duration;

use sessiontrace_ingest::IngestConfig;

use crate::forward::ForwardConfig;

/// What the pipeline is built from.
pub struct PipelineSettings {
    pub ingest: IngestConfig,
    /// The tail stage; `None` when nothing can be dropped (ratio 1.0) or `decision_wait` is 0.
    pub tail: Option<TailSettings>,
    pub continuous: ContinuousSettings,
    /// Upstreams; the forward stage is absent when empty.
    pub forward: Vec<ForwardConfig>,
}

/// Settings of the tail buffer: how long and how much of the traces the ratio would drop is held.
#[derive(Debug, Clone)]
pub struct TailSettings {
    pub decision_wait: Duration,
    pub max_bytes: usize,
    /// How long a trace kept late (error, slow) is remembered, so its later spans are kept too.
    pub remember_kept: Duration,
}

/// Settings of the continuous sessions' rolling windows.
#[derive(Debug, Clone)]
pub struct ContinuousSettings {
    pub window: Duration,
    pub max_bytes_per_session: usize,
    pub max_bytes_total: usize,
}
