//! What is news: the notices a new snapshot of the node's state holds that the last one did
//! not. Pure (no I/O, the time is a parameter), so it is tested without a daemon.
//!
//! Every notice's id is a hash of what happened (the alert's id, the member's key and the
//! canary it published, …), never of when this node saw it: a restart, a re-sync or a
//! snapshot seen twice yields the same ids, and the outbox, which remembers the ids it
//! queued, sends each once. A restart therefore also brings back what a `kill -9` cut off
//! between storing a message and queueing its notice.
//!
//! Bounded per member: at most [`NOTICES_PER_MEMBER_PER_HOUR`] notices name one member in an
//! hour (a seized key signing alerts at full speed floods no one's inbox); one notice says
//! when the rest are held back.

use std::collections::{HashMap, HashSet};

use solidarity_control::{CanaryState, MemberView};
use solidarity_proto::payload::Alert;
use solidarity_proto::state::{AlertView, OfferView, UpdateView};
use solidarity_proto::{AuthorKey, MessageId};

use super::doc::{AlertFields, NoticeDoc, NoticeType, Severity};
use crate::daemon::snapshot::Snapshot;

/// Most notices that name one member per hour; beyond, one [`NoticeType::QuotaHit`] notice.
pub const NOTICES_PER_MEMBER_PER_HOUR: u32 = 30;
/// Certificates ending within this are a notice.
pub const CERTIFICATE_NOTICE_MS: u64 = 7 * 24 * 3600 * 1000;
const HOUR_MS: u64 = 3600 * 1000;

/// What the observer needs besides the snapshot.
#[derive(Clone, Debug)]
pub struct ObserveSettings {
    /// A member not connected for longer (ms) is a notice; none: never.
    pub member_unreachable_ms: Option<u64>,
}

/// A candidate notice and when what it tells happened (for the news window).
#[derive(Clone, Debug)]
pub struct Observed {
    /// The notice.
    pub doc: NoticeDoc,
    /// When the event happened, ms since the epoch.
    pub happened_at: u64,
    /// The member whose messages made it (counted against its hourly bound).
    pub about: Option<AuthorKey>,
}

/// The observer's memory of the last snapshot.
#[derive(Default)]
pub struct Observer {
    canaries: HashMap<AuthorKey, CanaryState>,
    disconnected_since: HashMap<AuthorKey, u64>,
    offers: Option<HashMap<MessageId, OfferView>>,
    /// Keys seen revoked (see the revocation notice).
    seen_revoked: HashSet<AuthorKey>,
    /// Whether a first snapshot was observed.
    started: bool,
}

/// The hourly bound of new notices per member (see the module doc). Fed only notices not
/// made before, so a notice seen again never counts twice.
#[derive(Default)]
pub struct MemberBound {
    /// Per member: the hour and how many notices its messages made in that hour.
    per_member: HashMap<AuthorKey, (u64, u32)>,
}

/// The stable id of a notice: SHA-256 over its parts.
pub fn notice_id(parts: &[&[u8]]) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(b"solidarity-notice/1");
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hex::encode(hash.finalize())
}

fn snake<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn severity_of(severity: solidarity_proto::payload::Severity) -> Severity {
    use solidarity_proto::payload::Severity as S;
    match severity {
        S::Info => Severity::Info,
        S::Low => Severity::Low,
        S::Medium => Severity::Medium,
        S::High => Severity::High,
        S::Critical => Severity::Critical,
    }
}

