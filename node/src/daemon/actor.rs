//! The node actor: owns the protocol state, the store handle and the writer, and is the
//! only task that decides what a message means.
//!
//! - Local messages (CLI): sign with the next seq → validate like a peer would → write and
//!   flush → publish → acknowledge with the id. A failed write stops the daemon; the
//!   CLI never sees an id for a message that is not on disk.
//! - Gossiped messages: validate → report the verdict to gossipsub → write if accepted.
//! - Sync: on every new member connection and every `sync_interval` with a random
//!   connected member, ask for what we miss; answer others' requests from the store.
//! - After each change the actor publishes a fresh [`Snapshot`] for the status page.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use libp2p::PeerId;
use libp2p::multiaddr::Protocol;
use rand::seq::IteratorRandom;
use solidarity_control::{
    AlertDetail, Alerts, CanaryView, CardLine, Distrust, Done, MemberView, Members, MetricsText,
    Offers, Raised, Refusal, RefusalCode, RevocationSigner, StanceView, StatusView, TrustBasis,
    request,
};
use solidarity_net::{Acceptance, NetError, NetEvent, NetHandle};
use solidarity_proto::payload::AlertUpdate;
use solidarity_proto::payload::MirrorWithdraw;
use solidarity_proto::state::{AlertView, OfferView};
use solidarity_proto::sync::{self, SyncRequest, SyncResponse, Watermark};
use solidarity_proto::trust::{Listed, Standing, Why};
use solidarity_proto::{
    AuthorKey, Body, FederationId, Lookup, MessageId, Payload, SignatureChecked, TrustView,
    Verdict, envelope,
};
use solidarity_store::{InsertOutcome, NewMessage, Store};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::control_server::{Call, ControlCall, Reply, SignReply};
use super::metrics::{self, NodeMetrics};
use super::refusals;
use super::snapshot::Snapshot;
use super::trust_log::{self, Named};
use super::views::{self, Shown, Views};
use super::writer::{Maintenance, WriteError, Writer};
use crate::identity::{self, Card};
use crate::members::MembersFile;
use solidarity_engine::Compromised;
use solidarity_engine::canary::{CanaryChange, CanaryWatch};
use solidarity_engine::statements::{self, Keep, Relay};

/// Control requests waiting for the actor: a few CLI calls at once.
pub const CONTROL_QUEUE: usize = 64;
/// How often expired messages are swept.
const EXPIRY_SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// How often members' canaries are checked for lateness (cheap: one pass over members).
const CANARY_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Longest a received message waits to be flushed (it is stored and shown at once).
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Fewest new envelopes in a sync page worth verifying on several threads.
const SIGNATURE_BATCH_MIN: usize = 16;
/// Longest the status page lags behind the store while messages arrive.
const SNAPSHOT_INTERVAL: Duration = Duration::from_millis(500);
/// Longest the members' "last message" times on the status page lag behind.
const LAST_SEEN_INTERVAL: Duration = Duration::from_secs(5);

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

/// Where a write came from, and what to do once it is durable.
enum Origin {
    /// Signed here: publish, then acknowledge to the CLI.
    Local { reply: SignReply, envelope: Vec<u8> },
    /// Received by gossip or sync.
    Remote,
}

struct InsertDone {
    message: NewMessage,
    body: Body,
    payload: Payload,
    origin: Origin,
    result: Result<Result<InsertOutcome, WriteError>, oneshot::error::RecvError>,
}

/// What a finished maintenance write was for.
enum MaintenanceDone {
    Expired {
        now_ms: u64,
    },
    ForkRecorded,
    CompromiseCleared {
        reply: Reply<request::MemberRetrust>,
    },
    Flushed,
}

enum Completion {
    Insert(Box<InsertDone>),
    Maintained {
        done: MaintenanceDone,
        result: Result<Result<usize, WriteError>, oneshot::error::RecvError>,
    },
}

struct SyncPage {
    peer: PeerId,
    round: usize,
    /// A page of the statement phase (see `solidarity_proto::sync`).
    statements: bool,
    result: Result<Vec<u8>, NetError>,
}

struct MemberState {
    name: String,
    /// Its collective as shown.
    collective: String,
    /// Endorsements count once per group: the collective the admin gave (several node
    /// keys may share one), or the key itself for a vouched member.
    group: String,
    /// Labels its vouchers gave that differ from its name (see `vouch_labels`).
    label_conflicts: Vec<String>,
    peer: PeerId,
    addresses: Vec<libp2p::Multiaddr>,
    /// From the member's card: SHA-256 commitment of its duress key.
    duress_commitment: Option<[u8; 32]>,
    /// The path by which it is (or was) trusted.
    why: Why,
    /// Trusted now, or why not: a key that a revocation, a fork or the end of its
    /// certificate took out of trust stays listed, never admitted or dialled.
    standing: Standing,
}

impl MemberState {
    fn trusted(&self) -> bool {
        self.standing == Standing::Trusted
    }
}

/// Facts of a message written but not yet flushed, so validation sees it already.
struct Pending {
    author: AuthorKey,
    kind: String,
}

/// What changed since the last published snapshot.
struct Stale {
    /// Shown alerts or offers (or what marks them suspect).
    alerts: bool,
    /// Members: trust, connections, canaries.
    members: bool,
    /// Only the members' "last message" times.
    last_seen: bool,
}

impl Stale {
    fn any(&self) -> bool {
        self.alerts || self.members || self.last_seen
    }
}

/// Fixed facts about this node.
pub struct Identity {
    pub key: SigningKey,
    pub federation: FederationId,
    pub status_url: String,
    /// The admin page's URL, when it is on.
    pub admin_url: Option<String>,
    /// The validated configuration the daemon runs with.
    pub config: crate::config::NodeConfig,
}

pub struct NodeActor {
    identity: Identity,
    me: AuthorKey,
    peer_id: PeerId,
    started_at: u64,
    store: Arc<dyn Store>,
    writer: Writer,
    net: NetHandle,
    data_dir: std::path::PathBuf,
    /// Where the revocations made final are kept across restarts.
    settled_file: super::settled_revocations::SettledFile,
    /// The admin's own list, as last read.
    members_file: MembersFile,
    /// Everyone trusted now: the admin's list plus vouched-for keys.
    members: BTreeMap<AuthorKey, MemberState>,
    by_peer: HashMap<PeerId, AuthorKey>,
    connected: HashSet<AuthorKey>,
    last_message_at: HashMap<AuthorKey, u64>,
    /// Keys that signed conflicting chains: no longer trusted until the admin trusts them
    /// again.
    compromised: HashMap<AuthorKey, Compromised>,
    head: Option<(u64, MessageId)>,
    /// How far this node had signed, and whether signing waits for its chain (SPEC §7).
    own_chain: super::own_chain::OwnChain,
    pending: HashMap<MessageId, Pending>,
    pending_chain: HashMap<(AuthorKey, u64), MessageId>,
    stored_messages: usize,
    p2p_ports: Vec<u16>,
    views: Views,
    shown: Shown,
    snapshot: watch::Sender<Arc<Snapshot>>,
    control: mpsc::Receiver<ControlCall>,
    reload: mpsc::Receiver<super::reload::ReloadCall>,
    net_events: mpsc::Receiver<NetEvent>,
    writes: FuturesUnordered<BoxFuture<'static, Completion>>,
    syncs: JoinSet<SyncPage>,
    syncing: HashSet<PeerId>,
    /// Per sync session: statements sent to us and not kept, listed as held in the next
    /// statement round so they are not sent again.
    statements_seen: HashMap<PeerId, HashMap<AuthorKey, Vec<MessageId>>>,
    /// Statements queued for writing, per signer: (revocations, certificates).
    pending_statements: HashMap<AuthorKey, (usize, usize)>,
    /// Revocations queued for writing, per (signer, revoked key).
    pending_revoked: HashMap<(AuthorKey, AuthorKey), usize>,
    /// Valid statements this node relays without keeping.
    relay: Relay,
    /// Each member's canary state as last reported, to notify on changes only.
    canary_states: CanaryWatch,
    /// What changed since the last published snapshot.
    stale: Stale,
    /// When the member list of the snapshot was last rebuilt.
    members_built_at: std::time::Instant,
    /// Received messages were written since the last flush.
    unflushed: bool,
    /// Each signer's budget on every ingest path.
    budgets: solidarity_engine::budget::Budgets,
    /// When the admin was last warned of each certificate about to end.
    certificate_warned: HashMap<AuthorKey, u64>,
    metrics: NodeMetrics,
    registry: Arc<prometheus_client::registry::Registry>,
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
}

/// The per-signer budgets a configuration sets.
fn budget_limits(config: &crate::config::NodeConfig) -> solidarity_engine::budget::Limits {
    solidarity_engine::budget::Limits {
        messages_per_minute: config.member_messages_per_minute,
        bytes_per_minute: config.member_bytes_per_minute,
        stored_bytes: config.member_stored_bytes,
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

struct Trust<'a> {
    me: &'a AuthorKey,
    /// This node's own key is neither forked nor revoked.
    me_trusted: bool,
    members: &'a BTreeMap<AuthorKey, MemberState>,
}

impl TrustView for Trust<'_> {
    fn is_member(&self, key: &AuthorKey) -> bool {
        // `trusted` is derived by `solidarity_proto::trust::trusted`, recomputed whenever
        // a vouch, certificate or revocation is stored and as certificates begin and end:
        // it already leaves out forked and revoked keys.
        if key == self.me {
            self.me_trusted
        } else {
            self.members.get(key).is_some_and(MemberState::trusted)
        }
    }
}

struct NodeLookup<'a> {
    store: &'a dyn Store,
    pending: &'a HashMap<MessageId, Pending>,
    pending_chain: &'a HashMap<(AuthorKey, u64), MessageId>,
}

/// A read error makes a lookup answer "not found": the message is then written again,
/// which is idempotent, and a store that cannot read will fail its next write and stop
/// the daemon.
fn or_log<T>(result: Result<Option<T>, solidarity_store::StoreError>) -> Option<T> {
    result.unwrap_or_else(|error| {
        tracing::error!(%error, "store read failed");
        None
    })
}

impl Lookup for NodeLookup<'_> {
    fn contains(&self, id: &MessageId) -> bool {
        self.pending.contains_key(id) || or_log(self.store.contains(id).map(Some)).unwrap_or(false)
    }

    fn id_at(&self, author: &AuthorKey, seq: u64) -> Option<MessageId> {
        self.pending_chain
            .get(&(*author, seq))
            .copied()
            .or_else(|| or_log(self.store.id_at(author, seq)))
    }

    fn author_and_kind(&self, id: &MessageId) -> Option<(AuthorKey, String)> {
        if let Some(pending) = self.pending.get(id) {
            return Some((pending.author, pending.kind.clone()));
        }
        or_log(self.store.meta(id)).map(|meta| (meta.author, meta.kind))
    }
}

