//! A trace request through the stages: ingest, tail, continuous, store write, forward.

use sessiontrace_ingest::traces::{PreparedTraces, TraceInput};
use sessiontrace_model::records::TraceBlock;

use crate::continuous::Saved;
use crate::tail::Released;
use crate::telemetry::Counters;
use crate::{Pipeline, PipelineError, RequestContext};

/// What a trace export answers: how many spans were refused and why.
#[derive(Debug)]
pub struct TraceOutcome {
    pub rejected_spans: u64,
    pub rejection_message: Option<String>,
}

impl Pipeline {
    /// Ingests one trace request and returns once its kept spans are durable.
    pub async fn accept_traces(&self, ctx: &RequestContext, input: TraceInput) -> Result<TraceOutcome, PipelineError> {
        let counters = &self.counters;
        let mut prepared: PreparedTraces = sessiontrace_ingest::traces::prepare(input, &self.ingest)
            .inspect_err(|_| Counters::add(&counters.requests_invalid, 1))?;
        Counters::add(&counters.spans_received, prepared.received_spans);
        Counters::add(&counters.spans_rejected, prepared.rejected_spans);
        let outcome = TraceOutcome {
            rejected_spans: prepared.rejected_spans,
            rejection_message: prepared.rejection_message.take(),
        };
        let held = std::mem::take(&mut prepared.held);
        let arrived = self.forward.as_ref().map(|forward| forward.arrived_traces(prepared.block.as_ref(), &held));

        let mut released = match &self.tail {
            Some(tail) => {
                tail.route_traces(&ctx.project, prepared.block.as_ref(), held, prepared.dropped_spans, counters)
            }
            None => {
                Counters::add(&counters.spans_dropped, prepared.dropped_spans);
                Released::default()
            }
        };
        let (block, saved) = match prepared.block.take() {
            Some(block) => self.continuous.intercept_traces(&ctx.project, block).await?,
            None => (None, Saved::default()),
        };
        let released_forward = self.forward.as_ref().map(|forward| forward.released_traces(&mut released));

        let mut blocks: Vec<TraceBlock> = block.into_iter().collect();
        blocks.extend(released.blocks);
        let stored = self.write.write_with_saved(&ctx.project, blocks, released.logs, saved).await?;
        Counters::add(&counters.spans_stored, stored.spans);
        Counters::add(&counters.logs_stored, stored.logs);
        Counters::add(&counters.spans_kept_session, prepared.kept_session_spans);
        Counters::add(&counters.spans_kept_error, prepared.kept_error_spans + released.error_spans);
        Counters::add(&counters.spans_kept_slow, prepared.kept_slow_spans + released.slow_spans);
        Counters::add(&counters.spans_kept_policy, prepared.kept_policy_spans);

        if let (Some(forward), Some(arrived), Some(released)) = (&self.forward, arrived, released_forward) {
            forward.offer_traces(arrived, released);
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as Kind};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord as OtlpLog, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;
    use sessiontrace_ingest::logs::LogInput;

    use super::*;
    use crate::tail::TailSettings;
    use crate::testing::{pipeline, settings};

    fn spans(trace: [u8; 16], ids: &[u8]) -> Vec<u8> {
        let spans = ids
            .iter()
            .map(|id| Span {
                trace_id: trace.to_vec(),
                span_id: vec![*id; 8],
                name: format!("span{id}"),
                start_time_unix_nano: 1_000,
                end_time_unix_nano: 2_000,
                ..Default::default()
            })
            .collect();
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: "service.name".into(),
                        value: Some(AnyValue { value: Some(Kind::StringValue("api".into())) }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    }

    #[tokio::test]
    async fn the_default_config_stores_the_received_bytes() {
        let (pipeline, store, _dir) = pipeline(settings());
        assert!(!pipeline.has_tail() && !pipeline.has_forward());
        let bytes = spans([4; 16], &[1, 2]);
        let ctx = RequestContext::default();
        pipeline.accept_traces(&ctx, TraceInput::Protobuf(bytes.clone())).await.unwrap();
        assert_eq!(store.trace_blocks(&ctx.project, [4; 16]).await.unwrap(), vec![bytes]);
    }

    #[tokio::test]
    async fn an_error_log_keeps_the_held_spans_of_its_trace() {
        let mut settings = settings();
        settings.ingest.routing.sampling_ratio = 0.0;
        settings.ingest.routing.hold_dropped = true;
        settings.tail = Some(TailSettings {
            decision_wait: std::time::Duration::from_secs(60),
            max_bytes: 64 << 20,
            remember_kept: std::time::Duration::from_secs(240),
        });
        let (pipeline, store, _dir) = pipeline(settings);
        let counters = pipeline.counters().clone();
        let ctx = RequestContext::default();
        let trace = [4; 16];
        pipeline.accept_traces(&ctx, TraceInput::Protobuf(spans(trace, &[1, 2]))).await.unwrap();
        assert!(store.trace_blocks(&ctx.project, trace).await.unwrap().is_empty());
        assert_eq!(counters.pending_spans.load(Ordering::Relaxed), 2);
        let log = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![OtlpLog { trace_id: trace.to_vec(), severity_number: 17, ..Default::default() }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        pipeline.accept_logs(&ctx, LogInput::Decoded(log)).await.unwrap();
        assert_eq!(store.trace_blocks(&ctx.project, trace).await.unwrap().len(), 1);
        assert_eq!(counters.pending_spans.load(Ordering::Relaxed), 0);
        assert_eq!(counters.spans_kept_error.load(Ordering::Relaxed), 2);
        // A straggler of the kept trace is kept on arrival.
        pipeline.accept_traces(&ctx, TraceInput::Protobuf(spans(trace, &[3]))).await.unwrap();
        assert_eq!(store.trace_blocks(&ctx.project, trace).await.unwrap().len(), 2);
        assert_eq!(counters.spans_stored.load(Ordering::Relaxed), 3);
        assert_eq!(counters.spans_dropped.load(Ordering::Relaxed), 0);
    }
}
