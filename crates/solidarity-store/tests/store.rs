//! Store behaviour, run against both backends.

use solidarity_proto::{AuthorKey, MessageId};
use solidarity_store::expiry_keys::{BUCKET_MS, KEY_FILE, live_keys};
use solidarity_store::{InsertOutcome, MemoryStore, NewMessage, SledOptions, SledStore, Store};

fn message(author: u8, seq: u64, kind: &str, expires_at: Option<u64>) -> NewMessage {
    let mut id = [0u8; 32];
    id[0] = author;
    id[1..9].copy_from_slice(&seq.to_be_bytes());
    id[9] = kind.len() as u8;
    NewMessage {
        id: MessageId(id),
        author: AuthorKey([author; 32]),
        seq,
        kind: kind.to_owned(),
        created_at: 1_000 + seq,
        expires_at,
        refers_to: None,
        envelope: format!("envelope {author} {seq} {kind}").into_bytes(),
    }
}

fn backends() -> Vec<(Box<dyn Store>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let sled = SledStore::open(&SledOptions::new(dir.path().join("db"))).expect("open");
    vec![
        (Box::new(MemoryStore::default()), None),
        (Box::new(sled), Some(dir)),
    ]
}

#[test]
fn reinserting_the_same_id_changes_nothing() {
    for (store, _dir) in backends() {
        let m = message(1, 1, "alert", None);
        assert_eq!(
            store
                .insert_batch(std::slice::from_ref(&m))
                .expect("insert"),
            [InsertOutcome::Stored]
        );
        assert_eq!(
            store.insert_batch(&[m.clone(), m.clone()]).expect("insert"),
            [InsertOutcome::AlreadyStored, InsertOutcome::AlreadyStored]
        );
        assert_eq!(store.len().expect("len"), 1);
        assert_eq!(
            store.envelope(&m.id).expect("get"),
            Some(m.envelope.clone())
        );
    }
}

#[test]
fn a_second_message_at_the_same_seq_is_a_conflict() {
    for (store, _dir) in backends() {
        let first = message(1, 1, "alert", None);
        let fork = message(1, 1, "mirror-offer", None);
        store
            .insert_batch(std::slice::from_ref(&first))
            .expect("insert");
        assert_eq!(
            store.insert_batch(&[fork]).expect("insert"),
            [InsertOutcome::SeqConflict]
        );
        assert_eq!(
            store.id_at(&first.author, 1).expect("id_at"),
            Some(first.id)
        );
    }
}

#[test]
fn watermarks_stop_at_gaps_and_count_tombstones() {
    for (store, _dir) in backends() {
        let author = AuthorKey([3; 32]);
        store
            .insert_batch(&[
                message(3, 1, "alert", None),
                message(3, 2, "alert", Some(5_000)),
                message(3, 3, "alert", None),
                message(3, 5, "alert", None),
            ])
            .expect("insert");
        assert_eq!(store.watermark(&author).expect("wm"), 3);
        assert_eq!(store.watermark(&AuthorKey([9; 32])).expect("wm"), 0);
        assert_eq!(
            store.chain_head(&author).expect("head").map(|h| h.0),
            Some(5)
        );

        assert_eq!(store.expire(5_000).expect("expire"), 1);
        assert_eq!(
            store.watermark(&author).expect("wm"),
            3,
            "tombstone keeps the chain"
        );
        let range: Vec<u64> = store
            .author_range(&author, 2, 10)
            .expect("range")
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(range, [3, 5], "expired seq 2 is not served");
        assert_eq!(store.by_kind("alert").expect("kind").len(), 3);
        assert_eq!(store.len().expect("len"), 3);

        store
            .insert_batch(&[message(3, 4, "alert", None)])
            .expect("insert");
        assert_eq!(store.watermark(&author).expect("wm"), 5);
    }
}

