//! Vectors of the sync responder (SPEC §11.5): a held state and requests, each with the
//! page the rules give. The pages are computed here by [`answer`], written from the text of
//! §11.5 alone (independently of the node's responder, which a test in the engine checks
//! against these vectors).

use serde_json::{Value, json};
use solidarity_proto::envelope::{self, SignedMessage};
use solidarity_proto::payload::{Alert, NodeCert, Revocation};
use solidarity_proto::sync::{
    HELD_ID_BYTES, HeldStatements, MAX_PAGE_BYTES, MAX_PAGE_STATEMENTS_PER_SIGNER, SyncRequest,
    SyncResponse, Watermark,
};
use solidarity_proto::{AuthorKey, Body, FederationId, MessageId};

use super::{CREATED_MS, DAY_MS, FEDERATION, Generator, NOW_MS, cbor, minimal_alert};

/// A chain message the responder holds, or its tombstone.
struct HeldChain {
    author: AuthorKey,
    seq: u64,
    id: MessageId,
    /// `None`: only the tombstone is left (the message expired).
    envelope: Option<Vec<u8>>,
}

/// A statement the responder keeps or relays, in the order it holds them.
struct HeldStatement {
    signer: AuthorKey,
    id: MessageId,
    revocation: bool,
    relayed: bool,
    envelope: Vec<u8>,
}

/// Fork evidence the responder keeps of a compromised author.
struct HeldEvidence {
    author: AuthorKey,
    seq: u64,
    id: MessageId,
    envelope: Vec<u8>,
}

#[derive(Default)]
struct Held {
    chain: Vec<HeldChain>,
    statements: Vec<HeldStatement>,
    compromised: Vec<HeldEvidence>,
}

/// The page SPEC §11.5 gives for `request` from `held`.
fn answer(federation: &FederationId, held: &Held, request: &[u8]) -> SyncResponse {
    let mut page = SyncResponse::default();
    // Step 1: refused, or of another federation.
    let Ok(request) = SyncRequest::decode(request) else {
        return page;
    };
    if request.fed != *federation {
        return page;
    }
    // Step 2.
    let n = request.page_limit();
    let mut size = 0usize;
    let fits = |page: &SyncResponse, size: usize, envelope: &[u8]| {
        page.envelopes.len() < n && size + envelope.len() <= MAX_PAGE_BYTES
    };
    let push = |page: &mut SyncResponse, size: &mut usize, envelope: &[u8]| {
        *size += envelope.len();
        page.envelopes.push(envelope.to_vec().into());
    };
    // Step 3.
    if let Some(entries) = &request.statements {
        let mut per_signer: Vec<(AuthorKey, usize)> = Vec::new();
        for revocations in [true, false] {
            for entry in entries {
                let candidates = held
                    .statements
                    .iter()
                    .filter(|statement| {
                        statement.signer == entry.signer && statement.revocation == revocations
                    })
                    .filter(|statement| !statement.relayed)
                    .chain(held.statements.iter().filter(|statement| {
                        statement.signer == entry.signer
                            && statement.revocation == revocations
                            && statement.relayed
                    }));
                for statement in candidates {
                    if entry
                        .held
                        .chunks_exact(HELD_ID_BYTES)
                        .any(|prefix| prefix == &statement.id.0[..HELD_ID_BYTES])
                    {
                        continue;
                    }
                    let sent = per_signer
                        .iter()
                        .find(|(signer, _)| *signer == entry.signer)
                        .map_or(0, |(_, sent)| *sent);
                    if sent >= MAX_PAGE_STATEMENTS_PER_SIGNER
                        || page.envelopes.len() >= n
                        || !fits(&page, size, &statement.envelope)
                    {
                        page.more = true;
                        break;
                    }
                    push(&mut page, &mut size, &statement.envelope);
                    match per_signer
                        .iter_mut()
                        .find(|(signer, _)| *signer == entry.signer)
                    {
                        Some((_, sent)) => *sent += 1,
                        None => per_signer.push((entry.signer, 1)),
                    }
                }
            }
        }
        return page;
    }
    // Step 4.
    'chains: for watermark in &request.have {
        if let Some(head) = watermark.head
            && let Some(ours) = held
                .chain
                .iter()
                .find(|message| message.author == watermark.author && message.seq == watermark.seq)
            && ours.id != head
            && let Some(envelope) = &ours.envelope
        {
            if !fits(&page, size, envelope) {
                page.more = true;
                break 'chains;
            }
            push(&mut page, &mut size, envelope);
        }
        if watermark.seq == u64::MAX {
            continue;
        }
        let mut above: Vec<&HeldChain> = held
            .chain
            .iter()
            .filter(|message| message.author == watermark.author && message.seq > watermark.seq)
            .collect();
        above.sort_by_key(|message| message.seq);
        for envelope in above.iter().filter_map(|message| message.envelope.as_ref()) {
            if !fits(&page, size, envelope) {
                page.more = true;
                break 'chains;
            }
            push(&mut page, &mut size, envelope);
        }
    }
    // Step 5.
    let mut evidence: Vec<&HeldEvidence> = held
        .compromised
        .iter()
        .filter(|evidence| {
            request
                .have
                .iter()
                .any(|watermark| watermark.author == evidence.author)
        })
        .collect();
    evidence.sort_by_key(|evidence| (evidence.author, evidence.seq, evidence.id));
    for evidence in evidence {
        if fits(&page, size, &evidence.envelope) {
            push(&mut page, &mut size, &evidence.envelope);
        }
    }
    page
}

