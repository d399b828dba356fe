//! The store logic, written once over an ordered key-value [`Backend`].
//!
//! Key space, layout version 5 (all integers big-endian, so byte order is numeric order):
//!
//! | prefix | key                          | value                                   |
//! |--------|------------------------------|-----------------------------------------|
//! | `E`    | id                           | author ‖ seq: where the record is (seq 0: a statement) |
//! | `C`    | author ‖ seq                 | id ‖ stored record; only the id after expiry (the tombstone) |
//! | `R`    | kind ‖ 0x00 ‖ created_at ‖ id | empty: messages of a kind by age       |
//! | `g`    | target ‖ kind ‖ 0x00 ‖ author ‖ seq ‖ id | empty: messages referring to `target` (updates, endorsements, withdrawals), per kind and signer in chain order |
//! | `h`    | target ‖ kind ‖ 0x00 ‖ author | how many `g` entries that signer has there |
//! | `i`    | author                       | envelope bytes stored of that signer (chain and statements) |
//! | `j`    | kind ‖ 0x00 ‖ author ‖ created_at ‖ id | empty: messages of a kind per signer by age |
//! | `X`    | expires_at ‖ id              | empty                                   |
//! | `S`    | author ‖ id                  | record of a statement (seq 0, outside the chain) |
//! | `W`    | author                       | the author's watermark (highest gap-free seq) |
//! | `N`    | (none)                       | number of stored envelopes              |
//! | `V`    | (none)                       | layout version                          |
//! | `F`    | author ‖ seq ‖ id            | envelope conflicting with the chain (fork evidence) |
//! | `Z`    | author                       | detected_at ‖ from_seq: the author is marked compromised |
//! | `n`    | author                       | the author's two latest canaries, kept past their expiry: per canary, oldest first, seq ‖ id ‖ envelope length (u32) ‖ envelope (layout 5) |
//!
//! A *record* is author ‖ seq ‖ created_at ‖ expires_at (0: none) ‖ refers_to (zeros: none)
//! ‖ kind length ‖ kind ‖ envelope bytes, verbatim. Records live in author-and-seq order, so
//! serving an author's chain to a syncing peer reads neighbouring keys, and the id index
//! stays small enough to remain in sled's cache. A *stored record* in `C` is `PLAIN` ‖
//! record for a message that never expires, and `SEALED` ‖ bucket ‖ nonce ‖ ciphertext for
//! one that does: sealed with its expiry bucket's key (see [`crate::expiry_keys`]), which
//! the sweep destroys once the bucket has ended, so that the text of expired messages left
//! in sled's log files cannot be read. Statements and fork evidence never expire and are
//! kept plain.
//!
//! Invariants: every key of one message, and the counters it changes, are written in the
//! same atomic batch; the writer is single-threaded, so counters are read-modify-write
//! without races. Nothing at start-up or on a hot path scans a whole index: counts and
//! watermarks are kept, lists are read newest-first with a limit.

use std::collections::{BTreeMap, HashSet};

use solidarity_proto::{AuthorKey, MessageId};

use crate::expiry_keys::{ExpiryKeys, bucket_of};
use crate::{
    Compromise, InsertOutcome, MessageMeta, NewMessage, Referring, Store, StoreError,
    StoredEnvelope,
};

mod backend;
mod expire;
mod kept_cache;
mod kept_canaries;
mod layout;
mod rebuild;

pub use backend::{Backend, BatchOp, Entry};
pub use layout::LAYOUT_VERSION;
use layout::*;
pub(crate) use layout::{
    REFERS_V3, by_author_key, decode_record, referring_count_key, referring_group, referring_key,
    stored_bytes_key, trailing_id,
};

/// The [`Store`] over any [`Backend`].
#[derive(Debug, Default)]
pub struct KvStore<B> {
    backend: B,
    keys: ExpiryKeys,
    /// Watermarks, stored bytes per signer and the count, exact (see [`kept_cache`]).
    kept_cache: kept_cache::KeptCache,
}

