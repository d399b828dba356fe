//! What the node reads back from its store to decide and to show.
//!
//! - [`Views`] keeps in memory the few messages trust and canary checks read on every
//!   decision (revocations, certificates, vouches, each author's latest canaries). They are
//!   small sets, loaded by kind at start-up; nothing else is read then.
//! - [`displayed_alerts`] and [`displayed_offers`] read the newest alerts and offers from the
//!   store with what refers to them, for the status page and the CLI, so memory does not
//!   grow with the number of stored alerts.

use std::collections::HashMap;

use solidarity_proto::payload::{
    Alert, AlertUpdate, Canary, Endorsement, MirrorOffer, MirrorWithdraw, NodeCert, Payload,
    Revocation, Vouch,
};
use solidarity_proto::state::{self, AlertView, OfferView, Stored};
use solidarity_proto::{AuthorKey, Body, Envelope, MessageId, payload};
use solidarity_store::{Store, StoreError, StoredEnvelope};

/// Most alerts (and offers) the status page and `alert list` show: the newest ones.
pub const DISPLAY_LIMIT: usize = 200;

#[derive(Default)]
pub struct Views {
    /// Each author's two latest canaries, newest last.
    canaries: HashMap<AuthorKey, Vec<Stored<Canary>>>,
    vouches: Vec<Stored<Vouch>>,
    /// Every revocation stored.
    revocations: Vec<Stored<Revocation>>,
    /// Every node certificate stored.
    certificates: Vec<Stored<NodeCert>>,
}

fn stored<T>(id: MessageId, signer: AuthorKey, payload: &Payload, body: T) -> Stored<T> {
    Stored {
        id,
        author: signer,
        seq: payload.seq,
        created_at: payload.created_at,
        expires_at: payload.expires_at,
        body,
    }
}

/// Decodes a stored envelope (stored ones were valid when accepted).
fn decode(stored: &StoredEnvelope) -> Option<(AuthorKey, Payload, Body)> {
    let decoded = Envelope::decode(&stored.envelope)
        .ok()
        .and_then(|envelope| {
            let payload = Payload::decode(&envelope.payload).ok()?;
            let body = Body::decode(&payload.kind, &payload.body).ok()?;
            Some((envelope.signer, payload, body))
        });
    if decoded.is_none() {
        tracing::warn!(id = %stored.id.short(), "stored message no longer decodes; not shown");
    }
    decoded
}

impl Views {
    /// Loads the kinds trust and canary checks read; the store's other messages stay on disk.
    pub fn load(store: &dyn Store) -> Result<Self, StoreError> {
        let mut views = Self::default();
        for kind in [
            payload::KIND_CANARY,
            payload::KIND_VOUCH,
            payload::KIND_REVOCATION,
            payload::KIND_NODE_CERT,
        ] {
            for stored in store.by_kind(kind)? {
                if let Some((signer, payload, body)) = decode(&stored) {
                    views.add(stored.id, signer, &payload, body);
                }
            }
        }
        Ok(views)
    }

    /// Adds one accepted message (kinds kept on disk only are left there).
    pub fn add(&mut self, id: MessageId, signer: AuthorKey, payload: &Payload, body: Body) {
        match body {
            Body::Canary(canary) => {
                let kept = self.canaries.entry(signer).or_default();
                kept.push(stored(id, signer, payload, canary));
                kept.sort_by_key(|canary| canary.seq);
                if kept.len() > 2 {
                    kept.remove(0);
                }
            }
            Body::Vouch(vouch) => self.vouches.push(stored(id, signer, payload, vouch)),
            Body::Revocation(revocation) => {
                self.revocations
                    .push(stored(id, signer, payload, revocation));
            }
            Body::NodeCert(certificate) => {
                self.certificates
                    .push(stored(id, signer, payload, certificate));
            }
            Body::Alert(_)
            | Body::AlertUpdate(_)
            | Body::MirrorOffer(_)
            | Body::MirrorWithdraw(_)
            | Body::Endorsement(_)
            | Body::Unknown => {}
        }
    }

    /// Every revocation.
    pub fn revocations(&self) -> &[Stored<Revocation>] {
        &self.revocations
    }

