//! The ordered key-value space the store logic runs over.

use crate::StoreError;

/// A key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// One write of a batch.
#[derive(Clone, Debug)]
pub enum BatchOp {
    /// Set a key.
    Put(Vec<u8>, Vec<u8>),
    /// Remove a key.
    Delete(Vec<u8>),
}

/// An ordered key-value space with atomic batches.
pub trait Backend: Send + Sync + 'static {
    /// The value of a key.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// At most `limit` entries whose key starts with `prefix` and is ≥ `start`, in key order.
    fn scan(&self, prefix: &[u8], start: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError>;
    /// At most `limit` entries whose key starts with `prefix`, greatest key first.
    fn scan_rev(&self, prefix: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError>;
    /// Whether the backend holds no key at all.
    fn is_empty(&self) -> Result<bool, StoreError>;
    /// Applies all ops atomically.
    fn apply(&self, ops: Vec<BatchOp>) -> Result<(), StoreError>;
    /// Makes applied batches durable.
    fn flush(&self) -> Result<(), StoreError>;
}