fn watermark_json(mark: &Watermark) -> Value {
    json!({
        "author": mark.author.to_hex(),
        "seq": mark.seq,
        "head": mark.head.map(|head| head.to_hex()),
    })
}

fn request_json(request: &SyncRequest) -> Value {
    json!({
        "fed": request.fed.to_hex(),
        "have": request.have.iter().map(watermark_json).collect::<Vec<_>>(),
        "limit": request.limit,
        "statements": request.statements.as_ref().map(|entries| entries.iter().map(|entry| json!({
            "signer": entry.signer.to_hex(),
            "held": hex::encode(&entry.held),
        })).collect::<Vec<_>>()),
    })
}

fn held_json(held: &Held) -> Value {
    json!({
        "federation": FEDERATION,
        "chain": held.chain.iter().map(|message| json!({
            "author": message.author.to_hex(),
            "seq": message.seq,
            "id": message.id.to_hex(),
            "envelope": message.envelope.as_ref().map(hex::encode),
        })).collect::<Vec<_>>(),
        "statements": held.statements.iter().map(|statement| json!({
            "signer": statement.signer.to_hex(),
            "id": statement.id.to_hex(),
            "kind": if statement.revocation { "revocation" } else { "node-cert" },
            "relayed": statement.relayed,
            "envelope": hex::encode(&statement.envelope),
        })).collect::<Vec<_>>(),
        "compromised": held.compromised.iter().map(|evidence| json!({
            "author": evidence.author.to_hex(),
            "seq": evidence.seq,
            "id": evidence.id.to_hex(),
            "envelope": hex::encode(&evidence.envelope),
        })).collect::<Vec<_>>(),
    })
}

impl Generator {
    /// key's chain of `count` alerts from seq 1, each a minimal alert with its seq in the
    /// summary.
    fn alert_chain(&self, key: &ed25519_dalek::SigningKey, count: u64) -> Vec<SignedMessage> {
        let mut chain: Vec<SignedMessage> = Vec::new();
        for seq in 1..=count {
            let alert = Alert {
                summary: format!("Planned power cut, notice {seq}"),
                ..minimal_alert()
            };
            let prev = chain.last().map(|message| message.id);
            chain.push(envelope::sign(
                key,
                &self.header(seq, prev, &Body::Alert(alert)),
            ));
        }
        chain
    }

    fn held_chain(key: &ed25519_dalek::SigningKey, chain: &[SignedMessage]) -> Vec<HeldChain> {
        chain
            .iter()
            .zip(1..)
            .map(|(message, seq)| HeldChain {
                author: envelope::author_key(key),
                seq,
                id: message.id,
                envelope: Some(message.bytes.clone()),
            })
            .collect()
    }

    fn revocation_by(&self, key: &ed25519_dalek::SigningKey, reason: &str) -> SignedMessage {
        envelope::sign(
            key,
            &self.statement(&Body::Revocation(Revocation {
                reason: reason.into(),
                key: None,
                compromised_since: None,
            })),
        )
    }

