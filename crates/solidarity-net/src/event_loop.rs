//! The event loop: the only owner of the `Swarm`.
//!
//! Invariant: the loop never blocks on the node. Events wait in a bounded outbox; while
//! it is full the loop stops polling the swarm (back-pressure on the network) but keeps
//! taking commands, so a node waiting on a command can never deadlock against it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, InboundRequestId, OutboundRequestId, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId, Swarm, SwarmBuilder, gossipsub, identify, noise, tcp, yamux};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::behaviour::{Behaviour, BehaviourEvent, SyncBytes};
use crate::handle::{Acceptance, Command, GossipToken, NetError, NetHandle, SyncReplyToken};
use crate::socks::{SocksTransport, TorDialing};
use crate::{
    COMMAND_QUEUE, EVENT_QUEUE, HANDSHAKE_TIMEOUT, MAX_PENDING_SYNC_REPLIES, MAX_REDIAL_BACKOFF,
    MIN_REDIAL_BACKOFF, NetConfig, NetEvent, STABLE_CONNECTION, TOR_DIAL_TIMEOUT,
    TOR_INBOUND_HANDSHAKE_TIMEOUT,
};

/// Most addresses kept per member for redialling (newest first).
const MAX_ADDRESSES_PER_PEER: usize = 8;
/// How often due redials are checked.
const REDIAL_TICK: Duration = Duration::from_millis(500);
/// Connections of members stay open while idle: alerts are rare and must not wait for a dial.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(3600);

/// A member to keep connected to.
struct Redial {
    addresses: Vec<Multiaddr>,
    backoff: Duration,
    next_attempt: Instant,
    /// When the current connection opened.
    connected_since: Option<Instant>,
    /// Whether the node was told that this member closes our connections at once.
    told_closed_early: bool,
}

impl Redial {
    fn new() -> Self {
        Self {
            addresses: Vec::new(),
            backoff: MIN_REDIAL_BACKOFF,
            next_attempt: Instant::now(),
            connected_since: None,
            told_closed_early: false,
        }
    }

    /// Schedules the next dial after the current delay (with jitter, so members that
    /// restart together do not dial in step) and doubles the delay.
    fn schedule(&mut self, now: Instant) {
        let jitter = rand::random::<f64>() * 0.5 + 0.75;
        self.next_attempt = now + self.backoff.mul_f64(jitter);
        self.backoff = (self.backoff * 2).min(MAX_REDIAL_BACKOFF);
    }
}

/// Owns the swarm; run it with [`EventLoop::run`].
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetEvent>,
    outbox: VecDeque<NetEvent>,
    topic: gossipsub::IdentTopic,
    pending_requests: HashMap<OutboundRequestId, oneshot::Sender<Result<Vec<u8>, NetError>>>,
    pending_replies: HashMap<InboundRequestId, ResponseChannel<SyncBytes>>,
    listen_addresses: Vec<Multiaddr>,
    redials: HashMap<PeerId, Redial>,
    connected: HashSet<PeerId>,
    /// The configured external addresses (port 0: the port bound).
    external: Vec<Multiaddr>,
    /// libp2p's own counters (connections, dials, identify, ping), when registered.
    libp2p_metrics: Option<libp2p::metrics::Metrics>,
}

