//! Files only the node's user may read (keys, revocations, exports), each created anew so
//! that nothing is ever written over an existing one.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Creates `path`, mode 0600; an existing file is an error and stays as it is.
pub fn create_new(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::AlreadyExists => anyhow::anyhow!(
                "{} already exists: nothing was written over it",
                path.display()
            ),
            _ => anyhow::Error::new(error).context(format!("cannot create {}", path.display())),
        })
}
