//! The daemon's log: tracing to stderr (the journal under systemd), filtered by `log` in
//! config.toml unless `RUST_LOG` is set. The filter can be replaced while running (SIGHUP).

use std::sync::OnceLock;

use tracing_subscriber::{EnvFilter, Registry, prelude::*, reload};

/// libp2p is chatty and its messages can carry addresses: warn and above only, unless
/// `RUST_LOG` says otherwise.
const LIBP2P_FILTER: &str = "libp2p=warn,libp2p_gossipsub=warn,libp2p_swarm=warn";

/// The handle that swaps the filter; unset when `RUST_LOG` rules or no log was set up.
static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

fn filter_of(directive: &str) -> anyhow::Result<EnvFilter> {
    Ok(EnvFilter::try_new(format!("{LIBP2P_FILTER},{directive}"))?)
}

/// Installs the process's subscriber with the config's `log` directive.
pub fn init(directive: &str) -> anyhow::Result<()> {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|value| !value.is_empty());
    let filter = match &from_env {
        Some(value) => EnvFilter::try_new(value)?,
        None => filter_of(directive)?,
    };
    let (filter, handle) = reload::Layer::new(filter);
    let output = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_target(false);
    tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init()?;
    if from_env.is_none() {
        let _ = FILTER.set(handle);
    }
    Ok(())
}

/// Why the log filter was not replaced.
#[derive(Debug, thiserror::Error)]
pub enum SetFilterError {
    /// `RUST_LOG` overrides the config, or this process does not own its log (tests).
    #[error(
        "the log filter is not the config's here (RUST_LOG is set, or the log is not the daemon's)"
    )]
    NotManaged,
    /// The directive does not parse.
    #[error("`log` {directive:?} is not a valid filter: {reason}")]
    Invalid {
        /// The directive.
        directive: String,
        /// Why.
        reason: String,
    },
}

/// Replaces the filter with the config's new `log` directive.
pub fn set_filter(directive: &str) -> Result<(), SetFilterError> {
    let handle = FILTER.get().ok_or(SetFilterError::NotManaged)?;
    let filter = filter_of(directive).map_err(|error| SetFilterError::Invalid {
        directive: directive.to_owned(),
        reason: error.to_string(),
    })?;
    handle
        .reload(filter)
        .map_err(|_| SetFilterError::NotManaged)
}
