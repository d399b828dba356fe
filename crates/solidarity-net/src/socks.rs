//! Dialling through tor's SOCKS5 port.
//!
//! A libp2p transport that only dials: `/onion3/…:PORT`, and, when every dial goes through
//! tor, `/dns*/NAME/tcp/PORT` and `/ip4|ip6/ADDR/tcp/PORT` too. Names go to the proxy as
//! names (SOCKS5 domain addresses), so resolution happens in tor and never on this host.
//! Each member gets its own SOCKS credentials, which tor's `IsolateSOCKSAuth` (on by default)
//! turns into its own circuits: one member's traffic cannot be linked to another's by an
//! exit or a relay that sees both.
//!
//! With [`TorDialing::OnionOnly`], addresses it does not claim are refused with
//! `MultiaddrNotSupported`, so the plain TCP transport composed after it takes them. With
//! [`TorDialing::Everything`] every dial ends here, one it cannot carry as a failure:
//! nothing is ever left for a direct dial, whatever the state of tor (fail closed).

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::FutureExt;
use futures::future::BoxFuture;
use libp2p::core::transport::{DialOpts, ListenerId, TransportError, TransportEvent};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, Transport};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

/// Which dials go through tor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TorDialing {
    /// Onion addresses only; the rest is dialled directly (a clearnet node that reaches
    /// onion-only members).
    OnionOnly,
    /// Every dial (the onion-only profile): no connection ever leaves this host but
    /// through tor.
    Everything,
}

/// Where a port of tor's is on this host (its SOCKS port, its control port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TorEndpoint {
    /// A TCP port on loopback.
    Tcp(SocketAddr),
    /// A Unix socket (Debian's tor: `/run/tor/socks`, `/run/tor/control`), which no other
    /// local user can take over while tor is down, as one could a TCP port.
    Unix(PathBuf),
}

impl std::fmt::Display for TorEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp(address) => write!(f, "{address}"),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Where and how the node dials through tor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TorConfig {
    /// Tor's SOCKS5 port.
    pub socks: TorEndpoint,
    /// Which dials go through it.
    pub dialing: TorDialing,
}

/// The SOCKS user name of every dial; the password names the member (isolation).
const SOCKS_USER: &str = "solidarity";

/// The connection to the proxy, TCP or Unix.
pub(crate) trait ProxySocket: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ProxySocket for T {}

/// A connection through the proxy.
pub(crate) type SocksStream = Compat<tokio_socks::tcp::Socks5Stream<Box<dyn ProxySocket>>>;

/// The dial-only transport.
pub(crate) struct SocksTransport {
    config: TorConfig,
}

impl SocksTransport {
    pub(crate) fn new(config: TorConfig) -> Self {
        Self { config }
    }
}

/// What one dial asks the proxy for.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    /// A name (`….onion`, a DNS name) or an IP address in text.
    host: String,
    port: u16,
    /// The SOCKS password: the member's PeerId when the address names it, else the host,
    /// so that no two members share a circuit.
    isolation: String,
}

impl Target {
    /// The target of `address`, when this transport claims it.
    fn of(address: &Multiaddr, dialing: TorDialing) -> Option<Self> {
        let mut protocols = address.iter();
        let (host, port) = match protocols.next()? {
            Protocol::Onion3(onion) => (
                format!(
                    "{}.onion",
                    data_encoding::BASE32_NOPAD
                        .encode(onion.hash())
                        .to_ascii_lowercase()
                ),
                onion.port(),
            ),
            first if dialing == TorDialing::Everything => {
                let host = match first {
                    Protocol::Dns(name) | Protocol::Dns4(name) | Protocol::Dns6(name) => {
                        name.into_owned()
                    }
                    Protocol::Ip4(ip) => ip.to_string(),
                    Protocol::Ip6(ip) => ip.to_string(),
                    _ => return None,
                };
                let Some(Protocol::Tcp(port)) = protocols.next() else {
                    return None;
                };
                (host, port)
            }
            _ => return None,
        };
        let isolation = match protocols.next() {
            None => host.clone(),
            Some(Protocol::P2p(peer)) if protocols.next().is_none() => peer.to_base58(),
            Some(_) => return None,
        };
        if port == 0 {
            return None;
        }
        Some(Self {
            host,
            port,
            isolation,
        })
    }
}

