//! The seeded network model: who is linked to whom, how long a message takes on a link,
//! which messages are lost, and what cuts links for a while (a partition, a node going
//! offline). Every node's clock may run ahead or behind the simulation's by a fixed skew.
//!
//! - The topology is fixed at the start: a ring (so the graph is connected) plus `dials`
//!   random links per node, each with a base latency drawn once from [`LatencyModel`].
//! - A message's delay is its link's base latency plus a uniform jitter; it is lost with
//!   probability `loss`, and dropped when its link is down at sending or at arrival.
//! - A link is up while both ends are online and no active partition separates them.
//!   Every change reports the links it took down or brought up, so that the driver tells
//!   both ends (a connection closed or opened).

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use rand::seq::SliceRandom;

use crate::queue::SimTime;

/// A node of the simulation, by index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub usize);

impl std::fmt::Display for NodeId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "n{}", self.0)
    }
}

/// Base latencies of links: at least `min_ms`, half of them under `median_ms` (an
/// exponential tail above the minimum, as on the Internet), none over `max_ms`.
#[derive(Clone, Copy, Debug)]
pub struct LatencyModel {
    /// Shortest base latency.
    pub min_ms: u64,
    /// Median base latency.
    pub median_ms: u64,
    /// Longest base latency.
    pub max_ms: u64,
}

impl LatencyModel {
    /// Draws one base latency.
    pub fn sample(&self, rng: &mut impl Rng) -> u64 {
        let spread = self.median_ms.saturating_sub(self.min_ms) as f64;
        let uniform: f64 = rng.r#gen();
        // Exponential with its median at `spread`: P(x < spread) = 1/2.
        let tail = -(1.0 - uniform).ln() / std::f64::consts::LN_2 * spread;
        let latency = self.min_ms as f64 + tail;
        (latency.round() as u64).clamp(self.min_ms, self.max_ms.max(self.min_ms))
    }
}

/// How the network behaves.
#[derive(Clone, Copy, Debug)]
pub struct NetworkConfig {
    /// Base latency of each link.
    pub latency: LatencyModel,
    /// Uniform extra delay of each message, 0..=`jitter_ms`.
    pub jitter_ms: u64,
    /// Probability that a message is lost.
    pub loss: f64,
    /// Random links each node dials besides its two ring neighbours.
    pub dials: usize,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            latency: LatencyModel {
                min_ms: 5,
                median_ms: 40,
                max_ms: 400,
            },
            jitter_ms: 10,
            loss: 0.0,
            dials: 3,
        }
    }
}

/// A handle on an active partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionId(usize);

/// A link that went down or came up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LinkChange {
    /// One end (the smaller id).
    pub a: NodeId,
    /// The other end.
    pub b: NodeId,
    /// Whether the link is up now.
    pub up: bool,
}

/// The network: topology, link state and clocks.
pub struct Network {
    config: NetworkConfig,
    base_latency: BTreeMap<(NodeId, NodeId), u64>,
    neighbours: Vec<Vec<NodeId>>,
    online: Vec<bool>,
    partitions: Vec<Option<BTreeSet<NodeId>>>,
    skew_ms: Vec<i64>,
    sent: u64,
    lost: u64,
    cut: u64,
}

fn link_key(a: NodeId, b: NodeId) -> (NodeId, NodeId) {
    if a < b { (a, b) } else { (b, a) }
}

