//! The store write stage: one `Store::write` of everything a request keeps (its own blocks and logs,
//! what a tail decision released, what a continuous-session save took out of its window), awaited, so
//! the caller acknowledges only durable data. Then the saved replay chunks and the sessions a trigger
//! saved.
//!
//! Each stored replay chunk is followed by a new derivation of its session's signals and facts
//! (`sessiontrace_ingest::signals`) over all of the session's stored events, which the store keeps in
//! place of the last one: a signal whose pieces arrive in different chunks is found once the last
//! arrives, and a chunk re-sent after a failed derivation derives again.

use std::sync::Arc;

use sessiontrace_model::project::Project;
use sessiontrace_model::records::{LogRecord, MetricPoint, ReplayChunk, TraceBlock, WriteBatch};
use sessiontrace_store::{Store, StoreError};

use crate::clock::now_ms;
use crate::continuous::Saved;
use crate::telemetry::Counters;

/// What one write stored.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stored {
    pub spans: u64,
    pub logs: u64,
}

/// The stage: the store and the counters it adds to.
pub struct StoreWrite {
    store: Arc<dyn Store>,
    counters: Arc<Counters>,
}

impl StoreWrite {
    pub fn new(store: Arc<dyn Store>, counters: Arc<Counters>) -> Self {
        StoreWrite { store, counters }
    }

    /// Writes blocks and logs with what a continuous-session save took out of its windows, then the
    /// saved replay chunks, then marks the sessions a trigger saved.
    pub async fn write_with_saved(
        &self,
        project: &Project,
        mut blocks: Vec<TraceBlock>,
        mut logs: Vec<LogRecord>,
        saved: Saved,
    ) -> Result<Stored, StoreError> {
        let counters = &self.counters;
        let window_spans: u64 = saved.blocks.iter().map(|b| b.span_count as u64).sum();
        let window_logs = saved.logs.len() as u64;
        blocks.extend(saved.blocks);
        logs.extend(saved.logs);
        let stored = Stored { spans: blocks.iter().map(|b| b.span_count as u64).sum(), logs: logs.len() as u64 };
        if !blocks.is_empty() || !logs.is_empty() {
            let written = self.write(project, WriteBatch { trace_blocks: blocks, logs, ..Default::default() }).await;
            if written.is_err() && (window_spans > 0 || window_logs > 0 || !saved.replay.is_empty()) {
                // The client retries its own request; what came out of a continuous window is gone with
                // this failed write, so it is counted and logged rather than lost quietly.
                Counters::add(&counters.continuous_spans_expired, window_spans);
                Counters::add(&counters.continuous_logs_expired, window_logs);
                Counters::add(&counters.continuous_replay_expired, saved.replay.len() as u64);
                tracing::error!(
                    spans = window_spans,
                    logs = window_logs,
                    replay_chunks = saved.replay.len(),
                    "continuous window lost: the store write of its save failed"
                );
            }
            written?;
        }
        let mut replayed_sessions: Vec<String> = Vec::new();
        for chunk in saved.replay {
            if !replayed_sessions.contains(&chunk.session_id) {
                replayed_sessions.push(chunk.session_id.clone());
            }
            self.store_chunk(project, chunk).await?;
        }
        for session_id in replayed_sessions {
            self.derive_insights(project, &session_id).await?;
        }
        for id in saved.triggered_sessions {
            if let Some(mut session) = self.store.session(project, &id).await?
                && session.saved_at_ms.is_none()
            {
                session.saved_at_ms = Some(now_ms());
                self.store.update_session(project, &session).await?;
                Counters::add(&counters.continuous_saves, 1);
            }
        }
        Ok(stored)
    }

    /// Writes metric points.
    pub async fn write_points(&self, project: &Project, points: Vec<MetricPoint>) -> Result<(), StoreError> {
        self.write(project, WriteBatch { metric_points: points, ..Default::default() }).await
    }

    /// Stores a replay chunk once (false when it was stored before), then derives its session's signals
    /// and facts again.
    pub async fn put_replay_chunk(&self, project: &Project, chunk: ReplayChunk) -> Result<bool, StoreError> {
        let session_id = chunk.session_id.clone();
        let stored = self.store_chunk(project, chunk).await?;
        self.derive_insights(project, &session_id).await?;
        Ok(stored)
    }

    async fn store_chunk(&self, project: &Project, chunk: ReplayChunk) -> Result<bool, StoreError> {
        let stored = self.store.put_replay_chunk(project, chunk).await?;
        let counter = if stored { &self.counters.replay_chunks_stored } else { &self.counters.replay_chunks_duplicate };
        Counters::add(counter, 1);
        Ok(stored)
    }

    /// Reads all of a session's replay events, derives its insights (on a blocking thread: a long
    /// session is a lot of JSON) and stores them in place of the last ones.
    async fn derive_insights(&self, project: &Project, session_id: &str) -> Result<(), StoreError> {
        let chunks = self.store.replay_chunks(project, session_id).await?;
        let insights = tokio::task::spawn_blocking(move || {
            let mut events = Vec::new();
            for chunk in &chunks {
                if let Ok(serde_json::Value::Array(chunk_events)) = serde_json::from_slice(&chunk.events_json) {
                    events.extend(chunk_events);
                }
            }
            sessiontrace_ingest::signals::derive(&events)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("signal derivation stopped: {e}")))?;
        self.store.put_session_insights(project, session_id, &insights).await
    }

    async fn write(&self, project: &Project, batch: WriteBatch) -> Result<(), StoreError> {
        self.store.write(project, batch).await.inspect_err(|_| Counters::add(&self.counters.store_failures, 1))
    }
}
