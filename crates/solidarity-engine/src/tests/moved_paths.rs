//! The review of issue 12: every path moved out of the daemon's actor last (commands,
//! canaries, retrust, the certificate clock, reloads) against what the actor did.

use super::*;
use crate::events::{LiveConfig, Timer};
use solidarity_control::RefusalCode;
use solidarity_proto::payload::{Canary, NodeCert, Revocation, Vouch};

fn canary_config() -> EngineConfig {
    let mut config = config();
    config.canary.interval_ms = 3_600_000;
    config
}

/// The message written by `outputs` (the first `Write`), with its durability.
fn written(outputs: &[Output<u8>]) -> Option<(NewMessage, bool)> {
    outputs.iter().find_map(|output| match output {
        Output::Write {
            message, durable, ..
        } => Some((message.clone(), *durable)),
        _ => None,
    })
}

fn canary_of(message: &NewMessage) -> (Payload, Canary) {
    let payload = payload_of(&message.envelope);
    let Ok(Body::Canary(canary)) = Body::decode(&payload.kind, &payload.body) else {
        panic!("not a canary: {}", payload.kind);
    };
    (payload, canary)
}

/// The kinds of outputs, as names, leaving out replies (only a command has one).
fn shape(outputs: &[Output<u8>]) -> Vec<&'static str> {
    outputs
        .iter()
        .filter_map(|output| match output {
            Output::Write { .. } => Some("write"),
            Output::RecordOwnHead { .. } => Some("record"),
            Output::Publish { .. } => Some("publish"),
            Output::Reply { .. } => None,
            Output::Schedule { .. } => None,
            Output::Notice(_) => Some("notice"),
            _ => Some("other"),
        })
        .collect()
}

fn live(config: &EngineConfig) -> LiveConfig {
    LiveConfig {
        limits: config.limits,
        statements_per_signer: config.statements_per_signer,
        vouch_threshold: config.vouch_threshold,
        canary_rules: crate::canary::CanaryRules {
            max_interval_ms: 7_200_000,
            grace_ms: 600_000,
        },
        canary: config.canary.clone(),
    }
}

fn listed(keys: &[u8]) -> Vec<ListedKey> {
    keys.iter()
        .map(|m| ListedKey {
            key: envelope::author_key(&key(*m)),
            identity: false,
            addresses: Vec::new(),
            duress_commitment: None,
        })
        .collect()
}

/// A duress canary and a scheduled one must not be told apart by anything but the
/// token's meaning: same statement, codes, interval, lifetime, token length,
/// durability, and the same outputs around them (the duress one only adds a reply).
#[test]
fn review_a_duress_canary_is_shaped_like_the_scheduled_one() {
    let mut a = engine(1, &[2], canary_config());
    a.handle(NOW, Input::Start);
    let scheduled = a.handle(NOW, Input::Timer(Timer::Canary));
    let (scheduled_message, scheduled_durable) = written(&scheduled).expect("scheduled");
    let scheduled_rest = settle(&mut a, NOW, scheduled.clone());
    let duress = a.handle(
        NOW + 5_000,
        Input::Command {
            token: CommandToken(9),
            command: Command::Duress {
                token: vec![0xAB; 32],
            },
        },
    );
    let (duress_message, duress_durable) = written(&duress).expect("duress");
    let duress_rest = settle(&mut a, NOW + 5_000, duress.clone());
    let (sp, sc) = canary_of(&scheduled_message);
    let (dp, dc) = canary_of(&duress_message);
    assert_eq!(sc.statement, dc.statement);
    assert_eq!(sc.codes, dc.codes);
    assert_eq!(sc.interval_secs, dc.interval_secs);
    assert_eq!(sc.token.len(), dc.token.len());
    assert_eq!(
        sp.expires_at.map(|at| at - sp.created_at),
        dp.expires_at.map(|at| at - dp.created_at)
    );
    assert_eq!(scheduled_durable, duress_durable);
    assert_eq!(shape(&scheduled), shape(&duress));
    assert_eq!(shape(&scheduled_rest), shape(&duress_rest));
}

