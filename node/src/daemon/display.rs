//! What the status page and the CLI show of alerts and offers: suspect marks and
//! corroboration (the engine's `marks`), in display order. [`Marks`] is an owned copy of
//! what those read, so a display load that reads the store (`alert list --all`,
//! `alert show`) runs on a blocking reader, off the actor.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use solidarity_control::{AlertDetail, Refusal, RefusalCode, StanceView};
use solidarity_engine::Compromised;
use solidarity_proto::state::{self, AlertView, OfferView};
use solidarity_proto::trust::{self, Statements};
use solidarity_proto::{AuthorKey, MessageId};
use solidarity_store::Store;

use super::views::{self, Shown};

/// What suspect marks and corroboration read, as of when it was taken.
pub struct Marks {
    pub me: AuthorKey,
    pub compromised: BTreeMap<AuthorKey, Compromised>,
    pub statements: Arc<Statements>,
    pub identities: BTreeSet<AuthorKey>,
    /// Each listed key's corroboration group (see `directory::Entry::group`).
    pub groups: HashMap<AuthorKey, String>,
    /// The keys trusted now.
    pub trusted: HashSet<AuthorKey>,
    /// This node's collective, if the admin set one.
    pub own_collective: Option<String>,
    pub confirm_threshold: usize,
}

impl Marks {
    fn revoked_since(&self, key: &AuthorKey) -> Option<u64> {
        trust::revoked_since(key, &self.statements, &self.identities)
    }

    fn suspect(&self, author: &AuthorKey, seq: u64, created_at: u64) -> bool {
        solidarity_engine::marks::is_suspect(
            self.compromised.get(author),
            self.revoked_since(author),
            seq,
            created_at,
        )
    }

    fn group_of(&self, key: &AuthorKey) -> String {
        match self.groups.get(key) {
            Some(group) => group.clone(),
            None if *key == self.me => self.own_collective.clone().unwrap_or_else(|| key.to_hex()),
            None => key.to_hex(),
        }
    }

    /// The shown alerts (with suspect marks and corroboration, in display order) and offers.
    pub fn alert_and_offer_views(
        &self,
        shown: &Shown,
        now: u64,
    ) -> (Vec<AlertView>, Vec<OfferView>) {
        let mut offers = shown.offer_views(now);
        let mut alerts = Vec::new();
        for shown in shown.alerts(now) {
            let mut alert = state::derive_alert(shown.alert.clone(), shown.updates.clone());
            alert.earlier_updates = shown.earlier_updates;
            alert.suspect = self.suspect(&alert.author, alert.seq, alert.created_at);
            alert.corroboration = state::corroborate(
                &alert.author,
                alert.alert.category,
                // A stance counts only while its author is trusted here: not once the
                // admin removed it, its vouches or certificate ended, or a revocation or a
                // fork took it out of trust.
                shown.endorsements.iter().filter(|endorsement| {
                    solidarity_engine::marks::stance_counts(&endorsement.author, &self.me, |key| {
                        self.trusted.contains(key)
                    })
                }),
                |key| self.group_of(key),
                self.confirm_threshold,
            );
            alerts.push(alert);
        }
        state::sort_for_display(&mut alerts);
        offers.sort_by(state::offer_order);
        for offer in &mut offers {
            offer.suspect = self.suspect(&offer.author, offer.seq, offer.created_at);
        }
        (alerts, offers)
    }

    /// Every stored alert up to the listing limits (`alert list --all`; blocking).
    pub fn every_alert(&self, store: &dyn Store, now: u64) -> Result<Vec<AlertView>, Refusal> {
        let every = Shown::load_per_author(
            store,
            (views::LISTED_LIMIT, views::LISTED_LIMIT),
            now,
            self.me,
        )
        .map_err(unreadable)?;
        Ok(self.alert_and_offer_views(&every, now).0)
    }

    /// One alert in full, from the store: any stored alert, not only the shown ones
    /// (blocking).
    pub fn alert_detail(
        &self,
        store: &dyn Store,
        id: &MessageId,
        now: u64,
    ) -> Result<AlertDetail, Refusal> {
        let shown = Shown::load_one(store, id).map_err(unreadable)?;
        let stances = shown
            .alerts(now)
            .flat_map(|alert| state::standing_stances(&alert.alert.author, &alert.endorsements))
            .map(|endorsement| StanceView {
                author: endorsement.author,
                stance: endorsement.body.stance,
                note: endorsement.body.note.clone(),
                created_at: endorsement.created_at,
            })
            .collect();
        match self.alert_and_offer_views(&shown, now).0.pop() {
            Some(alert) => Ok(AlertDetail { alert, stances }),
            None => Err(Refusal::new(
                RefusalCode::NoSuchAlert,
                format!("no alert with id {id}"),
            )),
        }
    }
}

/// The refusal when the store cannot be read.
pub fn unreadable(read: impl std::fmt::Display) -> Refusal {
    Refusal::new(
        RefusalCode::StoreUnreadable,
        format!("cannot read the store: {read}"),
    )
}