impl KvStore<crate::SledBackend> {
    /// Opens the sled store and its key file; a new one is stamped with [`LAYOUT_VERSION`],
    /// an existing one must carry it.
    pub fn open(options: &crate::SledOptions) -> Result<Self, StoreError> {
        let refuse = |reason: String| StoreError::Open {
            path: options.path.clone(),
            source: reason.into(),
        };
        rebuild::settle_interrupted(&options.path)?;
        let had_keys = ExpiryKeys::has_header(&options.path);
        let backend = crate::SledBackend::open(options)?;
        let layout = backend.get(&[LAYOUT])?;
        let rebuilt_from = match layout.as_deref() {
            None if !backend.is_empty()? => Some(1),
            Some([version]) if rebuild::REBUILT.contains(version) => Some(*version),
            _ => None,
        };
        if let Some(from) = rebuilt_from {
            drop(backend);
            tracing::info!(
                from,
                to = LAYOUT_VERSION,
                "upgrading the store's layout: rebuilding it beside the old one"
            );
            let rebuilt = rebuild::rebuild(options, from)?;
            tracing::info!(
                from,
                to = LAYOUT_VERSION,
                messages = rebuilt.messages,
                tombstones = rebuilt.tombstones,
                evidence = rebuilt.evidence,
                took_ms = u64::try_from(rebuilt.took.as_millis()).unwrap_or(u64::MAX),
                "store upgraded; the old layout's files are deleted"
            );
            if rebuilt.unreadable > 0 {
                tracing::warn!(
                    unreadable = rebuilt.unreadable,
                    "old records that could not be read were not carried over"
                );
            }
            return Self::open(options);
        }
        match layout {
            Some(version) if version == [LAYOUT_VERSION] => {
                let sealed_records = !backend.scan(&[EXPIRY], &[EXPIRY], 1)?.is_empty();
                if !had_keys && sealed_records {
                    return Err(refuse(format!(
                        "its key file {} is missing or truncated, so its expiring messages cannot be read; \
                         restore the file from the same backup as the store, or move the store \
                         directory aside and the node will sync again from its peers",
                        crate::expiry_keys::KEY_FILE
                    )));
                }
            }
            None if backend.is_empty()? => {
                backend.apply(vec![BatchOp::Put(vec![LAYOUT], vec![LAYOUT_VERSION])])?;
                backend.flush()?;
            }
            Some(version)
                if version.len() == 1
                    && (crate::migrate::FIRST_MIGRATABLE..LAYOUT_VERSION).contains(&version[0]) =>
            {
                let store = Self {
                    keys: ExpiryKeys::open(&options.path)?,
                    backend,
                    kept_cache: kept_cache::KeptCache::default(),
                };
                store.upgrade(version[0])?;
                return Ok(store);
            }
            Some(version) if version.len() == 1 && version[0] > LAYOUT_VERSION => {
                return Err(refuse(format!(
                    "it has layout {}, written by a newer version of solidarity (this one reads \
                     layouts up to {LAYOUT_VERSION}), and a store is never downgraded: run the \
                     newer version, or move the store directory aside and the node will sync \
                     again from its peers",
                    version[0]
                )));
            }
            found => {
                return Err(refuse(format!(
                    "its layout mark {:02x?} is not one that solidarity writes: move the store \
                     directory aside and the node will sync again from its peers",
                    found.as_deref().unwrap_or_default()
                )));
            }
        }
        Ok(Self {
            keys: ExpiryKeys::open(&options.path)?,
            backend,
            kept_cache: kept_cache::KeptCache::default(),
        })
    }
}

impl<B: Backend> KvStore<B> {
    /// Runs the upgrades from layout `from` to [`LAYOUT_VERSION`], stamping each one's layout
    /// once its step has completed.
    fn upgrade(&self, from: u8) -> Result<(), StoreError> {
        let steps = crate::migrate::steps::<B>();
        debug_assert_eq!(
            usize::from(LAYOUT_VERSION - crate::migrate::FIRST_MIGRATABLE),
            steps.len()
        );
        let started = std::time::Instant::now();
        let first = usize::from(from - crate::migrate::FIRST_MIGRATABLE);
        for (index, step) in steps.iter().enumerate().skip(first) {
            let to = crate::migrate::FIRST_MIGRATABLE + 1 + index as u8;
            tracing::info!(to, what = step.what, "upgrading the store's layout");
            (step.run)(self)?;
            self.backend
                .apply(vec![BatchOp::Put(vec![LAYOUT], vec![to])])?;
            self.backend.flush()?;
        }
        // The steps wrote kept numbers past the cache.
        self.kept_cache.clear();
        tracing::info!(
            from,
            to = LAYOUT_VERSION,
            took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "store upgraded in place"
        );
        Ok(())
    }
}

