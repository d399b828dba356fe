//! The sync responder against the `responder` vectors of `protocol-spec/vectors` (SPEC
//! §11.5, §14): each vector's held state is loaded into a store, kept statements and
//! relayed ones, and every request must get exactly the listed response bytes.

use std::path::PathBuf;

use serde_json::Value;
use solidarity_engine::statements::Relay;
use solidarity_engine::sync_answer::{Responder, answer};
use solidarity_engine::{ChainEnvelope, ReadError, StoreRead};
use solidarity_proto::state::Stored;
use solidarity_proto::trust::Statements;
use solidarity_proto::{AuthorKey, Body, Envelope, FederationId, MessageId, Payload};

fn index() -> Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../protocol-spec/vectors/vectors.json");
    let text = std::fs::read_to_string(path).expect("vectors.json is readable");
    serde_json::from_str(&text).expect("vectors.json is JSON")
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("`{key}` is a string in {value}"))
}

fn array<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value[key]
        .as_array()
        .unwrap_or_else(|| panic!("`{key}` is an array in {value}"))
}

fn bytes(value: &Value, key: &str) -> Vec<u8> {
    hex::decode(text(value, key)).expect("hex")
}

fn number(value: &Value, key: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("`{key}` is an integer in {value}"))
}

fn key32<T: std::str::FromStr>(value: &Value, key: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    text(value, key).parse().expect("64 hex characters")
}

/// A chain message held: its envelope, or `None` for a tombstone.
struct Chain {
    author: AuthorKey,
    seq: u64,
    id: MessageId,
    envelope: Option<Vec<u8>>,
}

/// Fork evidence kept of a compromised author.
struct Evidence {
    author: AuthorKey,
    seq: u64,
    id: MessageId,
    envelope: Vec<u8>,
}

/// The responder's store, as the vector describes it.
struct HeldStore {
    chain: Vec<Chain>,
    /// Envelopes of the statements it keeps, by id.
    statements: Vec<(MessageId, Vec<u8>)>,
    evidence: Vec<Evidence>,
}

impl HeldStore {
    fn stored(&self) -> impl Iterator<Item = (MessageId, &Vec<u8>)> {
        self.chain
            .iter()
            .filter_map(|message| Some((message.id, message.envelope.as_ref()?)))
            .chain(self.statements.iter().map(|(id, envelope)| (*id, envelope)))
    }

    fn chain_of<'a>(&'a self, author: &'a AuthorKey) -> impl Iterator<Item = &'a Chain> {
        self.chain
            .iter()
            .filter(move |message| message.author == *author)
    }
}

