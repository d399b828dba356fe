//! Input an admin types under stress, through the real binary: passphrase prompts on a
//! terminal (a pty), dates, lifetimes and limits, statuses per alert kind, mistakes that
//! look harmless (a second endorsement, a withdrawn offer, an update after a retraction)
//! refused with nothing signed, `alert show`, `alert list` filters and order, `key certify`
//! federations, and devnet nodes dying with a `kill -9`ed devnet.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use solidarity_control::{Client, request};
use solidarity_proto::MessageId;
use solidarity_proto::payload::{AlertStatus, Stance};
use solidarity_tests::{BinaryNode, binary, cli, cli_init, cli_ok, free_port, wait_for};

const FEDERATION: &str = "cli-input";
const PASSPHRASE: &str = "correct horse battery staple";
const DURESS: &str = "the sea is calm tonight";

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("not JSON ({error}): {text}"))
}

/// How many messages this node signed: the head of its chain (messages other members
/// send meanwhile do not move it).
fn stored(dir: &Path) -> u64 {
    json(&cli_ok(dir, &["status", "--json"]))["own_seq"]
        .as_u64()
        .expect("own_seq")
}

/// Every message the node stores, its own and its members'.
fn stored_messages(dir: &Path) -> u64 {
    json(&cli_ok(dir, &["status", "--json"]))["stored_messages"]
        .as_u64()
        .expect("stored_messages")
}

/// Runs a command that must fail, and returns its stderr; asserts that its first line
/// gives the reason and that the store did not change.
fn refused(dir: &Path, args: &[&str], expected: &str) -> String {
    let before = stored(dir);
    let (ok, stdout, stderr) = cli(dir, args);
    assert!(!ok, "solidarity {args:?} should fail, printed {stdout}");
    assert!(
        stderr.contains(expected),
        "solidarity {args:?}: expected {expected:?} in {stderr:?}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr
            .lines()
            .next()
            .is_some_and(|line| line.contains(expected)),
        "the reason is the first line: {stderr}"
    );
    assert_eq!(stored(dir), before, "nothing signed by {args:?}");
    eprintln!("refused {args:?}: {}", stderr.trim());
    stderr
}

fn raise(dir: &Path, kind: &str, severity: &str, summary: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "alert",
        "raise",
        "--kind",
        kind,
        "--subject",
        "a.example",
        "--severity",
        severity,
        "--summary",
        summary,
    ];
    args.extend_from_slice(extra);
    cli_ok(dir, &args)
}

fn single_node(root: &Path) -> (PathBuf, BinaryNode) {
    let dir = root.join("solo");
    cli_init(&dir, 0, FEDERATION);
    let node = BinaryNode::start(&dir);
    // The node signs its first canary at start; counts are compared after it.
    wait_for("the first canary", || stored(&dir) >= 1);
    (dir, node)
}

/// Two members that trust each other, both running: alpha and bravo.
fn pair(root: &Path) -> (Vec<PathBuf>, Vec<BinaryNode>) {
    let dirs: Vec<PathBuf> = ["a", "b"].iter().map(|name| root.join(name)).collect();
    for dir in &dirs {
        cli_init(dir, free_port(), FEDERATION);
    }
    let cards: Vec<String> = dirs.iter().map(|dir| cli_ok(dir, &["id"])).collect();
    cli_ok(&dirs[0], &["member", "add", &cards[1], "--name", "bravo"]);
    cli_ok(&dirs[1], &["member", "add", &cards[0], "--name", "alpha"]);
    let nodes = dirs.iter().map(|dir| BinaryNode::start(dir)).collect();
    for dir in &dirs {
        wait_for("both members connected", || {
            json(&cli_ok(dir, &["peers", "--json"]))
                .as_array()
                .is_some_and(|peers| peers.iter().all(|peer| peer["connected"] == true))
        });
    }
    // Each node's first canary, everywhere; counts are compared after them.
    for dir in &dirs {
        wait_for("both canaries", || stored_messages(dir) >= 2);
    }
    (dirs, nodes)
}

fn has_alert(dir: &Path, id: &str) -> bool {
    json(&cli_ok(dir, &["alert", "list", "--json"]))
        .as_array()
        .expect("array")
        .iter()
        .any(|alert| alert["id"] == id)
}

