//! The driver: N real engines, each over its own [`MemoryStore`], behind a gossip layer,
//! on the seeded network and the virtual clock. It decides nothing about the protocol: it
//! feeds inputs and carries out outputs, as the daemon's actor does.
//!
//! - Writes are applied to the node's store at once, then completed ([`Input::WriteDone`]).
//! - Timers go on the virtual clock, in the node's local time (clock skew included); a
//!   later schedule of the same timer replaces the earlier one.
//! - Publishes enter the gossip layer; a gossip message is handed to the engine once, and
//!   forwarded only when its verdict is accept.
//! - Sync requests and answers travel as messages with latency; a request that is lost,
//!   whose answer is lost, or whose link goes down fails after [`SimConfig::sync_timeout_ms`]
//!   (or at once when the link is found down at arrival), as a request-response would.
//! - A connection between two nodes is open while their link is up, both daemons run and
//!   each admits the other's key (the engine's `Allow` / `Disallow`).
//! - A stopped node keeps its store and its own-chain record only; started again, its
//!   engine reloads what trust needs from the store, as the daemon does.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use rand::Rng;
use rand::rngs::StdRng;
use solidarity_engine::budget::Limits;
use solidarity_engine::canary::CanaryRules;
use solidarity_engine::engine::{DEFAULT_CANARY_RULES, OwnCanary};
use solidarity_engine::{
    Acceptance, AnswerToken, Command, CommandToken, Compromised, Engine, EngineConfig, GossipToken,
    Input, ListedKey, Loaded, Notice, Output, Reply, SyncFailed, SyncRound, Timer, WriteFailed,
    WriteOutcome, load,
};
use solidarity_proto::payload::Body;
use solidarity_proto::payload::{KIND_NODE_CERT, KIND_REVOCATION, KIND_VOUCH};
use solidarity_proto::{AuthorKey, MessageId};
use solidarity_store::{InsertOutcome, MemoryStore, Store};

use crate::federation::Federation;
use crate::gossip::{Delivery, GossipConfig, GossipNode, GossipWire};
use crate::network::{LinkChange, Network, NetworkConfig, NodeId, PartitionId};
use crate::queue::{EventQueue, SimTime};
use crate::seed;

/// What a restarted node reads from its data dir besides its store: its own-chain record
/// and the settled revocations.
type Restart = (Option<(u64, Option<MessageId>)>, BTreeSet<MessageId>);

/// How often a simulated node sweeps expired messages, as the daemon does.
const EXPIRY_INTERVAL_MS: u64 = 60_000;

mod drive;

/// The engine of a simulated node.
pub type SimEngine = Engine<NodeId, Arc<MemoryStore>>;

/// How a simulation runs.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Number of nodes, all members of one federation.
    pub nodes: usize,
    /// The network model.
    pub network: NetworkConfig,
    /// The gossip model.
    pub gossip: GossipConfig,
    /// Per-member budgets of every engine.
    pub limits: Limits,
    /// Statements kept per signer.
    pub statements_per_signer: usize,
    /// Time between periodic syncs of an engine.
    pub sync_interval_ms: u64,
    /// Longest a received write waits for its flush.
    pub flush_interval_ms: u64,
    /// When a sync request whose request or answer was lost fails.
    pub sync_timeout_ms: u64,
    /// The Unix time (ms) at simulation time 0: what unskewed clocks read at the start.
    pub epoch_ms: u64,
    /// How every engine reads canaries (`canary_grace_secs`, `canary_max_interval_secs`).
    pub canary_rules: CanaryRules,
}

impl SimConfig {
    /// Defaults for `nodes` nodes: budgets as the daemon's defaults, a sync every 30 s.
    pub fn new(nodes: usize) -> Self {
        Self {
            nodes,
            network: NetworkConfig::default(),
            gossip: GossipConfig::default(),
            limits: Limits {
                messages_per_minute: 60,
                bytes_per_minute: 1024 * 1024,
                stored_bytes: 64 * 1024 * 1024,
            },
            statements_per_signer: 8,
            sync_interval_ms: 30_000,
            flush_interval_ms: 1_000,
            sync_timeout_ms: 10_000,
            epoch_ms: 1_800_000_000_000,
            canary_rules: DEFAULT_CANARY_RULES,
        }
    }
}

