//! Encoding round trips, bit-flip and mutation robustness, and property tests of
//! sign → encode → validate.

use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use serde_bytes::ByteBuf;
use solidarity_proto::envelope::{self, Envelope, MAX_ENVELOPE_BYTES};
use solidarity_proto::payload::{
    self, Alert, AlertCategory, AlertStatus, AlertUpdate, Canary, CanaryCode, Endorsement,
    LegalType, MAX_LIST_ITEMS, MirrorOffer, MirrorService, MirrorWithdraw, NodeCert, Revocation,
    Seized, Severity, Stance, Vouch,
};
use solidarity_proto::sync::{
    HELD_ID_BYTES, HeldStatements, MAX_HELD_IDS, MAX_PAGE_BYTES, MAX_PAGE_ENVELOPES,
    MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, MAX_STATEMENT_SIGNERS, MAX_SYNC_AUTHORS, SyncRequest,
    SyncResponse, Watermark,
};
use solidarity_proto::validate::MAX_CLOCK_SKEW_MS;
use solidarity_proto::{
    AuthorKey, Body, FederationId, IgnoreReason, Lookup, MessageId, Payload, RejectReason,
    TrustView, Verdict, validate,
};

const NOW_MS: u64 = 1_767_225_600_000;
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

fn key1() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}

fn key2() -> SigningKey {
    SigningKey::from_bytes(&[2; 32])
}

fn federation() -> FederationId {
    FederationId::from_name("test-federation")
}

/// Members key1 and key2; nothing stored.
struct Empty;

impl TrustView for Empty {
    fn is_member(&self, key: &AuthorKey) -> bool {
        *key == envelope::author_key(&key1()) || *key == envelope::author_key(&key2())
    }
}

impl Lookup for Empty {
    fn contains(&self, _: &MessageId) -> bool {
        false
    }
    fn id_at(&self, _: &AuthorKey, _: u64) -> Option<MessageId> {
        None
    }
    fn author_and_kind(&self, _: &MessageId) -> Option<(AuthorKey, String)> {
        None
    }
}

fn check(bytes: &[u8]) -> Verdict {
    validate(bytes, NOW_MS, &federation(), &Empty, &Empty)
}

/// Members key1 and key2; the store holds another statement of every author at seq 0 (as
/// a store that indexes statements by (author, 0) would report it).
struct StatementStored;

impl Lookup for StatementStored {
    fn contains(&self, _: &MessageId) -> bool {
        false
    }
    fn id_at(&self, _: &AuthorKey, seq: u64) -> Option<MessageId> {
        (seq == 0).then_some(MessageId([0xee; 32]))
    }
    fn author_and_kind(&self, _: &MessageId) -> Option<(AuthorKey, String)> {
        None
    }
}

fn sample_alert() -> Alert {
    Alert {
        category: AlertCategory::Seizure,
        legal_type: Some(LegalType::Warrant),
        severity: Severity::Critical,
        subject: "a.example".into(),
        summary: "Two servers taken from our rack at 06:00".into(),
        details: Some("Police arrived at 06:00.\nDisks were encrypted.".into()),
        jurisdictions: vec!["FR".into()],
        authority: Some("Police judiciaire".into()),
        legal_basis: None,
        event_date: Some("2025-12-31".into()),
        seized: Some(Seized::EncryptedOnly),
        services: vec!["web".into()],
        domains: vec!["a.example".into()],
        upstream: None,
        references: vec![],
    }
}

fn sample_offer() -> MirrorOffer {
    MirrorOffer {
        services: vec![MirrorService::Web, MirrorService::Mail],
        storage_bytes: Some(1 << 40),
        jurisdictions: vec!["IS".into()],
        upstream: None,
        data_policy: Some("No logs.".into()),
        conditions: None,
        contact: "mirrors@example.net".into(),
    }
}