/// The scheduled canary is skipped while signing waits for the own chain and follows
/// once a sync brings the chain back (old actor: `own_chain_learned` → canary tick).
#[test]
fn review_the_scheduled_canary_waits_for_the_own_chain_then_follows_it() {
    let mut a = engine(1, &[2], config());
    let mut b = engine(2, &[1], config());
    for n in 0..3 {
        let envelope = sign(&mut a, NOW + n, alert(&format!("mine {n}")));
        gossip(&mut b, NOW + n, envelope);
    }
    let mut recorded = canary_config();
    recorded.own_chain_recorded = Some((3, a.store().id_at(&a.me(), 3).expect("read")));
    let mut restored = engine(1, &[2], recorded);
    assert!(restored.paused().is_some());
    let skipped = restored.handle(NOW + 5, Input::Timer(Timer::Canary));
    assert!(
        written(&skipped).is_none(),
        "no canary while paused: {skipped:?}"
    );
    sync_session(&mut restored, &mut b, NOW + 10);
    assert!(restored.paused().is_none());
    let at_4 = restored.store().id_at(&restored.me(), 4).expect("read");
    let kind = at_4.and_then(|id| restored.store().author_and_kind(&id).expect("read"));
    assert_eq!(kind.map(|(_, kind)| kind).as_deref(), Some("canary"));
}

/// A revoked node publishes no scheduled canary (and signs nothing).
#[test]
fn review_a_revoked_node_publishes_no_scheduled_canary() {
    let mut a = engine(1, &[2], canary_config());
    sign(
        &mut a,
        NOW,
        Body::Revocation(Revocation {
            reason: "seized".into(),
            key: None,
            compromised_since: None,
        }),
    );
    let outputs = a.handle(NOW + 1, Input::Timer(Timer::Canary));
    assert!(written(&outputs).is_none(), "{outputs:?}");
}

/// `member retrust`: the key is trusted again at once, but the admin hears only once
/// the mark is durably cleared (the driver answers after `ClearCompromise`); a key not
/// marked is refused.
#[test]
fn review_retrust_answers_only_after_the_clear_is_durable() {
    let mut b = engine(2, &[1], config());
    let signer = key(1);
    let forged = |summary: &str| {
        let payload = Payload {
            fed: FED,
            seq: 1,
            prev: None,
            created_at: NOW,
            expires_at: None,
            kind: "alert".into(),
            body: alert(summary).encode(),
        };
        envelope::sign(&signer, &payload).bytes
    };
    gossip(&mut b, NOW, forged("one"));
    gossip(&mut b, NOW, forged("other"));
    let a = envelope::author_key(&signer);
    assert!(!b.trusts(&a));
    let outputs = b.handle(
        NOW + 1,
        Input::Command {
            token: CommandToken(4),
            command: Command::Retrust { key: a },
        },
    );
    assert!(
        outputs.iter().any(|o| matches!(
            o,
            Output::ClearCompromise { key, token: CommandToken(4) } if *key == a
        )),
        "{outputs:?}"
    );
    assert!(
        !outputs.iter().any(|o| matches!(o, Output::Reply { .. })),
        "no reply before the clear is durable: {outputs:?}"
    );
    let again = b.handle(
        NOW + 2,
        Input::Command {
            token: CommandToken(5),
            command: Command::Retrust { key: a },
        },
    );
    assert!(matches!(
        again.as_slice(),
        [Output::Reply { reply: Reply::Refused(refusal), .. }]
            if refusal.code == RefusalCode::NotCompromised
    ));
}

/// FINDING (risk): `publish-statement` of a statement this node is still writing (here
/// a received one, written without durability) is acknowledged at once as published:
/// the admin is told a revocation is out while it is not on disk here. A command's
/// reply should come after a durable write (SPEC: durability before reply).
#[test]
fn review_publishing_a_statement_still_being_written_waits_for_its_write() {
    let mut a = engine(1, &[2], config());
    let mut b = engine(2, &[1], config());
    let revocation = sign(
        &mut a,
        NOW,
        Body::Revocation(Revocation {
            reason: "seized".into(),
            key: None,
            compromised_since: None,
        }),
    );
    // B receives it by gossip: its write is queued, not durable, not completed.
    let received = b.handle(
        NOW,
        Input::Gossip {
            peer: 0,
            token: GossipToken(1),
            bytes: revocation.clone(),
        },
    );
    let (_, durable) = written(&received).expect("queued");
    assert!(!durable);
    // The admin publishes the same statement on B before that write completed.
    let outputs = b.handle(
        NOW + 1,
        Input::Command {
            token: CommandToken(7),
            command: Command::PublishStatement {
                envelope: revocation,
            },
        },
    );
    assert!(
        !outputs.iter().any(|o| matches!(
            o,
            Output::Reply {
                reply: Reply::Signed { .. },
                ..
            }
        )),
        "acknowledged before any durable write: {outputs:?}"
    );
}