/// What travels between nodes.
#[derive(Clone, Debug)]
enum NetMessage {
    Gossip(GossipWire),
    SyncRequest { round: SyncRound, bytes: Arc<[u8]> },
    SyncPage { round: SyncRound, bytes: Arc<[u8]> },
}

enum Event {
    Net {
        from: NodeId,
        to: NodeId,
        message: NetMessage,
    },
    SyncFailed {
        requester: NodeId,
        incarnation: u64,
        responder: NodeId,
        round: SyncRound,
    },
    Timer {
        node: NodeId,
        timer: Timer,
        generation: u64,
    },
    Heartbeat(NodeId),
}

/// One simulated node: its engine, store and gossip layer, and what its admin saw.
pub struct SimNode {
    /// The engine.
    pub engine: SimEngine,
    /// Its store.
    pub store: Arc<MemoryStore>,
    gossip: GossipNode,
    timers: HashMap<Timer, u64>,
    next_token: u64,
    deliveries: HashMap<GossipToken, Delivery>,
    answers: HashMap<AnswerToken, (NodeId, SyncRound)>,
    admitted: HashSet<NodeId>,
    /// Messages this node signed and acknowledged to its admin, with when.
    pub acknowledged: Vec<(SimTime, MessageId)>,
    /// Commands refused, with why.
    pub refused: Vec<String>,
    /// What the engine told the admin, with when.
    pub notices: Vec<(SimTime, Notice)>,
    /// Gossip verdicts given: (accepted, ignored, rejected).
    pub verdicts: (u64, u64, u64),
    /// Sync requests sent.
    pub sync_requests: u64,
    /// The highest seq it recorded as signed (`DATA/own-chain`), kept across restarts.
    own_head: Option<(u64, Option<MessageId>)>,
    /// The revocations it recorded as settled (`DATA/settled-revocations`), kept across
    /// restarts.
    settled: BTreeSet<MessageId>,
    /// Whether its daemon runs.
    running: bool,
    /// Starts so far: what a stopped daemon had in flight does not reach the next one.
    incarnation: u64,
}

/// Figures of a run so far.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimCounts {
    /// Events run.
    pub events: u64,
    /// Engine inputs handled.
    pub inputs: u64,
    /// Messages sent on the network (gossip and sync).
    pub sent: u64,
    /// Lost to the loss rate.
    pub lost: u64,
    /// Dropped on a down link.
    pub cut: u64,
    /// Full gossip messages received, duplicates included.
    pub gossip_received: u64,
    /// Of those, dropped as duplicates by the gossip layer.
    pub gossip_duplicates: u64,
    /// Sync requests sent.
    pub sync_requests: u64,
}

/// A federation of simulated nodes.
pub struct Simulation {
    config: SimConfig,
    /// The federation's keys and members.
    pub federation: Federation,
    /// The network model.
    pub network: Network,
    queue: EventQueue<Event>,
    rng: StdRng,
    nodes: Vec<SimNode>,
    node_of: HashMap<AuthorKey, NodeId>,
    connected: BTreeSet<(NodeId, NodeId)>,
    events: u64,
    inputs: u64,
}

fn pair(a: NodeId, b: NodeId) -> (NodeId, NodeId) {
    if a < b { (a, b) } else { (b, a) }
}

