//! The SQLite schema. Table names carry a version: a change of a table's keys is a new name and a
//! migration that copies the rows; adding a column with a default is an `ALTER TABLE` (instant in SQLite,
//! old rows read as the default), done once by [`migrate`].
//!
//! Projects: every data row carries a small integer `project_id` (`projects_v1` maps names to ids), so the
//! hot write path adds one integer per row, not a string. Id 1 is `default`, created with the file; rows
//! written before projects existed got `project_id` 1 from the column's default.
//!
//! Open runs [`TABLES`], then [`migrate`], then [`INDEXES`]: indexes name `project_id`, which a file from
//! before projects only has once migrated.

/// Id of the project `default` in every file.
pub const DEFAULT_PROJECT_ID: i64 = 1;

/// Tables, created at open when missing; each statement is idempotent.
pub const TABLES: &str = "
-- Project names and their ids. `created_ms` is NULL for a name only known from data written to it
-- (never created): it is not listed, and creating it later is not a conflict.
CREATE TABLE IF NOT EXISTS projects_v1 (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_ms INTEGER
);

CREATE TABLE IF NOT EXISTS sessions_v2 (
    project_id INTEGER NOT NULL,
    id TEXT NOT NULL,
    short_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT,
    user_json TEXT NOT NULL,
    attributes_json TEXT NOT NULL,
    tags_json TEXT NOT NULL,
    capture_json TEXT NOT NULL,
    started_ms INTEGER NOT NULL,
    stopped_ms INTEGER,
    saved_ms INTEGER,
    PRIMARY KEY (project_id, id),
    UNIQUE (project_id, short_id)
);

-- Received spans: OTLP ExportTraceServiceRequest protobuf, one row per request, stored by sessiontrace-spanblock
-- (split into columns, then zstd; older rows plain zstd), with the
-- block's own trace index entries (index_codec) from which trace_index_v1 is filled.
CREATE TABLE IF NOT EXISTS span_blocks_v1 (
    id INTEGER PRIMARY KEY,
    received_ms INTEGER NOT NULL,
    span_count INTEGER NOT NULL,
    data BLOB NOT NULL,
    index_data BLOB NOT NULL,
    project_id INTEGER NOT NULL DEFAULT 1
);

