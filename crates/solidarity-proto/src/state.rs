//! Derived current state of alerts and mirror offers, folded from stored messages.
//!
//! Invariants: an update changes an alert only when its signer is the alert's author; a
//! withdrawal removes an offer only when its signer is the offer's author. Updates apply
//! in the author's seq order, so arrival order never matters.

use serde::{Deserialize, Serialize};

use crate::ids::{AuthorKey, MessageId};
use std::collections::{BTreeMap, BTreeSet};

use crate::payload::{
    Alert, AlertCategory, AlertStatus, AlertUpdate, Endorsement, MirrorOffer, MirrorWithdraw,
    NodeCert, Stance, Vouch,
};

/// A stored message's header facts together with its decoded body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored<T> {
    /// Content id.
    pub id: MessageId,
    /// The signer.
    pub author: AuthorKey,
    /// The author's seq.
    pub seq: u64,
    /// Creation time, ms since the epoch.
    pub created_at: u64,
    /// Expiry, ms since the epoch.
    pub expires_at: Option<u64>,
    /// The decoded body.
    pub body: T,
}

/// One applied lifecycle update.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateView {
    /// Id of the update message.
    pub id: MessageId,
    /// When the author sent it.
    pub created_at: u64,
    /// The state it set.
    pub status: AlertStatus,
    /// The author's note.
    pub note: Option<String>,
}

/// An alert with its current state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertView {
    /// Id of the alert message.
    pub id: MessageId,
    /// Its author.
    pub author: AuthorKey,
    /// The author's seq of the alert.
    pub seq: u64,
    /// Signed by a key known to be in two hands, at or after the point its chains
    /// diverge: nobody can tell whether its owner or another party wrote it.
    #[serde(default)]
    pub suspect: bool,
    /// When it was raised.
    pub created_at: u64,
    /// When it expires, if ever.
    pub expires_at: Option<u64>,
    /// Current state.
    pub status: AlertStatus,
    /// Time of the last applied update (or of the alert).
    pub updated_at: u64,
    /// The alert as raised.
    pub alert: Alert,
    /// Other members' endorsements and disputes.
    #[serde(default)]
    pub corroboration: Corroboration,
    /// Applied updates, oldest first: the latest ones a receiver keeps loaded (SPEC §12).
    pub history: Vec<UpdateView>,
    /// How many earlier updates by the author are stored but not in `history`.
    #[serde(default)]
    pub earlier_updates: u64,
}

/// A live mirror offer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferView {
    /// Id of the offer message.
    pub id: MessageId,
    /// The offering member.
    pub author: AuthorKey,
    /// The author's seq of the offer.
    pub seq: u64,
    /// As [`AlertView::suspect`].
    #[serde(default)]
    pub suspect: bool,
    /// When it was made.
    pub created_at: u64,
    /// Until when it stands.
    pub expires_at: Option<u64>,
    /// The offer.
    pub offer: MirrorOffer,
}

/// Folds an alert and candidate updates into its current state. Updates by anyone but the
/// alert's author, or for another alert, are left out.
pub fn derive_alert(
    alert: Stored<Alert>,
    updates: impl IntoIterator<Item = Stored<AlertUpdate>>,
) -> AlertView {
    let mut applied: Vec<Stored<AlertUpdate>> = updates
        .into_iter()
        .filter(|update| update.author == alert.author && update.body.alert == alert.id)
        .collect();
    applied.sort_by_key(|update| update.seq);
    let status = applied
        .last()
        .map_or(AlertStatus::Open, |update| update.body.status);
    let updated_at = applied
        .last()
        .map_or(alert.created_at, |update| update.created_at);
    AlertView {
        id: alert.id,
        author: alert.author,
        seq: alert.seq,
        suspect: false,
        created_at: alert.created_at,
        expires_at: alert.expires_at,
        status,
        updated_at,
        alert: alert.body,
        corroboration: Corroboration::default(),
        earlier_updates: 0,
        history: applied
            .into_iter()
            .map(|update| UpdateView {
                id: update.id,
                created_at: update.created_at,
                status: update.body.status,
                note: update.body.note,
            })
            .collect(),
    }
}