impl Simulation {
    /// A federation of `config.nodes` members drawn from `seed`, each listing all the
    /// others, started and connected (the first syncs are under way).
    pub fn new(config: SimConfig, seed: u64) -> Self {
        let mut rng = seed::rng(seed);
        let federation = Federation::new("simulated federation", config.nodes, &mut rng);
        let network = Network::new(config.nodes, config.network, &mut rng);
        let node_of = federation
            .members
            .iter()
            .enumerate()
            .map(|(index, key)| (*key, NodeId(index)))
            .collect();
        let mut simulation = Self {
            nodes: Vec::with_capacity(config.nodes),
            config,
            federation,
            network,
            queue: EventQueue::default(),
            rng,
            node_of,
            connected: BTreeSet::new(),
            events: 0,
            inputs: 0,
        };
        for index in 0..simulation.config.nodes {
            let key = simulation.federation.keys[index].clone();
            let engine_seed = simulation.rng.r#gen();
            let store = Arc::new(MemoryStore::default());
            let engine = simulation.new_engine(key, store.clone(), None, engine_seed);
            simulation.nodes.push(SimNode {
                engine,
                store,
                gossip: GossipNode::new(simulation.config.gossip),
                timers: HashMap::new(),
                next_token: 0,
                deliveries: HashMap::new(),
                answers: HashMap::new(),
                admitted: HashSet::new(),
                acknowledged: Vec::new(),
                refused: Vec::new(),
                notices: Vec::new(),
                verdicts: (0, 0, 0),
                sync_requests: 0,
                own_head: None,
                settled: BTreeSet::new(),
                running: true,
                incarnation: 0,
            });
        }
        let listed = simulation.listed();
        for index in 0..simulation.config.nodes {
            let node = NodeId(index);
            simulation.feed(node, Input::MembersChanged(listed.clone()));
            simulation.feed(node, Input::Start);
            let offset = simulation
                .rng
                .gen_range(0..simulation.config.gossip.heartbeat_ms);
            simulation.queue.push(offset, Event::Heartbeat(node));
        }
        simulation.refresh_all_links();
        simulation
    }

