//! Forwarding to the APM a team already runs: one OTLP exporter per configured upstream (`[[forward]]`
//! in the config file, `--forward` on the command line), over OTLP/HTTP protobuf or OTLP/gRPC, with
//! extra headers (API keys) and gzip. Plain `http://` only: TLS would need rustls with a native crypto
//! backend (aws-lc-rs or ring, both C builds) that this workspace does not carry yet, so an `https://`
//! endpoint is refused at start with that reason (docs/sampling.md).
//!
//! Each upstream has a mode — `all` (everything received), `non-session` (everything but session
//! traces and their logs: the APM keeps its own sampling, session data lives here) or `kept` (what the
//! routing policy kept, tail decisions included) — and a bounded queue drained by its own task, which
//! retries with exponential backoff. The pipeline only offers payloads after the local store committed
//! and never waits: a full queue drops the payload for that upstream and counts it, so an upstream that is
//! down or slow never blocks or loses local storage. For every upstream and signal,
//! `enqueued = forwarded + failed + queued`, and `offered = enqueued + queue_full` (all on `/metrics`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use serde::Deserialize;
use tokio::sync::mpsc;

/// Which signal a payload carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Logs,
    Metrics,
}

impl Signal {
    const ALL: [Signal; 3] = [Signal::Traces, Signal::Logs, Signal::Metrics];

    fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Logs => "/v1/logs",
            Signal::Metrics => "/v1/metrics",
        }
    }
}

/// What an upstream receives.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardMode {
    /// Everything received (session traces included), before sampling.
    #[default]
    All,
    /// Everything but session traces and their logs, before sampling.
    NonSession,
    /// What the routing policy kept (session, error, slow and probability-kept traces).
    Kept,
}

/// The wire protocol of an upstream.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ForwardProtocol {
    /// OTLP/HTTP with protobuf bodies (`/v1/traces`, `/v1/logs`, `/v1/metrics` appended to the endpoint).
    #[default]
    Http,
    /// OTLP/gRPC.
    Grpc,
}

/// One upstream OTLP endpoint.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardConfig {
    /// Name in metrics and logs [default: the endpoint].
    pub name: String,
    /// Base URL, e.g. `http://127.0.0.1:4318` (HTTP) or `http://127.0.0.1:4317` (gRPC); `http://` only.
    pub endpoint: String,
    pub protocol: ForwardProtocol,
    pub mode: ForwardMode,
    /// Extra request headers (gRPC metadata), e.g. `{"x-api-key" = "..."}`.
    pub headers: BTreeMap<String, String>,
    /// Compress request bodies with gzip.
    pub gzip: bool,
    /// Payloads (requests) waiting for this upstream; over it new payloads are dropped and counted.
    pub queue_capacity: usize,
    /// Retries of one payload after the first attempt, with exponential backoff.
    pub max_retries: u32,
    /// First backoff; doubled on every retry up to `max_backoff_ms`.
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// Timeout of one attempt.
    pub timeout_ms: u64,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            name: String::new(),
            endpoint: String::new(),
            protocol: ForwardProtocol::Http,
            mode: ForwardMode::All,
            headers: BTreeMap::new(),
            gzip: true,
            queue_capacity: 1_000,
            max_retries: 5,
            initial_backoff_ms: 200,
            max_backoff_ms: 5_000,
            timeout_ms: 10_000,
        }
    }
}

impl ForwardConfig {
    /// Checks the endpoint; names the upstream after it when unnamed.
    pub fn validate(&mut self) -> anyhow::Result<()> {
        if self.endpoint.starts_with("https://") {
            anyhow::bail!(
                "forward endpoint {}: https is not supported yet (TLS needs a rustls crypto backend this build \
                 does not include); use a local collector or proxy over http://",
                self.endpoint
            );
        }
        if !self.endpoint.starts_with("http://") {
            anyhow::bail!("forward endpoint must start with http://, got {:?}", self.endpoint);
        }
        if self.queue_capacity == 0 {
            anyhow::bail!("forward queue_capacity must be above 0");
        }
        for (name, value) in &self.headers {
            let header_ok = reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
                && reqwest::header::HeaderValue::from_str(value).is_ok()
                && name.parse::<tonic::metadata::MetadataKey<tonic::metadata::Ascii>>().is_ok()
                && value.parse::<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>().is_ok();
            if !header_ok {
                anyhow::bail!("forward header {name:?} is not a valid lowercase header name with an ASCII value");
            }
        }
        self.endpoint = self.endpoint.trim_end_matches('/').to_string();
        if self.name.is_empty() {
            self.name = self.endpoint.clone();
        }
        Ok(())
    }
}