/// One body of each v1 kind.
fn sample_bodies() -> Vec<Body> {
    vec![
        Body::Alert(sample_alert()),
        Body::AlertUpdate(AlertUpdate {
            alert: MessageId([7; 32]),
            status: AlertStatus::PartiallyComplied,
            note: Some("Only the subscriber data.".into()),
        }),
        Body::MirrorOffer(sample_offer()),
        Body::MirrorWithdraw(MirrorWithdraw {
            offer: MessageId([8; 32]),
        }),
        Body::Canary(Canary {
            statement: "No warrant.\nNo raid.".into(),
            codes: vec![CanaryCode::Warrant, CanaryCode::Raid, CanaryCode::Xopers],
            interval_secs: 6 * 3600,
            token: vec![0x42; 32],
        }),
        Body::Endorsement(Endorsement {
            alert: MessageId([7; 32]),
            stance: Stance::Dispute,
            note: Some("Our servers in that rack are fine.".into()),
        }),
        Body::Vouch(Vouch {
            member: AuthorKey([0x33; 32]),
            name: "fjord-collective".into(),
            addresses: vec!["/ip4/192.0.2.7/tcp/4001".into()],
            vouch: false,
        }),
        Body::Revocation(Revocation {
            reason: "Server seized at 06:00".into(),
            key: Some(AuthorKey([0x44; 32])),
            compromised_since: Some(NOW_MS - DAY_MS),
        }),
        Body::NodeCert(NodeCert {
            node_key: AuthorKey([0x44; 32]),
            valid_from: NOW_MS - DAY_MS,
            valid_until: NOW_MS + 30 * DAY_MS,
            addresses: vec!["/ip4/192.0.2.8/tcp/4001".into()],
        }),
    ]
}

/// The seq a valid sample of this body carries: 0 for a statement (SPEC.md §7), else 2.
fn sample_seq(body: &Body) -> u64 {
    if payload::is_statement_kind(body.kind().expect("a known kind")) {
        0
    } else {
        2
    }
}

fn payload_of(body: &Body, seq: u64) -> Payload {
    Payload {
        fed: federation(),
        seq,
        prev: (seq > 1).then_some(MessageId([9; 32])),
        created_at: NOW_MS - 60_000,
        expires_at: Some(NOW_MS + 30 * DAY_MS),
        kind: body.kind().expect("a known kind").to_owned(),
        body: body.encode(),
    }
}

/// A valid, signed envelope of each v1 kind: seq 2 with a prev, or seq 0 for a statement.
fn signed_samples() -> Vec<(Body, envelope::SignedMessage)> {
    sample_bodies()
        .into_iter()
        .map(|body| {
            let signed = envelope::sign(&key1(), &payload_of(&body, sample_seq(&body)));
            (body, signed)
        })
        .collect()
}

#[test]
fn every_body_round_trips_through_its_kind() {
    for body in sample_bodies() {
        let kind = body.kind().expect("known kind");
        let bytes = body.encode();
        let decoded = Body::decode(kind, &bytes).expect("decodes");
        assert_eq!(decoded, body, "{kind}");
        assert_eq!(
            decoded.encode(),
            bytes,
            "{kind}: re-encoding is byte-identical"
        );
    }
}

#[test]
fn payload_round_trips_with_and_without_optional_fields() {
    for body in sample_bodies() {
        let full = payload_of(&body, 2);
        let bare = Payload {
            prev: None,
            expires_at: None,
            seq: 1,
            ..full.clone()
        };
        for payload in [full, bare] {
            let bytes = solidarity_proto::codec::encode(&payload);
            let decoded = Payload::decode(&bytes).expect("decodes");
            assert_eq!(decoded, payload);
            assert_eq!(solidarity_proto::codec::encode(&decoded), bytes);
        }
    }
}

