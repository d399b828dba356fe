//! In-memory views of alerts and offers, fed by every stored message and folded with the
//! pure rules of `solidarity_proto::state`.

use std::collections::HashMap;

use solidarity_proto::payload::{
    Alert, AlertUpdate, Canary, Endorsement, MirrorOffer, MirrorWithdraw, NodeCert, Payload,
    Revocation, Vouch,
};
use solidarity_proto::state::{self, AlertView, OfferView, Stored};
use solidarity_proto::{Body, Envelope, MessageId, payload};
use solidarity_store::{Store, StoreError};

#[derive(Default)]
pub struct Views {
    alerts: HashMap<MessageId, Stored<Alert>>,
    updates: HashMap<MessageId, Vec<Stored<AlertUpdate>>>,
    offers: HashMap<MessageId, Stored<MirrorOffer>>,
    withdrawals: Vec<Stored<MirrorWithdraw>>,
    /// Each author's two latest canaries, newest last.
    canaries: HashMap<solidarity_proto::AuthorKey, Vec<Stored<Canary>>>,
    /// Endorsements and disputes by alert id.
    endorsements: HashMap<MessageId, Vec<Stored<Endorsement>>>,
    vouches: Vec<Stored<Vouch>>,
    /// Every revocation stored.
    revocations: Vec<Stored<Revocation>>,
    /// Every node certificate stored.
    certificates: Vec<Stored<NodeCert>>,
}

fn stored<T>(
    id: MessageId,
    signer: solidarity_proto::AuthorKey,
    payload: &Payload,
    body: T,
) -> Stored<T> {
    Stored {
        id,
        author: signer,
        seq: payload.seq,
        created_at: payload.created_at,
        expires_at: payload.expires_at,
        body,
    }
}

impl Views {
    /// Builds the views from every stored message of a displayed kind.
    pub fn load(store: &dyn Store) -> Result<Self, StoreError> {
        let mut views = Self::default();
        for kind in [
            payload::KIND_ALERT,
            payload::KIND_ALERT_UPDATE,
            payload::KIND_MIRROR_OFFER,
            payload::KIND_MIRROR_WITHDRAW,
            payload::KIND_CANARY,
            payload::KIND_ENDORSEMENT,
            payload::KIND_VOUCH,
            payload::KIND_REVOCATION,
            payload::KIND_NODE_CERT,
        ] {
            for stored in store.by_kind(kind)? {
                let decoded = Envelope::decode(&stored.envelope)
                    .ok()
                    .and_then(|envelope| {
                        let payload = Payload::decode(&envelope.payload).ok()?;
                        let body = Body::decode(&payload.kind, &payload.body).ok()?;
                        Some((envelope.signer, payload, body))
                    });
                match decoded {
                    Some((signer, payload, body)) => views.add(stored.id, signer, &payload, body),
                    None => {
                        tracing::warn!(id = %stored.id.short(), "stored message no longer decodes; not shown")
                    }
                }
            }
        }
        Ok(views)
    }

    /// Adds one accepted message.
    pub fn add(
        &mut self,
        id: MessageId,
        signer: solidarity_proto::AuthorKey,
        payload: &Payload,
        body: Body,
    ) {
        match body {
            Body::Alert(alert) => {
                self.alerts.insert(id, stored(id, signer, payload, alert));
            }
            Body::AlertUpdate(update) => self
                .updates
                .entry(update.alert)
                .or_default()
                .push(stored(id, signer, payload, update)),
            Body::MirrorOffer(offer) => {
                self.offers.insert(id, stored(id, signer, payload, offer));
            }
            Body::MirrorWithdraw(withdraw) => {
                self.withdrawals.push(stored(id, signer, payload, withdraw));
            }
            Body::Canary(canary) => {
                let kept = self.canaries.entry(signer).or_default();
                kept.push(stored(id, signer, payload, canary));
                kept.sort_by_key(|canary| canary.seq);
                if kept.len() > 2 {
                    kept.remove(0);
                }
            }
            Body::Endorsement(endorsement) => self
                .endorsements
                .entry(endorsement.alert)
                .or_default()
                .push(stored(id, signer, payload, endorsement)),
            Body::Vouch(vouch) => self.vouches.push(stored(id, signer, payload, vouch)),
            Body::Revocation(revocation) => {
                self.revocations
                    .push(stored(id, signer, payload, revocation));
            }
            Body::NodeCert(certificate) => {
                self.certificates
                    .push(stored(id, signer, payload, certificate));
            }
            Body::Unknown => {}
        }
    }

    /// Endorsements and disputes of an alert.
    pub fn endorsements_of(&self, alert: &MessageId) -> &[Stored<Endorsement>] {
        self.endorsements.get(alert).map_or(&[], Vec::as_slice)
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

    /// The raw alert, to check who may update it.
    pub fn alert(&self, id: &MessageId) -> Option<&Stored<Alert>> {
        self.alerts.get(id)
    }

    /// The raw offer, to check who may withdraw it.
    pub fn offer(&self, id: &MessageId) -> Option<&Stored<MirrorOffer>> {
        self.offers.get(id)
    }

    /// Drops everything expired at `now_ms` (the store deletes it in the same sweep).
    pub fn expire(&mut self, now_ms: u64) {
        let live = |expires_at: Option<u64>| expires_at.is_none_or(|at| at > now_ms);
        self.alerts.retain(|_, alert| live(alert.expires_at));
        for updates in self.updates.values_mut() {
            updates.retain(|update| live(update.expires_at));
        }
        self.offers.retain(|_, offer| live(offer.expires_at));
        self.withdrawals
            .retain(|withdraw| live(withdraw.expires_at));
    }

    /// Alerts with their current state, for display.
    pub fn alert_views(&self, now_ms: u64) -> Vec<AlertView> {
        let mut views: Vec<AlertView> = self
            .alerts
            .values()
            .filter(|alert| alert.expires_at.is_none_or(|at| at > now_ms))
            .map(|alert| {
                let updates = self.updates.get(&alert.id).cloned().unwrap_or_default();
                state::derive_alert(alert.clone(), updates)
            })
            .collect();
        state::sort_for_display(&mut views);
        views
    }

    /// Live offers, newest first.
    pub fn offer_views(&self, now_ms: u64) -> Vec<OfferView> {
        let mut views: Vec<OfferView> = self
            .offers
            .values()
            .filter_map(|offer| state::derive_offer(offer.clone(), &self.withdrawals, now_ms))
            .collect();
        views.sort_by_key(|view| std::cmp::Reverse(view.created_at));
        views
    }
}