/// The offer as it stands at `now_ms`: `None` when its author withdrew it or it expired.
pub fn derive_offer<'a>(
    offer: Stored<MirrorOffer>,
    withdrawals: impl IntoIterator<Item = &'a Stored<MirrorWithdraw>>,
    now_ms: u64,
) -> Option<OfferView> {
    let withdrawn = withdrawals
        .into_iter()
        .any(|w| w.author == offer.author && w.body.offer == offer.id);
    let expired = offer.expires_at.is_some_and(|expires| expires <= now_ms);
    (!withdrawn && !expired).then_some(OfferView {
        id: offer.id,
        author: offer.author,
        seq: offer.seq,
        suspect: false,
        created_at: offer.created_at,
        expires_at: offer.expires_at,
        offer: offer.body,
    })
}

/// The display order of alerts, used by every listing (status page, feed, CLI): open ones
/// (neither resolved nor retracted) first, then most severe, then newest, then by id so the
/// order is total and stable (SPEC §13).
pub fn alert_order(a: &AlertView, b: &AlertView) -> std::cmp::Ordering {
    a.status
        .is_closed()
        .cmp(&b.status.is_closed())
        .then(b.alert.severity.cmp(&a.alert.severity))
        .then(b.created_at.cmp(&a.created_at))
        .then(a.id.cmp(&b.id))
}

/// The display order of mirror offers: newest first, then by id.
pub fn offer_order(a: &OfferView, b: &OfferView) -> std::cmp::Ordering {
    b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id))
}

/// Sorts alerts in [`alert_order`].
pub fn sort_for_display(alerts: &mut [AlertView]) {
    alerts.sort_by(alert_order);
}

/// Each member's standing stance on an alert: the latest endorsement (by seq) of every
/// signer but the alert's author, left out when it is a retraction. Ordered by signer.
pub fn standing_stances<'a>(
    alert_author: &AuthorKey,
    endorsements: impl IntoIterator<Item = &'a Stored<Endorsement>>,
) -> Vec<&'a Stored<Endorsement>> {
    let mut latest: BTreeMap<AuthorKey, &Stored<Endorsement>> = BTreeMap::new();
    for endorsement in endorsements {
        if endorsement.author == *alert_author {
            continue;
        }
        if latest
            .get(&endorsement.author)
            .is_none_or(|kept| kept.seq < endorsement.seq)
        {
            latest.insert(endorsement.author, endorsement);
        }
    }
    latest
        .into_values()
        .filter(|endorsement| endorsement.body.stance != Stance::Retract)
        .collect()
}

/// What other members say about an alert.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Corroboration {
    /// Members whose latest stance is "endorse".
    pub endorsed_by: Vec<AuthorKey>,
    /// Members whose latest stance is "dispute".
    pub disputed_by: Vec<AuthorKey>,
    /// Distinct collectives among the endorsers (the author's own not counted).
    pub collectives: usize,
    /// For alerts that need corroboration: how many collectives must endorse.
    pub required: Option<usize>,
    /// `required` is met.
    pub confirmed: bool,
}

/// Whether alerts of this category count as confirmed only once other collectives endorse
/// them: the ones whose false alarm would do the most harm.
pub fn needs_corroboration(category: AlertCategory) -> bool {
    matches!(
        category,
        AlertCategory::Seizure | AlertCategory::Raid | AlertCategory::KeyCompromise
    )
}

/// Folds endorsements of one alert. Each signer's latest endorsement (by seq) is its
/// stance; a retraction cancels only its own signer's stance; the alert's author does not
/// corroborate itself; endorsers count once per collective (`collective_of`), and never
/// for the author's own collective.
pub fn corroborate<'a>(
    alert_author: &AuthorKey,
    category: AlertCategory,
    endorsements: impl IntoIterator<Item = &'a Stored<Endorsement>>,
    collective_of: impl Fn(&AuthorKey) -> String,
    threshold: usize,
) -> Corroboration {
    let mut latest: BTreeMap<AuthorKey, &Stored<Endorsement>> = BTreeMap::new();
    for endorsement in endorsements {
        if endorsement.author == *alert_author {
            continue;
        }
        let newer = latest
            .get(&endorsement.author)
            .is_none_or(|kept| kept.seq < endorsement.seq);
        if newer {
            latest.insert(endorsement.author, endorsement);
        }
    }
    let with = |stance: Stance| -> Vec<AuthorKey> {
        latest
            .values()
            .filter(|endorsement| endorsement.body.stance == stance)
            .map(|endorsement| endorsement.author)
            .collect()
    };
    let endorsed_by = with(Stance::Endorse);
    let author_collective = collective_of(alert_author);
    let collectives = endorsed_by
        .iter()
        .map(&collective_of)
        .filter(|collective| *collective != author_collective)
        .collect::<BTreeSet<_>>()
        .len();
    let required = needs_corroboration(category).then_some(threshold);
    Corroboration {
        disputed_by: with(Stance::Dispute),
        endorsed_by,
        collectives,
        required,
        confirmed: required.is_some_and(|required| collectives >= required),
    }
}

