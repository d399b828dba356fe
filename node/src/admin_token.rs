//! The admin token file `DATA/admin.token`: where it is and how it is read, for the status
//! page that serves the admin view and the CLI that prints its login link.

use std::path::{Path, PathBuf};

/// Name of the token file inside the data dir.
pub const TOKEN_FILE: &str = "admin.token";
/// Random bytes in a token.
pub const TOKEN_BYTES: usize = 32;

/// Path of the token file of a data dir.
pub fn token_path(data_dir: &Path) -> PathBuf {
    data_dir.join(TOKEN_FILE)
}

/// The token in `data_dir`, when the file holds one.
pub fn read_token(data_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(token_path(data_dir)).ok()?;
    let text = text.trim();
    (text.len() == 2 * TOKEN_BYTES && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| text.to_ascii_lowercase())
}
