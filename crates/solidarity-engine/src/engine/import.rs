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
        for (line, item) in envelopes.into_iter().enumerate() {
            let outcome = self.import_one(now_ms, token, line, item, out);
            if outcome.is_none() {
                batch.waiting += 1;
            }
            batch.outcomes.push(outcome);
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
        let ImportEnvelope { bytes, kept } = item;
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

    fn take_stored(&mut self, author: AuthorKey, bytes: usize) -> bool {
        let store = &self.store;
        self.budgets
            .take_stored(author, bytes, || or_log(store.stored_bytes(&author), 0))
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
