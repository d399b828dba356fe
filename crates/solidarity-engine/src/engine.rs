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

use ed25519_dalek::SigningKey;
use solidarity_proto::payload::{Body, Canary, NodeCert, Revocation, Vouch};
use solidarity_proto::state::Stored;
use solidarity_proto::sync::{self, SyncRequest, SyncResponse, Watermark};
use solidarity_proto::trust::{self, Listed, RevocationFact, Standing, Statements, TrustInputs};
use solidarity_proto::{
    Accepted, AuthorKey, Envelope, FederationId, Lookup, MessageId, Payload, SignatureChecked,
    TrustView, Verdict, envelope, kinds,
};

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
    /// Seeds the choice of sync partners.
    pub seed: u64,
}

/// Where a write came from.
#[derive(Clone, Copy, Debug)]
enum Origin {
    /// Signed here: publish, then reply.
    Local(CommandToken),
    /// Received by gossip or sync.
    Remote,
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
    OverBudget,
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
    statements: Statements,
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
    relay: Relay,
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
    duress_commitments: HashMap<AuthorKey, [u8; 32]>,
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
    /// An engine for the node holding `key`, over `store`, from what `loaded` holds.
    pub fn new(config: EngineConfig, key: SigningKey, store: S, loaded: Loaded) -> Self {
        let me = envelope::author_key(&key);
        let head = or_log(store.chain_head(&me), None);
        let own_chain = OwnChain::new(config.own_chain_recorded, head, config.fresh_chain);
        let budgets = Budgets::new(config.limits);
        let rng = SplitMix(config.seed);
        Self {
            key,
            me,
            store,
            admin_list: Vec::new(),
            statements: loaded.statements,
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
            relay: Relay::default(),
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
            config,
        }
    }

    /// Reads canaries with `rules` instead of [`DEFAULT_CANARY_RULES`].
    pub fn with_canary_rules(mut self, rules: CanaryRules) -> Self {
        self.canary_rules = rules;
        self
    }

    /// Recognises duress tokens in `key`'s canaries with the commitment of its card.
    pub fn set_duress_commitment(&mut self, key: AuthorKey, commitment: [u8; 32]) {
        self.duress_commitments.insert(key, commitment);
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

    /// Why signing waits, if it does.
    pub fn paused(&self) -> Option<String> {
        self.own_chain.paused()
    }

    /// How each received envelope was judged since the last call (for metrics).
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
            }
            Input::Gossip { token, bytes, .. } => {
                let mut writes = Vec::new();
                let acceptance = self.ingest(now_ms, &bytes, Path::Gossip, None, &mut writes);
                out.push(Output::Verdict { token, acceptance });
                out.append(&mut writes);
            }
            Input::SyncRequest { token, bytes, .. } => {
                let response = self.answer_sync(&bytes);
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
            Input::Command { token, command } => match command {
                Command::Sign { body, expires_at } => {
                    self.sign(now_ms, token, *body, expires_at, &mut out);
                }
            },
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
                out.push(Output::Schedule {
                    timer: Timer::CanaryCheck,
                    at_ms: now_ms.saturating_add(CANARY_CHECK_INTERVAL_MS),
                });
            }
            Input::ConfigReloaded(live) => {
                self.budgets.set_limits(live.limits);
                self.config.limits = live.limits;
                self.config.statements_per_signer = live.statements_per_signer;
                if self.config.vouch_threshold != live.vouch_threshold {
                    self.config.vouch_threshold = live.vouch_threshold;
                    self.recompute_trust(now_ms, &mut out);
                }
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

    /// Reports each change of a trusted member's canary state once.
    fn check_canaries(&mut self, now_ms: u64, out: &mut Vec<Output<P>>) {
        let trusted: Vec<AuthorKey> = self
            .members
            .iter()
            .filter(|(_, listed)| listed.standing == Standing::Trusted)
            .map(|(key, _)| *key)
            .collect();
        for key in trusted {
            let Some(view) = self.canary(&key, now_ms) else {
                continue;
            };
            match self.canary_watch.note(key, view.state) {
                Some(CanaryChange::Alarm(state)) => {
                    out.push(Output::Notice(Notice::Canary { key, state }));
                }
                Some(CanaryChange::BackToNormal) => out.push(Output::Notice(Notice::Canary {
                    key,
                    state: view.state,
                })),
                Some(CanaryChange::FirstOk) | None => {}
            }
        }
    }

    fn trust(&self) -> Trust<'_> {
        Trust {
            me: &self.me,
            me_trusted: !self.compromised.contains_key(&self.me)
                && self.revocation_fact(&self.me).is_none(),
            members: &self.members,
        }
    }