/// FINDING (bug): the actor reloads members and config as two inputs
/// (`MembersChanged` with the old `vouch_threshold`, then `ConfigReloaded`), so a reload
/// that removes a voucher and lowers the threshold in one go drops a vouched member
/// that is trusted before and after: a `Disallow` (its connection closed), then an
/// `Allow`, and "member trusted by vouching" in the journal again. The old actor
/// merged the config first and derived trust once.
#[test]
fn review_a_reload_derives_trust_once_with_the_new_config() {
    let mut two = config();
    two.vouch_threshold = 2;
    let mut a = engine(1, &[2, 4], config());
    let mut c = engine(4, &[1, 2], config());
    let mut b = engine(2, &[1, 4], two.clone());
    let v = envelope::author_key(&key(3));
    for voucher in [&mut a, &mut c] {
        let vouch = sign(
            voucher,
            NOW,
            Body::Vouch(Vouch {
                member: v,
                name: "vouched".into(),
                addresses: Vec::new(),
                vouch: true,
            }),
        );
        let (acceptance, _) = gossip(&mut b, NOW, vouch);
        assert_eq!(acceptance, Acceptance::Accept);
    }
    assert!(b.trusts(&v), "two vouches, threshold 2");
    // One reload: node 4 leaves members.toml, vouch_threshold goes 2 → 1, fed as one
    // input (control.rs `handle_reload`).
    let mut one = two.clone();
    one.vouch_threshold = 1;
    let outputs = b.handle(
        NOW + 1,
        Input::Reloaded {
            config: live(&one),
            members: listed(&[1]),
        },
    );
    assert!(b.trusts(&v), "one vouch, threshold 1: trusted after");
    assert!(
        !outputs
            .iter()
            .any(|o| matches!(o, Output::Disallow { key } if *key == v)),
        "a member trusted before and after the reload is dropped in between: {outputs:?}"
    );
}

/// Certificates about to end are told once, again a day later, and not for a key
/// whose certificate has ended; the warned map forgets keys no longer listed.
#[test]
fn review_an_ending_certificate_is_told_daily() {
    let identity = key(5);
    let mut b = Engine::new(
        config(),
        key(2),
        FakeStore::default(),
        Loaded::default(),
        entropy(),
    );
    b.handle(NOW, Input::MembersChanged(vec![listed_identity(&identity)]));
    let node = envelope::author_key(&key(3));
    let payload = Payload {
        fed: FED,
        seq: 0,
        prev: None,
        created_at: NOW,
        expires_at: None,
        kind: "node-cert".into(),
        body: Body::NodeCert(NodeCert {
            node_key: node,
            valid_from: NOW - 1,
            valid_until: NOW + 3 * 24 * 3_600_000,
            addresses: Vec::new(),
        })
        .encode(),
    };
    let certificate = envelope::sign(&identity, &payload).bytes;
    let (acceptance, _) = gossip(&mut b, NOW, certificate);
    assert_eq!(acceptance, Acceptance::Accept);
    assert!(b.trusts(&node));
    let told = |b: &mut TestEngine, now| {
        b.handle(now, Input::Timer(Timer::CanaryCheck))
            .iter()
            .filter(|o| matches!(o, Output::Notice(Notice::CertificateEnding { .. })))
            .count()
    };
    assert_eq!(told(&mut b, NOW + 1_000), 1);
    assert_eq!(told(&mut b, NOW + 3_600_000), 0, "not again within a day");
    assert_eq!(told(&mut b, NOW + 25 * 3_600_000), 1, "again a day later");
    let ended = NOW + 3 * 24 * 3_600_000 + 1;
    let outputs = b.handle(ended, Input::Timer(Timer::CanaryCheck));
    assert!(!b.trusts(&node));
    assert!(
        outputs
            .iter()
            .any(|o| matches!(o, Output::Notice(Notice::CertificatesChanged))),
        "{outputs:?}"
    );
}
