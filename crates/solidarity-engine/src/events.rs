//! What goes into the engine ([`Input`]) and what comes out ([`Output`]). The driver (the
//! daemon's actor, or the simulator) feeds inputs as they happen and carries out every
//! output in order; tokens it passes in come back in the outputs that answer them.

use std::collections::BTreeSet;

use solidarity_control::{OverBudget, Refusal};
use solidarity_proto::payload::{Body, CanaryCode};
use solidarity_proto::{AuthorKey, MessageId, SignatureChecked};

/// Names a received gossip message until its verdict goes back to the gossip layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GossipToken(pub u64);

/// Names an inbound sync request until its answer goes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AnswerToken(pub u64);

/// Names a local command until its reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandToken(pub u64);

/// Names a write until it completes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WriteId(pub u64);

/// Which round of a sync session a request or its page belongs to (SPEC §11.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SyncRound {
    /// 0, 1, 2 … within the phase.
    pub round: usize,
    /// The statement phase (first) or the chain phase.
    pub statements: bool,
}

/// The timers the engine asks for; each comes back as [`Input::Timer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// Sync with a random connected member (`sync_interval`).
    Sync,
    /// Make received writes durable.
    Flush,
    /// Read the members' canaries again (SPEC §13.3): silence comes with time; and
    /// certificates begin and end with time.
    CanaryCheck,
    /// Publish this node's own canary (every `canary_interval`, and at start).
    Canary,
    /// Delete the stored messages that expired.
    Expiry,
}

/// A failed outbound sync request: the session ends, the next one retries.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("sync request failed: {0}")]
pub struct SyncFailed(pub String);

/// A failed write: the daemon stops rather than acknowledge unsaved data.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("write failed: {0}")]
pub struct WriteFailed(pub String);

/// What an insert did (mirrors the store's outcome).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The message is new and now stored.
    Stored,
    /// The same id was already stored: nothing changed.
    AlreadyStored,
    /// Another message holds (author, seq): nothing changed.
    SeqConflict,
}

/// A key on the admin's members list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedKey {
    /// The key.
    pub key: AuthorKey,
    /// A collective's offline identity key (certifies node keys) rather than a node key.
    pub identity: bool,
    /// Where it listens (multiaddrs as text).
    pub addresses: Vec<String>,
    /// From its card: the SHA-256 commitment of its duress token key (SPEC §13.3); for an
    /// identity, it holds for the node keys it certifies.
    pub duress_commitment: Option<[u8; 32]>,
}

/// A local command (from the CLI through the control socket).
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Sign `body` with the next seq of this node's chain, store it durably, publish it.
    Sign {
        /// What to sign (boxed: bodies are large, inputs many).
        body: Box<Body>,
        /// Its expiry, ms since the epoch.
        expires_at: Option<u64>,
    },
    /// Check a statement signed elsewhere (a revocation) like a received message, store it
    /// durably, then publish it; one already held is published again.
    PublishStatement {
        /// The envelope bytes.
        envelope: Vec<u8>,
    },
    /// Publish this node's canary now, with `withdraw` taken out of its codes and
    /// `restore` put back.
    Canary {
        /// Codes no longer stated.
        withdraw: Vec<CanaryCode>,
        /// Codes stated again.
        restore: Vec<CanaryCode>,
    },
    /// Publish a canary that looks like any scheduled one but carries the duress token.
    Duress {
        /// The token (its key's commitment is on this node's card).
        token: Vec<u8>,
    },
    /// The admin trusts a key marked compromised again.
    Retrust {
        /// The key.
        key: AuthorKey,
    },
    /// Check each envelope of an export like a received message and store the valid ones;
    /// answered with [`Reply::Imported`] once every write is applied.
    Import {
        /// The envelopes, in the file's order.
        envelopes: Vec<ImportEnvelope>,
    },
}

/// One envelope of an import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportEnvelope {
    /// The bytes, verbatim.
    pub bytes: Vec<u8>,
    /// A canary kept past its expiry (checked as of just before it expired).
    pub kept: bool,
    /// Fork evidence: the envelopes of one group prove a fork together, or are not
    /// stored; never written into the chain.
    pub fork_group: Option<u32>,
}

/// The answer to a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Signed, durable and published.
    Signed {
        /// Its id.
        id: MessageId,
    },
    /// Nothing was done; the refusal says why, for the admin.
    Refused(Refusal),
    /// An import's outcome per envelope, in order; every write is applied (the driver
    /// flushes before it answers, so the admin hears of them once they are durable).
    Imported(Vec<solidarity_control::ImportOutcome>),
}

