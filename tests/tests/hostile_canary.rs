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

/// The canaries `node` holds of its own chain, asked for by sync as any member may.
async fn own_canaries(raw: &RawPeer, node: &TestNode) -> Vec<(u64, Vec<u8>)> {
    use solidarity_proto::sync::{MAX_PAGE_ENVELOPES, SyncRequest, SyncResponse, Watermark};
    let request = SyncRequest {
        fed: FederationId::from_name(FEDERATION),
        have: vec![Watermark {
            author: node.key,
            seq: 0,
            head: None,
        }],
        limit: MAX_PAGE_ENVELOPES,
        statements: None,
    };
    let answer = raw
        .net
        .sync_request(node.peer_id(), request.encode())
        .await
        .expect("the node answers");
    SyncResponse::decode(&answer)
        .expect("a page")
        .envelopes
        .iter()
        .filter_map(|bytes| {
            let parsed = solidarity_proto::Envelope::decode(bytes).ok()?;
            let payload = Payload::decode(&parsed.payload).ok()?;
            match Body::decode(&payload.kind, &payload.body).ok()? {
                Body::Canary(canary) if parsed.signer == node.key => {
                    Some((payload.seq, canary.token))
                }
                _ => None,
            }
        })
        .collect()
}

/// Point 9: every duress canary carries a fresh token: no two alike, none the key, so a
/// store shows nothing; a member holding the commitment recognises each, one without it
/// sees an ordinary canary, and routine canaries are not read as duress.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duress_tokens_are_unlinkable_and_recognised_only_with_the_commitment() {
    use solidarity_control::request;
    use solidarity_proto::payload::{duress_commitment, duress_key, duress_token};

    let nodes = federation_with(3, &[]).await;
    let coerced = nodes[0].key;
    let raw = RawPeer::start(vec![nodes[0].peer_id()]).await;
    nodes[0]
        .add_members(&[("observer".into(), raw.card())])
        .await;
    raw.connect(&nodes[0]).await;
    eventually("the observer is connected", || async {
        nodes[0].connected().await == 3
    })
    .await;

    let passphrase = "orange balloons at dawn";
    let key = duress_key(&coerced, passphrase);
    let commitment = duress_commitment(&key);
    let card = format!("{}~{}", nodes[0].card().await, hex::encode(commitment));
    nodes[1].add_members(&[("node0".into(), card)]).await;

    let mut rng = solidarity_tests::Rng(solidarity_tests::seed());
    let before = own_canaries(&raw, &nodes[0]).await.len();
    for _ in 0..2 {
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&rng.next_u64().to_be_bytes());
        nonce[8..].copy_from_slice(&rng.next_u64().to_be_bytes());
        let request = request::CanaryDuress {
            token: solidarity_proto::MessageId(duress_token(&commitment, &coerced, nonce)),
        };
        nodes[0]
            .call(move |client| client.sign(&request))
            .await
            .expect("duress canary");
    }
    let took = eventually("the member with the commitment reads duress", || async {
        canary_state(&nodes[1], coerced).await == Some(CanaryState::Duress)
    })
    .await;
    eventually("the member without it has the canaries", || async {
        nodes[2]
            .peers()
            .await
            .iter()
            .any(|peer| peer.key == coerced && peer.canary.is_some())
    })
    .await;
    assert_eq!(
        canary_state(&nodes[2], coerced).await,
        Some(CanaryState::Ok),
        "without the commitment a duress canary looks like any other"
    );

    let canaries = own_canaries(&raw, &nodes[0]).await;
    let tokens: Vec<&Vec<u8>> = canaries[before..].iter().map(|(_, token)| token).collect();
    eprintln!(
        "duress seen after {took:?}; {} canaries, tokens: {}",
        canaries.len(),
        tokens
            .iter()
            .map(hex::encode)
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert_eq!(tokens.len(), 2);
    assert_ne!(
        tokens[0], tokens[1],
        "two duress canaries share their token"
    );
    assert_ne!(tokens[0][16..], tokens[1][16..]);
    assert!(tokens.iter().all(|token| token.as_slice() != key));
    let routine = canaries[..before].iter().map(|(_, token)| token);
    for token in routine {
        assert!(!solidarity_proto::payload::is_duress_token(
            &commitment,
            &coerced,
            token
        ));
    }

    // Two routine canaries later, neither L nor P is a duress one: back to ok.
    for _ in 0..2 {
        let request = request::CanaryPublish {
            withdraw: vec![],
            restore: vec![],
        };
        nodes[0]
            .call(move |client| client.sign(&request))
            .await
            .expect("canary");
    }
    eventually("routine canaries are not duress", || async {
        canary_state(&nodes[1], coerced).await == Some(CanaryState::Ok)
    })
    .await;
    for node in nodes {
        node.stop().await;
    }
}

