//! Forwarding to the APM a team already runs: one OTLP exporter per configured upstream (`[[forward]]`
//! in the config file, `--forward` on the command line), over OTLP/HTTP protobuf or OTLP/gRPC, with
//! extra headers (API keys), gzip, and TLS for `https://` endpoints ([`client`]: system roots or a
//! `ca_file`, optional client certificate).
//!
//! Each upstream has a mode — `all` (everything received), `non-session` (everything but session
//! traces and their logs: the APM keeps its own sampling, session data lives here) or `kept` (what the
//! routing policy kept, tail decisions included) — and a bounded queue drained by `concurrency` sender
//! tasks (requests in flight at once, so a distant upstream's round trip does not cap throughput), each
//! retrying with exponential backoff. The pipeline only offers payloads after the local store committed
//! and never waits: a full queue drops the payload for that upstream and counts it, so an upstream that is
//! down or slow never blocks or loses local storage. For every upstream and signal,
//! `enqueued = forwarded + failed + queued`, and `offered = enqueued + queue_full` (all on `/metrics`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

mod client;
mod offer;

pub use offer::{ArrivedTraces, ForwardStage, ReleasedTraces};

use std::path::PathBuf;

use serde::Deserialize;
use tokio::sync::mpsc;

use client::{Client, Failure};

use crate::signal::Signal;

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

/// How request bodies (gRPC messages) to an upstream are compressed.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ForwardCompression {
    /// What every OTLP receiver accepts (level 1 over HTTP; tonic uses level 6 for gRPC).
    #[default]
    Gzip,
    /// zstd level 1 (HTTP) / tonic's zstd (gRPC): a fraction of gzip's CPU at a better ratio; the
    /// OpenTelemetry Collector and sessiontrace accept it, not every vendor does.
    Zstd,
    None,
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
    /// Base URL, e.g. `http://127.0.0.1:4318` (HTTP), `http://127.0.0.1:4317` (gRPC) or
    /// `https://otlp.example.com` (TLS).
    pub endpoint: String,
    pub protocol: ForwardProtocol,
    pub mode: ForwardMode,
    /// Extra request headers (gRPC metadata), e.g. `{"x-api-key" = "..."}`.
    pub headers: BTreeMap<String, String>,
    /// Compression of request bodies.
    pub compression: ForwardCompression,
    /// Payloads (requests) waiting for this upstream; over it new payloads are dropped and counted.
    pub queue_capacity: usize,
    /// Retries of one payload after the first attempt, with exponential backoff.
    pub max_retries: u32,
    /// First backoff; doubled on every retry up to `max_backoff_ms`.
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// Timeout of one attempt.
    pub timeout_ms: u64,
    /// Requests in flight at once to this upstream (sender tasks draining its queue).
    pub concurrency: usize,
    /// PEM file of the CAs to trust for an `https://` endpoint instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) for upstreams that require mutual TLS; needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            name: String::new(),
            endpoint: String::new(),
            protocol: ForwardProtocol::Http,
            mode: ForwardMode::All,
            headers: BTreeMap::new(),
            compression: ForwardCompression::Gzip,
            queue_capacity: 1_000,
            max_retries: 5,
            initial_backoff_ms: 200,
            max_backoff_ms: 5_000,
            timeout_ms: 10_000,
            concurrency: 4,
            ca_file: None,
            cert_file: None,
            key_file: None,
        }
    }
}

impl ForwardConfig {
    /// True for an `https://` endpoint.
    pub fn is_tls(&self) -> bool {
        self.endpoint.starts_with("https://")
    }

