//! The reads behind `solidarity export`, run on a blocking reader: pages of the stored
//! chain messages in id order, and what the export holds beside them. Every envelope goes
//! out verbatim; nothing here loads the whole store.

use std::path::Path;

use solidarity_control::{EnvelopeBytes, ExportedExtras, ExportedPage};
use solidarity_proto::{MessageId, kinds};
use solidarity_store::{Store, StoreError};

use crate::members::MEMBERS_FILE;

/// Ids read per page (at most 256 envelopes of 16 KiB: 8 MiB as hex).
pub const PAGE_IDS: usize = 256;

/// The chain messages after `after` (statements come with [`extras`]).
pub fn page(store: &dyn Store, after: Option<MessageId>) -> Result<ExportedPage, StoreError> {
    let ids = store.ids_after(after.as_ref(), PAGE_IDS)?;
    let next = (ids.len() == PAGE_IDS)
        .then(|| ids.last().copied())
        .flatten();
    let mut envelopes = Vec::with_capacity(ids.len());
    for id in ids {
        // Gone since it was listed (expired): skipped.
        let Some(meta) = store.meta(&id)? else {
            continue;
        };
        if kinds::is_statement(&meta.kind) {
            continue;
        }
        if let Some(envelope) = store.envelope(&id)? {
            envelopes.push(EnvelopeBytes(envelope));
        }
    }
    Ok(ExportedPage { envelopes, next })
}

/// Every statement, each author's kept canaries that have expired at `now_ms` (a live
/// one is exported with the messages), and the fork evidence (all bounded per signer
/// where they are stored), and the members file's text when `members`.
pub fn extras(
    store: &dyn Store,
    data_dir: &Path,
    members: bool,
    now_ms: u64,
) -> Result<ExportedExtras, ExtrasError> {
    let mut statements = Vec::new();
    for kind in kinds::KINDS
        .iter()
        .filter(|facts| kinds::is_statement(facts.name))
    {
        statements.extend(store.by_kind(kind.name)?);
    }
    let mut kept_canaries = Vec::new();
    for kept in store
        .kept_canaries()?
        .into_iter()
        .flat_map(|(_, kept)| kept)
    {
        // A live one is exported with the messages.
        let live = store
            .meta(&kept.id)?
            .is_some_and(|meta| meta.expires_at.is_none_or(|expires| expires > now_ms));
        if !live {
            kept_canaries.push(kept);
        }
    }
    let mut fork_evidence = Vec::new();
    for compromise in store.compromised()? {
        fork_evidence.push(fork_proof(store, &compromise)?);
    }
    let members = match members {
        false => None,
        true => Some(read_members(data_dir)?),
    };
    let bytes = |stored: Vec<solidarity_store::StoredEnvelope>| {
        stored
            .into_iter()
            .map(|stored| EnvelopeBytes(stored.envelope))
            .collect()
    };
    Ok(ExportedExtras {
        statements: bytes(statements),
        kept_canaries: bytes(kept_canaries),
        fork_evidence,
        members,
    })
}

/// A compromise's evidence with the chain messages it may conflict with (at its seq, the
/// one before for a diverging `prev`, the one after whose `prev` is not it) while they are
/// stored: an import proves the fork again from these alone.
fn fork_proof(
    store: &dyn Store,
    compromise: &solidarity_store::Compromise,
) -> Result<Vec<EnvelopeBytes>, StoreError> {
    let mut ids = std::collections::BTreeSet::new();
    let mut proof = Vec::new();
    for evidence in &compromise.evidence {
        let from = evidence.seq.saturating_sub(1).max(1);
        let conflicting = store.author_range(&compromise.author, from, 3)?;
        for stored in conflicting
            .into_iter()
            .filter(|stored| stored.seq <= evidence.seq.saturating_add(1))
            .chain([evidence.clone()])
        {
            if ids.insert(stored.id) {
                proof.push(EnvelopeBytes(stored.envelope));
            }
        }
    }
    Ok(proof)
}

/// The members file as it is on disk (empty when there is none).
fn read_members(data_dir: &Path) -> Result<String, ExtrasError> {
    let path = data_dir.join(MEMBERS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(error) => Err(ExtrasError::Members(format!("{}: {error}", path.display()))),
    }
}

/// Why the extras could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ExtrasError {
    /// The store.
    #[error("cannot read the store: {0}")]
    Store(#[from] StoreError),
    /// The members file.
    #[error("cannot read the members file {0}")]
    Members(String),
}
