//! Whole-federation properties, each in a seeded simulation of real engines: every test
//! prints its seed (replay with `SOLIDARITY_SEED=…`), the simulated time to convergence
//! and the real time of its run. `SOLIDARITY_SIM_NODES` overrides every node count.

use std::collections::BTreeSet;
use std::time::Instant;

use solidarity_engine::Notice;
use solidarity_engine::canary::{CanaryRules, CanaryState};
use solidarity_proto::MessageId;
use solidarity_proto::payload::AlertStatus;
use solidarity_sim::network::{LatencyModel, NodeId};
use solidarity_sim::scenario::{
    TrustLabel, alert, canary, fork_of_latest, holds, junk_certificate, missing, next_in_chain,
    self_revocation, signed_at, statements_of, stored_from_outside, stored_of, trust_disagreements,
    trust_of, update,
};
use solidarity_sim::seed::run_seed;
use solidarity_sim::sim::{SimConfig, Simulation};

/// The node count of a test, unless `SOLIDARITY_SIM_NODES` says otherwise.
fn nodes(default: usize) -> usize {
    std::env::var("SOLIDARITY_SIM_NODES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(default)
}

fn start(test: &str, config: SimConfig) -> (Simulation, Instant) {
    let seed = run_seed(test).expect("a usable seed");
    let started = Instant::now();
    let nodes = config.nodes;
    let simulation = Simulation::new(config, seed);
    println!(
        "{test}: {nodes} nodes, {} links, {} connections open; set up in {:.1?} real",
        simulation.network.links(),
        simulation.connections(),
        started.elapsed()
    );
    (simulation, started)
}

fn report(test: &str, simulation: &Simulation, what: &str, simulated_ms: u64, started: Instant) {
    let counts = simulation.counts();
    println!(
        "{test}: {what} after {:.2} s simulated; run {:.1?} real; {} events, {} engine inputs, {} network messages ({} lost, {} cut), {} gossip copies ({} duplicates), {} sync requests",
        simulated_ms as f64 / 1000.0,
        started.elapsed(),
        counts.events,
        counts.inputs,
        counts.sent,
        counts.lost,
        counts.cut,
        counts.gossip_received,
        counts.gossip_duplicates,
        counts.sync_requests,
    );
}

fn all(simulation: &Simulation) -> Vec<NodeId> {
    simulation.node_ids().collect()
}

fn latest_acknowledged(simulation: &Simulation, node: NodeId) -> MessageId {
    simulation
        .node(node)
        .acknowledged
        .last()
        .map(|(_, id)| *id)
        .expect("the node acknowledged what it signed")
}

#[test]
fn a_thousand_nodes_converge_on_every_alert_and_update() {
    const TEST: &str = "convergence";
    let config = SimConfig::new(nodes(1_000));
    let (mut simulation, started) = start(TEST, config);
    simulation.run_for(5_000);
    let authors: Vec<NodeId> = (0..10).map(|n| NodeId(n * simulation.len() / 10)).collect();
    let mut ids = Vec::new();
    for (n, &author) in authors.iter().enumerate() {
        simulation.sign(author, alert(format!("seizure {n}")), None);
        ids.push(latest_acknowledged(&simulation, author));
    }
    simulation.run_for(200);
    for (n, &author) in authors.iter().enumerate() {
        let body = update(ids[n], AlertStatus::Confirmed, "seen by our lawyer");
        simulation.sign(author, body, None);
        ids.push(latest_acknowledged(&simulation, author));
    }
    let everyone = all(&simulation);
    let took = simulation.run_until_true(100, 60_000, |simulation| {
        missing(simulation, &everyone, &ids).is_empty()
    });
    let left = missing(&simulation, &everyone, &ids);
    assert!(
        took.is_some(),
        "{} nodes still miss something after 60 s, e.g. {:?}",
        left.len(),
        &left[..left.len().min(5)]
    );
    let took = took.unwrap_or_default();
    report(
        TEST,
        &simulation,
        &format!("every node holds all {} alerts and updates", ids.len()),
        took,
        started,
    );
    let counts = simulation.counts();
    let copies = counts.gossip_received as f64 / (ids.len() * simulation.len()) as f64;
    println!("{TEST}: {copies:.2} gossip copies received per node and message");
    assert!(
        took <= 10_000,
        "gossip alone delivers within seconds: {took} ms"
    );
}

#[test]
fn partitions_heal_by_sync() {
    const TEST: &str = "partition";
    let mut config = SimConfig::new(nodes(200));
    config.sync_interval_ms = 10_000;
    let (mut simulation, started) = start(TEST, config);
    simulation.run_for(2_000);
    let size = simulation.len();
    let cut: BTreeSet<NodeId> = (0..size / 3).map(NodeId).collect();
    let partition = simulation.start_partition(cut.clone());
    let inside = NodeId(0);
    let outside = NodeId(size - 1);
    simulation.sign(inside, alert("raid, seen from the cut side"), None);
    simulation.sign(outside, alert("raid, seen from the other side"), None);
    let ids = [
        latest_acknowledged(&simulation, inside),
        latest_acknowledged(&simulation, outside),
    ];
    simulation.run_for(15_000);
    let everyone = all(&simulation);
    let unreached = missing(&simulation, &everyone, &ids);
    assert!(
        unreached.len() >= cut.len().min(size - cut.len()),
        "the partition held: {} nodes miss one side's alert",
        unreached.len()
    );
    for node in simulation.node_ids() {
        let same_side = cut.contains(&node) == cut.contains(&inside);
        assert_eq!(holds(&simulation, node, &ids[0]), same_side, "{node}");
        assert_eq!(holds(&simulation, node, &ids[1]), !same_side, "{node}");
    }
    simulation.end_partition(partition);
    let took = simulation.run_until_true(250, 60_000, |simulation| {
        missing(simulation, &everyone, &ids).is_empty()
    });
    assert!(
        took.is_some(),
        "{} nodes still miss an alert 60 s after the heal",
        missing(&simulation, &everyone, &ids).len()
    );
    report(
        TEST,
        &simulation,
        "both sides hold both alerts",
        took.unwrap_or_default(),
        started,
    );
}

#[test]
fn a_revocation_published_anywhere_reaches_every_node_also_those_offline() {
    const TEST: &str = "revocation";
    let mut config = SimConfig::new(nodes(300));
    config.sync_interval_ms = 10_000;
    let (mut simulation, started) = start(TEST, config);
    simulation.run_for(2_000);
    let size = simulation.len();
    let seized = NodeId(1);
    let offline: Vec<NodeId> = (0..size / 20).map(|n| NodeId(size - 1 - n)).collect();
    for &node in &offline {
        simulation.set_online(node, false);
    }
    simulation.run_for(1_000);
    let now = simulation.local_now(NodeId(0));
    let revocation = self_revocation(
        &simulation.federation.keys[seized.0],
        &simulation,
        now,
        now - 60_000,
    );
    let seized_key = simulation.federation.members[seized.0];
    // Published by another member, from the copy its admin kept offline.
    simulation.publish_statement(NodeId(size / 2), revocation.bytes.clone());
    let online: Vec<NodeId> = simulation
        .node_ids()
        .filter(|node| !offline.contains(node) && *node != seized)
        .collect();
    let revoked_everywhere = |simulation: &Simulation, nodes: &[NodeId]| {
        nodes
            .iter()
            .all(|&node| trust_of(simulation, node, &seized_key) == Some(TrustLabel::Revoked))
    };
    let gossip = simulation.run_until_true(100, 30_000, |simulation| {
        revoked_everywhere(simulation, &online)
    });
    assert!(gossip.is_some(), "every online node has the key revoked");
    for &node in &offline {
        assert_eq!(
            trust_of(&simulation, node, &seized_key),
            Some(TrustLabel::Trusted)
        );
        simulation.set_online(node, true);
    }
    let sync = simulation.run_until_true(100, 30_000, |simulation| {
        revoked_everywhere(simulation, &offline)
    });
    assert!(sync.is_some(), "every returning node learns it by sync");
    report(
        TEST,
        &simulation,
        &format!(
            "{} online nodes revoked the key within {} ms by gossip; the {} returning nodes",
            online.len(),
            gossip.unwrap_or_default(),
            offline.len()
        ),
        sync.unwrap_or_default(),
        started,
    );
    assert!(holds(&simulation, offline[0], &revocation.id));
}

#[test]
fn a_fork_is_detected_everywhere() {
    const TEST: &str = "fork";
    let (mut simulation, started) = start(TEST, SimConfig::new(nodes(300)));
    simulation.run_for(2_000);
    let forked = NodeId(3);
    simulation.sign(forked, alert("outage, back soon"), None);
    simulation.run_for(3_000);
    let second =
        fork_of_latest(&simulation, forked, "all clear, use the new key").expect("the node signed");
    // The second holder of the key publishes from the node itself (modified code).
    simulation.publish_raw(forked, second.bytes);
    let forked_key = simulation.federation.members[forked.0];
    let others: Vec<NodeId> = simulation
        .node_ids()
        .filter(|node| *node != forked)
        .collect();
    let took = simulation.run_until_true(100, 60_000, |simulation| {
        others
            .iter()
            .all(|&node| trust_of(simulation, node, &forked_key) == Some(TrustLabel::Forked))
    });
    let undetected = others
        .iter()
        .filter(|&&node| trust_of(&simulation, node, &forked_key) != Some(TrustLabel::Forked))
        .count();
    assert!(took.is_some(), "{undetected} nodes never saw the fork");
    report(
        TEST,
        &simulation,
        &format!("all {} other nodes hold the key forked", others.len()),
        took.unwrap_or_default(),
        started,
    );
}

#[test]
fn a_flooding_member_is_held_to_its_quota() {
    const TEST: &str = "flood";
    let config = SimConfig::new(nodes(100));
    let quota = u64::from(config.limits.messages_per_minute);
    let (mut simulation, started) = start(TEST, config);
    simulation.run_for(2_000);
    let flooder = NodeId(5);
    let honest = NodeId(simulation.len() / 2);
    let flood_start = simulation.now();
    // 100 messages a second for 3 s.
    for n in 0..300 {
        simulation.sign(flooder, alert(format!("flood {n}")), None);
        simulation.run_for(10);
        if n == 150 {
            simulation.sign(honest, alert("the honest seizure alert"), None);
        }
    }
    let honest_id = simulation
        .node(honest)
        .acknowledged
        .last()
        .map(|(_, id)| *id)
        .expect("signed");
    simulation.run_for(1_000);
    let elapsed_s = (simulation.now() - flood_start).div_ceil(1_000);
    let flooder_key = simulation.federation.members[flooder.0];
    // The bucket starts full and refills at the quota per minute.
    let limit = quota + quota * elapsed_s / 60 + 1;
    let mut most = 0;
    for node in simulation.node_ids().filter(|node| *node != flooder) {
        let stored = stored_of(&simulation, node, &flooder_key) as u64;
        most = most.max(stored);
        assert!(
            stored <= limit,
            "{node} stored {stored} of the flood, limit {limit}"
        );
    }
    let everyone: Vec<NodeId> = all(&simulation);
    assert!(
        missing(&simulation, &everyone, &[honest_id]).is_empty(),
        "the honest alert reached everyone during the flood"
    );
    report(
        TEST,
        &simulation,
        &format!(
            "300 flood messages in 3 s: at most {most} stored on any node (limit {limit}); the honest alert everywhere"
        ),
        simulation.now() - flood_start,
        started,
    );
}

#[test]
fn a_random_schedule_keeps_the_invariants() {
    const TEST: &str = "random";
    let mut config = SimConfig::new(nodes(100));
    config.sync_interval_ms = 5_000;
    config.network.loss = 0.02;
    config.network.latency = LatencyModel {
        min_ms: 5,
        median_ms: 60,
        max_ms: 800,
    };
    let (mut simulation, started) = start(TEST, config);
    simulation.run_for(2_000);
    let size = simulation.len();
    use rand::Rng;
    let forked = NodeId(size - 1);
    let revoked = NodeId(size - 2);
    let honest: Vec<NodeId> = (0..size - 2).map(NodeId).collect();
    let mut acknowledged: Vec<MessageId> = Vec::new();
    let mut offline: BTreeSet<NodeId> = BTreeSet::new();
    let mut partition = None;
    let mut outsiders: Vec<MessageId> = Vec::new();
    let mut stopped: BTreeSet<NodeId> = BTreeSet::new();
    for step in 0..60 {
        let choice = simulation.rng().gen_range(0..100);
        let node = NodeId(simulation.rng().gen_range(0..size - 2));
        match choice {
            0..=49 => {
                simulation.sign(node, alert(format!("alert {step}")), None);
            }
            50..=59 => {
                let online = !offline.remove(&node);
                if online {
                    offline.insert(node);
                }
                simulation.set_online(node, !online);
            }
            60..=64 => {
                if simulation.is_running(node) {
                    simulation.stop(node);
                    stopped.insert(node);
                } else {
                    simulation.start(node);
                    stopped.remove(&node);
                }
            }
            65..=74 => match partition.take() {
                Some(id) => simulation.end_partition(id),
                None => {
                    let cut: BTreeSet<NodeId> = (0..size)
                        .map(NodeId)
                        .filter(|_| simulation.rng().gen_bool(0.3))
                        .collect();
                    partition = Some(simulation.start_partition(cut));
                }
            },
            75..=82 => {
                let skew = simulation.rng().gen_range(-120_000..120_000);
                simulation.set_skew(node, skew);
            }
            83..=89 => {
                // A stranger's message, pushed into the mesh by a member's relay.
                let stranger = solidarity_sim::federation::signing_key(simulation.rng());
                let now = simulation.local_now(node);
                let message = signed_at(&stranger, &simulation, 1, None, now, &alert("stranger"));
                outsiders.push(message.id);
                simulation.publish_raw(node, message.bytes);
            }
            _ => simulation.sign(forked, alert(format!("forked key {step}")), None),
        }
        if step == 20
            && let Some(second) = fork_of_latest(&simulation, forked, "second holder")
        {
            simulation.publish_raw(forked, second.bytes);
        }
        if step == 40 {
            let now = simulation.local_now(revoked);
            let revocation = self_revocation(
                &simulation.federation.keys[revoked.0],
                &simulation,
                now,
                now,
            );
            simulation.publish_statement(NodeId(0), revocation.bytes);
        }
        let pause = simulation.rng().gen_range(50..2_000);
        simulation.run_for(pause);
    }
    // Quiescence: everything heals, clocks are fixed.
    if let Some(id) = partition {
        simulation.end_partition(id);
    }
    for node in offline {
        simulation.set_online(node, true);
    }
    for node in stopped {
        simulation.start(node);
    }
    for node in simulation.node_ids().collect::<Vec<_>>() {
        simulation.set_skew(node, 0);
    }
    for &node in &honest {
        acknowledged.extend(simulation.node(node).acknowledged.iter().map(|(_, id)| *id));
    }
    let took = simulation.run_until_true(1_000, 120_000, |simulation| {
        missing(simulation, &honest, &acknowledged).is_empty()
            && trust_disagreements(simulation, &honest).is_empty()
    });
    let lost = missing(&simulation, &honest, &acknowledged);
    assert!(
        lost.is_empty(),
        "{} honest nodes miss an acknowledged message",
        lost.len()
    );
    let disagreeing = trust_disagreements(&simulation, &honest);
    assert!(
        disagreeing.is_empty(),
        "honest nodes disagree on trust: {disagreeing:?}"
    );
    let members: BTreeSet<_> = simulation.federation.members.iter().copied().collect();
    for &node in &honest {
        assert_eq!(
            stored_from_outside(&simulation, node, &members),
            Vec::new(),
            "{node}"
        );
    }
    // Non-members' messages are dropped without penalty (SPEC: `ignore:not_member`).
    let refused: u64 = simulation
        .node_ids()
        .map(|node| simulation.node(node).verdicts.1 + simulation.node(node).verdicts.2)
        .sum();
    for id in &outsiders {
        assert!(
            simulation
                .node_ids()
                .all(|node| !holds(&simulation, node, id)),
            "a stranger's message was stored"
        );
    }
    assert!(
        outsiders.is_empty() || refused > 0,
        "no stranger's message reached an engine to be refused: the check above saw nothing"
    );
    let revoked_key = simulation.federation.members[revoked.0];
    assert_eq!(
        trust_of(&simulation, NodeId(0), &revoked_key),
        Some(TrustLabel::Revoked)
    );
    report(
        TEST,
        &simulation,
        &format!(
            "quiescent: {} acknowledged messages on all {} honest nodes, one trust view; {} strangers' messages stored nowhere ({refused} gossip messages ignored or rejected)",
            acknowledged.len(),
            honest.len(),
            outsiders.len()
        ),
        took.unwrap_or_default(),
        started,
    );
}

#[test]
fn returning_nodes_learn_the_revocation_first_whatever_the_seized_key_preloaded() {
    const TEST: &str = "preload";
    // The seized key's junk: 280 large certificates (more than a 2 MiB page), then 40 small
    // ones, ids ground to sort before its revocation's (as in `hostile_sync.rs`).
    const LARGE: u32 = 280;
    const SMALL: u32 = 40;
    let mut config = SimConfig::new(nodes(200));
    config.sync_interval_ms = 10_000;
    let (mut simulation, started) = start(TEST, config);
    simulation.run_for(2_000);
    let size = simulation.len();
    let seized = NodeId(1);
    let seized_key = simulation.federation.members[seized.0];
    let returning: Vec<NodeId> = (0..size / 10).map(|n| NodeId(size - 1 - n)).collect();
    // Their daemons are stopped (their stores stay).
    for &node in &returning {
        simulation.stop(node);
    }
    simulation.run_for(1_000);
    let key = simulation.federation.keys[seized.0].clone();
    let mut junk_bytes = 0;
    for nonce in 0..LARGE + SMALL {
        let now = simulation.local_now(seized);
        let throwaway = solidarity_sim::federation::signing_key(simulation.rng());
        let throwaway = solidarity_proto::envelope::author_key(&throwaway);
        let (addresses, first_byte) = if nonce < LARGE {
            (32, 0x00..0x80)
        } else {
            (1, 0x80..0xf0)
        };
        let junk = solidarity_sim::scenario::ground(
            &key,
            &simulation,
            now,
            |id| first_byte.contains(&id.as_bytes()[0]),
            |grind| junk_certificate(throwaway, now, nonce * 1_000 + grind, addresses),
        );
        junk_bytes += junk.bytes.len();
        simulation.publish_raw(seized, junk.bytes);
        simulation.run_for(10);
    }
    let now = simulation.local_now(seized);
    let revocation = solidarity_sim::scenario::ground(
        &key,
        &simulation,
        now,
        |id| id.as_bytes()[0] >= 0xf0,
        |grind| {
            solidarity_proto::payload::Body::Revocation(solidarity_proto::payload::Revocation {
                reason: format!("server seized {grind} {}", "!".repeat(200)),
                key: None,
                compromised_since: Some(now - 60_000),
            })
        },
    );
    simulation.publish_raw(seized, revocation.bytes);
    let online: Vec<NodeId> = simulation
        .node_ids()
        .filter(|node| !returning.contains(node) && *node != seized)
        .collect();
    let revoked = |simulation: &Simulation, node: NodeId| {
        trust_of(simulation, node, &seized_key) == Some(TrustLabel::Revoked)
    };
    let gossip = simulation.run_until_true(100, 30_000, |simulation| {
        online.iter().all(|&node| revoked(simulation, node))
    });
    assert!(gossip.is_some(), "the online nodes revoke the key");
    let kept = online
        .iter()
        .map(|&node| statements_of(&simulation, node, &seized_key))
        .max()
        .unwrap_or_default();
    assert!(
        kept <= 1,
        "an honest node kept {kept} statements of the seized key"
    );

    // They restart; the seized key pushes a forged alert at once and every 50 ms.
    let forged = next_in_chain(
        &simulation,
        seized,
        &alert("forged: all clear, use the new key"),
    );
    let before: Vec<u64> = returning
        .iter()
        .map(|&node| simulation.node(node).sync_requests)
        .collect();
    for &node in &returning {
        simulation.start(node);
    }
    let back_at = simulation.now();
    let mut learned: Vec<Option<(u64, u64)>> = vec![None; returning.len()];
    for _ in 0..100 {
        simulation.publish_raw(seized, forged.bytes.clone());
        for _ in 0..5 {
            simulation.run_for(10);
            for (n, &node) in returning.iter().enumerate() {
                if learned[n].is_none() && revoked(&simulation, node) {
                    let requests = simulation.node(node).sync_requests - before[n];
                    learned[n] = Some((simulation.now() - back_at, requests));
                }
            }
        }
        if learned.iter().all(Option::is_some) {
            break;
        }
    }
    let learned: Vec<(u64, u64)> = learned.into_iter().flatten().collect();
    assert_eq!(
        learned.len(),
        returning.len(),
        "every returning node learns the revocation"
    );
    let slowest = learned.iter().map(|(ms, _)| *ms).max().unwrap_or_default();
    let most_requests = learned
        .iter()
        .map(|(_, requests)| *requests)
        .max()
        .unwrap_or_default();
    let connections = returning
        .iter()
        .map(|&node| simulation.network.neighbours(node).len() as u64)
        .max()
        .unwrap_or_default();
    // Round 1 of the first sessions (one per connection) carries the revocation.
    assert!(
        most_requests <= 2 * connections,
        "{most_requests} sync requests before the revocation ({connections} connections)"
    );
    simulation.run_for(5_000);
    let storing_forged: Vec<NodeId> = simulation
        .node_ids()
        .filter(|&node| node != seized && holds(&simulation, node, &forged.id))
        .collect();
    for &node in &storing_forged {
        assert!(
            revoked(&simulation, node),
            "{node} holds the forged alert as genuine"
        );
    }
    report(
        TEST,
        &simulation,
        &format!(
            "{} junk certificates ({} KiB) then the revocation: online nodes kept at most {kept} statement of the key and revoked it in {} ms; the {} returning nodes learned it within {slowest} ms of coming back, after at most {most_requests} sync requests ({connections} links at most); {} nodes hold the forged alert, each with the key revoked (so shown suspect)",
            LARGE + SMALL,
            junk_bytes / 1024,
            gossip.unwrap_or_default(),
            returning.len(),
            storing_forged.len()
        ),
        slowest,
        started,
    );
}

#[test]
fn a_silent_member_is_flagged_within_its_grace_period_and_no_one_else_is() {
    const TEST: &str = "silent";
    const INTERVAL_SECS: u64 = 60;
    let mut config = SimConfig::new(nodes(100));
    config.network.loss = 0.02;
    config.canary_rules = CanaryRules {
        grace_ms: 30_000,
        max_interval_ms: 7 * 24 * 3_600_000,
    };
    let grace_ms = config.canary_rules.grace_ms;
    let (mut simulation, started) = start(TEST, config);
    let size = simulation.len();
    let silent = NodeId(7);
    let silent_key = simulation.federation.members[silent.0];
    use rand::Rng;
    // Each member publishes a canary every interval, the first within 10 s.
    let mut next_canary: Vec<u64> = (0..size)
        .map(|_| simulation.rng().gen_range(0..10_000))
        .collect();
    let goes_silent_at = 150_000;
    let mut last_canary_of_silent = 0;
    let end = goes_silent_at + 2 * INTERVAL_SECS * 1000;
    while simulation.now() < end {
        let now = simulation.now();
        for (node, next) in next_canary.iter_mut().enumerate() {
            if *next <= now && !(node == silent.0 && now >= goes_silent_at) {
                let token: [u8; 32] = simulation.rng().r#gen();
                simulation.sign(NodeId(node), canary(INTERVAL_SECS, token), None);
                *next = now + INTERVAL_SECS * 1000;
                if node == silent.0 {
                    last_canary_of_silent = simulation.local_now(silent);
                }
            }
        }
        if now == goes_silent_at {
            // Its power is cut: nothing more from it, nothing to it.
            simulation.stop(silent);
        }
        simulation.run_for(1_000);
    }
    // What each engine told its admin (`Notice::Canary`, on its own canary-check timer).
    let epoch = simulation.config().epoch_ms;
    let deadline = last_canary_of_silent + INTERVAL_SECS * 1000 + grace_ms;
    let mut false_alarms = Vec::new();
    let mut latest_flag = 0;
    for node in simulation.node_ids().filter(|node| *node != silent) {
        let mut flagged = None;
        for (at, notice) in &simulation.node(node).notices {
            if let Notice::Canary { key, state } = notice
                && *state != CanaryState::Ok
            {
                if *key == silent_key && *state == CanaryState::Silent && flagged.is_none() {
                    flagged = Some(epoch + at);
                } else if *key != silent_key {
                    false_alarms.push((node, *state));
                }
            }
        }
        let at = flagged.unwrap_or_else(|| panic!("{node} never flagged it silent"));
        assert!(
            at > deadline,
            "{node} flagged it {} ms before its grace ended",
            deadline - at
        );
        assert!(
            at <= deadline + 1_000,
            "{node} flagged it {} ms after its grace ended",
            at - deadline
        );
        latest_flag = latest_flag.max(at);
    }
    assert_eq!(
        false_alarms,
        Vec::new(),
        "members that kept publishing were flagged"
    );
    report(
        TEST,
        &simulation,
        &format!(
            "the member whose power was cut flagged silent by all {} others (engine notices) within {} ms of its grace ending (canary due {} s after its last, grace {} s), 0 false alarms over {} s",
            size - 1,
            latest_flag - deadline,
            INTERVAL_SECS,
            grace_ms / 1000,
            end / 1000
        ),
        latest_flag - epoch - goes_silent_at,
        started,
    );
}

/// Tor's latency (issue 14): every link 300–1 500 ms one way (median 700, ±200 jitter), as
/// between onion services whose circuits cross six relays. Alerts still reach every node
/// by gossip, and the simulated time to do so is printed for BENCHMARKS.md.
#[test]
fn alerts_reach_everyone_at_tor_latency() {
    const TEST: &str = "tor_latency";
    let mut config = SimConfig::new(nodes(50));
    config.network.latency = LatencyModel {
        min_ms: 300,
        median_ms: 700,
        max_ms: 1_500,
    };
    config.network.jitter_ms = 200;
    let (mut simulation, started) = start(TEST, config);
    simulation.run_for(30_000);
    let authors: Vec<NodeId> = (0..5).map(|n| NodeId(n * simulation.len() / 5)).collect();
    let mut ids = Vec::new();
    for (n, &author) in authors.iter().enumerate() {
        simulation.sign(author, alert(format!("seizure {n}")), None);
        ids.push(latest_acknowledged(&simulation, author));
    }
    let everyone = all(&simulation);
    let took = simulation.run_until_true(100, 120_000, |simulation| {
        missing(simulation, &everyone, &ids).is_empty()
    });
    let left = missing(&simulation, &everyone, &ids);
    assert!(
        took.is_some(),
        "{} nodes still miss an alert after 120 s at tor latency, e.g. {:?}",
        left.len(),
        &left[..left.len().min(5)]
    );
    report(
        TEST,
        &simulation,
        &format!("every node holds all {} alerts", ids.len()),
        took.unwrap_or_default(),
        started,
    );
}
