//! `Command::Import`: each envelope judged like a received one, one outcome per envelope
//! once every write is applied; the rate budgets do not apply but the stored-bytes cap
//! does; an imported own chain leaves signing waiting for a sync.

use solidarity_control::ImportOutcome;

use super::*;
use crate::events::ImportEnvelope;

const STORED: ImportOutcome = ImportOutcome::Stored;
const HELD: ImportOutcome = ImportOutcome::Held;

fn import_command(token: CommandToken, envelopes: &[Vec<u8>]) -> Input<u8> {
    let command = Command::Import {
        envelopes: envelopes
            .iter()
            .map(|bytes| ImportEnvelope {
                bytes: bytes.clone(),
                kept: false,
                fork_group: None,
            })
            .collect(),
    };
    Input::Command { token, command }
}

fn import(engine: &mut TestEngine, envelopes: &[Vec<u8>]) -> (Vec<Output<u8>>, Vec<ImportOutcome>) {
    let token = CommandToken(9);
    let outputs = engine.handle(NOW, import_command(token, envelopes));
    let writes = outputs
        .iter()
        .filter(|output| matches!(output, Output::Write { durable: false, .. }))
        .count();
    let replied_early = outputs
        .iter()
        .any(|output| matches!(output, Output::Reply { .. }));
    assert!(
        writes == 0 || !replied_early,
        "no answer before the writes complete: {outputs:?}"
    );
    let outputs = settle(engine, NOW, outputs);
    let outcomes = outputs
        .iter()
        .find_map(|output| match output {
            Output::Reply {
                token: replied,
                reply: Reply::Imported(outcomes),
            } if *replied == token => Some(outcomes.clone()),
            _ => None,
        })
        .expect("answered");
    (outputs, outcomes)
}

fn alerts_of(n: u8, count: usize) -> Vec<Vec<u8>> {
    let mut author = engine(n, &[1], config());
    (0..count)
        .map(|index| sign(&mut author, NOW - 10, alert(&format!("alert {index}"))))
        .collect()
}

#[test]
fn each_envelope_gets_its_outcome_and_only_valid_ones_are_stored_and_again_nothing_changes() {
    // One message a minute: an import is not held to the rates.
    let limited = EngineConfig {
        limits: Limits {
            messages_per_minute: 1,
            bytes_per_minute: 100,
            stored_bytes: 0,
        },
        ..config()
    };
    let mut a = engine(1, &[2], limited);
    let mut envelopes = alerts_of(2, 3);
    // A changed payload byte (a changed signature alone names a held id: "held").
    let mut tampered = envelopes[0].clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 1;
    envelopes.push(tampered);
    envelopes.extend(alerts_of(3, 1));
    envelopes.push(b"not an envelope".to_vec());

    let (_, outcomes) = import(&mut a, &envelopes);
    assert_eq!(&outcomes[..3], &[STORED; 3]);
    assert!(
        matches!(&outcomes[3], ImportOutcome::Rejected { reason } if reason.contains("signature")),
        "{:?}",
        outcomes[3]
    );
    assert!(
        matches!(&outcomes[4], ImportOutcome::Ignored { retry: true, .. }),
        "a signer not (yet) trusted may be after the rest: {:?}",
        outcomes[4]
    );
    assert!(matches!(&outcomes[5], ImportOutcome::Rejected { .. }));
    for (index, envelope) in envelopes.iter().enumerate() {
        let id = solidarity_proto::Envelope::decode(envelope)
            .map(|decoded| decoded.id())
            .ok();
        let stored = id.is_some_and(|id| a.store().contains(&id).expect("read"));
        assert_eq!(stored, index < 3, "envelope {index}");
    }

    let (_, again) = import(&mut a, &envelopes[..3]);
    assert_eq!(again, vec![HELD; 3], "idempotent");
    let (outputs, none) = import(&mut a, &[]);
    assert!(none.is_empty() && outputs.len() == 1, "{outputs:?}");
}