async fn status(node: &TestNode) -> solidarity_control::StatusView {
    node.call(|client| client.status()).await.expect("status")
}

async fn raise(node: &TestNode, summary: &str) -> Result<solidarity_proto::MessageId, String> {
    let request = solidarity_control::request::AlertRaise {
        alert: solidarity_tests::sample_alert(
            solidarity_proto::payload::AlertCategory::Outage,
            solidarity_proto::payload::Severity::Low,
            summary,
        ),
        expires_in_ms: None,
    };
    node.call(move |client| client.sign(&request))
        .await
        .map_err(|error| error.to_string())
}

/// Point 7: a node whose store was lost signs nothing (not even its start-up canary) while
/// no member is reachable, says why, and continues its own chain once a member gave it
/// back: nobody marks its key compromised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_with_an_empty_store_waits_for_its_chain_and_never_forks_itself() {
    let mut nodes = federation_with(2, &[]).await;
    let member = nodes.pop().expect("two nodes");
    let lost = nodes.pop().expect("two nodes");
    for summary in ["first", "second", "third"] {
        raise(&lost, summary).await.expect("raise");
    }
    let signed = status(&lost).await.own_seq;
    let member_key = member.key;
    eventually("the member holds the whole chain", || async {
        member.alerts().await.len() == 3
    })
    .await;

    // The member goes away; the node loses its store and starts again alone.
    let member_dir = member.stop().await;
    let dir = lost.stop().await;
    std::fs::remove_dir_all(dir.path().join(solidarity::daemon::STORE_DIR))
        .expect("lose the store");
    let lost = TestNode::start(dir).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let waiting = status(&lost).await;
    let refused = raise(&lost, "too early").await.expect_err("refused");
    eprintln!(
        "signed up to {signed}; alone after the loss: own_seq {}, stored {}, paused: {:?}; raise: {refused}",
        waiting.own_seq, waiting.stored_messages, waiting.signing_paused
    );
    assert_eq!(waiting.own_seq, 0, "it signed something at seq 1: a fork");
    assert_eq!(waiting.stored_messages, 0, "not even its start-up canary");
    let why = waiting.signing_paused.expect("status says why");
    assert!(why.contains(&format!("up to seq {signed}")), "{why}");
    assert!(refused.contains("synced its own chain"), "{refused}");

    // The member comes back (on a new port): the node syncs its chain and carries on.
    let member = TestNode::start(member_dir).await;
    lost.add_members(&[("node1".into(), member.card().await)])
        .await;
    let took = eventually("signing resumes once the chain is back", || async {
        status(&lost).await.signing_paused.is_none()
    })
    .await;
    let next = raise(&lost, "after the sync").await.expect("signs again");
    let resumed = status(&lost).await.own_seq;
    eventually("the member takes the next message", || async {
        member.alerts().await.iter().any(|view| view.id == next)
    })
    .await;
    eprintln!("chain back after {took:?}; next message at seq {resumed}");
    assert_eq!(
        resumed,
        signed + 2,
        "it continued its chain: the canary it held back, then the alert"
    );
    assert!(
        member.compromised().await.is_empty(),
        "the member saw a fork"
    );
    assert!(
        lost.compromised().await.is_empty(),
        "it holds itself compromised"
    );
    assert!(!member.compromised().await.contains(&member_key));
    lost.stop().await;
    member.stop().await;
}

