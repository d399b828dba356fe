//! The sled backend: the only code that names sled.
//!
//! Writes are staged in memory and reach sled in groups (write-back): [`Backend::apply`]
//! adds a batch's operations to the staged set, which reads see at once, and the staged set
//! goes to sled in one atomic `apply_batch` at the next [`Backend::flush`], once it holds
//! [`STAGED_MAX_OPS`] operations, and when the backend is dropped. sled 0.34 costs per
//! batch, not per key: every `apply_batch` rolls its log buffer twice (each roll a write and
//! `sync_file_range` on its IO pool, waking every idle pool thread) and takes a
//! process-global write lock that every read of every sled database in the process then
//! waits on. One batch per flush (the node flushes received messages within a second, and
//! at once what it must acknowledge) instead of one per delivery removes most of that.
//!
//! Invariants: a batch given to `apply` is staged whole and committed whole (the staged set
//! goes to sled in one atomic batch), so a crash leaves a message either whole or absent,
//! as before; `flush` commits before it flushes, so every write applied before a flush is
//! durable once it returns. Reads see the staged set over sled's own state.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, RwLock};

use crate::StoreError;
use crate::kv::{Backend, BatchOp, Entry};

/// Default cap of sled's page cache. sled's own default (1 GiB) is far more than a node
/// with tens of thousands of small messages needs.
pub const DEFAULT_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// How long opening waits for another handle of the same database to let go.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Staged operations that make the backend commit them to sled without waiting for a
/// flush: about 600 messages (seven keys each, fewer once counters repeat), a few hundred
/// KiB, so memory stays bounded under a flood while a commit still spreads sled's per-batch
/// cost over hundreds of messages.
pub const STAGED_MAX_OPS: usize = 4096;

/// How to open the sled store.
#[derive(Clone, Debug)]
pub struct SledOptions {
    /// Directory of the database.
    pub path: PathBuf,
    /// Page-cache cap in bytes.
    pub cache_bytes: u64,
}

