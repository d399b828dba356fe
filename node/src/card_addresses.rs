//! Which addresses a member card carries, and which ones `member add` warns about.
//!
//! A card names only addresses others can dial:
//! - `announce` in config.toml, when set, is the admin's explicit choice and is used as
//!   given (loopback and private ranges included: devnets and LANs need them), except
//!   unspecified addresses (`0.0.0.0`, `::`), which nobody can dial. A TCP port 0 in an
//!   announced address stands for the port the daemon actually bound.
//! - Without `announce`, the bound addresses are filtered: unspecified, loopback and
//!   private-range ones (RFC 1918, CGNAT 100.64/10, link-local, ULA fc00::/7,
//!   fe80::/10) are left out, so a card never lists every private interface of the
//!   server. Every public address bound is listed (set `announce` to choose).

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;

use crate::identity::Card;

/// Where an address can be dialled from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `0.0.0.0` or `::`: a listen wildcard, never dialable.
    Unspecified,
    /// Loopback: only this machine.
    Loopback,
    /// A private, shared (CGNAT), link-local or unique-local range: only a local network.
    Private,
    /// TCP port 0: not an address anyone can dial until a port is chosen.
    NoPort,
    /// A public IP address or a name (DNS, onion).
    Public,
}

impl Scope {
    /// How a warning names the scope.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified (0.0.0.0 or ::)",
            Self::Loopback => "loopback",
            Self::Private => "private-range",
            Self::NoPort => "port 0",
            Self::Public => "public",
        }
    }
}

