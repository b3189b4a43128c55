//! Reads of the ClickHouse store. Every statement asks for `FORMAT RowBinary` and is decoded with
//! [`RowReader`]. Subqueries use `GLOBAL IN`, so the same SQL works on plain tables and on Distributed
//! tables over several shards. Values are pasted into SQL only as escaped literals ([`quote`], [`unhex`]):
//! the 18.16 HTTP interface has no query parameters. Every read of data names its project (`project = '…'`
//! on every table, subqueries included); credential reads take the latest row of each key with `argMax`.

use std::collections::HashMap;

use sessiontrace_model::ids::ShortId;
use sessiontrace_model::records::{LogRecord, MetricPoint, ReplayChunk};
use sessiontrace_model::signals::{SessionInsights, SignalCounts, SignalKind};
use sessiontrace_model::{ApiKey, KeyKind, LoginSession, Project, ProjectInfo, Role, Session, SessionKind, User};
use sessiontrace_store::{
    LogFilter, MetricFilter, SessionFilter, SessionPage, SessionStats, StoreError, Totals, TraceCatalog, TraceIndexRow,
    TraceSearch, TraceSummary, summarize_traces, wildcard_like,
};

use crate::client::Client;
use crate::decompress;
use crate::rowbinary::{RowReader, quote, unhex};
use sessiontrace_store::blocks::decode_block;

/// `project = '…'`, the condition every data read carries.
fn in_project(project: &Project) -> String {
    format!("project = {}", quote(project.as_str()))
}

/// The latest row of every session of a project (`argMax` over `version`), hidden when marked deleted.
/// Aliases carry a `s_` prefix: ClickHouse refuses an alias equal to the column inside its own aggregate.
fn latest_sessions(project: &Project, condition: Option<&str>) -> String {
    let inner_where = match condition {
        Some(condition) => format!("WHERE {} AND ({condition})", in_project(project)),
        None => format!("WHERE {}", in_project(project)),
    };
    format!(
        "(SELECT id AS s_id, argMax(short_id, version) AS s_short_id, argMax(kind, version) AS s_kind,
           argMax(name, version) AS s_name, argMax(user_json, version) AS s_user_json,
           argMax(attributes_json, version) AS s_attributes_json, argMax(tags_json, version) AS s_tags_json,
           argMax(capture_json, version) AS s_capture_json, argMax(started_ms, version) AS s_started_ms,
           argMax(stopped_ms, version) AS s_stopped_ms, argMax(saved_ms, version) AS s_saved_ms,
           argMax(deleted, version) AS s_deleted, min(created_ns) AS s_created_ns
         FROM sessions_v1 {inner_where} GROUP BY id)"
    )
}

/// The latest derivation of every session of a project that has one (`argMax` over `version`), columns
/// prefixed `i_`.
fn latest_insights(project: &Project, condition: Option<&str>) -> String {
    let condition = condition.map(|c| format!(" AND ({c})")).unwrap_or_default();
    format!(
        "(SELECT session_id AS i_id, argMax(rage, version) AS i_rage, argMax(dead, version) AS i_dead,
           argMax(error, version) AS i_error, argMax(console_errors, version) AS i_console_errors,
           argMax(urls, version) AS i_urls, argMax(clicked_selectors, version) AS i_clicked_selectors,
           argMax(clicked_texts, version) AS i_clicked_texts, argMax(failed_paths, version) AS i_failed_paths,
           argMax(failed_statuses, version) AS i_failed_statuses, argMax(insights_json, version) AS i_json
         FROM session_insights_v1 WHERE {}{condition} GROUP BY session_id)",
        in_project(project)
    )
}

/// Conditions on `i_` columns for the sessions list's signal and replay-fact filters; each is true of a
/// session whose latest derivation matches, the flags' `false` of one without (or with no derivation).
fn insight_conditions(filter: &SessionFilter) -> (Vec<String>, Vec<String>) {
    let mut with = Vec::new();
    let mut without = Vec::new();
    if let Some(kind) = filter.signal {
        with.push(format!(
            "i_{} > 0",
            match kind {
                SignalKind::Rage => "rage",
                SignalKind::Dead => "dead",
                SignalKind::Error => "error",
            }
        ));
    }
    for (flag, condition) in
        [(filter.console_errors, "i_console_errors = 1"), (filter.failed_requests, "notEmpty(i_failed_paths)")]
    {
        match flag {
            Some(true) => with.push(condition.to_string()),
            Some(false) => without.push(condition.to_string()),
            None => {}
        }
    }
    if let Some(url) = filter.url.as_deref() {
        with.push(format!("arrayExists(u -> lower(u) LIKE lower({}), i_urls)", quote(&wildcard_like(url))));
    }
    if let Some(clicked) = filter.clicked.as_deref() {
        let needle = quote(clicked);
        with.push(format!(
            "(arrayExists(c -> positionCaseInsensitive(c, {needle}) > 0, i_clicked_selectors)
              OR arrayExists(c -> positionCaseInsensitive(c, {needle}) > 0, i_clicked_texts))"
        ));
    }
    let path = filter.failed_path.as_deref().map(|p| format!("p = {}", quote(p)));
    let status = filter.failed_status.map(|s| format!("s = {s}"));
    let failed: Vec<String> = path.into_iter().chain(status).collect();
    if !failed.is_empty() {
        with.push(format!("arrayExists((p, s) -> {}, i_failed_paths, i_failed_statuses)", failed.join(" AND ")));
    }
    (with, without)
}