    fn identities(&self) -> BTreeSet<AuthorKey> {
        self.admin_list
            .iter()
            .filter(|listed| listed.identity)
            .map(|listed| listed.key)
            .collect()
    }

    fn revocation_fact(&self, key: &AuthorKey) -> Option<RevocationFact> {
        trust::revocation_of(key, &self.statements, &self.identities())
    }

    fn validate(&self, bytes: &[u8], now_ms: u64, checked: Option<SignatureChecked>) -> Verdict {
        let lookup = EngineLookup {
            store: &self.store,
            pending: &self.pending,
            pending_chain: &self.pending_chain,
        };
        solidarity_proto::validate_checked(
            bytes,
            now_ms,
            &self.config.federation,
            &self.trust(),
            &lookup,
            checked,
        )
    }

    /// Derives trust again and says whom to admit or refuse now.
    fn recompute_trust(&mut self, now_ms: u64, out: &mut Vec<Output<P>>) {
        let admin_keys: BTreeSet<AuthorKey> = self
            .admin_list
            .iter()
            .filter(|listed| !listed.identity)
            .map(|listed| listed.key)
            .collect();
        let identities = self.identities();
        let forked = self
            .compromised
            .iter()
            .map(|(key, state)| (*key, state.detected_at))
            .collect();
        let members = trust::listed(TrustInputs {
            me: &self.me,
            admin_keys: &admin_keys,
            identities: &identities,
            statements: &self.statements,
            vouches: &self.vouches,
            forked: &forked,
            vouch_threshold: self.config.vouch_threshold,
            now_ms,
        });
        // What revoked a key under this list stays in force under the next (SPEC §13.4).
        self.statements.settle(&identities);
        let trusted = |members: &BTreeMap<AuthorKey, Listed>, key: &AuthorKey| {
            members
                .get(key)
                .is_some_and(|listed| listed.standing == Standing::Trusted)
        };
        for key in self.members.keys() {
            if trusted(&self.members, key) && !trusted(&members, key) {
                out.push(Output::Disallow { key: *key });
                out.push(Output::Notice(Notice::TrustChanged {
                    key: *key,
                    trusted: false,
                }));
            }
        }
        for (key, listed) in &members {
            if listed.standing != Standing::Trusted {
                continue;
            }
            if !trusted(&self.members, key) {
                out.push(Output::Notice(Notice::TrustChanged {
                    key: *key,
                    trusted: true,
                }));
            }
            out.push(Output::Allow {
                key: *key,
                addresses: self.addresses_of(key, &listed.why),
            });
        }
        self.members = members;
    }

    fn addresses_of(&self, key: &AuthorKey, why: &trust::Why) -> Vec<String> {
        match why {
            trust::Why::Admin => self
                .admin_list
                .iter()
                .find(|listed| listed.key == *key)
                .map(|listed| listed.addresses.clone())
                .unwrap_or_default(),
            trust::Why::Certified { addresses, .. } => addresses.clone(),
            trust::Why::Vouched { by } => {
                crate::vouch_labels::vouched_label(&self.vouches, key, by, |_| false)
                    .map(|label| label.addresses)
                    .unwrap_or_default()
            }
        }
    }

    /// Whether a key is one this node has a reason to hear statements from.
    fn knows(&self, key: &AuthorKey) -> bool {
        *key == self.me
            || self.members.contains_key(key)
            || self.compromised.contains_key(key)
            || self.admin_list.iter().any(|listed| listed.key == *key)
    }

    fn keep_statement(&self, signer: &AuthorKey, body: &Body) -> Keep {
        let identities = self.identities();
        statements::judge(
            &statements::Here {
                statements: &self.statements,
                pending: &self.pending_statements,
                pending_revoked: &|by, key| self.pending_revoked.contains_key(&(*by, *key)),
                listed_identity: &|key| identities.contains(key),
                knows: &|key| self.knows(key),
                cap: self.config.statements_per_signer,
            },
            signer,
            body,
        )
    }

