//! The load driver: N connections send pre-encoded requests (trace ids patched per send) flat out or at a
//! target rate, until a duration or a span count is reached, with a progress line every second and a
//! summary of spans sent and accepted, spans/s, request latency percentiles, refusals (the server's
//! retryable "not now": HTTP 429/503, gRPC `UNAVAILABLE`/`RESOURCE_EXHAUSTED`) and errors (everything
//! else: other statuses, timeouts, resets). For long runs (a soak) it can also append one JSON line per
//! interval to a file: that interval's accepted spans/s, refusals, errors and latency percentiles.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use crate::workload::{Protocol, Template, patch_trace_ids};

/// How to drive the load.
#[derive(Debug, Clone)]
pub struct DriveSpec {
    pub protocol: Protocol,
    /// Base URL: `http://127.0.0.1:4318` (HTTP) or `http://127.0.0.1:4317` (gRPC).
    pub endpoint: String,
    pub connections: usize,
    /// Target spans per second; 0 means flat out.
    pub rate: u64,
    pub duration: Option<Duration>,
    /// Stop after this many spans were sent.
    pub max_spans: Option<u64>,
    pub gzip: bool,
    /// Print a progress line every second (stderr).
    pub progress: bool,
    /// An ingest key sent on every request (`Authorization: Bearer`, or gRPC metadata).
    pub key: Option<String>,
    /// Append one JSON line per interval to this file (see [`IntervalLog`]).
    pub interval_log: Option<IntervalLog>,
}

/// Per-interval figures of a long run, one JSON object per line: `t` (seconds since the start, at the end
/// of the interval), `spans_per_second` accepted, `requests`, `refused`, `errors` and the accepted
/// requests' `p50_ms`, `p99_ms` and `max_ms` within the interval.
#[derive(Debug, Clone)]
pub struct IntervalLog {
    pub path: std::path::PathBuf,
    pub every: Duration,
}

/// What happened.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub requests: u64,
    pub spans_sent: u64,
    pub spans_accepted: u64,
    /// Requests the server refused with a retryable status (429/503, `UNAVAILABLE`/`RESOURCE_EXHAUSTED`).
    pub refused: u64,
    /// Requests that failed otherwise: other statuses, timeouts, connection errors.
    pub errors: u64,
    pub first_error: Option<String>,
    pub first_refusal: Option<String>,
    pub elapsed: Duration,
    /// Latencies of the accepted requests in microseconds, sorted.
    pub latencies_us: Vec<u32>,
    /// Latencies of the refused requests in microseconds, sorted.
    pub refusal_latencies_us: Vec<u32>,
}

/// Percentile `p` of sorted microsecond latencies, in milliseconds.
fn percentile(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let index = ((sorted_us.len() - 1) as f64 * p).round() as usize;
    sorted_us[index] as f64 / 1000.0
}

impl Report {
    /// Latency percentile of the accepted requests, in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        percentile(&self.latencies_us, p)
    }

    /// Latency percentile of the refused requests, in milliseconds.
    pub fn refusal_percentile_ms(&self, p: f64) -> f64 {
        percentile(&self.refusal_latencies_us, p)
    }

    /// Accepted spans per wall-clock second.
    pub fn accepted_per_second(&self) -> f64 {
        self.spans_accepted as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The summary as one JSON object, for scripts.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "requests": self.requests,
            "spans_sent": self.spans_sent,
            "spans_accepted": self.spans_accepted,
            "refused": self.refused,
            "errors": self.errors,
            "first_error": self.first_error,
            "first_refusal": self.first_refusal,
            "refusal_latency_ms": {"p50": self.refusal_percentile_ms(0.5), "p99": self.refusal_percentile_ms(0.99), "max": self.refusal_percentile_ms(1.0)},
            "seconds": self.elapsed.as_secs_f64(),
            "accepted_spans_per_second": self.accepted_per_second(),
            "latency_ms": {"p50": self.percentile_ms(0.5), "p90": self.percentile_ms(0.9), "p99": self.percentile_ms(0.99), "max": self.percentile_ms(1.0)},
        })
    }
}