impl<B: Backend> KvStore<B> {
    /// The `C` value of a message: id ‖ stored record, sealed if it expires.
    fn chain_value(&self, message: &NewMessage) -> Result<Vec<u8>, StoreError> {
        let id = message.id.as_bytes();
        let record = encode_record(message)?;
        let mut value = id.to_vec();
        match message.expires_at.map(bucket_of) {
            None => {
                value.push(PLAIN);
                value.extend_from_slice(&record);
            }
            Some(bucket) => {
                value.push(SEALED);
                value.extend_from_slice(&bucket.to_be_bytes());
                value.extend_from_slice(&self.keys.seal(bucket, id, &record)?);
            }
        }
        Ok(value)
    }

    /// The record inside a `C` value: `None` for a tombstone, and for a sealed record whose
    /// bucket key is gone (the message expired).
    fn chained_record(&self, value: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let corrupt = || StoreError::Corrupt { what: "chain" };
        let (id, stored) = value.split_at_checked(32).ok_or_else(corrupt)?;
        match stored.split_first() {
            None => Ok(None),
            Some((&PLAIN, record)) => Ok(Some(record.to_vec())),
            Some((&SEALED, sealed)) => {
                let (bucket, sealed) = sealed.split_at_checked(8).ok_or_else(corrupt)?;
                self.keys.unseal(read_u64(bucket)?, id, sealed)
            }
            Some(_) => Err(corrupt()),
        }
    }

    /// The record of a stored message (none once expired).
    fn record(&self, id: &MessageId) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(locator) = self.backend.get(&key(ENVELOPE, &[id.as_bytes()]))? else {
            return Ok(None);
        };
        let (author, seq) = locator
            .split_at_checked(32)
            .ok_or(StoreError::Corrupt { what: "locator" })?;
        if read_u64(seq)? == 0 {
            return self.backend.get(&key(STATEMENT, &[author, id.as_bytes()]));
        }
        match self.backend.get(&key(CHAIN, &[author, seq]))? {
            Some(chained) => self.chained_record(&chained),
            None => Ok(None),
        }
    }

    fn stored_envelope(&self, id: MessageId) -> Result<Option<StoredEnvelope>, StoreError> {
        self.record(&id)?
            .map(|record| stored_from_record(id, &record))
            .transpose()
    }

    /// The envelopes whose ids end the given index keys, skipping expired ones.
    fn envelopes_of(&self, entries: Vec<Entry>) -> Result<Vec<StoredEnvelope>, StoreError> {
        let mut out = Vec::with_capacity(entries.len());
        for (index_key, _) in entries {
            if let Some(stored) = self.stored_envelope(trailing_id(&index_key)?)? {
                out.push(stored);
            }
        }
        Ok(out)
    }

    /// The backend, for the steps of [`crate::migrate`].
    pub(crate) fn backend(&self) -> &B {
        &self.backend
    }

    /// The record of a stored message, for the steps of [`crate::migrate`].
    pub(crate) fn record_of(&self, id: &MessageId) -> Result<Option<Vec<u8>>, StoreError> {
        self.record(id)
    }

    /// The `limit` newest entries under a `j` prefix of one signer live at `now_ms`;
    /// expired ones not swept yet are skipped, reading further back until enough.
    fn newest_live(
        &self,
        of_author: &[u8],
        limit: usize,
        now_ms: u64,
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        let mut read = limit;
        loop {
            let entries = self.backend.scan_rev(of_author, read)?;
            let exhausted = entries.len() < read;
            let mut live = Vec::new();
            for (index_key, _) in entries {
                let id = trailing_id(&index_key)?;
                if let Some(record) = self.record(&id)? {
                    let (meta, _) = decode_record(&record)?;
                    if meta.expires_at.is_none_or(|at| at > now_ms) && live.len() < limit {
                        live.push(stored_from_record(id, &record)?);
                    }
                }
            }
            if exhausted || live.len() == limit {
                return Ok(live);
            }
            read = read.saturating_mul(2);
        }
    }

    /// A kept counter; absent means 0. Watermarks, stored bytes and the count come from
    /// the cache once read.
    fn kept(&self, counter: &[u8]) -> Result<u64, StoreError> {
        if !kept_cache::is_cached(counter) {
            return kept_number(self.backend.get(counter)?);
        }
        match self.kept_cache.lookup(counter) {
            Ok(number) => Ok(number),
            Err(generation) => {
                let number = kept_number(self.backend.get(counter)?)?;
                self.kept_cache.fill(counter, number, generation);
                Ok(number)
            }
        }
    }

    fn stored_count(&self) -> Result<u64, StoreError> {
        self.kept(&[COUNT])
    }

    /// Applies a batch to the backend and brings the kept-number cache up to date with it.
    fn apply(&self, ops: Vec<BatchOp>) -> Result<(), StoreError> {
        let touched = kept_cache::KeptCache::touched(&ops);
        match self.backend.apply(ops) {
            Ok(()) => {
                self.kept_cache.written(touched);
                Ok(())
            }
            Err(error) => {
                self.kept_cache.clear();
                Err(error)
            }
        }
    }

    /// Every entry of an index prefix, read in chunks.
    fn scan_all(&self, prefix: &[u8]) -> Result<Vec<Entry>, StoreError> {
        let mut out: Vec<Entry> = Vec::new();
        let mut start = prefix.to_vec();
        loop {
            let chunk = self.backend.scan(prefix, &start, SCAN_CHUNK)?;
            let full = chunk.len() == SCAN_CHUNK;
            out.extend(chunk);
            match out.last() {
                Some((last, _)) if full => {
                    start = last.clone();
                    start.push(0);
                }
                _ => return Ok(out),
            }
        }
    }
}

