//! Import (`solidarity import`): envelopes of an export, each checked like a received
//! message and written; the command is answered with one outcome per envelope once every
//! write of it is applied (the driver flushes before it tells the admin).
//!
//! Unlike gossip, an import is the admin's own file: the rate budgets do not apply, but
//! the cap on what this node stores of each signer does. This node's own messages in it
//! never lift the own-chain wait by themselves (an export may be older than what the key
//! signed since): signing resumes only after a sync with a member.

use solidarity_control::ImportOutcome;
use solidarity_proto::IgnoreReason;
use solidarity_proto::payload::KIND_CANARY;

use super::*;
use crate::events::ImportEnvelope;

/// The outcomes of one import command, filled in as its writes complete.
pub(super) struct ImportBatch {
    outcomes: Vec<Option<ImportOutcome>>,
    waiting: usize,
}

impl<P, S> Engine<P, S>
where
    P: Clone + Eq + Hash + Ord,
    S: StoreRead,
{
    pub(super) fn import(
        &mut self,
        now_ms: u64,
        token: CommandToken,
        envelopes: Vec<ImportEnvelope>,
        out: &mut Vec<Output<P>>,
    ) {
        let mut batch = ImportBatch {
            outcomes: Vec::with_capacity(envelopes.len()),
            waiting: 0,
        };
        let mut forks: BTreeMap<u32, Vec<(usize, Vec<u8>)>> = BTreeMap::new();
        for (line, item) in envelopes.into_iter().enumerate() {
            let outcome = match item.fork_group {
                Some(group) => {
                    forks.entry(group).or_default().push((line, item.bytes));
                    // Set by `import_fork_evidence` below.
                    Some(ImportOutcome::Held)
                }
                None => self.import_one(now_ms, token, line, item, out),
            };
            if outcome.is_none() {
                batch.waiting += 1;
            }
            batch.outcomes.push(outcome);
        }
        // After the chain messages of the same command, which they may conflict with.
        for group in forks.into_values() {
            self.import_fork_evidence(now_ms, group, &mut batch.outcomes, out);
        }
        if batch.waiting == 0 {
            return answer_import(out, token, batch);
        }
        self.imports.insert(token, batch);
    }

    /// Judges one envelope: its outcome now, or none when its write was queued.
    fn import_one(
        &mut self,
        now_ms: u64,
        token: CommandToken,
        line: usize,
        item: ImportEnvelope,
        out: &mut Vec<Output<P>>,
    ) -> Option<ImportOutcome> {
        let ImportEnvelope { bytes, kept, .. } = item;
        let judged_at = match kept {
            false => now_ms,
            true => match kept_canary_clock(&bytes, now_ms) {
                Some(clock) => clock,
                None => {
                    return Some(ImportOutcome::Rejected {
                        reason: "marked as a kept canary but it is no canary with an expiry"
                            .to_owned(),
                    });
                }
            },
        };
        let accepted = match self.validate(&bytes, judged_at, None) {
            Verdict::Accept(accepted) => accepted,
            Verdict::Ignore(IgnoreReason::Duplicate) => return Some(ImportOutcome::Held),
            Verdict::Ignore(IgnoreReason::Expired) => return Some(ImportOutcome::Expired),
            Verdict::Ignore(reason) => {
                return Some(ImportOutcome::Ignored {
                    reason: reason.to_string(),
                    retry: reason == IgnoreReason::NotMember,
                });
            }
            Verdict::Reject(reason) => {
                return Some(ImportOutcome::Rejected {
                    reason: reason.to_string(),
                });
            }
            Verdict::Fork(fork) => {
                self.handle_fork(now_ms, *fork, &bytes, out);
                return Some(ImportOutcome::ForkEvidence);
            }
        };
        if kinds::is_statement(&accepted.payload.kind)
            && self.keep_statement(&accepted.signer, &accepted.body) != Keep::Store
        {
            return Some(ImportOutcome::Ignored {
                reason: "a statement this node does not keep (about a key it does not know, or over its signer's cap)".to_owned(),
                retry: true,
            });
        }
        if accepted.signer != self.me
            && kinds::is_budgeted(&accepted.payload.kind)
            && !self.take_stored(accepted.signer, bytes.len())
        {
            return Some(ImportOutcome::Ignored {
                reason: "over the bytes this node stores of its signer (member_stored_mib)"
                    .to_owned(),
                retry: false,
            });
        }
        if accepted.signer == self.me && self.own_chain.restoring() {
            out.push(Output::RecordRestoring { restoring: true });
        }
        self.queue_write(*accepted, bytes, Origin::Import { token, line }, out);
        None
    }

    /// A write of an import completed (`None`: it failed, the command is refused).
    pub(super) fn import_written(
        &mut self,
        token: CommandToken,
        line: usize,
        outcome: Option<WriteOutcome>,
        out: &mut Vec<Output<P>>,
    ) {
        let Some(outcome) = outcome else {
            if self.imports.remove(&token).is_some() {
                commands::refuse(
                    out,
                    token,
                    RefusalCode::StorageFailed,
                    "storage failed during the import (the daemon stops); import the file again once it runs",
                );
            }
            return;
        };
        let Some(batch) = self.imports.get_mut(&token) else {
            return;
        };
        if let Some(slot) = batch.outcomes.get_mut(line) {
            *slot = Some(match outcome {
                WriteOutcome::Stored => ImportOutcome::Stored,
                WriteOutcome::AlreadyStored => ImportOutcome::Held,
                WriteOutcome::SeqConflict => ImportOutcome::Rejected {
                    reason: "the store holds another message of its signer at this seq".to_owned(),
                },
            });
        }
        batch.waiting = batch.waiting.saturating_sub(1);
        if batch.waiting == 0
            && let Some(batch) = self.imports.remove(&token)
        {
            answer_import(out, token, batch);
        }
    }

    /// One key's fork evidence. Each envelope's signature and federation are checked here
    /// (the key is usually no longer trusted, so validation would stop at "not a member"),
    /// all must be of one key, and only a proven fork counts: two of them conflict, or one
    /// conflicts with this node's chain of that key. Then the key is marked compromised and
    /// the conflicting pair's envelopes not in the chain are kept as evidence; nothing is
    /// ever written into the chain. Evidence whose other half expired before the export
    /// proves nothing and is not stored.
    fn import_fork_evidence(
        &mut self,
        now_ms: u64,
        group: Vec<(usize, Vec<u8>)>,
        outcomes: &mut [Option<ImportOutcome>],
        out: &mut Vec<Output<P>>,
    ) {
        let mut set = |line: usize, outcome| {
            if let Some(slot) = outcomes.get_mut(line) {
                *slot = Some(outcome);
            }
        };
        let rejected = |reason: &str| ImportOutcome::Rejected {
            reason: reason.to_owned(),
        };
        let mut evidence: Vec<Evidence> = Vec::new();
        for (line, bytes) in group {
            let Some(item) = solidarity_proto::check_signature(&bytes)
                .and_then(|_| Evidence::decode(line, bytes))
            else {
                set(line, rejected("malformed, or a bad signature"));
                continue;
            };
            if item.payload.fed != self.config.federation {
                set(line, rejected("message of another federation"));
            } else if item.payload.seq == 0 {
                set(line, rejected("a statement is no fork evidence"));
            } else if evidence
                .first()
                .is_some_and(|first| first.signer != item.signer)
            {
                set(
                    line,
                    rejected("fork evidence of another key in the same line"),
                );
            } else {
                evidence.push(item);
            }
        }
        for item in &mut evidence {
            item.held =
                self.pending.contains_key(&item.id) || or_log(self.store.contains(&item.id), false);
        }
        let proof = evidence.iter().filter(|item| !item.held).find_map(|item| {
            let with_chain = self.chain_conflict(item);
            with_chain.or_else(|| evidence.iter().find_map(|other| item.conflict_with(other)))
        });
        let Some(fork) = proof else {
            for item in evidence {
                set(item.line, ImportOutcome::Ignored {
                    reason: "fork evidence without the message it conflicts with (it expired before the export): not stored, and its key is not marked compromised here".to_owned(),
                    retry: false,
                });
            }
            return;
        };
        let (from_seq, new, conflicting) = (fork_from_seq(&fork), fork.id, fork.conflicting);
        let new_bytes = evidence
            .iter()
            .find(|item| item.id == new)
            .map(|item| item.bytes.clone())
            .unwrap_or_default();
        self.handle_fork(now_ms, fork, &new_bytes, out);
        for item in evidence {
            let line = item.line;
            let outcome = if item.held {
                ImportOutcome::Held
            } else if item.id == new {
                ImportOutcome::ForkEvidence
            } else if item.id == conflicting {
                // The other half, not in the chain here: kept as evidence too.
                out.push(Output::RecordFork {
                    evidence: item.new_message(),
                    detected_at: now_ms,
                    from_seq,
                });
                ImportOutcome::ForkEvidence
            } else {
                ImportOutcome::Ignored {
                    reason: "not needed to prove the fork (one proof is kept per key)".to_owned(),
                    retry: false,
                }
            };
            set(line, outcome);
        }
    }

    /// The fork `item` proves against this node's chain of its key (the held or pending
    /// message at its seq, or at the seq before for a diverging `prev`).
    fn chain_conflict(&self, item: &Evidence) -> Option<solidarity_proto::Fork> {
        let chain_id = |seq: u64| {
            self.pending_chain
                .get(&(item.signer, seq))
                .copied()
                .or_else(|| or_log(self.store.id_at(&item.signer, seq), None))
        };
        let seq = item.payload.seq;
        let (conflicting, point) = match chain_id(seq) {
            Some(held) if held != item.id => (held, solidarity_proto::ForkPoint::SameSeq),
            _ => {
                let before = chain_id(seq.checked_sub(1).filter(|before| *before > 0)?)?;
                if item.payload.prev == Some(before) {
                    return None;
                }
                (before, solidarity_proto::ForkPoint::DivergentPrev)
            }
        };
        Some(item.fork(conflicting, point))
    }

    fn take_stored(&mut self, author: AuthorKey, bytes: usize) -> bool {
        let store = &self.store;
        self.budgets
            .take_stored(author, bytes, || or_log(store.stored_bytes(&author), 0))
    }
}