    /// Takes a received message from its signer's budget; false when held back.
    fn within_budget(
        &mut self,
        now_ms: u64,
        author: AuthorKey,
        kind: &str,
        bytes: usize,
        out: &mut Vec<Output<P>>,
    ) -> bool {
        if author == self.me || !kinds::is_budgeted(kind) {
            return true;
        }
        let store = &self.store;
        let decision = self.budgets.take(author, bytes, now_ms, || {
            or_log(store.stored_bytes(&author), 0)
        });
        match decision {
            Decision::Within => true,
            Decision::Over { why, warn } => {
                if warn {
                    out.push(Output::Notice(Notice::QuotaHit { author, why }));
                }
                false
            }
        }
    }

    /// Validates received bytes and queues the write of an accepted message.
    fn ingest(
        &mut self,
        now_ms: u64,
        data: &[u8],
        path: Path,
        checked: Option<SignatureChecked>,
        out: &mut Vec<Output<P>>,
    ) -> Acceptance {
        let verdict = self.validate(data, now_ms, checked);
        let keep = match &verdict {
            Verdict::Accept(accepted) if kinds::is_statement(&accepted.payload.kind) => {
                self.keep_statement(&accepted.signer, &accepted.body)
            }
            _ => Keep::Store,
        };
        // Only what this node would store is charged to its signer.
        let over_budget = matches!(&verdict, Verdict::Accept(accepted)
            if keep == Keep::Store
                && !self.within_budget(now_ms, accepted.signer, &accepted.payload.kind.clone(), data.len(), out));
        self.judged.push((
            path,
            match &verdict {
                _ if over_budget => Judged::OverBudget,
                Verdict::Accept(_) => Judged::Accept,
                Verdict::Ignore(_) => Judged::Ignore,
                Verdict::Reject(_) => Judged::Reject,
                Verdict::Fork(_) => Judged::Fork,
            },
        ));
        match verdict {
            Verdict::Accept(_) if over_budget => Acceptance::Ignore,
            Verdict::Accept(accepted) if keep != Keep::Store => {
                let revocation = matches!(accepted.body, Body::Revocation(_));
                if keep == Keep::Relay
                    && self
                        .relay
                        .offer(accepted.signer, accepted.id, revocation, data)
                {
                    return Acceptance::Accept;
                }
                tracing::debug!(?keep, "statement not kept");
                Acceptance::Ignore
            }
            Verdict::Accept(accepted) => {
                self.queue_write(*accepted, data.to_vec(), Origin::Remote, out);
                Acceptance::Accept
            }
            Verdict::Ignore(reason) => {
                tracing::debug!(%reason, "message ignored");
                Acceptance::Ignore
            }
            Verdict::Reject(reason) => {
                tracing::info!(%reason, "message rejected");
                Acceptance::Reject
            }
            Verdict::Fork(fork) => {
                self.handle_fork(now_ms, *fork, data, out);
                // Relay the evidence so every member learns of the fork.
                Acceptance::Accept
            }
        }
    }

    /// Two validly signed messages of one key conflict: stop trusting it at once and keep
    /// the evidence durably (the fork rule, SPEC §9.1).
    fn handle_fork(
        &mut self,
        now_ms: u64,
        fork: solidarity_proto::Fork,
        envelope: &[u8],
        out: &mut Vec<Output<P>>,
    ) {
        let from_seq = fork_from_seq(&fork);
        let newly = !self.compromised.contains_key(&fork.signer);
        let state = self.compromised.entry(fork.signer).or_insert(Compromised {
            detected_at: now_ms,
            from_seq,
        });
        state.from_seq = state.from_seq.min(from_seq);
        if newly {
            let state = *state;
            out.push(Output::Notice(Notice::Fork {
                key: fork.signer,
                detected_at: state.detected_at,
                from_seq: state.from_seq,
            }));
            self.recompute_trust(now_ms, out);
        }
        out.push(Output::RecordFork {
            evidence: NewMessage {
                id: fork.id,
                author: fork.signer,
                seq: fork.payload.seq,
                kind: fork.payload.kind,
                created_at: fork.payload.created_at,
                expires_at: fork.payload.expires_at,
                refers_to: None,
                envelope: envelope.to_vec(),
            },
            detected_at: now_ms,
            from_seq,
        });
    }

