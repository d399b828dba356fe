//! Alerts and updates as the node stores them: the actor reports each one it stored on a
//! bounded queue ([`Feed`], never waiting), and the notifier reads them from the store off
//! the async threads. The snapshot shows only each member's latest alerts, so a burst (a
//! sync after a long absence) would otherwise hide some; and at start, a catch-up over the
//! store finds what a `kill -9` cut off between storing an alert and queueing its notice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use solidarity_proto::payload::{Body, KIND_ALERT};
use solidarity_proto::state::UpdateView;
use solidarity_proto::{AuthorKey, MessageId};
use solidarity_store::{Store, StoreError};
use tokio::sync::mpsc;

use super::doc::{NoticeDoc, NoticeType, Severity};
use super::now_ms;
use super::observe::{AlertFacts, Names, Observed, alert_notice, notice_id, update_notice};
use crate::daemon::views::decode_envelope;

/// Stored alerts and updates waiting for the notifier. Beyond it the notifier is told to
/// catch up from the store instead (see [`FeedReceiver::overflowed`]).
pub const FEED_QUEUE: usize = 4096;
/// Most alerts per member the catch-up reads (newest first).
pub const CATCH_UP_PER_AUTHOR: usize = 256;

/// What the actor reports: what it stored, and sync failures.
#[derive(Clone, Debug)]
pub enum Report {
    /// A new alert.
    Alert {
        /// The alert.
        id: MessageId,
        /// Its author.
        author: AuthorKey,
        /// The author's name in the actor's directory.
        author_name: String,
    },
    /// Syncing with a member failed `failures` times in a row.
    SyncFailing {
        /// The member.
        member: AuthorKey,
        /// Its name in the actor's directory.
        name: String,
        /// Failures in a row.
        failures: u32,
    },
    /// An update of `alert`.
    Update {
        /// The alert.
        alert: MessageId,
        /// The update.
        update: MessageId,
    },
}

/// The actor's end.
#[derive(Clone)]
pub struct Feed {
    queue: mpsc::Sender<Report>,
    overflowed: Arc<AtomicBool>,
}

/// The notifier's end.
pub struct FeedReceiver {
    /// Stored messages, in order.
    pub queue: mpsc::Receiver<Report>,
    overflowed: Arc<AtomicBool>,
}

/// A new feed.
pub fn feed() -> (Feed, FeedReceiver) {
    let (queue, receiver) = mpsc::channel(FEED_QUEUE);
    let overflowed = Arc::new(AtomicBool::new(false));
    (
        Feed {
            queue,
            overflowed: Arc::clone(&overflowed),
        },
        FeedReceiver {
            queue: receiver,
            overflowed,
        },
    )
}

impl Feed {
    /// Reports a stored message; never waits. When the queue is full the notifier catches
    /// up from the store later.
    pub fn report(&self, report: Report) {
        if self.queue.try_send(report).is_err() {
            self.overflowed.store(true, Ordering::Relaxed);
        }
    }
}

impl FeedReceiver {
    /// Whether reports were dropped since the last call (then catch up).
    pub fn overflowed(&self) -> bool {
        self.overflowed.swap(false, Ordering::Relaxed)
    }
}

/// The notices of `items` (blocking: reads the store). Messages that expired since are
/// skipped.
pub fn load(
    store: &dyn Store,
    items: &[Report],
    names: &Names,
) -> Result<Vec<Observed>, StoreError> {
    let mut names = names.clone();
    for item in items {
        if let Report::Alert {
            author,
            author_name,
            ..
        } = item
        {
            names.insert(*author, author_name.clone());
        }
    }
    let names = &names;
    let mut out = Vec::new();
    for item in items {
        match *item {
            Report::SyncFailing {
                member,
                ref name,
                failures,
            } => out.push(sync_failing(member, name, failures, now_ms())),
            Report::Alert { id, .. } => {
                if let Some(observed) =
                    alert_at(store, id, names, |facts| alert_notice(facts, names))?
                {
                    out.push(observed);
                }
            }
            Report::Update { alert, update } => {
                let Some(bytes) = store.envelope(&update)? else {
                    continue;
                };
                let Some((_, payload, Body::AlertUpdate(body))) = decode_envelope(&bytes) else {
                    continue;
                };
                let view = UpdateView {
                    id: update,
                    created_at: payload.created_at,
                    status: body.status,
                    note: body.note,
                };
                if let Some(observed) = alert_at(store, alert, names, |facts| {
                    update_notice(facts, &view, names)
                })? {
                    out.push(observed);
                }
            }
        }
    }
    Ok(out)
}

/// The notices of every stored alert raised since `since` (ms), at most
/// [`CATCH_UP_PER_AUTHOR`] per member (blocking).
pub fn catch_up(
    store: &dyn Store,
    since: u64,
    now: u64,
    names: &Names,
) -> Result<Vec<Observed>, StoreError> {
    let mut out = Vec::new();
    for stored in store.newest_per_author(KIND_ALERT, CATCH_UP_PER_AUTHOR, now)? {
        let Some((author, payload, Body::Alert(alert))) = decode_envelope(&stored.envelope) else {
            continue;
        };
        if payload.created_at < since {
            continue;
        }
        let facts = AlertFacts {
            id: stored.id,
            author,
            created_at: payload.created_at,
            alert: &alert,
            status: "open".to_owned(),
            suspect: names.suspect(&author, payload.created_at),
        };
        out.push(alert_notice(&facts, names));
    }
    Ok(out)
}

/// At most one notice a day per member: a member down for days is the unreachable notice.
fn sync_failing(member: AuthorKey, name: &str, failures: u32, now: u64) -> Observed {
    let day = now / (24 * 3600 * 1000);
    Observed {
        happened_at: now,
        about: Some(member),
        doc: NoticeDoc {
            id: notice_id(&[b"sync-failing", &member.0, &day.to_be_bytes()]),
            notice_type: NoticeType::SyncFailing,
            severity: Severity::Medium,
            at: now,
            title: format!("syncing with {name} failed {failures} times in a row"),
            text: "Messages it holds reach this node only by gossip until a sync succeeds. See `solidarity peers` and the log (at debug level for the reasons).".to_owned(),
            member: Some(name.to_owned()),
            alert: None,
        },
    }
}

fn alert_at(
    store: &dyn Store,
    id: MessageId,
    names: &Names,
    notice: impl FnOnce(&AlertFacts<'_>) -> Observed,
) -> Result<Option<Observed>, StoreError> {
    let Some(bytes) = store.envelope(&id)? else {
        return Ok(None);
    };
    let Some((author, payload, Body::Alert(alert))) = decode_envelope(&bytes) else {
        return Ok(None);
    };
    let facts = AlertFacts {
        id,
        author,
        created_at: payload.created_at,
        alert: &alert,
        status: "open".to_owned(),
        suspect: names.suspect(&author, payload.created_at),
    };
    Ok(Some(notice(&facts)))
}
