//! Vectors of a member's canary state (SPEC §13.3): a canary history in arrival order, the
//! receiver's settings and duress commitment, and `now` → the expected state. The state is
//! computed here by [`state`], written from the text of §13.3 alone.

use serde_json::{Value, json};
use solidarity_proto::envelope::{self, SignedMessage};
use solidarity_proto::payload::{self, Canary, CanaryCode};
use solidarity_proto::{AuthorKey, Body, MessageId, Payload};

use super::{CANARY_INTERVAL_SECS, CREATED_MS, Generator, routine_canary};

/// The receiver's settings of the vectors: the reference defaults.
const GRACE_SECS: u64 = 3600;
const MAX_INTERVAL_SECS: u64 = 604_800;
/// A duress key of key1 for these vectors (no passphrase: only its commitment matters).
const DURESS_KEY: [u8; 32] = [0x44; 32];

/// A canary as the history lists it.
struct Seen {
    seq: u64,
    created_at: u64,
    canary: Canary,
}

/// The state SPEC §13.3 derives, or `None` when no canary was accepted.
fn state(
    member: &AuthorKey,
    history: &[Seen],
    commitment: Option<&[u8; 32]>,
    now: u64,
) -> Option<Value> {
    // The first canary accepted at each seq counts; keep the two highest seqs.
    let mut kept: Vec<&Seen> = Vec::new();
    for seen in history {
        if !kept.iter().any(|held| held.seq == seen.seq) {
            kept.push(seen);
        }
    }
    kept.sort_by_key(|seen| std::cmp::Reverse(seen.seq));
    kept.truncate(2);
    let latest = kept.first()?;
    let previous = kept.get(1);
    let due_at = latest.created_at.saturating_add(
        latest
            .canary
            .interval_secs
            .min(MAX_INTERVAL_SECS)
            .saturating_mul(1000),
    );
    let silent_at = due_at.saturating_add(GRACE_SECS * 1000);
    let withdrawn: Vec<CanaryCode> = CanaryCode::ALL
        .into_iter()
        .filter(|code| !latest.canary.codes.contains(code))
        .collect();
    let duress = commitment.is_some_and(|commitment| {
        kept.iter()
            .any(|seen| payload::is_duress_token(commitment, member, &seen.canary.token))
    });
    let state = if duress {
        "duress"
    } else if now > silent_at {
        "silent"
    } else if !withdrawn.is_empty() {
        "changed"
    } else {
        "ok"
    };
    Some(json!({
        "latest_seq": latest.seq,
        "previous_seq": previous.map(|seen| seen.seq),
        "due_at": due_at,
        "silent_at": silent_at,
        "withdrawn": withdrawn,
        "state": state,
    }))
}

impl Generator {
    /// key1's canary at `seq`, created `hours` after [`CREATED_MS`].
    fn canary_at(&self, seq: u64, hours: u64, canary: Canary) -> (SignedMessage, Seen) {
        let created_at = CREATED_MS + hours * 3_600_000;
        let payload = Payload {
            created_at,
            expires_at: Some(created_at.saturating_add(canary.interval_secs.saturating_mul(4000))),
            ..self.header(
                seq,
                (seq > 1).then_some(MessageId([seq as u8; 32])),
                &Body::Canary(canary.clone()),
            )
        };
        (
            envelope::sign(&self.key1, &payload),
            Seen {
                seq,
                created_at,
                canary,
            },
        )
    }

    fn push_canary_state(
        &mut self,
        name: &str,
        description: &str,
        history: Vec<(SignedMessage, Seen)>,
        commitment: Option<[u8; 32]>,
        now: u64,
    ) {
        let member = envelope::author_key(&self.key1);
        let seen: Vec<Seen> = history
            .iter()
            .map(|(_, seen)| Seen {
                seq: seen.seq,
                created_at: seen.created_at,
                canary: seen.canary.clone(),
            })
            .collect();
        let expected = state(&member, &seen, commitment.as_ref(), now);
        self.canary_states.push(json!({
            "name": name,
            "description": description,
            "settings": {
                "canary_grace_secs": GRACE_SECS,
                "canary_max_interval_secs": MAX_INTERVAL_SECS,
            },
            "member": member.to_hex(),
            "commitment": commitment.map(hex::encode),
            "history": history.iter().map(|(message, seen)| json!({
                "envelope": hex::encode(&message.bytes),
                "id": message.id.to_hex(),
                "seq": seen.seq,
                "created_at": seen.created_at,
                "interval_secs": seen.canary.interval_secs,
                "codes": seen.canary.codes,
                "token": hex::encode(&seen.canary.token),
            })).collect::<Vec<_>>(),
            "now_ms": now,
            "expected": expected,
        }));
    }

