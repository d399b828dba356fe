//! Backup and restore, as an admin runs them: `solidarity export` of a node's store (the
//! layout-5 fixture: alerts with updates, endorsements and a dispute, offers, a withdraw,
//! expired canaries), the store lost, `solidarity import` of the file.
//!
//! - Everything comes back (alerts, offers, members' state, the status page's alerts),
//!   and a second import changes nothing.
//! - A tampered file: each bad line is reported with its number, none of them is stored,
//!   the good lines are.
//! - A node restored from an export older than its chain signs nothing until a member
//!   has synced it, also across a restart, then continues its chain without a fork.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use solidarity_tests::fixture_stores::{ids, relocate, unpack};
use solidarity_tests::{BinaryNode, cli, cli_ok, cli_raise, free_port, http_get, wait_for};

struct Pair {
    _work: tempfile::TempDir,
    a: PathBuf,
    b: PathBuf,
}

fn pair() -> Pair {
    let work = tempfile::tempdir().expect("tempdir");
    let a = unpack(5, "a", work.path());
    let b = unpack(5, "b", work.path());
    let (a_port, b_port) = (free_port(), free_port());
    relocate(&a, a_port, b_port);
    relocate(&b, b_port, a_port);
    Pair { _work: work, a, b }
}

fn json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let mut args = args.to_vec();
    args.push("--json");
    serde_json::from_str(&cli_ok(dir, &args)).expect("json")
}

/// What the admin sees of the node, without what changes by itself (connections, times
/// of last contact).
fn seen(dir: &Path) -> serde_json::Value {
    let mut peers = json(dir, &["peers"]);
    for member in peers.as_array_mut().into_iter().flatten() {
        if let Some(member) = member.as_object_mut() {
            member.retain(|field, _| {
                !["connected", "last_seen", "last_message_at"].contains(&field.as_str())
            });
        }
    }
    serde_json::json!({
        "alerts": json(dir, &["alert", "list", "--all"]),
        "offers": json(dir, &["mirror", "list"]),
        "peers": peers,
    })
}

fn status_page(dir: &Path) -> String {
    let config = std::fs::read_to_string(dir.join("config.toml")).expect("config");
    let addr = config
        .lines()
        .find_map(|line| line.strip_prefix("status_addr = "))
        .expect("status_addr")
        .trim_matches('"');
    http_get(&format!("http://{addr}/")).1
}

fn wipe_store(dir: &Path) {
    std::fs::remove_dir_all(dir.join("store")).expect("wipe the store");
}

fn export(dir: &Path, file: &Path) {
    cli_ok(
        dir,
        &["export", "--members", "-o", file.to_str().expect("utf-8")],
    );
}

fn import(dir: &Path, file: &Path) -> (bool, String, String) {
    cli(dir, &["import", file.to_str().expect("utf-8")])
}

fn paused(dir: &Path) -> Option<String> {
    json(dir, &["status"])["signing_paused"]
        .as_str()
        .map(str::to_owned)
}

