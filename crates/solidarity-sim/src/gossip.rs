//! The gossip model: gossipsub's dissemination without libp2p.
//!
//! - Each node keeps a **mesh** of up to `mesh_degree` of its connected peers (its own
//!   choice; refilled at every heartbeat when a peer went away).
//! - A message is pushed eagerly to the mesh once the application accepted it (a node's
//!   own message at once); messages ignored or rejected are never forwarded.
//! - Every `heartbeat_ms` a node sends **IHAVE** with the ids it accepted during the last
//!   `history_heartbeats` heartbeats to `lazy_degree` connected peers outside its mesh; a
//!   peer that has not seen an id answers **IWANT**, and gets the message.
//! - Ids are remembered for `seen_ttl_ms` (gossipsub's duplicate cache): a copy arriving
//!   within it is dropped before the application sees it; one arriving later is handed to
//!   the application again, which must be idempotent.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use rand::Rng;
use rand::seq::IteratorRandom;

use crate::network::NodeId;
use crate::queue::SimTime;

/// The gossip id of a message: a hash of its bytes (as `solidarity-net` uses).
pub type GossipId = [u8; 32];

/// How the gossip layer behaves.
#[derive(Clone, Copy, Debug)]
pub struct GossipConfig {
    /// Peers a message is pushed to eagerly.
    pub mesh_degree: usize,
    /// Peers outside the mesh sent IHAVE at each heartbeat.
    pub lazy_degree: usize,
    /// Period of the heartbeat.
    pub heartbeat_ms: u64,
    /// Heartbeats for which an accepted id is advertised in IHAVE.
    pub history_heartbeats: usize,
    /// How long an id is remembered as seen.
    pub seen_ttl_ms: u64,
}

impl Default for GossipConfig {
    fn default() -> Self {
        Self {
            mesh_degree: 4,
            lazy_degree: 4,
            heartbeat_ms: 1_000,
            history_heartbeats: 3,
            seen_ttl_ms: 60_000,
        }
    }
}

/// What travels between gossip layers.
#[derive(Clone, Debug)]
pub enum GossipWire {
    /// A full message.
    Message(Arc<[u8]>),
    /// Ids the sender accepted recently.
    IHave(Vec<GossipId>),
    /// Ids the sender wants in full.
    IWant(Vec<GossipId>),
}

/// A message the application must judge before the gossip layer forwards it.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// Its gossip id.
    pub id: GossipId,
    /// The peer that sent it.
    pub from: NodeId,
    /// Its bytes.
    pub bytes: Arc<[u8]>,
}

/// Messages to send, and at most one delivery to the application.
#[derive(Debug, Default)]
pub struct GossipStep {
    /// To send, per peer.
    pub send: Vec<(NodeId, GossipWire)>,
    /// A new message for the application.
    pub deliver: Option<Delivery>,
}

/// Counters of one node's gossip layer.
#[derive(Clone, Copy, Debug, Default)]
pub struct GossipCounts {
    /// Full messages received, duplicates included.
    pub received: u64,
    /// Full messages dropped as already seen.
    pub duplicates: u64,
    /// IWANT requests answered.
    pub iwant_served: u64,
}

/// One node's gossip layer.
pub struct GossipNode {
    config: GossipConfig,
    connected: BTreeSet<NodeId>,
    mesh: BTreeSet<NodeId>,
    seen: HashMap<GossipId, SimTime>,
    seen_order: VecDeque<(SimTime, GossipId)>,
    awaiting_verdict: HashMap<GossipId, NodeId>,
    accepted: HashMap<GossipId, Arc<[u8]>>,
    history: VecDeque<Vec<GossipId>>,
    counts: GossipCounts,
}

impl GossipNode {
    /// A layer with no peer yet.
    pub fn new(config: GossipConfig) -> Self {
        Self {
            config,
            connected: BTreeSet::new(),
            mesh: BTreeSet::new(),
            seen: HashMap::new(),
            seen_order: VecDeque::new(),
            awaiting_verdict: HashMap::new(),
            accepted: HashMap::new(),
            history: VecDeque::from([Vec::new()]),
            counts: GossipCounts::default(),
        }
    }

    /// The gossip id of `bytes`.
    pub fn id_of(bytes: &[u8]) -> GossipId {
        solidarity_proto::envelope::gossip_message_id(bytes)
    }

    /// Counters so far.
    pub fn counts(&self) -> GossipCounts {
        self.counts
    }

    /// The current mesh.
    pub fn mesh(&self) -> &BTreeSet<NodeId> {
        &self.mesh
    }