    /// Every node certificate.
    pub fn certificates(&self) -> &[Stored<NodeCert>] {
        &self.certificates
    }

    /// Every vouch and vouch withdrawal.
    pub fn vouches(&self) -> &[Stored<Vouch>] {
        &self.vouches
    }

    /// The newest standing vouch for `member` by one of `vouchers` (its name and addresses).
    pub fn latest_vouch_for(
        &self,
        member: &solidarity_proto::AuthorKey,
        vouchers: &[solidarity_proto::AuthorKey],
    ) -> Option<&Vouch> {
        self.vouches
            .iter()
            .filter(|vouch| {
                vouch.body.member == *member && vouch.body.vouch && vouchers.contains(&vouch.author)
            })
            .max_by_key(|vouch| vouch.created_at)
            .map(|vouch| &vouch.body)
    }

    /// An author's latest canary and the one before it.
    pub fn canaries(
        &self,
        author: &solidarity_proto::AuthorKey,
    ) -> Option<(&Stored<Canary>, Option<&Stored<Canary>>)> {
        let kept = self.canaries.get(author)?;
        let latest = kept.last()?;
        let previous = (kept.len() > 1).then(|| &kept[0]);
        Some((latest, previous))
    }

    /// Drops canaries expired at `now_ms` (the store deletes them in the same sweep).
    pub fn expire(&mut self, now_ms: u64) {
        for kept in self.canaries.values_mut() {
            kept.retain(|canary| canary.expires_at.is_none_or(|at| at > now_ms));
        }
    }
}

/// An alert as shown, with the endorsements and disputes it received.
pub struct DisplayedAlert {
    pub view: AlertView,
    pub endorsements: Vec<Stored<Endorsement>>,
}

/// The newest [`DISPLAY_LIMIT`] live alerts with their updates folded in, newest first.
pub fn displayed_alerts(store: &dyn Store, now_ms: u64) -> Result<Vec<DisplayedAlert>, StoreError> {
    let mut shown = Vec::new();
    for stored_alert in store.newest(payload::KIND_ALERT, DISPLAY_LIMIT)? {
        let Some((signer, payload, Body::Alert(alert))) = decode(&stored_alert) else {
            continue;
        };
        if payload.expires_at.is_some_and(|at| at <= now_ms) {
            continue;
        }
        let mut updates: Vec<Stored<AlertUpdate>> = Vec::new();
        let mut endorsements = Vec::new();
        for referring in store.referring(&stored_alert.id)? {
            match decode(&referring) {
                Some((author, header, Body::AlertUpdate(update))) => {
                    updates.push(stored(referring.id, author, &header, update));
                }
                Some((author, header, Body::Endorsement(endorsement))) => {
                    endorsements.push(stored(referring.id, author, &header, endorsement));
                }
                _ => {}
            }
        }
        let alert: Stored<Alert> = stored(stored_alert.id, signer, &payload, alert);
        shown.push(DisplayedAlert {
            view: state::derive_alert(alert, updates),
            endorsements,
        });
    }
    Ok(shown)
}

/// The newest [`DISPLAY_LIMIT`] live, not withdrawn offers, newest first.
pub fn displayed_offers(store: &dyn Store, now_ms: u64) -> Result<Vec<OfferView>, StoreError> {
    let mut shown = Vec::new();
    for stored_offer in store.newest(payload::KIND_MIRROR_OFFER, DISPLAY_LIMIT)? {
        let Some((signer, payload, Body::MirrorOffer(offer))) = decode(&stored_offer) else {
            continue;
        };
        let withdrawals: Vec<Stored<MirrorWithdraw>> = store
            .referring(&stored_offer.id)?
            .iter()
            .filter_map(|referring| match decode(referring) {
                Some((author, header, Body::MirrorWithdraw(withdraw))) => {
                    Some(stored(referring.id, author, &header, withdraw))
                }
                _ => None,
            })
            .collect();
        let offer: Stored<MirrorOffer> = stored(stored_offer.id, signer, &payload, offer);
        shown.extend(state::derive_offer(offer, &withdrawals, now_ms));
    }
    Ok(shown)
}
