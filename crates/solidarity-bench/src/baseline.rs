//! The baseline: stock libp2p gossipsub with default settings and its own message signing,
//! on the same transport (TCP, noise, yamux), graph and machine as our nodes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, SwarmBuilder, gossipsub, noise, tcp, yamux};
use prometheus_client::registry::Registry;
use tokio::sync::mpsc;

const TOPIC: &str = "bench";

enum Command {
    Dial(Multiaddr),
    Publish(Vec<u8>),
}

/// When each (node, message index) delivery happened; the index is the message's first
/// 8 bytes.
pub type Deliveries = Arc<Mutex<HashMap<(usize, u64), Instant>>>;

/// One stock gossipsub node on its own task.
pub struct BaselineNode {
    address: Multiaddr,
    commands: mpsc::Sender<Command>,
    subscribed_peers: Arc<Mutex<usize>>,
    registry: Arc<Registry>,
    task: tokio::task::JoinHandle<()>,
}

impl BaselineNode {
    async fn start(index: usize, deliveries: Deliveries) -> anyhow::Result<Self> {
        let mut registry = Registry::default();
        let mut swarm = SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )?
            .with_behaviour(|key| {
                gossipsub::Behaviour::<
                    gossipsub::IdentityTransform,
                    gossipsub::AllowAllSubscriptionFilter,
                >::new(
                    gossipsub::MessageAuthenticity::Signed(key.clone()),
                    gossipsub::Config::default(),
                )
                .map(|behaviour| {
                    behaviour.with_metrics(
                        registry.sub_registry_with_prefix("gossipsub"),
                        gossipsub::MetricsConfig::default(),
                    )
                })
                .map_err(|error| -> Box<dyn std::error::Error + Send + Sync> { error.into() })
            })
            .map_err(|error| anyhow::anyhow!("{error}"))?
            .with_swarm_config(|config| {
                config.with_idle_connection_timeout(Duration::from_secs(3600))
            })
            .build();
        swarm
            .behaviour_mut()
            .subscribe(&gossipsub::IdentTopic::new(TOPIC))?;
        swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
        let address = loop {
            if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                break address;
            }
        };
        let (commands, mut command_rx) = mpsc::channel(1024);
        let subscribed_peers = Arc::new(Mutex::new(0usize));
        let subscribed = subscribed_peers.clone();
        let task = tokio::spawn(async move {
            let topic = gossipsub::IdentTopic::new(TOPIC);
            loop {
                tokio::select! {
                    command = command_rx.recv() => match command {
                        Some(Command::Dial(address)) => {
                            let _ = swarm.dial(address);
                        }
                        Some(Command::Publish(data)) => {
                            let _ = swarm.behaviour_mut().publish(topic.clone(), data);
                        }
                        None => break,
                    },
                    event = swarm.select_next_some() => match event {
                        SwarmEvent::Behaviour(gossipsub::Event::Message { message, .. }) => {
                            if let Some(Ok(head)) = message.data.get(..8).map(<[u8; 8]>::try_from) {
                                crate::ours::lock(&deliveries)
                                    .entry((index, u64::from_be_bytes(head)))
                                    .or_insert_with(Instant::now);
                            }
                        }
                        SwarmEvent::Behaviour(gossipsub::Event::Subscribed { .. }) => {
                            *crate::ours::lock(&subscribed) += 1;
                        }
                        _ => {}
                    },
                }
            }
        });
        Ok(Self {
            address,
            commands,
            subscribed_peers,
            registry: Arc::new(registry),
            task,
        })
    }

    /// Publishes `data` from this node.
    pub async fn publish(&self, data: Vec<u8>) -> anyhow::Result<()> {
        self.commands
            .send(Command::Publish(data))
            .await
            .map_err(|_| anyhow::anyhow!("baseline node stopped"))
    }

    /// A counter's value in this node's gossipsub metrics.
    pub fn counter(&self, name: &str) -> f64 {
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        crate::measure::counter_sum(&text, name)
    }
}

impl Drop for BaselineNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts `n` baseline nodes connected along `edges` and waits until every node has seen
/// each neighbour subscribe, then three heartbeats for the mesh to form.
pub async fn cluster(
    n: usize,
    edges: &[(usize, usize)],
    deliveries: &Deliveries,
) -> anyhow::Result<Vec<BaselineNode>> {
    let mut nodes = Vec::with_capacity(n);
    for index in 0..n {
        nodes.push(BaselineNode::start(index, deliveries.clone()).await?);
    }
    for (i, j) in edges {
        nodes[*i]
            .commands
            .send(Command::Dial(nodes[*j].address.clone()))
            .await
            .map_err(|_| anyhow::anyhow!("baseline node stopped"))?;
    }
    let degree = crate::topology::degrees(n, edges);
    let started = Instant::now();
    for (i, node) in nodes.iter().enumerate() {
        while *crate::ours::lock(&node.subscribed_peers) < degree[i] {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(120),
                "baseline node {i} did not reach its {} peers",
                degree[i]
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    Ok(nodes)
}
