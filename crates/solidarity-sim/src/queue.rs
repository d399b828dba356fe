//! The virtual clock and the event queue: events run in (time, insertion) order, so two
//! events due at the same millisecond run in the order they were scheduled and a run is a
//! function of its seed alone.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Virtual milliseconds since the simulation's epoch.
pub type SimTime = u64;

struct Scheduled<E> {
    at: SimTime,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Scheduled<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<E> Eq for Scheduled<E> {}

impl<E> PartialOrd for Scheduled<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Scheduled<E> {
    /// Reversed, so that the max-heap pops the earliest event first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// A binary heap of (time, seq, event) and the clock it advances.
pub struct EventQueue<E> {
    heap: BinaryHeap<Scheduled<E>>,
    next_seq: u64,
    now: SimTime,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
            next_seq: 0,
            now: 0,
        }
    }
}

impl<E> EventQueue<E> {
    /// The current virtual time: that of the last event popped.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Schedules `event` at `at`; a time in the past runs at the current time.
    pub fn push(&mut self, at: SimTime, event: E) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Scheduled {
            at: at.max(self.now),
            seq,
            event,
        });
    }

    /// Schedules `event` `delay` ms from now.
    pub fn push_after(&mut self, delay: u64, event: E) {
        self.push(self.now.saturating_add(delay), event);
    }

    /// The time of the next event.
    pub fn next_time(&self) -> Option<SimTime> {
        self.heap.peek().map(|scheduled| scheduled.at)
    }

    /// Pops the next event due no later than `until`, advancing the clock to it.
    pub fn pop_until(&mut self, until: SimTime) -> Option<(SimTime, E)> {
        if self.next_time()? > until {
            return None;
        }
        let scheduled = self.heap.pop()?;
        self.now = scheduled.at;
        Some((scheduled.at, scheduled.event))
    }

    /// Moves the clock forward to `to` (never back) once no event remains before it.
    pub fn advance_to(&mut self, to: SimTime) {
        debug_assert!(self.next_time().is_none_or(|next| next >= to));
        self.now = self.now.max(to);
    }

    /// Events still scheduled.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no event is scheduled.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_run_in_time_order_and_ties_in_insertion_order() {
        let mut queue = EventQueue::default();
        queue.push(30, "c");
        queue.push(10, "a1");
        queue.push(10, "a2");
        queue.push(20, "b");
        let mut seen = Vec::new();
        while let Some((at, event)) = queue.pop_until(u64::MAX) {
            assert_eq!(queue.now(), at);
            seen.push(event);
        }
        assert_eq!(seen, ["a1", "a2", "b", "c"]);
    }

    #[test]
    fn the_clock_never_runs_back_and_stops_at_the_horizon() {
        let mut queue = EventQueue::default();
        queue.push(50, 1);
        queue.push(100, 2);
        assert_eq!(queue.pop_until(60), Some((50, 1)));
        assert_eq!(queue.pop_until(60), None);
        queue.advance_to(60);
        queue.push(5, 3);
        assert_eq!(queue.pop_until(60), Some((60, 3)), "a past time runs now");
        queue.push_after(10, 4);
        assert_eq!(queue.pop_until(u64::MAX), Some((70, 4)));
        assert_eq!(queue.len(), 1);
    }
}