    fn queue_write(
        &mut self,
        accepted: Accepted,
        envelope: Vec<u8>,
        origin: Origin,
        out: &mut Vec<Output<P>>,
    ) {
        let Accepted {
            id,
            signer,
            payload,
            body,
        } = accepted;
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
        let durable = matches!(origin, Origin::Local(_));
        if !durable {
            self.unflushed = true;
        }
        self.pending.insert(id, (signer, payload.kind.clone()));
        self.pending_chain.insert((signer, payload.seq), id);
        let write = WriteId(self.next_write);
        self.next_write = self.next_write.wrapping_add(1);
        out.push(Output::Write {
            write,
            message: message.clone(),
            durable,
        });
        self.writes.insert(
            write,
            InFlight {
                message,
                payload,
                body,
                origin,
            },
        );
    }

    /// Counts a statement queued for writing (`queued`) or written.
    fn count_pending_statement(&mut self, signer: AuthorKey, body: &Body, queued: bool) {
        let step = |count: &mut usize| {
            *count = if queued {
                count.saturating_add(1)
            } else {
                count.saturating_sub(1)
            };
        };
        let revocation = match body {
            Body::Revocation(_) => true,
            Body::NodeCert(_) => false,
            _ => return,
        };
        if let Body::Revocation(revocation) = body {
            let pair = (signer, revocation.key.unwrap_or(signer));
            let count = self.pending_revoked.entry(pair).or_default();
            step(count);
            if *count == 0 {
                self.pending_revoked.remove(&pair);
            }
        }
        let counts = self.pending_statements.entry(signer).or_default();
        step(if revocation {
            &mut counts.0
        } else {
            &mut counts.1
        });
        if *counts == (0, 0) {
            self.pending_statements.remove(&signer);
        }
    }

    fn sign(
        &mut self,
        now_ms: u64,
        token: CommandToken,
        body: Body,
        expires_at: Option<u64>,
        out: &mut Vec<Output<P>>,
    ) {
        let refuse = |out: &mut Vec<Output<P>>, text: String| {
            out.push(Output::Reply {
                token,
                reply: Reply::Refused(text),
            });
        };
        let Some(kind) = body.kind() else {
            return refuse(out, "cannot sign a message of unknown kind".to_owned());
        };
        if self.revocation_fact(&self.me).is_some() {
            return refuse(
                out,
                "this node's key is revoked: nothing was signed. Set up a new node key and ask the members to add it".to_owned(),
            );
        }
        if self.compromised.contains_key(&self.me) {
            return refuse(
                out,
                "this node's key signed two conflicting messages: another party holds it. Nothing was signed. Members no longer trust this key; set up a new node key and ask them to re-add it".to_owned(),
            );
        }
        if let Some(why) = self.own_chain.paused() {
            return refuse(out, format!("refused: nothing was signed: {why}"));
        }
        let statement = kinds::is_statement(kind);
        let (seq, prev) = match (statement, self.head) {
            (true, _) => (0, None),
            (false, Some((seq, id))) => {
                // The head can come from the network: never wrap.
                let Some(next) = seq.checked_add(1) else {
                    return refuse(
                        out,
                        "this node's chain is at the highest seq there is: nothing was signed. Set up a new node key".to_owned(),
                    );
                };
                (next, Some(id))
            }
            (false, None) => (1, None),
        };
        let payload = Payload {
            fed: self.config.federation,
            seq,
            prev,
            created_at: now_ms,
            expires_at,
            kind: kind.to_owned(),
            body: body.encode(),
        };
        let signed = envelope::sign(&self.key, &payload);
        match self.validate(&signed.bytes, now_ms, None) {
            Verdict::Accept(accepted) => {
                if !statement {
                    self.head = Some((seq, signed.id));
                }
                self.queue_write(*accepted, signed.bytes, Origin::Local(token), out);
            }
            Verdict::Ignore(reason) => refuse(out, format!("refused: {reason}")),
            Verdict::Reject(reason) => refuse(out, format!("refused: {reason}")),
            Verdict::Fork(_) => refuse(
                out,
                "refused: the store already holds another message of this node at this sequence number".to_owned(),
            ),
        }
    }