/// Point 7, a store restored after its last messages expired: the members hold only
/// their ids (tombstones), so the chain can never come back whole. Once a member has
/// answered, the node continues after the head its `own-chain` records (seq and id),
/// which is the chain the members hold: no fork, no endless wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_last_messages_expired_on_its_members_continues_its_chain() {
    let mut nodes = federation_with(2, &[]).await;
    let member = nodes.pop().expect("two nodes");
    let lost = nodes.pop().expect("two nodes");
    raise(&lost, "lasting").await.expect("raise");
    let request = solidarity_control::request::AlertRaise {
        alert: solidarity_tests::sample_alert(
            solidarity_proto::payload::AlertCategory::Outage,
            solidarity_proto::payload::Severity::Low,
            "short-lived",
        ),
        expires_in_ms: Some(1000),
    };
    let short = lost
        .call(move |client| client.sign(&request))
        .await
        .expect("raise");
    let signed = status(&lost).await.own_seq;
    eventually("the member holds the short-lived alert", || async {
        member.alerts().await.iter().any(|view| view.id == short)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The member sweeps the expired alert at its next start; the node loses its store.
    let member = TestNode::start(member.stop().await).await;
    let dir = lost.stop().await;
    std::fs::remove_dir_all(dir.path().join(solidarity::daemon::STORE_DIR))
        .expect("lose the store");
    let lost = TestNode::start(dir).await;
    assert!(status(&lost).await.signing_paused.is_some(), "it waits");
    lost.add_members(&[("node1".into(), member.card().await)])
        .await;
    let took = eventually("signing resumes after the member answered", || async {
        status(&lost).await.signing_paused.is_none()
    })
    .await;
    let next = raise(&lost, "after the restore")
        .await
        .expect("signs again");
    let resumed = status(&lost).await.own_seq;
    eventually("the member takes the next message", || async {
        member.alerts().await.iter().any(|view| view.id == next)
    })
    .await;
    eprintln!(
        "signed up to {signed} (the last one expired on the member); resumed after {took:?} at seq {resumed}"
    );
    assert_eq!(resumed, signed + 2, "the held-back canary, then the alert");
    assert!(
        member.compromised().await.is_empty(),
        "the member saw a fork"
    );
    assert!(lost.compromised().await.is_empty());
    lost.stop().await;
    member.stop().await;
}

/// Signs a chain of bodies for `key`, seq 1 onward, `created_at` one second apart.
fn chain(
    key: &ed25519_dalek::SigningKey,
    start_ms: u64,
    bodies: Vec<Body>,
) -> Vec<envelope::SignedMessage> {
    let mut prev = None;
    bodies
        .into_iter()
        .enumerate()
        .map(|(index, body)| {
            let payload = Payload {
                fed: FederationId::from_name(FEDERATION),
                seq: index as u64 + 1,
                prev,
                created_at: start_ms + index as u64 * 1000,
                expires_at: None,
                kind: body.kind().expect("known kind").to_owned(),
                body: body.encode(),
            };
            let signed = envelope::sign(key, &payload);
            prev = Some(signed.id);
            signed
        })
        .collect()
}

fn vouch_for(member: AuthorKey, name: &str) -> Body {
    Body::Vouch(solidarity_proto::payload::Vouch {
        member,
        name: name.into(),
        addresses: Vec::new(),
        vouch: true,
    })
}

/// Point 8: a hostile voucher gives a newcomer the collective of an existing member, after
/// an honest voucher named it. The newcomer keeps its first name, the conflict is listed,
/// the existing member keeps its name, and a seizure endorsed by both stays confirmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voucher_cannot_rename_a_newcomer_or_merge_collectives() {
    use solidarity_proto::payload::{AlertCategory, Endorsement, Severity, Stance};

    let node = TestNode::new().await;
    let honest = RawPeer::start(vec![node.peer_id()]).await;
    let hostile = ed25519_dalek::SigningKey::from_bytes(&[41; 32]);
    let other = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    let newcomer = ed25519_dalek::SigningKey::from_bytes(&[43; 32]);
    let key = |signing: &ed25519_dalek::SigningKey| envelope::author_key(signing);
    let newcomer_key = key(&newcomer);
    node.add_members(&[
        ("honest".into(), honest.card()),
        ("hostile".into(), key(&hostile).to_hex()),
        ("other".into(), key(&other).to_hex()),
    ])
    .await;
    node.set_collective(&[honest.author()], "collective-a")
        .await;
    node.set_collective(&[key(&other)], "collective-b").await;
    honest.connect(&node).await;

    let start = now_ms() - 60_000;
    let alert = Body::Alert(solidarity_tests::sample_alert(
        AlertCategory::Seizure,
        Severity::Critical,
        "our servers were taken",
    ));
    let honest_chain = chain(
        &honest.key,
        start,
        vec![vouch_for(newcomer_key, "newcomer-collective"), alert],
    );
    let alert_id = honest_chain[1].id;
    // Later than the honest vouch: under "the newest vouch names it", it would win.
    let hostile_chain = chain(
        &hostile,
        start + 10_000,
        vec![vouch_for(newcomer_key, "collective-b")],
    );
    let endorse = || {
        Body::Endorsement(Endorsement {
            alert: alert_id,
            stance: Stance::Endorse,
            note: None,
        })
    };
    let other_chain = chain(&other, start + 20_000, vec![endorse()]);
    let newcomer_chain = chain(&newcomer, start + 20_000, vec![endorse()]);

    for signed in honest_chain.iter().chain(&hostile_chain) {
        honest.publish_when_meshed(&signed.bytes).await;
    }
    eventually("the newcomer is trusted by two vouches", || async {
        node.peers()
            .await
            .iter()
            .any(|peer| peer.key == newcomer_key && peer.trusted)
    })
    .await;
    for signed in other_chain.iter().chain(&newcomer_chain) {
        honest.publish_when_meshed(&signed.bytes).await;
    }
    let corroboration = || async {
        node.alerts()
            .await
            .into_iter()
            .find(|view| view.id == alert_id)
            .map(|view| view.corroboration)
    };
    eventually("both endorsements counted", || async {
        corroboration()
            .await
            .is_some_and(|c| c.endorsed_by.len() == 2)
    })
    .await;
    let corroboration = corroboration().await.expect("alert");
    let peers = node.peers().await;
    let shown = |key: AuthorKey| {
        peers
            .iter()
            .find(|peer| peer.key == key)
            .map(|peer| {
                (
                    peer.name.clone(),
                    peer.collective.clone(),
                    peer.label_conflicts.clone(),
                )
            })
            .expect("listed")
    };
    let (name, collective, conflicts) = shown(newcomer_key);
    eprintln!(
        "newcomer shown as {name:?} / {collective:?}, conflicts {conflicts:?}; other shown as {:?}; seizure: {} collectives, confirmed {}",
        shown(key(&other)),
        corroboration.collectives,
        corroboration.confirmed
    );
    assert_eq!(name, "newcomer-collective", "a later vouch renamed it");
    assert_eq!(conflicts, ["collective-b"]);
    assert_eq!(shown(key(&other)).0, "other");
    assert_eq!(shown(key(&other)).1, "collective-b");
    assert_eq!(
        corroboration.collectives, 2,
        "a voucher merged two collectives"
    );
    assert!(corroboration.confirmed);
    node.stop().await;
}

