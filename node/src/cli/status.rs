//! What the node says about itself: `status`, `peers`, `id` (also without a daemon) and
//! `metrics`.

use std::path::Path;
use std::time::Duration;

use super::{load_node_key, print_json};
use crate::config::NodeConfig;
use crate::identity::Card;
use crate::render::{format_time, key_state_text, member_canary_text, trust_text};

pub fn run_id(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let card = match crate::locations::client(data_dir).card() {
        Ok(card) => card,
        Err(solidarity_control::ControlError::DaemonNotRunning { .. }) => {
            let key = load_node_key(data_dir)?;
            let mut config = NodeConfig::load(data_dir)?;
            // Made here when the daemon has not made it yet: the card must carry it.
            config.onion_announce =
                crate::tor::p2p_onion_address(config.tor.as_ref(), data_dir, true)?;
            let addresses = crate::card_addresses::node_card_addresses(&config, &config.listen);
            Card {
                key: solidarity_proto::envelope::author_key(&key),
                addresses,
                duress_commitment: None,
            }
            .render()
        }
        Err(other) => return Err(other.into()),
    };
    let tor_only = NodeConfig::load(data_dir)
        .ok()
        .and_then(|config| config.tor)
        .filter(|tor| tor.only);
    if let Some(tor) = &tor_only
        && !tor.onion_service
    {
        eprintln!(
            "warning: `onion_service = false` under [tor]: this onion-only node has no address, so members cannot dial it (it dials them)"
        );
    } else if tor_only.is_none()
        && Card::parse(&card).is_ok_and(|parsed| parsed.addresses.is_empty())
    {
        eprintln!(
            "warning: no address others can dial is known, so the card carries the key alone; set `announce` in {} to this server's public address or DNS name (e.g. announce = [\"/dns4/node.example.org/tcp/7447\"]), then run `{}` again",
            crate::locations::config_path(data_dir).display(),
            crate::locations::hint("id"),
        );
    }
    if json {
        print_json(&serde_json::json!({ "card": card }))
    } else {
        println!("{card}");
        Ok(())
    }
}

pub fn run_metrics(data_dir: &Path) -> anyhow::Result<()> {
    print!("{}", crate::locations::client(data_dir).metrics()?);
    Ok(())
}

pub fn run_status(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let status = crate::locations::client(data_dir).status()?;
    if json {
        return print_json(&status);
    }
    let ports: Vec<String> = status.p2p_ports.iter().map(ToString::to_string).collect();
    println!("node         {}", status.node_key);
    println!("peer id      {}", status.peer_id);
    println!("federation   {}", status.federation);
    println!("version      {}", status.version);
    println!(
        "uptime       {}",
        humantime::format_duration(Duration::from_secs(status.uptime_secs))
    );
    println!(
        "p2p ports    {}",
        if ports.is_empty() {
            "-".to_owned()
        } else {
            ports.join(", ")
        }
    );
    println!("status page  {} (public)", status.status_url);
    if let Some(admin_url) = &status.admin_url {
        match crate::admin_token::read_token(data_dir) {
            Some(token) => println!("admin page   {admin_url}login?token={token} (private)"),
            None => println!(
                "admin page   {admin_url} (private; token in {})",
                crate::admin_token::token_path(data_dir).display()
            ),
        }
    }
    if let Some(metrics_url) = &status.metrics_url {
        println!("metrics      {metrics_url} (Prometheus)");
    }
    if let Some(tor) = &status.tor {
        println!("network      {}", tor.profile);
        println!("tor          {}", tor.state);
        if let Some(onion) = &tor.onion {
            println!("onion        {onion} (on the card)");
        }
        if let Some(url) = &tor.status_onion {
            println!("status onion {url} (public)");
        }
    }
    println!(
        "members      {} ({} connected)",
        status.members, status.connected
    );
    println!("alerts       {}", status.alerts);
    println!("offers       {}", status.offers);
    println!("stored       {} messages", status.stored_messages);
    println!(
        "signed       {} messages in this node's chain",
        status.own_seq
    );
    if let Some(why) = &status.signing_paused {
        println!("WAITING      {why}");
    }
    if let Some(since) = status.own_key_revoked_since {
        println!(
            "WARNING      this node's key is revoked (its messages since {} are suspect)",
            format_time(since)
        );
    }
    if let Some(at) = status.own_key_compromised_at {
        println!(
            "WARNING      this node's key signed conflicting messages (detected {}): another party holds it",
            format_time(at)
        );
    }
    Ok(())
}

pub fn run_peers(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let members = crate::locations::client(data_dir).peers()?;
    if json {
        return print_json(&members);
    }
    if members.is_empty() {
        println!(
            "no members yet; add one with `{}`",
            crate::locations::hint("member add CARD --name NAME")
        );
        return Ok(());
    }
    println!(
        "{:<20}  {:<8}  {:<9}  {:<20}  {:<28}  {:<24}  KEY STATE",
        "NAME", "KEY", "CONNECTED", "LAST MESSAGE", "CANARY", "CERTIFICATE"
    );
    for member in members {
        println!(
            "{:<20}  {:<8}  {:<9}  {:<20}  {:<28}  {:<24}  {} ({})",
            member.name,
            member.key.short(),
            if member.connected { "yes" } else { "no" },
            member
                .last_message_at
                .map(format_time)
                .unwrap_or_else(|| "never".into()),
            member_canary_text(&member),
            member.certified_until.map_or_else(
                || "-".to_owned(),
                |until| format!("until {}", format_time(until))
            ),
            key_state_text(&member),
            trust_text(&member.trust)
        );
        if let Some(over) = member.over_budget {
            println!(
                "{:<20}  OVER BUDGET: {}; its further messages are ignored for now",
                "",
                over.describe()
            );
        }
    }
    Ok(())
}
