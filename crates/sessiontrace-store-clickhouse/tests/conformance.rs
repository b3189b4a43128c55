//! The storage conformance suite against a real ClickHouse server: set `SESSIONTRACE_CLICKHOUSE_URL`
//! (e.g. `http://127.0.0.1:18123`, started by `scripts/clickhouse.sh`). Without it the tests print why they
//! skip and pass. Each test uses a database of its own.

use std::time::Duration;

use sessiontrace_model::Project;
use sessiontrace_store::{Store, StoreError, conformance};
use sessiontrace_store_clickhouse::{ClickHouseConfig, ClickHouseStore, WriterStats};

fn project() -> Project {
    Project::default()
}

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
        store.write(&project(), batch.clone()).await.unwrap();
    }
    let store = ClickHouseStore::open(config).await.unwrap();
    let trace_id = batch.trace_blocks[0].traces[0].trace_id;
    assert_eq!(store.trace_blocks(&project(), trace_id).await.unwrap(), vec![batch.trace_blocks[0].protobuf.clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_answers_the_queued_writes_then_refuses_more() {
    let Some(url) = server_url("closing_answers_the_queued_writes_then_refuses_more") else { return };
    let mut config = config(&url);
    // A long wait: the writes gather in one group that waits for more, so close has something to finish.
    config.max_group_wait = Duration::from_millis(500);
    let store = std::sync::Arc::new(ClickHouseStore::open(config.clone()).await.unwrap());
    let batches: Vec<_> = (0..5).map(|_| conformance::sample_batch()).collect();
    let writes: Vec<_> = batches
        .iter()
        .cloned()
        .map(|batch| {
            let store = store.clone();
            tokio::spawn(async move { store.write(&project(), batch).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    store.close().await.unwrap();
    for write in writes {
        write.await.unwrap().expect("a write queued before close is inserted and answered");
    }
    let error = store.write(&project(), conformance::sample_batch()).await.unwrap_err();
    assert!(error.to_string().contains("stopped"), "{error}");
    let reopened = ClickHouseStore::open(config).await.unwrap();
    for batch in &batches {
        let trace_id = batch.trace_blocks[0].traces[0].trace_id;
        assert_eq!(reopened.trace_blocks(&project(), trace_id).await.unwrap().len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_inserts_and_are_all_stored() {
    let Some(url) = server_url("concurrent_writes_share_inserts_and_are_all_stored") else { return };
    let store = std::sync::Arc::new(ClickHouseStore::open(config(&url)).await.unwrap());
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let batch = conformance::sample_batch();
            store.write(&project(), batch.clone()).await.unwrap();
            batch
        }));
    }
    let mut batches = Vec::new();
    for task in tasks {
        batches.push(task.await.unwrap());
    }
    assert!(started.elapsed() < Duration::from_secs(5), "50 writes grouped: {:?}", started.elapsed());
    let stats = store.writer_stats();
    assert_eq!(stats.writes, 50);
    assert!(stats.groups < stats.writes, "writes that queue during an insert share the next: {stats:?}");
    for batch in batches {
        let trace_id = batch.trace_blocks[0].traces[0].trace_id;
        assert_eq!(store.trace_blocks(&project(), trace_id).await.unwrap().len(), 1);
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
        store.insert_session(&project(), &session).await.unwrap();
        sessions.push(session);
    }
    assert_eq!(store.drop_old_partitions(30).await.unwrap(), 1, "the 100-day-old session's partition");
    assert_eq!(store.session(&project(), &sessions[0].id).await.unwrap(), None);
    assert_eq!(store.session(&project(), &sessions[1].id).await.unwrap().as_ref(), Some(&sessions[1]));
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
        let default = project();
        let (a, b) =
            tokio::join!(first_store.insert_session(&default, &first), second_store.insert_session(&default, &second));
        let accepted: Vec<&sessiontrace_model::Session> =
            [(&a, &first), (&b, &second)].into_iter().filter(|(r, _)| r.is_ok()).map(|(_, s)| s).collect();
        assert!(accepted.len() <= 1, "two sessions got one short id: {a:?} {b:?}");
        for (result, session) in [(&a, &first), (&b, &second)] {
            if result.is_err() {
                assert!(matches!(result, Err(StoreError::Conflict)), "{result:?}");
                assert_eq!(
                    second_store.session(&project(), &session.id).await.unwrap(),
                    None,
                    "a refused session is hidden"
                );
            }
        }
        let owner = first_store.session(&project(), &first.short_id.to_hex()).await.unwrap();
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
    config.max_group_wait = Duration::from_secs(3);
    config.queue_bytes = 1024;
    config.request_timeout = Duration::from_secs(2);
    let store = std::sync::Arc::new(ClickHouseStore::open(config).await.unwrap());
    // Two writes at once: the first to be queued holds the whole 1 KiB budget while its group waits 3 s for
    // company, so the other is refused at once.
    let spawn_write = || {
        let store = store.clone();
        tokio::spawn(async move { store.write(&project(), conformance::sample_batch()).await })
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
    let lost = store.write(&project(), conformance::sample_batch()).await;
    assert!(matches!(&lost, Err(StoreError::Unavailable(_))), "{lost:?}");
}

/// Spawns `count` writes at once and waits until every one succeeded.
async fn write_together(store: &std::sync::Arc<ClickHouseStore>, count: usize) {
    let writes: Vec<_> = (0..count)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.write(&project(), conformance::sample_batch()).await })
        })
        .collect();
    for write in writes {
        write.await.unwrap().unwrap();
    }
}

/// Group commit: a write that finds the writer idle goes at once, in a group of its own; writes queued
/// together share a group. On this single-threaded runtime the fifty spawned writes are all queued before
/// the writer task runs again, so the counts do not depend on timing.
#[tokio::test]
async fn a_lone_write_goes_at_once_and_queued_writes_share_a_group() {
    let Some(url) = server_url("a_lone_write_goes_at_once_and_queued_writes_share_a_group") else { return };
    let store = std::sync::Arc::new(ClickHouseStore::open(config(&url)).await.unwrap());
    // No timer: each write, one after another, is sent alone at once (its latency is one insert round trip,
    // measured by bench/ingest-clickhouse.sh, not here).
    for _ in 0..10 {
        store.write(&project(), conformance::sample_batch()).await.unwrap();
    }
    assert_eq!(store.writer_stats(), WriterStats { writes: 10, groups: 10 }, "each lone write is sent alone");

    write_together(&store, 50).await;
    let stats = store.writer_stats();
    assert_eq!(stats.writes, 60);
    assert!(stats.groups - 10 <= 2, "50 writes queued together went in {} groups", stats.groups - 10);
    assert_eq!(store.totals(None).await.unwrap().span_blocks, 60);
}

/// Writers answered together send again together: a closed loop of writers goes in one group a round,
/// not in cohorts that take turns (each write then waits for the other cohort's insert before its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_loop_of_writers_shares_one_group_a_round() {
    let Some(url) = server_url("a_closed_loop_of_writers_shares_one_group_a_round") else { return };
    let store = std::sync::Arc::new(ClickHouseStore::open(config(&url)).await.unwrap());
    let (writers, rounds) = (4, 15);
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..rounds {
                    store.write(&project(), conformance::sample_batch()).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let stats = store.writer_stats();
    assert_eq!(stats.writes, writers * rounds);
    // Cohorts taking turns make about two groups a round (30 here); one group a round makes 15, and the
    // first round one more (the first write finds the writer idle and goes alone).
    assert!(stats.groups <= rounds + 5, "{} groups for {rounds} rounds of {writers} writers", stats.groups);
}

/// `min_group_interval` caps the insert rate: a write that finds the writer idle goes at once, and the writes
/// that come within the interval after it wait out the rest of it and share one group.
#[tokio::test]
async fn the_minimum_interval_spaces_the_groups() {
    let Some(url) = server_url("the_minimum_interval_spaces_the_groups") else { return };
    let mut config = config(&url);
    config.min_group_interval = Duration::from_millis(400);
    let store = std::sync::Arc::new(ClickHouseStore::open(config).await.unwrap());
    let started = std::time::Instant::now();
    store.write(&project(), conformance::sample_batch()).await.unwrap();
    write_together(&store, 5).await;
    assert!(started.elapsed() >= Duration::from_millis(400), "the second group waited out the interval");
    assert_eq!(store.writer_stats(), WriterStats { writes: 6, groups: 2 });
}

/// Tables as the store created them before projects (commit 55599be, 18.16 types), with a row of each
/// kind: the store opens them, adds the `project` column, and reads every row as project `default`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_from_before_projects_read_as_default() {
    let Some(url) = server_url("tables_from_before_projects_read_as_default") else { return };
    let config = config(&url);
    let db = config.database.clone();
    let http = reqwest::Client::new();
    let run = |sql: String| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let response = http.post(format!("{url}/")).body(sql.clone()).send().await.unwrap();
            let status = response.status();
            let body = response.text().await.unwrap();
            assert!(status.is_success(), "{sql}: {body}");
            body
        }
    };
    let index_columns = "day Date, trace_id FixedString(16), start_ns Int64, end_ns Int64, block_id UInt64, \
        session_key String, services Array(String), span_count UInt32, error_count UInt32, \
        root_name Nullable(String), root_service Nullable(String)";
    let partition = "PARTITION BY toYYYYMMDD(day)";
    for statement in [
        format!("CREATE DATABASE {db}"),
        format!(
            "CREATE TABLE {db}.span_blocks_v1 (day Date, block_id UInt64, received_ns Int64, span_count UInt32, \
             data String) ENGINE = MergeTree() {partition} ORDER BY block_id"
        ),
        format!(
            "CREATE TABLE {db}.logs_v1 (day Date, session_key String, time_ns Int64, log_id UInt64, \
             trace_id Nullable(FixedString(16)), span_id Nullable(FixedString(8)), service String, \
             severity_number Int32, severity_text String, body String, attributes_json String, resource_json String) \
             ENGINE = MergeTree() {partition} ORDER BY (session_key, time_ns, log_id)"
        ),
        format!(
            "CREATE TABLE {db}.metric_points_v1 (day Date, service String, name String, time_ns Int64, kind String, \
             unit String, value Nullable(Float64), attributes_json String, detail_json String) \
             ENGINE = MergeTree() {partition} ORDER BY (service, name, time_ns)"
        ),
        format!(
            "CREATE TABLE {db}.replay_chunks_v1 (day Date, session_id String, seq UInt64, inserted_ns UInt64, \
             keep UInt64, event_count UInt32, first_ms Int64, last_ms Int64, data String) \
             ENGINE = ReplacingMergeTree(keep) {partition} ORDER BY (session_id, seq)"
        ),
        format!(
            "CREATE TABLE {db}.trace_index_v1 ({index_columns}) ENGINE = MergeTree() {partition} \
             ORDER BY (trace_id, start_ns)"
        ),
        format!(
            "CREATE TABLE {db}.session_traces_v1 ({index_columns}) ENGINE = MergeTree() {partition} \
             ORDER BY (session_key, start_ns, trace_id)"
        ),
        format!(
            "CREATE TABLE {db}.sessions_v1 (day Date, id String, short_id String, kind String, name Nullable(String), \
             user_json String, attributes_json String, tags_json String, capture_json String, started_ms Int64, \
             stopped_ms Nullable(Int64), saved_ms Nullable(Int64), created_ns UInt64, version UInt64, deleted UInt8) \
             ENGINE = ReplacingMergeTree(version) {partition} ORDER BY id"
        ),
    ] {
        run(statement).await;
    }
    let session_id = "5e55105e55105e55105e55105e55105e";
    let trace = "debdeb0badcafec3b9ff825c069fa3e5";
    let block = zstd::bulk::compress(b"spans before projects", 1).unwrap();
    let replay = zstd::bulk::compress(br#"[{"type":4}]"#, 1).unwrap();
    let day = "toDate('2023-11-14')";
    let index_row = format!(
        "SELECT {day}, unhex('{trace}'), 1700000000000000000, 1700000000500000000, 7, '0badcafe', ['checkout'], 3, 1, \
         'GET /', 'checkout'"
    );
    for statement in [
        format!(
            "INSERT INTO {db}.span_blocks_v1 SELECT {day}, 7, 1700000000000000000, 3, unhex('{}')",
            hex::encode(&block)
        ),
        format!("INSERT INTO {db}.trace_index_v1 {index_row}"),
        format!("INSERT INTO {db}.session_traces_v1 {index_row}"),
        format!(
            "INSERT INTO {db}.logs_v1 SELECT {day}, '0badcafe', 1700000000100000000, 1, unhex('{trace}'), NULL, \
             'checkout', 17, 'ERROR', 'payment failed', '{{}}', '{{}}'"
        ),
        format!(
            "INSERT INTO {db}.metric_points_v1 SELECT {day}, 'checkout', 'queue.depth', 1700000000200000000, 'gauge', \
             '1', 7, '{{}}', '{{}}'"
        ),
        format!(
            "INSERT INTO {db}.replay_chunks_v1 SELECT {day}, '{session_id}', 0, 1, 18446744073709551614, 1, \
             1700000000000, 1700000000000, unhex('{}')",
            hex::encode(&replay)
        ),
        format!(
            "INSERT INTO {db}.sessions_v1 SELECT {day}, '{session_id}', '0badcafe', 'manual', 'old', '{{}}', '{{}}', \
             '[]', '{{\"headers\":true,\"bodies\":true}}', 1700000000000, 1700000060000, NULL, 1, 1, 0"
        ),
    ] {
        run(statement).await;
    }

    let store = ClickHouseStore::open(config.clone()).await.expect("open tables from before projects");
    let default = Project::default();
    let other = Project::new("other").unwrap();
    let trace_id = sessiontrace_model::TraceId::from_hex(trace).unwrap().0;
    let session = store.session(&default, "0badcafe").await.unwrap().expect("the old session");
    assert_eq!((session.id.as_str(), session.name.as_deref()), (session_id, Some("old")));
    assert_eq!(store.trace_blocks(&default, trace_id).await.unwrap(), vec![b"spans before projects".to_vec()]);
    assert_eq!(store.trace_session_key(&default, trace_id).await.unwrap().as_deref(), Some("0badcafe"));
    let stats = store.session_stats(&default, &session).await.unwrap();
    assert_eq!((stats.traces, stats.spans, stats.errors, stats.logs, stats.events), (1, 3, 1, 1, 1), "{stats:?}");
    let listed = store.list_sessions(&default, &Default::default()).await.unwrap();
    assert_eq!(listed.total, 1);
    assert_eq!(store.session_traces(&default, &session).await.unwrap().len(), 1);
    let points = store.metric_points(&default, &Default::default()).await.unwrap();
    assert_eq!(points.iter().map(|p| p.value).collect::<Vec<_>>(), vec![Some(7.0)]);
    assert_eq!(store.replay_chunks(&default, session_id).await.unwrap()[0].events_json, br#"[{"type":4}]"#.to_vec());
    let totals = store.totals(Some(&default)).await.unwrap();
    assert_eq!((totals.spans, totals.span_blocks, totals.logs, totals.sessions, totals.replay_chunks), (3, 1, 1, 1, 1));
    assert!(store.projects().await.unwrap().iter().any(|info| info.project.is_default()));
    // Nothing of it through another project.
    assert_eq!(store.session(&other, "0badcafe").await.unwrap(), None);
    assert!(store.trace_blocks(&other, trace_id).await.unwrap().is_empty());
    assert_eq!(store.list_sessions(&other, &Default::default()).await.unwrap().total, 0);
    assert!(store.replay_chunks(&other, session_id).await.unwrap().is_empty());
    assert_eq!(store.totals(Some(&other)).await.unwrap(), Default::default());
    // A second open finds the columns there, and new data goes on being written.
    drop(store);
    let store = ClickHouseStore::open(config).await.expect("open again");
    store.write(&other, conformance::sample_batch()).await.unwrap();
    assert_eq!(store.totals(Some(&other)).await.unwrap().span_blocks, 1);
    assert_eq!(store.totals(None).await.unwrap().span_blocks, 2);
    run(format!("DROP DATABASE {db}")).await;
}
