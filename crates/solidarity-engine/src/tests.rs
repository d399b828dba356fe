//! Engines driven over an in-memory fake store: every decision the daemon used to make
//! in its actor, without IO.

use std::cell::RefCell;
use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use solidarity_control::OverBudget;
use solidarity_proto::payload::{Alert, AlertCategory, Body, Severity};
use solidarity_proto::{AuthorKey, FederationId, MessageId, Payload, envelope};

use crate::budget::Limits;
use crate::engine::{Engine, EngineConfig, Entropy, Loaded, OwnCanary};
use crate::events::{
    Acceptance, AnswerToken, Command, CommandToken, GossipToken, Input, ListedKey, NewMessage,
    Notice, Output, Reply, WriteOutcome,
};
use crate::store_read::{ChainEnvelope, ReadError, StoreRead};

const FED: FederationId = FederationId([9; 32]);
const NOW: u64 = 1_800_000_000_000;

/// Applies writes at once, like the simulator.
#[derive(Default)]
struct FakeStore {
    messages: RefCell<BTreeMap<MessageId, NewMessage>>,
    chains: RefCell<BTreeMap<(AuthorKey, u64), MessageId>>,
}

impl FakeStore {
    fn insert(&self, message: NewMessage) -> WriteOutcome {
        if self.messages.borrow().contains_key(&message.id) {
            return WriteOutcome::AlreadyStored;
        }
        if message.seq > 0 {
            let mut chains = self.chains.borrow_mut();
            if chains.contains_key(&(message.author, message.seq)) {
                return WriteOutcome::SeqConflict;
            }
            chains.insert((message.author, message.seq), message.id);
        }
        self.messages.borrow_mut().insert(message.id, message);
        WriteOutcome::Stored
    }
}

