//! Statements (revocations, node certificates): which ones this node keeps, which it only
//! relays, and the statement phase of sync (SPEC §9 step 5, §10, §11).
//!
//! - A statement is **kept** (stored) only when it can change trust here: a revocation whose
//!   signer is the revoked key and a key this node knows, or whose signer is an identity on
//!   the admin's list; a certificate signed by such an identity. At most
//!   `statements_per_signer` revocations and as many certificates are kept per signer; a
//!   revocation of a key the signer may revoke (itself, or a key it certified) is kept
//!   beyond the cap when none of that signer's revocations of that key is held, so no
//!   number of other statements keeps a revocation out.
//! - Any other valid revocation or certificate is **relayed**: held in memory in [`Relay`]
//!   (bounded per signer and in total, never stored), forwarded by gossip once and offered
//!   in the statement phase of sync, so a revocation crosses nodes that do not list its
//!   signer.
//! - The statement phase: the requester lists every signer it knows with the statements it
//!   holds of each; the responder answers with revocations first, then certificates, at
//!   most [`sync::MAX_PAGE_STATEMENTS_PER_SIGNER`] per signer per page.

use std::collections::{BTreeMap, HashMap, VecDeque};

use solidarity_proto::sync::{self, HeldStatements, SyncResponse};
use solidarity_proto::trust::Statements;
use solidarity_proto::{AuthorKey, Body, MessageId};

use crate::store_read::StoreRead;

/// Most statements held for relay per signer.
pub const RELAY_PER_SIGNER: usize = 8;
/// Most signers whose statements are held for relay.
pub const RELAY_SIGNERS: usize = 256;
/// Most envelope bytes held for relay in all.
pub const RELAY_BYTES: usize = 1024 * 1024;

/// What to do with a valid statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// It can change trust here: store it.
    Store,
    /// It cannot change trust here, but may elsewhere: relay it without storing.
    Relay,
    /// Over its signer's cap, or redundant: neither stored nor relayed.
    Drop,
}

/// What the keep decision needs to know about this node.
pub struct Here<'a> {
    /// Held statements.
    pub statements: &'a Statements,
    /// Statements queued for writing, per signer: (revocations, certificates).
    pub pending: &'a HashMap<AuthorKey, (usize, usize)>,
    /// Whether a revocation by the signer (first) of the key (second) is queued for writing.
    pub pending_revoked: &'a dyn Fn(&AuthorKey, &AuthorKey) -> bool,
    /// Whether the key is an identity on the admin's list.
    pub listed_identity: &'a dyn Fn(&AuthorKey) -> bool,
    /// Whether the node has a reason to hear of the key (itself, a member, on the list).
    pub knows: &'a dyn Fn(&AuthorKey) -> bool,
    /// Most revocations, and most certificates, kept per signer.
    pub cap: usize,
}

/// Decides whether `body`, signed by `signer`, is kept, relayed or dropped.
pub fn judge(here: &Here<'_>, signer: &AuthorKey, body: &Body) -> Keep {
    let (revocations, certificates) = here.statements.held_by(signer);
    let (pending_revocations, pending_certificates) =
        here.pending.get(signer).copied().unwrap_or_default();
    match body {
        Body::Revocation(revocation) => {
            let revoked = revocation.key.unwrap_or(*signer);
            let relevant =
                (revoked == *signer && (here.knows)(signer)) || (here.listed_identity)(signer);
            if !relevant {
                return Keep::Relay;
            }
            let may_revoke = revoked == *signer || here.statements.certified(signer, &revoked);
            // Beyond the cap only when no revocation of that key by that signer is stored
            // or still being written (queued ones are not in `statements` yet, so a burst,
            // one sync page, would otherwise all pass as "the first revocation").
            if revocations + pending_revocations < here.cap
                || (may_revoke
                    && !(here.pending_revoked)(signer, &revoked)
                    && !here.statements.revoked_by(signer, &revoked))
            {
                Keep::Store
            } else {
                Keep::Drop
            }
        }
        Body::NodeCert(_) => {
            if !(here.listed_identity)(signer) {
                Keep::Relay
            } else if certificates + pending_certificates < here.cap {
                Keep::Store
            } else {
                Keep::Drop
            }
        }
        _ => Keep::Store,
    }
}

