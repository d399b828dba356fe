//! `solidarity alert`: raise, update, show, list (with filters), endorse, dispute.
//!
//! Listings are in [`alert_order`] (open first, then severity, newest, id), the order of
//! the status page. The daemon decides what it refuses to sign (a status not valid for
//! the alert's kind, a no-op, a stance already held); this side prints its one line.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use solidarity_control::{AlertDetail, Client, request};
use solidarity_proto::AuthorKey;
use solidarity_proto::payload::{
    self, Alert, AlertCategory, AlertStatus, LegalType, Seized, Severity, Stance,
};
use solidarity_proto::state::{AlertView, alert_order};

use super::{Lifetime, Names, parse_lifetime, parse_wire, print_id, print_json, resolve_alert};
use crate::render::{author_state_text, corroboration_text, format_time, words};

#[derive(Subcommand)]
pub enum AlertCommand {
    /// Sign and publish an alert. Prints its id once it is durably stored.
    Raise(Box<RaiseArgs>),
    /// Change the state of one of this node's alerts. Refused, with nothing signed: a
    /// status the alert's kind does not have, the status it already has (without --note),
    /// and any update after `retracted` (final).
    Update {
        /// Alert id (or a unique prefix of at least 8 characters).
        id: String,
        /// New state. Every kind: open, confirmed, resolved, retracted. Legal requests, gag
        /// orders and takedowns also: received, contested, complied, partially-complied,
        /// refused. Legal requests and gag orders also: gag-active, disclosed.
        #[arg(long, value_parser = parse_wire::<AlertStatus>)]
        status: AlertStatus,
        /// What changed.
        #[arg(long)]
        note: Option<String>,
    },
    /// Everything about one alert: its fields, updates with notes, endorsements and
    /// disputes with member names and notes, corroboration, expiry.
    Show {
        /// Alert id (or a unique prefix of at least 8 characters).
        id: String,
    },
    /// List alerts: open ones first, then most severe, then newest.
    List(ListArgs),
    /// "We see it too": endorse another member's alert.
    Endorse {
        /// Alert id (or a unique prefix of at least 8 characters).
        id: String,
        /// What you see yourselves, shown beside the endorsement.
        #[arg(long)]
        note: Option<String>,
    },
    /// Dispute another member's alert.
    Dispute {
        /// Alert id (or a unique prefix of at least 8 characters).
        id: String,
        /// Why you dispute it, shown beside the dispute.
        #[arg(long)]
        note: Option<String>,
    },
    /// Withdraw this node's endorsement or dispute of an alert.
    Unendorse {
        /// Alert id (or a unique prefix of at least 8 characters).
        id: String,
    },
}

#[derive(Args)]
pub struct ListArgs {
    /// Stored alerts beyond the newest 200 the status page shows: the newest 10 000 of
    /// each member, up to 10 000 in all.
    #[arg(long)]
    pub all: bool,
    /// Only open alerts (neither resolved nor retracted).
    #[arg(long)]
    pub open: bool,
    /// Only alerts of at least this severity: info, low, medium, high, critical
    /// (`--severity high` lists high and critical).
    #[arg(long, value_name = "LEVEL", value_parser = parse_wire::<Severity>)]
    pub severity: Option<Severity>,
    /// Only alerts of this kind (repeatable: any of them).
    #[arg(long = "kind", value_name = "KIND", value_parser = parse_wire::<AlertCategory>)]
    pub kinds: Vec<AlertCategory>,
    /// Only alerts raised since: a duration back from now (2h, 3d), a date (2026-11-28,
    /// from 00:00 UTC) or a time (2026-11-28T06:00:00Z).
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    pub since: Option<u64>,
    /// Only alerts raised by this member: its name or the first 8+ characters of its key.
    #[arg(long, value_name = "NAME")]
    pub member: Option<String>,
    /// At most this many alerts (1 or more), the first in list order.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
}

