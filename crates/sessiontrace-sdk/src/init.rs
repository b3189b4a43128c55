//! One-call setup: [`init`] builds the tracer provider (with [`SessionSampler`] and [`SessionIdGenerator`]),
//! the OTLP exporters for traces, logs and metrics (a periodic reader; the server layer records
//! `http.server.request.duration` and `http.server.request.count`), and the global propagator, from the standard `OTEL_*`
//! environment variables; the returned [`Guard`] flushes and shuts everything down when dropped.
//!
//! Variables read:
//! - `OTEL_SDK_DISABLED=true`: nothing is exported (the propagator is still installed).
//! - `OTEL_SERVICE_NAME` (wins over the name given in code), `OTEL_RESOURCE_ATTRIBUTES`.
//! - `OTEL_EXPORTER_OTLP_PROTOCOL` / `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`: `http/protobuf` (default),
//!   `http/json` or `grpc`.
//! - `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_{TRACES,LOGS}_ENDPOINT`, `OTEL_EXPORTER_OTLP_HEADERS`,
//!   `OTEL_EXPORTER_OTLP_TIMEOUT` (read by `opentelemetry-otlp`); without an endpoint, sessiontrace's own
//!   defaults `http://127.0.0.1:4318` / `http://127.0.0.1:4317`.
//! - `OTEL_TRACES_SAMPLER` (`always_on`, `always_off`, `traceidratio`, `parentbased_always_on`,
//!   `parentbased_always_off`, `parentbased_traceidratio` — the default) and `OTEL_TRACES_SAMPLER_ARG`
//!   (ratio, default 1.0). Whatever is chosen is wrapped in [`SessionSampler`].
//! - `OTEL_PROPAGATORS`: which headers are injected (`tracecontext`, `b3`, `b3multi`, `xtraceid`);
//!   extraction always accepts every format.
//! - `OTEL_TRACES_EXPORTER=none`, `OTEL_LOGS_EXPORTER=none`, `OTEL_METRICS_EXPORTER=none`: switch a signal off.
//! - `OTEL_METRIC_EXPORT_INTERVAL`: milliseconds between metric exports (default 60000, or
//!   [`Options::metric_export_interval`]).
//!
//! The blocking HTTP exporter is built on its own thread, so `init` may be called inside or outside a
//! tokio runtime. The gRPC exporter needs a runtime: the current one, or a small one the guard owns.

use std::time::Duration;