/// One statement held for relay.
#[derive(Clone)]
struct Relayed {
    id: MessageId,
    revocation: bool,
    envelope: Vec<u8>,
}

/// Valid statements this node does not keep but passes on: in memory, bounded per signer
/// ([`RELAY_PER_SIGNER`]) and in total ([`RELAY_SIGNERS`], [`RELAY_BYTES`]); when full, the
/// signer heard of longest ago makes room. A signer's revocations are never pushed out by
/// its certificates.
#[derive(Default, Clone)]
pub struct Relay {
    by_signer: BTreeMap<AuthorKey, Vec<Relayed>>,
    /// Signers in the order first heard of.
    order: VecDeque<AuthorKey>,
    bytes: usize,
}

impl Relay {
    /// Holds a statement for relay; true when it is new here (so worth forwarding).
    pub fn offer(
        &mut self,
        signer: AuthorKey,
        id: MessageId,
        revocation: bool,
        envelope: &[u8],
    ) -> bool {
        if envelope.len() > RELAY_BYTES {
            return false;
        }
        if let Some(held) = self.by_signer.get(&signer) {
            if held.iter().any(|relayed| relayed.id == id) {
                return false;
            }
            let full = held.len() >= RELAY_PER_SIGNER;
            if full && (!revocation || held.iter().all(|relayed| relayed.revocation)) {
                return false;
            }
        }
        // Room: a certificate of this signer gives way to its revocation, then whole
        // signers go, oldest first.
        if let Some(held) = self.by_signer.get_mut(&signer)
            && held.len() >= RELAY_PER_SIGNER
            && let Some(position) = held.iter().position(|relayed| !relayed.revocation)
        {
            self.bytes -= held.remove(position).envelope.len();
        }
        while (self.bytes + envelope.len() > RELAY_BYTES
            || (!self.by_signer.contains_key(&signer) && self.by_signer.len() >= RELAY_SIGNERS))
            && let Some(oldest) = self.order.pop_front()
        {
            if let Some(gone) = self.by_signer.remove(&oldest) {
                self.bytes -= gone
                    .iter()
                    .map(|relayed| relayed.envelope.len())
                    .sum::<usize>();
            }
        }
        if !self.by_signer.contains_key(&signer) {
            self.order.push_back(signer);
        }
        self.bytes += envelope.len();
        self.by_signer.entry(signer).or_default().push(Relayed {
            id,
            revocation,
            envelope: envelope.to_vec(),
        });
        true
    }

    /// The ids held for `signer`.
    pub fn ids(&self, signer: &AuthorKey) -> impl Iterator<Item = MessageId> + '_ {
        self.by_signer
            .get(signer)
            .into_iter()
            .flatten()
            .map(|relayed| relayed.id)
    }

    /// Statements and bytes held.
    pub fn size(&self) -> (usize, usize) {
        (self.by_signer.values().map(Vec::len).sum(), self.bytes)
    }
}