const SESSION_COLUMNS: &str = "s_id, s_short_id, s_kind, s_name, s_user_json, s_attributes_json, s_tags_json, \
                               s_capture_json, s_started_ms, s_stopped_ms, s_saved_ms";

fn read_session(reader: &mut RowReader<'_>) -> Result<Session, StoreError> {
    let json = |text: String| serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    let id = reader.string()?;
    let short_id = reader.string()?;
    let kind = reader.string()?;
    let name = reader.nullable(|r| r.string())?;
    let user = json(reader.string()?);
    let attributes = json(reader.string()?);
    let tags = serde_json::from_str(&reader.string()?).unwrap_or_default();
    let capture = serde_json::from_str(&reader.string()?).unwrap_or_default();
    Ok(Session {
        id,
        short_id: ShortId::from_hex(&short_id).unwrap_or(ShortId([0; 4])),
        kind: SessionKind::parse(&kind).unwrap_or_default(),
        name,
        user,
        attributes,
        tags,
        capture,
        started_at_ms: reader.i64()?,
        stopped_at_ms: reader.nullable(|r| r.i64())?,
        saved_at_ms: reader.nullable(|r| r.i64())?,
    })
}

fn read_all<T>(
    bytes: &[u8],
    mut read: impl FnMut(&mut RowReader<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut reader = RowReader::new(bytes);
    let mut rows = Vec::new();
    while !reader.is_empty() {
        rows.push(read(&mut reader)?);
    }
    Ok(rows)
}

fn list(values: &[String]) -> String {
    values.iter().map(|value| quote(value)).collect::<Vec<_>>().join(", ")
}

pub(crate) async fn session(client: &Client, project: &Project, key: &str) -> Result<Option<Session>, StoreError> {
    let key = quote(key);
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM {} WHERE s_deleted = 0 ORDER BY s_created_ns, s_id LIMIT 1 FORMAT RowBinary",
        latest_sessions(project, Some(&format!("id = {key} OR short_id = {key}")))
    );
    Ok(read_all(&client.execute(&sql).await?, read_session)?.into_iter().next())
}

/// Sessions (not deleted) that hold `id` or `short_id`, with their first-insert time: who owns a key.
pub(crate) async fn owners(
    client: &Client,
    project: &Project,
    id: &str,
    short_id: &str,
) -> Result<Vec<(String, u64)>, StoreError> {
    let sql = format!(
        "SELECT s_id, s_created_ns FROM {} WHERE s_deleted = 0 ORDER BY s_created_ns, s_id FORMAT RowBinary",
        latest_sessions(project, Some(&format!("id = {} OR short_id = {}", quote(id), quote(short_id))))
    );
    read_all(&client.execute(&sql).await?, |r| Ok((r.string()?, r.u64()?)))
}

