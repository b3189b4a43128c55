//! WAL checkpoints on their own thread. SQLite's automatic checkpoint runs inside the commit that crosses
//! its threshold, so one write in every few hundred waited for pages to be copied into the database file
//! and that file to be synced: the writer's tail latency. The writer connection turns the automatic
//! checkpoint off (`wal_autocheckpoint=0`) and this thread, with a connection of its own, runs a
//! `PASSIVE` checkpoint every [`INTERVAL`]: it copies what no reader still needs and never blocks the
//! writer or a reader. The writer starts the WAL again from its beginning only when it finds everything
//! copied, which a steady stream of commits makes rare; so once the WAL holds more than
//! [`RESTART_FRAMES`], the checkpoint after the passive one is a `RESTART`: it holds the writer off for
//! the few frames the passive pass left (giving up at once if the writer or a reader is busy, to try
//! again at the next tick), and the next commit writes from the start of the file.
//! Durability does not change: a commit is durable when its WAL frames are synced, before it is answered.

use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use crate::StoreError;

/// Time between two checkpoints: the WAL holds about this much of the writes between them.
pub(crate) const INTERVAL: Duration = Duration::from_millis(500);
/// WAL frames (pages) past which a checkpoint also restarts the WAL: 16,384 pages, 64 MiB.
const RESTART_FRAMES: i64 = 16_384;
/// How long a restart waits for the writer's transaction or a reader before giving up until the next tick.
const RESTART_WAIT_MS: i64 = 20;

/// The checkpoint thread; dropping it runs a last checkpoint and joins the thread.
pub(crate) struct Checkpointer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Opens a connection to `path` and starts the thread.
    pub(crate) fn start(path: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open(path)?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.pragma_update(None, "busy_timeout", RESTART_WAIT_MS)?;
        let (stop, stopped) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&connection, &stopped))
            .map_err(|e| StoreError::Internal(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer { stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for Checkpointer {
    /// Drop it after the writer stopped, so the last checkpoint can empty the WAL.
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the sqlite checkpoint thread panicked");
        }
    }
}

fn run(connection: &Connection, stopped: &Receiver<()>) {
    let mut failing = false;
    loop {
        let last = match stopped.recv_timeout(INTERVAL) {
            Err(RecvTimeoutError::Timeout) => false,
            Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
        };
        // TRUNCATE at the end empties the WAL file when no reader holds it; PASSIVE never waits.
        let outcome = if last {
            checkpoint(connection, "TRUNCATE").map(|_| ())
        } else {
            checkpoint(connection, "PASSIVE").and_then(|frames| match frames {
                frames if frames >= RESTART_FRAMES => checkpoint(connection, "RESTART").map(|_| ()),
                _ => Ok(()),
            })
        };
        match outcome {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("WAL checkpoints succeed again");
            }
            Ok(()) => {}
            // A full disk: the checkpoint is retried at the next tick; the writer's commits decide what
            // callers are told.
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(%error, "WAL checkpoint failed; retrying");
            }
            Err(error) => tracing::debug!(%error, "WAL checkpoint failed again"),
        }
        if last {
            return;
        }
    }
}

/// Runs one checkpoint and returns the number of frames in the WAL. SQLite answers `(busy, frames in
/// the WAL, frames copied)`; busy (a restart that gave up) is not an error: the next tick tries again.
fn checkpoint(connection: &Connection, mode: &str) -> rusqlite::Result<i64> {
    connection.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| row.get(1))
}