    /// Checks the endpoint, headers and TLS files; names the upstream after the endpoint when unnamed.
    pub fn validate(&mut self) -> anyhow::Result<()> {
        if !self.endpoint.starts_with("http://") && !self.is_tls() {
            anyhow::bail!("forward endpoint must start with http:// or https://, got {:?}", self.endpoint);
        }
        if self.endpoint.parse::<http::Uri>().is_err() {
            anyhow::bail!("forward endpoint {:?} is not a valid URL", self.endpoint);
        }
        if self.is_tls() {
            client::TlsFiles::load(self).map_err(|e| anyhow::anyhow!("forward endpoint {}: {e}", self.endpoint))?;
        } else if self.ca_file.is_some() || self.cert_file.is_some() || self.key_file.is_some() {
            anyhow::bail!(
                "forward endpoint {}: ca_file, cert_file and key_file are for https:// endpoints",
                self.endpoint
            );
        }
        if self.queue_capacity == 0 {
            anyhow::bail!("forward queue_capacity must be above 0");
        }
        if !(1..=256).contains(&self.concurrency) {
            anyhow::bail!("forward concurrency must be 1 to 256, got {}", self.concurrency);
        }
        for (name, value) in &self.headers {
            let header_ok = http::HeaderName::from_bytes(name.as_bytes()).is_ok()
                && http::HeaderValue::from_str(value).is_ok()
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

/// The command-line form: `URL[,mode=all|non-session|kept][,protocol=http|grpc][,compression=gzip|zstd|none]
/// [,header=NAME:VALUE]...[,name=NAME][,queue=N][,retries=N][,concurrency=N][,ca=PEM][,cert=PEM,key=PEM]`.
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
                    let modes = [
                        ("all", ForwardMode::All),
                        ("non-session", ForwardMode::NonSession),
                        ("kept", ForwardMode::Kept),
                    ];
                    config.mode = choice("mode", value, &modes)?;
                }
                "protocol" => {
                    config.protocol =
                        choice("protocol", value, &[("http", ForwardProtocol::Http), ("grpc", ForwardProtocol::Grpc)])?;
                }
                "compression" => {
                    let kinds = [
                        ("gzip", ForwardCompression::Gzip),
                        ("zstd", ForwardCompression::Zstd),
                        ("none", ForwardCompression::None),
                    ];
                    config.compression = choice("compression", value, &kinds)?;
                }
                // The older spelling of compression=none / gzip.
                "gzip" => {
                    let gzip: bool = value.parse().map_err(|_| format!("gzip must be true or false, got {value:?}"))?;
                    config.compression = if gzip { ForwardCompression::Gzip } else { ForwardCompression::None };
                }
                "header" => {
                    let (name, header_value) =
                        value.split_once(':').ok_or_else(|| format!("header must be NAME:VALUE, got {value:?}"))?;
                    config.headers.insert(name.trim().to_lowercase(), header_value.trim().to_string());
                }
                "name" => config.name = value.to_string(),
                "queue" => config.queue_capacity = value.parse().map_err(|_| format!("bad queue size {value:?}"))?,
                "retries" => config.max_retries = value.parse().map_err(|_| format!("bad retries {value:?}"))?,
                "concurrency" => {
                    config.concurrency = value.parse().map_err(|_| format!("bad concurrency {value:?}"))?
                }
                "ca" => config.ca_file = Some(PathBuf::from(value)),
                "cert" => config.cert_file = Some(PathBuf::from(value)),
                "key" => config.key_file = Some(PathBuf::from(value)),
                other => return Err(format!("unknown forward option {other:?}")),
            }
        }
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }
}

/// The option named `value` of a command-line setting, or an error listing the names.
fn choice<T: Copy>(setting: &str, value: &str, options: &[(&str, T)]) -> Result<T, String> {
    if let Some((_, option)) = options.iter().find(|(name, _)| *name == value) {
        return Ok(*option);
    }
    let names: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
    let (last, rest) = names.split_last().expect("options are listed");
    Err(format!("{setting} must be {} or {last}, got {value:?}", rest.join(", ")))
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
    give_ups: std::sync::Mutex<GiveUpLog>,
}

/// When a given-up payload was last logged, and how many were not logged since.
#[derive(Default)]
struct GiveUpLog {
    last: Option<std::time::Instant>,
    unlogged: u64,
}

/// Every upstream.
pub struct Forwarder {
    upstreams: Vec<std::sync::Arc<Upstream>>,
    /// Set by [`Forwarder::close`]: senders drain their queue and end.
    stop: tokio::sync::watch::Sender<bool>,
    senders: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

fn slot(signal: Signal) -> usize {
    Signal::ALL.iter().position(|s| *s == signal).expect("listed")
}

impl Forwarder {
    /// Starts one sender task per upstream on the current tokio runtime.
    pub fn start(configs: &[ForwardConfig]) -> anyhow::Result<Self> {
        let mut upstreams = Vec::new();
        let mut senders = Vec::new();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        for config in configs {
            let (sender, receiver) = mpsc::channel(config.queue_capacity);
            let upstream = std::sync::Arc::new(Upstream {
                config: config.clone(),
                sender,
                counters: Default::default(),
                give_ups: Default::default(),
            });
            let client = std::sync::Arc::new(Client::new(config)?);
            let receiver = std::sync::Arc::new(tokio::sync::Mutex::new(receiver));
            for _ in 0..config.concurrency {
                let task = run_sender(upstream.clone(), client.clone(), receiver.clone(), stopped.clone());
                senders.push(tokio::spawn(task));
            }
            upstreams.push(upstream);
        }
        Ok(Forwarder { upstreams, stop, senders: std::sync::Mutex::new(senders) })
    }

