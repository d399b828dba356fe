//! Whom a node trusts, derived from its admin's list and the statements it holds.
//!
//! - A key the admin added is trusted.
//! - A node key certified by an identity the admin added is trusted while a certificate
//!   covers now (see [`certify`]).
//! - A key vouched for by enough trusted members is trusted (see [`vouched_members`]).
//! - Never: this node itself (it is implicitly trusted by the caller), a revoked key
//!   ([`revoked_since`]), or a key known to be in two hands (a fork) unless a trusted
//!   identity certified it again after the fork was detected; such keys neither vouch nor
//!   count as trusted vouchers.
//!
//! The result depends only on the sets of inputs, never on the order messages arrived in,
//! so a restarted node derives the same trust from its store.

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::AuthorKey;
use crate::payload::{NodeCert, Revocation, Vouch};
use crate::state::{CertState, Stored, certify, vouched_members};

/// What the trust decision rests on.
#[derive(Debug, Clone, Copy)]
pub struct TrustInputs<'a> {
    /// This node's own key.
    pub me: &'a AuthorKey,
    /// Node keys the admin added.
    pub admin_keys: &'a BTreeSet<AuthorKey>,
    /// Collective identity keys the admin added.
    pub identities: &'a BTreeSet<AuthorKey>,
    /// Every node certificate held.
    pub certificates: &'a [Stored<NodeCert>],
    /// Every revocation held.
    pub revocations: &'a [Stored<Revocation>],
    /// Every vouch held.
    pub vouches: &'a [Stored<Vouch>],
    /// Keys a fork proved to be in two hands, with when this node detected it.
    pub forked: &'a BTreeMap<AuthorKey, u64>,
    /// Vouches needed; 0 disables vouching.
    pub vouch_threshold: usize,
    /// Now, ms since the epoch.
    pub now_ms: u64,
}

/// Why a key is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// The admin added it.
    Admin,
    /// A trusted collective identity certified it.
    Certified {
        /// The identity.
        identity: AuthorKey,
        /// End of the certificate, ms since the epoch.
        valid_until: u64,
        /// Addresses the certificate gives.
        addresses: Vec<String>,
    },
    /// Trusted members vouched for it.
    Vouched {
        /// The vouchers.
        by: Vec<AuthorKey>,
    },
}

/// When a revoked key's messages become suspect, or `None` when it is not revoked. A key
/// is revoked by its own revocation, or by one from an identity **this node trusts**
/// (`identities`) that certified it: a stranger cannot revoke a member by certifying it
/// first. The earliest stated time wins (a revocation without one counts from its
/// creation).
pub fn revoked_since(
    key: &AuthorKey,
    revocations: &[Stored<Revocation>],
    certificates: &[Stored<NodeCert>],
    identities: &BTreeSet<AuthorKey>,
) -> Option<u64> {
    revocations
        .iter()
        .filter(|revocation| {
            let revoked = revocation.body.key.unwrap_or(revocation.author);
            revoked == *key
                && (revocation.author == *key
                    || (identities.contains(&revocation.author)
                        && certificates.iter().any(|certificate| {
                            certificate.author == revocation.author
                                && certificate.body.node_key == *key
                        })))
        })
        .map(|revocation| {
            revocation
                .body
                .compromised_since
                .unwrap_or(revocation.created_at)
        })
        .min()
}

