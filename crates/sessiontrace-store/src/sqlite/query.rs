//! Reads of the SQLite store. Each function runs on a pooled read connection.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use sessiontrace_model::ids::ShortId;
use sessiontrace_model::records::{LogRecord, MetricPoint, ReplayChunk};
use sessiontrace_model::{Session, SessionKind};

use super::decompress;
use crate::{
    LogFilter, MetricFilter, SessionFilter, SessionPage, SessionStats, StoreError, Totals, TraceIndexRow, TraceSummary,
    summarize_traces,
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

pub(crate) fn session(connection: &Connection, key: &str) -> Result<Option<Session>, StoreError> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions_v1 WHERE id = ?1 OR short_id = ?1");
    Ok(connection.prepare_cached(&sql)?.query_row([key], session_from_row).optional()?)
}

pub(crate) fn session_stats(connection: &Connection, session: &Session) -> Result<SessionStats, StoreError> {
    let keys = params![session.short_id.to_hex(), session.id];
    let traces: u64 = connection
        .prepare_cached("SELECT COUNT(DISTINCT trace_id) FROM trace_index_v1 WHERE session_key IN (?1, ?2)")?
        .query_row(keys, |row| row.get(0))?;
    let (spans, errors): (Option<u64>, Option<u64>) = connection
        .prepare_cached("SELECT SUM(spans), SUM(errors) FROM session_summary_v1 WHERE session_key IN (?1, ?2)")?
        .query_row(keys, |row| Ok((row.get(0)?, row.get(1)?)))?;
    let logs: u64 = connection
        .prepare_cached("SELECT COUNT(*) FROM logs_v1 WHERE session_key IN (?1, ?2)")?
        .query_row(keys, |row| row.get(0))?;
    let events: Option<u64> = connection
        .prepare_cached("SELECT SUM(event_count) FROM replay_chunks_v1 WHERE session_id = ?1")?
        .query_row([&session.id], |row| row.get(0))?;
    let mut services: Vec<String> = connection
        .prepare_cached("SELECT DISTINCT service FROM session_services_v1 WHERE session_key IN (?1, ?2)")?
        .query_map(keys, |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    services.sort();
    Ok(SessionStats {
        traces,
        spans: spans.unwrap_or(0),
        logs,
        events: events.unwrap_or(0),
        errors: errors.unwrap_or(0),
        services,
    })
}

pub(crate) fn list_sessions(connection: &Connection, filter: &SessionFilter) -> Result<SessionPage, StoreError> {
    let mut conditions: Vec<&str> = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    let like = |text: &str| Value::Text(format!("%{}%", text.replace('%', "\\%").replace('_', "\\_")));
    if let Some(text) = filter.text.as_deref().filter(|t| !t.is_empty()) {
        conditions.push(
            "(s.name LIKE ?1 ESCAPE '\\' OR s.id = ?2 OR s.short_id = ?2 OR s.user_json LIKE ?1 ESCAPE '\\'
              OR s.tags_json LIKE ?1 ESCAPE '\\' OR s.attributes_json LIKE ?1 ESCAPE '\\')",
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
            "EXISTS (SELECT 1 FROM session_services_v1 v WHERE v.session_key IN (s.short_id, s.id) AND v.service = ?{n})"
        ));
    }
    match filter.has_error {
        Some(true) => sql_conditions.push(
            "EXISTS (SELECT 1 FROM session_summary_v1 m WHERE m.session_key IN (s.short_id, s.id) AND m.errors > 0)"
                .into(),
        ),
        Some(false) => sql_conditions.push(
            "NOT EXISTS (SELECT 1 FROM session_summary_v1 m WHERE m.session_key IN (s.short_id, s.id) AND m.errors > 0)"
                .into(),
        ),
        None => {}
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
        .prepare(&format!("SELECT COUNT(*) FROM sessions_v1 s {where_clause}"))?
        .query_row(params_from_iter(values.iter()), |row| row.get(0))?;
    let limit = filter.limit.unwrap_or(50).min(1000) as i64;
    let offset = filter.offset.unwrap_or(0) as i64;
    let sql = format!(
        "SELECT {} FROM sessions_v1 s {where_clause} ORDER BY s.started_ms DESC, s.id LIMIT {limit} OFFSET {offset}",
        SESSION_COLUMNS.split(", ").map(|c| format!("s.{c}")).collect::<Vec<_>>().join(", ")
    );
    let sessions = connection
        .prepare(&sql)?
        .query_map(params_from_iter(values.iter()), session_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    let sessions = sessions
        .into_iter()
        .map(|session| {
            let stats = session_stats(connection, &session)?;
            Ok((session, stats))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(SessionPage { sessions, total })
}

pub(crate) fn session_traces(connection: &Connection, session: &Session) -> Result<Vec<TraceSummary>, StoreError> {
    // A trace may be linked to the session by only some of its blocks (a `session.id` attribute on one
    // service's spans): summarize every block of every trace any block links.
    let mut statement = connection.prepare_cached(
        "SELECT trace_id, services, start_ns, end_ns, span_count, error_count, root_name, root_service
         FROM trace_index_v1 WHERE trace_id IN
           (SELECT DISTINCT trace_id FROM trace_index_v1 WHERE session_key IN (?1, ?2))
         ORDER BY start_ns",
    )?;
    let rows = statement
        .query_map(params![session.short_id.to_hex(), session.id], |row| {
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

pub(crate) fn trace_blocks(connection: &Connection, trace_id: &[u8; 16]) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT b.data FROM span_blocks_v1 b WHERE b.id IN (SELECT block_id FROM trace_index_v1 WHERE trace_id = ?1)
         ORDER BY b.id",
    )?;
    let compressed =
        statement.query_map([&trace_id[..]], |row| row.get::<_, Vec<u8>>(0))?.collect::<Result<Vec<_>, _>>()?;
    compressed.iter().map(|data| decompress(data)).collect()
}

pub(crate) fn trace_session_key(connection: &Connection, trace_id: &[u8; 16]) -> Result<Option<String>, StoreError> {
    Ok(connection
        .prepare_cached(
            "SELECT session_key FROM trace_index_v1 WHERE trace_id = ?1 AND session_key IS NOT NULL LIMIT 1",
        )?
        .query_row([&trace_id[..]], |row| row.get(0))
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

pub(crate) fn logs(connection: &Connection, filter: &LogFilter) -> Result<Vec<LogRecord>, StoreError> {
    let mut conditions = Conditions::default();
    if let Some(trace_id) = filter.trace_id {
        let p = conditions.bind(Value::Blob(trace_id.to_vec()));
        conditions.add(format!("trace_id = {p}"));
    }
    if !filter.session_keys.is_empty() {
        // Logs linked to the session directly, or through a trace that belongs to it.
        let list = conditions.bind_all(filter.session_keys.iter().cloned());
        conditions.add(format!(
            "(session_key IN ({list}) OR trace_id IN (SELECT trace_id FROM trace_index_v1 WHERE session_key IN ({list})))"
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

pub(crate) fn metric_points(connection: &Connection, filter: &MetricFilter) -> Result<Vec<MetricPoint>, StoreError> {
    let mut conditions = Conditions::default();
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

pub(crate) fn replay_chunks(connection: &Connection, session_id: &str) -> Result<Vec<ReplayChunk>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT seq, event_count, first_ms, last_ms, data FROM replay_chunks_v1 WHERE session_id = ?1 ORDER BY seq",
    )?;
    let rows = statement
        .query_map([session_id], |row| {
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

pub(crate) fn totals(connection: &Connection) -> Result<Totals, StoreError> {
    let count = |sql: &str| -> Result<u64, StoreError> {
        Ok(connection.prepare_cached(sql)?.query_row([], |row| row.get::<_, Option<u64>>(0))?.unwrap_or(0))
    };
    Ok(Totals {
        spans: count("SELECT SUM(span_count) FROM span_blocks_v1")?,
        span_blocks: count("SELECT COUNT(*) FROM span_blocks_v1")?,
        logs: count("SELECT COUNT(*) FROM logs_v1")?,
        metric_points: count("SELECT COUNT(*) FROM metric_points_v1")?,
        sessions: count("SELECT COUNT(*) FROM sessions_v1")?,
        replay_chunks: count("SELECT COUNT(*) FROM replay_chunks_v1")?,
    })
}
