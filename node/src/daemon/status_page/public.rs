//! The public view on `status_addr`: for the users of the collectives' services, and safe
//! to publish (web server, onion service).
//!
//! It shows the node (federation, version, uptime), alerts with their history, mirror
//! offers, and public notices of revoked and compromised keys, naming members by name and
//! collective only. Architecture invariant: nothing a coercer or an observer could use
//! leaves through here: no canary state of any member (duress, silence, withdrawn codes),
//! no member list, key, peer id, connection state, last-seen time, vouching graph or
//! certificate; not this node's key either.

use axum::extract::{Query, State};
use axum::response::IntoResponse;
use maud::{Markup, html};
use serde::Serialize;
use solidarity_proto::state::{AlertView, Corroboration, OfferView, UpdateView};
use solidarity_proto::{AuthorKey, MessageId};

use super::render::{self, Names, PageHead, SummaryLine, time};
use super::{Snapshots, latest};
use crate::daemon::actor::now_ms;
use crate::daemon::snapshot::Snapshot;

/// How the public view names an author: the member's name, with its collective when that
/// differs; never a key.
pub fn public_name(snapshot: &Snapshot, key: &AuthorKey) -> String {
    if *key == snapshot.status.node_key {
        return "this node".to_owned();
    }
    snapshot
        .members
        .iter()
        .find(|member| member.key == *key)
        .map_or_else(
            || "a former member".to_owned(),
            |member| {
                if member.collective == member.name {
                    member.name.clone()
                } else {
                    format!("{} ({})", member.name, member.collective)
                }
            },
        )
}

/// A public notice about a key: revoked, or proven in two hands by a fork.
#[derive(Serialize)]
pub struct Notice {
    /// `revoked` or `compromised`.
    pub kind: NoticeKind,
    /// The collective the key belongs to; `None` for this node's own key.
    pub collective: Option<String>,
    /// Revoked: since when its messages are suspect. Compromised: when the fork was seen.
    pub since: u64,
}

#[derive(Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    Revoked,
    Compromised,
}

/// Every public notice, this node's own key first.
pub fn notices(snapshot: &Snapshot) -> Vec<Notice> {
    let status = &snapshot.status;
    let mut notices = Vec::new();
    let own = [
        (NoticeKind::Revoked, status.own_key_revoked_since),
        (NoticeKind::Compromised, status.own_key_compromised_at),
    ];
    for (kind, since) in own {
        if let Some(since) = since {
            notices.push(Notice {
                kind,
                collective: None,
                since,
            });
        }
    }
    for member in snapshot.members.iter() {
        for (kind, since) in [
            (NoticeKind::Revoked, member.revoked_since),
            (NoticeKind::Compromised, member.compromised_at),
        ] {
            if let Some(since) = since {
                notices.push(Notice {
                    kind,
                    collective: Some(member.collective.clone()),
                    since,
                });
            }
        }
    }
    notices
}

fn notice_text(now: u64, notice: &Notice) -> Markup {
    let whose = html! {
        @match &notice.collective {
            Some(collective) => { "A key of " strong { bdi { (collective) } } }
            None => { strong { "This node's own key" } }
        }
    };
    match notice.kind {
        NoticeKind::Revoked => html! {
            (whose) " was revoked: what it signed since " (time(now, notice.since)) " is suspect, later messages are refused."
        },
        NoticeKind::Compromised => html! {
            (whose) " signed two conflicting messages (detected " (time(now, notice.since)) "): another party holds it, its messages are no longer accepted."
        },
    }
}

/// The notices sections (revoked, then compromised), shared by both views' wording.
fn notices_sections(now: u64, notices: &[Notice]) -> Markup {
    let of = |kind| notices.iter().filter(move |notice| notice.kind == kind);
    html! {
        @if of(NoticeKind::Revoked).next().is_some() {
            section #revoked .notice {
                h2 { "Revoked keys" }
                ul { @for notice in of(NoticeKind::Revoked) { li { (notice_text(now, notice)) } } }
            }
        }
        @if of(NoticeKind::Compromised).next().is_some() {
            section #compromise .notice {
                h2 { "Key compromise" }
                ul { @for notice in of(NoticeKind::Compromised) { li { (notice_text(now, notice)) } } }
            }
        }
    }
}

/// The public summary: alerts and key notices only.
pub fn summary(snapshot: &Snapshot, notices: &[Notice]) -> Vec<SummaryLine> {
    let count = |kind| notices.iter().filter(|notice| notice.kind == kind).count();
    render::crisis_summary(
        &snapshot.alerts,
        count(NoticeKind::Revoked),
        count(NoticeKind::Compromised),
    )
}

/// Renders the public page of `snapshot` at `now`.
pub fn page(snapshot: &Snapshot, now: u64) -> Markup {
    let status = &snapshot.status;
    let names = |key: &AuthorKey| public_name(snapshot, key);
    let names: Names<'_> = &names;
    let notices = notices(snapshot);
    let uptime = std::time::Duration::from_secs(now.saturating_sub(status.started_at) / 1000);
    let head = PageHead {
        title: "solidarity",
        federation: &status.federation,
        node_line: html! {
            "Federation " strong { (status.federation) } (render::dot())
            "up " (humantime::format_duration(uptime)) (render::dot())
            "version " (status.version)
        },
        now_ms: now,
        feed: true,
    };
    let main = html! {
        (render::summary_section(&summary(snapshot, &notices)))
        (notices_sections(now, &notices))
        (render::alerts_section(names, now, &snapshot.alerts))
        (render::offers_section(names, now, &snapshot.offers))
    };
    let footer = html! {
        p { "Machine-readable: " a href="/api/v1/status" { "status" } " · " a href="/api/v1/alerts" { "alerts" } " · " a href="/api/v1/offers" { "offers" } " · " a href="/alerts.atom" { "Atom feed" } }
    };
    render::page(&head, main, footer)
}