impl Transport for SocksTransport {
    type Output = SocksStream;
    type Error = io::Error;
    type ListenerUpgrade = futures::future::Pending<Result<SocksStream, io::Error>>;
    type Dial = BoxFuture<'static, Result<SocksStream, io::Error>>;

    fn listen_on(
        &mut self,
        _id: ListenerId,
        address: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        Err(TransportError::MultiaddrNotSupported(address))
    }

    fn remove_listener(&mut self, _id: ListenerId) -> bool {
        false
    }

    fn dial(
        &mut self,
        address: Multiaddr,
        _opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        let Some(target) = Target::of(&address, self.config.dialing) else {
            if self.config.dialing == TorDialing::Everything {
                // Fail closed: no transport after this one may dial it directly.
                return Ok(futures::future::ready(Err(io::Error::other(
                    "this address cannot be reached through tor",
                )))
                .boxed());
            }
            return Err(TransportError::MultiaddrNotSupported(address));
        };
        let proxy = self.config.socks.clone();
        Ok(async move {
            let socket: Box<dyn ProxySocket> = match &proxy {
                TorEndpoint::Tcp(address) => {
                    Box::new(tokio::net::TcpStream::connect(address).await?)
                }
                TorEndpoint::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
            };
            let stream = tokio_socks::tcp::Socks5Stream::connect_with_password_and_socket(
                socket,
                (target.host.as_str(), target.port),
                SOCKS_USER,
                &target.isolation,
            )
            .await
            .map_err(|error| match error {
                // tor's own refusal (no circuit, onion service unreachable) or no tor.
                tokio_socks::Error::Io(io) => io,
                other => io::Error::other(other),
            })?;
            Ok(stream.compat())
        }
        .boxed())
    }

    fn poll(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONION: &str = "/onion3/vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd:7447";

    fn target(text: &str, dialing: TorDialing) -> Option<Target> {
        Target::of(&text.parse().expect("multiaddr"), dialing)
    }

    #[test]
    fn onion_addresses_go_to_the_proxy_by_name() {
        let found = target(ONION, TorDialing::OnionOnly).expect("claimed");
        assert_eq!(
            found.host,
            "vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd.onion"
        );
        assert_eq!(found.port, 7447);
        let peer = libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        let with_peer = target(&format!("{ONION}/p2p/{peer}"), TorDialing::OnionOnly)
            .expect("claimed with a peer id");
        assert_eq!(with_peer.isolation, peer.to_base58(), "isolated per member");
    }

    #[test]
    fn a_clearnet_node_leaves_clearnet_addresses_to_tcp() {
        for text in ["/ip4/192.0.2.1/tcp/7447", "/dns4/node.example.org/tcp/7447"] {
            assert_eq!(target(text, TorDialing::OnionOnly), None, "{text}");
        }
    }

    #[test]
    fn the_onion_only_profile_claims_every_tcp_address_and_resolves_nothing() {
        let name =
            target("/dns4/node.example.org/tcp/7447", TorDialing::Everything).expect("claimed");
        assert_eq!(
            (name.host.as_str(), name.port),
            ("node.example.org", 7447),
            "the name itself goes to tor"
        );
        for text in [
            "/ip4/192.0.2.1/tcp/7447",
            "/ip6/2001:db8::1/tcp/7447",
            "/dns/node.example.org/tcp/7447",
            "/dns6/node.example.org/tcp/7447",
        ] {
            assert!(target(text, TorDialing::Everything).is_some(), "{text}");
        }
        // What tor cannot carry is no target, and its dial fails here: the TCP transport
        // composed after this one never sees it.
        let mut transport = SocksTransport::new(TorConfig {
            socks: TorEndpoint::Tcp("127.0.0.1:9".parse().expect("address")),
            dialing: TorDialing::Everything,
        });
        for text in ["/ip4/192.0.2.1/udp/7447/quic-v1", "/ip4/192.0.2.1/tcp/0"] {
            assert_eq!(target(text, TorDialing::Everything), None, "{text}");
            let dial = transport.dial(text.parse().expect("multiaddr"), dial_options());
            assert!(dial.is_ok(), "claimed, so no other transport dials {text}");
        }
    }

    fn dial_options() -> DialOpts {
        DialOpts {
            role: libp2p::core::Endpoint::Dialer,
            port_use: libp2p::core::transport::PortUse::New,
        }
    }
}
