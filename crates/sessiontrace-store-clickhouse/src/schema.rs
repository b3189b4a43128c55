//! The ClickHouse schema: one MergeTree table per record kind, with versioned names (`span_blocks_v1`), so a
//! change of layout is a new name and a migration. Every data table has a `day` column and daily
//! partitions (`toYYYYMMDD(day)`), which is how retention works on every server version: whole partitions
//! are dropped (the `retention` module). Sort keys follow the two hot reads: by trace id (`trace_index_v1`)
//! and by project, session and time (`session_traces_v1`, `logs_v1`).
//!
//! What a session's replay tells (frustration signals and the facts the sessions list searches, which
//! SQLite keeps in two tables) is one row per derivation in `session_insights_v1`: counts, flags, the
//! facts as arrays and the whole as JSON. Each derivation replaces the last, which in ClickHouse is a
//! newer `version` of the one row (reads take `argMax`, merges keep the latest), never a set of rows to
//! delete.
//!
//! Projects: every data table has a `project` column and every read filters by it. Tables created before
//! projects get the column from [`add_project_column`] (`DEFAULT 'default'`: their rows read as project
//! `default`) and keep their old sort keys (ClickHouse cannot change those in place), which only costs
//! reads a little; new tables lead their session and replacing keys with the project.
//!
//! Credentials (projects, API keys, users, UI login sessions) are small ReplacingMergeTree tables without
//! partitions (retention never drops them), read with `argMax` over a version, so what one replica writes
//! every replica reads. Revoking a key or ending a login session writes a row with the largest version
//! (`u64::MAX`): it wins every read and every merge. Last-used and last-seen times go to tables of their own
//! whose version is the time itself, so a late touch can never bring back a revoked key or a deleted login.
//!
//! Features of newer servers (LowCardinality, column codecs, TTL) are used only when the server's version
//! has them ([`Features`]); on 18.16 the same tables are created without them.
//!
//! For a cluster, [`cluster_statements`] gives the same tables as `<name>_local` on every shard and a
//! `Distributed` table under the plain name: the store reads and writes the plain names and works the
//! same on one server or many (docs/scale-out.md).

use crate::client::ServerVersion;

/// The oldest server the store is tested against.
pub const MIN_VERSION: ServerVersion = ServerVersion { major: 18, minor: 16, patch: 0 };

/// What the connected server supports beyond the 18.16 baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Features {
    /// `LowCardinality(String)` without the experimental setting (19.1).
    pub low_cardinality: bool,
    /// `CODEC(...)` on columns (19.1).
    pub codecs: bool,
    /// Table `TTL` expressions (19.6).
    pub ttl: bool,
}

impl Features {
    /// The features of a server version.
    pub fn for_version(version: ServerVersion) -> Self {
        let at_least = |major, minor| (version.major, version.minor) >= (major, minor);
        Features { low_cardinality: at_least(19, 1), codecs: at_least(19, 1), ttl: at_least(19, 6) }
    }
}

/// How the rows of a table are kept.
#[derive(Debug, Clone, Copy)]
enum Engine {
    MergeTree,
    /// Rows with the same sort key collapse in the background to the one with the largest version column.
    Replacing(&'static str),
}

/// What a table holds, which decides its partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holds {
    /// Records of a project: a `day` column, daily partitions, retention (TTL and dropped partitions).
    Data,
    /// Credentials: no partitions, never expired.
    Credentials,
}

/// One table of the store.
pub struct Table {
    pub name: &'static str,
    /// Column definitions; `{lc}` is a low-cardinality string, `{delta}` a codec for growing integers,
    /// `{raw}` no codec (bytes already zstd-compressed by the store).
    columns: &'static str,
    engine: Engine,
    order_by: &'static str,
    /// Which shard a row goes to behind a Distributed table.
    pub shard_key: &'static str,
    pub holds: Holds,
}

pub const SPAN_BLOCKS: &str = "span_blocks_v1";
pub const TRACE_INDEX: &str = "trace_index_v1";
pub const SESSION_TRACES: &str = "session_traces_v1";
pub const LOGS: &str = "logs_v1";
pub const METRIC_POINTS: &str = "metric_points_v1";
pub const REPLAY_CHUNKS: &str = "replay_chunks_v1";
pub const SESSIONS: &str = "sessions_v1";
pub const SESSION_INSIGHTS: &str = "session_insights_v1";
pub const PROJECTS: &str = "projects_v1";
pub const API_KEYS: &str = "api_keys_v1";
pub const API_KEY_USAGE: &str = "api_key_usage_v1";
pub const USERS: &str = "users_v1";
pub const LOGIN_SESSIONS: &str = "login_sessions_v1";
pub const LOGIN_SESSION_SEEN: &str = "login_session_seen_v1";