/// Sends raw, already-encoded protobuf messages over gRPC.
#[derive(Debug, Clone, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Self::Error> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

struct Shared {
    templates: Vec<Template>,
    spec: DriveSpec,
    next_request: AtomicU64,
    spans_sent: AtomicU64,
    spans_accepted: AtomicU64,
    refused: AtomicU64,
    errors: AtomicU64,
    stop: AtomicBool,
    first_error: std::sync::Mutex<Option<String>>,
    first_refusal: std::sync::Mutex<Option<String>>,
    salt: u64,
    /// The accepted requests' latencies since the last interval line (only with an interval log).
    window: Option<std::sync::Mutex<Vec<u32>>>,
}

enum Client {
    Http(reqwest::Client, String, Option<String>),
    Grpc(
        tonic::client::Grpc<tonic::transport::Channel>,
        Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    ),
}

/// Why a request was not accepted.
enum Failure {
    /// The server said "not now" with a status an OTLP exporter retries.
    Refused(String),
    /// Anything else.
    Error(String),
}

impl Client {
    async fn send(&mut self, body: Vec<u8>, protocol: Protocol, gzip: bool) -> Result<(), Failure> {
        match self {
            Client::Http(client, url, authorization) => {
                let content_type =
                    if protocol == Protocol::HttpJson { "application/json" } else { "application/x-protobuf" };
                let mut request = client.post(url.as_str()).header("content-type", content_type);
                if let Some(authorization) = authorization {
                    request = request.header("authorization", authorization.as_str());
                }
                let body = if gzip {
                    request = request.header("content-encoding", "gzip");
                    flate2_gzip(&body)
                } else {
                    body
                };
                let response =
                    request.body(body).send().await.map_err(|e| Failure::Error(format!("request failed: {e}")))?;
                let status = response.status();
                let retry_after =
                    response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
                let text =
                    response.bytes().await.map_err(|e| Failure::Error(format!("reading the answer failed: {e}")))?;
                if status.is_success() {
                    return Ok(());
                }
                let message = format!(
                    "HTTP {status} (Retry-After: {}): {}",
                    retry_after.as_deref().unwrap_or("none"),
                    String::from_utf8_lossy(&text).chars().take(200).collect::<String>()
                );
                let retryable = matches!(status.as_u16(), 429 | 503) && retry_after.is_some();
                Err(if retryable { Failure::Refused(message) } else { Failure::Error(message) })
            }
            Client::Grpc(grpc, authorization) => {
                grpc.ready().await.map_err(|e| Failure::Error(format!("gRPC channel not ready: {e}")))?;
                let path = tonic::codegen::http::uri::PathAndQuery::from_static(
                    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                );
                let mut request = tonic::Request::new(Bytes::from(body));
                if let Some(authorization) = authorization {
                    request.metadata_mut().insert("authorization", authorization.clone());
                }
                grpc.unary(request, path, RawCodec).await.map(|_| ()).map_err(|status| {
                    let message = format!("gRPC {:?}: {}", status.code(), status.message());
                    match status.code() {
                        tonic::Code::Unavailable | tonic::Code::ResourceExhausted => Failure::Refused(message),
                        _ => Failure::Error(message),
                    }
                })
            }
        }
    }
}

fn flate2_gzip(body: &[u8]) -> Vec<u8> {
    // Compression level 1: the generator must not become the bottleneck.
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::fast());
    encoder.write_all(body).expect("in-memory gzip");
    encoder.finish().expect("in-memory gzip")
}

