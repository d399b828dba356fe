//! The fork rule's suspect seq and the engine's start state, decoded from stored
//! envelopes.

use super::*;

/// The fork rule (SPEC §9.1): from which seq a forked key's messages are suspect: the
/// seq both chains claim, or the one before a message whose `prev` diverges.
pub fn fork_from_seq(fork: &solidarity_proto::Fork) -> u64 {
    match fork.point {
        solidarity_proto::ForkPoint::SameSeq => fork.payload.seq,
        solidarity_proto::ForkPoint::DivergentPrev => fork.payload.seq.saturating_sub(1),
    }
}

/// Keeps a canary among its author's two latest (by seq).
pub(super) fn keep_canary(kept: &mut Vec<Stored<Canary>>, canary: Stored<Canary>) {
    if kept.iter().any(|held| held.seq == canary.seq) {
        return;
    }
    kept.push(canary);
    kept.sort_by_key(|canary| canary.seq);
    if kept.len() > 2 {
        kept.remove(0);
    }
}

pub(super) fn stored<T>(id: MessageId, author: AuthorKey, payload: &Payload, body: T) -> Stored<T> {
    Stored {
        id,
        author,
        seq: payload.seq,
        created_at: payload.created_at,
        expires_at: payload.expires_at,
        body,
    }
}

/// Every stored statement, vouch and kept canary, decoded (the engine's start state);
/// `envelopes` are stored envelopes of kinds `vouch`, `revocation`, `node-cert` and the
/// kept `canary` ones (others are skipped).
pub fn load(
    envelopes: impl IntoIterator<Item = Vec<u8>>,
    compromised: BTreeMap<AuthorKey, Compromised>,
) -> Loaded {
    let mut revocations: Vec<Stored<Revocation>> = Vec::new();
    let mut certificates: Vec<Stored<NodeCert>> = Vec::new();
    let mut vouches = Vec::new();
    let mut canaries: HashMap<AuthorKey, Vec<Stored<Canary>>> = HashMap::new();
    for bytes in envelopes {
        let Ok(decoded) = Envelope::decode(&bytes) else {
            continue;
        };
        let Ok(payload) = Payload::decode(&decoded.payload) else {
            continue;
        };
        let Ok(body) = Body::decode(&payload.kind, &payload.body) else {
            continue;
        };
        let (id, author) = (decoded.id(), decoded.signer);
        match body {
            Body::Revocation(revocation) => {
                revocations.push(stored(id, author, &payload, revocation));
            }
            Body::NodeCert(certificate) => {
                certificates.push(stored(id, author, &payload, certificate));
            }
            Body::Vouch(vouch) => vouches.push(stored(id, author, &payload, vouch)),
            Body::Canary(canary) => keep_canary(
                canaries.entry(author).or_default(),
                stored(id, author, &payload, canary),
            ),
            _ => {}
        }
    }
    Loaded {
        statements: Statements::new(revocations, certificates),
        vouches,
        compromised,
        canaries,
    }
}