/// Point 8: a newcomer vouched for under an existing member's name never passes for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_vouched_under_a_members_name_is_shown_with_its_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    solidarity_tests::init_data_dir_with(dir.path(), &[("vouch_threshold", "1")]);
    let node = TestNode::start(dir).await;
    let hostile = RawPeer::start(vec![node.peer_id()]).await;
    let member = ed25519_dalek::SigningKey::from_bytes(&[51; 32]);
    let newcomer = envelope::author_key(&ed25519_dalek::SigningKey::from_bytes(&[52; 32]));
    node.add_members(&[
        ("hostile".into(), hostile.card()),
        ("node1".into(), envelope::author_key(&member).to_hex()),
    ])
    .await;
    hostile.connect(&node).await;
    let vouch = chain(
        &hostile.key,
        now_ms() - 1000,
        vec![vouch_for(newcomer, "node1")],
    );
    hostile.publish_when_meshed(&vouch[0].bytes).await;
    eventually("the newcomer is listed", || async {
        node.peers().await.iter().any(|peer| peer.key == newcomer)
    })
    .await;
    let names: Vec<(String, AuthorKey)> = node
        .peers()
        .await
        .into_iter()
        .map(|peer| (peer.name, peer.key))
        .collect();
    eprintln!("names: {names:?}");
    let named_node1: Vec<_> = names.iter().filter(|(name, _)| name == "node1").collect();
    assert_eq!(named_node1.len(), 1, "two members are shown as node1");
    assert_eq!(named_node1[0].1, envelope::author_key(&member));
    node.stop().await;
}