    /// Stops taking payloads, lets the senders deliver what is queued for at most `within`, then ends
    /// them; what was still queued or being retried then is counted as failed and logged.
    pub async fn close(&self, within: Duration) {
        let _ = self.stop.send(true);
        let senders = std::mem::take(&mut *self.senders.lock().expect("sender list lock"));
        let aborts: Vec<_> = senders.iter().map(|task| task.abort_handle()).collect();
        let deadline = tokio::time::Instant::now() + within;
        let mut late = false;
        for mut task in senders {
            late |= tokio::time::timeout_at(deadline, &mut task).await.is_err();
        }
        if late {
            aborts.iter().for_each(tokio::task::AbortHandle::abort);
            for upstream in &self.upstreams {
                for signal in Signal::ALL {
                    let counters = &upstream.counters[slot(signal)];
                    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
                    let left =
                        load(&counters.enqueued).saturating_sub(load(&counters.forwarded) + load(&counters.failed));
                    if left > 0 {
                        counters.failed.fetch_add(left, Ordering::Relaxed);
                        tracing::warn!(upstream = %upstream.config.name, signal = signal.as_str(), items = left, "shutdown: not forwarded in time, given up");
                    }
                }
            }
        }
    }

    /// True when some upstream takes this mode.
    pub fn wants(&self, mode: ForwardMode) -> bool {
        self.upstreams.iter().any(|u| u.config.mode == mode)
    }