// ---- passphrases on a terminal ------------------------------------------------------

/// A command run on a pseudo-terminal, as an admin at a shell would run it.
struct OnTerminal {
    master: std::fs::File,
    output: Arc<Mutex<Vec<u8>>>,
    child: std::process::Child,
    reader: std::thread::JoinHandle<()>,
    seen: usize,
}

impl OnTerminal {
    fn start(args: &[&str]) -> Self {
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(name.to_str().expect("pts path"))
            .expect("open the pty's terminal side");
        let child = Command::new(binary())
            .args(args)
            .stdin(Stdio::from(slave.try_clone().expect("clone")))
            .stdout(Stdio::from(slave.try_clone().expect("clone")))
            .stderr(Stdio::from(slave))
            .spawn()
            .expect("run solidarity on a pty");
        let master = std::fs::File::from(master);
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().expect("clone");
        let sink = output.clone();
        let reader = std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            // Ends with EIO once the child closed the terminal.
            while let Ok(read @ 1..) = reader.read(&mut buffer) {
                sink.lock()
                    .expect("lock")
                    .extend_from_slice(&buffer[..read]);
            }
        });
        Self {
            master,
            output,
            child,
            reader,
            seen: 0,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().expect("lock")).into_owned()
    }

    /// Waits for `prompt` (after what was already answered), then types `answer` and Enter.
    fn answer(&mut self, prompt: &str, answer: &str) {
        wait_for(&format!("the prompt {prompt:?}"), || {
            self.text()[self.seen..].contains(prompt)
        });
        let text = self.text();
        self.seen = text[self.seen..]
            .find(prompt)
            .map_or(text.len(), |at| self.seen + at + prompt.len());
        writeln!(self.master, "{answer}").expect("type");
    }

    fn finish(mut self) -> (ExitStatus, String) {
        let mut status = None;
        wait_for("the command to end", || {
            status = self.child.try_wait().expect("wait");
            status.is_some()
        });
        // The child held the only terminal side: the reader ends once it drained it.
        let output = self.output.clone();
        self.reader.join().expect("reader");
        let settings = rustix::termios::tcgetattr(&self.master).expect("terminal settings");
        assert!(
            settings
                .local_modes
                .contains(rustix::termios::LocalModes::ECHO),
            "the terminal echoes again once the command ended"
        );
        let text = String::from_utf8_lossy(&output.lock().expect("lock")).into_owned();
        (status.expect("exited"), text)
    }
}

