//! The one path every signal takes after its receiver: ingest (decode, normalize, route) and then the
//! store, whose commit is awaited before the receiver answers. OTLP/HTTP and OTLP/gRPC both call here.

use sessiontrace_ingest::logs::{LogInput, PreparedLogs};
use sessiontrace_ingest::metrics::MetricInput;
use sessiontrace_ingest::traces::{PreparedTraces, TraceInput};
use sessiontrace_model::records::WriteBatch;

use crate::error::ApiError;
use crate::state::{AppState, Counters};

/// What a trace export answers: how many spans were refused and why.
pub struct TraceOutcome {
    pub rejected_spans: u64,
    pub rejection_message: Option<String>,
}

/// Ingests one trace request and returns once its kept spans are durable.
pub async fn accept_traces(state: &AppState, input: TraceInput) -> Result<TraceOutcome, ApiError> {
    let counters = &state.counters;
    let prepared: PreparedTraces = sessiontrace_ingest::traces::prepare(input, &state.ingest).inspect_err(|_| {
        Counters::add(&counters.requests_invalid, 1);
    })?;
    Counters::add(&counters.spans_received, prepared.received_spans);
    Counters::add(&counters.spans_rejected, prepared.rejected_spans);
    Counters::add(&counters.spans_dropped, prepared.dropped_spans);
    let outcome =
        TraceOutcome { rejected_spans: prepared.rejected_spans, rejection_message: prepared.rejection_message };
    let Some(block) = prepared.block else { return Ok(outcome) };
    let stored = block.span_count as u64;
    write(state, WriteBatch { trace_blocks: vec![block], ..Default::default() }).await?;
    Counters::add(&counters.spans_stored, stored);
    Counters::add(&counters.spans_kept_session, prepared.kept_session_spans);
    Counters::add(&counters.spans_kept_error, prepared.kept_error_spans);
    Counters::add(&counters.spans_kept_policy, prepared.kept_policy_spans);
    Ok(outcome)
}

/// What a log export answers.
pub struct LogOutcome {
    pub rejected: u64,
    pub rejection_message: Option<String>,
}

/// Ingests one log request and returns once its records are durable.
pub async fn accept_logs(state: &AppState, input: LogInput) -> Result<LogOutcome, ApiError> {
    let counters = &state.counters;
    let prepared: PreparedLogs = sessiontrace_ingest::logs::prepare(input, &state.ingest).inspect_err(|_| {
        Counters::add(&counters.requests_invalid, 1);
    })?;
    Counters::add(&counters.logs_received, prepared.received);
    Counters::add(&counters.logs_rejected, prepared.rejected);
    Counters::add(&counters.logs_dropped, prepared.dropped);
    let stored = prepared.records.len() as u64;
    write(state, WriteBatch { logs: prepared.records, ..Default::default() }).await?;
    Counters::add(&counters.logs_stored, stored);
    Ok(LogOutcome { rejected: prepared.rejected, rejection_message: prepared.rejection_message })
}

/// Ingests one metrics request and returns once its points are durable.
pub async fn accept_metrics(state: &AppState, input: MetricInput) -> Result<(), ApiError> {
    let points = sessiontrace_ingest::metrics::prepare(input, &state.ingest).inspect_err(|_| {
        Counters::add(&state.counters.requests_invalid, 1);
    })?;
    let stored = points.len() as u64;
    write(state, WriteBatch { metric_points: points, ..Default::default() }).await?;
    Counters::add(&state.counters.metric_points_stored, stored);
    Ok(())
}

async fn write(state: &AppState, batch: WriteBatch) -> Result<(), ApiError> {
    state.store.write(batch).await.map_err(|error| {
        Counters::add(&state.counters.store_failures, 1);
        ApiError::from(error)
    })
}
