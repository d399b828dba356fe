//! Upgrades never strand data: the data dir of every store layout solidarity has shipped,
//! made by the old binary at its commit (`tests/fixtures/stores/`), opens in today's
//! binary, keeps every alert and offer, deletes the old layout's files, and serves sync:
//! a member whose store was lost gets everything back from the upgraded node.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use solidarity_tests::{BinaryNode, cli_ok, free_port, wait_for};

fn fixture(layout: u8) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/stores/layout{layout}"))
}

fn unpack(layout: u8, node: &str, into: &Path) -> PathBuf {
    let archive = fixture(layout).join(format!("{node}.tar.gz"));
    let status = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(into)
        .status()
        .expect("tar");
    assert!(status.success(), "cannot unpack {}", archive.display());
    into.join(node)
}

/// Rewrites each line of `path` with `rewrite`.
fn rewrite_lines(path: &Path, rewrite: impl Fn(&str) -> String) {
    let text = std::fs::read_to_string(path).expect("read");
    let lines: Vec<String> = text.lines().map(rewrite).collect();
    std::fs::write(path, lines.join("\n") + "\n").expect("write");
}

/// Points the config's listeners at free ports and each member's address at `peer_port`.
fn relocate(dir: &Path, p2p_port: u16, peer_port: u16) {
    rewrite_lines(&dir.join("config.toml"), |line| {
        if line.starts_with("listen =") {
            format!("listen = [\"/ip4/127.0.0.1/tcp/{p2p_port}\"]")
        } else if line.starts_with("announce =") {
            format!("announce = [\"/ip4/127.0.0.1/tcp/{p2p_port}\"]")
        } else if line.starts_with("status_addr =") {
            format!("status_addr = \"127.0.0.1:{}\"", free_port())
        } else if line.starts_with("admin_addr =") {
            format!("admin_addr = \"127.0.0.1:{}\"", free_port())
        } else {
            line.to_owned()
        }
    });
    rewrite_lines(&dir.join("members.toml"), |line| {
        if line.starts_with("addresses =") {
            format!("addresses = [\"/ip4/127.0.0.1/tcp/{peer_port}\"]")
        } else {
            line.to_owned()
        }
    });
}

fn ids(list: &serde_json::Value) -> BTreeSet<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|item| item["id"].as_str().expect("id").to_owned())
        .collect()
}

fn listed(dir: &Path, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&cli_ok(dir, args)).expect("json")
}

fn upgrade_keeps_everything(layout: u8) {
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture(layout).join("expected.json")).expect("expected.json"),
    )
    .expect("json");
    let work = tempfile::tempdir().expect("tempdir");
    let a = unpack(layout, "a", work.path());
    let b = unpack(layout, "b", work.path());
    let (a_port, b_port) = (free_port(), free_port());
    relocate(&a, a_port, b_port);
    relocate(&b, b_port, a_port);

    let mut alpha = BinaryNode::start(&a);
    let alerts = ids(&expected["alert_list"]);
    let offers = ids(&expected["mirror_list"]);
    assert_eq!(alerts.len(), 7, "the fixture's alerts");
    assert_eq!(
        ids(&listed(&a, &["alert", "list", "--all", "--json"])),
        alerts
    );
    assert_eq!(ids(&listed(&a, &["mirror", "list", "--json"])), offers);
    // Every alert keeps its state (updates, endorsements and disputes were carried over).
    let shown = listed(&a, &["alert", "list", "--all", "--json"]);
    for old in expected["alert_list"].as_array().expect("alerts") {
        let new = shown
            .as_array()
            .expect("alerts")
            .iter()
            .find(|alert| alert["id"] == old["id"])
            .expect("listed");
        assert_eq!(new["status"], old["status"], "status of {}", old["id"]);
    }
    let log = alpha.log_text();
    if layout < solidarity_store::kv::LAYOUT_VERSION {
        assert!(log.contains("store upgraded"), "{log}");
    }
    for leftover in ["store.migrating", "store.replaced"] {
        assert!(!a.join(leftover).exists(), "{leftover} left behind");
    }

    // Bravo lost its store: it gets every message back by sync from the upgraded node.
    std::fs::remove_dir_all(b.join("store")).expect("wipe bravo's store");
    let _ = std::fs::remove_file(b.join("own-chain"));
    let bravo = BinaryNode::start(&b);
    wait_for("bravo synced every alert from the upgraded node", || {
        ids(&listed(&b, &["alert", "list", "--all", "--json"])) == alerts
    });
    wait_for("bravo synced every offer", || {
        ids(&listed(&b, &["mirror", "list", "--json"])) == offers
    });
    drop(bravo);
    assert!(alpha.terminate(), "alpha stops cleanly");
}

#[test]
fn a_layout_1_data_dir_is_rebuilt_and_keeps_everything() {
    upgrade_keeps_everything(1);
}

#[test]
fn a_layout_2_data_dir_is_rebuilt_and_keeps_everything() {
    upgrade_keeps_everything(2);
}

#[test]
fn a_layout_3_data_dir_is_upgraded_in_place_and_keeps_everything() {
    upgrade_keeps_everything(3);
}

#[test]
fn a_layout_5_data_dir_opens_as_it_is() {
    upgrade_keeps_everything(5);
}
