//! Writes the fuzz corpus seeds: the protocol test vectors (`protocol-spec/vectors`) cut to
//! each target's input format, and one control request of each kind.
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml -p solidarity-fuzz-seeds   # or: scripts/fuzz seeds
//! ```
//!
//! Input formats are documented in `fuzz/fuzz_targets/*.rs`; the kind order of the `body`
//! target is `solidarity_fuzz::BODY_KINDS`, repeated here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use solidarity_control::Request;
use solidarity_proto::payload::{self, AlertStatus, CanaryCode, Stance};
use solidarity_proto::sync::{SyncRequest, SyncResponse};
use solidarity_proto::{AuthorKey, Body, Envelope, FederationId, MessageId, Payload};

/// Same order as `solidarity_fuzz::BODY_KINDS`.
const BODY_KINDS: [&str; 10] = [
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

/// `validate_signed` flags: the vectors' clock, the signer is a member, the store holds the
/// named `prev`, no conflict, no stored targets, not a duplicate.
const SIGNED_FLAGS: u8 = 0b0000_1100;

#[derive(Default)]
struct Corpus {
    /// Target → file name → bytes.
    targets: BTreeMap<&'static str, BTreeMap<String, Vec<u8>>>,
}

impl Corpus {
    fn add(&mut self, target: &'static str, name: &str, bytes: Vec<u8>) {
        let files = self.targets.entry(target).or_default();
        if !files.values().any(|existing| *existing == bytes) {
            files.insert(name.to_owned(), bytes);
        }
    }

    fn write(&self, root: &Path) {
        for (target, files) in &self.targets {
            let dir = root.join(target);
            if dir.exists() {
                std::fs::remove_dir_all(&dir).expect("clear the target's corpus");
            }
            std::fs::create_dir_all(&dir).expect("create the target's corpus");
            for (name, bytes) in files {
                std::fs::write(dir.join(name), bytes).expect("write a seed");
            }
            println!("{target}: {} seeds", files.len());
        }
    }
}

fn main() {
    let fuzz_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let vectors = fuzz_dir.join("../protocol-spec/vectors");
    let out = std::env::args_os()
        .nth(1)
        .map_or_else(|| fuzz_dir.join("corpus"), PathBuf::from);
    let index: Value = serde_json::from_str(
        &std::fs::read_to_string(vectors.join("vectors.json")).expect("read vectors.json"),
    )
    .expect("vectors.json is JSON");
    let read_hex = |file: &str| {
        let text = std::fs::read_to_string(vectors.join(file)).expect("read a vector");
        hex::decode(text.trim()).expect("a vector is hex")
    };

    let mut corpus = Corpus::default();
    let mut bodies: BTreeMap<&str, Body> = BTreeMap::new();
    let mut statement = None;
    for vector in index["vectors"].as_array().expect("vectors") {
        let name = vector["name"].as_str().expect("name");
        let bytes = read_hex(vector["file"].as_str().expect("file"));
        corpus.add("envelope", name, bytes.clone());
        let Ok(envelope) = Envelope::decode(&bytes) else {
            continue;
        };
        let mut signed = vec![SIGNED_FLAGS];
        signed.extend_from_slice(&envelope.payload);
        corpus.add("validate_signed", name, signed);
        corpus.add("payload", name, envelope.payload.clone());
        let Ok(header) = Payload::decode(&envelope.payload) else {
            continue;
        };
        let index = BODY_KINDS
            .iter()
            .position(|kind| *kind == header.kind)
            .unwrap_or(BODY_KINDS.len() - 1);
        let mut body = vec![u8::try_from(index).expect("few kinds")];
        body.extend_from_slice(&header.body);
        corpus.add("body", name, body);
        if let Ok(decoded) = Body::decode(&header.kind, &header.body)
            && let Some(kind) = decoded.kind()
        {
            bodies.entry(kind).or_insert(decoded);
        }
        if name == "revocation" {
            statement = Some(bytes);
        }
    }

    for vector in index["sync"].as_array().expect("sync") {
        let target = match vector["type"].as_str().expect("type") {
            "sync_request" => "sync_request",
            "sync_response" => "sync_response",
            other => panic!("unknown sync vector type {other}"),
        };
        let bytes = read_hex(vector["file"].as_str().expect("file"));
        corpus.add(target, vector["name"].as_str().expect("name"), bytes);
    }
    let empty_request = SyncRequest {
        fed: FederationId::from_name("test-federation"),
        have: Vec::new(),
        limit: 0,
        statements: None,
    };
    corpus.add("sync_request", "empty", empty_request.encode());
    corpus.add("sync_response", "empty", SyncResponse::default().encode());

    let key = AuthorKey([0x8a; 32]);
    let id = MessageId([0x42; 32]);
    let mut requests = vec![
        ("status", Request::Status),
        ("peers", Request::Peers),
        ("card", Request::Card),
        ("reload_members", Request::ReloadMembers),
        ("member_retrust", Request::MemberRetrust { key }),
        ("alert_list", Request::AlertList { all: false }),
        ("mirror_list", Request::MirrorList),
        (
            "alert_update",
            Request::AlertUpdate {
                alert: id,
                status: AlertStatus::GagActive,
                note: Some("seen\nby us".into()),
            },
        ),
        (
            "alert_endorse",
            Request::AlertEndorse {
                alert: id,
                stance: Stance::Dispute,
                note: None,
            },
        ),
        (
            "member_vouch",
            Request::MemberVouch {
                key,
                name: "riseup-like".into(),
                addresses: vec!["/ip4/192.0.2.1/tcp/4001".into()],
                vouch: true,
            },
        ),
        ("mirror_withdraw", Request::MirrorWithdraw { offer: id }),
        (
            "canary_publish",
            Request::CanaryPublish {
                withdraw: vec![CanaryCode::Warrant, CanaryCode::Gag],
                restore: vec![CanaryCode::Raid],
            },
        ),
        ("canary_duress", Request::CanaryDuress { token: id }),
    ];
    if let Some(Body::Alert(alert)) = bodies.get(payload::KIND_ALERT) {
        requests.push((
            "alert_raise",
            Request::AlertRaise {
                alert: alert.clone(),
                expires_in_ms: Some(86_400_000),
            },
        ));
    }
    if let Some(Body::MirrorOffer(offer)) = bodies.get(payload::KIND_MIRROR_OFFER) {
        requests.push((
            "mirror_offer",
            Request::MirrorOffer {
                offer: offer.clone(),
                valid_for_ms: 30 * 86_400_000,
            },
        ));
    }
    if let Some(envelope) = statement {
        requests.push(("publish_statement", Request::PublishStatement { envelope }));
    }
    for (name, request) in requests {
        let mut line = serde_json::to_vec(&request).expect("a request serialises");
        line.push(b'\n');
        solidarity_control::parse_request(&line).expect("a seed request parses");
        corpus.add("control_request", name, line);
    }

    corpus.write(&out);
}