/// Every key trusted now, with the reason (the admin's word first, then a certificate,
/// then vouches).
pub fn trusted(inputs: TrustInputs<'_>) -> BTreeMap<AuthorKey, Why> {
    let revoked = |key: &AuthorKey| {
        revoked_since(
            key,
            inputs.revocations,
            inputs.certificates,
            inputs.identities,
        )
        .is_some()
    };
    // A forked key stays out until a trusted identity certifies it again after the fork
    // was detected (its collective vouches the key is back in its hands alone).
    let recertified_after = |key: &AuthorKey, detected_at: u64| {
        inputs.certificates.iter().any(|certificate| {
            certificate.body.node_key == *key
                && certificate.created_at > detected_at
                && inputs.identities.contains(&certificate.author)
                && !revoked(&certificate.author)
        })
    };
    let distrusted = |key: &AuthorKey| {
        revoked(key)
            || inputs
                .forked
                .get(key)
                .is_some_and(|detected_at| !recertified_after(key, *detected_at))
    };
    let mut trusted: BTreeMap<AuthorKey, Why> = BTreeMap::new();
    for key in inputs.admin_keys {
        if !distrusted(key) {
            trusted.insert(*key, Why::Admin);
        }
    }
    let live_identities: BTreeSet<AuthorKey> = inputs
        .identities
        .iter()
        .filter(|identity| !distrusted(identity))
        .copied()
        .collect();
    for (key, certification) in certify(
        &live_identities,
        inputs.certificates,
        revoked,
        inputs.now_ms,
    ) {
        if certification.state == CertState::Valid && !distrusted(&key) {
            trusted.entry(key).or_insert(Why::Certified {
                identity: certification.identity,
                valid_until: certification.valid_until,
                addresses: certification.addresses,
            });
        }
    }
    let base: BTreeSet<AuthorKey> = trusted
        .keys()
        .copied()
        .chain([*inputs.me])
        .filter(|key| !distrusted(key))
        .collect();
    let vouches: Vec<&Stored<Vouch>> = inputs
        .vouches
        .iter()
        .filter(|vouch| !distrusted(&vouch.author) && !distrusted(&vouch.body.member))
        .collect();
    for (key, by) in vouched_members(&base, vouches, inputs.vouch_threshold) {
        trusted.entry(key).or_insert(Why::Vouched { by });
    }
    trusted.remove(inputs.me);
    trusted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored<T>(author: u8, created_at: u64, body: T) -> Stored<T> {
        Stored {
            id: crate::MessageId([author; 32]),
            author: AuthorKey([author; 32]),
            seq: 0,
            created_at,
            expires_at: None,
            body,
        }
    }

    #[test]
    fn a_stranger_cannot_revoke_a_member_by_certifying_it_first() {
        let member = AuthorKey([1; 32]);
        let stranger = 9;
        let certificates = [stored(
            stranger,
            5,
            NodeCert {
                node_key: member,
                valid_from: 0,
                valid_until: 100,
                addresses: vec![],
            },
        )];
        let revocations = [stored(
            stranger,
            6,
            Revocation {
                reason: "hostile".into(),
                key: Some(member),
                compromised_since: Some(0),
            },
        )];
        let trusted_identities = BTreeSet::new();
        assert_eq!(
            revoked_since(&member, &revocations, &certificates, &trusted_identities),
            None
        );
        // The same statements from an identity the node trusts do revoke the key.
        let identities: BTreeSet<_> = [AuthorKey([stranger; 32])].into();
        assert_eq!(
            revoked_since(&member, &revocations, &certificates, &identities),
            Some(0)
        );
    }

    #[test]
    fn a_forked_key_is_trusted_again_only_when_recertified_after_the_fork() {
        let node = AuthorKey([1; 32]);
        let identity = 7;
        let identities: BTreeSet<_> = [AuthorKey([identity; 32])].into();
        let certificate = |created_at: u64| {
            stored(
                identity,
                created_at,
                NodeCert {
                    node_key: node,
                    valid_from: 0,
                    valid_until: 1_000,
                    addresses: vec![],
                },
            )
        };
        let forked: BTreeMap<_, _> = [(node, 50)].into();
        let trust = |certificates: &[Stored<NodeCert>]| {
            trusted(TrustInputs {
                me: &AuthorKey([0; 32]),
                admin_keys: &BTreeSet::new(),
                identities: &identities,
                certificates,
                revocations: &[],
                vouches: &[],
                forked: &forked,
                vouch_threshold: 2,
                now_ms: 100,
            })
            .contains_key(&node)
        };
        assert!(
            !trust(&[certificate(10)]),
            "a certificate from before the fork does not count"
        );
        assert!(
            trust(&[certificate(10), certificate(60)]),
            "re-certified after the fork"
        );
    }
}
