//! Expiry: deleting the records of messages whose time is up, keeping their chain
//! tombstones, and destroying the sealing keys of hours that ended.

use std::collections::BTreeMap;

use super::*;

impl<B: Backend> KvStore<B> {
    /// Deletes what expired at `now_ms` (see [`Store::expire`]), in chunks: each chunk's
    /// deletions, tombstones and counter updates are one batch.
    pub(super) fn expire_at(&self, now_ms: u64) -> Result<usize, StoreError> {
        let prefix = [EXPIRY];
        let mut expired = 0;
        loop {
            let mut ops = Vec::new();
            let mut removed = 0u64;
            // What this chunk takes from kept counters.
            let mut taken: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
            let mut more = false;
            let chunk = self.backend.scan(&prefix, &prefix, SCAN_CHUNK)?;
            let full = chunk.len() == SCAN_CHUNK;
            for (expiry_key, _) in chunk {
                let expires_at = read_u64(expiry_key.get(1..9).ok_or(StoreError::Corrupt {
                    what: "expiry index",
                })?)?;
                if expires_at > now_ms {
                    break;
                }
                more = full;
                let id = trailing_id(&expiry_key)?;
                let readable = match self.record(&id) {
                    Err(StoreError::Corrupt { .. }) => None,
                    other => other?
                        .map(|record| {
                            decode_record(&record).map(|(meta, envelope)| (meta, envelope.len()))
                        })
                        .transpose()
                        .unwrap_or(None),
                };
                if let Some((meta, envelope_len)) = readable {
                    let id_bytes = id.as_bytes();
                    *taken.entry(stored_bytes_key(&meta.author)).or_default() +=
                        counted_bytes(envelope_len);
                    ops.push(BatchOp::Delete(key(ENVELOPE, &[id_bytes])));
                    // The chain keeps the id alone: the tombstone.
                    ops.push(BatchOp::Put(
                        chain_key(&meta.author, meta.seq),
                        id_bytes.to_vec(),
                    ));
                    ops.push(BatchOp::Delete(recent_key(
                        &meta.kind,
                        meta.created_at,
                        &id,
                    )));
                    ops.push(BatchOp::Delete(by_author_key(
                        &meta.kind,
                        &meta.author,
                        meta.created_at,
                        &id,
                    )));
                    if let Some(target) = meta.refers_to {
                        let group = referring_group(&target, &meta.kind, &meta.author);
                        ops.push(BatchOp::Delete(referring_key(&group, meta.seq, &id)));
                        *taken.entry(referring_count_key(&group)).or_default() += 1;
                    }
                    removed += 1;
                } else if let Some(locator) = self.backend.get(&key(ENVELOPE, &[id.as_bytes()]))? {
                    // Its record cannot be read (its key lost or damaged): it expires all
                    // the same, or it would stay stored and unreadable for ever.
                    tracing::warn!(
                        "an expiring message's record cannot be read (is the key file damaged?); deleted as expired"
                    );
                    ops.push(BatchOp::Delete(key(ENVELOPE, &[id.as_bytes()])));
                    ops.push(BatchOp::Put(
                        key(CHAIN, &[&locator]),
                        id.as_bytes().to_vec(),
                    ));
                    removed += 1;
                }
                ops.push(BatchOp::Delete(expiry_key));
            }
            for (counter, delta) in std::mem::take(&mut taken) {
                let left = self.kept(&counter)?.saturating_sub(delta);
                ops.push(if left == 0 {
                    BatchOp::Delete(counter)
                } else {
                    BatchOp::Put(counter, left.to_be_bytes().to_vec())
                });
            }
            if removed > 0 {
                let count = self.stored_count()?.saturating_sub(removed);
                ops.push(BatchOp::Put(vec![COUNT], count.to_be_bytes().to_vec()));
            }
            if !ops.is_empty() {
                self.apply(ops)?;
            }
            expired += usize::try_from(removed).unwrap_or(usize::MAX);
            if !more {
                break;
            }
        }
        // Only once the deletions are durable may the keys go: a crash in between must not
        // leave records that are live but unreadable.
        if self.keys.any_ended(now_ms) {
            self.backend.flush()?;
            let shredded = self.keys.shred_ended(now_ms)?;
            tracing::debug!(keys = shredded, "expiry keys of ended hours destroyed");
        }
        Ok(expired)
    }
}
