//! The members file (`members.toml`), the admin's allow-list of member keys, like SSH's
//! known_hosts. Only the CLI writes it; the daemon reads it at start and on reload.

use std::path::Path;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use solidarity_proto::AuthorKey;

use crate::identity::Card;

/// Name of the members file inside the data dir.
pub const MEMBERS_FILE: &str = "members.toml";
/// Longest member name.
const MAX_NAME_BYTES: usize = 64;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembersFile {
    #[serde(default, rename = "member")]
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub name: String,
    pub key: AuthorKey,
    #[serde(default)]
    pub addresses: Vec<String>,
    /// This is a collective's offline identity key: trust the node keys it certifies
    /// (while their certificates last), not the key itself.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub identity: bool,
    /// The collective it belongs to (endorsements count once per collective); default:
    /// its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collective: Option<String>,
    /// SHA-256 commitment of the member's duress key (hex), from its card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duress_commitment: Option<String>,
}

impl MembersFile {
    /// Reads the file; a missing file is an empty list.
    pub fn load(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join(MEMBERS_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                toml::from_str(&text).with_context(|| format!("invalid {}", path.display()))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Writes the file atomically (temp file, fsync, rename).
    pub fn save(&self, data_dir: &Path) -> anyhow::Result<()> {
        let text = format!(
            "# Members of this node's federation: keys it trusts. Edit with `solidarity member`.\n\n{}",
            toml::to_string(self).context("cannot encode the members file")?
        );
        let mut file = tempfile::NamedTempFile::new_in(data_dir)?;
        std::io::Write::write_all(&mut file, text.as_bytes())?;
        file.as_file().sync_all()?;
        // An admin running the CLI as root must not leave a file the daemon's own user
        // cannot read: the file belongs to whoever owns the data dir.
        let owner = std::fs::metadata(data_dir)?;
        std::os::unix::fs::chown(
            file.path(),
            Some(std::os::unix::fs::MetadataExt::uid(&owner)),
            Some(std::os::unix::fs::MetadataExt::gid(&owner)),
        )
        .context("cannot give the members file to the data dir's owner")?;
        file.persist(data_dir.join(MEMBERS_FILE))
            .context("cannot replace the members file")?;
        Ok(())
    }

    /// Adds or replaces (same key) a member.
    pub fn add(&mut self, card: &Card, name: &str) -> anyhow::Result<()> {
        self.add_in(card, name, None)
    }

    /// Adds or replaces (same key) a member of a named collective.
    pub fn add_in(
        &mut self,
        card: &Card,
        name: &str,
        collective: Option<&str>,
    ) -> anyhow::Result<()> {
        if name.trim().is_empty()
            || name.len() > MAX_NAME_BYTES
            || name.chars().any(char::is_control)
        {
            bail!("a member name is 1 to {MAX_NAME_BYTES} printable characters");
        }
        if self
            .members
            .iter()
            .any(|member| member.name == name && member.key != card.key)
        {
            bail!("another member is already named {name:?}");
        }
        self.members.retain(|member| member.key != card.key);
        self.members.push(Member {
            name: name.to_owned(),
            key: card.key,
            addresses: card.addresses.iter().map(ToString::to_string).collect(),
            identity: false,
            collective: collective.map(str::to_owned),
            duress_commitment: card.duress_commitment.map(hex::encode),
        });
        Ok(())
    }

    /// Removes a member by name or key; returns it.
    pub fn remove(&mut self, name_or_key: &str) -> Option<Member> {
        let position = self
            .members
            .iter()
            .position(|member| member.name == name_or_key || member.key.to_hex() == name_or_key)?;
        Some(self.members.remove(position))
    }
}
