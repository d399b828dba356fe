//! The command line: argument definitions and the client side of every command.
//!
//! Commands that act on local files (`init`, `id` without a daemon, `member`) work without
//! a daemon; every other command is a typed call on the daemon's control socket.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::bail;
use clap::{Args, Parser, Subcommand};
use serde::de::DeserializeOwned;
use solidarity_control::{Client, request};
use solidarity_proto::payload::CanaryCode;
use solidarity_proto::{AuthorKey, MessageId};

use crate::config::{self, NodeConfig};

mod alert;
mod key;
mod member;
mod mirror;
mod passphrase;

use crate::identity::{self, Card};
use crate::members::MembersFile;
use crate::render::{format_time, key_state_text, member_canary_text, trust_text};
pub use alert::{AlertCommand, ListArgs, RaiseArgs, run_alert};
pub use key::{KeyCommand, run_key};
pub use member::run_member;
pub use mirror::{MirrorCommand, OfferArgs, run_mirror};
use passphrase::Purpose;

mod statement_file;

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
    Node(NodeArgs),
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
        /// The other admins hold a commitment printed by a version before the Argon2id
        /// derivation: signal to that one (then hand out a new commitment; SPEC §8.7.1).
        #[arg(long)]
        legacy_commitment: bool,
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
pub struct NodeArgs {
    /// Sign even though the store holds less of this node's chain than it had signed (a
    /// lost or restored store). Only when no member ever received the missing messages:
    /// otherwise the next message forks this key and every member marks it compromised.
    #[arg(long)]
    pub fresh_chain: bool,
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

fn print_id(id: MessageId, json: bool) -> anyhow::Result<()> {
    if json {
        print_json(&serde_json::json!({ "id": id }))
    } else {
        println!("{id}");
        Ok(())
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
            let id = client.sign(&request::CanaryPublish { withdraw, restore })?;
            print_id(id, json)
        }
        CanaryCommand::Duress {
            passphrase_file,
            legacy_commitment,
        } => {
            let passphrase = passphrase::read(Purpose::Duress, passphrase_file.as_deref())?;
            let author = author()?;
            let key = if legacy_commitment {
                solidarity_proto::payload::legacy_duress_key(&author, &passphrase)
            } else {
                solidarity_proto::payload::duress_key(&author, &passphrase)
            };
            let commitment = solidarity_proto::payload::duress_commitment(&key);
            let token =
                solidarity_proto::payload::duress_token(&commitment, &author, rand::random());
            let id = client.sign(&request::CanaryDuress {
                token: MessageId(token),
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
        match crate::admin_token::read_token(data_dir) {
            Some(token) => println!("admin page   {admin_url}login?token={token} (private)"),
            None => println!(
                "admin page   {admin_url} (private; token in {})",
                crate::admin_token::token_path(data_dir).display()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::format_bytes;
    use solidarity_proto::payload::{AlertCategory, AlertStatus, Severity};

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
}
