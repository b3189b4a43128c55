//! Reads of the ClickHouse store. Every statement asks for `FORMAT RowBinary` and is decoded with
//! [`RowReader`]. Subqueries use `GLOBAL IN`, so the same SQL works on plain tables and on Distributed
//! tables over several shards. Values are pasted into SQL only as escaped literals ([`quote`], [`unhex`]):
//! the 18.16 HTTP interface has no query parameters.

use std::collections::HashMap;

use sessiontrace_model::ids::ShortId;
use sessiontrace_model::records::{LogRecord, MetricPoint, ReplayChunk};
use sessiontrace_model::{Session, SessionKind};
use sessiontrace_store::{
    LogFilter, MetricFilter, SessionFilter, SessionPage, SessionStats, StoreError, Totals, TraceIndexRow, TraceSummary,
    summarize_traces,
};

use crate::client::Client;
use crate::decompress;
use crate::rowbinary::{RowReader, quote, unhex};

/// The latest row of every session (`argMax` over `version`), hidden when marked deleted. Aliases carry a
/// `s_` prefix: ClickHouse refuses an alias equal to the column inside its own aggregate.
fn latest_sessions(inner_where: &str) -> String {
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

pub(crate) async fn session(client: &Client, key: &str) -> Result<Option<Session>, StoreError> {
    let key = quote(key);
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM {} WHERE s_deleted = 0 ORDER BY s_created_ns, s_id LIMIT 1 FORMAT RowBinary",
        latest_sessions(&format!("WHERE id = {key} OR short_id = {key}"))
    );
    Ok(read_all(&client.execute(&sql).await?, read_session)?.into_iter().next())
}

/// Sessions (not deleted) that hold `id` or `short_id`, with their first-insert time: who owns a key.
pub(crate) async fn owners(client: &Client, id: &str, short_id: &str) -> Result<Vec<(String, u64)>, StoreError> {
    let sql = format!(
        "SELECT s_id, s_created_ns FROM {} WHERE s_deleted = 0 ORDER BY s_created_ns, s_id FORMAT RowBinary",
        latest_sessions(&format!("WHERE id = {} OR short_id = {}", quote(id), quote(short_id)))
    );
    read_all(&client.execute(&sql).await?, |r| Ok((r.string()?, r.u64()?)))
}

/// Stats of several sessions at once (three queries for a whole page).
pub(crate) async fn sessions_stats(client: &Client, sessions: &[Session]) -> Result<Vec<SessionStats>, StoreError> {
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
         FROM session_traces_v1 WHERE session_key IN ({keys}) GROUP BY session_key, trace_id FORMAT RowBinary"
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
        "SELECT session_key, count() FROM logs_v1 WHERE session_key IN ({keys}) GROUP BY session_key FORMAT RowBinary"
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
            WHERE session_id IN ({ids}) GROUP BY session_id, seq)
         GROUP BY session_id FORMAT RowBinary"
    );
    for (id, events) in read_all(&client.execute(&sql).await?, |r| Ok((r.string()?, r.u64()?)))? {
        if let Some(&slot) = owner.get(&id) {
            stats[slot].events += events;
        }
    }
    for (slot, entry) in stats.iter_mut().enumerate() {
        entry.traces = traces[slot].len() as u64;
        entry.services.sort();
    }
    Ok(stats)
}

pub(crate) async fn list_sessions(client: &Client, filter: &SessionFilter) -> Result<SessionPage, StoreError> {
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
        let linked = format!("(SELECT session_key FROM session_traces_v1 WHERE has(services, {}))", quote(service));
        conditions.push(format!("(s_id GLOBAL IN {linked} OR s_short_id GLOBAL IN {linked})"));
    }
    if let Some(has_error) = filter.has_error {
        let failing = "(SELECT session_key FROM session_traces_v1 WHERE error_count > 0)";
        let failed = format!("(s_id GLOBAL IN {failing} OR s_short_id GLOBAL IN {failing})");
        conditions.push(if has_error { failed } else { format!("NOT {failed}") });
    }
    if let Some(from) = filter.from_ms {
        conditions.push(format!("ifNull(s_stopped_ms, toInt64(9223372036854775807)) >= {from}"));
    }
    if let Some(to) = filter.to_ms {
        conditions.push(format!("s_started_ms <= {to}"));
    }
    let where_clause = conditions.join(" AND ");
    let source = latest_sessions("");
    let sql = format!("SELECT count() FROM {source} WHERE {where_clause} FORMAT RowBinary");
    let total = RowReader::new(&client.execute(&sql).await?).u64()?;
    let limit = filter.limit.unwrap_or(50).min(1000);
    let offset = filter.offset.unwrap_or(0);
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM {source} WHERE {where_clause} ORDER BY s_started_ms DESC, s_id
         LIMIT {offset}, {limit} FORMAT RowBinary"
    );
    let sessions = read_all(&client.execute(&sql).await?, read_session)?;
    let stats = sessions_stats(client, &sessions).await?;
    Ok(SessionPage { sessions: sessions.into_iter().zip(stats).collect(), total })
}