#[test]
fn sled_store_keeps_everything_across_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SledOptions::new(dir.path().join("db"));
    // Every other message expires (its record is sealed), each in another hour.
    let messages: Vec<_> = (1..=50)
        .map(|seq| message(7, seq, "alert", (seq % 2 == 0).then_some(seq * BUCKET_MS)))
        .collect();
    {
        let store = SledStore::open(&options).expect("open");
        store.insert_batch(&messages).expect("insert");
        store.flush().expect("flush");
    }
    let store = SledStore::open(&options).expect("reopen");
    assert_eq!(store.len().expect("len"), 50);
    assert_eq!(store.watermark(&AuthorKey([7; 32])).expect("wm"), 50);
    for m in &messages {
        assert_eq!(
            store.envelope(&m.id).expect("get").as_ref(),
            Some(&m.envelope)
        );
        let meta = store.meta(&m.id).expect("meta").expect("present");
        assert_eq!((meta.seq, meta.kind.as_str()), (m.seq, "alert"));
    }
}

#[test]
fn fork_evidence_marks_the_author_until_cleared() {
    for (store, _dir) in backends() {
        let first = message(4, 2, "alert", None);
        let mut fork = message(4, 2, "alert", None);
        fork.id = MessageId([0xaa; 32]);
        fork.envelope = b"the other chain".to_vec();
        store
            .insert_batch(std::slice::from_ref(&first))
            .expect("insert");
        assert!(
            store.record_fork(&fork, 77, 2).expect("fork"),
            "newly compromised"
        );
        assert!(
            !store.record_fork(&fork, 99, 1).expect("fork"),
            "already marked"
        );
        let compromised = store.compromised().expect("list");
        assert_eq!(compromised.len(), 1);
        assert_eq!(compromised[0].author, first.author);
        assert_eq!(
            compromised[0].detected_at, 77,
            "first detection time is kept"
        );
        assert_eq!(
            compromised[0].from_seq, 1,
            "the lowest divergence point is kept"
        );
        assert_eq!(compromised[0].evidence[0].envelope, fork.envelope);
        assert_eq!(compromised[0].evidence[0].seq, 2);
        assert_eq!(
            store.id_at(&first.author, 2).expect("id_at"),
            Some(first.id),
            "the first-seen chain stays"
        );
        store.clear_compromise(&first.author).expect("clear");
        assert!(store.compromised().expect("list").is_empty());
    }
}

#[test]
fn statements_stand_outside_the_chain() {
    for (store, _dir) in backends() {
        let chain = message(5, 1, "alert", None);
        let first = message(5, 0, "revocation", None);
        let mut second = message(5, 0, "node-cert", None);
        second.id = MessageId([0x5c; 32]);
        assert_eq!(
            store
                .insert_batch(&[chain.clone(), first.clone(), second.clone()])
                .expect("insert"),
            [
                InsertOutcome::Stored,
                InsertOutcome::Stored,
                InsertOutcome::Stored
            ],
            "several statements per author"
        );
        assert_eq!(
            store
                .insert_batch(std::slice::from_ref(&first))
                .expect("insert"),
            [InsertOutcome::AlreadyStored]
        );
        assert_eq!(store.by_kind("revocation").expect("by kind").len(), 1);
        assert_eq!(store.by_kind("node-cert").expect("by kind").len(), 1);
        assert_eq!(
            store.watermark(&chain.author).expect("wm"),
            1,
            "statements do not touch the chain"
        );
        assert_eq!(store.id_at(&chain.author, 0).expect("id_at"), None);
    }
}

