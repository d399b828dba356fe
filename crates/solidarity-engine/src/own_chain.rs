//! The own-chain wait (SPEC §7, §9.1): a node never forks itself. The driver keeps the
//! record of how far this node signed (`DATA/own-chain`, written durably before each own
//! message leaves, on [`crate::Output::RecordOwnHead`]); the engine decides from it and
//! the store's own head whether signing waits for a sync of its own chain.
//!
//! - Recorded head above the store's own head: the store was lost or restored; wait.
//! - No record and nothing of its own stored: wait (a brand-new node records 0).
//! - The wait lifts once the store holds the recorded head, or once a member answered a
//!   whole sync (then signing continues after the recorded head, which members hold).

use solidarity_proto::MessageId;

/// Why the node does not sign yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    /// The store holds its own chain up to `held`; it had signed up to `signed`.
    Behind { held: u64, signed: u64 },
    /// Nothing records how far it had signed and its store holds nothing of its own.
    Unknown,
    /// Its own chain came back from an export, which may be older than what the key
    /// signed since.
    Restored,
}

/// What [`OwnChain::learned`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// Still waiting.
    No,
    /// Signing resumes after the store's own head.
    AfterStored,
    /// A member answered but the store is still behind (the messages expired on the
    /// members, which keep only their ids): signing resumes after the recorded head.
    AfterRecorded(u64, MessageId),
}

/// How far this node signed and whether signing waits.
#[derive(Clone, Debug)]
pub struct OwnChain {
    signed: (u64, Option<MessageId>),
    wait: Option<Wait>,
    /// A sync exchange with a member has ended since start.
    synced: bool,
    /// Own messages came from an import while signing waited: only a sync lifts the wait,
    /// since the export may be older than what this key signed since.
    restored: bool,
}

impl OwnChain {
    /// `recorded`: the record's (seq, id), none when there is no record; `held`: the
    /// store's own head; `fresh_chain`: the admin said to sign anyway; `restoring`: own
    /// messages were imported while signing waited, and no sync has lifted the wait since.
    pub fn new(
        recorded: Option<(u64, Option<MessageId>)>,
        held: Option<(u64, MessageId)>,
        fresh_chain: bool,
        restoring: bool,
    ) -> Self {
        let held_head = held.map_or((0, None), |(seq, id)| (seq, Some(id)));
        let wait = match recorded {
            _ if fresh_chain => None,
            Some((signed, _)) if signed > held_head.0 => Some(Wait::Behind {
                held: held_head.0,
                signed,
            }),
            None if held_head.0 == 0 => Some(Wait::Unknown),
            _ if restoring => Some(Wait::Restored),
            Some(_) | None => None,
        };
        // A fresh chain starts again from what the store holds.
        let signed = match recorded {
            Some(recorded) if !fresh_chain && recorded.0 > held_head.0 => recorded,
            _ => held_head,
        };
        Self {
            signed,
            restored: restoring && wait.is_some(),
            wait,
            synced: false,
        }
    }

    /// The head to record when it differs from `recorded` (at start, without a wait).
    pub fn to_record(
        &self,
        recorded: Option<(u64, Option<MessageId>)>,
    ) -> Option<(u64, Option<MessageId>)> {
        (recorded != Some(self.signed) && self.wait.is_none()).then_some(self.signed)
    }

    /// Why signing waits, for the CLI and `solidarity status`; none once it may sign.
    pub fn paused(&self) -> Option<String> {
        let wait = match self.wait? {
            _ if self.restored => Wait::Restored,
            wait => wait,
        };
        let why = match wait {
            Wait::Behind { held, signed } => format!(
                "this node signed its chain up to seq {signed} but its store holds it only up to seq {held}"
            ),
            Wait::Unknown => "this node's store holds none of its own messages and nothing records how far it had signed".to_owned(),
            Wait::Restored => "this node's own chain was imported from an export, which may be older than what its key signed since".to_owned(),
        };
        Some(format!(
            "{why}; it signs nothing (canary included) until it has synced its own chain from a member, so as not to fork its key. Connect a member, or, if no member ever received this key's messages, start it with `solidarity node --fresh-chain`"
        ))
    }

    /// The message `id` at `seq` is about to leave; true when the record must be
    /// rewritten first.
    pub fn signed(&mut self, seq: u64, id: MessageId) -> bool {
        if seq > self.signed.0 {
            self.signed = (seq, Some(id));
            return true;
        }
        false
    }

    /// Own messages are being imported: while signing waits, the store's own head no
    /// longer lifts the wait by itself (only a sync does). True when this starts now (the
    /// driver records it, so a restart before the sync still waits).
    pub fn restoring(&mut self) -> bool {
        let starts = self.wait.is_some() && !self.restored;
        self.restored |= starts;
        starts
    }

