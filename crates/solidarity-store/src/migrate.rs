//! Upgrades a store written by an older layout in place, so that a new version never
//! strands a user's data.
//!
//! Layout `FIRST_MIGRATABLE + i` is turned into `FIRST_MIGRATABLE + i + 1` by `steps()[i]`.
//! Every step must be idempotent (a crash part-way runs it again from the start at the next
//! open) and must read the old key space in chunks, never all at once. The layout byte is
//! written after the step's last batch, so a store is never stamped with a layout it does
//! not have.

use std::collections::BTreeMap;

use solidarity_proto::AuthorKey;

use crate::StoreError;
use crate::kv::{Backend, BatchOp, KvStore};

/// The oldest layout this version can upgrade; older stores must be moved aside.
pub const FIRST_MIGRATABLE: u8 = 3;

/// One upgrade from a layout to the next.
pub(crate) struct Step<B> {
    /// What the step adds, for the log line at open.
    pub(crate) what: &'static str,
    pub(crate) run: fn(&KvStore<B>) -> Result<(), StoreError>,
}

/// The upgrades, in order: `steps()[i]` turns layout `FIRST_MIGRATABLE + i` into the next.
/// [`crate::kv::LAYOUT_VERSION`] is `FIRST_MIGRATABLE + steps().len()`.
pub(crate) fn steps<B: Backend>() -> Vec<Step<B>> {
    vec![
        Step {
            what: "referring messages indexed per signer with counts, messages by kind per signer, and stored bytes per signer",
            run: per_signer_counts,
        },
        Step {
            what: "each author's two latest canaries, kept past their expiry (prefix n)",
            run: KvStore::backfill_kept_canaries,
        },
    ]
}

/// Entries read per batch of a step.
const CHUNK: usize = 1024;

/// Layout 3 → 4: moves the `T` index (target ‖ id) to `g` (per kind and signer, in seq
/// order) with its `h` counts, and fills the `j` index (kind by signer by age) and the
/// `i` stored bytes per signer. Counts are
/// rebuilt from scratch and written whole at the end, so a rerun after a crash ends the
/// same.
fn per_signer_counts<B: Backend>(store: &KvStore<B>) -> Result<(), StoreError> {
    let backend = store.backend();
    let mut bytes: BTreeMap<AuthorKey, u64> = BTreeMap::new();
    let mut referring: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    // Every stored message, by its `E` locator.
    let envelope_prefix = [b'E'];
    let mut start = envelope_prefix.to_vec();
    loop {
        let chunk = backend.scan(&envelope_prefix, &start, CHUNK)?;
        let mut index = Vec::new();
        for (envelope_key, _) in &chunk {
            let id = crate::kv::trailing_id(envelope_key)?;
            // An unreadable record (its expiry key gone) is left to the expiry sweep.
            let Ok(Some(record)) = store.record_of(&id) else {
                continue;
            };
            let (meta, envelope) = crate::kv::decode_record(&record)?;
            index.push(BatchOp::Put(
                crate::kv::by_author_key(&meta.kind, &meta.author, meta.created_at, &id),
                Vec::new(),
            ));
            let counted = u64::try_from(envelope.len()).unwrap_or(u64::MAX);
            let total = bytes.entry(meta.author).or_default();
            *total = total.saturating_add(counted);
            if let Some(target) = meta.refers_to {
                let group = crate::kv::referring_group(&target, &meta.kind, &meta.author);
                index.push(BatchOp::Put(
                    crate::kv::referring_key(&group, meta.seq, &id),
                    Vec::new(),
                ));
                *referring.entry(group).or_default() += 1;
            }
        }
        backend.apply(index)?;
        match chunk.last() {
            Some((last, _)) if chunk.len() == CHUNK => {
                start = last.clone();
                start.push(0);
            }
            _ => break,
        }
    }
    let counts: Vec<BatchOp> = bytes
        .into_iter()
        .map(|(author, total)| {
            BatchOp::Put(
                crate::kv::stored_bytes_key(&author),
                total.to_be_bytes().to_vec(),
            )
        })
        .chain(referring.into_iter().map(|(group, total)| {
            BatchOp::Put(
                crate::kv::referring_count_key(&group),
                total.to_be_bytes().to_vec(),
            )
        }))
        .collect();
    backend.apply(counts)?;
    // The old index goes last: a crash before this point reruns the step on complete data.
    let old = [crate::kv::REFERS_V3];
    loop {
        let chunk = backend.scan(&old, &old, CHUNK)?;
        if chunk.is_empty() {
            return Ok(());
        }
        backend.apply(
            chunk
                .into_iter()
                .map(|(key, _)| BatchOp::Delete(key))
                .collect(),
        )?;
    }
}
