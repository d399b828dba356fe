//! `solidarity init`: creates the data dir (0700), the node key (0600) and a commented
//! config file (in the data dir, or /etc/solidarity for a system node). Works without a
//! daemon; `solidarity node` runs it with defaults on a fresh data dir (zero
//! configuration).

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::card_addresses;
use crate::config::{self, CONFIG_FILE};
use crate::identity::{self, KEY_FILE};
use crate::locations;

/// What `init` was asked for.
pub struct InitOptions {
    pub listen: Vec<String>,
    /// Addresses for the member card (`announce` in config.toml); empty: none.
    pub announce: Vec<String>,
    pub status_addr: String,
    pub federation: String,
    pub network: crate::tor::Network,
}

impl Default for InitOptions {
    fn default() -> Self {
        Self {
            listen: vec![config::DEFAULT_LISTEN.to_owned()],
            announce: Vec::new(),
            status_addr: config::DEFAULT_STATUS_ADDR.to_owned(),
            federation: config::DEFAULT_FEDERATION.to_owned(),
            network: crate::tor::Network::Clearnet,
        }
    }
}

/// Whether the data dir already holds a node key.
pub fn is_initialised(data_dir: &Path) -> bool {
    data_dir.join(KEY_FILE).exists()
}

/// What `init` created.
pub struct Created {
    /// The config file written (or already there).
    pub config_path: PathBuf,
    /// Why the config is not where a system node keeps it, when it is not.
    pub note: Option<String>,
}

/// Creates the node identity and config; refuses to touch an existing identity.
pub fn init(data_dir: &Path, options: &InitOptions) -> anyhow::Result<Created> {
    if is_initialised(data_dir) {
        bail!(
            "{} already holds a node identity; refusing to replace it",
            data_dir.display()
        );
    }
    for address in &options.listen {
        address
            .parse::<libp2p::Multiaddr>()
            .with_context(|| format!("--listen {address:?} is not a multiaddr"))?;
    }
    for address in &options.announce {
        let parsed = address.parse::<libp2p::Multiaddr>().with_context(|| {
            format!(
                "--announce {address:?} is not a multiaddr (e.g. /dns4/node.example.org/tcp/7447)"
            )
        })?;
        if card_addresses::scope(&parsed) == card_addresses::Scope::Unspecified {
            bail!(
                "--announce {address:?}: nobody can dial 0.0.0.0 or ::; give this server's public address or DNS name"
            );
        }
    }
    config::StatusAddr::parse(&options.status_addr)
        .with_context(|| format!("--status-addr {:?}", options.status_addr))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))?;
    let text = config::render_config_file(
        &options.federation,
        &options.listen,
        &options.announce,
        &options.status_addr,
        options.network,
    );
    // Nothing is written for a config the daemon would refuse.
    let file: config::FileConfig =
        toml::from_str(&text).context("the config init would write does not parse")?;
    config::NodeConfig::validate(data_dir, file)?;
    let created = write_config(data_dir, &text)?;
    identity::create_key_file(data_dir)?;
    crate::daemon::own_chain::create(data_dir)
        .with_context(|| format!("cannot write {}", data_dir.display()))?;
    Ok(created)
}

/// Writes the config where the node reads it, unless one is there. A system node whose
/// /etc cannot be written (the daemon's first start under systemd's `ProtectSystem`)
/// keeps it in its data dir, which it also reads.
fn write_config(data_dir: &Path, text: &str) -> anyhow::Result<Created> {
    let config_path = locations::config_path(data_dir);
    if config_path.exists() {
        return Ok(Created {
            config_path,
            note: None,
        });
    }
    let in_config_dir = config_path
        .parent()
        .filter(|_| locations::is_system(data_dir))
        .map(|dir| {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)
                .and_then(|()| std::fs::write(&config_path, text))
        });
    match in_config_dir {
        None => {
            std::fs::write(&config_path, text)
                .with_context(|| format!("cannot write {}", config_path.display()))?;
            Ok(Created {
                config_path,
                note: None,
            })
        }
        Some(Ok(())) => Ok(Created {
            config_path,
            note: None,
        }),
        Some(Err(error))
            if matches!(
                error.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            ) =>
        {
            let fallback = data_dir.join(CONFIG_FILE);
            std::fs::write(&fallback, text)
                .with_context(|| format!("cannot write {}", fallback.display()))?;
            Ok(Created {
                note: Some(format!(
                    "{} cannot be written here ({error}); the config is in {} instead",
                    config_path.display(),
                    fallback.display()
                )),
                config_path: fallback,
            })
        }
        Some(Err(error)) => {
            Err(error).with_context(|| format!("cannot write {}", config_path.display()))
        }
    }
}
