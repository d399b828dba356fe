//! What several command groups share: JSON output, id prefixes, names for keys, the node key.

use std::io::Write;
use std::path::Path;

use anyhow::bail;
use solidarity_control::{Client, IdMatches};
use solidarity_proto::{AuthorKey, MessageId};

use crate::identity;
use crate::members::MembersFile;

pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Resolves a full id or a unique prefix of at least 8 hex characters among `candidates`.
pub fn resolve_id(
    text: &str,
    candidates: impl Iterator<Item = MessageId>,
    what: &str,
) -> anyhow::Result<MessageId> {
    resolve_prefix(text, what, |prefix| {
        Ok(IdMatches {
            ids: candidates
                .filter(|id| id.to_hex().starts_with(prefix))
                .collect(),
            more: false,
        })
    })
}

/// Resolves a full id or a unique prefix of at least 8 hex characters, asking `matching`
/// for the ids the (lowercase) prefix names.
pub fn resolve_prefix(
    text: &str,
    what: &str,
    matching: impl FnOnce(&str) -> anyhow::Result<IdMatches>,
) -> anyhow::Result<MessageId> {
    let text = text.trim().to_lowercase();
    if let Ok(id) = text.parse::<MessageId>() {
        return Ok(id);
    }
    if text.len() < 8 {
        bail!("give the full {what} id or at least its first 8 characters");
    }
    let matches = matching(&text)?;
    match (matches.ids.as_slice(), matches.more) {
        ([id], false) => Ok(*id),
        ([], false) => bail!("no {what} id starts with {text}"),
        _ => bail!("{text} matches several {what}s; give more characters"),
    }
}

/// Resolves an alert id or prefix through the daemon's id index (it does not load every
/// alert).
pub fn resolve_alert(client: &Client, text: &str) -> anyhow::Result<MessageId> {
    resolve_prefix(text, "alert", |prefix| Ok(client.alert_ids(prefix)?))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn id(first: u8) -> MessageId {
        let mut id = [0x11; 32];
        id[0] = first;
        MessageId(id)
    }

    fn resolved(text: &str, ids: Vec<MessageId>, more: bool) -> Result<MessageId, String> {
        resolve_prefix(text, "alert", |_| Ok(IdMatches { ids, more })).map_err(|e| e.to_string())
    }

    #[test]
    fn a_prefix_resolves_to_its_one_match_and_says_why_otherwise() {
        let one = id(0xab);
        assert_eq!(
            resolved(&one.to_hex(), vec![], false),
            Ok(one),
            "full id: no lookup"
        );
        assert_eq!(resolved("AB111111", vec![one], false), Ok(one));
        assert_eq!(
            resolved("ab11", vec![one], false),
            Err("give the full alert id or at least its first 8 characters".into())
        );
        assert_eq!(
            resolved("ab111111", vec![], false),
            Err("no alert id starts with ab111111".into())
        );
        let several = Err("ab111111 matches several alerts; give more characters".into());
        assert_eq!(resolved("ab111111", vec![one, id(0xac)], false), several);
        assert_eq!(
            resolved("ab111111", vec![one], true),
            several,
            "more ids share the prefix than were read"
        );
        assert_eq!(resolved("ab111111", vec![], true), several);
    }

    #[test]
    fn resolve_id_filters_its_candidates_by_prefix() {
        let candidates = [id(0xab), id(0xcd)];
        assert_eq!(
            resolve_id("cd111111", candidates.into_iter(), "offer").expect("one"),
            id(0xcd)
        );
    }
}
