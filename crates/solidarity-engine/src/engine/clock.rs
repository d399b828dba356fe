//! What changes with time alone: certificates begin and end (trust is derived again when
//! that changes the members), and the admin hears of certificates about to end.

use super::*;

/// How long before a member's certificate ends the admin is told: a week.
pub const CERTIFICATE_WARNING_MS: u64 = 7 * 24 * 3_600_000;
/// How often the same ending certificate is told again: daily.
pub const CERTIFICATE_WARNING_REPEAT_MS: u64 = 24 * 3_600_000;

impl<P, S> Engine<P, S>
where
    P: Clone + Eq + Hash + Ord,
    S: StoreRead,
{
    /// Derives trust again when time alone changed it, and tells of certificates that end
    /// within a week (each at most daily).
    pub(super) fn check_certificate_clock(&mut self, now_ms: u64, out: &mut Vec<Output<P>>) {
        // Only a certificate's bounds make time change trust: nothing to derive before the
        // next one is reached.
        if self
            .next_certificate_bound
            .is_some_and(|bound| now_ms >= bound)
            && self.derive_members(now_ms) != self.members
        {
            out.push(Output::Notice(Notice::CertificatesChanged));
            self.recompute_trust(now_ms, out);
        }
        for (key, listed) in &self.members {
            let trust::Why::Certified {
                identity,
                valid_until,
                ..
            } = &listed.why
            else {
                continue;
            };
            if listed.standing != Standing::Trusted
                || valid_until.saturating_sub(now_ms) > CERTIFICATE_WARNING_MS
            {
                continue;
            }
            let told_lately = self
                .certificate_warned
                .get(key)
                .is_some_and(|at| now_ms.saturating_sub(*at) < CERTIFICATE_WARNING_REPEAT_MS);
            if told_lately {
                continue;
            }
            self.certificate_warned.insert(*key, now_ms);
            out.push(Output::Notice(Notice::CertificateEnding {
                key: *key,
                identity: *identity,
                valid_until: *valid_until,
            }));
        }
        self.certificate_warned
            .retain(|key, _| self.members.contains_key(key));
    }

    /// The first time after `now_ms` at which a held certificate begins or ends.
    pub(super) fn next_certificate_bound(&self, now_ms: u64) -> Option<u64> {
        self.statements
            .certificates()
            .iter()
            .flat_map(|certificate| [certificate.body.valid_from, certificate.body.valid_until])
            .filter(|bound| *bound > now_ms)
            .min()
    }
}