impl NodeActor {
    pub fn new(parts: ActorParts) -> anyhow::Result<Self> {
        let me = envelope::author_key(&parts.identity.key);
        let peer_id = identity::peer_id(&me)?;
        let head = parts.store.chain_head(&me)?;
        let own_chain = super::own_chain::OwnChain::open(
            &parts.data_dir,
            head,
            parts.identity.config.fresh_chain,
        )?;
        let mut views = Views::load(parts.store.as_ref())?;
        let (settled_file, settled) =
            super::settled_revocations::SettledFile::open(&parts.data_dir)?;
        views.restore_settled_revocations(settled);
        let shown = Shown::load(
            parts.store.as_ref(),
            views::DISPLAY_LIMIT,
            now_ms().saturating_add_signed(parts.identity.config.clock_offset_ms),
            me,
        )?;
        let stored_messages = parts.store.len()?;
        let budgets =
            solidarity_engine::budget::Budgets::new(budget_limits(&parts.identity.config));
        let compromised = parts
            .store
            .compromised()?
            .into_iter()
            .map(|compromise| {
                let state = Compromised {
                    detected_at: compromise.detected_at,
                    from_seq: compromise.from_seq,
                };
                (compromise.author, state)
            })
            .collect();
        let mut actor = Self {
            me,
            peer_id,
            started_at: now_ms(),
            head,
            own_chain,
            store: parts.store,
            writer: parts.writer,
            net: parts.net,
            data_dir: parts.data_dir,
            settled_file,
            identity: parts.identity,
            members_file: parts.members,
            members: BTreeMap::new(),
            by_peer: HashMap::new(),
            connected: HashSet::new(),
            last_message_at: HashMap::new(),
            compromised,
            pending: HashMap::new(),
            pending_chain: HashMap::new(),
            stored_messages,
            p2p_ports: Vec::new(),
            views,
            shown,
            snapshot: parts.snapshot,
            control: parts.control,
            reload: parts.reload,
            net_events: parts.net_events,
            writes: FuturesUnordered::new(),
            syncs: JoinSet::new(),
            syncing: HashSet::new(),
            statements_seen: HashMap::new(),
            pending_statements: HashMap::new(),
            pending_revoked: HashMap::new(),
            relay: Relay::default(),
            canary_states: CanaryWatch::default(),
            stale: Stale {
                alerts: true,
                members: true,
                last_seen: false,
            },
            members_built_at: std::time::Instant::now(),
            unflushed: false,
            budgets,
            certificate_warned: HashMap::new(),
            metrics: parts.metrics,
            registry: parts.registry,
        };
        actor.members = actor.compute_members()?;
        actor.by_peer = actor
            .members
            .iter()
            .map(|(key, state)| (state.peer, *key))
            .collect();
        for key in actor
            .members
            .keys()
            .copied()
            .chain([me])
            .collect::<Vec<_>>()
        {
            if let Some((_, id)) = actor.store.chain_head(&key)?
                && let Some(meta) = actor.store.meta(&id)?
            {
                actor.last_message_at.insert(key, meta.created_at);
            }
        }
        actor.refresh_snapshot();
        Ok(actor)
    }

    /// This node's clock: the host's, shifted by `clock_offset_ms` (zero outside tests).
    fn now_ms(&self) -> u64 {
        now_ms().saturating_add_signed(self.identity.config.clock_offset_ms)
    }