/// One envelope of a key's fork evidence, decoded (its signature checked).
struct Evidence {
    line: usize,
    bytes: Vec<u8>,
    id: MessageId,
    signer: AuthorKey,
    payload: Payload,
    /// Held in the chain here already.
    held: bool,
}

impl Evidence {
    fn decode(line: usize, bytes: Vec<u8>) -> Option<Self> {
        let envelope = Envelope::decode(&bytes).ok()?;
        let payload = Payload::decode(&envelope.payload).ok()?;
        Some(Self {
            line,
            id: envelope.id(),
            signer: envelope.signer,
            payload,
            bytes,
            held: false,
        })
    }

    /// The fork `self` and `other` (of the same key) prove, `self` as the later one.
    fn conflict_with(&self, other: &Self) -> Option<solidarity_proto::Fork> {
        let (seq, other_seq) = (self.payload.seq, other.payload.seq);
        if self.id == other.id || self.signer != other.signer {
            return None;
        }
        if seq == other_seq {
            return Some(self.fork(other.id, solidarity_proto::ForkPoint::SameSeq));
        }
        (seq == other_seq.checked_add(1)? && self.payload.prev != Some(other.id))
            .then(|| self.fork(other.id, solidarity_proto::ForkPoint::DivergentPrev))
    }

