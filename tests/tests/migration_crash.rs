//! Crash loop of the store upgrade (issue 15): "50 kills at random points of a migration
//! never lose or corrupt the store".
//!
//! The store is the layout-2 fixture data dir made by the old binary
//! (`tests/fixtures/stores/layout2`), enlarged with a few thousand messages of its member B
//! written in layout 2 by `old_layout` (the old `insert_batch`, `expire` and `record_fork`
//! ported; a test below checks that it writes byte for byte what the old binaries wrote):
//! alerts, updates, messages that expired (tombstones) and fork evidence. Today's
//! `solidarity` binary is started on a copy of it, which rebuilds the store, and killed with
//! SIGKILL at a random moment: one kill in ten before the rebuild begins, the others during
//! it or just after. After each kill the directory that the next start will open (`store`,
//! or what `settle_interrupted` puts in its place) is either the whole old store, key for
//! key, or a whole new one holding every message, tombstone, watermark and fork mark of the
//! old. The states between the rebuild's last steps, which random kills rarely hit, are
//! also made by hand and started. At the end a start runs to completion: no
//! `store.migrating` or `store.replaced` is left, and `alert list` and `mirror list` show
//! what an uninterrupted upgrade showed.
//!
//! 50 kills by default (`SOLIDARITY_KILLS=N` for more); `SOLIDARITY_SEED=N` replays a run.

#[path = "../../crates/solidarity-bench/src/old_layout.rs"]
#[allow(
    unreachable_pub,
    reason = "shared with the bench, where it is a module's interface"
)]
mod old_layout;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use old_layout::OldStore;
use solidarity_control::Client;
use solidarity_proto::payload::{AlertCategory, AlertStatus, AlertUpdate, Severity};
use solidarity_proto::{AuthorKey, Body, Envelope, MessageId, Payload, envelope};
use solidarity_store::kv::{Backend, Entry};
use solidarity_store::{MemoryBackend, NewMessage, SledBackend, SledOptions, SledStore, Store};
use solidarity_tests::fixture_stores::{relocate, unpack};
use solidarity_tests::{
    DEADLINE, binary, cli_ok, free_port, kill9, now_ms, sample_alert, spawn_daemon,
};

