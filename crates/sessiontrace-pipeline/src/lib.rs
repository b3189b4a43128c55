//! The ingest pipeline: what happens to a request's data between the receiver that decoded its framing
//! and the acknowledgement. No HTTP here: the server's endpoints (OTLP/HTTP, OTLP/gRPC, sessions,
//! replay events) hand prepared input and a [`RequestContext`] to a [`Pipeline`] and turn its outcome
//! into their answer.
//!
//! # The path of a span through it
//! 1. **ingest** (`sessiontrace_ingest::traces::prepare`): decode (the scan fast path for protobuf),
//!    refuse bad ids (partial success), mask, find each span's session, route each trace (session
//!    traces always kept), and build one block — the received protobuf, re-encoded only if something
//!    changed — with one index entry per trace.
//! 2. [`tail`] (only with a sampling ratio below 1 and a `decision_wait`): traces the ratio drops are
//!    held; a later error or slow root releases them into this request's write.
//! 3. [`continuous`]: traces, logs and replay of unsaved continuous sessions go to their rolling window
//!    instead of the store; a trigger (error span, save) writes the window with the request.
//! 4. **store write** ([`write`]): one `Store::write` of everything this request keeps, awaited: the
//!    caller acknowledges only after it returns, so an acknowledged span is durable.
//! 5. [`forward`] (only with `[[forward]]` upstreams): after the commit, what each upstream's mode asks
//!    for is offered to its queue, without waiting.
//!
//! A stage that is not configured is absent (`None`), never a branch inside another stage. Every stage
//! counts into the one [`telemetry::Counters`] the pipeline hands it.

pub mod clock;
pub mod codec;
pub mod continuous;
pub mod forward;
pub mod signal;
pub mod tail;
pub mod telemetry;
pub mod write;

mod logs;
mod metrics;
mod sessions;
mod traces;

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use sessiontrace_ingest::{IngestConfig, IngestError};
use sessiontrace_model::project::Project;
use sessiontrace_store::{Store, StoreError};

pub use logs::LogOutcome;
pub use sessions::ReplayOutcome;
pub use sessiontrace_config::pipeline::PipelineSettings;
pub use traces::TraceOutcome;

use continuous::ContinuousSessions;
use forward::{ForwardStage, Forwarder};
use tail::TailBuffer;
use telemetry::Counters;
use write::StoreWrite;

/// Who sent a request, for which project; every pipeline call takes one. The project comes only from
/// the credential that authenticated the request (or is `default` with authentication off).
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub project: Project,
    /// For logs: `key k_…`, `user NAME`, or `local` (authentication off). Never a secret.
    pub caller: String,
}

impl RequestContext {
    /// A context for `project`.
    pub fn for_project(project: Project, caller: impl Into<String>) -> Self {
        RequestContext { project, caller: caller.into() }
    }
}

/// Why the pipeline refused or could not finish a request.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The input is bad (the caller's fault: 4xx / INVALID_ARGUMENT).
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The store failed or is unavailable (retryable when unavailable).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The stages, in the order data flows through them.
pub struct Pipeline {
    ingest: Arc<IngestConfig>,
    counters: Arc<Counters>,
    tail: Option<Arc<TailBuffer>>,
    continuous: Arc<ContinuousSessions>,
    write: StoreWrite,
    forward: Option<ForwardStage>,
}

impl Pipeline {
    /// Builds the stages around a store. Forwarding starts its sender tasks on the current tokio
    /// runtime; without one it is off (and says so). Call [`Pipeline::start_timers`] once the pipeline
    /// is in an `Arc`.
    pub fn new(settings: PipelineSettings, store: Arc<dyn Store>) -> anyhow::Result<Self> {
        let counters = Arc::new(Counters::default());
        let ingest = Arc::new(settings.ingest);
        let tail = settings.tail.map(|tail| Arc::new(TailBuffer::new(tail, ingest.routing.clone())));
        let continuous = Arc::new(ContinuousSessions::new(settings.continuous, store.clone(), counters.clone()));
        let forward = match (settings.forward.is_empty(), tokio::runtime::Handle::try_current()) {
            (true, _) => None,
            (false, Ok(_)) => {
                let forwarder = Arc::new(Forwarder::start(&settings.forward)?);
                Some(ForwardStage::new(forwarder, ingest.clone()))
            }
            (false, Err(_)) => {
                tracing::warn!("no tokio runtime: forwarding is off for this pipeline");
                None
            }
        };
        let write = StoreWrite::new(store, counters.clone());
        Ok(Pipeline { ingest, counters, tail, continuous, write, forward })
    }

    /// The counters of every stage (for `/metrics`, and for what the endpoints count themselves).
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// `/metrics`: every stage's counters in the Prometheus text format.
    /// `extra` rows (the server's own) come last.
    pub fn metrics_text(&self, extra: Vec<telemetry::ExpositionRow>) -> String {
        let mut rows = self.forward.as_ref().map(|f| f.forwarder().metric_rows()).unwrap_or_default();
        rows.extend(extra);
        self.counters.render(rows)
    }

    /// The ingest settings (limits, masking, routing).
    pub fn ingest(&self) -> &IngestConfig {
        &self.ingest
    }

    /// Whether the tail stage is present.
    pub fn has_tail(&self) -> bool {
        self.tail.is_some()
    }

    /// Whether the forward stage is present.
    pub fn has_forward(&self) -> bool {
        self.forward.is_some()
    }

    /// Expires tail decisions and idle continuous windows on the current runtime until the pipeline is
    /// dropped.
    pub fn start_timers(self: &Arc<Self>) {
        tokio::spawn(timers(Arc::downgrade(self)));
    }

    /// Stops the forward stage: queued payloads get up to `within` to be delivered.
    pub async fn close(&self, within: Duration) {
        if let Some(forward) = &self.forward {
            forward.forwarder().close(within).await;
            tracing::info!("forwarding stopped");
        }
    }
}

async fn timers(pipeline: Weak<Pipeline>) {
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for round in 0u64.. {
        interval.tick().await;
        let Some(pipeline) = pipeline.upgrade() else { return };
        let now = Instant::now();
        if let Some(tail) = &pipeline.tail {
            tail.expire(now, &pipeline.counters);
        }
        if round % 10 == 0 {
            pipeline.continuous.sweep(now);
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A pipeline over a fresh embedded store, for the stages' tests.

    use super::*;
    use continuous::ContinuousSettings;
    use sessiontrace_store::sqlite::SqliteStore;

    pub(crate) fn pipeline(settings: PipelineSettings) -> (Pipeline, Arc<dyn Store>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("store.db")).unwrap());
        (Pipeline::new(settings, store.clone()).unwrap(), store, dir)
    }

    pub(crate) fn settings() -> PipelineSettings {
        PipelineSettings {
            ingest: IngestConfig::default(),
            tail: None,
            continuous: ContinuousSettings {
                window: Duration::from_secs(60),
                max_bytes_per_session: 1 << 20,
                max_bytes_total: 1 << 24,
            },
            forward: Vec::new(),
        }
    }
}
