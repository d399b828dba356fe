//! In-process multi-node tests: real daemons on loopback in one process.

use std::time::Duration;

use solidarity_control::request;
use solidarity_proto::payload::{Alert, AlertCategory, AlertStatus, AlertUpdate, Severity};
use solidarity_proto::{Body, FederationId, MessageId, Payload, envelope};
use solidarity_tests::{FEDERATION, RawPeer, TestNode, eventually, federation};

fn alert(summary: &str) -> Alert {
    solidarity_tests::sample_alert(AlertCategory::Seizure, Severity::Critical, summary)
}

async fn raise(node: &TestNode, summary: &str) -> MessageId {
    let request = request::AlertRaise {
        alert: alert(summary),
        expires_in_ms: None,
    };
    node.call(move |client| client.sign(&request))
        .await
        .expect("raise")
}

async fn has_alert(node: &TestNode, id: MessageId) -> bool {
    node.alerts().await.iter().any(|view| view.id == id)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

/// A raw member endpoint connected to `nodes[index]` only, trusted by every node, with
/// gossip settled so what it publishes reaches the federation.
async fn injector_at(nodes: &[TestNode], index: usize) -> RawPeer {
    let injector = RawPeer::start(vec![nodes[index].peer_id()]).await;
    for node in nodes {
        node.add_members(&[("injector".into(), injector.card())])
            .await;
    }
    injector.connect(&nodes[index]).await;
    let want = nodes.len();
    eventually("the node sees the injector", || async {
        nodes[index].connected().await == want
    })
    .await;
    // Let gossipsub exchange subscriptions and graft the new peer.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    injector
}

/// Signs a payload of `kind` with `key` as its seq 1.
fn signed(key: &ed25519_dalek::SigningKey, body: &Body) -> Vec<u8> {
    let payload = Payload {
        fed: FederationId::from_name(FEDERATION),
        seq: 1,
        prev: None,
        created_at: now_ms(),
        expires_at: None,
        kind: body.kind().expect("known kind").to_owned(),
        body: body.encode(),
    };
    envelope::sign(key, &payload).bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_reaches_all_five_members() {
    let nodes = federation(5).await;
    let id = raise(&nodes[0], "reaches everyone").await;
    for node in &nodes {
        let took = eventually("the alert on every node", || has_alert(node, id)).await;
        eprintln!("visible after {took:?}");
    }
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_was_offline_catches_up_by_sync() {
    let mut nodes = federation(5).await;
    let late = nodes.pop().expect("five nodes").stop().await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(raise(&nodes[n % 2], &format!("while offline {n}")).await);
    }
    let update = request::AlertUpdate {
        alert: ids[0],
        status: AlertStatus::Resolved,
        note: Some("back online".into()),
    };
    nodes[0]
        .call(move |client| client.sign(&update))
        .await
        .expect("update");

    let late = TestNode::start(late).await;
    for id in &ids {
        eventually("the late node has every alert", || has_alert(&late, *id)).await;
    }
    eventually("the late node has the update", || async {
        late.alerts()
            .await
            .iter()
            .any(|view| view.id == ids[0] && view.status == AlertStatus::Resolved)
    })
    .await;
    late.stop().await;
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_non_member_and_non_author_messages_are_neither_stored_nor_relayed() {
    let nodes = federation(5).await;
    let target = raise(&nodes[0], "only my author may update me").await;
    for node in &nodes {
        eventually("the alert everywhere", || has_alert(node, target)).await;
    }
    let before = nodes[1].stored_messages().await;

    // Two member endpoints that only talk to node 1: one injects, one observes.
    let allowed = vec![nodes[1].peer_id()];
    let injector = RawPeer::start(allowed.clone()).await;
    let mut observer = RawPeer::start(allowed).await;
    for node in &nodes {
        node.add_members(&[
            ("injector".into(), injector.card()),
            ("observer".into(), observer.card()),
        ])
        .await;
    }
    injector.connect(&nodes[1]).await;
    observer.connect(&nodes[1]).await;
    eventually("node 1 sees both raw peers", || async {
        nodes[1].connected().await == 6
    })
    .await;
    // Let gossipsub exchange subscriptions and graft the new peers.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let outsider = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    let non_member = signed(&outsider, &Body::Alert(alert("from a non-member")));
    let mut forged = signed(&injector.key, &Body::Alert(alert("forged signature")));
    let last = forged.len() - 1;
    forged[last] ^= 0x01; // inside the signature
    let not_author = signed(
        &injector.key,
        &Body::AlertUpdate(AlertUpdate {
            alert: target,
            status: AlertStatus::Retracted,
            note: Some("not mine to retract".into()),
        }),
    );
    let honest = signed(&injector.key, &Body::Alert(alert("honest member alert")));
    let honest_id = envelope::Envelope::decode(&honest).expect("decodes").id();

    for bad in [&non_member, &forged, &not_author] {
        injector.net.publish(bad.clone()).await.expect("publish");
    }
    injector.net.publish(honest.clone()).await.expect("publish");

    for node in &nodes {
        eventually("the honest alert everywhere", || has_alert(node, honest_id)).await;
    }
    // The observer gets the honest message through node 1, and nothing else.
    let first = tokio::time::timeout(Duration::from_secs(10), observer.received.recv())
        .await
        .expect("the honest message is relayed")
        .expect("observer running");
    assert_eq!(first, honest);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        observer.received.try_recv().is_err(),
        "a bad message was relayed"
    );

    for node in &nodes {
        assert_eq!(
            node.stored_messages().await,
            before + 1,
            "only the honest message is stored"
        );
        let alerts = node.alerts().await;
        let state = alerts
            .iter()
            .find(|view| view.id == target)
            .expect("target");
        assert_eq!(
            state.status,
            AlertStatus::Open,
            "a non-author could not retract it"
        );
        assert!(
            alerts
                .iter()
                .all(|view| view.alert.summary != "from a non-member")
        );
        assert!(
            alerts
                .iter()
                .all(|view| view.alert.summary != "forged signature")
        );
    }
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_by_a_non_author_is_refused_at_the_cli() {
    let nodes = federation(2).await;
    let id = raise(&nodes[0], "mine").await;
    eventually("the alert on node 1", || has_alert(&nodes[1], id)).await;
    let update = request::AlertUpdate {
        alert: id,
        status: AlertStatus::Retracted,
        note: None,
    };
    let error = nodes[1]
        .call(move |client| client.sign(&update))
        .await
        .expect_err("refused");
    assert!(error.to_string().contains("only the author"), "{error}");
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_flush_is_never_acknowledged_and_stops_the_daemon() {
    let dir = tempfile::tempdir().expect("tempdir");
    solidarity_tests::init_data_dir(dir.path());
    let store = std::sync::Arc::new(solidarity_tests::FaultyStore::default());
    let node = TestNode::start_with(dir, Some(store.clone())).await;
    let stored = raise(&node, "before the disk fills").await;
    assert!(has_alert(&node, stored).await);

    store
        .fail_flush
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let request = request::AlertRaise {
        alert: alert("after the disk filled"),
        expires_in_ms: None,
    };
    let error = node
        .call(move |client| client.sign(&request))
        .await
        .expect_err("no id for an unflushed write");
    assert!(error.to_string().contains("NOT published"), "{error}");
    let ended = node.exited(Duration::from_secs(1)).await;
    let message = format!("{:#}", ended.expect_err("the daemon stops with an error"));
    assert!(message.contains("storage failed"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_member_cannot_connect() {
    let nodes = federation(2).await;
    // The stranger allows the node, but the node does not know the stranger.
    let stranger = RawPeer::start(vec![nodes[0].peer_id()]).await;
    stranger.connect(&nodes[0]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        nodes[0].connected().await,
        1,
        "only the real member is connected"
    );
    let peers = nodes[0].call(|client| client.peers()).await.expect("peers");
    assert!(peers.iter().all(|peer| peer.key != stranger.author()));
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_used_by_two_parties_is_detected_everywhere_and_no_longer_trusted() {
    let mut nodes = federation(4).await;
    let injector = injector_at(&nodes, 0).await;

    // Node 2 is offline while the key of node 3 is used twice.
    let offline = nodes.remove(2).stop().await;
    let victim = nodes[2].key;
    let genuine = raise(&nodes[2], "the real node 3").await;
    for node in &nodes {
        eventually("the genuine alert everywhere", || has_alert(node, genuine)).await;
    }
    // The seized copy of node 3's key signs its own seq 1.
    let seized_key = solidarity_tests::node_key(nodes[2].dir.path());
    let forged = signed(&seized_key, &Body::Alert(alert("the seized copy")));
    injector.net.publish(forged).await.expect("publish");

    // Every other online node detects the fork. (Node 3 itself may or may not hear of it
    // before the others stop talking to its key.)
    for node in nodes.iter().filter(|node| node.key != victim) {
        eventually("every online node detects the fork", || async {
            node.compromised().await.contains(&victim)
        })
        .await;
    }

    // The node that was offline learns of the fork in its first sync.
    let returning = TestNode::start(offline).await;
    let took = eventually("the returning node detects the fork", || async {
        returning.compromised().await.contains(&victim)
    })
    .await;
    eprintln!("fork detected by the returning node after {took:?}");
    // Out of trust, the key stays listed with the reason and from which seq it is suspect.
    let listed = nodes[0]
        .peers()
        .await
        .into_iter()
        .find(|peer| peer.key == victim)
        .expect("the forked key stays listed");
    assert!(!listed.trusted, "a forked key is not trusted");
    assert!(
        matches!(
            listed.distrust,
            Some(solidarity_control::Distrust::Compromised { from_seq: 1, .. })
        ),
        "{:?}",
        listed.distrust
    );

    // The compromised key is no longer trusted: what either holder signs now is taken
    // nowhere, and nothing signed at the fork is shown as trustworthy.
    let later = signed_at(&seized_key, 30, now_ms(), "the seized copy again");
    injector.net.publish(later).await.expect("publish");
    let again = request::AlertRaise {
        alert: alert("node 3 after the fork"),
        expires_in_ms: None,
    };
    let _ = nodes[2].call(move |client| client.sign(&again)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    for node in nodes
        .iter()
        .filter(|node| node.key != victim)
        .chain([&returning])
    {
        for view in node.alerts().await {
            assert_ne!(view.alert.summary, "the seized copy again");
            assert_ne!(view.alert.summary, "node 3 after the fork");
            if view.alert.summary == "the seized copy" {
                assert!(
                    view.suspect,
                    "a message signed at the fork is shown as trustworthy"
                );
            }
        }
    }

    // The admin trusts the key again once its collective has it back.
    let victim_key = victim;
    nodes[0]
        .call(move |client| client.retrust(victim_key))
        .await
        .expect("retrust");
    assert!(!nodes[0].compromised().await.contains(&victim));

    returning.stop().await;
    for node in nodes {
        node.stop().await;
    }
}

async fn canary_of(
    node: &TestNode,
    key: solidarity_proto::AuthorKey,
) -> Option<solidarity_control::CanaryView> {
    node.peers()
        .await
        .into_iter()
        .find(|peer| peer.key == key)
        .and_then(|peer| peer.canary)
}

async fn state_is(
    node: &TestNode,
    key: solidarity_proto::AuthorKey,
    state: solidarity_control::CanaryState,
) -> bool {
    canary_of(node, key)
        .await
        .is_some_and(|canary| canary.state == state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canaries_reveal_silence_withdrawn_codes_and_duress() {
    use solidarity_control::CanaryState;
    use solidarity_proto::payload::CanaryCode;

    let fast = [("canary_interval_secs", "1"), ("canary_grace_secs", "1")];
    let nodes = solidarity_tests::federation_with(3, &fast).await;
    for node in &nodes[1..] {
        eventually("node 0's canary is on time", || {
            state_is(node, nodes[0].key, CanaryState::Ok)
        })
        .await;
    }

    // Node 1 holds node 0's duress commitment (from node 0's card); node 2 does not.
    let passphrase = "orange balloons at dawn";
    let duress_key = solidarity_proto::payload::duress_key(&nodes[0].key, passphrase);
    let commitment_bytes = solidarity_proto::payload::duress_commitment(&duress_key);
    let commitment = hex::encode(commitment_bytes);
    let card = format!("{}~{commitment}", nodes[0].card().await);
    nodes[1].add_members(&[("node0".into(), card)]).await;
    let request = request::CanaryDuress {
        token: MessageId(solidarity_proto::payload::duress_token(
            &commitment_bytes,
            &nodes[0].key,
            [1; 16],
        )),
    };
    nodes[0]
        .call(move |client| client.sign(&request))
        .await
        .expect("duress canary");
    let took = eventually("node 1 sees the duress", || {
        state_is(&nodes[1], nodes[0].key, CanaryState::Duress)
    })
    .await;
    eprintln!("duress recognised after {took:?}");
    assert!(
        !state_is(&nodes[2], nodes[0].key, CanaryState::Duress).await,
        "without the commitment a duress canary looks like any other"
    );

    // A withdrawn code shows on every member, and stays withdrawn in scheduled canaries.
    let request = request::CanaryPublish {
        withdraw: vec![CanaryCode::Gag],
        restore: vec![],
    };
    nodes[0]
        .call(move |client| client.sign(&request))
        .await
        .expect("canary");
    eventually("node 2 sees the gag code withdrawn", || async {
        canary_of(&nodes[2], nodes[0].key)
            .await
            .is_some_and(|canary| {
                canary.state == CanaryState::Changed && canary.withdrawn == [CanaryCode::Gag]
            })
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let canary = canary_of(&nodes[2], nodes[0].key).await.expect("canary");
    assert_eq!(
        canary.withdrawn,
        [CanaryCode::Gag],
        "scheduled canaries keep the withdrawal"
    );

    // Dead-man's switch: a stopped member goes silent everywhere after interval + grace.
    let mut nodes = nodes;
    let stopped = nodes.pop().expect("three nodes");
    let stopped_key = stopped.key;
    stopped.stop().await;
    for node in &nodes {
        let took = eventually("the stopped node is silent", || {
            state_is(node, stopped_key, CanaryState::Silent)
        })
        .await;
        eprintln!("silent after {took:?}");
    }
    for node in nodes {
        node.stop().await;
    }
}

async fn corroboration(node: &TestNode, id: MessageId) -> solidarity_proto::state::Corroboration {
    node.alerts()
        .await
        .into_iter()
        .find(|view| view.id == id)
        .map(|view| view.corroboration)
        .unwrap_or_default()
}

async fn stance(node: &TestNode, id: MessageId, stance: solidarity_proto::payload::Stance) {
    let request = request::AlertEndorse {
        alert: id,
        stance,
        note: None,
    };
    node.call(move |client| client.sign(&request))
        .await
        .expect("endorsement");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seizure_is_confirmed_by_two_collectives_not_two_keys_of_one() {
    use solidarity_proto::payload::Stance;
    // Nodes 2 and 3 are two servers of one collective, in their own configs and on every
    // node's members list.
    let mut nodes = Vec::new();
    for index in 0..4 {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings: &[(&str, &str)] = if index >= 2 {
            &[("collective", "\"riseup\"")]
        } else {
            &[]
        };
        solidarity_tests::init_data_dir_with(dir.path(), settings);
        nodes.push(TestNode::start(dir).await);
    }
    solidarity_tests::connect_all(&nodes).await;
    let same = [nodes[2].key, nodes[3].key];
    for node in &nodes {
        node.set_collective(&same, "riseup").await;
    }
    let id = raise(&nodes[0], "seizure needing corroboration").await;
    for node in &nodes {
        eventually("the alert everywhere", || has_alert(node, id)).await;
    }
    let first = corroboration(&nodes[1], id).await;
    assert_eq!((first.required, first.confirmed), (Some(2), false));

    stance(&nodes[2], id, Stance::Endorse).await;
    stance(&nodes[3], id, Stance::Endorse).await;
    eventually("both riseup endorsements arrive", || async {
        corroboration(&nodes[1], id).await.endorsed_by.len() == 2
    })
    .await;
    let one_collective = corroboration(&nodes[1], id).await;
    assert_eq!(
        (one_collective.collectives, one_collective.confirmed),
        (1, false)
    );

    stance(&nodes[1], id, Stance::Endorse).await;
    for node in &nodes {
        eventually("confirmed by two collectives everywhere", || async {
            corroboration(node, id).await.confirmed
        })
        .await;
    }
    // A retraction only cancels its own author's stance.
    stance(&nodes[1], id, Stance::Retract).await;
    eventually("node 1's endorsement withdrawn", || async {
        !corroboration(&nodes[2], id).await.confirmed
    })
    .await;
    assert_eq!(corroboration(&nodes[2], id).await.endorsed_by.len(), 2);

    // An endorsement counts only while its author is trusted here: once node 0's admin
    // removes node 1, node 1's standing endorsement no longer confirms the alert there.
    stance(&nodes[1], id, Stance::Endorse).await;
    eventually("confirmed again on node 0", || async {
        corroboration(&nodes[0], id).await.confirmed
    })
    .await;
    nodes[0].remove_member(&nodes[1].key).await;
    eventually(
        "node 1's endorsement no longer counts on node 0",
        || async {
            let corroboration = corroboration(&nodes[0], id).await;
            !corroboration.confirmed && !corroboration.endorsed_by.contains(&nodes[1].key)
        },
    )
    .await;
    assert!(
        corroboration(&nodes[2], id).await.confirmed,
        "the nodes that still trust node 1 count it"
    );
    for node in nodes {
        node.stop().await;
    }
}

/// Trusted now (keys out of trust after a revocation, a fork or a certificate's end stay
/// listed, untrusted).
async fn trusts(node: &TestNode, key: solidarity_proto::AuthorKey) -> bool {
    node.peers()
        .await
        .iter()
        .any(|peer| peer.key == key && peer.trusted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_member_needs_two_vouches_and_loses_trust_when_one_is_withdrawn() {
    let nodes = federation(3).await;
    // The newcomer trusts the three, but none of them has added it.
    let newcomer = TestNode::new().await;
    let mut cards = Vec::new();
    for (index, node) in nodes.iter().enumerate() {
        cards.push((format!("node{index}"), node.card().await));
    }
    newcomer.add_members(&cards).await;
    let newcomer_card = newcomer.card().await;
    let vouch = |node: &TestNode, standing: bool| {
        let card = solidarity::identity::Card::parse(&newcomer_card).expect("card");
        let request = request::MemberVouch {
            key: card.key,
            name: "newcomer".into(),
            addresses: card.addresses.iter().map(ToString::to_string).collect(),
            vouch: standing,
        };
        let client = node.client();
        async move {
            tokio::task::spawn_blocking(move || client.sign(&request))
                .await
                .expect("join")
                .expect("vouch")
        }
    };
    vouch(&nodes[0], true).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for node in &nodes {
        assert!(!trusts(node, newcomer.key).await, "one vouch is not enough");
    }
    vouch(&nodes[1], true).await;
    for node in &nodes {
        eventually("two vouches make a member", || trusts(node, newcomer.key)).await;
    }
    let members = nodes[2].peers().await;
    let entry = members
        .iter()
        .find(|peer| peer.key == newcomer.key)
        .expect("listed");
    assert_eq!(entry.vouched_by.len(), 2, "the listing says who vouched");

    // Trusted, the newcomer connects and its alerts are accepted.
    let id = raise(&newcomer, "hello from the newcomer").await;
    eventually("the newcomer's alert reaches node 2", || {
        has_alert(&nodes[2], id)
    })
    .await;

    vouch(&nodes[1], false).await;
    for node in &nodes {
        eventually("a withdrawn vouch is honoured", || async {
            !trusts(node, newcomer.key).await
        })
        .await;
    }
    newcomer.stop().await;
    for node in nodes {
        node.stop().await;
    }
}

/// Signs an alert with `key` at an arbitrary place of its chain and time.
fn signed_at(key: &ed25519_dalek::SigningKey, seq: u64, created_at: u64, summary: &str) -> Vec<u8> {
    let body = Body::Alert(alert(summary));
    let payload = Payload {
        fed: FederationId::from_name(FEDERATION),
        seq,
        prev: (seq > 1).then_some(MessageId([7; 32])),
        created_at,
        expires_at: None,
        kind: body.kind().expect("known kind").to_owned(),
        body: body.encode(),
    };
    envelope::sign(key, &payload).bytes
}

async fn revoked(node: &TestNode, key: solidarity_proto::AuthorKey) -> bool {
    node.peers()
        .await
        .iter()
        .any(|peer| peer.key == key && peer.revoked_since.is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seizure_drill_a_published_revocation_stops_the_seized_key_everywhere() {
    let mut nodes = federation(4).await;
    let seized = nodes[3].key;
    let seized_key = solidarity_tests::node_key(nodes[3].dir.path());
    let genuine = raise(&nodes[3], "before the seizure").await;
    for node in &nodes {
        eventually("the genuine alert everywhere", || has_alert(node, genuine)).await;
    }

    // Months ago the collective made a revocation certificate and kept it off the server.
    let offline_storage = tempfile::tempdir().expect("tempdir");
    let certificate = offline_storage.path().join("revocation.cert");
    let (data_dir, out) = (nodes[3].dir.path().to_owned(), certificate.clone());
    tokio::task::spawn_blocking(move || {
        solidarity::cli::run_key(
            &data_dir,
            solidarity::cli::KeyCommand::RevocationCert {
                out,
                reason: "rack seized at 06:00".into(),
                compromised_since: None,
                identity: None,
                key: None,
                federation: Some(solidarity_tests::FEDERATION.into()),
                passphrase_file: None,
            },
            false,
        )
    })
    .await
    .expect("join")
    .expect("revocation certificate");
    let envelope =
        hex::decode(std::fs::read_to_string(&certificate).expect("cert").trim()).expect("hex");

    // The attacker holds the key and talks to node 0; node 2 is offline meanwhile.
    let injector = injector_at(&nodes, 0).await;
    let offline = nodes.remove(2).stop().await;

    // Another collective publishes the revocation from its own node.
    let started = std::time::Instant::now();
    let request = request::PublishStatement { envelope };
    nodes[1]
        .call(move |client| client.sign(&request))
        .await
        .expect("revoke");
    for node in nodes.iter().filter(|node| node.key != seized) {
        eventually("every online node marks the key revoked", || {
            revoked(node, seized)
        })
        .await;
    }
    eprintln!("revocation known everywhere after {:?}", started.elapsed());

    // The attacker's new messages, back-dated and with higher seqs, are refused.
    let day_ago = now_ms() - 24 * 3600 * 1000;
    for (seq, summary) in [(40, "back-dated forgery"), (41, "fresh forgery")] {
        let created_at = if seq == 40 { day_ago } else { now_ms() };
        let forged = signed_at(&seized_key, seq, created_at, summary);
        injector.net.publish(forged).await.expect("publish");
    }
    tokio::time::sleep(Duration::from_millis(800)).await;

    // The node that was offline learns of the revocation in its first sync, before the
    // attacker's messages.
    let returning = TestNode::start(offline).await;
    eventually("the returning node marks the key revoked", || {
        revoked(&returning, seized)
    })
    .await;
    let late = signed_at(&seized_key, 42, day_ago, "forgery after the return");
    injector.net.publish(late).await.expect("publish");
    // Nor is a canary signed with the seized key: the member's canary stays as it was.
    let canary_before = canary_of(&nodes[0], seized)
        .await
        .map(|canary| canary.last_at);
    let canary = Body::Canary(solidarity_proto::payload::Canary {
        statement: "all is well".into(),
        codes: solidarity_proto::payload::CanaryCode::ALL.to_vec(),
        interval_secs: 21_600,
        token: vec![0; 32],
    });
    let forged_canary = envelope::sign(
        &seized_key,
        &Payload {
            fed: FederationId::from_name(FEDERATION),
            seq: 43,
            prev: Some(MessageId([7; 32])),
            created_at: now_ms(),
            expires_at: None,
            kind: "canary".into(),
            body: canary.encode(),
        },
    );
    injector
        .net
        .publish(forged_canary.bytes)
        .await
        .expect("publish");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        canary_of(&nodes[0], seized)
            .await
            .map(|canary| canary.last_at),
        canary_before,
        "a canary signed by a revoked key was accepted"
    );

    for node in nodes.iter().chain([&returning]) {
        let alerts = node.alerts().await;
        assert!(
            alerts
                .iter()
                .all(|view| !view.alert.summary.contains("forgery")),
            "a forgery by the seized key was accepted"
        );
        let before = alerts
            .iter()
            .find(|view| view.id == genuine)
            .expect("genuine alert kept");
        assert!(
            !before.suspect,
            "what the collective signed before the certificate stands"
        );
    }
    // Whether or not the seized node heard of its revocation before the others hung up,
    // what it signs now is taken nowhere.
    let again = request::AlertRaise {
        alert: alert("the seized node tries again"),
        expires_in_ms: None,
    };
    let _ = nodes[2].call(move |client| client.sign(&again)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    for node in nodes.iter().take(2).chain([&returning]) {
        let alerts = node.alerts().await;
        assert!(
            alerts
                .iter()
                .all(|view| view.alert.summary != "the seized node tries again")
        );
    }

    returning.stop().await;
    for node in nodes {
        node.stop().await;
    }
}

/// Runs a `solidarity key …` command as the CLI would.
async fn key_command(data_dir: &std::path::Path, command: solidarity::cli::KeyCommand) {
    let data_dir = data_dir.to_owned();
    tokio::task::spawn_blocking(move || solidarity::cli::run_key(&data_dir, command, true))
        .await
        .expect("join")
        .expect("key command");
}

async fn publish_statement(node: &TestNode, file: &std::path::Path) {
    let envelope =
        hex::decode(std::fs::read_to_string(file).expect("statement").trim()).expect("hex");
    let request = request::PublishStatement { envelope };
    node.call(move |client| client.sign(&request))
        .await
        .expect("publish statement");
}

async fn certified_until(node: &TestNode, key: solidarity_proto::AuthorKey) -> Option<u64> {
    node.peers()
        .await
        .into_iter()
        .find(|peer| peer.key == key)
        .and_then(|peer| peer.certified_until)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collective_certificates_expire_renew_and_give_way_to_a_replacement_key() {
    use solidarity::cli::KeyCommand;
    let nodes = solidarity_tests::federation_with(2, &[("admin_addr", "\"127.0.0.1:0\"")]).await;
    // The collective keeps its identity key off its servers.
    let offline = tempfile::tempdir().expect("tempdir");
    let passphrase = offline.path().join("passphrase");
    std::fs::write(&passphrase, "a long collective passphrase\n").expect("passphrase");
    let identity_file = offline.path().join("identity.key");
    let identity = solidarity::identity_key::create(&identity_file, "a long collective passphrase")
        .expect("identity");
    let identity_card = identity.to_hex();
    for node in &nodes {
        let mut file = solidarity::members::MembersFile::load(node.dir.path()).expect("members");
        file.add(
            &solidarity::identity::Card::parse(&identity_card).expect("card"),
            "collective",
        )
        .expect("add");
        file.members.last_mut().expect("added").identity = true;
        file.save(node.dir.path()).expect("save");
        node.call(|client| client.reload_members())
            .await
            .expect("reload");
    }
    let server = TestNode::new().await;
    let mut cards = Vec::new();
    for (index, node) in nodes.iter().enumerate() {
        cards.push((format!("node{index}"), node.card().await));
    }
    server.add_members(&cards).await;
    let certify = |out: &str, node_card: String, valid_for: Duration| KeyCommand::Certify {
        identity: identity_file.clone(),
        node_key: node_card,
        valid_for,
        federation: Some(solidarity_tests::FEDERATION.into()),
        force: false,
        out: offline.path().join(out),
        passphrase_file: Some(passphrase.clone()),
    };

    // A short certificate, published by a friend: the server is trusted, connects, speaks.
    key_command(
        server.dir.path(),
        certify("short.cert", server.card().await, Duration::from_secs(8)),
    )
    .await;
    publish_statement(&nodes[0], &offline.path().join("short.cert")).await;
    for node in &nodes {
        eventually("the certified server is trusted", || async {
            certified_until(node, server.key).await.is_some()
        })
        .await;
    }
    // The admin page warns of a certificate about to end; the public page shows no
    // certificates at all.
    let status = nodes[0]
        .call(|client| client.status())
        .await
        .expect("status");
    let token = solidarity::daemon::status_page::auth::read_token(nodes[0].dir.path())
        .expect("admin token");
    let (admin_url, public_url) = (status.admin_url.expect("admin page"), status.status_url);
    let (page, public) = tokio::task::spawn_blocking(move || {
        let bearer = format!("Bearer {token}");
        (
            solidarity_tests::http_get_with(&admin_url, &[("Authorization", &bearer)]).1,
            solidarity_tests::http_get(&public_url).1,
        )
    })
    .await
    .expect("join");
    assert!(
        page.contains("RENEW SOON") && page.contains("certificate ending within a week"),
        "no certificate warning on the admin page"
    );
    assert!(
        !public.contains("RENEW SOON"),
        "certificates on the public page"
    );
    let id = raise(&server, "from the certified server").await;
    eventually("its alert reaches node 1", || has_alert(&nodes[1], id)).await;

    // The certificate ends: the key stops being trusted by itself.
    for node in &nodes {
        eventually("the expired certificate is no longer honoured", || async {
            !trusts(node, server.key).await
        })
        .await;
    }
    // A renewal restores it.
    key_command(
        server.dir.path(),
        certify(
            "renewal.cert",
            server.card().await,
            Duration::from_secs(600),
        ),
    )
    .await;
    publish_statement(&nodes[1], &offline.path().join("renewal.cert")).await;
    for node in &nodes {
        eventually("the renewed certificate is honoured", || {
            trusts(node, server.key)
        })
        .await;
    }

    // After a seizure: the identity revokes the seized node key and certifies a new one.
    let replacement = TestNode::new().await;
    replacement.add_members(&cards).await;
    key_command(
        server.dir.path(),
        KeyCommand::RevocationCert {
            out: offline.path().join("seized.revocation"),
            reason: "server seized".into(),
            compromised_since: None,
            identity: Some(identity_file.clone()),
            key: Some(server.key.to_hex()),
            federation: Some(solidarity_tests::FEDERATION.into()),
            passphrase_file: Some(passphrase.clone()),
        },
    )
    .await;
    key_command(
        server.dir.path(),
        certify(
            "replacement.cert",
            replacement.card().await,
            Duration::from_secs(600),
        ),
    )
    .await;
    publish_statement(&nodes[0], &offline.path().join("seized.revocation")).await;
    publish_statement(&nodes[0], &offline.path().join("replacement.cert")).await;
    for node in &nodes {
        eventually("the seized key is out, the replacement in", || async {
            !trusts(node, server.key).await && trusts(node, replacement.key).await
        })
        .await;
    }
    let id = raise(&replacement, "from the replacement server").await;
    eventually("the replacement's alert reaches node 1", || {
        has_alert(&nodes[1], id)
    })
    .await;

    replacement.stop().await;
    server.stop().await;
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_gossip_does_not_hurt_a_live_node() {
    let nodes = federation(3).await;
    let injector = injector_at(&nodes, 0).await;
    let honest = signed(
        &injector.key,
        &Body::Alert(alert("honest after the garbage")),
    );
    let mut truncated = honest.clone();
    truncated.truncate(honest.len() / 2);
    let mut deeply_nested = vec![0x81u8; 10_000]; // arrays nested 10 000 deep
    deeply_nested.push(0x00);
    let huge_declared_length = vec![0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    // (Of another message: a variant with the same signer and payload shares the content
    // id, and gossip would then drop the honest copy as a duplicate until sync.)
    let wrong_version = {
        let other = signed(&injector.key, &Body::Alert(alert("wrong version")));
        let mut envelope = solidarity_proto::Envelope::decode(&other).expect("decodes");
        envelope.v = 9;
        envelope.encode()
    };
    let garbage: Vec<Vec<u8>> = vec![
        vec![],
        b"not cbor at all".to_vec(),
        truncated,
        deeply_nested,
        huge_declared_length,
        wrong_version,
        vec![0u8; solidarity_proto::envelope::MAX_ENVELOPE_BYTES + 1],
    ];
    for bytes in garbage {
        injector.net.publish(bytes).await.expect("publish");
    }
    // Honest traffic from the other members still flows everywhere.
    let from_member = raise(&nodes[1], "honest member after the garbage").await;
    for node in &nodes {
        eventually("honest traffic still flows", || {
            has_alert(node, from_member)
        })
        .await;
    }
    // The sender of the garbage is penalised: node 0 no longer takes gossip from it.
    injector.net.publish(honest.clone()).await.expect("publish");
    let honest_id = envelope::Envelope::decode(&honest).expect("decodes").id();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !has_alert(&nodes[0], honest_id).await,
        "the peer that sent garbage was not penalised"
    );
    for node in nodes {
        // Still answering, and stopping cleanly: nothing panicked.
        node.stop().await;
    }
}

/// A member whose card names its host (`/dns4/NAME/tcp/PORT`, as the README tells admins
/// to announce) is dialled: the name is resolved by the host's resolver (here `localhost`
/// from /etc/hosts). The member knows the dialler's key only, so it cannot dial first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_announced_by_a_dns_name_is_dialled() {
    let a = TestNode::new().await;
    let b = TestNode::new().await;
    let b_card = b.card().await;
    assert!(b_card.contains("/ip4/127.0.0.1/"), "{b_card}");
    let by_name = b_card.replace("/ip4/127.0.0.1/", "/dns4/localhost/");
    let a_key_only = a.card().await.split('@').next().expect("key").to_owned();
    b.add_members(&[("a".to_owned(), a_key_only)]).await;
    a.add_members(&[("b".to_owned(), by_name)]).await;
    eventually("a dials b by its name", || async {
        a.connected().await == 1
    })
    .await;
}
