//! Property: over any sequence of certify / revoke / vouch / publish / clock / restart
//! events, no message by a revoked key, or by a key whose certificates have all expired, is
//! ever accepted once the revocation or expiry is known; and a restart (the same stored
//! statements, in another order) derives the same trust. After every event, the listing
//! (`trust::listed`) holds exactly the trusted keys as trusted, and never lets an admin
//! key or a certified key with a begun certificate disappear: out of trust, it stays
//! listed with the reason.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use solidarity_proto::payload::{Alert, AlertCategory, NodeCert, Revocation, Severity, Vouch};
use solidarity_proto::state::Stored;
use solidarity_proto::trust::{Standing, Statements, TrustInputs, listed, revoked_since, trusted};
use solidarity_proto::{
    AuthorKey, Body, FederationId, Lookup, MessageId, Payload, TrustView, Verdict, envelope,
};

const ME: u8 = 0;
/// Keys the admin added directly.
const ADMIN: [u8; 2] = [1, 2];
/// The collective identity the admin trusts.
const IDENTITY: u8 = 3;
/// Node keys only a certificate can make trusted.
const CERTIFIED: [u8; 2] = [4, 5];
/// A key only vouching can make trusted.
const NEWCOMER: u8 = 6;
const START_MS: u64 = 1_800_000_000_000;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed + 1; 32])
}

fn author(seed: u8) -> AuthorKey {
    envelope::author_key(&key(seed))
}

#[derive(Debug, Clone)]
enum Event {
    Certify {
        node: u8,
        from_offset: i64,
        length: u64,
    },
    RevokeSelf {
        key: u8,
    },
    IdentityRevokes {
        node: u8,
    },
    Vouch {
        voucher: u8,
        member: u8,
        stand: bool,
    },
    Publish {
        signer: u8,
    },
    Advance {
        ms: u64,
    },
    Restart,
}

fn event() -> impl Strategy<Value = Event> {
    let any_node = prop::sample::select(vec![
        ADMIN[0],
        ADMIN[1],
        CERTIFIED[0],
        CERTIFIED[1],
        NEWCOMER,
    ]);
    prop_oneof![
        3 => (prop::sample::select(CERTIFIED.to_vec()), -5_000i64..5_000, 1u64..20_000)
            .prop_map(|(node, from_offset, length)| Event::Certify { node, from_offset, length }),
        1 => any_node.clone().prop_map(|key| Event::RevokeSelf { key }),
        1 => prop::sample::select(CERTIFIED.to_vec()).prop_map(|node| Event::IdentityRevokes { node }),
        2 => (prop::sample::select(vec![ME, ADMIN[0], ADMIN[1], CERTIFIED[0], CERTIFIED[1]]), any_node.clone(), any::<bool>())
            .prop_map(|(voucher, member, stand)| Event::Vouch { voucher, member, stand }),
        5 => any_node.prop_map(|signer| Event::Publish { signer }),
        2 => (1u64..15_000).prop_map(|ms| Event::Advance { ms }),
        1 => Just(Event::Restart),
    ]
}

#[derive(Default)]
struct World {
    now: u64,
    certificates: Vec<Stored<NodeCert>>,
    revocations: Vec<Stored<Revocation>>,
    vouches: Vec<Stored<Vouch>>,
    seqs: HashMap<u8, u64>,
    stored: BTreeSet<MessageId>,
    /// Keys whose revocation this node holds.
    revoked: BTreeSet<u8>,
}

fn stored<T>(author_seed: u8, seq: u64, created_at: u64, body: T) -> Stored<T> {
    let mut id = [0u8; 32];
    id[0] = author_seed;
    id[1..9].copy_from_slice(&seq.to_be_bytes());
    id[9..17].copy_from_slice(&created_at.to_be_bytes());
    Stored {
        id: MessageId(id),
        author: author(author_seed),
        seq,
        created_at,
        expires_at: None,
        body,
    }
}

impl World {
    fn next_seq(&mut self, seed: u8) -> u64 {
        let seq = self.seqs.entry(seed).or_insert(0);
        *seq += 1;
        *seq
    }

