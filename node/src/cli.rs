//! The command line: argument definitions and the client side of every command.
//!
//! Commands that act on local files (`init`, `id` without a daemon, `member`) work without
//! a daemon; every other command is a typed call on the daemon's control socket.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde::de::DeserializeOwned;
use solidarity_control::{Client, Request};
use solidarity_proto::payload::{
    Alert, AlertCategory, AlertStatus, CanaryCode, LegalType, MirrorOffer, MirrorService, Seized,
    Severity, Stance,
};
use solidarity_proto::state::{AlertView, OfferView};
use solidarity_proto::{AuthorKey, MessageId};

use crate::config::{self, NodeConfig};
use crate::daemon::status_page::{format_time, words};
use crate::identity::{self, Card};
use crate::members::MembersFile;

#[derive(Parser)]
#[command(
    name = "solidarity",
    version,
    about = "Mutual defence for autonomous hosting collectives: signed alerts and mirror offers shared over a peer-to-peer federation.",
    long_about = None
)]
pub struct Cli {
    /// Node data directory (key, config, members, store, control socket).
    /// Default: the user's node ($XDG_DATA_HOME/solidarity, else ~/.local/share/solidarity)
    /// if it exists, else the system node (/var/lib/solidarity, config in
    /// /etc/solidarity) if it exists or when run as root.
    #[arg(long, global = true, env = "SOLIDARITY_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create this node's identity (ed25519 key, mode 0600) and a commented config file.
    Init(InitArgs),
    /// Print this node's one-line member card, to send to the other admins.
    Id,
    /// Run the daemon in the foreground (logs to stderr; stop with Ctrl-C or SIGTERM).
    /// On a fresh data dir it first runs `init` with the defaults.
    Node,
    /// Manage the keys this node trusts.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Raise, update and list alerts.
    #[command(subcommand)]
    Alert(AlertCommand),
    /// Offer, withdraw and list mirror offers.
    #[command(subcommand)]
    Mirror(MirrorCommand),
    /// Show this node's state.
    Status,
    /// Print the node's counters (messages, sync, gossipsub) in the Prometheus text format,
    /// e.g. for node_exporter's textfile collector. Counts only, never addresses.
    Metrics,
    /// Show members: connected or not, last message seen, canary, key state. Never addresses.
    Peers,
    /// This node's warrant canary and duress signal.
    #[command(subcommand)]
    Canary(CanaryCommand),
    /// Revocation of this node's key, for the day the server is seized.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Start a throwaway local federation (temp dirs, loopback) for a demo.
    Devnet(DevnetArgs),
}

#[derive(Args)]
pub struct InitArgs {
    /// libp2p listen address (repeatable). Port 0 picks a free port at each start.
    #[arg(long, value_name = "MULTIADDR", default_value = config::DEFAULT_LISTEN)]
    pub listen: Vec<String>,
    /// Address other members dial, printed on the member card (repeatable): this server's
    /// public address or DNS name, e.g. /dns4/node.example.org/tcp/7447. Sets `announce`.
    #[arg(long, value_name = "MULTIADDR")]
    pub announce: Vec<String>,
    /// Status page address. Keep it on loopback unless you know why not.
    #[arg(long, value_name = "HOST:PORT", default_value = config::DEFAULT_STATUS_ADDR)]
    pub status_addr: String,
    /// Federation name; all members use the same.
    #[arg(long, default_value = config::DEFAULT_FEDERATION)]
    pub federation: String,
}

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