/// Stats of several sessions at once (three queries for a whole page).
pub(crate) async fn sessions_stats(
    client: &Client,
    project: &Project,
    sessions: &[Session],
) -> Result<Vec<SessionStats>, StoreError> {
    let in_project = in_project(project);
    let mut stats = vec![SessionStats::default(); sessions.len()];
    if sessions.is_empty() {
        return Ok(stats);
    }
    let mut owner: HashMap<String, usize> = HashMap::new();
    let mut keys = Vec::new();
    for (slot, session) in sessions.iter().enumerate() {
        for key in [session.id.clone(), session.short_id.to_hex()] {
            owner.insert(key.clone(), slot);
            keys.push(key);
        }
    }
    let keys = list(&keys);
    let sql = format!(
        "SELECT session_key, trace_id, sum(span_count), sum(error_count), groupUniqArrayArray(services)
         FROM session_traces_v1 WHERE {in_project} AND session_key IN ({keys}) GROUP BY session_key, trace_id
         FORMAT RowBinary"
    );
    let rows = read_all(&client.execute(&sql).await?, |r| {
        Ok((r.string()?, r.fixed::<16>()?, r.u64()?, r.u64()?, r.strings()?))
    })?;
    let mut traces: Vec<Vec<[u8; 16]>> = vec![Vec::new(); sessions.len()];
    for (key, trace_id, spans, errors, services) in rows {
        let Some(&slot) = owner.get(&key) else { continue };
        let entry = &mut stats[slot];
        if !traces[slot].contains(&trace_id) {
            traces[slot].push(trace_id);
        }
        entry.spans += spans;
        entry.errors += errors;
        for service in services.into_iter().filter(|s| !s.is_empty()) {
            if !entry.services.contains(&service) {
                entry.services.push(service);
            }
        }
    }
    let sql = format!(
        "SELECT session_key, count() FROM logs_v1 WHERE {in_project} AND session_key IN ({keys}) GROUP BY session_key
         FORMAT RowBinary"
    );
    for (key, count) in read_all(&client.execute(&sql).await?, |r| Ok((r.string()?, r.u64()?)))? {
        if let Some(&slot) = owner.get(&key) {
            stats[slot].logs += count;
        }
    }
    let ids = list(&sessions.iter().map(|s| s.id.clone()).collect::<Vec<_>>());
    let sql = format!(
        "SELECT session_id, sum(events) FROM
           (SELECT session_id, seq, argMin(event_count, inserted_ns) AS events FROM replay_chunks_v1
            WHERE {in_project} AND session_id IN ({ids}) GROUP BY session_id, seq)
         GROUP BY session_id FORMAT RowBinary"
    );
    for (id, events) in read_all(&client.execute(&sql).await?, |r| Ok((r.string()?, r.u64()?)))? {
        if let Some(&slot) = owner.get(&id) {
            stats[slot].events += events;
        }
    }
    let sql = format!(
        "SELECT i_id, i_rage, i_dead, i_error FROM {} FORMAT RowBinary",
        latest_insights(project, Some(&format!("session_id IN ({ids})")))
    );
    let counts = read_all(&client.execute(&sql).await?, |r| Ok((r.string()?, r.u32()?, r.u32()?, r.u32()?)))?;
    for (id, rage, dead, error) in counts {
        if let Some(&slot) = owner.get(&id) {
            stats[slot].signals = Some(SignalCounts { rage: rage.into(), dead: dead.into(), error: error.into() });
        }
    }
    for (slot, entry) in stats.iter_mut().enumerate() {
        entry.traces = traces[slot].len() as u64;
        entry.services.sort();
        entry.signals.get_or_insert_default();
    }
    Ok(stats)
}

pub(crate) async fn list_sessions(
    client: &Client,
    project: &Project,
    filter: &SessionFilter,
) -> Result<SessionPage, StoreError> {
    let in_project = in_project(project);
    let mut conditions = vec!["s_deleted = 0".to_string()];
    if let Some(text) = filter.text.as_deref().filter(|t| !t.is_empty()) {
        let needle = quote(text);
        conditions.push(format!(
            "(positionCaseInsensitiveUTF8(ifNull(s_name, ''), {needle}) > 0 OR s_id = {needle} OR s_short_id = {needle}
              OR positionCaseInsensitiveUTF8(s_user_json, {needle}) > 0
              OR positionCaseInsensitiveUTF8(s_tags_json, {needle}) > 0
              OR positionCaseInsensitiveUTF8(s_attributes_json, {needle}) > 0)"
        ));
    }
    if let Some(user) = filter.user.as_deref().filter(|t| !t.is_empty()) {
        conditions.push(format!("positionCaseInsensitiveUTF8(s_user_json, {}) > 0", quote(user)));
    }
    if let Some(service) = filter.service.as_deref().filter(|t| !t.is_empty()) {
        let linked = format!(
            "(SELECT session_key FROM session_traces_v1 WHERE {in_project} AND has(services, {}))",
            quote(service)
        );
        conditions.push(format!("(s_id GLOBAL IN {linked} OR s_short_id GLOBAL IN {linked})"));
    }
    if let Some(has_error) = filter.has_error {
        let failing = format!("(SELECT session_key FROM session_traces_v1 WHERE {in_project} AND error_count > 0)");
        let failed = format!("(s_id GLOBAL IN {failing} OR s_short_id GLOBAL IN {failing})");
        conditions.push(if has_error { failed } else { format!("NOT {failed}") });
    }
    if let Some(from) = filter.from_ms {
        conditions.push(format!("ifNull(s_stopped_ms, toInt64(9223372036854775807)) >= {from}"));
    }
    if let Some(to) = filter.to_ms {
        conditions.push(format!("s_started_ms <= {to}"));
    }
    let (with, without) = insight_conditions(filter);
    for (conditions_of, negate) in [(with, false), (without, true)] {
        for condition in conditions_of {
            let matching =
                format!("s_id GLOBAL IN (SELECT i_id FROM {} WHERE {condition})", latest_insights(project, None));
            conditions.push(if negate { format!("NOT ({matching})") } else { matching });
        }
    }
    let where_clause = conditions.join(" AND ");
    let source = latest_sessions(project, None);
    let sql = format!("SELECT count() FROM {source} WHERE {where_clause} FORMAT RowBinary");
    let total = RowReader::new(&client.execute(&sql).await?).u64()?;
    let limit = filter.limit.unwrap_or(50).min(1000);
    let offset = filter.offset.unwrap_or(0);
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM {source} WHERE {where_clause} ORDER BY s_started_ms DESC, s_id
         LIMIT {offset}, {limit} FORMAT RowBinary"
    );
    let sessions = read_all(&client.execute(&sql).await?, read_session)?;
    let stats = sessions_stats(client, project, &sessions).await?;
    Ok(SessionPage { sessions: sessions.into_iter().zip(stats).collect(), total })
}

