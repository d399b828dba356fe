//! The kept numbers read on every insert and on the validation path (each author's
//! watermark and stored bytes, the message count), cached in memory and kept exact.
//!
//! Invariant: the cache is updated from the very operations written (every write of the
//! store logic goes through [`KvStore::apply`](super::KvStore)), after the backend took
//! them; a value read from the backend on a miss is cached only if no write happened in
//! between (a generation count), so a reader never caches a value older than the
//! backend's. A failed write, and an upgrade (which writes counters directly), clear it.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use super::BatchOp;
use super::layout::{COUNT, STORED_BYTES, WATERMARK};

/// Most kept numbers cached: two per author and the count. Statements may come from any
/// key, so a flood of signers could grow it; beyond this it starts again empty.
const KEPT_CACHE_MAX: usize = 4096;

#[derive(Debug, Default)]
struct Inner {
    values: HashMap<Vec<u8>, u64>,
    generation: u64,
}

/// Kept numbers by key.
#[derive(Debug, Default)]
pub(super) struct KeptCache {
    inner: Mutex<Inner>,
}

/// Whether a key holds a kept number this cache serves.
pub(super) fn is_cached(key: &[u8]) -> bool {
    matches!(key.first(), Some(&(WATERMARK | STORED_BYTES | COUNT)))
}

impl KeptCache {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        // Plain data, consistent after every operation.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached number, or the generation to pass to [`KeptCache::fill`] after reading
    /// the backend.
    pub(super) fn lookup(&self, key: &[u8]) -> Result<u64, u64> {
        let inner = self.inner();
        inner.values.get(key).copied().ok_or(inner.generation)
    }

    /// Caches a number read from the backend, unless a write happened since `generation`.
    pub(super) fn fill(&self, key: &[u8], value: u64, generation: u64) {
        let mut inner = self.inner();
        if inner.generation != generation {
            return;
        }
        if inner.values.len() >= KEPT_CACHE_MAX {
            inner.values.clear();
        }
        inner.values.insert(key.to_vec(), value);
    }

    /// The cached numbers an operation list writes: (key, new value, absent meaning 0).
    pub(super) fn touched(ops: &[BatchOp]) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        ops.iter()
            .filter_map(|op| match op {
                BatchOp::Put(key, value) if is_cached(key) => {
                    Some((key.clone(), Some(value.clone())))
                }
                BatchOp::Delete(key) if is_cached(key) => Some((key.clone(), None)),
                _ => None,
            })
            .collect()
    }

    /// Records what the backend now holds for `touched`.
    pub(super) fn written(&self, touched: Vec<(Vec<u8>, Option<Vec<u8>>)>) {
        let mut inner = self.inner();
        inner.generation += 1;
        for (key, value) in touched {
            let number = match value.as_deref().map(<[u8; 8]>::try_from) {
                None => Some(0),
                Some(Ok(bytes)) => Some(u64::from_be_bytes(bytes)),
                // Not a number: let the next read report it as corrupt.
                Some(Err(_)) => None,
            };
            match number {
                Some(number)
                    if inner.values.contains_key(&key) || inner.values.len() < KEPT_CACHE_MAX =>
                {
                    inner.values.insert(key, number);
                }
                _ => {
                    inner.values.remove(&key);
                }
            }
        }
    }

    /// Forgets everything.
    pub(super) fn clear(&self) {
        let mut inner = self.inner();
        inner.generation += 1;
        inner.values.clear();
    }
}

#[cfg(test)]
mod tests {
    use solidarity_proto::{AuthorKey, MessageId};

    use crate::{NewMessage, SledOptions, SledStore, Store};

    fn message(author: u8, seq: u64, expires_at: Option<u64>) -> NewMessage {
        let mut id = [0; 32];
        id[0] = author;
        id[1..9].copy_from_slice(&seq.to_be_bytes());
        NewMessage {
            id: MessageId(id),
            author: AuthorKey([author; 32]),
            seq,
            kind: "alert".into(),
            created_at: seq,
            expires_at,
            refers_to: None,
            envelope: vec![author; usize::try_from(seq).unwrap_or(1) % 7 + 1],
        }
    }

    fn kept_numbers(store: &SledStore) -> Vec<u64> {
        let mut numbers = vec![store.len().expect("len") as u64];
        for author in 1..=3u8 {
            let author = AuthorKey([author; 32]);
            numbers.push(store.watermark(&author).expect("watermark"));
            numbers.push(store.stored_bytes(&author).expect("bytes"));
        }
        numbers
    }

    #[test]
    fn cached_kept_numbers_equal_what_a_reopened_store_reads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = SledOptions::new(dir.path().join("db"));
        let store = SledStore::open(&options).expect("open");
        let mut seen = Vec::new();
        for round in 0..6u64 {
            // Gaps (seq 4 of author 2 comes late), repeats, and messages that expire.
            let batch: Vec<NewMessage> = (1..=3u8)
                .flat_map(|author| {
                    (round * 3 + 1..=round * 3 + 3)
                        .filter(move |seq| !(author == 2 && *seq == 4 && round < 4))
                        .map(move |seq| message(author, seq, (author == 3).then_some(100 + seq)))
                })
                .chain(std::iter::once(message(1, 1, None)))
                .collect();
            store.insert_batch(&batch).expect("insert");
            if round == 4 {
                store.insert_batch(&[message(2, 4, None)]).expect("insert");
            }
            if round % 2 == 1 {
                store.expire(100 + round * 3).expect("expire");
            }
            seen = kept_numbers(&store);
        }
        assert_eq!(seen[3], 18, "author 2's gap at 4 filled");
        store.flush().expect("flush");
        drop(store);
        let reopened = SledStore::open(&options).expect("reopen");
        assert_eq!(kept_numbers(&reopened), seen);
    }
}
