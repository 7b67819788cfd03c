//! Makes the intake writer's commits durable off its own path, and only then answers them.
//!
//! The writer commits each batch without waiting for the disk (`synchronous = NORMAL` on its
//! connection) and hands the batch's answers here; this thread `fdatasync`s the WAL file and
//! then answers every batch committed before the sync began. Meanwhile the writer is already
//! writing the next batch. Before, every accept in the process waited while the writer sat
//! in `fdatasync`, the whole machine with it: intake showed 18% of the CPU idle.
//!
//! Durability is unchanged: nobody is answered before the WAL frames of their batch are on
//! disk. A worker may read a job before its sync, but anything it does outside the database
//! waits on a commit of its own (the outbox row before a CRM call), and that commit syncs the
//! WAL, this job's frames included. A checkpoint that copies the frames into the database
//! syncs the WAL first (SQLite does so in every mode but OFF).

use std::fs::File;
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::store::{Accepted, StoreError};

/// One arrival's answer, waiting for its batch to be on disk.
pub(super) type Answer = (
    oneshot::Sender<Result<Accepted, StoreError>>,
    Result<Accepted, StoreError>,
);

/// The WAL file of one writer connection, opened beside it: syncing any descriptor of the
/// file flushes every write to it, whichever descriptor made them.
#[derive(Clone, Debug)]
pub(super) struct Wal(Arc<File>);

impl Wal {
    /// The WAL of the database at `db`; `None` when there is none to open (an in-memory
    /// database, or a journal mode other than WAL), and the writer then syncs as it commits.
    pub(super) fn open(db: &Path) -> Option<Self> {
        let mut path = db.as_os_str().to_owned();
        path.push("-wal");
        File::options()
            .write(true)
            .open(path)
            .ok()
            .map(|f| Self(Arc::new(f)))
    }
}

/// A committed batch: its answers and the WAL its frames are in.
struct Committed {
    wal: Wal,
    answers: Vec<Answer>,
}

/// The writer's end: batches go in committed and come out answered once durable.
pub(super) struct Syncer {
    sender: mpsc::Sender<Committed>,
}

impl Syncer {
    /// Starts the syncing thread; it stops when this handle is dropped, after answering what
    /// it was given. `None` if the thread cannot start (the writer then syncs as it commits).
    pub(super) fn start() -> Option<Self> {
        let (sender, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("leadgate-wal-sync".into())
            .spawn(move || run(rx))
            .ok()?;
        Some(Self { sender })
    }

    /// Answers `answers` once `wal` is synced. If the thread is gone, the arrivals are
    /// answered with an error: committed but not known durable, so a client retries (its
    /// idempotency key returns the same lead).
    pub(super) fn after_sync(&self, wal: &Wal, answers: Vec<Answer>) {
        let committed = Committed {
            wal: wal.clone(),
            answers,
        };
        if let Err(mpsc::SendError(lost)) = self.sender.send(committed) {
            fail(lost.answers, "the WAL syncing thread has stopped");
        }
    }
}

fn run(rx: mpsc::Receiver<Committed>) {
    while let Ok(first) = rx.recv() {
        // Everything committed by now is in the file: one sync covers all of it.
        let mut batches = vec![first];
        batches.extend(rx.try_iter());
        let mut synced: Vec<&Wal> = Vec::with_capacity(1);
        let mut failed = None;
        for b in &batches {
            if !synced.iter().any(|w| Arc::ptr_eq(&w.0, &b.wal.0)) {
                if let Err(e) = b.wal.0.sync_data() {
                    failed = Some(format!("could not sync the write-ahead log: {e}"));
                }
                synced.push(&b.wal);
            }
        }
        for b in batches {
            match &failed {
                None => {
                    for (reply, answer) in b.answers {
                        let _ = reply.send(answer);
                    }
                }
                Some(reason) => fail(b.answers, reason),
            }
        }
    }
}

/// Answers each arrival with a write error instead of its answer.
fn fail(answers: Vec<Answer>, reason: &str) {
    for (reply, _) in answers {
        let _ = reply.send(Err(StoreError::Write(reason.to_string())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(n: usize) -> Accepted {
        Accepted {
            id: format!("lead-{n}"),
            job_id: format!("job-{n}"),
            status: "queued".into(),
            duplicate: false,
        }
    }

    /// Batches of answers for `n` arrivals each, and the receivers their callers hold.
    #[allow(clippy::type_complexity)]
    fn batch(
        first: usize,
        n: usize,
    ) -> (
        Vec<Answer>,
        Vec<oneshot::Receiver<Result<Accepted, StoreError>>>,
    ) {
        (first..first + n)
            .map(|i| {
                let (tx, rx) = oneshot::channel();
                ((tx, Ok(accepted(i))), rx)
            })
            .unzip()
    }

    #[test]
    fn every_batch_is_answered_once_its_wal_is_synced() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        std::fs::write(dir.path().join("t.db-wal"), b"frames").unwrap();
        let wal = Wal::open(&db).expect("the WAL beside the database");
        let syncer = Syncer::start().unwrap();
        let mut waiting = Vec::new();
        for b in 0..3 {
            let (answers, rx) = batch(b * 10, 10);
            syncer.after_sync(&wal, answers);
            waiting.extend(rx);
        }
        for (i, rx) in waiting.into_iter().enumerate() {
            let got = rx
                .blocking_recv()
                .unwrap()
                .expect("answered after the sync");
            assert_eq!(got.id, format!("lead-{i}"));
        }
    }

    /// A sync that fails must not tell anyone their lead is safe.
    #[test]
    fn a_failed_sync_answers_a_write_error_instead_of_the_answer() {
        // Linux cannot fdatasync a character device (EINVAL): a WAL whose sync always fails.
        let broken = Wal(Arc::new(
            File::options().write(true).open("/dev/null").unwrap(),
        ));
        let syncer = Syncer::start().unwrap();
        let (answers, waiting) = batch(0, 3);
        syncer.after_sync(&broken, answers);
        for rx in waiting {
            match rx.blocking_recv().unwrap() {
                Err(StoreError::Write(reason)) => {
                    assert!(
                        reason.contains("could not sync the write-ahead log"),
                        "{reason}"
                    )
                }
                other => panic!("expected a write error, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_database_without_a_wal_file_has_no_wal_to_sync() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Wal::open(&dir.path().join("none.db")).is_none());
    }
}
