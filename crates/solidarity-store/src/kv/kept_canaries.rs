//! Each author's two latest canaries, kept past their expiry (prefix `n`, layout 5), so a
//! member gone silent stays silent after its last canary expired.

use super::*;

impl<B: Backend> KvStore<B> {
    /// An author's kept canaries, oldest first.
    pub(super) fn kept_of(&self, author: &AuthorKey) -> Result<Vec<StoredEnvelope>, StoreError> {
        self.backend
            .get(&key(KEPT_CANARIES, &[author.as_bytes()]))?
            .map_or(Ok(Vec::new()), |value| decode_kept(&value))
    }

    /// The writes that add `messages` (canaries) to their authors' kept canaries.
    pub(super) fn keep_canaries<'a>(
        &self,
        messages: impl IntoIterator<Item = (&'a AuthorKey, StoredEnvelope)>,
    ) -> Result<Vec<BatchOp>, StoreError> {
        let mut kept: BTreeMap<AuthorKey, Vec<StoredEnvelope>> = BTreeMap::new();
        for (author, stored) in messages {
            let held = match kept.entry(*author) {
                std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::btree_map::Entry::Vacant(entry) => {
                    entry.insert(self.kept_of(author)?)
                }
            };
            keep_latest(held, stored);
        }
        kept.into_iter()
            .map(|(author, held)| {
                Ok(BatchOp::Put(
                    key(KEPT_CANARIES, &[author.as_bytes()]),
                    encode_kept(&held)?,
                ))
            })
            .collect()
    }

    /// Layout 4 → 5: fills the kept canaries from the canaries stored, a chunk at a time.
    pub(crate) fn backfill_kept_canaries(&self) -> Result<(), StoreError> {
        let prefix = recent_prefix(KEPT_KIND);
        let mut start = prefix.clone();
        loop {
            let chunk = self.backend.scan(&prefix, &start, SCAN_CHUNK)?;
            let full = chunk.len() == SCAN_CHUNK;
            let next = chunk.last().map(|(last, _)| {
                let mut next = last.clone();
                next.push(0);
                next
            });
            let mut canaries = Vec::new();
            for stored in self.envelopes_of(chunk)? {
                if let Some(meta) = self.meta(&stored.id)? {
                    canaries.push((meta.author, stored));
                }
            }
            let ops = self.keep_canaries(
                canaries
                    .iter()
                    .map(|(author, stored)| (author, stored.clone())),
            )?;
            if !ops.is_empty() {
                self.apply(ops)?;
            }
            match next {
                Some(next) if full => start = next,
                _ => return Ok(()),
            }
        }
    }
}