impl EventLoop {
    pub(crate) fn new(
        config: NetConfig,
        metrics: Option<&mut prometheus_client::registry::Registry>,
    ) -> Result<(NetHandle, mpsc::Receiver<NetEvent>, Self), NetError> {
        let mut metrics = metrics;
        let behaviour = Behaviour::new(
            &config.keypair,
            &config,
            metrics
                .as_deref_mut()
                .map(|registry| registry.sub_registry_with_prefix("gossipsub")),
        )?;
        let libp2p_metrics = metrics.as_deref_mut().map(libp2p::metrics::Metrics::new);
        let transport = transport(&config)?;
        let builder = SwarmBuilder::with_existing_identity(config.keypair.clone())
            .with_tokio()
            .with_other_transport(|_| transport)
            .map_err(NetError::config)?;
        // Both add their own `libp2p_` prefix. Bytes in and out per protocol stack
        // ("/ip4/tcp"): no address in a label.
        let swarm = match metrics {
            Some(registry) => builder
                .with_bandwidth_metrics(registry)
                .with_behaviour(|_| behaviour)
                .map_err(NetError::config)?
                .with_swarm_config(|swarm_config| {
                    swarm_config.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT)
                })
                .build(),
            None => builder
                .with_behaviour(|_| behaviour)
                .map_err(NetError::config)?
                .with_swarm_config(|swarm_config| {
                    swarm_config.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT)
                })
                .build(),
        };
        let mut swarm = swarm;
        // Every port is checked before any is bound: libp2p's own listeners set
        // SO_REUSEPORT, which would hide a port held by another daemon.
        for (index, address) in config.listen.iter().enumerate() {
            probe_listen_address(index, address)?;
        }
        for (index, address) in config.listen.iter().enumerate() {
            swarm
                .listen_on(address.clone())
                .map_err(|error| NetError::Listen {
                    index,
                    source: Box::new(error),
                })?;
        }
        let (command_tx, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let (event_tx, event_rx) = mpsc::channel(EVENT_QUEUE);
        let mut event_loop = Self {
            swarm,
            commands: command_rx,
            events: event_tx,
            outbox: VecDeque::new(),
            topic: gossipsub::IdentTopic::new(config.topic),
            pending_requests: HashMap::new(),
            pending_replies: HashMap::new(),
            listen_addresses: Vec::new(),
            redials: HashMap::new(),
            connected: HashSet::new(),
            external: config.external,
            libp2p_metrics,
        };
        event_loop.refresh_external();
        Ok((
            NetHandle {
                commands: command_tx,
            },
            event_rx,
            event_loop,
        ))
    }

    /// Runs until `shutdown` completes or the node drops every handle and the event stream.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let mut redial_tick = tokio::time::interval(REDIAL_TICK);
        redial_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        // A local sender, so a reserved permit does not borrow `self`.
        let events = self.events.clone();
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                command = self.commands.recv() => match command {
                    Some(command) => self.handle_command(command),
                    None => break,
                },
                permit = events.reserve(), if !self.outbox.is_empty() => match permit {
                    Ok(permit) => {
                        if let Some(event) = self.outbox.pop_front() {
                            permit.send(event);
                        }
                    }
                    Err(_) => break,
                },
                event = self.swarm.select_next_some(), if self.outbox.len() < EVENT_QUEUE => {
                    self.handle_swarm_event(event);
                }
                _ = redial_tick.tick() => self.handle_redial_tick(),
            }
        }
        tracing::debug!("network event loop stopped");
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Publish { data, done } => {
                let result = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(self.topic.clone(), data)
                    .map(drop)
                    .map_err(|error| match error {
                        gossipsub::PublishError::NoPeersSubscribedToTopic
                        | gossipsub::PublishError::AllQueuesFull(_) => NetError::NoPeers,
                        source => NetError::Publish { source },
                    });
                // The caller may have given up waiting; nothing to undo then.
                let _ = done.send(result);
            }
            Command::Report { token, acceptance } => {
                let acceptance = match acceptance {
                    Acceptance::Accept => gossipsub::MessageAcceptance::Accept,
                    Acceptance::Ignore => gossipsub::MessageAcceptance::Ignore,
                    Acceptance::Reject => gossipsub::MessageAcceptance::Reject,
                };
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&token.id, &token.source, acceptance);
            }
            Command::AllowPeer { peer, addresses } => {
                self.swarm.behaviour_mut().members_only.allow_peer(peer);
                if addresses.is_empty() {
                    return;
                }
                for address in &addresses {
                    self.swarm.add_peer_address(peer, address.clone());
                }
                let redial = self.redials.entry(peer).or_insert_with(Redial::new);
                // Keep addresses learned by identify; add the card's new ones.
                for address in addresses {
                    if !redial.addresses.contains(&address) {
                        redial.addresses.push(address);
                    }
                }
            }
            Command::DisallowPeer { peer } => {
                self.redials.remove(&peer);
                // The allow-list closes existing connections of a peer it no longer allows.
                self.swarm.behaviour_mut().members_only.disallow_peer(peer);
            }
            Command::SyncRequest { peer, data, done } => {
                let request_id = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_request(&peer, SyncBytes::from(data));
                self.pending_requests.insert(request_id, done);
            }
            Command::SyncReply { token, data } => {
                if let Some(channel) = self.pending_replies.remove(&token.0)
                    && self
                        .swarm
                        .behaviour_mut()
                        .sync
                        .send_response(channel, SyncBytes::from(data))
                        .is_err()
                {
                    tracing::debug!("sync requester left before the answer");
                }
            }
            Command::ListenAddresses { done } => {
                let _ = done.send(self.listen_addresses.clone());
            }
            Command::SetExternal { addresses } => {
                self.external = addresses;
                self.refresh_external();
            }
            Command::RedialNow => {
                let now = Instant::now();
                for redial in self.redials.values_mut() {
                    redial.backoff = MIN_REDIAL_BACKOFF;
                    redial.next_attempt = now;
                }
            }
        }
    }

    /// Makes the swarm's external addresses (what identify sends) the configured ones,
    /// with port 0 replaced by the ports bound.
    fn refresh_external(&mut self) {
        let ports: Vec<u16> = self
            .listen_addresses
            .iter()
            .flat_map(|address| address.iter())
            .filter_map(|protocol| match protocol {
                Protocol::Tcp(port) if port != 0 => Some(port),
                _ => None,
            })
            .collect();
        let wanted: Vec<Multiaddr> = self
            .external
            .iter()
            .flat_map(|address| with_ports(address, &ports))
            .collect();
        let current: Vec<Multiaddr> = self.swarm.external_addresses().cloned().collect();
        for address in &current {
            if !wanted.contains(address) {
                self.swarm.remove_external_address(address);
            }
        }
        for address in wanted {
            if !current.contains(&address) {
                self.swarm.add_external_address(address);
            }
        }
    }

    fn handle_redial_tick(&mut self) {
        let now = Instant::now();
        for (peer, redial) in &mut self.redials {
            if self.connected.contains(peer) || redial.next_attempt > now {
                continue;
            }
            let options = DialOpts::peer_id(*peer)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .addresses(redial.addresses.clone())
                .build();
            if let Err(error) = self.swarm.dial(options) {
                tracing::trace!(peer = %short(peer), error = dial_error_kind(&error), "dial not started");
            } else {
                tracing::trace!(peer = %short(peer), "dialling member");
            }
            redial.schedule(now);
        }
    }

    /// A connection that lasted resets the redial delay; one the member closed at once
    /// keeps backing off, and the node hears of it once.
    fn handle_last_connection_closed(&mut self, peer: PeerId) {
        let Some(redial) = self.redials.get_mut(&peer) else {
            return;
        };
        let now = Instant::now();
        let lasted = redial
            .connected_since
            .take()
            .is_some_and(|since| now.duration_since(since) >= STABLE_CONNECTION);
        if lasted {
            redial.backoff = MIN_REDIAL_BACKOFF;
            redial.told_closed_early = false;
        }
        let tell = !lasted && !redial.told_closed_early;
        if tell {
            redial.told_closed_early = true;
        }
        redial.schedule(now);
        if tell {
            self.emit(NetEvent::PeerClosedEarly(peer));
        }
    }

    fn emit(&mut self, event: NetEvent) {
        self.outbox.push_back(event);
    }

    fn handle_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        if let Some(metrics) = &self.libp2p_metrics {
            use libp2p::metrics::Recorder;
            metrics.record(&event);
            if let SwarmEvent::Behaviour(behaviour) = &event {
                match behaviour {
                    BehaviourEvent::Identify(event) => metrics.record(event),
                    BehaviourEvent::Ping(event) => metrics.record(event),
                    BehaviourEvent::Gossipsub(event) => metrics.record(event),
                    _ => {}
                }
            }
        }
        match event {
            SwarmEvent::Behaviour(event) => self.handle_behaviour_event(event),
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::debug!("listening on a new address");
                self.listen_addresses.push(address);
                self.refresh_external();
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addresses.retain(|known| *known != address);
                self.refresh_external();
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                ..
            } => {
                if num_established.get() == 1 {
                    if let Some(redial) = self.redials.get_mut(&peer_id) {
                        redial.connected_since = Some(Instant::now());
                    }
                    self.connected.insert(peer_id);
                    tracing::debug!(peer = %short(&peer_id), "member connected");
                    self.emit(NetEvent::PeerConnected(peer_id));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                ..
            } => {
                if num_established == 0 {
                    self.connected.remove(&peer_id);
                    tracing::debug!(peer = %short(&peer_id), "member disconnected");
                    self.emit(NetEvent::PeerDisconnected(peer_id));
                    self.handle_last_connection_closed(peer_id);
                }
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                tracing::trace!(
                    error = listen_error_kind(&error),
                    "inbound connection refused or failed"
                );
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::trace!(
                    peer = ?peer_id.map(|p| short(&p)),
                    error = dial_error_kind(&error),
                    "dial failed"
                );
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::warn!(%error, "a listener failed");
            }
            SwarmEvent::ListenerClosed { reason, .. } => {
                tracing::debug!(ok = reason.is_ok(), "a listener closed");
            }
            // Dialing, IncomingConnection, NewExternalAddrCandidate and friends carry nothing
            // the node acts on.
            other => tracing::trace!(event = ?std::mem::discriminant(&other), "swarm event"),
        }
    }

    fn handle_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::MembersOnly(never) => match never {},
            BehaviourEvent::Limits(never) => match never {},
            BehaviourEvent::Gossipsub(event) => self.handle_gossip_event(event),
            BehaviourEvent::Sync(event) => self.handle_sync_event(event),
            BehaviourEvent::Identify(event) => match event {
                identify::Event::Received { peer_id, info, .. } => {
                    // A member that restarted on another port is redialled where it
                    // listens now, not where its card said it did.
                    if let Some(redial) = self.redials.get_mut(&peer_id)
                        && !info.listen_addrs.is_empty()
                    {
                        for address in &info.listen_addrs {
                            self.swarm.add_peer_address(peer_id, address.clone());
                        }
                        let mut addresses = info.listen_addrs;
                        addresses.retain(|address| !redial.addresses.contains(address));
                        addresses.append(&mut redial.addresses);
                        addresses.truncate(MAX_ADDRESSES_PER_PEER);
                        redial.addresses = addresses;
                    }
                    tracing::trace!(peer = %short(&peer_id), "identify received");
                }
                identify::Event::Sent { .. } | identify::Event::Pushed { .. } => {}
                identify::Event::Error { peer_id, error, .. } => {
                    tracing::debug!(peer = %short(&peer_id), %error, "identify failed");
                }
            },
            BehaviourEvent::Ping(event) => {
                if let Err(error) = event.result {
                    tracing::debug!(peer = %short(&event.peer), %error, "ping failed");
                }
            }
        }
    }

    fn handle_gossip_event(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => self.emit(NetEvent::Message {
                token: GossipToken {
                    id: message_id,
                    source: propagation_source,
                },
                source: propagation_source,
                data: message.data,
            }),
            gossipsub::Event::Subscribed { peer_id, .. } => {
                tracing::trace!(peer = %short(&peer_id), "peer subscribed");
            }
            gossipsub::Event::Unsubscribed { peer_id, .. } => {
                tracing::trace!(peer = %short(&peer_id), "peer unsubscribed");
            }
            gossipsub::Event::GossipsubNotSupported { peer_id } => {
                tracing::debug!(peer = %short(&peer_id), "peer does not speak gossipsub");
            }
            gossipsub::Event::SlowPeer { peer_id, .. } => {
                tracing::debug!(peer = %short(&peer_id), "peer is slow to take messages");
            }
        }
    }

    fn handle_sync_event(&mut self, event: request_response::Event<SyncBytes, SyncBytes>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request_id,
                    request,
                    channel,
                } => {
                    if self.pending_replies.len() >= MAX_PENDING_SYNC_REPLIES {
                        tracing::debug!(peer = %short(&peer), "too many sync requests pending, dropping one");
                        return;
                    }
                    self.pending_replies.insert(request_id, channel);
                    self.emit(NetEvent::SyncRequest {
                        peer,
                        data: request.into_vec(),
                        reply: SyncReplyToken(request_id),
                    });
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(done) = self.pending_requests.remove(&request_id) {
                        let _ = done.send(Ok(response.into_vec()));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(done) = self.pending_requests.remove(&request_id) {
                    let _ = done.send(Err(NetError::Sync {
                        source: Box::new(error),
                    }));
                }
            }
            request_response::Event::InboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                self.pending_replies.remove(&request_id);
                tracing::debug!(peer = %short(&peer), %error, "inbound sync failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }
}

/// Tor's SOCKS port when configured (tried first), then TCP (for listening, and for
/// direct dials unless every dial goes through tor); noise and yamux over both. Inbound
/// connections and direct dials must finish their handshake within
/// [`HANDSHAKE_TIMEOUT`]; dials through tor get [`TOR_DIAL_TIMEOUT`], since reaching an
/// onion service takes seconds.
fn transport(
    config: &NetConfig,
) -> Result<libp2p::core::transport::Boxed<(PeerId, StreamMuxerBox)>, NetError> {
    use libp2p::Transport as _;
    use libp2p::core::transport::timeout::TransportTimeout;
    use libp2p::core::upgrade::Version;
    let raw_tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true));
    let every_dial_through_tor = config
        .tor
        .as_ref()
        .is_some_and(|tor| tor.dialing == TorDialing::Everything);
    // Names on cards (`/dns4/node.example.org/tcp/7447`) are resolved by the host's
    // resolver, unless every dial goes through tor: then no resolver exists at all.
    let inbound = if config.inbound_through_tor {
        TOR_INBOUND_HANDSHAKE_TIMEOUT
    } else {
        HANDSHAKE_TIMEOUT
    };
    let tcp = if every_dial_through_tor {
        upgrade_and_limit(raw_tcp, &config.keypair, inbound)?
    } else {
        match libp2p::dns::tokio::Transport::system(raw_tcp) {
            Ok(resolving) => upgrade_and_limit(resolving, &config.keypair, inbound)?,
            Err(error) => {
                tracing::warn!(%error, "no DNS resolver configuration: members announced by name cannot be dialled");
                upgrade_and_limit(
                    tcp::tokio::Transport::new(tcp::Config::default().nodelay(true)),
                    &config.keypair,
                    inbound,
                )?
            }
        }
    };
    let Some(tor) = config.tor.clone() else {
        return Ok(tcp);
    };
    let socks = SocksTransport::new(tor)
        .upgrade(Version::V1Lazy)
        .authenticate(noise::Config::new(&config.keypair).map_err(NetError::config)?)
        .multiplex(yamux::Config::default());
    let socks = TransportTimeout::with_outgoing_timeout(socks, TOR_DIAL_TIMEOUT)
        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
        .boxed();
    Ok(socks
        .or_transport(tcp)
        .map(|either, _| either.into_inner())
        .boxed())
}

