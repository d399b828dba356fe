//! What the daemon's tor task publishes, and where tor forwards each onion service: the
//! p2p listener and the status page, always on this machine.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use solidarity_control::TorView;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::StatusListener;
use crate::config::StatusAddr;
use crate::tor::TorSettings;
use crate::tor::onion_key::{OnionKey, Service};
use crate::tor::service::{Plan, Publication, initial_view};

/// The tor task before the p2p port is known.
pub(super) struct Prepared {
    /// What `solidarity status` shows; the task keeps it current.
    pub(super) view: watch::Sender<TorView>,
    settings: TorSettings,
    p2p_key: Option<OnionKey>,
    status: Option<(OnionKey, String)>,
}

/// Loads (or creates) the keys and builds the first view.
pub(super) fn prepare(
    settings: &TorSettings,
    data_dir: &std::path::Path,
    status_listener: &StatusListener,
    status_addr: &StatusAddr,
) -> anyhow::Result<Prepared> {
    let p2p_key = settings
        .onion_service
        .then(|| OnionKey::load_or_create(data_dir, Service::P2p))
        .transpose()?;
    let status = if settings.status_onion {
        let key = OnionKey::load_or_create(data_dir, Service::StatusPage)?;
        let target = match status_listener {
            StatusListener::Tcp(listener) => on_this_machine(listener.local_addr()?).to_string(),
            StatusListener::Unix(_) => {
                let target = status_addr.to_string();
                if target
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '"')
                {
                    anyhow::bail!(
                        "`status_addr` {target:?}: tor cannot be told a socket path with spaces or quotes"
                    );
                }
                target
            }
        };
        Some((key, target))
    } else {
        None
    };
    let profile = if settings.only {
        "tor-only"
    } else {
        "clearnet"
    };
    let onion = p2p_key
        .as_ref()
        .map(|key| key.multiaddr(settings.onion_port))
        .transpose()?
        .map(|address| address.to_string());
    let status_onion = status
        .as_ref()
        .map(|(key, _)| format!("http://{}.onion/", key.service_id()));
    Ok(Prepared {
        view: watch::channel(initial_view(profile, onion, status_onion)).0,
        settings: settings.clone(),
        p2p_key,
        status,
    })
}

/// Runs the tor task until `stop`; `bound` are the p2p listener's bound addresses.
pub(super) fn run(
    prepared: Prepared,
    bound: &[Multiaddr],
    net: solidarity_net::NetHandle,
    stop: CancellationToken,
) -> impl Future<Output = ()> + Send + 'static {
    let Prepared {
        view,
        settings,
        p2p_key,
        status,
    } = prepared;
    let p2p_target = bound.iter().find_map(tcp_socket).map(on_this_machine);
    let mut publications = Vec::new();
    let mut missing_listener = false;
    if let Some(key) = p2p_key {
        match p2p_target {
            Some(target) => publications.push(Publication {
                service: Service::P2p,
                key,
                virtual_port: settings.onion_port,
                target: target.to_string(),
                max_streams: crate::tor::service::P2P_STREAMS_PER_CIRCUIT,
            }),
            None => missing_listener = true,
        }
    }
    if let Some((key, target)) = status {
        publications.push(Publication {
            service: Service::StatusPage,
            key,
            virtual_port: 80,
            target,
            max_streams: crate::tor::service::STATUS_PAGE_STREAMS_PER_CIRCUIT,
        });
    }
    async move {
        if missing_listener {
            tracing::error!(
                "the p2p listener bound no TCP port, so tor has nothing to forward the onion service to"
            );
            view.send_modify(|view| {
                view.state = "no p2p listener to publish as an onion service".to_owned();
            });
        }
        if !settings.uses_control_port() || publications.is_empty() {
            crate::tor::service::watch_socks(settings.socks.clone(), view, net, stop).await;
            return;
        }
        let plan = Plan {
            control: settings.control.clone(),
            password: settings.control_password.clone(),
            cookie: settings.control_cookie.clone(),
            publications,
            socks: settings.socks.clone(),
        };
        crate::tor::service::run(plan, view, net, stop).await;
    }
}

fn tcp_socket(address: &Multiaddr) -> Option<SocketAddr> {
    let mut ip = None;
    for protocol in address.iter() {
        match protocol {
            Protocol::Ip4(v4) => ip = Some(IpAddr::V4(v4)),
            Protocol::Ip6(v6) => ip = Some(IpAddr::V6(v6)),
            Protocol::Tcp(port) if port != 0 => return ip.map(|ip| SocketAddr::new(ip, port)),
            _ => {}
        }
    }
    None
}

/// A bound address as tor reaches it: a wildcard stands for loopback.
fn on_this_machine(address: SocketAddr) -> SocketAddr {
    match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), address.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), address.port())
        }
        _ => address,
    }
}
