//! Shared oracle of the fuzz targets: a configurable validation context and the properties
//! every verdict of [`solidarity_proto::validate`] must satisfy.
//!
//! The input formats of the targets (documented in each target) are also what
//! `fuzz/seeds` writes; keep the two in step.

use solidarity_proto::envelope::{Envelope, MAX_ENVELOPE_BYTES};
use solidarity_proto::payload::{self, Body};
use solidarity_proto::validate::MAX_CLOCK_SKEW_MS;
use solidarity_proto::{
    AuthorKey, FederationId, ForkPoint, IgnoreReason, Lookup, MessageId, Payload, RejectReason,
    TrustView, Verdict, validate,
};

/// The receiver's clock of the protocol test vectors (2026-01-01T00:00:00Z).
pub const VECTORS_NOW_MS: u64 = 1_767_225_600_000;

/// The federation of the protocol test vectors.
pub fn federation() -> FederationId {
    FederationId::from_name("test-federation")
}

/// Secret key of `key1` of the test vectors.
pub const KEY1_SECRET: [u8; 32] = [1; 32];

/// The body kinds the `body` target selects by its first byte; the last entry is a kind
/// this version does not know.
pub const BODY_KINDS: [&str; 10] = [
    payload::KIND_ALERT,
    payload::KIND_ALERT_UPDATE,
    payload::KIND_MIRROR_OFFER,
    payload::KIND_MIRROR_WITHDRAW,
    payload::KIND_CANARY,
    payload::KIND_ENDORSEMENT,
    payload::KIND_VOUCH,
    payload::KIND_REVOCATION,
    payload::KIND_NODE_CERT,
    "x-unknown/kind",
];

/// Which stored message a lookup reports for any id.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// Nothing stored under any id.
    None,
    /// Every id is an alert of the given author.
    Alert(AuthorKey),
    /// Every id is a mirror offer of the given author.
    Offer(AuthorKey),
}

/// What a receiving node knows: who is a member, what it stores, its clock.
#[derive(Clone, Debug)]
pub struct Context {
    /// The receiver's clock.
    pub now_ms: u64,
    /// Every key is a member (else only `members`).
    pub everyone_is_member: bool,
    /// Member keys when not everyone is.
    pub members: Vec<AuthorKey>,
    /// Every id is already stored.
    pub contains_all: bool,
    /// The store holds, for (signer, seq − 1), exactly the message this one names as `prev`
    /// (a store consistent with the message: it must never cause a fork).
    pub chain: Option<(AuthorKey, u64, MessageId)>,
    /// The store holds another message at (signer, seq): a fork.
    pub conflict: Option<(AuthorKey, u64, MessageId)>,
    /// What `author_and_kind` reports.
    pub target: Target,
}

impl Context {
    /// A receiver with an empty store at the vectors' clock; `members` are trusted.
    pub fn empty(members: Vec<AuthorKey>) -> Self {
        Self {
            now_ms: VECTORS_NOW_MS,
            everyone_is_member: false,
            members,
            contains_all: false,
            chain: None,
            conflict: None,
            target: Target::None,
        }
    }
}

impl TrustView for Context {
    fn is_member(&self, key: &AuthorKey) -> bool {
        self.everyone_is_member || self.members.contains(key)
    }
}

impl Lookup for Context {
    fn contains(&self, _id: &MessageId) -> bool {
        self.contains_all
    }

    fn id_at(&self, author: &AuthorKey, seq: u64) -> Option<MessageId> {
        [self.chain, self.conflict]
            .into_iter()
            .flatten()
            .find(|(a, s, _)| a == author && *s == seq)
            .map(|(_, _, id)| id)
    }

    fn author_and_kind(&self, _id: &MessageId) -> Option<(AuthorKey, String)> {
        match self.target {
            Target::None => None,
            Target::Alert(author) => Some((author, payload::KIND_ALERT.to_owned())),
            Target::Offer(author) => Some((author, payload::KIND_MIRROR_OFFER.to_owned())),
        }
    }
}