#[test]
fn the_stored_bytes_cap_holds_for_an_import() {
    let envelopes = alerts_of(2, 3);
    let two = (envelopes[0].len() + envelopes[1].len()) as u64;
    let capped = EngineConfig {
        limits: Limits {
            messages_per_minute: 0,
            bytes_per_minute: 0,
            stored_bytes: two,
        },
        ..config()
    };
    let mut a = engine(1, &[2], capped);
    let (_, outcomes) = import(&mut a, &envelopes);
    assert_eq!(&outcomes[..2], &[STORED; 2]);
    assert!(
        matches!(&outcomes[2], ImportOutcome::Ignored { retry: false, reason } if reason.contains("member_stored_mib")),
        "{:?}",
        outcomes[2]
    );
}

#[test]
fn an_imported_own_chain_is_recorded_and_signing_waits_for_a_sync() {
    let own = alerts_of(1, 2);
    // The store was lost; the record says seq 2 was signed.
    let lost = EngineConfig {
        own_chain_recorded: Some((2, None)),
        ..config()
    };
    let mut a = engine(1, &[2], lost);
    assert!(a.paused().is_some());
    let outputs = a.handle(NOW, import_command(CommandToken(9), &own));
    let restoring = outputs
        .iter()
        .position(|output| matches!(output, Output::RecordRestoring { restoring: true }));
    let first_write = outputs
        .iter()
        .position(|output| matches!(output, Output::Write { .. }));
    assert!(
        restoring.is_some() && restoring < first_write,
        "recorded before the writes: {outputs:?}"
    );
    let outputs = settle(&mut a, NOW, outputs);
    assert!(outputs.iter().any(|output| matches!(
        output,
        Output::Reply { reply: Reply::Imported(outcomes), .. } if outcomes == &[STORED; 2]
    )));
    let why = a
        .paused()
        .expect("still waiting, though the store holds the recorded head");
    assert!(why.contains("imported from an export"), "{why}");
}

/// Two envelopes of `signer` at one seq: a fork.
fn forked(signer: u8, expires_at: Option<u64>) -> (Vec<u8>, Vec<u8>) {
    let signed = |summary: &str, expires_at| {
        let payload = Payload {
            fed: FED,
            seq: 5,
            prev: Some(MessageId([9; 32])),
            created_at: NOW - 10,
            expires_at,
            kind: "alert".into(),
            body: alert(summary).encode(),
        };
        envelope::sign(&key(signer), &payload).bytes
    };
    (signed("first", expires_at), signed("second", None))
}

fn evidence(token: CommandToken, group: &[Vec<u8>]) -> Input<u8> {
    let command = Command::Import {
        envelopes: group
            .iter()
            .map(|bytes| ImportEnvelope {
                bytes: bytes.clone(),
                kept: false,
                fork_group: Some(1),
            })
            .collect(),
    };
    Input::Command { token, command }
}

#[test]
fn fork_evidence_marks_its_key_only_when_it_proves_a_fork_and_never_enters_the_chain() {
    let member = envelope::author_key(&key(2));
    // Both halves, the first expired since (a fork stays proven).
    let (first, second) = forked(2, Some(NOW - 1));
    let mut a = engine(1, &[2], config());
    let outputs = a.handle(
        NOW,
        evidence(CommandToken(3), &[first.clone(), second.clone()]),
    );
    assert!(
        !outputs
            .iter()
            .any(|output| matches!(output, Output::Write { .. })),
        "evidence is never written into the chain: {outputs:?}"
    );
    let recorded = outputs
        .iter()
        .filter(|output| matches!(output, Output::RecordFork { evidence, .. } if evidence.author == member))
        .count();
    assert_eq!(recorded, 2, "both halves kept as evidence: {outputs:?}");
    assert!(a.compromised().contains_key(&member));
    assert!(outputs.iter().any(|output| matches!(
        output,
        Output::Reply { reply: Reply::Imported(outcomes), .. }
            if outcomes == &[ImportOutcome::ForkEvidence, ImportOutcome::ForkEvidence]
    )));

    // One half alone proves nothing: not stored, the key stays trusted.
    let mut b = engine(1, &[2], config());
    let outputs = b.handle(NOW, evidence(CommandToken(3), &[second]));
    assert!(
        !outputs
            .iter()
            .any(|output| matches!(output, Output::Write { .. } | Output::RecordFork { .. }))
    );
    assert!(!b.compromised().contains_key(&member));
    assert!(outputs.iter().any(|output| matches!(
        output,
        Output::Reply { reply: Reply::Imported(outcomes), .. }
            if matches!(&outcomes[..], [ImportOutcome::Ignored { retry: false, .. }])
    )));
}

