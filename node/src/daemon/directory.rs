//! Who the engine's members are, for people: names, collectives, corroboration groups and
//! peer ids of the keys the engine lists (`Engine::members`), from the admin's members
//! file and the vouches. The engine decides trust; this only names it. Rebuilt when the
//! engine derives trust again (`Engine::members_version`).

use std::collections::{BTreeMap, HashMap};

use libp2p::PeerId;
use solidarity_engine::ListedKey;
use solidarity_engine::vouch_labels::{vouched_group, vouched_label};
use solidarity_proto::AuthorKey;
use solidarity_proto::payload::Vouch;
use solidarity_proto::state::Stored;
use solidarity_proto::trust::{Listed, Standing, Why};

use crate::identity;
use crate::members::MembersFile;

/// A listed key as people see it.
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: String,
    /// Its collective as shown.
    pub collective: String,
    /// Endorsements count once per group: the collective the admin gave (several node
    /// keys may share one), or the key itself for a vouched member.
    pub group: String,
    /// Labels its vouchers gave that differ from its name (see `vouch_labels`).
    pub label_conflicts: Vec<String>,
    pub peer: PeerId,
    /// The path by which it is (or was) trusted.
    pub why: Why,
    /// Trusted now, or why not.
    pub standing: Standing,
}

impl Entry {
    pub fn trusted(&self) -> bool {
        self.standing == Standing::Trusted
    }
}

/// The listed keys by key and by peer, and the admin's file they are named from.
#[derive(Default)]
pub struct Directory {
    entries: BTreeMap<AuthorKey, Entry>,
    by_peer: HashMap<PeerId, AuthorKey>,
    file: MembersFile,
}

/// The admin's list as the engine takes it; an entry whose key has no peer id (not a
/// valid ed25519 key) makes the file invalid. A duress commitment that is not 64 hex
/// digits is left out (duress is then not recognised for that member), as before.
pub fn listed_keys(file: &MembersFile) -> anyhow::Result<Vec<ListedKey>> {
    file.members
        .iter()
        .map(|member| {
            identity::peer_id(&member.key)?;
            let duress_commitment = member.duress_commitment.as_deref().and_then(|text| {
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(text, &mut bytes).ok().map(|()| bytes)
            });
            Ok(ListedKey {
                key: member.key,
                identity: member.identity,
                addresses: member.addresses.clone(),
                duress_commitment,
            })
        })
        .collect()
}

impl Directory {
    /// A directory over the admin's `file`, empty until [`Self::rebuild`].
    pub fn new(file: MembersFile) -> Self {
        Self {
            file,
            ..Self::default()
        }
    }

    /// The admin's file.
    pub fn file(&self) -> &MembersFile {
        &self.file
    }

    /// Takes a new admin's file; the entries follow at the next [`Self::rebuild`].
    pub fn replace_file(&mut self, file: MembersFile) -> MembersFile {
        std::mem::replace(&mut self.file, file)
    }

    /// Names every key the engine lists now; returns the entries as they were.
    pub fn rebuild(
        &mut self,
        members: &BTreeMap<AuthorKey, Listed>,
        vouches: &[Stored<Vouch>],
    ) -> BTreeMap<AuthorKey, Entry> {
        let by_key: HashMap<AuthorKey, &crate::members::Member> = self
            .file
            .members
            .iter()
            .map(|member| (member.key, member))
            .collect();
        // Names and collectives the admin gave: no vouched label may pass for one.
        let admin_label = |label: &str| {
            self.file.members.iter().any(|member| {
                member.name.eq_ignore_ascii_case(label)
                    || member
                        .collective
                        .as_deref()
                        .is_some_and(|collective| collective.eq_ignore_ascii_case(label))
            })
        };
        let mut entries = BTreeMap::new();
        for (key, Listed { why, standing }) in members {
            let Ok(peer) = identity::peer_id(key) else {
                tracing::debug!(key = %key.short(), "a listed key has no peer id; not named");
                continue;
            };
            let mut label_conflicts = Vec::new();
            let (name, collective) = match why {
                Why::Admin => match by_key.get(key) {
                    Some(member) => (member.name.clone(), member.collective.clone()),
                    None => continue,
                },
                Why::Certified { identity, .. } => match by_key.get(identity) {
                    Some(collective) => (collective.name.clone(), collective.collective.clone()),
                    None => continue,
                },
                Why::Vouched { by } => match vouched_label(vouches, key, by, admin_label) {
                    Some(label) => {
                        label_conflicts = label.conflicts;
                        (label.name, None)
                    }
                    None => (key.short(), None),
                },
            };
            let collective = collective.unwrap_or_else(|| name.clone());
            let group = match why {
                Why::Vouched { .. } => vouched_group(key),
                Why::Admin | Why::Certified { .. } => collective.clone(),
            };
            entries.insert(
                *key,
                Entry {
                    name,
                    collective,
                    group,
                    label_conflicts,
                    peer,
                    why: why.clone(),
                    standing: *standing,
                },
            );
        }
        self.by_peer = entries
            .iter()
            .map(|(key, entry)| (entry.peer, *key))
            .collect();
        std::mem::replace(&mut self.entries, entries)
    }

    pub fn entries(&self) -> &BTreeMap<AuthorKey, Entry> {
        &self.entries
    }

    /// The listed key a peer holds.
    pub fn key_of(&self, peer: &PeerId) -> Option<AuthorKey> {
        self.by_peer.get(peer).copied()
    }

    /// Whether `key` is listed and trusted now.
    pub fn trusted(&self, key: &AuthorKey) -> bool {
        self.entries.get(key).is_some_and(Entry::trusted)
    }

    /// A key's name and collective: a listed key's, else an entry's of the admin's file
    /// (an identity), else `None`.
    pub fn name_and_collective(&self, key: &AuthorKey) -> Option<(String, String)> {
        if let Some(entry) = self.entries.get(key) {
            return Some((entry.name.clone(), entry.collective.clone()));
        }
        let member = self.file.members.iter().find(|member| member.key == *key)?;
        let collective = member
            .collective
            .clone()
            .unwrap_or_else(|| member.name.clone());
        Some((member.name.clone(), collective))
    }
}
