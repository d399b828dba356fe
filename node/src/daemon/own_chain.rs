//! The own-chain record (SPEC §7, §9.1): the highest seq this node has signed, and the id
//! of that message, kept in `DATA/own-chain`, outside the store, and written (durably)
//! before each message it signs leaves the node. Whether signing waits after a lost or
//! restored store is the engine's decision (`solidarity_engine::own_chain`); this module
//! reads and writes the file around it. A brand-new node (`solidarity init` writes 0) is
//! not held back.

use std::io::Write;
use std::path::Path;

use solidarity_proto::MessageId;

/// File in the data dir holding the highest seq this node has signed and the id of that
/// message, in decimal and hex (`init` writes `0`).
pub const OWN_CHAIN_FILE: &str = "own-chain";

/// File in the data dir that exists while this node's own chain came from an import
/// (`solidarity import`) and no sync has confirmed it: signing waits, also after a
/// restart, since the export may be older than what the key signed since.
pub const RESTORING_FILE: &str = "own-chain.restoring";

/// A head of this node's chain: seq and, once it has signed, the id there.
type Head = (u64, Option<MessageId>);

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

/// The record in `data_dir`: none when there is no file (a data dir of an earlier
/// version); a file that does not parse is an error (restore it or `--fresh-chain`).
pub fn read(data_dir: &Path) -> anyhow::Result<Option<Head>> {
    let path = data_dir.join(OWN_CHAIN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(parse(&text).ok_or_else(|| {
            anyhow::anyhow!(
                "{} does not hold a seq (and message id); restore it or start with --fresh-chain",
                path.display()
            )
        })?)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// Whether the own chain waits for a sync after an import; `--fresh-chain` removes the
/// record (the admin chose to sign anyway).
pub fn restoring(data_dir: &Path, fresh_chain: bool) -> std::io::Result<bool> {
    if fresh_chain {
        return record_restoring(data_dir, false).map(|()| false);
    }
    data_dir.join(RESTORING_FILE).try_exists()
}

/// Creates or removes the restore record durably (the engine's `RecordRestoring`).
pub fn record_restoring(data_dir: &Path, restoring: bool) -> std::io::Result<()> {
    let path = data_dir.join(RESTORING_FILE);
    if restoring {
        replace_durably(
            &path,
            b"own chain imported; waiting for a sync with a member\n",
        )
    } else {
        match std::fs::remove_file(&path) {
            Ok(()) => std::fs::File::open(data_dir)?.sync_all(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// Records durably that this node signed up to `seq` (the engine's `RecordOwnHead`).
pub fn record(data_dir: &Path, seq: u64, id: Option<MessageId>) -> std::io::Result<()> {
    write_durably(&data_dir.join(OWN_CHAIN_FILE), (seq, id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use solidarity_engine::own_chain::Resume;

    /// The record as the daemon keeps it around the engine's decision: read at start,
    /// written when the engine says (`RecordOwnHead`).
    struct OwnChain {
        dir: std::path::PathBuf,
        decision: solidarity_engine::own_chain::OwnChain,
    }

    impl OwnChain {
        fn open(
            dir: &Path,
            held: Option<(u64, MessageId)>,
            fresh_chain: bool,
        ) -> anyhow::Result<Self> {
            let recorded = read(dir)?;
            let decision =
                solidarity_engine::own_chain::OwnChain::new(recorded, held, fresh_chain, false);
            if let Some((seq, id)) = decision.to_record(recorded) {
                record(dir, seq, id)?;
            }
            Ok(Self {
                dir: dir.to_owned(),
                decision,
            })
        }

        fn paused(&self) -> Option<String> {
            self.decision.paused()
        }

        fn record_signed(&mut self, seq: u64, id: MessageId) -> std::io::Result<()> {
            if self.decision.signed(seq, id) {
                record(&self.dir, seq, Some(id))?;
            }
            Ok(())
        }

        fn note_synced(&mut self) {
            self.decision.note_synced();
        }

        fn learned(&mut self, held: Option<(u64, MessageId)>) -> Resume {
            let (resume, to_record) = self.decision.learned(held);
            if let Some((seq, id)) = to_record {
                record(&self.dir, seq, Some(id)).expect("record");
            }
            resume
        }
    }

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