use opentelemetry::global;
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_otlp::{LogExporter, MetricExporter, Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

use crate::ids::SessionIdGenerator;
use crate::propagation::{Injection, SessionPropagator};
use crate::sampler::SessionSampler;

/// Keeps the providers alive; flushes and shuts them down on drop.
#[must_use = "dropping the guard shuts tracing down"]
pub struct Guard {
    tracer_provider: Option<SdkTracerProvider>,
    logger_provider: Option<SdkLoggerProvider>,
    meter_provider: Option<SdkMeterProvider>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// Why [`try_init`] could not set up exporting.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("unknown OTLP protocol {0:?} (expected grpc, http/protobuf or http/json)")]
    UnknownProtocol(String),
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(String),
    #[error("cannot start a runtime for the gRPC exporter: {0}")]
    Runtime(#[from] std::io::Error),
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|value| value.trim().to_string()).filter(|value| !value.is_empty())
}

/// The sampler `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` ask for, inside [`SessionSampler`].
pub fn sampler_from_env() -> SessionSampler {
    let ratio = env("OTEL_TRACES_SAMPLER_ARG").and_then(|arg| arg.parse::<f64>().ok()).unwrap_or(1.0).clamp(0.0, 1.0);
    let parent_based = |root: Sampler| Sampler::ParentBased(Box::new(root));
    let inner = match env("OTEL_TRACES_SAMPLER").as_deref() {
        Some("always_on") => Sampler::AlwaysOn,
        Some("always_off") => Sampler::AlwaysOff,
        Some("traceidratio") => Sampler::TraceIdRatioBased(ratio),
        Some("parentbased_always_on") => parent_based(Sampler::AlwaysOn),
        Some("parentbased_always_off") => parent_based(Sampler::AlwaysOff),
        _ => parent_based(Sampler::TraceIdRatioBased(ratio)),
    };
    SessionSampler::new(inner)
}

fn protocol(signal: &str) -> Result<Protocol, InitError> {
    let name = env(&format!("OTEL_EXPORTER_OTLP_{signal}_PROTOCOL"))
        .or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_else(|| "http/protobuf".into());
    match name.as_str() {
        "grpc" => Ok(Protocol::Grpc),
        "http/protobuf" => Ok(Protocol::HttpBinary),
        "http/json" => Ok(Protocol::HttpJson),
        _ => Err(InitError::UnknownProtocol(name)),
    }
}

/// An explicit endpoint only when no variable names one (sessiontrace listens on 127.0.0.1, and
/// `localhost` may resolve to `::1` first).
fn default_endpoint(signal: &str, protocol: Protocol, explicit: Option<&str>) -> Option<String> {
    let signal_path = |base: &str| match protocol {
        Protocol::Grpc => base.trim_end_matches('/').to_string(),
        _ => format!("{}/v1/{}", base.trim_end_matches('/'), signal.to_ascii_lowercase()),
    };
    if let Some(base) = explicit {
        return Some(signal_path(base));
    }
    if env(&format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")).is_some() || env("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
        return None;
    }
    Some(match protocol {
        Protocol::Grpc => signal_path("http://127.0.0.1:4317"),
        _ => signal_path("http://127.0.0.1:4318"),
    })
}

/// One OTLP exporter of a signal (`SpanExporter`, `LogExporter` or `MetricExporter`: same builders, no
/// common trait) over gRPC or HTTP, at [`default_endpoint`] unless a variable names one.
macro_rules! otlp_exporter {
    ($exporter:ty, $signal:literal, $protocol:expr, $explicit:expr) => {{
        let protocol = $protocol;
        let endpoint = default_endpoint($signal, protocol, $explicit);
        let built = match protocol {
            Protocol::Grpc => {
                let builder = <$exporter>::builder().with_tonic();
                match endpoint {
                    Some(endpoint) => builder.with_endpoint(endpoint).build(),
                    None => builder.build(),
                }
            }
            _ => {
                let builder =
                    <$exporter>::builder().with_http().with_protocol(protocol).with_timeout(Duration::from_secs(10));
                match endpoint {
                    Some(endpoint) => builder.with_endpoint(endpoint).build(),
                    None => builder.build(),
                }
            }
        };
        built.map_err(|error| InitError::Exporter(error.to_string()))
    }};
}

fn span_exporter(protocol: Protocol, explicit: Option<&str>) -> Result<SpanExporter, InitError> {
    otlp_exporter!(SpanExporter, "TRACES", protocol, explicit)
}

fn metric_exporter(protocol: Protocol, explicit: Option<&str>) -> Result<MetricExporter, InitError> {
    otlp_exporter!(MetricExporter, "METRICS", protocol, explicit)
}

fn log_exporter(protocol: Protocol, explicit: Option<&str>) -> Result<LogExporter, InitError> {
    otlp_exporter!(LogExporter, "LOGS", protocol, explicit)
}

/// Sets up tracing and log export for `service_name`; see the module docs. Never panics: when exporting
/// cannot be set up, the error is logged through `tracing` and a guard that exports nothing is returned.
pub fn init(service_name: &str) -> Guard {
    match try_init(service_name) {
        Ok(guard) => guard,
        Err(error) => {
            tracing::error!(%error, "sessiontrace: tracing is not exported");
            Guard { tracer_provider: None, logger_provider: None, meter_provider: None, runtime: None }
        }
    }
}

/// Settings given in code; each wins over its environment variable.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `service.name` (`OTEL_SERVICE_NAME` wins over it, as operators expect).
    pub service_name: String,
    /// Base OTLP endpoint (`http://127.0.0.1:4318`), used instead of `OTEL_EXPORTER_OTLP_*ENDPOINT`.
    pub otlp_endpoint: Option<String>,
    /// Time between metric exports when `OTEL_METRIC_EXPORT_INTERVAL` is not set (default 60 s).
    pub metric_export_interval: Option<Duration>,
}

/// Like [`init`], returning the error instead of logging it.
pub fn try_init(service_name: &str) -> Result<Guard, InitError> {
    try_init_with(Options { service_name: service_name.to_string(), ..Options::default() })
}

/// Like [`init`] with [`Options`] set in code; never panics.
pub fn init_with(options: Options) -> Guard {
    match try_init_with(options) {
        Ok(guard) => guard,
        Err(error) => {
            tracing::error!(%error, "sessiontrace: tracing is not exported");
            Guard { tracer_provider: None, logger_provider: None, meter_provider: None, runtime: None }
        }
    }
}

