//! Tor: dialling members through tor's SOCKS port, and the node's onion services, created
//! over tor's control port.
//!
//! Two profiles (config.toml `network`):
//! - `clearnet` (default): TCP as before; with a `[tor]` table, onion addresses are dialled
//!   through tor and, with `onion_service = true`, the node is also an onion service.
//! - `tor-only`: every dial goes through tor, the p2p listener is on loopback only, the
//!   card and identify carry only the onion address, and without tor nothing connects
//!   (fail closed; never a clearnet fallback).
//!
//! - `control.rs`: the control-protocol client.
//! - `onion_key.rs`: the services' keys in `DATA/tor/` and their addresses.
//! - `service.rs`: the task that keeps the onion services published while tor runs.

pub mod control;
pub mod onion_key;
pub mod service;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;
use zeroize::Zeroizing;

use control::ControlAddr;

/// Debian's tor: SOCKS socket (also on 127.0.0.1:9050; a Unix socket in tor's directory
/// cannot be taken over by another local user while tor is down).
pub const DEFAULT_SOCKS: &str = "unix:/run/tor/socks";
/// Debian's tor: control socket (group `debian-tor`, cookie authentication).
pub const DEFAULT_CONTROL: &str = "unix:/run/tor/control";
/// The port members dial on the onion address.
pub const DEFAULT_ONION_PORT: u16 = 7447;

/// config.toml `network`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Network {
    /// TCP; tor only where `[tor]` asks for it.
    #[default]
    Clearnet,
    /// Everything through tor, reachable only as an onion service.
    TorOnly,
}

/// config.toml `[tor]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileTor {
    /// Tor's SOCKS5 port: `HOST:PORT` or `unix:/path`. Default `unix:/run/tor/socks`.
    pub socks: String,
    /// Tor's control port: `HOST:PORT` or `unix:/path`. Default `unix:/run/tor/control`.
    pub control: String,
    /// A file holding the control port's password, when tor uses `HashedControlPassword`
    /// instead of its cookie. Default: none (cookie).
    pub control_password_file: Option<PathBuf>,
    /// Tor's control cookie (its `CookieAuthFile`). Default: the file tor names, trusted
    /// only on a Unix control socket; required with a TCP control port, so that a program
    /// squatting the port cannot name a cookie of its own.
    pub control_cookie_file: Option<PathBuf>,
    /// Whether the node creates its p2p onion service. Default: yes with `tor-only`, no
    /// otherwise.
    pub onion_service: Option<bool>,
    /// The port members dial on the onion address. Default 7447.
    pub onion_port: u16,
    /// Whether the status page is published as an onion service too (port 80).
    pub status_onion: bool,
}

impl Default for FileTor {
    fn default() -> Self {
        Self {
            socks: DEFAULT_SOCKS.to_owned(),
            control: DEFAULT_CONTROL.to_owned(),
            control_password_file: None,
            control_cookie_file: None,
            onion_service: None,
            onion_port: DEFAULT_ONION_PORT,
            status_onion: false,
        }
    }
}

/// The control port's password: never printed, wiped when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub Zeroizing<String>);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(…)")
    }
}

/// The validated tor settings; none in a clearnet node without `[tor]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorSettings {
    /// Every dial through tor, nothing on clearnet.
    pub only: bool,
    pub socks: solidarity_net::TorEndpoint,
    pub control: ControlAddr,
    /// The control port's password, read from `control_password_file`.
    pub control_password: Option<Password>,
    /// The cookie file to use; none: the one tor names (Unix control socket only).
    pub control_cookie: Option<PathBuf>,
    pub onion_service: bool,
    pub onion_port: u16,
    pub status_onion: bool,
}

impl TorSettings {
    /// `network` and `[tor]` of the file; `config_dir` resolves relative paths.
    pub fn validate(
        network: Network,
        file: Option<FileTor>,
        config_dir: &Path,
    ) -> anyhow::Result<Option<Self>> {
        let only = network == Network::TorOnly;
        let Some(file) = file.or_else(|| only.then(FileTor::default)) else {
            return Ok(None);
        };
        let socks = local_endpoint("tor.socks", &file.socks)?;
        let control = local_endpoint("tor.control", &file.control)?;
        let tcp_control = matches!(control, ControlAddr::Tcp(_));
        if tcp_control && file.control_password_file.is_some() {
            bail!(
                "`tor.control_password_file` with a TCP `tor.control`: the password would go to whatever program answers on that port (tor's control protocol cannot prove it is tor); use tor's Unix control socket, or cookie authentication with `control_cookie_file`"
            );
        }
        let control_cookie = file
            .control_cookie_file
            .as_ref()
            .map(|path| crate::notify::config::resolve(config_dir, path));
        if tcp_control && control_cookie.is_none() && file.control_password_file.is_none() {
            bail!(
                "`tor.control` is a TCP port: set `control_cookie_file` under [tor] to tor's CookieAuthFile (e.g. \"/run/tor/control.authcookie\"), so that a program squatting the port cannot name a cookie of its own"
            );
        }
        let control_password = file
            .control_password_file
            .as_ref()
            .map(|path| {
                let bytes =
                    crate::notify::config::trim_line_end(crate::notify::config::read_protected(
                        "tor.control_password_file",
                        &crate::notify::config::resolve(config_dir, path),
                    )?);
                let text = String::from_utf8(bytes)
                    .context("`tor.control_password_file` is not UTF-8")?;
                if text.chars().any(char::is_control) {
                    bail!("`tor.control_password_file` holds a control character (more than one line?)");
                }
                Ok(Password(Zeroizing::new(text)))
            })
            .transpose()?;
        if file.onion_port == 0 {
            bail!("`tor.onion_port` must not be 0");
        }
        let onion_service = file.onion_service.unwrap_or(only);
        Ok(Some(Self {
            only,
            socks,
            control,
            control_password,
            control_cookie,
            onion_service,
            onion_port: file.onion_port,
            status_onion: file.status_onion,
        }))
    }

