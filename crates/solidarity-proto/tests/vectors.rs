//! Checks every test vector in `protocol-spec/vectors/vectors.json` against the reference
//! implementation: verdict, content id, gossipsub message id, size, and the validation
//! context the index describes.

use std::collections::BTreeSet;
use std::path::PathBuf;

use ed25519_dalek::SigningKey;
use serde_json::Value;
use sha2::Digest;
use solidarity_proto::envelope::{self, Envelope};
use solidarity_proto::payload;
use solidarity_proto::sync::{SyncRequest, SyncResponse};
use solidarity_proto::{
    AuthorKey, Body, FederationId, ForkPoint, IgnoreReason, Lookup, MessageId, RejectReason,
    TrustView, Verdict,
};

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../protocol-spec/vectors")
}

fn index() -> Value {
    let text = std::fs::read_to_string(vectors_dir().join("vectors.json"))
        .expect("protocol-spec/vectors/vectors.json is readable");
    serde_json::from_str(&text).expect("vectors.json is JSON")
}

fn read_hex(file: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(vectors_dir().join(file))
        .unwrap_or_else(|error| panic!("vector file {file}: {error}"));
    assert!(
        text.ends_with('\n') && text.lines().count() <= 1,
        "{file} is one line"
    );
    let line = text.trim_end_matches('\n');
    assert_eq!(line, line.to_lowercase(), "{file} is lowercase hex");
    hex::decode(line).unwrap_or_else(|error| panic!("{file} is hex: {error}"))
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("`{key}` is a string in {value}"))
}

fn number(value: &Value, key: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("`{key}` is an integer in {value}"))
}

fn array<'a>(value: &'a Value, key: &str) -> &'a Vec<Value> {
    value[key]
        .as_array()
        .unwrap_or_else(|| panic!("`{key}` is an array in {value}"))
}

fn hex32<T: std::str::FromStr>(text: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    text.parse().expect("64 hex characters")
}

/// Members and stored messages, as the index describes them.
struct Context {
    members: Vec<AuthorKey>,
    stored: Vec<(AuthorKey, u64, MessageId, String)>,
}

impl Context {
    fn from_json(context: &Value) -> Self {
        Self {
            members: array(context, "members")
                .iter()
                .map(|key| hex32(key.as_str().expect("member key is a string")))
                .collect(),
            stored: array(context, "stored")
                .iter()
                .map(|fact| {
                    (
                        hex32(text(fact, "author")),
                        number(fact, "seq"),
                        hex32(text(fact, "id")),
                        text(fact, "kind").to_owned(),
                    )
                })
                .collect(),
        }
    }
}

impl TrustView for Context {
    fn is_member(&self, key: &AuthorKey) -> bool {
        self.members.contains(key)
    }
}

impl Lookup for Context {
    fn contains(&self, id: &MessageId) -> bool {
        self.stored.iter().any(|(_, _, stored, _)| stored == id)
    }
    fn id_at(&self, author: &AuthorKey, seq: u64) -> Option<MessageId> {
        self.stored
            .iter()
            .find(|(a, s, _, _)| a == author && *s == seq)
            .map(|(_, _, id, _)| *id)
    }
    fn author_and_kind(&self, id: &MessageId) -> Option<(AuthorKey, String)> {
        self.stored
            .iter()
            .find(|(_, _, stored, _)| stored == id)
            .map(|(author, _, _, kind)| (*author, kind.clone()))
    }
}

