//! Input: one byte selecting the kind (index into `solidarity_fuzz::BODY_KINDS`, modulo its
//! length; the last is a kind this version does not know), then the body bytes.
//!
//! Properties: no panic; a decoded body keeps every field limit (`Body::check`), names its
//! kind, and its re-encoding decodes to the same body; unknown kinds decode to
//! `Body::Unknown` whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use solidarity_fuzz::BODY_KINDS;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let kind = BODY_KINDS[usize::from(selector) % BODY_KINDS.len()];
    solidarity_fuzz::check_body(kind, body);
});
