//! Reads of the SQLite store. Each function runs on a pooled read connection. Data reads take the
//! project's id (from [`project_id`]; a name that was never written to reads as empty without a query)
//! and every statement filters by it.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use sessiontrace_model::ids::ShortId;
use sessiontrace_model::records::{LogRecord, MetricPoint, ReplayChunk};
use sessiontrace_model::signals::{SessionInsights, SignalCounts, SignalKind};
use sessiontrace_model::{ApiKey, KeyKind, LoginSession, Project, ProjectInfo, Role, Session, SessionKind, User};

use super::decompress;
use crate::blocks::decode_block;
use crate::{
    LogFilter, MetricFilter, SessionFilter, SessionPage, SessionStats, StoreError, Totals, TraceCatalog, TraceIndexRow,
    TraceSearch, TraceSummary, summarize_traces, wildcard_like,
};

const SESSION_COLUMNS: &str = "id, short_id, kind, name, user_json, attributes_json, tags_json, capture_json, \
                               started_ms, stopped_ms, saved_ms";

fn session_from_row(row: &Row<'_>) -> rusqlite::Result<Session> {
    let json = |index: usize| -> rusqlite::Result<serde_json::Value> {
        let text: String = row.get(index)?;
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    };
    let short_id: String = row.get(1)?;
    let kind: String = row.get(2)?;
    let tags: String = row.get(6)?;
    let capture: String = row.get(7)?;
    Ok(Session {
        id: row.get(0)?,
        short_id: ShortId::from_hex(&short_id).unwrap_or(ShortId([0; 4])),
        kind: SessionKind::parse(&kind).unwrap_or_default(),
        name: row.get(3)?,
        user: json(4)?,
        attributes: json(5)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        capture: serde_json::from_str(&capture).unwrap_or_default(),
        started_at_ms: row.get(8)?,
        stopped_at_ms: row.get(9)?,
        saved_at_ms: row.get(10)?,
    })
}

/// The id of a project in `projects_v1`; `None` when nothing was ever written to it.
pub(crate) fn project_id(connection: &Connection, project: &Project) -> Result<Option<i64>, StoreError> {
    Ok(connection
        .prepare_cached("SELECT id FROM projects_v1 WHERE name = ?1")?
        .query_row([project.as_str()], |row| row.get(0))
        .optional()?)
}

pub(crate) fn session(connection: &Connection, project_id: i64, key: &str) -> Result<Option<Session>, StoreError> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions_v2 WHERE project_id = ?1 AND (id = ?2 OR short_id = ?2)");
    Ok(connection.prepare_cached(&sql)?.query_row(params![project_id, key], session_from_row).optional()?)
}

