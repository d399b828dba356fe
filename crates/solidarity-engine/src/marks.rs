//! What a shown alert or offer is marked with (SPEC §9.1, §13.1, §13.4): suspect when its
//! author's key was in other hands when it was signed, and which stances corroborate it.

use solidarity_proto::AuthorKey;

use crate::engine::Compromised;

/// Whether a message at `seq`, created at `created_at`, of a key is suspect: at or after
/// the seq where its chains diverge (a fork), or created at or after the time its
/// revocation says the key was compromised.
pub fn is_suspect(
    compromised: Option<&Compromised>,
    revoked_since: Option<u64>,
    seq: u64,
    created_at: u64,
) -> bool {
    compromised.is_some_and(|state| seq >= state.from_seq)
        || revoked_since.is_some_and(|since| created_at >= since)
}

/// Whether a stance by `author` counts towards corroboration here: this node's own, or a
/// member's while it is trusted (not once the admin removed it, its vouches or
/// certificate ended, or a revocation or a fork took it out of trust).
pub fn stance_counts(
    author: &AuthorKey,
    me: &AuthorKey,
    trusted: impl Fn(&AuthorKey) -> bool,
) -> bool {
    author == me || trusted(author)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suspect_from_the_fork_seq_or_the_compromise_time_on() {
        let forked = Compromised {
            detected_at: 0,
            from_seq: 5,
        };
        assert!(!is_suspect(Some(&forked), None, 4, 0));
        assert!(is_suspect(Some(&forked), None, 5, 0));
        assert!(!is_suspect(None, Some(100), 9, 99));
        assert!(is_suspect(None, Some(100), 1, 100));
        assert!(!is_suspect(None, None, u64::MAX, u64::MAX));
    }

    #[test]
    fn only_own_and_trusted_stances_count() {
        let (me, member, gone) = (AuthorKey([1; 32]), AuthorKey([2; 32]), AuthorKey([3; 32]));
        let trusted = |key: &AuthorKey| *key == member;
        assert!(stance_counts(&me, &me, trusted));
        assert!(stance_counts(&member, &me, trusted));
        assert!(!stance_counts(&gone, &me, trusted));
    }
}