-- Per session (by project and session key: short id or long id), kept with the trace index: span and
-- error totals and the services its traces touched, so the sessions list filters and counts without
-- reading index rows.
CREATE TABLE IF NOT EXISTS session_summary_v2 (
    project_id INTEGER NOT NULL,
    session_key TEXT NOT NULL,
    spans INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    PRIMARY KEY (project_id, session_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS session_services_v2 (
    project_id INTEGER NOT NULL,
    session_key TEXT NOT NULL,
    service TEXT NOT NULL,
    PRIMARY KEY (project_id, session_key, service)
) WITHOUT ROWID;

-- How far trace_index_v1 is complete: every block with id <= indexed_through is in it. A flush written in
-- slices of trace ids records its progress too: of the blocks up to flush_through, every entry at or below
-- (flushed_trace, flushed_block) is in it (all three NULL when no flush is under way).
CREATE TABLE IF NOT EXISTS index_state_v1 (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    indexed_through INTEGER NOT NULL,
    flush_through INTEGER,
    flushed_trace BLOB,
    flushed_block INTEGER
);
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
    root_service TEXT,
    project_id INTEGER NOT NULL DEFAULT 1
);

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
    resource_json TEXT NOT NULL,
    project_id INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE IF NOT EXISTS metric_points_v1 (
    time_ns INTEGER NOT NULL,
    service TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    unit TEXT NOT NULL,
    value REAL,
    attributes_json TEXT NOT NULL,
    detail_json TEXT NOT NULL,
    project_id INTEGER NOT NULL DEFAULT 1
);

-- Replay events: zstd-compressed JSON arrays, keyed by (project, session, seq) so a re-sent chunk is
-- stored once.
CREATE TABLE IF NOT EXISTS replay_chunks_v2 (
    project_id INTEGER NOT NULL,
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event_count INTEGER NOT NULL,
    first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (project_id, session_id, seq)
) WITHOUT ROWID;

-- Derived from a session's replay each time a chunk is stored (ingest::signals), replaced whole: the
-- signal counts per kind, whether it had console errors or failed requests, and the signals as JSON.
CREATE TABLE IF NOT EXISTS session_insights_v1 (
    project_id INTEGER NOT NULL,
    session_id TEXT NOT NULL,
    rage INTEGER NOT NULL,
    dead INTEGER NOT NULL,
    error INTEGER NOT NULL,
    console_errors INTEGER NOT NULL,
    failed_requests INTEGER NOT NULL,
    insights_json TEXT NOT NULL,
    PRIMARY KEY (project_id, session_id)
) WITHOUT ROWID;

-- The facts the sessions list searches, replaced with the insights: kind `url` (a visited URL or its
-- path), `click` (value = selector, detail = text), `failed` (value = path, status).
CREATE TABLE IF NOT EXISTS session_facts_v1 (
    project_id INTEGER NOT NULL,
    session_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    detail TEXT NOT NULL,
    status INTEGER NOT NULL
);

-- Credentials (shared/DESIGN.md section 8): hashes only, never a secret.
CREATE TABLE IF NOT EXISTS api_keys_v1 (
    id TEXT PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    project_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    name TEXT,
    prefix TEXT NOT NULL,
    allowed_origins_json TEXT NOT NULL,
    bytes_per_second INTEGER,
    requests_per_second INTEGER,
    created_ms INTEGER NOT NULL,
    revoked_ms INTEGER,
    last_used_ms INTEGER
);
CREATE TABLE IF NOT EXISTS users_v1 (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    disabled INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS login_sessions_v1 (
    id_hash BLOB PRIMARY KEY,
    user_name TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Indexes, created after [`migrate`]. The hot reads by session (traces, logs, the sessions list) lead
/// with the project; lookups by trace id use the trace id alone and filter the few rows by project.
pub const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS sessions_v2_started ON sessions_v2 (project_id, started_ms);
-- Covers a project's block and span totals: `project_id` sits after the block's data in the row, so
-- without it a count reads every block's overflow pages (minutes at 490M spans).
CREATE INDEX IF NOT EXISTS span_blocks_v1_project ON span_blocks_v1 (project_id, span_count);
CREATE INDEX IF NOT EXISTS session_facts_v1_session ON session_facts_v1 (project_id, session_id, kind);
CREATE INDEX IF NOT EXISTS session_services_v2_service ON session_services_v2 (project_id, service, session_key);
CREATE INDEX IF NOT EXISTS trace_index_v1_trace ON trace_index_v1 (trace_id);
CREATE INDEX IF NOT EXISTS trace_index_v1_project_session ON trace_index_v1 (project_id, session_key, start_ns)
    WHERE session_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS trace_index_v1_project_start ON trace_index_v1 (project_id, start_ns);
CREATE INDEX IF NOT EXISTS logs_v1_trace ON logs_v1 (trace_id) WHERE trace_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS logs_v1_project_session ON logs_v1 (project_id, session_key, time_ns)
    WHERE session_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS logs_v1_time ON logs_v1 (time_ns);
CREATE INDEX IF NOT EXISTS metric_points_v1_project_service ON metric_points_v1 (project_id, service, name, time_ns);
";

fn has_table(connection: &rusqlite::Connection, table: &str) -> rusqlite::Result<bool> {
    connection.query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |row| {
        row.get::<_, i64>(0).map(|n| n > 0)
    })
}

fn has_column(connection: &rusqlite::Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    connection.query_row("SELECT COUNT(*) FROM pragma_table_info(?1) WHERE name = ?2", [table, column], |row| {
        row.get::<_, i64>(0).map(|n| n > 0)
    })
}

/// Brings a file made by an earlier version up to this schema (after [`TABLES`], before [`INDEXES`]), and
/// makes sure the project `default` exists with id 1.
pub fn migrate(connection: &rusqlite::Connection, now_ms: i64) -> rusqlite::Result<()> {
    connection.execute(
        "INSERT INTO projects_v1 (id, name, created_ms) VALUES (?1, 'default', ?2)
         ON CONFLICT (id) DO UPDATE SET created_ms = COALESCE(created_ms, excluded.created_ms)",
        rusqlite::params![DEFAULT_PROJECT_ID, now_ms],
    )?;
    if !has_column(connection, "span_blocks_v1", "index_data")? {
        // Files from before the deferred index had every block indexed as it was written.
        connection.execute_batch(
            "ALTER TABLE span_blocks_v1 ADD COLUMN index_data BLOB NOT NULL DEFAULT x'';
             UPDATE index_state_v1 SET indexed_through = (SELECT COALESCE(MAX(id), 0) FROM span_blocks_v1);",
        )?;
    }
    if !has_column(connection, "index_state_v1", "flush_through")? {
        // Files from before flushes were sliced by trace id: no flush was under way at their last commit.
        connection.execute_batch(
            "ALTER TABLE index_state_v1 ADD COLUMN flush_through INTEGER;
             ALTER TABLE index_state_v1 ADD COLUMN flushed_trace BLOB;
             ALTER TABLE index_state_v1 ADD COLUMN flushed_block INTEGER;",
        )?;
    }
    if !has_column(connection, "span_blocks_v1", "project_id")? {
        migrate_to_projects(connection)?;
    }
    Ok(())
}

/// Files from before projects: everything becomes project `default` (id 1), in one transaction. The
/// big append-only tables get the column (instant), the tables whose keys now lead with the project are
/// copied under their new names, and the session summaries are derived again from the trace index
/// (files older than the summaries had none).
fn migrate_to_projects(connection: &rusqlite::Connection) -> rusqlite::Result<()> {
    let transaction = connection.unchecked_transaction()?;
    let mut script = String::new();
    for table in ["span_blocks_v1", "trace_index_v1", "logs_v1", "metric_points_v1"] {
        script.push_str(&format!("ALTER TABLE {table} ADD COLUMN project_id INTEGER NOT NULL DEFAULT 1;\n"));
    }
    script.push_str(
        "DROP INDEX IF EXISTS trace_index_v1_session;
         DROP INDEX IF EXISTS logs_v1_session;
         DROP INDEX IF EXISTS metric_points_v1_service;
         DELETE FROM session_summary_v2;
         DELETE FROM session_services_v2;
         INSERT INTO session_summary_v2 (project_id, session_key, spans, errors)
           SELECT 1, session_key, SUM(span_count), SUM(error_count) FROM trace_index_v1
           WHERE session_key IS NOT NULL GROUP BY session_key;
         DROP TABLE IF EXISTS session_summary_v1;
         DROP TABLE IF EXISTS session_services_v1;\n",
    );
    if has_table(connection, "sessions_v1")? {
        script.push_str(
            "INSERT INTO sessions_v2 (project_id, id, short_id, kind, name, user_json, attributes_json, tags_json,
               capture_json, started_ms, stopped_ms, saved_ms)
             SELECT 1, id, short_id, kind, name, user_json, attributes_json, tags_json, capture_json, started_ms,
               stopped_ms, saved_ms FROM sessions_v1;
             DROP TABLE sessions_v1;\n",
        );
    }
    if has_table(connection, "replay_chunks_v1")? {
        script.push_str(
            "INSERT INTO replay_chunks_v2 (project_id, session_id, seq, event_count, first_ms, last_ms, data)
             SELECT 1, session_id, seq, event_count, first_ms, last_ms, data FROM replay_chunks_v1;
             DROP TABLE replay_chunks_v1;\n",
        );
    }
    transaction.execute_batch(&script)?;
    // The services of each session, from the comma-joined lists of its index rows.
    let mut pairs = Vec::new();
    {
        let mut statement = transaction
            .prepare("SELECT DISTINCT session_key, services FROM trace_index_v1 WHERE session_key IS NOT NULL")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let key: String = row.get(0)?;
            let services: String = row.get(1)?;
            pairs.extend(services.split(',').filter(|s| !s.is_empty()).map(|s| (key.clone(), s.to_string())));
        }
    }
    let mut insert = transaction
        .prepare("INSERT OR IGNORE INTO session_services_v2 (project_id, session_key, service) VALUES (1, ?1, ?2)")?;
    for (key, service) in pairs {
        insert.execute([key, service])?;
    }
    drop(insert);
    transaction.commit()?;
    tracing::info!("data written before projects now belongs to the project default");
    Ok(())
}
