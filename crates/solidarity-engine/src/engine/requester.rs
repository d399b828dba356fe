//! The sync requester (SPEC §11.4: statement phase, then chains) and the call into the
//! responder.

use super::*;

impl<P, S> Engine<P, S>
where
    P: Clone + Eq + Hash + Ord,
    S: StoreRead,
{
    /// How far we hold the author's chain, counting writes in flight.
    pub(super) fn watermark(&self, author: &AuthorKey) -> Watermark {
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
    pub(super) fn sync_authors(&self) -> BTreeSet<AuthorKey> {
        self.members
            .keys()
            .copied()
            .chain([self.me])
            .chain(self.identities())
            .collect()
    }

    pub(super) fn start_sync(
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

    pub(super) fn end_sync(&mut self, peer: &P) {
        self.syncing.remove(peer);
        self.statements_seen.remove(peer);
    }

    pub(super) fn handle_sync_page(
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
            self.own_chain_learned(now_ms, out);
        }
    }

    /// Ingests an envelope of a statement page; one that is not a statement is refused
    /// (the responder broke the phase), and each is remembered for the session.
    pub(super) fn ingest_synced_statement(
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

    /// What a sync answer reads besides the store, owned so a driver can compute the
    /// answer off its task.
    pub fn answer_state(&self) -> AnswerState {
        AnswerState {
            federation: self.config.federation,
            statements: Arc::clone(&self.statements),
            relay: Arc::clone(&self.relay),
            compromised: self.compromised.keys().copied().collect(),
        }
    }
}

/// The engine's state a sync answer reads (SPEC §11.5), as of when it was taken: the
/// statements and the relay are shared (copied on write while an answer holds them), the
/// compromised keys copied (one per fork, bounded by the members).
#[derive(Clone)]
pub struct AnswerState {
    federation: FederationId,
    statements: Arc<Statements>,
    relay: Arc<Relay>,
    compromised: BTreeSet<AuthorKey>,
}

impl AnswerState {
    /// One page of what the requester of `data` misses, read from `store` (blocking).
    pub fn answer(&self, data: &[u8], store: &dyn StoreRead) -> SyncResponse {
        sync_answer::answer(
            data,
            &sync_answer::Responder {
                federation: &self.federation,
                statements: &self.statements,
                relay: &self.relay,
                compromised: &|key| self.compromised.contains(key),
                store,
            },
        )
    }
}