/// Answers a statement-phase request: for the listed signers, their revocations the
/// requester lacks, then their certificates, kept or relayed, at most
/// [`sync::MAX_PAGE_STATEMENTS_PER_SIGNER`] per signer and [`sync::MAX_PAGE_BYTES`] in all.
pub fn answer(
    wanted: &[HeldStatements],
    limit: usize,
    statements: &Statements,
    relay: &Relay,
    store: &dyn StoreRead,
) -> SyncResponse {
    let mut response = SyncResponse::default();
    let mut bytes = 0usize;
    let mut sent: HashMap<AuthorKey, usize> = HashMap::new();
    for revocations in [true, false] {
        for signer in wanted {
            let kept = statements
                .by_signer(&signer.signer)
                .iter()
                .filter(|(_, revocation)| *revocation == revocations)
                .map(|(id, _)| (*id, None));
            let relayed = relay
                .by_signer
                .get(&signer.signer)
                .into_iter()
                .flatten()
                .filter(|relayed| relayed.revocation == revocations)
                .map(|relayed| (relayed.id, Some(relayed.envelope.as_slice())));
            for (id, envelope) in kept.chain(relayed) {
                if signer.holds(&id) {
                    continue;
                }
                let count = sent.entry(signer.signer).or_default();
                if *count >= sync::MAX_PAGE_STATEMENTS_PER_SIGNER
                    || response.envelopes.len() >= limit
                {
                    response.more = true;
                    break;
                }
                let envelope = match envelope {
                    Some(envelope) => envelope.to_vec(),
                    None => match store.envelope(&id) {
                        Ok(Some(envelope)) => envelope,
                        Ok(None) => continue,
                        Err(error) => {
                            tracing::error!(%error, "store read failed while answering sync");
                            continue;
                        }
                    },
                };
                if bytes + envelope.len() > sync::MAX_PAGE_BYTES {
                    response.more = true;
                    break;
                }
                bytes += envelope.len();
                *count += 1;
                response
                    .envelopes
                    .push(serde_bytes::ByteBuf::from(envelope));
            }
        }
    }
    response
}

/// The statement ids a requester lists for `signer`: those it keeps, relays, or was sent
/// and refused earlier in this session.
pub fn held(
    signer: AuthorKey,
    statements: &Statements,
    relay: &Relay,
    seen: Option<&Vec<MessageId>>,
) -> HeldStatements {
    let kept = statements.by_signer(&signer).iter().map(|(id, _)| *id);
    let seen = seen.into_iter().flatten().copied();
    HeldStatements::new(signer, kept.chain(relay.ids(&signer)).chain(seen))
}

