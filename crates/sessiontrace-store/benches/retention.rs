//! Retention on the embedded store: how long deleting the older half of a store takes, and how long
//! writes wait meanwhile (retention runs on the writer thread, a slice at a time).
//!
//! Fills a fresh store with BLOCKS blocks of 200 spans (20 traces of 10 spans each, ~9 KB compressed),
//! half before a cutoff and half after, then runs `expire_before(cutoff)` while a second task keeps
//! writing one block every 5 ms, and prints the time taken and the writes' latencies.
//!
//!   cargo bench -p sessiontrace-store --bench retention [-- BLOCKS]   (default 10,000 blocks = 2M spans)

use std::time::{Duration, Instant};

use sessiontrace_model::Project;
use sessiontrace_model::ids::TraceId;
use sessiontrace_model::records::{TraceBlock, TraceIndexEntry, WriteBatch};
use sessiontrace_store::Store;
use sessiontrace_store::sqlite::SqliteStore;

const TRACES_PER_BLOCK: usize = 20;
const SPANS_PER_TRACE: u32 = 10;

fn block(number: usize) -> TraceBlock {
    let traces: Vec<TraceIndexEntry> = (0..TRACES_PER_BLOCK)
        .map(|_| TraceIndexEntry {
            trace_id: TraceId::random().0,
            session_key: None,
            services: vec!["checkout".into(), "payments".into()],
            start_unix_nano: 1_700_000_000_000_000_000,
            end_unix_nano: 1_700_000_000_200_000_000,
            span_count: SPANS_PER_TRACE,
            error_count: 0,
            root: Some(("POST /checkout".into(), "checkout".into())),
        })
        .collect();
    // About 90 KB that zstd-1 takes to ~9 KB, like 200 realistic spans.
    let protobuf = (0..200)
        .flat_map(|span| {
            format!("block {number} span {span} service checkout http.route /checkout status 200 {}", "x".repeat(380))
                .into_bytes()
        })
        .collect();
    TraceBlock { protobuf, span_count: TRACES_PER_BLOCK as u32 * SPANS_PER_TRACE, traces }
}

async fn fill(store: &SqliteStore, from: usize, count: usize) {
    for start in (from..from + count).step_by(10) {
        let trace_blocks = (start..(start + 10).min(from + count)).map(block).collect();
        store.write(&Project::default(), WriteBatch { trace_blocks, ..Default::default() }).await.expect("write");
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[tokio::main]
async fn main() {
    let blocks: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = std::sync::Arc::new(SqliteStore::open(&dir.path().join("store.db")).expect("open"));
    let started = Instant::now();
    fill(&store, 0, blocks / 2).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let cutoff = now_ms();
    tokio::time::sleep(Duration::from_millis(5)).await;
    fill(&store, blocks / 2, blocks - blocks / 2).await;
    let before = store.totals(None).await.expect("totals");
    println!(
        "store: {} spans in {} blocks ({} index rows), filled in {:.1} s",
        before.spans,
        before.span_blocks,
        before.span_blocks as usize * TRACES_PER_BLOCK,
        started.elapsed().as_secs_f64()
    );

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut number = blocks;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let sent = Instant::now();
                store
                    .write(&Project::default(), WriteBatch { trace_blocks: vec![block(number)], ..Default::default() })
                    .await
                    .expect("write");
                latencies.push(sent.elapsed());
                number += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            latencies
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let expiring = Instant::now();
    let expired = store.expire_before(cutoff).await.expect("expire");
    let took = expiring.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut latencies = writer.await.expect("writer task");
    latencies.sort();
    let pick = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0;
    println!(
        "expired {} spans ({} blocks) in {:.2} s = {:.0} spans/s; {} writes meanwhile: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        expired.spans,
        expired.span_blocks,
        took.as_secs_f64(),
        expired.spans as f64 / took.as_secs_f64(),
        latencies.len(),
        pick(0.5),
        pick(0.99),
        pick(1.0)
    );
    let after = store.totals(None).await.expect("totals");
    assert_eq!(after.spans + expired.spans, before.spans + (latencies.len() as u64) * 200, "spans add up");
}
