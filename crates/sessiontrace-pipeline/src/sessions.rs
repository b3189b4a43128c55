//! What a session adds to the path: its replay chunks (held in the rolling window of an unsaved
//! continuous session, stored otherwise) and the save of a continuous session, which writes its window.

use sessiontrace_model::records::ReplayChunk;
use sessiontrace_model::{Session, SessionKind};

use crate::telemetry::Counters;
use crate::{Pipeline, PipelineError, RequestContext};

/// What became of a replay chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayOutcome {
    /// Stored now.
    Stored,
    /// Stored before (same session and seq): nothing changed.
    Duplicate,
    /// Held in an unsaved continuous session's window.
    Held,
}

impl Pipeline {
    /// Stores (or holds) one replay chunk of a session and returns once it is durable.
    pub async fn accept_replay(
        &self,
        ctx: &RequestContext,
        session: &Session,
        chunk: ReplayChunk,
    ) -> Result<ReplayOutcome, PipelineError> {
        let Some(chunk) = self.continuous.intercept_replay(&ctx.project, session, chunk).await? else {
            return Ok(ReplayOutcome::Held);
        };
        let stored = self.write.put_replay_chunk(&ctx.project, chunk).await?;
        Ok(if stored { ReplayOutcome::Stored } else { ReplayOutcome::Duplicate })
    }

    /// Before a session is marked saved: a continuous session's window is written (later data is
    /// written through); other sessions have nothing held. The caller sets `saved_at_ms`.
    pub async fn save_session(&self, ctx: &RequestContext, session: &Session) -> Result<(), PipelineError> {
        if session.kind != SessionKind::Continuous {
            return Ok(());
        }
        let saved = self.continuous.save(&ctx.project, session);
        let stored = self.write.write_with_saved(&ctx.project, Vec::new(), Vec::new(), saved).await?;
        Counters::add(&self.counters.spans_stored, stored.spans);
        Counters::add(&self.counters.logs_stored, stored.logs);
        Counters::add(&self.counters.continuous_saves, 1);
        tracing::info!(session_id = %session.id, spans = stored.spans, logs = stored.logs, "continuous session saved");
        Ok(())
    }
}