    /// Runs until shutdown or a fatal error.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), ActorError> {
        self.apply_members().await?;
        let mut sync_tick = tokio::time::interval(self.identity.config.sync_interval);
        sync_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut expiry_tick = tokio::time::interval(EXPIRY_SWEEP_INTERVAL);
        expiry_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut canary_tick = tokio::time::interval(self.identity.config.canary_interval);
        canary_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut canary_check = tokio::time::interval(CANARY_CHECK_INTERVAL);
        canary_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut flush_tick = tokio::time::interval(FLUSH_INTERVAL);
        flush_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut snapshot_tick = tokio::time::interval(SNAPSHOT_INTERVAL);
        snapshot_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(completion) = self.writes.next(), if !self.writes.is_empty() => {
                    self.handle_completion(completion).await?;
                }
                call = self.control.recv() => match call {
                    Some(call) => self.handle_control(call).await?,
                    None => break,
                },
                Some(call) = self.reload.recv() => self.handle_reload(call).await?,
                event = self.net_events.recv() => match event {
                    Some(event) => self.handle_net_event(event).await?,
                    None => return Err(ActorError::NetworkStopped),
                },
                Some(page) = self.syncs.join_next(), if !self.syncs.is_empty() => {
                    match page {
                        Ok(page) => self.handle_sync_page(page).await?,
                        Err(error) => tracing::error!(%error, "sync task failed"),
                    }
                }
                _ = snapshot_tick.tick(), if self.stale.any() => self.refresh_snapshot(),
                _ = flush_tick.tick(), if self.unflushed => self.handle_flush_tick().await?,
                _ = sync_tick.tick() => self.handle_sync_tick(),
                _ = expiry_tick.tick() => self.handle_expiry_tick().await?,
                _ = canary_tick.tick() => self.handle_canary_tick().await?,
                _ = canary_check.tick() => {
                    self.handle_canary_check();
                    self.handle_certificate_clock().await?;
                }
            }
        }
        // Ordered drain: every queued write completes (and is acknowledged) before exit.
        while let Some(completion) = self.writes.next().await {
            self.handle_completion(completion).await?;
        }
        Ok(())
    }

    /// The members (see `solidarity_proto::trust::listed`): the admin's own list, node keys
    /// certified by identities on it, and keys vouched for by enough trusted members; those
    /// a revocation, a fork or the end of a certificate took out stay listed, untrusted.
    fn compute_members(&self) -> anyhow::Result<BTreeMap<AuthorKey, MemberState>> {
        let entry = |key: &AuthorKey| self.members_file.members.iter().find(|m| m.key == *key);
        let admin_keys = self
            .members_file
            .members
            .iter()
            .filter(|member| !member.identity)
            .map(|member| member.key)
            .collect();
        let identities = self.identities();
        let forked = self
            .compromised
            .iter()
            .map(|(key, state)| (*key, state.detected_at))
            .collect();
        let listed = solidarity_proto::trust::listed(solidarity_proto::trust::TrustInputs {
            me: &self.me,
            admin_keys: &admin_keys,
            identities: &identities,
            statements: self.views.statements(),
            vouches: self.views.vouches(),
            forked: &forked,
            vouch_threshold: self.identity.config.vouch_threshold,
            now_ms: self.now_ms(),
        });
        let parse = |addresses: &[String]| -> Vec<libp2p::Multiaddr> {
            addresses
                .iter()
                .filter_map(|address| address.parse().ok())
                .collect()
        };
        // Names and collectives the admin gave: no vouched label may pass for one.
        let admin_label = |label: &str| {
            self.members_file.members.iter().any(|member| {
                member.name.eq_ignore_ascii_case(label)
                    || member
                        .collective
                        .as_deref()
                        .is_some_and(|collective| collective.eq_ignore_ascii_case(label))
            })
        };
        let mut members = BTreeMap::new();
        for (key, Listed { why, standing }) in listed {
            let peer = identity::peer_id(&key)?;
            let mut label_conflicts = Vec::new();
            let (name, collective, addresses, duress_commitment) = match &why {
                Why::Admin => {
                    let Some(member) = entry(&key) else { continue };
                    (
                        member.name.clone(),
                        member.collective.clone(),
                        parse(&member.addresses),
                        member.duress_commitment.as_deref(),
                    )
                }
                Why::Certified {
                    identity,
                    addresses,
                    ..
                } => {
                    let Some(collective) = entry(identity) else {
                        continue;
                    };
                    (
                        collective.name.clone(),
                        collective.collective.clone(),
                        parse(addresses),
                        collective.duress_commitment.as_deref(),
                    )
                }
                Why::Vouched { by } => {
                    let Some(label) = solidarity_engine::vouch_labels::vouched_label(
                        self.views.vouches(),
                        &key,
                        by,
                        admin_label,
                    ) else {
                        continue;
                    };
                    label_conflicts = label.conflicts;
                    (label.name, None, parse(&label.addresses), None)
                }
            };
            let collective = collective.unwrap_or_else(|| name.clone());
            members.insert(
                key,
                MemberState {
                    group: match why {
                        Why::Vouched { .. } => solidarity_engine::vouch_labels::vouched_group(&key),
                        Why::Admin | Why::Certified { .. } => collective.clone(),
                    },
                    collective,
                    label_conflicts,
                    name,
                    peer,
                    addresses,
                    duress_commitment: decode_commitment(duress_commitment),
                    why,
                    standing,
                },
            );
        }
        Ok(members)
    }

    /// Logs each change of a listed key's standing once, as the node learns it (forks are
    /// logged where they are detected, with their evidence).
    fn log_standing_changes(&self, members: &BTreeMap<AuthorKey, MemberState>) {
        for (key, state) in members {
            let before = self.members.get(key).map(|old| old.standing);
            if before == Some(state.standing) {
                continue;
            }
            let named = Named {
                key,
                name: &state.name,
                collective: &state.collective,
            };
            match state.standing {
                Standing::Trusted | Standing::Forked { .. } => {}
                Standing::Revoked(fact) => {
                    trust_log::key_revoked(
                        &named,
                        &self.signer_text(key, &fact.signer),
                        fact.since,
                    );
                }
                Standing::IdentityRevoked {
                    identity,
                    revocation,
                } => trust_log::identity_revoked_for(
                    &named,
                    &self.member_name(&identity),
                    revocation.since,
                ),
                Standing::CertificateEnded { at } => {
                    if let Why::Certified { identity, .. } = &state.why {
                        trust_log::certificate_ended(&named, &self.member_name(identity), at);
                    }
                }
            }
        }
    }

    /// Who signed a revocation of `key`, for the admin.
    fn signer_text(&self, key: &AuthorKey, signer: &AuthorKey) -> String {
        if signer == key {
            "the key itself".to_owned()
        } else {
            format!("identity {}", self.member_name(signer))
        }
    }

    /// Recomputes the trusted members and tells the network whom to admit and dial.
    async fn apply_members(&mut self) -> Result<(), ActorError> {
        let members = match self.compute_members() {
            Ok(members) => members,
            Err(invalid) => {
                tracing::error!(error = %invalid, "invalid members file; keeping the previous members");
                return Ok(());
            }
        };
        let removed: Vec<PeerId> = self
            .members
            .iter()
            .filter(|(key, _)| members.get(*key).is_none_or(|state| !state.trusted()))
            .map(|(_, state)| state.peer)
            .collect();
        for (key, state) in &members {
            if let Why::Vouched { by } = &state.why
                && state.trusted()
                && !self.members.get(key).is_some_and(MemberState::trusted)
            {
                tracing::info!(member = %state.name, vouchers = by.len(), "member trusted by vouching");
            }
        }
        self.log_standing_changes(&members);
        // What revoked a key under this list stays in force under the next (SPEC §13.4).
        let identities = self.identities();
        self.views.settle_revocations(&identities);
        self.settled_file
            .save(self.views.statements().settled())
            .map_err(ActorError::SettledRevocations)?;
        self.by_peer = members
            .iter()
            .map(|(key, state)| (state.peer, *key))
            .collect();
        self.connected
            .retain(|key| members.get(key).is_some_and(MemberState::trusted));
        self.members = members;
        for peer in removed {
            self.net
                .disallow_peer(peer)
                .await
                .map_err(|_| ActorError::NetworkStopped)?;
        }
        let dial: Vec<(PeerId, Vec<libp2p::Multiaddr>)> = self
            .members
            .values()
            .filter(|state| state.trusted())
            .map(|state| (state.peer, state.addresses.clone()))
            .collect();
        for (peer, addresses) in dial {
            self.net
                .allow_peer(peer, addresses)
                .await
                .map_err(|_| ActorError::NetworkStopped)?;
        }
        self.publish_snapshot();
        Ok(())
    }

    // ---- control ------------------------------------------------------------------

    async fn handle_control(&mut self, call: ControlCall) -> Result<(), ActorError> {
        let now = self.now_ms();
        // Each arm answers its call's own reply; the CLI may have hung up, nothing to undo
        // for a read or a reload.
        match call {
            ControlCall::Status(Call { reply, .. }) => {
                self.refresh_ports().await?;
                self.publish_snapshot();
                self.refresh_snapshot();
                let _ = reply.send(Ok(self.snapshot.borrow().status.clone()));
            }
            ControlCall::Metrics(Call { reply, .. }) => {
                let _ = reply.send(Ok(MetricsText {
                    text: metrics::encode(&self.registry),
                }));
            }
            ControlCall::Peers(Call { reply, .. }) => {
                let _ = reply.send(Ok(Members {
                    members: self.member_views(),
                }));
            }
            ControlCall::Card(Call { reply, .. }) => {
                let card = self.card().await?;
                let _ = reply.send(Ok(card));
            }
            ControlCall::ReloadMembers(Call { reply, .. }) => {
                let answer = self.reload_members().await?;
                let _ = reply.send(answer);
            }
            ControlCall::MemberRetrust(Call {
                request: request::MemberRetrust { key },
                reply,
            }) => {
                if self.compromised.remove(&key).is_none() {
                    let _ = reply.send(Err(Refusal::new(
                        RefusalCode::NotCompromised,
                        "that key is not marked compromised",
                    )));
                } else {
                    tracing::warn!(key = %key.short(), "admin trusts a key again after a fork");
                    self.apply_members().await?;
                    let task = Maintenance::ClearCompromise { author: key };
                    return self
                        .maintain(task, MaintenanceDone::CompromiseCleared { reply })
                        .await;
                }
            }
            // The snapshot carries what the views alone do not: suspect marks and
            // corroboration.
            ControlCall::AlertList(Call {
                request: request::AlertList { all: false },
                reply,
            }) => {
                self.refresh_snapshot();
                let _ = reply.send(Ok(Alerts {
                    alerts: self.snapshot.borrow().alerts.as_ref().clone(),
                }));
            }
            ControlCall::AlertList(Call {
                request: request::AlertList { all: true },
                reply,
            }) => {
                let answer = match Shown::load_per_author(
                    self.store.as_ref(),
                    (views::LISTED_LIMIT, views::LISTED_LIMIT),
                    now,
                    self.me,
                ) {
                    Ok(every) => Ok(Alerts {
                        alerts: self.alert_and_offer_views(&every, now).0,
                    }),
                    Err(read) => Err(unreadable(read)),
                };
                let _ = reply.send(answer);
            }
            ControlCall::MirrorList(Call { reply, .. }) => {
                self.refresh_snapshot();
                let _ = reply.send(Ok(Offers {
                    offers: self.snapshot.borrow().offers.as_ref().clone(),
                }));
            }
            ControlCall::AlertRaise(Call {
                request:
                    request::AlertRaise {
                        alert,
                        expires_in_ms,
                    },
                reply,
            }) => match refusals::alert_raise(&alert) {
                Err(refusal) => {
                    let _ = reply.send(Err(refusal));
                }
                Ok(()) => {
                    let expires_at = expires_in_ms.map(|lifetime| now.saturating_add(lifetime));
                    return self
                        .sign_and_store(Body::Alert(alert), expires_at, reply)
                        .await;
                }
            },
            ControlCall::AlertUpdate(Call {
                request:
                    request::AlertUpdate {
                        alert,
                        status,
                        note,
                    },
                reply,
            }) => match refusals::alert_update(
                self.store.as_ref(),
                &self.me,
                &alert,
                status,
                note.as_deref(),
            ) {
                Err(refusal) => {
                    let _ = reply.send(Err(refusal));
                }
                Ok(expires_at) => {
                    let body = Body::AlertUpdate(AlertUpdate {
                        alert,
                        status,
                        note,
                    });
                    return self.sign_and_store(body, expires_at, reply).await;
                }
            },
            ControlCall::AlertShow(Call {
                request: request::AlertShow { alert },
                reply,
            }) => {
                let _ = reply.send(self.alert_detail(&alert, now));
            }
            ControlCall::MirrorOffer(Call {
                request:
                    request::MirrorOffer {
                        offer,
                        valid_for_ms,
                    },
                reply,
            }) => {
                let expires_at = Some(now.saturating_add(valid_for_ms));
                return self
                    .sign_and_store(Body::MirrorOffer(offer), expires_at, reply)
                    .await;
            }
            ControlCall::AlertEndorse(Call {
                request:
                    request::AlertEndorse {
                        alert,
                        stance,
                        note,
                    },
                reply,
            }) => match refusals::alert_endorse(self.store.as_ref(), &self.me, &alert, stance) {
                Err(refusal) => {
                    let _ = reply.send(Err(refusal));
                }
                Ok(expires_at) => {
                    let body = Body::Endorsement(solidarity_proto::payload::Endorsement {
                        alert,
                        stance,
                        note,
                    });
                    return self.sign_and_store(body, expires_at, reply).await;
                }
            },
            ControlCall::MemberVouch(Call {
                request:
                    request::MemberVouch {
                        key,
                        name,
                        addresses,
                        vouch,
                    },
                reply,
            }) => {
                if key == self.me {
                    let _ = reply.send(Err(Refusal::new(
                        RefusalCode::SelfVouch,
                        "a node does not vouch for itself",
                    )));
                } else {
                    let body = Body::Vouch(solidarity_proto::payload::Vouch {
                        member: key,
                        name,
                        addresses,
                        vouch,
                    });
                    return self.sign_and_store(body, None, reply).await;
                }
            }
            ControlCall::CanaryPublish(Call {
                request: request::CanaryPublish { withdraw, restore },
                reply,
            }) => {
                let mut codes = self.own_canary_codes();
                codes.retain(|code| !withdraw.contains(code));
                codes.extend(restore.iter().filter(|code| !withdraw.contains(code)));
                codes.sort_unstable();
                codes.dedup();
                let token = rand::random::<[u8; 32]>().to_vec();
                return self.publish_canary(codes, token, reply).await;
            }
            ControlCall::PublishStatement(Call {
                request: request::PublishStatement { envelope },
                reply,
            }) => {
                return self.publish_statement(envelope, reply).await;
            }
            ControlCall::CanaryDuress(Call {
                request: request::CanaryDuress { token },
                reply,
            }) => {
                // Looks like any scheduled canary: same statement, same codes.
                let codes = self.own_canary_codes();
                return self
                    .publish_canary(codes, token.as_bytes().to_vec(), reply)
                    .await;
            }
            ControlCall::MirrorWithdraw(Call {
                request: request::MirrorWithdraw { offer },
                reply,
            }) => match refusals::mirror_withdraw(self.store.as_ref(), &self.me, &offer, now) {
                Err(refusal) => {
                    let _ = reply.send(Err(refusal));
                }
                Ok(expires_at) => {
                    let body = Body::MirrorWithdraw(MirrorWithdraw { offer });
                    return self.sign_and_store(body, expires_at, reply).await;
                }
            },
        }
        Ok(())
    }

    /// One alert in full, from the store (any stored alert, not only the shown ones).
    fn alert_detail(&self, id: &MessageId, now: u64) -> Result<AlertDetail, Refusal> {
        let shown = Shown::load_one(self.store.as_ref(), id).map_err(unreadable)?;
        let stances = shown
            .alerts(now)
            .flat_map(|alert| {
                solidarity_proto::state::standing_stances(&alert.alert.author, &alert.endorsements)
            })
            .map(|endorsement| StanceView {
                author: endorsement.author,
                stance: endorsement.body.stance,
                note: endorsement.body.note.clone(),
                created_at: endorsement.created_at,
            })
            .collect();
        match self.alert_and_offer_views(&shown, now).0.pop() {
            Some(alert) => Ok(AlertDetail { alert, stances }),
            None => Err(Refusal::new(
                RefusalCode::NoSuchAlert,
                format!("no alert with id {id}"),
            )),
        }
    }

    async fn refresh_ports(&mut self) -> Result<(), ActorError> {
        let addresses = self
            .net
            .listen_addresses()
            .await
            .map_err(|_| ActorError::NetworkStopped)?;
        let mut ports: Vec<u16> = addresses
            .iter()
            .flat_map(|address| address.iter())
            .filter_map(|protocol| match protocol {
                Protocol::Tcp(port) => Some(port),
                _ => None,
            })
            .collect();
        ports.sort_unstable();
        ports.dedup();
        self.p2p_ports = ports;
        Ok(())
    }

    async fn card(&mut self) -> Result<CardLine, ActorError> {
        let bound = self
            .net
            .listen_addresses()
            .await
            .map_err(|_| ActorError::NetworkStopped)?;
        let addresses =
            crate::card_addresses::card_addresses(&self.identity.config.announce, &bound);
        Ok(CardLine {
            card: Card {
                key: self.me,
                addresses,
                duress_commitment: None,
            }
            .render(),
        })
    }

    /// SIGHUP: applies the live keys of the config read again, then the members file.
    async fn handle_reload(&mut self, call: super::reload::ReloadCall) -> Result<(), ActorError> {
        let super::reload::ReloadCall { config, reply } = call;
        let previous_config = self.identity.config.clone();
        let changes = super::reload::merge(&mut self.identity.config, config);
        self.budgets
            .set_limits(budget_limits(&self.identity.config));
        let outcome = match self.reload_members().await? {
            Err(refusal) => {
                self.identity.config = previous_config;
                Err(format!("members.toml: {refusal}"))
            }
            Ok(Done {}) => Ok(()),
        };
        if outcome.is_ok() {
            if changes.live.contains(&"announce") {
                self.net
                    .set_external_addresses(self.identity.config.announce.clone())
                    .await
                    .map_err(|_| ActorError::NetworkStopped)?;
            }
            if changes.live.contains(&"vouch_threshold") {
                self.apply_members().await?;
            }
            if changes.live.contains(&"log")
                && let Err(refused) = crate::logging::set_filter(&self.identity.config.log)
            {
                tracing::warn!(%refused, "log filter unchanged");
            }
            tracing::info!(
                applied = ?changes.live,
                need_restart = ?changes.restart,
                "config reloaded; keys under need_restart take effect at the next start"
            );
            self.publish_snapshot();
        }
        // The signal task may have gone at shutdown; nothing to undo.
        let _ = reply.send(outcome);
        Ok(())
    }

    async fn reload_members(&mut self) -> Result<Result<Done, Refusal>, ActorError> {
        let invalid = |error: anyhow::Error| {
            Refusal::new(RefusalCode::MembersFileInvalid, format!("{error:#}"))
        };
        let file = match MembersFile::load(&self.data_dir) {
            Ok(file) => file,
            Err(load_error) => return Ok(Err(invalid(load_error))),
        };
        let previous = std::mem::replace(&mut self.members_file, file);
        if let Err(wrong) = self.compute_members() {
            self.members_file = previous;
            return Ok(Err(invalid(wrong)));
        }
        self.apply_members().await?;
        tracing::info!(members = self.members.len(), "members reloaded");
        Ok(Ok(Done {}))
    }

    /// Signs `body` as this node's next message, checks it as any peer would, and queues
    /// it for a durable write; the CLI gets its id once the write is flushed.
    async fn sign_and_store(
        &mut self,
        body: Body,
        expires_at: Option<u64>,
        reply: SignReply,
    ) -> Result<(), ActorError> {
        let Some(kind) = body.kind() else {
            let _ = reply.send(Err(Refusal::new(
                RefusalCode::UnknownKind,
                "cannot sign a message of unknown kind",
            )));
            return Ok(());
        };
        if self.revoked_since(&self.me).is_some() {
            let _ = reply.send(Err(Refusal::new(
                RefusalCode::OwnKeyRevoked,
                "this node's key is revoked: nothing was signed. Set up a new node key and ask the members to add it",
            )));
            return Ok(());
        }
        if self.compromised.contains_key(&self.me) {
            let _ = reply.send(Err(Refusal::new(
                RefusalCode::OwnKeyCompromised,
                "this node's key signed two conflicting messages: another party holds it. Nothing was signed. Members no longer trust this key; set up a new node key and ask them to re-add it",
            )));
            return Ok(());
        }
        if let Some(why) = self.own_chain.paused() {
            let _ = reply.send(Err(Refusal::new(
                RefusalCode::SigningPaused,
                format!("refused: nothing was signed: {why}"),
            )));
            return Ok(());
        }
        let now = self.now_ms();
        let (seq, prev) = match self.head {
            Some((seq, id)) => {
                // The head can come from the network (a message of this key someone else
                // signed at seq u64::MAX): never wrap.
                let Some(next) = seq.checked_add(1) else {
                    let _ = reply.send(Err(Refusal::new(
                        RefusalCode::ChainExhausted,
                        "this node's chain is at the highest seq there is: nothing was signed. Set up a new node key",
                    )));
                    return Ok(());
                };
                (next, Some(id))
            }
            None => (1, None),
        };
        let payload = Payload {
            fed: self.identity.federation,
            seq,
            prev,
            created_at: now,
            expires_at,
            kind: kind.to_owned(),
            body: body.encode(),
        };
        let signed = envelope::sign(&self.identity.key, &payload);
        match self.validate(&signed.bytes, now) {
            Verdict::Accept(accepted) => {
                self.head = Some((seq, signed.id));
                let solidarity_proto::Accepted {
                    id,
                    signer,
                    payload,
                    body,
                    ..
                } = *accepted;
                let origin = Origin::Local {
                    reply,
                    envelope: signed.bytes.clone(),
                };
                self.queue_write_bytes(id, signer, payload, body, signed.bytes, origin)
                    .await
            }
            Verdict::Ignore(reason) => {
                let _ = reply.send(Err(Refusal::new(
                    RefusalCode::MessageIgnored,
                    format!("refused: {reason}"),
                )));
                Ok(())
            }
            Verdict::Reject(reason) => {
                let _ = reply.send(Err(Refusal::new(
                    RefusalCode::MessageRejected,
                    format!("refused: {reason}"),
                )));
                Ok(())
            }
            Verdict::Fork(_) => {
                let _ = reply.send(Err(Refusal::new(
                    RefusalCode::ConflictsWithStored,
                    "refused: the store already holds another message of this node at this sequence number",
                )));
                Ok(())
            }
        }
    }

    fn validate(&self, bytes: &[u8], now: u64) -> Verdict {
        self.validate_checked(bytes, now, None)
    }

    fn validate_checked(
        &self,
        bytes: &[u8],
        now: u64,
        checked: Option<SignatureChecked>,
    ) -> Verdict {
        let trust = Trust {
            me: &self.me,
            me_trusted: !self.compromised.contains_key(&self.me)
                && self.revoked_since(&self.me).is_none(),
            members: &self.members,
        };
        let lookup = NodeLookup {
            store: self.store.as_ref(),
            pending: &self.pending,
            pending_chain: &self.pending_chain,
        };
        solidarity_proto::validate_checked(
            bytes,
            now,
            &self.identity.federation,
            &trust,
            &lookup,
            checked,
        )
    }

    async fn queue_write_bytes(
        &mut self,
        id: MessageId,
        signer: AuthorKey,
        payload: Payload,
        body: Body,
        envelope: Vec<u8>,
        origin: Origin,
    ) -> Result<(), ActorError> {
        let message = NewMessage {
            id,
            author: signer,
            seq: payload.seq,
            kind: payload.kind.clone(),
            created_at: payload.created_at,
            expires_at: payload.expires_at,
            refers_to: body.refers_to(),
            envelope,
        };
        self.count_pending_statement(signer, &body, true);
        // Only what this node signed must be on disk before anyone hears of it; a received
        // message lost in a crash comes back by sync.
        let durable = matches!(origin, Origin::Local { .. });
        if !durable {
            self.unflushed = true;
        }
        let done = self
            .writer
            .insert(message.clone(), durable)
            .await
            .map_err(|_| ActorError::WriterStopped)?;
        self.pending.insert(
            id,
            Pending {
                author: signer,
                kind: payload.kind.clone(),
            },
        );
        self.pending_chain.insert((signer, payload.seq), id);
        self.writes.push(Box::pin(async move {
            Completion::Insert(Box::new(InsertDone {
                message,
                body,
                payload,
                origin,
                result: done.await,
            }))
        }));
        Ok(())
    }

    async fn handle_completion(&mut self, completion: Completion) -> Result<(), ActorError> {
        match completion {
            Completion::Insert(done) => {
                let InsertDone {
                    message,
                    body,
                    payload,
                    origin,
                    result,
                } = *done;
                self.pending.remove(&message.id);
                self.pending_chain.remove(&(message.author, message.seq));
                self.count_pending_statement(message.author, &body, false);
                let outcome = match result {
                    Ok(Ok(outcome)) => outcome,
                    Ok(Err(store_error)) => {
                        if let Origin::Local { reply, .. } = origin {
                            let _ = reply.send(Err(Refusal::new(
                                RefusalCode::StorageFailed,
                                format!(
                                    "storage failed: the message was NOT published and may not be on disk (the daemon stops): {store_error}"
                                ),
                            )));
                        }
                        return Err(ActorError::Storage(store_error));
                    }
                    Err(_) => return Err(ActorError::WriterStopped),
                };
                if outcome == InsertOutcome::Stored {
                    // A node whose store was lost or restored learns its own chain back
                    // from its peers (sync lists our own key) instead of forking it.
                    if message.author == self.me
                        && self.head.is_none_or(|(seq, _)| seq < message.seq)
                    {
                        self.head = Some((message.seq, message.id));
                        self.own_chain_learned(false).await?;
                    }
                    self.stored_messages += 1;
                    self.metrics.stored.inc();
                    let last = self.last_message_at.entry(message.author).or_default();
                    *last = (*last).max(message.created_at);
                    let revoked = match &body {
                        Body::Revocation(revocation) => {
                            Some(revocation.key.unwrap_or(message.author))
                        }
                        _ => None,
                    };
                    self.shown
                        .add(
                            self.store.as_ref(),
                            message.id,
                            message.author,
                            &payload,
                            &body,
                        )
                        .map_err(|read| ActorError::Storage(Arc::new(read)))?;
                    // What the revocation changes is judged against what held before it.
                    let revoked = revoked.map(|key| (key, self.revocation_fact(&key)));
                    self.views.add(message.id, message.author, &payload, body);
                    // Trust is derived again only when the statement changes it: a
                    // revocation that does not change what holds for its key changes
                    // nothing (its key's standing, as identity or voucher, rests on that).
                    let changes_trust = match revoked {
                        Some((key, before)) => self.revocation_fact(&key) != before,
                        None => solidarity_proto::kinds::changes_trust(&message.kind),
                    };
                    if changes_trust {
                        self.metrics.trust_recomputations.inc();
                        self.apply_members().await?;
                    }
                    if let Some((revoked, before)) = revoked {
                        self.log_revocation_outside_members(&revoked, &message.author, before);
                    }
                    self.stale.alerts = true;
                    self.stale.last_seen = true;
                }
                match origin {
                    Origin::Local { reply, envelope } => {
                        if outcome == InsertOutcome::Stored {
                            tracing::info!(id = %message.id.short(), kind = %message.kind, seq = message.seq, "signed and stored");
                            // Recorded before the message can leave, so a lost store never
                            // hides it (a crash before this leaves it stored, unpublished).
                            if let Err(record_error) =
                                self.own_chain.record_signed(message.seq, message.id)
                            {
                                let _ = reply.send(Err(Refusal::new(
                                    RefusalCode::StorageFailed,
                                    format!(
                                        "stored but NOT published: cannot record this node's chain head (the daemon stops): {record_error}"
                                    ),
                                )));
                                return Err(ActorError::OwnChain(record_error));
                            }
                            self.publish(envelope).await?;
                            let _ = reply.send(Ok(Raised { id: message.id }));
                        } else {
                            let _ = reply.send(Err(Refusal::new(
                                RefusalCode::StoreRefused,
                                format!(
                                    "the store refused the message ({outcome:?}); nothing was published"
                                ),
                            )));
                        }
                    }
                    Origin::Remote => {
                        if outcome == InsertOutcome::Stored {
                            tracing::debug!(id = %message.id.short(), kind = %message.kind, author = %message.author.short(), "received and stored");
                        }
                    }
                }
            }
            Completion::Maintained { done, result } => {
                let count = match result {
                    Ok(Ok(count)) => count,
                    Ok(Err(store_error)) => {
                        if let MaintenanceDone::CompromiseCleared { reply } = done {
                            let _ = reply.send(Err(Refusal::new(
                                RefusalCode::StorageFailed,
                                format!("storage failed: {store_error}"),
                            )));
                        }
                        return Err(ActorError::Storage(store_error));
                    }
                    Err(_) => return Err(ActorError::WriterStopped),
                };
                match done {
                    MaintenanceDone::Expired { now_ms } => {
                        if count > 0 {
                            tracing::info!(expired = count, "expired messages deleted");
                            self.stored_messages = self.stored_messages.saturating_sub(count);
                        }
                        self.backfill_shown(now_ms);
                        // Expiry freed stored bytes: read them again.
                        self.budgets.forget_stored();
                        self.publish_snapshot();
                    }
                    MaintenanceDone::ForkRecorded | MaintenanceDone::Flushed => {}
                    MaintenanceDone::CompromiseCleared { reply } => {
                        let _ = reply.send(Ok(Done {}));
                    }
                }
            }
        }
        Ok(())
    }

    async fn publish(&mut self, envelope: Vec<u8>) -> Result<(), ActorError> {
        match self.net.publish(envelope).await {
            Ok(()) => Ok(()),
            Err(NetError::NoPeers) => {
                tracing::info!("no member connected now; they will get it by sync");
                Ok(())
            }
            Err(other) => {
                tracing::warn!(error = %other, "publish failed; members will get it by sync");
                Ok(())
            }
        }
    }

    // ---- network ------------------------------------------------------------------

    async fn handle_net_event(&mut self, event: NetEvent) -> Result<(), ActorError> {
        match event {
            NetEvent::Message {
                token,
                source: _,
                data,
            } => {
                let acceptance = self.ingest(&data, "gossip", None).await?;
                self.net
                    .report(token, acceptance)
                    .await
                    .map_err(|_| ActorError::NetworkStopped)?;
            }
            NetEvent::SyncRequest { peer, data, reply } => {
                let response = self.answer_sync(peer, &data);
                self.net
                    .reply_sync(reply, response.encode())
                    .await
                    .map_err(|_| ActorError::NetworkStopped)?;
            }
            NetEvent::PeerConnected(peer) => {
                // Keys out of trust stay in `by_peer` (listed) but are never admitted.
                if let Some(key) = self.by_peer.get(&peer).copied()
                    && self.members.get(&key).is_some_and(MemberState::trusted)
                {
                    self.connected.insert(key);
                    tracing::info!(member = %self.member_name(&key), "member connected");
                    self.start_sync(peer, 0, true);
                    self.publish_snapshot();
                }
            }
            NetEvent::PeerDisconnected(peer) => {
                if let Some(key) = self.by_peer.get(&peer).copied() {
                    self.connected.remove(&key);
                    tracing::info!(member = %self.member_name(&key), "member disconnected");
                    self.publish_snapshot();
                }
            }
            NetEvent::PeerClosedEarly(peer) => {
                if let Some(key) = self.by_peer.get(&peer).copied() {
                    tracing::info!(
                        member = %self.member_name(&key),
                        "member closed the connection at once: it may not have added this node yet (send it this node's card, `solidarity id`), or it no longer trusts this node's key (revoked or forked: see `solidarity status`); redialling less and less often"
                    );
                }
            }
        }
        Ok(())
    }

    /// A key's name: a member's, an identity's from the admin's list, else its short form.
    fn member_name(&self, key: &AuthorKey) -> String {
        self.name_and_collective(key).0
    }

    /// A key's name and collective (see [`Self::member_name`]).
    fn name_and_collective(&self, key: &AuthorKey) -> (String, String) {
        if let Some(member) = self.members.get(key) {
            return (member.name.clone(), member.collective.clone());
        }
        if let Some(entry) = self.members_file.members.iter().find(|m| m.key == *key) {
            let collective = entry
                .collective
                .clone()
                .unwrap_or_else(|| entry.name.clone());
            return (entry.name.clone(), collective);
        }
        if *key == self.me {
            let collective = self.identity.config.collective.clone();
            return ("this node".to_owned(), collective.unwrap_or_default());
        }
        (key.short(), "unknown".to_owned())
    }

    /// Logs a stored revocation of a key that is not a listed member (those are logged as
    /// their standing changes): this node's own key, an identity on the admin's list, or a
    /// key this node never trusted.
    fn log_revocation_outside_members(
        &self,
        revoked: &AuthorKey,
        signer: &AuthorKey,
        before: Option<solidarity_proto::trust::RevocationFact>,
    ) {
        if self.members.contains_key(revoked) {
            return;
        }
        let Some(fact) = self.revocation_fact(revoked) else {
            tracing::debug!("stored a revocation that does not apply here");
            return;
        };
        // Statements have no quota: a key in the wrong hands can sign revocations of
        // itself at full speed. Only a change of what holds is logged, once.
        if before == Some(fact) {
            tracing::debug!("stored another revocation of an already revoked key");
            return;
        }
        if *revoked == self.me {
            trust_log::own_key_revoked(
                revoked,
                &self.signer_text(revoked, &fact.signer),
                fact.since,
            );
        } else if self.identities().contains(revoked) {
            let (name, collective) = self.name_and_collective(revoked);
            let certified = self
                .members
                .values()
                .filter(|state| {
                    matches!(state.standing, Standing::IdentityRevoked { identity, .. } if identity == *revoked)
                })
                .count();
            trust_log::identity_revoked(
                &Named {
                    key: revoked,
                    name: &name,
                    collective: &collective,
                },
                fact.since,
                certified,
            );
        } else {
            tracing::debug!(signed_by = %signer.short(), "stored the revocation of a key this node never trusted");
        }
    }

    /// Takes a received message of `author` from its budget; false when it is held back
    /// (SPEC §10). Revocations and this node's own messages are never held back.
    fn within_budget(&mut self, author: AuthorKey, kind: &str, bytes: usize) -> bool {
        if author == self.me || !solidarity_proto::kinds::is_budgeted(kind) {
            return true;
        }
        let store = self.store.as_ref();
        let decision = self.budgets.take(author, bytes, self.now_ms(), || {
            store.stored_bytes(&author).unwrap_or_else(|error| {
                tracing::error!(%error, "store read failed");
                0
            })
        });
        match decision {
            solidarity_engine::budget::Decision::Within => true,
            solidarity_engine::budget::Decision::Over { why, warn } => {
                if warn {
                    // Member names are admin-view data: named at debug level only.
                    tracing::warn!(
                        budget = why.describe(),
                        "a member is over its budget; its further messages are ignored for now (see `solidarity member list`)"
                    );
                    tracing::debug!(member = %self.member_name(&author), budget = why.describe(), "over budget");
                    self.stale.members = true;
                }
                self.metrics.judged_over_budget(why);
                false
            }
        }
    }

    /// Validates received bytes and queues the write of an accepted message.
    async fn ingest(
        &mut self,
        data: &[u8],
        path: &'static str,
        checked: Option<SignatureChecked>,
    ) -> Result<Acceptance, ActorError> {
        let verdict = self.validate_checked(data, self.now_ms(), checked);
        let keep = match &verdict {
            Verdict::Accept(accepted)
                if solidarity_proto::kinds::is_statement(&accepted.payload.kind) =>
            {
                self.keep_statement(&accepted.signer, &accepted.body)
            }
            _ => Keep::Store,
        };
        // Only what this node would store is charged to its signer: statements it relays
        // or drops are bounded by the relay and the cap, and keep strangers out of the
        // budget table.
        let over_budget = matches!(&verdict, Verdict::Accept(accepted)
            if keep == Keep::Store
                && !self.within_budget(accepted.signer, &accepted.payload.kind, data.len()));
        self.metrics.judged(
            path,
            match &verdict {
                _ if over_budget => "over_budget",
                Verdict::Accept(_) => "accept",
                Verdict::Ignore(_) => "ignore",
                Verdict::Reject(_) => "reject",
                Verdict::Fork(_) => "fork",
            },
        );
        match verdict {
            // Ignored, so gossipsub neither relays it nor penalises the forwarder.
            Verdict::Accept(_) if over_budget => Ok(Acceptance::Ignore),
            // The protocol takes statements from any key; this node keeps only those that can
            // change its trust, within a cap per signer, and relays revocations and
            // certificates it does not keep (see `statements`).
            Verdict::Accept(accepted) if keep != Keep::Store => {
                let revocation = matches!(accepted.body, Body::Revocation(_));
                if keep == Keep::Relay
                    && self
                        .relay
                        .offer(accepted.signer, accepted.id, revocation, data)
                {
                    let (held, bytes) = self.relay.size();
                    tracing::debug!(held, bytes, "statement relayed without keeping it");
                    return Ok(Acceptance::Accept);
                }
                tracing::debug!(?keep, "statement not kept");
                Ok(Acceptance::Ignore)
            }
            Verdict::Accept(accepted) => {
                let accepted = *accepted;
                let envelope = data.to_vec();
                let solidarity_proto::Accepted {
                    id,
                    signer,
                    payload,
                    body,
                } = accepted;
                self.queue_write_bytes(id, signer, payload, body, envelope, Origin::Remote)
                    .await?;
                Ok(Acceptance::Accept)
            }
            Verdict::Ignore(reason) => {
                tracing::debug!(%reason, "message ignored");
                Ok(Acceptance::Ignore)
            }
            Verdict::Reject(reason) => {
                tracing::info!(%reason, "message rejected");
                Ok(Acceptance::Reject)
            }
            Verdict::Fork(fork) => {
                self.handle_fork(*fork, data).await?;
                // Relay the evidence so every member learns of the fork.
                Ok(Acceptance::Accept)
            }
        }
    }

    /// Two validly signed messages of one key conflict: the key is in two hands. Stop
    /// trusting it at once, keep the evidence durably, and tell the admin loudly.
    async fn handle_fork(
        &mut self,
        fork: solidarity_proto::Fork,
        envelope: &[u8],
    ) -> Result<(), ActorError> {
        let now = self.now_ms();
        let from_seq = solidarity_engine::engine::fork_from_seq(&fork);
        let newly = !self.compromised.contains_key(&fork.signer);
        let state = self.compromised.entry(fork.signer).or_insert(Compromised {
            detected_at: now,
            from_seq,
        });
        state.from_seq = state.from_seq.min(from_seq);
        if newly {
            let (detected_at, from_seq) = (state.detected_at, state.from_seq);
            let (name, collective) = self.name_and_collective(&fork.signer);
            tracing::debug!(seq = fork.payload.seq, point = ?fork.point, "fork evidence");
            trust_log::fork_detected(
                &Named {
                    key: &fork.signer,
                    name: &name,
                    collective: &collective,
                },
                fork.signer == self.me,
                detected_at,
                from_seq,
            );
            // Out of trust at once: refused, disconnected, no longer a voucher.
            self.apply_members().await?;
        }
        let evidence = NewMessage {
            id: fork.id,
            author: fork.signer,
            seq: fork.payload.seq,
            kind: fork.payload.kind,
            created_at: fork.payload.created_at,
            expires_at: fork.payload.expires_at,
            refers_to: None,
            envelope: envelope.to_vec(),
        };
        self.maintain(
            Maintenance::RecordFork {
                evidence,
                detected_at: now,
                from_seq,
            },
            MaintenanceDone::ForkRecorded,
        )
        .await
    }

    async fn maintain(
        &mut self,
        task: Maintenance,
        done: MaintenanceDone,
    ) -> Result<(), ActorError> {
        let result = self
            .writer
            .maintain(task)
            .await
            .map_err(|_| ActorError::WriterStopped)?;
        self.writes.push(Box::pin(async move {
            Completion::Maintained {
                done,
                result: result.await,
            }
        }));
        Ok(())
    }

    // ---- sync ---------------------------------------------------------------------

    /// How far we hold the author's chain, counting writes not yet flushed.
    fn watermark(&self, author: &AuthorKey) -> Watermark {
        let mut seq = self.store.watermark(author).unwrap_or_else(|error| {
            tracing::error!(%error, "store read failed");
            0
        });
        while self.pending_chain.contains_key(&(*author, seq + 1)) {
            seq += 1;
        }
        let head = (seq > 0)
            .then(|| {
                self.pending_chain
                    .get(&(*author, seq))
                    .copied()
                    .or_else(|| or_log(self.store.id_at(author, seq)))
            })
            .flatten();
        Watermark {
            author: *author,
            seq,
            head,
        }
    }

    /// The signers whose statements this node wants: its members, itself and the
    /// identities on its admin's list.
    fn statement_signers(&self) -> BTreeSet<AuthorKey> {
        self.members
            .keys()
            .copied()
            .chain([self.me])
            .chain(self.identities())
            .collect()
    }

    /// Starts a sync session with `peer` (round 0 of the statement phase), or its next
    /// round.
    fn start_sync(&mut self, peer: PeerId, round: usize, statement_phase: bool) {
        if round == 0 && statement_phase && !self.syncing.insert(peer) {
            return;
        }
        let request = if statement_phase {
            let seen = self.statements_seen.get(&peer);
            let wanted = self
                .statement_signers()
                .into_iter()
                .map(|signer| {
                    statements::held(
                        signer,
                        self.views.statements(),
                        &self.relay,
                        seen.and_then(|seen| seen.get(&signer)),
                    )
                })
                .collect();
            SyncRequest {
                fed: self.identity.federation,
                have: Vec::new(),
                limit: sync::MAX_PAGE_ENVELOPES,
                statements: Some(statements::fit(wanted)),
            }
        } else {
            // Identities sign statements only; their chains (empty) are asked for too, so a
            // fork of theirs still shows.
            // The chain of an author out of budget is not asked for this round (a watermark
            // at the highest seq asks for nothing): its messages would only be ignored again
            // (SPEC §10). Its statements came in the statement phase.
            let identities = self.identities();
            let now = self.now_ms();
            let have = self
                .members
                .keys()
                .chain([&self.me])
                .chain(identities.iter())
                .map(|author| {
                    if self.budgets.spent(author, now) {
                        Watermark {
                            author: *author,
                            seq: u64::MAX,
                            head: None,
                        }
                    } else {
                        self.watermark(author)
                    }
                })
                .collect();
            SyncRequest {
                fed: self.identity.federation,
                have,
                limit: sync::MAX_PAGE_ENVELOPES,
                statements: None,
            }
        };
        let net = self.net.clone();
        let bytes = request.encode();
        self.metrics.sync_requests.inc();
        self.metrics.sync_request_bytes.inc_by(bytes.len() as u64);
        self.syncs.spawn(async move {
            SyncPage {
                peer,
                round,
                statements: statement_phase,
                result: net.sync_request(peer, bytes).await,
            }
        });
    }

    /// Ends a sync session.
    fn end_sync(&mut self, peer: &PeerId) {
        self.syncing.remove(peer);
        self.statements_seen.remove(peer);
    }

    async fn handle_sync_page(&mut self, page: SyncPage) -> Result<(), ActorError> {
        let SyncPage {
            peer,
            round,
            statements: statement_phase,
            result,
        } = page;
        if let Ok(bytes) = &result {
            self.metrics.sync_response_bytes.inc_by(bytes.len() as u64);
        }
        let response = match result.map(|bytes| SyncResponse::decode(&bytes)) {
            Ok(Ok(response)) => response,
            Ok(Err(decode_error)) => {
                tracing::info!(error = %decode_error, "malformed sync response");
                self.end_sync(&peer);
                return Ok(());
            }
            Err(NetError::Stopped) => return Err(ActorError::NetworkStopped),
            Err(net_error) => {
                tracing::debug!(error = %net_error, "sync request failed");
                self.end_sync(&peer);
                return Ok(());
            }
        };
        let mut accepted = 0usize;
        self.metrics.sync_envelope_bytes.inc_by(
            response
                .envelopes
                .iter()
                .map(|envelope| envelope.len() as u64)
                .sum(),
        );
        let fresh = self.fresh_envelopes(&response.envelopes);
        let checked = check_signatures(response.envelopes.len(), fresh).await;
        for (envelope, checked) in response.envelopes.iter().zip(checked) {
            let acceptance = if statement_phase {
                self.ingest_synced_statement(peer, envelope, checked)
                    .await?
            } else {
                self.ingest(envelope, "sync", checked).await?
            };
            if acceptance == Acceptance::Accept {
                accepted += 1;
            }
        }
        if accepted > 0 {
            tracing::info!(accepted, round, statement_phase, "caught up by sync");
        }
        if statement_phase {
            // Statement rounds go on while the responder holds more, whatever they carried
            // (what was refused is listed as held next time); then the chains.
            if response.more && round + 1 < sync::MAX_STATEMENT_ROUNDS {
                self.start_sync(peer, round + 1, true);
            } else {
                self.statements_seen.remove(&peer);
                self.start_sync(peer, 0, false);
            }
        } else if response.more && accepted > 0 && round + 1 < sync::MAX_SYNC_ROUNDS {
            self.start_sync(peer, round + 1, false);
        } else {
            self.end_sync(&peer);
            // A member answered everything it had for us, our own chain included.
            self.own_chain_learned(true).await?;
        }
        Ok(())
    }

    /// Ingests a statement from a statement page; one sent that is not a statement is
    /// refused (the responder broke the phase), and every one is remembered for the
    /// session so it is not asked for again.
    async fn ingest_synced_statement(
        &mut self,
        peer: PeerId,
        envelope: &[u8],
        checked: Option<SignatureChecked>,
    ) -> Result<Acceptance, ActorError> {
        let Ok(decoded) = solidarity_proto::Envelope::decode(envelope) else {
            return Ok(Acceptance::Reject);
        };
        let statement = solidarity_proto::Payload::decode(&decoded.payload)
            .is_ok_and(|payload| solidarity_proto::kinds::is_statement(&payload.kind));
        if !statement {
            tracing::info!("a statement page carried a message that is not a statement");
            return Ok(Acceptance::Reject);
        }
        if let Some(id) = envelope::message_id_of_envelope_bytes(envelope) {
            let seen = self
                .statements_seen
                .entry(peer)
                .or_default()
                .entry(decoded.signer)
                .or_default();
            if seen.len() < sync::MAX_HELD_PER_SIGNER {
                seen.push(id);
            }
        }
        self.ingest(envelope, "sync", checked).await
    }

    /// The envelopes of a sync page not held yet (by index): the ones worth verifying.
    fn fresh_envelopes(&self, envelopes: &[serde_bytes::ByteBuf]) -> Vec<(usize, Vec<u8>)> {
        envelopes
            .iter()
            .enumerate()
            .filter(|(_, bytes)| {
                envelope::message_id_of_envelope_bytes(bytes).is_some_and(|id| {
                    !self.pending.contains_key(&id)
                        && !or_log(self.store.contains(&id).map(Some)).unwrap_or(false)
                })
            })
            .map(|(index, bytes)| (index, bytes.to_vec()))
            .collect()
    }

    /// One page of what the requester misses (the engine's responder, SPEC §11.5).
    fn answer_sync(&self, peer: PeerId, data: &[u8]) -> SyncResponse {
        self.metrics.sync_answered.inc();
        let response = solidarity_engine::sync_answer::answer(
            data,
            &solidarity_engine::sync_answer::Responder {
                federation: &self.identity.federation,
                statements: self.views.statements(),
                relay: &self.relay,
                compromised: &|key| self.compromised.contains_key(key),
                store: &self.store,
            },
        );
        if !response.envelopes.is_empty() {
            let name = self
                .by_peer
                .get(&peer)
                .map_or_else(String::new, |key| self.member_name(key));
            tracing::debug!(member = %name, sent = response.envelopes.len(), more = response.more, "answered sync");
        }
        response
    }

    fn handle_sync_tick(&mut self) {
        let connected_peer = self
            .connected
            .iter()
            .filter_map(|key| self.members.get(key).map(|member| member.peer))
            .choose(&mut rand::thread_rng());
        if let Some(peer) = connected_peer {
            self.start_sync(peer, 0, true);
        }
    }

    /// Whether this node keeps, relays or drops a valid statement (see `statements`).
    fn keep_statement(&self, signer: &AuthorKey, body: &Body) -> Keep {
        let identities = self.identities();
        statements::judge(
            &statements::Here {
                statements: self.views.statements(),
                pending: &self.pending_statements,
                pending_revoked: &|by, key| self.pending_revoked.contains_key(&(*by, *key)),
                listed_identity: &|key| identities.contains(key),
                knows: &|key| self.knows(key),
                cap: self.identity.config.statements_per_signer,
            },
            signer,
            body,
        )
    }

    /// Counts a statement queued for writing (`queued`) or written.
    fn count_pending_statement(&mut self, signer: AuthorKey, body: &Body, queued: bool) {
        if !matches!(body, Body::Revocation(_) | Body::NodeCert(_)) {
            return;
        }
        if let Body::Revocation(revocation) = body {
            let pair = (signer, revocation.key.unwrap_or(signer));
            let count = self.pending_revoked.entry(pair).or_default();
            *count = if queued {
                count.saturating_add(1)
            } else {
                count.saturating_sub(1)
            };
            if *count == 0 {
                self.pending_revoked.remove(&pair);
            }
        }
        let counts = self.pending_statements.entry(signer).or_default();
        let count = match body {
            Body::Revocation(_) => &mut counts.0,
            Body::NodeCert(_) => &mut counts.1,
            _ => return,
        };
        *count = if queued {
            count.saturating_add(1)
        } else {
            count.saturating_sub(1)
        };
        if *counts == (0, 0) {
            self.pending_statements.remove(&signer);
        }
    }

    /// Whether a key is one this node has a reason to hear statements from: itself, anyone
    /// on its admin's list (members and identities), or a key it trusts or once did.
    fn knows(&self, key: &AuthorKey) -> bool {
        *key == self.me
            || self.members.contains_key(key)
            || self.compromised.contains_key(key)
            || self
                .members_file
                .members
                .iter()
                .any(|member| member.key == *key)
    }

    /// The collective identities the admin trusts.
    fn identities(&self) -> BTreeSet<AuthorKey> {
        self.members_file
            .members
            .iter()
            .filter(|member| member.identity)
            .map(|member| member.key)
            .collect()
    }

    /// The revocation that holds for `key` (see `solidarity_proto::trust::revocation_of`).
    fn revocation_fact(&self, key: &AuthorKey) -> Option<solidarity_proto::trust::RevocationFact> {
        solidarity_proto::trust::revocation_of(key, self.views.statements(), &self.identities())
    }

    /// When `key` was revoked (see `solidarity_proto::trust::revoked_since`).
    fn revoked_since(&self, key: &AuthorKey) -> Option<u64> {
        solidarity_proto::trust::revoked_since(key, self.views.statements(), &self.identities())
    }

    /// Checks a statement signed elsewhere (a revocation) like a received message, stores
    /// it, then publishes it.
    async fn publish_statement(
        &mut self,
        envelope: Vec<u8>,
        reply: SignReply,
    ) -> Result<(), ActorError> {
        match self.validate(&envelope, self.now_ms()) {
            Verdict::Accept(accepted) => {
                if !solidarity_proto::kinds::is_statement(&accepted.payload.kind) {
                    let _ = reply.send(Err(Refusal::new(
                        RefusalCode::NotAStatement,
                        "only statements (revocations) signed elsewhere can be published this way",
                    )));
                    return Ok(());
                }
                let solidarity_proto::Accepted {
                    id,
                    signer,
                    payload,
                    body,
                } = *accepted;
                let origin = Origin::Local {
                    reply,
                    envelope: envelope.clone(),
                };
                self.queue_write_bytes(id, signer, payload, body, envelope, origin)
                    .await
            }
            Verdict::Ignore(solidarity_proto::IgnoreReason::Duplicate) => {
                // Already known here: publish again so every member surely has it.
                if let Ok(parsed) = solidarity_proto::Envelope::decode(&envelope) {
                    let id = parsed.id();
                    self.publish(envelope).await?;
                    let _ = reply.send(Ok(Raised { id }));
                }
                Ok(())
            }
            Verdict::Ignore(reason) => {
                let _ = reply.send(Err(Refusal::new(
                    RefusalCode::MessageIgnored,
                    format!("refused: {reason}"),
                )));
                Ok(())
            }
            Verdict::Reject(reason) => {
                let _ = reply.send(Err(Refusal::new(
                    RefusalCode::MessageRejected,
                    format!("refused: {reason}"),
                )));
                Ok(())
            }
            Verdict::Fork(_) => {
                let _ = reply.send(Err(Refusal::new(
                    RefusalCode::ConflictsWithStored,
                    "refused: it conflicts with a stored message",
                )));
                Ok(())
            }
        }
    }

    /// The codes this node states now: those of its latest canary, or all at first.
    fn own_canary_codes(&self) -> Vec<solidarity_proto::payload::CanaryCode> {
        self.views.canaries(&self.me).map_or_else(
            || solidarity_proto::payload::CanaryCode::ALL.to_vec(),
            |(latest, _)| latest.body.codes.clone(),
        )
    }

    async fn publish_canary(
        &mut self,
        codes: Vec<solidarity_proto::payload::CanaryCode>,
        token: Vec<u8>,
        reply: SignReply,
    ) -> Result<(), ActorError> {
        let interval = self.identity.config.canary_interval;
        let canary = solidarity_proto::payload::Canary {
            statement: self.identity.config.canary_statement.clone(),
            codes,
            interval_secs: interval.as_secs(),
            token,
        };
        // Old canaries are useless once the next ones are out: let them expire.
        let lifetime = u64::try_from(interval.as_millis())
            .unwrap_or(u64::MAX)
            .saturating_mul(4);
        let expires_at = Some(self.now_ms().saturating_add(lifetime));
        self.sign_and_store(Body::Canary(canary), expires_at, reply)
            .await
    }

    /// Lifts the own-chain wait once the chain is back (`synced`: a sync exchange with a
    /// member just ended) and none of this node's own messages is still being written, and
    /// then publishes the canary it held back.
    async fn own_chain_learned(&mut self, synced: bool) -> Result<(), ActorError> {
        if synced {
            self.own_chain.note_synced();
        }
        let me = self.me;
        let writing_own = self.pending_chain.keys().any(|(author, _)| *author == me);
        if writing_own {
            return Ok(());
        }
        match self.own_chain.learned(self.head) {
            super::own_chain::Resume::No => {}
            super::own_chain::Resume::AfterStored => self.handle_canary_tick().await?,
            super::own_chain::Resume::AfterRecorded(seq, id) => {
                self.head = Some((seq, id));
                self.handle_canary_tick().await?;
            }
        }
        Ok(())
    }

    async fn handle_canary_tick(&mut self) -> Result<(), ActorError> {
        if self.compromised.contains_key(&self.me) || self.own_chain.paused().is_some() {
            return Ok(());
        }
        let codes = self.own_canary_codes();
        // Nobody waits for the scheduled canary's acknowledgement.
        let (reply, _) = oneshot::channel();
        let token = rand::random::<[u8; 32]>().to_vec();
        self.publish_canary(codes, token, reply).await
    }

    fn canary_view(&self, key: &AuthorKey, now: u64) -> Option<CanaryView> {
        let (latest, previous) = self.views.canaries(key)?;
        let config = &self.identity.config;
        let rules = solidarity_engine::canary::CanaryRules {
            max_interval_ms: config.canary_max_interval.as_secs().saturating_mul(1000),
            grace_ms: u64::try_from(config.canary_grace.as_millis()).unwrap_or(u64::MAX),
        };
        let commitment = self
            .members
            .get(key)
            .and_then(|member| member.duress_commitment);
        Some(solidarity_engine::canary::canary_view(
            key,
            latest,
            previous,
            commitment.as_ref(),
            rules,
            now,
        ))
    }

    /// Certificates begin and end with time: re-derive the trusted set when that changes it.
    async fn handle_certificate_clock(&mut self) -> Result<(), ActorError> {
        let Ok(members) = self.compute_members() else {
            return Ok(());
        };
        let trusted = |members: &BTreeMap<AuthorKey, MemberState>| -> BTreeSet<AuthorKey> {
            members
                .iter()
                .filter(|(_, state)| state.trusted())
                .map(|(key, _)| *key)
                .collect()
        };
        if trusted(&members) != trusted(&self.members) || members.len() != self.members.len() {
            tracing::info!("certificates changed the trusted members");
            self.apply_members().await?;
        }
        self.warn_of_ending_certificates();
        Ok(())
    }

    /// Warns, at most once a day each, of certificates that end within a week.
    fn warn_of_ending_certificates(&mut self) {
        let now = self.now_ms();
        let ahead = trust_log::CERTIFICATE_WARNING.as_millis() as u64;
        let repeat = trust_log::CERTIFICATE_WARNING_REPEAT.as_millis() as u64;
        for (key, state) in &self.members {
            let Why::Certified {
                identity,
                valid_until,
                ..
            } = &state.why
            else {
                continue;
            };
            if !state.trusted() || valid_until.saturating_sub(now) > ahead {
                continue;
            }
            if self
                .certificate_warned
                .get(key)
                .is_some_and(|at| now.saturating_sub(*at) < repeat)
            {
                continue;
            }
            trust_log::certificate_ending(
                &Named {
                    key,
                    name: &state.name,
                    collective: &state.collective,
                },
                &self.member_name(identity),
                *valid_until,
            );
            self.certificate_warned.insert(*key, now);
        }
    }

    /// Notifies once per change of a member's canary state (the dead-man's switch).
    fn handle_canary_check(&mut self) {
        let now = self.now_ms();
        let mut changed = false;
        let keys: Vec<AuthorKey> = self
            .members
            .iter()
            .filter(|(_, state)| state.trusted())
            .map(|(key, _)| *key)
            .collect();
        for key in keys {
            let Some(view) = self.canary_view(&key, now) else {
                continue;
            };
            let Some(change) = self.canary_states.note(key, view.state) else {
                continue;
            };
            changed = true;
            let member = self.member_name(&key);
            // Journals are often shipped elsewhere: above debug, one line that neither
            // names the member nor tells duress from silence or withdrawn codes.
            match change {
                CanaryChange::Alarm(state) => {
                    tracing::warn!(
                        "CANARY: a member's canary changed; see `solidarity peers` or the admin page"
                    );
                    tracing::debug!(%member, ?state, withdrawn = ?view.withdrawn, "canary state");
                }
                CanaryChange::BackToNormal => {
                    tracing::info!("a member's canary is back to normal");
                    tracing::debug!(%member, "canary back to normal");
                }
                CanaryChange::FirstOk => {}
            }
        }
        if changed {
            self.publish_snapshot();
        }
    }

    /// Makes received messages durable at most [`FLUSH_INTERVAL`] after they were stored.
    async fn handle_flush_tick(&mut self) -> Result<(), ActorError> {
        if !std::mem::take(&mut self.unflushed) {
            return Ok(());
        }
        self.maintain(Maintenance::Flush, MaintenanceDone::Flushed)
            .await
    }

    async fn handle_expiry_tick(&mut self) -> Result<(), ActorError> {
        let now = self.now_ms();
        self.maintain(
            Maintenance::Expire { now_ms: now },
            MaintenanceDone::Expired { now_ms: now },
        )
        .await
    }

    // ---- views --------------------------------------------------------------------

    /// Every listed key, trusted or not, then the identities on the admin's list.
    fn member_views(&self) -> Vec<MemberView> {
        let now = self.now_ms();
        let mut views: Vec<MemberView> = self
            .members
            .iter()
            .map(|(key, member)| MemberView {
                name: member.name.clone(),
                collective: member.collective.clone(),
                key: *key,
                connected: self.connected.contains(key),
                last_message_at: self.last_message_at.get(key).copied(),
                compromised_at: self.compromised.get(key).map(|state| state.detected_at),
                revoked_since: match member.standing {
                    Standing::Revoked(fact) => Some(fact.since),
                    // `listed` ranks a revocation first: these are not revoked (a revoked
                    // identity ends its certificates, it does not revoke the keys).
                    Standing::Trusted
                    | Standing::IdentityRevoked { .. }
                    | Standing::Forked { .. }
                    | Standing::CertificateEnded { .. } => None,
                },
                certified_until: match &member.why {
                    Why::Certified { valid_until, .. } => Some(*valid_until),
                    Why::Admin | Why::Vouched { .. } => None,
                },
                // A canary signed by a key out of trust says nothing.
                canary: member
                    .trusted()
                    .then(|| self.canary_view(key, now))
                    .flatten(),
                vouched_by: match &member.why {
                    Why::Vouched { by } => self.voucher_names(by),
                    Why::Admin | Why::Certified { .. } => Vec::new(),
                },
                label_conflicts: member.label_conflicts.clone(),
                trust: self.trust_basis(&member.why),
                trusted: member.trusted(),
                distrust: self.distrust(key, member.standing),
                over_budget: self.budgets.over(key, now),
            })
            .collect();
        for entry in self.members_file.members.iter().filter(|m| m.identity) {
            let revocation = solidarity_proto::trust::revocation_of(
                &entry.key,
                self.views.statements(),
                &self.identities(),
            );
            views.push(MemberView {
                name: entry.name.clone(),
                collective: entry
                    .collective
                    .clone()
                    .unwrap_or_else(|| entry.name.clone()),
                key: entry.key,
                connected: false,
                last_message_at: self.last_message_at.get(&entry.key).copied(),
                compromised_at: None,
                revoked_since: revocation.map(|fact| fact.since),
                certified_until: None,
                canary: None,
                vouched_by: Vec::new(),
                label_conflicts: Vec::new(),
                trust: TrustBasis::Identity,
                trusted: revocation.is_none(),
                distrust: revocation.map(|fact| Distrust::Revoked {
                    since: fact.since,
                    by: RevocationSigner::Itself,
                }),
                over_budget: self.budgets.over(&entry.key, now),
            });
        }
        self.metrics
            .members_over_budget
            .set(i64::try_from(self.budgets.over_count(now)).unwrap_or(i64::MAX));
        views
    }

    /// The vouchers' names, sorted.
    fn voucher_names(&self, by: &[AuthorKey]) -> Vec<String> {
        let mut names: Vec<String> = by
            .iter()
            .map(|voucher| {
                if *voucher == self.me {
                    "this node".to_owned()
                } else {
                    self.member_name(voucher)
                }
            })
            .collect();
        names.sort();
        names
    }

    fn trust_basis(&self, why: &Why) -> TrustBasis {
        match why {
            Why::Admin => TrustBasis::AddedByAdmin,
            Why::Certified {
                identity,
                valid_until,
                ..
            } => TrustBasis::Certified {
                identity: self.member_name(identity),
                until: *valid_until,
            },
            Why::Vouched { by } => TrustBasis::Vouched {
                by: self.voucher_names(by),
                threshold: self.identity.config.vouch_threshold,
            },
        }
    }

    fn distrust(&self, key: &AuthorKey, standing: Standing) -> Option<Distrust> {
        match standing {
            Standing::Trusted => None,
            Standing::Revoked(fact) => Some(Distrust::Revoked {
                since: fact.since,
                by: if fact.signer == *key {
                    RevocationSigner::Itself
                } else {
                    RevocationSigner::Identity {
                        name: self.member_name(&fact.signer),
                    }
                },
            }),
            Standing::IdentityRevoked {
                identity,
                revocation,
            } => Some(Distrust::IdentityRevoked {
                identity: self.member_name(&identity),
                since: revocation.since,
            }),
            Standing::Forked { detected_at } => Some(Distrust::Compromised {
                detected_at,
                from_seq: self.compromised.get(key).map_or(0, |state| state.from_seq),
            }),
            Standing::CertificateEnded { at } => Some(Distrust::CertificateEnded { at }),
        }
    }

    fn status_view(&self, now: u64, alerts: usize, offers: usize) -> StatusView {
        StatusView {
            node_key: self.me,
            peer_id: self.peer_id.to_base58(),
            federation: self.identity.config.federation.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: self.started_at,
            uptime_secs: now.saturating_sub(self.started_at) / 1000,
            p2p_ports: self.p2p_ports.clone(),
            status_url: self.identity.status_url.clone(),
            admin_url: self.identity.admin_url.clone(),
            members: self
                .members
                .values()
                .filter(|state| state.trusted())
                .count(),
            connected: self.connected.len(),
            alerts,
            offers,
            stored_messages: self.stored_messages,
            own_seq: self.head.map_or(0, |(seq, _)| seq),
            signing_paused: self.own_chain.paused(),
            own_key_compromised_at: self
                .compromised
                .get(&self.me)
                .map(|state| state.detected_at),
            own_key_revoked_since: self.revoked_since(&self.me),
        }
    }

    /// Notes that what the status page shows changed; [`Self::refresh_snapshot`] publishes
    /// it at most every [`SNAPSHOT_INTERVAL`] (or at once for a control read), so a burst of
    /// messages costs one rebuild, not one per message.
    /// Drops shown alerts and offers expired at `now` and, if any went, loads the set
    /// again from the store: what the limits held back is shown without a restart.
    fn backfill_shown(&mut self, now: u64) {
        if !self.shown.expire(now) {
            return;
        }
        match Shown::load(self.store.as_ref(), views::DISPLAY_LIMIT, now, self.me) {
            Ok(shown) => self.shown = shown,
            Err(error) => {
                tracing::error!(%error, "store read failed; the shown alerts are not backfilled");
            }
        }
        self.stale.alerts = true;
    }

    fn publish_snapshot(&mut self) {
        self.stale.alerts = true;
        self.stale.members = true;
    }

    /// Rebuilds what changed since the last snapshot and publishes it. Members' "last
    /// message" times alone refresh the member list at most every [`LAST_SEEN_INTERVAL`].
    fn refresh_snapshot(&mut self) {
        self.backfill_shown(self.now_ms());
        let members_due = self.stale.members
            || (self.stale.last_seen && self.members_built_at.elapsed() >= LAST_SEEN_INTERVAL);
        if !self.stale.alerts && !members_due {
            return;
        }
        let now = self.now_ms();
        let previous = self.snapshot.borrow().clone();
        let (alerts, offers) = if self.stale.alerts {
            let (alerts, offers) = self.alert_and_offer_views(&self.shown, now);
            (Arc::new(alerts), Arc::new(offers))
        } else {
            (previous.alerts.clone(), previous.offers.clone())
        };
        let members = if members_due {
            self.members_built_at = std::time::Instant::now();
            self.stale.members = false;
            self.stale.last_seen = false;
            Arc::new(self.member_views())
        } else {
            previous.members.clone()
        };
        self.stale.alerts = false;
        let snapshot = Snapshot {
            status: self.status_view(now, alerts.len(), offers.len()),
            members,
            alerts,
            offers,
        };
        self.snapshot.send_replace(Arc::new(snapshot));
    }

    /// The shown alerts (with suspect marks and corroboration, in display order) and offers.
    fn alert_and_offer_views(&self, shown: &Shown, now: u64) -> (Vec<AlertView>, Vec<OfferView>) {
        let mut offers = shown.offer_views(now);
        let suspect = |author: &AuthorKey, seq: u64, created_at: u64| {
            solidarity_engine::marks::is_suspect(
                self.compromised.get(author),
                self.revoked_since(author),
                seq,
                created_at,
            )
        };
        let collective_of = |key: &AuthorKey| match self.members.get(key) {
            Some(member) => member.group.clone(),
            None if *key == self.me => self
                .identity
                .config
                .collective
                .clone()
                .unwrap_or_else(|| key.to_hex()),
            None => key.to_hex(),
        };
        let mut alerts = Vec::new();
        for shown in shown.alerts(now) {
            let mut alert =
                solidarity_proto::state::derive_alert(shown.alert.clone(), shown.updates.clone());
            alert.earlier_updates = shown.earlier_updates;
            alert.suspect = suspect(&alert.author, alert.seq, alert.created_at);
            alert.corroboration = solidarity_proto::state::corroborate(
                &alert.author,
                alert.alert.category,
                // A stance counts only while its author is trusted here: not once the
                // admin removed it, its vouches or certificate ended, or a revocation or a
                // fork took it out of trust.
                shown.endorsements.iter().filter(|endorsement| {
                    solidarity_engine::marks::stance_counts(&endorsement.author, &self.me, |key| {
                        self.members.get(key).is_some_and(MemberState::trusted)
                    })
                }),
                collective_of,
                self.identity.config.confirm_threshold,
            );
            alerts.push(alert);
        }
        solidarity_proto::state::sort_for_display(&mut alerts);
        offers.sort_by(solidarity_proto::state::offer_order);
        for offer in &mut offers {
            offer.suspect = suspect(&offer.author, offer.seq, offer.created_at);
        }
        (alerts, offers)
    }
}