impl<B: Backend> Store for KvStore<B> {
    fn insert_batch(&self, messages: &[NewMessage]) -> Result<Vec<InsertOutcome>, StoreError> {
        let mut ops = Vec::with_capacity(messages.len() * 5);
        let mut outcomes = Vec::with_capacity(messages.len());
        let mut ids_in_batch = HashSet::new();
        let mut chains_in_batch = HashSet::new();
        // Authors whose chain grew in this batch, with their watermark before it.
        let mut grown: BTreeMap<AuthorKey, u64> = BTreeMap::new();
        let mut stored = 0u64;
        let mut canaries = Vec::new();
        // What the batch adds to kept counters (per signer, per referring group).
        let mut added: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
        // Keys first, durably: no sealed record may reach the disk before its key.
        self.keys.ensure(
            messages
                .iter()
                .filter(|message| message.seq != 0)
                .filter_map(|message| message.expires_at.map(bucket_of)),
        )?;
        for message in messages {
            let id = message.id.as_bytes();
            let outcome = if message.seq == 0 {
                // Statements stand outside the chain: any number per author, by id.
                if !ids_in_batch.insert(message.id) || self.contains(&message.id)? {
                    InsertOutcome::AlreadyStored
                } else {
                    ops.push(BatchOp::Put(
                        key(STATEMENT, &[message.author.as_bytes(), id]),
                        encode_record(message)?,
                    ));
                    InsertOutcome::Stored
                }
            } else {
                let chain = chain_key(&message.author, message.seq);
                let held_at_seq = self.backend.get(&chain)?;
                let held_id = held_at_seq.as_deref().and_then(|held| held.get(..32));
                if !ids_in_batch.insert(message.id) || held_id == Some(id.as_slice()) {
                    InsertOutcome::AlreadyStored
                } else if held_at_seq.is_some() || !chains_in_batch.insert(chain.clone()) {
                    InsertOutcome::SeqConflict
                } else {
                    ops.push(BatchOp::Put(chain, self.chain_value(message)?));
                    if let Some(expires_at) = message.expires_at {
                        ops.push(BatchOp::Put(
                            key(EXPIRY, &[&expires_at.to_be_bytes(), id]),
                            Vec::new(),
                        ));
                    }
                    if let std::collections::btree_map::Entry::Vacant(entry) =
                        grown.entry(message.author)
                    {
                        entry.insert(self.watermark(&message.author)?);
                    }
                    if message.kind == KEPT_KIND {
                        canaries.push((
                            &message.author,
                            StoredEnvelope {
                                id: message.id,
                                seq: message.seq,
                                envelope: message.envelope.clone(),
                            },
                        ));
                    }
                    InsertOutcome::Stored
                }
            };
            if outcome == InsertOutcome::Stored {
                stored += 1;
                ops.push(BatchOp::Put(
                    key(ENVELOPE, &[id]),
                    locator(&message.author, message.seq),
                ));
                ops.push(BatchOp::Put(
                    recent_key(&message.kind, message.created_at, &message.id),
                    Vec::new(),
                ));
                ops.push(BatchOp::Put(
                    by_author_key(
                        &message.kind,
                        &message.author,
                        message.created_at,
                        &message.id,
                    ),
                    Vec::new(),
                ));
                if let Some(target) = message.refers_to {
                    let group = referring_group(&target, &message.kind, &message.author);
                    ops.push(BatchOp::Put(
                        referring_key(&group, message.seq, &message.id),
                        Vec::new(),
                    ));
                    *added.entry(referring_count_key(&group)).or_default() += 1;
                }
                *added.entry(stored_bytes_key(&message.author)).or_default() +=
                    counted_bytes(message.envelope.len());
            }
            outcomes.push(outcome);
        }
        for (counter, delta) in added {
            let total = self.kept(&counter)?.saturating_add(delta);
            ops.push(BatchOp::Put(counter, total.to_be_bytes().to_vec()));
        }
        for (author, mut watermark) in grown {
            let before = watermark;
            loop {
                let next = chain_key(&author, watermark + 1);
                if chains_in_batch.contains(&next) || self.backend.get(&next)?.is_some() {
                    watermark += 1;
                } else {
                    break;
                }
            }
            if watermark != before {
                ops.push(BatchOp::Put(
                    key(WATERMARK, &[author.as_bytes()]),
                    watermark.to_be_bytes().to_vec(),
                ));
            }
        }
        ops.extend(self.keep_canaries(canaries)?);
        if stored > 0 {
            let count = self.stored_count()? + stored;
            ops.push(BatchOp::Put(vec![COUNT], count.to_be_bytes().to_vec()));
        }
        if !ops.is_empty() {
            self.apply(ops)?;
        }
        Ok(outcomes)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.backend.flush()
    }

