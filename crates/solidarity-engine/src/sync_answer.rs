//! The sync responder (SPEC §11.5): one page of what the requester misses.
//!
//! - A request of another federation, or one that does not decode, gets an empty page.
//! - Statement phase: revocations first, then certificates, of the listed signers, kept
//!   or relayed, none the requester holds (see [`crate::statements::answer`]).
//! - Chain phase, per listed author in request order: first our message at the
//!   requester's watermark when it differs from the requester's `head` (fork evidence),
//!   then our envelopes above the watermark, ascending; at most the page limit and
//!   [`sync::MAX_PAGE_BYTES`], `more` when cut short. A watermark at `u64::MAX` asks for
//!   nothing (never wraps to a full dump).
//! - Then the fork evidence kept of the listed authors marked compromised, as room allows.

use solidarity_proto::sync::{self, SyncRequest, SyncResponse};
use solidarity_proto::trust::Statements;
use solidarity_proto::{AuthorKey, FederationId};

use crate::statements::{self, Relay};
use crate::store_read::{StoreRead, or_log};

/// What the responder answers from.
pub struct Responder<'a> {
    /// This node's federation.
    pub federation: &'a FederationId,
    /// Statements kept.
    pub statements: &'a Statements,
    /// Statements relayed.
    pub relay: &'a Relay,
    /// Whether a key is marked compromised (its evidence travels with its chain).
    pub compromised: &'a dyn Fn(&AuthorKey) -> bool,
    /// The store.
    pub store: &'a dyn StoreRead,
}

/// Answers the request `data`.
pub fn answer(data: &[u8], here: &Responder<'_>) -> SyncResponse {
    let request = match SyncRequest::decode(data) {
        Ok(request) if request.fed == *here.federation => request,
        Ok(_) => return SyncResponse::default(),
        Err(decode_error) => {
            tracing::info!(error = %decode_error, "malformed sync request");
            return SyncResponse::default();
        }
    };
    let limit = request.page_limit();
    // The statement phase comes first in every session: a node that was offline knows a
    // key is revoked before it sees what the key's other holder signed.
    if let Some(wanted) = &request.statements {
        let response = statements::answer(wanted, limit, here.statements, here.relay, here.store);
        tracing::debug!(
            sent = response.envelopes.len(),
            more = response.more,
            "answered a statement round"
        );
        return response;
    }
    let store = here.store;
    let mut response = SyncResponse::default();
    let mut bytes = 0usize;
    'authors: for watermark in &request.have {
        // Our message at the requester's head, when it differs, proves a fork.
        if let Some(head) = watermark.head
            && let Some(ours) = or_log(store.id_at(&watermark.author, watermark.seq), None)
            && ours != head
            && let Some(envelope) = or_log(store.envelope(&ours), None)
            && response.envelopes.len() < limit
        {
            bytes += envelope.len();
            response
                .envelopes
                .push(serde_bytes::ByteBuf::from(envelope));
        }
        let Some(from_seq) = watermark.seq.checked_add(1) else {
            continue;
        };
        let wanted = limit - response.envelopes.len() + 1;
        let Ok(page) = store.author_range(&watermark.author, from_seq, wanted) else {
            tracing::error!("store read failed while answering sync");
            break;
        };
        for stored in page {
            if response.envelopes.len() == limit
                || bytes + stored.envelope.len() > sync::MAX_PAGE_BYTES
            {
                response.more = true;
                break 'authors;
            }
            bytes += stored.envelope.len();
            response
                .envelopes
                .push(serde_bytes::ByteBuf::from(stored.envelope));
        }
    }
    // Fork evidence travels with the chains it concerns, after them (so the requester
    // keeps the same first-seen chain as its peers), and a node that was offline learns
    // of a compromise in its first sync.
    let forked: std::collections::BTreeSet<AuthorKey> = request
        .have
        .iter()
        .map(|watermark| watermark.author)
        .filter(|author| (here.compromised)(author))
        .collect();
    for author in &forked {
        for envelope in or_log(store.fork_evidence(author), Vec::new()) {
            if response.envelopes.len() < limit && bytes + envelope.len() <= sync::MAX_PAGE_BYTES {
                bytes += envelope.len();
                response
                    .envelopes
                    .push(serde_bytes::ByteBuf::from(envelope));
            }
        }
    }
    response
}