/// The stable verdict names of SPEC.md, with the offending field of a field limit.
fn verdict_name(verdict: &Verdict) -> (String, Option<&'static str>) {
    match verdict {
        Verdict::Accept(_) => ("accept".into(), None),
        Verdict::Ignore(reason) => (
            format!(
                "ignore:{}",
                match reason {
                    IgnoreReason::Duplicate => "duplicate",
                    IgnoreReason::FromFuture => "from_future",
                    IgnoreReason::Expired => "expired",
                    IgnoreReason::NotMember => "not_member",
                    IgnoreReason::NotAuthor => "not_author",
                    IgnoreReason::WrongTarget => "wrong_target",
                }
            ),
            None,
        ),
        Verdict::Fork(fork) => (
            format!(
                "fork:{}",
                match fork.point {
                    ForkPoint::SameSeq => "same_seq",
                    ForkPoint::DivergentPrev => "divergent_prev",
                }
            ),
            None,
        ),
        Verdict::Reject(reason) => {
            let field = match reason {
                RejectReason::FieldLimit(error) => Some(error.field),
                _ => None,
            };
            let name = match reason {
                RejectReason::Oversize(_) => "oversize",
                RejectReason::Malformed(_) => "malformed",
                RejectReason::UnsupportedVersion(_) => "unsupported_version",
                RejectReason::WrongFederation => "wrong_federation",
                RejectReason::BadChain => "bad_chain",
                RejectReason::BadKind => "bad_kind",
                RejectReason::BadExpiry => "bad_expiry",
                RejectReason::BadSignature => "bad_signature",
                RejectReason::BadBody(_) => "bad_body",
                RejectReason::FieldLimit(_) => "field_limit",
            };
            (format!("reject:{name}"), field)
        }
    }
}

const EVERY_VERDICT: [&str; 19] = [
    "accept",
    "ignore:duplicate",
    "ignore:from_future",
    "ignore:expired",
    "fork:same_seq",
    "fork:divergent_prev",
    "ignore:not_member",
    "ignore:not_author",
    "ignore:wrong_target",
    "reject:oversize",
    "reject:malformed",
    "reject:unsupported_version",
    "reject:wrong_federation",
    "reject:bad_chain",
    "reject:bad_kind",
    "reject:bad_expiry",
    "reject:bad_signature",
    "reject:bad_body",
    "reject:field_limit",
];

#[test]
fn every_vector_has_its_expected_verdict_id_and_gossip_id() {
    let index = index();
    let vectors = array(&index, "vectors");
    assert!(vectors.len() >= 40, "the index lists the vectors");
    for vector in vectors {
        let name = text(vector, "name");
        let bytes = read_hex(text(vector, "file"));
        assert_eq!(bytes.len() as u64, number(vector, "size"), "{name}: size");
        let context_json = &vector["context"];
        let federation = FederationId::from_name(text(context_json, "federation"));
        let context = Context::from_json(context_json);
        let verdict = solidarity_proto::validate(
            &bytes,
            number(context_json, "now_ms"),
            &federation,
            &context,
            &context,
        );
        let (got, field) = verdict_name(&verdict);
        assert_eq!(got, text(vector, "verdict"), "{name}: {verdict:?}");
        assert_eq!(field, vector["field"].as_str(), "{name}: offending field");

        let id = envelope::message_id_of_envelope_bytes(&bytes);
        assert_eq!(
            id.map(|id| id.to_hex()).as_deref(),
            vector["id"].as_str(),
            "{name}: content id"
        );
        if let Verdict::Accept(accepted) = &verdict {
            assert_eq!(Some(accepted.id), id, "{name}: accepted id");
        }
        // Gossipsub message id: SHA-256 over a domain prefix and the raw bytes, whatever
        // they are (a corrupted copy never shares the honest copy's id).
        let gossip_id = {
            let mut hasher = sha2::Sha256::new();
            hasher.update(b"solidarity/v1/raw\0");
            hasher.update(&bytes);
            hex::encode(hasher.finalize())
        };
        assert_eq!(gossip_id, text(vector, "gossip_id"), "{name}: gossip id");
        assert_eq!(
            hex::encode(envelope::gossip_message_id(&bytes)),
            gossip_id,
            "{name}: gossip_message_id"
        );
    }
}

