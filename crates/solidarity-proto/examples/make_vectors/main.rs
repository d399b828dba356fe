//! Writes the protocol test vectors: one `NAME.hex` file per vector (lowercase hex of the
//! bytes, one line) and an index, `vectors.json`, with each vector's expected id and verdict
//! and the validation context (clock, federation, members, stored messages) it assumes.
//!
//! Deterministic: fixed secret keys, fixed times, ed25519's deterministic signatures.
//! Every vector is checked against `solidarity_proto::validate` before it is written.
//!
//! ```text
//! cargo run -p solidarity-proto --example make_vectors -- protocol-spec/vectors
//! ```

mod canary_states;
mod decoded;
mod decoding;
mod responder;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use serde_bytes::{ByteArray, ByteBuf};
use serde_json::{Value, json};
use solidarity_proto::envelope::{self, MAX_ENVELOPE_BYTES, SIGNATURE_DOMAIN};
use solidarity_proto::payload::{
    Alert, AlertCategory, AlertStatus, AlertUpdate, Canary, CanaryCode, Endorsement, LegalType,
    MirrorOffer, MirrorService, MirrorWithdraw, NodeCert, Revocation, Seized, Severity, Stance,
    Vouch,
};
use solidarity_proto::sync::{HeldStatements, SYNC_PROTOCOL, SyncRequest, SyncResponse, Watermark};
use solidarity_proto::validate::MAX_CLOCK_SKEW_MS;
use solidarity_proto::{
    AuthorKey, Body, Envelope, FederationId, ForkPoint, IgnoreReason, Lookup, MessageId, Payload,
    RejectReason, TrustView, Verdict,
};

/// The receiver's clock in every vector: 2026-01-01T00:00:00Z.
const NOW_MS: u64 = 1_767_225_600_000;
/// When the vectors' messages were created: one minute before [`NOW_MS`].
const CREATED_MS: u64 = NOW_MS - 60_000;
const DAY_MS: u64 = 24 * 60 * 60 * 1000;
const FEDERATION: &str = "test-federation";
/// The canary interval of the canary vectors: 6 hours, a node's default.
const CANARY_INTERVAL_SECS: u64 = 6 * 60 * 60;
/// The `compromised_since` of the `revocation` vector: 2025-12-31T06:00:00Z.
const COMPROMISED_SINCE_MS: u64 = NOW_MS - 18 * 60 * 60 * 1000;
/// The duress passphrase of key1's admins in the `canary_duress` vector.
const DURESS_PASSPHRASE: &str = "correct horse battery staple";
/// The nonce of the duress vector's token (a node draws a fresh random one each time).
const DURESS_NONCE: [u8; 16] = *b"duress-nonce-16b";
/// ℓ, the order of the Ed25519 base point, little-endian.
const GROUP_ORDER_LE: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];
/// The compressed identity point: a valid curve point of small order.
const IDENTITY_POINT: [u8; 32] = {
    let mut bytes = [0u8; 32];
    bytes[0] = 1;
    bytes
};

fn main() {
    let out = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("protocol-spec/vectors"), PathBuf::from);
    std::fs::create_dir_all(&out).expect("create the output directory");
    let mut generator = Generator::new();
    generator.build();
    generator.write(&out);
    eprintln!(
        "wrote {} envelope vectors and {} sync vectors to {}",
        generator.vectors.len(),
        generator.sync.len(),
        out.display()
    );
}

/// A stored message the lookup reports.
#[derive(Clone)]
struct Fact {
    author: AuthorKey,
    seq: u64,
    id: MessageId,
    kind: &'static str,
}

struct Vector {
    name: &'static str,
    description: &'static str,
    bytes: Vec<u8>,
    verdict: &'static str,
    field: Option<&'static str>,
    members: Vec<AuthorKey>,
    stored: Vec<Fact>,
}

struct Context<'a> {
    members: &'a [AuthorKey],
    stored: &'a [Fact],
}

impl TrustView for Context<'_> {
    fn is_member(&self, key: &AuthorKey) -> bool {
        self.members.contains(key)
    }
}

impl Lookup for Context<'_> {
    fn contains(&self, id: &MessageId) -> bool {
        self.stored.iter().any(|fact| fact.id == *id)
    }
    fn id_at(&self, author: &AuthorKey, seq: u64) -> Option<MessageId> {
        self.stored
            .iter()
            .find(|fact| fact.author == *author && fact.seq == seq)
            .map(|fact| fact.id)
    }
    fn author_and_kind(&self, id: &MessageId) -> Option<(AuthorKey, String)> {
        self.stored
            .iter()
            .find(|fact| fact.id == *id)
            .map(|fact| (fact.author, fact.kind.to_owned()))
    }
}

/// The stable name of a verdict, as written in `vectors.json` (SPEC.md §9).
fn verdict_name(verdict: &Verdict) -> (String, Option<&'static str>) {
    match verdict {
        Verdict::Accept(_) => ("accept".to_owned(), None),
        Verdict::Ignore(reason) => {
            let name = match reason {
                IgnoreReason::Duplicate => "duplicate",
                IgnoreReason::FromFuture => "from_future",
                IgnoreReason::Expired => "expired",
                IgnoreReason::NotMember => "not_member",
                IgnoreReason::NotAuthor => "not_author",
                IgnoreReason::WrongTarget => "wrong_target",
            };
            (format!("ignore:{name}"), None)
        }
        Verdict::Fork(fork) => {
            let point = match fork.point {
                ForkPoint::SameSeq => "same_seq",
                ForkPoint::DivergentPrev => "divergent_prev",
            };
            (format!("fork:{point}"), None)
        }
        Verdict::Reject(reason) => {
            let (name, field) = match reason {
                RejectReason::Oversize(_) => ("oversize", None),
                RejectReason::Malformed(_) => ("malformed", None),
                RejectReason::UnsupportedVersion(_) => ("unsupported_version", None),
                RejectReason::WrongFederation => ("wrong_federation", None),
                RejectReason::BadChain => ("bad_chain", None),
                RejectReason::BadKind => ("bad_kind", None),
                RejectReason::BadExpiry => ("bad_expiry", None),
                RejectReason::BadSignature => ("bad_signature", None),
                RejectReason::BadBody(_) => ("bad_body", None),
                RejectReason::FieldLimit(error) => ("field_limit", Some(error.field)),
            };
            (format!("reject:{name}"), field)
        }
    }
}

/// A text-rule vector: name, description, and how it spoils the full alert.
type TextCase = (&'static str, &'static str, fn(&mut Alert));

fn signing_key(byte: u8) -> SigningKey {
    SigningKey::from_bytes(&[byte; 32])
}

fn cbor<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_cbor::to_vec(value).expect("CBOR encoding")
}

/// Envelope bytes from parts, without any check.
fn envelope_bytes(v: u8, signer: [u8; 32], payload: Vec<u8>, sig: [u8; 64]) -> Vec<u8> {
    Envelope {
        v,
        signer: AuthorKey(signer),
        payload,
        sig: ByteArray::new(sig),
    }
    .encode()
}

/// Signs raw payload bytes (which need not be a canonical payload) as `key`.
fn sign_bytes(key: &SigningKey, payload: Vec<u8>) -> Vec<u8> {
    let sig = key.sign(&[SIGNATURE_DOMAIN, &payload].concat()).to_bytes();
    envelope_bytes(1, key.verifying_key().to_bytes(), payload, sig)
}

