//! A log request through the stages: (forward's decode and mask), ingest, tail, continuous, store
//! write, forward.

use std::collections::{HashMap, HashSet};

use sessiontrace_ingest::logs::{LogInput, PreparedLogs};

use crate::continuous::Saved;
use crate::tail::Released;
use crate::telemetry::Counters;
use crate::{Pipeline, PipelineError, RequestContext};

/// What a log export answers.
#[derive(Debug)]
pub struct LogOutcome {
    pub rejected: u64,
    pub rejection_message: Option<String>,
}

impl Pipeline {
    /// Ingests one log request and returns once its records are durable.
    pub async fn accept_logs(&self, ctx: &RequestContext, input: LogInput) -> Result<LogOutcome, PipelineError> {
        let counters = &self.counters;
        let invalid = |_: &_| Counters::add(&counters.requests_invalid, 1);
        let (input, forward_request) = match &self.forward {
            Some(forward) => {
                let (input, request) = forward.decode_logs(input).inspect_err(invalid)?;
                (input, Some(request))
            }
            None => (input, None),
        };
        let mut prepared: PreparedLogs =
            sessiontrace_ingest::logs::prepare(input, &self.ingest).inspect_err(invalid)?;
        Counters::add(&counters.logs_received, prepared.received);
        Counters::add(&counters.logs_rejected, prepared.rejected);
        let held = std::mem::take(&mut prepared.held);
        let mut records = std::mem::take(&mut prepared.records);
        // Trace ids whose held logs this request keeps because the trace was kept after they arrived.
        let mut kept_late = HashSet::new();
        let released = match &self.tail {
            Some(tail) => {
                let forward_held = match (&self.forward, &forward_request) {
                    (Some(forward), Some(request)) => forward.held_logs(request, &held),
                    _ => HashMap::new(),
                };
                let (released, kept_now) =
                    tail.route_logs(&ctx.project, &records, held, forward_held, prepared.dropped, counters);
                kept_late.extend(kept_now.iter().filter_map(|log| log.trace_id));
                records.extend(kept_now);
                released
            }
            None => {
                Counters::add(&counters.logs_dropped, prepared.dropped);
                Released::default()
            }
        };
        for log in &records {
            let counter = match (&log.session_key, &log.trace_id) {
                (Some(_), _) => &counters.logs_kept_session,
                (None, Some(_)) => &counters.logs_kept_trace,
                (None, None) => &counters.logs_kept_untraced,
            };
            Counters::add(counter, 1);
        }
        let mut logs = self.continuous.intercept_logs(&ctx.project, records).await?;
        logs.extend(released.logs);
        let stored = self.write.write_with_saved(&ctx.project, released.blocks, logs, Saved::default()).await?;
        Counters::add(&counters.logs_stored, stored.logs);
        Counters::add(&counters.spans_stored, stored.spans);
        Counters::add(&counters.spans_kept_error, released.error_spans);

        if let (Some(forward), Some(request)) = (&self.forward, forward_request) {
            forward.offer_logs(request, &kept_late, released.forward_logs);
        }
        Ok(LogOutcome { rejected: prepared.rejected, rejection_message: prepared.rejection_message })
    }
}
