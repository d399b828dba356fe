//! What the node refuses to sign for its own admin, decided from what its store holds, so
//! that the CLI and the control API are held to the same rules.
//!
//! - An alert is raised with a real calendar date or none.
//! - An update is for one of this node's alerts, sets a status valid for its kind (SPEC
//!   §8.4), is not a no-op (same status, no note), and follows no retraction (final).
//! - An endorsement or dispute is not the stance this node already holds; a retraction
//!   needs a stance to withdraw.
//! - A withdrawal is of this node's own offer, neither expired nor already withdrawn.
//!
//! Every refusal is one line naming the state the message is already in, with its stable
//! [`RefusalCode`]; nothing is signed.

use solidarity_control::{Refusal, RefusalCode};
use solidarity_proto::payload::{
    self, Alert, AlertStatus, AlertUpdate, Endorsement, KIND_ALERT, KIND_ALERT_UPDATE,
    KIND_ENDORSEMENT, KIND_MIRROR_OFFER, KIND_MIRROR_WITHDRAW, MirrorWithdraw, Stance,
};
use solidarity_proto::state::{self, Stored};
use solidarity_proto::{AuthorKey, Body, MessageId};
use solidarity_store::{MessageMeta, Store, StoreError};

use super::views::decode;
use crate::render::{format_time, words};

fn read_error(error: StoreError) -> Refusal {
    Refusal::new(
        RefusalCode::StoreUnreadable,
        format!("cannot read the store: {error}"),
    )
}

fn meta_of_kind(
    store: &dyn Store,
    id: &MessageId,
    kind: &str,
) -> Result<Option<MessageMeta>, Refusal> {
    Ok(store
        .meta(id)
        .map_err(read_error)?
        .filter(|meta| meta.kind == kind))
}

/// The latest message of `kind` referring to `target` that `author` signed, decoded (the
/// store reads it without loading what others signed).
fn latest_referring_by(
    store: &dyn Store,
    target: &MessageId,
    kind: &str,
    author: &AuthorKey,
) -> Result<Vec<(MessageId, u64, u64, Body)>, Refusal> {
    Ok(store
        .referring_newest(target, kind, 1)
        .map_err(read_error)?
        .iter()
        .filter(|group| group.author == *author)
        .flat_map(|group| &group.newest)
        .filter_map(|stored| {
            let (signer, header, body) = decode(stored)?;
            (signer == *author).then_some((stored.id, header.seq, header.created_at, body))
        })
        .collect())
}

/// Checks an alert before it is raised.
pub fn alert_raise(alert: &Alert) -> Result<(), Refusal> {
    match &alert.event_date {
        Some(date) if !payload::is_calendar_date(date) => Err(Refusal::new(
            RefusalCode::InvalidEventDate,
            format!(
                "event date {date:?} is not a real date; give it as YYYY-MM-DD, e.g. 2026-11-28"
            ),
        )),
        _ => Ok(()),
    }
}

