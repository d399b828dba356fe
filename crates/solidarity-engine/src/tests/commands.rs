//! The admin's commands: the scheduled canary (and its wait), statements signed
//! elsewhere, and the settled revocations (`moved_paths.rs` has the duress canary,
//! retrust and the certificate clock).

use solidarity_control::RefusalCode;
use solidarity_proto::payload::{Canary, NodeCert};

use super::*;
use crate::events::Timer;

const HOUR_MS: u64 = 3_600_000;

fn canary_config() -> EngineConfig {
    EngineConfig {
        canary: OwnCanary {
            statement: "no warrant served".to_owned(),
            interval_ms: HOUR_MS,
        },
        ..config()
    }
}

fn canary_of(envelope: &[u8]) -> Canary {
    let payload = payload_of(envelope);
    match Body::decode(&payload.kind, &payload.body).expect("body") {
        Body::Canary(canary) => canary,
        other => panic!("not a canary: {other:?}"),
    }
}

fn published(outputs: &[Output<u8>]) -> Option<Vec<u8>> {
    outputs.iter().find_map(|output| match output {
        Output::Publish { envelope } => Some(envelope.clone()),
        _ => None,
    })
}

#[test]
fn the_canary_is_published_at_start_then_every_interval_and_held_while_signing_waits() {
    let mut engine = engine(1, &[2], canary_config());
    let start = engine.handle(NOW, Input::Start);
    assert!(start.iter().any(|output| matches!(
        output,
        Output::Schedule { timer: Timer::Canary, at_ms } if *at_ms == NOW
    )));
    let outputs = engine.handle(NOW, Input::Timer(Timer::Canary));
    assert!(
        matches!(outputs.first(), Some(Output::Write { durable: true, .. })),
        "a canary is on disk before it leaves: {outputs:?}"
    );
    assert!(outputs.iter().any(|output| matches!(
        output,
        Output::Schedule { timer: Timer::Canary, at_ms } if *at_ms == NOW + HOUR_MS
    )));
    let outputs = settle(&mut engine, NOW, outputs);
    let canary = canary_of(&published(&outputs).expect("published"));
    assert_eq!(canary.statement, "no warrant served");
    assert_eq!(canary.interval_secs, 3_600);
    assert!(
        !outputs
            .iter()
            .any(|output| matches!(output, Output::Reply { .. })),
        "nobody waits for a scheduled canary"
    );

    // A node that lost its store waits for its chain: no canary until a sync brings it.
    let mut waiting = super::engine(
        1,
        &[2],
        EngineConfig {
            own_chain_recorded: Some((5, None)),
            ..canary_config()
        },
    );
    assert!(waiting.paused().is_some());
    let outputs = waiting.handle(NOW, Input::Timer(Timer::Canary));
    assert!(
        !outputs
            .iter()
            .any(|output| matches!(output, Output::Write { .. })),
        "{outputs:?}"
    );
}

#[test]
fn a_statement_signed_elsewhere_is_stored_then_published_and_once_held_published_again() {
    let identity = key(9);
    let mut engine = engine(1, &[2], config());
    let listed = |key: AuthorKey, identity: bool| ListedKey {
        key,
        identity,
        addresses: Vec::new(),
        duress_commitment: None,
    };
    let list = vec![
        listed(envelope::author_key(&identity), true),
        listed(envelope::author_key(&key(2)), false),
    ];
    engine.handle(NOW, Input::MembersChanged(list));
    let certificate = statement(
        &identity,
        Body::NodeCert(NodeCert {
            node_key: envelope::author_key(&key(3)),
            valid_from: NOW - HOUR_MS,
            valid_until: NOW + 2 * HOUR_MS,
            addresses: Vec::new(),
        }),
    );
    for attempt in 0..2 {
        let outputs = engine.handle(
            NOW,
            Input::Command {
                token: CommandToken(attempt),
                command: Command::PublishStatement {
                    envelope: certificate.clone(),
                },
            },
        );
        let outputs = settle(&mut engine, NOW, outputs);
        assert_eq!(published(&outputs), Some(certificate.clone()), "{attempt}");
        assert!(outputs.iter().any(|output| matches!(
            output,
            Output::Reply { token, reply: Reply::Signed { .. } } if *token == CommandToken(attempt)
        )));
    }
    assert!(engine.trusts(&envelope::author_key(&key(3))));

    // A member's chain message (not held yet) is no statement.
    let body = alert("x");
    let chain_message = envelope::sign(
        &key(2),
        &Payload {
            fed: FED,
            seq: 1,
            prev: None,
            created_at: NOW - 1_000,
            expires_at: None,
            kind: body.kind().expect("kind").to_owned(),
            body: body.encode(),
        },
    )
    .bytes;
    let outputs = engine.handle(
        NOW,
        Input::Command {
            token: CommandToken(7),
            command: Command::PublishStatement {
                envelope: chain_message,
            },
        },
    );
    assert!(
        matches!(
            outputs.as_slice(),
            [Output::Reply { reply: Reply::Refused(refusal), .. }] if refusal.code == RefusalCode::NotAStatement
        ),
        "{outputs:?}"
    );
}

#[test]
fn a_revocation_that_takes_a_key_out_of_trust_is_recorded_as_settled() {
    let identity = key(9);
    let node = envelope::author_key(&key(3));
    let mut engine = engine(1, &[], config());
    engine.handle(NOW, Input::MembersChanged(vec![listed_identity(&identity)]));
    let certificate = statement(
        &identity,
        Body::NodeCert(NodeCert {
            node_key: node,
            valid_from: NOW - HOUR_MS,
            valid_until: NOW + HOUR_MS,
            addresses: Vec::new(),
        }),
    );
    gossip(&mut engine, NOW, certificate);
    let revocation = statement(
        &identity,
        Body::Revocation(solidarity_proto::payload::Revocation {
            reason: "seized".into(),
            key: Some(node),
            compromised_since: Some(NOW - HOUR_MS),
        }),
    );
    let (_, outputs) = gossip(&mut engine, NOW, revocation);
    assert!(!engine.trusts(&node));
    let settled = outputs.iter().find_map(|output| match output {
        Output::RecordSettled { ids } => Some(ids.clone()),
        _ => None,
    });
    assert_eq!(settled.map(|ids| ids.len()), Some(1), "{outputs:?}");
}