#[test]
fn newest_lists_a_kind_by_age_and_references_find_their_target() {
    for (store, _dir) in backends() {
        let alerts: Vec<_> = (1..=5).map(|seq| message(2, seq, "alert", None)).collect();
        store.insert_batch(&alerts).expect("insert");
        let mut update = message(3, 1, "alert-update", Some(10_000));
        update.refers_to = Some(alerts[1].id);
        store
            .insert_batch(std::slice::from_ref(&update))
            .expect("insert");
        let newest: Vec<u64> = store
            .newest("alert", 3)
            .expect("newest")
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(newest, [5, 4, 3]);
        let referring = store
            .referring_newest(&alerts[1].id, "alert-update", 10)
            .expect("referring");
        assert_eq!(referring.len(), 1);
        assert_eq!(referring[0].total, 1);
        assert_eq!(referring[0].newest[0].id, update.id);
        assert_eq!(
            store
                .meta(&update.id)
                .expect("meta")
                .expect("some")
                .refers_to,
            Some(alerts[1].id)
        );
        assert_eq!(store.len().expect("len"), 6);

        assert_eq!(store.expire(20_000).expect("expire"), 1);
        assert!(
            store
                .referring_newest(&alerts[1].id, "alert-update", 10)
                .expect("referring")
                .is_empty()
        );
        assert!(store.newest("alert-update", 10).expect("newest").is_empty());
        assert_eq!(store.len().expect("len"), 5);
        assert_eq!(store.stored_bytes(&update.author).expect("bytes"), 0);
    }
}

#[test]
fn referring_reads_the_newest_per_signer_with_a_count_and_bytes_are_kept_per_signer() {
    for (store, _dir) in backends() {
        let alert = message(2, 1, "alert", None);
        let mut batch = vec![alert.clone()];
        for seq in 1..=300 {
            let mut update = message(3, seq, "alert-update", None);
            update.refers_to = Some(alert.id);
            batch.push(update);
        }
        let mut endorsement = message(4, 1, "endorsement", None);
        endorsement.refers_to = Some(alert.id);
        batch.push(endorsement.clone());
        store.insert_batch(&batch).expect("insert");
        let updates = store
            .referring_newest(&alert.id, "alert-update", 5)
            .expect("referring");
        assert_eq!(updates.len(), 1);
        assert_eq!(updates[0].author, AuthorKey([3; 32]));
        assert_eq!(updates[0].total, 300);
        let seqs: Vec<u64> = updates[0].newest.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [300, 299, 298, 297, 296]);
        let endorsements = store
            .referring_newest(&alert.id, "endorsement", 5)
            .expect("referring");
        assert_eq!(endorsements.len(), 1);
        assert_eq!(endorsements[0].newest[0].id, endorsement.id);
        let bytes: u64 = batch
            .iter()
            .filter(|message| message.author == AuthorKey([3; 32]))
            .map(|message| message.envelope.len() as u64)
            .sum();
        assert_eq!(
            store.stored_bytes(&AuthorKey([3; 32])).expect("bytes"),
            bytes
        );
        // A statement counts too.
        let statement = message(3, 0, "revocation", None);
        store
            .insert_batch(std::slice::from_ref(&statement))
            .expect("insert");
        assert_eq!(
            store.stored_bytes(&AuthorKey([3; 32])).expect("bytes"),
            bytes + statement.envelope.len() as u64
        );
    }
}

#[test]
fn newest_per_author_reads_each_signers_newest_whatever_another_signed() {
    for (store, _dir) in backends() {
        let junk: Vec<_> = (1..=500)
            .map(|seq| message(2, seq, "alert", Some(5_000)))
            .collect();
        store.insert_batch(&junk).expect("insert");
        let honest = message(3, 1, "alert", None);
        store
            .insert_batch(std::slice::from_ref(&honest))
            .expect("insert");
        let shown = store.newest_per_author("alert", 20, 0).expect("newest");
        assert_eq!(shown.len(), 21);
        assert!(shown.iter().any(|stored| stored.id == honest.id));
        assert_eq!(shown[0].seq, 500, "newest first per signer");
        // Expired but not swept yet: skipped all the same.
        let shown = store.newest_per_author("alert", 20, 6_000).expect("newest");
        assert_eq!(shown.len(), 1);
        store.expire(6_000).expect("expire");
        let shown = store.newest_per_author("alert", 20, 6_000).expect("newest");
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[0].id, honest.id);
    }
}