fn time_text(ms: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

/// Who is who, as this node's admin named them.
#[derive(Clone)]
pub struct Names {
    me: AuthorKey,
    members: HashMap<AuthorKey, String>,
    /// Keys known to be in two hands (any time) or revoked (since when).
    suspect_since: HashMap<AuthorKey, u64>,
}

impl Names {
    /// The names in `snapshot`'s member list.
    pub fn from_snapshot(snapshot: &Snapshot) -> Self {
        Self {
            me: snapshot.status.node_key,
            members: snapshot
                .members
                .iter()
                .map(|member| (member.key, member.name.clone()))
                .collect(),
            suspect_since: snapshot
                .members
                .iter()
                .filter_map(|member| {
                    let since = match (member.compromised_at, member.revoked_since) {
                        (Some(_), _) => 0,
                        (None, Some(since)) => since,
                        (None, None) => return None,
                    };
                    Some((member.key, since))
                })
                .collect(),
        }
    }

    /// Whether a message of `author` made at `created_at` is suspect: its key is in two
    /// hands, or was revoked by then (the page's finer rule needs the evidence; the
    /// snapshot's own alerts carry it).
    pub fn suspect(&self, author: &AuthorKey, created_at: u64) -> bool {
        self.suspect_since
            .get(author)
            .is_some_and(|since| created_at >= *since)
    }

    /// The name of `key`: "this node", the admin's name for it, or its short key.
    pub fn of(&self, key: &AuthorKey) -> String {
        if *key == self.me {
            return "this node".to_owned();
        }
        match self.members.get(key) {
            Some(name) => name.clone(),
            None => format!("key {}", &key.to_hex()[..8]),
        }
    }

    /// Names `key` (the actor's directory knows it before the snapshot does).
    pub fn insert(&mut self, key: AuthorKey, name: String) {
        if key != self.me {
            self.members.insert(key, name);
        }
    }
}

impl Observer {
    /// The notices `snapshot` holds at `now`, oldest event first. Call it for every new
    /// snapshot and now and then for the same one (time alone makes members unreachable).
    pub fn observe(
        &mut self,
        snapshot: &Snapshot,
        now: u64,
        settings: &ObserveSettings,
    ) -> Vec<Observed> {
        let names = Names::from_snapshot(snapshot);
        let mut out = Vec::new();
        for alert in snapshot.alerts.iter() {
            alert_notices(alert, &names, &mut out);
        }
        self.offer_notices(&snapshot.offers, now, &names, &mut out);
        for member in snapshot.members.iter() {
            self.member_notices(member, now, settings, &mut out);
        }
        out.sort_by_key(|observed| observed.happened_at);
        for observed in &mut out {
            observed.doc.at = now;
        }
        self.started = true;
        out
    }

    fn offer_notices(
        &mut self,
        offers: &[OfferView],
        now: u64,
        names: &Names,
        out: &mut Vec<Observed>,
    ) {
        let current: HashMap<MessageId, OfferView> = offers
            .iter()
            .map(|offer| (offer.id, offer.clone()))
            .collect();
        for offer in offers {
            let services = offer
                .offer
                .services
                .iter()
                .map(snake)
                .collect::<Vec<_>>()
                .join(", ");
            out.push(Observed {
                happened_at: offer.created_at,
                about: Some(offer.author),
                doc: NoticeDoc {
                    id: notice_id(&[b"offer", &offer.id.0]),
                    notice_type: NoticeType::OfferNew,
                    severity: Severity::Info,
                    at: now,
                    title: format!("{} offers to mirror: {services}", names.of(&offer.author)),
                    text: format!(
                        "Jurisdictions: {}\nContact: {}",
                        offer.offer.jurisdictions.join(", "),
                        offer.offer.contact
                    ),
                    member: Some(names.of(&offer.author)),
                    alert: None,
                },
            });
        }
        if let Some(previous) = &self.offers {
            for (id, offer) in previous {
                let expired = offer.expires_at.is_some_and(|at| at <= now);
                if current.contains_key(id) || expired {
                    continue;
                }
                out.push(Observed {
                    happened_at: now,
                    about: Some(offer.author),
                    doc: NoticeDoc {
                        id: notice_id(&[b"offer-withdrawn", &id.0]),
                        notice_type: NoticeType::OfferWithdrawn,
                        severity: Severity::Low,
                        at: now,
                        title: format!("{} withdrew a mirror offer", names.of(&offer.author)),
                        text: String::new(),
                        member: Some(names.of(&offer.author)),
                        alert: None,
                    },
                });
            }
        }
        self.offers = Some(current);
    }

    fn member_notices(
        &mut self,
        member: &MemberView,
        now: u64,
        settings: &ObserveSettings,
        out: &mut Vec<Observed>,
    ) {
        let key = &member.key.0;
        let name = &member.name;
        let notice = |kind: NoticeType,
                      severity: Severity,
                      id: String,
                      happened_at: u64,
                      title: String,
                      text: String| Observed {
            happened_at,
            // What happened to a member (a revocation, a fork, duress) is never held back
            // by the hourly bound its own flood may have used up.
            about: None,
            doc: NoticeDoc {
                id,
                notice_type: kind,
                severity,
                at: now,
                title,
                text,
                member: Some(name.clone()),
                alert: None,
            },
        };
        if let Some(since) = member.revoked_since {
            // A revocation certificate is often made long before it is published (the
            // drill), so `since` says nothing of when this node learned it: one that
            // appears while the node runs is news now; one already there at start is news
            // only if recent.
            let learned = if self.seen_revoked.insert(member.key) && self.started {
                now
            } else {
                since
            };
            out.push(notice(
                NoticeType::Revocation,
                Severity::High,
                notice_id(&[b"revoked", key, &since.to_be_bytes()]),
                learned,
                format!("the key of {name} was revoked"),
                format!(
                    "Its messages since {} are no longer trusted.",
                    time_text(since)
                ),
            ));
        }
        if let Some(at) = member.compromised_at {
            out.push(notice(
                NoticeType::Fork,
                Severity::Critical,
                notice_id(&[b"fork", key, &at.to_be_bytes()]),
                at,
                format!("the key of {name} signed two conflicting messages"),
                "It is in two hands: its messages are suspect until the admin trusts it again (`solidarity member retrust`).".to_owned(),
            ));
        }
        if let Some(until) = member.certified_until
            && until > now
            && until - now <= CERTIFICATE_NOTICE_MS
        {
            out.push(notice(
                NoticeType::CertificateEnding,
                Severity::Medium,
                notice_id(&[b"certificate-ending", key, &until.to_be_bytes()]),
                now,
                format!("the certificate of {name} ends {}", time_text(until)),
                "Its collective must certify its node key again before then.".to_owned(),
            ));
        }
        if let Some(canary) = &member.canary {
            let previous = self.canaries.insert(member.key, canary.state);
            let last = canary.last_at.to_be_bytes();
            match canary.state {
                CanaryState::Duress => out.push(notice(
                    NoticeType::Duress,
                    Severity::Critical,
                    notice_id(&[b"duress", key, &last]),
                    canary.last_at,
                    format!("DURESS: {name} signals that its admins are coerced"),
                    "Its latest canary carries its duress key. Do not rely on what it says; contact its admins by another way.".to_owned(),
                )),
                CanaryState::Silent => out.push(notice(
                    NoticeType::CanarySilent,
                    Severity::High,
                    notice_id(&[b"silent", key, &last]),
                    canary.due_at,
                    format!("the canary of {name} is overdue"),
                    format!("Its last canary was signed {}.", time_text(canary.last_at)),
                )),
                CanaryState::Changed => out.push(notice(
                    NoticeType::CanaryChanged,
                    Severity::High,
                    notice_id(&[b"changed", key, &last]),
                    canary.last_at,
                    format!("the canary of {name} no longer states every code"),
                    format!(
                        "Withdrawn: {}",
                        canary.withdrawn.iter().map(snake).collect::<Vec<_>>().join(", ")
                    ),
                )),
                CanaryState::Ok => {
                    if previous.is_some_and(|state| state != CanaryState::Ok) {
                        out.push(notice(
                            NoticeType::CanaryOk,
                            Severity::Info,
                            notice_id(&[b"canary-ok", key, &last]),
                            canary.last_at,
                            format!("the canary of {name} is back to normal"),
                            String::new(),
                        ));
                    }
                }
            }
        }
        if member.over_budget.is_some() {
            let day = now / (24 * HOUR_MS);
            out.push(notice(
                NoticeType::QuotaHit,
                Severity::Low,
                notice_id(&[b"quota", key, &day.to_be_bytes()]),
                now,
                format!("{name} is over its budget"),
                "Its further messages are ignored for now (see `solidarity member list`)."
                    .to_owned(),
            ));
        }
        if member.connected {
            self.disconnected_since.remove(&member.key);
        } else if let Some(limit) = settings.member_unreachable_ms {
            // Since its last message when known, so a restart does not start a new episode.
            let since = *self
                .disconnected_since
                .entry(member.key)
                .or_insert(member.last_message_at.unwrap_or(now).min(now));
            if now.saturating_sub(since) >= limit {
                out.push(notice(
                    NoticeType::MemberUnreachable,
                    Severity::Medium,
                    notice_id(&[b"unreachable", key, &since.to_be_bytes()]),
                    now,
                    format!(
                        "{name} has not been connected for {}",
                        duration_text(now - since)
                    ),
                    "Check whether its server is up, or whether something stands between the two."
                        .to_owned(),
                ));
            }
        }
    }
}

impl MemberBound {
    /// Keeps at most [`NOTICES_PER_MEMBER_PER_HOUR`] notices per named member per hour,
    /// plus one that says the rest were held back.
    pub fn admit(&mut self, observed: Vec<Observed>, now: u64, me: &AuthorKey) -> Vec<Observed> {
        let hour = now / HOUR_MS;
        let mut held_back: HashSet<String> = HashSet::new();
        let mut out = Vec::with_capacity(observed.len());
        let mut seen_ids = HashSet::new();
        for item in observed {
            if !seen_ids.insert(item.doc.id.clone()) {
                continue;
            }
            // This node's own messages are its admin's: never held back.
            let Some(author) = item.about.filter(|author| author != me) else {
                out.push(item);
                continue;
            };
            let entry = self.per_member.entry(author).or_insert((hour, 0));
            if entry.0 != hour {
                *entry = (hour, 0);
            }
            if entry.1 < NOTICES_PER_MEMBER_PER_HOUR {
                entry.1 += 1;
                out.push(item);
            } else if let Some(name) = &item.doc.member {
                held_back.insert(name.clone());
            }
        }
        for name in held_back {
            out.push(Observed {
                happened_at: now,
                about: None,
                doc: NoticeDoc {
                    id: notice_id(&[b"held-back", name.as_bytes(), &hour.to_be_bytes()]),
                    notice_type: NoticeType::QuotaHit,
                    severity: Severity::Medium,
                    at: now,
                    title: format!(
                        "more than {NOTICES_PER_MEMBER_PER_HOUR} notices about {name} this hour"
                    ),
                    text: "The rest of this hour's are not sent; see the status page and `solidarity alert list`."
                        .to_owned(),
                    member: Some(name),
                    alert: None,
                },
            });
        }
        out
    }
}

fn duration_text(ms: u64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(ms / 1000 / 60 * 60)).to_string()
}

