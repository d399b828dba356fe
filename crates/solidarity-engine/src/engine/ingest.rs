//! Ingest: validation against the trust view and the writes in flight, the statement
//! keep/relay filter, the per-signer budget, and the fork rule.

use super::*;

impl<P, S> Engine<P, S>
where
    P: Clone + Eq + Hash + Ord,
    S: StoreRead,
{
    /// Whether a key is one this node has a reason to hear statements from.
    pub(super) fn knows(&self, key: &AuthorKey) -> bool {
        *key == self.me
            || self.members.contains_key(key)
            || self.compromised.contains_key(key)
            || self.admin_list.iter().any(|listed| listed.key == *key)
    }

    pub(super) fn keep_statement(&self, signer: &AuthorKey, body: &Body) -> Keep {
        let identities = self.identities();
        statements::judge(
            &statements::Here {
                statements: &self.statements,
                pending: &self.pending_statements,
                pending_revoked: &|by, key| self.pending_revoked.contains_key(&(*by, *key)),
                listed_identity: &|key| identities.contains(key),
                knows: &|key| self.knows(key),
                cap: self.config.statements_per_signer,
            },
            signer,
            body,
        )
    }

    /// Takes a received message from its signer's budget; the budget that holds it back,
    /// if one does.
    pub(super) fn within_budget(
        &mut self,
        now_ms: u64,
        author: AuthorKey,
        kind: &str,
        bytes: usize,
        out: &mut Vec<Output<P>>,
    ) -> Option<solidarity_control::OverBudget> {
        if author == self.me || !kinds::is_budgeted(kind) {
            return None;
        }
        let store = &self.store;
        let decision = self.budgets.take(author, bytes, now_ms, || {
            or_log(store.stored_bytes(&author), 0)
        });
        match decision {
            Decision::Within => None,
            Decision::Over { why, warn } => {
                if warn {
                    out.push(Output::Notice(Notice::QuotaHit { author, why }));
                }
                Some(why)
            }
        }
    }

    /// Validates received bytes and queues the write of an accepted message.
    pub(super) fn ingest(
        &mut self,
        now_ms: u64,
        data: &[u8],
        path: Path,
        checked: Option<SignatureChecked>,
        out: &mut Vec<Output<P>>,
    ) -> Acceptance {
        let verdict = self.validate(data, now_ms, checked);
        let keep = match &verdict {
            Verdict::Accept(accepted) if kinds::is_statement(&accepted.payload.kind) => {
                self.keep_statement(&accepted.signer, &accepted.body)
            }
            _ => Keep::Store,
        };
        // Only what this node would store is charged to its signer.
        let over_budget = match &verdict {
            Verdict::Accept(accepted) if keep == Keep::Store => self.within_budget(
                now_ms,
                accepted.signer,
                &accepted.payload.kind,
                data.len(),
                out,
            ),
            _ => None,
        };
        self.judged.push((
            path,
            match (&verdict, over_budget) {
                (_, Some(why)) => Judged::OverBudget(why),
                (Verdict::Accept(_), None) => Judged::Accept,
                (Verdict::Ignore(_), None) => Judged::Ignore,
                (Verdict::Reject(_), None) => Judged::Reject,
                (Verdict::Fork(_), None) => Judged::Fork,
            },
        ));
        match verdict {
            Verdict::Accept(_) if over_budget.is_some() => Acceptance::Ignore,
            Verdict::Accept(accepted) if keep != Keep::Store => {
                let revocation = matches!(accepted.body, Body::Revocation(_));
                if keep == Keep::Relay
                    && Arc::make_mut(&mut self.relay).offer(
                        accepted.signer,
                        accepted.id,
                        revocation,
                        data,
                    )
                {
                    return Acceptance::Accept;
                }
                tracing::debug!(?keep, "statement not kept");
                Acceptance::Ignore
            }
            Verdict::Accept(accepted) => {
                self.queue_write(*accepted, data.to_vec(), Origin::Remote, out);
                Acceptance::Accept
            }
            Verdict::Ignore(reason) => {
                tracing::debug!(%reason, "message ignored");
                Acceptance::Ignore
            }
            Verdict::Reject(reason) => {
                tracing::info!(%reason, "message rejected");
                Acceptance::Reject
            }
            Verdict::Fork(fork) => {
                self.handle_fork(now_ms, *fork, data, out);
                // Relay the evidence so every member learns of the fork.
                Acceptance::Accept
            }
        }
    }

    /// Two validly signed messages of one key conflict: stop trusting it at once and keep
    /// the evidence durably (the fork rule, SPEC §9.1).
    pub(super) fn handle_fork(
        &mut self,
        now_ms: u64,
        fork: solidarity_proto::Fork,
        envelope: &[u8],
        out: &mut Vec<Output<P>>,
    ) {
        let from_seq = fork_from_seq(&fork);
        let newly = !self.compromised.contains_key(&fork.signer);
        let state = self.compromised.entry(fork.signer).or_insert(Compromised {
            detected_at: now_ms,
            from_seq,
        });
        state.from_seq = state.from_seq.min(from_seq);
        if newly {
            let state = *state;
            out.push(Output::Notice(Notice::Fork {
                key: fork.signer,
                detected_at: state.detected_at,
                from_seq: state.from_seq,
            }));
            self.recompute_trust(now_ms, out);
        }
        out.push(Output::RecordFork {
            evidence: NewMessage {
                id: fork.id,
                author: fork.signer,
                seq: fork.payload.seq,
                kind: fork.payload.kind,
                created_at: fork.payload.created_at,
                expires_at: fork.payload.expires_at,
                refers_to: None,
                envelope: envelope.to_vec(),
            },
            detected_at: now_ms,
            from_seq,
        });
    }
}
