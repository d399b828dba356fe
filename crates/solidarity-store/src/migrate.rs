//! Upgrades a store written by an older layout in place, so that a new version never
//! strands a user's data.
//!
//! Layout `FIRST_MIGRATABLE + i` is turned into `FIRST_MIGRATABLE + i + 1` by `steps()[i]`.
//! Every step must be idempotent (a crash part-way runs it again from the start at the next
//! open) and must read the old key space in chunks, never all at once. The layout byte is
//! written after the step's last batch, so a store is never stamped with a layout it does
//! not have.

use crate::StoreError;
use crate::kv::{Backend, KvStore};

/// The oldest layout this version can upgrade; older stores must be moved aside.
pub const FIRST_MIGRATABLE: u8 = 3;

/// One upgrade from a layout to the next.
pub(crate) struct Step<B> {
    /// What the step adds, for the log line at open.
    pub(crate) what: &'static str,
    pub(crate) run: fn(&KvStore<B>) -> Result<(), StoreError>,
}

/// The upgrades, in order: `steps()[i]` turns layout `FIRST_MIGRATABLE + i` into the next.
/// [`crate::kv::LAYOUT_VERSION`] is `FIRST_MIGRATABLE + steps().len()`.
pub(crate) fn steps<B: Backend>() -> Vec<Step<B>> {
    vec![Step {
        what: "each author's two latest canaries, kept past their expiry (prefix n)",
        run: KvStore::backfill_kept_canaries,
    }]
}
