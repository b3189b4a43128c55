//! The storage conformance suite: what every backend must do, run by each backend's own tests
//! (`run_all(&store)`). Each check starts from data it writes itself under fresh ids, so the suite can run
//! against a shared server too.

use sessiontrace_model::ids::{SessionTraceKind, ShortId, TraceId};
use sessiontrace_model::records::{LogRecord, MetricPoint, ReplayChunk, TraceBlock, TraceIndexEntry, WriteBatch};
use sessiontrace_model::{CaptureSettings, Session, SessionKind};

use crate::{LogFilter, MetricFilter, SessionFilter, Store, StoreError};

/// Runs every check against `store`.
pub async fn run_all(store: &dyn Store) {
    sessions_round_trip(store).await;
    short_id_conflicts_are_refused(store).await;
    trace_blocks_are_found_by_trace(store).await;
    session_data_is_linked(store).await;
    replay_chunks_are_idempotent(store).await;
    session_list_filters(store).await;
    metric_points_by_service_and_window(store).await;
    totals_count_what_was_written(store).await;
}

/// A manual session started in 2023, not stopped.
pub fn new_session(name: &str) -> Session {
    Session {
        id: Session::new_id(),
        short_id: ShortId::random(),
        kind: SessionKind::Manual,
        name: Some(name.to_string()),
        user: serde_json::json!({"id": format!("user-{name}")}),
        attributes: serde_json::json!({"plan": "pro"}),
        tags: vec!["checkout".into()],
        capture: CaptureSettings::default(),
        started_at_ms: 1_700_000_000_000,
        stopped_at_ms: None,
        saved_at_ms: None,
    }
}

/// A block of one 3-span trace.
pub fn block(trace_id: TraceId, session_key: Option<String>, service: &str, errors: u32) -> TraceBlock {
    TraceBlock {
        protobuf: format!("block of {trace_id} from {service}").into_bytes(),
        span_count: 3,
        traces: vec![TraceIndexEntry {
            trace_id: trace_id.0,
            session_key,
            services: vec![service.to_string()],
            start_unix_nano: 1_700_000_000_000_000_000,
            end_unix_nano: 1_700_000_000_500_000_000,
            span_count: 3,
            error_count: errors,
            root: Some(("GET /".into(), service.into())),
        }],
    }
}

/// A small batch with one block of one trace, for backend-specific tests.
pub fn sample_batch() -> WriteBatch {
    WriteBatch { trace_blocks: vec![block(TraceId::random(), None, "api", 0)], ..Default::default() }
}

async fn sessions_round_trip(store: &dyn Store) {
    let mut session = new_session("round trip");
    store.insert_session(&session).await.expect("insert session");
    assert_eq!(store.session(&session.id).await.unwrap().as_ref(), Some(&session));
    assert_eq!(store.session(&session.short_id.to_hex()).await.unwrap().as_ref(), Some(&session));
    session.stopped_at_ms = Some(session.started_at_ms + 5_000);
    store.update_session(&session).await.expect("update session");
    assert_eq!(store.session(&session.id).await.unwrap(), Some(session));
    assert_eq!(store.session("no-such-session").await.unwrap(), None);
}

async fn short_id_conflicts_are_refused(store: &dyn Store) {
    let first = new_session("first");
    store.insert_session(&first).await.unwrap();
    let mut second = new_session("second");
    second.short_id = first.short_id;
    assert!(matches!(store.insert_session(&second).await, Err(StoreError::Conflict)));
    assert_eq!(store.session(&second.id).await.unwrap(), None);
}

async fn trace_blocks_are_found_by_trace(store: &dyn Store) {
    let trace_id = TraceId::random();
    let first = block(trace_id, None, "api", 0);
    let second = block(trace_id, None, "db", 0);
    let unrelated = block(TraceId::random(), None, "api", 0);
    let batch = WriteBatch { trace_blocks: vec![first.clone(), unrelated], ..Default::default() };
    store.write(batch).await.unwrap();
    store.write(WriteBatch { trace_blocks: vec![second.clone()], ..Default::default() }).await.unwrap();
    let blocks = store.trace_blocks(trace_id.0).await.unwrap();
    assert_eq!(blocks, vec![first.protobuf, second.protobuf]);
    assert!(store.trace_blocks(TraceId::random().0).await.unwrap().is_empty());
}

async fn session_data_is_linked(store: &dyn Store) {
    let session = new_session("linked");
    store.insert_session(&session).await.unwrap();
    let by_prefix = TraceId::for_session(SessionTraceKind::Recorded, session.short_id);
    let by_attribute = TraceId::random();
    let log = LogRecord {
        time_unix_nano: 1_700_000_000_100_000_000,
        trace_id: Some(by_prefix.0),
        span_id: Some([1; 8]),
        session_key: Some(session.short_id.to_hex()),
        service: "api".into(),
        severity_number: 17,
        severity_text: "ERROR".into(),
        body: "payment failed".into(),
        attributes_json: "{}".into(),
        resource_json: "{}".into(),
    };
    let batch = WriteBatch {
        trace_blocks: vec![
            block(by_prefix, Some(session.short_id.to_hex()), "api", 1),
            block(by_attribute, Some(session.id.clone()), "worker", 0),
            // The same trace from a service that did not tag its spans: still part of the session's trace.
            block(by_attribute, None, "db", 0),
        ],
        logs: vec![log.clone()],
        metric_points: vec![],
    };
    store.write(batch).await.unwrap();
    let traces = store.session_traces(&session).await.unwrap();
    let ids: Vec<_> = traces.iter().map(|t| t.trace_id).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&by_prefix.0) && ids.contains(&by_attribute.0));
    let attribute_trace = traces.iter().find(|t| t.trace_id == by_attribute.0).unwrap();
    assert_eq!(attribute_trace.services, vec!["db".to_string(), "worker".to_string()]);
    assert_eq!(attribute_trace.span_count, 6);
    let stats = store.session_stats(&session).await.unwrap();
    assert_eq!((stats.traces, stats.spans, stats.errors, stats.logs), (2, 6, 1, 1), "{stats:?}");
    let keys = vec![session.id.clone(), session.short_id.to_hex()];
    let logs = store.logs(&LogFilter { session_keys: keys, ..Default::default() }).await.unwrap();
    assert_eq!(logs, vec![log.clone()]);
    let by_trace = store.logs(&LogFilter { trace_id: Some(by_prefix.0), ..Default::default() }).await.unwrap();
    assert_eq!(by_trace, vec![log]);
    assert_eq!(store.trace_session_key(by_attribute.0).await.unwrap(), Some(session.id.clone()));
}