/// Like [`try_init`] with [`Options`] set in code.
pub fn try_init_with(options: Options) -> Result<Guard, InitError> {
    let service_name = options.service_name.as_str();
    let injection = env("OTEL_PROPAGATORS").map(|names| Injection::from_names(&names)).unwrap_or_default();
    global::set_text_map_propagator(SessionPropagator::new(injection));
    if env("OTEL_SDK_DISABLED").is_some_and(|value| value.eq_ignore_ascii_case("true")) {
        return Ok(Guard { tracer_provider: None, logger_provider: None, meter_provider: None, runtime: None });
    }
    let service_name = env("OTEL_SERVICE_NAME").unwrap_or_else(|| service_name.to_string());
    let resource = Resource::builder().with_service_name(service_name).build();
    let traces_on = env("OTEL_TRACES_EXPORTER").is_none_or(|value| value != "none");
    let logs_on = env("OTEL_LOGS_EXPORTER").is_none_or(|value| value != "none");
    let metrics_on = env("OTEL_METRICS_EXPORTER").is_none_or(|value| value != "none");
    let trace_protocol = protocol("TRACES")?;
    let log_protocol = protocol("LOGS")?;
    let metric_protocol = protocol("METRICS")?;
    let metric_interval = env("OTEL_METRIC_EXPORT_INTERVAL")
        .and_then(|ms| ms.parse::<u64>().ok())
        .map(Duration::from_millis)
        .or(options.metric_export_interval)
        .unwrap_or(Duration::from_secs(60));

    let uses_grpc = [trace_protocol, log_protocol, metric_protocol].contains(&Protocol::Grpc);
    let mut runtime = None;
    let grpc_handle = if uses_grpc && tokio::runtime::Handle::try_current().is_err() {
        let owned = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
        let handle = owned.handle().clone();
        runtime = Some(owned);
        Some(handle)
    } else {
        None
    };
    let _runtime_entered = grpc_handle.as_ref().map(|handle| handle.enter());
    // HTTP exporters own a blocking client, which must not be built inside a runtime: build them apart.
    let endpoint = options.otlp_endpoint.clone();
    let build = move || -> Result<Exporters, InitError> {
        let spans = traces_on.then(|| span_exporter(trace_protocol, endpoint.as_deref())).transpose()?;
        let logs = logs_on.then(|| log_exporter(log_protocol, endpoint.as_deref())).transpose()?;
        let metrics = metrics_on.then(|| metric_exporter(metric_protocol, endpoint.as_deref())).transpose()?;
        Ok((spans, logs, metrics))
    };
    let (spans, logs, metrics) = if uses_grpc {
        build()?
    } else {
        std::thread::spawn(build).join().map_err(|_| InitError::Exporter("exporter setup panicked".into()))??
    };

    let mut tracer_builder = SdkTracerProvider::builder()
        .with_sampler(sampler_from_env())
        .with_id_generator(SessionIdGenerator)
        .with_resource(resource.clone());
    if let Some(exporter) = spans {
        tracer_builder = tracer_builder.with_batch_exporter(exporter);
    }
    let tracer_provider = tracer_builder.build();
    global::set_tracer_provider(tracer_provider.clone());
    let logger_provider = logs.map(|exporter| {
        SdkLoggerProvider::builder().with_batch_exporter(exporter).with_resource(resource.clone()).build()
    });
    let meter_provider = metrics.map(|exporter| {
        let reader = PeriodicReader::builder(exporter).with_interval(metric_interval).build();
        SdkMeterProvider::builder().with_reader(reader).with_resource(resource).build()
    });
    if let Some(provider) = &meter_provider {
        global::set_meter_provider(provider.clone());
    }
    Ok(Guard { tracer_provider: Some(tracer_provider), logger_provider, meter_provider, runtime })
}

/// The exporters `init` builds, each absent when its signal is switched off.
type Exporters = (Option<SpanExporter>, Option<LogExporter>, Option<MetricExporter>);

/// Targets whose events are not exported as logs: the exporters' own HTTP/gRPC stacks (exporting their
/// logs would feed back into themselves).
fn is_exporter_internal(target: &str) -> bool {
    ["hyper", "h2", "tonic", "tower", "reqwest", "opentelemetry"].iter().any(|prefix| target.starts_with(prefix))
}

impl Guard {
    /// A `tracing_subscriber` layer that exports `tracing` events of level INFO and above as OTLP logs,
    /// linked to the current OpenTelemetry span; `None` when logs are not exported.
    ///
    /// ```no_run
    /// use tracing_subscriber::prelude::*;
    /// let guard = sessiontrace_sdk::init("orders");
    /// tracing_subscriber::registry().with(tracing_subscriber::fmt::layer()).with(guard.log_layer()).init();
    /// ```
    pub fn log_layer<S>(&self) -> Option<impl Layer<S> + use<S>>
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    {
        let provider = self.logger_provider.as_ref()?;
        let bridge: OpenTelemetryTracingBridge<SdkLoggerProvider, SdkLogger> =
            OpenTelemetryTracingBridge::new(provider);
        Some(bridge.with_filter(tracing_subscriber::filter::filter_fn(|metadata| {
            *metadata.level() <= tracing::Level::INFO && !is_exporter_internal(metadata.target())
        })))
    }

    /// The tracer provider, when exporting is on.
    pub fn tracer_provider(&self) -> Option<&SdkTracerProvider> {
        self.tracer_provider.as_ref()
    }

    /// Exports everything buffered now.
    pub fn flush(&self) {
        if let Some(provider) = &self.tracer_provider
            && let Err(error) = provider.force_flush()
        {
            tracing::warn!(%error, "sessiontrace: span flush failed");
        }
        if let Some(provider) = &self.logger_provider
            && let Err(error) = provider.force_flush()
        {
            tracing::warn!(%error, "sessiontrace: log flush failed");
        }
        if let Some(provider) = &self.meter_provider
            && let Err(error) = provider.force_flush()
        {
            tracing::warn!(%error, "sessiontrace: metric flush failed");
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.flush();
        if let Some(provider) = self.tracer_provider.take() {
            let _ = provider.shutdown();
        }
        if let Some(provider) = self.logger_provider.take() {
            let _ = provider.shutdown();
        }
        if let Some(provider) = self.meter_provider.take() {
            let _ = provider.shutdown();
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
