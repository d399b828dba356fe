//! Replay: a member's raw endpoint captures 100 valid alerts as they are gossiped, then
//! re-injects them at the target node
//! (a) after the target restarted, so its gossipsub duplicate cache is empty and every
//!     replay reaches the node's own validation;
//! (b) from a different member: at once (while the target's duplicate cache still holds
//!     them) and after another restart of the target;
//! (c) after more than gossipsub's duplicate-cache time (60 s, not configurable from
//!     outside the production code): with `SOLIDARITY_LONG=1` only; otherwise (a) covers
//!     the same state (an empty duplicate cache) without the wait.
//!
//! Each time nothing is stored or listed twice (stored messages and alert list unchanged
//! but for a fresh control message sent after the replays), and nothing is relayed as new:
//! a fresh observer of the target receives the control message and none of the replays.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use solidarity_control::request;
use solidarity_proto::payload::{Alert, AlertCategory, Severity};
use solidarity_proto::{AuthorKey, Body, Envelope, FederationId, MessageId, Payload, envelope};
use solidarity_tests::{DEADLINE, FEDERATION, RawPeer, TestNode, eventually, federation};

const REPLAYED: usize = 100;

fn author_of(secret: [u8; 32]) -> AuthorKey {
    envelope::author_key(&SigningKey::from_bytes(&secret))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

fn alert(summary: String) -> Alert {
    solidarity_tests::sample_alert(AlertCategory::LegalRequest, Severity::Low, summary)
}

/// A member's own chain, for fresh control messages.
struct Chain {
    key: SigningKey,
    seq: u64,
    prev: Option<MessageId>,
}

impl Chain {
    fn new(secret: [u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(&secret),
            seq: 0,
            prev: None,
        }
    }

    fn next_alert(&mut self, summary: &str) -> (MessageId, Vec<u8>) {
        self.seq += 1;
        let body = Body::Alert(alert(summary.to_owned()));
        let signed = envelope::sign(
            &self.key,
            &Payload {
                fed: FederationId::from_name(FEDERATION),
                seq: self.seq,
                prev: self.prev,
                created_at: now_ms(),
                expires_at: None,
                kind: body.kind().expect("known kind").to_owned(),
                body: body.encode(),
            },
        );
        self.prev = Some(signed.id);
        (signed.id, signed.bytes)
    }
}

/// Every stored alert listed (`alert list --all`: the shown ones are at most 20 per author).
async fn alert_ids(node: &TestNode) -> Vec<MessageId> {
    node.call(|client| client.all_alerts())
        .await
        .expect("alert list --all")
        .iter()
        .map(|view| view.id)
        .collect()
}

fn id_of(bytes: &[u8]) -> MessageId {
    Envelope::decode(bytes).expect("an envelope").id()
}

/// Restarts the target on its data dir (new port) and waits until its start-up canary is
/// stored and the author node is connected again.
async fn restart(target: TestNode) -> TestNode {
    let before = target.stored_messages().await;
    let target = TestNode::start(target.stop().await).await;
    eventually(
        "the restarted target stored its start-up canary",
        || async { target.stored_messages().await == before + 1 },
    )
    .await;
    eventually("the target reconnected to the author node", || async {
        target.connected().await >= 1
    })
    .await;
    target
}

/// What every replay round works with.
#[derive(Clone, Copy)]
struct Scene<'a> {
    target: &'a TestNode,
    author_node: &'a TestNode,
    captured: &'a [Vec<u8>],
    observer_secret: [u8; 32],
}

struct Figures {
    name: &'static str,
    replayed: usize,
    stored_before: usize,
    stored_after: usize,
    observer_got: usize,
    took: Duration,
}

