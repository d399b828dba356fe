//! The node as a sans-IO engine: one [`Engine`] owns a node's protocol state and is driven
//! by [`Engine::handle`]`(now_ms, Input) -> Vec<Output>`, in the style of iroh-gossip's
//! `proto::State`. Timers are outputs that come back as inputs; the only randomness is a
//! generator seeded by the driver; the store is read through [`StoreRead`] and written
//! only by carrying out [`Output::Write`].
//!
//! Architecture invariant: no tokio, libp2p, sled, clock, OS RNG or file here. The
//! daemon's actor and the simulator are drivers: they feed inputs and carry out outputs,
//! and decide nothing about the protocol.
//!
//! Layout:
//! - [`events`]: [`Input`], [`Output`], [`Notice`] and the tokens that pair them.
//! - [`mod@engine`]: the state and its `handle`: ingest, fork rule, signing with the
//!   own chain's seq/prev, write completions, trust, the sync requester.
//! - [`marks`]: suspect marks and which stances corroborate (for the views).
//! - [`store_read`]: the store reads the engine needs.
//! - [`sync_answer`]: the sync responder (SPEC §11.5).
//! - [`statements`]: which statements are kept, relayed or dropped; the statement phase.
//! - [`budget`]: per-signer budgets (SPEC §10).
//! - [`canary`]: canary state (SPEC §13.3) and the changes worth reporting.
//! - [`own_chain`]: the own-chain wait (SPEC §7).
//! - [`vouch_labels`]: what a vouched member is called (SPEC §13.2).
//! - The per-kind facts are one table in `solidarity_proto::kinds`.

#![warn(missing_docs)]

pub mod budget;
pub mod canary;
pub mod engine;
pub mod events;
pub mod marks;
pub mod own_chain;
pub mod statements;
pub mod store_read;
pub mod sync_answer;
pub mod vouch_labels;

use solidarity_proto::FederationId;

pub use engine::{Compromised, Engine, EngineConfig, Judged, Loaded, Path, load};
pub use events::{
    Acceptance, AnswerToken, Command, CommandToken, GossipToken, ImportEnvelope, Input, ListedKey,
    LiveConfig, NewMessage, Notice, Output, Reply, SyncFailed, SyncRound, Timer, WriteFailed,
    WriteId, WriteOutcome,
};
pub use store_read::{ChainEnvelope, ReadError, StoreRead};

/// The gossipsub topic of a federation.
pub fn gossip_topic(federation: &FederationId) -> String {
    format!("/solidarity/v1/{}/messages", federation.to_hex())
}

#[cfg(test)]
mod tests;