#[test]
fn absent_optional_fields_are_left_out_of_the_encoding() {
    let payload = Payload {
        prev: None,
        expires_at: None,
        seq: 1,
        ..payload_of(&Body::Alert(sample_alert()), 1)
    };
    let bytes = solidarity_proto::codec::encode(&payload);
    assert_eq!(bytes[0], 0xa5, "a map of five pairs");
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(!contains(b"prev"));
    assert!(!contains(b"expires_at"));
    assert!(!contains(&[0xf6]), "no null");
}

#[test]
fn envelope_round_trips_and_keeps_its_id() {
    for (body, signed) in signed_samples() {
        let envelope = Envelope::decode(&signed.bytes).expect("decodes");
        assert_eq!(envelope.encode(), signed.bytes, "{:?}", body.kind());
        assert_eq!(envelope.id(), signed.id);
        assert!(envelope.verify());
        assert_eq!(
            envelope::message_id_of_envelope_bytes(&signed.bytes),
            Some(signed.id)
        );
        let payload = Payload::decode(&envelope.payload).expect("payload decodes");
        assert_eq!(payload, payload_of(&body, sample_seq(&body)));
        assert_eq!(
            Body::decode(&payload.kind, &payload.body).expect("body"),
            body
        );
    }
}

#[test]
fn each_signed_sample_is_accepted_with_its_id() {
    for (body, signed) in signed_samples() {
        match check(&signed.bytes) {
            Verdict::Accept(accepted) => {
                assert_eq!(accepted.id, signed.id);
                assert_eq!(accepted.body, body);
                assert_eq!(accepted.signer, envelope::author_key(&key1()));
            }
            other => panic!("{:?}: {other:?}", body.kind()),
        }
    }
}

#[test]
fn sync_messages_round_trip() {
    let request = SyncRequest {
        fed: federation(),
        have: vec![
            Watermark {
                author: AuthorKey([1; 32]),
                seq: 0,
                head: None,
            },
            Watermark {
                author: AuthorKey([2; 32]),
                seq: u64::MAX,
                head: Some(MessageId([3; 32])),
            },
        ],
        limit: 7,
        statements: Some(vec![HeldStatements::new(
            AuthorKey([4; 32]),
            [MessageId([5; 32])],
        )]),
    };
    assert_eq!(
        SyncRequest::decode(&request.encode()).expect("decodes"),
        request
    );
    let response = SyncResponse {
        envelopes: signed_samples()
            .into_iter()
            .map(|(_, signed)| ByteBuf::from(signed.bytes))
            .collect(),
        more: true,
    };
    assert_eq!(
        SyncResponse::decode(&response.encode()).expect("decodes"),
        response
    );
    assert_eq!(
        SyncResponse::decode(&SyncResponse::default().encode()).expect("decodes"),
        SyncResponse::default()
    );
}

/// The libp2p cbor codec carries a sync message as one CBOR byte string.
fn wire_len(message: &[u8]) -> usize {
    serde_cbor::to_vec(&ByteBuf::from(message.to_vec()))
        .expect("encodes")
        .len()
}

#[test]
fn largest_sync_request_fits_the_request_limit_on_the_wire() {
    let request = SyncRequest {
        fed: federation(),
        have: (0..MAX_SYNC_AUTHORS)
            .map(|i| Watermark {
                author: AuthorKey({
                    let mut key = [0xff; 32];
                    key[..8].copy_from_slice(&(i as u64).to_be_bytes());
                    key
                }),
                seq: u64::MAX,
                head: Some(MessageId([0xff; 32])),
            })
            .collect(),
        limit: u32::MAX,
        statements: Some(
            (0..MAX_STATEMENT_SIGNERS)
                .map(|i| HeldStatements {
                    signer: AuthorKey([u8::try_from(i % 256).expect("byte"); 32]),
                    held: ByteBuf::from(vec![
                        0xff;
                        MAX_HELD_IDS / MAX_STATEMENT_SIGNERS * HELD_ID_BYTES
                    ]),
                })
                .collect(),
        ),
    };
    let bytes = request.encode();
    assert!(wire_len(&bytes) <= MAX_REQUEST_BYTES, "{}", bytes.len());
    assert_eq!(SyncRequest::decode(&bytes).expect("decodes"), request);
}

