//! The [`Engine`]: one node's protocol state, driven by [`Engine::handle`].
//!
//! - Gossip in → validate (trust, store, writes in flight) → budget and statement filter →
//!   verdict out, then the write of an accepted message (separate outputs, in that order).
//! - Local `Sign` → next seq/prev of the own chain (unless the own-chain wait, a fork or a
//!   revocation of this key holds) → validate like a peer would → durable write → on its
//!   completion: record the own head, publish, reply.
//! - Write completed → the derived statements, vouches and trust are updated; a change of
//!   trust comes out as allow/disallow and notices.
//! - Sync: statement phase first, then chains (SPEC §11.4–11.5); inbound requests are
//!   answered from the store and the relay.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::Hash;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use solidarity_proto::payload::{Body, Canary, NodeCert, Revocation, Vouch};
use solidarity_proto::state::Stored;
use solidarity_proto::sync::{self, SyncRequest, SyncResponse, Watermark};
use solidarity_proto::trust::{self, Listed, RevocationFact, Standing, Statements, TrustInputs};
use solidarity_proto::{
    Accepted, AuthorKey, Envelope, FederationId, Lookup, MessageId, Payload, SignatureChecked,
    TrustView, Verdict, envelope, kinds,
};

use solidarity_control::{Refusal, RefusalCode};

use crate::budget::{Budgets, Decision, Limits};
use crate::canary::{CanaryChange, CanaryRules, CanaryView, CanaryWatch, canary_view};
use crate::events::{
    Acceptance, Command, CommandToken, Input, ListedKey, NewMessage, Notice, Output, Reply,
    SyncFailed, SyncRound, Timer, WriteFailed, WriteId, WriteOutcome,
};
use crate::own_chain::{OwnChain, Resume};
use crate::statements::{self, Keep, Relay};
use crate::store_read::{StoreRead, or_log};
use crate::sync_answer;

mod clock;
mod commands;
mod derive;
mod import;
mod ingest;
mod load;
mod requester;
mod writes;

pub use clock::{CERTIFICATE_WARNING_MS, CERTIFICATE_WARNING_REPEAT_MS};
pub use requester::AnswerState;

pub use load::{fork_from_seq, load};
use load::{keep_canary, stored};

/// The configuration an engine runs with.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// The federation.
    pub federation: FederationId,
    /// Per-signer budgets (SPEC §10).
    pub limits: Limits,
    /// Most revocations, and most certificates, kept per signer.
    pub statements_per_signer: usize,
    /// Vouches needed to trust a key; 0 disables vouching.
    pub vouch_threshold: usize,
    /// Time between two syncs with a random connected member.
    pub sync_interval_ms: u64,
    /// Longest a received message waits to be flushed.
    pub flush_interval_ms: u64,
    /// The own-chain record at start (see [`crate::own_chain`]): none without a record.
    pub own_chain_recorded: Option<(u64, Option<MessageId>)>,
    /// Sign even though the own chain is not back (`--fresh-chain`).
    pub fresh_chain: bool,
    /// The driver's record that the own chain came from an import and no sync has
    /// lifted the wait since ([`Output::RecordRestoring`]).
    pub own_chain_restoring: bool,
    /// Seeds the choice of sync partners.
    pub seed: u64,
    /// This node's own canary.
    pub canary: OwnCanary,
    /// Time between two sweeps of expired messages.
    pub expiry_interval_ms: u64,
}

/// What this node's own canary says and how often it is published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnCanary {
    /// The statement text.
    pub statement: String,
    /// Time between two canaries; 0 publishes none on a schedule.
    pub interval_ms: u64,
}

/// Fresh unpredictable bytes (canary tokens): the driver's OS generator, or a seeded one
/// in a simulation.
pub type Entropy = Box<dyn FnMut() -> [u8; 32] + Send>;

/// Where a write came from.
#[derive(Clone, Copy, Debug)]
enum Origin {
    /// Signed here: publish, then reply.
    Local(CommandToken),
    /// Signed here on a schedule (the canary): publish, nobody to answer.
    Scheduled,
    /// Held already (maybe not yet durable) and published again by the admin: written
    /// again durably (the store answers "already stored" and flushes), then published.
    Republish(CommandToken),
    /// Received by gossip or sync.
    Remote,
    /// Envelope `line` of an import command.
    Import {
        /// The command.
        token: CommandToken,
        /// Its place in the command.
        line: usize,
    },
}

