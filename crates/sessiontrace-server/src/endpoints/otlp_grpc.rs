//! OTLP/gRPC: the trace, logs and metrics services over tonic, gzip accepted. Each export goes through
//! the same [`pipeline`](crate::pipeline) as OTLP/HTTP and answers once the data is durable.

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use sessiontrace_ingest::logs::LogInput;
use sessiontrace_ingest::metrics::MetricInput;
use sessiontrace_ingest::traces::TraceInput;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use crate::error::ApiError;
use crate::pipeline;
use crate::state::AppState;

/// The three OTLP services, sharing the server state.
#[derive(Clone)]
pub struct OtlpGrpc {
    state: AppState,
}

impl OtlpGrpc {
    fn check_size<M: Message>(&self, message: &M) -> Result<(), Status> {
        let limit = self.state.config.max_body_bytes;
        let size = message.encoded_len();
        if size > limit {
            return Err(ApiError::TooLarge(format!(
                "request of {size} bytes is larger than the limit of {limit} bytes"
            ))
            .grpc_status());
        }
        Ok(())
    }
}

/// A tonic router with the trace, logs and metrics services.
pub fn router(state: AppState) -> tonic::service::Routes {
    // tonic refuses messages over its own limit before decoding them (OUT_OF_RANGE); the configured limit
    // is checked after decoding (RESOURCE_EXHAUSTED), so tonic's bound is kept above it.
    let decode_limit = state.config.max_body_bytes.saturating_mul(2);
    let service = OtlpGrpc { state };
    let traces = TraceServiceServer::new(service.clone())
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(decode_limit);
    let logs = LogsServiceServer::new(service.clone())
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(decode_limit);
    let metrics = MetricsServiceServer::new(service)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(decode_limit);
    tonic::service::Routes::new(traces).add_service(logs).add_service(metrics)
}

#[tonic::async_trait]
impl TraceService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.check_size(request.get_ref())?;
        let outcome = pipeline::accept_traces(&self.state, TraceInput::Decoded(request.into_inner()))
            .await
            .map_err(|e| e.grpc_status())?;
        let partial_success = (outcome.rejected_spans > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: outcome.rejected_spans as i64,
            error_message: outcome.rejection_message.unwrap_or_default(),
        });
        Ok(Response::new(ExportTraceServiceResponse { partial_success }))
    }
}

#[tonic::async_trait]
impl LogsService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        self.check_size(request.get_ref())?;
        let outcome = pipeline::accept_logs(&self.state, LogInput::Decoded(request.into_inner()))
            .await
            .map_err(|e| e.grpc_status())?;
        let partial_success = (outcome.rejected > 0).then(|| ExportLogsPartialSuccess {
            rejected_log_records: outcome.rejected as i64,
            error_message: outcome.rejection_message.unwrap_or_default(),
        });
        Ok(Response::new(ExportLogsServiceResponse { partial_success }))
    }
}

#[tonic::async_trait]
impl MetricsService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.check_size(request.get_ref())?;
        pipeline::accept_metrics(&self.state, MetricInput::Decoded(request.into_inner()))
            .await
            .map_err(|e| e.grpc_status())?;
        Ok(Response::new(ExportMetricsServiceResponse { partial_success: None }))
    }
}