impl Network {
    /// A network of `nodes` nodes, all online, clocks exact.
    pub fn new(nodes: usize, config: NetworkConfig, rng: &mut impl Rng) -> Self {
        let mut pairs = BTreeSet::new();
        let mut others: Vec<usize> = (0..nodes).collect();
        for node in 0..nodes {
            if nodes > 1 {
                pairs.insert(link_key(NodeId(node), NodeId((node + 1) % nodes)));
            }
            let (chosen, _) = others.partial_shuffle(rng, config.dials.saturating_add(1));
            for &other in chosen
                .iter()
                .filter(|&&other| other != node)
                .take(config.dials)
            {
                pairs.insert(link_key(NodeId(node), NodeId(other)));
            }
        }
        pairs.retain(|(a, b)| a != b);
        let base_latency: BTreeMap<(NodeId, NodeId), u64> = pairs
            .into_iter()
            .map(|pair| (pair, config.latency.sample(rng)))
            .collect();
        let mut neighbours = vec![Vec::new(); nodes];
        for &(a, b) in base_latency.keys() {
            neighbours[a.0].push(b);
            neighbours[b.0].push(a);
        }
        Self {
            config,
            base_latency,
            neighbours,
            online: vec![true; nodes],
            partitions: Vec::new(),
            skew_ms: vec![0; nodes],
            sent: 0,
            lost: 0,
            cut: 0,
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.online.len()
    }

    /// Whether the network has no node.
    pub fn is_empty(&self) -> bool {
        self.online.is_empty()
    }

    /// The nodes `node` has a link with, whether up or down.
    pub fn neighbours(&self, node: NodeId) -> &[NodeId] {
        &self.neighbours[node.0]
    }

    /// Number of links.
    pub fn links(&self) -> usize {
        self.base_latency.len()
    }

    /// Whether `node` is online.
    pub fn is_online(&self, node: NodeId) -> bool {
        self.online[node.0]
    }

    /// Whether `a` and `b` can reach each other now (linked, both online, not separated).
    pub fn link_up(&self, a: NodeId, b: NodeId) -> bool {
        self.base_latency.contains_key(&link_key(a, b)) && self.reachable(a, b)
    }

    fn reachable(&self, a: NodeId, b: NodeId) -> bool {
        self.online[a.0]
            && self.online[b.0]
            && self
                .partitions
                .iter()
                .flatten()
                .all(|cut| cut.contains(&a) == cut.contains(&b))
    }

    /// The delay of one message from `from` to `to`, or `None` when it is lost or the link
    /// is down.
    pub fn transit(&mut self, from: NodeId, to: NodeId, rng: &mut impl Rng) -> Option<u64> {
        self.sent += 1;
        let Some(&base) = self.base_latency.get(&link_key(from, to)) else {
            self.cut += 1;
            return None;
        };
        if !self.reachable(from, to) {
            self.cut += 1;
            return None;
        }
        if self.config.loss > 0.0 && rng.r#gen::<f64>() < self.config.loss {
            self.lost += 1;
            return None;
        }
        Some(base + rng.gen_range(0..=self.config.jitter_ms))
    }

    /// Counts a message dropped at arrival because its link went down in flight.
    pub fn cut_in_flight(&mut self) {
        self.cut += 1;
    }

    /// Messages sent, lost to `loss`, and dropped on a down link.
    pub fn counts(&self) -> (u64, u64, u64) {
        (self.sent, self.lost, self.cut)
    }