/// Noise and yamux over `transport`: a dial within [`HANDSHAKE_TIMEOUT`], an inbound
/// handshake within `inbound`.
fn upgrade_and_limit<T>(
    transport: T,
    keypair: &libp2p::identity::Keypair,
    inbound: std::time::Duration,
) -> Result<libp2p::core::transport::Boxed<(PeerId, StreamMuxerBox)>, NetError>
where
    T: libp2p::Transport + Send + Unpin + 'static,
    T::Output: futures::AsyncRead + futures::AsyncWrite + Unpin + Send + 'static,
    T::Error: Send + Sync + 'static,
    T::Dial: Send + 'static,
    T::ListenerUpgrade: Send + 'static,
{
    use libp2p::Transport as _;
    let upgraded = transport
        .upgrade(libp2p::core::upgrade::Version::V1Lazy)
        .authenticate(noise::Config::new(keypair).map_err(NetError::config)?)
        .multiplex(yamux::Config::default());
    Ok(
        libp2p::core::transport::timeout::TransportTimeout::with_ingoing_timeout(
            libp2p::core::transport::timeout::TransportTimeout::with_outgoing_timeout(
                upgraded,
                HANDSHAKE_TIMEOUT,
            ),
            inbound,
        )
        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
        .boxed(),
    )
}

