//! Derived current state of alerts and mirror offers, folded from stored messages.
//!
//! Invariants: an update changes an alert only when its signer is the alert's author; a
//! withdrawal removes an offer only when its signer is the offer's author. Updates apply
//! in the author's seq order, so arrival order never matters.

use serde::{Deserialize, Serialize};

use crate::ids::{AuthorKey, MessageId};
use crate::payload::{Alert, AlertStatus, AlertUpdate, MirrorOffer, MirrorWithdraw};

/// A stored message's header facts together with its decoded body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored<T> {
    /// Content id.
    pub id: MessageId,
    /// The signer.
    pub author: AuthorKey,
    /// The author's seq.
    pub seq: u64,
    /// Creation time, ms since the epoch.
    pub created_at: u64,
    /// Expiry, ms since the epoch.
    pub expires_at: Option<u64>,
    /// The decoded body.
    pub body: T,
}

/// One applied lifecycle update.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateView {
    /// Id of the update message.
    pub id: MessageId,
    /// When the author sent it.
    pub created_at: u64,
    /// The state it set.
    pub status: AlertStatus,
    /// The author's note.
    pub note: Option<String>,
}

/// An alert with its current state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertView {
    /// Id of the alert message.
    pub id: MessageId,
    /// Its author.
    pub author: AuthorKey,
    /// The author's seq of the alert.
    pub seq: u64,
    /// Signed by a key known to be in two hands, at or after the point its chains
    /// diverge: nobody can tell whether its owner or another party wrote it.
    #[serde(default)]
    pub suspect: bool,
    /// When it was raised.
    pub created_at: u64,
    /// When it expires, if ever.
    pub expires_at: Option<u64>,
    /// Current state.
    pub status: AlertStatus,
    /// Time of the last applied update (or of the alert).
    pub updated_at: u64,
    /// The alert as raised.
    pub alert: Alert,
    /// Applied updates, oldest first.
    pub history: Vec<UpdateView>,
}

/// A live mirror offer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferView {
    /// Id of the offer message.
    pub id: MessageId,
    /// The offering member.
    pub author: AuthorKey,
    /// The author's seq of the offer.
    pub seq: u64,
    /// As [`AlertView::suspect`].
    #[serde(default)]
    pub suspect: bool,
    /// When it was made.
    pub created_at: u64,
    /// Until when it stands.
    pub expires_at: Option<u64>,
    /// The offer.
    pub offer: MirrorOffer,
}

/// Folds an alert and candidate updates into its current state. Updates by anyone but the
/// alert's author, or for another alert, are left out.
pub fn derive_alert(
    alert: Stored<Alert>,
    updates: impl IntoIterator<Item = Stored<AlertUpdate>>,
) -> AlertView {
    let mut applied: Vec<Stored<AlertUpdate>> = updates
        .into_iter()
        .filter(|update| update.author == alert.author && update.body.alert == alert.id)
        .collect();
    applied.sort_by_key(|update| update.seq);
    let status = applied
        .last()
        .map_or(AlertStatus::Open, |update| update.body.status);
    let updated_at = applied
        .last()
        .map_or(alert.created_at, |update| update.created_at);
    AlertView {
        id: alert.id,
        author: alert.author,
        seq: alert.seq,
        suspect: false,
        created_at: alert.created_at,
        expires_at: alert.expires_at,
        status,
        updated_at,
        alert: alert.body,
        history: applied
            .into_iter()
            .map(|update| UpdateView {
                id: update.id,
                created_at: update.created_at,
                status: update.body.status,
                note: update.body.note,
            })
            .collect(),
    }
}

/// The offer as it stands at `now_ms`: `None` when its author withdrew it or it expired.
pub fn derive_offer<'a>(
    offer: Stored<MirrorOffer>,
    withdrawals: impl IntoIterator<Item = &'a Stored<MirrorWithdraw>>,
    now_ms: u64,
) -> Option<OfferView> {
    let withdrawn = withdrawals
        .into_iter()
        .any(|w| w.author == offer.author && w.body.offer == offer.id);
    let expired = offer.expires_at.is_some_and(|expires| expires <= now_ms);
    (!withdrawn && !expired).then_some(OfferView {
        id: offer.id,
        author: offer.author,
        seq: offer.seq,
        suspect: false,
        created_at: offer.created_at,
        expires_at: offer.expires_at,
        offer: offer.body,
    })
}

/// Orders alerts for display: most severe first, then newest first.
pub fn sort_for_display(alerts: &mut [AlertView]) {
    alerts.sort_by(|a, b| {
        b.alert
            .severity
            .cmp(&a.alert.severity)
            .then(b.created_at.cmp(&a.created_at))
    });
}
