//! Input: payload header bytes (the `payload` of an envelope).
//!
//! Properties: no panic; a decoded header is in canonical encoding (re-encoding gives the
//! input back, as `Payload::decode` promises); its body, decoded as its kind, keeps the
//! body properties (`solidarity_fuzz::check_body`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use solidarity_proto::Payload;
use solidarity_proto::codec;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = Payload::decode(data) else {
        return;
    };
    assert_eq!(
        codec::encode(&header),
        data,
        "decode accepted a non-canonical header"
    );
    solidarity_fuzz::check_body(&header.kind, &header.body);
});