    /// A connection to `peer` opened; it joins the mesh if there is room.
    pub fn peer_up(&mut self, peer: NodeId) {
        self.connected.insert(peer);
        if self.mesh.len() < self.config.mesh_degree {
            self.mesh.insert(peer);
        }
    }

    /// The connection to `peer` closed.
    pub fn peer_down(&mut self, peer: NodeId) {
        self.connected.remove(&peer);
        self.mesh.remove(&peer);
    }

    fn mark_seen(&mut self, id: GossipId, now: SimTime) -> bool {
        if self.seen.contains_key(&id) {
            return false;
        }
        self.seen.insert(id, now);
        self.seen_order.push_back((now, id));
        true
    }

    fn push_to_mesh(&self, bytes: &Arc<[u8]>, except: Option<NodeId>) -> Vec<(NodeId, GossipWire)> {
        self.mesh
            .iter()
            .filter(|&&peer| Some(peer) != except)
            .map(|&peer| (peer, GossipWire::Message(bytes.clone())))
            .collect()
    }

    fn remember_accepted(&mut self, id: GossipId, bytes: Arc<[u8]>) {
        self.accepted.insert(id, bytes);
        if let Some(current) = self.history.back_mut() {
            current.push(id);
        }
    }

    /// Publishes a message of this node: pushed to the mesh at once.
    pub fn publish(&mut self, bytes: Arc<[u8]>, now: SimTime) -> Vec<(NodeId, GossipWire)> {
        let id = Self::id_of(&bytes);
        self.mark_seen(id, now);
        let send = self.push_to_mesh(&bytes, None);
        self.remember_accepted(id, bytes);
        send
    }

    /// Handles what `from` sent.
    pub fn receive(&mut self, from: NodeId, wire: GossipWire, now: SimTime) -> GossipStep {
        match wire {
            GossipWire::Message(bytes) => {
                self.counts.received += 1;
                let id = Self::id_of(&bytes);
                if !self.mark_seen(id, now) {
                    self.counts.duplicates += 1;
                    return GossipStep::default();
                }
                self.awaiting_verdict.insert(id, from);
                GossipStep {
                    send: Vec::new(),
                    deliver: Some(Delivery { id, from, bytes }),
                }
            }
            GossipWire::IHave(ids) => {
                let wanted: Vec<GossipId> = ids
                    .into_iter()
                    .filter(|id| !self.seen.contains_key(id))
                    .collect();
                let send = if wanted.is_empty() {
                    Vec::new()
                } else {
                    vec![(from, GossipWire::IWant(wanted))]
                };
                GossipStep {
                    send,
                    deliver: None,
                }
            }
            GossipWire::IWant(ids) => {
                let send: Vec<(NodeId, GossipWire)> = ids
                    .iter()
                    .filter_map(|id| self.accepted.get(id))
                    .map(|bytes| (from, GossipWire::Message(bytes.clone())))
                    .collect();
                self.counts.iwant_served += send.len() as u64;
                GossipStep {
                    send,
                    deliver: None,
                }
            }
        }
    }

    /// The application's verdict on a delivered message: accepted ones are forwarded to
    /// the mesh (not back to their sender) and advertised; the others go nowhere.
    pub fn verdict(&mut self, delivery: &Delivery, accept: bool) -> Vec<(NodeId, GossipWire)> {
        if self.awaiting_verdict.remove(&delivery.id).is_none() || !accept {
            return Vec::new();
        }
        let send = self.push_to_mesh(&delivery.bytes, Some(delivery.from));
        self.remember_accepted(delivery.id, delivery.bytes.clone());
        send
    }