#[test]
fn export_wipe_import_brings_back_alerts_offers_trust_and_page() {
    let pair = pair();
    let file = pair.a.with_extension("jsonl");
    let mut alpha = BinaryNode::start(&pair.a);
    let before = seen(&pair.a);
    assert_eq!(ids(&before["alerts"]).len(), 7, "the fixture's alerts");
    let page_before = status_page(&pair.a);
    export(&pair.a, &file);
    let text = std::fs::read_to_string(&file).expect("export");
    assert!(
        text.starts_with(r#"{"header":{"format":"solidarity-export/1""#),
        "{text}"
    );
    assert!(text.contains(r#"{"members":""#));
    assert!(text.trim_end().ends_with(&format!(
        r#"{{"end":{{"lines":{}}}}}"#,
        text.lines().count() - 1
    )));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "an export is private");
    assert!(alpha.terminate());

    wipe_store(&pair.a);
    let _alpha = BinaryNode::start(&pair.a);
    assert!(ids(&json(&pair.a, &["alert", "list", "--all"])).is_empty());
    let (ok, out, err) = import(&pair.a, &file);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("0 ignored") && out.contains("0 not imported"),
        "{out}"
    );
    assert!(
        err.contains("the export holds a members file; it was not applied"),
        "{err}"
    );
    assert_eq!(
        seen(&pair.a),
        before,
        "alerts, offers and members' state as before"
    );
    let page_after = status_page(&pair.a);
    for note in ["All keys rotated", "Provider confirms", "Server back"] {
        assert_eq!(
            page_before.matches(note).count(),
            page_after.matches(note).count(),
            "the page shows update {note:?} as before, once"
        );
    }
    for id in ids(&before["alerts"]) {
        let short = &id[..8];
        assert_eq!(
            page_before.contains(short),
            page_after.contains(short),
            "the page shows alert {short} as before"
        );
    }
    assert!(
        paused(&pair.a).is_some_and(|why| why.contains("synced its own chain")),
        "restored: signing waits for a member"
    );

    // Again: nothing changes.
    let (ok, out, err) = import(&pair.a, &file);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains(" 0 stored"), "{out}");
    assert_eq!(seen(&pair.a), before);

    // The members file comes out only where asked, never over a file.
    let members = pair.a.with_extension("members.toml");
    let (ok, out, _) = cli(
        &pair.a,
        &[
            "import",
            "--members-out",
            members.to_str().expect("utf-8"),
            file.to_str().expect("utf-8"),
        ],
    );
    assert!(ok, "{out}");
    assert_eq!(
        std::fs::read_to_string(&members).expect("members"),
        std::fs::read_to_string(pair.a.join("members.toml")).expect("members")
    );
    let (ok, _, err) = cli(
        &pair.a,
        &[
            "import",
            "--members-out",
            members.to_str().expect("utf-8"),
            file.to_str().expect("utf-8"),
        ],
    );
    assert!(
        !ok && err.contains("already exists: nothing was written over it"),
        "{err}"
    );
}

