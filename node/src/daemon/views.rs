//! What the node reads back from its store to decide and to show.
//!
//! - [`Views`] keeps in memory the few messages trust and canary checks read on every
//!   decision (revocations, certificates, vouches, each author's two latest canaries, kept past
//!   their expiry). They are
//!   small sets, loaded by kind at start-up; nothing else is read then.
//! - [`Shown`] keeps the newest alerts and offers with what refers to them, for the status
//!   page and the CLI; memory does not grow with the number of stored alerts.

use std::collections::{BTreeMap, HashMap, HashSet};

use solidarity_proto::payload::{
    Alert, AlertUpdate, Canary, Endorsement, MirrorOffer, MirrorWithdraw, Payload, Vouch,
};
use solidarity_proto::state::{self, OfferView, Stored};
use solidarity_proto::trust::Statements;
use solidarity_proto::{AuthorKey, Body, Envelope, MessageId, payload};
use solidarity_store::{Store, StoreError, StoredEnvelope};

/// Most alerts (and offers) the status page and `alert list` show: the newest ones.
pub const DISPLAY_LIMIT: usize = 200;

#[derive(Default)]
pub struct Views {
    /// Each author's two latest canaries, newest last, kept after they expire (SPEC §13.3).
    canaries: HashMap<AuthorKey, Vec<Stored<Canary>>>,
    vouches: Vec<Stored<Vouch>>,
    /// Every revocation and node certificate stored, indexed for trust decisions.
    statements: Statements,
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
pub fn decode(stored: &StoredEnvelope) -> Option<(AuthorKey, Payload, Body)> {
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
        for (_, kept) in store.kept_canaries()? {
            for stored in kept {
                if let Some((signer, payload, body)) = decode(&stored) {
                    views.add(stored.id, signer, &payload, body);
                }
            }
        }
        for kind in [
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
                if kept.iter().any(|held| held.seq == payload.seq) {
                    return;
                }
                kept.push(stored(id, signer, payload, canary));
                kept.sort_by_key(|canary| canary.seq);
                if kept.len() > 2 {
                    kept.remove(0);
                }
            }
            Body::Vouch(vouch) => self.vouches.push(stored(id, signer, payload, vouch)),
            Body::Revocation(revocation) => {
                self.statements
                    .add_revocation(stored(id, signer, payload, revocation));
            }
            Body::NodeCert(certificate) => {
                self.statements
                    .add_certificate(stored(id, signer, payload, certificate));
            }
            Body::Alert(_)
            | Body::AlertUpdate(_)
            | Body::MirrorOffer(_)
            | Body::MirrorWithdraw(_)
            | Body::Endorsement(_)
            | Body::Unknown => {}
        }
    }

    /// Every revocation and node certificate.
    pub fn statements(&self) -> &Statements {
        &self.statements
    }

    /// Makes final the revocations that hold under `identities` (see `Statements::settle`).
    pub fn settle_revocations(&mut self, identities: &std::collections::BTreeSet<AuthorKey>) {
        self.statements.settle(identities);
    }

    /// Every vouch and vouch withdrawal.
    pub fn vouches(&self) -> &[Stored<Vouch>] {
        &self.vouches
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
}

/// An alert as shown, with the updates, endorsements and disputes it received.
pub struct ShownAlert {
    pub alert: Stored<Alert>,
    pub updates: Vec<Stored<AlertUpdate>>,
    pub endorsements: Vec<Stored<Endorsement>>,
}

struct ShownOffer {
    offer: Stored<MirrorOffer>,
    withdrawals: Vec<Stored<MirrorWithdraw>>,
}

/// The newest [`DISPLAY_LIMIT`] alerts and offers with what refers to them, decoded once:
/// what the status page and `alert list` show, kept up to date message by message so a
/// snapshot costs no store read. Older ones stay on disk only.
pub struct Shown {
    /// Most alerts (and most offers) kept.
    limit: usize,
    alerts: BTreeMap<(u64, MessageId), ShownAlert>,
    offers: BTreeMap<(u64, MessageId), ShownOffer>,
    /// `created_at` of every shown alert and offer, by id.
    created: HashMap<MessageId, u64>,
}

impl Shown {
    /// The newest `limit` alerts and offers in the store, with what refers to them.
    pub fn load(store: &dyn Store, limit: usize) -> Result<Self, StoreError> {
        let mut shown = Self {
            limit,
            alerts: BTreeMap::new(),
            offers: BTreeMap::new(),
            created: HashMap::new(),
        };
        for kind in [payload::KIND_ALERT, payload::KIND_MIRROR_OFFER] {
            for stored in store.newest(kind, limit)? {
                if let Some((signer, payload, body)) = decode(&stored) {
                    shown.add(store, stored.id, signer, &payload, &body)?;
                }
            }
        }
        Ok(shown)
    }

    /// One stored alert with what refers to it; empty when `id` is no stored alert.
    pub fn load_one(store: &dyn Store, id: &MessageId) -> Result<Self, StoreError> {
        let mut shown = Self {
            limit: 1,
            alerts: BTreeMap::new(),
            offers: BTreeMap::new(),
            created: HashMap::new(),
        };
        if let Some(envelope) = store.envelope(id)?
            && let Some((signer, payload, body @ Body::Alert(_))) = decode(&StoredEnvelope {
                id: *id,
                seq: 0,
                envelope,
            })
        {
            shown.add(store, *id, signer, &payload, &body)?;
        }
        Ok(shown)
    }

