//! `solidarity member`: the admin's list of trusted keys and collective identities.

use std::path::Path;

use anyhow::{Context, bail};
use clap::Subcommand;
use solidarity_control::request;

use super::{print_id, print_json};
use crate::identity::{self, Card};
use crate::members::MembersFile;
use crate::render::{key_state_text, trust_text};

#[derive(Subcommand)]
pub enum MemberCommand {
    /// Trust a member: give its card (or bare key) and a name.
    Add {
        /// The member's card as printed by its `solidarity id`, or its 64-hex key.
        card: String,
        /// A short name for it, e.g. riseup.
        #[arg(long)]
        name: String,
        /// The collective it belongs to, when one collective runs several nodes
        /// (endorsements count once per collective). Default: its name.
        #[arg(long)]
        collective: Option<String>,
        /// The key is a collective's offline identity key: trust the node keys it
        /// certifies, while their certificates last.
        #[arg(long)]
        identity: bool,
    },
    /// Vouch for a new member to the whole federation: each node trusts it once enough
    /// members it trusts vouched (their `vouch_threshold`).
    Vouch {
        /// The new member's card.
        card: String,
        /// The name it goes by.
        #[arg(long)]
        name: String,
    },
    /// Withdraw this node's vouch for a member (by its card or key).
    Unvouch { card: String },
    /// Stop trusting a member (by name or key).
    Remove { name_or_key: String },
    /// Trust again a member whose key was marked compromised after a fork (two different
    /// messages signed with one key). Do this only once its collective confirmed the key
    /// is back in their hands alone.
    Retrust { name_or_key: String },
    /// List trusted members.
    List,
}

pub fn run_member(data_dir: &Path, command: MemberCommand, json: bool) -> anyhow::Result<()> {
    let mut file = MembersFile::load(data_dir)?;
    let changed = match command {
        MemberCommand::Add {
            card,
            name,
            collective,
            identity: is_identity,
        } => {
            let card = Card::parse(&card)?;
            if identity::load_key_file(data_dir)
                .is_ok_and(|key| solidarity_proto::envelope::author_key(&key) == card.key)
            {
                bail!("that is this node's own key");
            }
            for warning in crate::card_addresses::card_warnings(&card) {
                eprintln!("warning: {warning}");
            }
            let dials_onions = crate::config::NodeConfig::load(data_dir)
                .map(|config| config.tor.is_some())
                .unwrap_or(true);
            if !dials_onions && card.addresses.iter().any(crate::tor::is_onion_only) {
                eprintln!(
                    "warning: the card's onion address is dialled only through tor, and this node has no [tor] table: add `[tor]` with `socks = \"unix:/run/tor/socks\"` (or \"127.0.0.1:9050\") to {} and restart (README: Running over Tor)",
                    crate::locations::config_path(data_dir).display()
                );
            }
            let previous = file
                .members
                .iter()
                .find(|member| member.key == card.key)
                .cloned();
            file.add_in(&card, &name, collective.as_deref())?;
            if let Some(previous) = &previous {
                eprintln!(
                    "note: key {} was already a member ({}); its entry is replaced by this card",
                    card.key.short(),
                    previous.name
                );
                if previous.duress_commitment.is_some() && card.duress_commitment.is_none() {
                    eprintln!(
                        "warning: the old entry had a duress commitment and this card has none: DURESS from this member is no longer recognised (add the card as CARD~COMMITMENT to keep it)"
                    );
                }
                if previous.collective.is_some() && collective.is_none() {
                    eprintln!(
                        "warning: the old entry was of collective {:?}; give --collective again to keep it",
                        previous.collective.as_deref().unwrap_or_default()
                    );
                }
            }
            if let Some(member) = file
                .members
                .iter_mut()
                .find(|member| member.key == card.key)
            {
                member.identity = is_identity;
            }
            println!("member {name} added ({})", card.key.short());
            true
        }
        MemberCommand::Remove { name_or_key } => match file.remove(&name_or_key) {
            Some(member) => {
                println!("member {} removed", member.name);
                true
            }
            None => bail!("no member named or keyed {name_or_key:?}"),
        },
        MemberCommand::Retrust { name_or_key } => {
            let member = file
                .members
                .iter()
                .find(|member| member.name == name_or_key || member.key.to_hex() == name_or_key)
                .with_context(|| format!("no member named or keyed {name_or_key:?}"))?;
            crate::locations::client(data_dir).retrust(member.key)?;
            println!("member {} is trusted again", member.name);
            false
        }
        MemberCommand::Vouch { card, name } => {
            let card = Card::parse(&card)?;
            let id = crate::locations::client(data_dir).sign(&request::MemberVouch {
                key: card.key,
                name,
                addresses: card.addresses.iter().map(ToString::to_string).collect(),
                vouch: true,
            })?;
            print_id(id, json)?;
            false
        }
        MemberCommand::Unvouch { card } => {
            let card = Card::parse(&card)?;
            let id = crate::locations::client(data_dir).sign(&request::MemberVouch {
                key: card.key,
                name: "withdrawn".into(),
                addresses: Vec::new(),
                vouch: false,
            })?;
            print_id(id, json)?;
            false
        }
        MemberCommand::List => {
            // With the daemon running, the list includes members trusted by vouching.
            if let Ok(members) = crate::locations::client(data_dir).peers() {
                if json {
                    print_json(&members)?;
                } else {
                    println!("{:<20} {:<64} TRUSTED BECAUSE", "NAME", "KEY");
                    for member in &members {
                        let mut why = trust_text(&member.trust);
                        if !member.trusted {
                            why = format!("NOT TRUSTED: {} ({why})", key_state_text(member));
                        }
                        if let Some(over) = member.over_budget {
                            why = format!("{why}; OVER BUDGET: {}", over.describe());
                        }
                        println!("{:<20} {} {why}", member.name, member.key);
                        if !member.label_conflicts.is_empty() {
                            println!(
                                "{:<20} its vouchers also call it: {} (the first label stands)",
                                "",
                                member.label_conflicts.join(", ")
                            );
                        }
                    }
                }
                return Ok(());
            }
            if json {
                print_json(&file.members)?;
            } else if file.members.is_empty() {
                println!(
                    "no members yet; add one with `{}`",
                    crate::locations::hint("member add CARD --name NAME")
                );
            } else {
                println!("{:<20} {:<64} TRUSTED BECAUSE", "NAME", "KEY");
                for member in &file.members {
                    let why = if member.identity {
                        trust_text(&solidarity_control::TrustBasis::Identity)
                    } else {
                        trust_text(&solidarity_control::TrustBasis::AddedByAdmin)
                    };
                    println!("{:<20} {} {why}", member.name, member.key);
                }
                println!(
                    "(the daemon is not running: keys trusted by certificate or vouching, and revocations, show while it runs)"
                );
            }
            false
        }
    };
    if changed {
        std::fs::create_dir_all(data_dir)?;
        file.save(data_dir)?;
        match crate::locations::client(data_dir).reload_members() {
            Ok(()) => println!("the running daemon now uses the new member list"),
            Err(solidarity_control::ControlError::DaemonNotRunning { .. }) => {
                println!("the daemon is not running; the change applies when it starts")
            }
            Err(other) => {
                return Err(other)
                    .context("the members file was saved but the daemon did not reload it");
            }
        }
    }
    Ok(())
}