async fn replay_chunks_are_idempotent(store: &dyn Store) {
    let session = new_session("replay");
    store.insert_session(&session).await.unwrap();
    let chunk = |seq: u64, body: &str| ReplayChunk {
        session_id: session.id.clone(),
        seq,
        event_count: 1,
        first_timestamp_ms: 1_700_000_000_000 + seq as i64,
        last_timestamp_ms: 1_700_000_000_000 + seq as i64,
        events_json: body.as_bytes().to_vec(),
    };
    assert!(store.put_replay_chunk(chunk(1, r#"[{"type":3}]"#)).await.unwrap());
    assert!(store.put_replay_chunk(chunk(0, r#"[{"type":2}]"#)).await.unwrap());
    assert!(!store.put_replay_chunk(chunk(1, r#"[{"type":"changed"}]"#)).await.unwrap());
    let stored = store.replay_chunks(&session.id).await.unwrap();
    assert_eq!(stored, vec![chunk(0, r#"[{"type":2}]"#), chunk(1, r#"[{"type":3}]"#)]);
    assert_eq!(store.session_stats(&session).await.unwrap().events, 2);
}

async fn session_list_filters(store: &dyn Store) {
    let marker = format!("list-{}", TraceId::random());
    let mut failing = new_session(&format!("{marker} failing"));
    failing.started_at_ms = 1_800_000_000_000;
    let mut quiet = new_session(&format!("{marker} quiet"));
    quiet.started_at_ms = 1_800_000_001_000;
    quiet.stopped_at_ms = Some(1_800_000_002_000);
    store.insert_session(&failing).await.unwrap();
    store.insert_session(&quiet).await.unwrap();
    let failing_trace = TraceId::for_session(SessionTraceKind::Recorded, failing.short_id);
    let batch = WriteBatch {
        trace_blocks: vec![block(failing_trace, Some(failing.short_id.to_hex()), "payments", 2)],
        ..Default::default()
    };
    store.write(batch).await.unwrap();
    let names = |page: crate::SessionPage| page.sessions.into_iter().map(|(s, _)| s.id).collect::<Vec<_>>();
    let base = SessionFilter { text: Some(marker.clone()), ..Default::default() };
    let all = store.list_sessions(&base).await.unwrap();
    assert_eq!(all.total, 2);
    assert_eq!(all.sessions[1].1.services, vec!["payments".to_string()]);
    assert_eq!(names(all), vec![quiet.id.clone(), failing.id.clone()], "newest first");
    let errors = store.list_sessions(&SessionFilter { has_error: Some(true), ..base.clone() }).await.unwrap();
    assert_eq!(names(errors), vec![failing.id.clone()]);
    let service =
        store.list_sessions(&SessionFilter { service: Some("payments".into()), ..base.clone() }).await.unwrap();
    assert_eq!(names(service), vec![failing.id.clone()]);
    let user = store
        .list_sessions(&SessionFilter { user: Some(format!("user-{marker} quiet")), ..base.clone() })
        .await
        .unwrap();
    assert_eq!(names(user), vec![quiet.id.clone()]);
    let window = SessionFilter { from_ms: Some(1_800_000_003_000), ..base.clone() };
    assert_eq!(names(store.list_sessions(&window).await.unwrap()), vec![failing.id.clone()], "quiet stopped before");
    let paged = store.list_sessions(&SessionFilter { limit: Some(1), offset: Some(1), ..base }).await.unwrap();
    assert_eq!((paged.total, names(paged)), (2, vec![failing.id]));
}

async fn metric_points_by_service_and_window(store: &dyn Store) {
    let service = format!("svc-{}", TraceId::random());
    let point = |time: i64, value: f64| MetricPoint {
        time_unix_nano: time,
        service: service.clone(),
        name: "queue.depth".into(),
        kind: "gauge".into(),
        unit: "1".into(),
        value: Some(value),
        attributes_json: "{}".into(),
        detail_json: "{}".into(),
    };
    let batch =
        WriteBatch { metric_points: vec![point(10, 1.0), point(20, 2.0), point(30, 3.0)], ..Default::default() };
    store.write(batch).await.unwrap();
    let filter = MetricFilter {
        services: vec![service.clone()],
        name: Some("queue.depth".into()),
        from_unix_nano: Some(15),
        to_unix_nano: Some(30),
        limit: None,
    };
    assert_eq!(store.metric_points(&filter).await.unwrap(), vec![point(20, 2.0), point(30, 3.0)]);
}

async fn totals_count_what_was_written(store: &dyn Store) {
    let before = store.totals().await.expect("totals");
    let batch = WriteBatch { trace_blocks: vec![block(TraceId::random(), None, "api", 0)], ..Default::default() };
    store.write(batch).await.unwrap();
    let after = store.totals().await.unwrap();
    assert_eq!((after.spans - before.spans, after.span_blocks - before.span_blocks), (3, 1));
}
