//! A hostile sync responder's page is refused over its envelope count without the decoder
//! first building a vector many times the size of the bytes (found in the issue-12 review:
//! 2 MiB of empty strings grew the peak resident set by 53 MB).
//! Measures the process's peak resident set (Linux `VmHWM`); nextest runs this test alone
//! in its process.

use solidarity_proto::sync::{MAX_RESPONSE_BYTES, SyncResponse};

fn peak_rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .expect("VmHWM");
    let kib: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a number");
    kib * 1024
}

#[test]
fn an_over_count_response_is_refused_without_a_huge_allocation() {
    // {"envelopes": [h'', h'', ... ~2.1 million times], "more": false}, under
    // MAX_RESPONSE_BYTES: canonical, so only the count check refuses it.
    let count = MAX_RESPONSE_BYTES - 32;
    let mut bytes = vec![0xa2, 0x69];
    bytes.extend_from_slice(b"envelopes");
    bytes.push(0x9a);
    bytes.extend_from_slice(&u32::try_from(count).expect("fits").to_be_bytes());
    bytes.extend(std::iter::repeat_n(0x40u8, count));
    bytes.push(0x64);
    bytes.extend_from_slice(b"more");
    bytes.push(0xf4);
    assert!(bytes.len() <= MAX_RESPONSE_BYTES);
    let before = peak_rss_bytes();
    let result = SyncResponse::decode(&bytes);
    let peak = peak_rss_bytes().saturating_sub(before);
    let refusal = result.expect_err("over MAX_PAGE_ENVELOPES");
    assert!(refusal.to_string().contains("over its limit"), "{refusal}");
    eprintln!(
        "input {} bytes, peak resident set grew by {} bytes",
        bytes.len(),
        peak
    );
    assert!(
        peak < 8 * bytes.len(),
        "decoding a {}-byte response grew the peak resident set by {} bytes before its \
         envelope count was checked",
        bytes.len(),
        peak
    );
}