#[test]
fn fullest_sync_page_fits_the_response_limit_on_the_wire() {
    let per_envelope = MAX_PAGE_BYTES / MAX_PAGE_ENVELOPES as usize;
    let response = SyncResponse {
        envelopes: (0..MAX_PAGE_ENVELOPES)
            .map(|_| ByteBuf::from(vec![0xa4; per_envelope]))
            .collect(),
        more: true,
    };
    let bytes = response.encode();
    assert!(wire_len(&bytes) <= MAX_RESPONSE_BYTES, "{}", bytes.len());
    assert_eq!(SyncResponse::decode(&bytes).expect("decodes"), response);
}

/// Where the signer's 32 key bytes sit in the envelope `bytes`.
fn signer_bytes(bytes: &[u8]) -> std::ops::Range<usize> {
    let key = envelope::author_key(&key1()).0;
    let at = bytes
        .windows(key.len())
        .position(|window| window == key)
        .expect("the signer key is in the envelope");
    assert!(
        !bytes[at + 1..]
            .windows(key.len())
            .any(|window| window == key),
        "the signer key appears once"
    );
    at..at + key.len()
}

/// The verdict a corrupted envelope must get: Ignore(not member) when only the signer's key
/// bytes of a chain message changed, Reject otherwise. A statement (revocation, node-cert) is
/// accepted from any key, so another signer only fails its signature check: Reject.
fn is_expected_corruption_verdict(verdict: &Verdict, in_signer: bool, statement: bool) -> bool {
    if in_signer && !statement {
        matches!(verdict, Verdict::Ignore(IgnoreReason::NotMember))
    } else {
        matches!(verdict, Verdict::Reject(_))
    }
}

/// Flips every bit of a valid envelope of `kind`, one at a time, and asserts the verdict.
///
/// A flip inside the signer's key bytes makes another key, which is not a member:
/// Ignore(not member), since member lists differ between honest nodes (SPEC.md §9), except
/// for a statement, which skips the membership check and fails its signature. Every other
/// flip is a Reject: a flip inside `payload` changes the signed bytes, and every other
/// check that can Ignore (clock, expiry, seq conflict, update target) runs after the
/// signature; a flip anywhere else either breaks the CBOR, changes `v` or `sig` (unsupported
/// version, bad signature) or yields a non-canonical encoding of the same envelope, which is
/// malformed. The lookup is empty, so no duplicate.
///
/// Slow in debug builds (a signature check per surviving flip), so one test per kind lets
/// the harness run them in parallel.
fn assert_every_bit_flip_is_dropped(kind: &str) {
    let (_, signed) = signed_samples()
        .into_iter()
        .find(|(body, _)| body.kind() == Some(kind))
        .expect("a sample of the kind");
    let statement = payload::is_statement_kind(kind);
    let signer = signer_bytes(&signed.bytes);
    for bit in 0..signed.bytes.len() * 8 {
        let mut bytes = signed.bytes.clone();
        bytes[bit / 8] ^= 1 << (bit % 8);
        let verdict = check(&bytes);
        assert!(
            is_expected_corruption_verdict(&verdict, signer.contains(&(bit / 8)), statement),
            "{kind}: flipping bit {bit} gave {verdict:?}"
        );
    }
}

#[test]
fn every_bit_flip_of_an_alert_is_dropped() {
    assert_every_bit_flip_is_dropped("alert");
}

#[test]
fn every_bit_flip_of_an_alert_update_is_dropped() {
    assert_every_bit_flip_is_dropped("alert-update");
}

#[test]
fn every_bit_flip_of_a_mirror_offer_is_dropped() {
    assert_every_bit_flip_is_dropped("mirror-offer");
}

