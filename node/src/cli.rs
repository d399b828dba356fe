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
use solidarity_proto::payload::{CanaryCode, MirrorOffer, MirrorService};
use solidarity_proto::state::{AlertView, OfferView};
use solidarity_proto::{AuthorKey, MessageId};

use crate::config::{self, NodeConfig};

mod alert;
mod passphrase;

use crate::daemon::status_page::{format_time, words};
use crate::identity::{self, Card};
use crate::members::MembersFile;
pub use alert::{AlertCommand, ListArgs, RaiseArgs, run_alert};
use passphrase::Purpose;

mod trust_text;
pub use trust_text::{distrust_text, key_state_text, member_canary_text, trust_text};

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
    /// Identity keys, node certificates and revocations, for the day a server is seized.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Start a throwaway local federation (temp dirs, loopback) for a demo. Its nodes stop
    /// with it, also when it is killed.
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

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Create a collective's offline identity key, encrypted with a passphrase
    /// (Argon2id + XChaCha20-Poly1305). Do this on a machine that is not a server; give the
    /// printed public key to the other admins (`solidarity member add KEY --identity`).
    NewIdentity {
        /// Where to write it (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Read the passphrase (at least 12 characters) from the first line of FILE. Without
        /// it: asked twice on the terminal without echo, or the first line of standard input
        /// when that is not a terminal.
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
        /// How long the certificate lasts: 30d, 12h or 90m (never is not offered). Short is
        /// safer: a seized node key stops being trusted by itself when its certificate ends.
        #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = parse_duration)]
        valid_for: std::time::Duration,
        /// The federation name. Default: this node's (from the config in the data dir if
        /// there is one, else the default federation); another name is refused unless
        /// --force.
        #[arg(long)]
        federation: Option<String>,
        /// Certify for a federation other than this node's.
        #[arg(long)]
        force: bool,
        /// Where to write the certificate (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Read the identity key's passphrase from the first line of FILE. Without it: asked
        /// on the terminal without echo, or the first line of standard input.
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
        /// With `--identity`: the federation name. Default: this node's (from the config
        /// if there is one, else the default federation); without `--identity`, always this
        /// node's.
        #[arg(long)]
        federation: Option<String>,
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
    /// your duress commitment that you act under duress. The duress passphrase (at least 8
    /// characters) is asked on the terminal without echo, or read from the first line of
    /// standard input when that is not a terminal.
    Duress {
        /// Read the duress passphrase from the first line of FILE instead.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
    /// Print the duress commitment for a passphrase (same input as `duress`), to append to
    /// your member card as `~COMMITMENT` when you send it to the other admins. Neither the
    /// passphrase nor the commitment is stored on the node, so whoever seizes it cannot
    /// tell a duress canary from a normal one. At a terminal the passphrase is asked twice.
    DuressCommitment {
        /// Read the duress passphrase from the first line of FILE instead.
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

/// Parses the command line. `devnet` makes its own temp data dirs, so its help does not
/// list the global `--data`.
pub fn parse(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    // A subcommand that defines an argument of a global's id does not get the global.
    let command = Cli::command().mut_subcommand("devnet", |devnet| {
        devnet.arg(
            clap::Arg::new("data")
                .long("data")
                .value_name("DIR")
                .value_parser(clap::value_parser!(PathBuf))
                .hide(true),
        )
    });
    Cli::from_arg_matches(&command.try_get_matches_from(args)?)
}

/// The data dir: `--data`, `$SOLIDARITY_DATA`, the user's node, or the system node (see
/// [`crate::locations`]).
pub fn data_dir(cli: &Cli) -> PathBuf {
    crate::locations::resolve(cli.data.as_deref()).data_dir
}

/// Parses a snake_case wire name, also written with dashes.
pub fn parse_wire<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    // Tables print kinds as words ("gag order"), so spaces are accepted like dashes.
    let wire = text.trim().to_lowercase().replace([' ', '-'], "_");
    serde_json::from_value(serde_json::Value::String(wire)).map_err(|error| {
        let error = error.to_string();
        match error.split_once("expected one of ") {
            Some((_, accepted)) => format!(
                "unknown value {text:?}; accepted: {}",
                accepted.replace('`', "").replace('_', "-")
            ),
            None => format!("unknown value {text:?} (see --help for the accepted values)"),
        }
    })
}

/// Parses a positive duration: `30d`, `12h`, `90m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text.trim()) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        _ => Err(format!(
            "{text:?} is not a duration; give one such as 30d, 12h or 90m"
        )),
    }
}