    /// The heartbeat: refill the mesh, advertise recent ids, forget old ones.
    pub fn heartbeat(&mut self, now: SimTime, rng: &mut impl Rng) -> Vec<(NodeId, GossipWire)> {
        if self.mesh.len() < self.config.mesh_degree {
            let room = self.config.mesh_degree - self.mesh.len();
            let candidates = self
                .connected
                .iter()
                .filter(|peer| !self.mesh.contains(peer))
                .copied()
                .choose_multiple(rng, room);
            self.mesh.extend(candidates);
        }
        let advertised: Vec<GossipId> = self.history.iter().flatten().copied().collect();
        let mut send = Vec::new();
        if !advertised.is_empty() {
            let lazy = self
                .connected
                .iter()
                .filter(|peer| !self.mesh.contains(peer))
                .copied()
                .choose_multiple(rng, self.config.lazy_degree);
            send.extend(
                lazy.into_iter()
                    .map(|peer| (peer, GossipWire::IHave(advertised.clone()))),
            );
        }
        self.history.push_back(Vec::new());
        while self.history.len() > self.config.history_heartbeats {
            self.history.pop_front();
        }
        let horizon = now.saturating_sub(self.config.seen_ttl_ms);
        while let Some(&(at, id)) = self.seen_order.front() {
            if at >= horizon {
                break;
            }
            self.seen_order.pop_front();
            self.seen.remove(&id);
            self.accepted.remove(&id);
            self.awaiting_verdict.remove(&id);
        }
        send
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::rng;

    fn message(text: &str) -> Arc<[u8]> {
        Arc::from(text.as_bytes())
    }

    #[test]
    fn a_message_is_forwarded_once_accepted_and_never_when_refused() {
        let mut node = GossipNode::new(GossipConfig::default());
        for peer in 1..=6 {
            node.peer_up(NodeId(peer));
        }
        assert_eq!(node.mesh().len(), 4);
        let step = node.receive(NodeId(1), GossipWire::Message(message("a")), 0);
        let delivery = step.deliver.expect("new message delivered");
        assert!(step.send.is_empty(), "nothing forwarded before the verdict");
        let forwarded = node.verdict(&delivery, true);
        assert_eq!(forwarded.len(), 3, "mesh minus the sender");
        assert!(forwarded.iter().all(|(peer, _)| *peer != NodeId(1)));
        let again = node.receive(NodeId(2), GossipWire::Message(message("a")), 1);
        assert!(again.deliver.is_none());
        assert_eq!(node.counts().duplicates, 1);

        let bad = node
            .receive(NodeId(2), GossipWire::Message(message("b")), 2)
            .deliver
            .expect("delivered");
        assert!(node.verdict(&bad, false).is_empty());
        let mut rng = rng(1);
        let advertised = node.heartbeat(1_000, &mut rng);
        for (peer, wire) in &advertised {
            assert!(!node.mesh().contains(peer));
            let GossipWire::IHave(ids) = wire else {
                panic!("heartbeat sends IHAVE only");
            };
            assert_eq!(
                ids,
                &vec![GossipNode::id_of(b"a")],
                "the refused one is not advertised"
            );
        }
        assert_eq!(
            advertised.len(),
            2,
            "the two connected peers outside the mesh"
        );
    }

    #[test]
    fn ihave_brings_a_missed_message_through_iwant() {
        let mut holder = GossipNode::new(GossipConfig::default());
        let mut missing = GossipNode::new(GossipConfig::default());
        holder.peer_up(NodeId(1));
        missing.peer_up(NodeId(0));
        let send = holder.publish(message("m"), 0);
        assert_eq!(send.len(), 1);
        let id = GossipNode::id_of(b"m");
        let step = missing.receive(NodeId(0), GossipWire::IHave(vec![id]), 10);
        let [(peer, GossipWire::IWant(ids))] = &step.send[..] else {
            panic!("IWANT expected, got {:?}", step.send);
        };
        assert_eq!((*peer, ids.clone()), (NodeId(0), vec![id]));
        let served = holder.receive(NodeId(1), GossipWire::IWant(ids.clone()), 20);
        let [(_, GossipWire::Message(bytes))] = &served.send[..] else {
            panic!("the message expected");
        };
        assert!(
            missing
                .receive(NodeId(0), GossipWire::Message(bytes.clone()), 30)
                .deliver
                .is_some()
        );
        let known = missing.receive(NodeId(0), GossipWire::IHave(vec![id]), 40);
        assert!(known.send.is_empty(), "a seen id is not wanted again");
    }

    #[test]
    fn the_seen_cache_forgets_after_its_ttl_and_the_mesh_refills() {
        let config = GossipConfig::default();
        let mut node = GossipNode::new(config);
        let mut rng = rng(2);
        for peer in 1..=5 {
            node.peer_up(NodeId(peer));
        }
        let first = node.receive(NodeId(1), GossipWire::Message(message("x")), 0);
        assert!(first.deliver.is_some());
        node.heartbeat(config.seen_ttl_ms - 1, &mut rng);
        assert!(
            node.receive(
                NodeId(2),
                GossipWire::Message(message("x")),
                config.seen_ttl_ms - 1
            )
            .deliver
            .is_none()
        );
        node.heartbeat(config.seen_ttl_ms + 1, &mut rng);
        assert!(
            node.receive(
                NodeId(2),
                GossipWire::Message(message("x")),
                config.seen_ttl_ms + 2
            )
            .deliver
            .is_some(),
            "a replay after the cache is the application's to judge"
        );
        let gone = *node.mesh().iter().next().expect("mesh");
        node.peer_down(gone);
        assert_eq!(node.mesh().len(), 3);
        node.heartbeat(config.seen_ttl_ms + 1_000, &mut rng);
        assert_eq!(node.mesh().len(), 4, "refilled from the fifth peer");
    }
}
