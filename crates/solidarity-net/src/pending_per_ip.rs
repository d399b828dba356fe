//! A limit on inbound connections still handshaking from one source address.
//!
//! `connection_limits` caps pending connections overall; without a per-source cap, one host
//! holding that many idle TCP sockets (each closed only by the handshake timeout) locks every
//! member out. Here an IPv4 address, or an IPv6 /64 (what one host usually holds), may have
//! at most [`MAX_PENDING_PER_IP`] inbound connections before their handshake completes; more
//! are closed at once. Established connections do not count: members are bounded per peer.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};

use crate::MAX_PENDING_PER_IP;

/// The source a pending connection is counted against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Source {
    V4([u8; 4]),
    /// The first 64 bits of an IPv6 address.
    V6Prefix([u8; 8]),
}

impl Source {
    fn of(address: &Multiaddr) -> Option<Self> {
        address.iter().find_map(|protocol| match protocol {
            Protocol::Ip4(v4) => Some(Self::from_ip(IpAddr::V4(v4))),
            Protocol::Ip6(v6) => Some(Self::from_ip(IpAddr::V6(v6))),
            _ => None,
        })
    }

    /// 127.0.0.1 or ::1 (its /64): where tor's onion service forwards from.
    fn is_loopback(self) -> bool {
        match self {
            Self::V4(octets) => octets == [127, 0, 0, 1],
            Self::V6Prefix(prefix) => prefix == [0; 8],
        }
    }

    fn from_ip(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4.octets()),
                None => {
                    let mut prefix = [0; 8];
                    prefix.copy_from_slice(&v6.octets()[..8]);
                    Self::V6Prefix(prefix)
                }
            },
        }
    }
}

/// Denies an inbound connection whose source already has [`MAX_PENDING_PER_IP`] handshaking.
#[derive(Default)]
pub(crate) struct Behaviour {
    pending: HashMap<ConnectionId, Source>,
    per_source: HashMap<Source, u32>,
    /// Loopback sources are not limited: the node's onion service forwards every visitor
    /// from 127.0.0.1, so a per-address limit would let four idle visitors lock every
    /// member out. The overall pending limit and the handshake timeout still hold.
    loopback_unlimited: bool,
}

/// The refusal, for the swarm's event (never logged with the address).
#[derive(Debug, thiserror::Error)]
#[error("too many connections handshaking from one address")]
struct TooManyFromOneAddress;

impl Behaviour {
    /// The limit, with loopback exempt when inbound connections come through tor.
    pub(crate) fn new(loopback_unlimited: bool) -> Self {
        Self {
            loopback_unlimited,
            ..Self::default()
        }
    }

    fn finished(&mut self, connection: ConnectionId) {
        let Some(source) = self.pending.remove(&connection) else {
            return;
        };
        if let Some(count) = self.per_source.get_mut(&source) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_source.remove(&source);
            }
        }
    }

    #[cfg(test)]
    fn pending(&self) -> usize {
        self.pending.len()
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection: ConnectionId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        let Some(source) = Source::of(remote) else {
            return Ok(());
        };
        if self.loopback_unlimited && source.is_loopback() {
            return Ok(());
        }
        let count = self.per_source.entry(source).or_default();
        if *count >= MAX_PENDING_PER_IP {
            return Err(ConnectionDenied::new(TooManyFromOneAddress));
        }
        *count += 1;
        self.pending.insert(connection, source);
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        _connection: ConnectionId,
        _peer: PeerId,
        _local: &Multiaddr,
        _remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection: ConnectionId,
        _peer: PeerId,
        _address: &Multiaddr,
        _role: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        // A pending inbound connection ends either established or failed (timed out,
        // refused by another behaviour before or after its handshake).
        match event {
            FromSwarm::ConnectionEstablished(established) => {
                self.finished(established.connection_id);
            }
            FromSwarm::ListenFailure(failure) => self.finished(failure.connection_id),
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use libp2p::core::ConnectedPoint;
    use libp2p::swarm::behaviour::ListenFailure;
    use libp2p::swarm::{ListenError, behaviour::ConnectionEstablished};

    use super::*;

    fn remote(text: &str) -> Multiaddr {
        text.parse().expect("multiaddr")
    }

    fn local() -> Multiaddr {
        remote("/ip4/127.0.0.1/tcp/7447")
    }

    #[test]
    fn one_address_gets_the_limit_and_others_are_unaffected() {
        let mut limit = Behaviour::default();
        let attacker = remote("/ip4/192.0.2.7/tcp/50000");
        let mut admitted = 0;
        let mut denied = 0;
        for _ in 0..200 {
            match limit.handle_pending_inbound_connection(
                ConnectionId::new_unchecked(admitted + denied),
                &local(),
                &attacker,
            ) {
                Ok(()) => admitted += 1,
                Err(_) => denied += 1,
            }
        }
        assert_eq!(admitted, MAX_PENDING_PER_IP as usize);
        assert_eq!(denied, 200 - admitted);
        // Another host, and another port of the same /64, count apart from it.
        limit
            .handle_pending_inbound_connection(
                ConnectionId::new_unchecked(1000),
                &local(),
                &remote("/ip4/192.0.2.8/tcp/1"),
            )
            .expect("another address");
        for index in 0..MAX_PENDING_PER_IP {
            limit
                .handle_pending_inbound_connection(
                    ConnectionId::new_unchecked(2000 + index as usize),
                    &local(),
                    &remote(&format!("/ip6/2001:db8:0:1::{:x}/tcp/1", index + 1)),
                )
                .expect("within the /64's limit");
        }
        assert!(
            limit
                .handle_pending_inbound_connection(
                    ConnectionId::new_unchecked(3000),
                    &local(),
                    &remote("/ip6/2001:db8:0:1::ffff/tcp/1"),
                )
                .is_err(),
            "one /64 is one source"
        );
    }

    #[test]
    fn a_finished_handshake_frees_its_slot() {
        let mut limit = Behaviour::default();
        let attacker = remote("/ip4/192.0.2.7/tcp/50000");
        for index in 0..MAX_PENDING_PER_IP as usize {
            limit
                .handle_pending_inbound_connection(
                    ConnectionId::new_unchecked(index),
                    &local(),
                    &attacker,
                )
                .expect("within the limit");
        }
        let error = ListenError::Aborted;
        limit.on_swarm_event(FromSwarm::ListenFailure(ListenFailure {
            local_addr: &local(),
            send_back_addr: &attacker,
            error: &error,
            connection_id: ConnectionId::new_unchecked(0),
            peer_id: None,
        }));
        let endpoint = ConnectedPoint::Listener {
            local_addr: local(),
            send_back_addr: attacker.clone(),
        };
        limit.on_swarm_event(FromSwarm::ConnectionEstablished(ConnectionEstablished {
            peer_id: PeerId::random(),
            connection_id: ConnectionId::new_unchecked(1),
            endpoint: &endpoint,
            failed_addresses: &[],
            other_established: 0,
        }));
        assert_eq!(limit.pending(), MAX_PENDING_PER_IP as usize - 2);
        for index in 0..2 {
            limit
                .handle_pending_inbound_connection(
                    ConnectionId::new_unchecked(100 + index),
                    &local(),
                    &attacker,
                )
                .expect("slot freed");
        }
        assert!(limit.per_source.len() == 1 && limit.pending() == MAX_PENDING_PER_IP as usize);
    }
}