#[test]
fn every_listed_file_exists_and_no_file_is_unlisted() {
    let index = index();
    let mut listed = BTreeSet::new();
    for vector in array(&index, "vectors") {
        listed.insert(text(vector, "file").to_owned());
    }
    for sync in array(&index, "sync") {
        listed.insert(text(sync, "file").to_owned());
        listed.insert(text(sync, "wire_file").to_owned());
    }
    for file in &listed {
        assert!(vectors_dir().join(file).is_file(), "{file} exists");
    }
    let on_disk: BTreeSet<String> = std::fs::read_dir(vectors_dir())
        .expect("the vectors directory")
        .map(|entry| {
            entry
                .expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".hex"))
        .collect();
    assert_eq!(on_disk, listed, "vector files on disk match the index");
}

#[test]
fn every_verdict_and_reason_appears_in_the_vectors() {
    let index = index();
    let seen: BTreeSet<&str> = array(&index, "vectors")
        .iter()
        .map(|vector| text(vector, "verdict"))
        .collect();
    for verdict in EVERY_VERDICT {
        assert!(seen.contains(verdict), "no vector for {verdict}");
    }
    assert!(
        seen.iter().all(|verdict| EVERY_VERDICT.contains(verdict)),
        "only known verdict names: {seen:?}"
    );
}

#[test]
fn vector_names_are_unique_snake_case() {
    let index = index();
    let mut names = BTreeSet::new();
    for vector in array(&index, "vectors") {
        let name = text(vector, "name");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{name}"
        );
        assert!(names.insert(name), "{name} appears twice");
        assert!(!text(vector, "description").is_empty(), "{name} described");
    }
}

#[test]
fn index_header_matches_the_protocol_constants() {
    let index = index();
    let federation = FederationId::from_name(text(&index, "federation"));
    assert_eq!(text(&index, "federation_id"), federation.to_hex());
    assert_eq!(
        text(&index, "topic"),
        format!("/solidarity/v1/{}/messages", federation.to_hex())
    );
    assert_eq!(
        text(&index, "sync_protocol"),
        solidarity_proto::sync::SYNC_PROTOCOL
    );
    for key in array(&index, "keys") {
        let secret: [u8; 32] = hex::decode(text(key, "secret"))
            .expect("hex")
            .try_into()
            .expect("32 bytes");
        let public = envelope::author_key(&SigningKey::from_bytes(&secret));
        assert_eq!(text(key, "public"), public.to_hex(), "{key}");
    }
}

#[test]
fn accepted_vectors_are_reproduced_by_signing_their_decoded_payload() {
    // Canonical encoding: decoding the payload and signing it again with the same key gives
    // the same envelope bytes (ed25519 signatures are deterministic).
    let index = index();
    let keys: Vec<SigningKey> = array(&index, "keys")
        .iter()
        .map(|key| {
            let secret: [u8; 32] = hex::decode(text(key, "secret"))
                .expect("hex")
                .try_into()
                .expect("32 bytes");
            SigningKey::from_bytes(&secret)
        })
        .collect();
    let mut checked = 0;
    for vector in array(&index, "vectors") {
        if text(vector, "verdict") != "accept" {
            continue;
        }
        let bytes = read_hex(text(vector, "file"));
        let envelope = Envelope::decode(&bytes).expect("accepted vectors decode");
        let key = keys
            .iter()
            .find(|key| envelope::author_key(key) == envelope.signer)
            .expect("accepted vectors are signed by a listed key");
        let payload = solidarity_proto::Payload::decode(&envelope.payload).expect("payload");
        let again = envelope::sign(key, &payload);
        assert_eq!(again.bytes, bytes, "{}", text(vector, "name"));
        // A known kind's body re-encodes to the same bytes as well.
        let body = Body::decode(&payload.kind, &payload.body).expect("body");
        if body != Body::Unknown {
            assert_eq!(body.encode(), payload.body, "{}", text(vector, "name"));
        }
        checked += 1;
    }
    assert!(checked >= 10, "the accepted vectors were checked");
}

