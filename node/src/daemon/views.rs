//! What the node reads back from its store to show: [`Shown`] keeps the newest alerts and
//! offers with what refers to them, for the status page and the CLI; memory does not grow
//! with the number of stored alerts. (What trust and canary checks read is the engine's,
//! loaded at start by `solidarity_store::engine_start`.)

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use solidarity_proto::payload::{
    Alert, AlertUpdate, Endorsement, MirrorOffer, MirrorWithdraw, Payload,
};
use solidarity_proto::state::{self, OfferView, Stored};
use solidarity_proto::{AuthorKey, Body, Envelope, MessageId, payload};
use solidarity_store::{Store, StoreError, StoredEnvelope};

/// Most alerts (and offers) the status page and `alert list` show: the newest ones.
pub const DISPLAY_LIMIT: usize = 200;
/// Most alerts (and offers) of one author shown: its newest ones, so that one member's
/// junk cannot push the others' off the views (SPEC §13).
pub const PER_AUTHOR_SHOWN: usize = 20;
/// Most alerts `alert list --all` reads, in all and of one author.
pub const LISTED_LIMIT: usize = 10_000;

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

/// Whether an alert or offer of `author` created at `key` is among the newest `limit`,
/// and among the author's newest `per_author`.
fn admits<T>(
    shown: &BTreeMap<(u64, MessageId), T>,
    by_author: &HashMap<AuthorKey, BTreeSet<(u64, MessageId)>>,
    (limit, per_author): (usize, usize),
    author: AuthorKey,
    key: (u64, MessageId),
) -> bool {
    let newer_than = |oldest: Option<&(u64, MessageId)>| oldest.is_some_and(|oldest| key > *oldest);
    !shown.contains_key(&key)
        && by_author
            .get(&author)
            .is_none_or(|keys| keys.len() < per_author || newer_than(keys.first()))
        && (shown.len() < limit || newer_than(shown.keys().next()))
}

/// After `key` of `author` went into `shown`: drops the author's oldest beyond
/// `per_author`, then the oldest of all beyond `limit`; returns the dropped ids.
fn make_room<T>(
    shown: &mut BTreeMap<(u64, MessageId), T>,
    by_author: &mut HashMap<AuthorKey, BTreeSet<(u64, MessageId)>>,
    (limit, per_author): (usize, usize),
    author: AuthorKey,
    key: (u64, MessageId),
    author_of: impl Fn(&T) -> AuthorKey,
) -> Vec<MessageId> {
    let mut dropped = Vec::new();
    let own = by_author.entry(author).or_default();
    own.insert(key);
    if own.len() > per_author
        && let Some(oldest) = own.pop_first()
    {
        shown.remove(&oldest);
        dropped.push(oldest.1);
    }
    if shown.len() > limit
        && let Some((oldest, item)) = shown.pop_first()
    {
        if let Some(keys) = by_author.get_mut(&author_of(&item)) {
            keys.remove(&oldest);
        }
        dropped.push(oldest.1);
    }
    dropped
}

/// Decodes a stored envelope (stored ones were valid when accepted).
pub fn decode(stored: &StoredEnvelope) -> Option<(AuthorKey, Payload, Body)> {
    let decoded = decode_envelope(&stored.envelope);
    if decoded.is_none() {
        tracing::warn!(id = %stored.id.short(), "stored message no longer decodes; not shown");
    }
    decoded
}

/// Decodes envelope bytes into signer, payload and body (no signature check).
pub fn decode_envelope(bytes: &[u8]) -> Option<(AuthorKey, Payload, Body)> {
    let envelope = Envelope::decode(bytes).ok()?;
    let payload = Payload::decode(&envelope.payload).ok()?;
    let body = Body::decode(&payload.kind, &payload.body).ok()?;
    Some((envelope.signer, payload, body))
}

/// Most updates of one alert loaded and shown: its author's latest ones (SPEC §12).
pub const UPDATES_SHOWN: usize = 64;

/// An alert as shown, with its author's latest updates and each member's latest stance.
pub struct ShownAlert {
    pub alert: Stored<Alert>,
    /// At most [`UPDATES_SHOWN`], by the alert's author.
    pub updates: Vec<Stored<AlertUpdate>>,
    /// How many older updates by the author are stored but not loaded.
    pub earlier_updates: u64,
    /// Each signer's latest endorsement, dispute or retraction.
    pub endorsements: Vec<Stored<Endorsement>>,
}