/// Replays every captured envelope at `target` from a fresh swarm of `injector_secret`,
/// then a fresh control alert of `control`, and checks that only the control is new.
async fn replay_round(
    name: &'static str,
    scene: &Scene<'_>,
    injector_secret: [u8; 32],
    control: &mut Chain,
    expected_alerts: &mut BTreeSet<MessageId>,
) -> Figures {
    let Scene {
        target,
        author_node,
        captured,
        observer_secret,
    } = *scene;
    let started = Instant::now();
    // Endpoints of an earlier round are gone: only the author node remains connected.
    eventually("earlier raw endpoints disconnected", || async {
        target.connected().await == 1
    })
    .await;
    let connected_before = 1;
    let injector = RawPeer::start_with_key(injector_secret, vec![target.peer_id()]).await;
    let mut observer = RawPeer::start_with_key(observer_secret, vec![target.peer_id()]).await;
    injector.connect(target).await;
    observer.connect(target).await;
    eventually("the target sees the injector and the observer", || async {
        target.connected().await == connected_before + 2
    })
    .await;
    // Let gossipsub exchange subscriptions and graft the new peers.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let stored_before = target.stored_messages().await;
    let alerts_before = alert_ids(target).await;
    let author_alerts_before = alert_ids(author_node).await;
    assert_eq!(
        alerts_before.iter().copied().collect::<BTreeSet<_>>(),
        *expected_alerts,
        "{name}: the target's alerts before the replay"
    );

    for bytes in captured {
        injector.publish_when_meshed(bytes).await;
    }
    let (control_id, control_bytes) = control.next_alert(&format!("control after {name}"));
    injector.publish_when_meshed(&control_bytes).await;
    eventually("the control alert is stored by the target", || async {
        alert_ids(target).await.contains(&control_id)
    })
    .await;
    let relayed_at = Instant::now();
    let mut got = Vec::new();
    while !got.iter().any(|bytes: &Vec<u8>| id_of(bytes) == control_id) {
        assert!(
            relayed_at.elapsed() < DEADLINE,
            "{name}: the observer never got the control alert"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        got.extend(observer.drain());
    }
    // Room for anything relayed late.
    tokio::time::sleep(Duration::from_millis(500)).await;
    got.extend(observer.drain());

    let replayed_ids: HashSet<MessageId> = captured.iter().map(|bytes| id_of(bytes)).collect();
    let relayed_replays = got
        .iter()
        .filter(|bytes| replayed_ids.contains(&id_of(bytes)))
        .count();
    assert_eq!(
        relayed_replays, 0,
        "{name}: the target relayed replayed messages as new"
    );

    expected_alerts.insert(control_id);
    let stored_after = target.stored_messages().await;
    let alerts_after = alert_ids(target).await;
    let distinct: BTreeSet<MessageId> = alerts_after.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        alerts_after.len(),
        "{name}: an alert is listed twice"
    );
    assert_eq!(
        distinct, *expected_alerts,
        "{name}: the alert list changed beyond the control alert"
    );
    assert_eq!(
        stored_after,
        stored_before + 1,
        "{name}: a replay was stored again"
    );
    eventually("the author node has the control alert", || async {
        alert_ids(author_node).await.contains(&control_id)
    })
    .await;
    let author_alerts_after = alert_ids(author_node).await;
    assert_eq!(
        author_alerts_after.len(),
        author_alerts_before.len() + 1,
        "{name}: the author node lists something twice"
    );
    Figures {
        name,
        replayed: captured.len(),
        stored_before,
        stored_after,
        observer_got: got.len(),
        took: started.elapsed(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_alerts_are_never_stored_shown_or_relayed_twice() {
    let started = Instant::now();
    let mut nodes = federation(2).await;
    let mut target = nodes.pop().expect("two nodes");
    let author_node = nodes.pop().expect("two nodes");

    let capturer_secret = [7u8; 32];
    let other_secret = [8u8; 32];
    let observer_secret = [9u8; 32];
    for node in [&author_node, &target] {
        node.add_members(&[
            ("capturer".into(), author_of(capturer_secret).to_hex()),
            ("other".into(), author_of(other_secret).to_hex()),
            ("observer".into(), author_of(observer_secret).to_hex()),
        ])
        .await;
    }

    // The capturer listens at the target while the author node raises 100 alerts.
    let mut capturer = RawPeer::start_with_key(capturer_secret, vec![target.peer_id()]).await;
    capturer.connect(&target).await;
    eventually("the target sees the capturer", || async {
        target.connected().await == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let author = author_node.key;
    let mut raised = BTreeSet::new();
    for n in 0..REPLAYED {
        let request = request::AlertRaise {
            alert: alert(format!("captured alert {n}")),
            expires_in_ms: None,
        };
        let id = author_node
            .call(move |client| client.sign(&request))
            .await
            .expect("raise");
        raised.insert(id);
    }
    let mut captured: Vec<Vec<u8>> = Vec::new();
    let mut seen = HashSet::new();
    let capture_started = Instant::now();
    while captured.len() < REPLAYED {
        assert!(
            capture_started.elapsed() < DEADLINE,
            "captured only {} alerts",
            captured.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        for bytes in capturer.drain() {
            let envelope = Envelope::decode(&bytes).expect("valid gossip");
            assert!(envelope.verify());
            let payload = Payload::decode(&envelope.payload).expect("payload");
            if envelope.signer == author && payload.kind == "alert" && seen.insert(envelope.id()) {
                captured.push(bytes);
            }
        }
    }
    drop(capturer);
    let captured_ids: BTreeSet<MessageId> = captured.iter().map(|bytes| id_of(bytes)).collect();
    assert_eq!(captured_ids, raised, "the capturer got every raised alert");
    eventually("the target holds the 100 alerts", || async {
        alert_ids(&target).await.len() == REPLAYED
    })
    .await;
    println!(
        "replay: captured {} valid alerts as gossiped in {:?}",
        captured.len(),
        capture_started.elapsed()
    );

    let mut expected = raised.clone();
    let mut capturer_chain = Chain::new(capturer_secret);
    let mut other_chain = Chain::new(other_secret);
    let mut figures = Vec::new();

    // (a) The capturer replays after the target restarted: its duplicate cache is empty.
    target = restart(target).await;
    figures.push(
        replay_round(
            "(a) same member, after a restart of the target",
            &Scene {
                target: &target,
                author_node: &author_node,
                captured: &captured,
                observer_secret,
            },
            capturer_secret,
            &mut capturer_chain,
            &mut expected,
        )
        .await,
    );
    // (b) Another member replays at once (the target's duplicate cache holds the ids
    // again), then after another restart (the node's own check alone decides).
    figures.push(
        replay_round(
            "(b1) other member, target's duplicate cache warm",
            &Scene {
                target: &target,
                author_node: &author_node,
                captured: &captured,
                observer_secret,
            },
            other_secret,
            &mut other_chain,
            &mut expected,
        )
        .await,
    );
    target = restart(target).await;
    figures.push(
        replay_round(
            "(b2) other member, after a restart of the target",
            &Scene {
                target: &target,
                author_node: &author_node,
                captured: &captured,
                observer_secret,
            },
            other_secret,
            &mut other_chain,
            &mut expected,
        )
        .await,
    );
    // (c) After gossipsub's duplicate-cache time (60 s, fixed in the production config).
    if std::env::var("SOLIDARITY_LONG").is_ok_and(|value| value == "1") {
        tokio::time::sleep(Duration::from_secs(65)).await;
        figures.push(
            replay_round(
                "(c) same member, after the duplicate-cache time, no restart",
                &Scene {
                    target: &target,
                    author_node: &author_node,
                    captured: &captured,
                    observer_secret,
                },
                capturer_secret,
                &mut capturer_chain,
                &mut expected,
            )
            .await,
        );
    } else {
        println!(
            "replay: (c) skipped (gossipsub's 60 s duplicate-cache time cannot be shortened without changing production code; SOLIDARITY_LONG=1 runs it); (a) covers the same empty-cache state"
        );
    }

    for figure in &figures {
        println!(
            "replay {}: {} replayed, 0 stored again (stored {} -> {}: the control alert only), 0 relayed (observer got {} message(s), none a replay), {:?}",
            figure.name,
            figure.replayed,
            figure.stored_before,
            figure.stored_after,
            figure.observer_got,
            figure.took
        );
    }
    target.stop().await;
    author_node.stop().await;
    println!("replay: total {:?}", started.elapsed());
}