/// The command-line form: `URL[,mode=all|non-session|kept][,protocol=http|grpc][,gzip=true|false]
/// [,header=NAME:VALUE]...[,name=NAME]`.
impl std::str::FromStr for ForwardConfig {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut parts = text.split(',');
        let mut config =
            ForwardConfig { endpoint: parts.next().unwrap_or_default().trim().to_string(), ..Default::default() };
        for part in parts {
            let (key, value) = part.split_once('=').ok_or_else(|| format!("expected key=value, got {part:?}"))?;
            match key.trim() {
                "mode" => {
                    config.mode = match value {
                        "all" => ForwardMode::All,
                        "non-session" => ForwardMode::NonSession,
                        "kept" => ForwardMode::Kept,
                        other => return Err(format!("mode must be all, non-session or kept, got {other:?}")),
                    }
                }
                "protocol" => {
                    config.protocol = match value {
                        "http" => ForwardProtocol::Http,
                        "grpc" => ForwardProtocol::Grpc,
                        other => return Err(format!("protocol must be http or grpc, got {other:?}")),
                    }
                }
                "gzip" => {
                    config.gzip = value.parse().map_err(|_| format!("gzip must be true or false, got {value:?}"))?
                }
                "header" => {
                    let (name, header_value) =
                        value.split_once(':').ok_or_else(|| format!("header must be NAME:VALUE, got {value:?}"))?;
                    config.headers.insert(name.trim().to_lowercase(), header_value.trim().to_string());
                }
                "name" => config.name = value.to_string(),
                "queue" => config.queue_capacity = value.parse().map_err(|_| format!("bad queue size {value:?}"))?,
                "retries" => config.max_retries = value.parse().map_err(|_| format!("bad retries {value:?}"))?,
                other => return Err(format!("unknown forward option {other:?}")),
            }
        }
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }
}

/// One payload for one upstream: an OTLP export request, protobuf-encoded.
#[derive(Debug)]
struct Payload {
    signal: Signal,
    protobuf: Vec<u8>,
    /// Spans, log records or metric data points in it.
    items: u64,
}

/// Per-signal counters of one upstream, counted in items (spans, log records, data points).
#[derive(Default)]
struct SignalCounters {
    enqueued: AtomicU64,
    forwarded: AtomicU64,
    failed: AtomicU64,
    queue_full: AtomicU64,
    retries: AtomicU64,
}

struct Upstream {
    config: ForwardConfig,
    sender: mpsc::Sender<Payload>,
    counters: [SignalCounters; 3],
}

/// Every upstream.
pub struct Forwarder {
    upstreams: Vec<std::sync::Arc<Upstream>>,
}

fn slot(signal: Signal) -> usize {
    Signal::ALL.iter().position(|s| *s == signal).expect("listed")
}

impl Forwarder {
    /// Starts one sender task per upstream on the current tokio runtime.
    pub fn start(configs: &[ForwardConfig]) -> anyhow::Result<Self> {
        let mut upstreams = Vec::new();
        for config in configs {
            let (sender, receiver) = mpsc::channel(config.queue_capacity);
            let upstream =
                std::sync::Arc::new(Upstream { config: config.clone(), sender, counters: Default::default() });
            let client = Client::new(config)?;
            tokio::spawn(run_upstream(upstream.clone(), client, receiver));
            upstreams.push(upstream);
        }
        Ok(Forwarder { upstreams })
    }

    /// True when some upstream takes this mode.
    pub fn wants(&self, mode: ForwardMode) -> bool {
        self.upstreams.iter().any(|u| u.config.mode == mode)
    }

    /// Offers one payload to every upstream of `mode`, without waiting.
    pub fn offer(&self, mode: ForwardMode, signal: Signal, protobuf: &[u8], items: u64) {
        if items == 0 {
            return;
        }
        for upstream in self.upstreams.iter().filter(|u| u.config.mode == mode) {
            let counters = &upstream.counters[slot(signal)];
            let payload = Payload { signal, protobuf: protobuf.to_vec(), items };
            match upstream.sender.try_send(payload) {
                Ok(()) => {
                    counters.enqueued.fetch_add(items, Ordering::Relaxed);
                }
                Err(_) => {
                    let before = counters.queue_full.fetch_add(items, Ordering::Relaxed);
                    if before == 0 {
                        tracing::warn!(upstream = %upstream.config.name, signal = signal.as_str(), "forward queue full: dropping payloads for this upstream (counted in sessiontrace_forward_queue_full_total)");
                    }
                }
            }
        }
    }