#[test]
fn passphrases_are_prompted_without_echo_asked_twice_when_creating_and_named() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("node");
    cli_init(&data, 0, FEDERATION);
    let data_arg = data.to_str().expect("utf-8 path");
    let key_file = root.path().join("identity.key");
    let key_arg = key_file.to_str().expect("utf-8 path");

    // Too short: the error names the identity passphrase and its real minimum.
    let mut short = OnTerminal::start(&["key", "new-identity", "--out", key_arg]);
    short.answer(
        "Identity key passphrase (at least 12 characters): ",
        "short",
    );
    let (status, text) = short.finish();
    assert!(!status.success());
    assert!(
        text.contains("the identity key passphrase needs at least 12 characters (5 given)"),
        "{text}"
    );
    assert!(!key_file.exists());

    // Ctrl-C at the prompt cancels, and the terminal echoes again afterwards.
    let mut cancel = OnTerminal::start(&["key", "new-identity", "--out", key_arg]);
    cancel.answer(
        "Identity key passphrase (at least 12 characters): ",
        "half\u{3}",
    );
    let (status, text) = cancel.finish();
    assert!(!status.success());
    assert!(text.contains("cancelled; nothing was done"), "{text}");
    assert!(!text.contains("half"), "{text}");
    assert!(!key_file.exists());

    // A typo in the repeat: nothing is written.
    let mut typo = OnTerminal::start(&["key", "new-identity", "--out", key_arg]);
    typo.answer(
        "Identity key passphrase (at least 12 characters): ",
        PASSPHRASE,
    );
    typo.answer(
        "Repeat the identity key passphrase: ",
        "correct horse battery stapel",
    );
    let (status, text) = typo.finish();
    assert!(!status.success());
    assert!(
        text.contains("the two identity key passphrases differ"),
        "{text}"
    );
    assert!(!key_file.exists(), "nothing written after a mismatch");

    // Typed twice, never echoed.
    let mut create = OnTerminal::start(&["key", "new-identity", "--out", key_arg]);
    create.answer(
        "Identity key passphrase (at least 12 characters): ",
        PASSPHRASE,
    );
    create.answer("Repeat the identity key passphrase: ", PASSPHRASE);
    let (status, text) = create.finish();
    assert!(status.success(), "{text}");
    assert!(
        !text.contains(PASSPHRASE),
        "the passphrase was echoed: {text}"
    );
    assert!(key_file.exists());
    eprintln!("new-identity on a terminal printed: {text:?}");

    // Opening it asks once; what was typed opens the key.
    let node_card = cli_ok(&data, &["id"]);
    let cert = root.path().join("node.cert");
    let mut certify = OnTerminal::start(&[
        "--data",
        data_arg,
        "key",
        "certify",
        "--identity",
        key_arg,
        "--node-key",
        &node_card,
        "--out",
        cert.to_str().expect("utf-8 path"),
    ]);
    certify.answer("Identity key passphrase: ", PASSPHRASE);
    let (status, text) = certify.finish();
    assert!(status.success(), "{text}");
    assert!(!text.contains(PASSPHRASE), "{text}");
    assert!(cert.exists());

    // The duress commitment: asked twice, named "duress", the same as from a file.
    let file = root.path().join("duress.txt");
    std::fs::write(&file, format!("{DURESS}\n")).expect("write");
    let from_file = cli_ok(
        &data,
        &[
            "canary",
            "duress-commitment",
            "--passphrase-file",
            file.to_str().expect("utf-8 path"),
        ],
    );
    let mut commit = OnTerminal::start(&["--data", data_arg, "canary", "duress-commitment"]);
    commit.answer("Duress passphrase (at least 8 characters): ", DURESS);
    commit.answer("Repeat the duress passphrase: ", DURESS);
    let (status, text) = commit.finish();
    assert!(status.success(), "{text}");
    assert!(!text.contains(DURESS), "{text}");
    assert!(text.contains(&from_file), "same commitment: {text}");

    // Not a terminal: the first line of standard input, as before, with the right name.
    let mut piped = Command::new(binary())
        .args(["--data", data_arg, "canary", "duress-commitment"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    writeln!(piped.stdin.take().expect("stdin"), "seven c").expect("write");
    let output = piped.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the duress passphrase needs at least 8 characters (7 given)"),
        "{stderr}"
    );
}

fn args(owned: &[String]) -> Vec<&str> {
    owned.iter().map(String::as_str).collect()
}

// ---- values checked before signing ----------------------------------------------------