#[test]
fn accepted_statements_have_seq_0_and_chain_messages_seq_1_or_more() {
    // SPEC.md §7: statement kinds (revocation, node-cert) carry seq 0 and no prev; every
    // other kind seq ≥ 1. Statements are accepted from non-members (§9 step 5).
    let index = index();
    let mut statements = 0;
    let mut from_non_members = 0;
    for vector in array(&index, "vectors") {
        if text(vector, "verdict") != "accept" {
            continue;
        }
        let name = text(vector, "name");
        let envelope = Envelope::decode(&read_hex(text(vector, "file"))).expect("envelope");
        let header = solidarity_proto::Payload::decode(&envelope.payload).expect("payload");
        if payload::is_statement_kind(&header.kind) {
            assert_eq!((header.seq, header.prev), (0, None), "{name}");
            statements += 1;
            let members = Context::from_json(&vector["context"]).members;
            if !members.contains(&envelope.signer) {
                from_non_members += 1;
            }
        } else {
            assert!(header.seq >= 1, "{name}");
        }
    }
    assert!(statements >= 3, "the statement vectors were checked");
    assert!(
        from_non_members >= 1,
        "a non-member's statement is accepted"
    );
}

#[test]
fn duress_entry_derives_the_token_of_the_duress_canary() {
    // SPEC.md §8.7.1: key = Argon2id(passphrase, salt "solidarity/v1/duress-key-argon2id\0"
    // ‖ author; 64 MiB, 3 passes, 1 lane), commitment = SHA-256("solidarity/v1/duress\0" ‖
    // key), token = nonce ‖ SHA-256("solidarity/v1/duress-token\0" ‖ commitment ‖ author ‖
    // nonce)[..16].
    let index = index();
    let duress = &index["duress"];
    let author: AuthorKey = hex32(text(duress, "author"));
    let passphrase = text(duress, "passphrase");
    let key = payload::duress_key(&author, passphrase);
    assert_eq!(hex::encode(key), text(duress, "duress_key"));
    let commitment: [u8; 32] = sha2::Sha256::new()
        .chain_update(b"solidarity/v1/duress\0")
        .chain_update(key)
        .finalize()
        .into();
    assert_eq!(hex::encode(commitment), text(duress, "commitment"));
    assert_eq!(payload::duress_commitment(&key), commitment);
    let nonce = hex::decode(text(duress, "nonce")).expect("hex");
    let tag = sha2::Sha256::new()
        .chain_update(b"solidarity/v1/duress-token\0")
        .chain_update(commitment)
        .chain_update(author.as_bytes())
        .chain_update(&nonce)
        .finalize();
    let token = [nonce.as_slice(), &tag[..16]].concat();
    assert_eq!(hex::encode(&token), text(duress, "token"));
    assert!(payload::is_duress_token(&commitment, &author, &token));

    // The SHA-256 key of earlier versions: its commitment is still honoured, both for a
    // token tagged under it and for an old sender's token that is the key itself.
    let legacy_key: [u8; 32] = sha2::Sha256::new()
        .chain_update(b"solidarity/v1/duress-key\0")
        .chain_update(author.as_bytes())
        .chain_update(passphrase.as_bytes())
        .finalize()
        .into();
    assert_eq!(hex::encode(legacy_key), text(duress, "legacy_duress_key"));
    let legacy_commitment = payload::duress_commitment(&legacy_key);
    assert_eq!(
        hex::encode(legacy_commitment),
        text(duress, "legacy_commitment")
    );
    assert!(payload::is_duress_token(
        &legacy_commitment,
        &author,
        &legacy_key
    ));
    assert!(!payload::is_duress_token(
        &legacy_commitment,
        &author,
        &token
    ));
    // `solidarity canary duress --legacy-commitment`: a fresh token under the old one.
    let tagged = payload::duress_token(&legacy_commitment, &author, [5; 16]);
    assert!(payload::is_duress_token(
        &legacy_commitment,
        &author,
        &tagged
    ));
    assert!(!payload::is_duress_token(&commitment, &author, &tagged));

    let name = text(duress, "vector");
    let vector = array(&index, "vectors")
        .iter()
        .find(|vector| text(vector, "name") == name)
        .expect("the duress vector is listed");
    assert_eq!(text(vector, "verdict"), "accept", "{name}");
    let envelope = Envelope::decode(&read_hex(text(vector, "file"))).expect("envelope");
    assert_eq!(envelope.signer, author, "{name}: signer");
    let header = solidarity_proto::Payload::decode(&envelope.payload).expect("payload");
    match Body::decode(&header.kind, &header.body).expect("body") {
        Body::Canary(canary) => assert_eq!(canary.token, token, "{name}: token"),
        other => panic!("{name} is a canary: {other:?}"),
    }
}

