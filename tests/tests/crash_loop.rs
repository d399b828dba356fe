//! Crash loop: the real `solidarity` binary is killed with SIGKILL at random moments while
//! a harness raises alerts as fast as it can (through the control socket, and through the
//! real CLI for a share of them), and some kills land during start-up before the daemon
//! answers. After every restart no acknowledged alert is missing and none is listed twice;
//! at the end every envelope in the sled store decodes, verifies and chains.
//!
//! 50 kills by default; 200 with `SOLIDARITY_LONG=1`. `SOLIDARITY_SEED=N` replays a run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use solidarity_control::{Client, request};
use solidarity_proto::payload::{Alert, AlertCategory, Severity};
use solidarity_proto::{Body, Envelope, MessageId, Payload};
use solidarity_store::{SledOptions, SledStore, Store};
use solidarity_tests::{DEADLINE, cli, init_data_dir, kill9, node_key, spawn_daemon};

/// Small deterministic generator (splitmix64): the test crate has no `rand`.
fn long_run() -> bool {
    std::env::var("SOLIDARITY_LONG").is_ok_and(|value| value == "1")
}

/// Starts `solidarity node` without waiting for it (stderr appended to `log`).
fn spawn(dir: &Path, log: &Path) -> Child {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    spawn_daemon(dir, log_file)
}