pub(crate) async fn session_traces(
    client: &Client,
    project: &Project,
    session: &Session,
) -> Result<Vec<TraceSummary>, StoreError> {
    let in_project = in_project(project);
    // A trace may be linked to the session by only some of its blocks (a `session.id` attribute on one
    // service's spans): summarize every block of every trace any block links.
    let keys = list(&[session.short_id.to_hex(), session.id.clone()]);
    let sql = format!(
        "SELECT trace_id, services, start_ns, end_ns, span_count, error_count, root_name, root_service
         FROM trace_index_v1 WHERE {in_project} AND trace_id GLOBAL IN
           (SELECT trace_id FROM session_traces_v1 WHERE {in_project} AND session_key IN ({keys}))
         ORDER BY start_ns, block_id FORMAT RowBinary"
    );
    let rows = read_all(&client.execute(&sql).await?, |r| {
        Ok((
            r.fixed::<16>()?,
            r.strings()?,
            r.i64()?,
            r.i64()?,
            r.u32()?,
            r.u32()?,
            r.nullable(|r| r.string())?,
            r.nullable(|r| r.string())?,
        ))
    })?;
    Ok(summarize_traces(rows.into_iter().map(
        |(trace_id, services, start, end, span_count, error_count, root_name, root_service)| TraceIndexRow {
            trace_id,
            services,
            start_unix_nano: start,
            end_unix_nano: end,
            span_count: u64::from(span_count),
            error_count: u64::from(error_count),
            root: root_name.zip(root_service),
        },
    )))
}

pub(crate) async fn trace_blocks(
    client: &Client,
    project: &Project,
    trace_id: &[u8; 16],
) -> Result<Vec<Vec<u8>>, StoreError> {
    let in_project = in_project(project);
    let sql = format!(
        "SELECT data FROM span_blocks_v1
         WHERE {in_project} AND block_id GLOBAL IN
           (SELECT block_id FROM trace_index_v1 WHERE trace_id = {} AND {in_project})
         ORDER BY block_id FORMAT RowBinary",
        unhex(trace_id)
    );
    let compressed = read_all(&client.execute(&sql).await?, |r| r.bytes())?;
    compressed.iter().map(|data| decode_block(data)).collect()
}

/// Conditions on index rows that overlap `[from, to]` (Unix ns).
fn index_window(conditions: &mut Vec<String>, from: Option<i64>, to: Option<i64>) {
    if let Some(to) = to {
        conditions.push(format!("start_ns <= {to}"));
    }
    if let Some(from) = from {
        conditions.push(format!("end_ns >= {from}"));
    }
}

pub(crate) async fn search_traces(
    client: &Client,
    project: &Project,
    search: &TraceSearch,
) -> Result<Vec<TraceSummary>, StoreError> {
    // Candidates: the newest traces of the window whose rows together pass the filters (a trace's
    // blocks may name its services, root and errors on different rows); the merged traces are then
    // checked exactly (as on SQLite).
    let in_project = in_project(project);
    let mut conditions = vec![in_project.clone()];
    index_window(&mut conditions, search.from_unix_nano, search.to_unix_nano);
    let mut having = vec!["1".to_string()];
    if let Some(service) = &search.service {
        having.push(format!("countIf(has(services, {})) > 0", quote(service)));
    }
    if let Some(root_service) = &search.root_service {
        having.push(format!("countIf(ifNull(root_service, '') = {}) > 0", quote(root_service)));
    }
    if let Some(root_name) = &search.root_name {
        having.push(format!("countIf(ifNull(root_name, '') = {}) > 0", quote(root_name)));
    }
    if search.has_error == Some(true) {
        having.push("sum(error_count) > 0".to_string());
    }
    let sql = format!(
        "SELECT trace_id, services, start_ns, end_ns, span_count, error_count, root_name, root_service
         FROM trace_index_v1 WHERE {in_project} AND trace_id GLOBAL IN
           (SELECT trace_id FROM trace_index_v1 {} GROUP BY trace_id HAVING {}
            ORDER BY max(start_ns) DESC LIMIT {})
         ORDER BY start_ns, block_id FORMAT RowBinary",
        where_clause(&conditions),
        having.join(" AND "),
        TraceSearch::SCAN_CAP
    );
    let rows = read_all(&client.execute(&sql).await?, |r| {
        Ok((
            r.fixed::<16>()?,
            r.strings()?,
            r.i64()?,
            r.i64()?,
            r.u32()?,
            r.u32()?,
            r.nullable(|r| r.string())?,
            r.nullable(|r| r.string())?,
        ))
    })?;
    let traces = summarize_traces(rows.into_iter().map(
        |(trace_id, services, start, end, span_count, error_count, root_name, root_service)| TraceIndexRow {
            trace_id,
            services,
            start_unix_nano: start,
            end_unix_nano: end,
            span_count: u64::from(span_count),
            error_count: u64::from(error_count),
            root: root_name.zip(root_service),
        },
    ));
    Ok(search.finish(traces))
}