#[test]
fn dates_lifetimes_limits_and_statuses_are_checked_and_nothing_is_signed() {
    let root = tempfile::tempdir().expect("tempdir");
    let (dir, _node) = single_node(root.path());
    let base = [
        "alert",
        "raise",
        "--kind",
        "outage",
        "--subject",
        "a.example",
        "--severity",
        "low",
        "--summary",
        "s",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter()
            .chain(extra)
            .map(|arg| (*arg).to_owned())
            .collect()
    };

    for date in ["2026-02-29", "2026-13-01", "2026-04-31", "28/11/2026"] {
        let owned = with(&["--event-date", date]);
        refused(&dir, &args(&owned), "give it as YYYY-MM-DD");
    }
    let owned = with(&["--expires-in", "forever"]);
    refused(&dir, &args(&owned), "give 30d, 12h, 90m or never");
    let long = "x".repeat(250);
    let mut owned = with(&[]);
    owned[9] = long;
    refused(&dir, &args(&owned), "is too long: 250 bytes, at most 200");
    let owned = with(&["--reference", &"r".repeat(300)]);
    refused(
        &dir,
        &args(&owned),
        "has an item that is too long: 300 bytes, at most 256",
    );
    refused(
        &dir,
        &[
            "mirror",
            "offer",
            "--service",
            "web",
            "--contact",
            "x",
            "--valid-for",
            "never",
        ],
        "give one such as 30d, 12h or 90m",
    );

    // Leap day and `never` are fine.
    let outage = raise(
        &dir,
        "outage",
        "low",
        "mail down",
        &["--event-date", "2024-02-29", "--expires-in", "never"],
    );
    let shown = json(&cli_ok(&dir, &["alert", "show", &outage[..8], "--json"]));
    assert_eq!(shown["alert"]["expires_at"], serde_json::Value::Null);

    // Statuses per kind: gag statuses only for gag orders and legal requests.
    refused(
        &dir,
        &["alert", "update", &outage, "--status", "gag-active"],
        "status gag-active does not apply to an alert of kind outage; valid: open, confirmed, resolved, retracted",
    );
    let gag = raise(
        &dir,
        "gag-order",
        "high",
        "gagged",
        &["--legal-type", "gag-order"],
    );
    cli_ok(&dir, &["alert", "update", &gag, "--status", "gag-active"]);
    let takedown = raise(&dir, "takedown", "medium", "notice", &[]);
    cli_ok(&dir, &["alert", "update", &takedown, "--status", "refused"]);
    refused(
        &dir,
        &["alert", "update", &takedown, "--status", "disclosed"],
        "does not apply to an alert of kind takedown",
    );

    // The control API is held to the same rules as the CLI.
    let client = Client::new(&dir);
    let before = stored(&dir);
    let outage_id: MessageId = outage.parse().expect("id");
    let error = client
        .sign(&request::AlertUpdate {
            alert: outage_id,
            status: AlertStatus::Received,
            note: None,
        })
        .expect_err("refused");
    assert!(error.to_string().contains("does not apply"), "{error}");
    let mut alert = solidarity_tests::sample_alert(
        solidarity_proto::payload::AlertCategory::Outage,
        solidarity_proto::payload::Severity::Low,
        "bad date",
    );
    alert.event_date = Some("2026-02-30".into());
    let error = client
        .sign(&request::AlertRaise {
            alert,
            expires_in_ms: None,
        })
        .expect_err("refused");
    assert!(error.to_string().contains("not a real date"), "{error}");
    assert_eq!(
        stored(&dir),
        before,
        "nothing signed through the control API"
    );

    // No-ops and updates after a retraction.
    refused(
        &dir,
        &["alert", "update", &outage, "--status", "open"],
        "is already open",
    );
    cli_ok(&dir, &["alert", "update", &outage, "--status", "confirmed"]);
    refused(
        &dir,
        &["alert", "update", &outage, "--status", "confirmed"],
        "is already confirmed",
    );
    // Progress in the same state, with a note, is news.
    cli_ok(
        &dir,
        &[
            "alert",
            "update",
            &outage,
            "--status",
            "confirmed",
            "--note",
            "provider says tomorrow",
        ],
    );
    cli_ok(&dir, &["alert", "update", &outage, "--status", "retracted"]);
    refused(
        &dir,
        &["alert", "update", &outage, "--status", "resolved"],
        "is already retracted",
    );
    refused(
        &dir,
        &[
            "alert", "update", &outage, "--status", "open", "--note", "again",
        ],
        "a retraction is final",
    );
}

/// With `--json` a refusal is also printed on stdout as `{"error":{"code","message"}}`,
/// its code the stable one scripts match on; stderr keeps the line printed without it.
#[test]
fn a_refusal_under_json_carries_its_stable_code_and_the_same_line() {
    let root = tempfile::tempdir().expect("tempdir");
    let (dir, _node) = single_node(root.path());
    let outage = raise(&dir, "outage", "low", "mail down", &[]);
    cli_ok(&dir, &["alert", "update", &outage, "--status", "retracted"]);
    let update = ["alert", "update", &outage, "--status", "resolved"];
    let plain = refused(&dir, &update, "is already retracted");
    let with_json = [&update[..], &["--json"]].concat();
    let (ok, stdout, stderr) = cli(&dir, &with_json);
    assert!(!ok, "a refused update succeeded: {stdout}");
    assert_eq!(stderr, plain, "--json changes nothing on stderr");
    let error = &json(stdout.trim())["error"];
    assert_eq!(error["code"], "alert_retracted", "{stdout}");
    let message = error["message"].as_str().expect("message");
    assert!(
        plain.contains(message),
        "{message:?} is the line of {plain:?}"
    );

    let unknown = "ab".repeat(32);
    let (ok, stdout, _) = cli(
        &dir,
        &[
            "alert", "update", &unknown, "--status", "resolved", "--json",
        ],
    );
    assert!(!ok, "an update of no alert succeeded: {stdout}");
    assert_eq!(json(stdout.trim())["error"]["code"], "no_such_alert");
}

