//! The admin's journal on trust: what the node logs when a key it trusts is revoked, is
//! found in two hands, or its certificate ends or is about to.
//!
//! - Each event is logged once, when the node learns it (a change of a key's standing
//!   between two trust computations), never on every recompute or at start-up.
//! - Lines name the key in short form, the member's name and collective, who signed a
//!   revocation and since when its messages are suspect: the journal is the admin's, never
//!   a public surface. Addresses are never logged.

use solidarity_proto::AuthorKey;

/// A time for the journal: RFC 3339 in UTC, to the second.
pub fn date(ms: u64) -> String {
    crate::render::format_time(ms)
}

/// Who a key is, for the journal.
pub struct Named<'a> {
    pub key: &'a AuthorKey,
    pub name: &'a str,
    pub collective: &'a str,
}

impl Named<'_> {
    /// "riseup" when the member is named after its collective, else "mail of riseup".
    fn who(&self) -> String {
        if self.name == self.collective {
            self.name.to_owned()
        } else {
            format!("{} of {}", self.name, self.collective)
        }
    }
}

/// A trusted key was revoked by its own revocation or its identity's.
pub fn key_revoked(member: &Named<'_>, signer: &str, since: u64) {
    tracing::warn!(
        key = %member.key.short(),
        member = %member.name,
        collective = %member.collective,
        signed_by = %signer,
        suspect_since = %date(since),
        "KEY REVOKED: {} ({}) is revoked (signed by {signer}); its messages since {} are suspect and no longer accepted",
        member.who(),
        member.key.short(),
        date(since)
    );
}

/// The identity that certified a key was revoked: its certificates no longer count, so the
/// key is no longer trusted (SPEC §13: its messages are not suspect by that alone).
pub fn identity_revoked_for(member: &Named<'_>, identity: &str, since: u64) {
    tracing::warn!(
        key = %member.key.short(),
        member = %member.name,
        collective = %member.collective,
        identity = %identity,
        identity_revoked_since = %date(since),
        "KEY OUT OF TRUST: {} ({}) was trusted through identity {identity}, which is revoked since {}; no longer trusted (its messages are not suspect by that alone)",
        member.who(),
        member.key.short(),
        date(since)
    );
}

/// A collective identity on the admin's list revoked itself.
pub fn identity_revoked(identity: &Named<'_>, since: u64, certified: usize) {
    tracing::warn!(
        key = %identity.key.short(),
        identity = %identity.name,
        collective = %identity.collective,
        suspect_since = %date(since),
        certified_keys = certified,
        "IDENTITY REVOKED: identity {} ({}) revoked itself; its statements since {} are suspect and the {certified} node key(s) it certified are no longer trusted",
        identity.who(),
        identity.key.short(),
        date(since)
    );
}

/// This node's own key was revoked.
pub fn own_key_revoked(key: &AuthorKey, signer: &str, since: u64) {
    tracing::error!(
        key = %key.short(),
        signed_by = %signer,
        suspect_since = %date(since),
        "THIS NODE'S KEY IS REVOKED (signed by {signer}); what it signed since {} is suspect. Set up a new node key and ask the members to add it",
        date(since)
    );
}

/// A fork proved a key is in two hands.
pub fn fork_detected(member: &Named<'_>, own: bool, detected_at: u64, from_seq: u64) {
    let who = if own {
        "THIS NODE'S OWN KEY".to_owned()
    } else {
        member.who()
    };
    tracing::warn!(
        key = %member.key.short(),
        member = %member.name,
        collective = %member.collective,
        detected_at = %date(detected_at),
        suspect_from_seq = from_seq,
        "KEY COMPROMISE: {who} ({}) signed two conflicting messages (detected {}); its messages from seq {from_seq} on are suspect and no longer accepted",
        member.key.short(),
        date(detected_at)
    );
}

/// A certificate the key was trusted through ended.
pub fn certificate_ended(member: &Named<'_>, identity: &str, at: u64) {
    tracing::warn!(
        key = %member.key.short(),
        member = %member.name,
        collective = %member.collective,
        identity = %identity,
        ended = %date(at),
        "certificate of {} ({}) by identity {identity} ended {}; no longer trusted",
        member.who(),
        member.key.short(),
        date(at)
    );
}

/// A certificate the key is trusted through ends within a week
/// (`solidarity_engine::engine::CERTIFICATE_WARNING_MS`).
pub fn certificate_ending(member: &Named<'_>, identity: &str, at: u64) {
    tracing::warn!(
        key = %member.key.short(),
        member = %member.name,
        collective = %member.collective,
        identity = %identity,
        ends = %date(at),
        "certificate of {} ({}) by identity {identity} ends {}; ask its collective for a renewal",
        member.who(),
        member.key.short(),
        date(at)
    );
}