/// A write in flight.
struct InFlight {
    message: NewMessage,
    payload: Payload,
    body: Body,
    origin: Origin,
}

/// A key known to be in two hands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compromised {
    /// When this node detected it.
    pub detected_at: u64,
    /// Its messages from this seq on are suspect.
    pub from_seq: u64,
}

/// What the engine loads from the store at start.
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    /// Every stored revocation and node certificate.
    pub statements: Statements,
    /// Every stored vouch.
    pub vouches: Vec<Stored<Vouch>>,
    /// Keys marked compromised.
    pub compromised: BTreeMap<AuthorKey, Compromised>,
    /// Each author's two latest canaries, oldest first.
    pub canaries: HashMap<AuthorKey, Vec<Stored<Canary>>>,
}

/// Where a received envelope came from (metrics and logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Path {
    /// Gossip.
    Gossip,
    /// A sync page.
    Sync,
}

/// How a received envelope was judged (metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Judged {
    /// Accepted.
    Accept,
    /// Valid but over its signer's budget.
    OverBudget(solidarity_control::OverBudget),
    /// Ignored.
    Ignore,
    /// Rejected.
    Reject,
    /// Fork evidence.
    Fork,
}

/// A small deterministic generator (SplitMix64): the engine's only randomness, seeded
/// by its driver.
#[derive(Clone, Debug)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// One node's protocol state. `P` names a peer (the engine never interprets it); `S`
/// reads the store.
pub struct Engine<P, S> {
    config: EngineConfig,
    key: SigningKey,
    me: AuthorKey,
    store: S,
    admin_list: Vec<ListedKey>,
    /// Shared with sync answers computed off the driver's task (copied on write).
    statements: Arc<Statements>,
    /// How many settled revocations were last recorded (the set only grows).
    settled_recorded: usize,
    vouches: Vec<Stored<Vouch>>,
    /// Every key trusted now, or that lost trust loudly (see `trust::listed`).
    members: BTreeMap<AuthorKey, Listed>,
    compromised: BTreeMap<AuthorKey, Compromised>,
    head: Option<(u64, MessageId)>,
    own_chain: OwnChain,
    /// Facts of messages written but not yet complete, so validation sees them already.
    pending: HashMap<MessageId, (AuthorKey, String)>,
    pending_chain: HashMap<(AuthorKey, u64), MessageId>,
    /// Statements queued for writing, per signer: (revocations, certificates).
    pending_statements: HashMap<AuthorKey, (usize, usize)>,
    /// Revocations queued for writing, per (signer, revoked key).
    pending_revoked: HashMap<(AuthorKey, AuthorKey), usize>,
    writes: HashMap<WriteId, InFlight>,
    next_write: u64,
    /// Import commands waiting for their writes.
    imports: HashMap<CommandToken, import::ImportBatch>,
    /// Shared with sync answers computed off the driver's task (copied on write).
    relay: Arc<Relay>,
    budgets: Budgets,
    peers: HashMap<P, AuthorKey>,
    syncing: HashSet<P>,
    /// Per sync session: statements sent to us and not kept, listed as held next round.
    statements_seen: HashMap<P, HashMap<AuthorKey, Vec<MessageId>>>,
    unflushed: bool,
    rng: SplitMix,
    judged: Vec<(Path, Judged)>,
    canaries: HashMap<AuthorKey, Vec<Stored<Canary>>>,
    canary_rules: CanaryRules,
    canary_watch: CanaryWatch,
    /// Each trusted key's duress commitment, from its card or its identity's.
    duress_commitments: HashMap<AuthorKey, [u8; 32]>,
    /// When the admin was last told of each certificate about to end.
    certificate_warned: HashMap<AuthorKey, u64>,
    /// The next time a held certificate begins or ends (as of the last derivation).
    next_certificate_bound: Option<u64>,
    /// Counts trust derivations, so a driver sees when to re-read [`Engine::members`].
    members_version: u64,
    /// Counts the derivations a stored message caused (a vouch, a certificate, a
    /// revocation that changed what holds), for the driver's metric.
    derived_for_stored: u64,
    entropy: Entropy,
}