pub(crate) async fn trace_catalog(
    client: &Client,
    project: &Project,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<TraceCatalog, StoreError> {
    let mut conditions = vec![in_project(project)];
    index_window(&mut conditions, from, to);
    let where_clause = where_clause(&conditions);
    let cap = TraceCatalog::CAP;
    let sql = format!(
        "SELECT DISTINCT arrayJoin(services) AS service FROM trace_index_v1 {where_clause}
         ORDER BY service LIMIT {cap} FORMAT RowBinary"
    );
    let services =
        read_all(&client.execute(&sql).await?, |r| r.string())?.into_iter().filter(|s| !s.is_empty()).collect();
    let sql = format!(
        "SELECT DISTINCT assumeNotNull(root_service) AS s, assumeNotNull(root_name) AS n FROM trace_index_v1
         {where_clause} AND isNotNull(root_service) AND isNotNull(root_name) ORDER BY s, n LIMIT {cap} FORMAT RowBinary"
    );
    let root_operations = read_all(&client.execute(&sql).await?, |r| Ok((r.string()?, r.string()?)))?;
    Ok(TraceCatalog { services, root_operations })
}

pub(crate) async fn trace_session_key(
    client: &Client,
    project: &Project,
    trace_id: &[u8; 16],
) -> Result<Option<String>, StoreError> {
    let sql = format!(
        "SELECT session_key FROM trace_index_v1 WHERE trace_id = {} AND {} AND session_key != ''
         ORDER BY start_ns LIMIT 1 FORMAT RowBinary",
        unhex(trace_id),
        in_project(project)
    );
    Ok(read_all(&client.execute(&sql).await?, |r| r.string())?.into_iter().next())
}

/// Adds `time_ns` bounds for the ones given.
fn push_time_window(conditions: &mut Vec<String>, from: Option<i64>, to: Option<i64>) {
    if let Some(from) = from {
        conditions.push(format!("time_ns >= {from}"));
    }
    if let Some(to) = to {
        conditions.push(format!("time_ns <= {to}"));
    }
}

/// `WHERE a AND b …`, or nothing when there are no conditions.
fn where_clause(conditions: &[String]) -> String {
    if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) }
}

pub(crate) async fn logs(client: &Client, project: &Project, filter: &LogFilter) -> Result<Vec<LogRecord>, StoreError> {
    let in_project = in_project(project);
    let mut conditions: Vec<String> = vec![in_project.clone()];
    if let Some(trace_id) = filter.trace_id {
        conditions.push(format!("trace_id = {}", unhex(&trace_id)));
    }
    if !filter.session_keys.is_empty() {
        // Logs linked to the session directly, or through a trace that belongs to it.
        let keys = list(&filter.session_keys);
        conditions.push(format!(
            "(session_key IN ({keys})
              OR trace_id GLOBAL IN
                (SELECT trace_id FROM session_traces_v1 WHERE {in_project} AND session_key IN ({keys})))"
        ));
    }
    if let Some(service) = &filter.service {
        conditions.push(format!("service = {}", quote(service)));
    }
    if let Some(text) = &filter.text {
        conditions.push(format!("positionCaseInsensitiveUTF8(body, {}) > 0", quote(text)));
    }
    push_time_window(&mut conditions, filter.from_unix_nano, filter.to_unix_nano);
    let conditions_sql = where_clause(&conditions);
    let limit = filter.limit.unwrap_or(1000).min(100_000);
    let sql = format!(
        "SELECT time_ns, trace_id, span_id, session_key, service, severity_number, severity_text, body,
         attributes_json, resource_json FROM logs_v1 {conditions_sql} ORDER BY time_ns, log_id LIMIT {limit}
         FORMAT RowBinary"
    );
    read_all(&client.execute(&sql).await?, |r| {
        Ok(LogRecord {
            time_unix_nano: r.i64()?,
            trace_id: r.nullable(|r| r.fixed::<16>())?,
            span_id: r.nullable(|r| r.fixed::<8>())?,
            session_key: Some(r.string()?).filter(|key| !key.is_empty()),
            service: r.string()?,
            severity_number: r.i32()?,
            severity_text: r.string()?,
            body: r.string()?,
            attributes_json: r.string()?,
            resource_json: r.string()?,
        })
    })
}