impl ShownAlert {
    /// The alert with its author's latest updates and each other signer's latest stance,
    /// read from the store without loading all that refers to it.
    fn load(store: &dyn Store, alert: Stored<Alert>) -> Result<Self, StoreError> {
        let mut shown = Self {
            updates: Vec::new(),
            earlier_updates: 0,
            endorsements: Vec::new(),
            alert,
        };
        let id = shown.alert.id;
        for group in store.referring_newest(&id, payload::KIND_ALERT_UPDATE, UPDATES_SHOWN)? {
            // Only the author's updates apply (SPEC §12); others are never loaded.
            if group.author != shown.alert.author {
                continue;
            }
            shown.earlier_updates = group.total.saturating_sub(group.newest.len() as u64);
            for referring in group.newest.iter().rev() {
                if let Some((author, header, Body::AlertUpdate(update))) = decode(referring) {
                    shown
                        .updates
                        .push(stored(referring.id, author, &header, update));
                }
            }
        }
        for group in store.referring_newest(&id, payload::KIND_ENDORSEMENT, 1)? {
            for referring in &group.newest {
                if let Some((author, header, Body::Endorsement(endorsement))) = decode(referring) {
                    shown
                        .endorsements
                        .push(stored(referring.id, author, &header, endorsement));
                }
            }
        }
        Ok(shown)
    }

    /// Takes in a newly stored update, keeping the latest [`UPDATES_SHOWN`]; one shown
    /// already (loaded from the store with its alert, written in the same batch) once.
    fn add_update(&mut self, update: Stored<AlertUpdate>) {
        if update.author != self.alert.author
            || self.updates.iter().any(|shown| shown.id == update.id)
        {
            return;
        }
        self.updates.push(update);
        if self.updates.len() > UPDATES_SHOWN
            && let Some(oldest) = self
                .updates
                .iter()
                .enumerate()
                .min_by_key(|(_, update)| update.seq)
                .map(|(index, _)| index)
        {
            self.updates.remove(oldest);
            self.earlier_updates = self.earlier_updates.saturating_add(1);
        }
    }

    /// Takes in a newly stored stance, keeping each signer's latest.
    fn add_endorsement(&mut self, endorsement: Stored<Endorsement>) {
        match self
            .endorsements
            .iter_mut()
            .find(|kept| kept.author == endorsement.author)
        {
            Some(kept) if kept.seq < endorsement.seq => *kept = endorsement,
            Some(_) => {}
            None => self.endorsements.push(endorsement),
        }
    }
}

struct ShownOffer {
    offer: Stored<MirrorOffer>,
    withdrawals: Vec<Stored<MirrorWithdraw>>,
}

/// The newest [`DISPLAY_LIMIT`] alerts and offers, at most [`PER_AUTHOR_SHOWN`] of each
/// author, with what refers to them, decoded once: what the status page and `alert list`
/// show, kept up to date message by message so a snapshot costs no store read. Older ones
/// stay on disk only, and come back when shown ones expire.
pub struct Shown {
    /// Most alerts (and most offers) kept, in all and of one author.
    limit: usize,
    per_author: usize,
    /// This node's key: its own alerts count against `limit` only (its admin raised them).
    own: Option<AuthorKey>,
    alerts: BTreeMap<(u64, MessageId), ShownAlert>,
    offers: BTreeMap<(u64, MessageId), ShownOffer>,
    /// `created_at` of every shown alert and offer, by id.
    created: HashMap<MessageId, u64>,
    /// The keys of each author's shown alerts, and of its shown offers.
    alerts_by: HashMap<AuthorKey, BTreeSet<(u64, MessageId)>>,
    offers_by: HashMap<AuthorKey, BTreeSet<(u64, MessageId)>>,
}

impl Shown {
    fn empty(limit: usize) -> Self {
        Self {
            limit,
            per_author: PER_AUTHOR_SHOWN,
            own: None,
            alerts: BTreeMap::new(),
            offers: BTreeMap::new(),
            created: HashMap::new(),
            alerts_by: HashMap::new(),
            offers_by: HashMap::new(),
        }
    }

    /// The newest `limit` alerts and offers in the store live at `now_ms`, at most
    /// [`PER_AUTHOR_SHOWN`] of each author, with what refers to them. Reads a bounded number of messages per
    /// author, however many one author stored.
    pub fn load(
        store: &dyn Store,
        limit: usize,
        now_ms: u64,
        own: AuthorKey,
    ) -> Result<Self, StoreError> {
        Self::load_per_author(store, (limit, PER_AUTHOR_SHOWN), now_ms, own)
    }