pub async fn index(State(snapshots): State<Snapshots>) -> Markup {
    page(&latest(&snapshots), now_ms())
}

/// `/api/v1/status`: what the node is, never where it or its peers are, nor its key.
#[derive(Serialize)]
struct PublicStatus<'a> {
    federation: &'a str,
    version: &'a str,
    started_at: u64,
    uptime_secs: u64,
    alerts: usize,
    offers: usize,
    notices: Vec<Notice>,
}

pub async fn api_status(State(snapshots): State<Snapshots>) -> impl IntoResponse {
    let snapshot = latest(&snapshots);
    let status = &snapshot.status;
    axum::Json(serde_json::json!(PublicStatus {
        federation: &status.federation,
        version: &status.version,
        started_at: status.started_at,
        uptime_secs: now_ms().saturating_sub(status.started_at) / 1000,
        alerts: snapshot.alerts.len(),
        offers: snapshot.offers.len(),
        notices: notices(&snapshot),
    }))
}

/// An alert as [`AlertView`] serialises it, with member names where it holds keys.
#[derive(Serialize)]
struct PublicAlert<'a> {
    id: MessageId,
    author: String,
    seq: u64,
    suspect: bool,
    created_at: u64,
    expires_at: Option<u64>,
    status: solidarity_proto::payload::AlertStatus,
    updated_at: u64,
    alert: &'a solidarity_proto::payload::Alert,
    corroboration: PublicCorroboration,
    history: &'a [UpdateView],
    earlier_updates: u64,
}

#[derive(Serialize)]
struct PublicCorroboration {
    endorsed_by: Vec<String>,
    disputed_by: Vec<String>,
    collectives: usize,
    required: Option<usize>,
    confirmed: bool,
}

fn public_alert<'a>(snapshot: &Snapshot, view: &'a AlertView) -> PublicAlert<'a> {
    let names = |keys: &[AuthorKey]| keys.iter().map(|key| public_name(snapshot, key)).collect();
    let Corroboration {
        endorsed_by,
        disputed_by,
        collectives,
        required,
        confirmed,
    } = &view.corroboration;
    PublicAlert {
        id: view.id,
        author: public_name(snapshot, &view.author),
        seq: view.seq,
        suspect: view.suspect,
        created_at: view.created_at,
        expires_at: view.expires_at,
        status: view.status,
        updated_at: view.updated_at,
        alert: &view.alert,
        corroboration: PublicCorroboration {
            endorsed_by: names(endorsed_by),
            disputed_by: names(disputed_by),
            collectives: *collectives,
            required: *required,
            confirmed: *confirmed,
        },
        history: &view.history,
        earlier_updates: view.earlier_updates,
    }
}

/// An offer as [`OfferView`] serialises it, with the member's name for its key.
#[derive(Serialize)]
struct PublicOffer<'a> {
    id: MessageId,
    author: String,
    seq: u64,
    suspect: bool,
    created_at: u64,
    expires_at: Option<u64>,
    offer: &'a solidarity_proto::payload::MirrorOffer,
}

fn public_offer<'a>(snapshot: &Snapshot, view: &'a OfferView) -> PublicOffer<'a> {
    PublicOffer {
        id: view.id,
        author: public_name(snapshot, &view.author),
        seq: view.seq,
        suspect: view.suspect,
        created_at: view.created_at,
        expires_at: view.expires_at,
        offer: &view.offer,
    }
}

/// Alerts or offers per page of the JSON lists (SPEC §18).
pub const JSON_PAGE: usize = 50;

/// `?page=N` of a JSON list: 0 (the first) unless given.
#[derive(serde::Deserialize)]
pub struct Page {
    #[serde(default)]
    page: usize,
}

/// Page `page` (from 0) of a list: an empty list past its end.
fn page_of<T>(items: impl IntoIterator<Item = T>, page: usize) -> impl Iterator<Item = T> {
    items
        .into_iter()
        .skip(page.saturating_mul(JSON_PAGE))
        .take(JSON_PAGE)
}

pub async fn api_alerts(
    State(snapshots): State<Snapshots>,
    Query(Page { page }): Query<Page>,
) -> impl IntoResponse {
    let snapshot = latest(&snapshots);
    let alerts: Vec<PublicAlert<'_>> = page_of(render::crisis_order(&snapshot.alerts), page)
        .map(|view| public_alert(&snapshot, view))
        .collect();
    axum::Json(serde_json::json!(alerts))
}

pub async fn api_offers(
    State(snapshots): State<Snapshots>,
    Query(Page { page }): Query<Page>,
) -> impl IntoResponse {
    let snapshot = latest(&snapshots);
    let offers: Vec<PublicOffer<'_>> = page_of(snapshot.offers.iter(), page)
        .map(|view| public_offer(&snapshot, view))
        .collect();
    axum::Json(serde_json::json!(offers))
}
