//! `solidarity init`: creates the data dir (0700), the node key (0600) and a commented
//! config file. Works without a daemon; `solidarity node` runs it with defaults on a
//! fresh data dir (zero configuration).

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, bail};

use crate::config::{self, CONFIG_FILE};
use crate::identity::{self, KEY_FILE};

/// What `init` was asked for.
pub struct InitOptions {
    pub listen: Vec<String>,
    pub status_addr: String,
    pub federation: String,
}

impl Default for InitOptions {
    fn default() -> Self {
        Self {
            listen: vec![config::DEFAULT_LISTEN.to_owned()],
            status_addr: config::DEFAULT_STATUS_ADDR.to_owned(),
            federation: config::DEFAULT_FEDERATION.to_owned(),
        }
    }
}

/// Whether the data dir already holds a node key.
pub fn is_initialised(data_dir: &Path) -> bool {
    data_dir.join(KEY_FILE).exists()
}

/// Creates the node identity and config; refuses to touch an existing identity.
pub fn init(data_dir: &Path, options: &InitOptions) -> anyhow::Result<()> {
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
    options
        .status_addr
        .parse::<std::net::SocketAddr>()
        .with_context(|| format!("--status-addr {:?} is not HOST:PORT", options.status_addr))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))?;
    let config_path = data_dir.join(CONFIG_FILE);
    if !config_path.exists() {
        std::fs::write(
            &config_path,
            config::render_config_file(&options.federation, &options.listen, &options.status_addr),
        )
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    }
    identity::create_key_file(data_dir)?;
    Ok(())
}
