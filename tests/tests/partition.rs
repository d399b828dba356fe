//! Partition and heal: a federation of six in-process daemons is split in two by the admins
//! removing the other side's members from their members files (connections drop, redials
//! are refused); both sides raise alerts; re-adding the members heals the split, and every
//! node then holds every alert, once, within about a sync period of the reconnection.
//!
//! `SOLIDARITY_SEED=N` replays the random partitions of a run.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use solidarity::members::MembersFile;
use solidarity_control::request;
use solidarity_proto::MessageId;
use solidarity_proto::payload::{Alert, AlertCategory, Severity};
use solidarity_tests::{TestNode, eventually, federation};

const NODES: usize = 6;
/// `sync_interval_secs` of the test config.
const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// Allowed on top of one sync period between the heal (members re-added) and full
/// convergence: reconnection, a sync round trip, the writes, and a busy two-core machine
/// running six daemons.
const CONVERGENCE_SLACK: Duration = Duration::from_secs(4);

/// Small deterministic generator (splitmix64): the test crate has no `rand`.
fn alert(summary: String) -> Alert {
    solidarity_tests::sample_alert(AlertCategory::Takedown, Severity::Medium, summary)
}

async fn raise(node: &TestNode, summary: String) -> MessageId {
    let request = request::AlertRaise {
        alert: alert(summary),
        expires_in_ms: None,
    };
    node.call(move |client| client.sign(&request))
        .await
        .expect("raise")
}

async fn alert_ids(node: &TestNode) -> Vec<MessageId> {
    node.alerts().await.iter().map(|view| view.id).collect()
}

/// The federation with each node's card, under the names `connect_all` gave them.
struct Federation {
    nodes: Vec<TestNode>,
    cards: Vec<(String, String)>,
    /// Every alert raised so far.
    alerts: Vec<MessageId>,
}

impl Federation {
    async fn start() -> Self {
        let nodes = federation(NODES).await;
        let mut cards = Vec::new();
        for (index, node) in nodes.iter().enumerate() {
            cards.push((format!("node{index}"), node.card().await));
        }
        Self {
            nodes,
            cards,
            alerts: Vec::new(),
        }
    }

    /// Each node's admin removes the members of the other side; waits until each side is
    /// connected within itself only.
    async fn split(&self, side_a: &[usize]) -> Duration {
        let started = Instant::now();
        for (index, node) in self.nodes.iter().enumerate() {
            let mine = side_a.contains(&index);
            let mut file = MembersFile::load(node.dir.path()).expect("members");
            for (other, (name, _)) in self.cards.iter().enumerate() {
                if other != index && side_a.contains(&other) != mine {
                    file.remove(name).expect("listed");
                }
            }
            file.save(node.dir.path()).expect("save");
            node.call(|client| client.reload_members())
                .await
                .expect("reload");
        }
        for (index, node) in self.nodes.iter().enumerate() {
            let want = self.side_len(side_a, index) - 1;
            eventually("the other side disconnected", || async {
                node.connected().await == want
            })
            .await;
        }
        started.elapsed()
    }

    fn side_len(&self, side_a: &[usize], index: usize) -> usize {
        if side_a.contains(&index) {
            side_a.len()
        } else {
            NODES - side_a.len()
        }
    }

    /// Raises `per_side` alerts on each side (from random members of it) and waits until
    /// each is on every node of its side; checks none crossed the split.
    async fn raise_on_both_sides(
        &mut self,
        side_a: &[usize],
        rng: &mut solidarity_tests::Rng,
        round: usize,
    ) {
        let side_b: Vec<usize> = (0..NODES).filter(|i| !side_a.contains(i)).collect();
        let mut raised = Vec::new();
        for (side, other) in [(side_a, &side_b[..]), (&side_b[..], side_a)] {
            for n in 0..2 {
                let author = side[rng.below(side.len() as u64) as usize];
                let id = raise(
                    &self.nodes[author],
                    format!("round {round}: node{author} alert {n} during the split"),
                )
                .await;
                raised.push((id, side.to_vec(), other.to_vec()));
            }
        }
        for (id, side, _) in &raised {
            for &index in side {
                eventually("the alert on every node of its side", || async {
                    alert_ids(&self.nodes[index]).await.contains(id)
                })
                .await;
            }
        }
        // A moment for anything that could leak across to do so.
        tokio::time::sleep(SYNC_INTERVAL + Duration::from_millis(500)).await;
        for (id, _, other) in &raised {
            for &index in other {
                assert!(
                    !alert_ids(&self.nodes[index]).await.contains(id),
                    "round {round}: an alert crossed the partition to node{index}"
                );
            }
        }
        for (index, node) in self.nodes.iter().enumerate() {
            assert_eq!(
                node.connected().await,
                self.side_len(side_a, index) - 1,
                "round {round}: node{index} reconnected across the split"
            );
        }
        self.alerts.extend(raised.into_iter().map(|(id, _, _)| id));
    }