#[derive(Args)]
pub struct RaiseArgs {
    /// What happened: seizure, raid, takedown, legal-request, gag-order, intrusion,
    /// key-compromise, outage.
    #[arg(long, value_parser = parse_wire::<AlertCategory>)]
    pub kind: AlertCategory,
    /// The server or domain concerned (at most 253 bytes).
    #[arg(long)]
    pub subject: String,
    /// info, low, medium, high, critical.
    #[arg(long, value_parser = parse_wire::<Severity>)]
    pub severity: Severity,
    /// One line (at most 200 bytes).
    #[arg(long)]
    pub summary: String,
    /// Free text, may span lines (at most 8192 bytes).
    #[arg(long)]
    pub details: Option<String>,
    /// ISO 3166 code of a jurisdiction involved (repeatable), e.g. FR.
    #[arg(long = "jurisdiction", value_name = "CODE")]
    pub jurisdictions: Vec<String>,
    /// Legal instrument: subpoena, warrant, court-order, data-retention-order,
    /// preservation-order, gag-order, takedown-notice, other.
    #[arg(long, value_parser = parse_wire::<LegalType>)]
    pub legal_type: Option<LegalType>,
    /// Issuing authority.
    #[arg(long)]
    pub authority: Option<String>,
    /// Legal basis invoked.
    #[arg(long)]
    pub legal_basis: Option<String>,
    /// When it happened, a real date written YYYY-MM-DD.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_event_date)]
    pub event_date: Option<String>,
    /// What was taken: none, encrypted-only, metadata, content, keys, unknown.
    #[arg(long, value_parser = parse_wire::<Seized>)]
    pub seized: Option<Seized>,
    /// Affected service (repeatable).
    #[arg(long = "service")]
    pub services: Vec<String>,
    /// Affected domain (repeatable).
    #[arg(long = "domain")]
    pub domains: Vec<String>,
    /// Upstream provider involved.
    #[arg(long)]
    pub upstream: Option<String>,
    /// Reference: case number, URL of a statement (repeatable).
    #[arg(long = "reference")]
    pub references: Vec<String>,
    /// Delete the alert everywhere after this long: 30d, 12h, 90m or never.
    #[arg(long, value_name = "DURATION", default_value = "never", value_parser = parse_lifetime)]
    pub expires_in: Lifetime,
}

/// `--event-date`: a real calendar date.
fn parse_event_date(text: &str) -> Result<String, String> {
    let date = text.trim();
    if payload::is_calendar_date(date) {
        Ok(date.to_owned())
    } else {
        Err(format!(
            "{text:?} is not a real date; give it as YYYY-MM-DD, e.g. 2026-11-28"
        ))
    }
}

/// `--since`: a duration back from now, a date (00:00 UTC) or an RFC 3339 time → ms.
fn parse_since(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let format = || {
        format!(
            "{text:?}: give a duration back from now (2h, 3d), a date (2026-11-28) or a time (2026-11-28T06:00:00Z)"
        )
    };
    let time = if let Ok(back) = humantime::parse_duration(text) {
        SystemTime::now().checked_sub(back).unwrap_or(UNIX_EPOCH)
    } else if payload::is_calendar_date(text) {
        humantime::parse_rfc3339(&format!("{text}T00:00:00Z")).map_err(|_| format())?
    } else {
        humantime::parse_rfc3339_weak(text).map_err(|_| format())?
    };
    Ok(time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64))
}

pub fn run_alert(data_dir: &Path, command: AlertCommand, json: bool) -> anyhow::Result<()> {
    let client = crate::locations::client(data_dir);
    match command {
        AlertCommand::Raise(args) => {
            let args = *args;
            let alert = Alert {
                category: args.kind,
                legal_type: args.legal_type,
                severity: args.severity,
                subject: args.subject,
                summary: args.summary,
                details: args.details,
                jurisdictions: args
                    .jurisdictions
                    .iter()
                    .map(|code| code.trim().to_uppercase())
                    .collect(),
                authority: args.authority,
                legal_basis: args.legal_basis,
                event_date: args.event_date,
                seized: args.seized,
                services: args.services,
                domains: args.domains,
                upstream: args.upstream,
                references: args.references,
            };
            alert.check().context("the alert was not raised")?;
            let id = client.sign(&request::AlertRaise {
                alert,
                expires_in_ms: args
                    .expires_in
                    .0
                    .map(|lifetime| lifetime.as_millis() as u64),
            })?;
            print_id(id, json)
        }
        AlertCommand::Update { id, status, note } => {
            let alert = resolve_alert(&client, &id)?;
            let id = client.sign(&request::AlertUpdate {
                alert,
                status,
                note,
            })?;
            print_id(id, json)
        }
        AlertCommand::Show { id } => {
            let alert = resolve_alert(&client, &id)?;
            let detail = client.alert_show(alert)?;
            if json {
                return print_json(&detail);
            }
            print_detail(&detail, &MemberNames::load(data_dir, &client));
            Ok(())
        }
        AlertCommand::List(args) => {
            let mut alerts = if args.all {
                client.all_alerts()?
            } else {
                client.alerts()?
            };
            let names = MemberNames::load(data_dir, &client);
            let authors = args
                .member
                .as_deref()
                .map(|member| names.matching(member))
                .transpose()?;
            alerts.retain(|view| {
                (!args.open || !view.status.is_closed())
                    && args
                        .severity
                        .is_none_or(|least| view.alert.severity >= least)
                    && (args.kinds.is_empty() || args.kinds.contains(&view.alert.category))
                    && args.since.is_none_or(|since| view.created_at >= since)
                    && authors
                        .as_ref()
                        .is_none_or(|authors| authors.contains(&view.author))
            });
            alerts.sort_by(alert_order);
            if let Some(limit) = args.limit {
                alerts.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            }
            if json {
                return print_json(&alerts);
            }
            print_alerts(&alerts, &names.names);
            Ok(())
        }
        AlertCommand::Endorse { id, note } => endorse(&client, &id, Stance::Endorse, note, json),
        AlertCommand::Dispute { id, note } => endorse(&client, &id, Stance::Dispute, note, json),
        AlertCommand::Unendorse { id } => endorse(&client, &id, Stance::Retract, None, json),
    }
}