    /// Rows for `/metrics`: (name, labels, help, kind, value).
    pub fn metric_rows(&self) -> Vec<(&'static str, String, &'static str, &'static str, u64)> {
        let mut rows = Vec::new();
        let metrics: [MetricSpec; 5] = [
            ("sessiontrace_forward_enqueued_total", "Items queued for an upstream", |c| {
                c.enqueued.load(Ordering::Relaxed)
            }),
            ("sessiontrace_forward_sent_total", "Items an upstream accepted", |c| c.forwarded.load(Ordering::Relaxed)),
            ("sessiontrace_forward_failed_total", "Items given up after every retry", |c| {
                c.failed.load(Ordering::Relaxed)
            }),
            ("sessiontrace_forward_queue_full_total", "Items not queued because the upstream's queue was full", |c| {
                c.queue_full.load(Ordering::Relaxed)
            }),
            ("sessiontrace_forward_retries_total", "Retried attempts (payloads)", |c| {
                c.retries.load(Ordering::Relaxed)
            }),
        ];
        for (name, help, read) in metrics {
            for upstream in &self.upstreams {
                for signal in Signal::ALL {
                    let labels = format!("upstream=\"{}\",signal=\"{}\"", upstream.config.name, signal.as_str());
                    rows.push((name, labels, help, "counter", read(&upstream.counters[slot(signal)])));
                }
            }
        }
        for upstream in &self.upstreams {
            let labels = format!("upstream=\"{}\"", upstream.config.name);
            let queued = (upstream.sender.max_capacity() - upstream.sender.capacity()) as u64;
            rows.push((
                "sessiontrace_forward_queued_payloads",
                labels,
                "Payloads waiting in an upstream's queue",
                "gauge",
                queued,
            ));
        }
        rows
    }
}

/// A forwarding metric: name, help, and how to read it from an upstream's per-signal counters.
type MetricSpec = (&'static str, &'static str, fn(&SignalCounters) -> u64);

/// The sending side of one upstream.
enum Client {
    Http { client: reqwest::Client, headers: reqwest::header::HeaderMap },
    Grpc { channel: tonic::transport::Channel, metadata: Vec<GrpcHeader> },
}