#[test]
fn a_tampered_export_reports_each_bad_line_and_stores_none_of_them() {
    let pair = pair();
    let file = pair.a.with_extension("jsonl");
    let mut alpha = BinaryNode::start(&pair.a);
    let before = ids(&json(&pair.a, &["alert", "list", "--all"]));
    export(&pair.a, &file);
    assert!(alpha.terminate());

    let text = std::fs::read_to_string(&file).expect("export");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let messages: Vec<usize> = (0..lines.len())
        .filter(|&index| lines[index].starts_with(r#"{"message":""#))
        .collect();
    assert!(messages.len() >= 10, "{text}");
    // Line numbers count from 1.
    let mut bad = BTreeSet::new();
    let mut flip = |index: usize, at_end: bool, lines: &mut Vec<String>| {
        let line = &mut lines[index];
        let hex_end = line.len() - 2;
        let at = if at_end { hex_end - 5 } else { line.len() / 2 };
        let old = line.as_bytes()[at];
        let new = if old == b'0' { '1' } else { '0' };
        line.replace_range(at..=at, &new.to_string());
        bad.insert(index + 1);
    };
    flip(messages[0], true, &mut lines); // in the signature
    flip(messages[3], false, &mut lines); // in the payload
    let cut = lines[messages[5]].len() - 12;
    lines[messages[5]].truncate(cut); // cut short: not JSON
    bad.insert(messages[5] + 1);
    lines[messages[7]] = r#"{"message":"00ff"}"#.to_owned(); // not an envelope
    bad.insert(messages[7] + 1);
    lines.insert(messages[8], "garbage".to_owned());
    // The insertion moves the lines after it: renumber what follows.
    let bad: BTreeSet<usize> = bad
        .into_iter()
        .map(|number| {
            if number > messages[8] {
                number + 1
            } else {
                number
            }
        })
        .chain([messages[8] + 1])
        .collect();
    let originals: Vec<usize> = vec![messages[0], messages[3], messages[5], messages[7]];
    std::fs::write(&file, lines.join("\n") + "\n").expect("write");

    wipe_store(&pair.a);
    let _alpha = BinaryNode::start(&pair.a);
    let (ok, out, err) = import(&pair.a, &file);
    assert!(!ok, "a tampered file fails the command: {out}");
    for number in &bad {
        assert!(
            err.contains(&format!("line {number}: not imported")),
            "line {number} reported: {err}"
        );
    }
    let reported = err.matches(": not imported: ").count();
    assert_eq!(reported, bad.len(), "only the bad lines: {err}");
    assert!(err.contains("warning: the end line counts"), "{err}");
    // Exactly the good lines are in: an export now holds the original messages but the
    // four tampered ones, and no tampered version.
    let again = pair.a.with_extension("again.jsonl");
    export(&pair.a, &again);
    let message_lines = |text: &str| -> BTreeSet<String> {
        text.lines()
            .filter(|line| line.starts_with(r#"{"message":""#))
            .map(str::to_owned)
            .collect()
    };
    // The expired canaries came back as kept ones (listed with the messages until the
    // next expiry sweep).
    let again_text = std::fs::read_to_string(&again).expect("export");
    let kept: BTreeSet<String> = again_text
        .lines()
        .filter_map(|line| line.strip_prefix(r#"{"kept_canary":"#))
        .map(|rest| format!(r#"{{"message":{rest}"#))
        .collect();
    let mut expected: BTreeSet<String> = message_lines(&text).difference(&kept).cloned().collect();
    for index in originals {
        let original = text.lines().nth(index).expect("line");
        assert!(expected.remove(original) || kept.contains(original));
    }
    let restored: BTreeSet<String> = message_lines(&again_text)
        .difference(&kept)
        .cloned()
        .collect();
    let short = |lines: BTreeSet<&String>| -> Vec<String> {
        lines
            .into_iter()
            .map(|line| line.chars().take(160).collect())
            .collect()
    };
    assert_eq!(
        (
            short(restored.difference(&expected).collect()),
            short(expected.difference(&restored).collect())
        ),
        (vec![], vec![]),
        "the good messages, none of the bad (extra, missing)"
    );
    assert!(ids(&json(&pair.a, &["alert", "list", "--all"])).is_subset(&before));

    // Not an export at all: refused whole, nothing changes.
    let other = pair.a.with_extension("txt");
    std::fs::write(&other, "hello\n").expect("write");
    let (ok, _, err) = import(&pair.a, &other);
    assert!(!ok && err.contains("is not a solidarity export"), "{err}");
}

#[test]
fn a_node_restored_from_an_old_export_waits_for_a_sync_then_continues_its_chain() {
    let pair = pair();
    let file = pair.a.with_extension("jsonl");
    let mut alpha = BinaryNode::start(&pair.a);
    let mut bravo = BinaryNode::start(&pair.b);
    export(&pair.a, &file);
    let own_chain_at_export = std::fs::read(pair.a.join("own-chain")).expect("own-chain");
    // Alpha signs on after the export; bravo gets it.
    let (ok, out, err) = cli_raise(&pair.a, "raid", "high", "after the export");
    assert!(ok, "{out}{err}");
    let later = out.trim().to_owned();
    wait_for("bravo has the alert signed after the export", || {
        ids(&json(&pair.b, &["alert", "list", "--all"])).contains(&later)
    });
    assert!(
        bravo.terminate(),
        "bravo stops cleanly, the alert on its disk"
    );
    assert!(alpha.terminate());

    // The server is restored from the old backup: the export and its own-chain record.
    wipe_store(&pair.a);
    std::fs::write(pair.a.join("own-chain"), &own_chain_at_export).expect("restore");
    let mut alpha = BinaryNode::start(&pair.a);
    let (ok, out, err) = import(&pair.a, &file);
    assert!(ok, "{out}\n{err}");
    assert!(
        paused(&pair.a).is_some_and(|why| why.contains("imported from an export")),
        "the store holds the recorded head, but the export is old: {:?}",
        paused(&pair.a)
    );
    let (ok, _, err) = cli_raise(&pair.a, "raid", "high", "too early");
    assert!(!ok && err.contains("nothing was signed"), "{err}");
    // A restart does not forget it.
    assert!(alpha.terminate());
    let _alpha = BinaryNode::start(&pair.a);
    assert!(paused(&pair.a).is_some(), "still waiting after a restart");

    // Bravo comes back: alpha syncs its chain, then signs after the newest.
    let _bravo = BinaryNode::start(&pair.b);
    wait_for("alpha synced its own chain from bravo", || {
        paused(&pair.a).is_none()
    });
    assert!(!pair.a.join("own-chain.restoring").exists());
    assert!(ids(&json(&pair.a, &["alert", "list", "--all"])).contains(&later));
    let (ok, out, err) = cli_raise(&pair.a, "seizure", "critical", "after the restore");
    assert!(ok, "{out}{err}");
    let continued = out.trim().to_owned();
    wait_for("bravo accepts alpha's next alert", || {
        ids(&json(&pair.b, &["alert", "list", "--all"])).contains(&continued)
    });
    let peers = json(&pair.b, &["peers"]);
    let alpha_seen = peers
        .as_array()
        .expect("members")
        .iter()
        .find(|member| member["name"] == "alpha")
        .expect("alpha listed");
    assert!(
        alpha_seen["compromised_at"].is_null() && alpha_seen["distrust"].is_null(),
        "no fork: {alpha_seen}"
    );
}

/// A member's two envelopes at one seq, signed with its key: a fork, as a seized key
/// makes one.
fn fork_of(signer_dir: &Path, like: &[u8]) -> [Vec<u8>; 2] {
    use solidarity_proto::payload::{AlertCategory, Body, Severity};
    let key = solidarity_tests::node_key(signer_dir);
    let template = solidarity_proto::Envelope::decode(like).expect("envelope");
    let fed = solidarity_proto::Payload::decode(&template.payload)
        .expect("payload")
        .fed;
    ["the real one", "the seizer's"].map(|summary| {
        let body = Body::Alert(solidarity_tests::sample_alert(
            AlertCategory::Seizure,
            Severity::Critical,
            summary,
        ));
        let payload = solidarity_proto::Payload {
            fed,
            seq: 30_000,
            prev: Some(solidarity_proto::MessageId([7; 32])),
            created_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_millis() as u64,
            expires_at: None,
            kind: "alert".into(),
            body: body.encode(),
        };
        solidarity_proto::envelope::sign(&key, &payload).bytes
    })
}

fn bravo_compromised(dir: &Path) -> bool {
    json(dir, &["peers"])
        .as_array()
        .expect("members")
        .iter()
        .find(|member| member["name"] == "bravo")
        .is_some_and(|bravo| !bravo["compromised_at"].is_null())
}

#[test]
fn a_fork_comes_back_with_its_evidence_and_marks_the_key_again() {
    let pair = pair();
    let file = pair.a.with_extension("jsonl");
    let mut alpha = BinaryNode::start(&pair.a);
    export(&pair.a, &file);
    let text = std::fs::read_to_string(&file).expect("export");
    let any = text
        .lines()
        .find_map(|line| line.strip_prefix(r#"{"message":""#))
        .expect("a message");
    let any = hex::decode(&any[..any.len() - 2]).expect("hex");
    let [real, seized] = fork_of(&pair.b, &any);
    let forks = pair.a.with_extension("fork.jsonl");
    let header = text.lines().next().expect("header");
    std::fs::write(
        &forks,
        format!(
            "{header}\n{{\"message\":\"{}\"}}\n{{\"message\":\"{}\"}}\n{{\"end\":{{\"lines\":3}}}}\n",
            hex::encode(&real),
            hex::encode(&seized)
        ),
    )
    .expect("write");
    let (ok, out, err) = import(&pair.a, &forks);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("1 fork evidence"), "{out}");
    assert!(bravo_compromised(&pair.a));

    export(&pair.a, &file);
    let text = std::fs::read_to_string(&file).expect("export");
    let evidence = text
        .lines()
        .find(|line| line.starts_with(r#"{"fork_evidence":["#))
        .expect("the fork's line");
    assert!(
        evidence.contains(&hex::encode(&real)) && evidence.contains(&hex::encode(&seized)),
        "both halves, so an import proves the fork again"
    );
    assert!(alpha.terminate());
    wipe_store(&pair.a);
    let _alpha = BinaryNode::start(&pair.a);
    assert!(!bravo_compromised(&pair.a));
    let (ok, out, err) = import(&pair.a, &file);
    assert!(ok, "{out}\n{err}");
    // The real one came back with the messages, the seizer's as evidence.
    assert!(out.contains("1 fork evidence"), "{out}");
    assert!(
        bravo_compromised(&pair.a),
        "the restored node distrusts the key again"
    );
}
