//! `solidarity`: the daemon (`solidarity node`) and the admin CLI in one binary; this
//! library is that binary, kept as a library so in-process multi-node tests can run daemons.
//!
//! Layout: [`cli`] parses arguments and runs client commands; [`daemon`] runs the node;
//! [`render`] words what both show (the CLI's tables and the status page);
//! [`config`], [`identity`], [`members`] and [`init`] handle the data dir's files;
//! `devnet` starts a local throwaway federation. This crate is the only place that picks
//! a runtime, spawns tasks, or reads the environment and config files.

#![allow(
    unreachable_pub,
    reason = "a binary crate: `pub` marks the interface of each module"
)]

/// The version and the git commit it was built from: `0.1.0 (1a2b3c4d5e6f)`.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("SOLIDARITY_COMMIT"),
    ")"
);

pub mod admin_token;
pub mod card_addresses;
pub mod cli;
pub mod config;
pub mod daemon;
mod devnet;
pub mod identity;
pub mod identity_key;
pub mod init;
pub mod locations;
mod logging;
pub mod members;
pub mod notify;
pub mod private_file;
pub mod render;
pub mod tor;

use std::process::ExitCode;

use cli::{Cli, Command};

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    main_from(std::env::args_os())
}

/// Runs the command line given as `args` (program name first), as [`main`] does; the
/// benchmark harness runs daemons in child processes this way.
pub fn main_from(args: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    let cli = match cli::parse(args) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let json = cli.json;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if json {
                print_refusal_json(&error);
            }
            let not_running = error.chain().find_map(|cause| match cause.downcast_ref() {
                Some(solidarity_control::ControlError::DaemonNotRunning { data_dir }) => {
                    Some(data_dir.clone())
                }
                _ => None,
            });
            match not_running {
                Some(data_dir) if locations::is_system(&data_dir) => eprintln!(
                    "error: {error:#} (start it with `systemctl start solidarity`, or `{}` in the foreground)",
                    locations::hint("node")
                ),
                Some(_) => eprintln!(
                    "error: {error:#} (start it with `{}`)",
                    locations::hint("node")
                ),
                None => eprintln!("error: {error:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

/// With `--json`, a refusal by the daemon also goes to stdout as
/// `{"error":{"code":"…","message":"…"}}`, so scripts match on its stable code; stderr
/// carries the same line as without `--json`.
fn print_refusal_json(error: &anyhow::Error) {
    let refusal = error.chain().find_map(|cause| match cause.downcast_ref() {
        Some(solidarity_control::ControlError::Refused(refusal)) => Some(refusal),
        _ => None,
    });
    if let Some(refusal) = refusal {
        println!("{}", serde_json::json!({ "error": refusal }));
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if !matches!(cli.command, Command::Node(_)) {
        // `solidarity alert list | head` ends like any Unix tool once `head` has read
        // enough; the daemon keeps ignoring SIGPIPE (a closed socket is an error it handles).
        sigpipe::reset();
    }
    let data_dir = cli::data_dir(&cli);
    let json = cli.json;
    match cli.command {
        Command::Init(args) => cli::run_init(&data_dir, args),
        Command::Id => cli::run_id(&data_dir, json),
        Command::Node(args) => {
            devnet::follow_parent()?;
            run_node(&data_dir, args.fresh_chain)
        }
        Command::Member(command) => cli::run_member(&data_dir, command, json),
        Command::Alert(command) => cli::run_alert(&data_dir, command, json),
        Command::Mirror(command) => cli::run_mirror(&data_dir, command, json),
        Command::Status => cli::run_status(&data_dir, json),
        Command::Metrics => cli::run_metrics(&data_dir),
        Command::Peers => cli::run_peers(&data_dir, json),
        Command::Canary(command) => cli::run_canary(&data_dir, command, json),
        Command::Key(command) => cli::run_key(&data_dir, command, json),
        Command::Notify(command) => cli::run_notify(&data_dir, command, json),
        Command::Export(args) => cli::run_export(&data_dir, args, json),
        Command::Import(args) => cli::run_import(&data_dir, args, json),
        Command::Devnet(args) => devnet::run(args.nodes, json),
        Command::Completions { shell } => cli::run_completions(shell),
        Command::Manpages { dir } => cli::run_manpages(&dir),
    }
}

fn run_node(data_dir: &std::path::Path, fresh_chain: bool) -> anyhow::Result<()> {
    if !init::is_initialised(data_dir) {
        let created = init::init(data_dir, &init::InitOptions::default())?;
        eprintln!(
            "created a new node identity in {} and its config {}",
            data_dir.display(),
            created.config_path.display()
        );
        if let Some(note) = created.note {
            eprintln!("note: {note}");
        }
    }
    let mut config = config::NodeConfig::load(data_dir)?;
    config.fresh_chain = fresh_chain;
    logging::init(&config.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("solidarity")
        .build()?;
    runtime.block_on(daemon::run(config))
}