/// Messages of B added to the fixture's store: enough for a rebuild of about half a second
/// in a debug build, so that kills land all through it.
const ADDED: usize = 4_000;
/// Log line of a start that rebuilds the store, and of one that finished.
const REBUILDING: &str = "rebuilding it beside the old one";
const UPGRADED: &str = "store upgraded";
/// The file that marks the new store complete.
const COMPLETE: &str = "MIGRATION-COMPLETE";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        let kind = entry.file_type().expect("file type");
        if kind.is_dir() {
            copy_dir(&entry.path(), &target);
        } else if kind.is_file() {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// Every key and value of a sled store.
fn dump(backend: &impl Backend) -> Vec<Entry> {
    backend.scan(&[], &[], usize::MAX).expect("scan")
}

/// The message to store for a valid envelope.
fn message_of_envelope(envelope: &[u8]) -> NewMessage {
    NewMessage::from_envelope(envelope).expect("envelope")
}

/// Layout 2's record: 89 fixed bytes, the kind, the envelope.
fn record_envelope(record: &[u8]) -> &[u8] {
    &record[89 + usize::from(record[88])..]
}

fn author_of(entry_key: &[u8]) -> AuthorKey {
    AuthorKey(entry_key[1..33].try_into().expect("author"))
}

fn u64_at(bytes: &[u8]) -> u64 {
    u64::from_be_bytes(bytes[..8].try_into().expect("u64"))
}

/// What an old store (layout 2) holds, read from its keys.
#[derive(Default)]
struct OldContent {
    /// (author, seq) → id and the message (`None`: a tombstone).
    chain: BTreeMap<(AuthorKey, u64), (MessageId, Option<NewMessage>)>,
    statements: Vec<NewMessage>,
    watermarks: BTreeMap<AuthorKey, u64>,
    count: u64,
    /// author → (detected_at, from_seq, evidence ids).
    compromised: BTreeMap<AuthorKey, (u64, u64, BTreeSet<MessageId>)>,
    entries: Vec<Entry>,
}

impl OldContent {
    fn read(entries: Vec<Entry>) -> Self {
        let mut content = Self::default();
        let mut evidence: BTreeMap<AuthorKey, BTreeSet<MessageId>> = BTreeMap::new();
        for (entry_key, value) in &entries {
            match entry_key[0] {
                b'C' => {
                    let id = MessageId(value[..32].try_into().expect("id"));
                    let message = (value.len() > 32).then(|| {
                        let message = message_of_envelope(record_envelope(&value[32..]));
                        assert_eq!(message.id, id, "a chain record under another id");
                        message
                    });
                    content.chain.insert(
                        (author_of(entry_key), u64_at(&entry_key[33..])),
                        (id, message),
                    );
                }
                b'S' => content
                    .statements
                    .push(message_of_envelope(record_envelope(value))),
                b'W' => {
                    content
                        .watermarks
                        .insert(author_of(entry_key), u64_at(value));
                }
                b'N' => content.count = u64_at(value),
                b'F' => {
                    evidence
                        .entry(author_of(entry_key))
                        .or_default()
                        .insert(MessageId(entry_key[41..].try_into().expect("id")));
                }
                b'Z' => {
                    content.compromised.insert(
                        author_of(entry_key),
                        (u64_at(value), u64_at(&value[8..]), BTreeSet::new()),
                    );
                }
                _ => {}
            }
        }
        for (author, ids) in evidence {
            content
                .compromised
                .get_mut(&author)
                .expect("evidence of a marked author")
                .2 = ids;
        }
        content.entries = entries;
        content
    }

    /// Checks that a store of the new layout holds everything this old one held: every
    /// chain entry (message or tombstone) at its seq, every envelope not expired by now,
    /// every statement, each author's watermark (the node's own chain may have grown by
    /// its start canary), the fork evidence and marks, and at least as many messages.
    fn check_new(&self, store: &SledStore, own: &AuthorKey, what: &str) {
        let now = now_ms();
        for ((author, seq), (id, message)) in &self.chain {
            assert_eq!(
                store.id_at(author, *seq).expect("id_at"),
                Some(*id),
                "{what}: chain entry {seq} of {author:?} lost"
            );
            if let Some(message) = message
                && message.expires_at.is_none_or(|at| at > now)
            {
                assert_eq!(
                    store.envelope(id).expect("envelope").as_ref(),
                    Some(&message.envelope),
                    "{what}: envelope {id} lost"
                );
            }
        }
        for statement in &self.statements {
            assert_eq!(
                store.envelope(&statement.id).expect("envelope").as_ref(),
                Some(&statement.envelope),
                "{what}: statement {} lost",
                statement.id
            );
        }
        for (author, watermark) in &self.watermarks {
            let now_held = store.watermark(author).expect("watermark");
            if author == own {
                assert!(now_held >= *watermark, "{what}: own watermark went back");
            } else {
                assert_eq!(now_held, *watermark, "{what}: watermark of {author:?}");
            }
        }
        let compromised: BTreeMap<AuthorKey, (u64, u64, BTreeSet<MessageId>)> = store
            .compromised()
            .expect("compromised")
            .into_iter()
            .map(|mark| {
                (
                    mark.author,
                    (
                        mark.detected_at,
                        mark.from_seq,
                        mark.evidence.iter().map(|stored| stored.id).collect(),
                    ),
                )
            })
            .collect();
        assert_eq!(compromised, self.compromised, "{what}: fork evidence");
        assert!(
            store.len().expect("len") as u64 >= self.count,
            "{what}: fewer messages than the old store counted"
        );
    }
}

/// The messages of an old store (layout 1 or 2), from its keys, in chain order.
fn stored_messages(entries: &[Entry], layout: u8) -> Vec<NewMessage> {
    let mut messages: Vec<NewMessage> = entries
        .iter()
        .filter_map(|(entry_key, value)| match (layout, entry_key[0]) {
            (1, b'E') => Some(message_of_envelope(value)),
            (2, b'C') if value.len() > 32 => {
                Some(message_of_envelope(record_envelope(&value[32..])))
            }
            (2, b'S') => Some(message_of_envelope(record_envelope(value))),
            _ => None,
        })
        .collect();
    messages.sort_by_key(|message| (message.author, message.seq, message.id));
    messages
}

/// The writer of old stores that the crash loop (and the bench's `migrate` case) relies on
/// writes what the old binaries wrote: every envelope of each fixture data dir made by
/// them, written again by `old_layout`, gives the same keys and values.
#[test]
fn old_layout_writes_what_the_old_binaries_wrote() {
    for layout in [1, 2] {
        for node in ["a", "b"] {
            let work = tempfile::tempdir().expect("tempdir");
            let dir = unpack(layout, node, work.path());
            let made_by_old_binary =
                dump(&SledBackend::open(&SledOptions::new(dir.join("store"))).expect("open"));
            let messages = stored_messages(&made_by_old_binary, layout);
            assert!(messages.len() >= 20, "the fixture's messages");
            let rewritten = OldStore::create(MemoryBackend::default(), layout).expect("create");
            for message in &messages {
                assert_eq!(
                    rewritten
                        .insert(std::slice::from_ref(message))
                        .expect("insert"),
                    1
                );
            }
            let rewritten = dump(rewritten.backend());
            assert_eq!(
                rewritten.len(),
                made_by_old_binary.len(),
                "layout {layout}, node {node}: number of keys"
            );
            for (ours, theirs) in rewritten.iter().zip(&made_by_old_binary) {
                assert_eq!(ours, theirs, "layout {layout}, node {node}: a key differs");
            }
            println!(
                "layout {layout}, node {node}: {} messages, {} keys, identical",
                messages.len(),
                rewritten.len()
            );
        }
    }
}

/// B's messages added to the fixture: alerts (a third expiring in 30 days, a tenth already
/// expired, so the old sweep leaves tombstones), updates of earlier alerts, and a second
/// message at B's last seq (fork evidence, B marked compromised from it).
fn enlarge(store_dir: &Path, b_key: &SigningKey) {
    let old = OldStore::create(
        SledBackend::open(&SledOptions::new(store_dir)).expect("open the old store"),
        2,
    )
    .expect("old store");
    let b = envelope::author_key(b_key);
    let mut chain_prefix = vec![b'C'];
    chain_prefix.extend_from_slice(b.as_bytes());
    let (head_key, head_value) = old
        .backend()
        .scan_rev(&chain_prefix, 1)
        .expect("scan")
        .pop()
        .expect("B's chain in A's store");
    let head = message_of_envelope(record_envelope(&head_value[32..]));
    let fed = Payload::decode(&Envelope::decode(&head.envelope).expect("env").payload)
        .expect("payload")
        .fed;
    let mut seq = u64_at(&head_key[33..]);
    let mut prev = Some(head.id);
    let now = now_ms();
    let started = now - 3 * 3_600_000;
    let mut alerts = Vec::new();
    let mut batch = Vec::new();
    let sign = |seq: u64, prev: Option<MessageId>, created_at, expires_at, body: Body| {
        let payload = Payload {
            fed,
            seq,
            prev,
            created_at,
            expires_at,
            kind: body.kind().expect("kind").to_owned(),
            body: body.encode(),
        };
        message_of_envelope(&envelope::sign(b_key, &payload).bytes)
    };
    for index in 0..ADDED {
        seq += 1;
        let created_at = started + index as u64;
        let message = if index % 8 == 7 && !alerts.is_empty() {
            let target = alerts[index * 7 % alerts.len()];
            sign(
                seq,
                prev,
                created_at,
                None,
                Body::AlertUpdate(AlertUpdate {
                    alert: target,
                    status: if index % 16 == 7 {
                        AlertStatus::Confirmed
                    } else {
                        AlertStatus::Resolved
                    },
                    note: Some(format!("update {index}")),
                }),
            )
        } else {
            let expires_at = match index % 10 {
                0 => Some(created_at + 3_600_000),
                1 | 4 | 7 => Some(now + 30 * 86_400_000),
                _ => None,
            };
            let message = sign(
                seq,
                prev,
                created_at,
                expires_at,
                Body::Alert(sample_alert(
                    AlertCategory::Raid,
                    Severity::High,
                    format!("migration crash alert {index}"),
                )),
            );
            if expires_at.is_none() {
                alerts.push(message.id);
            }
            message
        };
        prev = Some(message.id);
        batch.push(message);
        if batch.len() == 256 {
            old.insert(&batch).expect("insert");
            batch.clear();
        }
    }
    old.insert(&batch).expect("insert");
    // What the old node's sweep did once they expired (the fixture's canaries too).
    assert!(old.expire(now).expect("expire") > 0);
    let fork = sign(
        seq,
        Some(MessageId([7; 32])),
        now - 60_000,
        None,
        Body::Alert(sample_alert(
            AlertCategory::Raid,
            Severity::Low,
            "the other message at B's last seq",
        )),
    );
    old.record_fork(&fork, now - 30_000, seq).expect("fork");
    old.flush().expect("flush");
}

/// Starts `solidarity node` on `dir`, its stderr to `log`.
fn spawn(dir: &Path, log: &Path) -> Child {
    spawn_daemon(dir, std::fs::File::create(log).expect("log file"))
}

fn terminate(mut child: Child, log: &Path) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("wait");
    assert!(status.success(), "clean stop failed: {}", read(log));
}