/// `address` with a TCP port 0 replaced by each of `ports` (the ports actually bound);
/// unchanged when it names a port. Unspecified addresses (`0.0.0.0`, `::`) are nobody's
/// to dial and are dropped.
pub fn with_ports(address: &Multiaddr, ports: &[u16]) -> Vec<Multiaddr> {
    let unspecified = address.iter().any(|protocol| match protocol {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    });
    if unspecified {
        return Vec::new();
    }
    if !address.iter().any(|protocol| protocol == Protocol::Tcp(0)) {
        return vec![address.clone()];
    }
    ports
        .iter()
        .map(|port| {
            address
                .iter()
                .map(|protocol| match protocol {
                    Protocol::Tcp(0) => Protocol::Tcp(*port),
                    other => other,
                })
                .collect()
        })
        .collect()
}

/// Fails when a configured TCP port cannot be bound: taken by another program, or an
/// address that is not this host's. The test socket is closed again at once.
fn probe_listen_address(index: usize, address: &Multiaddr) -> Result<(), NetError> {
    let mut ip = None;
    let mut port = None;
    for protocol in address.iter() {
        match protocol {
            Protocol::Ip4(v4) => ip = Some(std::net::IpAddr::V4(v4)),
            Protocol::Ip6(v6) => ip = Some(std::net::IpAddr::V6(v6)),
            Protocol::Tcp(tcp) => port = Some(tcp),
            _ => {}
        }
    }
    let (Some(ip), Some(port)) = (ip, port) else {
        return Ok(());
    };
    if port == 0 {
        return Ok(());
    }
    match std::net::TcpListener::bind((ip, port)) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
            Err(NetError::AddressInUse { index, port })
        }
        Err(error) => Err(NetError::Listen {
            index,
            source: Box::new(error),
        }),
    }
}

