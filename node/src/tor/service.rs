//! The task that keeps the node's onion services published.
//!
//! It connects to tor's control port, authenticates, adds each service with its key and
//! then checks tor every [`CHECK_INTERVAL`]. Tor withdraws the services when this
//! connection closes (tor stopped or restarted, or this daemon stopped); the task then
//! connects again with exponential backoff and jitter and adds them again: the keys, and
//! so the addresses, stay the same. Its state is published for `solidarity status`; it is
//! logged when it changes, never with an address.

use std::time::Duration;

use anyhow::bail;
use solidarity_control::TorView;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::control::{Control, ControlAddr};
use super::onion_key::{OnionKey, Service};

/// How often a connected tor is asked how it is (a closed connection shows at the next).
pub const CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// First delay before connecting again after a failure.
pub const MIN_RETRY: Duration = Duration::from_secs(2);
/// Longest delay between attempts.
/// Longest delay between attempts: connecting to a local socket is cheap, and a node
/// waiting for tor should notice it within seconds.
pub const MAX_RETRY: Duration = Duration::from_secs(10);

/// One onion service to publish.
pub struct Publication {
    pub service: Service,
    pub key: OnionKey,
    pub virtual_port: u16,
    /// Where tor forwards: `127.0.0.1:PORT` or `unix:/path`.
    pub target: String,
    /// Most streams one rendezvous circuit may open; a visitor opening more loses its
    /// circuit.
    pub max_streams: u32,
}

/// A member needs one connection, two while redialling.
pub const P2P_STREAMS_PER_CIRCUIT: u32 = 4;
/// A browser opens a few connections for a page and its stylesheet.
pub const STATUS_PAGE_STREAMS_PER_CIRCUIT: u32 = 16;

/// What the task needs.
pub struct Plan {
    pub control: ControlAddr,
    pub password: Option<super::Password>,
    /// Tor's cookie file, when configured.
    pub cookie: Option<std::path::PathBuf>,
    pub publications: Vec<Publication>,
    /// Tor's SOCKS port, checked beside the control port: members are dialled there.
    pub socks: solidarity_net::TorEndpoint,
}

/// The view published before the first attempt; `profile` names the network setting.
pub fn initial_view(profile: &str, onion: Option<String>, status_onion: Option<String>) -> TorView {
    TorView {
        profile: profile.to_owned(),
        ready: false,
        state: "connecting to tor".to_owned(),
        onion,
        status_onion,
    }
}

/// Runs until `stop`; each time tor becomes ready, `net` redials every member at once.
pub async fn run(
    plan: Plan,
    view: watch::Sender<TorView>,
    net: solidarity_net::NetHandle,
    stop: CancellationToken,
) {
    let mut retry = MIN_RETRY;
    let mut logged = String::new();
    loop {
        let outcome = tokio::select! {
            () = stop.cancelled() => return,
            outcome = publish(&plan) => outcome,
        };
        match outcome {
            Ok(mut control) => {
                retry = MIN_RETRY;
                let reason = tokio::select! {
                    () = stop.cancelled() => return,
                    reason = watch_tor(&mut control, &plan.socks, &view, &net, &mut logged) => reason,
                };
                set_unreachable(&view, &mut logged, &reason);
            }
            Err(error) => {
                set_unreachable(&view, &mut logged, &format!("{error:#}"));
            }
        }
        let jitter = rand::random::<f64>() * 0.5 + 0.75;
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(retry.mul_f64(jitter)) => {}
        }
        retry = (retry * 2).min(MAX_RETRY);
    }
}

/// Connects, authenticates and adds every service.
async fn publish(plan: &Plan) -> anyhow::Result<Control> {
    let password = plan.password.as_ref().map(|password| password.0.as_str());
    let mut control = Control::connect(&plan.control, plan.cookie.as_deref(), password)
        .await
        .map_err(|error| {
            let hint = if permission_denied(&error) {
                GROUP_HINT
            } else {
                ""
            };
            error.context(format!(
                "cannot use tor's control port {}{hint}",
                plan.control
            ))
        })?;
    for publication in &plan.publications {
        let blob = publication.key.add_onion_blob();
        let id = control
            .add_onion(
                &blob,
                publication.virtual_port,
                &publication.target,
                publication.max_streams,
            )
            .await?;
        if id != publication.key.service_id() {
            bail!(
                "tor published the {} under another address than its key's",
                publication.service.describe()
            );
        }
    }
    Ok(control)
}

