//! What scenarios are made of: the messages admins and hostile members sign, and the
//! questions asked of a federation (who holds what, who trusts whom, what held).

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::SigningKey;
use solidarity_proto::envelope::{self, SignedMessage};
use solidarity_proto::payload::{
    Alert, AlertCategory, AlertStatus, AlertUpdate, Body, Revocation, Severity,
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