/// Something the node learned that an admin may want to hear of (the coming
/// notifications consume these; the daemon logs them meanwhile). Private ones (duress)
/// never reach the public view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// A new alert was stored.
    AlertReceived {
        /// The alert.
        id: MessageId,
        /// Its author.
        author: AuthorKey,
    },
    /// An update of an alert was stored.
    AlertChanged {
        /// The alert.
        alert: MessageId,
        /// The update.
        update: MessageId,
    },
    /// A revocation now takes `key` out of trust.
    Revoked {
        /// The revoked key.
        key: AuthorKey,
        /// Its signer: the key itself or the identity that certified it.
        signer: AuthorKey,
        /// Messages from then on are suspect, ms since the epoch.
        since: u64,
    },
    /// Two validly signed messages of `key` conflict: it is in two hands.
    Fork {
        /// The forked key.
        key: AuthorKey,
        /// When detected here.
        detected_at: u64,
        /// Its messages from this seq on are suspect.
        from_seq: u64,
    },
    /// A member's messages are held back by its budget (rate-limited per member).
    QuotaHit {
        /// The member.
        author: AuthorKey,
        /// Which budget.
        why: OverBudget,
    },
    /// A trusted member's canary state changed (admin view only: never public). `Ok`
    /// after an alarm means back to normal.
    Canary {
        /// The member.
        key: AuthorKey,
        /// Its state now.
        state: solidarity_control::CanaryState,
    },
    /// A trusted member's certificate ends within [`crate::engine::CERTIFICATE_WARNING_MS`]
    /// (said again at most every [`crate::engine::CERTIFICATE_WARNING_REPEAT_MS`]).
    CertificateEnding {
        /// The certified node key.
        key: AuthorKey,
        /// The identity that certified it.
        identity: AuthorKey,
        /// When the certificate ends, ms since the epoch.
        valid_until: u64,
    },
    /// Time changed the trusted members: a certificate began or ended.
    CertificatesChanged,
    /// Trust changed: `key` is now trusted (`true`) or no longer (`false`).
    TrustChanged {
        /// The key.
        key: AuthorKey,
        /// Trusted now.
        trusted: bool,
    },
}

/// An event for the engine.
#[derive(Clone, Debug)]
pub enum Input<P> {
    /// A gossip message arrived from `peer`; answer with [`Output::Verdict`].
    Gossip {
        /// Who forwarded it.
        peer: P,
        /// Returned in the verdict.
        token: GossipToken,
        /// The envelope bytes.
        bytes: Vec<u8>,
    },
    /// A peer asks for what it misses; answer with [`Output::AnswerSync`].
    SyncRequest {
        /// The requester.
        peer: P,
        /// Returned in the answer.
        token: AnswerToken,
        /// The request bytes.
        bytes: Vec<u8>,
    },
    /// The answer to an [`Output::SendSync`].
    SyncPage {
        /// The responder.
        peer: P,
        /// As in the request.
        round: SyncRound,
        /// The response bytes, or why there are none.
        result: Result<Vec<u8>, SyncFailed>,
        /// Signatures the driver already checked (by index into the page's envelopes;
        /// any entry may be `None`: the engine verifies those itself).
        checked: Vec<Option<SignatureChecked>>,
    },
    /// A local command.
    Command {
        /// Returned in the reply.
        token: CommandToken,
        /// What to do.
        command: Command,
    },
    /// An [`Output::Write`] completed.
    WriteDone {
        /// As in the write.
        write: WriteId,
        /// What the store did.
        result: Result<WriteOutcome, WriteFailed>,
    },
    /// The driver is running: the engine schedules its timers and says whom to admit.
    Start,
    /// A scheduled timer fired.
    Timer(Timer),
    /// A connection to a peer holding `key` is up (the driver authenticated the key).
    PeerConnected {
        /// The peer.
        peer: P,
        /// Its key.
        key: AuthorKey,
    },
    /// The connection is down.
    PeerDisconnected {
        /// The peer.
        peer: P,
    },
    /// The admin's members list was (re)read.
    MembersChanged(Vec<ListedKey>),
    /// An [`Output::Expire`] completed: stored bytes were freed.
    ExpiryDone,
    /// The configuration and the admin's members list were reloaded (SIGHUP): what
    /// applies live, and the list, taken together.
    Reloaded {
        /// The live part of the configuration.
        config: LiveConfig,
        /// The admin's list.
        members: Vec<ListedKey>,
    },
}

/// What a reload changes in a running engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveConfig {
    /// Per-signer budgets.
    pub limits: crate::budget::Limits,
    /// Most revocations, and most certificates, kept per signer.
    pub statements_per_signer: usize,
    /// Vouches needed to trust a key; 0 disables vouching.
    pub vouch_threshold: usize,
    /// How members' canaries are read.
    pub canary_rules: crate::canary::CanaryRules,
    /// This node's own canary.
    pub canary: crate::engine::OwnCanary,
}

/// What the gossip layer does with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acceptance {
    /// Valid: relay it.
    Accept,
    /// Not relayed, no penalty.
    Ignore,
    /// Invalid: penalise the forwarder.
    Reject,
}