#[test]
fn every_bit_flip_of_a_mirror_withdraw_is_dropped() {
    assert_every_bit_flip_is_dropped("mirror-withdraw");
}

#[test]
fn every_bit_flip_of_a_canary_is_dropped() {
    assert_every_bit_flip_is_dropped("canary");
}

#[test]
fn every_bit_flip_of_an_endorsement_is_dropped() {
    assert_every_bit_flip_is_dropped("endorsement");
}

#[test]
fn every_bit_flip_of_a_vouch_is_dropped() {
    assert_every_bit_flip_is_dropped("vouch");
}

#[test]
fn every_bit_flip_of_a_revocation_is_dropped() {
    assert_every_bit_flip_is_dropped("revocation");
}

#[test]
fn every_bit_flip_of_a_node_cert_is_dropped() {
    assert_every_bit_flip_is_dropped("node-cert");
}

// ---- Statements ---------------------------------------------------------------------------

/// The revocation sample with its header set to `seq` (and a prev when seq ≥ 2).
fn revocation_with_seq(seq: u64) -> Payload {
    let body = sample_bodies()
        .into_iter()
        .find(|body| matches!(body, Body::Revocation(_)))
        .expect("a revocation sample");
    payload_of(&body, seq)
}

#[test]
fn seq_0_is_valid_exactly_for_statement_kinds() {
    // SPEC.md §7, §9 step 8: statements have seq 0 and no prev, every other kind seq ≥ 1.
    let bad_chain = |payload: &Payload| {
        matches!(
            check(&envelope::sign(&key1(), payload).bytes),
            Verdict::Reject(RejectReason::BadChain)
        )
    };
    for seq in [1, 2, 7] {
        assert!(
            bad_chain(&revocation_with_seq(seq)),
            "revocation at seq {seq}"
        );
    }
    let with_prev = Payload {
        prev: Some(MessageId([9; 32])),
        ..revocation_with_seq(0)
    };
    assert!(bad_chain(&with_prev), "revocation with a prev");
    for body in sample_bodies() {
        let statement = payload::is_statement_kind(body.kind().expect("known kind"));
        assert_eq!(
            bad_chain(&payload_of(&body, 0)),
            !statement,
            "{:?} at seq 0",
            body.kind()
        );
    }
    let unknown_at_zero = Payload {
        kind: "revocation/2".into(),
        body: vec![0xa0],
        ..revocation_with_seq(0)
    };
    assert!(
        bad_chain(&unknown_at_zero),
        "unknown kinds are never statements"
    );
}

#[test]
fn statements_are_accepted_from_non_members_and_never_fork() {
    let stranger = SigningKey::from_bytes(&[3; 32]);
    for (body, _) in signed_samples() {
        let kind = body.kind().expect("known kind");
        let signed = envelope::sign(&stranger, &payload_of(&body, sample_seq(&body)));
        let verdict = validate(
            &signed.bytes,
            NOW_MS,
            &federation(),
            &Empty,
            &StatementStored,
        );
        if payload::is_statement_kind(kind) {
            assert!(
                matches!(&verdict, Verdict::Accept(accepted) if accepted.id == signed.id),
                "{kind}: {verdict:?}"
            );
        } else {
            assert_eq!(
                verdict,
                Verdict::Ignore(IgnoreReason::NotMember),
                "{kind} by a non-member"
            );
        }
    }
}

#[test]
fn a_non_members_statement_is_checked_in_full() {
    // Only membership is skipped: a bad signature or a broken field is still a Reject.
    let stranger = SigningKey::from_bytes(&[3; 32]);
    let payload = revocation_with_seq(0);
    let mut forged = envelope::sign(&stranger, &payload).bytes;
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert_eq!(check(&forged), Verdict::Reject(RejectReason::BadSignature));
    let blank = Payload {
        body: Body::Revocation(Revocation {
            reason: " ".into(),
            key: None,
            compromised_since: None,
        })
        .encode(),
        ..payload
    };
    assert!(matches!(
        check(&envelope::sign(&stranger, &blank).bytes),
        Verdict::Reject(RejectReason::FieldLimit(error)) if error.field == "reason"
    ));
}