// ---- stances, withdrawals, show, list ---------------------------------------------------

#[test]
fn stances_and_withdrawals_already_in_place_are_refused_and_show_tells_everything() {
    let root = tempfile::tempdir().expect("tempdir");
    let (dirs, _nodes) = pair(root.path());
    let (alpha, bravo) = (&dirs[0], &dirs[1]);
    let id = raise(
        alpha,
        "seizure",
        "critical",
        "Two servers taken at 06:00",
        &[
            "--details",
            "Police came with a warrant.\nBoth disks gone.",
            "--jurisdiction",
            "FR",
            "--event-date",
            "2026-11-28",
            "--authority",
            "Tribunal judiciaire",
            "--seized",
            "content",
            "--expires-in",
            "30d",
        ],
    );
    wait_for("the alert on bravo", || has_alert(bravo, &id));

    // Stances: the same one twice is refused; a change of mind is not.
    refused(alpha, &["alert", "endorse", &id], "this node's own");
    refused(
        bravo,
        &["alert", "unendorse", &id],
        "neither endorses nor disputes",
    );
    cli_ok(bravo, &["alert", "endorse", &id, "--note", "our rack too"]);
    refused(bravo, &["alert", "endorse", &id], "already endorses");
    cli_ok(
        bravo,
        &["alert", "dispute", &id, "--note", "on second look, no"],
    );
    refused(bravo, &["alert", "dispute", &id], "already disputes");
    cli_ok(bravo, &["alert", "unendorse", &id]);
    refused(
        bravo,
        &["alert", "unendorse", &id],
        "neither endorses nor disputes",
    );
    cli_ok(
        bravo,
        &["alert", "endorse", &id, "--note", "confirmed by phone"],
    );
    refused(
        bravo,
        &["alert", "update", &id, "--status", "confirmed"],
        "raised by another member",
    );
    cli_ok(
        alpha,
        &[
            "alert",
            "update",
            &id,
            "--status",
            "confirmed",
            "--note",
            "provider confirms",
        ],
    );

    // Through the control API too (once alpha's update has reached bravo).
    wait_for("the update on bravo", || {
        json(&cli_ok(bravo, &["alert", "show", &id, "--json"]))["alert"]["status"] == "confirmed"
    });
    let before = stored(bravo);
    let error = Client::new(bravo)
        .sign(&request::AlertEndorse {
            alert: id.parse().expect("id"),
            stance: Stance::Endorse,
            note: None,
        })
        .expect_err("refused");
    assert!(error.to_string().contains("already endorses"), "{error}");
    assert_eq!(stored(bravo), before);

    // Show: every field, the update with its note, the stance with name and note.
    wait_for("bravo's last endorsement and the update on alpha", || {
        let shown = json(&cli_ok(alpha, &["alert", "show", &id[..8], "--json"]));
        shown["stances"]
            .as_array()
            .is_some_and(|stances| stances.len() == 1 && stances[0]["note"] == "confirmed by phone")
            && shown["alert"]["history"]
                .as_array()
                .is_some_and(|h| h.len() == 1)
    });
    let text = cli_ok(alpha, &["alert", "show", &id[..10]]);
    eprintln!("alert show on alpha:\n{text}");
    for expected in [
        id.as_str(),
        "seizure",
        "critical",
        "a.example",
        "Two servers taken at 06:00",
        "confirmed (set by its author",
        "(this node)",
        "2026-11-28",
        "FR",
        "Tribunal judiciaire",
        "content",
        "    Police came with a warrant.",
        "    Both disks gone.",
        "provider confirms",
        "endorses",
        "bravo",
        "confirmed by phone",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    assert!(!text.contains("on second look"), "only the standing stance");
    assert!(!text.contains("expires        never"), "{text}");
    refused(alpha, &["alert", "show", "0123"], "at least its first 8");

    // Offers: withdrawn once, not twice; expired ones cannot be withdrawn.
    let offer = cli_ok(
        alpha,
        &[
            "mirror",
            "offer",
            "--service",
            "web",
            "--contact",
            "x@a.example",
        ],
    );
    refused(
        bravo,
        &["mirror", "withdraw", &offer],
        "made by another member",
    );
    cli_ok(alpha, &["mirror", "withdraw", &offer[..8]]);
    refused(alpha, &["mirror", "withdraw", &offer], "already withdrawn");
    let short = cli_ok(
        alpha,
        &[
            "mirror",
            "offer",
            "--service",
            "git",
            "--contact",
            "x@a.example",
            "--valid-for",
            "1s",
        ],
    );
    std::thread::sleep(Duration::from_millis(1500));
    let stderr = refused(alpha, &["mirror", "withdraw", &short], "offer");
    assert!(
        stderr.contains("already expired") || stderr.contains("an expired offer is deleted"),
        "{stderr}"
    );
}

#[test]
fn alert_list_filters_and_orders_open_first_then_severity_then_newest() {
    let root = tempfile::tempdir().expect("tempdir");
    let (dirs, _nodes) = pair(root.path());
    let (alpha, bravo) = (&dirs[0], &dirs[1]);
    let low = raise(alpha, "outage", "low", "low outage", &[]);
    let high = raise(alpha, "takedown", "high", "high takedown", &[]);
    let critical_resolved = raise(alpha, "seizure", "critical", "resolved seizure", &[]);
    cli_ok(
        alpha,
        &[
            "alert",
            "update",
            &critical_resolved,
            "--status",
            "resolved",
        ],
    );
    let theirs = raise(bravo, "raid", "medium", "bravo's raid", &[]);
    let newer_low = raise(alpha, "outage", "low", "newer low outage", &[]);
    wait_for("bravo's alert on alpha", || has_alert(alpha, &theirs));

    let ids = |args: &[&str]| -> Vec<String> {
        let mut full = vec!["alert", "list", "--json"];
        full.extend_from_slice(args);
        json(&cli_ok(alpha, &full))
            .as_array()
            .expect("array")
            .iter()
            .map(|alert| alert["id"].as_str().expect("id").to_owned())
            .collect()
    };
    let every = ids(&[]);
    assert_eq!(
        every,
        vec![
            high.clone(),
            theirs.clone(),
            newer_low.clone(),
            low.clone(),
            critical_resolved.clone()
        ],
        "open first, then severity, then newest"
    );
    assert!(!ids(&["--open"]).contains(&critical_resolved));
    assert_eq!(
        ids(&["--severity", "high"]),
        vec![high.clone(), critical_resolved.clone()]
    );
    assert_eq!(
        ids(&["--kind", "raid", "--kind", "takedown"]),
        vec![high.clone(), theirs.clone()]
    );
    assert_eq!(ids(&["--member", "bravo"]), vec![theirs.clone()]);
    let bravo_key = json(&cli_ok(bravo, &["status", "--json"]))["node_key"]
        .as_str()
        .expect("key")
        .to_owned();
    assert_eq!(ids(&["--member", &bravo_key[..10]]), vec![theirs.clone()]);
    assert_eq!(ids(&["--since", "1h"]).len(), 5);
    assert_eq!(ids(&["--since", "2000-01-01"]).len(), 5);
    assert!(ids(&["--since", "2099-01-01T00:00:00Z"]).is_empty());
    refused(
        alpha,
        &["alert", "list", "--member", "nobody"],
        "no member is named \"nobody\"",
    );
}

// ---- devnet ----------------------------------------------------------------------------

/// Whether a process is gone (or a zombie nobody reaped yet: it runs no more).
fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

#[test]
fn devnet_nodes_die_with_it_even_on_kill_9_and_its_help_lists_what_it_honours() {
    use std::io::{BufRead, BufReader};
    let help = Command::new(binary())
        .args(["devnet", "--help"])
        .output()
        .expect("help");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--nodes") && help.contains("--json"),
        "{help}"
    );
    assert!(
        !help.contains("--data"),
        "devnet makes its own data dirs: {help}"
    );

    let mut devnet = Command::new(binary())
        .args(["devnet", "--nodes", "2", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start devnet");
    let stdout = devnet.stdout.take().expect("stdout");
    let line = BufReader::new(stdout)
        .lines()
        .next()
        .expect("a line")
        .expect("read");
    let listed = json(&line);
    let pids: Vec<u32> = listed["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|node| node["pid"].as_u64().expect("pid") as u32)
        .collect();
    assert_eq!(pids.len(), 2);
    assert!(pids.iter().all(|pid| !process_gone(*pid)), "nodes run");
    devnet.kill().expect("kill -9 the devnet");
    devnet.wait().expect("reap the devnet");
    let gone = wait_for("every devnet node gone", || {
        pids.iter().all(|pid| process_gone(*pid))
    });
    eprintln!(
        "devnet kill -9: its {} nodes gone {gone:?} later",
        pids.len()
    );
    if let Some(data) = listed["nodes"][0]["data"].as_str()
        && let Some(root) = Path::new(data).parent()
    {
        let _ = std::fs::remove_dir_all(root);
    }
}

// ---- key certify ---------------------------------------------------------------------

fn federation_of(cert: &Path) -> solidarity_proto::FederationId {
    let bytes = hex::decode(std::fs::read_to_string(cert).expect("cert").trim()).expect("hex");
    let envelope = solidarity_proto::Envelope::decode(&bytes).expect("envelope");
    solidarity_proto::Payload::decode(&envelope.payload)
        .expect("payload")
        .fed
}

#[test]
fn key_certify_defaults_to_this_nodes_federation_and_refuses_another_unless_forced() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("node");
    cli_init(&data, 0, FEDERATION);
    let passphrase = root.path().join("passphrase");
    std::fs::write(&passphrase, format!("{PASSPHRASE}\n")).expect("write");
    let passphrase = passphrase.to_str().expect("utf-8 path");
    let identity = root.path().join("identity.key");
    let identity = identity.to_str().expect("utf-8 path");
    cli_ok(
        &data,
        &[
            "key",
            "new-identity",
            "--out",
            identity,
            "--passphrase-file",
            passphrase,
        ],
    );
    let card = cli_ok(&data, &["id"]);
    let out = |name: &str| root.path().join(name);
    let certify = |file: &Path, extra: &[&str]| {
        let mut args = vec![
            "key",
            "certify",
            "--identity",
            identity,
            "--node-key",
            &card,
            "--passphrase-file",
            passphrase,
            "--out",
            file.to_str().expect("utf-8 path"),
        ];
        args.extend_from_slice(extra);
        cli(&data, &args)
    };

    let (ok, _, stderr) = certify(&out("default.cert"), &[]);
    assert!(ok, "{stderr}");
    assert_eq!(
        federation_of(&out("default.cert")),
        solidarity_proto::FederationId::from_name(FEDERATION),
        "this node's federation, from its config"
    );

    let (ok, _, stderr) = certify(&out("other.cert"), &["--federation", "solidarity"]);
    assert!(!ok);
    assert!(
        stderr.contains(&format!("this node's federation is {FEDERATION:?}"))
            && stderr.contains("--force"),
        "{stderr}"
    );
    assert!(!out("other.cert").exists(), "nothing written");
    let (ok, _, stderr) = certify(
        &out("other.cert"),
        &["--federation", "solidarity", "--force"],
    );
    assert!(ok, "{stderr}");
    assert_eq!(
        federation_of(&out("other.cert")),
        solidarity_proto::FederationId::from_name("solidarity")
    );

    let (ok, _, stderr) = certify(&out("never.cert"), &["--valid-for", "never"]);
    assert!(!ok && stderr.contains("30d, 12h or 90m"), "{stderr}");
    assert!(!out("never.cert").exists());
}