    /// Offers one payload to every upstream of `mode`, without waiting.
    pub fn offer(&self, mode: ForwardMode, signal: Signal, protobuf: &[u8], items: u64) {
        if items == 0 || *self.stop.borrow() {
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

/// Payloads given up are logged at most this often per upstream (every one is counted).
const GIVE_UP_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// One of an upstream's sender tasks: takes the next payload from the shared queue and sends it,
/// retrying, until the forwarder is dropped.
async fn run_sender(
    upstream: std::sync::Arc<Upstream>,
    client: std::sync::Arc<Client>,
    receiver: std::sync::Arc<tokio::sync::Mutex<mpsc::Receiver<Payload>>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let next = {
            let mut receiver = receiver.lock().await;
            tokio::select! {
                payload = receiver.recv() => payload,
                // Closing: deliver what is queued, then end.
                _ = stop.wait_for(|stopped| *stopped) => receiver.try_recv().ok(),
            }
        };
        let Some(payload) = next else { return };
        send_with_retries(&upstream, &client, payload).await;
    }
}

async fn send_with_retries(upstream: &Upstream, client: &Client, payload: Payload) {
    let config = &upstream.config;
    let counters = &upstream.counters[slot(payload.signal)];
    let mut backoff = Duration::from_millis(config.initial_backoff_ms);
    let mut attempt = 0;
    loop {
        match client.send(config, &payload).await {
            Ok(()) => {
                counters.forwarded.fetch_add(payload.items, Ordering::Relaxed);
                return;
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
                let mut log = upstream.give_ups.lock().expect("give-up log lock");
                if log.last.is_none_or(|at| at.elapsed() >= GIVE_UP_LOG_INTERVAL) {
                    tracing::warn!(upstream = %config.name, signal = payload.signal.as_str(), items = payload.items, attempts = attempt + 1, error = %message, earlier_unlogged = log.unlogged, "forward failed, payload given up (all counted in sessiontrace_forward_failed_total)");
                    *log = GiveUpLog { last: Some(std::time::Instant::now()), unlogged: 0 };
                } else {
                    log.unlogged += 1;
                }
                return;
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
            (config.mode, config.protocol, config.compression),
            (ForwardMode::NonSession, ForwardProtocol::Grpc, ForwardCompression::None)
        );
        let zstd: ForwardConfig = "http://127.0.0.1:4318,compression=zstd".parse().unwrap();
        assert_eq!(zstd.compression, ForwardCompression::Zstd);
        assert!("http://x,compression=lz4".parse::<ForwardConfig>().unwrap_err().contains("gzip, zstd or none"));
        assert_eq!(config.headers["x-api-key"], "abc");
        assert_eq!(config.name, "http://127.0.0.1:4317");
        let error = "https://apm.example.com,ca=/nonexistent.pem".parse::<ForwardConfig>().unwrap_err();
        assert!(error.contains("cannot read the forward ca_file /nonexistent.pem"), "{error}");
        let error = "http://127.0.0.1:4318,ca=/etc/hostname".parse::<ForwardConfig>().unwrap_err();
        assert!(error.contains("are for https:// endpoints"), "{error}");
        let error = "https://apm.example.com,cert=/etc/hostname".parse::<ForwardConfig>().unwrap_err();
        assert!(error.contains("go together"), "{error}");
        assert!("ftp://x".parse::<ForwardConfig>().unwrap_err().contains("must start with http:// or https://"));
        let not_pem = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(not_pem.path(), "not a certificate").unwrap();
        let error =
            format!("https://apm.example.com,ca={}", not_pem.path().display()).parse::<ForwardConfig>().unwrap_err();
        assert!(error.contains("ca_file holds no certificate"), "{error}");
        let error = format!("https://apm.example.com,cert={0},key={0}", not_pem.path().display())
            .parse::<ForwardConfig>()
            .unwrap_err();
        assert!(error.contains("cert_file holds no certificate"), "{error}");
        assert!("http://x,mode=some".parse::<ForwardConfig>().unwrap_err().contains("mode must be"));
    }

    /// Requests in flight at once at an upstream that answers after 100 ms, for a given `concurrency`.
    async fn most_in_flight(concurrency: usize) -> usize {
        use std::sync::Arc;
        use std::sync::atomic::AtomicUsize;
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let handler = {
            let (now, most) = (now.clone(), most.clone());
            move || async move {
                let current = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(current, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                ""
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new().route("/v1/traces", axum::routing::post(handler));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let config = ForwardConfig {
            endpoint: format!("http://127.0.0.1:{port}"),
            name: "slow".into(),
            concurrency,
            ..Default::default()
        };
        let forwarder = Forwarder::start(&[config]).unwrap();
        for _ in 0..8 {
            forwarder.offer(ForwardMode::All, Signal::Traces, b"", 1);
        }
        let sent = || {
            forwarder
                .metric_rows()
                .into_iter()
                .filter(|(n, ..)| *n == "sessiontrace_forward_sent_total")
                .map(|r| r.4)
                .sum::<u64>()
        };
        for _ in 0..500 {
            if sent() == 8 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(sent(), 8);
        most.load(Ordering::SeqCst)
    }

    /// An upstream that answers after `delay`, counting what it received; returns its port.
    async fn slow_upstream(delay: Duration, received: std::sync::Arc<std::sync::atomic::AtomicUsize>) -> u16 {
        let handler = move || async move {
            tokio::time::sleep(delay).await;
            received.fetch_add(1, Ordering::SeqCst);
            ""
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new().route("/v1/traces", axum::routing::post(handler));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        port
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closing_delivers_the_queue_then_refuses_more() {
        let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let port = slow_upstream(Duration::from_millis(50), received.clone()).await;
        let config = ForwardConfig {
            endpoint: format!("http://127.0.0.1:{port}"),
            name: "slow".into(),
            concurrency: 1,
            ..Default::default()
        };
        let forwarder = Forwarder::start(&[config]).unwrap();
        for _ in 0..6 {
            forwarder.offer(ForwardMode::All, Signal::Traces, b"", 1);
        }
        forwarder.close(Duration::from_secs(10)).await;
        assert_eq!(received.load(Ordering::SeqCst), 6, "every queued payload was delivered before close returned");
        forwarder.offer(ForwardMode::All, Signal::Traces, b"", 1);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(received.load(Ordering::SeqCst), 6, "nothing is taken after close");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closing_gives_up_after_its_grace_and_counts_what_was_left() {
        let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let port = slow_upstream(Duration::from_secs(5), received.clone()).await;
        let config = ForwardConfig {
            endpoint: format!("http://127.0.0.1:{port}"),
            name: "stuck".into(),
            concurrency: 1,
            ..Default::default()
        };
        let forwarder = Forwarder::start(&[config]).unwrap();
        for _ in 0..3 {
            forwarder.offer(ForwardMode::All, Signal::Traces, b"", 2);
        }
        let started = std::time::Instant::now();
        forwarder.close(Duration::from_millis(300)).await;
        assert!(started.elapsed() < Duration::from_secs(2), "close waited {:?}", started.elapsed());
        let failed: u64 = forwarder
            .metric_rows()
            .into_iter()
            .filter(|(n, labels, ..)| *n == "sessiontrace_forward_failed_total" && labels.contains("traces"))
            .map(|row| row.4)
            .sum();
        assert_eq!(failed, 6, "what was queued or in flight at the end of the grace is counted as failed");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrency_sets_the_requests_in_flight() {
        assert_eq!(most_in_flight(1).await, 1);
        let most = most_in_flight(4).await;
        assert!((2..=4).contains(&most), "{most} requests in flight with concurrency 4");
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
