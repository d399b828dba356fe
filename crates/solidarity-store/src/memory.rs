//! In-memory backend for tests and simulations.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use crate::StoreError;
use crate::kv::{Backend, BatchOp, Entry};

/// A `BTreeMap` behind a mutex. "Flush" is a no-op: nothing here survives the process.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    map: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemoryBackend {
    fn map(&self) -> MutexGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>> {
        // A panic while holding this lock leaves the map consistent (every operation is a
        // single map call), so a poisoned lock is safe to keep using.
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Backend for MemoryBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map().get(key).cloned())
    }

    fn scan(&self, prefix: &[u8], start: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        Ok(self
            .map()
            .range(start.to_vec()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .take(limit)
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect())
    }

    fn scan_rev(&self, prefix: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        Ok(self
            .map()
            .range(prefix.to_vec()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .take(limit)
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect())
    }

    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.map().is_empty())
    }

    fn apply(&self, ops: Vec<BatchOp>) -> Result<(), StoreError> {
        let mut map = self.map();
        for op in ops {
            match op {
                BatchOp::Put(key, value) => {
                    map.insert(key, value);
                }
                BatchOp::Delete(key) => {
                    map.remove(&key);
                }
            }
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