    fn write_done(
        &mut self,
        now_ms: u64,
        write: WriteId,
        result: Result<WriteOutcome, WriteFailed>,
        out: &mut Vec<Output<P>>,
    ) {
        let Some(InFlight {
            message,
            payload,
            body,
            origin,
        }) = self.writes.remove(&write)
        else {
            tracing::error!(write = write.0, "completion of an unknown write");
            return;
        };
        self.pending.remove(&message.id);
        self.pending_chain.remove(&(message.author, message.seq));
        self.count_pending_statement(message.author, &body, false);
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(failed) => {
                if let Origin::Local(token) = origin {
                    out.push(Output::Reply {
                        token,
                        reply: Reply::Refused(format!(
                            "storage failed: the message was NOT published and may not be on disk (the daemon stops): {failed}"
                        )),
                    });
                }
                return;
            }
        };
        if outcome == WriteOutcome::Stored {
            if message.author == self.me
                && message.seq > 0
                && self.head.is_none_or(|(seq, _)| seq < message.seq)
            {
                self.head = Some((message.seq, message.id));
                self.own_chain_learned(out);
            }
            self.stored(now_ms, &message, &payload, body, out);
        }
        match origin {
            Origin::Local(token) => {
                if outcome == WriteOutcome::Stored {
                    if self.own_chain.signed(message.seq, message.id) {
                        out.push(Output::RecordOwnHead {
                            seq: message.seq,
                            id: Some(message.id),
                        });
                    }
                    out.push(Output::Publish {
                        envelope: message.envelope,
                    });
                    out.push(Output::Reply {
                        token,
                        reply: Reply::Signed { id: message.id },
                    });
                } else {
                    out.push(Output::Reply {
                        token,
                        reply: Reply::Refused(format!(
                            "the store refused the message ({outcome:?}); nothing was published"
                        )),
                    });
                }
            }
            Origin::Remote => {}
        }
    }

    /// A message is stored: update what is derived from it.
    fn stored(
        &mut self,
        now_ms: u64,
        message: &NewMessage,
        payload: &Payload,
        body: Body,
        out: &mut Vec<Output<P>>,
    ) {
        let (id, author) = (message.id, message.author);
        let mut revoked = None;
        match body {
            Body::Alert(_) => out.push(Output::Notice(Notice::AlertReceived {
                id: message.id,
                author: message.author,
            })),
            Body::AlertUpdate(update) => out.push(Output::Notice(Notice::AlertChanged {
                alert: update.alert,
                update: message.id,
            })),
            Body::Vouch(vouch) => self.vouches.push(stored(id, author, payload, vouch)),
            Body::Revocation(revocation) => {
                let key = revocation.key.unwrap_or(message.author);
                revoked = Some((key, self.revocation_fact(&key)));
                self.statements
                    .add_revocation(stored(id, author, payload, revocation));
            }
            Body::NodeCert(certificate) => {
                self.statements
                    .add_certificate(stored(id, author, payload, certificate))
            }
            Body::Canary(canary) => keep_canary(
                self.canaries.entry(author).or_default(),
                stored(id, author, payload, canary),
            ),
            Body::MirrorOffer(_)
            | Body::MirrorWithdraw(_)
            | Body::Endorsement(_)
            | Body::Unknown => {}
        }
        // Trust is derived again only when the statement changes it: a revocation that
        // does not change what holds for its key changes nothing.
        let changes_trust = match revoked {
            Some((key, before)) => {
                let after = self.revocation_fact(&key);
                if let Some(fact) = after
                    && after != before
                {
                    out.push(Output::Notice(Notice::Revoked {
                        key,
                        signer: fact.signer,
                        since: fact.since,
                    }));
                }
                after != before
            }
            None => kinds::changes_trust(&message.kind),
        };
        if changes_trust {
            self.recompute_trust(now_ms, out);
        }
    }

    fn own_chain_learned(&mut self, out: &mut Vec<Output<P>>) {
        let me = self.me;
        if self.pending_chain.keys().any(|(author, _)| *author == me) {
            return;
        }
        let (resume, record) = self.own_chain.learned(self.head);
        if let Resume::AfterRecorded(seq, id) = resume {
            self.head = Some((seq, id));
        }
        if let Some((seq, id)) = record {
            out.push(Output::RecordOwnHead { seq, id: Some(id) });
        }
    }

    // ---- sync -------------------------------------------------------------------

    /// How far we hold the author's chain, counting writes in flight.
    fn watermark(&self, author: &AuthorKey) -> Watermark {
        let mut seq = or_log(self.store.watermark(author), 0);
        while let Some(next) = seq.checked_add(1)
            && self.pending_chain.contains_key(&(*author, next))
        {
            seq = next;
        }
        let head = (seq > 0)
            .then(|| {
                self.pending_chain
                    .get(&(*author, seq))
                    .copied()
                    .or_else(|| or_log(self.store.id_at(author, seq), None))
            })
            .flatten();
        Watermark {
            author: *author,
            seq,
            head,
        }
    }

    /// The signers whose statements and chains this node asks for: its members, itself
    /// and the identities on its admin's list.
    fn sync_authors(&self) -> BTreeSet<AuthorKey> {
        self.members
            .keys()
            .copied()
            .chain([self.me])
            .chain(self.identities())
            .collect()
    }

    fn start_sync(
        &mut self,
        now_ms: u64,
        peer: P,
        round: usize,
        statement_phase: bool,
        out: &mut Vec<Output<P>>,
    ) {
        if round == 0 && statement_phase && !self.syncing.insert(peer.clone()) {
            return;
        }
        let request = if statement_phase {
            let seen = self.statements_seen.get(&peer);
            let wanted = self
                .sync_authors()
                .into_iter()
                .map(|signer| {
                    statements::held(
                        signer,
                        &self.statements,
                        &self.relay,
                        seen.and_then(|seen| seen.get(&signer)),
                    )
                })
                .collect();
            SyncRequest {
                fed: self.config.federation,
                have: Vec::new(),
                limit: sync::MAX_PAGE_ENVELOPES,
                statements: Some(statements::fit(wanted)),
            }
        } else {
            // The chain of an author out of budget is not asked for this round (a
            // watermark at the highest seq asks for nothing, SPEC §10).
            let have = self
                .sync_authors()
                .iter()
                .map(|author| {
                    if self.budgets.spent(author, now_ms) {
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
                fed: self.config.federation,
                have,
                limit: sync::MAX_PAGE_ENVELOPES,
                statements: None,
            }
        };
        out.push(Output::SendSync {
            peer,
            round: SyncRound {
                round,
                statements: statement_phase,
            },
            request: request.encode(),
        });
    }

    fn end_sync(&mut self, peer: &P) {
        self.syncing.remove(peer);
        self.statements_seen.remove(peer);
    }

    fn handle_sync_page(
        &mut self,
        now_ms: u64,
        peer: P,
        round: SyncRound,
        result: Result<Vec<u8>, SyncFailed>,
        checked: &[Option<SignatureChecked>],
        out: &mut Vec<Output<P>>,
    ) {
        let response = match result.map(|bytes| SyncResponse::decode(&bytes)) {
            Ok(Ok(response)) => response,
            Ok(Err(decode_error)) => {
                tracing::info!(error = %decode_error, "malformed sync response");
                self.end_sync(&peer);
                return;
            }
            Err(failed) => {
                tracing::debug!(error = %failed, "sync request failed");
                self.end_sync(&peer);
                return;
            }
        };
        let mut accepted = 0usize;
        for (index, envelope) in response.envelopes.iter().enumerate() {
            let checked = checked.get(index).copied().flatten();
            let acceptance = if round.statements {
                self.ingest_synced_statement(now_ms, &peer, envelope, checked, out)
            } else {
                self.ingest(now_ms, envelope, Path::Sync, checked, out)
            };
            if acceptance == Acceptance::Accept {
                accepted += 1;
            }
        }
        if accepted > 0 {
            tracing::info!(
                accepted,
                round = round.round,
                statement_phase = round.statements,
                "caught up by sync"
            );
        }
        let next = round.round + 1;
        if round.statements {
            // Statement rounds go on while the responder holds more, whatever they
            // carried (what was refused is listed as held next time); then the chains.
            if response.more && next < sync::MAX_STATEMENT_ROUNDS {
                self.start_sync(now_ms, peer, next, true, out);
            } else {
                self.statements_seen.remove(&peer);
                self.start_sync(now_ms, peer, 0, false, out);
            }
        } else if response.more && accepted > 0 && next < sync::MAX_SYNC_ROUNDS {
            self.start_sync(now_ms, peer, next, false, out);
        } else {
            self.end_sync(&peer);
            // A member answered everything it had for us, our own chain included.
            self.own_chain.note_synced();
            self.own_chain_learned(out);
        }
    }

    /// Ingests an envelope of a statement page; one that is not a statement is refused
    /// (the responder broke the phase), and each is remembered for the session.
    fn ingest_synced_statement(
        &mut self,
        now_ms: u64,
        peer: &P,
        bytes: &[u8],
        checked: Option<SignatureChecked>,
        out: &mut Vec<Output<P>>,
    ) -> Acceptance {
        let Ok(decoded) = Envelope::decode(bytes) else {
            return Acceptance::Reject;
        };
        let statement = Payload::decode(&decoded.payload)
            .is_ok_and(|payload| kinds::is_statement(&payload.kind));
        if !statement {
            tracing::info!("a statement page carried a message that is not a statement");
            return Acceptance::Reject;
        }
        if let Some(id) = envelope::message_id_of_envelope_bytes(bytes) {
            let seen = self
                .statements_seen
                .entry(peer.clone())
                .or_default()
                .entry(decoded.signer)
                .or_default();
            if seen.len() < sync::MAX_HELD_PER_SIGNER {
                seen.push(id);
            }
        }
        self.ingest(now_ms, bytes, Path::Sync, checked, out)
    }

    /// One page of what the requester misses (SPEC §11.5).
    fn answer_sync(&self, data: &[u8]) -> SyncResponse {
        sync_answer::answer(
            data,
            &sync_answer::Responder {
                federation: &self.config.federation,
                statements: &self.statements,
                relay: &self.relay,
                compromised: &|key| self.compromised.contains_key(key),
                store: &self.store,
            },
        )
    }
}

/// The fork rule (SPEC §9.1): from which seq a forked key's messages are suspect: the
/// seq both chains claim, or the one before a message whose `prev` diverges.
pub fn fork_from_seq(fork: &solidarity_proto::Fork) -> u64 {
    match fork.point {
        solidarity_proto::ForkPoint::SameSeq => fork.payload.seq,
        solidarity_proto::ForkPoint::DivergentPrev => fork.payload.seq.saturating_sub(1),
    }
}

/// Keeps a canary among its author's two latest (by seq).
fn keep_canary(kept: &mut Vec<Stored<Canary>>, canary: Stored<Canary>) {
    if kept.iter().any(|held| held.seq == canary.seq) {
        return;
    }
    kept.push(canary);
    kept.sort_by_key(|canary| canary.seq);
    if kept.len() > 2 {
        kept.remove(0);
    }
}

fn stored<T>(id: MessageId, author: AuthorKey, payload: &Payload, body: T) -> Stored<T> {
    Stored {
        id,
        author,
        seq: payload.seq,
        created_at: payload.created_at,
        expires_at: payload.expires_at,
        body,
    }
}

/// Every stored statement, vouch and kept canary, decoded (the engine's start state);
/// `envelopes` are stored envelopes of kinds `vouch`, `revocation`, `node-cert` and the
/// kept `canary` ones (others are skipped).
pub fn load(
    envelopes: impl IntoIterator<Item = Vec<u8>>,
    compromised: BTreeMap<AuthorKey, Compromised>,
) -> Loaded {
    let mut revocations: Vec<Stored<Revocation>> = Vec::new();
    let mut certificates: Vec<Stored<NodeCert>> = Vec::new();
    let mut vouches = Vec::new();
    let mut canaries: HashMap<AuthorKey, Vec<Stored<Canary>>> = HashMap::new();
    for bytes in envelopes {
        let Ok(decoded) = Envelope::decode(&bytes) else {
            continue;
        };
        let Ok(payload) = Payload::decode(&decoded.payload) else {
            continue;
        };
        let Ok(body) = Body::decode(&payload.kind, &payload.body) else {
            continue;
        };
        let (id, author) = (decoded.id(), decoded.signer);
        match body {
            Body::Revocation(revocation) => {
                revocations.push(stored(id, author, &payload, revocation));
            }
            Body::NodeCert(certificate) => {
                certificates.push(stored(id, author, &payload, certificate));
            }
            Body::Vouch(vouch) => vouches.push(stored(id, author, &payload, vouch)),
            Body::Canary(canary) => keep_canary(
                canaries.entry(author).or_default(),
                stored(id, author, &payload, canary),
            ),
            _ => {}
        }
    }
    Loaded {
        statements: Statements::new(revocations, certificates),
        vouches,
        compromised,
        canaries,
    }
}
