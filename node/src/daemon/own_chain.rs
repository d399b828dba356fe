//! A node never forks itself (SPEC §7, §9.1). The highest seq it has signed is kept in
//! `DATA/own-chain`, outside the store, and written (durably) before each message it signs
//! leaves the node. At start, a node whose store holds less of its own chain than that
//! (the store was lost, or restored from an old copy), or that has no such record and
//! nothing of its own in its store, signs nothing (its canary included) until it has
//! synced its own chain back from a member, or its admin starts it with
//! `solidarity node --fresh-chain`. A brand-new node (`solidarity init` writes 0) is not
//! held back.

use std::io::Write;
use std::path::{Path, PathBuf};

/// File in the data dir holding the highest seq this node has signed, in decimal.
pub const OWN_CHAIN_FILE: &str = "own-chain";

/// Why the node does not sign yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    /// The store holds its own chain up to `held`; it had signed up to `signed`.
    Behind { held: u64, signed: u64 },
    /// Nothing records how far it had signed and its store holds nothing of its own.
    Unknown,
}

/// The own-chain record and whether signing waits for a sync.
#[derive(Debug)]
pub struct OwnChain {
    path: PathBuf,
    signed: u64,
    wait: Option<Wait>,
    /// A sync exchange with a member has ended since start.
    synced: bool,
}

/// Writes the record of a brand-new node (`solidarity init`).
pub fn create(data_dir: &Path) -> std::io::Result<()> {
    write_durably(&data_dir.join(OWN_CHAIN_FILE), 0)
}

fn write_durably(path: &Path, seq: u64) -> std::io::Result<()> {
    replace_durably(path, format!("{seq}\n").as_bytes())
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
    /// own seq, 0 for none). `fresh_chain`: the admin said to sign anyway.
    pub fn open(data_dir: &Path, held: u64, fresh_chain: bool) -> anyhow::Result<Self> {
        let path = data_dir.join(OWN_CHAIN_FILE);
        let recorded = match std::fs::read_to_string(&path) {
            Ok(text) => Some(text.trim().parse::<u64>().map_err(|_| {
                anyhow::anyhow!(
                    "{} does not hold a number; restore it or start with --fresh-chain",
                    path.display()
                )
            })?),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => return Err(error.into()),
        };
        let wait = match recorded {
            _ if fresh_chain => None,
            Some(signed) if signed > held => Some(Wait::Behind { held, signed }),
            Some(_) => None,
            None if held == 0 => Some(Wait::Unknown),
            None => None,
        };
        // A fresh chain starts again from what the store holds.
        let signed = if fresh_chain {
            held
        } else {
            recorded.unwrap_or(0).max(held)
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

    /// The next seq to sign is about to leave: records it durably first.
    pub fn record_signed(&mut self, seq: u64) -> std::io::Result<()> {
        if seq > self.signed {
            write_durably(&self.path, seq)?;
            self.signed = seq;
        }
        Ok(())
    }

    /// A sync exchange with a member has ended.
    pub fn note_synced(&mut self) {
        self.synced = true;
    }

    /// The store's own head is `held`, with none of its own messages still being written:
    /// lifts the wait once the chain is back. Returns whether signing resumes now.
    pub fn learned(&mut self, held: u64) -> bool {
        let caught_up = match self.wait {
            None => return false,
            Some(Wait::Behind { signed, .. }) => held >= signed,
            Some(Wait::Unknown) => self.synced,
        };
        if caught_up {
            self.wait = None;
            tracing::info!(
                own_seq = held,
                "own chain synced from a member; signing resumes"
            );
            if held > self.signed {
                self.signed = held;
                if let Err(error) = write_durably(&self.path, held) {
                    tracing::warn!(%error, "cannot record this node's own chain head");
                }
            }
        }
        caught_up
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_node_signs_a_lost_store_waits_and_fresh_chain_overrides() {
        let dir = tempfile::tempdir().expect("tempdir");
        create(dir.path()).expect("create");
        let mut chain = OwnChain::open(dir.path(), 0, false).expect("open");
        assert_eq!(chain.paused(), None, "a brand-new node is not held back");
        chain.record_signed(5).expect("record");

        // The store is lost: 5 signed, 0 held.
        let mut chain = OwnChain::open(dir.path(), 0, false).expect("open");
        let why = chain.paused().expect("paused");
        assert!(why.contains("up to seq 5"), "{why}");
        chain.note_synced();
        assert!(!chain.learned(4));
        assert!(chain.paused().is_some(), "seq 5 is not back yet");
        assert!(chain.learned(5));
        assert_eq!(chain.paused(), None);

        chain.record_signed(7).expect("record");
        assert_eq!(
            OwnChain::open(dir.path(), 0, true).expect("open").paused(),
            None,
            "--fresh-chain"
        );
        // Its new chain is what counts from then on.
        let mut chain = OwnChain::open(dir.path(), 1, false).expect("open");
        assert_eq!(chain.paused(), None);
        chain.record_signed(2).expect("record");

        // No record and an empty store: wait for one sync.
        std::fs::remove_file(dir.path().join(OWN_CHAIN_FILE)).expect("remove");
        let mut chain = OwnChain::open(dir.path(), 0, false).expect("open");
        assert!(chain.paused().is_some());
        assert!(!chain.learned(0), "no sync yet");
        chain.note_synced();
        assert!(chain.learned(0));
        assert_eq!(chain.paused(), None);
        // No record but its own messages stored (a data dir of an earlier version).
        std::fs::remove_file(dir.path().join(OWN_CHAIN_FILE)).ok();
        let chain = OwnChain::open(dir.path(), 9, false).expect("open");
        assert_eq!(chain.paused(), None);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(OWN_CHAIN_FILE)).expect("record"),
            "9\n"
        );
    }
}
