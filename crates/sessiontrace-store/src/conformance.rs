//! The storage conformance suite: what every backend must do, run by each backend's own tests
//! (`run_all(&store)`). Each check starts from data it writes itself under fresh ids and fresh project
//! names, so the suite can run against a shared server too (the credentials check asserts "no
//! credentials" only when it finds none to start with).
//!
//! Projects: the data checks run in a project of their own, then [`projects_are_isolated`] writes the
//! same ids into two projects and reads each through the other; [`credentials_round_trip`] covers
//! projects, keys, users and login sessions.

use sessiontrace_model::ids::{SessionTraceKind, ShortId, TraceId};
use sessiontrace_model::records::{LogRecord, MetricPoint, ReplayChunk, TraceBlock, TraceIndexEntry, WriteBatch};
use sessiontrace_model::signals::{ClickedElement, FailedRequest, SessionInsights, Signal, SignalCounts, SignalKind};
use sessiontrace_model::{
    ApiKey, CaptureSettings, KeyKind, LoginSession, Project, ProjectInfo, Role, Session, SessionKind, User,
};

use crate::{LogFilter, MetricFilter, SessionFilter, Store, StoreError, Totals, TraceSearch};

/// Runs every check against `store`.
pub async fn run_all(store: &dyn Store) {
    credentials_round_trip(store).await;
    for project in [fresh_project("conformance"), Project::default()] {
        sessions_round_trip(store, &project).await;
        short_id_conflicts_are_refused(store, &project).await;
        trace_blocks_are_found_by_trace(store, &project).await;
        session_data_is_linked(store, &project).await;
        replay_chunks_are_idempotent(store, &project).await;
        session_list_filters(store, &project).await;
        session_insights_filter_the_list(store, &project).await;
        metric_points_by_service_and_window(store, &project).await;
        totals_count_what_was_written(store, &project).await;
        trace_search_filters(store, &project).await;
    }
    projects_are_isolated(store).await;
}

/// A project name no other run used: `prefix-` and 12 random hex digits.
pub fn fresh_project(prefix: &str) -> Project {
    let hex = TraceId::random().to_hex();
    let suffix = &hex[hex.len() - 12..];
    Project::new(&format!("{prefix}-{suffix}")).expect("a valid project name")
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

async fn sessions_round_trip(store: &dyn Store, project: &Project) {
    let mut session = new_session("round trip");
    store.insert_session(project, &session).await.expect("insert session");
    assert_eq!(store.session(project, &session.id).await.unwrap().as_ref(), Some(&session));
    assert_eq!(store.session(project, &session.short_id.to_hex()).await.unwrap().as_ref(), Some(&session));
    session.stopped_at_ms = Some(session.started_at_ms + 5_000);
    store.update_session(project, &session).await.expect("update session");
    assert_eq!(store.session(project, &session.id).await.unwrap(), Some(session));
    assert_eq!(store.session(project, "no-such-session").await.unwrap(), None);
}

async fn short_id_conflicts_are_refused(store: &dyn Store, project: &Project) {
    let first = new_session("first");
    store.insert_session(project, &first).await.unwrap();
    let mut second = new_session("second");
    second.short_id = first.short_id;
    assert!(matches!(store.insert_session(project, &second).await, Err(StoreError::Conflict)));
    assert_eq!(store.session(project, &second.id).await.unwrap(), None);
}

async fn trace_blocks_are_found_by_trace(store: &dyn Store, project: &Project) {
    let trace_id = TraceId::random();
    let first = block(trace_id, None, "api", 0);
    let second = block(trace_id, None, "db", 0);
    let unrelated = block(TraceId::random(), None, "api", 0);
    let batch = WriteBatch { trace_blocks: vec![first.clone(), unrelated], ..Default::default() };
    store.write(project, batch).await.unwrap();
    store.write(project, WriteBatch { trace_blocks: vec![second.clone()], ..Default::default() }).await.unwrap();
    let blocks = store.trace_blocks(project, trace_id.0).await.unwrap();
    assert_eq!(blocks, vec![first.protobuf, second.protobuf]);
    assert!(store.trace_blocks(project, TraceId::random().0).await.unwrap().is_empty());
}

async fn session_data_is_linked(store: &dyn Store, project: &Project) {
    let session = new_session("linked");
    store.insert_session(project, &session).await.unwrap();
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
    store.write(project, batch).await.unwrap();
    let traces = store.session_traces(project, &session).await.unwrap();
    let ids: Vec<_> = traces.iter().map(|t| t.trace_id).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&by_prefix.0) && ids.contains(&by_attribute.0));
    let attribute_trace = traces.iter().find(|t| t.trace_id == by_attribute.0).unwrap();
    assert_eq!(attribute_trace.services, vec!["db".to_string(), "worker".to_string()]);
    assert_eq!(attribute_trace.span_count, 6);
    let stats = store.session_stats(project, &session).await.unwrap();
    assert_eq!((stats.traces, stats.spans, stats.errors, stats.logs), (2, 6, 1, 1), "{stats:?}");
    let keys = vec![session.id.clone(), session.short_id.to_hex()];
    let logs = store.logs(project, &LogFilter { session_keys: keys, ..Default::default() }).await.unwrap();
    assert_eq!(logs, vec![log.clone()]);
    let by_trace = store.logs(project, &LogFilter { trace_id: Some(by_prefix.0), ..Default::default() }).await.unwrap();
    assert_eq!(by_trace, vec![log]);
    assert_eq!(store.trace_session_key(project, by_attribute.0).await.unwrap(), Some(session.id.clone()));
}

