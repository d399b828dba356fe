//! The node actor: the driver of this node's [`Engine`]. It feeds the engine what happens
//! (gossip, sync pages, commands, write completions, timers, connections, the members
//! file) and carries out what the engine says (verdicts, writes, publishing, sync requests,
//! admitting peers, replies, timers). Every protocol decision is the engine's; the actor
//! owns the IO: the store writer, the network handle, the files in the data dir, and what
//! people see (names, the status snapshot, the journal).
//!
//! - A received message: net loop → actor (validate in the engine, verdict back to the net
//!   loop at once) → store writer; the verdict never waits for the write.
//! - A local message: engine signs → durable write → own-chain record → publish → reply.
//! - Sync answers and display loads read the store on blocking readers, off the actor.
//!
//! Layout: [`outputs`] carries out the engine's outputs and the completions they cause,
//! [`network`] the network's events and sync, [`control`] the CLI's requests and reloads,
//! [`notices`] the journal of what the engine noticed, [`snapshot`] what the page shows.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use libp2p::PeerId;
use solidarity_engine::{CommandToken, Engine, EngineConfig, Input, LiveConfig, Timer};
use solidarity_net::{NetEvent, NetHandle};
use solidarity_proto::{AuthorKey, FederationId, envelope};
use solidarity_store::Store;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::control_server::ControlCall;
use super::directory::{self, Directory};
use super::metrics::NodeMetrics;
use super::snapshot::Snapshot;
use super::views::{self, Shown};
use super::writer::{WriteError, Writer};
use crate::identity;
use crate::members::MembersFile;

mod control;
mod network;
mod notices;
mod outputs;
mod snapshot;

use outputs::{Completion, PendingReply};

/// Control requests waiting for the actor: a few CLI calls at once.
pub const CONTROL_QUEUE: usize = 64;
/// How often expired messages are swept.
const EXPIRY_SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// Longest a received message waits to be flushed (it is stored and shown at once).
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Longest the status page lags behind the store while messages arrive.
const SNAPSHOT_INTERVAL: Duration = Duration::from_millis(500);

/// Why the actor stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum ActorError {
    #[error("storage failed, the daemon stops rather than acknowledge unsaved data: {0}")]
    Storage(WriteError),
    #[error("the store writer stopped")]
    WriterStopped,
    #[error("the network event loop stopped")]
    NetworkStopped,
    #[error(
        "cannot record this node's chain head in DATA/own-chain, the daemon stops rather than risk forking its key: {0}"
    )]
    OwnChain(std::io::Error),
    #[error(
        "cannot record the settled revocations in DATA/settled-revocations, the daemon stops rather than let a restart un-revoke a key: {0}"
    )]
    SettledRevocations(std::io::Error),
}

/// Fixed facts about this node.
pub struct Identity {
    pub key: SigningKey,
    pub federation: FederationId,
    pub status_url: String,
    /// The admin page's URL, when it is on.
    pub admin_url: Option<String>,
    /// The metrics endpoint's URL, when it is on.
    pub metrics_url: Option<String>,
    /// How the node stands with tor (the tor task updates it); none without tor.
    pub tor: Option<watch::Receiver<solidarity_control::TorView>>,
    /// The validated configuration the daemon runs with.
    pub config: crate::config::NodeConfig,
}

/// What changed since the last published snapshot.
struct Stale {
    /// Shown alerts or offers (or what marks them suspect).
    alerts: bool,
    /// Members: trust, connections, canaries.
    members: bool,
    /// Only the members' "last message" times.
    last_seen: bool,
    /// Shown alerts expired: the set is to be loaded again.
    backfill: bool,
}

impl Stale {
    fn any(&self) -> bool {
        self.alerts || self.members || self.last_seen || self.backfill
    }
}

/// The engine's timers, each due at an instant.
#[derive(Default)]
struct Timers(BTreeMap<Timer, Instant>);

impl Timers {
    fn next(&self) -> Option<Instant> {
        self.0.values().min().copied()
    }