pub(crate) async fn metric_points(
    client: &Client,
    project: &Project,
    filter: &MetricFilter,
) -> Result<Vec<MetricPoint>, StoreError> {
    let mut conditions: Vec<String> = vec![in_project(project)];
    if !filter.services.is_empty() {
        conditions.push(format!("service IN ({})", list(&filter.services)));
    }
    if let Some(name) = &filter.name {
        conditions.push(format!("name = {}", quote(name)));
    }
    push_time_window(&mut conditions, filter.from_unix_nano, filter.to_unix_nano);
    let conditions_sql = where_clause(&conditions);
    let limit = filter.limit.unwrap_or(10_000).min(100_000);
    let sql = format!(
        "SELECT time_ns, service, name, kind, unit, value, attributes_json, detail_json FROM metric_points_v1
         {conditions_sql} ORDER BY time_ns LIMIT {limit} FORMAT RowBinary"
    );
    read_all(&client.execute(&sql).await?, |r| {
        Ok(MetricPoint {
            time_unix_nano: r.i64()?,
            service: r.string()?,
            name: r.string()?,
            kind: r.string()?,
            unit: r.string()?,
            value: r.nullable(|r| r.f64())?,
            attributes_json: r.string()?,
            detail_json: r.string()?,
        })
    })
}

/// The latest derivation of a session's replay, if any.
pub(crate) async fn session_insights(
    client: &Client,
    project: &Project,
    session_id: &str,
) -> Result<Option<SessionInsights>, StoreError> {
    let sql = format!(
        "SELECT i_json FROM {} FORMAT RowBinary",
        latest_insights(project, Some(&format!("session_id = {}", quote(session_id))))
    );
    let Some(json) = read_all(&client.execute(&sql).await?, |r| r.string())?.into_iter().next() else {
        return Ok(None);
    };
    serde_json::from_str(&json).map(Some).map_err(|error| StoreError::Internal(format!("stored insights: {error}")))
}

pub(crate) async fn replay_chunk_exists(
    client: &Client,
    project: &Project,
    session_id: &str,
    seq: u64,
) -> Result<bool, StoreError> {
    let sql = format!(
        "SELECT count() FROM replay_chunks_v1 WHERE {} AND session_id = {} AND seq = {seq} FORMAT RowBinary",
        in_project(project),
        quote(session_id)
    );
    Ok(RowReader::new(&client.execute(&sql).await?).u64()? > 0)
}

pub(crate) async fn replay_chunks(
    client: &Client,
    project: &Project,
    session_id: &str,
) -> Result<Vec<ReplayChunk>, StoreError> {
    // A seq stored twice (two replicas raced, or before a merge) reads as its first copy.
    let sql = format!(
        "SELECT seq, argMin(event_count, inserted_ns), argMin(first_ms, inserted_ns), argMin(last_ms, inserted_ns),
         argMin(data, inserted_ns) FROM replay_chunks_v1 WHERE {} AND session_id = {} GROUP BY seq ORDER BY seq
         FORMAT RowBinary",
        in_project(project),
        quote(session_id)
    );
    let rows = read_all(&client.execute(&sql).await?, |r| Ok((r.u64()?, r.u32()?, r.i64()?, r.i64()?, r.bytes()?)))?;
    rows.into_iter()
        .map(|(seq, event_count, first, last, data)| {
            Ok(ReplayChunk {
                session_id: session_id.to_string(),
                seq,
                event_count,
                first_timestamp_ms: first,
                last_timestamp_ms: last,
                events_json: decompress(&data)?,
            })
        })
        .collect()
}

/// Counts of one project, or of all with `None`.
pub(crate) async fn totals(client: &Client, project: Option<&Project>) -> Result<Totals, StoreError> {
    let condition = project.map_or_else(|| "1".to_string(), in_project);
    let sessions = match project {
        Some(project) => latest_sessions(project, None),
        // Every project's latest rows: the same argMax, grouped by project and id.
        None => "(SELECT argMax(deleted, version) AS s_deleted FROM sessions_v1 GROUP BY project, id)".to_string(),
    };
    let sql = format!(
        "SELECT
           (SELECT sum(span_count) FROM span_blocks_v1 WHERE {condition}),
           (SELECT count() FROM span_blocks_v1 WHERE {condition}),
           (SELECT count() FROM logs_v1 WHERE {condition}),
           (SELECT count() FROM metric_points_v1 WHERE {condition}),
           (SELECT count() FROM {sessions} WHERE s_deleted = 0),
           (SELECT count() FROM
             (SELECT project, session_id, seq FROM replay_chunks_v1 WHERE {condition}
              GROUP BY project, session_id, seq))
         FORMAT RowBinary"
    );
    let answer = client.execute(&sql).await?;
    let mut reader = RowReader::new(&answer);
    Ok(Totals {
        spans: reader.u64()?,
        span_blocks: reader.u64()?,
        logs: reader.u64()?,
        metric_points: reader.u64()?,
        sessions: reader.u64()?,
        replay_chunks: reader.u64()?,
    })
}