const INDEX_COLUMNS: &str = "day Date, project {lc}, trace_id FixedString(16), start_ns Int64 {delta}, \
    end_ns Int64 {delta}, \
    block_id UInt64, session_key String, services Array({lc}), span_count UInt32, error_count UInt32, \
    root_name Nullable(String), root_service Nullable(String)";

/// Every table, in the order their rows are inserted by a write (blocks before the index that points at them).
pub const TABLES: &[Table] = &[
    // Received spans: zstd-compressed OTLP ExportTraceServiceRequest protobuf, one row per request.
    Table {
        name: SPAN_BLOCKS,
        columns: "day Date, project {lc}, block_id UInt64, received_ns Int64 {delta}, span_count UInt32, \
            data String {raw}",
        engine: Engine::MergeTree,
        order_by: "block_id",
        shard_key: "block_id",
        holds: Holds::Data,
    },
    Table {
        name: LOGS,
        columns: "day Date, project {lc}, session_key String, time_ns Int64 {delta}, log_id UInt64, \
            trace_id Nullable(FixedString(16)), span_id Nullable(FixedString(8)), service {lc}, \
            severity_number Int32, severity_text {lc}, body String, attributes_json String, resource_json String",
        engine: Engine::MergeTree,
        order_by: "(project, session_key, time_ns, log_id)",
        shard_key: "rand()",
        holds: Holds::Data,
    },
    Table {
        name: METRIC_POINTS,
        columns: "day Date, project {lc}, service {lc}, name {lc}, time_ns Int64 {delta}, kind {lc}, unit {lc}, \
            value Nullable(Float64), attributes_json String, detail_json String",
        engine: Engine::MergeTree,
        order_by: "(project, service, name, time_ns)",
        shard_key: "rand()",
        holds: Holds::Data,
    },
    // Replay events: zstd JSON arrays. (project, session, seq) is stored once: the store checks before inserting,
    // reads keep the first row of a seq, and merges drop later copies (`keep` = u64::MAX - inserted_ns).
    Table {
        name: REPLAY_CHUNKS,
        columns: "day Date, project {lc}, session_id String, seq UInt64, inserted_ns UInt64, keep UInt64, \
            event_count UInt32, \
            first_ms Int64, last_ms Int64, data String {raw}",
        engine: Engine::Replacing("keep"),
        order_by: "(project, session_id, seq)",
        shard_key: "cityHash64(session_id)",
        holds: Holds::Data,
    },
    // One row per (trace, block): which blocks hold a trace, and what the lists need without decoding.
    Table {
        name: TRACE_INDEX,
        columns: INDEX_COLUMNS,
        engine: Engine::MergeTree,
        order_by: "(trace_id, start_ns)",
        shard_key: "cityHash64(trace_id)",
        holds: Holds::Data,
    },
    // The same rows, only those that name a session, sorted for "the traces of this session".
    Table {
        name: SESSION_TRACES,
        columns: INDEX_COLUMNS,
        engine: Engine::MergeTree,
        order_by: "(project, session_key, start_ns, trace_id)",
        shard_key: "cityHash64(session_key)",
        holds: Holds::Data,
    },
    // Sessions: every change is a new row with a larger `version`; reads take the latest row per id
    // (argMax), merges keep only that one. `deleted` marks the loser of a concurrent short-id race.
    Table {
        name: SESSIONS,
        columns: "day Date, project {lc}, id String, short_id String, kind {lc}, name Nullable(String), \
            user_json String, \
            attributes_json String, tags_json String, capture_json String, started_ms Int64, \
            stopped_ms Nullable(Int64), saved_ms Nullable(Int64), created_ns UInt64, version UInt64, deleted UInt8",
        engine: Engine::Replacing("version"),
        order_by: "(project, id)",
        shard_key: "cityHash64(id)",
        holds: Holds::Data,
    },
    // What was derived from a session's replay, one row per derivation (`version` grows): signal counts,
    // console errors, the facts the sessions list searches (urls, clicked selectors and texts, failed
    // requests as parallel path/status arrays) and the whole `SessionInsights` as JSON. `day` is the
    // derivation's, so retention drops it with the replay it came from.
    Table {
        name: SESSION_INSIGHTS,
        columns: "day Date, project {lc}, session_id String, version UInt64, rage UInt32, dead UInt32, \
            error UInt32, console_errors UInt8, urls Array(String), clicked_selectors Array(String), \
            clicked_texts Array(String), failed_paths Array(String), failed_statuses Array(UInt32), \
            insights_json String",
        engine: Engine::Replacing("version"),
        order_by: "(project, session_id)",
        shard_key: "cityHash64(session_id)",
        holds: Holds::Data,
    },
    // Credentials. Projects: created_ms of the first row is kept by min().
    Table {
        name: PROJECTS,
        columns: "project String, created_ms Int64, version UInt64",
        engine: Engine::Replacing("version"),
        order_by: "project",
        shard_key: "cityHash64(project)",
        holds: Holds::Credentials,
    },
    // API keys: the SHA-256 of the secret, never the secret. A revocation is the key's row again with
    // `revoked_ms` and version u64::MAX.
    Table {
        name: API_KEYS,
        columns: "id String, hash FixedString(32), project String, kind String, name Nullable(String), \
            prefix String, allowed_origins Array(String), bytes_per_second Nullable(UInt64), \
            requests_per_second Nullable(UInt64), created_ms Int64, revoked_ms Nullable(Int64), \
            last_used_ms Nullable(Int64), version UInt64",
        engine: Engine::Replacing("version"),
        order_by: "id",
        shard_key: "cityHash64(id)",
        holds: Holds::Credentials,
    },
    // When keys were last used: merges keep the latest time of each key.
    Table {
        name: API_KEY_USAGE,
        columns: "id String, last_used_ms Int64",
        engine: Engine::Replacing("last_used_ms"),
        order_by: "id",
        shard_key: "cityHash64(id)",
        holds: Holds::Credentials,
    },
    Table {
        name: USERS,
        columns: "name String, role String, password_hash String, created_ms Int64, disabled UInt8, version UInt64",
        engine: Engine::Replacing("version"),
        order_by: "name",
        shard_key: "cityHash64(name)",
        holds: Holds::Credentials,
    },
    // UI login sessions by the SHA-256 of their secret id; a logout is a row with `deleted` = 1 and
    // version u64::MAX.
    Table {
        name: LOGIN_SESSIONS,
        columns: "id_hash FixedString(32), user String, csrf_token String, created_ms Int64, last_seen_ms Int64, \
            deleted UInt8, version UInt64",
        engine: Engine::Replacing("version"),
        order_by: "id_hash",
        shard_key: "cityHash64(id_hash)",
        holds: Holds::Credentials,
    },
    Table {
        name: LOGIN_SESSION_SEEN,
        columns: "id_hash FixedString(32), last_seen_ms Int64",
        engine: Engine::Replacing("last_seen_ms"),
        order_by: "id_hash",
        shard_key: "cityHash64(id_hash)",
        holds: Holds::Credentials,
    },
];