fn add_le(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = sum.to_le_bytes()[0];
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "S + ℓ fits in 32 bytes");
    out
}

fn full_alert() -> Alert {
    Alert {
        category: AlertCategory::LegalRequest,
        legal_type: Some(LegalType::CourtOrder),
        severity: Severity::High,
        subject: "git.example.org".into(),
        summary: "Court order for the account data of one user".into(),
        details: Some(
            "Received by registered mail on 2025-12-30.\nOur lawyer is contesting it.\tNo data handed over."
                .into(),
        ),
        jurisdictions: vec!["DE".into(), "FR".into()],
        authority: Some("Amtsgericht Beispielstadt".into()),
        legal_basis: Some("§ 100a StPO".into()),
        event_date: Some("2025-12-30".into()),
        seized: Some(Seized::Metadata),
        services: vec!["git".into(), "mail".into()],
        domains: vec!["git.example.org".into(), "example.org".into()],
        upstream: Some("Example Transit GmbH".into()),
        references: vec!["Az. 123 Gs 456/25".into(), "https://example.org/statement".into()],
    }
}

fn minimal_alert() -> Alert {
    Alert {
        category: AlertCategory::Outage,
        legal_type: None,
        severity: Severity::Info,
        subject: "a.example".into(),
        summary: "Planned power cut".into(),
        details: None,
        jurisdictions: vec![],
        authority: None,
        legal_basis: None,
        event_date: None,
        seized: None,
        services: vec![],
        domains: vec![],
        upstream: None,
        references: vec![],
    }
}

fn full_offer() -> MirrorOffer {
    MirrorOffer {
        services: vec![MirrorService::Web, MirrorService::Git, MirrorService::Dns],
        storage_bytes: Some(500_000_000_000),
        jurisdictions: vec!["IS".into(), "CH".into()],
        upstream: Some("Example Fjord Networks".into()),
        data_policy: Some("No access logs.\nError logs kept 7 days.".into()),
        conditions: Some("Non-commercial projects only.".into()),
        contact: "mirrors@example.net".into(),
    }
}

/// A scheduled canary: every code stated, a fixed stand-in for the random token.
fn routine_canary() -> Canary {
    Canary {
        statement: "We have received no warrant, subpoena, gag order or other legal demand, our servers have not been raided or seized, and we are not under duress.".into(),
        codes: CanaryCode::ALL.to_vec(),
        interval_secs: CANARY_INTERVAL_SECS,
        token: vec![0x5a; 32],
    }
}

fn sample_vouch(member: &SigningKey) -> Vouch {
    Vouch {
        member: envelope::author_key(member),
        name: "fjord-collective".into(),
        addresses: vec![
            "/ip4/192.0.2.7/tcp/4001".into(),
            "/dns4/node.fjord.example/tcp/4001".into(),
        ],
        vouch: true,
    }
}

struct Generator {
    fed: FederationId,
    key1: SigningKey,
    key2: SigningKey,
    key3: SigningKey,
    vectors: Vec<Vector>,
    /// The author and duress key of the `canary_duress` vector.
    duress: Option<(AuthorKey, [u8; 32])>,
    sync: Vec<Value>,
    sync_files: Vec<(String, Vec<u8>)>,
    /// Responder vectors (SPEC §11.5).
    responder: Vec<Value>,
    /// Canary state vectors (SPEC §13.3).
    canary_states: Vec<Value>,
}

impl Generator {
    fn new() -> Self {
        Self {
            fed: FederationId::from_name(FEDERATION),
            key1: signing_key(1),
            key2: signing_key(2),
            key3: signing_key(3),
            vectors: Vec::new(),
            duress: None,
            sync: Vec::new(),
            sync_files: Vec::new(),
            responder: Vec::new(),
            canary_states: Vec::new(),
        }
    }

    fn members(&self) -> Vec<AuthorKey> {
        vec![
            envelope::author_key(&self.key1),
            envelope::author_key(&self.key2),
        ]
    }

    /// A payload header of `kind` with the default times (created a minute ago, expires in
    /// 30 days).
    fn header(&self, seq: u64, prev: Option<MessageId>, body: &Body) -> Payload {
        Payload {
            fed: self.fed,
            seq,
            prev,
            created_at: CREATED_MS,
            expires_at: Some(NOW_MS + 30 * DAY_MS),
            kind: body.kind().expect("a known kind").to_owned(),
            body: body.encode(),
        }
    }

    /// A statement payload (SPEC.md §7): seq 0, no prev, created a minute ago, no expires_at
    /// (as `solidarity key revocation-cert` and `key certify` make them).
    fn statement(&self, body: &Body) -> Payload {
        Payload {
            seq: 0,
            prev: None,
            expires_at: None,
            ..self.header(0, None, body)
        }
    }

    /// A canary payload of key1 as a node publishes it: expires after four intervals.
    fn canary_payload(&self, seq: u64, prev: MessageId, canary: Canary) -> Payload {
        let lifetime = canary.interval_secs * 4 * 1000;
        Payload {
            expires_at: Some(CREATED_MS + lifetime),
            ..self.header(seq, Some(prev), &Body::Canary(canary))
        }
    }

    fn push(
        &mut self,
        name: &'static str,
        description: &'static str,
        bytes: Vec<u8>,
        verdict: &'static str,
        stored: Vec<Fact>,
    ) {
        let members = self.members();
        self.push_with(name, description, bytes, verdict, members, stored);
    }

    fn push_with(
        &mut self,
        name: &'static str,
        description: &'static str,
        bytes: Vec<u8>,
        verdict: &'static str,
        members: Vec<AuthorKey>,
        stored: Vec<Fact>,
    ) {
        let context = Context {
            members: &members,
            stored: &stored,
        };
        let got = solidarity_proto::validate(&bytes, NOW_MS, &self.fed, &context, &context);
        let (got_name, field) = verdict_name(&got);
        assert_eq!(got_name, verdict, "vector {name}: {got:?}");
        assert!(
            self.vectors.iter().all(|vector| vector.name != name),
            "duplicate vector name {name}"
        );
        self.vectors.push(Vector {
            name,
            description,
            bytes,
            verdict,
            field,
            members,
            stored,
        });
    }

    fn fact(key: &SigningKey, seq: u64, id: MessageId, kind: &'static str) -> Fact {
        Fact {
            author: envelope::author_key(key),
            seq,
            id,
            kind,
        }
    }