#[test]
fn sync_vectors_decode_to_their_listed_values_and_wire_form() {
    let index = index();
    let sync = array(&index, "sync");
    assert_eq!(sync.len(), 3);
    for vector in sync {
        let name = text(vector, "name");
        let bytes = read_hex(text(vector, "file"));
        let wire = read_hex(text(vector, "wire_file"));
        // The libp2p cbor codec carries the message as one CBOR byte string.
        let unwrapped: serde_bytes::ByteBuf = serde_cbor::from_slice(&wire).expect("byte string");
        assert_eq!(
            unwrapped.into_vec(),
            bytes,
            "{name}: wire form wraps the message"
        );
        let decoded = &vector["decoded"];
        match text(vector, "type") {
            "sync_request" => {
                let request = SyncRequest::decode(&bytes).expect("request decodes");
                assert_eq!(request.encode(), bytes, "{name}: canonical");
                assert_eq!(request.fed.to_hex(), text(decoded, "fed"));
                assert_eq!(u64::from(request.limit), number(decoded, "limit"));
                let have: Vec<(String, u64, Option<String>)> = array(decoded, "have")
                    .iter()
                    .map(|mark| {
                        (
                            text(mark, "author").to_owned(),
                            number(mark, "seq"),
                            mark["head"].as_str().map(str::to_owned),
                        )
                    })
                    .collect();
                let got: Vec<(String, u64, Option<String>)> = request
                    .have
                    .iter()
                    .map(|mark| {
                        (
                            mark.author.to_hex(),
                            mark.seq,
                            mark.head.map(|id| id.to_hex()),
                        )
                    })
                    .collect();
                assert_eq!(got, have, "{name}: watermarks");
                let listed: Option<Vec<(String, String)>> =
                    decoded["statements"].as_array().map(|signers| {
                        signers
                            .iter()
                            .map(|held| {
                                (
                                    text(held, "signer").to_owned(),
                                    text(held, "held").to_owned(),
                                )
                            })
                            .collect()
                    });
                let got: Option<Vec<(String, String)>> =
                    request.statements.as_ref().map(|signers| {
                        signers
                            .iter()
                            .map(|held| (held.signer.to_hex(), hex::encode(&held.held)))
                            .collect()
                    });
                assert_eq!(got, listed, "{name}: held statements");
            }
            "sync_response" => {
                let response = SyncResponse::decode(&bytes).expect("response decodes");
                assert_eq!(response.encode(), bytes, "{name}: canonical");
                assert_eq!(Some(response.more), decoded["more"].as_bool());
                let envelopes: Vec<String> = response.envelopes.iter().map(hex::encode).collect();
                let listed: Vec<String> = array(decoded, "envelopes")
                    .iter()
                    .map(|envelope| envelope.as_str().expect("hex string").to_owned())
                    .collect();
                assert_eq!(envelopes, listed, "{name}: envelopes");
            }
            other => panic!("unknown sync vector type {other}"),
        }
    }
}

