//! Upgrades never strand data: the data dir of every store layout solidarity has shipped,
//! made by the old binary at its commit (`tests/fixtures/stores/`), opens in today's
//! binary, keeps every alert and offer, deletes the old layout's files, and serves sync:
//! a member whose store was lost gets everything back from the upgraded node.

use std::path::Path;

use solidarity_tests::fixture_stores::{fixture, ids, relocate, unpack};
use solidarity_tests::{BinaryNode, cli_ok, free_port, wait_for};

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