    #[allow(clippy::too_many_lines, reason = "one vector after the other")]
    fn build(&mut self) {
        let (key1, key2, key3) = (self.key1.clone(), self.key2.clone(), self.key3.clone());

        // ---- Accepted -------------------------------------------------------------------
        let alert_body = Body::Alert(full_alert());
        let alert_payload = self.header(1, None, &alert_body);
        let alert = envelope::sign(&key1, &alert_payload);
        self.push(
            "alert_full",
            "An alert (seq 1) with every optional field filled, non-ASCII text and a multi-line details field.",
            alert.bytes.clone(),
            "accept",
            vec![],
        );

        let update_body = Body::AlertUpdate(AlertUpdate {
            alert: alert.id,
            status: AlertStatus::Contested,
            note: Some("Appeal filed.\nHearing in March.".into()),
        });
        let update = envelope::sign(&key1, &self.header(2, Some(alert.id), &update_body));
        let stored_alert = Self::fact(&key1, 1, alert.id, "alert");
        self.push(
            "alert_update",
            "An alert-update (seq 2, prev = alert_full) of the signer's own stored alert.",
            update.bytes.clone(),
            "accept",
            vec![stored_alert.clone()],
        );

        let offer_body = Body::MirrorOffer(full_offer());
        let mut offer_payload = self.header(1, None, &offer_body);
        offer_payload.expires_at = Some(NOW_MS + 90 * DAY_MS);
        let offer = envelope::sign(&key2, &offer_payload);
        self.push(
            "mirror_offer",
            "A mirror-offer (seq 1) with every optional field filled, valid for 90 days.",
            offer.bytes.clone(),
            "accept",
            vec![],
        );
        let stored_offer = Self::fact(&key2, 1, offer.id, "mirror-offer");

        let withdraw_body = Body::MirrorWithdraw(MirrorWithdraw { offer: offer.id });
        let withdraw_payload = self.header(2, Some(offer.id), &withdraw_body);
        let withdraw = envelope::sign(&key2, &withdraw_payload);
        self.push(
            "mirror_withdraw",
            "A mirror-withdraw (seq 2, prev = mirror_offer) of the signer's own stored offer.",
            withdraw.bytes.clone(),
            "accept",
            vec![stored_offer.clone()],
        );

        let unknown_body = cbor(&std::collections::BTreeMap::from([(
            "statement",
            "No warrants received as of 2026-01-01.",
        )]));
        let unknown_payload = Payload {
            fed: self.fed,
            seq: 3,
            prev: Some(update.id),
            created_at: CREATED_MS,
            expires_at: None,
            kind: "canary/1".into(),
            body: unknown_body,
        };
        let unknown = envelope::sign(&key1, &unknown_payload);
        self.push(
            "unknown_kind",
            "A kind this version does not know (`canary/1`), validly signed: accepted, relayed and stored, not displayed.",
            unknown.bytes.clone(),
            "accept",
            vec![],
        );
        let stored_unknown = Self::fact(&key1, 3, unknown.id, "canary/1");

        // Canaries as a node publishes them: every CANARY_INTERVAL_SECS, expiring after four
        // intervals. The routine token is random; this one is fixed so the vector is stable.
        let canary_payload = self.canary_payload(4, unknown.id, routine_canary());
        let canary = envelope::sign(&key1, &canary_payload);
        self.push(
            "canary",
            "A canary (seq 4, prev = unknown_kind) stating all ten codes, interval 6 h, expires_at = created_at + 4 intervals, a routine token.",
            canary.bytes.clone(),
            "accept",
            vec![stored_unknown.clone()],
        );
        let stored_canary = Self::fact(&key1, 4, canary.id, "canary");

        let duress_author = envelope::author_key(&key1);
        let duress = solidarity_proto::payload::duress_key(&duress_author, DURESS_PASSPHRASE);
        let duress_token = solidarity_proto::payload::duress_token(
            &solidarity_proto::payload::duress_commitment(&duress),
            &duress_author,
            DURESS_NONCE,
        );
        let duress_canary = envelope::sign(
            &key1,
            &self.canary_payload(
                5,
                canary.id,
                Canary {
                    token: duress_token.to_vec(),
                    ..routine_canary()
                },
            ),
        );
        self.push(
            "canary_duress",
            "A canary (seq 5, prev = canary) whose token is a duress token (nonce ‖ tag) under key1's duress commitment for the passphrase in `duress`: valid like any canary; only a member holding the commitment reads it as duress.",
            duress_canary.bytes,
            "accept",
            vec![stored_canary],
        );
        self.duress = Some((envelope::author_key(&key1), duress));

        let endorsement_body = Body::Endorsement(Endorsement {
            alert: alert.id,
            stance: Stance::Endorse,
            note: Some("Our lawyer saw the same order.\nWe can confirm it.".into()),
        });
        let endorsement =
            envelope::sign(&key2, &self.header(3, Some(withdraw.id), &endorsement_body));
        self.push(
            "endorsement",
            "key2 endorses key1's stored alert_full (seq 3, prev = mirror_withdraw, same expires_at as the alert).",
            endorsement.bytes,
            "accept",
            vec![
                stored_alert.clone(),
                Self::fact(&key2, 2, withdraw.id, "mirror-withdraw"),
            ],
        );

        let vouch_body = Body::Vouch(sample_vouch(&key3));
        let mut vouch_payload = self.header(1, None, &vouch_body);
        vouch_payload.expires_at = None;
        self.push(
            "vouch",
            "key1 vouches for key3 (not a member) under the name \"fjord-collective\" with two addresses, no expires_at.",
            envelope::sign(&key1, &vouch_payload).bytes,
            "accept",
            vec![],
        );

        let seq2 = envelope::sign(
            &key1,
            &self.header(2, Some(alert.id), &Body::Alert(minimal_alert())),
        );
        self.push(
            "alert_seq2_with_prev",
            "A minimal alert with seq 2 and prev = alert_full (neither prev nor seq 1 need to be stored).",
            seq2.bytes.clone(),
            "accept",
            vec![],
        );

        let mut minimal_payload = self.header(1, None, &Body::Alert(minimal_alert()));
        minimal_payload.expires_at = None;
        let minimal = envelope::sign(&key2, &minimal_payload);
        self.push(
            "alert_minimal",
            "An alert with only the required fields and no expires_at.",
            minimal.bytes.clone(),
            "accept",
            vec![],
        );

        let unknown_target = envelope::sign(
            &key1,
            &self.header(
                2,
                Some(alert.id),
                &Body::AlertUpdate(AlertUpdate {
                    alert: MessageId([0xaa; 32]),
                    status: AlertStatus::Resolved,
                    note: None,
                }),
            ),
        );
        self.push(
            "update_unknown_target",
            "An alert-update whose target is not stored: accepted (derived state applies it only if the target turns out to be the signer's alert).",
            unknown_target.bytes,
            "accept",
            vec![],
        );

        let mut skew_payload = alert_payload.clone();
        skew_payload.created_at = NOW_MS + MAX_CLOCK_SKEW_MS;
        self.push(
            "clock_skew_boundary",
            "created_at exactly MAX_CLOCK_SKEW_MS ahead of the receiver's clock: still accepted.",
            envelope::sign(&key1, &skew_payload).bytes,
            "accept",
            vec![],
        );

        let mut long_summary = full_alert();
        long_summary.summary = "é".repeat(100);
        self.push(
            "summary_max_length",
            "A summary of exactly 200 bytes (100 two-byte characters): accepted; limits count UTF-8 bytes.",
            envelope::sign(&key1, &self.header(1, None, &Body::Alert(long_summary))).bytes,
            "accept",
            vec![],
        );

        let max_size = self.padded_unknown_kind(&key1, MAX_ENVELOPE_BYTES);
        self.push(
            "max_size",
            "An unknown-kind envelope of exactly MAX_ENVELOPE_BYTES (16384) bytes.",
            max_size,
            "accept",
            vec![],
        );

        // ---- Rejected: framing ------------------------------------------------------------
        let oversize = self.padded_unknown_kind(&key1, MAX_ENVELOPE_BYTES + 1);
        self.push(
            "oversize",
            "A validly signed unknown-kind envelope of MAX_ENVELOPE_BYTES + 1 bytes.",
            oversize,
            "reject:oversize",
            vec![],
        );

        let mut truncated = alert.bytes.clone();
        truncated.pop();
        self.push(
            "truncated",
            "alert_full without its last byte.",
            truncated,
            "reject:malformed",
            vec![],
        );

        self.push(
            "garbage",
            "Bytes that are not a CBOR envelope.",
            b"this is not an envelope".to_vec(),
            "reject:malformed",
            vec![],
        );

        self.push(
            "empty",
            "Zero bytes.",
            Vec::new(),
            "reject:malformed",
            vec![],
        );

        let mut trailing = alert.bytes.clone();
        trailing.push(0x00);
        self.push(
            "trailing_byte",
            "alert_full followed by one extra byte (0x00).",
            trailing,
            "reject:malformed",
            vec![],
        );

        let parts = Envelope::decode(&alert.bytes).expect("alert decodes");
        self.push(
            "wrong_version",
            "alert_full's payload and signature in an envelope with v = 2.",
            envelope_bytes(2, parts.signer.0, parts.payload.clone(), *parts.sig),
            "reject:unsupported_version",
            vec![],
        );

        let mut extra_field = alert.bytes.clone();
        extra_field[0] = 0xa5; // map of 5 pairs
        extra_field.extend_from_slice(&[0x61, b'x', 0x00]); // "x": 0
        self.push(
            "unknown_envelope_field",
            "alert_full with a fifth envelope field \"x\": 0.",
            extra_field,
            "reject:malformed",
            vec![],
        );

        let mut byte_key = alert.bytes.clone();
        let sig_key = byte_key
            .windows(4)
            .position(|window| window == [0x63, b's', b'i', b'g'])
            .expect("the sig key");
        byte_key[sig_key] = 0x43; // one bit: text string "sig" becomes byte string 'sig'
        self.push(
            "envelope_non_canonical_key",
            "alert_full with the key \"sig\" encoded as a byte string (a single bit flip, 0x63 -> 0x43). Non-canonical envelope encodings are malformed.",
            byte_key,
            "reject:malformed",
            vec![],
        );

        let v_at = alert
            .bytes
            .windows(3)
            .position(|window| window == [0x61, b'v', 0x01])
            .expect("the v field");
        let mut reordered = vec![0xa4];
        reordered.extend_from_slice(&alert.bytes[v_at + 3..]);
        reordered.extend_from_slice(&[0x61, b'v', 0x01]);
        self.push(
            "envelope_fields_reordered",
            "alert_full's envelope with v moved after sig. Field order is part of the canonical encoding.",
            reordered,
            "reject:malformed",
            vec![],
        );

        let mut nonminimal = alert.bytes.clone();
        nonminimal.splice(v_at + 2..v_at + 3, [0x18, 0x01]);
        self.push(
            "envelope_non_minimal_integer",
            "alert_full with v encoded in two bytes (0x18 0x01) instead of one.",
            nonminimal,
            "reject:malformed",
            vec![],
        );

        // ---- Rejected: header -------------------------------------------------------------
        let payload_bytes = cbor(&alert_payload);
        let seq_at = payload_bytes
            .windows(5)
            .position(|window| window == [0x63, b's', b'e', b'q', 0x01])
            .expect("the seq field");
        let mut nonminimal_payload = payload_bytes.clone();
        nonminimal_payload.splice(seq_at + 4..seq_at + 5, [0x18, 0x01]);
        self.push(
            "payload_non_canonical",
            "A validly signed payload whose seq is encoded in two bytes (0x18 0x01). The signed payload must be canonical.",
            sign_bytes(&key1, nonminimal_payload),
            "reject:malformed",
            vec![],
        );

        let mut extra_payload_field = payload_bytes.clone();
        extra_payload_field[0] += 1;
        extra_payload_field.extend_from_slice(&[0x61, b'x', 0x00]);
        self.push(
            "payload_unknown_field",
            "A validly signed payload with an extra header field \"x\": 0.",
            sign_bytes(&key1, extra_payload_field),
            "reject:malformed",
            vec![],
        );

        self.push(
            "payload_not_cbor",
            "A validly signed payload that is not CBOR.",
            sign_bytes(&key1, b"\xffnot a payload".to_vec()),
            "reject:malformed",
            vec![],
        );

        // Ignored, not rejected: member lists legitimately differ between honest nodes.
        self.push(
            "not_member",
            "alert_full's payload signed by a key that is not in the member list.",
            envelope::sign(&key3, &alert_payload).bytes,
            "ignore:not_member",
            vec![],
        );

        self.push(
            "not_member_before_header",
            "A non-member's envelope whose payload is not CBOR: membership is checked before the header is decoded.",
            sign_bytes(&key3, b"\xffnot a payload".to_vec()),
            "ignore:not_member",
            vec![],
        );

        let mut other_fed = alert_payload.clone();
        other_fed.fed = FederationId::from_name("other-federation");
        self.push(
            "wrong_federation",
            "An alert of federation \"other-federation\".",
            envelope::sign(&key1, &other_fed).bytes,
            "reject:wrong_federation",
            vec![],
        );

        let mut seq0 = alert_payload.clone();
        seq0.seq = 0;
        self.push(
            "seq_zero",
            "An alert with seq 0.",
            envelope::sign(&key1, &seq0).bytes,
            "reject:bad_chain",
            vec![],
        );

        let mut seq1_prev = alert_payload.clone();
        seq1_prev.prev = Some(MessageId([0xbb; 32]));
        self.push(
            "seq1_with_prev",
            "An alert with seq 1 and a prev.",
            envelope::sign(&key1, &seq1_prev).bytes,
            "reject:bad_chain",
            vec![],
        );

        let mut seq2_no_prev = alert_payload.clone();
        seq2_no_prev.seq = 2;
        self.push(
            "seq2_without_prev",
            "An alert with seq 2 and no prev.",
            envelope::sign(&key1, &seq2_no_prev).bytes,
            "reject:bad_chain",
            vec![],
        );

        let mut bad_kind = alert_payload.clone();
        bad_kind.kind = "Alert".into();
        self.push(
            "bad_kind_name",
            "Kind name \"Alert\" (capital letter).",
            envelope::sign(&key1, &bad_kind).bytes,
            "reject:bad_kind",
            vec![],
        );

        let mut bad_expiry = alert_payload.clone();
        bad_expiry.expires_at = Some(CREATED_MS - 1);
        self.push(
            "expires_before_created",
            "expires_at one millisecond before created_at.",
            envelope::sign(&key1, &bad_expiry).bytes,
            "reject:bad_expiry",
            vec![],
        );

        let mut same_expiry = alert_payload.clone();
        same_expiry.expires_at = Some(CREATED_MS);
        self.push(
            "expires_at_created",
            "expires_at equal to created_at (must be strictly later).",
            envelope::sign(&key1, &same_expiry).bytes,
            "reject:bad_expiry",
            vec![],
        );

        // ---- Rejected: signature ----------------------------------------------------------
        let by_key2 = key2
            .sign(&[SIGNATURE_DOMAIN, &parts.payload].concat())
            .to_bytes();
        self.push(
            "bad_signature",
            "alert_full's payload with signer key1 and a signature made by key2.",
            envelope_bytes(1, parts.signer.0, parts.payload.clone(), by_key2),
            "reject:bad_signature",
            vec![],
        );

        let no_domain = key1.sign(&parts.payload).to_bytes();
        self.push(
            "signature_without_domain",
            "alert_full's payload signed without the `solidarity/v1/sig\\0` prefix.",
            envelope_bytes(1, parts.signer.0, parts.payload.clone(), no_domain),
            "reject:bad_signature",
            vec![],
        );

        let mut flipped = alert.bytes.clone();
        let summary_at = flipped
            .windows(5)
            .position(|window| window == b"Court")
            .expect("the summary text");
        flipped[summary_at] ^= 0x20; // "Court" -> "court"
        self.push(
            "flipped_payload_bit",
            "alert_full with one bit of the summary flipped inside the payload (\"Court\" -> \"court\"): still decodes, signature fails.",
            flipped,
            "reject:bad_signature",
            vec![],
        );

        let mut high_s = *parts.sig;
        let s: [u8; 32] = high_s[32..].try_into().expect("32 bytes");
        high_s[32..].copy_from_slice(&add_le(&s, &GROUP_ORDER_LE));
        self.push(
            "non_canonical_s",
            "alert_full with S replaced by S + ℓ (same verification equation, non-canonical scalar).",
            envelope_bytes(1, parts.signer.0, parts.payload.clone(), high_s),
            "reject:bad_signature",
            vec![],
        );

        let weak_key = VerifyingKey::from_bytes(&IDENTITY_POINT).expect("the identity decodes");
        let mut weak_sig = [0u8; 64];
        weak_sig[..32].copy_from_slice(&IDENTITY_POINT); // R = identity, S = 0
        let weak_payload = cbor(&alert_payload);
        assert!(
            weak_key
                .verify(
                    &[SIGNATURE_DOMAIN, &weak_payload].concat(),
                    &ed25519_dalek::Signature::from_bytes(&weak_sig),
                )
                .is_ok(),
            "the small-order vector must pass non-strict verification to be meaningful"
        );
        let mut members = self.members();
        members.push(AuthorKey(IDENTITY_POINT));
        self.push_with(
            "small_order_signer",
            "Signer is the identity point (small order), listed as a member; R = identity, S = 0 satisfies the cofactorless equation for any message, verify_strict rejects it.",
            envelope_bytes(1, IDENTITY_POINT, weak_payload, weak_sig),
            "reject:bad_signature",
            members,
            vec![],
        );

        // ---- Ignored ----------------------------------------------------------------------
        let mut future = alert_payload.clone();
        future.created_at = NOW_MS + MAX_CLOCK_SKEW_MS + 1;
        self.push(
            "from_future",
            "created_at MAX_CLOCK_SKEW_MS + 1 ms ahead of the receiver's clock.",
            envelope::sign(&key1, &future).bytes,
            "ignore:from_future",
            vec![],
        );

        let mut expired = alert_payload.clone();
        expired.expires_at = Some(NOW_MS);
        self.push(
            "expired",
            "expires_at equal to the receiver's clock (expiry is inclusive).",
            envelope::sign(&key1, &expired).bytes,
            "ignore:expired",
            vec![],
        );

        self.push(
            "duplicate",
            "alert_full when it is already stored.",
            alert.bytes.clone(),
            "ignore:duplicate",
            vec![stored_alert.clone()],
        );

        let non_member_stored = envelope::sign(&key3, &alert_payload);
        self.push(
            "duplicate_before_membership",
            "A non-member's message whose id is already stored: the duplicate check comes before the membership check.",
            non_member_stored.bytes,
            "ignore:duplicate",
            vec![Self::fact(&key3, 1, non_member_stored.id, "alert")],
        );

        self.push(
            "fork_same_seq",
            "alert_full when another message of key1 already holds seq 1: proof that key1 signed two chains.",
            alert.bytes.clone(),
            "fork:same_seq",
            vec![Self::fact(&key1, 1, MessageId([0xee; 32]), "alert")],
        );

        self.push(
            "fork_divergent_prev",
            "alert_seq2_with_prev when the stored seq 1 of key1 is another message than its prev: the chains diverged at seq 1.",
            seq2.bytes.clone(),
            "fork:divergent_prev",
            vec![Self::fact(&key1, 1, MessageId([0xee; 32]), "alert")],
        );

        let mut future_bad_sig = future.clone();
        future_bad_sig.seq = 5;
        future_bad_sig.prev = Some(MessageId([0x55; 32]));
        let future_bytes = cbor(&future_bad_sig);
        let future_forged = key2
            .sign(&[SIGNATURE_DOMAIN, &future_bytes].concat())
            .to_bytes();
        self.push(
            "signature_before_clock",
            "created_at in the future and a bad signature: the signature is checked first.",
            envelope_bytes(1, parts.signer.0, future_bytes, future_forged),
            "reject:bad_signature",
            vec![],
        );

        let mut future_long = full_alert();
        future_long.summary = "x".repeat(201);
        let mut future_long_payload = self.header(1, None, &Body::Alert(future_long));
        future_long_payload.created_at = NOW_MS + MAX_CLOCK_SKEW_MS + 1;
        future_long_payload.expires_at = None;
        self.push(
            "clock_before_body",
            "created_at in the future and a summary over its limit: the clock is checked before the body.",
            envelope::sign(&key1, &future_long_payload).bytes,
            "ignore:from_future",
            vec![],
        );

        // ---- Rejected: body ---------------------------------------------------------------
        let mut too_long = full_alert();
        too_long.summary = "x".repeat(201);
        self.push(
            "summary_too_long",
            "An alert summary of 201 bytes.",
            envelope::sign(&key1, &self.header(1, None, &Body::Alert(too_long))).bytes,
            "reject:field_limit",
            vec![],
        );

        let mut newline = full_alert();
        newline.summary = "two\nlines".into();
        self.push(
            "summary_newline",
            "An alert summary containing a line feed.",
            envelope::sign(&key1, &self.header(1, None, &Body::Alert(newline))).bytes,
            "reject:field_limit",
            vec![],
        );

        let mut blank = full_alert();
        blank.subject = " \t".into();
        self.push(
            "subject_blank",
            "An alert subject made only of white space.",
            envelope::sign(&key1, &self.header(1, None, &Body::Alert(blank))).bytes,
            "reject:field_limit",
            vec![],
        );

        // Text rules (§8.1): every class of format character and separator, in each shape
        // of field, is refused; invisible fillers alone are blank.
        let text_cases: [TextCase; 9] = [
            (
                "subject_bidi_override",
                "An alert subject with U+202E RIGHT-TO-LEFT OVERRIDE, which reverses how it reads.",
                |alert| alert.subject = "\u{202E}elpmaxe.a".into(),
            ),
            (
                "summary_bidi_isolate",
                "An alert summary with U+2067 RIGHT-TO-LEFT ISOLATE and U+2069 POP DIRECTIONAL ISOLATE.",
                |alert| alert.summary = "Seizure \u{2067}at a.example\u{2069}".into(),
            ),
            (
                "details_bidi_mark",
                "Alert details (a text field) with U+200E LEFT-TO-RIGHT MARK.",
                |alert| alert.details = Some("No data\u{200E} handed over.".into()),
            ),
            (
                "subject_zero_width_only",
                "An alert subject that is U+200B ZERO WIDTH SPACE alone.",
                |alert| alert.subject = "\u{200B}".into(),
            ),
            (
                "domain_zero_width_joiner",
                "An alert domain (a list item) with U+200D ZERO WIDTH JOINER inside.",
                |alert| alert.domains = vec!["exa\u{200D}mple.org".into()],
            ),
            (
                "authority_byte_order_mark",
                "An alert authority with U+FEFF ZERO WIDTH NO-BREAK SPACE (byte-order mark).",
                |alert| alert.authority = Some("\u{FEFF}Amtsgericht".into()),
            ),
            (
                "details_line_separator",
                "Alert details with U+2028 LINE SEPARATOR (a text field allows only line feed).",
                |alert| alert.details = Some("one\u{2028}two".into()),
            ),
            (
                "summary_tag_characters",
                "An alert summary with tag characters (U+E0001, U+E0041), invisible text.",
                |alert| alert.summary = "Raid\u{E0001}\u{E0041}".into(),
            ),
            (
                "subject_filler_only",
                "An alert subject of U+3164 HANGUL FILLER and a space: blank, though no character is refused.",
                |alert| alert.subject = "\u{3164} ".into(),
            ),
        ];
        for (name, description, change) in text_cases {
            let mut alert = full_alert();
            change(&mut alert);
            self.push(
                name,
                description,
                envelope::sign(&key1, &self.header(1, None, &Body::Alert(alert))).bytes,
                "reject:field_limit",
                vec![],
            );
        }
        let mut scripts = full_alert();
        scripts.summary = "مصادرة الخادم — תפיסת שרת — Обыск".into();
        self.push(
            "summary_right_to_left_script",
            "An alert summary in Arabic, Hebrew and Cyrillic without any format character: accepted.",
            envelope::sign(&key1, &self.header(1, None, &Body::Alert(scripts))).bytes,
            "accept",
            vec![],
        );

        let mut jurisdiction = full_alert();
        jurisdiction.jurisdictions = vec!["France".into()];
        self.push(
            "bad_jurisdiction",
            "An alert jurisdiction \"France\" instead of \"FR\".",
            envelope::sign(&key1, &self.header(1, None, &Body::Alert(jurisdiction))).bytes,
            "reject:field_limit",
            vec![],
        );

        let mut date = full_alert();
        date.event_date = Some("30/12/2025".into());
        self.push(
            "bad_event_date",
            "An alert event_date \"30/12/2025\".",
            envelope::sign(&key1, &self.header(1, None, &Body::Alert(date))).bytes,
            "reject:field_limit",
            vec![],
        );

        let no_services = Body::MirrorOffer(MirrorOffer {
            services: vec![],
            ..full_offer()
        });
        self.push(
            "offer_without_services",
            "A mirror-offer with an empty services list.",
            envelope::sign(&key2, &self.header(1, None, &no_services)).bytes,
            "reject:field_limit",
            vec![],
        );

        let short_token = self.canary_payload(
            4,
            unknown.id,
            Canary {
                token: vec![0x5a; 31],
                ..routine_canary()
            },
        );
        self.push(
            "canary_token_31_bytes",
            "A canary whose token is 31 bytes instead of 32.",
            envelope::sign(&key1, &short_token).bytes,
            "reject:field_limit",
            vec![],
        );

        let mut no_interval = self.canary_payload(
            4,
            unknown.id,
            Canary {
                interval_secs: 0,
                ..routine_canary()
            },
        );
        no_interval.expires_at = canary_payload.expires_at;
        self.push(
            "canary_interval_zero",
            "A canary with interval_secs 0 (and the expires_at of the canary vector).",
            envelope::sign(&key1, &no_interval).bytes,
            "reject:field_limit",
            vec![],
        );

        let nameless = Body::Vouch(Vouch {
            name: String::new(),
            ..sample_vouch(&key3)
        });
        let mut nameless_payload = self.header(1, None, &nameless);
        nameless_payload.expires_at = None;
        self.push(
            "vouch_empty_name",
            "A vouch whose name is the empty string.",
            envelope::sign(&key1, &nameless_payload).bytes,
            "reject:field_limit",
            vec![],
        );

        let mut not_a_map = alert_payload.clone();
        not_a_map.body = cbor(&"alert");
        self.push(
            "alert_body_not_a_map",
            "Kind alert with a body that is the CBOR text string \"alert\".",
            envelope::sign(&key1, &not_a_map).bytes,
            "reject:bad_body",
            vec![],
        );

        let mut unknown_category = alert_payload.clone();
        let mut body_bytes = alert_body.encode();
        let category_at = body_bytes
            .windows(13)
            .position(|window| window == b"legal_request")
            .expect("the category value");
        body_bytes.splice(
            category_at - 1..category_at + 13,
            [0x64, b'd', b'd', b'o', b's'],
        );
        unknown_category.body = body_bytes;
        self.push(
            "alert_unknown_category",
            "An alert whose category is \"ddos\", not one of the enumerated values.",
            envelope::sign(&key1, &unknown_category).bytes,
            "reject:bad_body",
            vec![],
        );

        let mut missing_field = alert_payload.clone();
        missing_field.body = cbor(&std::collections::BTreeMap::from([("summary", "x")]));
        self.push(
            "alert_missing_fields",
            "An alert body that lacks the required category, severity and subject.",
            envelope::sign(&key1, &missing_field).bytes,
            "reject:bad_body",
            vec![],
        );

        // ---- Ignored: update and withdrawal targets ---------------------------------------
        // Whether the target is stored depends on arrival order, so these are not rejected.
        let foreign_update = envelope::sign(&key2, &self.header(2, Some(offer.id), &update_body));
        self.push(
            "update_by_non_author",
            "key2 updates key1's stored alert.",
            foreign_update.bytes,
            "ignore:not_author",
            vec![stored_alert.clone(), stored_offer.clone()],
        );

        let update_offer = Body::AlertUpdate(AlertUpdate {
            alert: offer.id,
            status: AlertStatus::Resolved,
            note: None,
        });
        self.push(
            "update_targets_offer",
            "key2 sends an alert-update whose target is its own stored mirror-offer.",
            envelope::sign(&key2, &self.header(2, Some(offer.id), &update_offer)).bytes,
            "ignore:wrong_target",
            vec![stored_offer.clone()],
        );

        self.push(
            "withdraw_by_non_author",
            "key1 withdraws key2's stored mirror-offer.",
            envelope::sign(&key1, &self.header(2, Some(alert.id), &withdraw_body)).bytes,
            "ignore:not_author",
            vec![stored_alert.clone(), stored_offer.clone()],
        );

        let withdraw_alert = Body::MirrorWithdraw(MirrorWithdraw { offer: alert.id });
        self.push(
            "withdraw_targets_alert",
            "key1 sends a mirror-withdraw whose target is its own stored alert.",
            envelope::sign(&key1, &self.header(2, Some(alert.id), &withdraw_alert)).bytes,
            "ignore:wrong_target",
            vec![stored_alert],
        );

        let endorse_offer = Body::Endorsement(Endorsement {
            alert: offer.id,
            stance: Stance::Dispute,
            note: None,
        });
        self.push(
            "endorsement_targets_offer",
            "key1 disputes key2's stored mirror-offer: an endorsement targets only alerts.",
            envelope::sign(&key1, &self.header(2, Some(alert.id), &endorse_offer)).bytes,
            "ignore:wrong_target",
            vec![stored_offer],
        );

        // ---- Statements: revocation and node-cert (seq 0) --------------------------------
        // Statements stand outside the chain and speak only for their signer: accepted from
        // any key with a valid signature, checked in full otherwise, never a fork.
        let revocation_body = Body::Revocation(Revocation {
            reason: "Server seized at 06:00; the key is in other hands".into(),
            key: None,
            compromised_since: Some(COMPROMISED_SINCE_MS),
        });
        let revocation_payload = self.statement(&revocation_body);
        let revocation = envelope::sign(&key1, &revocation_payload);
        self.push(
            "revocation",
            "key1 (a member) revokes its own key: a statement (seq 0, no prev, no expires_at) with compromised_since 2025-12-31T06:00:00Z.",
            revocation.bytes.clone(),
            "accept",
            vec![],
        );

        // As `solidarity key revocation-cert` makes it by default.
        let plain = Revocation {
            reason: "server seized or key compromised".into(),
            key: None,
            compromised_since: None,
        };
        let plain_revocation = Body::Revocation(plain.clone());
        let stranger_revocation = envelope::sign(&key3, &self.statement(&plain_revocation));
        self.push(
            "revocation_by_non_member",
            "key3 (not a member) revokes its own key, without compromised_since (as made in advance): a statement is accepted from any key with a valid signature.",
            stranger_revocation.bytes.clone(),
            "accept",
            vec![],
        );

        self.push(
            "revocation_when_one_is_stored",
            "The revocation vector when another revocation of key1 is stored (at seq 0): statements are outside the chain and never fork; both are kept.",
            revocation.bytes.clone(),
            "accept",
            vec![Self::fact(&key1, 0, MessageId([0xee; 32]), "revocation")],
        );

        let node_key_revocation = Body::Revocation(Revocation {
            reason: "node retired".into(),
            key: Some(envelope::author_key(&key2)),
            compromised_since: None,
        });
        self.push(
            "revocation_of_certified_key",
            "key3 (not a member, a collective identity) revokes key2 with the `key` field: valid whatever key3 certified; whether it revokes key2 is derived state (SPEC.md §13.4).",
            envelope::sign(&key3, &self.statement(&node_key_revocation)).bytes,
            "accept",
            vec![],
        );

        let node_cert_body = Body::NodeCert(NodeCert {
            node_key: envelope::author_key(&key2),
            valid_from: CREATED_MS,
            valid_until: CREATED_MS + 30 * DAY_MS,
            addresses: vec!["/dns4/node2.fjord.example/tcp/4001".into()],
        });
        self.push(
            "node_cert",
            "key3 (not a member, a collective identity) certifies key2 for 30 days with one address: a statement (seq 0, no prev, no expires_at).",
            envelope::sign(&key3, &self.statement(&node_cert_body)).bytes,
            "accept",
            vec![],
        );

        let mut revocation_seq1 = revocation_payload.clone();
        revocation_seq1.seq = 1;
        self.push(
            "revocation_with_seq_1",
            "The revocation vector's payload with seq 1: statement kinds must have seq 0.",
            envelope::sign(&key1, &revocation_seq1).bytes,
            "reject:bad_chain",
            vec![],
        );

        let mut revocation_prev = revocation_payload.clone();
        revocation_prev.prev = Some(MessageId([0xbb; 32]));
        self.push(
            "revocation_with_prev",
            "The revocation vector's payload (seq 0) with a prev: statements never have one.",
            envelope::sign(&key1, &revocation_prev).bytes,
            "reject:bad_chain",
            vec![],
        );

        let alert_seq0 = self.statement(&Body::Alert(minimal_alert()));
        self.push(
            "alert_with_seq_0",
            "A minimal alert shaped like a statement (seq 0, no prev, no expires_at): seq 0 is valid only for statement kinds.",
            envelope::sign(&key1, &alert_seq0).bytes,
            "reject:bad_chain",
            vec![],
        );

        let stranger_parts =
            Envelope::decode(&stranger_revocation.bytes).expect("the revocation decodes");
        let forged = key2
            .sign(&[SIGNATURE_DOMAIN, &stranger_parts.payload].concat())
            .to_bytes();
        self.push(
            "revocation_bad_signature",
            "revocation_by_non_member's payload with signer key3 (not a member) and a signature made by key2: a statement is not exempt from any check but membership, so this is a Reject, not ignore:not_member.",
            envelope_bytes(
                1,
                stranger_parts.signer.0,
                stranger_parts.payload.clone(),
                forged,
            ),
            "reject:bad_signature",
            vec![],
        );

        let mut non_canonical_statement = cbor(&self.statement(&plain_revocation));
        let seq_zero_at = non_canonical_statement
            .windows(5)
            .position(|window| window == [0x63, b's', b'e', b'q', 0x00])
            .expect("the seq field");
        non_canonical_statement.splice(seq_zero_at + 4..seq_zero_at + 5, [0x18, 0x00]);
        self.push(
            "revocation_non_canonical_by_non_member",
            "A revocation of key3 (not a member), validly signed, whose payload encodes seq 0 in two bytes (0x18 0x00): only a canonical payload of a statement kind skips the membership check.",
            sign_bytes(&key3, non_canonical_statement),
            "ignore:not_member",
            vec![],
        );

        let empty_reason = Body::Revocation(Revocation {
            reason: String::new(),
            ..plain
        });
        self.push(
            "revocation_empty_reason",
            "key1 revokes its own key with an empty reason (required, one line, at most 256 bytes).",
            envelope::sign(&key1, &self.statement(&empty_reason)).bytes,
            "reject:field_limit",
            vec![],
        );

        let backwards_cert = Body::NodeCert(NodeCert {
            node_key: envelope::author_key(&key2),
            valid_from: CREATED_MS,
            valid_until: CREATED_MS,
            addresses: vec![],
        });
        self.push(
            "node_cert_empty_validity",
            "key3 certifies key2 with valid_until = valid_from (must be later).",
            envelope::sign(&key3, &self.statement(&backwards_cert)).bytes,
            "reject:field_limit",
            vec![],
        );

        self.build_decoding();
        self.build_responder();
        self.build_canary_states();

        // ---- Sync messages ----------------------------------------------------------------
        let request = SyncRequest {
            fed: self.fed,
            have: vec![
                Watermark {
                    author: envelope::author_key(&key1),
                    seq: 2,
                    head: Some(seq2.id),
                },
                Watermark {
                    author: envelope::author_key(&key2),
                    seq: 0,
                    head: None,
                },
            ],
            limit: 100,
            statements: None,
        };
        self.push_sync(
            "sync_request",
            "sync_request",
            "A SyncRequest: key1 held up to seq 2 (its head is alert_seq2_with_prev), nothing of key2, pages of at most 100.",
            request.encode(),
            json!({
                "fed": self.fed.to_hex(),
                "have": request.have.iter().map(|mark| {
                    let mut decoded = json!({
                        "author": mark.author.to_hex(),
                        "seq": mark.seq,
                    });
                    if let Some(head) = mark.head {
                        decoded["head"] = json!(head.to_hex());
                    }
                    decoded
                }).collect::<Vec<_>>(),
                "limit": request.limit,
            }),
        );
        let statement_request = SyncRequest {
            fed: self.fed,
            have: vec![],
            limit: 100,
            statements: Some(vec![
                HeldStatements::new(envelope::author_key(&key1), [offer.id]),
                HeldStatements::new(envelope::author_key(&key2), []),
            ]),
        };
        self.push_sync(
            "sync_request_statements",
            "sync_request",
            "A statement-phase SyncRequest: the statements of key1, of which it holds one (held: the first 8 bytes of its id, here mirror_offer's id as an example), and of key2, of which it holds none. The responder sends revocations before certificates, at most 16 per signer.",
            statement_request.encode(),
            json!({
                "fed": self.fed.to_hex(),
                "have": [],
                "limit": statement_request.limit,
                "statements": statement_request.statements.iter().flatten().map(|held| json!({
                    "signer": held.signer.to_hex(),
                    "held": hex::encode(&held.held),
                })).collect::<Vec<_>>(),
            }),
        );
        let response = SyncResponse {
            envelopes: vec![
                ByteBuf::from(offer.bytes.clone()),
                ByteBuf::from(withdraw.bytes.clone()),
            ],
            more: false,
        };
        self.push_sync(
            "sync_response",
            "sync_response",
            "The SyncResponse to sync_request from a node holding mirror_offer and mirror_withdraw (and nothing newer of key1).",
            response.encode(),
            json!({
                "envelopes": [hex::encode(&offer.bytes), hex::encode(&withdraw.bytes)],
                "more": response.more,
            }),
        );
    }

