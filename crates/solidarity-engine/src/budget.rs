//! Per-author budgets on every ingest path (SPEC §10): each signer gets a token bucket of
//! messages and one of bytes (each holding a minute's worth), and a cap on the envelope
//! bytes this node stores of it. A message beyond them is ignored: not stored, not
//! relayed, no penalty for whoever forwarded it; sync brings it again later, at this
//! node's pace. Revocations are never held back (they are capped per signer where
//! statements are kept), and this node's own messages are not budgeted.

use std::collections::HashMap;

use solidarity_control::OverBudget;
use solidarity_proto::AuthorKey;

/// How long a member stays shown as over budget after its last held-back message.
const SHOWN_FOR_MS: u64 = 10 * 60 * 1000;
/// Least time between two warnings about one member.
const WARN_EVERY_MS: u64 = 10 * 60 * 1000;

/// The configured limits; 0 in a field: no limit of that kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Messages per minute (`member_messages_per_minute`).
    pub messages_per_minute: u32,
    /// Envelope bytes per minute (`member_kib_per_minute`).
    pub bytes_per_minute: u64,
    /// Envelope bytes stored here (`member_stored_mib`).
    pub stored_bytes: u64,
}

/// One signer's buckets and what it stores here.
struct Account {
    messages: f64,
    bytes: f64,
    refilled_at: u64,
    /// Envelope bytes stored (read from the store when unknown, then kept up to date).
    stored: Option<u64>,
    /// The last time one of its messages was held back, why, and its size.
    over: Option<(u64, OverBudget, usize)>,
    warned_at: Option<u64>,
}

impl Account {
    /// A signer first seen at `now`: full buckets, stored bytes not read yet.
    fn full(limits: Limits, now: u64) -> Self {
        Self {
            messages: f64::from(limits.messages_per_minute),
            bytes: limits.bytes_per_minute as f64,
            refilled_at: now,
            stored: None,
            over: None,
            warned_at: None,
        }
    }
}

/// What [`Budgets::take`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Taken from the budget.
    Within,
    /// Held back; `warn` is true when the admin should be told now (rate-limited).
    Over {
        /// Which budget.
        why: OverBudget,
        /// Tell the admin now.
        warn: bool,
    },
}

/// Every signer's budget.
pub struct Budgets {
    limits: Limits,
    accounts: HashMap<AuthorKey, Account>,
}