    #[allow(clippy::too_many_lines, reason = "one vector after the other")]
    pub(crate) fn build_canary_states(&mut self) {
        let member = envelope::author_key(&self.key1);
        let commitment = payload::duress_commitment(&DURESS_KEY);
        let interval_ms = CANARY_INTERVAL_SECS * 1000;
        let routine = |byte: u8| Canary {
            token: vec![byte; 32],
            ..routine_canary()
        };
        let duress = |nonce: u8| Canary {
            token: payload::duress_token(&commitment, &member, [nonce; 16]).to_vec(),
            ..routine_canary()
        };
        let withdrawn = Canary {
            codes: CanaryCode::ALL
                .into_iter()
                .filter(|code| !matches!(code, CanaryCode::Warrant | CanaryCode::Gag))
                .collect(),
            ..routine(0x61)
        };
        let (first, second) = (
            self.canary_at(1, 0, routine(0x51)),
            self.canary_at(2, 6, routine(0x52)),
        );
        let second_at = second.1.created_at;
        let silent_at = second_at + interval_ms + 3_600_000;
        self.push_canary_state(
            "canary_state_ok",
            "Two routine canaries six hours apart, all ten codes stated; now is within the interval of the latest.",
            vec![self.canary_at(1, 0, routine(0x51)), self.canary_at(2, 6, routine(0x52))],
            Some(commitment),
            second_at + 60_000,
        );
        self.push_canary_state(
            "canary_state_silent_boundary",
            "now = silent_at = due_at + grace exactly: not yet silent (the rule is now > silent_at).",
            vec![self.canary_at(1, 0, routine(0x51)), self.canary_at(2, 6, routine(0x52))],
            None,
            silent_at,
        );
        self.push_canary_state(
            "canary_state_silent",
            "now = silent_at + 1 ms: the latest canary is overdue by more than the grace period.",
            vec![first, second],
            None,
            silent_at + 1,
        );
        self.push_canary_state(
            "canary_state_changed",
            "The latest canary withdraws warrant and gag: changed, with the withdrawn codes in table order.",
            vec![self.canary_at(1, 0, routine(0x51)), self.canary_at(2, 6, withdrawn.clone())],
            Some(commitment),
            second_at + 60_000,
        );
        self.push_canary_state(
            "canary_state_silent_over_changed",
            "The latest canary withdraws codes and is overdue: silent comes before changed.",
            vec![self.canary_at(2, 6, withdrawn.clone())],
            None,
            silent_at + 1,
        );
        self.push_canary_state(
            "canary_state_duress_latest",
            "The latest canary carries a duress token under the commitment the receiver holds: duress, although it is also overdue.",
            vec![self.canary_at(1, 0, routine(0x51)), self.canary_at(2, 6, duress(1))],
            Some(commitment),
            silent_at + 1,
        );
        self.push_canary_state(
            "canary_state_duress_previous",
            "The duress canary is P, the latest L is routine: still duress (it stays shown through the next canary).",
            vec![self.canary_at(1, 0, duress(1)), self.canary_at(2, 6, routine(0x52))],
            Some(commitment),
            second_at + 60_000,
        );
        self.push_canary_state(
            "canary_state_duress_two_back",
            "The duress canary is seq 1, followed by routine seq 2 and 3: only L and P count, so ok.",
            vec![
                self.canary_at(1, 0, duress(1)),
                self.canary_at(2, 6, routine(0x52)),
                self.canary_at(3, 12, routine(0x53)),
            ],
            Some(commitment),
            second_at + 6 * 3_600_000 + 60_000,
        );
        self.push_canary_state(
            "canary_state_duress_unknown_commitment",
            "A duress token, but the receiver holds no commitment for the member: ok.",
            vec![
                self.canary_at(1, 0, routine(0x51)),
                self.canary_at(2, 6, duress(1)),
            ],
            None,
            second_at + 60_000,
        );
        self.push_canary_state(
            "canary_state_legacy_duress",
            "The latest token is the duress key itself (the form of senders before the tagged token, §8.7.1): duress.",
            vec![self.canary_at(2, 6, Canary {
                token: DURESS_KEY.to_vec(),
                ..routine_canary()
            })],
            Some(commitment),
            second_at + 60_000,
        );
        self.push_canary_state(
            "canary_state_out_of_order",
            "Canaries arrive as seq 3, 1, 2 (sync order is not chain order): L = seq 3, P = seq 2; seq 1's duress token no longer counts.",
            vec![
                self.canary_at(3, 12, routine(0x53)),
                self.canary_at(1, 0, duress(1)),
                self.canary_at(2, 6, routine(0x52)),
            ],
            Some(commitment),
            second_at + 6 * 3_600_000 + 60_000,
        );
        self.push_canary_state(
            "canary_state_same_seq",
            "Two canaries at seq 2 (a fork): the first accepted counts, so the later duress one does not.",
            vec![
                self.canary_at(1, 0, routine(0x51)),
                self.canary_at(2, 6, routine(0x52)),
                self.canary_at(2, 6, duress(2)),
            ],
            Some(commitment),
            second_at + 60_000,
        );
        self.push_canary_state(
            "canary_state_interval_capped",
            "The latest canary announces an interval of 30 days; the receiver's maximum of 7 days caps due_at, so it is silent 7 days and an hour after it.",
            vec![self.canary_at(2, 6, Canary {
                interval_secs: 30 * 24 * 3600,
                ..routine(0x52)
            })],
            None,
            second_at + MAX_INTERVAL_SECS * 1000 + GRACE_SECS * 1000 + 1,
        );
        self.push_canary_state(
            "canary_state_interval_saturates",
            "An interval of 2^64 − 1 seconds: the minimum with the receiver's maximum comes first, so due_at = created_at + 7 days and nothing overflows.",
            vec![self.canary_at(2, 6, Canary {
                interval_secs: u64::MAX,
                ..routine(0x52)
            })],
            None,
            second_at + 60_000,
        );
        self.push_canary_state(
            "canary_state_none",
            "No canary of the member was accepted: no canary state (null), not an alarm.",
            vec![],
            Some(commitment),
            second_at,
        );
    }
}
