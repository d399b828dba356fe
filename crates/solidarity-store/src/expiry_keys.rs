//! Keys that seal the records of expiring messages, so that expiry can destroy their text.
//!
//! sled never overwrites in place: a deleted value stays in its log segment until sled
//! rewrites that segment, which on a quiet node can be never. So the record of a message
//! that expires is sealed (XChaCha20-Poly1305) with a key shared by every message expiring
//! in the same hour (its *bucket*), and that key lives outside sled, in a small file of
//! fixed-size slots overwritten in place. Once the hour is over and the sweep has deleted
//! the bucket's messages, the slot is zeroed and synced: what is left of those records in
//! sled's files can no longer be read by anyone, the node included.
//!
//! Key file (`KEY_FILE` in the store directory, mode 0600): a 64-byte header (`MAGIC`,
//! then zeros), then 64-byte slots, each bucket (u64 BE) ‖ key (32) ‖ check (the first 8
//! bytes of SHA-256(bucket ‖ key)) ‖ 16 zero bytes. A slot whose check does not match
//! (zeroed, never written, or torn by a crash) is free. Slots are aligned to 64 bytes, so a
//! slot write never spans two disk sectors.
//!
//! Invariants: a key is written and synced before any record sealed with it is written, so
//! a crash never leaves a record whose key is lost; a bucket's key is zeroed only after the
//! deletion of its messages is durable.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::StoreError;

/// Width of a bucket: messages expiring in the same hour share a key.
pub const BUCKET_MS: u64 = 60 * 60 * 1000;
/// Name of the key file inside the store directory.
pub const KEY_FILE: &str = "expiry-keys";
/// First bytes of the key file.
const MAGIC: &[u8; 8] = b"SOLKEYS1";
const SLOT: u64 = 64;
const NONCE_LEN: usize = 24;

/// The bucket of a message expiring at `expires_at`.
pub fn bucket_of(expires_at: u64) -> u64 {
    expires_at / BUCKET_MS
}

/// Whether every message of `bucket` has expired at `now_ms`.
fn bucket_ended(bucket: u64, now_ms: u64) -> bool {
    bucket
        .saturating_add(1)
        .saturating_mul(BUCKET_MS)
        .saturating_sub(1)
        <= now_ms
}

type Key = Zeroizing<[u8; 32]>;

struct LiveKey {
    slot: u64,
    key: Key,
}

#[derive(Default)]
struct Slots {
    live: BTreeMap<u64, LiveKey>,
    free: Vec<u64>,
    /// Slots in the file (live and free).
    count: u64,
}

/// The live bucket keys, kept in memory and (for a store on disk) in the key file.
#[derive(Default)]
pub(crate) struct ExpiryKeys {
    /// `None`: keys live in memory only (the in-memory store).
    file: Option<File>,
    slots: Mutex<Slots>,
}

impl std::fmt::Debug for ExpiryKeys {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ExpiryKeys")
            .field("on_disk", &self.file.is_some())
            .field("live", &self.slots().live.len())
            .finish()
    }
}

fn io_error(operation: &'static str) -> impl FnOnce(std::io::Error) -> StoreError {
    move |error| StoreError::Backend {
        operation,
        source: Box::new(error),
    }
}