#[test]
fn every_vector_lists_the_layers_its_bytes_decode_to() {
    // SPEC.md §14: beside its bytes, each vector gives its envelope, header and body as far
    // as they decode, so that a reader in another language need not decode them first.
    let index = index();
    let mut bodies = 0;
    for vector in array(&index, "vectors") {
        let name = text(vector, "name");
        let bytes = read_hex(text(vector, "file"));
        let decoded = &vector["decoded"];
        let Ok(envelope) = Envelope::decode(&bytes) else {
            assert!(decoded["envelope"].is_null(), "{name}: no envelope");
            assert!(decoded["header"].is_null(), "{name}: no header");
            continue;
        };
        let listed = &decoded["envelope"];
        assert_eq!(number(listed, "v"), u64::from(envelope.v), "{name}: v");
        assert_eq!(text(listed, "signer"), envelope.signer.to_hex(), "{name}");
        assert_eq!(text(listed, "sig"), hex::encode(*envelope.sig), "{name}");
        assert!(
            decoded["envelope_diagnostic"].is_string(),
            "{name}: diagnostic"
        );
        let Ok(header) = solidarity_proto::Payload::decode(&envelope.payload) else {
            assert!(decoded["header"].is_null(), "{name}: no header");
            continue;
        };
        let listed = &decoded["header"];
        assert_eq!(text(listed, "fed"), header.fed.to_hex(), "{name}: fed");
        assert_eq!(number(listed, "seq"), header.seq, "{name}: seq");
        assert_eq!(
            listed["prev"].as_str(),
            header.prev.map(|prev| prev.to_hex()).as_deref(),
            "{name}: prev"
        );
        assert_eq!(
            number(listed, "created_at"),
            header.created_at,
            "{name}: created_at"
        );
        assert_eq!(
            listed["expires_at"].as_u64(),
            header.expires_at,
            "{name}: expires_at"
        );
        assert_eq!(text(listed, "kind"), header.kind, "{name}: kind");
        assert_eq!(
            number(listed, "body_size"),
            header.body.len() as u64,
            "{name}: body size"
        );
        let body = Body::decode(&header.kind, &header.body).ok();
        let listed = &decoded["body"];
        match body {
            None | Some(Body::Unknown) => assert!(listed.is_null(), "{name}: no body"),
            Some(Body::Canary(canary)) => {
                assert_eq!(text(listed, "token"), hex::encode(&canary.token), "{name}");
                assert_eq!(number(listed, "interval_secs"), canary.interval_secs);
                bodies += 1;
            }
            Some(Body::AlertUpdate(update)) => {
                assert_eq!(text(listed, "alert"), update.alert.to_hex(), "{name}");
                assert_eq!(
                    listed["note"].as_str(),
                    update.note.as_deref(),
                    "{name}: note"
                );
                bodies += 1;
            }
            Some(Body::Alert(alert)) => {
                assert_eq!(text(listed, "subject"), alert.subject, "{name}");
                assert_eq!(text(listed, "summary"), alert.summary, "{name}");
                bodies += 1;
            }
            Some(_) => {
                assert!(listed.is_object(), "{name}: body");
                bodies += 1;
            }
        }
    }
    assert!(bodies >= 20, "the decoded bodies were checked");
}

#[test]
fn non_canonical_bodies_all_have_one_verdict() {
    // SPEC.md §8.2: every form of a body a conforming author cannot produce is bad_body.
    let index = index();
    let body_vectors: Vec<&Value> = array(&index, "vectors")
        .iter()
        .filter(|vector| text(vector, "name").starts_with("body_"))
        .collect();
    assert!(body_vectors.len() >= 14, "the body vectors are listed");
    for vector in body_vectors {
        let name = text(vector, "name");
        let expected = if name == "body_unknown_keys" {
            "ignore:not_author"
        } else {
            "reject:bad_body"
        };
        assert_eq!(text(vector, "verdict"), expected, "{name}");
    }
}

/// The content id of envelope bytes given in hex.
fn id_of_hex(envelope: &str) -> MessageId {
    let bytes = hex::decode(envelope).expect("hex");
    envelope::message_id_of_envelope_bytes(&bytes).expect("a canonical envelope")
}