// Credentials.

/// A stored project name. Names are validated before they are stored; one that is not is skipped with a
/// warning, never read as another project.
fn project_of(name: &str) -> Option<Project> {
    Project::new(name).map_err(|error| tracing::warn!(%error, "a stored project name is invalid")).ok()
}

pub(crate) async fn project_exists(client: &Client, project: &Project) -> Result<bool, StoreError> {
    let sql = format!("SELECT count() FROM projects_v1 WHERE project = {} FORMAT RowBinary", quote(project.as_str()));
    Ok(RowReader::new(&client.execute(&sql).await?).u64()? > 0)
}

pub(crate) async fn projects(client: &Client) -> Result<Vec<ProjectInfo>, StoreError> {
    let sql = "SELECT project, min(created_ms) FROM projects_v1 GROUP BY project ORDER BY project FORMAT RowBinary";
    let rows = read_all(&client.execute(sql).await?, |r| Ok((r.string()?, r.i64()?)))?;
    Ok(rows
        .into_iter()
        .filter_map(|(name, created_at_ms)| Some(ProjectInfo { project: project_of(&name)?, created_at_ms }))
        .collect())
}

/// The latest row of each key matching `condition` (on the raw rows), as `k_`-prefixed columns.
fn latest_keys(condition: &str) -> String {
    format!(
        "(SELECT id AS k_id, argMax(hash, version) AS k_hash, argMax(project, version) AS k_project,
           argMax(kind, version) AS k_kind, argMax(name, version) AS k_name, argMax(prefix, version) AS k_prefix,
           argMax(allowed_origins, version) AS k_allowed_origins,
           argMax(bytes_per_second, version) AS k_bytes_per_second,
           argMax(requests_per_second, version) AS k_requests_per_second,
           argMax(created_ms, version) AS k_created_ms, argMax(revoked_ms, version) AS k_revoked_ms,
           argMax(last_used_ms, version) AS k_last_used_ms
         FROM api_keys_v1 WHERE {condition} GROUP BY id)"
    )
}

const KEY_COLUMNS: &str = "k_id, k_hash, k_project, k_kind, k_name, k_prefix, k_allowed_origins, k_bytes_per_second, \
                           k_requests_per_second, k_created_ms, k_revoked_ms, k_last_used_ms";

/// Keys matching `key_condition` (raw rows) and `outer_condition` (latest rows), with their last use.
async fn read_keys(client: &Client, key_condition: &str, outer_condition: &str) -> Result<Vec<ApiKey>, StoreError> {
    let sql = format!(
        "SELECT {KEY_COLUMNS} FROM {} WHERE {outer_condition} ORDER BY k_created_ms, k_id FORMAT RowBinary",
        latest_keys(key_condition)
    );
    let rows = read_all(&client.execute(&sql).await?, |r| {
        Ok((
            r.string()?,
            r.fixed::<32>()?,
            r.string()?,
            r.string()?,
            r.nullable(|r| r.string())?,
            r.string()?,
            r.strings()?,
            r.nullable(|r| r.u64())?,
            r.nullable(|r| r.u64())?,
            r.i64()?,
            r.nullable(|r| r.i64())?,
            r.nullable(|r| r.i64())?,
        ))
    })?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids = list(&rows.iter().map(|row| row.0.clone()).collect::<Vec<_>>());
    let sql =
        format!("SELECT id, max(last_used_ms) FROM api_key_usage_v1 WHERE id IN ({ids}) GROUP BY id FORMAT RowBinary");
    let used: HashMap<String, i64> =
        read_all(&client.execute(&sql).await?, |r| Ok((r.string()?, r.i64()?)))?.into_iter().collect();
    Ok(rows
        .into_iter()
        .filter_map(
            |(id, hash, project, kind, name, prefix, allowed_origins, bytes, requests, created, revoked, last)| {
                let last_used_ms = match (last, used.get(&id).copied()) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                Some(ApiKey {
                    project: project_of(&project)?,
                    kind: kind.parse::<KeyKind>().ok()?,
                    id,
                    name,
                    hash,
                    prefix,
                    allowed_origins,
                    bytes_per_second: bytes,
                    requests_per_second: requests,
                    created_at_ms: created,
                    revoked_at_ms: revoked,
                    last_used_ms,
                })
            },
        )
        .collect())
}

pub(crate) async fn keys(client: &Client, project: Option<&Project>) -> Result<Vec<ApiKey>, StoreError> {
    let outer = project.map_or_else(|| "1".to_string(), |project| format!("k_project = {}", quote(project.as_str())));
    read_keys(client, "1", &outer).await
}

