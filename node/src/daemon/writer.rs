//! The single store writer: a dedicated thread that batches queued writes, applies them,
//! flushes when the batch needs it (group commit) and then completes each job.
//!
//! Invariants: a *durable* job (a message this node signed for the CLI, every maintenance
//! write) completes `Ok` only after its batch was flushed, and a flush makes every earlier
//! write durable too. A message received from a peer completes once applied; it becomes
//! durable with the next flush (the actor asks for one every second while such writes
//! wait): a crash before then loses nothing a peer cannot send again by sync. After the
//! first failure the thread fails every queued job and stops, so nothing is acknowledged
//! that is not on disk. The thread never waits on the node actor (completions are
//! oneshots), so the two cannot deadlock.

use std::sync::Arc;

use solidarity_store::{InsertOutcome, NewMessage, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

/// Queued writes before submitters wait: a burst of gossip or one sync page.
pub const WRITE_QUEUE: usize = 1024;
/// Most writes applied under one flush.
const MAX_BATCH: usize = 256;

/// The store failed; shared by every job of the failed batch.
pub type WriteError = Arc<StoreError>;

/// Writes other than inserts, applied after the batch's inserts and before its flush.
pub enum Maintenance {
    /// Delete expired messages; yields how many.
    Expire { now_ms: u64 },
    /// Keep fork evidence and mark its author compromised; yields 1 when newly marked.
    RecordFork {
        evidence: NewMessage,
        detected_at: u64,
        from_seq: u64,
    },
    /// Lift an author's compromise mark; yields 0.
    ClearCompromise { author: solidarity_proto::AuthorKey },
    /// Nothing but the flush: makes received messages durable; yields 0.
    Flush,
}

impl Maintenance {
    fn apply(&self, store: &dyn Store) -> Result<usize, StoreError> {
        match self {
            Maintenance::Expire { now_ms } => store.expire(*now_ms),
            Maintenance::RecordFork {
                evidence,
                detected_at,
                from_seq,
            } => store
                .record_fork(evidence, *detected_at, *from_seq)
                .map(usize::from),
            Maintenance::ClearCompromise { author } => store.clear_compromise(author).map(|()| 0),
            Maintenance::Flush => Ok(0),
        }
    }
}

enum WriteOp {
    Insert {
        message: NewMessage,
        /// Complete only once flushed.
        durable: bool,
        done: oneshot::Sender<Result<InsertOutcome, WriteError>>,
    },
    Maintain {
        task: Maintenance,
        done: oneshot::Sender<Result<usize, WriteError>>,
    },
}

/// Why a write was not done.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the store writer has stopped after a storage failure")]
    WriterStopped,
}

/// Handle to the writer thread.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<WriteOp>,
}

impl Writer {
    /// Starts the writer thread.
    pub fn start(store: Arc<dyn Store>) -> std::io::Result<(Self, std::thread::JoinHandle<()>)> {
        let (queue, jobs) = mpsc::channel(WRITE_QUEUE);
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(store.as_ref(), jobs))?;
        Ok((Self { queue }, thread))
    }

    /// Queues a message; the receiver yields once it is stored (or not), and once it is
    /// flushed when `durable`.
    pub async fn insert(
        &self,
        message: NewMessage,
        durable: bool,
    ) -> Result<oneshot::Receiver<Result<InsertOutcome, WriteError>>, SubmitError> {
        let (done, receiver) = oneshot::channel();
        self.queue
            .send(WriteOp::Insert {
                message,
                durable,
                done,
            })
            .await
            .map_err(|_| SubmitError::WriterStopped)?;
        Ok(receiver)
    }

    /// Queues a maintenance write.
    pub async fn maintain(
        &self,
        task: Maintenance,
    ) -> Result<oneshot::Receiver<Result<usize, WriteError>>, SubmitError> {
        let (done, receiver) = oneshot::channel();
        self.queue
            .send(WriteOp::Maintain { task, done })
            .await
            .map_err(|_| SubmitError::WriterStopped)?;
        Ok(receiver)
    }
}

fn run(store: &dyn Store, mut jobs: mpsc::Receiver<WriteOp>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut unflushed = false;
    while let Some(first) = jobs.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        match apply(store, &mut batch) {
            Ok(flushed) => unflushed = !flushed,
            Err(error) => {
                tracing::error!(%error, "storage failed; refusing every further write");
                jobs.close();
                while let Ok(op) = jobs.try_recv() {
                    fail(op, &error);
                }
                return;
            }
        }
    }
    if unflushed && let Err(error) = store.flush() {
        tracing::error!(%error, "storage failed at the final flush");
    }
}

/// Applies one batch, flushes it if a job needs that, and completes its jobs; returns
/// whether it flushed. On failure completes them with the error.
fn apply(store: &dyn Store, batch: &mut Vec<WriteOp>) -> Result<bool, WriteError> {
    let flush = batch.iter().any(|op| match op {
        WriteOp::Insert { durable, .. } => *durable,
        WriteOp::Maintain { .. } => true,
    });
    // The messages move into the batch (no copy of their envelopes); each insert keeps
    // only its completion.
    let mut messages = Vec::with_capacity(batch.len());
    let mut jobs = Vec::with_capacity(batch.len());
    for op in batch.drain(..) {
        jobs.push(match op {
            WriteOp::Insert { message, done, .. } => {
                messages.push(message);
                Job::Insert(done)
            }
            WriteOp::Maintain { task, done } => Job::Maintain(task, done),
        });
    }
    let result = (|| {
        let outcomes = store.insert_batch(&messages)?;
        let mut maintained = Vec::new();
        for job in &jobs {
            if let Job::Maintain(task, _) = job {
                maintained.push(task.apply(store)?);
            }
        }
        if flush {
            store.flush()?;
        }
        Ok::<_, StoreError>((outcomes, maintained))
    })()
    .map_err(Arc::new);
    match result {
        Ok((outcomes, maintained)) => {
            let mut outcomes = outcomes.into_iter();
            let mut maintained = maintained.into_iter();
            for job in jobs {
                // A submitter that stopped waiting is fine: the write is done either way.
                match job {
                    Job::Insert(done) => {
                        let _ = done.send(outcomes.next().ok_or_else(|| {
                            Arc::new(StoreError::Corrupt {
                                what: "batch outcome",
                            })
                        }));
                    }
                    Job::Maintain(_, done) => {
                        let _ = done.send(Ok(maintained.next().unwrap_or(0)));
                    }
                }
            }
            Ok(flush)
        }
        Err(error) => {
            for job in jobs {
                match job {
                    Job::Insert(done) => {
                        let _ = done.send(Err(error.clone()));
                    }
                    Job::Maintain(_, done) => {
                        let _ = done.send(Err(error.clone()));
                    }
                }
            }
            Err(error)
        }
    }
}

/// A job of a batch once its message moved into the store's batch.
enum Job {
    Insert(oneshot::Sender<Result<InsertOutcome, WriteError>>),
    Maintain(Maintenance, oneshot::Sender<Result<usize, WriteError>>),
}

fn fail(op: WriteOp, error: &WriteError) {
    match op {
        WriteOp::Insert { done, .. } => {
            let _ = done.send(Err(error.clone()));
        }
        WriteOp::Maintain { done, .. } => {
            let _ = done.send(Err(error.clone()));
        }
    }
}