    fn certificate_by(
        &self,
        key: &ed25519_dalek::SigningKey,
        node: &ed25519_dalek::SigningKey,
        days: u64,
    ) -> SignedMessage {
        envelope::sign(
            key,
            &self.statement(&Body::NodeCert(NodeCert {
                node_key: envelope::author_key(node),
                valid_from: CREATED_MS,
                valid_until: NOW_MS + days * DAY_MS,
                addresses: vec![],
            })),
        )
    }

    fn push_responder(
        &mut self,
        name: &str,
        description: &str,
        held: &Held,
        requests: Vec<(Vec<u8>, &str)>,
    ) {
        let exchanges: Vec<Value> = requests
            .into_iter()
            .map(|(request, note)| {
                let response = answer(&self.fed, held, &request);
                let decoded = SyncRequest::decode(&request).ok();
                json!({
                    "note": note,
                    "request": hex::encode(&request),
                    "request_decoded": decoded.as_ref().map(request_json),
                    "refused": decoded.is_none(),
                    "response": {
                        "envelopes": response.envelopes.iter().map(|bytes| {
                            envelope::message_id_of_envelope_bytes(bytes)
                                .expect("held envelopes are canonical")
                                .to_hex()
                        }).collect::<Vec<_>>(),
                        "more": response.more,
                    },
                    "response_bytes": hex::encode(response.encode()),
                })
            })
            .collect();
        self.responder.push(json!({
            "name": name,
            "description": description,
            "held": held_json(held),
            "exchanges": exchanges,
        }));
    }