    /// Whether a restore still holds signing back (the driver's record of it).
    pub fn is_restoring(&self) -> bool {
        self.restored
    }

    /// A sync exchange with a member has ended.
    pub fn note_synced(&mut self) {
        self.synced = true;
    }

    /// The store's own head is `held`, with none of its own messages still being written:
    /// lifts the wait once the chain is back, or once a member answered and the record
    /// names the id signing must continue from. Returns the decision and the head to
    /// record when it moved.
    pub fn learned(
        &mut self,
        held: Option<(u64, MessageId)>,
    ) -> (Resume, Option<(u64, MessageId)>) {
        let held_seq = held.map_or(0, |(seq, _)| seq);
        let resume = match self.wait {
            None => return (Resume::No, None),
            Some(_) if self.restored && !self.synced => Resume::No,
            Some(Wait::Behind { signed, .. }) if held_seq >= signed => Resume::AfterStored,
            Some(Wait::Behind { signed, .. }) => match self.signed {
                (_, Some(id)) if self.synced => Resume::AfterRecorded(signed, id),
                _ => Resume::No,
            },
            Some(Wait::Unknown | Wait::Restored) if self.synced => Resume::AfterStored,
            Some(Wait::Unknown | Wait::Restored) => Resume::No,
        };
        if resume == Resume::No {
            return (resume, None);
        }
        self.wait = None;
        self.restored = false;
        let mut record = None;
        if let Some((seq, id)) = held
            && seq > self.signed.0
        {
            self.signed = (seq, Some(id));
            record = Some((seq, id));
        }
        (resume, record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> MessageId {
        MessageId([n; 32])
    }

    #[test]
    fn a_store_behind_the_record_waits_until_the_chain_is_back() {
        let mut chain = OwnChain::new(Some((5, Some(id(5)))), Some((2, id(2))), false, false);
        assert!(chain.paused().is_some());
        assert_eq!(chain.learned(Some((4, id(4)))).0, Resume::No);
        assert_eq!(chain.learned(Some((5, id(5)))), (Resume::AfterStored, None));
        assert!(chain.paused().is_none());
    }

    #[test]
    fn a_member_that_answered_everything_lifts_the_wait_after_the_recorded_head() {
        let mut chain = OwnChain::new(Some((5, Some(id(5)))), None, false, false);
        assert_eq!(chain.learned(None).0, Resume::No);
        chain.note_synced();
        assert_eq!(chain.learned(None).0, Resume::AfterRecorded(5, id(5)));
    }

    #[test]
    fn no_record_and_an_empty_store_waits_for_a_sync_and_fresh_chain_does_not() {
        let mut chain = OwnChain::new(None, None, false, false);
        assert!(chain.paused().is_some());
        chain.note_synced();
        assert_eq!(chain.learned(None).0, Resume::AfterStored);
        let fresh = OwnChain::new(None, None, true, false);
        assert!(fresh.paused().is_none());
        assert_eq!(fresh.to_record(None), Some((0, None)));
        let new_node = OwnChain::new(Some((0, None)), None, false, false);
        assert!(new_node.paused().is_none());
        assert_eq!(new_node.to_record(Some((0, None))), None);
    }

    #[test]
    fn an_imported_own_chain_lifts_the_wait_only_after_a_sync() {
        let mut chain = OwnChain::new(Some((3, Some(id(3)))), None, false, false);
        assert!(chain.restoring(), "recorded by the driver");
        assert!(!chain.restoring(), "once");
        assert_eq!(
            chain.learned(Some((3, id(3)))).0,
            Resume::No,
            "the export holds the recorded head, but the key may have signed more since"
        );
        chain.note_synced();
        assert_eq!(
            chain.learned(Some((5, id(5)))),
            (Resume::AfterStored, Some((5, id(5))))
        );
        assert!(!chain.is_restoring(), "the driver removes its record");
        let mut running = OwnChain::new(Some((3, Some(id(3)))), Some((3, id(3))), false, false);
        assert!(
            !running.restoring(),
            "nothing to record: signing does not wait"
        );
        assert!(
            running.paused().is_none(),
            "a node that signs keeps signing"
        );
        let restarted = OwnChain::new(Some((3, Some(id(3)))), Some((3, id(3))), false, true);
        assert!(
            restarted
                .paused()
                .expect("paused")
                .contains("imported from an export"),
            "a restart between the import and the sync still waits"
        );
        assert!(restarted.is_restoring());
    }

    #[test]
    fn signing_moves_the_record_forward_only() {
        let mut chain = OwnChain::new(Some((0, None)), None, false, false);
        assert!(chain.signed(1, id(1)));
        assert!(!chain.signed(1, id(1)));
        assert!(chain.signed(2, id(2)));
    }
}
