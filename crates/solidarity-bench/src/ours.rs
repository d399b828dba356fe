//! Solidarity nodes for the benchmarks: real daemons (store, writer, network, actor,
//! control socket, status page) in this process, each on a sled store that records when
//! each message became durable.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use solidarity::config::NodeConfig;
use solidarity::identity::Card;
use solidarity::members::MembersFile;
use solidarity_control::Client;
use solidarity_proto::{AuthorKey, MessageId};
use solidarity_store::{
    Compromise, InsertOutcome, MessageMeta, NewMessage, SledOptions, SledStore, Store, StoreError,
    StoredEnvelope,
};
use tokio_util::sync::CancellationToken;

/// Federation name of every benchmark node.
pub const FEDERATION: &str = "bench";

/// When each message was stored (applied: the node holds and shows it) and when it became
/// durable (flushed) on a node.
#[derive(Default)]
pub struct DurableLog {
    staged: Mutex<Vec<MessageId>>,
    stored: Mutex<HashMap<MessageId, Instant>>,
    durable: Mutex<HashMap<MessageId, Instant>>,
}

impl DurableLog {
    /// When `id` was stored, if it was.
    pub fn at(&self, id: &MessageId) -> Option<Instant> {
        lock(&self.stored).get(id).copied()
    }

    /// How many messages were stored.
    pub fn count(&self) -> usize {
        lock(&self.stored).len()
    }

    /// How many messages became durable.
    pub fn durable_count(&self) -> usize {
        lock(&self.durable).len()
    }

    /// The latest moment a message became durable.
    pub fn last_durable(&self) -> Option<Instant> {
        lock(&self.durable).values().max().copied()
    }
}

/// Locks a mutex; a panicked holder leaves plain data that is still usable.
pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A store that notes when each message is stored and, at each flush, the messages the
/// flush made durable.
pub struct ObservedStore {
    inner: SledStore,
    log: Arc<DurableLog>,
}

impl ObservedStore {
    pub fn open(path: &Path) -> anyhow::Result<(Arc<Self>, Arc<DurableLog>)> {
        let log = Arc::new(DurableLog::default());
        let inner = SledStore::open(&SledOptions::new(path))?;
        Ok((
            Arc::new(Self {
                inner,
                log: log.clone(),
            }),
            log,
        ))
    }
}

impl Store for ObservedStore {
    fn insert_batch(&self, messages: &[NewMessage]) -> Result<Vec<InsertOutcome>, StoreError> {
        let outcomes = self.inner.insert_batch(messages)?;
        let now = Instant::now();
        let mut staged = lock(&self.log.staged);
        let mut stored = lock(&self.log.stored);
        for (message, outcome) in messages.iter().zip(&outcomes) {
            if *outcome == InsertOutcome::Stored {
                staged.push(message.id);
                stored.entry(message.id).or_insert(now);
            }
        }
        Ok(outcomes)
    }
    fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush()?;
        let now = Instant::now();
        let staged = std::mem::take(&mut *lock(&self.log.staged));
        let mut durable = lock(&self.log.durable);
        for id in staged {
            durable.entry(id).or_insert(now);
        }
        Ok(())
    }
    fn contains(&self, id: &MessageId) -> Result<bool, StoreError> {
        self.inner.contains(id)
    }
    fn envelope(&self, id: &MessageId) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.envelope(id)
    }
    fn meta(&self, id: &MessageId) -> Result<Option<MessageMeta>, StoreError> {
        self.inner.meta(id)
    }
    fn ids_with_prefix(&self, hex: &str, limit: usize) -> Result<Vec<MessageId>, StoreError> {
        self.inner.ids_with_prefix(hex, limit)
    }
    fn ids_after(
        &self,
        after: Option<&MessageId>,
        limit: usize,
    ) -> Result<Vec<MessageId>, StoreError> {
        self.inner.ids_after(after, limit)
    }
    fn id_at(&self, author: &AuthorKey, seq: u64) -> Result<Option<MessageId>, StoreError> {
        self.inner.id_at(author, seq)
    }
    fn by_kind(&self, kind: &str) -> Result<Vec<StoredEnvelope>, StoreError> {
        self.inner.by_kind(kind)
    }
    fn newest(&self, kind: &str, limit: usize) -> Result<Vec<StoredEnvelope>, StoreError> {
        self.inner.newest(kind, limit)
    }
    fn referring_newest(
        &self,
        target: &MessageId,
        kind: &str,
        limit: usize,
    ) -> Result<Vec<solidarity_store::Referring>, StoreError> {
        self.inner.referring_newest(target, kind, limit)
    }
    fn newest_per_author(
        &self,
        kind: &str,
        per_author: usize,
        now_ms: u64,
    ) -> Result<Vec<solidarity_store::StoredEnvelope>, solidarity_store::StoreError> {
        self.inner.newest_per_author(kind, per_author, now_ms)
    }
    fn newest_by(
        &self,
        kind: &str,
        author: &AuthorKey,
        limit: usize,
        now_ms: u64,
    ) -> Result<Vec<solidarity_store::StoredEnvelope>, solidarity_store::StoreError> {
        self.inner.newest_by(kind, author, limit, now_ms)
    }
    fn stored_bytes(&self, author: &AuthorKey) -> Result<u64, StoreError> {
        self.inner.stored_bytes(author)
    }
    fn author_range(
        &self,
        author: &AuthorKey,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        self.inner.author_range(author, from_seq, limit)
    }
    fn watermark(&self, author: &AuthorKey) -> Result<u64, StoreError> {
        self.inner.watermark(author)
    }
    fn chain_head(&self, author: &AuthorKey) -> Result<Option<(u64, MessageId)>, StoreError> {
        self.inner.chain_head(author)
    }
    fn expire(&self, now_ms: u64) -> Result<usize, StoreError> {
        self.inner.expire(now_ms)
    }
    fn record_fork(
        &self,
        evidence: &NewMessage,
        detected_at: u64,
        from_seq: u64,
    ) -> Result<bool, StoreError> {
        self.inner.record_fork(evidence, detected_at, from_seq)
    }
    fn compromised(&self) -> Result<Vec<Compromise>, StoreError> {
        self.inner.compromised()
    }
    fn clear_compromise(&self, author: &AuthorKey) -> Result<(), StoreError> {
        self.inner.clear_compromise(author)
    }
    fn kept_canaries(&self) -> Result<Vec<(AuthorKey, Vec<StoredEnvelope>)>, StoreError> {
        self.inner.kept_canaries()
    }
    fn len(&self) -> Result<usize, StoreError> {
        self.inner.len()
    }
}

