//! A metrics request through the stages: ingest, store write, forward (metrics carry no trace, so
//! neither the tail nor the continuous stage sees them).

use sessiontrace_ingest::metrics::MetricInput;

use crate::telemetry::Counters;
use crate::{Pipeline, PipelineError, RequestContext};

impl Pipeline {
    /// Ingests one metrics request and returns once its points are durable.
    pub async fn accept_metrics(&self, ctx: &RequestContext, input: MetricInput) -> Result<(), PipelineError> {
        let forward_bytes = self.forward.as_ref().and_then(|forward| forward.metrics_bytes(&input));
        let points = sessiontrace_ingest::metrics::prepare(input, &self.ingest)
            .inspect_err(|_| Counters::add(&self.counters.requests_invalid, 1))?;
        let stored = points.len() as u64;
        self.write.write_points(&ctx.project, points).await?;
        Counters::add(&self.counters.metric_points_stored, stored);
        if let (Some(forward), Some(bytes)) = (&self.forward, forward_bytes) {
            forward.offer_metrics(&bytes, stored);
        }
        Ok(())
    }
}