    fn links_of<'a>(
        &'a self,
        nodes: impl Iterator<Item = NodeId> + 'a,
    ) -> BTreeSet<(NodeId, NodeId)> {
        nodes
            .flat_map(|node| {
                self.neighbours[node.0]
                    .iter()
                    .map(move |&other| link_key(node, other))
            })
            .collect()
    }

    fn change(
        &mut self,
        links: BTreeSet<(NodeId, NodeId)>,
        apply: impl FnOnce(&mut Self),
    ) -> Vec<LinkChange> {
        let before: Vec<bool> = links.iter().map(|&(a, b)| self.reachable(a, b)).collect();
        apply(self);
        links
            .into_iter()
            .zip(before)
            .filter_map(|((a, b), was_up)| {
                let up = self.reachable(a, b);
                (up != was_up).then_some(LinkChange { a, b, up })
            })
            .collect()
    }

    /// Takes `node` offline or brings it back; returns the links that changed.
    pub fn set_online(&mut self, node: NodeId, online: bool) -> Vec<LinkChange> {
        let links = self.links_of(std::iter::once(node));
        self.change(links, |network| network.online[node.0] = online)
    }

    /// Cuts `cut` off from every other node until [`Network::end_partition`].
    pub fn start_partition(&mut self, cut: BTreeSet<NodeId>) -> (PartitionId, Vec<LinkChange>) {
        let links = self.links_of(cut.iter().copied());
        let id = PartitionId(self.partitions.len());
        let changes = self.change(links, |network| network.partitions.push(Some(cut)));
        (id, changes)
    }

    /// Ends a partition; returns the links that came back.
    pub fn end_partition(&mut self, id: PartitionId) -> Vec<LinkChange> {
        let Some(Some(cut)) = self.partitions.get(id.0) else {
            return Vec::new();
        };
        let links = self.links_of(cut.iter().copied());
        self.change(links, |network| network.partitions[id.0] = None)
    }

    /// Sets how far `node`'s clock runs ahead (positive) or behind (negative).
    pub fn set_skew(&mut self, node: NodeId, skew_ms: i64) {
        self.skew_ms[node.0] = skew_ms;
    }

    /// What `node`'s clock reads at simulation time `at`, in ms since the Unix epoch given
    /// as the simulation's start.
    pub fn local_time(&self, node: NodeId, epoch_ms: u64, at: SimTime) -> u64 {
        epoch_ms
            .saturating_add(at)
            .saturating_add_signed(self.skew_ms[node.0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::rng;

    fn connected(network: &Network) -> bool {
        let mut seen = BTreeSet::from([NodeId(0)]);
        let mut stack = vec![NodeId(0)];
        while let Some(node) = stack.pop() {
            for &other in network.neighbours(node) {
                if network.link_up(node, other) && seen.insert(other) {
                    stack.push(other);
                }
            }
        }
        seen.len() == network.len()
    }

    #[test]
    fn latencies_stay_in_bounds_with_half_under_the_median() {
        let model = LatencyModel {
            min_ms: 5,
            median_ms: 40,
            max_ms: 400,
        };
        let mut rng = rng(1);
        let samples: Vec<u64> = (0..10_000).map(|_| model.sample(&mut rng)).collect();
        assert!(samples.iter().all(|&ms| (5..=400).contains(&ms)));
        let under = samples.iter().filter(|&&ms| ms < 40).count();
        assert!(
            (4_500..5_500).contains(&under),
            "{under} of 10 000 under the median"
        );
    }

    #[test]
    fn the_topology_is_connected_with_the_asked_degree() {
        let mut rng = rng(2);
        let network = Network::new(1_000, NetworkConfig::default(), &mut rng);
        assert!(connected(&network));
        let mean = 2.0 * network.links() as f64 / network.len() as f64;
        assert!((7.0..=8.0).contains(&mean), "mean degree {mean}");
    }

    #[test]
    fn a_partition_cuts_exactly_the_crossing_links_and_its_end_restores_them() {
        let mut rng = rng(3);
        let mut network = Network::new(100, NetworkConfig::default(), &mut rng);
        let cut: BTreeSet<NodeId> = (0..30).map(NodeId).collect();
        let crossing = network
            .base_latency
            .keys()
            .filter(|(a, b)| cut.contains(a) != cut.contains(b))
            .count();
        let (id, down) = network.start_partition(cut.clone());
        assert_eq!(down.len(), crossing);
        assert!(down.iter().all(|change| !change.up));
        assert!(!connected(&network));
        let (a, b) = (down[0].a, down[0].b);
        assert_eq!(network.transit(a, b, &mut rng), None);
        let up = network.end_partition(id);
        assert_eq!(up.len(), crossing);
        assert!(connected(&network));
        assert!(network.transit(a, b, &mut rng).is_some());
    }

    #[test]
    fn an_offline_node_loses_all_its_links_and_gets_them_back() {
        let mut rng = rng(4);
        let mut network = Network::new(50, NetworkConfig::default(), &mut rng);
        let node = NodeId(7);
        let degree = network.neighbours(node).len();
        let down = network.set_online(node, false);
        assert_eq!(down.len(), degree);
        assert_eq!(
            network.set_online(node, false),
            Vec::new(),
            "already offline"
        );
        assert_eq!(network.set_online(node, true).len(), degree);
    }

    #[test]
    fn loss_drops_about_its_share_and_skew_moves_only_its_node() {
        let mut rng = rng(5);
        let config = NetworkConfig {
            loss: 0.1,
            ..NetworkConfig::default()
        };
        let mut network = Network::new(10, config, &mut rng);
        let other = network.neighbours(NodeId(0))[0];
        let delivered = (0..10_000)
            .filter(|_| network.transit(NodeId(0), other, &mut rng).is_some())
            .count();
        assert!((8_800..9_200).contains(&delivered), "{delivered} of 10 000");
        network.set_skew(NodeId(1), -5_000);
        assert_eq!(network.local_time(NodeId(1), 1_000_000, 10), 995_010);
        assert_eq!(network.local_time(NodeId(2), 1_000_000, 10), 1_000_010);
    }
}
