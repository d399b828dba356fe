//! The key layout of the table in [`super`]: prefixes, key builders and the record and
//! kept-canary encodings.

use solidarity_proto::{AuthorKey, MessageId};

use crate::{MessageMeta, NewMessage, StoreError, StoredEnvelope};

pub(super) const ENVELOPE: u8 = b'E';
pub(super) const CHAIN: u8 = b'C';
pub(super) const RECENT: u8 = b'R';
/// The referring index of layout 3 (target ‖ id), replaced by [`REFERRING`] in layout 4.
pub(crate) const REFERS_V3: u8 = b'T';
pub(super) const REFERRING: u8 = b'g';
pub(super) const REFERRING_COUNT: u8 = b'h';
pub(super) const STORED_BYTES: u8 = b'i';
pub(super) const BY_AUTHOR: u8 = b'j';
pub(super) const EXPIRY: u8 = b'X';
pub(super) const STATEMENT: u8 = b'S';
pub(super) const WATERMARK: u8 = b'W';
pub(super) const COUNT: u8 = b'N';
pub(super) const LAYOUT: u8 = b'V';
pub(super) const FORK: u8 = b'F';
pub(super) const COMPROMISED: u8 = b'Z';
pub(super) const KEPT_CANARIES: u8 = b'n';

/// The kind whose two latest messages per author outlive their expiry (SPEC §13.3: a member
/// that stops publishing canaries stays silent instead of looking like one that never did).
pub(super) const KEPT_KIND: &str = solidarity_proto::payload::KIND_CANARY;
/// How many of an author's latest canaries are kept.
pub(super) const KEPT_PER_AUTHOR: usize = 2;

/// First byte of a stored record kept in plain text.
pub(super) const PLAIN: u8 = 0;
/// First byte of a sealed stored record.
pub(super) const SEALED: u8 = 1;

/// The layout this version writes: the oldest one it can upgrade plus one per step of
/// [`crate::migrate`].
pub const LAYOUT_VERSION: u8 = 5;
/// Index entries read per step when a sweep walks an index.
pub(super) const SCAN_CHUNK: usize = 1024;
/// Fixed part of an `E` record before the kind name.
pub(super) const RECORD_HEADER: usize = 32 + 8 + 8 + 8 + 32 + 1;

pub(super) fn key(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut key = vec![prefix];
    for part in parts {
        key.extend_from_slice(part);
    }
    key
}

pub(super) fn chain_key(author: &AuthorKey, seq: u64) -> Vec<u8> {
    key(CHAIN, &[author.as_bytes(), &seq.to_be_bytes()])
}

pub(super) fn recent_prefix(kind: &str) -> Vec<u8> {
    key(RECENT, &[kind.as_bytes(), &[0]])
}

pub(super) fn recent_key(kind: &str, created_at: u64, id: &MessageId) -> Vec<u8> {
    key(
        RECENT,
        &[
            kind.as_bytes(),
            &[0],
            &created_at.to_be_bytes(),
            id.as_bytes(),
        ],
    )
}

/// target ‖ kind ‖ 0x00 ‖ author: one signer's messages of a kind referring to a target.
pub(crate) fn referring_group(target: &MessageId, kind: &str, author: &AuthorKey) -> Vec<u8> {
    let mut group = target.as_bytes().to_vec();
    group.extend_from_slice(kind.as_bytes());
    group.push(0);
    group.extend_from_slice(author.as_bytes());
    group
}

pub(crate) fn referring_key(group: &[u8], seq: u64, id: &MessageId) -> Vec<u8> {
    key(REFERRING, &[group, &seq.to_be_bytes(), id.as_bytes()])
}

pub(crate) fn referring_count_key(group: &[u8]) -> Vec<u8> {
    key(REFERRING_COUNT, &[group])
}

pub(crate) fn by_author_key(
    kind: &str,
    author: &AuthorKey,
    created_at: u64,
    id: &MessageId,
) -> Vec<u8> {
    key(
        BY_AUTHOR,
        &[
            kind.as_bytes(),
            &[0],
            author.as_bytes(),
            &created_at.to_be_bytes(),
            id.as_bytes(),
        ],
    )
}

pub(crate) fn stored_bytes_key(author: &AuthorKey) -> Vec<u8> {
    key(STORED_BYTES, &[author.as_bytes()])
}

/// The bytes a stored message counts against its signer's stored budget.
pub(super) fn counted_bytes(envelope_len: usize) -> u64 {
    u64::try_from(envelope_len).unwrap_or(u64::MAX)
}

/// A lowercase hex id prefix as its whole bytes and, for an odd length, the last digit;
/// none when it is not lowercase hex or longer than an id.
pub(super) fn hex_prefix(hex: &str) -> Option<(Vec<u8>, Option<u8>)> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    if hex.len() > 64 {
        return None;
    }
    let digits: Vec<u8> = hex.bytes().map(digit).collect::<Option<_>>()?;
    let pairs = digits.chunks_exact(2);
    let odd = pairs.remainder().first().copied();
    Some((pairs.map(|pair| (pair[0] << 4) | pair[1]).collect(), odd))
}

pub(super) fn read_id(bytes: &[u8]) -> Result<MessageId, StoreError> {
    let array: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt { what: "id" })?;
    Ok(MessageId(array))
}

pub(super) fn read_u64(bytes: &[u8]) -> Result<u64, StoreError> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt { what: "integer" })?;
    Ok(u64::from_be_bytes(array))
}

/// The id at the end of an index key.
pub(crate) fn trailing_id(index_key: &[u8]) -> Result<MessageId, StoreError> {
    index_key
        .len()
        .checked_sub(32)
        .ok_or(StoreError::Corrupt { what: "index" })
        .and_then(|at| read_id(&index_key[at..]))
}