    /// Takes in one stored message; a new alert or offer brings along what the store
    /// already holds that refers to it (sync may deliver an update before its alert).
    pub fn add(
        &mut self,
        store: &dyn Store,
        id: MessageId,
        signer: AuthorKey,
        payload: &Payload,
        body: &Body,
    ) -> Result<(), StoreError> {
        match body {
            Body::Alert(alert) => {
                let key = (payload.created_at, id);
                if !self.admits(&self.alerts, key) {
                    return Ok(());
                }
                let mut shown = ShownAlert {
                    alert: stored(id, signer, payload, alert.clone()),
                    updates: Vec::new(),
                    endorsements: Vec::new(),
                };
                for referring in store.referring(&id)? {
                    match decode(&referring) {
                        Some((author, header, Body::AlertUpdate(update))) => {
                            shown
                                .updates
                                .push(stored(referring.id, author, &header, update));
                        }
                        Some((author, header, Body::Endorsement(endorsement))) => shown
                            .endorsements
                            .push(stored(referring.id, author, &header, endorsement)),
                        _ => {}
                    }
                }
                self.created.insert(id, payload.created_at);
                self.alerts.insert(key, shown);
                if self.alerts.len() > self.limit
                    && let Some(((_, oldest), _)) = self.alerts.pop_first()
                {
                    self.created.remove(&oldest);
                }
            }
            Body::MirrorOffer(offer) => {
                let key = (payload.created_at, id);
                if !self.admits(&self.offers, key) {
                    return Ok(());
                }
                let withdrawals = store
                    .referring(&id)?
                    .iter()
                    .filter_map(|referring| match decode(referring) {
                        Some((author, header, Body::MirrorWithdraw(withdraw))) => {
                            Some(stored(referring.id, author, &header, withdraw))
                        }
                        _ => None,
                    })
                    .collect();
                self.created.insert(id, payload.created_at);
                self.offers.insert(
                    key,
                    ShownOffer {
                        offer: stored(id, signer, payload, offer.clone()),
                        withdrawals,
                    },
                );
                if self.offers.len() > self.limit
                    && let Some(((_, oldest), _)) = self.offers.pop_first()
                {
                    self.created.remove(&oldest);
                }
            }
            Body::AlertUpdate(update) => {
                if let Some(shown) = self.alert_mut(&update.alert) {
                    shown
                        .updates
                        .push(stored(id, signer, payload, update.clone()));
                }
            }
            Body::Endorsement(endorsement) => {
                if let Some(shown) = self.alert_mut(&endorsement.alert) {
                    shown
                        .endorsements
                        .push(stored(id, signer, payload, endorsement.clone()));
                }
            }
            Body::MirrorWithdraw(withdraw) => {
                if let Some(created_at) = self.created.get(&withdraw.offer).copied()
                    && let Some(shown) = self.offers.get_mut(&(created_at, withdraw.offer))
                {
                    shown
                        .withdrawals
                        .push(stored(id, signer, payload, withdraw.clone()));
                }
            }
            Body::Canary(_)
            | Body::Vouch(_)
            | Body::Revocation(_)
            | Body::NodeCert(_)
            | Body::Unknown => {}
        }
        Ok(())
    }

    /// Whether an alert or offer created at `key` is among the newest `limit`.
    fn admits<T>(&self, shown: &BTreeMap<(u64, MessageId), T>, key: (u64, MessageId)) -> bool {
        !shown.contains_key(&key)
            && (shown.len() < self.limit
                || shown
                    .first_key_value()
                    .is_some_and(|(oldest, _)| key > *oldest))
    }

    fn alert_mut(&mut self, id: &MessageId) -> Option<&mut ShownAlert> {
        let created_at = self.created.get(id).copied()?;
        self.alerts.get_mut(&(created_at, *id))
    }

    /// Drops what expired at `now_ms` (the store deletes it in the same sweep).
    pub fn expire(&mut self, now_ms: u64) {
        let live = |expires_at: Option<u64>| expires_at.is_none_or(|at| at > now_ms);
        self.alerts.retain(|_, shown| live(shown.alert.expires_at));
        self.offers.retain(|_, shown| live(shown.offer.expires_at));
        for shown in self.alerts.values_mut() {
            shown.updates.retain(|update| live(update.expires_at));
            shown
                .endorsements
                .retain(|endorsement| live(endorsement.expires_at));
        }
        let ids: HashSet<MessageId> = self
            .alerts
            .keys()
            .chain(self.offers.keys())
            .map(|(_, id)| *id)
            .collect();
        self.created.retain(|id, _| ids.contains(id));
    }

    /// Live shown alerts.
    pub fn alerts(&self, now_ms: u64) -> impl Iterator<Item = &ShownAlert> {
        self.alerts
            .values()
            .filter(move |shown| shown.alert.expires_at.is_none_or(|at| at > now_ms))
    }

    /// Live, not withdrawn offers, newest first.
    pub fn offer_views(&self, now_ms: u64) -> Vec<OfferView> {
        self.offers
            .values()
            .rev()
            .filter_map(|shown| {
                state::derive_offer(shown.offer.clone(), &shown.withdrawals, now_ms)
            })
            .collect()
    }
}