/// What an alert notice says of its alert, from the snapshot or from the store.
pub struct AlertFacts<'a> {
    /// The alert's id.
    pub id: MessageId,
    /// Its author.
    pub author: AuthorKey,
    /// When it was raised.
    pub created_at: u64,
    /// The alert as raised.
    pub alert: &'a Alert,
    /// Its status now (`open`, …).
    pub status: String,
    /// Signed by a key in two hands or revoked.
    pub suspect: bool,
}

impl AlertFacts<'_> {
    fn fields(&self) -> AlertFields {
        AlertFields {
            id: self.id.to_hex(),
            kind: snake(&self.alert.category),
            severity: severity_of(self.alert.severity),
            subject: self.alert.subject.clone(),
            summary: self.alert.summary.clone(),
            jurisdictions: self.alert.jurisdictions.clone(),
            status: self.status.clone(),
            created_at: self.created_at,
        }
    }

    fn headline(&self) -> String {
        format!(
            "{}{} {} at {}: {}",
            if self.suspect { "SUSPECT " } else { "" },
            snake(&self.alert.severity).to_uppercase(),
            snake(&self.alert.category).replace('_', " "),
            self.alert.subject,
            self.alert.summary
        )
    }

    fn doc(
        &self,
        notice_type: NoticeType,
        severity: Severity,
        id: String,
        title: String,
        text: String,
        member: String,
    ) -> NoticeDoc {
        NoticeDoc {
            id,
            notice_type,
            severity,
            at: 0,
            title,
            text,
            member: Some(member),
            alert: Some(self.fields()),
        }
    }
}

