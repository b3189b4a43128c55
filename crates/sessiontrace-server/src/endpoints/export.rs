//! One OTLP export, whatever carried it: the received bytes (protobuf or JSON) of one signal go through
//! the pipeline (`sessiontrace_pipeline`) and come back as that signal's export response, with partial success when some
//! records were refused. OTLP/HTTP and OTLP/gRPC both call [`export`]; they differ only in framing and
//! in how they write the answer. gRPC hands over the received protobuf bytes too, so both take the same
//! ingest path (for traces the scan fast path that stores the bytes as received).

use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsPartialSuccess, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceResponse};
use prost::Message;
use sessiontrace_ingest::decode::Encoding;
use sessiontrace_ingest::logs::LogInput;
use sessiontrace_ingest::metrics::MetricInput;
use sessiontrace_ingest::traces::TraceInput;

use crate::error::ApiError;
use sessiontrace_pipeline::RequestContext;
use sessiontrace_pipeline::signal::Signal;

use crate::state::AppState;

/// The export response of one signal.
pub enum ExportAnswer {
    Traces(ExportTraceServiceResponse),
    Logs(ExportLogsServiceResponse),
    Metrics(ExportMetricsServiceResponse),
}

impl ExportAnswer {
    pub fn to_protobuf(&self) -> Vec<u8> {
        match self {
            ExportAnswer::Traces(response) => response.encode_to_vec(),
            ExportAnswer::Logs(response) => response.encode_to_vec(),
            ExportAnswer::Metrics(response) => response.encode_to_vec(),
        }
    }

    /// The OTLP JSON form: an absent partial success is omitted (not `null`), and its int64 count is a
    /// decimal string, as the OTLP JSON mapping writes int64.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = match self {
            ExportAnswer::Traces(response) => serde_json::to_value(response),
            ExportAnswer::Logs(response) => serde_json::to_value(response),
            ExportAnswer::Metrics(response) => serde_json::to_value(response),
        }
        .unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.retain(|_, field| !field.is_null());
            if let Some(partial) = object.get_mut("partialSuccess").and_then(|p| p.as_object_mut()) {
                for (_, field) in partial.iter_mut().filter(|(_, f)| f.is_number()) {
                    *field = serde_json::Value::String(field.to_string());
                }
            }
        }
        value
    }
}

/// Ingests one export request of `signal` (decompressed bytes in `encoding`) and answers once what it
/// kept is durable.
pub async fn export(
    state: &AppState,
    ctx: &RequestContext,
    signal: Signal,
    encoding: Encoding,
    bytes: Vec<u8>,
) -> Result<ExportAnswer, ApiError> {
    let protobuf = encoding == Encoding::Protobuf;
    Ok(match signal {
        Signal::Traces => {
            let input = if protobuf { TraceInput::Protobuf(bytes) } else { TraceInput::Json(bytes) };
            let outcome = state.pipeline.accept_traces(ctx, input).await?;
            let partial_success = (outcome.rejected_spans > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: outcome.rejected_spans as i64,
                error_message: outcome.rejection_message.unwrap_or_default(),
            });
            ExportAnswer::Traces(ExportTraceServiceResponse { partial_success })
        }
        Signal::Logs => {
            let input = if protobuf { LogInput::Protobuf(bytes) } else { LogInput::Json(bytes) };
            let outcome = state.pipeline.accept_logs(ctx, input).await?;
            let partial_success = (outcome.rejected > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: outcome.rejected as i64,
                error_message: outcome.rejection_message.unwrap_or_default(),
            });
            ExportAnswer::Logs(ExportLogsServiceResponse { partial_success })
        }
        Signal::Metrics => {
            let input = if protobuf { MetricInput::Protobuf(bytes) } else { MetricInput::Json(bytes) };
            state.pipeline.accept_metrics(ctx, input).await?;
            ExportAnswer::Metrics(ExportMetricsServiceResponse { partial_success: None })
        }
    })
}