#[test]
fn a_kept_canary_comes_back_after_its_expiry_and_only_a_canary_is_kept() {
    let expired_canary = {
        let payload = Payload {
            fed: FED,
            seq: 1,
            prev: None,
            created_at: NOW - 10_000,
            expires_at: Some(NOW - 1_000),
            kind: solidarity_proto::payload::KIND_CANARY.into(),
            body: Body::Canary(solidarity_proto::payload::Canary {
                statement: "no warrant".into(),
                codes: vec![],
                interval_secs: 2,
                token: vec![1; 32],
            })
            .encode(),
        };
        envelope::sign(&key(2), &payload).bytes
    };
    let alert = alerts_of(2, 1).remove(0);
    let mut a = engine(1, &[2], config());
    let command = |kept: bool, bytes: &[Vec<u8>]| Command::Import {
        envelopes: bytes
            .iter()
            .map(|bytes| ImportEnvelope {
                bytes: bytes.clone(),
                kept,
                fork_group: None,
            })
            .collect(),
    };
    let run = |a: &mut TestEngine, command| {
        let outputs = a.handle(
            NOW,
            Input::Command {
                token: CommandToken(4),
                command,
            },
        );
        settle(a, NOW, outputs)
            .into_iter()
            .find_map(|output| match output {
                Output::Reply {
                    reply: Reply::Imported(outcomes),
                    ..
                } => Some(outcomes),
                _ => None,
            })
            .expect("answered")
    };
    assert_eq!(
        run(
            &mut a,
            command(false, std::slice::from_ref(&expired_canary))
        ),
        [ImportOutcome::Expired],
        "as a message, an expired canary is not taken"
    );
    assert_eq!(run(&mut a, command(true, &[expired_canary])), [STORED]);
    assert!(matches!(
        &run(&mut a, command(true, &[alert]))[..],
        [ImportOutcome::Rejected { .. }]
    ));
}

#[test]
fn crafted_fork_evidence_never_marks_an_honest_key() {
    let honest = envelope::author_key(&key(2));
    let (first, second) = forked(2, None);
    // Signatures broken: no proof, whatever the payloads say (the key need not be
    // trusted for the check to run).
    let broken = |mut bytes: Vec<u8>| {
        let last = bytes.len() - 2;
        bytes[last] ^= 0x40;
        bytes
    };
    for members in [&[2][..], &[][..]] {
        let mut a = engine(1, members, config());
        let outputs = a.handle(
            NOW,
            evidence(
                CommandToken(3),
                &[broken(first.clone()), broken(second.clone())],
            ),
        );
        assert!(!a.compromised().contains_key(&honest), "{outputs:?}");
        assert!(
            !outputs
                .iter()
                .any(|output| matches!(output, Output::RecordFork { .. }))
        );
    }
    // A real fork of another key in the line of the honest key's message marks nobody:
    // evidence of a line is of one key.
    let (third_first, third_second) = forked(3, None);
    let mut a = engine(1, &[2, 3], config());
    let honest_message = alerts_of(2, 1).remove(0);
    let outputs = a.handle(
        NOW,
        evidence(
            CommandToken(3),
            &[honest_message, third_first, third_second],
        ),
    );
    assert!(!a.compromised().contains_key(&honest), "{outputs:?}");
    assert!(!outputs.iter().any(|output| matches!(
        output,
        Output::RecordFork { evidence, .. } if evidence.author == honest
    )));
}
