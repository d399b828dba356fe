//! The facts of every v1 message kind in one table: where it stands (in its author's
//! chain or outside it as a statement), what its target must be, whether the
//! status page shows it, whether it can change trust, and whether the per-signer budget
//! holds it back (SPEC §6, §9, §10). Every other module asks this table instead of
//! comparing kind names.

use crate::payload::{
    KIND_ALERT, KIND_ALERT_UPDATE, KIND_CANARY, KIND_ENDORSEMENT, KIND_MIRROR_OFFER,
    KIND_MIRROR_WITHDRAW, KIND_NODE_CERT, KIND_REVOCATION, KIND_VOUCH,
};

/// Where messages of a kind stand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// In the author's chain: seq 1, 2, 3 … linked by `prev`.
    Chain,
    /// A statement: seq 0, outside the chain, accepted from any key (it speaks only for
    /// its signer), so it can be made offline and published by anyone.
    Statement,
}

/// The facts of one kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindFacts {
    /// The kind name on the wire.
    pub name: &'static str,
    /// Chain message or statement.
    pub placement: Placement,
    /// What the message it refers to must be, when it refers to one.
    pub target: Option<Target>,
    /// Shown on the status page (alerts, offers and what changes them).
    pub shown: bool,
    /// Storing one can change whom this node trusts.
    pub changes_trust: bool,
    /// Held back by the per-signer budget (SPEC §10); revocations never are.
    pub budgeted: bool,
}

/// What a message's target (`refers_to`) must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// The target's kind.
    pub kind: &'static str,
    /// Whether the target must have the same author (one updates only one's own alert
    /// and withdraws only one's own offer; anyone endorses any alert).
    pub same_author: bool,
}

const fn own(kind: &'static str) -> Option<Target> {
    Some(Target {
        kind,
        same_author: true,
    })
}

/// Every v1 kind.
pub const KINDS: [KindFacts; 9] = [
    chain(KIND_ALERT, None, true, false),
    chain(KIND_ALERT_UPDATE, own(KIND_ALERT), true, false),
    chain(KIND_MIRROR_OFFER, None, true, false),
    chain(KIND_MIRROR_WITHDRAW, own(KIND_MIRROR_OFFER), true, false),
    chain(KIND_CANARY, None, false, false),
    chain(
        KIND_ENDORSEMENT,
        Some(Target {
            kind: KIND_ALERT,
            same_author: false,
        }),
        true,
        false,
    ),
    chain(KIND_VOUCH, None, false, true),
    KindFacts {
        name: KIND_REVOCATION,
        placement: Placement::Statement,
        target: None,
        shown: true,
        changes_trust: true,
        budgeted: false,
    },
    KindFacts {
        name: KIND_NODE_CERT,
        placement: Placement::Statement,
        target: None,
        shown: false,
        changes_trust: true,
        budgeted: true,
    },
];

const fn chain(
    name: &'static str,
    target: Option<Target>,
    shown: bool,
    changes_trust: bool,
) -> KindFacts {
    KindFacts {
        name,
        placement: Placement::Chain,
        target,
        shown,
        changes_trust,
        budgeted: true,
    }
}

/// The facts of a v1 kind, or `None` for a kind this version does not know (relayed,
/// stored in the author's chain, never shown).
pub fn facts(kind: &str) -> Option<&'static KindFacts> {
    KINDS.iter().find(|facts| facts.name == kind)
}

/// Whether a kind is a statement (see [`Placement::Statement`]); unknown kinds are not.
pub fn is_statement(kind: &str) -> bool {
    facts(kind).is_some_and(|facts| facts.placement == Placement::Statement)
}

/// Whether the per-signer budget holds back messages of a kind; unknown kinds are held.
pub fn is_budgeted(kind: &str) -> bool {
    facts(kind).is_none_or(|facts| facts.budgeted)
}

/// Whether a kind is shown on the status page; unknown kinds are not.
pub fn is_shown(kind: &str) -> bool {
    facts(kind).is_some_and(|facts| facts.shown)
}

/// Whether storing a message of a kind can change trust; unknown kinds cannot.
pub fn changes_trust(kind: &str) -> bool {
    facts(kind).is_some_and(|facts| facts.changes_trust)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::Body;

    #[test]
    fn every_kind_a_body_names_has_one_row() {
        for facts in &KINDS {
            assert_eq!(KINDS.iter().filter(|f| f.name == facts.name).count(), 1);
        }
        assert_eq!(facts("no-such-kind"), None);
        assert!(Body::Unknown.kind().is_none());
    }

    #[test]
    fn statements_are_revocations_and_certificates_and_only_revocations_skip_the_budget() {
        let statements: Vec<_> = KINDS.iter().filter(|f| is_statement(f.name)).collect();
        assert_eq!(
            statements.iter().map(|f| f.name).collect::<Vec<_>>(),
            [KIND_REVOCATION, KIND_NODE_CERT]
        );
        assert!(!is_budgeted(KIND_REVOCATION));
        assert!(is_budgeted(KIND_NODE_CERT));
        assert!(is_budgeted("some-future-kind"));
        assert!(!is_statement("some-future-kind"));
    }

    #[test]
    fn trust_changes_only_with_vouches_revocations_and_certificates() {
        let changing: Vec<_> = KINDS
            .iter()
            .filter(|f| changes_trust(f.name))
            .map(|f| f.name)
            .collect();
        assert_eq!(changing, [KIND_VOUCH, KIND_REVOCATION, KIND_NODE_CERT]);
    }

    #[test]
    fn updates_and_withdrawals_target_their_authors_alerts_and_offers() {
        assert_eq!(
            facts(KIND_ALERT_UPDATE).and_then(|f| f.target),
            own(KIND_ALERT)
        );
        assert_eq!(
            facts(KIND_MIRROR_WITHDRAW).and_then(|f| f.target),
            own(KIND_MIRROR_OFFER)
        );
        let endorsed = facts(KIND_ENDORSEMENT).and_then(|f| f.target);
        assert_eq!(
            endorsed.map(|t| (t.kind, t.same_author)),
            Some((KIND_ALERT, false))
        );
        assert_eq!(facts(KIND_ALERT).and_then(|f| f.target), None);
    }
}
