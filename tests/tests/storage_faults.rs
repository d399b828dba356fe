//! Issue 5, item 2: a write or a flush of the real sled store fails. No acknowledgement for
//! a write that did not reach the disk; the daemon exits non-zero with a clear message
//! within a second; after a restart the store is consistent and the node carries on.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use solidarity_control::request;
use solidarity_proto::payload::{Alert, AlertCategory, Severity};
use solidarity_proto::{Envelope, MessageId, Payload};
use solidarity_store::{SledOptions, SledStore, Store};
use solidarity_tests::{FaultyStore, TestNode, init_data_dir, node_key};

fn alert(summary: &str) -> Alert {
    solidarity_tests::sample_alert(AlertCategory::Seizure, Severity::Critical, summary)
}

async fn raise(node: &TestNode, summary: &str) -> Result<MessageId, String> {
    let request = request::AlertRaise {
        alert: alert(summary),
        expires_in_ms: None,
    };
    node.call(move |client| client.sign(&request))
        .await
        .map_err(|error| error.to_string())
}

/// The node's own chain in its (stopped) store: seqs 1..n without a gap, each envelope
/// verifying and naming the previous one. Returns its length.
fn check_chain(dir: &std::path::Path) -> usize {
    let store = SledStore::open(&SledOptions::new(dir.join(solidarity::daemon::STORE_DIR)))
        .expect("the store opens");
    let author = solidarity_proto::envelope::author_key(&node_key(dir));
    let chain = store.author_range(&author, 1, usize::MAX).expect("chain");
    let mut previous = None;
    for (index, stored) in chain.iter().enumerate() {
        let envelope = Envelope::decode(&stored.envelope).expect("decodes");
        assert!(envelope.verify(), "a stored envelope does not verify");
        assert_eq!(envelope.id(), stored.id, "stored under another id");
        let payload = Payload::decode(&envelope.payload).expect("payload");
        assert_eq!(payload.seq, index as u64 + 1, "the chain has a gap");
        assert_eq!(payload.prev, previous, "the chain does not link");
        previous = Some(stored.id);
    }
    chain.len()
}

async fn fault_then_restart(fault: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    init_data_dir(dir.path());
    let store = Arc::new(FaultyStore::over_data_dir(dir.path()));
    let node = TestNode::start_with(dir, Some(store.clone())).await;
    let before = raise(&node, "before the disk fills").await.expect("raised");

    match fault {
        "write" => store.fail_write.store(true, Ordering::SeqCst),
        _ => store.fail_flush.store(true, Ordering::SeqCst),
    }
    let failed_at = Instant::now();
    let error = raise(&node, "after the disk filled")
        .await
        .expect_err("no id for a write that did not reach the disk");
    assert!(error.contains("NOT published"), "{error}");
    let (ended, dir) = node.exited_keeping_dir(Duration::from_secs(1)).await;
    let exit_after = failed_at.elapsed();
    let message = format!("{:#}", ended.expect_err("the daemon stops with an error"));
    assert!(
        message.contains("storage") && message.contains("disk full"),
        "unclear exit message: {message}"
    );
    drop(store);

    // Restart on the real store: what was acknowledged is there, the chain is whole, and
    // the node signs on from its head (no fork of itself).
    let node = TestNode::start(dir).await;
    let alerts = node.alerts().await;
    assert!(
        alerts.iter().any(|view| view.id == before),
        "an acknowledged alert was lost"
    );
    let after = raise(&node, "after the restart")
        .await
        .expect("raised after restart");
    assert!(
        node.compromised().await.is_empty(),
        "the node forked itself"
    );
    let dir = node.stop().await;
    let chain = check_chain(dir.path());
    assert!(chain >= 3, "canary, the acknowledged alert and the new one");
    println!(
        "storage fault ({fault}): the CLI got \"{}\"; the daemon exited {exit_after:?} after the fault with \"{message}\"; after the restart the store opened, {} alerts listed (the unacknowledged one {}), own chain of {chain} intact, a new alert {} signed on top",
        error.lines().next().unwrap_or_default(),
        alerts.len(),
        if alerts
            .iter()
            .any(|view| view.alert.summary == "after the disk filled")
        {
            "present and whole"
        } else {
            "absent"
        },
        after.short(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_is_not_acknowledged_stops_the_daemon_and_restarts_consistent() {
    fault_then_restart("write").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_flush_is_not_acknowledged_stops_the_daemon_and_restarts_consistent() {
    fault_then_restart("flush").await;
}