fn read(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// Waits until the daemon answers on its control socket.
fn wait_ready(child: &mut Child, dir: &Path, log: &Path) {
    let start = Instant::now();
    let client = Client::new(dir);
    while client.status().is_err() {
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("the daemon exited ({status}): {}", read(log));
        }
        assert!(start.elapsed() < DEADLINE, "no answer: {}", read(log));
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `took_ms` of the log's "store upgraded" line.
fn took_ms(log: &str) -> Option<u64> {
    let line = log.lines().find(|line| line.contains(UPGRADED))?;
    let rest = &line[line.find("took_ms=")? + "took_ms=".len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// What `alert list --all` and `mirror list` show: (id, status) of each alert, offer ids.
type Listing = (BTreeSet<(String, String)>, BTreeSet<String>);

fn listing(dir: &Path) -> Listing {
    let alerts: serde_json::Value =
        serde_json::from_str(&cli_ok(dir, &["alert", "list", "--all", "--json"])).expect("json");
    let offers: serde_json::Value =
        serde_json::from_str(&cli_ok(dir, &["mirror", "list", "--json"])).expect("json");
    let alerts = alerts
        .as_array()
        .expect("alerts")
        .iter()
        .map(|alert| (alert["id"].to_string(), alert["status"].to_string()))
        .collect();
    let offers = offers
        .as_array()
        .expect("offers")
        .iter()
        .map(|offer| offer["id"].to_string())
        .collect();
    (alerts, offers)
}

/// The directory the next start will open as `store`: what `settle_interrupted` keeps
/// (the new store once marked complete, else the old one), or `None` if neither is there.
fn store_to_open(dir: &Path) -> Option<PathBuf> {
    let store = dir.join("store");
    let migrating = dir.join("store.migrating");
    let replaced = dir.join("store.replaced");
    let complete = migrating.join(COMPLETE).exists();
    if replaced.exists() && !store.exists() {
        return Some(if complete { migrating } else { replaced });
    }
    if store.exists() {
        return Some(store);
    }
    (migrating.exists() && complete).then_some(migrating)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    Old,
    New,
}

/// Checks, on a copy, that the store the next start opens is the whole old store or a
/// whole new one.
fn check_after_kill(dir: &Path, old: &OldContent, own: &AuthorKey, kill: usize) -> Found {
    let chosen = store_to_open(dir)
        .unwrap_or_else(|| panic!("kill {kill}: neither the old store nor a complete new one"));
    let scratch = tempfile::tempdir().expect("tempdir");
    let copy = scratch.path().join("store");
    copy_dir(&chosen, &copy);
    let options = SledOptions::new(&copy);
    let (layout, entries) = {
        let backend = SledBackend::open(&options).expect("the store opens");
        (backend.get(b"V").expect("layout"), dump(&backend))
    };
    match layout.as_deref() {
        Some([2]) => {
            assert!(
                entries == old.entries,
                "kill {kill}: the old store changed ({} keys, {} before)",
                entries.len(),
                old.entries.len()
            );
            Found::Old
        }
        Some([5]) => {
            let store = SledStore::open(&options).expect("the new store opens");
            old.check_new(&store, own, &format!("kill {kill}"));
            Found::New
        }
        other => panic!("kill {kill}: a store of layout {other:?}"),
    }
}

/// The interrupted upgrades a kill between two steps leaves, each started to completion:
/// the node then shows what it showed after an uninterrupted upgrade, holds everything the
/// old store held, rebuilt again only when the new store was not marked complete before
/// the old one was moved, and leaves nothing of the upgrade behind.
fn settle_cases(
    root: &Path,
    pristine: &Path,
    new_store: &Path,
    old: &OldContent,
    own: &AuthorKey,
    reference: &Listing,
) {
    let mark = |store: &Path| std::fs::write(store.join(COMPLETE), b"complete\n").expect("mark");
    let cases: [(&str, bool); 5] = [
        ("a build not marked complete", true),
        ("marked complete, the old store not yet moved", true),
        ("between the two renames", false),
        ("while the old store is deleted", false),
        ("before the mark is removed", false),
    ];
    for (index, (case, rebuilds)) in cases.into_iter().enumerate() {
        let dir = root.join(format!("case-{index}"));
        copy_dir(pristine, &dir);
        let (store, migrating, replaced) = (
            dir.join("store"),
            dir.join("store.migrating"),
            dir.join("store.replaced"),
        );
        match index {
            0 => copy_dir(new_store, &migrating),
            1 => {
                copy_dir(new_store, &migrating);
                mark(&migrating);
            }
            2 => {
                std::fs::rename(&store, &replaced).expect("rename");
                copy_dir(new_store, &migrating);
                mark(&migrating);
            }
            3 => {
                std::fs::rename(&store, &replaced).expect("rename");
                std::fs::remove_file(replaced.join("db")).expect("delete part of the old");
                copy_dir(new_store, &store);
            }
            _ => {
                std::fs::remove_dir_all(&store).expect("remove");
                copy_dir(new_store, &store);
                mark(&store);
            }
        }
        let log = root.join(format!("case-{index}.log"));
        let mut child = spawn(&dir, &log);
        wait_ready(&mut child, &dir, &log);
        assert_eq!(&listing(&dir), reference, "{case}: what the node shows");
        terminate(child, &log);
        assert_eq!(
            read(&log).contains(REBUILDING),
            rebuilds,
            "{case}: rebuilt again? {}",
            read(&log)
        );
        for leftover in [&migrating, &replaced, &store.join(COMPLETE)] {
            assert!(!leftover.exists(), "{case}: {} left", leftover.display());
        }
        old.check_new(
            &SledStore::open(&SledOptions::new(&store)).expect("open"),
            own,
            case,
        );
        println!("migration crash: settled {case} (rebuilt again: {rebuilds})");
    }
}

fn kills() -> usize {
    std::env::var("SOLIDARITY_KILLS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(50)
}

#[test]
fn kill_9_during_a_store_rebuild_never_loses_the_store() {
    // Built (or found up to date) before anything is timed.
    binary();
    let started = Instant::now();
    let seed = solidarity_tests::seed();
    let mut rng = solidarity_tests::Rng(seed);
    let target_kills = kills();
    println!("migration crash: seed {seed} (SOLIDARITY_SEED to replay), {target_kills} kills");

    // The old store: the layout-2 fixture of node A, enlarged with B's messages.
    let root = tempfile::tempdir().expect("tempdir");
    let source = root.path().join("source");
    std::fs::create_dir(&source).expect("dir");
    let pristine = unpack(2, "a", &source);
    let b_dir = unpack(2, "b", &source);
    // B does not run: its address is a port nobody listens on.
    relocate(&pristine, free_port(), free_port());
    let b_key = solidarity::identity::load_key_file(&b_dir).expect("B's key");
    let own = envelope::author_key(&solidarity::identity::load_key_file(&pristine).expect("key"));
    enlarge(&pristine.join("store"), &b_key);
    let old = OldContent::read(dump(
        &SledBackend::open(&SledOptions::new(pristine.join("store"))).expect("open"),
    ));
    let tombstones = old.chain.values().filter(|(_, m)| m.is_none()).count();
    println!(
        "migration crash: old store of {} messages ({} keys, {tombstones} tombstones, {} forked authors), made in {:?}",
        old.count,
        old.entries.len(),
        old.compromised.len(),
        started.elapsed()
    );

    // An uninterrupted upgrade: how long it takes, and what the node then shows.
    let calibration = root.path().join("calibration");
    copy_dir(&pristine, &calibration);
    let log = root.path().join("calibration.log");
    let spawned = Instant::now();
    let mut child = spawn(&calibration, &log);
    let (mut rebuild_from, mut upgraded_at) = (None, None);
    while upgraded_at.is_none() {
        let text = read(&log);
        if rebuild_from.is_none() && text.contains(REBUILDING) {
            rebuild_from = Some(spawned.elapsed());
        }
        if text.contains(UPGRADED) {
            upgraded_at = Some(spawned.elapsed());
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("the daemon exited ({status}): {text}");
        }
        assert!(spawned.elapsed() < DEADLINE, "no upgrade: {text}");
        std::thread::sleep(Duration::from_millis(2));
    }
    let upgraded_at = upgraded_at.expect("upgraded");
    let rebuild_from = rebuild_from.unwrap_or_default();
    wait_ready(&mut child, &calibration, &log);
    let ready_at = spawned.elapsed();
    let took = took_ms(&read(&log)).expect("took_ms in the log");
    let reference = listing(&calibration);
    terminate(child, &log);
    old.check_new(
        &SledStore::open(&SledOptions::new(calibration.join("store"))).expect("open"),
        &own,
        "uninterrupted upgrade",
    );
    println!(
        "migration crash: uninterrupted upgrade: rebuild from {rebuild_from:?} to {upgraded_at:?} after spawn (took_ms {took}), answering at {ready_at:?}; {} alerts and {} offers listed",
        reference.0.len(),
        reference.1.len()
    );
    assert!(
        took >= 200,
        "the rebuild took {took} ms: too short to be interrupted at many points"
    );

    // One kill in ten at a random moment before the rebuild began (by the uninterrupted
    // start's timing); the others at a random moment from the log's "rebuilding" line to a
    // fifth past the rebuild's length (the last rebuild that finished, so that a machine
    // slowed or sped up by other work still spreads them over the whole rebuild).
    let mut rebuild_ms = took;
    let dir = root.path().join("node");
    copy_dir(&pristine, &dir);
    let (mut before, mut during, mut after) = (0, 0, 0);
    let mut fifths = [0; 5];
    let (mut found_old, mut found_new, mut settled_by_next_start, mut resets) = (0, 0, 0, 0);
    let mut pending_new = false;
    for kill in 1..=target_kills {
        let log = root.path().join(format!("kill-{kill}.log"));
        let mut child = spawn(&dir, &log);
        let spawned = Instant::now();
        let into_rebuild = if rng.below(10) == 0 {
            std::thread::sleep(Duration::from_millis(
                rng.below(rebuild_from.as_millis() as u64 + 1),
            ));
            None
        } else {
            let delay = Duration::from_millis(rng.below(rebuild_ms * 6 / 5 + 1));
            // Until the rebuild begins, or the start needs none (the store is new).
            loop {
                let text = read(&log);
                if text.contains(REBUILDING) || text.contains("node started") {
                    break;
                }
                if child.try_wait().expect("try_wait").is_some() {
                    panic!("kill {kill}: the daemon exited: {text}");
                }
                assert!(
                    spawned.elapsed() < DEADLINE,
                    "kill {kill}: no start: {text}"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(delay);
            Some(delay)
        };
        kill9(&mut child);
        let text = read(&log);
        if let Some(took) = took_ms(&text) {
            rebuild_ms = took;
        }
        if text.contains(UPGRADED) {
            after += 1;
        } else if text.contains(REBUILDING) {
            during += 1;
            // Where in the rebuild, in fifths of its length.
            let into = into_rebuild.unwrap_or_default().as_millis() as u64;
            fifths[usize::try_from(into * 5 / rebuild_ms.max(1))
                .unwrap_or(4)
                .min(4)] += 1;
        } else {
            before += 1;
        }
        if pending_new {
            assert!(
                !text.contains(REBUILDING),
                "kill {kill}: a new store was rebuilt again: {text}"
            );
            settled_by_next_start += 1;
        }
        match check_after_kill(&dir, &old, &own, kill) {
            Found::Old => {
                found_old += 1;
                pending_new = false;
            }
            Found::New => {
                found_new += 1;
                let leftovers =
                    dir.join("store.migrating").exists() || dir.join("store.replaced").exists();
                if leftovers {
                    // Between the renames: the next start must finish the swap.
                    pending_new = true;
                } else {
                    // Upgraded: start again from the old store for the next kill.
                    pending_new = false;
                    for name in ["store", "store.migrating", "store.replaced"] {
                        let _ = std::fs::remove_dir_all(dir.join(name));
                    }
                    copy_dir(&pristine.join("store"), &dir.join("store"));
                    resets += 1;
                }
            }
        }
    }
    println!(
        "migration crash: {target_kills} kills: {before} before the rebuild began, {during} during it, {after} after it ended (those during it by fifth of the rebuild: {fifths:?}); the store left was the old one {found_old} times, the new one {found_new} times ({settled_by_next_start} of them with leftovers the next start settled); {resets} fresh copies of the old store"
    );

    // The moments between the steps, each made by hand from the old store and the new one
    // of the uninterrupted upgrade, then started to completion.
    settle_cases(
        root.path(),
        &pristine,
        &calibration.join("store"),
        &old,
        &own,
        &reference,
    );

    // A last start, to completion: everything is there and the node serves it.
    let log = root.path().join("final.log");
    let mut child = spawn(&dir, &log);
    wait_ready(&mut child, &dir, &log);
    assert_eq!(
        listing(&dir),
        reference,
        "the node shows what it showed after an uninterrupted upgrade"
    );
    for leftover in ["store.migrating", "store.replaced"] {
        assert!(!dir.join(leftover).exists(), "{leftover} left behind");
    }
    terminate(child, &log);
    old.check_new(
        &SledStore::open(&SledOptions::new(dir.join("store"))).expect("open"),
        &own,
        "after the crash loop",
    );
    println!("migration crash: total time {:?}", started.elapsed());
    assert!(
        during * 2 >= target_kills,
        "only {during} of {target_kills} kills landed during the rebuild"
    );
}
