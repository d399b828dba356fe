//! The admin view, on the optional `admin_addr` listener behind [`super::auth`]: everything
//! the node knows, for its own admins only. Members with key, connection, last message,
//! canary (duress included), certificate end, key state and vouchers; alerts and offers
//! named by member and short key; a summary that adds members silent, changed or under
//! duress and certificates ending within a week.

use axum::extract::State;
use maud::{Markup, html};
use solidarity_control::{CanaryState, MemberView};
use solidarity_proto::AuthorKey;

use super::render::{self, Names, PageHead, SummaryLine, certificate_ends_soon, time};
use super::{Snapshots, latest};
use crate::daemon::actor::now_ms;
use crate::daemon::snapshot::Snapshot;
use crate::render::{key_state_text, member_canary_text, trust_text};

/// How the admin view names an author: its name and short key.
fn admin_name(snapshot: &Snapshot, key: &AuthorKey) -> String {
    if *key == snapshot.status.node_key {
        return "this node".to_owned();
    }
    snapshot
        .members
        .iter()
        .find(|member| member.key == *key)
        .map_or_else(
            || key.short(),
            |member| format!("{} ({})", member.name, key.short()),
        )
}

fn canary_is(member: &MemberView, state: CanaryState) -> bool {
    member
        .canary
        .as_ref()
        .is_some_and(|canary| canary.state == state)
}

/// The admin summary: the public lines, then members under duress, silent or changed and
/// certificates ending soon, by name.
pub fn summary(snapshot: &Snapshot, now: u64) -> Vec<SummaryLine> {
    let status = &snapshot.status;
    let members = snapshot.members.as_slice();
    let revoked = members.iter().filter(|m| m.revoked_since.is_some()).count()
        + usize::from(status.own_key_revoked_since.is_some());
    let compromised = members
        .iter()
        .filter(|m| m.compromised_at.is_some())
        .count()
        + usize::from(status.own_key_compromised_at.is_some());
    let mut lines = render::crisis_summary(&snapshot.alerts, revoked, compromised);
    if let Some(why) = &status.signing_paused {
        lines.insert(
            0,
            SummaryLine {
                alarm: true,
                anchor: "/#members",
                text: format!("This node signs nothing for now: {why}"),
            },
        );
    }
    let named = |filter: &dyn Fn(&MemberView) -> bool| -> Vec<String> {
        members
            .iter()
            .filter(|member| filter(member))
            .map(|member| member.name.clone())
            .collect()
    };
    let groups: [(&str, Vec<String>); 5] = [
        (
            "under DURESS",
            named(&|m| canary_is(m, CanaryState::Duress)),
        ),
        ("SILENT", named(&|m| canary_is(m, CanaryState::Silent))),
        (
            "CHANGED canary",
            named(&|m| canary_is(m, CanaryState::Changed)),
        ),
        ("over budget", named(&|m| m.over_budget.is_some())),
        (
            "certificate ending within a week",
            named(&|m| {
                m.certified_until
                    .is_some_and(|until| certificate_ends_soon(now, until))
            }),
        ),
    ];
    for (what, names) in groups {
        if !names.is_empty() {
            lines.push(SummaryLine {
                alarm: true,
                anchor: "/#members",
                text: format!(
                    "{} {what}: {}",
                    render::counted(names.len(), "member", "members"),
                    names.join(", ")
                ),
            });
        }
    }
    lines
}