pub(crate) async fn session_traces(client: &Client, session: &Session) -> Result<Vec<TraceSummary>, StoreError> {
    // A trace may be linked to the session by only some of its blocks (a `session.id` attribute on one
    // service's spans): summarize every block of every trace any block links.
    let keys = list(&[session.short_id.to_hex(), session.id.clone()]);
    let sql = format!(
        "SELECT trace_id, services, start_ns, end_ns, span_count, error_count, root_name, root_service
         FROM trace_index_v1 WHERE trace_id GLOBAL IN (SELECT trace_id FROM session_traces_v1 WHERE session_key IN ({keys}))
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

pub(crate) async fn trace_blocks(client: &Client, trace_id: &[u8; 16]) -> Result<Vec<Vec<u8>>, StoreError> {
    let sql = format!(
        "SELECT data FROM span_blocks_v1
         WHERE block_id GLOBAL IN (SELECT block_id FROM trace_index_v1 WHERE trace_id = {})
         ORDER BY block_id FORMAT RowBinary",
        unhex(trace_id)
    );
    let compressed = read_all(&client.execute(&sql).await?, |r| r.bytes())?;
    compressed.iter().map(|data| decompress(data)).collect()
}

pub(crate) async fn trace_session_key(client: &Client, trace_id: &[u8; 16]) -> Result<Option<String>, StoreError> {
    let sql = format!(
        "SELECT session_key FROM trace_index_v1 WHERE trace_id = {} AND session_key != ''
         ORDER BY start_ns LIMIT 1 FORMAT RowBinary",
        unhex(trace_id)
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

pub(crate) async fn logs(client: &Client, filter: &LogFilter) -> Result<Vec<LogRecord>, StoreError> {
    let mut conditions: Vec<String> = Vec::new();
    if let Some(trace_id) = filter.trace_id {
        conditions.push(format!("trace_id = {}", unhex(&trace_id)));
    }
    if !filter.session_keys.is_empty() {
        // Logs linked to the session directly, or through a trace that belongs to it.
        let keys = list(&filter.session_keys);
        conditions.push(format!(
            "(session_key IN ({keys})
              OR trace_id GLOBAL IN (SELECT trace_id FROM session_traces_v1 WHERE session_key IN ({keys})))"
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

pub(crate) async fn metric_points(client: &Client, filter: &MetricFilter) -> Result<Vec<MetricPoint>, StoreError> {
    let mut conditions: Vec<String> = Vec::new();
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

pub(crate) async fn replay_chunk_exists(client: &Client, session_id: &str, seq: u64) -> Result<bool, StoreError> {
    let sql = format!(
        "SELECT count() FROM replay_chunks_v1 WHERE session_id = {} AND seq = {seq} FORMAT RowBinary",
        quote(session_id)
    );
    Ok(RowReader::new(&client.execute(&sql).await?).u64()? > 0)
}

pub(crate) async fn replay_chunks(client: &Client, session_id: &str) -> Result<Vec<ReplayChunk>, StoreError> {
    // A seq stored twice (two replicas raced, or before a merge) reads as its first copy.
    let sql = format!(
        "SELECT seq, argMin(event_count, inserted_ns), argMin(first_ms, inserted_ns), argMin(last_ms, inserted_ns),
         argMin(data, inserted_ns) FROM replay_chunks_v1 WHERE session_id = {} GROUP BY seq ORDER BY seq
         FORMAT RowBinary",
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

pub(crate) async fn totals(client: &Client) -> Result<Totals, StoreError> {
    let sql = format!(
        "SELECT
           (SELECT sum(span_count) FROM span_blocks_v1), (SELECT count() FROM span_blocks_v1),
           (SELECT count() FROM logs_v1), (SELECT count() FROM metric_points_v1),
           (SELECT count() FROM {} WHERE s_deleted = 0),
           (SELECT count() FROM (SELECT session_id, seq FROM replay_chunks_v1 GROUP BY session_id, seq))
         FORMAT RowBinary",
        latest_sessions("")
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
