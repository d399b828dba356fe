//! Deterministic simulation of a solidarity federation (test support).
//!
//! N nodes, each a sans-IO engine over its own in-memory store, exchange gossip and sync
//! messages through a seeded network model on a virtual clock. Nothing here reads the wall
//! clock, the OS RNG or the environment beyond `SOLIDARITY_SEED`: a run is a function of
//! its seed, which every test prints so that a failure replays. Modelled on iroh-gossip's
//! `proto::sim`.
//!
//! Layout:
//! - [`seed`]: the run's seed and generator.
//! - [`queue`]: the virtual clock and the (time, seq, event) queue.
//! - [`network`]: topology, latency, loss, partitions, offline nodes, clock skew.
//! - [`gossip`]: mesh push plus IHAVE/IWANT, with gossipsub's duplicate cache.
//! - [`federation`]: keys and the shared members list.
//! - [`mod@sim`]: the driver: engines, stores, gossip layers, network and clock together.
//! - [`scenario`]: the messages scenarios sign and the questions they ask.

#![warn(missing_docs)]

pub mod federation;
pub mod gossip;
pub mod network;
pub mod queue;
pub mod scenario;
pub mod seed;
pub mod sim;