/// Members by name (then key), the same order at every reload.
fn members_section(snapshot: &Snapshot, now: u64) -> Markup {
    let mut members: Vec<&MemberView> = snapshot.members.iter().collect();
    members.sort_by(|a, b| a.name.cmp(&b.name).then(a.key.0.cmp(&b.key.0)));
    html! {
        section #members {
            h2 { "Members (" (snapshot.members.len()) ")" }
            @if snapshot.members.is_empty() {
                p.empty { "No members yet: add one with " code { "solidarity member add CARD --name NAME" } "." }
            } @else {
                table.stack {
                    thead { tr { th { "Name" } th { "Key" } th { "Connected" } th { "Last message" } th { "Canary" } th { "Certificate" } th { "Key state" } th { "Trusted" } } }
                    tbody {
                        @for member in members {
                            tr {
                                td data-label="Name" { bdi { (member.name) } @if member.collective != member.name { " (" bdi { (member.collective) } ")" }
                                    @if !member.label_conflicts.is_empty() { br; small { "other labels from vouchers: " bdi { (member.label_conflicts.join(", ")) } } } }
                                td data-label="Key" { code title=(member.key.to_hex()) { (member.key.short()) } }
                                td data-label="Connected" class=(if member.connected { "up" } else { "down" }) {
                                    @if member.connected { "connected" } @else { "not connected" }
                                }
                                td data-label="Last message" { @match member.last_message_at { Some(at) => (time(now, at)), None => "never" } }
                                td data-label="Canary" class=(if !member.trusted || member.canary.as_ref().is_some_and(|c| c.state != CanaryState::Ok) { "down" } else { "up" }) {
                                    (render::text_with_times(&member_canary_text(member)))
                                }
                                td data-label="Certificate" class=(if member.certified_until.is_some_and(|until| certificate_ends_soon(now, until)) { "down" } else { "up" }) {
                                    (render::certificate_text(now, member.certified_until))
                                }
                                td data-label="Key state" class=(if member.trusted && member.over_budget.is_none() { "up" } else { "down" }) {
                                    (render::text_with_times(&key_state_text(member)))
                                    @if let Some(over) = member.over_budget { " — over budget: " (over.describe()) }
                                }
                                td data-label="Trusted" {
                                    bdi { (render::text_with_times(&trust_text(&member.trust))) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn notices_section(snapshot: &Snapshot, now: u64) -> Markup {
    let status = &snapshot.status;
    let revoked: Vec<&MemberView> = snapshot
        .members
        .iter()
        .filter(|m| m.revoked_since.is_some())
        .collect();
    let compromised: Vec<&MemberView> = snapshot
        .members
        .iter()
        .filter(|m| m.compromised_at.is_some())
        .collect();
    html! {
        @if status.own_key_revoked_since.is_some() || !revoked.is_empty() {
            section #revoked .notice {
                h2 { "Revoked keys" }
                ul {
                    @if let Some(since) = status.own_key_revoked_since {
                        li { strong { "This node's own key" } " is revoked; what it signed since " (time(now, since)) " is suspect." }
                    }
                    @for member in revoked {
                        li {
                            strong { bdi { (member.name) } } " (" bdi { (member.collective) } ", key " code { (member.key.short()) } ") is revoked: messages signed since "
                            (member.revoked_since.map(|since| time(now, since)).unwrap_or_default())
                            " are suspect, later ones refused."
                        }
                    }
                }
            }
        }
        @if status.own_key_compromised_at.is_some() || !compromised.is_empty() {
            section #compromise .notice {
                h2 { "Key compromise" }
                ul {
                    @if let Some(at) = status.own_key_compromised_at {
                        li { strong { "This node's own key" } " signed two conflicting messages (detected " (time(now, at)) "): another party holds it." }
                    }
                    @for member in compromised {
                        li {
                            strong { bdi { (member.name) } } " (key " code { (member.key.short()) } ") signed two conflicting messages (detected "
                            (member.compromised_at.map(|at| time(now, at)).unwrap_or_default())
                            "). Its messages are no longer accepted."
                        }
                    }
                }
            }
        }
    }
}

/// Renders the admin page of `snapshot` at `now`.
pub fn page(snapshot: &Snapshot, now: u64) -> Markup {
    let status = &snapshot.status;
    let names = |key: &AuthorKey| admin_name(snapshot, key);
    let names: Names<'_> = &names;
    let uptime = std::time::Duration::from_secs(now.saturating_sub(status.started_at) / 1000);
    let head = PageHead {
        title: "solidarity admin",
        federation: &status.federation,
        node_line: html! {
            "Federation " strong { (status.federation) } (render::dot())
            "node " code title=(status.node_key.to_hex()) { (status.node_key.short()) } (render::dot())
            (status.connected) " of " (status.members) " members connected" (render::dot())
            "up " (humantime::format_duration(uptime)) (render::dot())
            "version " (status.version)
        },
        now_ms: now,
        feed: false,
    };
    let main = html! {
        p.private { "Admin view: it names members and shows their canaries, duress included. Never publish or share it." }
        (render::summary_section(&summary(snapshot, now)))
        (notices_section(snapshot, now))
        (members_section(snapshot, now))
        (render::alerts_section(names, now, &snapshot.alerts))
        (render::offers_section(names, now, &snapshot.offers))
    };
    let footer = html! {
        p { "The public page is at " (status.status_url) "; the CLI shows the same: " code { "solidarity peers" } ", " code { "solidarity alert list" } "." }
    };
    render::page(&head, main, footer)
}

pub async fn index(State(snapshots): State<Snapshots>) -> Markup {
    page(&latest(&snapshots), now_ms())
}
