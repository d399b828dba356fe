//! Revocations that took their key out of trust stay final (SPEC §13.4), also after the
//! admin removes the identity that signed them from the list and the node restarts: the
//! ids of the settled revocations are kept in `DATA/settled-revocations`, one hex id per
//! line, replaced durably whenever the set grows. The set is bounded by the revocations
//! the node keeps (capped per signer, SPEC §9).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use solidarity_proto::MessageId;

/// File in the data dir holding the settled revocations.
pub const SETTLED_FILE: &str = "settled-revocations";

/// The settled revocations as last written.
#[derive(Debug)]
pub struct SettledFile {
    path: PathBuf,
    written: usize,
}

impl SettledFile {
    /// Reads the file (none yet: nothing settled). A line that is not an id is an error:
    /// dropping it silently could un-revoke a key.
    pub fn open(data_dir: &Path) -> anyhow::Result<(Self, BTreeSet<MessageId>)> {
        let path = data_dir.join(SETTLED_FILE);
        let settled = match std::fs::read_to_string(&path) {
            Ok(text) => text
                .lines()
                .filter(|line| !line.trim().is_empty())
                .map(|line| {
                    line.parse::<MessageId>().map_err(|_| {
                        anyhow::anyhow!(
                            "{} holds a line that is not a message id; restore the file from a backup",
                            path.display()
                        )
                    })
                })
                .collect::<anyhow::Result<BTreeSet<_>>>()?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
            Err(error) => return Err(error.into()),
        };
        let written = settled.len();
        Ok((Self { path, written }, settled))
    }

    /// Writes `settled` when it holds more than the file (settled ids are never dropped).
    pub fn save(&mut self, settled: &BTreeSet<MessageId>) -> std::io::Result<()> {
        if settled.len() <= self.written {
            return Ok(());
        }
        let text: String = settled.iter().map(|id| id.to_hex() + "\n").collect();
        super::own_chain::replace_durably(&self.path, text.as_bytes())?;
        self.written = settled.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settled_ids_survive_a_reopen_and_a_bad_line_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut file, none) = SettledFile::open(dir.path()).expect("open");
        assert!(none.is_empty());
        let settled: BTreeSet<MessageId> = [MessageId([1; 32]), MessageId([2; 32])].into();
        file.save(&settled).expect("save");
        let (_, again) = SettledFile::open(dir.path()).expect("reopen");
        assert_eq!(again, settled);
        std::fs::write(dir.path().join(SETTLED_FILE), "not an id\n").expect("write");
        assert!(SettledFile::open(dir.path()).is_err());
    }
}