/// The keys trusted through vouching: starting from the admin's own members, a key joins
/// once at least `threshold` trusted members (distinct keys) have a standing vouch for it,
/// repeated until nothing changes. Each signer's latest vouch for a key (by seq) stands. A
/// threshold of 0 disables vouching. Returns each vouched key with its vouchers.
pub fn vouched_members<'a>(
    admin_members: &BTreeSet<AuthorKey>,
    vouches: impl IntoIterator<Item = &'a Stored<Vouch>>,
    threshold: usize,
) -> BTreeMap<AuthorKey, Vec<AuthorKey>> {
    if threshold == 0 {
        return BTreeMap::new();
    }
    let mut latest: BTreeMap<(AuthorKey, AuthorKey), &Stored<Vouch>> = BTreeMap::new();
    for vouch in vouches {
        let slot = (vouch.author, vouch.body.member);
        if latest.get(&slot).is_none_or(|kept| kept.seq < vouch.seq) {
            latest.insert(slot, vouch);
        }
    }
    // Standing vouchers per vouched key, so each round costs one pass over the vouches
    // (not one per candidate: a member vouching for many keys must not make it quadratic).
    let mut standing: BTreeMap<AuthorKey, Vec<AuthorKey>> = BTreeMap::new();
    for ((signer, member), vouch) in latest {
        if vouch.body.vouch {
            standing.entry(member).or_default().push(signer);
        }
    }
    let mut trusted = admin_members.clone();
    let mut vouched: BTreeMap<AuthorKey, Vec<AuthorKey>> = BTreeMap::new();
    loop {
        let mut grew = false;
        let candidates: Vec<AuthorKey> = standing
            .keys()
            .filter(|member| !trusted.contains(*member))
            .copied()
            .collect();
        for candidate in candidates {
            let vouchers: Vec<AuthorKey> = standing
                .get(&candidate)
                .into_iter()
                .flatten()
                .filter(|signer| trusted.contains(*signer))
                .copied()
                .collect();
            if vouchers.len() >= threshold {
                trusted.insert(candidate);
                vouched.insert(candidate, vouchers);
                grew = true;
            }
        }
        if !grew {
            return vouched;
        }
    }
}

/// Where a node key stands under its certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertState {
    /// A certificate by a trusted, unrevoked identity covers now.
    Valid,
    /// Its certificates have all ended.
    Expired,
    /// Its certificates start later.
    NotYetValid,
    /// Only identities this node does not trust certified it.
    UnknownIdentity,
    /// The certifying identity revoked itself.
    IdentityRevoked,
    /// The key was revoked (by itself or by its identity).
    KeyRevoked,
}

/// A node key's best certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certification {
    /// The identity behind the deciding certificate.
    pub identity: AuthorKey,
    /// Its end, ms since the epoch.
    pub valid_until: u64,
    /// The verdict.
    pub state: CertState,
    /// Addresses the certificate gives.
    pub addresses: Vec<String>,
}

