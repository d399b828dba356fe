//! What several command groups share: JSON output, id prefixes, names for keys, the node key.

use std::io::Write;
use std::path::Path;

use anyhow::bail;
use solidarity_proto::{AuthorKey, MessageId};

use crate::identity;
use crate::members::MembersFile;

pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Resolves a full id or a unique prefix of at least 8 hex characters.
pub fn resolve_id(
    text: &str,
    candidates: impl Iterator<Item = MessageId>,
    what: &str,
) -> anyhow::Result<MessageId> {
    let text = text.trim().to_lowercase();
    if let Ok(id) = text.parse::<MessageId>() {
        return Ok(id);
    }
    if text.len() < 8 {
        bail!("give the full {what} id or at least its first 8 characters");
    }
    let matches: Vec<MessageId> = candidates
        .filter(|id| id.to_hex().starts_with(&text))
        .collect();
    match matches.as_slice() {
        [id] => Ok(*id),
        [] => bail!("no {what} id starts with {text}"),
        _ => bail!("{text} matches several {what}s; give more characters"),
    }
}

/// Names for keys: the members file, plus this node itself.
pub struct Names {
    /// This node's key, when its key file reads.
    pub me: Option<AuthorKey>,
    /// The admin's members file (empty when it does not read).
    pub members: MembersFile,
}

impl Names {
    pub fn load(data_dir: &Path) -> Self {
        Self {
            me: identity::load_key_file(data_dir)
                .ok()
                .map(|key| solidarity_proto::envelope::author_key(&key)),
            members: MembersFile::load(data_dir).unwrap_or_default(),
        }
    }

    pub fn of(&self, key: &AuthorKey) -> String {
        if Some(*key) == self.me {
            return "(this node)".to_owned();
        }
        self.members
            .members
            .iter()
            .find(|member| member.key == *key)
            .map_or_else(|| key.short(), |member| member.name.clone())
    }
}

/// The node key, or an error that says how to create one when there is none.
pub fn load_node_key(data_dir: &Path) -> anyhow::Result<ed25519_dalek::SigningKey> {
    if let Ok(false) = data_dir.join(identity::KEY_FILE).try_exists() {
        bail!(
            "no node identity in {} yet; run `{}` first",
            data_dir.display(),
            crate::locations::hint("init")
        );
    }
    identity::load_key_file(data_dir)
}

pub fn print_id(id: MessageId, json: bool) -> anyhow::Result<()> {
    if json {
        print_json(&serde_json::json!({ "id": id }))
    } else {
        println!("{id}");
        Ok(())
    }
}
