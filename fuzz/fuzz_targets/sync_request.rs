//! Input: the CBOR of a SyncRequest, as the responder's `answer_sync` receives it.
//!
//! Properties: no panic; a decoded request keeps its limits (input size, author count,
//! page limit within 1..=MAX_PAGE_ENVELOPES, statement-phase signers and held ids),
//! re-encodes within `MAX_REQUEST_BYTES`, and its encoding decodes to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use solidarity_proto::sync::{
    HELD_ID_BYTES, MAX_HELD_IDS, MAX_HELD_PER_SIGNER, MAX_PAGE_ENVELOPES, MAX_REQUEST_BYTES,
    MAX_STATEMENT_SIGNERS, MAX_SYNC_AUTHORS, SyncRequest,
};

fuzz_target!(|data: &[u8]| {
    let Ok(request) = SyncRequest::decode(data) else {
        return;
    };
    assert!(data.len() <= MAX_REQUEST_BYTES);
    assert!(request.have.len() <= MAX_SYNC_AUTHORS);
    assert!((1..=MAX_PAGE_ENVELOPES as usize).contains(&request.page_limit()));
    if let Some(signers) = &request.statements {
        assert!(signers.len() <= MAX_STATEMENT_SIGNERS);
        let mut held = 0;
        for signer in signers {
            assert_eq!(signer.held.len() % HELD_ID_BYTES, 0);
            assert!(signer.held.len() <= MAX_HELD_PER_SIGNER * HELD_ID_BYTES);
            held += signer.held.len();
        }
        assert!(held <= MAX_HELD_IDS * HELD_ID_BYTES);
    }
    let encoded = request.encode();
    assert!(
        encoded.len() <= MAX_REQUEST_BYTES,
        "a decoded request re-encodes over the limit"
    );
    let again = SyncRequest::decode(&encoded).expect("re-encoded request decodes");
    assert_eq!(again, request);
});