    /// Re-adds every member everywhere; returns (time until the full mesh is back, time
    /// until every node holds every alert), both from the start of the heal.
    async fn heal(&self, round: usize) -> (Duration, Duration) {
        let started = Instant::now();
        for (index, node) in self.nodes.iter().enumerate() {
            let others: Vec<_> = self
                .cards
                .iter()
                .enumerate()
                .filter(|(other, _)| *other != index)
                .map(|(_, card)| card.clone())
                .collect();
            node.add_members(&others).await;
        }
        for node in &self.nodes {
            eventually("the full mesh is back", || async {
                node.connected().await == NODES - 1
            })
            .await;
        }
        let reconnected = started.elapsed();
        let want: HashSet<MessageId> = self.alerts.iter().copied().collect();
        for node in &self.nodes {
            eventually("every alert on every node", || async {
                let held: HashSet<MessageId> = alert_ids(node).await.into_iter().collect();
                want.is_subset(&held)
            })
            .await;
        }
        let converged = started.elapsed();
        for (index, node) in self.nodes.iter().enumerate() {
            let ids = alert_ids(node).await;
            let distinct: HashSet<MessageId> = ids.iter().copied().collect();
            assert_eq!(
                distinct.len(),
                ids.len(),
                "round {round}: node{index} lists an alert twice"
            );
            assert_eq!(
                ids.len(),
                self.alerts.len(),
                "round {round}: node{index} holds other alerts than those raised"
            );
        }
        (reconnected, converged)
    }

    async fn round(&mut self, side_a: &[usize], rng: &mut solidarity_tests::Rng, round: usize) {
        let side_b: Vec<usize> = (0..NODES).filter(|i| !side_a.contains(i)).collect();
        let split = self.split(side_a).await;
        self.raise_on_both_sides(side_a, rng, round).await;
        let (reconnected, converged) = self.heal(round).await;
        let after_reconnection = converged.saturating_sub(reconnected);
        println!(
            "partition round {round}: {side_a:?} | {side_b:?}: split took {split:?}; heal: full mesh after {reconnected:?}, every alert ({}) on every node after {converged:?} ({after_reconnection:?} after the mesh was back)",
            self.alerts.len()
        );
        assert!(
            converged <= SYNC_INTERVAL + CONVERGENCE_SLACK,
            "round {round}: convergence took {converged:?} after the heal"
        );
    }

    async fn stop(self) {
        for node in self.nodes {
            node.stop().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_halves_split_then_healed_hold_every_alert_once() {
    let started = Instant::now();
    let seed = solidarity_tests::seed();
    println!("partition: seed {seed}");
    let mut rng = solidarity_tests::Rng(seed);
    let mut federation = Federation::start().await;
    println!(
        "partition: federation of {NODES} up after {:?}",
        started.elapsed()
    );
    federation.round(&[0, 1, 2], &mut rng, 0).await;
    federation.stop().await;
    println!("partition: total {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_random_partitions_heal_with_every_alert_once() {
    let started = Instant::now();
    let seed = solidarity_tests::seed();
    println!("random partitions: seed {seed} (SOLIDARITY_SEED to replay)");
    let mut rng = solidarity_tests::Rng(seed);
    let mut federation = Federation::start().await;
    println!(
        "random partitions: federation of {NODES} up after {:?}",
        started.elapsed()
    );
    for round in 1..=5 {
        let side_a = loop {
            let side: Vec<usize> = (0..NODES).filter(|_| rng.below(2) == 0).collect();
            if !side.is_empty() && side.len() < NODES {
                break side;
            }
        };
        federation.round(&side_a, &mut rng, round).await;
    }
    federation.stop().await;
    println!("random partitions: total {:?}", started.elapsed());
}