/// Verifies the signatures of a sync page's new envelopes (`fresh`, by index into a page
/// of `page_len`) on every core: a page holds up to thousands and verification dominates
/// catch-up. Envelopes already held get no proof: validation drops them as duplicates
/// before any signature check.
async fn check_signatures(
    page_len: usize,
    fresh: Vec<(usize, Vec<u8>)>,
) -> Vec<Option<SignatureChecked>> {
    let mut checked = vec![None; page_len];
    if fresh.len() < SIGNATURE_BATCH_MIN {
        return checked;
    }
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = fresh.len().div_ceil(workers);
    let mut tasks = JoinSet::new();
    let mut rest = fresh;
    while !rest.is_empty() {
        let tail = rest.split_off(chunk.min(rest.len()));
        let part = std::mem::replace(&mut rest, tail);
        tasks.spawn_blocking(move || {
            part.into_iter()
                .map(|(index, bytes)| (index, solidarity_proto::check_signature(&bytes)))
                .collect::<Vec<_>>()
        });
    }
    while let Some(done) = tasks.join_next().await {
        // A failed task only means its envelopes get verified one by one.
        for (index, proof) in done.unwrap_or_default() {
            checked[index] = proof;
        }
    }
    checked
}

fn decode_commitment(text: Option<&str>) -> Option<[u8; 32]> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text?, &mut bytes).ok().map(|()| bytes)
}

/// The refusal when the store cannot be read.
fn unreadable(read: impl std::fmt::Display) -> Refusal {
    Refusal::new(
        RefusalCode::StoreUnreadable,
        format!("cannot read the store: {read}"),
    )
}