// ---- Property tests ---------------------------------------------------------------------

/// Characters no text field may hold (SPEC §8.1): controls, format characters, separators.
const REFUSED: &str = "\\p{Cc}\\p{Cf}\\p{Zl}\\p{Zp}";
/// Characters that show nothing: a required field needs one character that is none of these.
const INVISIBLE: &str = "\\s\\p{Default_Ignorable_Code_Point}\\u{2800}";

/// One line of text: no refused characters, not blank, at most `max_chars` characters.
fn line(max_chars: usize) -> impl Strategy<Value = String> {
    let pattern = format!("[^{REFUSED}{INVISIBLE}][^{REFUSED}]{{0,{}}}", max_chars - 1);
    proptest::string::string_regex(&pattern).expect("valid regex")
}

/// Free text: line feeds and tabs allowed, other refused characters not; may be empty.
fn multi_line(max_chars: usize) -> impl Strategy<Value = String> {
    let pattern = format!("([^{REFUSED}]|\n|\t){{0,{max_chars}}}");
    proptest::string::string_regex(&pattern).expect("valid regex")
}

/// An optional one-line text that may also be empty (optional fields may be "").
fn optional_line(max_chars: usize) -> impl Strategy<Value = Option<String>> {
    let pattern = format!("[^{REFUSED}]{{0,{max_chars}}}");
    proptest::option::of(proptest::string::string_regex(&pattern).expect("valid regex"))
}

fn lines(max_items: usize, max_chars: usize) -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(line(max_chars), 0..=max_items)
}

fn jurisdictions() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec("[A-Z]{2}", 0..=MAX_LIST_ITEMS)
}

fn category() -> impl Strategy<Value = AlertCategory> {
    proptest::sample::select(vec![
        AlertCategory::Seizure,
        AlertCategory::Raid,
        AlertCategory::Takedown,
        AlertCategory::LegalRequest,
        AlertCategory::GagOrder,
        AlertCategory::Intrusion,
        AlertCategory::KeyCompromise,
        AlertCategory::Outage,
    ])
}

fn legal_type() -> impl Strategy<Value = Option<LegalType>> {
    proptest::option::of(proptest::sample::select(vec![
        LegalType::Subpoena,
        LegalType::Warrant,
        LegalType::CourtOrder,
        LegalType::DataRetentionOrder,
        LegalType::PreservationOrder,
        LegalType::GagOrder,
        LegalType::TakedownNotice,
        LegalType::Other,
    ]))
}

fn severity() -> impl Strategy<Value = Severity> {
    proptest::sample::select(vec![
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ])
}

fn seized() -> impl Strategy<Value = Option<Seized>> {
    proptest::option::of(proptest::sample::select(vec![
        Seized::None,
        Seized::EncryptedOnly,
        Seized::Metadata,
        Seized::Content,
        Seized::Keys,
        Seized::Unknown,
    ]))
}

/// Any alert within the field limits, small enough that its envelope stays under
/// MAX_ENVELOPE_BYTES (limits count UTF-8 bytes, so character counts are a quarter of them).
fn alert() -> impl Strategy<Value = Alert> {
    let head = (
        category(),
        legal_type(),
        severity(),
        line(63),
        line(50),
        proptest::option::of(multi_line(600)),
        jurisdictions(),
        optional_line(64),
    );
    let tail = (
        optional_line(64),
        proptest::option::of("[0-9]{4}-[0-9]{2}-[0-9]{2}"),
        seized(),
        lines(6, 40),
        lines(6, 40),
        optional_line(64),
        lines(6, 40),
    );
    (head, tail).prop_map(
        |(
            (category, legal_type, severity, subject, summary, details, jurisdictions, authority),
            (legal_basis, event_date, seized, services, domains, upstream, references),
        )| Alert {
            category,
            legal_type,
            severity,
            subject,
            summary,
            details,
            jurisdictions,
            authority,
            legal_basis,
            event_date,
            seized,
            services,
            domains,
            upstream,
            references,
        },
    )
}

