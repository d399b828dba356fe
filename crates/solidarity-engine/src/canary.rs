//! The canary state of a member (SPEC §13.3), a pure function of the two latest canaries
//! the receiver keeps of it, the receiver's settings and the time:
//!
//! - `due_at = latest.created_at + min(interval, max interval)`;
//! - the first that applies: **duress** (the latest or the previous token is a duress
//!   token under the member's commitment), **silent** (`now > due_at + grace`),
//!   **changed** (a code withdrawn), **ok**.

pub use solidarity_control::CanaryState;
use solidarity_proto::AuthorKey;
use solidarity_proto::duress::is_duress_token;
use solidarity_proto::payload::{Canary, CanaryCode};
use solidarity_proto::state::Stored;

/// The receiver's canary settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CanaryRules {
    /// How long past due a canary may be before its member counts as silent
    /// (`canary_grace_secs`).
    pub grace_ms: u64,
    /// The longest announced interval honoured (`canary_max_interval_secs`).
    pub max_interval_ms: u64,
}

/// How a member's canaries read here now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanaryView {
    /// When its latest canary was made.
    pub last_at: u64,
    /// When the next one is due.
    pub due_at: u64,
    /// Its state.
    pub state: CanaryState,
    /// The codes its latest canary no longer states.
    pub withdrawn: Vec<CanaryCode>,
}

/// The state of `author` from its latest and previous canaries.
pub fn canary_view(
    author: &AuthorKey,
    latest: &Stored<Canary>,
    previous: Option<&Stored<Canary>>,
    duress_commitment: Option<&[u8; 32]>,
    rules: CanaryRules,
    now_ms: u64,
) -> CanaryView {
    // An interval beyond the maximum would keep a switched-off member "ok" for as long as
    // it announced.
    let interval_ms = latest
        .body
        .interval_secs
        .saturating_mul(1000)
        .min(rules.max_interval_ms);
    let due_at = latest.created_at.saturating_add(interval_ms);
    let withdrawn: Vec<CanaryCode> = CanaryCode::ALL
        .into_iter()
        .filter(|code| !latest.body.codes.contains(code))
        .collect();
    let duress = duress_commitment.is_some_and(|commitment| {
        [Some(latest), previous]
            .into_iter()
            .flatten()
            .any(|canary| is_duress_token(commitment, author, &canary.body.token))
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

#[cfg(test)]
mod tests {
    use super::*;
    use solidarity_proto::MessageId;

    const RULES: CanaryRules = CanaryRules {
        grace_ms: 3_600_000,
        max_interval_ms: 7 * 24 * 3_600_000,
    };

    fn canary(created_at: u64, interval_secs: u64, codes: &[CanaryCode]) -> Stored<Canary> {
        Stored {
            id: MessageId([1; 32]),
            author: AuthorKey([2; 32]),
            seq: 1,
            created_at,
            expires_at: None,
            body: Canary {
                statement: "no warrant".into(),
                codes: codes.to_vec(),
                interval_secs,
                token: vec![0; 32],
            },
        }
    }

    #[test]
    fn a_member_is_silent_only_once_past_due_and_grace() {
        let latest = canary(1_000, 86_400, &CanaryCode::ALL);
        let due = 1_000 + 86_400_000;
        let at = |now| canary_view(&AuthorKey([2; 32]), &latest, None, None, RULES, now);
        assert_eq!(at(due).state, CanaryState::Ok);
        assert_eq!(at(due + RULES.grace_ms).state, CanaryState::Ok);
        assert_eq!(at(due + RULES.grace_ms + 1).state, CanaryState::Silent);
        assert_eq!(at(due).due_at, due);
    }

    #[test]
    fn an_announced_interval_beyond_the_maximum_is_capped() {
        let latest = canary(0, u64::MAX, &CanaryCode::ALL);
        let view = canary_view(&AuthorKey([2; 32]), &latest, None, None, RULES, 0);
        assert_eq!(view.due_at, RULES.max_interval_ms);
        let later = RULES.max_interval_ms + RULES.grace_ms + 1;
        let view = canary_view(&AuthorKey([2; 32]), &latest, None, None, RULES, later);
        assert_eq!(view.state, CanaryState::Silent);
    }

    #[test]
    fn a_withdrawn_code_is_a_change_and_silence_comes_first() {
        let latest = canary(0, 60, &[CanaryCode::Warrant]);
        let view = canary_view(&AuthorKey([2; 32]), &latest, None, None, RULES, 1);
        assert_eq!(view.state, CanaryState::Changed);
        assert_eq!(view.withdrawn.len(), CanaryCode::ALL.len() - 1);
        let late = 60_000 + RULES.grace_ms + 1;
        let view = canary_view(&AuthorKey([2; 32]), &latest, None, None, RULES, late);
        assert_eq!(view.state, CanaryState::Silent);
    }

    #[test]
    fn duress_in_the_previous_canary_outlasts_a_normal_next_one() {
        let duress_key = [7u8; 32];
        let commitment = solidarity_proto::duress::duress_commitment(&duress_key);
        let mut previous = canary(0, 60, &CanaryCode::ALL);
        previous.body.token = duress_key.to_vec();
        let latest = canary(60_000, 60, &CanaryCode::ALL);
        let author = AuthorKey([2; 32]);
        let view = canary_view(
            &author,
            &latest,
            Some(&previous),
            Some(&commitment),
            RULES,
            60_001,
        );
        assert_eq!(view.state, CanaryState::Duress);
        let view = canary_view(&author, &latest, Some(&previous), None, RULES, 60_001);
        assert_eq!(
            view.state,
            CanaryState::Ok,
            "without the commitment nobody can tell"
        );
    }
}