    /// Removes and returns the timers due at `now`.
    fn due(&mut self, now: Instant) -> Vec<Timer> {
        let due: Vec<Timer> = self
            .0
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(timer, _)| *timer)
            .collect();
        for timer in &due {
            self.0.remove(timer);
        }
        due
    }
}

type NodeEngine = Engine<PeerId, Arc<dyn Store>>;

/// The directory's version before its first build.
const NOT_BUILT: u64 = u64::MAX;

pub struct NodeActor {
    identity: Identity,
    me: AuthorKey,
    peer_id: PeerId,
    started_at: u64,
    engine: NodeEngine,
    store: Arc<dyn Store>,
    writer: Writer,
    net: NetHandle,
    data_dir: std::path::PathBuf,
    /// Where the revocations made final are kept across restarts.
    settled_file: super::settled_revocations::SettledFile,
    /// Names of the keys the engine lists, and the admin's members file.
    directory: Directory,
    /// The engine's `members_version` the directory was built at.
    directory_version: u64,
    /// The engine's `derived_for_stored` already counted in the metric.
    derived_counted: u64,
    /// Trusted members with a connection up.
    connected: HashSet<AuthorKey>,
    last_message_at: HashMap<AuthorKey, u64>,
    stored_messages: usize,
    p2p_ports: Vec<u16>,
    shown: Shown,
    snapshot: watch::Sender<Arc<Snapshot>>,
    control: mpsc::Receiver<ControlCall>,
    reload: mpsc::Receiver<super::reload::ReloadCall>,
    net_events: mpsc::Receiver<NetEvent>,
    writes: FuturesUnordered<BoxFuture<'static, Completion>>,
    syncs: JoinSet<network::SyncPage>,
    /// Sync answers and display loads reading the store on blocking readers.
    readers: JoinSet<()>,
    /// Bounds the display loads in flight (`control::DISPLAY_LOADS_IN_FLIGHT`).
    display_loads: Arc<tokio::sync::Semaphore>,
    /// Bounds the sync answers in flight per peer and in all.
    answer_budget: super::sync_reader::AnswerBudget,
    timers: Timers,
    /// Commands waiting for the engine's reply (or a maintenance write's completion).
    replies: HashMap<CommandToken, PendingReply>,
    next_command: u64,
    /// Received gossip waiting for its verdict, by the engine's token.
    gossip: HashMap<u64, solidarity_net::GossipToken>,
    next_gossip: u64,
    /// What changed since the last published snapshot.
    stale: Stale,
    /// When the member list of the snapshot was last rebuilt.
    members_built_at: std::time::Instant,
    /// When the shown alerts were last loaded again after some expired.
    backfilled_at: Option<std::time::Instant>,
    metrics: NodeMetrics,
    registry: Arc<prometheus_client::registry::Registry>,
    /// Alerts and updates stored, for the notifier (never waits).
    notify_feed: crate::notify::reports::Feed,
    /// Sync rounds in a row that failed, per member (reset by one that succeeds).
    sync_failures: HashMap<AuthorKey, u32>,
}

/// The channels and handles the actor is built from.
pub struct ActorParts {
    pub identity: Identity,
    pub data_dir: std::path::PathBuf,
    pub store: Arc<dyn Store>,
    pub writer: Writer,
    pub net: NetHandle,
    pub net_events: mpsc::Receiver<NetEvent>,
    pub control: mpsc::Receiver<ControlCall>,
    /// Reloads asked for by SIGHUP.
    pub reload: mpsc::Receiver<super::reload::ReloadCall>,
    pub snapshot: watch::Sender<Arc<Snapshot>>,
    pub members: MembersFile,
    pub metrics: NodeMetrics,
    /// Holds `metrics` and gossipsub's counters.
    pub registry: Arc<prometheus_client::registry::Registry>,
    pub notify_feed: crate::notify::reports::Feed,
}