/// How long something lasts: a duration, or for ever (`None`, typed `never`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetime(pub Option<Duration>);

/// Parses a lifetime: a positive duration (`30d`, `12h`, `90m`) or `never`.
pub fn parse_lifetime(text: &str) -> Result<Lifetime, String> {
    if text.trim().eq_ignore_ascii_case("never") {
        return Ok(Lifetime(None));
    }
    parse_duration(text)
        .map(|duration| Lifetime(Some(duration)))
        .map_err(|_| format!("{text:?} is not a lifetime; give 30d, 12h, 90m or never"))
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
                        let mut why = trust_text(&member.trust);
                        if !member.trusted {
                            why = format!("NOT TRUSTED: {} ({why})", key_state_text(member));
                        }
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

/// Corroboration by other collectives, apart from the author's own status: "1 of 2
/// collectives" or "confirmed by 2 of 2 collectives" (with disputes, if any), for alerts
/// that need it.
pub fn corroboration_text(view: &AlertView) -> Option<String> {
    let corroboration = &view.corroboration;
    let required = corroboration.required?;
    let collectives = if required == 1 {
        "collective"
    } else {
        "collectives"
    };
    let mut text = if corroboration.confirmed {
        format!(
            "confirmed by {} of {required} {collectives}",
            corroboration.collectives
        )
    } else {
        format!("{} of {required} {collectives}", corroboration.collectives)
    };
    if !corroboration.disputed_by.is_empty() {
        text.push_str(&format!(
            ", disputed by {}",
            corroboration.disputed_by.len()
        ));
    }
    Some(text)
}

/// The author's own status of an alert: "open", "confirmed by author", "resolved by
/// author" …; "SUSPECT" when its key was revoked or forked before it was signed.
pub fn author_state_text(view: &AlertView) -> String {
    if view.suspect {
        return "SUSPECT".to_owned();
    }
    match view.status {
        solidarity_proto::payload::AlertStatus::Open => "open".to_owned(),
        other => format!("{} by author", words(&other)),
    }
}

fn print_id(id: MessageId, json: bool) -> anyhow::Result<()> {
    if json {
        print_json(&serde_json::json!({ "id": id }))
    } else {
        println!("{id}");
        Ok(())
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
            let offer = resolve_id(&id, offers.iter().map(|view| view.id), "offer").context(
                "no live offer matches; if it was already withdrawn or has expired, the full 64-character id shows its state (`solidarity mirror list` lists live offers)",
            )?;
            let id = client.sign(&Request::MirrorWithdraw { offer })?;
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
                    let passphrase =
                        passphrase::read(Purpose::OpenIdentity, passphrase_file.as_deref())?;
                    let identity_key = crate::identity_key::open(&identity_file, &passphrase)?;
                    let revoked = key
                        .as_deref()
                        .map(|card| Card::parse(card).map(|card| card.key))
                        .transpose()?;
                    (
                        identity_key,
                        certify_federation(data_dir, federation, true)?,
                        revoked,
                    )
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
            if out.exists() {
                bail!("{} already exists; nothing was written", out.display());
            }
            let passphrase = passphrase::read(Purpose::NewIdentity, passphrase_file.as_deref())?;
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
            force,
            out,
            passphrase_file,
        } => {
            let federation = certify_federation(data_dir, federation, force)?;
            let card = Card::parse(&node_key)?;
            let passphrase = passphrase::read(Purpose::OpenIdentity, passphrase_file.as_deref())?;
            let identity_key = crate::identity_key::open(&identity_file, &passphrase)?;
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
        KeyCommand::Publish { cert } => publish_statement_file(data_dir, &cert, false, json),
        KeyCommand::Revoke { cert } => publish_statement_file(data_dir, &cert, true, json),
    }
}

/// `key publish` and `key revoke`: decodes the file here, refuses what it is not (a
/// revocation for `key revoke`; a revocation or certificate for `key publish`) before
/// anything reaches the daemon, and says what was published.
fn publish_statement_file(
    data_dir: &Path,
    cert: &Path,
    revocation_only: bool,
    json: bool,
) -> anyhow::Result<()> {
    let statement = trust_text::read_statement_file(cert)?;
    if revocation_only {
        statement.revocation(cert)?;
    }
    let names = Names::load(data_dir);
    // The daemon knows also the keys trusted by certificate or vouching.
    let listed = Client::new(data_dir).peers().unwrap_or_default();
    let what = statement
        .describe(
            |key| {
                listed
                    .iter()
                    .find(|member| member.key == *key)
                    .map_or_else(|| names.of(key), |member| member.name.clone())
            },
            |key| {
                listed.iter().any(|member| {
                    member.key == *key && member.trust == solidarity_control::TrustBasis::Identity
                })
            },
        )
        .with_context(|| format!("{} was not published", cert.display()))?;
    let id = Client::new(data_dir).sign(&Request::PublishStatement {
        envelope: statement.envelope,
    })?;
    if json {
        return print_json(&serde_json::json!({ "id": id, "published": what }));
    }
    println!("published {what}");
    println!("{id}");
    Ok(())
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

/// The federation a certificate is made for: `--federation`, which must be this node's
/// unless `force`, or this node's.
fn certify_federation(
    data_dir: &Path,
    given: Option<String>,
    force: bool,
) -> anyhow::Result<String> {
    let (own, from) = if crate::locations::config_path(data_dir).exists() {
        let config = NodeConfig::load(data_dir)?;
        (
            config.federation,
            format!(
                "the config {}",
                crate::locations::config_path(data_dir).display()
            ),
        )
    } else {
        (
            config::DEFAULT_FEDERATION.to_owned(),
            format!("the default; no config in {}", data_dir.display()),
        )
    };
    match given {
        Some(name) if name != own && !force => bail!(
            "this node's federation is {own:?} ({from}), not {name:?}; its members would refuse the certificate. Nothing was written. Give --force to certify for {name:?} anyway"
        ),
        Some(name) => Ok(name),
        None => Ok(own),
    }
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
            let passphrase = passphrase::read(Purpose::Duress, passphrase_file.as_deref())?;
            let key = solidarity_proto::payload::duress_key(&author()?, &passphrase);
            let id = client.sign(&Request::CanaryDuress {
                duress_key: MessageId(key),
            })?;
            print_id(id, json)
        }
        CanaryCommand::DuressCommitment { passphrase_file } => {
            let passphrase =
                passphrase::read(Purpose::DuressCommitment, passphrase_file.as_deref())?;
            let key = solidarity_proto::payload::duress_key(&author()?, &passphrase);
            let commitment = hex::encode(solidarity_proto::payload::duress_commitment(&key));
            if json {
                print_json(&serde_json::json!({ "duress_commitment": commitment }))
            } else {
                println!("{commitment}");
                eprintln!(
                    "Append it to the member card you send the other admins: CARD~{commitment} (card from `{}`). Nothing of it is kept on this server.",
                    crate::locations::hint("id")
                );
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
    println!("status page  {} (public)", status.status_url);
    if let Some(admin_url) = &status.admin_url {
        match crate::daemon::status_page::auth::read_token(data_dir) {
            Some(token) => println!("admin page   {admin_url}login?token={token} (private)"),
            None => println!(
                "admin page   {admin_url} (private; token in {})",
                crate::daemon::status_page::auth::token_path(data_dir).display()
            ),
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
    use solidarity_proto::payload::{Alert, AlertCategory, AlertStatus, Severity};

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
    fn lifetimes_take_never_and_say_the_format() {
        assert_eq!(parse_lifetime("never"), Ok(Lifetime(None)));
        assert_eq!(
            parse_lifetime("12h"),
            Ok(Lifetime(Some(Duration::from_secs(12 * 3600))))
        );
        let error = parse_lifetime("forever").expect_err("not a lifetime");
        assert!(error.contains("30d, 12h, 90m or never"), "{error}");
        assert!(parse_duration("0s").is_err());
        assert!(
            parse_duration("never")
                .expect_err("no")
                .contains("30d, 12h or 90m")
        );
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

    fn seizure_view(status: AlertStatus, collectives: usize, confirmed: bool) -> AlertView {
        let alert = Alert {
            category: AlertCategory::Seizure,
            legal_type: None,
            severity: Severity::Critical,
            subject: "a.example".into(),
            summary: "rack taken".into(),
            details: None,
            jurisdictions: vec![],
            authority: None,
            legal_basis: None,
            event_date: None,
            seized: None,
            services: vec![],
            domains: vec![],
            upstream: None,
            references: vec![],
        };
        let mut view = solidarity_proto::state::derive_alert(
            solidarity_proto::state::Stored {
                id: MessageId([1; 32]),
                author: AuthorKey([2; 32]),
                seq: 1,
                created_at: 0,
                expires_at: None,
                body: alert,
            },
            Vec::new(),
        );
        view.status = status;
        view.corroboration.collectives = collectives;
        view.corroboration.required = Some(2);
        view.corroboration.confirmed = confirmed;
        view
    }

    #[test]
    fn the_authors_status_and_corroboration_are_worded_apart() {
        let view = seizure_view(AlertStatus::Confirmed, 1, false);
        assert_eq!(author_state_text(&view), "confirmed by author");
        assert_eq!(
            corroboration_text(&view).as_deref(),
            Some("1 of 2 collectives")
        );
        let view = seizure_view(AlertStatus::Open, 2, true);
        assert_eq!(author_state_text(&view), "open");
        assert_eq!(
            corroboration_text(&view).as_deref(),
            Some("confirmed by 2 of 2 collectives")
        );
        let mut view = seizure_view(AlertStatus::Resolved, 0, false);
        view.corroboration.required = None;
        assert_eq!(author_state_text(&view), "resolved by author");
        assert_eq!(corroboration_text(&view), None);
        view.suspect = true;
        assert_eq!(author_state_text(&view), "SUSPECT");
    }

    #[test]
    fn trust_paths_and_their_ends_are_worded_truly() {
        use solidarity_control::{Distrust, RevocationSigner, TrustBasis};
        let at = 1_795_845_600_000;
        assert_eq!(
            trust_text(&TrustBasis::Vouched {
                by: vec!["a".into(), "b".into()],
                threshold: 2
            }),
            "vouched by a, b (2 of 2)"
        );
        assert_eq!(
            trust_text(&TrustBasis::Certified {
                identity: "riseup".into(),
                until: at
            }),
            "certified by identity riseup until 2026-11-28T06:00:00Z"
        );
        assert_eq!(
            distrust_text(&Distrust::Revoked {
                since: at,
                by: RevocationSigner::Itself
            }),
            "REVOKED since 2026-11-28T06:00:00Z by the key itself"
        );
        assert_eq!(
            distrust_text(&Distrust::IdentityRevoked {
                identity: "riseup".into(),
                since: at
            }),
            "identity riseup REVOKED since 2026-11-28T06:00:00Z; its certificates no longer count"
        );
        assert_eq!(
            distrust_text(&Distrust::Compromised {
                detected_at: at,
                from_seq: 4
            }),
            "COMPROMISED: fork detected 2026-11-28T06:00:00Z (suspect from seq 4)"
        );
    }
}
