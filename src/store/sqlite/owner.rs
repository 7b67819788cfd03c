//! One process owns the workers of a SQLite file: `serve` holds an exclusive lock on
//! `FILE.workers.lock` beside the database while its workers run. A second `serve` on the
//! same file (an intake-only replica, or one started by mistake) does not get it and runs no
//! workers: it must not requeue the jobs the owner is working on (`requeue_orphans` is only
//! safe for the owner) nor claim them. The lock is the operating system's (`flock`), so it
//! goes with the process however it ends, `kill -9` included, and the next owner requeues
//! what that one left `processing`.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::Store;
use crate::store::StoreError;

/// Held while this process owns the workers; dropping it (or exiting) releases them.
#[derive(Debug)]
pub struct WorkerLock {
    _file: Option<File>,
}

impl WorkerLock {
    /// Ownership that needs no lock: an in-memory store (one process by definition), or
    /// PostgreSQL (replicas coordinate through leases).
    pub fn unlocked() -> Self {
        Self { _file: None }
    }
}

/// Who holds the workers when this process cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkersHeld {
    pub lock_file: PathBuf,
    /// The owner's process id, as it wrote it (absent if it has not yet).
    pub pid: Option<u32>,
}

/// `store.db` → `store.db.workers.lock`.
fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".workers.lock");
    PathBuf::from(name)
}

impl Store {
    /// Takes the workers of this file for this process, or says who has them.
    pub fn own_workers(&self) -> Result<Result<WorkerLock, WorkersHeld>, StoreError> {
        let Some(db) = &self.path else {
            return Ok(Ok(WorkerLock::unlocked()));
        };
        let path = lock_path(db);
        let failed = |e: std::io::Error| StoreError::Open {
            url: path.display().to_string(),
            reason: format!("cannot open the workers' lock file: {e}"),
        };
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(failed)?;
        match file.try_lock() {
            Ok(()) => {
                // The pid is for the other process's log line only; the lock is the truth.
                file.set_len(0).map_err(failed)?;
                file.rewind().map_err(failed)?;
                write!(file, "{}", std::process::id()).map_err(failed)?;
                file.flush().map_err(failed)?;
                Ok(Ok(WorkerLock { _file: Some(file) }))
            }
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                Ok(Err(WorkersHeld {
                    lock_file: path,
                    pid: text.trim().parse().ok(),
                }))
            }
            Err(TryLockError::Error(e)) => Err(failed(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_store_on_the_file_does_not_get_the_workers_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("q.db").display());
        let first = Store::open(&url).await.unwrap();
        let second = Store::open(&url).await.unwrap();
        let held = first
            .own_workers()
            .unwrap()
            .expect("the first process owns the workers");
        let refused = second
            .own_workers()
            .unwrap()
            .expect_err("the file's workers are taken");
        assert_eq!(refused.pid, Some(std::process::id()));
        assert!(refused.lock_file.ends_with("q.db.workers.lock"));
        drop(held);
        assert!(second.own_workers().unwrap().is_ok());
    }
}