impl StoreRead for HeldStore {
    fn contains(&self, id: &MessageId) -> Result<bool, ReadError> {
        Ok(self.stored().any(|(held, _)| held == *id))
    }
    fn envelope(&self, id: &MessageId) -> Result<Option<Vec<u8>>, ReadError> {
        Ok(self
            .stored()
            .find(|(held, _)| held == id)
            .map(|(_, envelope)| envelope.clone()))
    }
    fn author_and_kind(&self, id: &MessageId) -> Result<Option<(AuthorKey, String)>, ReadError> {
        Ok(self
            .stored()
            .find(|(held, _)| held == id)
            .map(|(_, bytes)| {
                let envelope = Envelope::decode(bytes).expect("held envelopes decode");
                let payload = Payload::decode(&envelope.payload).expect("held payloads decode");
                (envelope.signer, payload.kind)
            }))
    }
    fn id_at(&self, author: &AuthorKey, seq: u64) -> Result<Option<MessageId>, ReadError> {
        Ok(self
            .chain_of(author)
            .find(|message| message.seq == seq)
            .map(|message| message.id))
    }
    fn watermark(&self, author: &AuthorKey) -> Result<u64, ReadError> {
        let mut seqs: Vec<u64> = self.chain_of(author).map(|message| message.seq).collect();
        seqs.sort_unstable();
        Ok(solidarity_proto::sync::contiguous_watermark(seqs))
    }
    fn chain_head(&self, author: &AuthorKey) -> Result<Option<(u64, MessageId)>, ReadError> {
        Ok(self
            .chain_of(author)
            .map(|message| (message.seq, message.id))
            .max())
    }
    fn author_range(
        &self,
        author: &AuthorKey,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<ChainEnvelope>, ReadError> {
        let mut range: Vec<ChainEnvelope> = self
            .chain_of(author)
            .filter(|message| message.seq >= from_seq)
            .filter_map(|message| {
                Some(ChainEnvelope {
                    seq: message.seq,
                    envelope: message.envelope.clone()?,
                })
            })
            .collect();
        range.sort_by_key(|message| message.seq);
        range.truncate(limit);
        Ok(range)
    }
    fn stored_bytes(&self, author: &AuthorKey) -> Result<u64, ReadError> {
        Ok(self
            .chain_of(author)
            .filter_map(|message| message.envelope.as_ref())
            .map(|envelope| envelope.len() as u64)
            .sum())
    }
    fn fork_evidence(&self, author: &AuthorKey) -> Result<Vec<Vec<u8>>, ReadError> {
        // The store keeps evidence by (author, seq, id).
        let mut evidence: Vec<&Evidence> = self
            .evidence
            .iter()
            .filter(|evidence| evidence.author == *author)
            .collect();
        evidence.sort_by_key(|evidence| (evidence.seq, evidence.id));
        Ok(evidence
            .into_iter()
            .map(|evidence| evidence.envelope.clone())
            .collect())
    }
}

/// A held statement as the trust state keeps it.
fn stored<T>(envelope: &Envelope, payload: &Payload, id: MessageId, body: T) -> Stored<T> {
    Stored {
        id,
        author: envelope.signer,
        seq: payload.seq,
        created_at: payload.created_at,
        expires_at: payload.expires_at,
        body,
    }
}

#[test]
fn the_responder_answers_every_responder_vector_with_its_page() {
    let index = index();
    let vectors = array(&index, "responder");
    assert!(vectors.len() >= 5, "the responder vectors are listed");
    let mut answered = 0;
    for vector in vectors {
        let name = text(vector, "name");
        let held = &vector["held"];
        let federation = FederationId::from_name(text(held, "federation"));
        let mut store = HeldStore {
            chain: array(held, "chain")
                .iter()
                .map(|message| Chain {
                    author: key32(message, "author"),
                    seq: number(message, "seq"),
                    id: key32(message, "id"),
                    envelope: message["envelope"]
                        .as_str()
                        .map(|envelope| hex::decode(envelope).expect("hex")),
                })
                .collect(),
            statements: Vec::new(),
            evidence: array(held, "compromised")
                .iter()
                .map(|evidence| Evidence {
                    author: key32(evidence, "author"),
                    seq: number(evidence, "seq"),
                    id: key32(evidence, "id"),
                    envelope: bytes(evidence, "envelope"),
                })
                .collect(),
        };
        // Kept statements enter the trust state in the listed order (the order the
        // responder holds them); relayed ones are offered to the relay in that order.
        let mut statements = Statements::default();
        let mut relay = Relay::default();
        for statement in array(held, "statements") {
            let envelope_bytes = bytes(statement, "envelope");
            let envelope = Envelope::decode(&envelope_bytes).expect("statement envelope");
            let payload = Payload::decode(&envelope.payload).expect("statement payload");
            let id: MessageId = key32(statement, "id");
            let revocation = text(statement, "kind") == "revocation";
            if statement["relayed"].as_bool().expect("relayed") {
                assert!(
                    relay.offer(envelope.signer, id, revocation, &envelope_bytes),
                    "{name}: relayed"
                );
                continue;
            }
            match Body::decode(&payload.kind, &payload.body).expect("statement body") {
                Body::Revocation(body) => {
                    statements.add_revocation(stored(&envelope, &payload, id, body));
                }
                Body::NodeCert(body) => {
                    statements.add_certificate(stored(&envelope, &payload, id, body));
                }
                other => panic!("{name}: a statement, not {other:?}"),
            }
            store.statements.push((id, envelope_bytes));
        }
        let compromised: Vec<AuthorKey> = store
            .evidence
            .iter()
            .map(|evidence| evidence.author)
            .collect();
        let is_compromised = |key: &AuthorKey| compromised.contains(key);
        let responder = Responder {
            federation: &federation,
            statements: &statements,
            relay: &relay,
            compromised: &is_compromised,
            store: &store,
        };
        for exchange in array(vector, "exchanges") {
            let page = answer(&bytes(exchange, "request"), &responder);
            assert_eq!(
                hex::encode(page.encode()),
                text(exchange, "response_bytes"),
                "{name}: {}",
                text(exchange, "note")
            );
            answered += 1;
        }
    }
    assert!(answered >= 20, "every exchange was answered");
}