    /// Whether the node talks to tor's control port at all.
    pub fn uses_control_port(&self) -> bool {
        self.onion_service || self.status_onion
    }

    /// How the network layer dials.
    pub fn dialing(&self) -> solidarity_net::TorConfig {
        solidarity_net::TorConfig {
            socks: self.socks.clone(),
            dialing: if self.only {
                solidarity_net::TorDialing::Everything
            } else {
                solidarity_net::TorDialing::OnionOnly
            },
        }
    }
}

/// `HOST:PORT` on loopback or `unix:/absolute/path`: where tor listens on this machine.
fn local_endpoint(key: &str, text: &str) -> anyhow::Result<solidarity_net::TorEndpoint> {
    if let Some(path) = text.strip_prefix("unix:") {
        if !Path::new(path).is_absolute() {
            bail!("`{key}`: a Unix socket needs an absolute path");
        }
        return Ok(solidarity_net::TorEndpoint::Unix(PathBuf::from(path)));
    }
    let address: SocketAddr = text
        .parse()
        .with_context(|| format!("`{key}`: {text:?} is neither HOST:PORT nor unix:/path"))?;
    if !address.ip().is_loopback() {
        bail!(
            "`{key}`: {address} is not on this machine (loopback only): the node talks to tor only here, so that no one on the way sees which members it dials"
        );
    }
    Ok(solidarity_net::TorEndpoint::Tcp(address))
}

/// Whether an address is an onion address and nothing else (`/onion3/ID:PORT`, with at
/// most a `/p2p/…` after it).
pub fn is_onion_only(address: &libp2p::Multiaddr) -> bool {
    use libp2p::multiaddr::Protocol;
    let protocols: Vec<Protocol> = address.iter().collect();
    matches!(
        protocols.as_slice(),
        [Protocol::Onion3(_)] | [Protocol::Onion3(_), Protocol::P2p(_)]
    )
}

/// The node's p2p onion address, when it has an onion service and its key exists
/// (`create`: make the key when there is none).
pub fn p2p_onion_address(
    settings: Option<&TorSettings>,
    data_dir: &Path,
    create: bool,
) -> anyhow::Result<Option<libp2p::Multiaddr>> {
    let Some(settings) = settings.filter(|settings| settings.onion_service) else {
        return Ok(None);
    };
    let key = if create {
        Some(onion_key::OnionKey::load_or_create(
            data_dir,
            onion_key::Service::P2p,
        )?)
    } else {
        onion_key::OnionKey::load(data_dir, onion_key::Service::P2p)?
    };
    key.map(|key| key.multiaddr(settings.onion_port))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(network: Network, text: Option<&str>) -> anyhow::Result<Option<TorSettings>> {
        let file = text.map(|text| toml::from_str::<FileTor>(text).expect("parses"));
        TorSettings::validate(network, file, Path::new("/etc/solidarity"))
    }

    #[test]
    fn tor_only_needs_no_table_and_defaults_to_debians_tor() {
        let settings = validate(Network::TorOnly, None)
            .expect("valid")
            .expect("tor on");
        assert!(settings.only && settings.onion_service);
        assert_eq!(
            settings.socks,
            solidarity_net::TorEndpoint::Unix(PathBuf::from("/run/tor/socks"))
        );
        assert_eq!(
            settings.control,
            ControlAddr::Unix(PathBuf::from("/run/tor/control"))
        );
        assert_eq!(validate(Network::Clearnet, None).expect("valid"), None);
        let mixed = validate(Network::Clearnet, Some(""))
            .expect("valid")
            .expect("tor on");
        assert!(!mixed.only && !mixed.onion_service, "dial onions only");
        assert_eq!(
            mixed.dialing().dialing,
            solidarity_net::TorDialing::OnionOnly
        );
    }

    #[test]
    fn tor_is_reached_on_this_machine_only() {
        for (text, wanted) in [
            ("socks = \"192.0.2.1:9050\"", "not on this machine"),
            ("control = \"192.0.2.1:9051\"", "loopback only"),
            ("control = \"unix:run/tor/control\"", "absolute path"),
            ("onion_port = 0", "must not be 0"),
        ] {
            let error = validate(Network::TorOnly, Some(text)).expect_err(text);
            assert!(error.to_string().contains(wanted), "{error}");
        }
        assert!(toml::from_str::<FileTor>("sock = \"127.0.0.1:9050\"").is_err());
        // A TCP control port is anyone's to squat: the cookie file is named, and a
        // password (which would go to whoever answers) is refused.
        let error = validate(Network::TorOnly, Some("control = \"127.0.0.1:9051\""))
            .expect_err("no cookie file");
        assert!(error.to_string().contains("control_cookie_file"), "{error}");
        let named = validate(
            Network::TorOnly,
            Some("control = \"127.0.0.1:9051\"\ncontrol_cookie_file = \"/run/tor/control.authcookie\""),
        )
        .expect("valid")
        .expect("tor on");
        assert_eq!(
            named.control_cookie.as_deref(),
            Some(Path::new("/run/tor/control.authcookie"))
        );
        let error = validate(
            Network::TorOnly,
            Some("control = \"127.0.0.1:9051\"\ncontrol_password_file = \"x\""),
        )
        .expect_err("password over TCP");
        assert!(
            error.to_string().contains("whatever program answers"),
            "{error}"
        );
    }
}
