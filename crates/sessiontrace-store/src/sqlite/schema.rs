//! The SQLite schema. Table names carry a version: a change of layout is a new name and a migration.

/// Statements run at open; each is idempotent.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sessions_v1 (
    id TEXT PRIMARY KEY,
    short_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    name TEXT,
    user_json TEXT NOT NULL,
    attributes_json TEXT NOT NULL,
    tags_json TEXT NOT NULL,
    capture_json TEXT NOT NULL,
    started_ms INTEGER NOT NULL,
    stopped_ms INTEGER,
    saved_ms INTEGER
);
CREATE INDEX IF NOT EXISTS sessions_v1_started ON sessions_v1 (started_ms);

-- Received spans: zstd-compressed OTLP ExportTraceServiceRequest protobuf, one row per request, with the
-- block's own trace index entries (index_codec) from which trace_index_v1 is filled.
CREATE TABLE IF NOT EXISTS span_blocks_v1 (
    id INTEGER PRIMARY KEY,
    received_ms INTEGER NOT NULL,
    span_count INTEGER NOT NULL,
    data BLOB NOT NULL,
    index_data BLOB NOT NULL
);

-- Per session (by session key: short id or long id), kept with the trace index: span and error totals and
-- the services its traces touched, so the sessions list filters and counts without reading index rows.
CREATE TABLE IF NOT EXISTS session_summary_v1 (
    session_key TEXT PRIMARY KEY,
    spans INTEGER NOT NULL,
    errors INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS session_services_v1 (
    session_key TEXT NOT NULL,
    service TEXT NOT NULL,
    PRIMARY KEY (session_key, service)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS session_services_v1_service ON session_services_v1 (service, session_key);

-- How far trace_index_v1 is complete: every block with id <= indexed_through is in it.
CREATE TABLE IF NOT EXISTS index_state_v1 (id INTEGER PRIMARY KEY CHECK (id = 0), indexed_through INTEGER NOT NULL);
INSERT OR IGNORE INTO index_state_v1 (id, indexed_through) VALUES (0, 0);

-- One row per (trace, block): which blocks hold a trace, and what the lists need without decoding.
CREATE TABLE IF NOT EXISTS trace_index_v1 (
    trace_id BLOB NOT NULL,
    block_id INTEGER NOT NULL,
    session_key TEXT,
    services TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    span_count INTEGER NOT NULL,
    error_count INTEGER NOT NULL,
    root_name TEXT,
    root_service TEXT
);
CREATE INDEX IF NOT EXISTS trace_index_v1_trace ON trace_index_v1 (trace_id);
CREATE INDEX IF NOT EXISTS trace_index_v1_session ON trace_index_v1 (session_key, start_ns)
    WHERE session_key IS NOT NULL;

CREATE TABLE IF NOT EXISTS logs_v1 (
    id INTEGER PRIMARY KEY,
    time_ns INTEGER NOT NULL,
    trace_id BLOB,
    span_id BLOB,
    session_key TEXT,
    service TEXT NOT NULL,
    severity_number INTEGER NOT NULL,
    severity_text TEXT NOT NULL,
    body TEXT NOT NULL,
    attributes_json TEXT NOT NULL,
    resource_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_v1_trace ON logs_v1 (trace_id) WHERE trace_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS logs_v1_session ON logs_v1 (session_key, time_ns) WHERE session_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS logs_v1_time ON logs_v1 (time_ns);

CREATE TABLE IF NOT EXISTS metric_points_v1 (
    time_ns INTEGER NOT NULL,
    service TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    unit TEXT NOT NULL,
    value REAL,
    attributes_json TEXT NOT NULL,
    detail_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS metric_points_v1_service ON metric_points_v1 (service, name, time_ns);

-- Replay events: zstd-compressed JSON arrays, keyed by (session, seq) so a re-sent chunk is stored once.
CREATE TABLE IF NOT EXISTS replay_chunks_v1 (
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event_count INTEGER NOT NULL,
    first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
";

/// Brings a file made by an earlier version up to this schema.
pub fn migrate(connection: &rusqlite::Connection) -> rusqlite::Result<()> {
    let has_index_data: bool = connection.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('span_blocks_v1') WHERE name = 'index_data'",
        [],
        |row| row.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if !has_index_data {
        // Files from before the deferred index had every block indexed as it was written.
        connection.execute_batch(
            "ALTER TABLE span_blocks_v1 ADD COLUMN index_data BLOB NOT NULL DEFAULT x'';
             UPDATE index_state_v1 SET indexed_through = (SELECT COALESCE(MAX(id), 0) FROM span_blocks_v1);",
        )?;
    }
    let summaries: i64 = connection.query_row("SELECT COUNT(*) FROM session_summary_v1", [], |row| row.get(0))?;
    if summaries == 0 {
        // Files from before the session summary: derive it from the trace index once.
        connection.execute_batch(
            "INSERT INTO session_summary_v1 (session_key, spans, errors)
               SELECT session_key, SUM(span_count), SUM(error_count) FROM trace_index_v1
               WHERE session_key IS NOT NULL GROUP BY session_key;",
        )?;
        let mut pairs = Vec::new();
        {
            let mut statement = connection
                .prepare("SELECT DISTINCT session_key, services FROM trace_index_v1 WHERE session_key IS NOT NULL")?;
            let mut rows = statement.query([])?;
            while let Some(row) = rows.next()? {
                let key: String = row.get(0)?;
                let services: String = row.get(1)?;
                pairs.extend(services.split(',').filter(|s| !s.is_empty()).map(|s| (key.clone(), s.to_string())));
            }
        }
        let mut insert =
            connection.prepare("INSERT OR IGNORE INTO session_services_v1 (session_key, service) VALUES (?1, ?2)")?;
        for (key, service) in pairs {
            insert.execute([key, service])?;
        }
    }
    Ok(())
}