/// The notice of a new alert.
pub fn alert_notice(facts: &AlertFacts<'_>, names: &Names) -> Observed {
    let author = names.of(&facts.author);
    let alert = facts.alert;
    let suspect = if facts.suspect {
        "SUSPECT: signed by a key known to be in two hands or revoked.\n"
    } else {
        ""
    };
    let mut text = format!(
        "{suspect}Raised by {author} at {}.\nSubject: {}\n",
        time_text(facts.created_at),
        alert.subject
    );
    if !alert.jurisdictions.is_empty() {
        text.push_str(&format!(
            "Jurisdictions: {}\n",
            alert.jurisdictions.join(", ")
        ));
    }
    if let Some(authority) = &alert.authority {
        text.push_str(&format!("Authority: {authority}\n"));
    }
    if let Some(details) = &alert.details {
        text.push_str(&format!("\n{details}\n"));
    }
    Observed {
        happened_at: facts.created_at,
        about: Some(facts.author),
        doc: facts.doc(
            NoticeType::Alert,
            severity_of(alert.severity),
            notice_id(&[b"alert", &facts.id.0]),
            facts.headline(),
            text,
            author,
        ),
    }
}

/// The notice of an update of an alert.
pub fn update_notice(facts: &AlertFacts<'_>, update: &UpdateView, names: &Names) -> Observed {
    Observed {
        happened_at: update.created_at,
        about: Some(facts.author),
        doc: facts.doc(
            NoticeType::AlertUpdate,
            severity_of(facts.alert.severity),
            notice_id(&[b"update", &update.id.0]),
            format!("update ({}): {}", snake(&update.status), facts.headline()),
            update.note.clone().unwrap_or_default(),
            names.of(&facts.author),
        ),
    }
}