/// One configured header as gRPC metadata.
type GrpcHeader =
    (tonic::metadata::MetadataKey<tonic::metadata::Ascii>, tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

/// Why one attempt failed.
enum Failure {
    Retry(String),
    Permanent(String),
}

impl Client {
    fn new(config: &ForwardConfig) -> anyhow::Result<Self> {
        let timeout = Duration::from_millis(config.timeout_ms);
        Ok(match config.protocol {
            ForwardProtocol::Http => {
                let mut headers = reqwest::header::HeaderMap::new();
                for (name, value) in &config.headers {
                    headers.insert(
                        reqwest::header::HeaderName::from_bytes(name.as_bytes())?,
                        reqwest::header::HeaderValue::from_str(value)?,
                    );
                }
                Client::Http { client: reqwest::Client::builder().timeout(timeout).build()?, headers }
            }
            ForwardProtocol::Grpc => {
                let channel = tonic::transport::Endpoint::from_shared(config.endpoint.clone())?
                    .timeout(timeout)
                    .connect_timeout(timeout)
                    .connect_lazy();
                let mut metadata = Vec::new();
                for (name, value) in &config.headers {
                    metadata.push((name.parse()?, value.parse()?));
                }
                Client::Grpc { channel, metadata }
            }
        })
    }

    async fn send(&self, config: &ForwardConfig, payload: &Payload) -> Result<(), Failure> {
        match self {
            Client::Http { client, headers } => {
                let mut request = client
                    .post(format!("{}{}", config.endpoint, payload.signal.path()))
                    .headers(headers.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf");
                request = if config.gzip {
                    use std::io::Write;
                    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    encoder.write_all(&payload.protobuf).map_err(|e| Failure::Permanent(e.to_string()))?;
                    let body = encoder.finish().map_err(|e| Failure::Permanent(e.to_string()))?;
                    request.header(reqwest::header::CONTENT_ENCODING, "gzip").body(body)
                } else {
                    request.body(payload.protobuf.clone())
                };
                let response = request.send().await.map_err(|e| Failure::Retry(e.to_string()))?;
                let status = response.status();
                if status.is_success() {
                    return Ok(());
                }
                let message = format!("{status}: {}", response.text().await.unwrap_or_default());
                if status.as_u16() == 429 || status.is_server_error() || status.as_u16() == 408 {
                    Err(Failure::Retry(message))
                } else {
                    Err(Failure::Permanent(message))
                }
            }
            Client::Grpc { channel, metadata } => {
                fn with_metadata<T>(metadata: &[GrpcHeader], message: T) -> tonic::Request<T> {
                    let mut request = tonic::Request::new(message);
                    for (key, value) in metadata {
                        request.metadata_mut().insert(key.clone(), value.clone());
                    }
                    request
                }
                let decode_error = |e: prost::DecodeError| Failure::Permanent(e.to_string());
                let gzip = tonic::codec::CompressionEncoding::Gzip;
                let result = match payload.signal {
                    Signal::Traces => {
                        let message =
                            ExportTraceServiceRequest::decode(payload.protobuf.as_slice()).map_err(decode_error)?;
                        let mut client = TraceServiceClient::new(channel.clone());
                        if config.gzip {
                            client = client.send_compressed(gzip);
                        }
                        client.export(with_metadata(metadata, message)).await.map(|_| ())
                    }
                    Signal::Logs => {
                        let message =
                            ExportLogsServiceRequest::decode(payload.protobuf.as_slice()).map_err(decode_error)?;
                        let mut client = LogsServiceClient::new(channel.clone());
                        if config.gzip {
                            client = client.send_compressed(gzip);
                        }
                        client.export(with_metadata(metadata, message)).await.map(|_| ())
                    }
                    Signal::Metrics => {
                        let message =
                            ExportMetricsServiceRequest::decode(payload.protobuf.as_slice()).map_err(decode_error)?;
                        let mut client = MetricsServiceClient::new(channel.clone());
                        if config.gzip {
                            client = client.send_compressed(gzip);
                        }
                        client.export(with_metadata(metadata, message)).await.map(|_| ())
                    }
                };
                result.map_err(|status| {
                    use tonic::Code;
                    let message = format!("{:?}: {}", status.code(), status.message());
                    match status.code() {
                        Code::InvalidArgument
                        | Code::Unimplemented
                        | Code::Unauthenticated
                        | Code::PermissionDenied => Failure::Permanent(message),
                        _ => Failure::Retry(message),
                    }
                })
            }
        }
    }
}

async fn run_upstream(upstream: std::sync::Arc<Upstream>, client: Client, mut receiver: mpsc::Receiver<Payload>) {
    let config = &upstream.config;
    while let Some(payload) = receiver.recv().await {
        let counters = &upstream.counters[slot(payload.signal)];
        let mut backoff = Duration::from_millis(config.initial_backoff_ms);
        let mut attempt = 0;
        loop {
            match client.send(config, &payload).await {
                Ok(()) => {
                    counters.forwarded.fetch_add(payload.items, Ordering::Relaxed);
                    break;
                }
                Err(Failure::Retry(message)) if attempt < config.max_retries => {
                    attempt += 1;
                    counters.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(upstream = %config.name, attempt, error = %message, "forward failed, retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(config.max_backoff_ms));
                }
                Err(Failure::Retry(message) | Failure::Permanent(message)) => {
                    counters.failed.fetch_add(payload.items, Ordering::Relaxed);
                    tracing::warn!(upstream = %config.name, signal = payload.signal.as_str(), items = payload.items, attempts = attempt + 1, error = %message, "forward failed, payload given up");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_form() {
        let config: ForwardConfig =
            "http://127.0.0.1:4317/,mode=non-session,protocol=grpc,header=X-Api-Key:abc,gzip=false".parse().unwrap();
        assert_eq!(config.endpoint, "http://127.0.0.1:4317");
        assert_eq!(
            (config.mode, config.protocol, config.gzip),
            (ForwardMode::NonSession, ForwardProtocol::Grpc, false)
        );
        assert_eq!(config.headers["x-api-key"], "abc");
        assert_eq!(config.name, "http://127.0.0.1:4317");
        let error = "https://apm.example.com".parse::<ForwardConfig>().unwrap_err();
        assert!(error.contains("https is not supported"), "{error}");
        assert!("http://x,mode=some".parse::<ForwardConfig>().unwrap_err().contains("mode must be"));
    }

    #[tokio::test]
    async fn a_down_upstream_is_counted_not_hidden() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = ForwardConfig {
            endpoint: format!("http://127.0.0.1:{port}"),
            name: "down".into(),
            queue_capacity: 1,
            max_retries: 1,
            initial_backoff_ms: 10,
            ..Default::default()
        };
        let forwarder = Forwarder::start(&[config]).unwrap();
        for _ in 0..5 {
            forwarder.offer(ForwardMode::All, Signal::Traces, b"", 2);
        }
        forwarder.offer(ForwardMode::Kept, Signal::Traces, b"", 7);
        let read = |name: &str| {
            forwarder
                .metric_rows()
                .into_iter()
                .filter(|(n, labels, ..)| *n == name && labels.contains("traces"))
                .map(|row| row.4)
                .sum::<u64>()
        };
        for _ in 0..200 {
            if read("sessiontrace_forward_failed_total") + read("sessiontrace_forward_sent_total")
                == read("sessiontrace_forward_enqueued_total")
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (enqueued, full, failed) = (
            read("sessiontrace_forward_enqueued_total"),
            read("sessiontrace_forward_queue_full_total"),
            read("sessiontrace_forward_failed_total"),
        );
        assert_eq!(enqueued + full, 10, "every offered item is enqueued or counted as dropped");
        assert_eq!(failed, enqueued);
        assert_eq!(read("sessiontrace_forward_sent_total"), 0);
    }
}