/// The scope of an address (its IP part; names count as public).
pub fn scope(address: &Multiaddr) -> Scope {
    let mut result = Scope::Public;
    for protocol in address.iter() {
        let here = match protocol {
            Protocol::Ip4(ip) => {
                let [a, b, ..] = ip.octets();
                if ip.is_unspecified() {
                    Scope::Unspecified
                } else if ip.is_loopback() {
                    Scope::Loopback
                } else if ip.is_private() || ip.is_link_local() || (a == 100 && (b & 0xc0) == 64) {
                    Scope::Private
                } else {
                    Scope::Public
                }
            }
            Protocol::Ip6(ip) => {
                let first = ip.segments()[0];
                if ip.is_unspecified() {
                    Scope::Unspecified
                } else if ip.is_loopback() {
                    Scope::Loopback
                } else if (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80 {
                    Scope::Private
                } else if let Some(v4) = ip.to_ipv4_mapped() {
                    scope(&Multiaddr::empty().with(Protocol::Ip4(v4)))
                } else {
                    Scope::Public
                }
            }
            Protocol::Dns(name) | Protocol::Dns4(name) | Protocol::Dns6(name)
                if name.eq_ignore_ascii_case("localhost") =>
            {
                Scope::Loopback
            }
            Protocol::Tcp(0) => Scope::NoPort,
            _ => Scope::Public,
        };
        if here != Scope::Public {
            result = here;
            break;
        }
    }
    result
}

/// The TCP ports of `addresses`, sorted, without 0.
pub fn tcp_ports(addresses: &[Multiaddr]) -> Vec<u16> {
    let mut ports: Vec<u16> = addresses
        .iter()
        .flat_map(|address| address.iter())
        .filter_map(|protocol| match protocol {
            Protocol::Tcp(port) if port != 0 => Some(port),
            _ => None,
        })
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// Whether an address is routable on the internet: public, and not in a documentation,
/// benchmarking, reserved or multicast range. Bound addresses must be, to go on a card.
fn is_global(address: &Multiaddr) -> bool {
    if scope(address) != Scope::Public {
        return false;
    }
    address.iter().all(|protocol| match protocol {
        Protocol::Ip4(ip) => {
            let [a, b, c, _] = ip.octets();
            !(a == 0
                || a >= 224
                || (a, b, c) == (192, 0, 2)
                || (a, b, c) == (198, 51, 100)
                || (a, b, c) == (203, 0, 113)
                || (a == 198 && (b & 0xfe) == 18)
                || (a, b, c) == (192, 0, 0))
        }
        Protocol::Ip6(ip) => {
            let [first, second, ..] = ip.segments();
            !(ip.is_multicast() || (first, second) == (0x2001, 0x0db8))
        }
        _ => true,
    })
}

/// The addresses a card carries, from the configured `announce` list and the addresses
/// the node is bound to (or, without a daemon, its configured `listen` addresses).
pub fn card_addresses(announce: &[Multiaddr], bound: &[Multiaddr]) -> Vec<Multiaddr> {
    let ports = tcp_ports(bound);
    let mut out: Vec<Multiaddr> = Vec::new();
    let candidates: Vec<Multiaddr> = if announce.is_empty() {
        bound
            .iter()
            .filter(|address| is_global(address))
            .cloned()
            .collect()
    } else {
        announce
            .iter()
            .flat_map(|address| solidarity_net::with_ports(address, &ports))
            .filter(|address| !matches!(scope(address), Scope::Unspecified | Scope::NoPort))
            .collect()
    };
    for address in candidates {
        if !out.contains(&address) {
            out.push(address);
        }
    }
    out
}

/// The addresses of this node's card: those of [`card_addresses`], and its onion address
/// when it has an onion service. An onion-only node's bound (loopback) addresses never
/// count.
pub fn node_card_addresses(
    config: &crate::config::NodeConfig,
    bound: &[Multiaddr],
) -> Vec<Multiaddr> {
    let bound = if config.tor.as_ref().is_some_and(|tor| tor.only) {
        &[][..]
    } else {
        bound
    };
    let mut addresses = card_addresses(&config.announce, bound);
    if let Some(onion) = &config.onion_announce
        && !addresses.contains(onion)
    {
        addresses.push(onion.clone());
    }
    addresses
}

/// One warning per address of `card` that others may not be able to dial.
pub fn card_warnings(card: &Card) -> Vec<String> {
    card.addresses
        .iter()
        .filter_map(|address| match scope(address) {
            Scope::Public => None,
            other => {
                let fine = match other {
                    Scope::Loopback => "fine only when every node runs on this one machine",
                    Scope::Private => "fine only on one local network",
                    _ => "no server can",
                };
                Some(format!(
                    "the card's address {address} is {}: other servers cannot dial it ({fine}; otherwise ask its admin for a card with `announce` set)",
                    other.describe()
                ))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> Multiaddr {
        text.parse().expect("multiaddr")
    }

    #[test]
    fn scopes_of_the_ranges_that_never_belong_on_a_card() {
        for (text, want) in [
            ("/ip4/0.0.0.0/tcp/7447", Scope::Unspecified),
            ("/ip6/::/tcp/7447", Scope::Unspecified),
            ("/ip4/127.0.0.1/tcp/7447", Scope::Loopback),
            ("/ip6/::1/tcp/7447", Scope::Loopback),
            ("/dns4/localhost/tcp/7447", Scope::Loopback),
            ("/ip4/10.1.2.3/tcp/7447", Scope::Private),
            ("/ip4/172.16.0.1/tcp/7447", Scope::Private),
            ("/ip4/192.168.1.1/tcp/7447", Scope::Private),
            ("/ip4/100.64.0.1/tcp/7447", Scope::Private),
            ("/ip4/100.127.255.1/tcp/7447", Scope::Private),
            ("/ip4/169.254.1.1/tcp/7447", Scope::Private),
            ("/ip6/fd00::1/tcp/7447", Scope::Private),
            ("/ip6/fe80::1/tcp/7447", Scope::Private),
            ("/ip4/203.0.113.7/tcp/0", Scope::NoPort),
            ("/ip4/100.128.0.1/tcp/7447", Scope::Public),
            ("/ip4/203.0.113.7/tcp/7447", Scope::Public),
            ("/ip6/2001:db8::1/tcp/7447", Scope::Public),
            ("/dns4/node.example.org/tcp/7447", Scope::Public),
        ] {
            assert_eq!(scope(&addr(text)), want, "{text}");
        }
    }

    #[test]
    fn without_announce_only_public_bound_addresses_are_carried() {
        let bound = [
            addr("/ip4/127.0.0.1/tcp/7447"),
            addr("/ip4/192.168.1.5/tcp/7447"),
            addr("/ip4/192.0.2.2/tcp/7447"),
            addr("/ip4/0.0.0.0/tcp/7447"),
            addr("/ip4/93.184.216.34/tcp/7447"),
        ];
        assert_eq!(
            card_addresses(&[], &bound),
            vec![addr("/ip4/93.184.216.34/tcp/7447")]
        );
    }

    #[test]
    fn announced_addresses_are_kept_and_port_zero_takes_the_bound_port() {
        let bound = [addr("/ip4/127.0.0.1/tcp/40001")];
        let announce = [
            addr("/ip4/127.0.0.1/tcp/0"),
            addr("/ip4/0.0.0.0/tcp/7447"),
            addr("/dns4/node.example.org/tcp/7447"),
        ];
        assert_eq!(
            card_addresses(&announce, &bound),
            vec![
                addr("/ip4/127.0.0.1/tcp/40001"),
                addr("/dns4/node.example.org/tcp/7447")
            ]
        );
        // Without a daemon the port is unknown: the address is left out.
        assert_eq!(
            card_addresses(&announce[..1], &[addr("/ip4/127.0.0.1/tcp/0")]),
            Vec::<Multiaddr>::new()
        );
    }
}
