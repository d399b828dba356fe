//! Scenario 1: publish → delivered to all, ours against stock gossipsub, same graph.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use solidarity_control::request;
use solidarity_proto::MessageId;

use crate::measure::{self, ms, quantile};
use crate::{baseline, ours, topology};

/// Gossipsub's counter of messages received, duplicates included.
const RECEIVED_UNFILTERED: &str = "gossipsub_topic_msg_recv_counts_unfiltered_total";

/// Figures of one stack at one N.
#[derive(Clone, Debug, Serialize)]
pub struct Figures {
    pub nodes: usize,
    pub alerts: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub delivery_ratio: f64,
    pub copies_per_delivery: f64,
    pub cpu_us_per_delivery: f64,
    /// The same CPU split by thread role (tokio workers, store writer, sled's IO pool, …).
    pub cpu_us_per_delivery_by_thread: BTreeMap<String, f64>,
}

/// An alert body of about 500 bytes once signed.
pub fn sample_alert(index: usize) -> solidarity_proto::payload::Alert {
    use solidarity_proto::payload::{Alert, AlertCategory, Severity};
    Alert {
        category: AlertCategory::Raid,
        legal_type: None,
        severity: Severity::High,
        subject: format!("server-{index}.example.org"),
        summary: format!("benchmark alert {index}: police raid at the data centre"),
        details: Some("x".repeat(250)),
        jurisdictions: vec!["DE".into(), "FR".into()],
        authority: Some("a public prosecutor".into()),
        legal_basis: None,
        event_date: None,
        seized: None,
        services: vec!["mail".into(), "web".into()],
        domains: vec![],
        upstream: None,
        references: vec![],
    }
}

fn finish(
    nodes: usize,
    alerts: usize,
    latencies: &[f64],
    delivered: usize,
    copies: f64,
    (cpu, threads): (Duration, BTreeMap<String, Duration>),
) -> Figures {
    let deliveries_wanted = alerts * (nodes - 1);
    Figures {
        nodes,
        alerts,
        p50_ms: quantile(latencies, 0.5),
        p99_ms: quantile(latencies, 0.99),
        delivery_ratio: delivered as f64 / deliveries_wanted as f64,
        copies_per_delivery: copies / delivered.max(1) as f64,
        cpu_us_per_delivery: cpu.as_secs_f64() * 1e6 / delivered.max(1) as f64,
        cpu_us_per_delivery_by_thread: measure::per_delivery_by_role(&threads, cpu, delivered),
    }
}

/// How long to wait for stragglers after the last publish.
const DRAIN: Duration = Duration::from_secs(10);

