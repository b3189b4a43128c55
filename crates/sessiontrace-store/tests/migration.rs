//! A data directory written before projects (tests/fixtures/store-55599be.db, see its README) opens with
//! today's code, and everything in it belongs to the project `default` and to no other.

use sessiontrace_model::Project;
use sessiontrace_model::records::WriteBatch;
use sessiontrace_store::sqlite::SqliteStore;
use sessiontrace_store::{LogFilter, MetricFilter, SessionFilter, Store, Totals, conformance};

const SESSION_ID: &str = "5e55105e55105e55105e55105e55105e";
const SHORT_ID: &str = "0badcafe";
const SESSION_TRACE: &str = "debdeb0badcafec3b9ff825c069fa3e5";
const OTHER_TRACE: &str = "11112222333344445555666677778888";

fn trace(hex: &str) -> [u8; 16] {
    sessiontrace_model::TraceId::from_hex(hex).unwrap().0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_from_before_projects_opens_with_everything_in_default() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-55599be.db");
    std::fs::copy(&fixture, &path).unwrap();
    let default = Project::default();
    let other = Project::new("other").unwrap();
    {
        let store = SqliteStore::open(&path).unwrap();
        let session = store.session(&default, SHORT_ID).await.unwrap().expect("the old session, by short id");
        assert_eq!(session.id, SESSION_ID);
        assert_eq!(session.name.as_deref(), Some("checkout before projects"));
        assert_eq!(store.session(&default, SESSION_ID).await.unwrap().as_ref(), Some(&session));
        let listed = store.list_sessions(&default, &SessionFilter::default()).await.unwrap();
        assert_eq!(listed.total, 1);
        let stats = &listed.sessions[0].1;
        assert_eq!((stats.traces, stats.spans, stats.errors, stats.logs, stats.events), (1, 3, 1, 1, 2), "{stats:?}");
        assert_eq!(stats.services, vec!["checkout".to_string()]);
        let errors = SessionFilter { has_error: Some(true), service: Some("checkout".into()), ..Default::default() };
        assert_eq!(store.list_sessions(&default, &errors).await.unwrap().total, 1, "summaries were migrated");
        let traces = store.session_traces(&default, &session).await.unwrap();
        assert_eq!(traces.iter().map(|t| t.trace_id).collect::<Vec<_>>(), vec![trace(SESSION_TRACE)]);
        assert_eq!(store.trace_blocks(&default, trace(SESSION_TRACE)).await.unwrap().len(), 1);
        assert_eq!(store.trace_blocks(&default, trace(OTHER_TRACE)).await.unwrap().len(), 1);
        assert_eq!(store.trace_session_key(&default, trace(SESSION_TRACE)).await.unwrap().as_deref(), Some(SHORT_ID));
        let keys = vec![SESSION_ID.to_string(), SHORT_ID.to_string()];
        let logs = store.logs(&default, &LogFilter { session_keys: keys.clone(), ..Default::default() }).await.unwrap();
        assert_eq!(logs.iter().map(|l| l.body.as_str()).collect::<Vec<_>>(), vec!["payment failed"]);
        let points = store.metric_points(&default, &MetricFilter::default()).await.unwrap();
        assert_eq!(
            points.iter().map(|p| (p.name.as_str(), p.value)).collect::<Vec<_>>(),
            vec![("queue.depth", Some(7.0))]
        );
        let chunks = store.replay_chunks(&default, SESSION_ID).await.unwrap();
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].events_json, br#"[{"type":4},{"type":2}]"#.to_vec());
        let expected = Totals { spans: 6, span_blocks: 2, logs: 1, metric_points: 1, sessions: 1, replay_chunks: 1 };
        assert_eq!(store.totals(Some(&default)).await.unwrap(), expected);
        assert_eq!(store.totals(None).await.unwrap(), expected);
        assert!(store.projects().await.unwrap().iter().any(|info| info.project.is_default()));
        assert!(!store.has_credentials().await.unwrap());

        // Nothing of it shows through another project, even after that project wrote data of its own.
        store.write(&other, WriteBatch { ..conformance::sample_batch() }).await.unwrap();
        assert_eq!(store.session(&other, SHORT_ID).await.unwrap(), None);
        assert_eq!(store.session(&other, SESSION_ID).await.unwrap(), None);
        assert_eq!(store.list_sessions(&other, &SessionFilter::default()).await.unwrap().total, 0);
        assert!(store.trace_blocks(&other, trace(SESSION_TRACE)).await.unwrap().is_empty());
        assert!(store.trace_blocks(&other, trace(OTHER_TRACE)).await.unwrap().is_empty());
        assert_eq!(store.trace_session_key(&other, trace(SESSION_TRACE)).await.unwrap(), None);
        assert!(store.logs(&other, &LogFilter { session_keys: keys, ..Default::default() }).await.unwrap().is_empty());
        assert!(store.metric_points(&other, &MetricFilter::default()).await.unwrap().is_empty());
        assert!(store.replay_chunks(&other, SESSION_ID).await.unwrap().is_empty());
        assert_eq!(store.session_stats(&other, &session).await.unwrap().events, 0);
        assert_eq!(store.totals(Some(&other)).await.unwrap().sessions, 0);
        // The migrated store goes on working for new data in default.
        let new = conformance::new_session("after projects");
        store.insert_session(&default, &new).await.unwrap();
        assert_eq!(store.list_sessions(&default, &SessionFilter::default()).await.unwrap().total, 2);
    }
    // A second open finds nothing left to migrate and the same data.
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.totals(Some(&default)).await.unwrap().sessions, 2);
    assert_eq!(store.trace_blocks(&default, trace(SESSION_TRACE)).await.unwrap().len(), 1);
    let raw = rusqlite::Connection::open(&path).unwrap();
    let old_tables: i64 = raw
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('sessions_v1', 'replay_chunks_v1', 'session_summary_v1',
             'session_services_v1')",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(old_tables, 0, "the tables the migration replaced are gone");
}