/// The raw sled database under a store just dropped. sled releases its file lock only once
/// its last handle is gone, which can lag the drop by a moment (the store's own open waits
/// the same way).
fn raw_sled(path: &std::path::Path) -> sled::Db {
    let started = std::time::Instant::now();
    loop {
        match sled::open(path) {
            Ok(db) => return db,
            Err(sled::Error::Io(error))
                if error.to_string().contains("could not acquire lock")
                    && started.elapsed() < std::time::Duration::from_secs(10) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(error) => panic!("open the raw sled database: {error}"),
        }
    }
}

#[test]
fn a_layout_3_store_opens_with_its_referring_index_and_byte_counts_filled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SledOptions::new(dir.path().join("db"));
    let alert = message(2, 1, "alert", None);
    let mut batch = vec![alert.clone()];
    for seq in 1..=2_000 {
        let mut update = message(3, seq, "alert-update", (seq % 2 == 0).then_some(u64::MAX));
        update.refers_to = Some(alert.id);
        batch.push(update);
    }
    {
        let store = SledStore::open(&options).expect("open");
        store.insert_batch(&batch).expect("insert");
        store.flush().expect("flush");
    }
    {
        // Turn it into what layout 3 wrote: `T` target ‖ id, no `g`/`h`/`i`/`j`.
        let db = raw_sled(&options.path);
        for prefix in [b'g', b'h', b'i', b'j'] {
            for entry in db.scan_prefix([prefix]) {
                db.remove(entry.expect("entry").0).expect("remove");
            }
        }
        for message in &batch[1..] {
            let mut old = vec![b'T'];
            old.extend_from_slice(alert.id.as_bytes());
            old.extend_from_slice(message.id.as_bytes());
            db.insert(old, Vec::<u8>::new()).expect("insert");
        }
        db.insert([b'V'], vec![3u8]).expect("layout");
        db.flush().expect("flush");
    }
    let store = SledStore::open(&options).expect("upgraded");
    let updates = store
        .referring_newest(&alert.id, "alert-update", 3)
        .expect("referring");
    assert_eq!(updates[0].total, 2_000);
    let seqs: Vec<u64> = updates[0].newest.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [2_000, 1_999, 1_998]);
    let bytes: u64 = batch[1..].iter().map(|m| m.envelope.len() as u64).sum();
    assert_eq!(
        store.stored_bytes(&AuthorKey([3; 32])).expect("bytes"),
        bytes
    );
    assert_eq!(store.len().expect("len"), 2_001);
    assert_eq!(
        store
            .newest_per_author("alert", 5, 0)
            .expect("newest")
            .len(),
        1
    );
    assert_eq!(
        store
            .newest_per_author("alert-update", 5, 0)
            .expect("newest")
            .len(),
        5
    );
    drop(store);
    let db = raw_sled(&options.path);
    assert_eq!(db.scan_prefix([b'T']).count(), 0, "the old index is gone");
    assert_eq!(db.get([b'V']).expect("get").expect("layout").as_ref(), [5]);
}

#[test]
fn a_store_of_another_layout_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SledOptions::new(dir.path().join("db"));
    {
        // A store of a layout newer than this version (layouts 1 to 4 are upgraded).
        let db = raw_sled(&options.path);
        db.insert([b'V'], vec![9u8]).expect("insert");
        db.flush().expect("flush");
    }
    let error = SledStore::open(&options).expect_err("refused").to_string();
    assert!(error.contains("layout 9"), "{error}");
    assert!(error.contains("move the store directory aside"), "{error}");
}

