//! The libp2p adapter: moves bytes, topics and verdicts between members, not alerts.
//!
//! It owns the composed behaviour (`behaviour.rs`), the [`EventLoop`] that alone owns the
//! `Swarm`, and the cloneable [`NetHandle`] the node talks to it through.
//!
//! - Transport: TCP + noise + yamux. Only peers on the allow-list (members) may connect;
//!   others are refused right after the handshake. With tor, onion addresses (or, in the
//!   onion-only profile, all addresses) are dialled through its SOCKS5 port (`socks.rs`).
//! - Gossip: one gossipsub topic per federation, anonymous messages (the envelope signs
//!   itself), a caller-supplied content-hash message id, application validation: every
//!   received message waits for [`NetHandle::report`], and rejects lower the forwarder's score.
//! - Sync: a request-response protocol carrying opaque bytes; the node encodes and decodes.
//! - Reconnect: known member addresses are redialled with exponential backoff and
//!   jitter, reset only by a connection that lasts.
//! - Identify tells peers only the configured external addresses, never the listen
//!   addresses (which name every interface of the host).
//! - Outsiders: a connection must finish its handshake within [`HANDSHAKE_TIMEOUT`], and
//!   one address may hold at most [`MAX_PENDING_PER_IP`] handshakes at a time, so idle
//!   sockets neither pile up nor fill the [`MAX_PENDING_CONNECTIONS`] members need.
//! - Listening: a configured TCP port that is already taken is an error at start
//!   (libp2p's listeners set `SO_REUSEPORT`, so two daemons would share the port).
//!
//! Architecture invariant: no dependency on the protocol crate, the store or the node; no
//! address, multiaddr or IP ever reaches a log line at info level or above.

#![warn(missing_docs)]

mod behaviour;
mod event_loop;
mod handle;
mod pending_per_ip;
mod socks;

use std::time::Duration;

pub use event_loop::{EventLoop, with_ports};
pub use handle::{Acceptance, GossipToken, NetError, NetHandle, SyncReplyToken};
pub use libp2p::{Multiaddr, PeerId, identity::Keypair};
pub use socks::{TorConfig, TorDialing, TorEndpoint};

/// Capacity of the command channel from handles to the event loop: enough for a burst of
/// CLI actions and verdict reports; senders wait when it is full.
pub const COMMAND_QUEUE: usize = 1024;
/// Capacity of the event channel to the node: when the node falls behind, the event loop
/// waits, which back-pressures the network instead of buffering without bound.
pub const EVENT_QUEUE: usize = 1024;
/// Most connections per peer (one, plus one during a simultaneous dial).
pub const MAX_CONNECTIONS_PER_PEER: u32 = 2;
/// Most established connections overall; a federation has tens of members.
pub const MAX_ESTABLISHED_CONNECTIONS: u32 = 256;
/// Most connections still handshaking, in each direction.
pub const MAX_PENDING_CONNECTIONS: u32 = 64;
/// Most inbound connections still handshaking from one IPv4 address or IPv6 /64: idle
/// sockets from one host cannot take the overall pending slots members need.
pub const MAX_PENDING_PER_IP: u32 = 4;
/// How long one invalid message (rejected by the node) keeps its forwarder graylisted:
/// all it sends by gossip is dropped unread meanwhile (SPEC §17).
pub const GRAYLIST_AFTER_INVALID: Duration = Duration::from_secs(600);
/// Longest a connection may take from TCP accept (or dial) to an authenticated,
/// multiplexed connection; an idle socket is closed after it.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a dial through tor may take: an onion service is reached through an
/// introduction point and a rendezvous circuit, which takes seconds and, while tor's
/// descriptors are being fetched, tens of seconds.
pub const TOR_DIAL_TIMEOUT: Duration = Duration::from_secs(90);
/// Longest an inbound handshake may take when inbound connections come through the
/// node's onion service: noise crosses the visitor's six-relay circuit.
pub const TOR_INBOUND_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Most inbound sync requests awaiting the node's answer; beyond it requests are dropped.
pub const MAX_PENDING_SYNC_REPLIES: usize = 256;
/// First redial delay after a member disconnects or a dial fails.
pub const MIN_REDIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Longest redial delay: a member that keeps refusing us is tried every few minutes.
pub const MAX_REDIAL_BACKOFF: Duration = Duration::from_secs(300);
/// A connection that lasted this long was a real one: the redial delay starts over. A
/// shorter one (a member that has not added us closes it at once) keeps backing off.
pub const STABLE_CONNECTION: Duration = Duration::from_secs(30);

