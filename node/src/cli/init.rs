//! `solidarity init`: the node's identity and config, without a daemon.

use std::path::Path;

use clap::Args;

use crate::config;
use crate::identity;

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
    /// `clearnet`, or `tor-only`: reachable only as an onion service, every connection
    /// through tor (listens on 127.0.0.1:7447 unless --listen says otherwise).
    #[arg(long, value_name = "PROFILE", default_value = "clearnet", value_parser = parse_network)]
    pub network: crate::tor::Network,
}

fn parse_network(text: &str) -> Result<crate::tor::Network, String> {
    match text {
        "clearnet" => Ok(crate::tor::Network::Clearnet),
        "tor-only" => Ok(crate::tor::Network::TorOnly),
        other => Err(format!("{other:?} is neither clearnet nor tor-only")),
    }
}

/// Where an onion-only node listens: tor forwards its onion service here.
const TOR_ONLY_LISTEN: &str = "/ip4/127.0.0.1/tcp/7447";

pub fn run_init(data_dir: &Path, args: InitArgs) -> anyhow::Result<()> {
    let tor_only = args.network == crate::tor::Network::TorOnly;
    let no_announce = args.announce.is_empty() && !tor_only;
    let listen = if tor_only && args.listen == [config::DEFAULT_LISTEN] {
        vec![TOR_ONLY_LISTEN.to_owned()]
    } else {
        args.listen
    };
    let created = crate::init::init(
        data_dir,
        &crate::init::InitOptions {
            network: args.network,
            listen,
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
    if tor_only {
        let config = config::NodeConfig::load(data_dir)?;
        let onion = crate::tor::p2p_onion_address(config.tor.as_ref(), data_dir, true)?;
        if let Some(onion) = onion {
            println!(
                "  onion address: {onion} (key in {}, mode 0600)",
                data_dir.join(crate::tor::onion_key::TOR_DIR).display()
            );
        }
        println!(
            "Next: let the daemon use tor's control port (Debian's tor: the group debian-tor; deploy/solidarity-tor.conf adds it to the systemd unit, `adduser $USER debian-tor` for a user node), then `{}` for your member card and `{}` to start.",
            crate::locations::hint("id"),
            crate::locations::hint("node"),
        );
    } else if no_announce {
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
