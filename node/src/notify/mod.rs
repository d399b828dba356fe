//! Notifications: what a person should hear of, delivered by mail (optionally OpenPGP
//! encrypted), webhook or a local program, from a durable outbox.
//!
//! - The daemon's actor turns the engine's notices into [`doc::NoticeDoc`]s (stable ids).
//! - Each is written to the outbox before any attempt, once per channel that its filter
//!   lets through; canary and duress notices only to channels marked `private`.
//! - A channel's task waits its settle delay, folds what waits into one [`doc::Batch`],
//!   sends it, and marks its notices done only when the other side accepted it; failures
//!   are retried with exponential backoff and jitter, and given up after a configured time.
//!
//! Sending never blocks gossip, sync or the CLI: the actor only ever `try_send`s into a
//! bounded queue.

pub mod channel;
pub mod config;
pub mod doc;
mod exec;
mod mail;
pub mod metrics;
pub mod observe;
mod openpgp;
pub mod outbox;
pub mod reports;
pub mod route;
pub mod service;
mod webhook;
mod worker;

pub use service::{Notifier, NotifyCall};

/// Wall-clock time, ms since the epoch (notices are stamped and scheduled with it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}