    /// An engine over `store`: a new node's (`own_head` none: a fresh chain) or a
    /// restarted one's, which reloads what trust needs from its store and waits for its own
    /// chain as the daemon does.
    fn new_engine(
        &self,
        key: SigningKey,
        store: Arc<MemoryStore>,
        restart: Option<Restart>,
        engine_seed: u64,
    ) -> SimEngine {
        let restarted = restart.is_some();
        let (own_head, settled) = restart.unzip();
        let config = EngineConfig {
            federation: self.federation.id,
            limits: self.config.limits,
            statements_per_signer: self.config.statements_per_signer,
            vouch_threshold: 0,
            sync_interval_ms: self.config.sync_interval_ms,
            flush_interval_ms: self.config.flush_interval_ms,
            own_chain_recorded: own_head.flatten(),
            fresh_chain: !restarted,
            own_chain_restoring: false,
            seed: engine_seed,
            // Canaries are signed by the scenarios, not on a schedule.
            canary: OwnCanary {
                statement: "all is well".to_owned(),
                interval_ms: 0,
            },
            expiry_interval_ms: EXPIRY_INTERVAL_MS,
        };
        let loaded = if restarted {
            let kept_canaries = store
                .kept_canaries()
                .unwrap_or_default()
                .into_iter()
                .flat_map(|(_, kept)| kept);
            let envelopes: Vec<Vec<u8>> = [KIND_REVOCATION, KIND_NODE_CERT, KIND_VOUCH]
                .iter()
                .flat_map(|kind| store.by_kind(kind).unwrap_or_default())
                .chain(kept_canaries)
                .map(|stored| stored.envelope)
                .collect();
            let compromised = store
                .compromised()
                .unwrap_or_default()
                .into_iter()
                .map(|compromise| {
                    let state = Compromised {
                        detected_at: compromise.detected_at,
                        from_seq: compromise.from_seq,
                    };
                    (compromise.author, state)
                })
                .collect();
            let mut loaded = load(envelopes, compromised);
            loaded
                .statements
                .restore_settled(settled.unwrap_or_default());
            loaded
        } else {
            Loaded::default()
        };
        // Canary tokens from the engine's seed: a run replays from its seed.
        let mut tokens = engine_seed;
        let entropy = Box::new(move || {
            tokens = tokens.wrapping_add(1);
            let mut token = [0u8; 32];
            token[..8].copy_from_slice(&tokens.to_le_bytes());
            token
        });
        Engine::new(config, key, store, loaded, entropy).with_canary_rules(self.config.canary_rules)
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Simulation time now.
    pub fn now(&self) -> SimTime {
        self.queue.now()
    }

    /// What `node`'s clock reads now.
    pub fn local_now(&self, node: NodeId) -> u64 {
        self.network
            .local_time(node, self.config.epoch_ms, self.queue.now())
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there is no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// A node.
    pub fn node(&self, node: NodeId) -> &SimNode {
        &self.nodes[node.0]
    }

    /// Every node id.
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + use<> {
        (0..self.nodes.len()).map(NodeId)
    }

    /// The node holding `key`, if it is one of the federation's.
    pub fn node_of(&self, key: &AuthorKey) -> Option<NodeId> {
        self.node_of.get(key).copied()
    }

    /// The run's generator, for scenarios drawn from the same seed.
    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        self.connected.len()
    }

    /// Figures so far.
    pub fn counts(&self) -> SimCounts {
        let (sent, lost, cut) = self.network.counts();
        let mut counts = SimCounts {
            events: self.events,
            inputs: self.inputs,
            sent,
            lost,
            cut,
            ..SimCounts::default()
        };
        for node in &self.nodes {
            let gossip = node.gossip.counts();
            counts.gossip_received += gossip.received;
            counts.gossip_duplicates += gossip.duplicates;
            counts.sync_requests += node.sync_requests;
        }
        counts
    }

    /// Runs every event due up to `until` (simulation time), then sets the clock there.
    pub fn run_until(&mut self, until: SimTime) {
        while let Some((_, event)) = self.queue.pop_until(until) {
            self.events += 1;
            self.run_event(event);
        }
        self.queue.advance_to(until);
    }

    /// Runs for `duration` ms.
    pub fn run_for(&mut self, duration: u64) {
        self.run_until(self.now().saturating_add(duration));
    }

    /// Runs in steps of `step` ms until `done` holds (checked after each step) or
    /// `timeout` ms passed; returns the simulation time it took, or `None` on timeout.
    pub fn run_until_true(
        &mut self,
        step: u64,
        timeout: u64,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Option<SimTime> {
        let start = self.now();
        let deadline = start.saturating_add(timeout);
        loop {
            if done(self) {
                return Some(self.now() - start);
            }
            if self.now() >= deadline {
                return None;
            }
            self.run_until(self.now().saturating_add(step).min(deadline));
        }
    }

    /// Has `node`'s admin sign `body` (the CLI's `alert raise`, `alert update` …).
    pub fn sign(&mut self, node: NodeId, body: Body, expires_at: Option<u64>) {
        let token = CommandToken(self.next_token(node));
        self.feed(
            node,
            Input::Command {
                token,
                command: Command::Sign {
                    body: Box::new(body),
                    expires_at,
                },
            },
        );
    }

    /// Sends raw envelope bytes from `from` into the gossip layer as if `from` published
    /// them: the way a hostile member (one running modified code) pushes what its engine
    /// would never sign, such as the second branch of a fork.
    pub fn publish_raw(&mut self, from: NodeId, bytes: Vec<u8>) {
        let now = self.now();
        let sends = self.nodes[from.0].gossip.publish(Arc::from(bytes), now);
        self.send_gossip(from, sends);
    }

    /// Has `node` publish a statement someone signed elsewhere (a revocation its admin
    /// kept offline): the node judges it like a received message and relays it if valid.
    pub fn publish_statement(&mut self, node: NodeId, bytes: Vec<u8>) {
        let now = self.now();
        let step =
            self.nodes[node.0]
                .gossip
                .receive(node, GossipWire::Message(Arc::from(bytes)), now);
        if let Some(delivery) = step.deliver {
            self.deliver(node, delivery);
        }
    }

    /// Stops `node`'s daemon: its connections close and what it had in memory (gossip
    /// cache, timers, requests in flight) is gone; its store stays.
    pub fn stop(&mut self, node: NodeId) {
        let state = &mut self.nodes[node.0];
        state.running = false;
        state.incarnation += 1;
        state.timers.clear();
        state.deliveries.clear();
        state.answers.clear();
        state.admitted.clear();
        state.gossip = GossipNode::new(self.config.gossip);
        self.refresh_links_of(node);
    }

    /// Starts `node`'s daemon again over its store, as `solidarity node` does after a stop.
    pub fn start(&mut self, node: NodeId) {
        if self.nodes[node.0].running {
            return;
        }
        let key = self.federation.keys[node.0].clone();
        let store = self.nodes[node.0].store.clone();
        let own_head = self.nodes[node.0].own_head;
        let settled = self.nodes[node.0].settled.clone();
        let engine_seed = self.rng.r#gen();
        let engine = self.new_engine(key, store, Some((own_head, settled)), engine_seed);
        let state = &mut self.nodes[node.0];
        state.engine = engine;
        state.running = true;
        let listed = self.listed();
        self.feed(node, Input::MembersChanged(listed));
        self.feed(node, Input::Start);
        self.refresh_links_of(node);
    }

    /// Whether `node`'s daemon runs.
    pub fn is_running(&self, node: NodeId) -> bool {
        self.nodes[node.0].running
    }

    fn listed(&self) -> Vec<ListedKey> {
        self.federation
            .members
            .iter()
            .map(|key| ListedKey {
                key: *key,
                identity: false,
                addresses: Vec::new(),
                duress_commitment: None,
            })
            .collect()
    }

    fn refresh_links_of(&mut self, node: NodeId) {
        let neighbours = self.network.neighbours(node).to_vec();
        for other in neighbours {
            self.refresh_link(node, other);
        }
    }

    /// Takes `node` off the network, or brings it back.
    pub fn set_online(&mut self, node: NodeId, online: bool) {
        let changes = self.network.set_online(node, online);
        self.apply_link_changes(changes);
    }

    /// Cuts `cut` off from the other nodes until [`Simulation::end_partition`].
    pub fn start_partition(&mut self, cut: BTreeSet<NodeId>) -> PartitionId {
        let (id, changes) = self.network.start_partition(cut);
        self.apply_link_changes(changes);
        id
    }

    /// Ends a partition.
    pub fn end_partition(&mut self, id: PartitionId) {
        let changes = self.network.end_partition(id);
        self.apply_link_changes(changes);
    }

    /// Sets `node`'s clock `skew_ms` ahead (negative: behind). Timers already scheduled
    /// keep their simulation time.
    pub fn set_skew(&mut self, node: NodeId, skew_ms: i64) {
        self.network.set_skew(node, skew_ms);
    }

    fn next_token(&mut self, node: NodeId) -> u64 {
        let node = &mut self.nodes[node.0];
        node.next_token += 1;
        node.next_token
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::alert;

    fn run(seed: u64) -> (Vec<u64>, Vec<usize>, Vec<Vec<MessageId>>) {
        let mut config = SimConfig::new(30);
        config.network.loss = 0.05;
        let mut simulation = Simulation::new(config, seed);
        simulation.run_for(1_000);
        let cut: BTreeSet<NodeId> = (0..10).map(NodeId).collect();
        let partition = simulation.start_partition(cut);
        for node in [0, 15, 29] {
            simulation.sign(NodeId(node), alert(format!("from {node}")), None);
        }
        simulation.stop(NodeId(20));
        simulation.run_for(5_000);
        simulation.end_partition(partition);
        simulation.start(NodeId(20));
        simulation.run_for(40_000);
        let counts = simulation.counts();
        let figures = vec![
            counts.events,
            counts.inputs,
            counts.sent,
            counts.lost,
            counts.gossip_received,
            counts.sync_requests,
        ];
        let stored = simulation
            .node_ids()
            .map(|node| simulation.node(node).store.len().unwrap_or_default())
            .collect();
        let acknowledged = simulation
            .node_ids()
            .map(|node| {
                let node = simulation.node(node);
                node.acknowledged.iter().map(|(_, id)| *id).collect()
            })
            .collect();
        (figures, stored, acknowledged)
    }

    #[test]
    fn a_seed_replays_the_same_run_and_another_seed_another() {
        let first = run(5);
        assert_eq!(first, run(5));
        assert_ne!(first.0, run(6).0);
        assert!(first.1.iter().all(|&stored| stored >= 3), "{:?}", first.1);
    }
}