/// Column names of a table, in order, for inserts.
pub fn column_names(table: &str) -> String {
    let table = TABLES.iter().find(|t| t.name == table).expect("known table");
    table
        .columns
        .split(", ")
        .map(|column| column.split_whitespace().next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(", ")
}

fn render_columns(columns: &str, features: Features) -> String {
    columns
        .replace("{lc}", if features.low_cardinality { "LowCardinality(String)" } else { "String" })
        .replace(" {delta}", if features.codecs { " CODEC(Delta, ZSTD(1))" } else { "" })
        .replace(" {raw}", if features.codecs { " CODEC(NONE)" } else { "" })
}

/// `CREATE TABLE IF NOT EXISTS` of one table as `qualified_name`; `replicated` gives the
/// ReplicatedMergeTree engine (Keeper path per shard, `{shard}`/`{replica}` macros).
pub fn create_table(
    table: &Table,
    qualified_name: &str,
    features: Features,
    retention_days: u32,
    replicated: bool,
) -> String {
    let engine = match (table.engine, replicated) {
        (Engine::MergeTree, false) => "MergeTree()".to_string(),
        (Engine::Replacing(version), false) => format!("ReplacingMergeTree({version})"),
        (Engine::MergeTree, true) => {
            format!("ReplicatedMergeTree('/clickhouse/tables/{{shard}}/{qualified_name}', '{{replica}}')")
        }
        (Engine::Replacing(version), true) => format!(
            "ReplicatedReplacingMergeTree('/clickhouse/tables/{{shard}}/{qualified_name}', '{{replica}}', {version})"
        ),
    };
    let (partition, ttl) = match table.holds {
        Holds::Data if features.ttl && retention_days > 0 => {
            (" PARTITION BY toYYYYMMDD(day)", format!(" TTL day + toIntervalDay({retention_days})"))
        }
        Holds::Data => (" PARTITION BY toYYYYMMDD(day)", String::new()),
        Holds::Credentials => ("", String::new()),
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {qualified_name} ({}) ENGINE = {engine}{partition} ORDER BY {}{ttl}",
        render_columns(table.columns, features),
        table.order_by
    )
}

/// `ALTER TABLE` giving a table from before projects its `project` column; its rows read as `default`.
/// 18.16 has no `ADD COLUMN IF NOT EXISTS`: run it only for a table that lacks the column (the store looks
/// in `system.columns` first). In a cluster, run it for each `<name>_local` table and its Distributed table.
pub fn add_project_column(qualified_name: &str, features: Features) -> String {
    format!(
        "ALTER TABLE {qualified_name} ADD COLUMN project {} DEFAULT 'default' AFTER day",
        render_columns("{lc}", features)
    )
}

/// The statements that create the store's tables in `database` on one server.
pub fn single_server_statements(database: &str, features: Features, retention_days: u32) -> Vec<String> {
    let mut statements = vec![format!("CREATE DATABASE IF NOT EXISTS {database}")];
    for table in TABLES {
        statements.push(create_table(table, &format!("{database}.{}", table.name), features, retention_days, false));
    }
    statements
}

/// The statements to run on every shard of `cluster`: local tables `<name>_local` (replicated when
/// `replicated`) and a Distributed table under each plain name that the collectors use.
pub fn cluster_statements(
    database: &str,
    cluster: &str,
    features: Features,
    retention_days: u32,
    replicated: bool,
) -> Vec<String> {
    let mut statements = vec![format!("CREATE DATABASE IF NOT EXISTS {database}")];
    for table in TABLES {
        let local = format!("{database}.{}_local", table.name);
        statements.push(create_table(table, &local, features, retention_days, replicated));
        statements.push(format!(
            "CREATE TABLE IF NOT EXISTS {database}.{name} AS {local} ENGINE = Distributed({cluster}, {database}, {name}_local, {key})",
            name = table.name,
            key = table.shard_key
        ));
    }
    statements
}

/// Whether `name` is safe to paste into SQL as a database name.
pub fn is_valid_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_servers_get_plain_types_and_new_ones_get_codecs_and_ttl() {
        let old = Features::for_version(ServerVersion::parse("18.16.1").unwrap());
        assert_eq!(old, Features::default());
        let ddl = create_table(&TABLES[0], "db.span_blocks_v1", old, 30, false);
        assert_eq!(
            ddl,
            "CREATE TABLE IF NOT EXISTS db.span_blocks_v1 (day Date, project String, block_id UInt64, \
             received_ns Int64, span_count UInt32, data String) ENGINE = MergeTree() PARTITION BY toYYYYMMDD(day) \
             ORDER BY block_id"
        );
        let new = Features::for_version(ServerVersion::parse("23.8.1").unwrap());
        let ddl = create_table(&TABLES[0], "db.span_blocks_v1", new, 30, false);
        assert!(ddl.contains("data String CODEC(NONE)") && ddl.ends_with("TTL day + toIntervalDay(30)"), "{ddl}");
        let logs = create_table(TABLES.iter().find(|t| t.name == LOGS).unwrap(), "db.logs_v1", new, 0, false);
        assert!(logs.contains("service LowCardinality(String)") && !logs.contains("TTL"), "{logs}");
    }

    #[test]
    fn cluster_tables_are_local_plus_distributed() {
        let statements = cluster_statements("st", "c1", Features::default(), 7, true);
        assert_eq!(statements.len(), 1 + 2 * TABLES.len());
        assert!(statements[1].contains("ReplicatedMergeTree('/clickhouse/tables/{shard}/st.span_blocks_v1_local'"));
        assert!(statements[2].ends_with("ENGINE = Distributed(c1, st, span_blocks_v1_local, block_id)"));
        let sessions = statements.iter().find(|s| s.contains("sessions_v1_local (")).unwrap();
        assert!(sessions.contains("ReplicatedReplacingMergeTree(") && sessions.contains("'{replica}', version)"));
    }

    #[test]
    fn credentials_are_never_partitioned_and_old_tables_get_a_project() {
        let new = Features::for_version(ServerVersion::parse("23.8.1").unwrap());
        let keys = TABLES.iter().find(|t| t.name == API_KEYS).unwrap();
        let ddl = create_table(keys, "db.api_keys_v1", new, 30, false);
        assert!(ddl.ends_with("ENGINE = ReplacingMergeTree(version) ORDER BY id"), "{ddl}");
        assert_eq!(
            add_project_column("db.logs_v1", new),
            "ALTER TABLE db.logs_v1 ADD COLUMN project LowCardinality(String) DEFAULT 'default' AFTER day"
        );
        assert!(add_project_column("db.logs_v1", Features::default()).contains("project String DEFAULT"));
    }

    #[test]
    fn column_lists_follow_the_ddl() {
        assert_eq!(column_names(SPAN_BLOCKS), "day, project, block_id, received_ns, span_count, data");
        assert!(is_valid_identifier("sessiontrace_2") && !is_valid_identifier("a;drop") && !is_valid_identifier("1a"));
    }
}