/// How often canaries are read again.
const CANARY_CHECK_INTERVAL_MS: u64 = 1_000;
/// The node's default canary rules (`canary_grace_secs`, `canary_max_interval_secs`).
pub const DEFAULT_CANARY_RULES: CanaryRules = CanaryRules {
    max_interval_ms: 7 * 24 * 3_600_000,
    grace_ms: 3_600_000,
};

struct Trust<'a> {
    me: &'a AuthorKey,
    me_trusted: bool,
    members: &'a BTreeMap<AuthorKey, Listed>,
}

impl TrustView for Trust<'_> {
    fn is_member(&self, key: &AuthorKey) -> bool {
        if key == self.me {
            self.me_trusted
        } else {
            self.members
                .get(key)
                .is_some_and(|listed| listed.standing == Standing::Trusted)
        }
    }
}

struct EngineLookup<'a> {
    store: &'a dyn StoreRead,
    pending: &'a HashMap<MessageId, (AuthorKey, String)>,
    pending_chain: &'a HashMap<(AuthorKey, u64), MessageId>,
}

impl Lookup for EngineLookup<'_> {
    fn contains(&self, id: &MessageId) -> bool {
        self.pending.contains_key(id) || or_log(self.store.contains(id), false)
    }

    fn id_at(&self, author: &AuthorKey, seq: u64) -> Option<MessageId> {
        self.pending_chain
            .get(&(*author, seq))
            .copied()
            .or_else(|| or_log(self.store.id_at(author, seq), None))
    }

    fn author_and_kind(&self, id: &MessageId) -> Option<(AuthorKey, String)> {
        if let Some(pending) = self.pending.get(id) {
            return Some(pending.clone());
        }
        or_log(self.store.author_and_kind(id), None)
    }
}