    /// A validly signed unknown-kind envelope of exactly `size` bytes.
    fn padded_unknown_kind(&self, key: &SigningKey, size: usize) -> Vec<u8> {
        let make = |padding: usize| {
            envelope::sign(
                key,
                &Payload {
                    fed: self.fed,
                    seq: 1,
                    prev: None,
                    created_at: CREATED_MS,
                    expires_at: None,
                    kind: "padding".into(),
                    body: vec![b'x'; padding],
                },
            )
            .bytes
        };
        let overhead = make(0).len();
        (size.saturating_sub(overhead + 8)..size)
            .map(make)
            .find(|bytes| bytes.len() == size)
            .expect("some padding hits the size exactly")
    }

    fn push_sync(
        &mut self,
        name: &str,
        kind: &str,
        description: &str,
        bytes: Vec<u8>,
        decoded: Value,
    ) {
        // On the wire the libp2p cbor codec wraps the message in one CBOR byte string.
        let wire = cbor(&ByteBuf::from(bytes.clone()));
        self.sync.push(json!({
            "name": name,
            "file": format!("{name}.hex"),
            "wire_file": format!("{name}.wire.hex"),
            "description": description,
            "type": kind,
            "decoded": decoded,
        }));
        self.sync_files.push((format!("{name}.hex"), bytes));
        self.sync_files.push((format!("{name}.wire.hex"), wire));
    }

