//! Input: one flags byte, then payload bytes. The harness signs the payload with the
//! vectors' `key1`, so the fuzzer reaches every check after the signature (clock, forks,
//! body decoding and limits, update targets) instead of stopping at `bad_signature`.
//!
//! Flags: bits 0–1 the clock (vectors' now, 0, u64::MAX, now + 1 h); bit 2 the signer is
//! a member; bit 3 the store holds the message the payload names as `prev` at seq − 1;
//! bit 4 the store holds another message at the payload's seq; bits 5–6 what the store says
//! any id is (nothing, an alert of the signer, an offer of the signer, an alert of another
//! key); bit 7 the id is already stored.
//!
//! Properties: no panic; every verdict keeps its promises (`check_validate`); a store
//! consistent with the message's chain never yields a fork; a validly signed message whose
//! header and body pass is accepted unless the context gives a reason not to.
#![no_main]

use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use serde_bytes::ByteArray;
use solidarity_fuzz::{Context, KEY1_SECRET, Target, VECTORS_NOW_MS, check_validate};
use solidarity_proto::envelope::{self, Envelope};
use solidarity_proto::{AuthorKey, MessageId, Payload, Verdict};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, payload_bytes)) = data.split_first() else {
        return;
    };
    let key = SigningKey::from_bytes(&KEY1_SECRET);
    let signer = envelope::author_key(&key);
    let other = AuthorKey([0x42; 32]);
    // Sign the payload bytes verbatim (not a re-encoding), as an author of any
    // implementation could.
    let envelope_bytes = {
        use ed25519_dalek::Signer;
        let mut signed = envelope::SIGNATURE_DOMAIN.to_vec();
        signed.extend_from_slice(payload_bytes);
        Envelope {
            v: solidarity_proto::PROTOCOL_VERSION,
            signer,
            payload: payload_bytes.to_vec(),
            sig: ByteArray::new(key.sign(&signed).to_bytes()),
        }
        .encode()
    };
    let header = Payload::decode(payload_bytes).ok();
    let seq = header.as_ref().map_or(1, |header| header.seq);
    let mut context = Context::empty(Vec::new());
    context.now_ms = match flags & 0b11 {
        0 => VECTORS_NOW_MS,
        1 => 0,
        2 => u64::MAX,
        _ => VECTORS_NOW_MS + 3_600_000,
    };
    if flags & 0b100 != 0 {
        context.members.push(signer);
    }
    let consistent_chain = flags & 0b1000 != 0;
    if consistent_chain
        && seq > 1
        && let Some(prev) = header.as_ref().and_then(|header| header.prev)
    {
        context.chain = Some((signer, seq - 1, prev));
    }
    let conflict = flags & 0b1_0000 != 0;
    if conflict {
        context.conflict = Some((signer, seq, MessageId([0xee; 32])));
    }
    context.target = match (flags >> 5) & 0b11 {
        0 => Target::None,
        1 => Target::Alert(signer),
        2 => Target::Offer(signer),
        _ => Target::Alert(other),
    };
    context.contains_all = flags & 0b1000_0000 != 0;

    let verdict = check_validate(&envelope_bytes, &context);
    if let Verdict::Fork(_) = verdict {
        assert!(conflict, "a store consistent with the chain yielded a fork");
    }
});