/// A validated message to store: header facts plus the envelope bytes, verbatim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMessage {
    /// Content id.
    pub id: MessageId,
    /// Signer.
    pub author: AuthorKey,
    /// Author seq.
    pub seq: u64,
    /// Kind name.
    pub kind: String,
    /// Creation time, ms since the epoch.
    pub created_at: u64,
    /// Expiry, ms since the epoch.
    pub expires_at: Option<u64>,
    /// The message this one updates, endorses or withdraws.
    pub refers_to: Option<MessageId>,
    /// The envelope bytes.
    pub envelope: Vec<u8>,
}

impl NewMessage {
    /// The message to store for envelope bytes, its facts read from the envelope itself
    /// (for envelopes checked before: a store rebuilt, a test); none when they do not
    /// decode.
    pub fn from_envelope(bytes: &[u8]) -> Option<Self> {
        let decoded = solidarity_proto::Envelope::decode(bytes).ok()?;
        let payload = solidarity_proto::Payload::decode(&decoded.payload).ok()?;
        let refers_to = Body::decode(&payload.kind, &payload.body)
            .ok()
            .and_then(|body| body.refers_to());
        Some(Self {
            id: decoded.id(),
            author: decoded.signer,
            seq: payload.seq,
            kind: payload.kind,
            created_at: payload.created_at,
            expires_at: payload.expires_at,
            refers_to,
            envelope: bytes.to_vec(),
        })
    }
}

/// Something for the driver to do.
#[derive(Clone, Debug)]
pub enum Output<P> {
    /// Tell the gossip layer what to do with a message. Always separate from (and before)
    /// the write it may cause, so a driver can send it before the write completes.
    Verdict {
        /// From the input.
        token: GossipToken,
        /// The verdict.
        acceptance: Acceptance,
    },
    /// Store a message; answer with [`Input::WriteDone`]. `durable`: flush before
    /// completing (this node's own messages are on disk before anyone hears of them).
    Write {
        /// Returned in the completion.
        write: WriteId,
        /// The message.
        message: NewMessage,
        /// Flush before completing.
        durable: bool,
    },
    /// Keep fork evidence and mark its author compromised (durable after a flush).
    RecordFork {
        /// The conflicting envelope.
        evidence: NewMessage,
        /// When detected.
        detected_at: u64,
        /// Where the chains diverge.
        from_seq: u64,
    },
    /// Make every applied write durable.
    Flush,
    /// Mark `key` no longer compromised (durably), then answer `token` (the admin's
    /// `member retrust`).
    ClearCompromise {
        /// The key.
        key: AuthorKey,
        /// The command to answer once it is durable.
        token: CommandToken,
    },
    /// Record durably the revocations made final (SPEC §13.4), so a restart keeps them
    /// final: the whole set, which only grows.
    RecordSettled {
        /// The settled revocations' ids.
        ids: BTreeSet<MessageId>,
    },
    /// Delete the stored messages expired at `now_ms`; answer with [`Input::ExpiryDone`].
    Expire {
        /// The time the expiry is judged at.
        now_ms: u64,
    },
    /// Record durably that this node signed up to `seq` (`DATA/own-chain`) before going
    /// on: the [`Output::Publish`] of that message follows.
    RecordOwnHead {
        /// The highest seq signed.
        seq: u64,
        /// The id there, none before the first message.
        id: Option<MessageId>,
    },
    /// Record durably that this node's own chain came from an import (`restoring`), so
    /// signing waits for a sync also after a restart, or that the wait has lifted; before
    /// the writes that follow.
    RecordRestoring {
        /// Whether the record is to exist.
        restoring: bool,
    },
    /// Publish an envelope by gossip.
    Publish {
        /// The envelope bytes.
        envelope: Vec<u8>,
    },
    /// Send a sync request to `peer`; its page comes back as [`Input::SyncPage`].
    SendSync {
        /// The responder.
        peer: P,
        /// Returned with the page.
        round: SyncRound,
        /// The request bytes.
        request: Vec<u8>,
    },
    /// Answer a peer's sync request.
    AnswerSync {
        /// From the input.
        token: AnswerToken,
        /// The response bytes.
        response: Vec<u8>,
    },
    /// Admit and dial the holder of `key`.
    Allow {
        /// The key.
        key: AuthorKey,
        /// Where it listens.
        addresses: Vec<String>,
    },
    /// Refuse and disconnect the holder of `key`.
    Disallow {
        /// The key.
        key: AuthorKey,
    },
    /// Tell the admin.
    Notice(Notice),
    /// Answer a command.
    Reply {
        /// From the input.
        token: CommandToken,
        /// The answer.
        reply: Reply,
    },
    /// Fire [`Input::Timer`] at `at_ms` (replaces an earlier schedule of the same timer).
    Schedule {
        /// Which timer.
        timer: Timer,
        /// When, ms since the epoch.
        at_ms: u64,
    },
}