/// Checks an update of alert `id` by this node (`me`); returns the alert's expiry, which
/// the update shares.
pub fn alert_update(
    store: &dyn Store,
    me: &AuthorKey,
    id: &MessageId,
    status: AlertStatus,
    note: Option<&str>,
) -> Result<Option<u64>, Refusal> {
    let short = id.short();
    let Some(meta) = meta_of_kind(store, id, KIND_ALERT)? else {
        return Err(Refusal::new(
            RefusalCode::NoSuchAlert,
            format!("no alert with id {id}"),
        ));
    };
    if meta.author != *me {
        return Err(Refusal::new(
            RefusalCode::NotAuthor,
            format!(
                "only the author of an alert can update it; alert {short} was raised by another member"
            ),
        ));
    }
    let alert = store
        .envelope(id)
        .map_err(read_error)?
        .and_then(|envelope| {
            decode(&solidarity_store::StoredEnvelope {
                id: *id,
                seq: meta.seq,
                envelope,
            })
        })
        .and_then(|(author, header, body)| match body {
            Body::Alert(alert) => Some(Stored {
                id: *id,
                author,
                seq: header.seq,
                created_at: header.created_at,
                expires_at: header.expires_at,
                body: alert,
            }),
            _ => None,
        })
        .ok_or_else(|| {
            Refusal::new(
                RefusalCode::StoreUnreadable,
                format!("alert {short} no longer decodes in the store"),
            )
        })?;
    let category = alert.body.category;
    let updates = latest_referring_by(store, id, KIND_ALERT_UPDATE, me)?
        .into_iter()
        .filter_map(|(update_id, seq, created_at, body)| match body {
            Body::AlertUpdate(update) => Some(Stored {
                id: update_id,
                author: *me,
                seq,
                created_at,
                expires_at: None,
                body: update,
            }),
            _ => None,
        })
        .collect::<Vec<Stored<AlertUpdate>>>();
    let view = state::derive_alert(alert, updates);
    let current = view.status;
    if current.is_final() {
        return Err(Refusal::new(
            RefusalCode::AlertRetracted,
            format!(
                "alert {short} is already retracted (since {}); a retraction is final, nothing was signed. Raise a new alert if it is true after all",
                format_time(view.updated_at)
            ),
        ));
    }
    if !status.applies_to(category) {
        return Err(Refusal::new(
            RefusalCode::StatusNotForKind,
            format!(
                "status {} does not apply to an alert of kind {}; valid: {}",
                wire(&status),
                words(&category).replace(' ', "-"),
                AlertStatus::valid_for(category)
                    .iter()
                    .map(wire)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    if status == current && note.is_none_or(|note| note.trim().is_empty()) {
        return Err(Refusal::new(
            RefusalCode::StatusUnchanged,
            format!(
                "alert {short} is already {} (since {}); nothing was signed. Add --note to report progress in the same state",
                wire(&current),
                format_time(view.updated_at)
            ),
        ));
    }
    Ok(meta.expires_at)
}

/// Checks this node's (`me`) endorsement, dispute or retraction of alert `id`; returns
/// the alert's expiry, which the endorsement shares.
pub fn alert_endorse(
    store: &dyn Store,
    me: &AuthorKey,
    id: &MessageId,
    stance: Stance,
) -> Result<Option<u64>, Refusal> {
    let short = id.short();
    let Some(meta) = meta_of_kind(store, id, KIND_ALERT)? else {
        return Err(Refusal::new(
            RefusalCode::NoSuchAlert,
            format!("no alert with id {id}"),
        ));
    };
    if meta.author == *me {
        return Err(Refusal::new(
            RefusalCode::OwnAlert,
            format!(
                "alert {short} is this node's own; an author does not endorse its own alert, update it instead"
            ),
        ));
    }
    let standing = latest_referring_by(store, id, KIND_ENDORSEMENT, me)?
        .into_iter()
        .filter_map(|(_, seq, created_at, body)| match body {
            Body::Endorsement(Endorsement { stance, .. }) => Some((seq, created_at, stance)),
            _ => None,
        })
        .max_by_key(|(seq, _, _)| *seq)
        .filter(|(_, _, stance)| *stance != Stance::Retract);
    match (standing, stance) {
        (Some((_, since, held)), wanted) if held == wanted => Err(Refusal::new(
            RefusalCode::StanceUnchanged,
            format!(
                "this node already {} alert {short} (since {}); nothing was signed",
                match held {
                    Stance::Endorse => "endorses",
                    Stance::Dispute => "disputes",
                    Stance::Retract => "withdrew its stance on",
                },
                format_time(since)
            ),
        )),
        (None, Stance::Retract) => Err(Refusal::new(
            RefusalCode::NoStance,
            format!(
                "this node neither endorses nor disputes alert {short}; there is nothing to withdraw"
            ),
        )),
        _ => Ok(meta.expires_at),
    }
}

/// Checks this node's (`me`) withdrawal of offer `id` at `now`; returns the offer's
/// expiry, which the withdrawal shares.
pub fn mirror_withdraw(
    store: &dyn Store,
    me: &AuthorKey,
    id: &MessageId,
    now: u64,
) -> Result<Option<u64>, Refusal> {
    let short = id.short();
    let Some(meta) = meta_of_kind(store, id, KIND_MIRROR_OFFER)? else {
        return Err(Refusal::new(
            RefusalCode::NoSuchOffer,
            format!("no mirror offer with id {id} (an expired offer is deleted)"),
        ));
    };
    if meta.author != *me {
        return Err(Refusal::new(
            RefusalCode::NotAuthor,
            format!(
                "only the member who made an offer can withdraw it; offer {short} was made by another member"
            ),
        ));
    }
    if let Some(at) = meta.expires_at
        && at <= now
    {
        return Err(Refusal::new(
            RefusalCode::OfferExpired,
            format!(
                "offer {short} already expired at {}; there is nothing to withdraw",
                format_time(at)
            ),
        ));
    }
    let withdrawn = latest_referring_by(store, id, KIND_MIRROR_WITHDRAW, me)?
        .into_iter()
        .filter(|(_, _, _, body)| {
            matches!(body, Body::MirrorWithdraw(MirrorWithdraw { offer }) if offer == id)
        })
        .map(|(_, _, created_at, _)| created_at)
        .min();
    if let Some(at) = withdrawn {
        return Err(Refusal::new(
            RefusalCode::OfferWithdrawn,
            format!(
                "offer {short} is already withdrawn (since {}); nothing was signed",
                format_time(at)
            ),
        ));
    }
    Ok(meta.expires_at)
}

/// A status as the admin types it: `partially-complied`.
fn wire(status: &AlertStatus) -> String {
    words(status).replace(' ', "-")
}