/// Every file under `dir` that contains `needle`.
fn files_holding(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read(&path)
                .expect("read")
                .windows(needle.len())
                .any(|window| window == needle)
            {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[test]
fn an_expiring_record_is_sealed_and_unreadable_once_its_hour_is_swept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SledOptions::new(dir.path().join("db"));
    let expires_at = 100 * BUCKET_MS + 5;
    let mut expiring = message(4, 1, "alert", Some(expires_at));
    expiring.envelope = b"MARKER-expiring-text".to_vec();
    let mut lasting = message(4, 2, "alert", None);
    lasting.envelope = b"MARKER-lasting-text".to_vec();
    let mut later = message(4, 3, "alert", Some(expires_at + BUCKET_MS));
    later.envelope = b"MARKER-later-text".to_vec();
    let store = SledStore::open(&options).expect("open");
    store
        .insert_batch(&[expiring.clone(), lasting.clone(), later.clone()])
        .expect("insert");
    store.flush().expect("flush");

    // Only the message that never expires is on disk in plain text.
    assert_eq!(
        files_holding(&options.path, b"MARKER-expiring-text"),
        Vec::<String>::new()
    );
    assert_eq!(
        files_holding(&options.path, b"MARKER-later-text"),
        Vec::<String>::new()
    );
    assert_eq!(
        files_holding(&options.path, b"MARKER-lasting-text").len(),
        1
    );
    let keys = live_keys(&options.path).expect("key file");
    let buckets: Vec<u64> = keys.iter().map(|(bucket, _)| *bucket).collect();
    assert_eq!(buckets, [100, 101]);
    let key_of_100 = keys[0].1;
    assert_eq!(
        files_holding(&options.path, &key_of_100).len(),
        1,
        "in the key file only"
    );

    // Expired but the hour is not over: deleted, key kept for the others of its hour.
    assert_eq!(store.expire(expires_at).expect("expire"), 1);
    assert_eq!(live_keys(&options.path).expect("key file").len(), 2);
    // The hour is over: the key is destroyed.
    assert_eq!(store.expire(101 * BUCKET_MS - 1).expect("expire"), 0);
    assert_eq!(live_keys(&options.path).expect("key file").len(), 1);
    assert_eq!(
        files_holding(&options.path, &key_of_100),
        Vec::<String>::new()
    );
    drop(store);

    let store = SledStore::open(&options).expect("reopen");
    assert_eq!(store.envelope(&expiring.id).expect("get"), None);
    assert_eq!(
        store.id_at(&expiring.author, 1).expect("tombstone"),
        Some(expiring.id)
    );
    assert_eq!(
        store.envelope(&later.id).expect("get"),
        Some(later.envelope.clone())
    );
    assert_eq!(
        store.envelope(&lasting.id).expect("get"),
        Some(lasting.envelope.clone())
    );
    assert_eq!(store.watermark(&expiring.author).expect("wm"), 3);
}

#[test]
fn a_store_without_its_key_file_is_refused_when_it_holds_expiring_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SledOptions::new(dir.path().join("db"));
    {
        let store = SledStore::open(&options).expect("open");
        store
            .insert_batch(&[message(5, 1, "alert", None)])
            .expect("insert");
        store.flush().expect("flush");
    }
    // Nothing sealed yet: a lost key file is simply made again.
    std::fs::remove_file(options.path.join(KEY_FILE)).expect("remove");
    {
        let store = SledStore::open(&options).expect("reopen without keys");
        store
            .insert_batch(&[message(5, 2, "alert", Some(7 * BUCKET_MS))])
            .expect("insert");
        store.flush().expect("flush");
    }
    std::fs::remove_file(options.path.join(KEY_FILE)).expect("remove");
    let error = SledStore::open(&options).expect_err("refused").to_string();
    assert!(error.contains("key file expiry-keys is missing"), "{error}");
    // A truncated key file is refused the same way, not silently made again.
    std::fs::write(options.path.join(KEY_FILE), b"SOLK").expect("truncate");
    let error = SledStore::open(&options).expect_err("refused").to_string();
    assert!(error.contains("missing or truncated"), "{error}");

    assert!(error.contains("restore the file"), "{error}");
}