    fn trusted(
        &self,
        certificates: &[Stored<NodeCert>],
        revocations: &[Stored<Revocation>],
        vouches: &[Stored<Vouch>],
    ) -> BTreeSet<AuthorKey> {
        let admin: BTreeSet<_> = ADMIN.iter().map(|seed| author(*seed)).collect();
        let identities: BTreeSet<_> = [author(IDENTITY)].into();
        trusted(TrustInputs {
            me: &author(ME),
            admin_keys: &admin,
            identities: &identities,
            statements: &Statements::new(revocations.iter().cloned(), certificates.iter().cloned()),
            vouches,
            forked: &BTreeMap::new(),
            vouch_threshold: 2,
            now_ms: self.now,
        })
        .into_keys()
        .collect()
    }

    fn statements(&self) -> Statements {
        Statements::new(
            self.revocations.iter().cloned(),
            self.certificates.iter().cloned(),
        )
    }

    /// Whether a certificate by the (unrevoked) identity covers `node` now.
    fn covered(&self, node: u8) -> bool {
        !self.revoked.contains(&IDENTITY)
            && self.certificates.iter().any(|certificate| {
                certificate.body.node_key == author(node)
                    && certificate.body.valid_from <= self.now
                    && self.now < certificate.body.valid_until
            })
    }
}

struct Members(BTreeSet<AuthorKey>);

impl TrustView for Members {
    fn is_member(&self, key: &AuthorKey) -> bool {
        *key == author(ME) || self.0.contains(key)
    }
}

struct Held<'a>(&'a BTreeSet<MessageId>);

impl Lookup for Held<'_> {
    fn contains(&self, id: &MessageId) -> bool {
        self.0.contains(id)
    }
    fn id_at(&self, _: &AuthorKey, _: u64) -> Option<MessageId> {
        None
    }
    fn author_and_kind(&self, _: &MessageId) -> Option<(AuthorKey, String)> {
        None
    }
}

fn alert_envelope(signer: u8, seq: u64, now: u64) -> Vec<u8> {
    let body = Body::Alert(Alert {
        category: AlertCategory::Raid,
        legal_type: None,
        severity: Severity::High,
        subject: "x.example".into(),
        summary: format!("message {seq} of {signer}"),
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
    });
    let payload = Payload {
        fed: FederationId::from_name("property"),
        seq,
        prev: (seq > 1).then_some(MessageId([signer; 32])),
        created_at: now,
        expires_at: None,
        kind: "alert".into(),
        body: body.encode(),
    };
    envelope::sign(&key(signer), &payload).bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn no_revoked_or_expired_key_is_accepted_once_known(events in prop::collection::vec(event(), 1..60)) {
        let mut world = World { now: START_MS, ..World::default() };
        for event in events {
            match event {
                Event::Certify { node, from_offset, length } => {
                    let seq = world.next_seq(IDENTITY);
                    let valid_from = world.now.saturating_add_signed(from_offset);
                    world.certificates.push(stored(IDENTITY, seq, world.now, NodeCert {
                        node_key: author(node),
                        valid_from,
                        valid_until: valid_from + length,
                        addresses: vec![],
                    }));
                }
                Event::RevokeSelf { key } => {
                    let seq = world.next_seq(key);
                    world.revocations.push(stored(key, seq, world.now, Revocation {
                        reason: "seized".into(),
                        key: None,
                        compromised_since: None,
                    }));
                    world.revoked.insert(key);
                }
                Event::IdentityRevokes { node } => {
                    let seq = world.next_seq(IDENTITY);
                    world.revocations.push(stored(IDENTITY, seq, world.now, Revocation {
                        reason: "seized".into(),
                        key: Some(author(node)),
                        compromised_since: None,
                    }));
                    // It counts once the identity is known to have certified the key.
                    if world.certificates.iter().any(|c| c.body.node_key == author(node)) {
                        world.revoked.insert(node);
                    }
                }
                Event::Vouch { voucher, member, stand } => {
                    let seq = world.next_seq(voucher);
                    world.vouches.push(stored(voucher, seq, world.now, Vouch {
                        member: author(member),
                        name: "someone".into(),
                        addresses: vec![],
                        vouch: stand,
                    }));
                }
                Event::Advance { ms } => world.now += ms,
                Event::Restart => {
                    let before = world.trusted(&world.certificates, &world.revocations, &world.vouches);
                    let mut certificates = world.certificates.clone();
                    let mut revocations = world.revocations.clone();
                    let mut vouches = world.vouches.clone();
                    certificates.reverse();
                    revocations.reverse();
                    vouches.reverse();
                    let after = world.trusted(&certificates, &revocations, &vouches);
                    prop_assert_eq!(before, after, "trust depends on arrival order");
                }
                Event::Publish { signer } => {
                    let seq = world.next_seq(signer);
                    let bytes = alert_envelope(signer, seq, world.now);
                    let members = Members(world.trusted(&world.certificates, &world.revocations, &world.vouches));
                    let verdict = solidarity_proto::validate(
                        &bytes,
                        world.now,
                        &FederationId::from_name("property"),
                        &members,
                        &Held(&world.stored),
                    );
                    if let Verdict::Accept(accepted) = verdict {
                        world.stored.insert(accepted.id);
                        let identities: BTreeSet<_> = [author(IDENTITY)].into();
                        let revoked = revoked_since(&author(signer), &world.statements(), &identities);
                        prop_assert!(revoked.is_none(), "accepted a message of revoked key {signer}");
                        prop_assert!(!world.revoked.contains(&signer), "accepted a message of revoked key {signer}");
                        if CERTIFIED.contains(&signer) && !members_by_vouch(&world, signer) {
                            prop_assert!(world.covered(signer), "accepted key {signer} without a valid certificate");
                        }
                    }
                }
            }
            check_listing(&world)?;
        }
    }
}