/// Judges every certified node key at `now_ms`. A key is [`CertState::Valid`] when some
/// certificate by a trusted identity that is not revoked covers `now_ms` and the key
/// itself is not revoked; otherwise the state names the most serious reason found
/// (key revoked, identity revoked, unknown identity, not yet valid, expired). Renewal is
/// seamless: any one valid certificate suffices.
pub fn certify<'a>(
    trusted_identities: &BTreeSet<AuthorKey>,
    certificates: impl IntoIterator<Item = &'a Stored<NodeCert>>,
    is_revoked: impl Fn(&AuthorKey) -> bool,
    now_ms: u64,
) -> BTreeMap<AuthorKey, Certification> {
    let mut judged: BTreeMap<AuthorKey, Certification> = BTreeMap::new();
    for certificate in certificates {
        let cert = &certificate.body;
        let state = if is_revoked(&cert.node_key) {
            CertState::KeyRevoked
        } else if is_revoked(&certificate.author) {
            CertState::IdentityRevoked
        } else if !trusted_identities.contains(&certificate.author) {
            CertState::UnknownIdentity
        } else if now_ms < cert.valid_from {
            CertState::NotYetValid
        } else if now_ms >= cert.valid_until {
            CertState::Expired
        } else {
            CertState::Valid
        };
        let candidate = Certification {
            identity: certificate.author,
            valid_until: cert.valid_until,
            state,
            addresses: cert.addresses.clone(),
        };
        // Valid beats everything, then the most serious reason; ties: the longest-lasting.
        let rank = |c: &Certification| {
            let severity = match c.state {
                CertState::Valid => 6,
                CertState::KeyRevoked => 5,
                CertState::IdentityRevoked => 4,
                CertState::UnknownIdentity => 3,
                CertState::NotYetValid => 2,
                CertState::Expired => 1,
            };
            (severity, c.valid_until)
        };
        let better = judged
            .get(&cert.node_key)
            .is_none_or(|kept| rank(&candidate) > rank(kept));
        if better {
            judged.insert(cert.node_key, candidate);
        }
    }
    judged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored<T>(author: u8, seq: u64, body: T) -> Stored<T> {
        Stored {
            id: MessageId([author ^ (seq as u8); 32]),
            author: AuthorKey([author; 32]),
            seq,
            created_at: seq,
            expires_at: None,
            body,
        }
    }

    fn vouch(author: u8, seq: u64, member: u8, standing: bool) -> Stored<Vouch> {
        stored(
            author,
            seq,
            Vouch {
                member: AuthorKey([member; 32]),
                name: "new".into(),
                addresses: vec![],
                vouch: standing,
            },
        )
    }

    fn cert(
        identity: u8,
        seq: u64,
        node: u8,
        valid_from: u64,
        valid_until: u64,
    ) -> Stored<NodeCert> {
        stored(
            identity,
            seq,
            NodeCert {
                node_key: AuthorKey([node; 32]),
                valid_from,
                valid_until,
                addresses: vec![],
            },
        )
    }

    #[test]
    fn certificates_are_judged_with_their_own_reason() {
        let trusted: BTreeSet<_> = [AuthorKey([1; 32])].into();
        let revoked = |key: &AuthorKey| key.0[0] == 8 || key.0[0] == 66;
        let state = |certs: &[Stored<NodeCert>], node: u8, now: u64| {
            certify(&trusted, certs, revoked, now)[&AuthorKey([node; 32])].state
        };
        let valid = [cert(1, 0, 50, 100, 200)];
        assert_eq!(state(&valid, 50, 150), CertState::Valid);
        assert_eq!(state(&valid, 50, 200), CertState::Expired);
        assert_eq!(state(&valid, 50, 99), CertState::NotYetValid);
        assert_eq!(
            state(&[cert(2, 0, 50, 100, 200)], 50, 150),
            CertState::UnknownIdentity
        );
        let trusted_revoked: BTreeSet<_> = [AuthorKey([8; 32])].into();
        assert_eq!(
            certify(&trusted_revoked, &[cert(8, 0, 50, 100, 200)], revoked, 150)
                [&AuthorKey([50; 32])]
                .state,
            CertState::IdentityRevoked
        );
        assert_eq!(
            state(&[cert(1, 0, 66, 100, 200)], 66, 150),
            CertState::KeyRevoked
        );
        // Renewal before expiry: the newer certificate carries on seamlessly.
        let renewed = [cert(1, 0, 50, 100, 200), cert(1, 0, 50, 180, 400)];
        assert_eq!(state(&renewed, 50, 150), CertState::Valid);
        assert_eq!(state(&renewed, 50, 250), CertState::Valid);
        assert_eq!(state(&renewed, 50, 400), CertState::Expired);
    }

    #[test]
    fn one_vouch_is_not_enough_two_are_and_withdrawal_is_honoured() {
        let admin: BTreeSet<_> = [AuthorKey([1; 32]), AuthorKey([2; 32])].into();
        let new = AuthorKey([9; 32]);
        let one = [vouch(1, 1, 9, true)];
        assert!(vouched_members(&admin, &one, 2).is_empty());
        let two = [vouch(1, 1, 9, true), vouch(2, 1, 9, true)];
        assert_eq!(vouched_members(&admin, &two, 2)[&new].len(), 2);
        let withdrawn = [
            vouch(1, 1, 9, true),
            vouch(2, 1, 9, true),
            vouch(2, 2, 9, false),
        ];
        assert!(vouched_members(&admin, &withdrawn, 2).is_empty());
        assert!(
            vouched_members(&admin, &two, 0).is_empty(),
            "0 disables vouching"
        );
        // Vouches of strangers do not count.
        let strangers = [vouch(7, 1, 9, true), vouch(8, 1, 9, true)];
        assert!(vouched_members(&admin, &strangers, 2).is_empty());
    }

    #[test]
    fn one_member_vouching_for_many_keys_costs_linear_time() {
        // A seized member signs, within its budgets, a vouch for each of many fresh keys:
        // none is trusted (one voucher), and trust is derived again after each vouch.
        let admin: BTreeSet<_> = [AuthorKey([1; 32]), AuthorKey([2; 32])].into();
        let vouches: Vec<Stored<Vouch>> = (0..20_000u32)
            .map(|n| {
                let mut member = [0u8; 32];
                member[..4].copy_from_slice(&n.to_be_bytes());
                member[31] = 0xee;
                let mut vouch = vouch(1, u64::from(n) + 1, 0, true);
                vouch.body.member = AuthorKey(member);
                vouch
            })
            .collect();
        let started = std::time::Instant::now();
        assert!(vouched_members(&admin, &vouches, 2).is_empty());
        let took = started.elapsed();
        eprintln!("20 000 single vouches: {took:?}");
        assert!(took < std::time::Duration::from_secs(2), "{took:?}");
    }

    #[test]
    fn endorsements_count_once_per_collective_and_retractions_only_cancel_their_own() {
        let endorse = |author: u8, seq: u64, stance: Stance| {
            stored(
                author,
                seq,
                Endorsement {
                    alert: MessageId([0; 32]),
                    stance,
                    note: None,
                },
            )
        };
        // Keys 2 and 3 belong to one collective, 4 to another; 1 wrote the alert.
        let collective = |key: &AuthorKey| match key.0[0] {
            2 | 3 => "riseup".to_owned(),
            other => format!("c{other}"),
        };
        let author = AuthorKey([1; 32]);
        let same_collective = [
            endorse(2, 1, Stance::Endorse),
            endorse(3, 1, Stance::Endorse),
        ];
        let result = corroborate(
            &author,
            AlertCategory::Seizure,
            &same_collective,
            collective,
            2,
        );
        assert_eq!((result.collectives, result.confirmed), (1, false));
        let two = [
            endorse(2, 1, Stance::Endorse),
            endorse(3, 1, Stance::Endorse),
            endorse(4, 1, Stance::Endorse),
        ];
        let result = corroborate(&author, AlertCategory::Seizure, &two, collective, 2);
        assert!(result.confirmed);
        let retracted = [
            endorse(2, 1, Stance::Endorse),
            endorse(4, 1, Stance::Endorse),
            endorse(4, 2, Stance::Retract),
        ];
        let result = corroborate(&author, AlertCategory::Seizure, &retracted, collective, 2);
        assert_eq!(result.endorsed_by, [AuthorKey([2; 32])]);
        assert!(!result.confirmed);
        let own = [endorse(1, 5, Stance::Endorse)];
        assert!(
            corroborate(&author, AlertCategory::Raid, &own, collective, 1)
                .endorsed_by
                .is_empty()
        );
        let outage = corroborate(&author, AlertCategory::Outage, &two, collective, 2);
        assert_eq!((outage.required, outage.confirmed), (None, false));
    }
}