/// Validates `bytes` in `context` and checks every property the verdict promises.
pub fn check_validate(bytes: &[u8], context: &Context) -> Verdict {
    let fed = federation();
    let verdict = validate(bytes, context.now_ms, &fed, context, context);
    assert_eq!(
        verdict,
        validate(bytes, context.now_ms, &fed, context, context),
        "validation is deterministic"
    );
    let decoded = (bytes.len() <= MAX_ENVELOPE_BYTES)
        .then(|| Envelope::decode(bytes).ok())
        .flatten();
    // Only the first checks may fail on bytes that are not an envelope.
    if decoded.is_none() {
        assert!(
            matches!(
                verdict,
                Verdict::Reject(RejectReason::Oversize(_) | RejectReason::Malformed(_))
            ),
            "not an envelope, yet {verdict:?}"
        );
        return verdict;
    }
    let envelope = decoded.expect("checked above");
    match &verdict {
        Verdict::Accept(accepted) => {
            assert_eq!(envelope.v, solidarity_proto::PROTOCOL_VERSION);
            assert!(envelope.verify(), "accepted without a valid signature");
            assert_eq!(accepted.id, envelope.id());
            assert_eq!(accepted.signer, envelope.signer);
            assert!(!context.contains_all, "a stored id must be a duplicate");
            let header = Payload::decode(&envelope.payload).expect("accepted header decodes");
            assert_eq!(header, accepted.payload);
            let header = &accepted.payload;
            assert_eq!(header.fed, fed);
            let statement = payload::is_statement_kind(&header.kind);
            assert!(context.is_member(&accepted.signer) || statement);
            match header.seq {
                0 => assert!(statement && header.prev.is_none()),
                1 => assert!(!statement && header.prev.is_none()),
                _ => assert!(!statement && header.prev.is_some()),
            }
            assert!(payload::is_valid_kind_name(&header.kind));
            assert!(header.created_at <= context.now_ms.saturating_add(MAX_CLOCK_SKEW_MS));
            if let Some(expires) = header.expires_at {
                assert!(expires > header.created_at && expires > context.now_ms);
            }
            // No stored message conflicts with an accepted one.
            if header.seq > 0 {
                let at_seq = context.id_at(&accepted.signer, header.seq);
                assert!(at_seq.is_none() || at_seq == Some(accepted.id));
                if header.seq > 1
                    && let Some(before) = context.id_at(&accepted.signer, header.seq - 1)
                {
                    assert_eq!(header.prev, Some(before));
                }
            }
            let body = Body::decode(&header.kind, &header.body).expect("accepted body decodes");
            assert_eq!(body, accepted.body);
            assert!(accepted.body.check().is_ok());
            let known = BODY_KINDS[..BODY_KINDS.len() - 1].contains(&header.kind.as_str());
            if known {
                assert_eq!(accepted.body.kind(), Some(header.kind.as_str()));
            } else {
                assert_eq!(accepted.body, Body::Unknown);
            }
            check_target(&accepted.body, &accepted.signer, context);
        }
        Verdict::Fork(fork) => {
            assert!(envelope.verify(), "a fork needs two valid signatures");
            assert_eq!(fork.id, envelope.id());
            assert_eq!(fork.signer, envelope.signer);
            assert_ne!(fork.conflicting, fork.id);
            assert!(fork.payload.seq > 0, "statements cannot fork");
            match fork.point {
                ForkPoint::SameSeq => assert_eq!(
                    context.id_at(&fork.signer, fork.payload.seq),
                    Some(fork.conflicting)
                ),
                ForkPoint::DivergentPrev => {
                    let before = context.id_at(&fork.signer, fork.payload.seq - 1);
                    assert_eq!(before, Some(fork.conflicting));
                    assert_ne!(fork.payload.prev, before);
                }
            }
        }
        Verdict::Ignore(IgnoreReason::Duplicate) => assert!(context.contains_all),
        Verdict::Reject(RejectReason::BadSignature) => assert!(!envelope.verify()),
        Verdict::Reject(RejectReason::Oversize(_)) => panic!("oversize, yet it decoded"),
        Verdict::Ignore(_) | Verdict::Reject(_) => {}
    }
    verdict
}

/// An accepted update, withdrawal or endorsement targets a message the store reports as the
/// right kind (and, but for endorsements, of the same author), or an unknown one.
fn check_target(body: &Body, signer: &AuthorKey, context: &Context) {
    let wanted = match body {
        Body::AlertUpdate(_) | Body::Endorsement(_) => payload::KIND_ALERT,
        Body::MirrorWithdraw(_) => payload::KIND_MIRROR_OFFER,
        _ => return,
    };
    let Some((author, kind)) = context.author_and_kind(&MessageId([0; 32])) else {
        return;
    };
    assert_eq!(kind, wanted, "accepted {body:?} targeting a {kind}");
    if !matches!(body, Body::Endorsement(_)) {
        assert_eq!(
            &author, signer,
            "accepted {body:?} of another author's target"
        );
    }
}

/// Checks the body decoder for `kind` on `bytes`: a decoded body keeps its limits, names its
/// kind, and its re-encoding decodes to the same body.
pub fn check_body(kind: &str, bytes: &[u8]) {
    let Ok(body) = Body::decode(kind, bytes) else {
        return;
    };
    assert!(body.check().is_ok(), "decoded {body:?} breaks a limit");
    if BODY_KINDS[..BODY_KINDS.len() - 1].contains(&kind) {
        assert_eq!(body.kind(), Some(kind));
        let again = Body::decode(kind, &body.encode()).expect("re-encoded body decodes");
        assert_eq!(again, body, "body re-encoding round trip");
    } else {
        assert_eq!(body, Body::Unknown);
    }
}