/// Writes a fresh data dir: node key, loopback config with port 0.
pub fn init_data_dir(dir: &Path) -> anyhow::Result<()> {
    solidarity::init::init(
        dir,
        &solidarity::init::InitOptions {
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            announce: vec!["/ip4/127.0.0.1/tcp/0".into()],
            status_addr: "127.0.0.1:0".into(),
            federation: FEDERATION.into(),
            network: solidarity::tor::Network::Clearnet,
        },
    )
    .map(drop)
}

/// A daemon running in this process.
pub struct OurNode {
    pub dir: tempfile::TempDir,
    pub log: Arc<DurableLog>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl OurNode {
    /// Starts a daemon on an initialised data dir (its store under `store/`) and waits
    /// until its control socket answers.
    pub async fn start(dir: tempfile::TempDir) -> anyhow::Result<Self> {
        let config = NodeConfig::load(dir.path())?;
        let (store, log) = ObservedStore::open(&dir.path().join(solidarity::daemon::STORE_DIR))?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(solidarity::daemon::run_with_store(
            config,
            store,
            stop.clone(),
        ));
        let node = Self {
            dir,
            log,
            stop,
            task,
        };
        let started = Instant::now();
        while node.call(Client::status).await.is_err() {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(30),
                "a benchmark node did not start"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(node)
    }

    /// A fresh node.
    pub async fn fresh() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        init_data_dir(dir.path())?;
        Self::start(dir).await
    }

    /// Runs a blocking control call off the async threads.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Client) -> Result<T, solidarity_control::ControlError> + Send + 'static,
    ) -> anyhow::Result<T> {
        let client = Client::new(self.dir.path());
        Ok(tokio::task::spawn_blocking(move || f(&client)).await??)
    }

    pub async fn card(&self) -> anyhow::Result<Card> {
        Card::parse(&self.call(Client::card).await?)
    }

    /// Trusts `members` (name, card) and makes the daemon reload its list.
    pub async fn trust(&self, members: &[(String, Card)]) -> anyhow::Result<()> {
        let mut file = MembersFile::load(self.dir.path())?;
        for (name, card) in members {
            file.add(card, name)?;
        }
        file.save(self.dir.path())?;
        self.call(Client::reload_members).await
    }

    pub async fn connected(&self) -> usize {
        self.call(Client::peers)
            .await
            .map(|peers| peers.iter().filter(|peer| peer.connected).count())
            .unwrap_or(0)
    }

    /// A counter's value in the node's metrics.
    pub async fn counter(&self, name: &'static str) -> anyhow::Result<f64> {
        let text = self.call(Client::metrics).await?;
        Ok(crate::measure::counter_sum(&text, name))
    }

    /// Stops the daemon cleanly.
    pub async fn stop(self) -> anyhow::Result<tempfile::TempDir> {
        self.stop.cancel();
        self.task.await.context("daemon task")??;
        Ok(self.dir)
    }
}

/// Starts `n` nodes connected along `edges` (i dials j), every node trusting every other.
pub async fn cluster(n: usize, edges: &[(usize, usize)]) -> anyhow::Result<Vec<OurNode>> {
    let mut nodes = Vec::with_capacity(n);
    for _ in 0..n {
        nodes.push(OurNode::fresh().await?);
    }
    let mut cards = Vec::with_capacity(n);
    for node in &nodes {
        cards.push(node.card().await?);
    }
    for (i, node) in nodes.iter().enumerate() {
        let members: Vec<(String, Card)> = cards
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(j, card)| {
                let mut card = card.clone();
                // Only the chosen neighbours are dialled; the others may dial in.
                if !edges.contains(&(i, j)) {
                    card.addresses.clear();
                }
                (format!("node{j}"), card)
            })
            .collect();
        node.trust(&members).await?;
    }
    let degree = crate::topology::degrees(n, edges);
    let started = Instant::now();
    for (i, node) in nodes.iter().enumerate() {
        while node.connected().await < degree[i] {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(120),
                "node {i} did not reach its {} connections",
                degree[i]
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(nodes)
}
