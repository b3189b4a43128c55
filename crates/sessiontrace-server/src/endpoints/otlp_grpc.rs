//! OTLP/gRPC: the `Export` methods of the trace, logs and metrics services over tonic, gzip and zstd
//! accepted.
//!
//! tonic handles HTTP/2, the gRPC framing, compression and status codes; the message itself is not
//! decoded here. A codec that passes bytes through hands the received protobuf to
//! [`export`](crate::endpoints::export), the same call OTLP/HTTP makes, so gRPC takes the same ingest
//! path: for traces the scan fast path that stores the received bytes, without a full decode and
//! re-encode. Bad protobuf is INVALID_ARGUMENT with what was wrong, as on OTLP/HTTP it is a 400.

use std::convert::Infallible;
use std::task::{Context, Poll};

use sessiontrace_ingest::decode::Encoding;
use sessiontrace_pipeline::codec::PassThrough;
use tonic::codec::{CompressionEncoding, EnabledCompressionEncodings};
use tonic::codegen::{BoxFuture, StdError};
use tonic::{Status, server::UnaryService};

use crate::access::{grpc_access, refusal_status, take_bytes};
use crate::admission::Receiver;
use crate::endpoints::export::export;
use crate::error::ApiError;
use sessiontrace_pipeline::signal::Signal;

use crate::state::AppState;

/// A tonic router with the three `Export` methods; any other method is UNIMPLEMENTED.
pub fn router(state: AppState) -> tonic::service::Routes {
    let mut routes = tonic::service::Routes::default();
    let router = std::mem::take(routes.axum_router_mut());
    *routes.axum_router_mut() = Signal::ALL.into_iter().fold(router, |router, signal| {
        router.route_service(signal.grpc_path(), ExportMethod { state: state.clone(), signal })
    });
    routes
}

/// One signal's `Export` method.
#[derive(Clone)]
struct ExportMethod {
    state: AppState,
    signal: Signal,
}

impl<B> tower::Service<http::Request<B>> for ExportMethod
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = self.clone();
        Box::pin(async move {
            let (mut accept, mut send) =
                (EnabledCompressionEncodings::default(), EnabledCompressionEncodings::default());
            accept.enable(CompressionEncoding::Gzip);
            accept.enable(CompressionEncoding::Zstd);
            send.enable(CompressionEncoding::Gzip);
            // tonic refuses messages over its own bound before reading them (OUT_OF_RANGE); the configured
            // limit is checked on the received message (RESOURCE_EXHAUSTED), so tonic's bound is above it.
            let decode_limit = method.state.config.max_body_bytes.saturating_mul(2);
            let mut grpc = tonic::server::Grpc::new(PassThrough)
                .apply_compression_config(accept, send)
                .apply_max_message_size_config(Some(decode_limit), None);
            Ok(grpc.unary(method, request).await)
        })
    }
}

impl UnaryService<Vec<u8>> for ExportMethod {
    type Response = Vec<u8>;
    type Future = BoxFuture<tonic::Response<Vec<u8>>, Status>;

    fn call(&mut self, request: tonic::Request<Vec<u8>>) -> Self::Future {
        let ExportMethod { state, signal } = self.clone();
        Box::pin(async move {
            let headers = request.metadata().clone().into_headers();
            let (context, caller) = grpc_access(&state, &headers).await?;
            let bytes = request.into_inner();
            let limit = state.config.max_body_bytes;
            if bytes.len() > limit {
                let message = format!("request of {} bytes is larger than the limit of {limit} bytes", bytes.len());
                return Err(ApiError::TooLarge(message).grpc_status());
            }
            take_bytes(&state, &context, &caller, bytes.len()).map_err(|refusal| refusal_status(&state, &refusal))?;
            let _admitted = state.admission.admit(Receiver::OtlpGrpc, bytes.len()).map_err(|e| e.grpc_status())?;
            let answer =
                export(&state, &context, signal, Encoding::Protobuf, bytes).await.map_err(|e| e.grpc_status())?;
            Ok(tonic::Response::new(answer.to_protobuf()))
        })
    }
}