impl Budgets {
    /// Empty accounts under `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            accounts: HashMap::new(),
        }
    }

    /// The limits changed (a reload); buckets keep their level, capped at the new size.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Takes one message of `bytes` from `author`'s budget at `now`; `stored` reads what
    /// the store holds of it the first time the author is seen.
    pub fn take(
        &mut self,
        author: AuthorKey,
        bytes: usize,
        now: u64,
        stored: impl FnOnce() -> u64,
    ) -> Decision {
        let limits = self.limits;
        let message_capacity = f64::from(limits.messages_per_minute);
        let byte_capacity = limits.bytes_per_minute as f64;
        let account = self
            .accounts
            .entry(author)
            .or_insert_with(|| Account::full(limits, now));
        let stored_now = *account.stored.get_or_insert_with(stored);
        let elapsed = now.saturating_sub(account.refilled_at) as f64;
        account.refilled_at = now;
        account.messages =
            (account.messages + elapsed * message_capacity / 60_000.0).min(message_capacity);
        account.bytes = (account.bytes + elapsed * byte_capacity / 60_000.0).min(byte_capacity);
        let bytes_u64 = u64::try_from(bytes).unwrap_or(u64::MAX);
        let why = if limits.stored_bytes != 0
            && stored_now.saturating_add(bytes_u64) > limits.stored_bytes
        {
            Some(OverBudget::StoredBytes)
        } else if limits.messages_per_minute != 0 && account.messages < 1.0 {
            Some(OverBudget::MessageRate)
        } else if limits.bytes_per_minute != 0 && account.bytes < bytes as f64 {
            Some(OverBudget::ByteRate)
        } else {
            None
        };
        match why {
            None => {
                if limits.messages_per_minute != 0 {
                    account.messages -= 1.0;
                }
                if limits.bytes_per_minute != 0 {
                    account.bytes -= bytes as f64;
                }
                account.stored = Some(stored_now.saturating_add(bytes_u64));
                Decision::Within
            }
            Some(why) => {
                account.over = Some((now, why, bytes));
                let warn = account
                    .warned_at
                    .is_none_or(|at| now.saturating_sub(at) >= WARN_EVERY_MS);
                if warn {
                    account.warned_at = Some(now);
                }
                Decision::Over { why, warn }
            }
        }
    }

    /// Takes `bytes` of `author`'s stored-bytes cap only (an import: the rate budgets do
    /// not apply); false when they would pass it.
    pub fn take_stored(
        &mut self,
        author: AuthorKey,
        bytes: usize,
        stored: impl FnOnce() -> u64,
    ) -> bool {
        let limits = self.limits;
        // Full buckets refilled "at 0" stay full: the rates do not apply here.
        let account = self
            .accounts
            .entry(author)
            .or_insert_with(|| Account::full(limits, 0));
        let stored_now = *account.stored.get_or_insert_with(stored);
        let after = stored_now.saturating_add(u64::try_from(bytes).unwrap_or(u64::MAX));
        if limits.stored_bytes != 0 && after > limits.stored_bytes {
            return false;
        }
        account.stored = Some(after);
        true
    }

    /// Why `author` is shown as over budget at `now`: one of its messages was held back
    /// in the last minutes.
    pub fn over(&self, author: &AuthorKey, now: u64) -> Option<OverBudget> {
        self.accounts
            .get(author)?
            .over
            .filter(|(at, _, _)| now.saturating_sub(*at) < SHOWN_FOR_MS)
            .map(|(_, why, _)| why)
    }

    /// Whether what last held `author` back still holds at `now`, so a sync round should
    /// not ask for its chain.
    pub fn spent(&self, author: &AuthorKey, now: u64) -> bool {
        let Some(account) = self.accounts.get(author) else {
            return false;
        };
        let Some((_, why, bytes)) = account.over else {
            return false;
        };
        let elapsed = now.saturating_sub(account.refilled_at) as f64;
        match why {
            // Until expiry frees some (the count is read again then).
            OverBudget::StoredBytes => account.stored.is_some(),
            OverBudget::MessageRate => {
                account.messages + elapsed * f64::from(self.limits.messages_per_minute) / 60_000.0
                    < 1.0
            }
            OverBudget::ByteRate => {
                account.bytes + elapsed * self.limits.bytes_per_minute as f64 / 60_000.0
                    < bytes as f64
            }
        }
    }

    /// How many signers are shown as over budget at `now`.
    pub fn over_count(&self, now: u64) -> usize {
        self.accounts
            .keys()
            .filter(|author| self.over(author, now).is_some())
            .count()
    }

    /// Stored bytes changed outside ingest (the expiry sweep): read them again when next
    /// needed; the rate buckets are kept.
    pub fn forget_stored(&mut self) {
        for account in self.accounts.values_mut() {
            account.stored = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budgets() -> Budgets {
        Budgets::new(Limits {
            messages_per_minute: 60,
            bytes_per_minute: 6_000,
            stored_bytes: 10_000,
        })
    }

    #[test]
    fn a_minute_of_messages_then_one_per_second() {
        let mut budgets = budgets();
        let author = AuthorKey([1; 32]);
        let within = (0..100)
            .filter(|_| budgets.take(author, 10, 0, || 0) == Decision::Within)
            .count();
        assert_eq!(within, 60);
        assert_eq!(budgets.over(&author, 0), Some(OverBudget::MessageRate));
        assert!(budgets.spent(&author, 0));
        assert_eq!(budgets.take(author, 10, 1_000, || 0), Decision::Within);
        // Another author is not affected.
        assert_eq!(
            budgets.take(AuthorKey([2; 32]), 10, 1_000, || 0),
            Decision::Within
        );
    }

    #[test]
    fn bytes_and_stored_bytes_hold_too_and_warnings_are_rate_limited() {
        let mut budgets = budgets();
        let author = AuthorKey([1; 32]);
        assert_eq!(budgets.take(author, 5_000, 0, || 0), Decision::Within);
        assert_eq!(
            budgets.take(author, 2_000, 0, || 0),
            Decision::Over {
                why: OverBudget::ByteRate,
                warn: true
            }
        );
        assert_eq!(
            budgets.take(author, 2_000, 1, || 0),
            Decision::Over {
                why: OverBudget::ByteRate,
                warn: false
            }
        );
        let stored = AuthorKey([3; 32]);
        assert_eq!(
            budgets.take(stored, 100, 0, || 9_950),
            Decision::Over {
                why: OverBudget::StoredBytes,
                warn: true
            }
        );
        assert!(budgets.spent(&stored, 0));
        assert_eq!(budgets.over(&stored, SHOWN_FOR_MS), None);
        // Expiry freed its bytes: read again, while the rate buckets stay spent.
        budgets.forget_stored();
        assert!(!budgets.spent(&stored, 0));
        assert_eq!(budgets.take(stored, 100, 0, || 0), Decision::Within);
        assert!(matches!(
            budgets.take(author, 2_000, 2, || 0),
            Decision::Over {
                why: OverBudget::ByteRate,
                ..
            }
        ));
    }
}
