//! Canary state (SPEC §13.3): what a member's latest warrant canaries say, and the
//! changes worth telling the admin of.
//!
//! - The next canary is due `interval_secs` after the latest (capped at this node's
//!   `canary_max_interval`, so a switched-off member cannot stay "ok" for as long as it
//!   announced); past due plus `canary_grace` the member is **silent**.
//! - A code the latest canary does not state is **withdrawn** (the canary is *changed*).
//! - A duress token in the latest canary, or in the one before (the coerced admins may be
//!   made to publish another as if nothing happened), means **duress**, which outranks
//!   silence, which outranks a change.

use std::collections::HashMap;

pub use solidarity_control::{CanaryState, CanaryView};
use solidarity_proto::AuthorKey;
use solidarity_proto::payload::{Canary, CanaryCode};
use solidarity_proto::state::Stored;

/// The limits canaries are read with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CanaryRules {
    /// Longest interval honoured, ms.
    pub max_interval_ms: u64,
    /// Lateness allowed past due, ms.
    pub grace_ms: u64,
}

/// What `key`'s latest canaries (`latest`, and the one before) say at `now_ms`;
/// `duress_commitment` comes from the member's card.
pub fn canary_view(
    key: &AuthorKey,
    latest: &Stored<Canary>,
    previous: Option<&Stored<Canary>>,
    duress_commitment: Option<&[u8; 32]>,
    rules: CanaryRules,
    now_ms: u64,
) -> CanaryView {
    let interval_ms = latest
        .body
        .interval_secs
        .saturating_mul(1000)
        .min(rules.max_interval_ms);
    let due_at = latest.created_at.saturating_add(interval_ms);
    let withdrawn: Vec<_> = CanaryCode::ALL
        .into_iter()
        .filter(|code| !latest.body.codes.contains(code))
        .collect();
    let duress = duress_commitment.is_some_and(|commitment| {
        [Some(latest), previous]
            .into_iter()
            .flatten()
            .any(|canary| {
                solidarity_proto::payload::is_duress_token(commitment, key, &canary.body.token)
            })
    });
    let state = if duress {
        CanaryState::Duress
    } else if now_ms > due_at.saturating_add(rules.grace_ms) {
        CanaryState::Silent
    } else if !withdrawn.is_empty() {
        CanaryState::Changed
    } else {
        CanaryState::Ok
    };
    CanaryView {
        last_at: latest.created_at,
        due_at,
        state,
        withdrawn,
    }
}

/// A change of a member's canary state worth telling the admin of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CanaryChange {
    /// Now duress, silent or changed (from anything else, or first seen so).
    Alarm(CanaryState),
    /// Back to ok after an alarm.
    BackToNormal,
    /// First seen, and ok: nothing to tell, but the state is new.
    FirstOk,
}

/// Each member's canary state as last reported, so changes are reported once.
#[derive(Debug, Default)]
pub struct CanaryWatch {
    states: HashMap<AuthorKey, CanaryState>,
}

impl CanaryWatch {
    /// Notes `key`'s state now; how it changed, none when it did not.
    pub fn note(&mut self, key: AuthorKey, state: CanaryState) -> Option<CanaryChange> {
        let previous = self.states.insert(key, state);
        if previous == Some(state) {
            return None;
        }
        match state {
            CanaryState::Duress | CanaryState::Silent | CanaryState::Changed => {
                Some(CanaryChange::Alarm(state))
            }
            CanaryState::Ok if previous.is_some() => Some(CanaryChange::BackToNormal),
            CanaryState::Ok => Some(CanaryChange::FirstOk),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use solidarity_proto::MessageId;

    const MINUTE: u64 = 60_000;

    fn canary(created_at: u64, codes: Vec<CanaryCode>, token: Vec<u8>) -> Stored<Canary> {
        Stored {
            id: MessageId([1; 32]),
            author: AuthorKey([2; 32]),
            seq: 1,
            created_at,
            expires_at: None,
            body: Canary {
                statement: "nothing happened".into(),
                codes,
                interval_secs: 60 * 60,
                token,
            },
        }
    }

    const RULES: CanaryRules = CanaryRules {
        max_interval_ms: 30 * MINUTE,
        grace_ms: 5 * MINUTE,
    };

    #[test]
    fn silent_after_the_capped_interval_plus_grace_and_changed_when_a_code_is_withdrawn() {
        let key = AuthorKey([2; 32]);
        let all = canary(0, CanaryCode::ALL.to_vec(), vec![0; 32]);
        let at = |now| canary_view(&key, &all, None, None, RULES, now).state;
        assert_eq!(
            at(35 * MINUTE),
            CanaryState::Ok,
            "the announced hour is capped at 30 min"
        );
        assert_eq!(at(35 * MINUTE + 1), CanaryState::Silent);
        let fewer = canary(0, CanaryCode::ALL[1..].to_vec(), vec![0; 32]);
        let changed = canary_view(&key, &fewer, None, None, RULES, MINUTE);
        assert_eq!(changed.state, CanaryState::Changed);
        assert_eq!(changed.withdrawn, [CanaryCode::ALL[0]]);
    }

    #[test]
    fn duress_in_the_latest_or_the_one_before_outranks_everything() {
        let key = AuthorKey([2; 32]);
        let commitment = solidarity_proto::duress::duress_commitment(&[7; 32]);
        let token = solidarity_proto::duress::duress_token(
            &commitment,
            &key,
            [3; solidarity_proto::duress::DURESS_NONCE_BYTES],
        );
        let coerced = canary(0, CanaryCode::ALL.to_vec(), token.to_vec());
        let normal = canary(MINUTE, CanaryCode::ALL.to_vec(), vec![0; 32]);
        let seen = canary_view(
            &key,
            &normal,
            Some(&coerced),
            Some(&commitment),
            RULES,
            99 * MINUTE,
        );
        assert_eq!(seen.state, CanaryState::Duress);
        let without_card = canary_view(&key, &normal, Some(&coerced), None, RULES, 2 * MINUTE);
        assert_eq!(without_card.state, CanaryState::Ok);
    }

    #[test]
    fn each_change_is_reported_once_and_a_first_ok_is_no_alarm() {
        let mut watch = CanaryWatch::default();
        let key = AuthorKey([2; 32]);
        assert_eq!(
            watch.note(key, CanaryState::Ok),
            Some(CanaryChange::FirstOk)
        );
        assert_eq!(watch.note(key, CanaryState::Ok), None);
        assert_eq!(
            watch.note(key, CanaryState::Silent),
            Some(CanaryChange::Alarm(CanaryState::Silent))
        );
        assert_eq!(watch.note(key, CanaryState::Silent), None);
        assert_eq!(
            watch.note(key, CanaryState::Ok),
            Some(CanaryChange::BackToNormal)
        );
    }
}