/// Reports tor's bootstrap progress until the connection fails; returns why it did.
async fn watch_tor(
    control: &mut Control,
    socks: &solidarity_net::TorEndpoint,
    view: &watch::Sender<TorView>,
    net: &solidarity_net::NetHandle,
    logged: &mut String,
) -> String {
    loop {
        match control.bootstrap().await {
            Ok((progress, summary)) => {
                let socks_answers = probe_socks(socks).await;
                let (ready, state) = if let Err(reason) = &socks_answers {
                    (false, format!("tor's control port answers, but {reason}"))
                } else if progress >= 100 {
                    (true, "ready: onion services published".to_owned())
                } else {
                    (
                        false,
                        format!("tor is bootstrapping ({progress} %: {summary})"),
                    )
                };
                if *logged != state {
                    if ready {
                        tracing::info!("tor is ready; the onion services are published");
                        // The event loop may be stopping; then there is nothing to dial.
                        let _ = net.redial_now().await;
                    } else if socks_answers.is_err() {
                        tracing::warn!("{state}");
                    } else {
                        tracing::info!(progress, "tor is bootstrapping");
                    }
                    state.clone_into(logged);
                }
                view.send_modify(|view| {
                    view.ready = ready;
                    view.state = state;
                });
            }
            Err(error) => {
                return format!(
                    "tor's control connection ended: tor stopped or restarted ({error:#})"
                );
            }
        }
        tokio::time::sleep(CHECK_INTERVAL).await;
    }
}

/// Without an onion service there is no control connection to watch: checks every
/// [`CHECK_INTERVAL`] that tor's SOCKS port answers, and redials every member when it
/// answers again.
pub async fn watch_socks(
    socks: solidarity_net::TorEndpoint,
    view: watch::Sender<TorView>,
    net: solidarity_net::NetHandle,
    stop: CancellationToken,
) {
    let mut logged = String::new();
    loop {
        match probe_socks(&socks).await {
            Ok(()) => {
                let state = format!("ready: dialling through tor's SOCKS port {socks}");
                if logged != state {
                    tracing::info!("tor's SOCKS port answers");
                    let _ = net.redial_now().await;
                    state.clone_into(&mut logged);
                }
                view.send_modify(|view| {
                    view.ready = true;
                    view.state = state;
                });
            }
            Err(reason) => set_unreachable(&view, &mut logged, &reason),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(CHECK_INTERVAL) => {}
        }
    }
}

/// Why this daemon may not use a tor socket it found.
const GROUP_HINT: &str = " (tor runs, but this daemon may not use its socket: with Debian's tor it must be in the group debian-tor, which deploy/solidarity-tor.conf gives the systemd unit)";

fn permission_denied(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied)
    })
}

/// Whether tor's SOCKS port takes a connection (closed again at once).
async fn probe_socks(socks: &solidarity_net::TorEndpoint) -> Result<(), String> {
    let connected = match socks {
        solidarity_net::TorEndpoint::Tcp(address) => {
            tokio::net::TcpStream::connect(address).await.map(drop)
        }
        solidarity_net::TorEndpoint::Unix(path) => {
            tokio::net::UnixStream::connect(path).await.map(drop)
        }
    };
    connected.map_err(|error| {
        let hint = if error.kind() == std::io::ErrorKind::PermissionDenied {
            GROUP_HINT
        } else {
            ""
        };
        format!("tor's SOCKS port {socks} does not answer: {error}{hint}")
    })
}

fn set_unreachable(view: &watch::Sender<TorView>, logged: &mut String, reason: &str) {
    let state = format!("tor is unreachable: {reason} (retrying)");
    if *logged != state {
        tracing::warn!(
            "tor is unreachable: no member can be dialled, nor reach this node's onion service: {reason}"
        );
        state.clone_into(logged);
    }
    view.send_modify(|view| {
        view.ready = false;
        view.state = state;
    });
}