impl SledOptions {
    /// Options with the default cache cap.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            cache_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}

/// Staged writes: a key's new value, or `None` when it is removed.
type Staged = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// A sled tree holding the whole key space, with writes staged in memory until committed.
#[derive(Debug)]
pub struct SledBackend {
    db: sled::Db,
    /// Applied but not yet committed to sled; read before sled.
    staged: RwLock<Staged>,
    /// Held by `apply` and `commit`, so a commit never drops what another thread staged
    /// while it wrote.
    writing: Mutex<()>,
}

fn backend_error(operation: &'static str) -> impl FnOnce(sled::Error) -> StoreError {
    move |error| StoreError::Backend {
        operation,
        source: Box::new(error),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Both locks guard plain maps that every operation leaves consistent.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SledBackend {
    /// Opens (or creates) the database.
    pub fn open(options: &SledOptions) -> Result<Self, StoreError> {
        let config = sled::Config::new()
            .path(&options.path)
            .cache_capacity(options.cache_bytes)
            .mode(sled::Mode::LowSpace)
            // The node flushes itself (at once for what it acknowledges, within a second
            // for what it received); sled's own periodic flusher thread would only delay
            // the release of the database on close.
            .flush_every_ms(None);
        let started = std::time::Instant::now();
        loop {
            match config.open() {
                Ok(db) => {
                    return Ok(Self {
                        db,
                        staged: RwLock::default(),
                        writing: Mutex::default(),
                    });
                }
                // sled releases its file lock only once its last handle is dropped, which
                // can lag a close in the same process by a moment.
                Err(sled::Error::Io(error))
                    if error.to_string().contains("could not acquire lock")
                        && started.elapsed() < LOCK_WAIT =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(error) => {
                    return Err(StoreError::Open {
                        path: options.path.clone(),
                        source: Box::new(error),
                    });
                }
            }
        }
    }

    /// Opens and closes the database so that sled records a snapshot of its page table
    /// (it does so only while opening): the next open then replays just what is written
    /// after it instead of the whole log. Run once the node stopped cleanly.
    pub fn checkpoint(options: &SledOptions) -> Result<(), StoreError> {
        Self::open(options).map(drop)
    }

    fn staged(&self) -> std::sync::RwLockReadGuard<'_, Staged> {
        self.staged
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn staged_mut(&self) -> std::sync::RwLockWriteGuard<'_, Staged> {
        self.staged
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes the staged set to sled in one atomic batch. Reads keep seeing it staged
    /// until sled holds it.
    fn commit(&self) -> Result<(), StoreError> {
        let _writing = lock(&self.writing);
        self.commit_locked()
    }

    fn commit_locked(&self) -> Result<(), StoreError> {
        let batch = {
            let staged = self.staged();
            if staged.is_empty() {
                return Ok(());
            }
            let mut batch = sled::Batch::default();
            for (key, value) in staged.iter() {
                match value {
                    Some(value) => batch.insert(key.as_slice(), value.as_slice()),
                    None => batch.remove(key.as_slice()),
                }
            }
            batch
        };
        self.db.apply_batch(batch).map_err(backend_error("write"))?;
        // Nothing was staged meanwhile (`writing` is held), so all of it is in sled now.
        self.staged_mut().clear();
        Ok(())
    }

    /// At most `limit` entries of sled itself under `prefix` from `start`.
    fn sled_scan(
        &self,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::new();
        for item in self.db.range(start.to_vec()..).take(limit) {
            let (key, value) = item.map_err(backend_error("scan"))?;
            if !key.starts_with(prefix) {
                break;
            }
            out.push((key.to_vec(), value.to_vec()));
        }
        Ok(out)
    }

    fn sled_scan_rev(&self, prefix: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        self.db
            .scan_prefix(prefix)
            .rev()
            .take(limit)
            .map(|item| {
                item.map(|(key, value)| (key.to_vec(), value.to_vec()))
                    .map_err(backend_error("scan"))
            })
            .collect()
    }

    /// The staged writes under `prefix` from `start` on, in key order.
    fn staged_range(&self, prefix: &[u8], start: &[u8]) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let staged = self.staged();
        if staged.is_empty() {
            return Vec::new();
        }
        staged
            .range::<[u8], _>((Bound::Included(start), Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }
}

/// sled's entries with the staged writes laid over them.
fn overlay(
    sled: Vec<Entry>,
    staged: Vec<(Vec<u8>, Option<Vec<u8>>)>,
) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = sled.into_iter().collect();
    for (key, value) in staged {
        match value {
            Some(value) => {
                merged.insert(key, value);
            }
            None => {
                merged.remove(&key);
            }
        }
    }
    merged
}

fn removals(staged: &[(Vec<u8>, Option<Vec<u8>>)]) -> usize {
    staged.iter().filter(|(_, value)| value.is_none()).count()
}

impl Drop for SledBackend {
    fn drop(&mut self) {
        // sled flushes what it holds when dropped; what is staged goes with it.
        if let Err(error) = self.commit() {
            tracing::error!(%error, "storage failed while closing: staged writes lost");
        }
    }
}

impl Backend for SledBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(staged) = self.staged().get(key) {
            return Ok(staged.clone());
        }
        Ok(self
            .db
            .get(key)
            .map_err(backend_error("read"))?
            .map(|value| value.to_vec()))
    }

    fn scan(&self, prefix: &[u8], start: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        let staged = self.staged_range(prefix, start);
        if staged.is_empty() {
            return self.sled_scan(prefix, start, limit);
        }
        // Each staged removal may hide one of sled's entries: read that many more.
        let sled = self.sled_scan(prefix, start, limit.saturating_add(removals(&staged)))?;
        Ok(overlay(sled, staged).into_iter().take(limit).collect())
    }

    fn scan_rev(&self, prefix: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        let staged = self.staged_range(prefix, prefix);
        if staged.is_empty() {
            return self.sled_scan_rev(prefix, limit);
        }
        let sled = self.sled_scan_rev(prefix, limit.saturating_add(removals(&staged)))?;
        Ok(overlay(sled, staged)
            .into_iter()
            .rev()
            .take(limit)
            .collect())
    }

    fn is_empty(&self) -> Result<bool, StoreError> {
        let staged = self.staged();
        if staged.values().any(Option::is_some) {
            return Ok(false);
        }
        if staged.is_empty() {
            return Ok(self.db.is_empty());
        }
        drop(staged);
        Ok(self.scan(&[], &[], 1)?.is_empty())
    }

    fn apply(&self, ops: Vec<BatchOp>) -> Result<(), StoreError> {
        let _writing = lock(&self.writing);
        let full = {
            let mut staged = self.staged_mut();
            for op in ops {
                match op {
                    BatchOp::Put(key, value) => staged.insert(key, Some(value)),
                    BatchOp::Delete(key) => staged.insert(key, None),
                };
            }
            staged.len() >= STAGED_MAX_OPS
        };
        if full {
            self.commit_locked()?;
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.commit()?;
        self.db.flush().map(drop).map_err(backend_error("flush"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny deterministic generator (no RNG crate in the store).
    struct Steps(u64);

    impl Steps {
        fn next(&mut self, below: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % below
        }
    }

    fn model_scan(
        model: &BTreeMap<Vec<u8>, Vec<u8>>,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
    ) -> Vec<Entry> {
        model
            .range(start.to_vec()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .take(limit)
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }

    #[test]
    fn staged_writes_read_as_if_they_were_in_sled_before_and_after_each_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = SledOptions::new(dir.path().join("db"));
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut steps = Steps(0x9E37_79B9_7F4A_7C15);
        {
            let backend = SledBackend::open(&options).expect("open");
            for round in 0..400 {
                let mut ops = Vec::new();
                for _ in 0..steps.next(6) {
                    let key = vec![b'a' + steps.next(3) as u8, steps.next(16) as u8];
                    if steps.next(3) == 0 {
                        model.remove(&key);
                        ops.push(BatchOp::Delete(key));
                    } else {
                        let value = vec![round as u8; 1 + steps.next(4) as usize];
                        model.insert(key.clone(), value.clone());
                        ops.push(BatchOp::Put(key, value));
                    }
                }
                backend.apply(ops).expect("apply");
                if steps.next(10) == 0 {
                    backend.flush().expect("flush");
                }
                for prefix in [&b""[..], b"a", b"b", b"c"] {
                    let start = [prefix, &[steps.next(16) as u8][..]].concat();
                    let limit = 1 + steps.next(8) as usize;
                    assert_eq!(
                        backend.scan(prefix, &start, limit).expect("scan"),
                        model_scan(&model, prefix, &start, limit),
                        "scan of {prefix:?} from {start:?}, round {round}"
                    );
                    let mut newest = model_scan(&model, prefix, prefix, usize::MAX);
                    newest.reverse();
                    newest.truncate(limit);
                    assert_eq!(
                        backend.scan_rev(prefix, limit).expect("scan_rev"),
                        newest,
                        "reverse scan of {prefix:?}, round {round}"
                    );
                }
                let key = vec![b'a' + steps.next(3) as u8, steps.next(16) as u8];
                assert_eq!(backend.get(&key).expect("get"), model.get(&key).cloned());
                assert_eq!(backend.is_empty().expect("empty"), model.is_empty());
            }
            backend
                .apply(vec![BatchOp::Put(b"z".to_vec(), b"last".to_vec())])
                .expect("apply");
            model.insert(b"z".to_vec(), b"last".to_vec());
            // Dropped without a flush: what is staged is committed on the way out.
        }
        let backend = SledBackend::open(&options).expect("reopen");
        assert_eq!(
            backend.scan(&[], &[], usize::MAX).expect("scan"),
            model_scan(&model, &[], &[], usize::MAX)
        );
    }

    #[test]
    fn a_full_staged_set_is_committed_without_a_flush() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend = SledBackend::open(&SledOptions::new(dir.path().join("db"))).expect("open");
        let ops = (0..STAGED_MAX_OPS as u32)
            .map(|n| BatchOp::Put(n.to_be_bytes().to_vec(), vec![1]))
            .collect();
        backend.apply(ops).expect("apply");
        assert!(backend.staged().is_empty(), "committed once full");
        assert_eq!(backend.db.len(), STAGED_MAX_OPS);
    }
}
