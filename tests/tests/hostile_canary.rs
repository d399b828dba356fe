//! The canary against a seized key and a lost store (issue 11 points 2, 7, 8, 9): the
//! dead-man's switch stays armed, duress cannot be told from a store, a node never forks
//! itself, and vouches never rename anyone.

use std::time::Duration;

use solidarity_control::CanaryState;
use solidarity_proto::payload::{Canary, CanaryCode};
use solidarity_proto::{AuthorKey, Body, FederationId, Payload, envelope};
use solidarity_tests::{FEDERATION, RawPeer, TestNode, eventually, federation_with};

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

async fn canary_state(node: &TestNode, key: AuthorKey) -> Option<CanaryState> {
    node.peers()
        .await
        .into_iter()
        .find(|peer| peer.key == key)
        .and_then(|peer| peer.canary)
        .map(|canary| canary.state)
}

/// Point 2: a member that stops publishing stays SILENT after its last canary expired
/// (the expiry sweep runs at every start) and across restarts of the observer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_stays_silent_after_the_last_canary_expired_and_after_restarts() {
    let fast = [("canary_interval_secs", "1"), ("canary_grace_secs", "1")];
    let mut nodes = federation_with(2, &fast).await;
    let silent = nodes.pop().expect("two nodes");
    let observer = nodes.pop().expect("two nodes");
    let key = silent.key;
    eventually("the member's canary is on time", || async {
        canary_state(&observer, key).await == Some(CanaryState::Ok)
    })
    .await;
    let _silent_dir = silent.stop().await;
    let took = eventually("the stopped member is silent", || async {
        canary_state(&observer, key).await == Some(CanaryState::Silent)
    })
    .await;
    eprintln!("silent after {took:?}");
    // Its canaries expire 4 intervals after they were signed.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = observer.stored_messages().await;
    let mut observer = observer;
    for restart in 1..=2 {
        let dir = observer.stop().await;
        observer = TestNode::start(dir).await;
        // The start-up sweep deletes the expired canaries; the state must not follow them.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let state = canary_state(&observer, key).await;
        eprintln!(
            "restart {restart}: stored {before} -> {}, state {state:?}",
            observer.stored_messages().await
        );
        assert_eq!(
            state,
            Some(CanaryState::Silent),
            "the dead-man's switch disarmed itself"
        );
    }
    observer.stop().await;
}

/// Point 2: a canary announcing a 100-year interval keeps its member "ok" only up to the
/// receiver's `canary_max_interval_secs`; then the member counts as silent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_century_long_canary_interval_is_capped_by_the_receiver() {
    let dir = tempfile::tempdir().expect("tempdir");
    solidarity_tests::init_data_dir_with(
        dir.path(),
        &[
            ("canary_interval_secs", "1"),
            ("canary_grace_secs", "1"),
            ("canary_max_interval_secs", "2"),
        ],
    );
    let node = TestNode::start(dir).await;
    let raw = RawPeer::start(vec![node.peer_id()]).await;
    node.add_members(&[("hostile".into(), raw.card())]).await;
    raw.connect(&node).await;
    let century = 100 * 365 * 24 * 3600;
    let body = Body::Canary(Canary {
        statement: "all is well".into(),
        codes: CanaryCode::ALL.to_vec(),
        interval_secs: century,
        token: vec![9; 32],
    });
    let payload = Payload {
        fed: FederationId::from_name(FEDERATION),
        seq: 1,
        prev: None,
        created_at: now_ms(),
        expires_at: None,
        kind: "canary".into(),
        body: body.encode(),
    };
    raw.publish_when_meshed(&envelope::sign(&raw.key, &payload).bytes)
        .await;
    let author = raw.author();
    let seen = eventually("the canary arrives", || async {
        canary_state(&node, author).await.is_some()
    })
    .await;
    let silent = eventually("the member counts as silent past the maximum", || async {
        canary_state(&node, author).await == Some(CanaryState::Silent)
    })
    .await;
    eprintln!(
        "interval {century} s announced; seen after {seen:?}, silent {silent:?} later (maximum 2 s + grace 1 s)"
    );
    node.stop().await;
}
