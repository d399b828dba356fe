//! What scenarios are made of: the messages admins and hostile members sign, and the
//! questions asked of a federation (who holds what, who trusts whom, what held).

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::SigningKey;
use solidarity_proto::envelope::{self, SignedMessage};
use solidarity_proto::payload::{
    Alert, AlertCategory, AlertStatus, AlertUpdate, Body, Canary, CanaryCode, KIND_NODE_CERT,
    KIND_REVOCATION, NodeCert, Revocation, Severity,
};
use solidarity_proto::trust::Standing;
use solidarity_proto::{AuthorKey, MessageId, Payload};
use solidarity_store::Store;

use crate::network::NodeId;
use crate::sim::Simulation;

/// An alert as an admin raises it.
pub fn alert(summary: impl Into<String>) -> Body {
    Body::Alert(Alert {
        category: AlertCategory::Seizure,
        legal_type: None,
        severity: Severity::Critical,
        subject: "a.example".into(),
        summary: summary.into(),
        details: None,
        jurisdictions: vec!["FR".into()],
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

/// A lifecycle update of `alert`.
pub fn update(alert: MessageId, status: AlertStatus, note: impl Into<String>) -> Body {
    Body::AlertUpdate(AlertUpdate {
        alert,
        status,
        note: Some(note.into()),
    })
}

/// Signs `body` as a chain message of `key` at `seq` after `prev`, created at `now_ms`.
pub fn signed_at(
    key: &SigningKey,
    federation: &Simulation,
    seq: u64,
    prev: Option<MessageId>,
    now_ms: u64,
    body: &Body,
) -> SignedMessage {
    let payload = Payload {
        fed: federation.federation.id,
        seq,
        prev,
        created_at: now_ms,
        expires_at: None,
        kind: body.kind().unwrap_or("alert").to_owned(),
        body: body.encode(),
    };
    envelope::sign(key, &payload)
}

/// The revocation a collective keeps offline for its own key: `key` revokes itself,
/// everything it signed from `since_ms` on being suspect.
pub fn self_revocation(
    key: &SigningKey,
    simulation: &Simulation,
    now_ms: u64,
    since_ms: u64,
) -> SignedMessage {
    let body = Body::Revocation(Revocation {
        reason: "server seized".into(),
        key: None,
        compromised_since: Some(since_ms),
    });
    signed_at(key, simulation, 0, None, now_ms, &body)
}

/// The first of the statements `make(0)`, `make(1)` … signed by `key` whose id satisfies
/// `wanted`: a hostile signer grinds ids to choose where its statements sort.
pub fn ground(
    key: &SigningKey,
    simulation: &Simulation,
    now_ms: u64,
    wanted: impl Fn(&MessageId) -> bool,
    make: impl Fn(u32) -> Body,
) -> SignedMessage {
    let mut nonce = 0u32;
    loop {
        let signed = signed_at(key, simulation, 0, None, now_ms, &make(nonce));
        if wanted(&signed.id) {
            return signed;
        }
        nonce = nonce.wrapping_add(1);
    }
}

/// A valid certificate of a throwaway key with `addresses` long addresses (about 230 bytes
/// each): junk that a seized key signs by the hundred.
pub fn junk_certificate(throwaway: AuthorKey, now_ms: u64, nonce: u32, addresses: usize) -> Body {
    const DAY_MS: u64 = 24 * 3600 * 1000;
    Body::NodeCert(NodeCert {
        node_key: throwaway,
        valid_from: now_ms.saturating_sub(DAY_MS),
        valid_until: now_ms.saturating_add(DAY_MS),
        addresses: (0..addresses)
            .map(|n| format!("/dns4/{nonce}-{n}-{}.example/tcp/1", "a".repeat(200)))
            .collect(),
    })
}

/// How many statements (revocations and certificates) signed by `signer` `node` stores.
pub fn statements_of(simulation: &Simulation, node: NodeId, signer: &AuthorKey) -> usize {
    let store = &simulation.node(node).store;
    [KIND_REVOCATION, KIND_NODE_CERT]
        .iter()
        .filter_map(|kind| store.by_kind(kind).ok())
        .flatten()
        .filter(|stored| {
            solidarity_proto::Envelope::decode(&stored.envelope)
                .is_ok_and(|envelope| envelope.signer == *signer)
        })
        .count()
}

/// A second message at the seq of `node`'s latest one: what a second holder of its key
/// signs (a fork). `None` while the node has signed nothing.
pub fn fork_of_latest(
    simulation: &Simulation,
    node: NodeId,
    summary: &str,
) -> Option<SignedMessage> {
    let state = simulation.node(node);
    let key = &simulation.federation.keys[node.0];
    let (seq, _) = state
        .store
        .chain_head(&simulation.federation.members[node.0])
        .ok()
        .flatten()?;
    let prev = if seq > 1 {
        state
            .store
            .id_at(&simulation.federation.members[node.0], seq - 1)
            .ok()
            .flatten()
    } else {
        None
    };
    Some(signed_at(
        key,
        simulation,
        seq,
        prev,
        simulation.local_now(node),
        &alert(summary),
    ))
}

/// The next message of `node`'s chain, signed outside its engine (by modified code).
pub fn next_in_chain(simulation: &Simulation, node: NodeId, body: &Body) -> SignedMessage {
    let author = simulation.federation.members[node.0];
    let head = simulation
        .node(node)
        .store
        .chain_head(&author)
        .ok()
        .flatten();
    let (seq, prev) = head.map_or((1, None), |(seq, id)| (seq + 1, Some(id)));
    signed_at(
        &simulation.federation.keys[node.0],
        simulation,
        seq,
        prev,
        simulation.local_now(node),
        body,
    )
}

/// Whether `node` stores `id`.
pub fn holds(simulation: &Simulation, node: NodeId, id: &MessageId) -> bool {
    simulation.node(node).store.contains(id).unwrap_or(false)
}

/// The nodes among `nodes` that do not store every one of `ids`.
pub fn missing(simulation: &Simulation, nodes: &[NodeId], ids: &[MessageId]) -> Vec<NodeId> {
    nodes
        .iter()
        .copied()
        .filter(|&node| !ids.iter().all(|id| holds(simulation, node, id)))
        .collect()
}

/// Where a node's engine puts a key, without the node-local times (when it detected a
/// fork), so that two honest nodes' views can be compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TrustLabel {
    /// Trusted.
    Trusted,
    /// Revoked.
    Revoked,
    /// Its certifying identity is revoked.
    IdentityRevoked,
    /// Forked.
    Forked,
    /// Its certificate ended.
    CertificateEnded,
}

fn label(standing: &Standing) -> TrustLabel {
    match standing {
        Standing::Trusted => TrustLabel::Trusted,
        Standing::Revoked(_) => TrustLabel::Revoked,
        Standing::IdentityRevoked { .. } => TrustLabel::IdentityRevoked,
        Standing::Forked { .. } => TrustLabel::Forked,
        Standing::CertificateEnded { .. } => TrustLabel::CertificateEnded,
    }
}

/// How `node` stands towards every key it lists.
pub fn trust_view(simulation: &Simulation, node: NodeId) -> BTreeMap<AuthorKey, TrustLabel> {
    simulation
        .node(node)
        .engine
        .members()
        .iter()
        .map(|(key, listed)| (*key, label(&listed.standing)))
        .collect()
}

/// How `node` stands towards `key` (`None`: not listed).
pub fn trust_of(simulation: &Simulation, node: NodeId, key: &AuthorKey) -> Option<TrustLabel> {
    simulation
        .node(node)
        .engine
        .members()
        .get(key)
        .map(|listed| label(&listed.standing))
}

/// The keys on which honest nodes disagree, each with how the nodes stand towards it. A
/// node's view of its own key is left out: it does not list itself.
pub fn trust_disagreements(
    simulation: &Simulation,
    honest: &[NodeId],
) -> Vec<(AuthorKey, BTreeMap<Option<TrustLabel>, usize>)> {
    let views: Vec<(AuthorKey, BTreeMap<AuthorKey, TrustLabel>)> = honest
        .iter()
        .map(|&node| {
            (
                simulation.federation.members[node.0],
                trust_view(simulation, node),
            )
        })
        .collect();
    let keys: BTreeSet<AuthorKey> = views
        .iter()
        .flat_map(|(_, view)| view.keys())
        .copied()
        .collect();
    keys.into_iter()
        .filter_map(|key| {
            let mut labels: BTreeMap<Option<TrustLabel>, usize> = BTreeMap::new();
            for (own, view) in &views {
                if *own != key {
                    *labels.entry(view.get(&key).copied()).or_default() += 1;
                }
            }
            (labels.len() > 1).then_some((key, labels))
        })
        .collect()
}

/// The stored messages of `node` whose signer is not in `allowed`: none may exist when
/// `allowed` holds every member key (and every key a member certified).
pub fn stored_from_outside(
    simulation: &Simulation,
    node: NodeId,
    allowed: &BTreeSet<AuthorKey>,
) -> Vec<MessageId> {
    let store = &simulation.node(node).store;
    solidarity_proto::kinds::KINDS
        .iter()
        .filter_map(|kind| store.by_kind(kind.name).ok())
        .flatten()
        .filter(|stored| {
            solidarity_proto::Envelope::decode(&stored.envelope)
                .map_or(true, |envelope| !allowed.contains(&envelope.signer))
        })
        .map(|stored| stored.id)
        .collect()
}

/// How many chain messages of `author` `node` stores.
pub fn stored_of(simulation: &Simulation, node: NodeId, author: &AuthorKey) -> usize {
    simulation
        .node(node)
        .store
        .author_range(author, 1, usize::MAX)
        .map_or(0, |range| range.len())
}

/// A canary stating every code, due again in `interval_secs`, with a fresh token.
pub fn canary(interval_secs: u64, token: [u8; 32]) -> Body {
    Body::Canary(Canary {
        statement: "As of today we have received no warrant.".into(),
        codes: CanaryCode::ALL.to_vec(),
        interval_secs,
        token: token.to_vec(),
    })
}