    #[allow(clippy::too_many_lines, reason = "one vector after the other")]
    pub(crate) fn build_responder(&mut self) {
        let (key1, key2, key3) = (self.key1.clone(), self.key2.clone(), self.key3.clone());
        let (author1, author2) = (envelope::author_key(&key1), envelope::author_key(&key2));
        let chain1 = self.alert_chain(&key1, 4);
        let chain2 = self.alert_chain(&key2, 2);
        let request = |fed: FederationId, have: Vec<Watermark>, limit: u32| {
            SyncRequest {
                fed,
                have,
                limit,
                statements: None,
            }
            .encode()
        };
        let mark =
            |author: AuthorKey, seq: u64, head: Option<MessageId>| Watermark { author, seq, head };

        // Refusals (step 1).
        let held = Held {
            chain: Self::held_chain(&key1, &chain1),
            ..Held::default()
        };
        let fresh = request(self.fed, vec![mark(author1, 0, None)], 10);
        // The same request with its keys in another order: limit before have.
        let mut reordered = vec![0xa3];
        reordered.extend(cbor(&"fed"));
        reordered.extend(cbor(&serde_bytes::ByteBuf::from(self.fed.0.to_vec())));
        reordered.extend(cbor(&"limit"));
        reordered.extend(cbor(&10u32));
        reordered.extend(cbor(&"have"));
        reordered.extend(cbor(&vec![mark(author1, 0, None)]));
        let mut null_head = vec![0xa3];
        null_head.extend(cbor(&"fed"));
        null_head.extend(cbor(&serde_bytes::ByteBuf::from(self.fed.0.to_vec())));
        null_head.extend(cbor(&"have"));
        null_head.extend([0x81, 0xa3]);
        null_head.extend(cbor(&"author"));
        null_head.extend(cbor(&serde_bytes::ByteBuf::from(author1.0.to_vec())));
        null_head.extend(cbor(&"seq"));
        null_head.extend([0x00]);
        null_head.extend(cbor(&"head"));
        null_head.extend([0xf6]);
        null_head.extend(cbor(&"limit"));
        null_head.extend([0x0a]);
        let ragged = SyncRequest {
            fed: self.fed,
            have: vec![],
            limit: 10,
            statements: Some(vec![HeldStatements {
                signer: author1,
                held: vec![0u8; 7].into(),
            }]),
        }
        .encode();
        let too_many_held = SyncRequest {
            fed: self.fed,
            have: vec![],
            limit: 10,
            statements: Some(vec![HeldStatements {
                signer: author1,
                held: vec![0u8; 257 * HELD_ID_BYTES].into(),
            }]),
        }
        .encode();
        let mut unknown_key = fresh.clone();
        unknown_key[0] += 1;
        unknown_key.extend(cbor(&"x"));
        unknown_key.push(0x00);
        self.push_responder(
            "responder_refusals",
            "A responder holding key1's chain of four alerts answers every refused request, and one of another federation, with {envelopes: [], more: false} (§11.5 step 1). The first exchange is the same request well formed, for comparison.",
            &held,
            vec![
                (fresh.clone(), "well formed: key1 from seq 0, limit 10 (answered)"),
                (
                    request(FederationId::from_name("other-federation"), vec![mark(author1, 0, None)], 10),
                    "fed of another federation (decodes, not answered)",
                ),
                (reordered, "keys out of declaration order (limit before have): not canonical"),
                (null_head, "a watermark with head: null for an absent head: not canonical"),
                (unknown_key, "an unknown key x: 0 after limit"),
                (ragged, "a held of 7 bytes, not a multiple of HELD_ID_BYTES"),
                (too_many_held, "a held of 257 ids, over MAX_HELD_PER_SIGNER"),
                (vec![0x40], "an empty byte string, not a SyncRequest"),
            ],
        );

        // Several pages (steps 2 and 4).
        let held = Held {
            chain: Self::held_chain(&key1, &chain1[..3])
                .into_iter()
                .chain(Self::held_chain(&key2, &chain2))
                .collect(),
            ..Held::default()
        };
        self.push_responder(
            "responder_pages",
            "A session of three chain pages of at most 2 envelopes: the responder holds key1 seq 1–3 and key2 seq 1–2; the requester starts from nothing and asks again with the watermarks each page advanced, until more is false (§11.5 steps 2 and 4, §11.4 step 6). limit 0 is read as 1.",
            &held,
            vec![
                (
                    request(self.fed, vec![mark(author1, 0, None), mark(author2, 0, None)], 2),
                    "round 1: nothing held",
                ),
                (
                    request(
                        self.fed,
                        vec![mark(author1, 2, Some(chain1[1].id)), mark(author2, 0, None)],
                        2,
                    ),
                    "round 2: key1 up to seq 2",
                ),
                (
                    request(
                        self.fed,
                        vec![mark(author1, 3, Some(chain1[2].id)), mark(author2, 1, Some(chain2[0].id))],
                        2,
                    ),
                    "round 3: key1 up to seq 3, key2 up to seq 1",
                ),
                (
                    request(self.fed, vec![mark(author1, 0, None), mark(author2, 0, None)], 0),
                    "limit 0: pages of one envelope",
                ),
                (
                    request(self.fed, vec![mark(author2, 0, None), mark(author1, 0, None)], 4096),
                    "key2 listed first: authors are served in request order",
                ),
            ],
        );

        // Tombstones, the fork at the head, the highest watermark, fork evidence (steps 4, 5).
        let other_first = envelope::sign(
            &key1,
            &self.header(
                1,
                None,
                &Body::Alert(Alert {
                    summary: "Another first message".into(),
                    ..minimal_alert()
                }),
            ),
        );
        let mut chain = Self::held_chain(&key1, &chain1);
        chain[1].envelope = None;
        // The other branch of key2's chain, kept as evidence: seq 1 and 2 of other alerts.
        let mut other_branch: Vec<SignedMessage> = Vec::new();
        for seq in 1..=2 {
            let prev = other_branch.last().map(|message| message.id);
            let alert = Alert {
                summary: format!("Not the first branch, notice {seq}"),
                ..minimal_alert()
            };
            other_branch.push(envelope::sign(
                &key2,
                &self.header(seq, prev, &Body::Alert(alert)),
            ));
        }
        let held = Held {
            chain: chain
                .into_iter()
                .chain(Self::held_chain(&key2, &chain2))
                .collect(),
            compromised: other_branch
                .iter()
                .zip(1..)
                .map(|(message, seq)| HeldEvidence {
                    author: author2,
                    seq,
                    id: message.id,
                    envelope: message.bytes.clone(),
                })
                .collect(),
            ..Held::default()
        };
        self.push_responder(
            "responder_forks_and_tombstones",
            "The responder holds key1 seq 1, 3, 4 and only the tombstone of seq 2; key2 seq 1–2; and key2 marked compromised with two evidence envelopes (ascending (seq, id) order). Exchanges: a requester whose head at key1 seq 1 is another message gets our seq 1 first (fork evidence), then seq 3 and 4 (the tombstone is skipped); a watermark of 2^64 − 1 asks for nothing of key2 but its fork evidence still comes (§11.5 steps 4 and 5); a page full of chain messages leaves the evidence out without setting more.",
            &held,
            vec![
                (
                    request(
                        self.fed,
                        vec![mark(author1, 1, Some(other_first.id)), mark(author2, u64::MAX, None)],
                        4096,
                    ),
                    "head at key1 seq 1 differs; key2 at the highest seq",
                ),
                (
                    request(self.fed, vec![mark(author1, 0, None), mark(author2, 0, None)], 5),
                    "limit 5: key1's three messages and key2's two fill the page; the evidence is left out, more stays false",
                ),
                (
                    request(self.fed, vec![mark(author1, 0, None)], 4096),
                    "key2 not listed: neither its chain nor its evidence is sent",
                ),
            ],
        );

        // The statement phase (step 3).
        let revocation_a = self.revocation_by(&key3, "Identity key copied on 2025-12-30.");
        let revocation_b = self.revocation_by(&key3, "Backup of the identity key lost.");
        let certificate_a = self.certificate_by(&key3, &key2, 30);
        let certificate_b = self.certificate_by(&key3, &key1, 60);
        let revocation_c = self.revocation_by(&key1, "Server seized on 2025-12-31.");
        let statement = |message: &SignedMessage,
                         signer: &ed25519_dalek::SigningKey,
                         revocation,
                         relayed| HeldStatement {
            signer: envelope::author_key(signer),
            id: message.id,
            revocation,
            relayed,
            envelope: message.bytes.clone(),
        };
        let held = Held {
            statements: vec![
                statement(&certificate_a, &key3, false, false),
                statement(&revocation_a, &key3, true, false),
                statement(&revocation_b, &key3, true, false),
                statement(&revocation_c, &key1, true, false),
                statement(&certificate_b, &key3, false, true),
            ],
            chain: Self::held_chain(&key1, &chain1),
            ..Held::default()
        };
        let fed = self.fed;
        let statements_request = |entries: Vec<HeldStatements>, limit| {
            SyncRequest {
                fed,
                have: vec![mark(author1, 0, None)],
                limit,
                statements: Some(entries),
            }
            .encode()
        };
        let key3_author = envelope::author_key(&key3);
        self.push_responder(
            "responder_statements",
            "The statement phase: the responder keeps a certificate and two revocations of key3 (a collective identity) and a revocation of key1, and relays a second certificate of key3. Revocations of every listed signer come before any certificate; kept before relayed; held ids are skipped; have is not read and no chain message is sent (§11.5 step 3).",
            &held,
            vec![
                (
                    statements_request(
                        vec![
                            HeldStatements::new(key3_author, [revocation_a.id]),
                            HeldStatements::new(author1, []),
                        ],
                        3,
                    ),
                    "round 1, limit 3: key3 holding revocation a, key1 holding nothing",
                ),
                (
                    statements_request(
                        vec![
                            HeldStatements::new(
                                key3_author,
                                [revocation_a.id, revocation_b.id, certificate_a.id],
                            ),
                            HeldStatements::new(author1, [revocation_c.id]),
                        ],
                        3,
                    ),
                    "round 2: what round 1 sent is now held",
                ),
                (
                    statements_request(vec![HeldStatements::new(author2, [])], 3),
                    "key2 has no statements here: an empty page",
                ),
            ],
        );

        let many: Vec<SignedMessage> = (1..=MAX_PAGE_STATEMENTS_PER_SIGNER + 1)
            .map(|n| self.revocation_by(&key3, &format!("Identity key copied, copy {n}.")))
            .collect();
        let held = Held {
            statements: many
                .iter()
                .map(|message| statement(message, &key3, true, false))
                .collect(),
            ..Held::default()
        };
        self.push_responder(
            "responder_statement_cap",
            "The responder keeps 17 revocations by key3: a page carries at most MAX_PAGE_STATEMENTS_PER_SIGNER (16) of one signer and sets more; the next round, listing the 16 as held, gets the 17th (§11.5 step 3).",
            &held,
            vec![
                (
                    statements_request(vec![HeldStatements::new(key3_author, [])], 4096),
                    "round 1: nothing held",
                ),
                (
                    statements_request(
                        vec![HeldStatements::new(
                            key3_author,
                            many[..MAX_PAGE_STATEMENTS_PER_SIGNER].iter().map(|message| message.id),
                        )],
                        4096,
                    ),
                    "round 2: the first 16 held",
                ),
            ],
        );
    }
}