/// Everything the event loop needs, chosen by the node.
#[derive(Clone)]
pub struct NetConfig {
    /// The node key (also its PeerId).
    pub keypair: Keypair,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// The gossipsub topic of the federation.
    pub topic: String,
    /// The request-response protocol name of sync.
    pub sync_protocol: &'static str,
    /// Content id of a gossiped message's bytes (deduplication before validation).
    pub message_id: fn(&[u8]) -> Vec<u8>,
    /// Largest gossiped message, bytes.
    pub max_message_bytes: usize,
    /// Largest sync request, bytes.
    pub max_sync_request_bytes: usize,
    /// Largest sync response, bytes.
    pub max_sync_response_bytes: usize,
    /// Gossipsub heartbeat (shorter in tests: libp2p timers ignore tokio's paused clock).
    pub heartbeat: Duration,
    /// Peers allowed to connect at start.
    pub allowed: Vec<PeerId>,
    /// The addresses identify tells connected peers (the admin's `announce`); the
    /// listen addresses are never sent. A TCP port 0 stands for the port bound.
    pub external: Vec<Multiaddr>,
    /// Dialling through tor: none, onion addresses only, or everything.
    pub tor: Option<TorConfig>,
    /// Inbound connections from loopback come through the node's onion service, so they
    /// are not limited per source address (all share 127.0.0.1), only overall.
    pub inbound_through_tor: bool,
}

/// What the network tells the node.
#[derive(Debug)]
pub enum NetEvent {
    /// A gossiped message awaits validation; answer with [`NetHandle::report`].
    Message {
        /// Identifies the message and its forwarder for the verdict.
        token: GossipToken,
        /// The peer that forwarded it.
        source: PeerId,
        /// The message bytes.
        data: Vec<u8>,
    },
    /// A member asks for sync; answer with [`NetHandle::reply_sync`].
    SyncRequest {
        /// The asking peer.
        peer: PeerId,
        /// The request bytes.
        data: Vec<u8>,
        /// Where the answer goes.
        reply: SyncReplyToken,
    },
    /// The first connection to a peer is up.
    PeerConnected(PeerId),
    /// The last connection to a peer closed.
    PeerDisconnected(PeerId),
    /// A member closed our connections right after they opened (most likely it has not
    /// added this node yet); sent once until a connection lasts.
    PeerClosedEarly(PeerId),
}

/// Builds the network: a handle, the stream of events, and the loop the caller must run.
pub fn build(
    config: NetConfig,
) -> Result<(NetHandle, tokio::sync::mpsc::Receiver<NetEvent>, EventLoop), NetError> {
    event_loop::EventLoop::new(config, None)
}

/// As [`build`], with gossipsub's counters (messages received before and after
/// deduplication, sent, validated, mesh sizes) registered in `registry` under `gossipsub_`,
/// and libp2p's own (connections, dials and their errors, identify, ping, bytes per
/// protocol stack) under `libp2p_`. Counts only: no label names a peer or an address.
pub fn build_with_metrics(
    config: NetConfig,
    registry: &mut prometheus_client::registry::Registry,
) -> Result<(NetHandle, tokio::sync::mpsc::Receiver<NetEvent>, EventLoop), NetError> {
    event_loop::EventLoop::new(config, Some(registry))
}