#[test]
fn a_record_whose_key_is_damaged_still_expires_instead_of_stopping_the_sweep() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SledOptions::new(dir.path().join("db"));
    let doomed = message(6, 1, "alert", Some(3 * BUCKET_MS));
    {
        let store = SledStore::open(&options).expect("open");
        store
            .insert_batch(std::slice::from_ref(&doomed))
            .expect("insert");
        store.flush().expect("flush");
    }
    let path = options.path.join(KEY_FILE);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[64 + 20] ^= 1;
    std::fs::write(&path, &bytes).expect("write");
    let store = SledStore::open(&options).expect("reopen");
    assert_eq!(store.envelope(&doomed.id).expect("get"), None);
    assert_eq!(store.expire(3 * BUCKET_MS).expect("sweep"), 1);
    assert!(!store.contains(&doomed.id).expect("contains"));
    assert_eq!(
        store.id_at(&doomed.author, 1).expect("tombstone"),
        Some(doomed.id)
    );
    assert_eq!(store.len().expect("len"), 0);
}

#[test]
fn the_two_latest_canaries_of_each_author_outlive_their_expiry() {
    for (store, _dir) in backends() {
        let expires = Some(BUCKET_MS);
        store
            .insert_batch(&[
                message(4, 3, "canary", expires),
                message(4, 2, "canary", expires),
                message(5, 1, "canary", expires),
                message(5, 2, "alert", expires),
            ])
            .expect("insert");
        // An older canary arriving late (by sync) does not displace the latest two.
        store
            .insert_batch(&[message(4, 1, "canary", expires)])
            .expect("insert");
        assert!(store.expire(BUCKET_MS * 3).expect("expire") >= 5);
        assert!(store.by_kind("canary").expect("by kind").is_empty());
        let kept = store.kept_canaries().expect("kept");
        let seqs: Vec<(u8, Vec<u64>)> = kept
            .iter()
            .map(|(author, held)| (author.0[0], held.iter().map(|h| h.seq).collect()))
            .collect();
        eprintln!("kept after expiry: {seqs:?}");
        assert_eq!(seqs, [(4, vec![2, 3]), (5, vec![1])]);
        assert_eq!(
            kept[0].1[1].envelope,
            message(4, 3, "canary", expires).envelope
        );
    }
}

#[test]
fn a_layout_3_store_is_upgraded_with_its_canaries_kept() {
    use solidarity_store::kv::{Backend, BatchOp};
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SledOptions::new(dir.path().join("db"));
    {
        let store = SledStore::open(&options).expect("open");
        store
            .insert_batch(&[
                message(6, 1, "canary", None),
                message(6, 2, "canary", None),
                message(6, 3, "canary", None),
                message(6, 4, "alert", None),
            ])
            .expect("insert");
        store.flush().expect("flush");
    }
    {
        // Back to layout 3: no kept canaries, layout byte 3.
        let backend = solidarity_store::SledBackend::open(&options).expect("backend");
        let kept = backend.scan(b"n", b"n", 100).expect("scan");
        assert_eq!(kept.len(), 1);
        let mut ops: Vec<BatchOp> = kept.into_iter().map(|(k, _)| BatchOp::Delete(k)).collect();
        ops.push(BatchOp::Put(b"V".to_vec(), vec![3]));
        backend.apply(ops).expect("apply");
        backend.flush().expect("flush");
    }
    let store = SledStore::open(&options).expect("upgraded");
    assert_eq!(store.len().expect("len"), 4);
    assert!(
        store
            .envelope(&message(6, 4, "alert", None).id)
            .expect("get")
            .is_some()
    );
    let kept = store.kept_canaries().expect("kept");
    assert_eq!(kept.len(), 1);
    assert_eq!(
        kept[0].1.iter().map(|held| held.seq).collect::<Vec<_>>(),
        [2, 3]
    );
    drop(store);
    let backend = solidarity_store::SledBackend::open(&options).expect("backend");
    assert_eq!(backend.get(b"V").expect("layout"), Some(vec![5]));
}

