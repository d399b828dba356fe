//! Inbound sync answers, computed off the actor (issue 12, item 3).
//!
//! An answer reads up to `MAX_PAGE_ENVELOPES` envelopes from the store; on the actor that
//! read would hold back gossip validation for everyone. The actor hands a request to a
//! blocking reader with the engine's `AnswerState` (cheap shared snapshots of the
//! statements and the relay, and the compromised keys) and the store handle. The answer is
//! the engine's responder, so its order and bytes are those of the vectors.
//!
//! [`AnswerBudget`] bounds the answers in flight: [`SYNC_ANSWERS_PER_MEMBER`] per asking peer
//! and [`SYNC_ANSWERS_IN_FLIGHT`] in all. A request beyond either is answered at once with the
//! empty page `{envelopes: [], more: false}` (SPEC §11.5, "Busy"), so nothing queues.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use libp2p::PeerId;

/// Most sync answers of one peer computed or waiting to be sent at once.
pub const SYNC_ANSWERS_PER_MEMBER: usize = 2;
/// Most sync answers computed or waiting to be sent at once, of all peers together (so
/// also the most blocking reader threads sync answers take).
pub const SYNC_ANSWERS_IN_FLIGHT: usize = 8;

#[derive(Default)]
struct InFlight {
    total: usize,
    by_peer: HashMap<PeerId, usize>,
}

/// The answers in flight, per peer and in all.
#[derive(Clone, Default)]
pub struct AnswerBudget {
    in_flight: Arc<Mutex<InFlight>>,
}

/// One answer in flight; dropping it (answer sent, or its task gone) frees the place.
pub struct AnswerPermit {
    in_flight: Arc<Mutex<InFlight>>,
    peer: PeerId,
}

impl AnswerBudget {
    /// A place for one more answer to `peer`, or `None` when it or everyone is at the bound.
    pub fn try_acquire(&self, peer: PeerId) -> Option<AnswerPermit> {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let of_peer = in_flight.by_peer.get(&peer).copied().unwrap_or(0);
        if of_peer >= SYNC_ANSWERS_PER_MEMBER || in_flight.total >= SYNC_ANSWERS_IN_FLIGHT {
            return None;
        }
        in_flight.by_peer.insert(peer, of_peer + 1);
        in_flight.total += 1;
        Some(AnswerPermit {
            in_flight: Arc::clone(&self.in_flight),
            peer,
        })
    }
}

impl Drop for AnswerPermit {
    fn drop(&mut self) {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        in_flight.total = in_flight.total.saturating_sub(1);
        if let Some(count) = in_flight.by_peer.get_mut(&self.peer) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                in_flight.by_peer.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_peer_is_held_to_its_bound_and_gets_its_place_back() {
        let budget = AnswerBudget::default();
        let peer = PeerId::random();
        let held: Vec<AnswerPermit> = (0..SYNC_ANSWERS_PER_MEMBER)
            .map(|_| budget.try_acquire(peer).expect("within the bound"))
            .collect();
        assert!(budget.try_acquire(peer).is_none(), "beyond the bound");
        assert!(
            budget.try_acquire(PeerId::random()).is_some(),
            "others unaffected"
        );
        drop(held);
        assert!(budget.try_acquire(peer).is_some(), "freed on drop");
    }

    #[test]
    fn all_peers_together_are_held_to_the_global_bound() {
        let budget = AnswerBudget::default();
        let held: Vec<AnswerPermit> = (0..SYNC_ANSWERS_IN_FLIGHT)
            .map(|_| {
                budget
                    .try_acquire(PeerId::random())
                    .expect("within the bound")
            })
            .collect();
        assert!(budget.try_acquire(PeerId::random()).is_none());
        drop(held);
        let in_flight = budget.in_flight.lock().expect("not poisoned");
        assert_eq!((in_flight.total, in_flight.by_peer.len()), (0, 0));
    }
}