/// seq, created_at and expires_at that pass the chain, clock and expiry checks.
fn header_numbers() -> impl Strategy<Value = (u64, u64, Option<u64>)> {
    (
        1..=u64::MAX,
        0..=NOW_MS + MAX_CLOCK_SKEW_MS,
        proptest::option::of(1..=u64::MAX - NOW_MS),
    )
        .prop_map(|(seq, created_at, expires_in)| {
            let floor = created_at.max(NOW_MS);
            (
                seq,
                created_at,
                expires_in.map(|ahead| floor.saturating_add(ahead)),
            )
        })
}

fn signed_alert(alert: &Alert, (seq, created_at, expires_at): (u64, u64, Option<u64>)) -> Payload {
    Payload {
        fed: federation(),
        seq,
        prev: (seq > 1).then_some(MessageId([3; 32])),
        created_at,
        expires_at,
        kind: "alert".into(),
        body: Body::Alert(alert.clone()).encode(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_alert_within_limits_is_accepted_with_its_id(
        alert in alert(),
        numbers in header_numbers(),
    ) {
        let payload = signed_alert(&alert, numbers);
        let signed = envelope::sign(&key1(), &payload);
        prop_assert!(signed.bytes.len() <= MAX_ENVELOPE_BYTES);
        match check(&signed.bytes) {
            Verdict::Accept(accepted) => {
                prop_assert_eq!(accepted.id, signed.id);
                prop_assert_eq!(accepted.payload, payload);
                prop_assert_eq!(accepted.body, Body::Alert(alert));
            }
            other => prop_assert!(false, "not accepted: {:?}", other),
        }
    }

    #[test]
    fn any_revocation_within_limits_is_accepted_from_any_key(
        secret in any::<[u8; 32]>(),
        reason in line(64),
        key in proptest::option::of(any::<[u8; 32]>()),
        compromised_since in proptest::option::of(any::<u64>()),
        created_at in 0..=NOW_MS + MAX_CLOCK_SKEW_MS,
    ) {
        let body = Body::Revocation(Revocation {
            reason,
            key: key.map(AuthorKey),
            compromised_since,
        });
        let payload = Payload {
            fed: federation(),
            seq: 0,
            prev: None,
            created_at,
            expires_at: None,
            kind: "revocation".into(),
            body: body.encode(),
        };
        let signed = envelope::sign(&SigningKey::from_bytes(&secret), &payload);
        // Another statement of the signer stored at seq 0 is no fork.
        for verdict in [
            check(&signed.bytes),
            validate(&signed.bytes, NOW_MS, &federation(), &Empty, &StatementStored),
        ] {
            match verdict {
                Verdict::Accept(accepted) => {
                    prop_assert_eq!(accepted.id, signed.id);
                    prop_assert_eq!(&accepted.payload, &payload);
                    prop_assert_eq!(&accepted.body, &body);
                }
                other => prop_assert!(false, "not accepted: {:?}", other),
            }
        }
    }

    #[test]
    fn any_unknown_kind_with_any_body_is_accepted(
        kind in "[a-z0-9./-]{1,64}",
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        prop_assume!(Body::decode(&kind, &[]).is_ok_and(|body| body == Body::Unknown));
        let payload = Payload {
            fed: federation(),
            seq: 1,
            prev: None,
            created_at: NOW_MS,
            expires_at: None,
            kind,
            body,
        };
        let signed = envelope::sign(&key2(), &payload);
        match check(&signed.bytes) {
            Verdict::Accept(accepted) => {
                prop_assert_eq!(accepted.id, signed.id);
                prop_assert_eq!(accepted.body, Body::Unknown);
            }
            other => prop_assert!(false, "not accepted: {:?}", other),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_are_never_accepted(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        prop_assert!(!matches!(check(&bytes), Verdict::Accept(_)));
        // The gossipsub message id function must not panic either.
        let _ = envelope::message_id_of_envelope_bytes(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_an_envelope_prefix_are_never_accepted(
        cut in 0usize..300,
        tail in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        // Start like a real envelope so the decoder gets past the first bytes.
        let (_, signed) = signed_samples().swap_remove(0);
        let mut bytes = signed.bytes[..cut.min(signed.bytes.len())].to_vec();
        bytes.extend_from_slice(&tail);
        prop_assume!(bytes != signed.bytes);
        prop_assert!(!matches!(check(&bytes), Verdict::Accept(_)));
    }

    #[test]
    fn any_single_byte_mutation_of_a_signed_envelope_is_not_accepted(
        sample in 0usize..4,
        position in any::<prop::sample::Index>(),
        value in any::<u8>(),
    ) {
        let (_, signed) = signed_samples().swap_remove(sample);
        let at = position.index(signed.bytes.len());
        prop_assume!(signed.bytes[at] != value);
        let mut bytes = signed.bytes.clone();
        bytes[at] = value;
        let verdict = check(&bytes);
        prop_assert!(!matches!(verdict, Verdict::Accept(_)), "byte {} = {:#04x}", at, value);
        // For the reasons given at the bit-flip test: Ignore(not member) inside the signer's
        // key bytes, Reject everywhere else.
        let in_signer = signer_bytes(&signed.bytes).contains(&at);
        prop_assert!(
            is_expected_corruption_verdict(&verdict, in_signer, false),
            "byte {} = {:#04x}: {:?}", at, value, verdict
        );
    }

    #[test]
    fn content_id_ignores_the_signature_and_depends_on_signer_and_payload(
        payload in proptest::collection::vec(any::<u8>(), 0..256),
        sig in proptest::collection::vec(any::<u8>(), 64),
    ) {
        let signer = envelope::author_key(&key1());
        let sig: [u8; 64] = sig.try_into().expect("64 bytes");
        let envelope = Envelope {
            v: 1,
            signer,
            payload: payload.clone(),
            sig: serde_bytes::ByteArray::new(sig),
        };
        prop_assert_eq!(envelope.id(), envelope::message_id(&signer, &payload));
        let other = envelope::message_id(&envelope::author_key(&key2()), &payload);
        prop_assert_ne!(envelope.id(), other);
    }
}

proptest! {
    /// Every wire integer at any value, against any receiver clock: validation gives a
    /// verdict and never overflows (a panic in a debug build).
    #[test]
    fn any_wire_integers_and_clock_get_a_verdict(
        seq in prop_oneof![Just(0), Just(1), Just(u64::MAX - 1), Just(u64::MAX), any::<u64>()],
        created_at in prop_oneof![Just(0), Just(u64::MAX), any::<u64>()],
        expires_at in proptest::option::of(prop_oneof![Just(0), Just(u64::MAX), any::<u64>()]),
        now_ms in prop_oneof![Just(0), Just(u64::MAX), any::<u64>()],
        interval_secs in prop_oneof![Just(1), Just(u64::MAX), any::<u64>()],
    ) {
        let body = Body::Canary(Canary {
            statement: String::new(),
            codes: vec![CanaryCode::Warrant],
            interval_secs,
            token: vec![7; 32],
        });
        let payload = Payload {
            fed: federation(),
            seq,
            prev: (seq > 1).then_some(MessageId([1; 32])),
            created_at,
            expires_at,
            kind: body.kind().expect("kind").to_owned(),
            body: body.encode(),
        };
        let signed = envelope::sign(&key1(), &payload);
        let _ = validate(&signed.bytes, now_ms, &federation(), &Empty, &Empty);
    }
}