fn check(bucket: u64, key: &[u8; 32]) -> [u8; 8] {
    let digest = Sha256::new()
        .chain_update(bucket.to_be_bytes())
        .chain_update(key)
        .finalize();
    let mut out = [0; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

fn encode_slot(bucket: u64, key: &[u8; 32]) -> Zeroizing<[u8; SLOT as usize]> {
    let mut slot = Zeroizing::new([0; SLOT as usize]);
    slot[..8].copy_from_slice(&bucket.to_be_bytes());
    slot[8..40].copy_from_slice(key);
    slot[40..48].copy_from_slice(&check(bucket, key));
    slot
}

/// The bucket and key of a slot, unless it is free.
fn decode_slot(slot: &[u8]) -> Option<(u64, Key)> {
    let bucket = u64::from_be_bytes(slot.get(..8)?.try_into().ok()?);
    let mut key = Zeroizing::new([0; 32]);
    key.copy_from_slice(slot.get(8..40)?);
    (slot.get(40..48)? == check(bucket, &key)).then_some((bucket, key))
}

/// The live (hour, key) pairs of a store directory's key file, read without opening the
/// store: for audits that check a destroyed key is nowhere on disk.
pub fn live_keys(store_dir: &Path) -> Result<Vec<(u64, [u8; 32])>, StoreError> {
    let bytes =
        Zeroizing::new(std::fs::read(store_dir.join(KEY_FILE)).map_err(io_error("key file read"))?);
    if !bytes.starts_with(MAGIC) {
        return Err(StoreError::Corrupt { what: "key file" });
    }
    Ok(bytes
        .chunks(SLOT as usize)
        .skip(1)
        .filter_map(decode_slot)
        .map(|(bucket, key)| (bucket, *key))
        .collect())
}

impl ExpiryKeys {
    /// Whether the store directory's key file exists with at least its whole header.
    pub(crate) fn has_header(store_dir: &Path) -> bool {
        std::fs::metadata(store_dir.join(KEY_FILE)).is_ok_and(|meta| meta.len() >= SLOT)
    }

    /// Opens the key file in the store directory, creating it when absent.
    pub(crate) fn open(store_dir: &Path) -> Result<Self, StoreError> {
        let path = store_dir.join(KEY_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io_error("key file open"))?;
        let mut bytes = Zeroizing::new(Vec::new());
        file.read_to_end(&mut bytes)
            .map_err(io_error("key file read"))?;
        let mut header = [0; SLOT as usize];
        header[..MAGIC.len()].copy_from_slice(MAGIC);
        if bytes.len() < header.len() && header.starts_with(&bytes) {
            // New, or a crash while it was created: no key can be in it yet.
            file.set_len(0)
                .and_then(|()| file.write_all_at(&header, 0))
                .and_then(|()| file.sync_all())
                .map_err(io_error("key file write"))?;
            if let Some(dir) = path.parent() {
                File::open(dir)
                    .and_then(|dir| dir.sync_all())
                    .map_err(io_error("key file write"))?;
            }
        } else if !bytes.starts_with(MAGIC) {
            return Err(StoreError::Corrupt { what: "key file" });
        }
        let mut slots = Slots::default();
        // A partial last slot (a crash while the file grew) is free and gets overwritten.
        for (index, slot) in bytes.chunks(SLOT as usize).skip(1).enumerate() {
            let index = index as u64;
            slots.count = index + 1;
            match decode_slot(slot) {
                Some((bucket, key)) => {
                    slots.live.insert(bucket, LiveKey { slot: index, key });
                }
                None => slots.free.push(index),
            }
        }
        Ok(Self {
            file: Some(file),
            slots: Mutex::new(slots),
        })
    }

    fn slots(&self) -> MutexGuard<'_, Slots> {
        // Every change to `Slots` is completed before anything can fail or panic, so a
        // poisoned lock still guards consistent state.
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes sure every bucket has a key, writing new ones to the key file and syncing it
    /// once before returning.
    pub(crate) fn ensure(&self, buckets: impl IntoIterator<Item = u64>) -> Result<(), StoreError> {
        let mut slots = self.slots();
        let mut written = false;
        for bucket in buckets {
            if slots.live.contains_key(&bucket) {
                continue;
            }
            let key = Zeroizing::new(XChaCha20Poly1305::generate_key(&mut OsRng).into());
            let slot = slots.free.last().copied().unwrap_or(slots.count);
            if let Some(file) = &self.file {
                file.write_all_at(&*encode_slot(bucket, &key), (slot + 1) * SLOT)
                    .map_err(io_error("key file write"))?;
                written = true;
            }
            if slots.free.last() == Some(&slot) {
                slots.free.pop();
            } else {
                slots.count += 1;
            }
            slots.live.insert(bucket, LiveKey { slot, key });
        }
        if let (true, Some(file)) = (written, &self.file) {
            file.sync_data().map_err(io_error("key file flush"))?;
        }
        Ok(())
    }

    /// Seals a record with its bucket's key (which [`ExpiryKeys::ensure`] created), bound
    /// to the message id: nonce ‖ ciphertext.
    pub(crate) fn seal(
        &self,
        bucket: u64,
        id: &[u8],
        record: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let slots = self.slots();
        let live = slots.live.get(&bucket).ok_or(StoreError::Corrupt {
            what: "expiry key (not created before sealing)",
        })?;
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = XChaCha20Poly1305::new((&*live.key).into())
            .encrypt(
                &nonce,
                Payload {
                    msg: record,
                    aad: id,
                },
            )
            .map_err(|_| StoreError::Corrupt {
                what: "sealed record",
            })?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens a sealed record; `None` when its bucket's key is gone (the bucket ended and
    /// was shredded, so the message counts as expired).
    pub(crate) fn unseal(
        &self,
        bucket: u64,
        id: &[u8],
        sealed: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let corrupt = || StoreError::Corrupt {
            what: "sealed record",
        };
        let slots = self.slots();
        let Some(live) = slots.live.get(&bucket) else {
            return Ok(None);
        };
        let (nonce, ciphertext) = sealed.split_at_checked(NONCE_LEN).ok_or_else(corrupt)?;
        XChaCha20Poly1305::new((&*live.key).into())
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: id,
                },
            )
            .map(Some)
            .map_err(|_| corrupt())
    }

    /// Whether some bucket with a key has ended at `now_ms`.
    pub(crate) fn any_ended(&self, now_ms: u64) -> bool {
        self.slots()
            .live
            .keys()
            .next()
            .is_some_and(|bucket| bucket_ended(*bucket, now_ms))
    }

    /// Destroys the key of every bucket that has ended at `now_ms`: zeroes its slot and
    /// syncs the file. Call only once the deletion of those buckets' messages is durable.
    /// Returns how many keys were destroyed.
    pub(crate) fn shred_ended(&self, now_ms: u64) -> Result<usize, StoreError> {
        let mut slots = self.slots();
        let ended: Vec<u64> = slots
            .live
            .keys()
            .copied()
            .take_while(|bucket| bucket_ended(*bucket, now_ms))
            .collect();
        if let Some(file) = &self.file {
            for bucket in &ended {
                let slot = slots.live[bucket].slot;
                file.write_all_at(&[0; SLOT as usize], (slot + 1) * SLOT)
                    .map_err(io_error("key file write"))?;
            }
            if !ended.is_empty() {
                file.sync_data().map_err(io_error("key file flush"))?;
            }
        }
        for bucket in &ended {
            if let Some(live) = slots.live.remove(bucket) {
                slots.free.push(live.slot);
            }
        }
        Ok(ended.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_ends_after_its_last_millisecond() {
        assert!(!bucket_ended(0, BUCKET_MS - 2));
        assert!(bucket_ended(0, BUCKET_MS - 1));
    }

    #[test]
    fn keys_survive_a_reopen_and_shredded_slots_are_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = ExpiryKeys::open(dir.path()).expect("open");
        keys.ensure([5, 7, 9]).expect("ensure");
        let sealed = keys.seal(7, b"id", b"record").expect("seal");
        assert_eq!(keys.shred_ended(6 * BUCKET_MS - 1).expect("shred"), 1);
        drop(keys);

        let keys = ExpiryKeys::open(dir.path()).expect("reopen");
        assert_eq!(
            keys.unseal(7, b"id", &sealed).expect("unseal").as_deref(),
            Some(&b"record"[..])
        );
        assert!(
            keys.unseal(7, b"other id", &sealed).is_err(),
            "bound to its id"
        );
        assert_eq!(keys.unseal(5, b"id", &sealed).expect("no key"), None);
        keys.ensure([11]).expect("ensure");
        let length = std::fs::metadata(dir.path().join(KEY_FILE))
            .expect("meta")
            .len();
        assert_eq!(
            length,
            4 * SLOT,
            "header and three slots: bucket 11 took bucket 5's"
        );
    }

    #[test]
    fn a_torn_or_foreign_slot_is_free_and_a_foreign_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = ExpiryKeys::open(dir.path()).expect("open");
        keys.ensure([1, 2]).expect("ensure");
        drop(keys);
        let path = dir.path().join(KEY_FILE);
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[SLOT as usize + 20] ^= 1;
        bytes.extend_from_slice(&[7; 10]);
        std::fs::write(&path, &bytes).expect("write");
        let keys = ExpiryKeys::open(dir.path()).expect("reopen");
        assert_eq!(keys.slots().live.keys().copied().collect::<Vec<_>>(), [2]);
        assert_eq!(keys.slots().free, [0, 2]);
        drop(keys);

        std::fs::write(&path, b"SOLK").expect("write");
        let keys = ExpiryKeys::open(dir.path()).expect("a header torn at creation is made again");
        assert!(keys.slots().live.is_empty());
        drop(keys);
        assert_eq!(std::fs::read(&path).expect("read").len(), SLOT as usize);

        std::fs::write(&path, b"something else entirely").expect("write");
        assert!(matches!(
            ExpiryKeys::open(dir.path()),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