/// Waits until the daemon answers on its control socket; fails if it exits first (e.g.
/// its store does not open).
fn wait_ready(child: &mut Child, dir: &Path, log: &Path) -> Duration {
    let start = Instant::now();
    let client = Client::new(dir);
    loop {
        if client.status().is_ok() {
            return start.elapsed();
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!(
                "the daemon exited during start-up ({status}): {}",
                tail(log)
            );
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the daemon did not answer: {}",
            tail(log)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn alert(summary: String) -> Alert {
    solidarity_tests::sample_alert(AlertCategory::Raid, Severity::High, summary)
}

/// Every acknowledged alert: id → the number in its summary.
type Acked = Arc<Mutex<HashMap<MessageId, u64>>>;

/// Raises alerts until `stop`, recording each acknowledged id. `via_cli`: through the real
/// binary's `alert raise` (one process per alert), else through the control client.
fn raiser(
    dir: PathBuf,
    via_cli: bool,
    counter: Arc<AtomicU64>,
    acked: Acked,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(u64, u64)> {
    std::thread::spawn(move || {
        let client = Client::new(&dir);
        let (mut ok, mut failed) = (0, 0);
        while !stop.load(Ordering::SeqCst) {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let summary = format!("crash loop alert {n}");
            // Every other alert expires, each in one of 48 hours: its record is sealed,
            // and new hours make new keys, so kills also land between a key and its record.
            let expires_in_hours = n.is_multiple_of(2).then_some(1 + n / 2 % 48);
            let id = if via_cli {
                let mut args = vec![
                    "alert".to_owned(),
                    "raise".to_owned(),
                    "--kind".to_owned(),
                    "raid".to_owned(),
                    "--subject".to_owned(),
                    "crash.example".to_owned(),
                    "--severity".to_owned(),
                    "high".to_owned(),
                    "--summary".to_owned(),
                    summary,
                ];
                if let Some(hours) = expires_in_hours {
                    args.extend(["--expires-in".to_owned(), format!("{hours}h")]);
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let (success, stdout, _) = cli(&dir, &args);
                success.then(|| {
                    stdout
                        .trim()
                        .parse::<MessageId>()
                        .unwrap_or_else(|_| panic!("the CLI printed no id: {stdout:?}"))
                })
            } else {
                client
                    .sign(&request::AlertRaise {
                        alert: alert(summary),
                        expires_in_ms: expires_in_hours.map(|hours| hours * 3_600_000),
                    })
                    .ok()
            };
            match id {
                Some(id) => {
                    ok += 1;
                    let previous = acked.lock().expect("lock").insert(id, n);
                    assert!(previous.is_none(), "one id acknowledged twice: {id}");
                }
                None => {
                    failed += 1;
                    // The daemon is down or going down: do not spin.
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
        (ok, failed)
    })
}

/// Checks the invariants on a running daemon; returns (alerts listed, stored messages).
fn check_invariants(dir: &Path, acked: &Acked, restart: usize) -> (usize, usize) {
    let client = Client::new(dir);
    let alerts = client.all_alerts().expect("alert list");
    let listed: HashSet<MessageId> = alerts.iter().map(|view| view.id).collect();
    assert_eq!(
        listed.len(),
        alerts.len(),
        "restart {restart}: an alert is listed twice"
    );
    let mut summaries = HashSet::new();
    for view in &alerts {
        assert!(
            summaries.insert(view.alert.summary.clone()),
            "restart {restart}: two alerts with one summary: {:?}",
            view.alert.summary
        );
    }
    let acked = acked.lock().expect("lock");
    let missing: Vec<_> = acked.keys().filter(|id| !listed.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "restart {restart}: {} acknowledged alert(s) missing, e.g. {}",
        missing.len(),
        missing[0]
    );
    let stored = client.status().expect("status").stored_messages;
    (alerts.len(), stored)
}

/// Opens the store of a stopped daemon and checks every envelope: decodes, verifies, has
/// the id it is stored under, chains by seq and prev, and its body passes its field checks.
fn verify_store(dir: &Path, acked: &Acked) -> BTreeMap<String, usize> {
    let store = SledStore::open(&SledOptions::new(dir.join(solidarity::daemon::STORE_DIR)))
        .expect("the store opens after the crash loop");
    let author = solidarity_proto::envelope::author_key(&node_key(dir));
    let total = store.len().expect("len");
    let chain = store
        .author_range(&author, 1, usize::MAX)
        .expect("author range");
    assert_eq!(
        chain.len(),
        total,
        "every stored message is this node's own"
    );
    let mut by_kind = BTreeMap::new();
    let mut previous: Option<MessageId> = None;
    for (index, stored) in chain.iter().enumerate() {
        let envelope = Envelope::decode(&stored.envelope).expect("the envelope decodes");
        assert!(envelope.verify(), "seq {}: bad signature", stored.seq);
        assert_eq!(envelope.id(), stored.id, "seq {}: wrong id", stored.seq);
        assert_eq!(envelope.signer, author);
        let payload = Payload::decode(&envelope.payload).expect("the payload decodes");
        assert_eq!(payload.seq, stored.seq);
        assert_eq!(
            payload.seq,
            index as u64 + 1,
            "the chain has a gap before seq {}",
            payload.seq
        );
        assert_eq!(payload.prev, previous, "seq {}: broken prev", payload.seq);
        Body::decode(&payload.kind, &payload.body).expect("the body decodes and checks");
        *by_kind.entry(payload.kind.clone()).or_insert(0) += 1;
        previous = Some(stored.id);
    }
    let counted: usize = by_kind
        .keys()
        .map(|kind| store.by_kind(kind).expect("by kind").len())
        .sum();
    assert_eq!(counted, total, "the kind index matches the envelopes");
    let stored_ids: HashSet<MessageId> = chain.iter().map(|stored| stored.id).collect();
    let acked = acked.lock().expect("lock");
    assert!(
        acked.keys().all(|id| stored_ids.contains(id)),
        "an acknowledged alert is not in the store"
    );
    by_kind
}

#[test]
fn kill_9_during_ingest_loses_and_duplicates_nothing() {
    let started = Instant::now();
    let seed = solidarity_tests::seed();
    let mut rng = solidarity_tests::Rng(seed);
    let target_kills = if long_run() { 200 } else { 50 };
    println!("crash loop: seed {seed} (SOLIDARITY_SEED to replay), {target_kills} kills");

    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("node");
    std::fs::create_dir(&dir).expect("dir");
    init_data_dir(&dir);
    let log = root.path().join("node.log");

    let acked: Acked = Arc::default();
    let counter = Arc::new(AtomicU64::new(0));
    let (mut kills, mut startup_kills, mut startup_kills_unanswered) = (0, 0, 0);
    let (mut restarts, mut cli_acked, mut client_acked, mut refused) = (0, 0, 0, 0);
    let mut last_ready = Duration::from_millis(200);
    let mut ready_times = Vec::new();
    let mut last_figures = (0, 0);
    let (mut checking, mut ingesting, mut stopping) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);

    while kills < target_kills {
        let mut child = spawn(&dir, &log);
        // One kill in five lands during start-up, at a random moment in the first half of
        // the time the last start took to answer.
        if kills % 5 == 2 {
            let delay = rng.below(last_ready.as_millis() as u64 / 2 + 1);
            std::thread::sleep(Duration::from_millis(delay));
            let answering =
                std::os::unix::net::UnixStream::connect(solidarity_control::socket_path(&dir))
                    .is_ok();
            kill9(&mut child);
            kills += 1;
            startup_kills += 1;
            if !answering {
                startup_kills_unanswered += 1;
            }
            continue;
        }
        last_ready = wait_ready(&mut child, &dir, &log);
        ready_times.push(last_ready);
        restarts += 1;
        let check_started = Instant::now();
        last_figures = check_invariants(&dir, &acked, restarts);
        checking += check_started.elapsed();

        let stop = Arc::new(AtomicBool::new(false));
        let raisers: Vec<_> = [true, false, false]
            .into_iter()
            .map(|via_cli| {
                (
                    via_cli,
                    raiser(
                        dir.clone(),
                        via_cli,
                        counter.clone(),
                        acked.clone(),
                        stop.clone(),
                    ),
                )
            })
            .collect();
        let window = Duration::from_millis(rng.below(300));
        ingesting += window;
        std::thread::sleep(window);
        let kill_started = Instant::now();
        kill9(&mut child);
        kills += 1;
        stop.store(true, Ordering::SeqCst);
        for (via_cli, raiser) in raisers {
            let (ok, failed) = raiser.join().expect("raiser panicked");
            if via_cli {
                cli_acked += ok;
            } else {
                client_acked += ok;
            }
            refused += failed;
        }
        stopping += kill_started.elapsed();
    }

    // A last start: every acknowledged alert is there, then a clean stop.
    let mut child = spawn(&dir, &log);
    wait_ready(&mut child, &dir, &log);
    restarts += 1;
    let (listed, stored) = check_invariants(&dir, &acked, restarts);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("wait");
    assert!(status.success(), "clean stop failed: {}", tail(&log));
    let by_kind = verify_store(&dir, &acked);

    let acked_total = acked.lock().expect("lock").len();
    ready_times.sort();
    println!(
        "crash loop: {kills} kills ({startup_kills} during start-up, {startup_kills_unanswered} of them before the control socket answered), {restarts} restarts"
    );
    println!(
        "crash loop: {acked_total} alerts acknowledged ({cli_acked} via the CLI, {client_acked} via the control client), {refused} attempts failed while the daemon was down or dying"
    );
    println!(
        "crash loop: {listed} alerts listed and {stored} messages stored at the end (before the last run: {} listed, {} stored); store by kind: {by_kind:?}",
        last_figures.0, last_figures.1
    );
    println!(
        "crash loop: start-up to answering median {:?}, max {:?}; ingest {ingesting:?}, checks {checking:?}, kill and join {stopping:?}; total time {:?}",
        ready_times[ready_times.len() / 2],
        ready_times.last().expect("restarts"),
        started.elapsed()
    );
    assert!(cli_acked > 0, "no alert went through the CLI");
    assert!(startup_kills > 0, "no kill landed during start-up");
    assert!(listed >= acked_total);
}