impl StoreRead for FakeStore {
    fn contains(&self, id: &MessageId) -> Result<bool, ReadError> {
        Ok(self.messages.borrow().contains_key(id))
    }
    fn envelope(&self, id: &MessageId) -> Result<Option<Vec<u8>>, ReadError> {
        Ok(self.messages.borrow().get(id).map(|m| m.envelope.clone()))
    }
    fn author_and_kind(&self, id: &MessageId) -> Result<Option<(AuthorKey, String)>, ReadError> {
        Ok(self
            .messages
            .borrow()
            .get(id)
            .map(|m| (m.author, m.kind.clone())))
    }
    fn id_at(&self, author: &AuthorKey, seq: u64) -> Result<Option<MessageId>, ReadError> {
        Ok(self.chains.borrow().get(&(*author, seq)).copied())
    }
    fn watermark(&self, author: &AuthorKey) -> Result<u64, ReadError> {
        let chains = self.chains.borrow();
        Ok((1..)
            .take_while(|seq| chains.contains_key(&(*author, *seq)))
            .last()
            .unwrap_or(0))
    }
    fn chain_head(&self, author: &AuthorKey) -> Result<Option<(u64, MessageId)>, ReadError> {
        Ok(self
            .chains
            .borrow()
            .range((*author, 1)..=(*author, u64::MAX))
            .next_back()
            .map(|((_, seq), id)| (*seq, *id)))
    }
    fn author_range(
        &self,
        author: &AuthorKey,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<ChainEnvelope>, ReadError> {
        let messages = self.messages.borrow();
        Ok(self
            .chains
            .borrow()
            .range((*author, from_seq)..=(*author, u64::MAX))
            .take(limit)
            .map(|((_, seq), id)| ChainEnvelope {
                seq: *seq,
                envelope: messages[id].envelope.clone(),
            })
            .collect())
    }
    fn stored_bytes(&self, author: &AuthorKey) -> Result<u64, ReadError> {
        Ok(self
            .messages
            .borrow()
            .values()
            .filter(|m| m.author == *author)
            .map(|m| m.envelope.len() as u64)
            .sum())
    }
    fn fork_evidence(&self, _author: &AuthorKey) -> Result<Vec<Vec<u8>>, ReadError> {
        Ok(Vec::new())
    }
}

type TestEngine = Engine<u8, FakeStore>;

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn config() -> EngineConfig {
    EngineConfig {
        federation: FED,
        limits: Limits {
            messages_per_minute: 0,
            bytes_per_minute: 0,
            stored_bytes: 0,
        },
        statements_per_signer: 4,
        vouch_threshold: 0,
        sync_interval_ms: 30_000,
        flush_interval_ms: 1_000,
        own_chain_recorded: Some((0, None)),
        fresh_chain: false,
        own_chain_restoring: false,
        seed: 7,
        canary: OwnCanary {
            statement: "all is well".to_owned(),
            interval_ms: 0,
        },
        expiry_interval_ms: 60_000,
    }
}

/// Canary tokens of a test: counted up, never random.
fn entropy() -> Entropy {
    let mut next = 0u8;
    Box::new(move || {
        next = next.wrapping_add(1);
        [next; 32]
    })
}

mod commands;
mod import;
mod moved_paths;

/// An engine of node `n` whose admin listed nodes `members`.
fn engine(n: u8, members: &[u8], config: EngineConfig) -> TestEngine {
    engine_loaded(n, members, config, Loaded::default())
}

/// As [`engine`], from what a store held at start.
fn engine_loaded(n: u8, members: &[u8], config: EngineConfig, loaded: Loaded) -> TestEngine {
    let mut engine = Engine::new(config, key(n), FakeStore::default(), loaded, entropy());
    let list = members
        .iter()
        .map(|m| ListedKey {
            key: envelope::author_key(&key(*m)),
            identity: false,
            addresses: Vec::new(),
            duress_commitment: None,
        })
        .collect();
    engine.handle(NOW, Input::MembersChanged(list));
    engine
}

fn alert(summary: &str) -> Body {
    Body::Alert(Alert {
        category: AlertCategory::Seizure,
        legal_type: None,
        severity: Severity::Critical,
        subject: "a.example".into(),
        summary: summary.into(),
        details: None,
        jurisdictions: vec![],
        authority: None,
        legal_basis: None,
        event_date: None,
        seized: None,
        services: vec![],
        domains: vec![],
        upstream: None,
        references: vec![],
    })
}

/// Carries out writes at once and feeds their completions back; returns every other
/// output, in order.
fn settle(engine: &mut TestEngine, now: u64, outputs: Vec<Output<u8>>) -> Vec<Output<u8>> {
    let mut rest = Vec::new();
    let mut queue: std::collections::VecDeque<_> = outputs.into();
    while let Some(output) = queue.pop_front() {
        match output {
            Output::Write { write, message, .. } => {
                let outcome = engine.store().insert(message);
                queue.extend(engine.handle(
                    now,
                    Input::WriteDone {
                        write,
                        result: Ok(outcome),
                    },
                ));
            }
            other => rest.push(other),
        }
    }
    rest
}

/// Signs `body` on `engine` and returns the published envelope.
fn sign(engine: &mut TestEngine, now: u64, body: Body) -> Vec<u8> {
    let token = CommandToken(1);
    let outputs = engine.handle(
        now,
        Input::Command {
            token,
            command: Command::Sign {
                body: Box::new(body),
                expires_at: None,
            },
        },
    );
    let outputs = settle(engine, now, outputs);
    let published = outputs.iter().find_map(|output| match output {
        Output::Publish { envelope } => Some(envelope.clone()),
        _ => None,
    });
    assert!(
        outputs.iter().any(|output| matches!(
            output,
            Output::Reply {
                reply: Reply::Signed { .. },
                ..
            }
        )),
        "{outputs:?}"
    );
    published.expect("published")
}

fn gossip(engine: &mut TestEngine, now: u64, bytes: Vec<u8>) -> (Acceptance, Vec<Output<u8>>) {
    let outputs = engine.handle(
        now,
        Input::Gossip {
            peer: 0,
            token: GossipToken(5),
            bytes,
        },
    );
    let Some(Output::Verdict { token, acceptance }) = outputs.first().cloned() else {
        panic!("the verdict comes first: {outputs:?}");
    };
    assert_eq!(token, GossipToken(5));
    (acceptance, settle(engine, now, outputs[1..].to_vec()))
}

/// The admin's list entry of a collective identity key.
fn listed_identity(identity: &SigningKey) -> ListedKey {
    ListedKey {
        key: envelope::author_key(identity),
        identity: true,
        addresses: Vec::new(),
        duress_commitment: None,
    }
}

/// A statement (seq 0) of `signer`.
fn statement(signer: &SigningKey, body: Body) -> Vec<u8> {
    let payload = Payload {
        fed: FED,
        seq: 0,
        prev: None,
        created_at: NOW - 1_000,
        expires_at: None,
        kind: body.kind().expect("known kind").to_owned(),
        body: body.encode(),
    };
    envelope::sign(signer, &payload).bytes
}

fn payload_of(bytes: &[u8]) -> Payload {
    let decoded = solidarity_proto::Envelope::decode(bytes).expect("envelope");
    Payload::decode(&decoded.payload).expect("payload")
}

#[test]
fn signing_assigns_seq_and_prev_records_the_head_before_publishing_and_replies() {
    let mut a = engine(1, &[2], config());
    let first = sign(&mut a, NOW, alert("one"));
    let second = sign(&mut a, NOW + 1, alert("two"));
    let (first, second) = (payload_of(&first), payload_of(&second));
    assert_eq!((first.seq, first.prev), (1, None));
    assert_eq!(second.seq, 2);
    assert_eq!(second.prev, a.store().id_at(&a.me(), 1).expect("read"));
    let outputs = a.handle(
        NOW + 2,
        Input::Command {
            token: CommandToken(3),
            command: Command::Sign {
                body: Box::new(alert("three")),
                expires_at: None,
            },
        },
    );
    let Some(Output::Write { durable, .. }) = outputs.first() else {
        panic!("{outputs:?}");
    };
    assert!(
        durable,
        "own messages are on disk before anyone hears of them"
    );
    let outputs = settle(&mut a, NOW + 2, outputs);
    let order: Vec<&str> = outputs
        .iter()
        .filter_map(|output| match output {
            Output::RecordOwnHead { .. } => Some("record"),
            Output::Publish { .. } => Some("publish"),
            Output::Reply { .. } => Some("reply"),
            _ => None,
        })
        .collect();
    assert_eq!(order, ["record", "publish", "reply"]);
}

#[test]
fn a_member_message_is_accepted_then_written_and_a_stranger_is_ignored() {
    let mut a = engine(1, &[2], config());
    let mut b = engine(2, &[1], config());
    let mut stranger = engine(3, &[2], config());
    let envelope = sign(&mut a, NOW, alert("raid"));
    let (acceptance, outputs) = gossip(&mut b, NOW, envelope.clone());
    assert_eq!(acceptance, Acceptance::Accept);
    assert!(
        outputs
            .iter()
            .any(|output| matches!(output, Output::Notice(Notice::AlertReceived { .. })))
    );
    assert!(b.store().contains(&payload_id(&envelope)).expect("read"));
    // Again: a duplicate, ignored without a write.
    let (again, outputs) = gossip(&mut b, NOW, envelope);
    assert_eq!(again, Acceptance::Ignore);
    assert!(outputs.is_empty());
    let from_stranger = sign(&mut stranger, NOW, alert("not a member"));
    let (acceptance, outputs) = gossip(&mut b, NOW, from_stranger);
    assert_eq!(acceptance, Acceptance::Ignore);
    assert!(outputs.is_empty());
}

fn payload_id(bytes: &[u8]) -> MessageId {
    envelope::message_id_of_envelope_bytes(bytes).expect("id")
}

#[test]
fn the_own_chain_wait_refuses_to_sign_until_a_sync_brings_the_chain_back() {
    let mut waiting = config();
    waiting.own_chain_recorded = Some((3, Some(MessageId([4; 32]))));
    let mut a = engine(1, &[2], waiting);
    assert!(a.paused().is_some());
    let outputs = a.handle(
        NOW,
        Input::Command {
            token: CommandToken(1),
            command: Command::Sign {
                body: Box::new(alert("x")),
                expires_at: None,
            },
        },
    );
    assert!(matches!(
        outputs.as_slice(),
        [Output::Reply { reply: Reply::Refused(refusal), .. }]
            if refusal.message.contains("nothing was signed")
    ));
}

#[test]
fn a_fork_takes_the_key_out_of_trust_keeps_the_evidence_and_still_relays_it() {
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
    let (first, _) = gossip(&mut b, NOW, forged("one"));
    assert_eq!(first, Acceptance::Accept);
    let (second, outputs) = gossip(&mut b, NOW, forged("other"));
    assert_eq!(second, Acceptance::Accept, "the evidence is relayed");
    let a = envelope::author_key(&signer);
    assert!(
        outputs.iter().any(
            |o| matches!(o, Output::Notice(Notice::Fork { key, from_seq: 1, .. }) if *key == a)
        )
    );
    assert!(
        outputs
            .iter()
            .any(|o| matches!(o, Output::RecordFork { .. }))
    );
    assert!(
        outputs
            .iter()
            .any(|o| matches!(o, Output::Disallow { key } if *key == a))
    );
    assert!(!b.trusts(&a));
}

#[test]
fn a_flooding_member_is_held_to_its_message_rate_and_the_admin_told_once() {
    let mut limited = config();
    limited.limits.messages_per_minute = 3;
    let mut a = engine(1, &[2], config());
    let mut b = engine(2, &[1], limited);
    let mut verdicts = Vec::new();
    let mut notices = 0;
    for n in 0..6 {
        let envelope = sign(&mut a, NOW + n, alert(&format!("flood {n}")));
        let (acceptance, outputs) = gossip(&mut b, NOW + n, envelope);
        verdicts.push(acceptance);
        notices += outputs
            .iter()
            .filter(|o| {
                matches!(
                    o,
                    Output::Notice(Notice::QuotaHit {
                        why: OverBudget::MessageRate,
                        ..
                    })
                )
            })
            .count();
    }
    assert_eq!(
        verdicts
            .iter()
            .filter(|v| **v == Acceptance::Accept)
            .count(),
        3
    );
    assert_eq!(
        verdicts
            .iter()
            .filter(|v| **v == Acceptance::Ignore)
            .count(),
        3
    );
    assert_eq!(notices, 1);
}

/// Runs one sync session of `requester` with `responder` (peer ids 1 and 2) to its end;
/// returns the number of requests.
fn sync_session(requester: &mut TestEngine, responder: &mut TestEngine, now: u64) -> usize {
    let mut outputs = requester.handle(
        now,
        Input::PeerConnected {
            peer: 1,
            key: responder.me(),
        },
    );
    let mut requests = 0;
    loop {
        let Some(position) = outputs
            .iter()
            .position(|o| matches!(o, Output::SendSync { .. }))
        else {
            return requests;
        };
        let Output::SendSync { round, request, .. } = outputs.remove(position) else {
            unreachable!("found above");
        };
        requests += 1;
        let answer = responder.handle(
            now,
            Input::SyncRequest {
                peer: 2,
                token: AnswerToken(requests as u64),
                bytes: request,
            },
        );
        let [Output::AnswerSync { response, .. }] = answer.as_slice() else {
            panic!("{answer:?}");
        };
        let page = requester.handle(
            now,
            Input::SyncPage {
                peer: 1,
                round,
                result: Ok(response.clone()),
                checked: Vec::new(),
            },
        );
        outputs = settle(requester, now, page);
    }
}

#[test]
fn sync_runs_the_statement_phase_then_the_chains_and_brings_what_was_missed() {
    let mut a = engine(1, &[2], config());
    let mut b = engine(2, &[1], config());
    for n in 0..5 {
        sign(&mut a, NOW + n, alert(&format!("missed {n}")));
    }
    let requests = sync_session(&mut b, &mut a, NOW + 10);
    assert_eq!(requests, 2, "one statement round, one chain round");
    assert_eq!(b.store().watermark(&a.me()).expect("read"), 5);
}

#[test]
fn a_requester_that_lost_its_store_gets_its_own_chain_back_and_signs_after_it() {
    let mut a = engine(1, &[2], config());
    let mut b = engine(2, &[1], config());
    for n in 0..3 {
        let envelope = sign(&mut a, NOW + n, alert(&format!("mine {n}")));
        gossip(&mut b, NOW + n, envelope);
    }
    // A loses its store but kept its own-chain record.
    let mut recorded = config();
    recorded.own_chain_recorded = Some((3, a.store().id_at(&a.me(), 3).expect("read")));
    let mut restored = engine(1, &[2], recorded);
    assert!(restored.paused().is_some());
    sync_session(&mut restored, &mut b, NOW + 10);
    assert!(restored.paused().is_none());
    let next = sign(&mut restored, NOW + 11, alert("after the loss"));
    assert_eq!(payload_of(&next).seq, 4, "continues its chain, no fork");
}

#[test]
fn a_member_gone_silent_is_noticed_once_past_its_grace_and_again_when_back() {
    use solidarity_control::CanaryState;
    use solidarity_proto::payload::{Canary, CanaryCode};
    let rules = crate::canary::CanaryRules {
        max_interval_ms: 60_000,
        grace_ms: 10_000,
    };
    let mut a = engine(1, &[2], config());
    let mut b = engine(2, &[1], config()).with_canary_rules(rules);
    let canary = || {
        Body::Canary(Canary {
            statement: "no warrant".into(),
            codes: CanaryCode::ALL.to_vec(),
            interval_secs: 3_600,
            token: vec![0; 32],
        })
    };
    let check = |b: &mut TestEngine, now| -> Vec<CanaryState> {
        b.handle(now, Input::Timer(crate::events::Timer::CanaryCheck))
            .into_iter()
            .filter_map(|o| match o {
                Output::Notice(Notice::Canary { state, .. }) => Some(state),
                _ => None,
            })
            .collect()
    };
    let first = sign(&mut a, NOW, canary());
    gossip(&mut b, NOW, first);
    assert!(
        check(&mut b, NOW + 70_000).is_empty(),
        "within the capped interval and grace"
    );
    assert_eq!(check(&mut b, NOW + 70_001), [CanaryState::Silent]);
    assert!(check(&mut b, NOW + 80_000).is_empty(), "reported once");
    let back = sign(&mut a, NOW + 90_000, canary());
    gossip(&mut b, NOW + 90_000, back);
    assert_eq!(check(&mut b, NOW + 90_001), [CanaryState::Ok]);
    assert_eq!(
        b.canary(&a.me(), NOW + 90_001).map(|view| view.last_at),
        Some(NOW + 90_000)
    );
}
