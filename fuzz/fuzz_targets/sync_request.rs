//! Input: the CBOR of a SyncRequest, as the responder's `answer_sync` receives it.
//!
//! Properties: no panic; a decoded request keeps its limits (input size, author count,
//! page limit within 1..=MAX_PAGE_ENVELOPES), re-encodes within `MAX_REQUEST_BYTES`, and its
//! encoding decodes to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use solidarity_proto::sync::{
    MAX_PAGE_ENVELOPES, MAX_REQUEST_BYTES, MAX_SYNC_AUTHORS, SyncRequest,
};

fuzz_target!(|data: &[u8]| {
    let Ok(request) = SyncRequest::decode(data) else {
        return;
    };
    assert!(data.len() <= MAX_REQUEST_BYTES);
    assert!(request.have.len() <= MAX_SYNC_AUTHORS);
    assert!((1..=MAX_PAGE_ENVELOPES as usize).contains(&request.page_limit()));
    let encoded = request.encode();
    assert!(
        encoded.len() <= MAX_REQUEST_BYTES,
        "a decoded request re-encodes over the limit"
    );
    let again = SyncRequest::decode(&encoded).expect("re-encoded request decodes");
    assert_eq!(again, request);
});