/// A PeerId shortened for debug logs: enough to tell members apart, not a full identifier.
fn short(peer: &PeerId) -> String {
    let text = peer.to_base58();
    text[text.len().saturating_sub(8)..].to_owned()
}

/// What went wrong with a dial, without libp2p's text (which names the addresses tried).
fn dial_error_kind(error: &libp2p::swarm::DialError) -> &'static str {
    use libp2p::swarm::DialError;
    match error {
        DialError::LocalPeerId { .. } => "dialled itself",
        DialError::NoAddresses => "no address known",
        DialError::DialPeerConditionFalse(_) => "already connected or dialling",
        DialError::Aborted => "aborted",
        DialError::WrongPeerId { .. } => "another key answered",
        DialError::Denied { .. } => "refused by a local limit",
        DialError::Transport(_) => "connection failed",
    }
}

/// What went wrong with an inbound connection, without libp2p's text (which names the
/// remote address).
fn listen_error_kind(error: &libp2p::swarm::ListenError) -> &'static str {
    use libp2p::swarm::ListenError;
    match error {
        ListenError::Aborted => "aborted",
        ListenError::WrongPeerId { .. } => "another key answered",
        ListenError::LocalPeerId { .. } => "dialled by itself",
        ListenError::Denied { .. } => "refused (not a member, or a limit)",
        ListenError::Transport(_) => "handshake failed",
    }
}
