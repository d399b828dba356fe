//! A node never forks itself (SPEC §7, §9.1). The highest seq it has signed, and the id
//! of that message, are kept in `DATA/own-chain`, outside the store, and written
//! (durably) before each message it signs leaves the node. At start, a node whose store
//! holds less of its own chain than that (the store was lost, or restored from an old
//! copy), or that has no such record and nothing of its own in its store, signs nothing
//! (its canary included) until it has synced its own chain back from a member, or its
//! admin starts it with `solidarity node --fresh-chain`. When a member has answered but
//! the chain is not back (its last messages expired, and members keep only their ids),
//! the node continues after the recorded head, which is what the members hold. A
//! brand-new node (`solidarity init` writes 0) is not held back.

use std::io::Write;
use std::path::{Path, PathBuf};

use solidarity_proto::MessageId;

/// File in the data dir holding the highest seq this node has signed and the id of that
/// message, in decimal and hex (`init` writes `0`).
pub const OWN_CHAIN_FILE: &str = "own-chain";

/// A head of this node's chain: seq and, once it has signed, the id there.
type Head = (u64, Option<MessageId>);

/// Why the node does not sign yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    /// The store holds its own chain up to `held`; it had signed up to `signed`.
    Behind { held: u64, signed: u64 },
    /// Nothing records how far it had signed and its store holds nothing of its own.
    Unknown,
}

/// What [`OwnChain::learned`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// Still waiting.
    No,
    /// Signing resumes after the store's own head.
    AfterStored,
    /// A member answered but the store is still behind (the messages expired on the
    /// members, which keep only their ids): signing resumes after the recorded head,
    /// which continues the chain the members hold.
    AfterRecorded(u64, MessageId),
}

/// The own-chain record and whether signing waits for a sync.
#[derive(Debug)]
pub struct OwnChain {
    path: PathBuf,
    signed: Head,
    wait: Option<Wait>,
    /// A sync exchange with a member has ended since start.
    synced: bool,
}

/// Writes the record of a brand-new node (`solidarity init`).
pub fn create(data_dir: &Path) -> std::io::Result<()> {
    write_durably(&data_dir.join(OWN_CHAIN_FILE), (0, None))
}

fn write_durably(path: &Path, (seq, id): Head) -> std::io::Result<()> {
    let text = match id {
        Some(id) => format!("{seq} {}\n", id.to_hex()),
        None => format!("{seq}\n"),
    };
    replace_durably(path, text.as_bytes())
}

fn parse(text: &str) -> Option<Head> {
    let mut words = text.split_whitespace();
    let seq = words.next()?.parse().ok()?;
    let id = match words.next() {
        Some(hex) => Some(hex.parse().ok()?),
        None => None,
    };
    words.next().is_none().then_some((seq, id))
}