#[derive(Subcommand)]
pub enum AlertCommand {
    /// Sign and publish an alert. Prints its id once it is durably stored.
    Raise(Box<RaiseArgs>),
    /// Change the state of one of this node's alerts.
    Update {
        /// Alert id (or a unique prefix of at least 8 characters).
        id: String,
        /// New state: open, confirmed, resolved, retracted; for legal requests also
        /// received, contested, complied, partially-complied, refused, gag-active, disclosed.
        #[arg(long, value_parser = parse_wire::<AlertStatus>)]
        status: AlertStatus,
        /// What changed.
        #[arg(long)]
        note: Option<String>,
    },
    /// List alerts, most severe and newest first.
    List {
        /// Every stored alert, not only the newest 200 the status page shows.
        #[arg(long)]
        all: bool,
    },
    /// "We see it too": endorse another member's alert.
    Endorse {
        /// Alert id (or a unique prefix of at least 8 characters).
        id: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Dispute another member's alert.
    Dispute {
        /// Alert id (or a unique prefix of at least 8 characters).
        id: String,
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
pub struct RaiseArgs {
    /// What happened: seizure, raid, takedown, legal-request, gag-order, intrusion,
    /// key-compromise, outage.
    #[arg(long, value_parser = parse_wire::<AlertCategory>)]
    pub kind: AlertCategory,
    /// The server or domain concerned.
    #[arg(long)]
    pub subject: String,
    /// info, low, medium, high, critical.
    #[arg(long, value_parser = parse_wire::<Severity>)]
    pub severity: Severity,
    /// One line (at most 200 bytes).
    #[arg(long)]
    pub summary: String,
    /// Free text, may span lines.
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
    /// When it happened, YYYY-MM-DD.
    #[arg(long)]
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
    /// Delete the alert everywhere after this long (e.g. 30d); default: never.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub expires_in: Option<Duration>,
}

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
    /// How long the offer stands, e.g. 90d.
    #[arg(long, default_value = "90d", value_parser = humantime::parse_duration)]
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

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Create a collective's offline identity key, encrypted with a passphrase
    /// (Argon2id + XChaCha20-Poly1305). Do this on a machine that is not a server; give the
    /// printed public key to the other admins (`solidarity member add KEY --identity`).
    NewIdentity {
        /// Where to write it (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Read the passphrase from FILE instead of the first line of standard input.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
    /// With the identity key, certify a node key for a limited time. Publish the
    /// certificate with `solidarity key publish` on any member node (the node itself, when
    /// renewing): members trusting the identity then trust the node key until it expires.
    Certify {
        /// The identity key file.
        #[arg(long, value_name = "FILE")]
        identity: PathBuf,
        /// The node's card or key (`solidarity id` on the node).
        #[arg(long, value_name = "CARD")]
        node_key: String,
        /// How long the certificate lasts, e.g. 30d. Short is safer: a seized node key
        /// stops being trusted by itself when its certificate ends.
        #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
        valid_for: std::time::Duration,
        /// The federation name (as in the nodes' config).
        #[arg(long, default_value = config::DEFAULT_FEDERATION)]
        federation: String,
        /// Where to write the certificate (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Read the passphrase from FILE instead of the first line of standard input.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
    /// Publish a certificate or revocation made elsewhere, from this node.
    Publish {
        /// The certificate file.
        #[arg(long, value_name = "FILE")]
        cert: PathBuf,
    },
    /// Pre-generate a signed revocation of this node's key. Keep FILE off the server (on
    /// paper, on a friend's machine): if the server is seized, anyone can publish it with
    /// `solidarity key revoke` on any member node, and every member stops trusting the key.
    /// Works without the daemon.
    RevocationCert {
        /// Where to write it (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// One line saying why.
        #[arg(long, default_value = "server seized or key compromised")]
        reason: String,
        /// Messages from this time on are suspect (RFC 3339, e.g. 2026-11-28T06:00:00Z).
        /// Default: from the time the certificate is made, so a certificate made in
        /// advance marks everything signed since as suspect.
        #[arg(long, value_parser = humantime::parse_rfc3339_weak)]
        compromised_since: Option<std::time::SystemTime>,
        /// Sign with this collective identity key file instead of the node key: revokes
        /// the identity itself, or with `--key` one node key it certified.
        #[arg(long, value_name = "FILE")]
        identity: Option<PathBuf>,
        /// With `--identity`: the certified node key (or card) to revoke.
        #[arg(long, value_name = "CARD", requires = "identity")]
        key: Option<String>,
        /// With `--identity`: the federation name; without, it comes from the config.
        #[arg(long, default_value = config::DEFAULT_FEDERATION)]
        federation: String,
        /// With `--identity`: read the passphrase from FILE instead of standard input.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
    /// Publish a revocation certificate (of any member's key) from this node.
    Revoke {
        /// The certificate file.
        #[arg(long, value_name = "FILE")]
        cert: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum CanaryCommand {
    /// Publish the canary now. A withdrawn code stays withdrawn in the scheduled canaries
    /// until restored. Codes: warrant, gag, subpoena, trap, cease, duress, raid, seize,
    /// xcred, xopers (each, while stated, means "this has NOT happened").
    Publish {
        /// Withdraw a code: the event it denies has happened (repeatable).
        #[arg(long, value_parser = parse_wire::<CanaryCode>)]
        withdraw: Vec<CanaryCode>,
        /// State a code again (repeatable).
        #[arg(long, value_parser = parse_wire::<CanaryCode>)]
        restore: Vec<CanaryCode>,
    },
    /// Publish a canary that looks like any other to an onlooker but tells members who hold
    /// your duress commitment that you act under duress. Reads the duress passphrase from
    /// FILE, or from the first line of standard input.
    Duress {
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
    /// Print the duress commitment for a passphrase (same input as `duress`), to append to
    /// your member card as `~COMMITMENT` when you send it to the other admins. Neither the
    /// passphrase nor the commitment is stored on the node, so whoever seizes it cannot
    /// tell a duress canary from a normal one.
    DuressCommitment {
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
}

#[derive(Args)]
pub struct DevnetArgs {
    /// How many nodes.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=20))]
    pub nodes: u8,
}

/// The data dir: `--data`, `$SOLIDARITY_DATA`, the user's node, or the system node (see
/// [`crate::locations`]).
pub fn data_dir(cli: &Cli) -> PathBuf {
    crate::locations::resolve(cli.data.as_deref()).data_dir
}

/// Parses a snake_case wire name, also written with dashes.
pub fn parse_wire<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let wire = text.trim().to_lowercase().replace('-', "_");
    serde_json::from_value(serde_json::Value::String(wire))
        .map_err(|_| format!("unknown value {text:?} (see --help for the accepted values)"))
}

/// Parses `50G`, `512M`, `1T`, `1024` (bytes); binary units.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 50G"))?;
    let shift = match unit
        .trim()
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("{text:?}: unknown unit (use K, M, G or T)")),
    };
    number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// `53687091200` → `50 GiB`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024 && value.is_multiple_of(1024) && unit + 1 < UNITS.len() {
        value /= 1024;
        unit += 1;
    }
    format!("{value} {}", UNITS[unit])
}

fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Resolves a full id or a unique prefix of at least 8 hex characters.
fn resolve_id(
    text: &str,
    candidates: impl Iterator<Item = MessageId>,
    what: &str,
) -> anyhow::Result<MessageId> {
    let text = text.trim().to_lowercase();
    if let Ok(id) = text.parse::<MessageId>() {
        return Ok(id);
    }
    if text.len() < 8 {
        bail!("give the full {what} id or at least its first 8 characters");
    }
    let matches: Vec<MessageId> = candidates
        .filter(|id| id.to_hex().starts_with(&text))
        .collect();
    match matches.as_slice() {
        [id] => Ok(*id),
        [] => bail!("no {what} id starts with {text}"),
        _ => bail!("{text} matches several {what}s; give more characters"),
    }
}

/// Names for keys: the members file, plus this node itself.
struct Names {
    me: Option<AuthorKey>,
    members: MembersFile,
}

impl Names {
    fn load(data_dir: &Path) -> Self {
        Self {
            me: identity::load_key_file(data_dir)
                .ok()
                .map(|key| solidarity_proto::envelope::author_key(&key)),
            members: MembersFile::load(data_dir).unwrap_or_default(),
        }
    }

    fn of(&self, key: &AuthorKey) -> String {
        if Some(*key) == self.me {
            return "(this node)".to_owned();
        }
        self.members
            .members
            .iter()
            .find(|member| member.key == *key)
            .map_or_else(|| key.short(), |member| member.name.clone())
    }
}

/// The node key, or an error that says how to create one when there is none.
fn load_node_key(data_dir: &Path) -> anyhow::Result<ed25519_dalek::SigningKey> {
    if let Ok(false) = data_dir.join(identity::KEY_FILE).try_exists() {
        bail!(
            "no node identity in {} yet; run `{}` first",
            data_dir.display(),
            crate::locations::hint("init")
        );
    }
    identity::load_key_file(data_dir)
}

pub fn run_init(data_dir: &Path, args: InitArgs) -> anyhow::Result<()> {
    let no_announce = args.announce.is_empty();
    let created = crate::init::init(
        data_dir,
        &crate::init::InitOptions {
            listen: args.listen,
            announce: args.announce,
            status_addr: args.status_addr,
            federation: args.federation,
        },
    )?;
    if crate::locations::is_system(data_dir) {
        println!("Initialised the system node at {}", data_dir.display());
    } else {
        println!("Initialised a user node at {}", data_dir.display());
    }
    println!(
        "  node key: {} (mode 0600)",
        data_dir.join(identity::KEY_FILE).display()
    );
    println!("  config:   {}", created.config_path.display());
    if let Some(note) = created.note {
        println!("  note: {note}");
    }
    if no_announce {
        println!(
            "Next: set `announce` in {} to this server's public address or DNS name (e.g. announce = [\"/dns4/node.example.org/tcp/7447\"]), then `{}` for your member card and `{}` to start.",
            created.config_path.display(),
            crate::locations::hint("id"),
            crate::locations::hint("node"),
        );
    } else {
        println!(
            "Next: `{}` for your member card, `{}` to start.",
            crate::locations::hint("id"),
            crate::locations::hint("node"),
        );
    }
    Ok(())
}

pub fn run_id(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let card = match Client::new(data_dir).card() {
        Ok(card) => card,
        Err(solidarity_control::ControlError::DaemonNotRunning { .. }) => {
            let key = load_node_key(data_dir)?;
            let config = NodeConfig::load(data_dir)?;
            let addresses = crate::card_addresses::card_addresses(&config.announce, &config.listen);
            Card {
                key: solidarity_proto::envelope::author_key(&key),
                addresses,
                duress_commitment: None,
            }
            .render()
        }
        Err(other) => return Err(other.into()),
    };
    if Card::parse(&card).is_ok_and(|parsed| parsed.addresses.is_empty()) {
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
            file.add_in(&card, &name, collective.as_deref())?;
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
            Client::new(data_dir).retrust(member.key)?;
            println!("member {} is trusted again", member.name);
            false
        }
        MemberCommand::Vouch { card, name } => {
            let card = Card::parse(&card)?;
            let id = Client::new(data_dir).sign(&Request::MemberVouch {
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
            let id = Client::new(data_dir).sign(&Request::MemberVouch {
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
            if let Ok(members) = Client::new(data_dir).peers() {
                if json {
                    print_json(&members)?;
                } else {
                    println!("{:<20} {:<64} TRUSTED BECAUSE", "NAME", "KEY");
                    for member in &members {
                        let why = if member.vouched_by.is_empty() {
                            "added by admin".to_owned()
                        } else {
                            format!("vouched by {}", member.vouched_by.join(", "))
                        };
                        println!("{:<20} {} {why}", member.name, member.key);
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
                    println!("{:<20} {} added by admin", member.name, member.key);
                }
            }
            false
        }
    };
    if changed {
        std::fs::create_dir_all(data_dir)?;
        file.save(data_dir)?;
        match Client::new(data_dir).reload_members() {
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

pub fn run_alert(data_dir: &Path, command: AlertCommand, json: bool) -> anyhow::Result<()> {
    let client = Client::new(data_dir);
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
            let id = client.sign(&Request::AlertRaise {
                alert,
                expires_in_ms: args.expires_in.map(|lifetime| lifetime.as_millis() as u64),
            })?;
            print_id(id, json)
        }
        AlertCommand::Update { id, status, note } => {
            let alerts = client.all_alerts()?;
            let alert = resolve_id(&id, alerts.iter().map(|view| view.id), "alert")?;
            let id = client.sign(&Request::AlertUpdate {
                alert,
                status,
                note,
            })?;
            print_id(id, json)
        }
        AlertCommand::List { all } => {
            let alerts = if all {
                client.all_alerts()?
            } else {
                client.alerts()?
            };
            if json {
                return print_json(&alerts);
            }
            print_alerts(&alerts, &Names::load(data_dir));
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
    let alerts = client.all_alerts()?;
    let alert = resolve_id(id, alerts.iter().map(|view| view.id), "alert")?;
    let id = client.sign(&Request::AlertEndorse {
        alert,
        stance,
        note,
    })?;
    print_id(id, json)
}

/// "confirmed (2/2)" or "unconfirmed (1/2)" for alerts that need corroboration.
pub fn corroboration_text(view: &AlertView) -> Option<String> {
    let corroboration = &view.corroboration;
    let required = corroboration.required?;
    Some(format!(
        "{} ({}/{required})",
        if corroboration.confirmed {
            "confirmed"
        } else {
            "unconfirmed"
        },
        corroboration.collectives
    ))
}

fn print_id(id: MessageId, json: bool) -> anyhow::Result<()> {
    if json {
        print_json(&serde_json::json!({ "id": id }))
    } else {
        println!("{id}");
        Ok(())
    }
}

fn print_alerts(alerts: &[AlertView], names: &Names) {
    if alerts.is_empty() {
        println!("no alerts");
        return;
    }
    println!(
        "{:<8}  {:<8}  {:<14}  {:<18}  {:<20}  {:<14}  SUBJECT: SUMMARY",
        "ID", "SEVERITY", "KIND", "STATE", "RAISED", "BY"
    );
    for view in alerts {
        println!(
            "{:<8}  {:<8}  {:<14}  {:<18}  {:<20}  {:<14}  {}: {}",
            view.id.short(),
            words(&view.alert.severity),
            words(&view.alert.category),
            if view.suspect {
                "SUSPECT".to_owned()
            } else {
                match corroboration_text(view) {
                    Some(corroboration) => format!("{}, {corroboration}", words(&view.status)),
                    None => words(&view.status),
                }
            },
            format_time(view.created_at),
            names.of(&view.author),
            view.alert.subject,
            view.alert.summary
        );
    }
}

pub fn run_mirror(data_dir: &Path, command: MirrorCommand, json: bool) -> anyhow::Result<()> {
    let client = Client::new(data_dir);
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
            let id = client.sign(&Request::MirrorOffer {
                offer,
                valid_for_ms: args.valid_for.as_millis() as u64,
            })?;
            print_id(id, json)
        }
        MirrorCommand::Withdraw { id } => {
            let offers = client.offers()?;
            let offer = resolve_id(&id, offers.iter().map(|view| view.id), "offer")?;
            let id = client.sign(&Request::MirrorWithdraw { offer })?;
            print_id(id, json)
        }
        MirrorCommand::List { services, avoid } => {
            let avoid: Vec<String> = avoid
                .iter()
                .map(|code| code.trim().to_uppercase())
                .collect();
            let offers: Vec<OfferView> = client
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

pub fn run_key(data_dir: &Path, command: KeyCommand, json: bool) -> anyhow::Result<()> {
    match command {
        KeyCommand::RevocationCert {
            out,
            reason,
            compromised_since,
            identity: identity_file,
            key,
            federation,
            passphrase_file,
        } => {
            let (signing_key, federation, revoked) = match identity_file {
                Some(identity_file) => {
                    let passphrase = read_passphrase(passphrase_file.as_deref())?;
                    let identity_key = crate::identity_key::open(&identity_file, &passphrase)?;
                    let revoked = key
                        .as_deref()
                        .map(|card| Card::parse(card).map(|card| card.key))
                        .transpose()?;
                    (identity_key, federation, revoked)
                }
                None => {
                    let node_key = load_node_key(data_dir)?;
                    (node_key, NodeConfig::load(data_dir)?.federation, None)
                }
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis() as u64;
            let since = compromised_since
                .map(|time| -> anyhow::Result<u64> {
                    Ok(time.duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64)
                })
                .transpose()?;
            let body = solidarity_proto::Body::Revocation(solidarity_proto::payload::Revocation {
                key: revoked,
                reason,
                compromised_since: since,
            });
            body.check().context("the revocation was not made")?;
            let id = write_statement(&signing_key, &federation, body, now, &out)?;
            if json {
                return print_json(&serde_json::json!({ "id": id, "file": out }));
            }
            println!("Revocation certificate written to {}.", out.display());
            println!(
                "Move it off this server now. To revoke the key: solidarity key revoke --cert FILE"
            );
            Ok(())
        }
        KeyCommand::NewIdentity {
            out,
            passphrase_file,
        } => {
            let passphrase = read_passphrase(passphrase_file.as_deref())?;
            let public = crate::identity_key::create(&out, &passphrase)?;
            if json {
                return print_json(&serde_json::json!({ "identity": public, "file": out }));
            }
            println!("{public}");
            eprintln!(
                "Identity key written to {} (encrypted). Keep it and its passphrase off your servers.",
                out.display()
            );
            Ok(())
        }
        KeyCommand::Certify {
            identity: identity_file,
            node_key,
            valid_for,
            federation,
            out,
            passphrase_file,
        } => {
            let passphrase = read_passphrase(passphrase_file.as_deref())?;
            let identity_key = crate::identity_key::open(&identity_file, &passphrase)?;
            let card = Card::parse(&node_key)?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis() as u64;
            let body = solidarity_proto::Body::NodeCert(solidarity_proto::payload::NodeCert {
                node_key: card.key,
                valid_from: now,
                valid_until: now.saturating_add(valid_for.as_millis() as u64),
                addresses: card.addresses.iter().map(ToString::to_string).collect(),
            });
            body.check().context("the certificate was not made")?;
            write_statement(&identity_key, &federation, body, now, &out)?;
            println!(
                "Certificate for {} written to {}; publish it with `solidarity key publish --cert FILE`.",
                card.key.short(),
                out.display()
            );
            Ok(())
        }
        KeyCommand::Publish { cert } | KeyCommand::Revoke { cert } => {
            let text = std::fs::read_to_string(&cert)
                .with_context(|| format!("cannot read {}", cert.display()))?;
            let envelope = hex::decode(text.trim())
                .with_context(|| format!("{} does not hold a hex certificate", cert.display()))?;
            let id = Client::new(data_dir).sign(&Request::PublishStatement { envelope })?;
            print_id(id, json)
        }
    }
}

/// Signs a statement (seq 0) and writes its envelope as hex to a new 0600 file.
fn write_statement(
    key: &ed25519_dalek::SigningKey,
    federation: &str,
    body: solidarity_proto::Body,
    now: u64,
    out: &Path,
) -> anyhow::Result<MessageId> {
    let payload = solidarity_proto::Payload {
        fed: solidarity_proto::FederationId::from_name(federation),
        seq: 0,
        prev: None,
        created_at: now,
        expires_at: None,
        kind: body.kind().context("statement of unknown kind")?.to_owned(),
        body: body.encode(),
    };
    let signed = solidarity_proto::envelope::sign(key, &payload);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .with_context(|| format!("cannot create {}", out.display()))?;
    writeln!(file, "{}", hex::encode(&signed.bytes))?;
    file.sync_all()?;
    Ok(signed.id)
}

fn read_passphrase(file: Option<&Path>) -> anyhow::Result<String> {
    let text = match file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        None => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line
        }
    };
    let passphrase = text.lines().next().unwrap_or_default().to_owned();
    if passphrase.chars().count() < 8 {
        bail!("the duress passphrase needs at least 8 characters");
    }
    Ok(passphrase)
}

pub fn run_canary(data_dir: &Path, command: CanaryCommand, json: bool) -> anyhow::Result<()> {
    let client = Client::new(data_dir);
    let author = || -> anyhow::Result<AuthorKey> {
        let key = load_node_key(data_dir)?;
        Ok(solidarity_proto::envelope::author_key(&key))
    };
    match command {
        CanaryCommand::Publish { withdraw, restore } => {
            let id = client.sign(&Request::CanaryPublish { withdraw, restore })?;
            print_id(id, json)
        }
        CanaryCommand::Duress { passphrase_file } => {
            let passphrase = read_passphrase(passphrase_file.as_deref())?;
            let key = solidarity_proto::payload::duress_key(&author()?, &passphrase);
            let id = client.sign(&Request::CanaryDuress {
                duress_key: MessageId(key),
            })?;
            print_id(id, json)
        }
        CanaryCommand::DuressCommitment { passphrase_file } => {
            let passphrase = read_passphrase(passphrase_file.as_deref())?;
            let key = solidarity_proto::payload::duress_key(&author()?, &passphrase);
            let commitment = hex::encode(solidarity_proto::payload::duress_commitment(&key));
            if json {
                print_json(&serde_json::json!({ "duress_commitment": commitment }))
            } else {
                println!("{commitment}");
                Ok(())
            }
        }
    }
}

pub fn run_metrics(data_dir: &Path) -> anyhow::Result<()> {
    print!("{}", Client::new(data_dir).metrics()?);
    Ok(())
}

pub fn run_status(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let status = Client::new(data_dir).status()?;
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
    println!("status page  {}", status.status_url);
    println!(
        "members      {} ({} connected)",
        status.members, status.connected
    );
    println!("alerts       {}", status.alerts);
    println!("offers       {}", status.offers);
    println!("stored       {} messages", status.stored_messages);
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
    let members = Client::new(data_dir).peers()?;
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
            "{:<20}  {:<8}  {:<9}  {:<20}  {:<28}  {:<24}  {}",
            member.name,
            member.key.short(),
            if member.connected { "yes" } else { "no" },
            member
                .last_message_at
                .map(format_time)
                .unwrap_or_else(|| "never".into()),
            canary_text(member.canary.as_ref()),
            member.certified_until.map_or_else(
                || "-".to_owned(),
                |until| format!("until {}", format_time(until))
            ),
            match (member.revoked_since, member.compromised_at) {
                (Some(since), _) => format!("REVOKED (suspect since {})", format_time(since)),
                (None, Some(at)) => format!("COMPROMISED since {}", format_time(at)),
                (None, None) => "ok".to_owned(),
            }
        );
    }
    Ok(())
}

/// One line on a member's canary, for tables and the status page.
pub fn canary_text(canary: Option<&solidarity_control::CanaryView>) -> String {
    use solidarity_control::CanaryState;
    let Some(canary) = canary else {
        return "none seen".to_owned();
    };
    match canary.state {
        CanaryState::Ok => format!("ok ({})", format_time(canary.last_at)),
        CanaryState::Silent => format!("SILENT (due {})", format_time(canary.due_at)),
        CanaryState::Changed => format!(
            "CHANGED: withdrew {}",
            canary
                .withdrawn
                .iter()
                .map(words)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        CanaryState::Duress => "DURESS".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(parse_size("50G"), Ok(50 << 30));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert!(parse_size("5X").is_err());
        assert!(parse_size("99999999999T").is_err());
        assert_eq!(format_bytes(50 << 30), "50 GiB");
    }

    #[test]
    fn wire_names_accept_dashes() {
        assert_eq!(
            parse_wire::<AlertCategory>("legal-request"),
            Ok(AlertCategory::LegalRequest)
        );
        assert_eq!(
            parse_wire::<AlertStatus>("Confirmed"),
            Ok(AlertStatus::Confirmed)
        );
        assert!(parse_wire::<Severity>("apocalyptic").is_err());
    }
}
