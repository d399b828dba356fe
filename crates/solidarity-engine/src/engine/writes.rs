//! Writes: queueing accepted messages, signing with the own chain's next seq/prev, and
//! what a completed write changes.

use super::*;

impl<P, S> Engine<P, S>
where
    P: Clone + Eq + Hash + Ord,
    S: StoreRead,
{
    pub(super) fn queue_write(
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
        // An import is made durable by the driver's flush before it answers.
        let durable = !matches!(origin, Origin::Remote | Origin::Import { .. });
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
    pub(super) fn count_pending_statement(&mut self, signer: AuthorKey, body: &Body, queued: bool) {
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

    pub(super) fn sign(
        &mut self,
        now_ms: u64,
        origin: Origin,
        body: Body,
        expires_at: Option<u64>,
        out: &mut Vec<Output<P>>,
    ) {
        let refuse = |out: &mut Vec<Output<P>>, code: RefusalCode, text: String| match origin {
            Origin::Local(token) | Origin::Republish(token) => {
                commands::refuse(out, token, code, text)
            }
            Origin::Scheduled | Origin::Remote | Origin::Import { .. } => {
                tracing::debug!(%text, "scheduled message not signed");
            }
        };
        let Some(kind) = body.kind() else {
            return refuse(
                out,
                RefusalCode::UnknownKind,
                "cannot sign a message of unknown kind".to_owned(),
            );
        };
        if self.revocation_fact(&self.me).is_some() {
            return refuse(
                out,
                RefusalCode::OwnKeyRevoked,
                "this node's key is revoked: nothing was signed. Set up a new node key and ask the members to add it".to_owned(),
            );
        }
        if self.compromised.contains_key(&self.me) {
            return refuse(
                out,
                RefusalCode::OwnKeyCompromised,
                "this node's key signed two conflicting messages: another party holds it. Nothing was signed. Members no longer trust this key; set up a new node key and ask them to re-add it".to_owned(),
            );
        }
        if let Some(why) = self.own_chain.paused() {
            return refuse(
                out,
                RefusalCode::SigningPaused,
                format!("refused: nothing was signed: {why}"),
            );
        }
        let statement = kinds::is_statement(kind);
        let (seq, prev) = match (statement, self.head) {
            (true, _) => (0, None),
            (false, Some((seq, id))) => {
                // The head can come from the network: never wrap.
                let Some(next) = seq.checked_add(1) else {
                    return refuse(
                        out,
                        RefusalCode::ChainExhausted,
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
                self.queue_write(*accepted, signed.bytes, origin, out);
            }
            Verdict::Ignore(reason) => refuse(
                out,
                RefusalCode::MessageIgnored,
                format!("refused: {reason}"),
            ),
            Verdict::Reject(reason) => refuse(
                out,
                RefusalCode::MessageRejected,
                format!("refused: {reason}"),
            ),
            Verdict::Fork(_) => refuse(
                out,
                RefusalCode::ConflictsWithStored,
                "refused: the store already holds another message of this node at this sequence number".to_owned(),
            ),
        }
    }

    pub(super) fn write_done(
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
                if let Origin::Import { token, line } = origin {
                    self.import_written(token, line, None, out);
                }
                if let Origin::Local(token) | Origin::Republish(token) = origin {
                    commands::refuse(
                        out,
                        token,
                        RefusalCode::StorageFailed,
                        format!(
                            "storage failed: the message was NOT published and may not be on disk (the daemon stops): {failed}"
                        ),
                    );
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
                self.own_chain_learned(now_ms, out);
            }
            self.stored(now_ms, &message, &payload, body, out);
        }
        let token = match origin {
            Origin::Remote => return,
            Origin::Import { token, line } => {
                return self.import_written(token, line, Some(outcome), out);
            }
            Origin::Local(token) => Some(token),
            Origin::Scheduled => None,
            Origin::Republish(token) => {
                if outcome == WriteOutcome::SeqConflict {
                    let text = "the store refused the message (SeqConflict); nothing was published";
                    return commands::refuse(out, token, RefusalCode::StoreRefused, text);
                }
                // Durable now (stored, or already stored and flushed with this write).
                out.push(Output::Publish {
                    envelope: message.envelope,
                });
                out.push(Output::Reply {
                    token,
                    reply: Reply::Signed { id: message.id },
                });
                return;
            }
        };
        if outcome != WriteOutcome::Stored {
            let text =
                format!("the store refused the message ({outcome:?}); nothing was published");
            match token {
                Some(token) => commands::refuse(out, token, RefusalCode::StoreRefused, text),
                None => tracing::warn!(%text, "scheduled message"),
            }
            return;
        }
        tracing::info!(id = %message.id.short(), kind = %message.kind, seq = message.seq, "stored; publishing");
        // Recorded before the message can leave, so a lost store never hides it.
        if self.own_chain.signed(message.seq, message.id) {
            out.push(Output::RecordOwnHead {
                seq: message.seq,
                id: Some(message.id),
            });
        }
        out.push(Output::Publish {
            envelope: message.envelope,
        });
        if let Some(token) = token {
            out.push(Output::Reply {
                token,
                reply: Reply::Signed { id: message.id },
            });
        }
    }

    /// A message is stored: update what is derived from it.
    pub(super) fn stored(
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
                Arc::make_mut(&mut self.statements)
                    .add_revocation(stored(id, author, payload, revocation));
            }
            Body::NodeCert(certificate) => Arc::make_mut(&mut self.statements)
                .add_certificate(stored(id, author, payload, certificate)),
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
            self.derived_for_stored = self.derived_for_stored.wrapping_add(1);
            self.recompute_trust(now_ms, out);
        }
    }

    /// Lifts the own-chain wait once the chain is back and none of this node's own
    /// messages is still being written, then publishes the canary it held back.
    pub(super) fn own_chain_learned(&mut self, now_ms: u64, out: &mut Vec<Output<P>>) {
        let me = self.me;
        if self.pending_chain.keys().any(|(author, _)| *author == me) {
            return;
        }
        let restoring = self.own_chain.is_restoring();
        let (resume, record) = self.own_chain.learned(self.head);
        if restoring && !self.own_chain.is_restoring() {
            out.push(Output::RecordRestoring { restoring: false });
        }
        if let Resume::AfterRecorded(seq, id) = resume {
            self.head = Some((seq, id));
        }
        if let Some((seq, id)) = record {
            out.push(Output::RecordOwnHead { seq, id: Some(id) });
        }
        if resume != Resume::No {
            tracing::info!(
                own_seq = self.head.map_or(0, |(seq, _)| seq),
                "own chain synced from a member; signing resumes"
            );
            if self.config.canary.interval_ms > 0 {
                self.scheduled_canary(now_ms, out);
            }
        }
    }
}