fn endorse(
    client: &Client,
    id: &str,
    stance: Stance,
    note: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let alert = resolve_alert(client, id)?;
    let id = client.sign(&request::AlertEndorse {
        alert,
        stance,
        note,
    })?;
    print_id(id, json)
}

/// Member names: the daemon's members (also those trusted by vouching), else the members
/// file; this node is "(this node)".
struct MemberNames {
    names: Names,
    daemon: Vec<(String, AuthorKey)>,
}

impl MemberNames {
    fn load(data_dir: &Path, client: &Client) -> Self {
        Self {
            names: Names::load(data_dir),
            daemon: client
                .peers()
                .map(|members| {
                    members
                        .into_iter()
                        .map(|member| (member.name, member.key))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    fn of(&self, key: &AuthorKey) -> String {
        match self.daemon.iter().find(|(_, member)| member == key) {
            Some((name, _)) => name.clone(),
            None => self.names.of(key),
        }
    }

    /// The keys `--member` means: members of that name, or keys starting with it.
    fn matching(&self, text: &str) -> anyhow::Result<Vec<AuthorKey>> {
        let wanted = text.trim().to_lowercase();
        let mut keys: Vec<AuthorKey> = self
            .daemon
            .iter()
            .map(|(name, key)| (name.clone(), *key))
            .chain(
                self.names
                    .members
                    .members
                    .iter()
                    .map(|member| (member.name.clone(), member.key)),
            )
            .chain(self.names.me.map(|me| ("(this node)".to_owned(), me)))
            .filter(|(name, key)| {
                name.to_lowercase() == wanted
                    || (wanted.len() >= 8 && key.to_hex().starts_with(&wanted))
            })
            .map(|(_, key)| key)
            .collect();
        keys.sort();
        keys.dedup();
        if keys.is_empty() {
            bail!(
                "no member is named {text:?} or has a key starting with it (a key prefix needs at least 8 characters)"
            );
        }
        Ok(keys)
    }
}

fn print_alerts(alerts: &[AlertView], names: &Names) {
    if alerts.is_empty() {
        println!("no alerts");
        return;
    }
    println!(
        "{:<8}  {:<8}  {:<14}  {:<22}  {:<32}  {:<20}  {:<14}  SUBJECT: SUMMARY",
        "ID", "SEVERITY", "KIND", "STATE", "CORROBORATION", "RAISED", "BY"
    );
    for view in alerts {
        println!(
            "{:<8}  {:<8}  {:<14}  {:<22}  {:<32}  {:<20}  {:<14}  {}: {}",
            view.id.short(),
            words(&view.alert.severity),
            words(&view.alert.category),
            author_state_text(view),
            corroboration_text(view).unwrap_or_else(|| "-".to_owned()),
            format_time(view.created_at),
            names.of(&view.author),
            view.alert.subject,
            view.alert.summary
        );
    }
}

/// One labelled line, skipped when there is nothing to say.
fn field(label: &str, value: Option<String>) {
    if let Some(value) = value.filter(|value| !value.is_empty()) {
        println!("{label:<15}{value}");
    }
}

fn indented(text: &str) {
    for line in text.lines() {
        println!("    {line}");
    }
}

fn print_detail(detail: &AlertDetail, names: &MemberNames) {
    let view = &detail.alert;
    let alert = &view.alert;
    field("alert", Some(view.id.to_hex()));
    if view.suspect {
        field(
            "WARNING",
            Some("SUSPECT: signed by a key that is revoked or in two hands".to_owned()),
        );
    }
    field("kind", Some(words(&alert.category)));
    field("legal type", alert.legal_type.as_ref().map(words));
    field("severity", Some(words(&alert.severity)));
    field("subject", Some(alert.subject.clone()));
    field("summary", Some(alert.summary.clone()));
    field(
        "state",
        Some(format!(
            "{} (set by its author, {})",
            words(&view.status),
            format_time(view.updated_at)
        )),
    );
    field("corroboration", corroboration_text(view));
    field(
        "raised",
        Some(format!(
            "{} by {} ({})",
            format_time(view.created_at),
            names.of(&view.author),
            view.author.short()
        )),
    );
    field(
        "expires",
        Some(
            view.expires_at
                .map_or_else(|| "never".to_owned(), format_time),
        ),
    );
    field("event date", alert.event_date.clone());
    field("jurisdictions", Some(alert.jurisdictions.join(", ")));
    field("authority", alert.authority.clone());
    field("legal basis", alert.legal_basis.clone());
    field("seized", alert.seized.as_ref().map(words));
    field("services", Some(alert.services.join(", ")));
    field("domains", Some(alert.domains.join(", ")));
    field("upstream", alert.upstream.clone());
    field("references", Some(alert.references.join(", ")));
    if let Some(details) = &alert.details {
        println!("details");
        indented(details);
    }
    if view.earlier_updates > 0 {
        println!(
            "updates        {} latest (and {} earlier updates)",
            view.history.len(),
            view.earlier_updates
        );
    } else {
        println!("updates        {}", view.history.len());
    }
    for update in &view.history {
        println!(
            "  {}  {}",
            format_time(update.created_at),
            words(&update.status)
        );
        if let Some(note) = &update.note {
            indented(note);
        }
    }
    println!("stances        {}", detail.stances.len());
    for stance in &detail.stances {
        println!(
            "  {}  {:<8}  {} ({})",
            format_time(stance.created_at),
            match stance.stance {
                Stance::Endorse => "endorses",
                Stance::Dispute => "disputes",
                Stance::Retract => "withdrew",
            },
            names.of(&stance.author),
            stance.author.short()
        );
        if let Some(note) = &stance.note {
            indented(note);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raise_and_list_arguments_parse_into_their_types() {
        use clap::Parser;
        let raise = |extra: &[&str]| {
            let mut args = vec![
                "solidarity",
                "alert",
                "raise",
                "--kind",
                "outage",
                "--subject",
                "s",
                "--severity",
                "low",
                "--summary",
                "s",
            ];
            args.extend_from_slice(extra);
            match super::super::Cli::try_parse_from(args).map(|cli| cli.command) {
                Ok(super::super::Command::Alert(AlertCommand::Raise(raise))) => {
                    Ok(raise.expires_in)
                }
                Ok(_) => panic!("not a raise"),
                Err(error) => Err(error.to_string()),
            }
        };
        assert_eq!(raise(&[]), Ok(Lifetime(None)));
        assert_eq!(
            raise(&["--expires-in", "2h"]),
            Ok(Lifetime(Some(std::time::Duration::from_secs(7200))))
        );
        assert!(raise(&["--expires-in", "soon"]).is_err());
        let list = super::super::Cli::try_parse_from([
            "solidarity",
            "alert",
            "list",
            "--open",
            "--severity",
            "high",
            "--kind",
            "raid",
            "--kind",
            "seizure",
            "--since",
            "2h",
            "--member",
            "riseup",
        ]);
        assert!(list.is_ok());
    }

    #[test]
    fn event_dates_must_be_real_and_say_the_format() {
        assert_eq!(parse_event_date("2024-02-29"), Ok("2024-02-29".to_owned()));
        let error = parse_event_date("2026-02-30").expect_err("no such day");
        assert!(error.contains("YYYY-MM-DD"), "{error}");
        assert!(parse_event_date("28.11.2026").is_err());
    }

    #[test]
    fn since_takes_durations_dates_and_times() {
        assert_eq!(parse_since("2026-11-28"), Ok(1_795_824_000_000));
        assert_eq!(parse_since("2026-11-28T06:00:00Z"), Ok(1_795_845_600_000));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|now| now.as_millis() as u64)
            .unwrap_or_default();
        let back = parse_since("2h").expect("duration");
        assert!(back <= now - 7_190_000 && back >= now - 7_210_000);
        assert!(parse_since("yesterday").expect_err("no").contains("2h"));
    }
}