    fn write(&self, out: &Path) {
        let mut files = BTreeSet::new();
        let mut vectors = Vec::new();
        for vector in &self.vectors {
            let file = format!("{}.hex", vector.name);
            write_hex(out, &file, &vector.bytes);
            files.insert(file.clone());
            let id = envelope::message_id_of_envelope_bytes(&vector.bytes);
            let gossip_id = hex::encode(envelope::gossip_message_id(&vector.bytes));
            vectors.push(json!({
                "name": vector.name,
                "file": file,
                "description": vector.description,
                "verdict": vector.verdict,
                "field": vector.field,
                "id": id.map(|id| id.to_hex()),
                "gossip_id": gossip_id,
                "size": vector.bytes.len(),
                "decoded": decoded::decoded(&vector.bytes),
                "context": {
                    "now_ms": NOW_MS,
                    "federation": FEDERATION,
                    "members": vector.members.iter().map(AuthorKey::to_hex).collect::<Vec<_>>(),
                    "stored": vector.stored.iter().map(|fact| json!({
                        "author": fact.author.to_hex(),
                        "seq": fact.seq,
                        "id": fact.id.to_hex(),
                        "kind": fact.kind,
                    })).collect::<Vec<_>>(),
                },
            }));
        }
        for (file, bytes) in &self.sync_files {
            write_hex(out, file, bytes);
            files.insert(file.clone());
        }
        let keys: Vec<Value> = [(1u8, &self.key1), (2, &self.key2), (3, &self.key3)]
            .iter()
            .map(|(byte, key)| {
                json!({
                    "name": format!("key{byte}"),
                    "secret": hex::encode([*byte; 32]),
                    "public": envelope::author_key(key).to_hex(),
                })
            })
            .collect();
        let index = json!({
            "format": 1,
            "generator": "crates/solidarity-proto/examples/make_vectors/main.rs",
            "federation": FEDERATION,
            "federation_id": self.fed.to_hex(),
            "topic": format!("/solidarity/v1/{}/messages", self.fed.to_hex()),
            "sync_protocol": SYNC_PROTOCOL,
            "now_ms": NOW_MS,
            "keys": keys,
            "duress": self.duress.map(|(author, key)| {
                let commitment = solidarity_proto::payload::duress_commitment(&key);
                let legacy_key =
                    solidarity_proto::payload::legacy_duress_key(&author, DURESS_PASSPHRASE);
                json!({
                    "author": author.to_hex(),
                    "passphrase": DURESS_PASSPHRASE,
                    "kdf": {
                        "algorithm": "argon2id",
                        "version": 19,
                        "memory_kib": solidarity_proto::payload::DURESS_KDF_MEMORY_KIB,
                        "iterations": solidarity_proto::payload::DURESS_KDF_ITERATIONS,
                        "parallelism": solidarity_proto::payload::DURESS_KDF_PARALLELISM,
                    },
                    "duress_key": hex::encode(key),
                    "commitment": hex::encode(commitment),
                    "nonce": hex::encode(DURESS_NONCE),
                    "token": hex::encode(solidarity_proto::payload::duress_token(
                        &commitment,
                        &author,
                        DURESS_NONCE,
                    )),
                    "legacy_duress_key": hex::encode(legacy_key),
                    "legacy_commitment": hex::encode(
                        solidarity_proto::payload::duress_commitment(&legacy_key)
                    ),
                    "vector": "canary_duress",
                })
            }),
            "vectors": vectors,
            "sync": self.sync,
            "responder": self.responder,
            "canary_states": self.canary_states,
        });
        let mut text = serde_json::to_string_pretty(&index).expect("JSON");
        text.push('\n');
        std::fs::write(out.join("vectors.json"), text).expect("write vectors.json");
        // Leave no stale vector files behind.
        for entry in std::fs::read_dir(out).expect("list the output directory") {
            let name = entry.expect("directory entry").file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".hex") && !files.contains(name.as_ref()) {
                std::fs::remove_file(out.join(name.as_ref())).expect("remove a stale file");
            }
        }
    }
}

fn write_hex(out: &Path, file: &str, bytes: &[u8]) {
    let mut text = hex::encode(bytes);
    text.push('\n');
    std::fs::write(out.join(file), text).expect("write a vector file");
}
