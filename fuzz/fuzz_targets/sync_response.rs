//! Input: the CBOR of a SyncResponse, as the requester's `handle_sync_page` receives it.
//!
//! Properties: no panic; a decoded response keeps its limits (input size, envelope count)
//! and its encoding decodes to the same response; each envelope it carries goes through
//! the envelope decoder without panicking, canonical when it decodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use solidarity_proto::Envelope;
use solidarity_proto::sync::{MAX_PAGE_ENVELOPES, MAX_RESPONSE_BYTES, SyncResponse};

fuzz_target!(|data: &[u8]| {
    let Ok(response) = SyncResponse::decode(data) else {
        return;
    };
    assert!(data.len() <= MAX_RESPONSE_BYTES);
    assert!(response.envelopes.len() <= MAX_PAGE_ENVELOPES as usize);
    let again = SyncResponse::decode(&response.encode()).expect("re-encoded response decodes");
    assert_eq!(again, response);
    for bytes in &response.envelopes {
        if let Ok(envelope) = Envelope::decode(bytes) {
            assert_eq!(envelope.encode(), bytes.as_slice());
        }
    }
});