/// Seq at the end of a `C` key.
pub(super) fn chain_key_seq(key: &[u8]) -> Result<u64, StoreError> {
    key.get(33..41)
        .ok_or(StoreError::Corrupt { what: "chain" })
        .and_then(read_u64)
}

pub(super) fn decode_compromise_marker(value: &[u8]) -> Result<(u64, u64), StoreError> {
    let corrupt = StoreError::Corrupt { what: "compromise" };
    let detected_at = read_u64(
        value
            .get(..8)
            .ok_or_else(|| StoreError::Corrupt { what: "compromise" })?,
    )?;
    let from_seq = read_u64(value.get(8..16).ok_or(corrupt)?)?;
    Ok((detected_at, from_seq))
}

pub(super) fn encode_record(message: &NewMessage) -> Result<Vec<u8>, StoreError> {
    let kind_len =
        u8::try_from(message.kind.len()).map_err(|_| StoreError::Corrupt { what: "kind name" })?;
    let mut value = Vec::with_capacity(RECORD_HEADER + message.kind.len() + message.envelope.len());
    value.extend_from_slice(message.author.as_bytes());
    value.extend_from_slice(&message.seq.to_be_bytes());
    value.extend_from_slice(&message.created_at.to_be_bytes());
    value.extend_from_slice(&message.expires_at.unwrap_or(0).to_be_bytes());
    value.extend_from_slice(message.refers_to.map_or([0; 32], |id| id.0).as_slice());
    value.push(kind_len);
    value.extend_from_slice(message.kind.as_bytes());
    value.extend_from_slice(&message.envelope);
    Ok(value)
}

/// Splits an `E` record into its facts and the envelope bytes.
pub(crate) fn decode_record(value: &[u8]) -> Result<(MessageMeta, &[u8]), StoreError> {
    let corrupt = || StoreError::Corrupt { what: "record" };
    if value.len() < RECORD_HEADER {
        return Err(corrupt());
    }
    let author: [u8; 32] = value[..32].try_into().map_err(|_| corrupt())?;
    let expires_at = read_u64(&value[48..56])?;
    let refers_to = read_id(&value[56..88])?;
    let kind_end = RECORD_HEADER + usize::from(value[88]);
    let kind = value.get(RECORD_HEADER..kind_end).ok_or_else(corrupt)?;
    let meta = MessageMeta {
        author: AuthorKey(author),
        seq: read_u64(&value[32..40])?,
        created_at: read_u64(&value[40..48])?,
        expires_at: (expires_at != 0).then_some(expires_at),
        refers_to: (refers_to.0 != [0; 32]).then_some(refers_to),
        kind: std::str::from_utf8(kind).map_err(|_| corrupt())?.to_owned(),
    };
    Ok((meta, &value[kind_end..]))
}

pub(super) fn stored_from_record(
    id: MessageId,
    record: &[u8],
) -> Result<StoredEnvelope, StoreError> {
    let (meta, envelope) = decode_record(record)?;
    Ok(StoredEnvelope {
        id,
        seq: meta.seq,
        envelope: envelope.to_vec(),
    })
}

pub(super) fn locator(author: &AuthorKey, seq: u64) -> Vec<u8> {
    let mut value = author.as_bytes().to_vec();
    value.extend_from_slice(&seq.to_be_bytes());
    value
}

/// A kept number (count, watermark); absent means 0.
pub(super) fn kept_number(value: Option<Vec<u8>>) -> Result<u64, StoreError> {
    value.map_or(Ok(0), |bytes| read_u64(&bytes))
}

pub(super) fn encode_kept(kept: &[StoredEnvelope]) -> Result<Vec<u8>, StoreError> {
    let mut value = Vec::new();
    for stored in kept {
        let len = u32::try_from(stored.envelope.len()).map_err(|_| StoreError::Corrupt {
            what: "kept canary",
        })?;
        value.extend_from_slice(&stored.seq.to_be_bytes());
        value.extend_from_slice(stored.id.as_bytes());
        value.extend_from_slice(&len.to_be_bytes());
        value.extend_from_slice(&stored.envelope);
    }
    Ok(value)
}

pub(super) fn decode_kept(mut value: &[u8]) -> Result<Vec<StoredEnvelope>, StoreError> {
    let corrupt = || StoreError::Corrupt {
        what: "kept canary",
    };
    let mut kept = Vec::new();
    while !value.is_empty() {
        let (seq, rest) = value.split_at_checked(8).ok_or_else(corrupt)?;
        let (id, rest) = rest.split_at_checked(32).ok_or_else(corrupt)?;
        let (len, rest) = rest.split_at_checked(4).ok_or_else(corrupt)?;
        let len = u32::from_be_bytes(len.try_into().map_err(|_| corrupt())?);
        let len = usize::try_from(len).map_err(|_| corrupt())?;
        let (envelope, rest) = rest.split_at_checked(len).ok_or_else(corrupt)?;
        kept.push(StoredEnvelope {
            id: read_id(id)?,
            seq: read_u64(seq)?,
            envelope: envelope.to_vec(),
        });
        value = rest;
    }
    Ok(kept)
}

/// Adds `stored` to an author's kept canaries: the latest [`KEPT_PER_AUTHOR`] by seq.
pub(super) fn keep_latest(kept: &mut Vec<StoredEnvelope>, stored: StoredEnvelope) {
    if kept.iter().any(|held| held.seq == stored.seq) {
        return;
    }
    kept.push(stored);
    kept.sort_by_key(|held| held.seq);
    let excess = kept.len().saturating_sub(KEPT_PER_AUTHOR);
    kept.drain(..excess);
}
