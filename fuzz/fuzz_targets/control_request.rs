//! Input: one request line as the daemon's control server reads it (up to and including
//! the newline, at most `MAX_REQUEST_BYTES + 1` bytes), given to
//! `solidarity_control::parse_request`, the function the server calls.
//!
//! Properties: no panic; oversized lines are refused as too large and nothing else is; a
//! parsed request serialises (as the CLI sends it) to a line that parses to the same
//! request; the refusal message (sent back to the client) formats.
#![no_main]

use libfuzzer_sys::fuzz_target;
use solidarity_control::{MAX_REQUEST_BYTES, RequestError, parse_request};

fuzz_target!(|data: &[u8]| {
    match parse_request(data) {
        Ok(request) => {
            assert!(data.len() <= MAX_REQUEST_BYTES);
            let mut line = serde_json::to_vec(&request).expect("a request serialises");
            line.push(b'\n');
            let again = parse_request(&line).expect("a serialised request parses");
            assert_eq!(again, request, "request JSON round trip");
        }
        Err(error) => {
            assert_eq!(
                matches!(error, RequestError::TooLarge),
                data.len() > MAX_REQUEST_BYTES
            );
            let _ = error.to_string();
        }
    }
});