/// Fits a statement-phase request within what a responder accepts (SPEC §11.2): at most
/// [`sync::MAX_STATEMENT_SIGNERS`] signers and [`sync::MAX_HELD_IDS`] held ids over the
/// request, each signer's list cut to an equal share when they hold more. A request over
/// the limits would be refused whole, and with it every revocation of the session.
pub fn fit(mut wanted: Vec<HeldStatements>) -> Vec<HeldStatements> {
    wanted.truncate(sync::MAX_STATEMENT_SIGNERS);
    let total: usize = wanted.iter().map(|signer| signer.held.len()).sum();
    if total > sync::MAX_HELD_IDS * sync::HELD_ID_BYTES {
        let share = sync::MAX_HELD_IDS / wanted.len().max(1) * sync::HELD_ID_BYTES;
        for signer in &mut wanted {
            signer.held.truncate(share);
        }
    }
    wanted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> AuthorKey {
        AuthorKey([n; 32])
    }

    fn id(signer: u8, n: u16) -> MessageId {
        let mut bytes = [signer; 32];
        bytes[..2].copy_from_slice(&n.to_be_bytes());
        MessageId(bytes)
    }

    #[test]
    fn a_burst_of_self_revocations_is_not_kept_beyond_the_cap_while_being_written() {
        let statements = Statements::default();
        let signer = key(7);
        let revocation = Body::Revocation(solidarity_proto::payload::Revocation {
            reason: "seized".into(),
            key: None,
            compromised_since: None,
        });
        let mut pending = HashMap::new();
        let judge_with = |pending: &HashMap<AuthorKey, (usize, usize)>| {
            judge(
                &Here {
                    statements: &statements,
                    pending,
                    pending_revoked: &|by, key| {
                        by == &signer && key == &signer && pending.contains_key(&signer)
                    },
                    listed_identity: &|_| false,
                    knows: &|_| true,
                    cap: 4,
                },
                &signer,
                &revocation,
            )
        };
        assert_eq!(judge_with(&pending), Keep::Store, "the first is kept");
        // The cap's worth is queued and none is written yet: the next ones of the same
        // page are not kept (they come again by sync once the first is written).
        pending.insert(signer, (4, 0));
        assert_eq!(judge_with(&pending), Keep::Drop);
        pending.insert(signer, (1_000, 0));
        assert_eq!(judge_with(&pending), Keep::Drop);
        // An identity's revocation of a key it certified still passes a pending burst of
        // its revocations of other keys.
        let identity = key(8);
        let certified = key(9);
        let mut held = Statements::default();
        held.add_certificate(solidarity_proto::state::Stored {
            id: id(8, 1),
            author: identity,
            seq: 0,
            created_at: 1,
            expires_at: None,
            body: solidarity_proto::payload::NodeCert {
                node_key: certified,
                valid_from: 0,
                valid_until: u64::MAX,
                addresses: Vec::new(),
            },
        });
        let pending = HashMap::from([(identity, (1_000, 0))]);
        let of_certified = Body::Revocation(solidarity_proto::payload::Revocation {
            reason: "seized".into(),
            key: Some(certified),
            compromised_since: None,
        });
        let here = Here {
            statements: &held,
            pending: &pending,
            pending_revoked: &|_, key| key != &certified,
            listed_identity: &|key| key == &identity,
            knows: &|_| true,
            cap: 4,
        };
        assert_eq!(judge(&here, &identity, &of_certified), Keep::Store);
    }

    #[test]
    fn a_statement_request_of_a_large_federation_is_not_refused() {
        // 300 signers holding 256 statements each: over the request's held-id limit.
        let wanted: Vec<HeldStatements> = (0..300u16)
            .map(|signer| {
                let mut key = [0u8; 32];
                key[..2].copy_from_slice(&signer.to_be_bytes());
                HeldStatements::new(
                    AuthorKey(key),
                    (0..sync::MAX_HELD_PER_SIGNER as u16).map(|n| id(signer as u8, n)),
                )
            })
            .collect();
        let request = |statements| sync::SyncRequest {
            fed: solidarity_proto::FederationId([1; 32]),
            have: Vec::new(),
            limit: 10,
            statements: Some(statements),
        };
        assert!(sync::SyncRequest::decode(&request(wanted.clone()).encode()).is_err());
        let fitted = fit(wanted);
        assert_eq!(fitted.len(), 300);
        sync::SyncRequest::decode(&request(fitted).encode()).expect("within the limits");
    }

    #[test]
    fn relay_is_bounded_per_signer_and_in_total_and_keeps_revocations() {
        let mut relay = Relay::default();
        for n in 0..(RELAY_PER_SIGNER as u16 + 4) {
            relay.offer(key(1), id(1, n), false, &[0; 100]);
        }
        assert_eq!(relay.ids(&key(1)).count(), RELAY_PER_SIGNER);
        assert!(
            relay.offer(key(1), id(1, 999), true, &[0; 100]),
            "a revocation makes room"
        );
        for n in 0..(RELAY_PER_SIGNER as u16) {
            relay.offer(key(1), id(1, 1000 + n), true, &[0; 100]);
        }
        assert!(
            !relay.offer(key(1), id(1, 2000), true, &[0; 100]),
            "full of revocations"
        );
        for signer in 2..=255u8 {
            for n in 0..2 {
                relay.offer(key(signer), id(signer, n), true, &[0; 1000]);
            }
        }
        relay.offer(key(0), id(0, 0), true, &[0; 1000]);
        let (held, bytes) = relay.size();
        assert!(relay.by_signer.len() <= RELAY_SIGNERS);
        assert!(bytes <= RELAY_BYTES, "{bytes}");
        eprintln!("relay holds {held} statements, {bytes} bytes");
        assert!(relay.ids(&key(0)).count() == 1, "the newest signer is held");
    }
}
