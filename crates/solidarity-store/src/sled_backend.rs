//! The sled backend: the only code that names sled.

use std::path::PathBuf;

use crate::StoreError;
use crate::kv::{Backend, BatchOp, Entry};

/// Default cap of sled's page cache. sled's own default (1 GiB) is far more than a node
/// with tens of thousands of small messages needs.
pub const DEFAULT_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// How long opening waits for another handle of the same database to let go.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

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

/// A sled tree holding the whole key space.
#[derive(Debug)]
pub struct SledBackend {
    db: sled::Db,
}

fn backend_error(operation: &'static str) -> impl FnOnce(sled::Error) -> StoreError {
    move |error| StoreError::Backend {
        operation,
        source: Box::new(error),
    }
}

impl SledBackend {
    /// Opens (or creates) the database.
    pub fn open(options: &SledOptions) -> Result<Self, StoreError> {
        let config = sled::Config::new()
            .path(&options.path)
            .cache_capacity(options.cache_bytes)
            .mode(sled::Mode::LowSpace)
            // The node flushes after every batch (group commit); sled's own periodic
            // flusher thread would only delay the release of the database on close.
            .flush_every_ms(None);
        let started = std::time::Instant::now();
        loop {
            match config.open() {
                Ok(db) => return Ok(Self { db }),
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
}

impl SledBackend {
    /// Opens and closes the database so that sled records a snapshot of its page table
    /// (it does so only while opening): the next open then replays just what is written
    /// after it instead of the whole log. Run once the node stopped cleanly.
    pub fn checkpoint(options: &SledOptions) -> Result<(), StoreError> {
        Self::open(options).map(drop)
    }
}

impl Backend for SledBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .db
            .get(key)
            .map_err(backend_error("read"))?
            .map(|value| value.to_vec()))
    }

    fn scan(&self, prefix: &[u8], start: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
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

    fn scan_rev(&self, prefix: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
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

    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.db.is_empty())
    }

    fn apply(&self, ops: Vec<BatchOp>) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for op in ops {
            match op {
                BatchOp::Put(key, value) => batch.insert(key, value),
                BatchOp::Delete(key) => batch.remove(key),
            }
        }
        self.db.apply_batch(batch).map_err(backend_error("write"))
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(drop).map_err(backend_error("flush"))
    }
}
