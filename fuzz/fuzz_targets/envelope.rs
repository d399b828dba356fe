//! Input: envelope bytes as received by gossip or sync (the vectors' `.hex` files).
//!
//! Properties: no panic; a decoded envelope is in canonical encoding (its re-encoding is the
//! input, as `Envelope::decode` promises); the gossip id hashes the bytes themselves, so it
//! is never the content id (a corrupted copy cannot shadow the honest one); the full
//! validation verdict keeps its promises
//! (`solidarity_fuzz::check_validate`) for a receiver that trusts the vectors' keys with an
//! empty store, and for one that trusts everyone and stores a conflicting chain.
#![no_main]

use libfuzzer_sys::fuzz_target;
use solidarity_fuzz::{Context, Target, check_validate};
use solidarity_proto::envelope::{self, Envelope, MAX_ENVELOPE_BYTES};
use solidarity_proto::{AuthorKey, MessageId};

/// Public keys `key1` and `key2` of the test vectors (members in most vectors).
const KEY1_PUBLIC: &str = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c";
const KEY2_PUBLIC: &str = "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394";

fuzz_target!(|data: &[u8]| {
    let decoded = Envelope::decode(data);
    if let Ok(envelope) = &decoded {
        assert_eq!(
            envelope.encode(),
            data,
            "decode accepted a non-canonical encoding"
        );
        assert_eq!(
            Envelope::decode(&envelope.encode()).ok().as_ref(),
            Some(envelope)
        );
    }
    let id = envelope::message_id_of_envelope_bytes(data);
    let expected = decoded
        .as_ref()
        .ok()
        .filter(|_| data.len() <= MAX_ENVELOPE_BYTES)
        .map(Envelope::id);
    assert_eq!(id, expected);
    let gossip = envelope::gossip_message_id(data);
    assert_eq!(gossip, envelope::gossip_message_id(data), "one id per bytes");
    if let Some(id) = id {
        assert_ne!(gossip, id.0, "the gossip id is not the content id");
    }

    let key1: AuthorKey = KEY1_PUBLIC.parse().expect("hex key");
    let key2: AuthorKey = KEY2_PUBLIC.parse().expect("hex key");
    check_validate(data, &Context::empty(vec![key1, key2]));

    let mut busy = Context::empty(Vec::new());
    busy.everyone_is_member = true;
    if let Ok(envelope) = &decoded {
        // A store holding other messages of the signer at every seq the payload may name.
        if let Ok(header) = solidarity_proto::Payload::decode(&envelope.payload) {
            busy.conflict = Some((envelope.signer, header.seq, MessageId([0xee; 32])));
            busy.chain = header
                .seq
                .checked_sub(1)
                .map(|before| (envelope.signer, before, MessageId([0xdd; 32])));
        }
        busy.target = Target::Alert(key2);
    }
    check_validate(data, &busy);
});