    fn contains(&self, id: &MessageId) -> Result<bool, StoreError> {
        Ok(self
            .backend
            .get(&key(ENVELOPE, &[id.as_bytes()]))?
            .is_some())
    }

    fn envelope(&self, id: &MessageId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.stored_envelope(*id)?.map(|stored| stored.envelope))
    }

    fn meta(&self, id: &MessageId) -> Result<Option<MessageMeta>, StoreError> {
        self.record(id)?
            .map(|record| decode_record(&record).map(|(meta, _)| meta))
            .transpose()
    }

    fn ids_with_prefix(&self, hex: &str, limit: usize) -> Result<Vec<MessageId>, StoreError> {
        let Some((whole_bytes, high_nibble)) = hex_prefix(hex) else {
            return Ok(Vec::new());
        };
        let prefix = key(ENVELOPE, &[&whole_bytes]);
        let mut start = prefix.clone();
        start.extend(high_nibble.map(|nibble| nibble << 4));
        // The ids of an odd-length prefix are contiguous from `start`: those whose next
        // byte has the wanted high nibble.
        let matches_nibble = |entry_key: &[u8]| {
            high_nibble.is_none_or(|nibble| {
                entry_key
                    .get(prefix.len())
                    .is_some_and(|next| next >> 4 == nibble)
            })
        };
        self.backend
            .scan(&prefix, &start, limit)?
            .into_iter()
            .take_while(|(entry_key, _)| matches_nibble(entry_key))
            .map(|(entry_key, _)| read_id(entry_key.get(1..).unwrap_or_default()))
            .collect()
    }

    fn ids_after(
        &self,
        after: Option<&MessageId>,
        limit: usize,
    ) -> Result<Vec<MessageId>, StoreError> {
        let prefix = [ENVELOPE];
        // The least key after `after`'s is its key with a zero byte appended.
        let start = after.map_or_else(
            || prefix.to_vec(),
            |id| key(ENVELOPE, &[id.as_bytes(), &[0]]),
        );
        self.backend
            .scan(&prefix, &start, limit)?
            .into_iter()
            .map(|(entry_key, _)| read_id(entry_key.get(1..).unwrap_or_default()))
            .collect()
    }

    fn id_at(&self, author: &AuthorKey, seq: u64) -> Result<Option<MessageId>, StoreError> {
        self.backend
            .get(&chain_key(author, seq))?
            .map(|value| read_id(value.get(..32).unwrap_or_default()))
            .transpose()
    }

    fn by_kind(&self, kind: &str) -> Result<Vec<StoredEnvelope>, StoreError> {
        let entries = self.scan_all(&recent_prefix(kind))?;
        self.envelopes_of(entries)
    }

    fn newest(&self, kind: &str, limit: usize) -> Result<Vec<StoredEnvelope>, StoreError> {
        let entries = self.backend.scan_rev(&recent_prefix(kind), limit)?;
        self.envelopes_of(entries)
    }

    fn referring_newest(
        &self,
        target: &MessageId,
        kind: &str,
        limit: usize,
    ) -> Result<Vec<Referring>, StoreError> {
        let mut prefix = vec![REFERRING_COUNT];
        prefix.extend_from_slice(target.as_bytes());
        prefix.extend_from_slice(kind.as_bytes());
        prefix.push(0);
        let mut out = Vec::new();
        for (counter, total) in self.scan_all(&prefix)? {
            let author: [u8; 32] = counter
                .get(prefix.len()..)
                .and_then(|author| author.try_into().ok())
                .ok_or(StoreError::Corrupt {
                    what: "referring count",
                })?;
            let entries = self
                .backend
                .scan_rev(&key(REFERRING, &[&counter[1..]]), limit)?;
            out.push(Referring {
                author: AuthorKey(author),
                total: read_u64(&total)?,
                newest: self.envelopes_of(entries)?,
            });
        }
        Ok(out)
    }

    fn newest_per_author(
        &self,
        kind: &str,
        per_author: usize,
        now_ms: u64,
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        let prefix = key(BY_AUTHOR, &[kind.as_bytes(), &[0]]);
        let mut out = Vec::new();
        let mut start = prefix.clone();
        // One seek per signer: past each signer's keys to the next signer.
        while let Some((first, _)) = self.backend.scan(&prefix, &start, 1)?.into_iter().next() {
            let author = first
                .get(prefix.len()..prefix.len() + 32)
                .ok_or(StoreError::Corrupt {
                    what: "author index",
                })?;
            let mut of_author = prefix.clone();
            of_author.extend_from_slice(author);
            out.extend(self.newest_live(&of_author, per_author, now_ms)?);
            start = of_author;
            start.extend_from_slice(&[0xFF; 41]);
        }
        Ok(out)
    }

    fn newest_by(
        &self,
        kind: &str,
        author: &AuthorKey,
        limit: usize,
        now_ms: u64,
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        let of_author = key(BY_AUTHOR, &[kind.as_bytes(), &[0], author.as_bytes()]);
        self.newest_live(&of_author, limit, now_ms)
    }

    fn stored_bytes(&self, author: &AuthorKey) -> Result<u64, StoreError> {
        self.kept(&stored_bytes_key(author))
    }

    fn author_range(
        &self,
        author: &AuthorKey,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        let prefix = key(CHAIN, &[author.as_bytes()]);
        let mut start = chain_key(author, from_seq);
        let mut out = Vec::new();
        while out.len() < limit {
            let chunk = self.backend.scan(&prefix, &start, limit - out.len())?;
            let Some((last, _)) = chunk.last() else {
                break;
            };
            let next = chain_key_seq(last)?.checked_add(1);
            for (_, value) in chunk {
                let id = read_id(value.get(..32).unwrap_or_default())?;
                // Tombstones (expired messages) have no record and are skipped.
                if let Some(record) = self.chained_record(&value)? {
                    out.push(stored_from_record(id, &record)?);
                }
            }
            // Nothing can follow the highest seq there is.
            let Some(next) = next else { break };
            start = chain_key(author, next);
        }
        Ok(out)
    }

    fn watermark(&self, author: &AuthorKey) -> Result<u64, StoreError> {
        self.kept(&key(WATERMARK, &[author.as_bytes()]))
    }

    fn chain_head(&self, author: &AuthorKey) -> Result<Option<(u64, MessageId)>, StoreError> {
        let prefix = key(CHAIN, &[author.as_bytes()]);
        self.backend
            .scan_rev(&prefix, 1)?
            .into_iter()
            .next()
            .map(|(chain, value)| {
                Ok((
                    chain_key_seq(&chain)?,
                    read_id(value.get(..32).unwrap_or_default())?,
                ))
            })
            .transpose()
    }

    fn expire(&self, now_ms: u64) -> Result<usize, StoreError> {
        self.expire_at(now_ms)
    }

    fn record_fork(
        &self,
        evidence: &NewMessage,
        detected_at: u64,
        from_seq: u64,
    ) -> Result<bool, StoreError> {
        let author = evidence.author.as_bytes();
        let marker = key(COMPROMISED, &[author]);
        let previous = self
            .backend
            .get(&marker)?
            .map(|value| decode_compromise_marker(&value))
            .transpose()?;
        let (detected_at, from_seq) = match previous {
            Some((first_detected, first_from)) => (first_detected, first_from.min(from_seq)),
            None => (detected_at, from_seq),
        };
        let mut marker_value = detected_at.to_be_bytes().to_vec();
        marker_value.extend_from_slice(&from_seq.to_be_bytes());
        self.apply(vec![
            BatchOp::Put(
                key(
                    FORK,
                    &[author, &evidence.seq.to_be_bytes(), evidence.id.as_bytes()],
                ),
                evidence.envelope.clone(),
            ),
            BatchOp::Put(marker, marker_value),
        ])?;
        Ok(previous.is_none())
    }

    fn compromised(&self) -> Result<Vec<Compromise>, StoreError> {
        let mut out = Vec::new();
        for (marker, value) in self.scan_all(&[COMPROMISED])? {
            let author: [u8; 32] = marker[1..]
                .try_into()
                .map_err(|_| StoreError::Corrupt { what: "compromise" })?;
            let prefix = key(FORK, &[&author]);
            let evidence = self
                .scan_all(&prefix)?
                .into_iter()
                .map(|(fork_key, envelope)| {
                    Ok(StoredEnvelope {
                        seq: read_u64(fork_key.get(33..41).ok_or(StoreError::Corrupt {
                            what: "fork evidence",
                        })?)?,
                        id: read_id(&fork_key[41..])?,
                        envelope,
                    })
                })
                .collect::<Result<_, StoreError>>()?;
            let (detected_at, from_seq) = decode_compromise_marker(&value)?;
            out.push(Compromise {
                author: AuthorKey(author),
                detected_at,
                from_seq,
                evidence,
            });
        }
        Ok(out)
    }

    fn clear_compromise(&self, author: &AuthorKey) -> Result<(), StoreError> {
        self.apply(vec![BatchOp::Delete(key(
            COMPROMISED,
            &[author.as_bytes()],
        ))])
    }

    fn kept_canaries(&self) -> Result<Vec<(AuthorKey, Vec<StoredEnvelope>)>, StoreError> {
        self.scan_all(&[KEPT_CANARIES])?
            .into_iter()
            .map(|(kept_key, value)| {
                let author: [u8; 32] = kept_key
                    .get(1..)
                    .and_then(|bytes| bytes.try_into().ok())
                    .ok_or(StoreError::Corrupt {
                        what: "kept canary",
                    })?;
                Ok((AuthorKey(author), decode_kept(&value)?))
            })
            .collect()
    }

    fn len(&self) -> Result<usize, StoreError> {
        Ok(usize::try_from(self.stored_count()?).unwrap_or(usize::MAX))
    }
}
