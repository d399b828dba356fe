//! The command line: argument definitions, parsed here and dispatched by the crate's
//! `run`; each command group's client side lives in its own module.
//!
//! Commands that act on local files (`init`, `id` without a daemon, `member`) work without
//! a daemon; every other command is a typed call on the daemon's control socket.
//!
//! Modules: `alert`, `mirror`, `member`, `key` and `canary` (one per command
//! group), `status` (`status`, `peers`, `id`, `metrics`), `notify`, `init`, `export` and
//! `import` (with their file format, `export_file`); `values` parses argument
//! values, `common` holds what several groups share; text both the CLI and the status page
//! show is in [`crate::render`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod alert;
mod canary;
mod common;
mod export;
mod export_file;
mod import;
mod init;
mod key;
mod member;
mod mirror;
mod notify;
mod passphrase;
mod statement_file;
mod status;
mod values;

pub use alert::{AlertCommand, ListArgs, RaiseArgs, run_alert};
pub use canary::{CanaryCommand, run_canary};
use common::{Names, load_node_key, print_id, print_json, resolve_alert, resolve_id};
pub use export::{ExportArgs, run_export};
pub use import::{ImportArgs, run_import};
pub use init::{InitArgs, run_init};
pub use key::{KeyCommand, run_key};
pub use member::{MemberCommand, run_member};
pub use mirror::{MirrorCommand, OfferArgs, run_mirror};
pub use notify::{NotifyCommand, run_notify};
pub use status::{run_id, run_metrics, run_peers, run_status};
pub use values::{Lifetime, parse_duration, parse_lifetime, parse_size, parse_wire};

#[derive(Parser)]
#[command(
    name = "solidarity",
    version = crate::VERSION,
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
    /// Print machine-readable JSON instead of tables. A request the daemon refuses also
    /// prints {"error":{"code":CODE,"message":LINE}} (CODE is stable, e.g. alert_retracted).
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
    /// Notifications: test the channels configured in config.toml, show their queues,
    /// list the recent notices.
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// Identity keys, node certificates and revocations, for the day a server is seized.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Write every stored message, verbatim, as JSON lines (with the statements, the kept
    /// canaries and the fork evidence): `solidarity export -o backup.jsonl`.
    Export(ExportArgs),
    /// Check and store the messages of an export, like messages received from a member;
    /// idempotent. Each line that is not imported is listed with why.
    Import(ImportArgs),
    /// Start a throwaway local federation (temp dirs, loopback) for a demo. Its nodes stop
    /// with it, also when it is killed.
    Devnet(DevnetArgs),
    /// Print a shell completion script: `solidarity completions bash >
    /// /etc/bash_completion.d/solidarity` (also zsh, fish).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the man pages (solidarity.1 and one per subcommand) into a directory: for
    /// packagers.
    #[command(hide = true)]
    Manpages {
        /// Where to write them.
        dir: PathBuf,
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
    use clap::FromArgMatches;
    Cli::from_arg_matches(&command().try_get_matches_from(args)?)
}

/// The whole command line as clap knows it (also for completions and man pages).
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    // A subcommand that defines an argument of a global's id does not get the global.
    Cli::command().mut_subcommand("devnet", |devnet| {
        devnet.arg(
            clap::Arg::new("data")
                .long("data")
                .value_name("DIR")
                .value_parser(clap::value_parser!(PathBuf))
                .hide(true),
        )
    })
}

/// `completions SHELL`: the script on stdout.
pub fn run_completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    clap_complete::generate(shell, &mut command(), "solidarity", &mut std::io::stdout());
    Ok(())
}

/// `manpages DIR`: `solidarity.1`, and `solidarity-alert-raise.1` and so on for every
/// subcommand, hidden ones left out.
pub fn run_manpages(dir: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(command(), dir)
        .with_context(|| format!("cannot write the man pages into {}", dir.display()))
}

/// The data dir: `--data`, `$SOLIDARITY_DATA`, the user's node, or the system node (see
/// [`crate::locations`]).
pub fn data_dir(cli: &Cli) -> PathBuf {
    crate::locations::resolve(cli.data.as_deref()).data_dir
}
