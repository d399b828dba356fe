//! `solidarity mirror`: publish, withdraw and list mirror offers.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use solidarity_control::request;
use solidarity_proto::payload::{MirrorOffer, MirrorService};
use solidarity_proto::state::OfferView;

use super::{Names, parse_duration, parse_size, parse_wire, print_id, print_json, resolve_id};
use crate::render::{format_bytes, format_time, words};

#[derive(Subcommand)]
pub enum MirrorCommand {
    /// Publish an offer to take over a threatened member's content or services.
    Offer(OfferArgs),
    /// Withdraw one of this node's offers.
    Withdraw {
        /// Offer id (or a unique prefix of at least 8 characters).
        id: String,
    },
    /// List live offers.
    List {
        /// Only offers that include this service (repeatable: all must be offered).
        #[arg(long = "service", value_parser = parse_wire::<MirrorService>)]
        services: Vec<MirrorService>,
        /// Leave out offers in this jurisdiction (repeatable).
        #[arg(long = "avoid-jurisdiction", value_name = "CODE")]
        avoid: Vec<String>,
    },
}

#[derive(Args)]
pub struct OfferArgs {
    /// Service offered (repeatable): web, git, mail, lists, dns, onion, pads, storage, chat.
    #[arg(long = "service", required = true, value_parser = parse_wire::<MirrorService>)]
    pub services: Vec<MirrorService>,
    /// Storage offered, e.g. 50G (binary units K, M, G, T).
    #[arg(long, value_parser = parse_size)]
    pub storage: Option<u64>,
    /// ISO 3166 code of where the mirror runs (repeatable).
    #[arg(long = "jurisdiction", value_name = "CODE")]
    pub jurisdictions: Vec<String>,
    /// How long the offer stands: 90d, 12h or 30m (an offer always ends).
    #[arg(long, value_name = "DURATION", default_value = "90d", value_parser = parse_duration)]
    pub valid_for: Duration,
    /// How to reach you about it.
    #[arg(long)]
    pub contact: String,
    /// Upstream provider of the mirror.
    #[arg(long)]
    pub upstream: Option<String>,
    /// What the mirror logs and for how long.
    #[arg(long)]
    pub data_policy: Option<String>,
    /// Conditions attached.
    #[arg(long)]
    pub conditions: Option<String>,
}

pub fn run_mirror(data_dir: &Path, command: MirrorCommand, json: bool) -> anyhow::Result<()> {
    let client = crate::locations::client(data_dir);
    match command {
        MirrorCommand::Offer(args) => {
            let offer = MirrorOffer {
                services: args.services,
                storage_bytes: args.storage,
                jurisdictions: args
                    .jurisdictions
                    .iter()
                    .map(|code| code.trim().to_uppercase())
                    .collect(),
                upstream: args.upstream,
                data_policy: args.data_policy,
                conditions: args.conditions,
                contact: args.contact,
            };
            offer.check().context("the offer was not published")?;
            let id = client.sign(&request::MirrorOffer {
                offer,
                valid_for_ms: args.valid_for.as_millis() as u64,
            })?;
            print_id(id, json)
        }
        MirrorCommand::Withdraw { id } => {
            let offers = client.offers()?;
            let offer = resolve_id(&id, offers.iter().map(|view| view.id), "offer").context(
                "no live offer matches; if it was already withdrawn or has expired, the full 64-character id shows its state (`solidarity mirror list` lists live offers)",
            )?;
            let id = client.sign(&request::MirrorWithdraw { offer })?;
            print_id(id, json)
        }
        MirrorCommand::List { services, avoid } => {
            let avoid: Vec<String> = avoid
                .iter()
                .map(|code| code.trim().to_uppercase())
                .collect();
            let mut offers: Vec<OfferView> = client
                .offers()?
                .into_iter()
                .filter(|view| {
                    services
                        .iter()
                        .all(|service| view.offer.services.contains(service))
                })
                .filter(|view| {
                    !view
                        .offer
                        .jurisdictions
                        .iter()
                        .any(|code| avoid.contains(code))
                })
                .collect();
            offers.sort_by(solidarity_proto::state::offer_order);
            if json {
                return print_json(&offers);
            }
            print_offers(&offers, &Names::load(data_dir));
            Ok(())
        }
    }
}

fn print_offers(offers: &[OfferView], names: &Names) {
    if offers.is_empty() {
        println!("no mirror offers");
        return;
    }
    println!(
        "{:<8}  {:<14}  {:<24}  {:<9}  {:<13}  {:<20}  CONTACT",
        "ID", "BY", "SERVICES", "STORAGE", "JURISDICTIONS", "VALID UNTIL"
    );
    for view in offers {
        let offer = &view.offer;
        println!(
            "{:<8}  {:<14}  {:<24}  {:<9}  {:<13}  {:<20}  {}",
            view.id.short(),
            names.of(&view.author),
            offer
                .services
                .iter()
                .map(words)
                .collect::<Vec<_>>()
                .join(","),
            offer
                .storage_bytes
                .map(format_bytes)
                .unwrap_or_else(|| "-".into()),
            if offer.jurisdictions.is_empty() {
                "-".to_owned()
            } else {
                offer.jurisdictions.join(",")
            },
            view.expires_at
                .map(format_time)
                .unwrap_or_else(|| "-".into()),
            offer.contact
        );
    }
}