    fn fork(
        &self,
        conflicting: MessageId,
        point: solidarity_proto::ForkPoint,
    ) -> solidarity_proto::Fork {
        solidarity_proto::Fork {
            id: self.id,
            signer: self.signer,
            payload: self.payload.clone(),
            conflicting,
            point,
        }
    }

    fn new_message(self) -> NewMessage {
        NewMessage {
            id: self.id,
            author: self.signer,
            seq: self.payload.seq,
            kind: self.payload.kind,
            created_at: self.payload.created_at,
            expires_at: self.payload.expires_at,
            refers_to: None,
            envelope: self.bytes,
        }
    }
}

/// The clock a kept canary is checked at: just before it expired (it was valid then and
/// is kept past its expiry); none when it is no canary with an expiry.
fn kept_canary_clock(bytes: &[u8], now_ms: u64) -> Option<u64> {
    let envelope = Envelope::decode(bytes).ok()?;
    let payload = Payload::decode(&envelope.payload).ok()?;
    let expires_at = payload.expires_at.filter(|_| payload.kind == KIND_CANARY)?;
    Some(now_ms.min(expires_at.saturating_sub(1)))
}

fn answer_import<P>(out: &mut Vec<Output<P>>, token: CommandToken, batch: ImportBatch) {
    let outcomes = batch
        .outcomes
        .into_iter()
        .map(|outcome| {
            // Every slot is filled once nothing waits.
            outcome.unwrap_or(ImportOutcome::Rejected {
                reason: "no outcome was recorded".to_owned(),
            })
        })
        .collect();
    out.push(Output::Reply {
        token,
        reply: Reply::Imported(outcomes),
    });
}