/// Replaces the file at `path` with `contents`, so that a crash leaves the old file or
/// the new one, never a part.
pub fn replace_durably(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let partial = path.with_extension("partial");
    let mut file = std::fs::File::create(&partial)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&partial, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl OwnChain {
    /// Reads the record and compares it with the store's own head (`held`: its highest
    /// own seq and the id there, none for none). `fresh_chain`: the admin said to sign
    /// anyway.
    pub fn open(
        data_dir: &Path,
        held: Option<(u64, MessageId)>,
        fresh_chain: bool,
    ) -> anyhow::Result<Self> {
        let path = data_dir.join(OWN_CHAIN_FILE);
        let recorded = match std::fs::read_to_string(&path) {
            Ok(text) => Some(parse(&text).ok_or_else(|| {
                anyhow::anyhow!(
                    "{} does not hold a seq (and message id); restore it or start with --fresh-chain",
                    path.display()
                )
            })?),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => return Err(error.into()),
        };
        let held_head: Head = held.map_or((0, None), |(seq, id)| (seq, Some(id)));
        let wait = match recorded {
            _ if fresh_chain => None,
            Some((signed, _)) if signed > held_head.0 => Some(Wait::Behind {
                held: held_head.0,
                signed,
            }),
            Some(_) => None,
            None if held_head.0 == 0 => Some(Wait::Unknown),
            None => None,
        };
        // A fresh chain starts again from what the store holds.
        let signed = match recorded {
            Some(recorded) if !fresh_chain && recorded.0 > held_head.0 => recorded,
            _ => held_head,
        };
        if recorded != Some(signed) && wait.is_none() {
            write_durably(&path, signed)?;
        }
        let own_chain = Self {
            path,
            signed,
            wait,
            synced: false,
        };
        if let Some(why) = own_chain.paused() {
            tracing::warn!("{why}");
        }
        Ok(own_chain)
    }

    /// Why signing waits, for the CLI and `solidarity status`; none once it may sign.
    pub fn paused(&self) -> Option<String> {
        let why = match self.wait? {
            Wait::Behind { held, signed } => format!(
                "this node signed its chain up to seq {signed} but its store holds it only up to seq {held}"
            ),
            Wait::Unknown => "this node's store holds none of its own messages and nothing records how far it had signed".to_owned(),
        };
        Some(format!(
            "{why}; it signs nothing (canary included) until it has synced its own chain from a member, so as not to fork its key. Connect a member, or, if no member ever received this key's messages, start it with `solidarity node --fresh-chain`"
        ))
    }

    /// The message `id` at `seq` is about to leave: records it durably first.
    pub fn record_signed(&mut self, seq: u64, id: MessageId) -> std::io::Result<()> {
        if seq > self.signed.0 {
            write_durably(&self.path, (seq, Some(id)))?;
            self.signed = (seq, Some(id));
        }
        Ok(())
    }

    /// A sync exchange with a member has ended.
    pub fn note_synced(&mut self) {
        self.synced = true;
    }

    /// The store's own head is `held`, with none of its own messages still being written:
    /// lifts the wait once the chain is back, or once a member answered and the record
    /// names the id signing must continue from.
    pub fn learned(&mut self, held: Option<(u64, MessageId)>) -> Resume {
        let held_seq = held.map_or(0, |(seq, _)| seq);
        let resume = match self.wait {
            None => return Resume::No,
            Some(Wait::Behind { signed, .. }) if held_seq >= signed => Resume::AfterStored,
            Some(Wait::Behind { signed, .. }) => match self.signed {
                (_, Some(id)) if self.synced => Resume::AfterRecorded(signed, id),
                _ => Resume::No,
            },
            Some(Wait::Unknown) if self.synced => Resume::AfterStored,
            Some(Wait::Unknown) => Resume::No,
        };
        if resume == Resume::No {
            return resume;
        }
        self.wait = None;
        tracing::info!(
            own_seq = self.signed.0.max(held_seq),
            "own chain synced from a member; signing resumes"
        );
        if let Some((seq, id)) = held
            && seq > self.signed.0
        {
            self.signed = (seq, Some(id));
            if let Err(error) = write_durably(&self.path, self.signed) {
                tracing::warn!(%error, "cannot record this node's own chain head");
            }
        }
        resume
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_node_signs_a_lost_store_waits_and_fresh_chain_overrides() {
        let id = |byte: u8| MessageId([byte; 32]);
        let dir = tempfile::tempdir().expect("tempdir");
        create(dir.path()).expect("create");
        let mut chain = OwnChain::open(dir.path(), None, false).expect("open");
        assert_eq!(chain.paused(), None, "a brand-new node is not held back");
        chain.record_signed(5, id(5)).expect("record");

        // The store is lost: 5 signed, 0 held.
        let mut chain = OwnChain::open(dir.path(), None, false).expect("open");
        let why = chain.paused().expect("paused");
        assert!(why.contains("up to seq 5"), "{why}");
        assert_eq!(chain.learned(Some((4, id(4)))), Resume::No, "no sync yet");
        assert!(chain.paused().is_some(), "seq 5 is not back yet");
        assert_eq!(chain.learned(Some((5, id(5)))), Resume::AfterStored);
        assert_eq!(chain.paused(), None);

        // Lost again, and a member answered without seq 5 (it expired there): signing
        // continues after the recorded head.
        let mut chain = OwnChain::open(dir.path(), Some((2, id(2))), false).expect("open");
        chain.note_synced();
        assert_eq!(
            chain.learned(Some((3, id(3)))),
            Resume::AfterRecorded(5, id(5))
        );

        chain.record_signed(7, id(7)).expect("record");
        assert_eq!(
            OwnChain::open(dir.path(), None, true)
                .expect("open")
                .paused(),
            None,
            "--fresh-chain"
        );
        // Its new chain is what counts from then on.
        let mut chain = OwnChain::open(dir.path(), Some((1, id(1))), false).expect("open");
        assert_eq!(chain.paused(), None);
        chain.record_signed(2, id(2)).expect("record");

        // No record and an empty store: wait for one sync.
        std::fs::remove_file(dir.path().join(OWN_CHAIN_FILE)).expect("remove");
        let mut chain = OwnChain::open(dir.path(), None, false).expect("open");
        assert!(chain.paused().is_some());
        assert_eq!(chain.learned(None), Resume::No, "no sync yet");
        chain.note_synced();
        assert_eq!(chain.learned(None), Resume::AfterStored);
        assert_eq!(chain.paused(), None);
        // No record but its own messages stored (a data dir of an earlier version).
        std::fs::remove_file(dir.path().join(OWN_CHAIN_FILE)).ok();
        let chain = OwnChain::open(dir.path(), Some((9, id(9))), false).expect("open");
        assert_eq!(chain.paused(), None);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(OWN_CHAIN_FILE)).expect("record"),
            format!("9 {}\n", id(9).to_hex())
        );
        // The record of `init`, and a damaged one.
        assert_eq!(parse("0\n"), Some((0, None)));
        assert_eq!(parse("3 zz"), None);
        assert_eq!(parse("3 1 2"), None);
    }
}
