//! A small sled database of its own for the node's notification outbox (`DATA/outbox/`):
//! ordered keys, atomic batches, a flush that returns once they are durable. The layout of
//! its keys belongs to the node (`node/src/notify/outbox.rs`); this type keeps sled inside
//! this crate.
//!
//! It is separate from the message store so that sending notices never waits on, nor
//! delays, the writer thread's staged commits.

use std::path::Path;

use crate::StoreError;

/// sled's page cache for the outbox: it holds a few hundred small records.
const OUTBOX_CACHE_BYTES: u64 = 1024 * 1024;

/// A key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// The outbox's key-value database.
#[derive(Clone, Debug)]
pub struct OutboxDb {
    db: sled::Db,
}

fn failed(operation: &'static str) -> impl FnOnce(sled::Error) -> StoreError {
    move |error| StoreError::Backend {
        operation,
        source: Box::new(error),
    }
}

impl OutboxDb {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(OUTBOX_CACHE_BYTES)
            .mode(sled::Mode::LowSpace)
            .flush_every_ms(None)
            .open()
            .map_err(|error| StoreError::Open {
                path: path.to_owned(),
                source: Box::new(error),
            })?;
        Ok(Self { db })
    }

    /// Applies every put (`Some`) and removal (`None`) atomically, then flushes.
    pub fn apply(&self, ops: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (key, value) in ops {
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
        }
        self.db.apply_batch(batch).map_err(failed("outbox write"))?;
        self.db.flush().map_err(failed("outbox flush"))?;
        Ok(())
    }

    /// The value at `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .db
            .get(key)
            .map_err(failed("outbox read"))?
            .map(|value| value.to_vec()))
    }

    /// Every (key, value) whose key starts with `prefix`, in key order, at most `limit`.
    pub fn scan(&self, prefix: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        self.db
            .scan_prefix(prefix)
            .take(limit)
            .map(|entry| {
                entry
                    .map(|(key, value)| (key.to_vec(), value.to_vec()))
                    .map_err(failed("outbox read"))
            })
            .collect()
    }

    /// The last `limit` (key, value) pairs under `prefix`, newest (highest key) first.
    pub fn scan_last(&self, prefix: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        self.db
            .scan_prefix(prefix)
            .rev()
            .take(limit)
            .map(|entry| {
                entry
                    .map(|(key, value)| (key.to_vec(), value.to_vec()))
                    .map_err(failed("outbox read"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_durable_across_reopen_and_scans_are_ordered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("outbox");
        {
            let db = OutboxDb::open(&path).expect("open");
            db.apply(vec![
                (b"p/b".to_vec(), Some(b"2".to_vec())),
                (b"p/a".to_vec(), Some(b"1".to_vec())),
                (b"s/x".to_vec(), Some(b"3".to_vec())),
            ])
            .expect("apply");
            db.apply(vec![(b"p/b".to_vec(), None)]).expect("remove");
        }
        let db = OutboxDb::open(&path).expect("reopen");
        assert_eq!(
            db.scan(b"p/", 10).expect("scan"),
            vec![(b"p/a".to_vec(), b"1".to_vec())]
        );
        assert_eq!(db.get(b"s/x").expect("get"), Some(b"3".to_vec()));
        assert_eq!(db.scan_last(b"", 1).expect("last")[0].0, b"s/x".to_vec());
    }
}