impl<P, S> Engine<P, S>
where
    P: Clone + Eq + Hash + Ord,
    S: StoreRead,
{
    /// An engine for the node holding `key`, over `store`, from what `loaded` holds;
    /// `entropy` makes its canary tokens.
    pub fn new(
        config: EngineConfig,
        key: SigningKey,
        store: S,
        loaded: Loaded,
        entropy: Entropy,
    ) -> Self {
        let me = envelope::author_key(&key);
        let head = or_log(store.chain_head(&me), None);
        let own_chain = OwnChain::new(
            config.own_chain_recorded,
            head,
            config.fresh_chain,
            config.own_chain_restoring,
        );
        let budgets = Budgets::new(config.limits);
        let rng = SplitMix(config.seed);
        Self {
            key,
            me,
            store,
            admin_list: Vec::new(),
            settled_recorded: loaded.statements.settled().len(),
            statements: Arc::new(loaded.statements),
            vouches: loaded.vouches,
            members: BTreeMap::new(),
            compromised: loaded.compromised,
            head,
            own_chain,
            pending: HashMap::new(),
            pending_chain: HashMap::new(),
            pending_statements: HashMap::new(),
            pending_revoked: HashMap::new(),
            writes: HashMap::new(),
            next_write: 0,
            imports: HashMap::new(),
            relay: Arc::default(),
            budgets,
            peers: HashMap::new(),
            syncing: HashSet::new(),
            statements_seen: HashMap::new(),
            unflushed: false,
            rng,
            judged: Vec::new(),
            canaries: loaded.canaries,
            canary_rules: DEFAULT_CANARY_RULES,
            canary_watch: CanaryWatch::default(),
            duress_commitments: HashMap::new(),
            certificate_warned: HashMap::new(),
            next_certificate_bound: None,
            members_version: 0,
            derived_for_stored: 0,
            entropy,
            config,
        }
    }

    /// Reads canaries with `rules` instead of [`DEFAULT_CANARY_RULES`].
    pub fn with_canary_rules(mut self, rules: CanaryRules) -> Self {
        self.canary_rules = rules;
        self
    }

    /// What `key`'s canaries say at `now_ms`, if it published any.
    pub fn canary(&self, key: &AuthorKey, now_ms: u64) -> Option<CanaryView> {
        let kept = self.canaries.get(key)?;
        let latest = kept.last()?;
        let previous = (kept.len() > 1).then(|| &kept[0]);
        Some(canary_view(
            key,
            latest,
            previous,
            self.duress_commitments.get(key),
            self.canary_rules,
            now_ms,
        ))
    }

    /// This node's key.
    pub fn me(&self) -> AuthorKey {
        self.me
    }

    /// The store reader.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Every key trusted now or that lost trust loudly, with why.
    pub fn members(&self) -> &BTreeMap<AuthorKey, Listed> {
        &self.members
    }

    /// Grows each time trust is derived again: [`Self::members`] may have changed.
    pub fn members_version(&self) -> u64 {
        self.members_version
    }

    /// How many times a stored message made trust be derived again.
    pub fn derived_for_stored(&self) -> u64 {
        self.derived_for_stored
    }

    /// The admin's list as last given.
    pub fn admin_list(&self) -> &[ListedKey] {
        &self.admin_list
    }

    /// Every vouch held.
    pub fn vouches(&self) -> &[Stored<Vouch>] {
        &self.vouches
    }

    /// The head of this node's own chain: its highest seq and the id there.
    pub fn head(&self) -> Option<(u64, MessageId)> {
        self.head
    }

    /// When `key` was revoked, if a revocation holds for it here.
    pub fn revoked_since(&self, key: &AuthorKey) -> Option<u64> {
        trust::revoked_since(key, &self.statements, &self.identities())
    }

    /// The collective identities on the admin's list.
    pub fn identities(&self) -> BTreeSet<AuthorKey> {
        self.admin_list
            .iter()
            .filter(|listed| listed.identity)
            .map(|listed| listed.key)
            .collect()
    }

    /// Whether a message with this id is stored or being written.
    pub fn holds(&self, id: &MessageId) -> bool {
        self.pending.contains_key(id) || or_log(self.store.contains(id), false)
    }

    /// Whether this node's budget table holds `key` over a budget now.
    pub fn over_budget(
        &self,
        key: &AuthorKey,
        now_ms: u64,
    ) -> Option<solidarity_control::OverBudget> {
        self.budgets.over(key, now_ms)
    }

    /// How many signers are over a budget now.
    pub fn over_budget_count(&self, now_ms: u64) -> usize {
        self.budgets.over_count(now_ms)
    }

    /// Whether `key` is trusted now.
    pub fn trusts(&self, key: &AuthorKey) -> bool {
        self.trust().is_member(key)
    }

    /// Keys marked compromised.
    pub fn compromised(&self) -> &BTreeMap<AuthorKey, Compromised> {
        &self.compromised
    }

    /// Every revocation and certificate held.
    pub fn statements(&self) -> &Statements {
        &self.statements
    }

    /// The statements as they are now, shared (copied on write) with a reader off the
    /// driver's task.
    pub fn statements_shared(&self) -> Arc<Statements> {
        Arc::clone(&self.statements)
    }

    /// Why signing waits, if it does.
    pub fn paused(&self) -> Option<String> {
        self.own_chain.paused()
    }

    /// How each received envelope was judged since the last call (for metrics). A driver
    /// takes these after every [`Self::handle`]: they are kept until taken.
    pub fn take_judged(&mut self) -> Vec<(Path, Judged)> {
        std::mem::take(&mut self.judged)
    }

    /// Handles one input at `now_ms` and returns what to do, in order.
    pub fn handle(&mut self, now_ms: u64, input: Input<P>) -> Vec<Output<P>> {
        let mut out = Vec::new();
        match input {
            Input::Start => {
                self.recompute_trust(now_ms, &mut out);
                if let Some((seq, id)) = self.own_chain.to_record(self.config.own_chain_recorded) {
                    out.push(Output::RecordOwnHead { seq, id });
                }
                out.push(Output::Schedule {
                    timer: Timer::Sync,
                    at_ms: now_ms.saturating_add(self.config.sync_interval_ms),
                });
                out.push(Output::Schedule {
                    timer: Timer::Flush,
                    at_ms: now_ms.saturating_add(self.config.flush_interval_ms),
                });
                out.push(Output::Schedule {
                    timer: Timer::CanaryCheck,
                    at_ms: now_ms.saturating_add(CANARY_CHECK_INTERVAL_MS),
                });
                // The first canary and the first sweep come at once.
                if self.config.canary.interval_ms > 0 {
                    out.push(Output::Schedule {
                        timer: Timer::Canary,
                        at_ms: now_ms,
                    });
                }
                out.push(Output::Schedule {
                    timer: Timer::Expiry,
                    at_ms: now_ms,
                });
            }
            Input::Gossip { token, bytes, .. } => {
                let mut writes = Vec::new();
                let acceptance = self.ingest(now_ms, &bytes, Path::Gossip, None, &mut writes);
                out.push(Output::Verdict { token, acceptance });
                out.append(&mut writes);
            }
            Input::SyncRequest { token, bytes, .. } => {
                let response = self.answer_state().answer(&bytes, &self.store);
                out.push(Output::AnswerSync {
                    token,
                    response: response.encode(),
                });
            }
            Input::SyncPage {
                peer,
                round,
                result,
                checked,
            } => self.handle_sync_page(now_ms, peer, round, result, &checked, &mut out),
            Input::Command { token, command } => self.command(now_ms, token, command, &mut out),
            Input::WriteDone { write, result } => {
                self.write_done(now_ms, write, result, &mut out);
            }
            Input::Timer(Timer::Sync) => {
                let connected: Vec<&P> = self
                    .peers
                    .iter()
                    .filter(|(_, key)| self.trust().is_member(key))
                    .map(|(peer, _)| peer)
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                if !connected.is_empty() {
                    let pick = usize::try_from(self.rng.next() % connected.len() as u64)
                        .unwrap_or_default();
                    let peer = connected[pick].clone();
                    self.start_sync(now_ms, peer, 0, true, &mut out);
                }
                out.push(Output::Schedule {
                    timer: Timer::Sync,
                    at_ms: now_ms.saturating_add(self.config.sync_interval_ms),
                });
            }
            Input::Timer(Timer::Flush) => {
                if std::mem::take(&mut self.unflushed) {
                    out.push(Output::Flush);
                }
                out.push(Output::Schedule {
                    timer: Timer::Flush,
                    at_ms: now_ms.saturating_add(self.config.flush_interval_ms),
                });
            }
            Input::Timer(Timer::CanaryCheck) => {
                self.check_canaries(now_ms, &mut out);
                self.check_certificate_clock(now_ms, &mut out);
                out.push(Output::Schedule {
                    timer: Timer::CanaryCheck,
                    at_ms: now_ms.saturating_add(CANARY_CHECK_INTERVAL_MS),
                });
            }
            Input::Timer(Timer::Canary) => {
                self.scheduled_canary(now_ms, &mut out);
                if self.config.canary.interval_ms > 0 {
                    out.push(Output::Schedule {
                        timer: Timer::Canary,
                        at_ms: now_ms.saturating_add(self.config.canary.interval_ms),
                    });
                }
            }
            Input::Timer(Timer::Expiry) => {
                out.push(Output::Expire { now_ms });
                out.push(Output::Schedule {
                    timer: Timer::Expiry,
                    at_ms: now_ms.saturating_add(self.config.expiry_interval_ms),
                });
            }
            // Expiry freed stored bytes: read them again.
            Input::ExpiryDone => self.budgets.forget_stored(),
            Input::Reloaded { config, members } => {
                self.budgets.set_limits(config.limits);
                self.config.limits = config.limits;
                self.config.statements_per_signer = config.statements_per_signer;
                self.config.vouch_threshold = config.vouch_threshold;
                self.canary_rules = config.canary_rules;
                self.config.canary = config.canary;
                // One derivation with the new list and the new threshold together: a
                // member trusted before and after is never dropped in between.
                self.admin_list = members;
                self.recompute_trust(now_ms, &mut out);
            }
            Input::PeerConnected { peer, key } => {
                self.peers.insert(peer.clone(), key);
                if self.trust().is_member(&key) && key != self.me {
                    self.start_sync(now_ms, peer, 0, true, &mut out);
                }
            }
            Input::PeerDisconnected { peer } => {
                self.peers.remove(&peer);
                self.end_sync(&peer);
            }
            Input::MembersChanged(list) => {
                self.admin_list = list;
                self.recompute_trust(now_ms, &mut out);
            }
        }
        out
    }
}