/// One connection's loop; returns the latencies of its accepted and of its refused requests.
async fn connection(shared: Arc<Shared>, mut client: Client) -> (Vec<u32>, Vec<u32>) {
    let spec = &shared.spec;
    let mut latencies = Vec::new();
    let mut refusals = Vec::new();
    // Each connection sends its share of the target rate.
    let spans_per_request = shared.templates[0].span_count as f64;
    let interval = (spec.rate > 0)
        .then(|| Duration::from_secs_f64(spans_per_request * spec.connections as f64 / spec.rate as f64));
    let mut next_send = Instant::now();
    while !shared.stop.load(Ordering::Relaxed) {
        let number = shared.next_request.fetch_add(1, Ordering::Relaxed);
        let template = &shared.templates[number as usize % shared.templates.len()];
        if let Some(max) = spec.max_spans {
            let sent = shared.spans_sent.fetch_add(template.span_count as u64, Ordering::Relaxed);
            if sent >= max {
                shared.spans_sent.fetch_sub(template.span_count as u64, Ordering::Relaxed);
                break;
            }
        } else {
            shared.spans_sent.fetch_add(template.span_count as u64, Ordering::Relaxed);
        }
        if let Some(interval) = interval {
            tokio::time::sleep_until(next_send.into()).await;
            next_send += interval;
        }
        let mut body = template.body.clone();
        patch_trace_ids(template, &mut body, spec.protocol, number, shared.salt);
        let started = Instant::now();
        let outcome = client.send(body, spec.protocol, spec.gzip).await;
        let took = started.elapsed().as_micros().min(u32::MAX as u128) as u32;
        match outcome {
            Ok(()) => {
                latencies.push(took);
                if let Some(window) = &shared.window {
                    window.lock().expect("lock").push(took);
                }
                shared.spans_accepted.fetch_add(template.span_count as u64, Ordering::Relaxed);
            }
            Err(Failure::Refused(message)) => {
                refusals.push(took);
                shared.refused.fetch_add(1, Ordering::Relaxed);
                shared.first_refusal.lock().expect("lock").get_or_insert(message);
            }
            Err(Failure::Error(message)) => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                shared.first_error.lock().expect("lock").get_or_insert(message);
            }
        }
    }
    (latencies, refusals)
}

/// Counters at an interval's edge, for the interval log.
struct IntervalCounts {
    accepted: u64,
    refused: u64,
    errors: u64,
}

impl IntervalCounts {
    fn take(shared: &Shared) -> Self {
        IntervalCounts {
            accepted: shared.spans_accepted.load(Ordering::Relaxed),
            refused: shared.refused.load(Ordering::Relaxed),
            errors: shared.errors.load(Ordering::Relaxed),
        }
    }

    /// The interval's JSON line: what changed since `start`, and the latencies gathered meanwhile.
    fn line(&self, start: &IntervalCounts, shared: &Shared, elapsed: Duration, every: Duration) -> String {
        let mut window =
            shared.window.as_ref().map(|w| std::mem::take(&mut *w.lock().expect("lock"))).unwrap_or_default();
        window.sort_unstable();
        serde_json::json!({
            "t": elapsed.as_secs_f64().round(),
            "spans_per_second": (self.accepted - start.accepted) as f64 / every.as_secs_f64(),
            "requests": window.len() as u64 + (self.refused - start.refused) + (self.errors - start.errors),
            "refused": self.refused - start.refused,
            "errors": self.errors - start.errors,
            "p50_ms": percentile(&window, 0.5),
            "p99_ms": percentile(&window, 0.99),
            "max_ms": percentile(&window, 1.0),
        })
        .to_string()
    }
}

