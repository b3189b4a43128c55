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

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

mod client;
mod offer;

pub use offer::{ArrivedTraces, ForwardStage, ReleasedTraces};

pub use sessiontrace_config::forward::{ForwardCompression, ForwardConfig, ForwardMode, ForwardProtocol};
use tokio::sync::mpsc;

use client::{Client, Failure};

use crate::signal::Signal;

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