/// What a (re)loaded configuration changes in the running engine.
fn live_config(config: &crate::config::NodeConfig) -> LiveConfig {
    LiveConfig {
        limits: solidarity_engine::budget::Limits {
            messages_per_minute: config.member_messages_per_minute,
            bytes_per_minute: config.member_bytes_per_minute,
            stored_bytes: config.member_stored_bytes,
        },
        statements_per_signer: config.statements_per_signer,
        vouch_threshold: config.vouch_threshold,
        canary_rules: solidarity_engine::canary::CanaryRules {
            max_interval_ms: millis(config.canary_max_interval),
            grace_ms: millis(config.canary_grace),
        },
        canary: solidarity_engine::engine::OwnCanary {
            statement: config.canary_statement.clone(),
            interval_ms: millis(config.canary_interval),
        },
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

impl NodeActor {
    pub fn new(parts: ActorParts) -> anyhow::Result<Self> {
        let me = envelope::author_key(&parts.identity.key);
        let peer_id = identity::peer_id(&me)?;
        let config = &parts.identity.config;
        let own_chain_recorded = super::own_chain::read(&parts.data_dir)?;
        let own_chain_restoring = super::own_chain::restoring(&parts.data_dir, config.fresh_chain)?;
        let (settled_file, settled) =
            super::settled_revocations::SettledFile::open(&parts.data_dir)?;
        let mut loaded = solidarity_store::engine_start(parts.store.as_ref())?;
        loaded.statements.restore_settled(settled);
        let live = live_config(config);
        let engine_config = EngineConfig {
            federation: parts.identity.federation,
            limits: live.limits,
            statements_per_signer: live.statements_per_signer,
            vouch_threshold: live.vouch_threshold,
            sync_interval_ms: millis(config.sync_interval),
            flush_interval_ms: millis(FLUSH_INTERVAL),
            own_chain_recorded,
            fresh_chain: config.fresh_chain,
            own_chain_restoring,
            seed: rand::random(),
            canary: live.canary,
            expiry_interval_ms: millis(EXPIRY_SWEEP_INTERVAL),
        };
        let engine = Engine::new(
            engine_config,
            parts.identity.key.clone(),
            Arc::clone(&parts.store),
            loaded,
            Box::new(rand::random::<[u8; 32]>),
        )
        .with_canary_rules(live.canary_rules);
        if let Some(why) = engine.paused() {
            tracing::warn!("{why}");
        }
        let shown = Shown::load(
            parts.store.as_ref(),
            views::DISPLAY_LIMIT,
            now_ms().saturating_add_signed(config.clock_offset_ms),
            me,
        )?;
        let stored_messages = parts.store.len()?;
        let mut last_message_at = HashMap::new();
        for key in parts
            .members
            .members
            .iter()
            .map(|member| member.key)
            .chain([me])
        {
            if let Some((_, id)) = parts.store.chain_head(&key)?
                && let Some(meta) = parts.store.meta(&id)?
            {
                last_message_at.insert(key, meta.created_at);
            }
        }
        // An invalid file refuses to start, as before (`solidarity node` says why).
        directory::listed_keys(&parts.members)?;
        let mut actor = Self {
            me,
            peer_id,
            started_at: now_ms(),
            engine,
            store: parts.store,
            writer: parts.writer,
            net: parts.net,
            data_dir: parts.data_dir,
            settled_file,
            identity: parts.identity,
            directory: Directory::new(parts.members),
            directory_version: NOT_BUILT,
            derived_counted: 0,
            connected: HashSet::new(),
            last_message_at,
            stored_messages,
            p2p_ports: Vec::new(),
            shown,
            snapshot: parts.snapshot,
            control: parts.control,
            reload: parts.reload,
            net_events: parts.net_events,
            writes: FuturesUnordered::new(),
            syncs: JoinSet::new(),
            readers: JoinSet::new(),
            display_loads: Arc::new(tokio::sync::Semaphore::new(
                control::DISPLAY_LOADS_IN_FLIGHT,
            )),
            answer_budget: super::sync_reader::AnswerBudget::default(),
            timers: Timers::default(),
            replies: HashMap::new(),
            next_command: 0,
            gossip: HashMap::new(),
            next_gossip: 0,
            stale: Stale {
                alerts: true,
                members: true,
                last_seen: false,
                backfill: false,
            },
            backfilled_at: None,
            members_built_at: std::time::Instant::now(),
            metrics: parts.metrics,
            registry: parts.registry,
            notify_feed: parts.notify_feed,
            sync_failures: HashMap::new(),
        };
        actor.refresh_snapshot();
        Ok(actor)
    }

    /// This node's clock: the host's, shifted by `clock_offset_ms` (zero outside tests).
    fn now_ms(&self) -> u64 {
        now_ms().saturating_add_signed(self.identity.config.clock_offset_ms)
    }

    /// Runs until shutdown or a fatal error.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), ActorError> {
        let listed = directory::listed_keys(self.directory.file()).unwrap_or_default();
        self.feed(Input::MembersChanged(listed)).await?;
        self.feed(Input::Start).await?;
        let mut snapshot_tick = tokio::time::interval(SNAPSHOT_INTERVAL);
        snapshot_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next_timer = self.timers.next();
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(completion) = self.writes.next(), if !self.writes.is_empty() => {
                    self.completed(completion).await?;
                }
                call = self.control.recv() => match call {
                    Some(call) => self.handle_control(call).await?,
                    None => break,
                },
                Some(call) = self.reload.recv() => self.handle_reload(call).await?,
                // Before the network: a member flooding it never holds back the timers
                // (this node's canary, flushes, sync, expiry).
                () = sleep_until(next_timer), if next_timer.is_some() => {
                    for timer in self.timers.due(Instant::now()) {
                        self.feed(Input::Timer(timer)).await?;
                    }
                }
                event = self.net_events.recv() => match event {
                    Some(event) => self.handle_net_event(event).await?,
                    None => return Err(ActorError::NetworkStopped),
                },
                Some(done) = self.readers.join_next(), if !self.readers.is_empty() => {
                    if let Err(error) = done {
                        tracing::error!(%error, "store reader failed");
                    }
                }
                Some(page) = self.syncs.join_next(), if !self.syncs.is_empty() => {
                    match page {
                        Ok(page) => self.handle_sync_page(page).await?,
                        Err(error) => tracing::error!(%error, "sync task failed"),
                    }
                }
                _ = snapshot_tick.tick(), if self.stale.any() => self.refresh_snapshot(),
            }
        }
        // Readers in flight finish (their blocking reads cannot be cancelled), so no store
        // handle outlives the actor.
        while self.readers.join_next().await.is_some() {}
        // Ordered drain: every queued write completes (and is acknowledged) before exit.
        while let Some(completion) = self.writes.next().await {
            self.completed(completion).await?;
        }
        Ok(())
    }

    /// Hands `input` to the engine and carries out what it says, in order.
    async fn feed(&mut self, input: Input<PeerId>) -> Result<(), ActorError> {
        let outputs = self.engine.handle(self.now_ms(), input);
        for (path, judged) in self.engine.take_judged() {
            self.metrics.judged(path, judged);
        }
        let derived = self.engine.derived_for_stored();
        self.metrics
            .trust_recomputations
            .inc_by(derived.wrapping_sub(self.derived_counted));
        self.derived_counted = derived;
        self.carry_out(outputs).await?;
        if self.engine.members_version() != self.directory_version {
            self.members_changed();
        }
        Ok(())
    }

    /// The engine derived trust again: names the keys it lists, logs each change of a
    /// key's standing once, and forgets connections of keys no longer trusted.
    fn members_changed(&mut self) {
        // What trust is at start was learnt before: it is not news.
        let at_start = self.directory_version == NOT_BUILT;
        self.directory_version = self.engine.members_version();
        let before = self
            .directory
            .rebuild(self.engine.members(), self.engine.vouches());
        if !at_start {
            self.log_standing_changes(&before);
        }
        let directory = &self.directory;
        self.connected.retain(|key| directory.trusted(key));
        self.publish_snapshot();
    }

    /// A fresh token for a command waiting for its reply.
    fn command_token(&mut self, reply: PendingReply) -> CommandToken {
        let token = CommandToken(self.next_command);
        self.next_command = self.next_command.wrapping_add(1);
        self.replies.insert(token, reply);
        token
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