#[test]
fn responder_vectors_are_consistent_with_their_held_state() {
    // SPEC.md §11.5, §14: what proto can check of a responder vector (the pages themselves
    // are checked against the engine's responder in solidarity-engine).
    let index = index();
    let responder = array(&index, "responder");
    assert!(responder.len() >= 5, "the responder vectors are listed");
    let mut refused = 0;
    let mut pages_with_more = 0;
    for vector in responder {
        let name = text(vector, "name");
        let held = &vector["held"];
        let federation = FederationId::from_name(text(held, "federation"));
        let mut chain_ids = BTreeSet::new();
        for message in array(held, "chain") {
            if let Some(envelope) = message["envelope"].as_str() {
                assert_eq!(id_of_hex(envelope).to_hex(), text(message, "id"), "{name}");
                chain_ids.insert(text(message, "id").to_owned());
            }
        }
        let mut statement_ids = BTreeSet::new();
        for statement in array(held, "statements") {
            let bytes = hex::decode(text(statement, "envelope")).expect("hex");
            let decoded = Envelope::decode(&bytes).expect("a held statement decodes");
            let header = solidarity_proto::Payload::decode(&decoded.payload).expect("payload");
            assert_eq!(header.kind, text(statement, "kind"), "{name}");
            assert_eq!(decoded.signer.to_hex(), text(statement, "signer"), "{name}");
            assert_eq!(
                id_of_hex(text(statement, "envelope")).to_hex(),
                text(statement, "id")
            );
            statement_ids.insert(text(statement, "id").to_owned());
        }
        let evidence_ids: BTreeSet<String> = array(held, "compromised")
            .iter()
            .map(|evidence| id_of_hex(text(evidence, "envelope")).to_hex())
            .collect();
        for exchange in array(vector, "exchanges") {
            let note = text(exchange, "note");
            let request_bytes = hex::decode(text(exchange, "request")).expect("hex");
            let request = SyncRequest::decode(&request_bytes);
            assert_eq!(
                request.is_err(),
                exchange["refused"].as_bool().expect("refused"),
                "{name}: {note}"
            );
            let sent: Vec<String> = array(&exchange["response"], "envelopes")
                .iter()
                .map(|id| id.as_str().expect("an id").to_owned())
                .collect();
            let more = exchange["response"]["more"].as_bool().expect("more");
            let response_bytes = hex::decode(text(exchange, "response_bytes")).expect("hex");
            let response = SyncResponse::decode(&response_bytes).expect("the response decodes");
            assert_eq!(response.more, more, "{name}: {note}");
            let ids: Vec<String> = response
                .envelopes
                .iter()
                .map(|bytes| {
                    envelope::message_id_of_envelope_bytes(bytes)
                        .expect("canonical")
                        .to_hex()
                })
                .collect();
            assert_eq!(ids, sent, "{name}: {note}");
            let Ok(request) = request else {
                assert!(sent.is_empty() && !more, "{name}: {note}: refused, empty");
                refused += 1;
                continue;
            };
            if request.fed != federation {
                assert!(
                    sent.is_empty() && !more,
                    "{name}: {note}: another federation"
                );
                refused += 1;
                continue;
            }
            assert!(sent.len() <= request.page_limit(), "{name}: {note}: n");
            if more {
                pages_with_more += 1;
            }
            // §11.5 step 6: a statement page holds statements only, a chain page none.
            let listed: BTreeSet<String> = match &request.statements {
                Some(entries) => {
                    let signers: Vec<AuthorKey> =
                        entries.iter().map(|entry| entry.signer).collect();
                    for statement in array(held, "statements") {
                        if sent.contains(&text(statement, "id").to_owned()) {
                            let signer: AuthorKey = hex32(text(statement, "signer"));
                            assert!(signers.contains(&signer), "{name}: {note}: listed signer");
                        }
                    }
                    statement_ids.clone()
                }
                None => chain_ids.union(&evidence_ids).cloned().collect(),
            };
            for id in &sent {
                assert!(
                    listed.contains(id),
                    "{name}: {note}: {id} belongs to the phase"
                );
            }
        }
    }
    assert!(refused >= 7, "the refusals were checked");
    assert!(pages_with_more >= 3, "multi-page answers were checked");
}