pub(crate) fn session_stats(
    connection: &Connection,
    project_id: i64,
    session: &Session,
) -> Result<SessionStats, StoreError> {
    let keys = params![project_id, session.short_id.to_hex(), session.id];
    let traces: u64 = connection
        .prepare_cached(
            "SELECT COUNT(DISTINCT trace_id) FROM trace_index_v1 WHERE project_id = ?1 AND session_key IN (?2, ?3)",
        )?
        .query_row(keys, |row| row.get(0))?;
    let (spans, errors): (Option<u64>, Option<u64>) = connection
        .prepare_cached(
            "SELECT SUM(spans), SUM(errors) FROM session_summary_v2 WHERE project_id = ?1 AND session_key IN (?2, ?3)",
        )?
        .query_row(keys, |row| Ok((row.get(0)?, row.get(1)?)))?;
    let logs: u64 = connection
        .prepare_cached("SELECT COUNT(*) FROM logs_v1 WHERE project_id = ?1 AND session_key IN (?2, ?3)")?
        .query_row(keys, |row| row.get(0))?;
    let events: Option<u64> = connection
        .prepare_cached("SELECT SUM(event_count) FROM replay_chunks_v2 WHERE project_id = ?1 AND session_id = ?2")?
        .query_row(params![project_id, session.id], |row| row.get(0))?;
    let mut services: Vec<String> = connection
        .prepare_cached(
            "SELECT DISTINCT service FROM session_services_v2 WHERE project_id = ?1 AND session_key IN (?2, ?3)",
        )?
        .query_map(keys, |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    services.sort();
    let signals = connection
        .prepare_cached("SELECT rage, dead, error FROM session_insights_v1 WHERE project_id = ?1 AND session_id = ?2")?
        .query_row(params![project_id, session.id], |row| {
            Ok(SignalCounts { rage: row.get(0)?, dead: row.get(1)?, error: row.get(2)? })
        })
        .optional()?
        .unwrap_or_default();
    Ok(SessionStats {
        traces,
        spans: spans.unwrap_or(0),
        logs,
        events: events.unwrap_or(0),
        errors: errors.unwrap_or(0),
        services,
        signals: Some(signals),
    })
}

pub(crate) fn session_insights(
    connection: &Connection,
    project_id: i64,
    session_id: &str,
) -> Result<Option<SessionInsights>, StoreError> {
    let json: Option<String> = connection
        .prepare_cached("SELECT insights_json FROM session_insights_v1 WHERE project_id = ?1 AND session_id = ?2")?
        .query_row(params![project_id, session_id], |row| row.get(0))
        .optional()?;
    json.map(|text| serde_json::from_str(&text).map_err(|e| StoreError::Internal(format!("stored insights: {e}"))))
        .transpose()
}

pub(crate) fn list_sessions(
    connection: &Connection,
    project_id: i64,
    filter: &SessionFilter,
) -> Result<SessionPage, StoreError> {
    let mut conditions: Vec<&str> = Vec::new();
    // ?1 is always the project.
    let mut values: Vec<Value> = vec![Value::Integer(project_id)];
    conditions.push("s.project_id = ?1");
    let like = |text: &str| Value::Text(format!("%{}%", text.replace('%', "\\%").replace('_', "\\_")));
    if let Some(text) = filter.text.as_deref().filter(|t| !t.is_empty()) {
        conditions.push(
            "(s.name LIKE ?2 ESCAPE '\\' OR s.id = ?3 OR s.short_id = ?3 OR s.user_json LIKE ?2 ESCAPE '\\'
              OR s.tags_json LIKE ?2 ESCAPE '\\' OR s.attributes_json LIKE ?2 ESCAPE '\\')",
        );
        values.push(like(text));
        values.push(Value::Text(text.to_string()));
    }
    let mut sql_conditions: Vec<String> = conditions.iter().map(|c| c.to_string()).collect();
    let next = |values: &mut Vec<Value>, value: Value| {
        values.push(value);
        values.len()
    };
    if let Some(user) = filter.user.as_deref().filter(|t| !t.is_empty()) {
        let n = next(&mut values, like(user));
        sql_conditions.push(format!("s.user_json LIKE ?{n} ESCAPE '\\'"));
    }
    if let Some(service) = filter.service.as_deref().filter(|t| !t.is_empty()) {
        let n = next(&mut values, Value::Text(service.to_string()));
        sql_conditions.push(format!(
            "EXISTS (SELECT 1 FROM session_services_v2 v WHERE v.project_id = ?1 AND v.session_key IN (s.short_id, s.id)
             AND v.service = ?{n})"
        ));
    }
    match filter.has_error {
        Some(true) => sql_conditions.push(
            "EXISTS (SELECT 1 FROM session_summary_v2 m WHERE m.project_id = ?1 AND m.session_key IN (s.short_id, s.id)
             AND m.errors > 0)"
                .into(),
        ),
        Some(false) => sql_conditions.push(
            "NOT EXISTS (SELECT 1 FROM session_summary_v2 m WHERE m.project_id = ?1
             AND m.session_key IN (s.short_id, s.id) AND m.errors > 0)"
                .into(),
        ),
        None => {}
    }
    let fact = |kind: &str, condition: &str| {
        format!(
            "EXISTS (SELECT 1 FROM session_facts_v1 f WHERE f.project_id = ?1 AND f.session_id = s.id
             AND f.kind = '{kind}' AND {condition})"
        )
    };
    let insight = |condition: &str| {
        format!(
            "EXISTS (SELECT 1 FROM session_insights_v1 i WHERE i.project_id = ?1 AND i.session_id = s.id AND {condition})"
        )
    };
    if let Some(kind) = filter.signal {
        let column = match kind {
            SignalKind::Rage => "i.rage",
            SignalKind::Dead => "i.dead",
            SignalKind::Error => "i.error",
        };
        sql_conditions.push(insight(&format!("{column} > 0")));
    }
    for (flag, column) in [(filter.console_errors, "i.console_errors"), (filter.failed_requests, "i.failed_requests")] {
        match flag {
            Some(true) => sql_conditions.push(insight(&format!("{column} = 1"))),
            Some(false) => sql_conditions.push(format!("NOT {}", insight(&format!("{column} = 1")))),
            None => {}
        }
    }
    if let Some(url) = filter.url.as_deref() {
        let n = next(&mut values, Value::Text(wildcard_like(url)));
        sql_conditions.push(fact("url", &format!("f.value LIKE ?{n} ESCAPE '\\'")));
    }
    if let Some(clicked) = filter.clicked.as_deref() {
        let n = next(&mut values, like(clicked));
        sql_conditions
            .push(fact("click", &format!("(f.value LIKE ?{n} ESCAPE '\\' OR f.detail LIKE ?{n} ESCAPE '\\')")));
    }
    match (filter.failed_path.as_deref(), filter.failed_status) {
        (Some(path), Some(status)) => {
            let path_n = next(&mut values, Value::Text(path.to_string()));
            let status_n = next(&mut values, Value::Integer(status as i64));
            sql_conditions.push(fact("failed", &format!("f.value = ?{path_n} AND f.status = ?{status_n}")));
        }
        (Some(path), None) => {
            let n = next(&mut values, Value::Text(path.to_string()));
            sql_conditions.push(fact("failed", &format!("f.value = ?{n}")));
        }
        (None, Some(status)) => {
            let n = next(&mut values, Value::Integer(status as i64));
            sql_conditions.push(fact("failed", &format!("f.status = ?{n}")));
        }
        (None, None) => {}
    }
    if let Some(from) = filter.from_ms {
        let n = next(&mut values, Value::Integer(from));
        sql_conditions.push(format!("COALESCE(s.stopped_ms, 9223372036854775807) >= ?{n}"));
    }
    if let Some(to) = filter.to_ms {
        let n = next(&mut values, Value::Integer(to));
        sql_conditions.push(format!("s.started_ms <= ?{n}"));
    }
    let where_clause =
        if sql_conditions.is_empty() { String::new() } else { format!("WHERE {}", sql_conditions.join(" AND ")) };
    let total: u64 = connection
        .prepare(&format!("SELECT COUNT(*) FROM sessions_v2 s {where_clause}"))?
        .query_row(params_from_iter(values.iter()), |row| row.get(0))?;
    let limit = filter.limit.unwrap_or(50).min(1000) as i64;
    let offset = filter.offset.unwrap_or(0) as i64;
    let sql = format!(
        "SELECT {} FROM sessions_v2 s {where_clause} ORDER BY s.started_ms DESC, s.id LIMIT {limit} OFFSET {offset}",
        SESSION_COLUMNS.split(", ").map(|c| format!("s.{c}")).collect::<Vec<_>>().join(", ")
    );
    let sessions = connection
        .prepare(&sql)?
        .query_map(params_from_iter(values.iter()), session_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    let sessions = sessions
        .into_iter()
        .map(|session| {
            let stats = session_stats(connection, project_id, &session)?;
            Ok((session, stats))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(SessionPage { sessions, total })
}

pub(crate) fn session_traces(
    connection: &Connection,
    project_id: i64,
    session: &Session,
) -> Result<Vec<TraceSummary>, StoreError> {
    // A trace may be linked to the session by only some of its blocks (a `session.id` attribute on one
    // service's spans): summarize every block of every trace any block links.
    let mut statement = connection.prepare_cached(
        "SELECT trace_id, services, start_ns, end_ns, span_count, error_count, root_name, root_service
         FROM trace_index_v1 WHERE +project_id = ?1 AND trace_id IN
           (SELECT DISTINCT trace_id FROM trace_index_v1 WHERE project_id = ?1 AND session_key IN (?2, ?3))
         ORDER BY start_ns",
    )?;
    let rows = statement
        .query_map(params![project_id, session.short_id.to_hex(), session.id], |row| {
            let trace_id: Vec<u8> = row.get(0)?;
            let services: String = row.get(1)?;
            let root_name: Option<String> = row.get(6)?;
            let root_service: Option<String> = row.get(7)?;
            let Ok(trace_id) = <[u8; 16]>::try_from(trace_id.as_slice()) else { return Ok(None) };
            Ok(Some(TraceIndexRow {
                trace_id,
                services: services.split(',').map(str::to_string).collect(),
                start_unix_nano: row.get(2)?,
                end_unix_nano: row.get(3)?,
                span_count: row.get(4)?,
                error_count: row.get(5)?,
                root: root_name.zip(root_service),
            }))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(summarize_traces(rows.into_iter().flatten()))
}

/// (Lookups by trace id write `+project_id`: without it SQLite picks the (project_id, start_ns) index and
/// reads every row of the project, ~30 ms a trace at 10M spans, instead of the trace_id index.)
///
/// The blocks holding a trace: those its index entries name, plus `unindexed` block ids (entries the writer
/// could not write yet), in block order.
pub(crate) fn trace_blocks(
    connection: &Connection,
    project_id: i64,
    trace_id: &[u8; 16],
    unindexed: &[i64],
) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT b.id, b.data FROM span_blocks_v1 b
         WHERE b.id IN (SELECT block_id FROM trace_index_v1 WHERE trace_id = ?1 AND +project_id = ?2)
         ORDER BY b.id",
    )?;
    let mut compressed = statement
        .query_map(params![&trace_id[..], project_id], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    if !unindexed.is_empty() {
        let mut block = connection.prepare_cached("SELECT data FROM span_blocks_v1 WHERE id = ?1")?;
        for &id in unindexed {
            if !compressed.iter().any(|(known, _)| *known == id) {
                compressed.push((id, block.query_row(params![id], |row| row.get(0))?));
            }
        }
        compressed.sort_unstable_by_key(|(id, _)| *id);
    }
    compressed.iter().map(|(_, data)| decode_block(data)).collect()
}

fn index_row(row: &Row<'_>) -> rusqlite::Result<Option<TraceIndexRow>> {
    let trace_id: Vec<u8> = row.get(0)?;
    let services: String = row.get(1)?;
    let root_name: Option<String> = row.get(6)?;
    let root_service: Option<String> = row.get(7)?;
    let Ok(trace_id) = <[u8; 16]>::try_from(trace_id.as_slice()) else { return Ok(None) };
    Ok(Some(TraceIndexRow {
        trace_id,
        services: services.split(',').map(str::to_string).collect(),
        start_unix_nano: row.get(2)?,
        end_unix_nano: row.get(3)?,
        span_count: row.get(4)?,
        error_count: row.get(5)?,
        root: root_name.zip(root_service),
    }))
}

/// The window conditions on index rows: rows that overlap `[from, to]`.
fn index_window(conditions: &mut Conditions, from: Option<i64>, to: Option<i64>) {
    if let Some(to) = to {
        let p = conditions.bind(Value::Integer(to));
        conditions.add(format!("start_ns <= {p}"));
    }
    if let Some(from) = from {
        let p = conditions.bind(Value::Integer(from));
        conditions.add(format!("end_ns >= {p}"));
    }
}

pub(crate) fn search_traces(
    connection: &Connection,
    project_id: i64,
    search: &TraceSearch,
) -> Result<Vec<TraceSummary>, StoreError> {
    // Candidates: the index rows of the window newest first (the (project_id, start_ns) index, no
    // grouping of the whole window), each row marked with the filters it satisfies; a trace is a candidate
    // once its rows together satisfy them all (a trace's blocks may name its services, root and errors on
    // different rows). The scan stops at enough candidates, so a search that finds its traces among the
    // newest costs little however much the window holds. The candidates' rows are then merged and checked
    // exactly.
    let mut conditions = Conditions::default();
    let project = conditions.bind(Value::Integer(project_id));
    conditions.add(format!("project_id = {project}"));
    index_window(&mut conditions, search.from_unix_nano, search.to_unix_nano);
    let mut flags = Vec::new();
    if let Some(service) = &search.service {
        let p = conditions.bind(Value::Text(format!(",{service},")));
        flags.push(format!("instr(',' || services || ',', {p}) > 0"));
    }
    if let Some(root_service) = &search.root_service {
        let p = conditions.bind(Value::Text(root_service.clone()));
        flags.push(format!("root_service IS {p}"));
    }
    if let Some(root_name) = &search.root_name {
        let p = conditions.bind(Value::Text(root_name.clone()));
        flags.push(format!("root_name IS {p}"));
    }
    if search.has_error == Some(true) {
        flags.push("error_count > 0".to_string());
    }
    // Rows that satisfy none of the filters cannot make a trace a candidate.
    if !flags.is_empty() {
        conditions.add(format!("({})", flags.join(" OR ")));
    }
    let columns: String = flags.iter().map(|flag| format!(", {flag}")).collect();
    let sql =
        format!("SELECT trace_id{columns} FROM trace_index_v1 {} ORDER BY start_ns DESC", conditions.where_clause());
    // The trace duration is known only after merging: with a duration filter, read up to the cap.
    let wanted = if search.min_duration_nanos.is_some() || search.max_duration_nanos.is_some() {
        TraceSearch::SCAN_CAP as usize
    } else {
        search.effective_limit()
    };
    let all = (1u32 << flags.len()) - 1;
    let mut seen: std::collections::HashMap<[u8; 16], u32> = std::collections::HashMap::new();
    let mut candidates: Vec<[u8; 16]> = Vec::new();
    let mut statement = connection.prepare(&sql)?;
    let mut rows = statement.query(params_from_iter(conditions.values.iter()))?;
    while candidates.len() < wanted
        && let Some(row) = rows.next()?
    {
        let Ok(trace_id) = <[u8; 16]>::try_from(row.get::<_, Vec<u8>>(0)?.as_slice()) else { continue };
        let mut satisfied = 0u32;
        for bit in 0..flags.len() {
            if row.get::<_, bool>(bit + 1)? {
                satisfied |= 1 << bit;
            }
        }
        // A trace becomes a candidate when its rows so far first satisfy every filter.
        let complete = match seen.entry(trace_id) {
            std::collections::hash_map::Entry::Vacant(entry) => *entry.insert(satisfied) == all,
            std::collections::hash_map::Entry::Occupied(mut entry) => {
                let was = *entry.get();
                *entry.get_mut() |= satisfied;
                was != all && *entry.get() == all
            }
        };
        if complete {
            candidates.push(trace_id);
        }
    }
    drop(rows);
    let mut merged = Vec::new();
    for chunk in candidates.chunks(500) {
        let mut conditions = Conditions::default();
        let project = conditions.bind(Value::Integer(project_id));
        let ids: Vec<String> = chunk.iter().map(|id| conditions.bind(Value::Blob(id.to_vec()))).collect();
        let sql = format!(
            "SELECT trace_id, services, start_ns, end_ns, span_count, error_count, root_name, root_service
             FROM trace_index_v1 WHERE +project_id = {project} AND trace_id IN ({}) ORDER BY start_ns, block_id",
            ids.join(", ")
        );
        let mut statement = connection.prepare(&sql)?;
        let rows = statement.query_map(params_from_iter(conditions.values.iter()), index_row)?;
        for row in rows {
            merged.extend(row?);
        }
    }
    Ok(search.finish(summarize_traces(merged)))
}

pub(crate) fn trace_catalog(
    connection: &Connection,
    project_id: i64,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<TraceCatalog, StoreError> {
    let mut conditions = Conditions::default();
    let project = conditions.bind(Value::Integer(project_id));
    conditions.add(format!("project_id = {project}"));
    index_window(&mut conditions, from, to);
    let cap = TraceCatalog::CAP;
    let where_clause = conditions.where_clause();
    let mut services = std::collections::BTreeSet::new();
    let mut statement =
        connection.prepare(&format!("SELECT DISTINCT services FROM trace_index_v1 {where_clause} LIMIT {cap}"))?;
    for joined in statement.query_map(params_from_iter(conditions.values.iter()), |row| row.get::<_, String>(0))? {
        services.extend(joined?.split(',').filter(|s| !s.is_empty()).map(str::to_string));
    }
    let mut statement = connection.prepare(&format!(
        "SELECT DISTINCT root_service, root_name FROM trace_index_v1 {where_clause}
           AND root_service IS NOT NULL AND root_name IS NOT NULL ORDER BY 1, 2 LIMIT {cap}"
    ))?;
    let root_operations = statement
        .query_map(params_from_iter(conditions.values.iter()), |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<Vec<(String, String)>, _>>()?;
    Ok(TraceCatalog { services: services.into_iter().take(cap).collect(), root_operations })
}

pub(crate) fn trace_session_key(
    connection: &Connection,
    project_id: i64,
    trace_id: &[u8; 16],
) -> Result<Option<String>, StoreError> {
    Ok(connection
        .prepare_cached(
            "SELECT session_key FROM trace_index_v1 WHERE trace_id = ?1 AND +project_id = ?2 AND +session_key IS NOT NULL
             LIMIT 1",
        )?
        .query_row(params![&trace_id[..], project_id], |row| row.get(0))
        .optional()?)
}

/// WHERE conditions with numbered parameters, for queries whose filters are all optional.
#[derive(Default)]
struct Conditions {
    conditions: Vec<String>,
    values: Vec<Value>,
}

impl Conditions {
    /// Binds a value and returns its placeholder (`?N`).
    fn bind(&mut self, value: Value) -> String {
        self.values.push(value);
        format!("?{}", self.values.len())
    }

    /// Placeholders of several values, comma-separated.
    fn bind_all(&mut self, values: impl IntoIterator<Item = String>) -> String {
        values.into_iter().map(|v| self.bind(Value::Text(v))).collect::<Vec<_>>().join(", ")
    }

    fn add(&mut self, condition: String) {
        self.conditions.push(condition);
    }

    /// `time_ns` within the optional bounds.
    fn time_window(&mut self, from: Option<i64>, to: Option<i64>) {
        if let Some(from) = from {
            let p = self.bind(Value::Integer(from));
            self.add(format!("time_ns >= {p}"));
        }
        if let Some(to) = to {
            let p = self.bind(Value::Integer(to));
            self.add(format!("time_ns <= {p}"));
        }
    }

    fn where_clause(&self) -> String {
        if self.conditions.is_empty() { String::new() } else { format!("WHERE {}", self.conditions.join(" AND ")) }
    }
}

pub(crate) fn logs(connection: &Connection, project_id: i64, filter: &LogFilter) -> Result<Vec<LogRecord>, StoreError> {
    let mut conditions = Conditions::default();
    let project = conditions.bind(Value::Integer(project_id));
    conditions.add(format!("project_id = {project}"));
    if let Some(trace_id) = filter.trace_id {
        let p = conditions.bind(Value::Blob(trace_id.to_vec()));
        conditions.add(format!("trace_id = {p}"));
    }
    if !filter.session_keys.is_empty() {
        // Logs linked to the session directly, or through a trace that belongs to it.
        let list = conditions.bind_all(filter.session_keys.iter().cloned());
        conditions.add(format!(
            "(session_key IN ({list}) OR trace_id IN
               (SELECT trace_id FROM trace_index_v1 WHERE project_id = {project} AND session_key IN ({list})))"
        ));
    }
    if let Some(service) = &filter.service {
        let p = conditions.bind(Value::Text(service.clone()));
        conditions.add(format!("service = {p}"));
    }
    if let Some(text) = &filter.text {
        let p = conditions.bind(Value::Text(format!("%{text}%")));
        conditions.add(format!("body LIKE {p}"));
    }
    conditions.time_window(filter.from_unix_nano, filter.to_unix_nano);
    let where_clause = conditions.where_clause();
    let limit = filter.limit.unwrap_or(1000).min(100_000);
    let sql = format!(
        "SELECT time_ns, trace_id, span_id, session_key, service, severity_number, severity_text, body,
         attributes_json, resource_json FROM logs_v1 {where_clause} ORDER BY time_ns, id LIMIT {limit}"
    );
    let records = connection
        .prepare(&sql)?
        .query_map(params_from_iter(conditions.values.iter()), |row| {
            let trace_id: Option<Vec<u8>> = row.get(1)?;
            let span_id: Option<Vec<u8>> = row.get(2)?;
            Ok(LogRecord {
                time_unix_nano: row.get(0)?,
                trace_id: trace_id.and_then(|v| v.as_slice().try_into().ok()),
                span_id: span_id.and_then(|v| v.as_slice().try_into().ok()),
                session_key: row.get(3)?,
                service: row.get(4)?,
                severity_number: row.get(5)?,
                severity_text: row.get(6)?,
                body: row.get(7)?,
                attributes_json: row.get(8)?,
                resource_json: row.get(9)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(records)
}

pub(crate) fn metric_points(
    connection: &Connection,
    project_id: i64,
    filter: &MetricFilter,
) -> Result<Vec<MetricPoint>, StoreError> {
    let mut conditions = Conditions::default();
    let project = conditions.bind(Value::Integer(project_id));
    conditions.add(format!("project_id = {project}"));
    if !filter.services.is_empty() {
        let list = conditions.bind_all(filter.services.iter().cloned());
        conditions.add(format!("service IN ({list})"));
    }
    if let Some(name) = &filter.name {
        let p = conditions.bind(Value::Text(name.clone()));
        conditions.add(format!("name = {p}"));
    }
    conditions.time_window(filter.from_unix_nano, filter.to_unix_nano);
    let where_clause = conditions.where_clause();
    let limit = filter.limit.unwrap_or(10_000).min(100_000);
    let sql = format!(
        "SELECT time_ns, service, name, kind, unit, value, attributes_json, detail_json FROM metric_points_v1
         {where_clause} ORDER BY time_ns LIMIT {limit}"
    );
    let points = connection
        .prepare(&sql)?
        .query_map(params_from_iter(conditions.values.iter()), |row| {
            Ok(MetricPoint {
                time_unix_nano: row.get(0)?,
                service: row.get(1)?,
                name: row.get(2)?,
                kind: row.get(3)?,
                unit: row.get(4)?,
                value: row.get(5)?,
                attributes_json: row.get(6)?,
                detail_json: row.get(7)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(points)
}

pub(crate) fn replay_chunks(
    connection: &Connection,
    project_id: i64,
    session_id: &str,
) -> Result<Vec<ReplayChunk>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT seq, event_count, first_ms, last_ms, data FROM replay_chunks_v2 WHERE project_id = ?1 AND session_id = ?2
         ORDER BY seq",
    )?;
    let rows = statement
        .query_map(params![project_id, session_id], |row| {
            Ok((row.get::<_, i64>(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get::<_, Vec<u8>>(4)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(seq, event_count, first, last, data)| {
            Ok(ReplayChunk {
                session_id: session_id.to_string(),
                seq: seq as u64,
                event_count,
                first_timestamp_ms: first,
                last_timestamp_ms: last,
                events_json: decompress(&data)?,
            })
        })
        .collect()
}

/// Counts of one project (`Some(id)`) or of all (`None`).
pub(crate) fn totals(connection: &Connection, project_id: Option<i64>) -> Result<Totals, StoreError> {
    let count = |sql: &str| -> Result<u64, StoreError> {
        let sql = match project_id {
            Some(_) => format!("{sql} WHERE project_id = ?1"),
            None => sql.to_string(),
        };
        let mut statement = connection.prepare_cached(&sql)?;
        let value = match project_id {
            Some(id) => statement.query_row([id], |row| row.get::<_, Option<u64>>(0))?,
            None => statement.query_row([], |row| row.get::<_, Option<u64>>(0))?,
        };
        Ok(value.unwrap_or(0))
    };
    Ok(Totals {
        spans: count("SELECT SUM(span_count) FROM span_blocks_v1")?,
        span_blocks: count("SELECT COUNT(*) FROM span_blocks_v1")?,
        logs: count("SELECT COUNT(*) FROM logs_v1")?,
        metric_points: count("SELECT COUNT(*) FROM metric_points_v1")?,
        sessions: count("SELECT COUNT(*) FROM sessions_v2")?,
        replay_chunks: count("SELECT COUNT(*) FROM replay_chunks_v2")?,
    })
}

// Credentials.

/// A stored project name. Names are validated before they are stored; one that is not (edited by hand)
/// is skipped with a warning, never read as another project.
fn project_of(name: &str) -> Option<Project> {
    Project::new(name).map_err(|error| tracing::warn!(%error, "a stored project name is invalid")).ok()
}

pub(crate) fn projects(connection: &Connection) -> Result<Vec<ProjectInfo>, StoreError> {
    let rows = connection
        .prepare_cached("SELECT name, created_ms FROM projects_v1 WHERE created_ms IS NOT NULL ORDER BY name")?
        .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows
        .into_iter()
        .filter_map(|(name, created_at_ms)| Some(ProjectInfo { project: project_of(&name)?, created_at_ms }))
        .collect())
}

const KEY_COLUMNS: &str = "k.id, k.hash, p.name, k.kind, k.name, k.prefix, k.allowed_origins_json, k.bytes_per_second, \
                           k.requests_per_second, k.created_ms, k.revoked_ms, k.last_used_ms";

fn key_from_row(row: &Row<'_>) -> rusqlite::Result<Option<ApiKey>> {
    let hash: Vec<u8> = row.get(1)?;
    let kind: String = row.get(3)?;
    let origins: String = row.get(6)?;
    let project: String = row.get(2)?;
    let (Ok(hash), Ok(kind), Some(project)) =
        (<[u8; 32]>::try_from(hash.as_slice()), kind.parse::<KeyKind>(), project_of(&project))
    else {
        return Ok(None);
    };
    Ok(Some(ApiKey {
        id: row.get(0)?,
        project,
        kind,
        name: row.get(4)?,
        hash,
        prefix: row.get(5)?,
        allowed_origins: serde_json::from_str(&origins).unwrap_or_default(),
        bytes_per_second: row.get::<_, Option<i64>>(7)?.map(|n| n as u64),
        requests_per_second: row.get::<_, Option<i64>>(8)?.map(|n| n as u64),
        created_at_ms: row.get(9)?,
        revoked_at_ms: row.get(10)?,
        last_used_ms: row.get(11)?,
    }))
}

pub(crate) fn keys(connection: &Connection, project: Option<&Project>) -> Result<Vec<ApiKey>, StoreError> {
    let sql = format!(
        "SELECT {KEY_COLUMNS} FROM api_keys_v1 k JOIN projects_v1 p ON p.id = k.project_id
         WHERE ?1 IS NULL OR p.name = ?1 ORDER BY k.created_ms, k.id"
    );
    let keys = connection
        .prepare_cached(&sql)?
        .query_map([project.map(Project::as_str)], key_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(keys.into_iter().flatten().collect())
}

pub(crate) fn key_by_hash(connection: &Connection, hash: &[u8; 32]) -> Result<Option<ApiKey>, StoreError> {
    let sql =
        format!("SELECT {KEY_COLUMNS} FROM api_keys_v1 k JOIN projects_v1 p ON p.id = k.project_id WHERE k.hash = ?1");
    Ok(connection.prepare_cached(&sql)?.query_row([&hash[..]], key_from_row).optional()?.flatten())
}

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    let role: String = row.get(1)?;
    Ok(User {
        name: row.get(0)?,
        // An unknown role reads as the lesser one.
        role: role.parse().unwrap_or(Role::Member),
        password_hash: row.get(2)?,
        created_at_ms: row.get(3)?,
        disabled: row.get(4)?,
    })
}

pub(crate) fn user(connection: &Connection, name: &str) -> Result<Option<User>, StoreError> {
    Ok(connection
        .prepare_cached("SELECT name, role, password_hash, created_ms, disabled FROM users_v1 WHERE name = ?1")?
        .query_row([name], user_from_row)
        .optional()?)
}

pub(crate) fn users(connection: &Connection) -> Result<Vec<User>, StoreError> {
    Ok(connection
        .prepare_cached("SELECT name, role, password_hash, created_ms, disabled FROM users_v1 ORDER BY name")?
        .query_map([], user_from_row)?
        .collect::<Result<Vec<_>, _>>()?)
}

pub(crate) fn login_session(connection: &Connection, id_hash: &[u8; 32]) -> Result<Option<LoginSession>, StoreError> {
    Ok(connection
        .prepare_cached(
            "SELECT user_name, csrf_token, created_ms, last_seen_ms FROM login_sessions_v1 WHERE id_hash = ?1",
        )?
        .query_row([&id_hash[..]], |row| {
            Ok(LoginSession {
                id_hash: *id_hash,
                user: row.get(0)?,
                csrf_token: row.get(1)?,
                created_at_ms: row.get(2)?,
                last_seen_ms: row.get(3)?,
            })
        })
        .optional()?)
}

pub(crate) fn has_credentials(connection: &Connection) -> Result<bool, StoreError> {
    Ok(connection
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM api_keys_v1 WHERE revoked_ms IS NULL) OR EXISTS (SELECT 1 FROM users_v1)",
        )?
        .query_row([], |row| row.get(0))?)
}
