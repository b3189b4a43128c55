//! Retention for the embedded store: data older than a cutoff is deleted by the writer thread, a slice at
//! a time so that writes go on between slices ([`SqliteStore::expire_before`](super::SqliteStore) loops
//! until nothing is left).
//!
//! What "older" means per table: span blocks by the time they were received (block ids grow with it, so
//! a slice is a prefix of the block ids) together with their trace index rows; logs and metric points by
//! their own timestamps; sessions by when they stopped (when they started, if they never stopped), with
//! their summaries and replay chunks. The file does not shrink: SQLite reuses the freed pages. One cutoff
//! for all projects: every table is sliced by time or block id, whatever project a row belongs to.

use rusqlite::{Connection, params};

use crate::Totals;

/// Blocks per slice (about 200 spans each). Each slice rewrites much of the trace-id index whatever its
/// size, so bigger slices cost less in all; `cargo bench -p sessiontrace-store --bench retention` measured
/// 1M spans deleted in 1.2 s with 2,000 (2.9 s with 500), writes waiting up to 0.5 s behind a slice.
const BLOCKS_PER_SLICE: i64 = 2_000;
/// Log records or metric points per slice.
const ROWS_PER_SLICE: i64 = 50_000;
/// Sessions per slice.
const SESSIONS_PER_SLICE: i64 = 1_000;

/// Deletes one slice of what is older than `cutoff_ms`, inside the caller's transaction. Returns what it
/// deleted and whether more may be left.
pub(crate) fn expire_slice(connection: &Connection, cutoff_ms: i64) -> rusqlite::Result<(Totals, bool)> {
    let cutoff_ns = cutoff_ms.saturating_mul(1_000_000);
    let mut expired = Totals::default();
    let mut more = false;

    // The oldest blocks, in id order, up to the first one received at or after the cutoff.
    let oldest: Vec<(i64, i64, i64)> = {
        let mut statement =
            connection.prepare_cached("SELECT id, received_ms, span_count FROM span_blocks_v1 ORDER BY id LIMIT ?1")?;
        statement
            .query_map([BLOCKS_PER_SLICE], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?
    };
    let expiring: Vec<&(i64, i64, i64)> =
        oldest.iter().take_while(|(_, received_ms, _)| *received_ms < cutoff_ms).collect();
    if let Some((last_block, _, _)) = expiring.last() {
        connection.execute("DELETE FROM trace_index_v1 WHERE block_id <= ?1", [last_block])?;
        connection.execute("DELETE FROM span_blocks_v1 WHERE id <= ?1", [last_block])?;
        expired.span_blocks = expiring.len() as u64;
        expired.spans = expiring.iter().map(|(_, _, spans)| *spans as u64).sum();
        more |= expiring.len() as i64 == BLOCKS_PER_SLICE;
        // Block ids start again at 1 in an empty table (the id is a plain rowid): the index's high-water
        // mark starts again with them, or the next blocks would look indexed already and never be. The
        // writer flushed its pending entries before this slice, so nothing above 0 is left to index.
        let empty: bool = connection.query_row("SELECT NOT EXISTS (SELECT 1 FROM span_blocks_v1)", [], |r| r.get(0))?;
        if empty {
            connection.execute("UPDATE index_state_v1 SET indexed_through = 0 WHERE id = 0", [])?;
        }
    }

    expired.logs = connection.execute(
        "DELETE FROM logs_v1 WHERE id IN (SELECT id FROM logs_v1 WHERE time_ns < ?1 LIMIT ?2)",
        params![cutoff_ns, ROWS_PER_SLICE],
    )? as u64;
    more |= expired.logs == ROWS_PER_SLICE as u64;
    expired.metric_points = connection.execute(
        "DELETE FROM metric_points_v1 WHERE rowid IN (SELECT rowid FROM metric_points_v1 WHERE time_ns < ?1 LIMIT ?2)",
        params![cutoff_ns, ROWS_PER_SLICE],
    )? as u64;
    more |= expired.metric_points == ROWS_PER_SLICE as u64;

    let sessions: Vec<(i64, String, String)> = {
        let mut statement = connection.prepare_cached(
            "SELECT project_id, id, short_id FROM sessions_v2 WHERE COALESCE(stopped_ms, started_ms) < ?1 LIMIT ?2",
        )?;
        statement
            .query_map(params![cutoff_ms, SESSIONS_PER_SLICE], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?
    };
    for (project_id, id, short_id) in &sessions {
        for key in [id, short_id] {
            connection.execute(
                "DELETE FROM session_summary_v2 WHERE project_id = ?1 AND session_key = ?2",
                params![project_id, key],
            )?;
            connection.execute(
                "DELETE FROM session_services_v2 WHERE project_id = ?1 AND session_key = ?2",
                params![project_id, key],
            )?;
        }
        for table in ["session_insights_v1", "session_facts_v1"] {
            connection.execute(
                &format!("DELETE FROM {table} WHERE project_id = ?1 AND session_id = ?2"),
                params![project_id, id],
            )?;
        }
        expired.replay_chunks += connection.execute(
            "DELETE FROM replay_chunks_v2 WHERE project_id = ?1 AND session_id = ?2",
            params![project_id, id],
        )? as u64;
        connection.execute("DELETE FROM sessions_v2 WHERE project_id = ?1 AND id = ?2", params![project_id, id])?;
    }
    expired.sessions = sessions.len() as u64;
    more |= sessions.len() as i64 == SESSIONS_PER_SLICE;
    Ok((expired, more))
}
