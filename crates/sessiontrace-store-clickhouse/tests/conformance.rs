//! The storage conformance suite against a real ClickHouse server: set `SESSIONTRACE_CLICKHOUSE_URL`
//! (e.g. `http://127.0.0.1:18123`, started by `scripts/clickhouse.sh`). Without it the tests print why they
//! skip and pass. Each test uses a database of its own.

use std::time::Duration;

use sessiontrace_store::{Store, StoreError, conformance};
use sessiontrace_store_clickhouse::{ClickHouseConfig, ClickHouseStore};

fn server_url(test: &str) -> Option<String> {
    let url = std::env::var("SESSIONTRACE_CLICKHOUSE_URL").ok().filter(|url| !url.is_empty());
    if url.is_none() {
        eprintln!("skipping {test}: SESSIONTRACE_CLICKHOUSE_URL is not set (scripts/clickhouse.sh starts a server)");
    }
    url
}

fn config(url: &str) -> ClickHouseConfig {
    let database = format!("st_test_{:016x}", rand_u64());
    let mut config = ClickHouseConfig::new(url, &database);
    config.flush_interval = Duration::from_millis(20);
    // The suite's sessions start in 2023: the hourly retention task would drop them under its feet.
    config.retention_days = 0;
    config
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    hasher.finish()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_conformance_suite() {
    let Some(url) = server_url("passes_the_conformance_suite") else { return };
    let store = ClickHouseStore::open(config(&url)).await.expect("open clickhouse store");
    conformance::run_all(&store).await;
    // Twice on the same tables: the suite starts from fresh ids, and reopening keeps the data.
    let again = ClickHouseStore::open(config(&url)).await.unwrap();
    conformance::run_all(&again).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_reopening() {
    let Some(url) = server_url("data_survives_reopening") else { return };
    let config = config(&url);
    let batch = conformance::sample_batch();
    {
        let store = ClickHouseStore::open(config.clone()).await.unwrap();
        store.write(batch.clone()).await.unwrap();
    }
    let store = ClickHouseStore::open(config).await.unwrap();
    let trace_id = batch.trace_blocks[0].traces[0].trace_id;
    assert_eq!(store.trace_blocks(trace_id).await.unwrap(), vec![batch.trace_blocks[0].protobuf.clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_inserts_and_are_all_stored() {
    let Some(url) = server_url("concurrent_writes_share_inserts_and_are_all_stored") else { return };
    let mut config = config(&url);
    config.flush_interval = Duration::from_millis(300);
    let store = std::sync::Arc::new(ClickHouseStore::open(config).await.unwrap());
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let batch = conformance::sample_batch();
            store.write(batch.clone()).await.unwrap();
            batch
        }));
    }
    let mut batches = Vec::new();
    for task in tasks {
        batches.push(task.await.unwrap());
    }
    assert!(started.elapsed() < Duration::from_secs(5), "50 writes grouped: {:?}", started.elapsed());
    for batch in batches {
        let trace_id = batch.trace_blocks[0].traces[0].trace_id;
        assert_eq!(store.trace_blocks(trace_id).await.unwrap().len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_unavailable_with_a_clear_message() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let error = match ClickHouseStore::open(ClickHouseConfig::new(&url, "sessiontrace")).await {
        Ok(_) => panic!("nothing listens on {url}"),
        Err(error) => error,
    };
    assert!(matches!(&error, StoreError::Unavailable(m) if m.contains("is unreachable")), "{error}");
    let error = match ClickHouseStore::open(ClickHouseConfig::new(&url, "bad;name")).await {
        Ok(_) => panic!("bad name accepted"),
        Err(error) => error,
    };
    assert!(error.to_string().contains("database name"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_partitions_are_dropped() {
    let Some(url) = server_url("old_partitions_are_dropped") else { return };
    let store = ClickHouseStore::open(config(&url)).await.unwrap();
    let day_ms = 86_400_000;
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let mut sessions = Vec::new();
    for age_days in [100, 1] {
        let mut session = sample_session();
        session.started_at_ms = now_ms - age_days * day_ms;
        store.insert_session(&session).await.unwrap();
        sessions.push(session);
    }
    assert_eq!(store.drop_old_partitions(30).await.unwrap(), 1, "the 100-day-old session's partition");
    assert_eq!(store.session(&sessions[0].id).await.unwrap(), None);
    assert_eq!(store.session(&sessions[1].id).await.unwrap().as_ref(), Some(&sessions[1]));
}

fn sample_session() -> sessiontrace_model::Session {
    sessiontrace_model::Session {
        id: sessiontrace_model::Session::new_id(),
        short_id: sessiontrace_model::ids::ShortId::random(),
        kind: sessiontrace_model::SessionKind::Manual,
        name: Some("retention".into()),
        user: serde_json::json!({}),
        attributes: serde_json::json!({}),
        tags: vec![],
        capture: Default::default(),
        started_at_ms: 0,
        stopped_at_ms: None,
        saved_at_ms: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserts_of_one_short_id_leave_one_owner() {
    let Some(url) = server_url("concurrent_inserts_of_one_short_id_leave_one_owner") else { return };
    let config = config(&url);
    // Two stores on the same tables stand for two collector replicas.
    let first_store = std::sync::Arc::new(ClickHouseStore::open(config.clone()).await.unwrap());
    let second_store = std::sync::Arc::new(ClickHouseStore::open(config).await.unwrap());
    for _ in 0..5 {
        let first = sample_session();
        let mut second = sample_session();
        second.short_id = first.short_id;
        let (a, b) = tokio::join!(first_store.insert_session(&first), second_store.insert_session(&second));
        let accepted: Vec<&sessiontrace_model::Session> =
            [(&a, &first), (&b, &second)].into_iter().filter(|(r, _)| r.is_ok()).map(|(_, s)| s).collect();
        assert!(accepted.len() <= 1, "two sessions got one short id: {a:?} {b:?}");
        for (result, session) in [(&a, &first), (&b, &second)] {
            if result.is_err() {
                assert!(matches!(result, Err(StoreError::Conflict)), "{result:?}");
                assert_eq!(second_store.session(&session.id).await.unwrap(), None, "a refused session is hidden");
            }
        }
        let owner = first_store.session(&first.short_id.to_hex()).await.unwrap();
        assert_eq!(owner.as_ref(), accepted.first().copied(), "the short id names the accepted session");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_or_a_lost_server_is_unavailable() {
    let Some(url) = server_url("a_full_queue_or_a_lost_server_is_unavailable") else { return };
    // A proxy in front of ClickHouse that the test can cut.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", listener.local_addr().unwrap());
    let upstream = url.trim_start_matches("http://").trim_end_matches('/').to_string();
    let connections = std::sync::Arc::new(std::sync::Mutex::new(Vec::<tokio::task::AbortHandle>::new()));
    let proxy = {
        let connections = connections.clone();
        tokio::spawn(async move {
            loop {
                let (mut inbound, _) = listener.accept().await.unwrap();
                let upstream = upstream.clone();
                let connection = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                connections.lock().unwrap().push(connection.abort_handle());
            }
        })
    };
    let mut config = config(&proxy_url);
    config.flush_interval = Duration::from_secs(3);
    config.queue_bytes = 1024;
    config.request_timeout = Duration::from_secs(2);
    let store = std::sync::Arc::new(ClickHouseStore::open(config).await.unwrap());
    // The first write finds the writer idle and goes out at once. The next two wait out the 3 s interval,
    // and the first of them to be queued holds the whole 1 KiB budget: the other is refused at once.
    store.write(conformance::sample_batch()).await.unwrap();
    let spawn_write = || {
        let store = store.clone();
        tokio::spawn(async move { store.write(conformance::sample_batch()).await })
    };
    let (first, second) = (spawn_write(), spawn_write());
    let outcomes = [first.await.unwrap(), second.await.unwrap()];
    let refused = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Err(StoreError::Unavailable(m)) if m.contains("queue is full")))
        .count();
    assert_eq!(refused, 1, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|outcome| outcome.is_ok()).count(), 1, "{outcomes:?}");
    proxy.abort();
    let _ = proxy.await;
    for connection in connections.lock().unwrap().drain(..) {
        connection.abort();
    }
    let lost = store.write(conformance::sample_batch()).await;
    assert!(matches!(&lost, Err(StoreError::Unavailable(_))), "{lost:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_writer_flushes_at_once() {
    let Some(url) = server_url("an_idle_writer_flushes_at_once") else { return };
    let mut config = config(&url);
    config.flush_interval = Duration::from_secs(2);
    let store = ClickHouseStore::open(config).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let started = std::time::Instant::now();
    store.write(conformance::sample_batch()).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(1500), "waited {:?}", started.elapsed());
    let started = std::time::Instant::now();
    store.write(conformance::sample_batch()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1500), "one group per interval: {:?}", started.elapsed());
}