/// Drives the load and returns the report.
pub async fn run(templates: Vec<Template>, spec: DriveSpec) -> anyhow::Result<Report> {
    anyhow::ensure!(!templates.is_empty(), "no request templates");
    let salt = crate::workload::new_salt();
    let mut clients = Vec::with_capacity(spec.connections);
    for _ in 0..spec.connections.max(1) {
        let client = match spec.protocol {
            Protocol::Grpc => {
                let channel = tonic::transport::Endpoint::from_shared(spec.endpoint.clone())?.connect().await?;
                let mut grpc = tonic::client::Grpc::new(channel);
                if spec.gzip {
                    grpc = grpc.send_compressed(tonic::codec::CompressionEncoding::Gzip);
                }
                let authorization = match &spec.key {
                    Some(key) => Some(format!("Bearer {key}").parse()?),
                    None => None,
                };
                Client::Grpc(grpc, authorization)
            }
            _ => {
                // One client per connection so each task keeps its own keep-alive connection.
                // A request that gets no answer in 30 s counts as an error (a timeout), not a hang.
                let http =
                    reqwest::Client::builder().pool_max_idle_per_host(1).timeout(Duration::from_secs(30)).build()?;
                let url = format!("{}/v1/traces", spec.endpoint.trim_end_matches('/'));
                Client::Http(http, url, spec.key.as_ref().map(|key| format!("Bearer {key}")))
            }
        };
        clients.push(client);
    }
    let shared = Arc::new(Shared {
        templates,
        spec: spec.clone(),
        next_request: AtomicU64::new(0),
        spans_sent: AtomicU64::new(0),
        spans_accepted: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        first_error: std::sync::Mutex::new(None),
        first_refusal: std::sync::Mutex::new(None),
        salt,
        window: spec.interval_log.as_ref().map(|_| std::sync::Mutex::new(Vec::new())),
    });
    let mut interval_file = match &spec.interval_log {
        Some(log) => Some((
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log.path)
                .map_err(|e| anyhow::anyhow!("cannot open the interval log {}: {e}", log.path.display()))?,
            log.every,
        )),
        None => None,
    };
    let started = Instant::now();
    let tasks: Vec<_> = clients.into_iter().map(|client| tokio::spawn(connection(shared.clone(), client))).collect();
    let progress = {
        let shared = shared.clone();
        let show = spec.progress;
        let duration = spec.duration;
        tokio::spawn(async move {
            let terminal = std::io::stderr().is_terminal();
            let mut last = 0u64;
            let mut interval_start = IntervalCounts::take(&shared);
            let mut next_line = interval_file.as_ref().map(|(_, every)| *every);
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let elapsed = started.elapsed();
                if duration.is_some_and(|d| elapsed >= d) {
                    shared.stop.store(true, Ordering::Relaxed);
                }
                let accepted = shared.spans_accepted.load(Ordering::Relaxed);
                if show {
                    let line = format!(
                        "[{:>4.0}s] sent {:>11} spans  accepted {:>11}  {:>9}/s  refused {}  errors {}",
                        elapsed.as_secs_f64(),
                        shared.spans_sent.load(Ordering::Relaxed),
                        accepted,
                        accepted - last,
                        shared.refused.load(Ordering::Relaxed),
                        shared.errors.load(Ordering::Relaxed)
                    );
                    if terminal {
                        eprint!("\r{line}");
                    } else {
                        eprintln!("{line}");
                    }
                    let _ = std::io::stderr().flush();
                }
                last = accepted;
                if let (Some(due), Some((file, every))) = (next_line, interval_file.as_mut())
                    && elapsed >= due
                {
                    let now = IntervalCounts::take(&shared);
                    let line = now.line(&interval_start, &shared, elapsed, *every);
                    let _ = writeln!(file, "{line}");
                    interval_start = now;
                    next_line = Some(due + *every);
                }
                if shared.stop.load(Ordering::Relaxed) {
                    break;
                }
            }
        })
    };
    let (mut latencies, mut refusals) = (Vec::new(), Vec::new());
    for task in tasks {
        let (accepted, refused) = task.await?;
        latencies.extend(accepted);
        refusals.extend(refused);
    }
    let elapsed = started.elapsed();
    shared.stop.store(true, Ordering::Relaxed);
    progress.abort();
    if spec.progress && std::io::stderr().is_terminal() {
        eprintln!();
    }
    latencies.sort_unstable();
    refusals.sort_unstable();
    let errors = shared.errors.load(Ordering::Relaxed);
    Ok(Report {
        requests: latencies.len() as u64 + refusals.len() as u64 + errors,
        spans_sent: shared.spans_sent.load(Ordering::Relaxed),
        spans_accepted: shared.spans_accepted.load(Ordering::Relaxed),
        refused: shared.refused.load(Ordering::Relaxed),
        errors,
        first_error: shared.first_error.lock().expect("lock").clone(),
        first_refusal: shared.first_refusal.lock().expect("lock").clone(),
        elapsed,
        latencies_us: latencies,
        refusal_latencies_us: refusals,
    })
}