pub(crate) async fn key_by_id(client: &Client, id: &str) -> Result<Option<ApiKey>, StoreError> {
    Ok(read_keys(client, &format!("id = {}", quote(id)), "1").await?.into_iter().next())
}

pub(crate) async fn key_by_hash(client: &Client, hash: &[u8; 32]) -> Result<Option<ApiKey>, StoreError> {
    // The ids that ever had this hash, then their latest rows, which must still have it.
    let hash = unhex(hash);
    let condition = format!("id GLOBAL IN (SELECT id FROM api_keys_v1 WHERE hash = {hash})");
    Ok(read_keys(client, &condition, &format!("k_hash = {hash}")).await?.into_iter().next())
}

async fn read_users(client: &Client, condition: &str) -> Result<Vec<User>, StoreError> {
    let sql = format!(
        "SELECT name, argMax(role, version), argMax(password_hash, version), argMax(created_ms, version),
           argMax(disabled, version)
         FROM users_v1 WHERE {condition} GROUP BY name ORDER BY name FORMAT RowBinary"
    );
    read_all(&client.execute(&sql).await?, |r| {
        Ok(User {
            name: r.string()?,
            // An unknown role reads as the lesser one.
            role: r.string()?.parse().unwrap_or(Role::Member),
            password_hash: r.string()?,
            created_at_ms: r.i64()?,
            disabled: r.u8()? != 0,
        })
    })
}

pub(crate) async fn user(client: &Client, name: &str) -> Result<Option<User>, StoreError> {
    Ok(read_users(client, &format!("name = {}", quote(name))).await?.into_iter().next())
}

pub(crate) async fn users(client: &Client) -> Result<Vec<User>, StoreError> {
    read_users(client, "1").await
}

pub(crate) async fn login_session(client: &Client, id_hash: &[u8; 32]) -> Result<Option<LoginSession>, StoreError> {
    let id = unhex(id_hash);
    let sql = format!(
        "SELECT argMax(user, version), argMax(csrf_token, version), argMax(created_ms, version),
           argMax(last_seen_ms, version), argMax(deleted, version)
         FROM login_sessions_v1 WHERE id_hash = {id} GROUP BY id_hash FORMAT RowBinary"
    );
    let rows = read_all(&client.execute(&sql).await?, |r| Ok((r.string()?, r.string()?, r.i64()?, r.i64()?, r.u8()?)))?;
    let Some((user, csrf_token, created_at_ms, last_seen_ms, deleted)) = rows.into_iter().next() else {
        return Ok(None);
    };
    if deleted != 0 {
        return Ok(None);
    }
    let sql = format!("SELECT max(last_seen_ms) FROM login_session_seen_v1 WHERE id_hash = {id} FORMAT RowBinary");
    let seen = RowReader::new(&client.execute(&sql).await?).i64()?;
    Ok(Some(LoginSession { id_hash: *id_hash, user, csrf_token, created_at_ms, last_seen_ms: last_seen_ms.max(seen) }))
}

pub(crate) async fn has_credentials(client: &Client) -> Result<bool, StoreError> {
    let sql = "SELECT
           (SELECT count() FROM (SELECT argMax(revoked_ms, version) AS revoked FROM api_keys_v1 GROUP BY id)
            WHERE isNull(revoked)),
           (SELECT count() FROM (SELECT name FROM users_v1 GROUP BY name))
         FORMAT RowBinary";
    let answer = client.execute(sql).await?;
    let mut reader = RowReader::new(&answer);
    Ok(reader.u64()? + reader.u64()? > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insight_filters_become_conditions_on_the_latest_derivation() {
        assert_eq!(wildcard_like("*://shop.test/50%_off*"), "%://shop.test/50\\%\\_off%");
        let filter = SessionFilter {
            signal: Some(SignalKind::Dead),
            url: Some("/a*".into()),
            clicked: Some("it's".into()),
            console_errors: Some(false),
            failed_requests: Some(true),
            failed_path: Some("/api/pay".into()),
            failed_status: Some(502),
            ..Default::default()
        };
        let (with, without) = insight_conditions(&filter);
        assert_eq!(with[0], "i_dead > 0");
        assert_eq!(with[1], "notEmpty(i_failed_paths)");
        assert_eq!(with[2], "arrayExists(u -> lower(u) LIKE lower('/a%'), i_urls)");
        assert!(with[3].contains("positionCaseInsensitive(c, 'it\\'s')"), "{}", with[3]);
        assert_eq!(with[4], "arrayExists((p, s) -> p = '/api/pay' AND s = 502, i_failed_paths, i_failed_statuses)");
        assert_eq!(without, vec!["i_console_errors = 1"]);
        assert_eq!(insight_conditions(&SessionFilter::default()), (vec![], vec![]));
    }
}
