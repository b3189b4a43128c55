//! One server per data directory: `serve` holds an exclusive lock on `<data_dir>/serve.lock` for the
//! life of the process (SQLite store only; ClickHouse replicas keep nothing in the folder). The operating
//! system releases it when the process ends, a crash or SIGKILL included, so a stale file never blocks a
//! restart. The CLI's admin commands (`keys`, `users`, `projects`) open the store beside a running server
//! on purpose and take no lock; they do not need one, since SQLite serializes their writes.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "serve.lock";

/// The held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Takes the lock of `data_dir` (creating the folder), or fails naming the folder and the process that
    /// holds it.
    pub fn acquire(data_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
        let path = data_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => String::new(),
                    pid => format!(" (process {pid})"),
                };
                anyhow::bail!(
                    "another sessiontrace server{holder} is already serving the data directory {}: stop it \
                     first, or give this one another --data-dir",
                    data_dir.display()
                );
            }
            Err(TryLockError::Error(error)) => {
                return Err(error).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        // Who holds it, for the next one's message; the lock, not this text, is what counts.
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        writeln!(file, "{}", std::process::id())?;
        Ok(DataDirLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let first = DataDirLock::acquire(&data_dir).unwrap();
        assert_eq!(first.path(), data_dir.join(LOCK_FILE));
        let error = DataDirLock::acquire(&data_dir).unwrap_err().to_string();
        assert!(error.contains(&data_dir.display().to_string()), "{error}");
        assert!(error.contains(&format!("process {}", std::process::id())), "{error}");
        drop(first);
        DataDirLock::acquire(&data_dir).unwrap();
    }
}