/// Ours: alerts raised through the control socket of rotating nodes at `rate` per second.
pub async fn ours(n: usize, alerts: usize, rate: f64, seed: u64) -> anyhow::Result<Figures> {
    let edges = topology::edges(n, seed);
    let nodes = Arc::new(ours::cluster(n, &edges).await?);
    // Start-up canaries reach everyone by sync; let that settle before measuring.
    let settle = Instant::now();
    for node in nodes.iter() {
        while node.log.count() < n && settle.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let copies_before = copies(&nodes).await?;
    let cpu_before = measure::process_cpu();
    let threads_before = measure::ThreadCpu::now();
    let sent: Arc<Mutex<Vec<(usize, Instant, MessageId)>>> = Arc::default();
    let mut raises = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    for index in 0..alerts {
        ticker.tick().await;
        let origin = index % n;
        let client = solidarity_control::Client::new(nodes[origin].dir.path());
        let sent = sent.clone();
        raises.push(tokio::task::spawn_blocking(move || {
            let request = request::AlertRaise {
                alert: sample_alert(index),
                expires_in_ms: None,
            };
            let started = Instant::now();
            let id = client.sign(&request)?;
            ours::lock(&sent).push((origin, started, id));
            anyhow::Ok(())
        }));
    }
    for raise in raises {
        raise.await??;
    }
    let deadline = Instant::now() + DRAIN;
    let sent = std::mem::take(&mut *ours::lock(&sent));
    let all_in = |nodes: &[ours::OurNode]| {
        sent.iter()
            .all(|(_, _, id)| nodes.iter().all(|node| node.log.at(id).is_some()))
    };
    while !all_in(&nodes) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cpu = measure::process_cpu() - cpu_before;
    let threads = measure::ThreadCpu::now().since(&threads_before);
    let copies = copies(&nodes).await? - copies_before;
    let mut latencies = Vec::new();
    let mut delivered = 0;
    for (origin, started, id) in &sent {
        let mut complete = true;
        let mut last = *started;
        for (index, node) in nodes.iter().enumerate() {
            if index == *origin {
                continue;
            }
            match node.log.at(id) {
                Some(at) => {
                    delivered += 1;
                    last = last.max(at);
                }
                None => complete = false,
            }
        }
        if complete {
            latencies.push(ms(last - *started));
        }
    }
    let nodes = Arc::try_unwrap(nodes).map_err(|_| anyhow::anyhow!("nodes still shared"))?;
    for node in nodes {
        node.stop().await?;
    }
    Ok(finish(
        n,
        sent.len(),
        &latencies,
        delivered,
        copies,
        (cpu, threads),
    ))
}

async fn copies(nodes: &[ours::OurNode]) -> anyhow::Result<f64> {
    let mut total = 0.0;
    for node in nodes {
        total += node.counter(RECEIVED_UNFILTERED).await?;
    }
    Ok(total)
}

/// The baseline: the same number of 500-byte messages published by rotating nodes.
pub async fn baseline(n: usize, alerts: usize, rate: f64, seed: u64) -> anyhow::Result<Figures> {
    let edges = topology::edges(n, seed);
    let deliveries: baseline::Deliveries = Arc::new(Mutex::new(HashMap::new()));
    let nodes = baseline::cluster(n, &edges, &deliveries).await?;
    let copies_before: f64 = nodes
        .iter()
        .map(|node| node.counter(RECEIVED_UNFILTERED))
        .sum();
    let cpu_before = measure::process_cpu();
    let threads_before = measure::ThreadCpu::now();
    let mut sent = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    for index in 0..alerts {
        ticker.tick().await;
        let origin = index % n;
        let mut data = (index as u64).to_be_bytes().to_vec();
        data.extend(std::iter::repeat_n(b'x', 492));
        let started = Instant::now();
        nodes[origin].publish(data).await?;
        sent.push((origin, started, index as u64));
    }
    let deadline = Instant::now() + DRAIN;
    while ours::lock(&deliveries).len() < alerts * (n - 1) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cpu = measure::process_cpu() - cpu_before;
    let threads = measure::ThreadCpu::now().since(&threads_before);
    let copies: f64 = nodes
        .iter()
        .map(|node| node.counter(RECEIVED_UNFILTERED))
        .sum::<f64>()
        - copies_before;
    let deliveries = ours::lock(&deliveries).clone();
    let mut latencies = Vec::new();
    let mut delivered = 0;
    for (origin, started, index) in &sent {
        let mut complete = true;
        let mut last = *started;
        for node in (0..n).filter(|node| node != origin) {
            match deliveries.get(&(node, *index)) {
                Some(at) => {
                    delivered += 1;
                    last = last.max(*at);
                }
                None => complete = false,
            }
        }
        if complete {
            latencies.push(ms(last - *started));
        }
    }
    drop(nodes);
    Ok(finish(
        n,
        alerts,
        &latencies,
        delivered,
        copies,
        (cpu, threads),
    ))
}

/// CPU an idle federation of `n` connected nodes uses, per node, as a share of one core.
pub async fn idle(n: usize, seconds: u64) -> anyhow::Result<f64> {
    let edges = topology::edges(n, 7);
    let nodes = ours::cluster(n, &edges).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = measure::process_cpu();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let used = measure::process_cpu() - before;
    for node in nodes {
        node.stop().await?;
    }
    Ok(used.as_secs_f64() / seconds as f64 / n as f64)
}