/// Whether `signer` is trusted by vouching rather than by its certificate (the property
/// on certificates does not apply then).
fn members_by_vouch(world: &World, signer: u8) -> bool {
    let admin: BTreeSet<_> = ADMIN.iter().map(|seed| author(*seed)).collect();
    let identities: BTreeSet<_> = [author(IDENTITY)].into();
    let reasons: BTreeMap<_, _> = trusted(TrustInputs {
        me: &author(ME),
        admin_keys: &admin,
        identities: &identities,
        statements: &world.statements(),
        vouches: &world.vouches,
        forked: &BTreeMap::new(),
        vouch_threshold: 2,
        now_ms: world.now,
    });
    matches!(
        reasons.get(&author(signer)),
        Some(solidarity_proto::trust::Why::Vouched { .. })
    )
}

/// The listing agrees with the trusted set, and keys out of trust stay listed.
fn check_listing(world: &World) -> Result<(), TestCaseError> {
    let admin: BTreeSet<_> = ADMIN.iter().map(|seed| author(*seed)).collect();
    let identities: BTreeSet<_> = [author(IDENTITY)].into();
    let inputs = TrustInputs {
        me: &author(ME),
        admin_keys: &admin,
        identities: &identities,
        statements: &world.statements(),
        vouches: &world.vouches,
        forked: &BTreeMap::new(),
        vouch_threshold: 2,
        now_ms: world.now,
    };
    let listing = listed(inputs);
    let listed_trusted: BTreeSet<AuthorKey> = listing
        .iter()
        .filter(|(_, entry)| entry.standing == Standing::Trusted)
        .map(|(key, _)| *key)
        .collect();
    let trusted_now: BTreeSet<AuthorKey> = trusted(inputs).into_keys().collect();
    prop_assert_eq!(
        &listed_trusted,
        &trusted_now,
        "the listing's trusted keys differ"
    );
    for seed in ADMIN {
        let entry = listing.get(&author(seed));
        prop_assert!(entry.is_some(), "admin key {} disappeared", seed);
        if revoked_since(&author(seed), &world.statements(), &identities).is_some() {
            prop_assert!(
                matches!(
                    entry.map(|entry| entry.standing),
                    Some(Standing::Revoked(_))
                ),
                "revoked admin key {} not listed as revoked",
                seed
            );
        }
    }
    for seed in CERTIFIED {
        let begun = world.certificates.iter().any(|certificate| {
            certificate.body.node_key == author(seed) && certificate.body.valid_from <= world.now
        });
        if begun {
            prop_assert!(
                listing.contains_key(&author(seed)),
                "certified key {} disappeared",
                seed
            );
        }
    }
    Ok(())
}