async fn replay_chunks_are_idempotent(store: &dyn Store, project: &Project) {
    let session = new_session("replay");
    store.insert_session(project, &session).await.unwrap();
    let chunk = |seq: u64, body: &str| ReplayChunk {
        session_id: session.id.clone(),
        seq,
        event_count: 1,
        first_timestamp_ms: 1_700_000_000_000 + seq as i64,
        last_timestamp_ms: 1_700_000_000_000 + seq as i64,
        events_json: body.as_bytes().to_vec(),
    };
    assert!(store.put_replay_chunk(project, chunk(1, r#"[{"type":3}]"#)).await.unwrap());
    assert!(store.put_replay_chunk(project, chunk(0, r#"[{"type":2}]"#)).await.unwrap());
    assert!(!store.put_replay_chunk(project, chunk(1, r#"[{"type":"changed"}]"#)).await.unwrap());
    let stored = store.replay_chunks(project, &session.id).await.unwrap();
    assert_eq!(stored, vec![chunk(0, r#"[{"type":2}]"#), chunk(1, r#"[{"type":3}]"#)]);
    assert_eq!(store.session_stats(project, &session).await.unwrap().events, 2);
}

async fn session_list_filters(store: &dyn Store, project: &Project) {
    let marker = format!("list-{}", TraceId::random());
    let mut failing = new_session(&format!("{marker} failing"));
    failing.started_at_ms = 1_800_000_000_000;
    let mut quiet = new_session(&format!("{marker} quiet"));
    quiet.started_at_ms = 1_800_000_001_000;
    quiet.stopped_at_ms = Some(1_800_000_002_000);
    store.insert_session(project, &failing).await.unwrap();
    store.insert_session(project, &quiet).await.unwrap();
    let failing_trace = TraceId::for_session(SessionTraceKind::Recorded, failing.short_id);
    let batch = WriteBatch {
        trace_blocks: vec![block(failing_trace, Some(failing.short_id.to_hex()), "payments", 2)],
        ..Default::default()
    };
    store.write(project, batch).await.unwrap();
    let names = |page: crate::SessionPage| page.sessions.into_iter().map(|(s, _)| s.id).collect::<Vec<_>>();
    let base = SessionFilter { text: Some(marker.clone()), ..Default::default() };
    let all = store.list_sessions(project, &base).await.unwrap();
    assert_eq!(all.total, 2);
    assert_eq!(all.sessions[1].1.services, vec!["payments".to_string()]);
    assert_eq!(names(all), vec![quiet.id.clone(), failing.id.clone()], "newest first");
    let errors = store.list_sessions(project, &SessionFilter { has_error: Some(true), ..base.clone() }).await.unwrap();
    assert_eq!(names(errors), vec![failing.id.clone()]);
    let service = store
        .list_sessions(project, &SessionFilter { service: Some("payments".into()), ..base.clone() })
        .await
        .unwrap();
    assert_eq!(names(service), vec![failing.id.clone()]);
    let user = store
        .list_sessions(project, &SessionFilter { user: Some(format!("user-{marker} quiet")), ..base.clone() })
        .await
        .unwrap();
    assert_eq!(names(user), vec![quiet.id.clone()]);
    let window = SessionFilter { from_ms: Some(1_800_000_003_000), ..base.clone() };
    assert_eq!(
        names(store.list_sessions(project, &window).await.unwrap()),
        vec![failing.id.clone()],
        "quiet stopped before"
    );
    let paged = store.list_sessions(project, &SessionFilter { limit: Some(1), offset: Some(1), ..base }).await.unwrap();
    assert_eq!((paged.total, names(paged)), (2, vec![failing.id]));
}

/// Signals and replay facts filter the list and count per session (every backend keeps them).
async fn session_insights_filter_the_list(store: &dyn Store, project: &Project) {
    let marker = format!("insights-{}", TraceId::random());
    let angry = new_session(&format!("{marker} angry"));
    let calm = new_session(&format!("{marker} calm"));
    store.insert_session(project, &angry).await.unwrap();
    store.insert_session(project, &calm).await.unwrap();
    let signal = |kind| Signal {
        kind,
        time_ms: 1.0,
        end_ms: 2.0,
        clicks: 4,
        node_id: Some(5),
        selector: "button#pay.primary".into(),
        text: "Pay now".into(),
        cause: None,
    };
    let angry_insights = SessionInsights {
        signals: vec![signal(SignalKind::Rage), signal(SignalKind::Error), signal(SignalKind::Error)],
        urls: vec!["/checkout/step-2".into(), "http://shop.test/checkout/step-2".into()],
        clicked: vec![ClickedElement { selector: "button#pay.primary".into(), text: "Pay now".into() }],
        console_errors: true,
        failed_requests: vec![FailedRequest { method: "POST".into(), path: "/api/pay".into(), status: 502 }],
    };
    let calm_insights = SessionInsights {
        signals: vec![signal(SignalKind::Dead)],
        urls: vec!["/home".into()],
        clicked: vec![ClickedElement { selector: "a#more".into(), text: "Read 100% more".into() }],
        ..Default::default()
    };
    store.put_session_insights(project, &angry.id, &calm_insights).await.unwrap();
    // Replaced whole by the next derivation.
    store.put_session_insights(project, &angry.id, &angry_insights).await.unwrap();
    store.put_session_insights(project, &calm.id, &calm_insights).await.unwrap();

    let base = SessionFilter { text: Some(marker.clone()), ..Default::default() };
    let listed = |filter: SessionFilter| async move { store.list_sessions(project, &filter).await };
    let page = listed(SessionFilter { signal: Some(SignalKind::Rage), ..base.clone() }).await.unwrap();
    assert_eq!(page.sessions.iter().map(|(s, _)| &s.id).collect::<Vec<_>>(), vec![&angry.id]);
    assert_eq!(store.session_insights(project, &angry.id).await.unwrap(), Some(angry_insights.clone()));
    assert_eq!(store.session_insights(project, &new_session("never").id).await.unwrap(), None);
    let stats = store.session_stats(project, &angry).await.unwrap();
    assert_eq!(stats.signals, Some(SignalCounts { rage: 1, dead: 0, error: 2 }));
    let all = listed(base.clone()).await.unwrap();
    let counts: Vec<_> = all.sessions.iter().map(|(s, stats)| (s.id.clone(), stats.signals)).collect();
    assert!(counts.contains(&(calm.id.clone(), Some(SignalCounts { rage: 0, dead: 1, error: 0 }))), "{counts:?}");

    let ids = |filter: SessionFilter| async move {
        let page = store.list_sessions(project, &filter).await.unwrap();
        let mut ids: Vec<String> = page.sessions.into_iter().map(|(s, _)| s.id).collect();
        ids.sort();
        ids
    };
    let both = {
        let mut both = vec![angry.id.clone(), calm.id.clone()];
        both.sort();
        both
    };
    let only_angry = vec![angry.id.clone()];
    let only_calm = vec![calm.id.clone()];
    let none: Vec<String> = vec![];
    let cases: Vec<(SessionFilter, &Vec<String>)> = vec![
        (SessionFilter { signal: Some(SignalKind::Dead), ..base.clone() }, &only_calm),
        (SessionFilter { signal: Some(SignalKind::Error), ..base.clone() }, &only_angry),
        (SessionFilter { url: Some("/checkout/*".into()), ..base.clone() }, &only_angry),
        (SessionFilter { url: Some("*://shop.test/*".into()), ..base.clone() }, &only_angry),
        (SessionFilter { url: Some("/checkout".into()), ..base.clone() }, &none),
        (SessionFilter { url: Some("/HOME".into()), ..base.clone() }, &only_calm),
        (SessionFilter { url: Some("*".into()), ..base.clone() }, &both),
        (SessionFilter { clicked: Some("#pay".into()), ..base.clone() }, &only_angry),
        (SessionFilter { clicked: Some("pay now".into()), ..base.clone() }, &only_angry),
        (SessionFilter { clicked: Some("100%".into()), ..base.clone() }, &only_calm),
        (SessionFilter { clicked: Some("_".into()), ..base.clone() }, &none),
        (SessionFilter { console_errors: Some(true), ..base.clone() }, &only_angry),
        (SessionFilter { console_errors: Some(false), ..base.clone() }, &only_calm),
        (SessionFilter { failed_requests: Some(true), ..base.clone() }, &only_angry),
        (SessionFilter { failed_requests: Some(false), ..base.clone() }, &only_calm),
        (SessionFilter { failed_path: Some("/api/pay".into()), failed_status: Some(502), ..base.clone() }, &only_angry),
        (SessionFilter { failed_path: Some("/api/pay".into()), failed_status: Some(500), ..base.clone() }, &none),
        (SessionFilter { failed_path: Some("/api".into()), ..base.clone() }, &none),
        (SessionFilter { failed_status: Some(502), ..base.clone() }, &only_angry),
    ];
    for (filter, expected) in cases {
        assert_eq!(&ids(filter.clone()).await, expected, "{filter:?}");
    }
}

async fn metric_points_by_service_and_window(store: &dyn Store, project: &Project) {
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
    store.write(project, batch).await.unwrap();
    let filter = MetricFilter {
        services: vec![service.clone()],
        name: Some("queue.depth".into()),
        from_unix_nano: Some(15),
        to_unix_nano: Some(30),
        limit: None,
    };
    assert_eq!(store.metric_points(project, &filter).await.unwrap(), vec![point(20, 2.0), point(30, 3.0)]);
}

async fn totals_count_what_was_written(store: &dyn Store, project: &Project) {
    let before = store.totals(Some(project)).await.expect("totals");
    let batch = WriteBatch { trace_blocks: vec![block(TraceId::random(), None, "api", 0)], ..Default::default() };
    store.write(project, batch).await.unwrap();
    let after = store.totals(Some(project)).await.unwrap();
    assert_eq!((after.spans - before.spans, after.span_blocks - before.span_blocks), (3, 1));
}

/// Two projects each hold a session with the same short id, a block of the same trace id, logs, metric
/// points and replay chunks: every read through one project sees only its own.
/// One block of one trace with its own service, root, times (ns) and errors.
fn search_block(trace_id: TraceId, service: &str, root: Option<&str>, start: i64, end: i64, errors: u32) -> TraceBlock {
    TraceBlock {
        protobuf: format!("block of {trace_id}").into_bytes(),
        span_count: 2,
        traces: vec![TraceIndexEntry {
            trace_id: trace_id.0,
            session_key: None,
            services: vec![service.to_string()],
            start_unix_nano: start,
            end_unix_nano: end,
            span_count: 2,
            error_count: errors,
            root: root.map(|name| (name.to_string(), service.to_string())),
        }],
    }
}

async fn trace_search_filters(store: &dyn Store, project: &Project) {
    // Fresh service names and a window of their own, so other data (a shared server) never matches.
    let suffix = &TraceId::random().to_hex()[..8];
    let (front, back) = (format!("front-{suffix}"), format!("back-{suffix}"));
    let base: i64 =
        1_650_000_000_000_000_000 + i64::from(u32::from_str_radix(suffix, 16).unwrap() % 1000) * 1_000_000_000;
    let ms = 1_000_000;
    let (slow, failed, quick) = (TraceId::random(), TraceId::random(), TraceId::random());
    let blocks = vec![
        // `slow`: two blocks, front's root and a later back span: 900 ms in all.
        search_block(slow, &front, Some("GET /slow"), base, base + 100 * ms, 0),
        search_block(slow, &back, None, base + 200 * ms, base + 900 * ms, 0),
        search_block(failed, &front, Some("POST /pay"), base + 1000 * ms, base + 1050 * ms, 1),
        search_block(quick, &back, Some("poll"), base + 2000 * ms, base + 2010 * ms, 0),
    ];
    store.write(project, WriteBatch { trace_blocks: blocks, ..Default::default() }).await.unwrap();
    let window = TraceSearch { from_unix_nano: Some(base), to_unix_nano: Some(base + 3000 * ms), ..Default::default() };
    let found = |search: TraceSearch| async move {
        store.search_traces(project, &search).await.unwrap().iter().map(|t| t.trace_id).collect::<Vec<_>>()
    };
    assert_eq!(found(TraceSearch { service: Some(front.clone()), ..window.clone() }).await, vec![failed.0, slow.0]);
    assert_eq!(found(TraceSearch { service: Some(back.clone()), ..window.clone() }).await, vec![quick.0, slow.0]);
    let traces =
        store.search_traces(project, &TraceSearch { service: Some(back.clone()), ..window.clone() }).await.unwrap();
    let merged = traces.iter().find(|t| t.trace_id == slow.0).unwrap();
    assert_eq!((merged.start_unix_nano, merged.end_unix_nano, merged.span_count), (base, base + 900 * ms, 4));
    assert_eq!(merged.root, Some(("GET /slow".to_string(), front.clone())));
    assert_eq!(merged.services, vec![back.clone(), front.clone()]);
    let with = |search: TraceSearch| TraceSearch { service: Some(front.clone()), ..search };
    assert_eq!(found(with(TraceSearch { has_error: Some(true), ..window.clone() })).await, vec![failed.0]);
    assert_eq!(found(with(TraceSearch { has_error: Some(false), ..window.clone() })).await, vec![slow.0]);
    assert_eq!(found(with(TraceSearch { min_duration_nanos: Some(500 * ms), ..window.clone() })).await, vec![slow.0]);
    assert_eq!(found(with(TraceSearch { max_duration_nanos: Some(500 * ms), ..window.clone() })).await, vec![failed.0]);
    assert_eq!(found(TraceSearch { root_name: Some("poll".into()), ..window.clone() }).await, vec![quick.0]);
    // Filters met by different blocks of one trace: the root on front's block, back on another.
    let across = TraceSearch { service: Some(back.clone()), root_name: Some("GET /slow".into()), ..window.clone() };
    assert_eq!(found(across).await, vec![slow.0]);
    let across = TraceSearch { service: Some(back.clone()), root_service: Some(front.clone()), ..window.clone() };
    assert_eq!(found(across).await, vec![slow.0]);
    assert_eq!(
        found(TraceSearch { root_service: Some(front.clone()), limit: 1, ..window.clone() }).await,
        vec![failed.0]
    );
    // The window: only traces that overlap it.
    let late = TraceSearch {
        from_unix_nano: Some(base + 1500 * ms),
        to_unix_nano: Some(base + 3000 * ms),
        ..Default::default()
    };
    assert_eq!(found(TraceSearch { service: Some(back.clone()), ..late }).await, vec![quick.0]);
    // Another project sees none of it.
    let other = fresh_project("search-other");
    assert!(store.search_traces(&other, &window).await.unwrap().is_empty());

    let catalog = store.trace_catalog(project, Some(base), Some(base + 3000 * ms)).await.unwrap();
    assert!(catalog.services.contains(&front) && catalog.services.contains(&back));
    for operation in
        [(front.clone(), "GET /slow".to_string()), (front.clone(), "POST /pay".into()), (back.clone(), "poll".into())]
    {
        assert!(catalog.root_operations.contains(&operation), "{operation:?} in {catalog:?}");
    }
    assert!(store.trace_catalog(&other, None, None).await.unwrap().services.is_empty());
}

pub async fn projects_are_isolated(store: &dyn Store) {
    let projects = [fresh_project("iso-a"), fresh_project("iso-b")];
    for project in &projects {
        store
            .create_project(&ProjectInfo { project: project.clone(), created_at_ms: 1_700_000_000_000 })
            .await
            .unwrap();
    }
    let short_id = ShortId::random();
    let shared_trace = TraceId::for_session(SessionTraceKind::Recorded, short_id);
    let service = format!("svc-{}", TraceId::random());
    let mut sessions = Vec::new();
    let mut blocks = Vec::new();
    let mut logs = Vec::new();
    let mut points = Vec::new();
    for (number, project) in projects.iter().enumerate() {
        let mut session = new_session(&format!("isolated {number}"));
        session.short_id = short_id;
        store.insert_session(project, &session).await.expect("the same short id in another project is no conflict");
        let block = block(shared_trace, Some(short_id.to_hex()), &format!("api-{number}"), number as u32);
        let log = LogRecord {
            time_unix_nano: 1_700_000_000_100_000_000 + number as i64,
            trace_id: Some(shared_trace.0),
            span_id: Some([number as u8 + 1; 8]),
            session_key: Some(short_id.to_hex()),
            service: service.clone(),
            severity_number: 9,
            severity_text: "INFO".into(),
            body: format!("log of project {number}"),
            attributes_json: "{}".into(),
            resource_json: "{}".into(),
        };
        let point = MetricPoint {
            time_unix_nano: 1_700_000_000_000_000_000 + number as i64,
            service: service.clone(),
            name: "requests".into(),
            kind: "sum".into(),
            unit: "1".into(),
            value: Some(number as f64 + 1.0),
            attributes_json: "{}".into(),
            detail_json: "{}".into(),
        };
        let batch = WriteBatch {
            trace_blocks: vec![block.clone()],
            logs: vec![log.clone()],
            metric_points: vec![point.clone()],
        };
        store.write(project, batch).await.unwrap();
        let chunk = ReplayChunk {
            session_id: session.id.clone(),
            seq: 0,
            event_count: number as u32 + 1,
            first_timestamp_ms: session.started_at_ms,
            last_timestamp_ms: session.started_at_ms,
            events_json: format!(r#"[{{"project":{number}}}]"#).into_bytes(),
        };
        assert!(store.put_replay_chunk(project, chunk.clone()).await.unwrap());
        // Project n's session has n + 1 rage signals and visited /iso-n.
        let rage = Signal {
            kind: SignalKind::Rage,
            time_ms: 1.0,
            end_ms: 2.0,
            clicks: 4,
            node_id: None,
            selector: "button".into(),
            text: String::new(),
            cause: None,
        };
        let insights = SessionInsights {
            signals: vec![rage; number + 1],
            urls: vec![format!("/iso-{number}")],
            ..Default::default()
        };
        store.put_session_insights(project, &session.id, &insights).await.unwrap();
        sessions.push(session);
        blocks.push(block);
        logs.push(log);
        points.push(point);
    }
    let unknown = fresh_project("iso-none");
    for (number, project) in projects.iter().enumerate() {
        let (own, other) = (&sessions[number], &sessions[1 - number]);
        // The short id names this project's session; the other's long id names nothing here.
        assert_eq!(store.session(project, &short_id.to_hex()).await.unwrap().as_ref(), Some(own));
        assert_eq!(store.session(project, &other.id).await.unwrap(), None, "another project's session id");
        assert_eq!(store.trace_blocks(project, shared_trace.0).await.unwrap(), vec![blocks[number].protobuf.clone()]);
        assert_eq!(store.trace_session_key(project, shared_trace.0).await.unwrap(), Some(short_id.to_hex()));
        let traces = store.session_traces(project, own).await.unwrap();
        assert_eq!(traces.len(), 1);
        assert_eq!((traces[0].span_count, traces[0].services.clone()), (3, vec![format!("api-{number}")]));
        let stats = store.session_stats(project, own).await.unwrap();
        let expected = crate::SessionStats {
            traces: 1,
            spans: 3,
            logs: 1,
            events: number as u64 + 1,
            errors: number as u64,
            services: vec![format!("api-{number}")],
            signals: Some(SignalCounts { rage: number as u64 + 1, ..Default::default() }),
        };
        assert_eq!(stats, expected);
        // The other project's session shares the short id, so through this project it names this
        // project's trace and log, but never the other project's replay.
        let other_stats = store.session_stats(project, other).await.unwrap();
        assert_eq!((other_stats.spans, other_stats.logs, other_stats.events), (3, 1, 0), "{other_stats:?}");
        let keys = vec![own.id.clone(), short_id.to_hex()];
        let by_session = store.logs(project, &LogFilter { session_keys: keys, ..Default::default() }).await.unwrap();
        assert_eq!(by_session, vec![logs[number].clone()]);
        let by_trace =
            store.logs(project, &LogFilter { trace_id: Some(shared_trace.0), ..Default::default() }).await.unwrap();
        assert_eq!(by_trace, vec![logs[number].clone()]);
        let metric_filter = MetricFilter { services: vec![service.clone()], ..Default::default() };
        assert_eq!(store.metric_points(project, &metric_filter).await.unwrap(), vec![points[number].clone()]);
        assert_eq!(store.replay_chunks(project, &own.id).await.unwrap().len(), 1);
        assert!(store.replay_chunks(project, &other.id).await.unwrap().is_empty(), "another project's replay");
        assert_eq!(store.session_insights(project, &other.id).await.unwrap(), None, "another project's signals");
        assert_eq!(store.session_insights(project, &own.id).await.unwrap().map(|i| i.signals.len()), Some(number + 1));
        for (url, expected) in [(format!("/iso-{number}"), 1), (format!("/iso-{}", 1 - number), 0)] {
            let filter = SessionFilter { url: Some(url), signal: Some(SignalKind::Rage), ..Default::default() };
            assert_eq!(
                store.list_sessions(project, &filter).await.unwrap().total,
                expected,
                "facts stay in their project"
            );
        }
        let listed = store.list_sessions(project, &SessionFilter::default()).await.unwrap();
        assert_eq!(listed.total, 1);
        assert_eq!(listed.sessions[0].0, *own);
        assert_eq!(listed.sessions[0].1, expected);
        let totals = store.totals(Some(project)).await.unwrap();
        let expected = Totals { spans: 3, span_blocks: 1, logs: 1, metric_points: 1, sessions: 1, replay_chunks: 1 };
        assert_eq!(totals, expected);
    }
    // The same (session, seq) in each project is stored once per project.
    let repeat = ReplayChunk {
        session_id: sessions[0].id.clone(),
        seq: 0,
        event_count: 1,
        first_timestamp_ms: 0,
        last_timestamp_ms: 0,
        events_json: b"[]".to_vec(),
    };
    assert!(!store.put_replay_chunk(&projects[0], repeat.clone()).await.unwrap());
    assert!(store.put_replay_chunk(&projects[1], repeat).await.unwrap(), "a seq of another project's session id");
    // A project nothing was written to reads as empty everywhere.
    assert_eq!(store.session(&unknown, &short_id.to_hex()).await.unwrap(), None);
    assert!(store.trace_blocks(&unknown, shared_trace.0).await.unwrap().is_empty());
    assert_eq!(store.trace_session_key(&unknown, shared_trace.0).await.unwrap(), None);
    assert_eq!(store.list_sessions(&unknown, &SessionFilter::default()).await.unwrap().total, 0);
    // Zero counts, or `None` from a backend that knows the project holds nothing.
    let stats = store.session_stats(&unknown, &sessions[0]).await.unwrap();
    assert_eq!(stats.signals.unwrap_or_default(), SignalCounts::default());
    assert_eq!(crate::SessionStats { signals: None, ..stats }, crate::SessionStats::default());
    assert_eq!(store.session_insights(&unknown, &sessions[0].id).await.unwrap(), None);
    assert!(
        store
            .logs(&unknown, &LogFilter { trace_id: Some(shared_trace.0), ..Default::default() })
            .await
            .unwrap()
            .is_empty()
    );
    let metric_filter = MetricFilter { services: vec![service.clone()], ..Default::default() };
    assert!(store.metric_points(&unknown, &metric_filter).await.unwrap().is_empty());
    assert_eq!(store.totals(Some(&unknown)).await.unwrap(), Totals::default());
    // All projects together hold at least both.
    let all = store.totals(None).await.unwrap();
    assert!(all.sessions >= 2 && all.span_blocks >= 2 && all.replay_chunks >= 3, "{all:?}");
}

/// Projects, API keys, users and login sessions: create, list, read back, revoke, touch, delete.
pub async fn credentials_round_trip(store: &dyn Store) {
    let started_empty =
        store.keys(None).await.unwrap().iter().all(ApiKey::is_revoked) && store.users().await.unwrap().is_empty();
    if started_empty {
        assert!(!store.has_credentials().await.unwrap(), "no key and no user: no credentials");
    }

    // Projects: `default` exists from the start; creating one twice is a conflict.
    let listed = store.projects().await.unwrap();
    assert!(listed.iter().any(|info| info.project.is_default()), "{listed:?}");
    let shop = ProjectInfo { project: fresh_project("shop"), created_at_ms: 1_700_000_000_000 };
    store.create_project(&shop).await.unwrap();
    assert!(matches!(store.create_project(&shop).await, Err(StoreError::Conflict)));
    let default = ProjectInfo { project: Project::default(), created_at_ms: 1 };
    assert!(matches!(store.create_project(&default).await, Err(StoreError::Conflict)));
    let listed = store.projects().await.unwrap();
    assert_eq!(listed.iter().filter(|info| info.project == shop.project).collect::<Vec<_>>(), vec![&shop]);
    // Data written to a project before it was created is kept, and creating it then is no conflict.
    let late = ProjectInfo { project: fresh_project("late"), created_at_ms: 1_700_000_000_000 };
    store.write(&late.project, sample_batch()).await.unwrap();
    assert!(!store.projects().await.unwrap().iter().any(|info| info.project == late.project), "written, not created");
    store.create_project(&late).await.expect("creating a project that only has data");
    assert!(store.projects().await.unwrap().contains(&late));
    assert_eq!(store.totals(Some(&late.project)).await.unwrap().span_blocks, 1);

    // Keys.
    let secret_hash = |byte: u8| {
        let mut hash = [byte; 32];
        hash[..16].copy_from_slice(&TraceId::random().0);
        hash
    };
    let ingest = ApiKey {
        id: format!("k_{}", &TraceId::random().to_hex()[20..]),
        project: shop.project.clone(),
        kind: KeyKind::Ingest,
        name: Some("web".into()),
        hash: secret_hash(1),
        prefix: "st_ing_abc".into(),
        allowed_origins: vec!["https://shop.example".into(), "http://localhost:3000".into()],
        bytes_per_second: Some(1_000_000),
        requests_per_second: Some(50),
        created_at_ms: 1_700_000_000_000,
        revoked_at_ms: None,
        last_used_ms: None,
    };
    let other_project = fresh_project("other");
    let admin = ApiKey {
        id: format!("k_{}", &TraceId::random().to_hex()[20..]),
        project: other_project.clone(),
        kind: KeyKind::Admin,
        name: None,
        hash: secret_hash(2),
        prefix: "st_admin_x".into(),
        allowed_origins: vec![],
        bytes_per_second: None,
        requests_per_second: None,
        created_at_ms: 1_700_000_000_001,
        revoked_at_ms: None,
        last_used_ms: None,
    };
    store.put_key(&ingest).await.unwrap();
    store.put_key(&admin).await.unwrap();
    assert!(store.has_credentials().await.unwrap(), "a key turns authentication on");
    assert_eq!(store.keys(Some(&shop.project)).await.unwrap(), vec![ingest.clone()]);
    assert_eq!(store.keys(Some(&other_project)).await.unwrap(), vec![admin.clone()]);
    let all = store.keys(None).await.unwrap();
    assert!(all.contains(&ingest) && all.contains(&admin), "{all:?}");
    assert_eq!(store.key_by_hash(&ingest.hash).await.unwrap(), Some(ingest.clone()));
    assert_eq!(store.key_by_hash(&secret_hash(3)).await.unwrap(), None);
    // Replacing a key by id.
    let renamed = ApiKey { name: Some("web shop".into()), requests_per_second: Some(80), ..ingest.clone() };
    store.put_key(&renamed).await.unwrap();
    assert_eq!(store.key_by_hash(&ingest.hash).await.unwrap(), Some(renamed.clone()));
    // Last use moves forward only, in batches; unknown ids are ignored.
    let used = vec![(renamed.id.clone(), 1_700_000_100_000), ("k_unknown".to_string(), 5)];
    store.touch_keys(&used).await.unwrap();
    store.touch_keys(&[(renamed.id.clone(), 1_700_000_050_000)]).await.unwrap();
    store.touch_keys(&[]).await.unwrap();
    let touched = store.key_by_hash(&ingest.hash).await.unwrap().unwrap();
    assert_eq!(touched.last_used_ms, Some(1_700_000_100_000));
    // Revocation: for good, the first time kept; an unknown id is false.
    assert!(store.revoke_key(&renamed.id, 1_700_000_200_000).await.unwrap());
    assert!(store.revoke_key(&renamed.id, 1_700_000_300_000).await.unwrap());
    assert!(!store.revoke_key("k_no_such_key", 1).await.unwrap());
    let revoked = store.key_by_hash(&ingest.hash).await.unwrap().expect("a revoked key is still found");
    assert_eq!(revoked.revoked_at_ms, Some(1_700_000_200_000));
    assert_eq!(revoked.last_used_ms, Some(1_700_000_100_000));
    store.touch_keys(&[(renamed.id.clone(), 1_700_000_400_000)]).await.unwrap();
    let revoked = store.key_by_hash(&ingest.hash).await.unwrap().unwrap();
    assert!(revoked.is_revoked(), "touching a revoked key does not bring it back");
    assert!(store.revoke_key(&admin.id, 1_700_000_200_000).await.unwrap());
    if started_empty {
        assert!(!store.has_credentials().await.unwrap(), "only revoked keys: no credentials");
    }

    // Users.
    let name = format!("ada-{}", &TraceId::random().to_hex()[20..]);
    let user = User {
        name: name.clone(),
        role: Role::Admin,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        created_at_ms: 1_700_000_000_000,
        disabled: false,
    };
    assert_eq!(store.user(&name).await.unwrap(), None);
    store.put_user(&user).await.unwrap();
    assert!(store.has_credentials().await.unwrap(), "a user turns authentication on");
    assert_eq!(store.user(&name).await.unwrap(), Some(user.clone()));
    let demoted = User { role: Role::Member, disabled: true, ..user.clone() };
    store.put_user(&demoted).await.unwrap();
    assert_eq!(store.user(&name).await.unwrap(), Some(demoted.clone()));
    let second = User { name: format!("{name}-b"), ..user.clone() };
    store.put_user(&second).await.unwrap();
    let users: Vec<User> = store.users().await.unwrap().into_iter().filter(|u| u.name.starts_with(&name)).collect();
    assert_eq!(users, vec![demoted, second]);

    // Login sessions.
    let login = LoginSession {
        id_hash: secret_hash(4),
        user: name.clone(),
        csrf_token: "csrf-token".into(),
        created_at_ms: 1_700_000_000_000,
        last_seen_ms: 1_700_000_000_000,
    };
    assert_eq!(store.login_session(&login.id_hash).await.unwrap(), None);
    store.put_login_session(&login).await.unwrap();
    assert_eq!(store.login_session(&login.id_hash).await.unwrap(), Some(login.clone()));
    store.touch_login_session(&login.id_hash, 1_700_000_060_000).await.unwrap();
    store.touch_login_session(&login.id_hash, 1_700_000_030_000).await.unwrap();
    let seen = store.login_session(&login.id_hash).await.unwrap().unwrap();
    assert_eq!(seen.last_seen_ms, 1_700_000_060_000, "last seen never moves back");
    store.delete_login_session(&login.id_hash).await.unwrap();
    assert_eq!(store.login_session(&login.id_hash).await.unwrap(), None);
    store.touch_login_session(&login.id_hash, 1_700_000_090_000).await.unwrap();
    assert_eq!(store.login_session(&login.id_hash).await.unwrap(), None, "a touch does not bring it back");
    store.delete_login_session(&secret_hash(5)).await.unwrap();
}