/// A message of author 1 at `seq` with the given id.
fn message_with_id(seq: u64, id: [u8; 32], expires_at: Option<u64>) -> NewMessage {
    NewMessage {
        id: MessageId(id),
        ..message(1, seq, "alert", expires_at)
    }
}

#[test]
fn ids_after_pages_through_every_stored_id_in_order_without_the_expired() {
    for (store, _dir) in backends() {
        let mut ids: Vec<MessageId> = (1..=7u8)
            .map(|n| MessageId([n.wrapping_mul(37); 32]))
            .collect();
        let batch: Vec<NewMessage> = ids
            .iter()
            .zip(1..)
            .map(|(id, seq)| message_with_id(seq, id.0, (seq == 4).then_some(2_000)))
            .collect();
        store.insert_batch(&batch).expect("insert");
        store.expire(3_000).expect("expire");
        let expired = ids.remove(3);
        ids.sort();

        let mut paged = Vec::new();
        let mut after = None;
        loop {
            let page = store.ids_after(after.as_ref(), 2).expect("page");
            assert!(page.len() <= 2, "at most the limit");
            let Some(last) = page.last().copied() else {
                break;
            };
            paged.extend(page);
            after = Some(last);
        }
        assert_eq!(paged, ids, "every stored id once, in id order");
        assert!(!paged.contains(&expired));
        let last = ids.last().expect("ids");
        assert!(store.ids_after(Some(last), 10).expect("read").is_empty());
    }
}

#[test]
fn ids_with_prefix_reads_only_the_ids_it_names_in_order_and_within_the_limit() {
    let id = |bytes: &[u8]| {
        let mut id = [0u8; 32];
        id[..bytes.len()].copy_from_slice(bytes);
        MessageId(id)
    };
    for (store, _dir) in backends() {
        let ids = [
            id(&[0xab, 0xcd, 0xef, 0x01]),
            id(&[0xab, 0xcd, 0xef, 0x02]),
            id(&[0xab, 0xcd, 0xe0, 0xff]),
            id(&[0xab, 0xce, 0x00, 0x00]),
            id(&[0xac, 0x00, 0x00, 0x00]),
        ];
        let batch: Vec<NewMessage> = ids
            .iter()
            .zip(1..)
            .map(|(id, seq)| message_with_id(seq, id.0, None))
            .collect();
        store.insert_batch(&batch).expect("insert");
        let expired = id(&[0xab, 0xcd, 0xef, 0x03]);
        store
            .insert_batch(&[message_with_id(6, expired.0, Some(2_000))])
            .expect("insert");
        store.expire(3_000).expect("expire");

        let found = |hex: &str, limit| store.ids_with_prefix(hex, limit).expect("read");
        assert_eq!(found("abcdef", 10), vec![ids[0], ids[1]], "even length");
        assert_eq!(
            found("abcde", 10),
            vec![ids[2], ids[0], ids[1]],
            "odd length: the last digit is a high nibble, in id order"
        );
        assert_eq!(found("abcdf", 10), Vec::<MessageId>::new(), "nothing there");
        assert_eq!(found("abcd", 2), vec![ids[2], ids[0]], "at most the limit");
        assert_eq!(
            found("abcdef03", 10),
            Vec::<MessageId>::new(),
            "expired: gone"
        );
        assert_eq!(found(&ids[3].to_hex(), 10), vec![ids[3]], "a whole id");
        assert_eq!(found("ab", 10).len(), 4);
        for not_hex in ["ABCDEF", "abcdeg", "abc def", &"a".repeat(65)] {
            assert_eq!(found(not_hex, 10), Vec::<MessageId>::new(), "{not_hex}");
        }
    }
}