#[test]
fn canary_state_vectors_follow_the_rules_of_13_3() {
    // SPEC.md §13.3, recomputed from the history with proto's duress test: the two highest
    // seqs (the first canary at each), due_at with the interval capped, silent strictly
    // after due_at + grace, withdrawn codes in table order, duress in L or P.
    let index = index();
    let vectors = array(&index, "canary_states");
    assert!(vectors.len() >= 10, "the canary state vectors are listed");
    let mut states = BTreeSet::new();
    for vector in vectors {
        let name = text(vector, "name");
        let member: AuthorKey = hex32(text(vector, "member"));
        let grace = number(&vector["settings"], "canary_grace_secs");
        let max_interval = number(&vector["settings"], "canary_max_interval_secs");
        let commitment: Option<[u8; 32]> = vector["commitment"].as_str().map(|commitment| {
            hex::decode(commitment)
                .expect("hex")
                .try_into()
                .expect("32 bytes")
        });
        let now = number(vector, "now_ms");
        let mut kept: Vec<(u64, u64, payload::Canary)> = Vec::new();
        for seen in array(vector, "history") {
            let bytes = hex::decode(text(seen, "envelope")).expect("hex");
            let decoded = Envelope::decode(&bytes).expect("envelope");
            assert_eq!(decoded.signer, member, "{name}: the member's canary");
            let header = solidarity_proto::Payload::decode(&decoded.payload).expect("payload");
            let Body::Canary(canary) = Body::decode(&header.kind, &header.body).expect("body")
            else {
                panic!("{name}: a canary");
            };
            assert_eq!(header.seq, number(seen, "seq"), "{name}");
            assert_eq!(header.created_at, number(seen, "created_at"), "{name}");
            assert_eq!(text(seen, "token"), hex::encode(&canary.token), "{name}");
            if kept.iter().all(|(seq, _, _)| *seq != header.seq) {
                kept.push((header.seq, header.created_at, canary));
            }
        }
        kept.sort_by_key(|(seq, _, _)| std::cmp::Reverse(*seq));
        kept.truncate(2);
        let expected = &vector["expected"];
        let Some((latest_seq, created_at, latest)) = kept.first() else {
            assert!(expected.is_null(), "{name}: no state without a canary");
            states.insert("none".to_owned());
            continue;
        };
        let due_at =
            created_at.saturating_add(latest.interval_secs.min(max_interval).saturating_mul(1000));
        let silent_at = due_at.saturating_add(grace.saturating_mul(1000));
        let withdrawn: Vec<String> = payload::CanaryCode::ALL
            .into_iter()
            .filter(|code| !latest.codes.contains(code))
            .map(|code| {
                serde_json::to_value(code)
                    .expect("JSON")
                    .as_str()
                    .expect("a name")
                    .to_owned()
            })
            .collect();
        let duress = commitment.is_some_and(|commitment| {
            kept.iter()
                .any(|(_, _, canary)| payload::is_duress_token(&commitment, &member, &canary.token))
        });
        let state = if duress {
            "duress"
        } else if now > silent_at {
            "silent"
        } else if !withdrawn.is_empty() {
            "changed"
        } else {
            "ok"
        };
        assert_eq!(number(expected, "latest_seq"), *latest_seq, "{name}");
        assert_eq!(
            expected["previous_seq"].as_u64(),
            kept.get(1).map(|(seq, _, _)| *seq),
            "{name}"
        );
        assert_eq!(number(expected, "due_at"), due_at, "{name}");
        assert_eq!(number(expected, "silent_at"), silent_at, "{name}");
        let listed: Vec<String> = array(expected, "withdrawn")
            .iter()
            .map(|code| code.as_str().expect("a code").to_owned())
            .collect();
        assert_eq!(listed, withdrawn, "{name}");
        assert_eq!(text(expected, "state"), state, "{name}");
        states.insert(state.to_owned());
    }
    for state in ["none", "ok", "changed", "silent", "duress"] {
        assert!(states.contains(state), "a vector of state {state}");
    }
}