fn alert_notices(view: &AlertView, names: &Names, out: &mut Vec<Observed>) {
    let facts = AlertFacts {
        id: view.id,
        author: view.author,
        created_at: view.created_at,
        alert: &view.alert,
        status: snake(&view.status),
        suspect: view.suspect,
    };
    let severity = severity_of(view.alert.severity);
    out.push(alert_notice(&facts, names));
    for update in &view.history {
        out.push(update_notice(&facts, update, names));
    }
    let corroboration = &view.corroboration;
    if corroboration.confirmed && corroboration.required.is_some() {
        out.push(Observed {
            happened_at: view.updated_at.max(view.created_at),
            about: None,
            doc: facts.doc(
                NoticeType::AlertConfirmed,
                severity.max(Severity::High),
                notice_id(&[b"confirmed", &view.id.0]),
                format!(
                    "confirmed by {} collectives: {}",
                    corroboration.collectives,
                    facts.headline()
                ),
                String::new(),
                names.of(&view.author),
            ),
        });
    }
    for (stance, keys) in [
        (NoticeType::Endorsement, &corroboration.endorsed_by),
        (NoticeType::Dispute, &corroboration.disputed_by),
    ] {
        let verb = if stance == NoticeType::Endorsement {
            "endorses"
        } else {
            "disputes"
        };
        for key in keys {
            out.push(Observed {
                happened_at: view.created_at,
                about: Some(*key),
                doc: facts.doc(
                    stance,
                    Severity::Low,
                    notice_id(&[snake(&stance).as_bytes(), &view.id.0, &key.0]),
                    format!("{} {verb}: {}", names.of(key), facts.headline()),
                    String::new(),
                    names.of(key),
                ),
            });
        }
    }
}