    /// As [`Self::load`], with `per_author` of each author (`alert list --all`).
    pub fn load_per_author(
        store: &dyn Store,
        (limit, per_author): (usize, usize),
        now_ms: u64,
        own: AuthorKey,
    ) -> Result<Self, StoreError> {
        let mut shown = Self::empty(limit);
        shown.per_author = per_author;
        shown.own = Some(own);
        for kind in [payload::KIND_ALERT, payload::KIND_MIRROR_OFFER] {
            let others = store.newest_per_author(kind, per_author, now_ms)?;
            let own_beyond = store.newest_by(kind, &own, limit, now_ms)?;
            for stored in others.into_iter().chain(own_beyond) {
                if let Some((signer, payload, body)) = decode(&stored) {
                    shown.add(store, stored.id, signer, &payload, &body)?;
                }
            }
        }
        Ok(shown)
    }

    /// One stored alert with what refers to it; empty when `id` is no stored alert.
    pub fn load_one(store: &dyn Store, id: &MessageId) -> Result<Self, StoreError> {
        let mut shown = Self::empty(1);
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
                if !admits(
                    &self.alerts,
                    &self.alerts_by,
                    (self.limit, self.cap_of(signer)),
                    signer,
                    key,
                ) {
                    return Ok(());
                }
                let shown = ShownAlert::load(store, stored(id, signer, payload, alert.clone()))?;
                self.created.insert(id, payload.created_at);
                self.alerts.insert(key, shown);
                let caps = (self.limit, self.cap_of(signer));
                for dropped in make_room(
                    &mut self.alerts,
                    &mut self.alerts_by,
                    caps,
                    signer,
                    key,
                    |shown| shown.alert.author,
                ) {
                    self.created.remove(&dropped);
                }
            }
            Body::MirrorOffer(offer) => {
                let key = (payload.created_at, id);
                if !admits(
                    &self.offers,
                    &self.offers_by,
                    (self.limit, self.cap_of(signer)),
                    signer,
                    key,
                ) {
                    return Ok(());
                }
                // Only the offer's author can withdraw it, and once is enough.
                let withdrawals = store
                    .referring_newest(&id, payload::KIND_MIRROR_WITHDRAW, 1)?
                    .iter()
                    .filter(|group| group.author == signer)
                    .flat_map(|group| &group.newest)
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
                let caps = (self.limit, self.cap_of(signer));
                for dropped in make_room(
                    &mut self.offers,
                    &mut self.offers_by,
                    caps,
                    signer,
                    key,
                    |shown| shown.offer.author,
                ) {
                    self.created.remove(&dropped);
                }
            }
            Body::AlertUpdate(update) => {
                if let Some(shown) = self.alert_mut(&update.alert) {
                    shown.add_update(stored(id, signer, payload, update.clone()));
                }
            }
            Body::Endorsement(endorsement) => {
                if let Some(shown) = self.alert_mut(&endorsement.alert) {
                    shown.add_endorsement(stored(id, signer, payload, endorsement.clone()));
                }
            }
            Body::MirrorWithdraw(withdraw) => {
                if let Some(created_at) = self.created.get(&withdraw.offer).copied()
                    && let Some(shown) = self.offers.get_mut(&(created_at, withdraw.offer))
                    && shown.offer.author == signer
                    && shown.withdrawals.is_empty()
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

    /// Most shown of `author`: the per-author cap, except for this node's own.
    fn cap_of(&self, author: AuthorKey) -> usize {
        if self.own == Some(author) {
            self.limit
        } else {
            self.per_author
        }
    }

    fn alert_mut(&mut self, id: &MessageId) -> Option<&mut ShownAlert> {
        let created_at = self.created.get(id).copied()?;
        self.alerts.get_mut(&(created_at, *id))
    }

    /// Drops what expired at `now_ms` (the store deletes it in the same sweep); true when
    /// a shown alert or offer went, so the caller loads the set again from the store
    /// (what was held back by the limits comes back).
    pub fn expire(&mut self, now_ms: u64) -> bool {
        let live = |expires_at: Option<u64>| expires_at.is_none_or(|at| at > now_ms);
        let before = self.alerts.len() + self.offers.len();
        self.alerts.retain(|_, shown| live(shown.alert.expires_at));
        self.offers.retain(|_, shown| live(shown.offer.expires_at));
        let gone = self.alerts.len() + self.offers.len() < before;
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
        for keys in self
            .alerts_by
            .values_mut()
            .chain(self.offers_by.values_mut())
        {
            keys.retain(|(_, id)| ids.contains(id));
        }
        self.alerts_by.retain(|_, keys| !keys.is_empty());
        self.offers_by.retain(|_, keys| !keys.is_empty());
        gone
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
