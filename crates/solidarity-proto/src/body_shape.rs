//! The body decoding rule of SPEC §8.2: one verdict for every body a conforming author
//! could not have produced.
//!
//! A known kind's body must be one canonical CBOR map (§3): definite lengths, shortest
//! heads, text keys, no duplicate key, no tag, float, negative integer, `null` or
//! `undefined`, nothing after it. Its known keys come in declaration order; keys the kind
//! does not define may stand anywhere and are skipped (their values obey the same rules).
//! The known entries are then decoded and must re-encode to exactly their bytes (no empty
//! list where the list is omitted when empty, enumerations from their lists). Anything else
//! is `bad_body`. A 32-byte field holding a byte string of another length is a broken
//! limit (`field_limit`), like any other length rule, not a decoding failure.
//!
//! The serde decoder alone is lenient (any key order, integer keys, arrays for maps,
//! `null` for an absent option, non-shortest heads), so its verdict would be a property of
//! one CBOR library; this walk makes it a property of the bytes.

use std::collections::BTreeSet;

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::forward_to_deserialize_any;

use crate::codec::{self, DecodeError};
use crate::field_rules::problem;
use crate::payload::FieldError;

/// Length of the fixed-size byte-string fields (ids and keys) of a body.
const FIXED_BYTES: usize = 32;

/// Why a body was refused: not the kind's shape, or a fixed-length field of another length.
#[derive(Debug)]
pub(crate) enum ShapeError {
    /// `bad_body`.
    Decode(DecodeError),
    /// `field_limit`.
    Field(FieldError),
}

/// Decodes the body of a known kind by the rule of SPEC §8.2. `fixed` names the fields
/// that hold a 32-byte id or key.
pub(crate) fn decode_body<T>(bytes: &[u8], fixed: &[&'static str]) -> Result<T, ShapeError>
where
    T: serde::Serialize + DeserializeOwned,
{
    let known = field_names::<T>();
    let mut reader = Reader { bytes, pos: 0 };
    let entries = reader.map_head().map_err(ShapeError::Decode)?;
    let mut seen = BTreeSet::new();
    let mut last_known: Option<usize> = None;
    let mut kept: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut kept_count: u64 = 0;
    let mut wrong_length: Option<FieldError> = None;
    for _ in 0..entries {
        let key_start = reader.pos;
        let key = reader.text_key().map_err(ShapeError::Decode)?;
        if !seen.insert(key) {
            return Err(ShapeError::Decode(not_canonical("duplicate key")));
        }
        let value_start = reader.pos;
        reader.skip_item().map_err(ShapeError::Decode)?;
        let Some(position) = known.iter().position(|name| *name == key) else {
            continue;
        };
        if last_known.is_some_and(|last| last > position) {
            return Err(ShapeError::Decode(not_canonical(
                "known keys out of declaration order",
            )));
        }
        last_known = Some(position);
        kept.extend_from_slice(&bytes[key_start..value_start]);
        let value = &bytes[value_start..reader.pos];
        match fixed.iter().find(|name| **name == key) {
            Some(name) if is_byte_string(value) && byte_string_len(value) != Some(FIXED_BYTES) => {
                wrong_length.get_or_insert_with(|| problem(name, "must be 32 bytes"));
                kept.extend_from_slice(&[0x58, 0x20]);
                kept.extend_from_slice(&[0; FIXED_BYTES]);
            }
            _ => kept.extend_from_slice(value),
        }
        kept_count += 1;
    }
    if reader.pos != bytes.len() {
        return Err(ShapeError::Decode(not_canonical("trailing bytes")));
    }
    let mut map = head(5, kept_count);
    map.extend_from_slice(&kept);
    let value = codec::decode_canonical(&map)
        .map_err(|error| ShapeError::Decode(not_canonical(&error.to_string())))?;
    match wrong_length {
        Some(field) => Err(ShapeError::Field(field)),
        None => Ok(value),
    }
}

/// Longest reason kept from a decoder's message, in characters.
const REASON_CHARS: usize = 120;

/// A `bad_body` reason. The decoder's message can quote the author's bytes (an unknown
/// enum value, say) and ends up in logs: control characters are escaped, so a member
/// cannot forge log lines, and the text is cut to [`REASON_CHARS`].
fn not_canonical(reason: &str) -> DecodeError {
    let mut quoted = String::new();
    for character in reason.chars() {
        if quoted.chars().count() >= REASON_CHARS {
            quoted.push('…');
            break;
        }
        if character.is_control() {
            quoted.extend(character.escape_default());
        } else {
            quoted.push(character);
        }
    }
    DecodeError::new(format!("not a canonical body: {quoted}"))
}

fn is_byte_string(item: &[u8]) -> bool {
    item.first().is_some_and(|initial| initial >> 5 == 2)
}

/// The content length of a byte string item already checked by [`Reader::skip_item`].
fn byte_string_len(item: &[u8]) -> Option<usize> {
    let mut reader = Reader {
        bytes: item,
        pos: 0,
    };
    let (_, length) = reader.head().ok()?;
    usize::try_from(length).ok()
}

/// The canonical head of `major` with `value`.
fn head(major: u8, value: u64) -> Vec<u8> {
    let major = major << 5;
    match value {
        0..=23 => vec![major | value as u8],
        24..=0xff => vec![major | 24, value as u8],
        0x100..=0xffff => [&[major | 25][..], &(value as u16).to_be_bytes()].concat(),
        0x1_0000..=0xffff_ffff => [&[major | 26][..], &(value as u32).to_be_bytes()].concat(),
        _ => [&[major | 27][..], &value.to_be_bytes()].concat(),
    }
}

/// A walk over CBOR bytes that accepts only the canonical forms of the types of SPEC §3.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// A container being walked: how many items remain, and for a map the keys seen.
struct Frame<'a> {
    remaining: u64,
    keys: Option<BTreeSet<&'a str>>,
    next_is_key: bool,
}

impl<'a> Reader<'a> {
    fn take(&mut self, length: u64) -> Result<&'a [u8], DecodeError> {
        let end = usize::try_from(length)
            .ok()
            .and_then(|length| self.pos.checked_add(length))
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| not_canonical("truncated"))?;
        let taken = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(taken)
    }

    /// Reads an item's head: its major type and argument. Refuses indefinite lengths,
    /// non-shortest arguments, reserved values and every major-7 item but `false`/`true`.
    fn head(&mut self) -> Result<(u8, u64), DecodeError> {
        let initial = self.take(1)?[0];
        let (major, info) = (initial >> 5, initial & 0x1f);
        let value = match info {
            0..=23 => u64::from(info),
            24..=27 => {
                let width = 1u64 << (info - 24);
                let value = self
                    .take(width)?
                    .iter()
                    .fold(0u64, |value, byte| (value << 8) | u64::from(*byte));
                let smallest = if info == 24 {
                    24
                } else {
                    1u64 << (4 << (info - 24))
                };
                if value < smallest {
                    return Err(not_canonical("integer or length not in its shortest form"));
                }
                value
            }
            31 => return Err(not_canonical("indefinite length")),
            _ => return Err(not_canonical("reserved head")),
        };
        match major {
            0 | 2..=5 => Ok((major, value)),
            7 if matches!(info, 20 | 21) => Ok((major, value)),
            1 => Err(not_canonical("negative integer")),
            6 => Err(not_canonical("tag")),
            _ => Err(not_canonical("float, null, undefined or simple value")),
        }
    }

    fn map_head(&mut self) -> Result<u64, DecodeError> {
        match self.head()? {
            (5, entries) => Ok(entries),
            _ => Err(not_canonical("not a map")),
        }
    }

    fn text(&mut self, length: u64) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.take(length)?).map_err(|_| not_canonical("text is not UTF-8"))
    }

    fn text_key(&mut self) -> Result<&'a str, DecodeError> {
        match self.head()? {
            (3, length) => self.text(length),
            _ => Err(not_canonical("map key is not a text string")),
        }
    }

    /// Skips one item, nested containers included, without recursion (a hostile body
    /// cannot exhaust the stack).
    fn skip_item(&mut self) -> Result<(), DecodeError> {
        let mut stack: Vec<Frame<'a>> = Vec::new();
        loop {
            let is_key = match stack.last_mut() {
                Some(frame) => {
                    frame.remaining -= 1;
                    let is_key = frame.keys.is_some() && frame.next_is_key;
                    frame.next_is_key = !frame.next_is_key;
                    is_key
                }
                None => false,
            };
            if is_key {
                let key = self.text_key()?;
                let keys = stack.last_mut().and_then(|frame| frame.keys.as_mut());
                if keys.is_some_and(|keys| !keys.insert(key)) {
                    return Err(not_canonical("duplicate key"));
                }
            } else {
                match self.head()? {
                    (2, length) => {
                        self.take(length)?;
                    }
                    (3, length) => {
                        self.text(length)?;
                    }
                    (4, items) if items > 0 => stack.push(Frame {
                        remaining: items,
                        keys: None,
                        next_is_key: false,
                    }),
                    (5, entries) if entries > 0 => stack.push(Frame {
                        remaining: entries
                            .checked_mul(2)
                            .ok_or_else(|| not_canonical("truncated"))?,
                        keys: Some(BTreeSet::new()),
                        next_is_key: true,
                    }),
                    _ => {}
                }
            }
            // Only the innermost containers can be complete: each one's last item is the
            // container inside it.
            while stack.last().is_some_and(|frame| frame.remaining == 0) {
                stack.pop();
            }
            if stack.is_empty() {
                return Ok(());
            }
        }
    }
}

/// The field names of a struct in declaration order, as its serde derive lists them.
fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut fields = None;
    // The probe always ends in an error once it has read the names.
    let _ = T::deserialize(FieldNameProbe(&mut fields));
    fields.unwrap_or(&[])
}

/// A deserializer that only records the field list a derived struct asks for.
struct FieldNameProbe<'f>(&'f mut Option<&'static [&'static str]>);

impl<'de> Deserializer<'de> for FieldNameProbe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(de::Error::custom("field names read"))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::{Alert, AlertUpdate, Canary, KIND_ALERT, Revocation};

    #[test]
    fn field_names_come_from_the_derive_in_declaration_order() {
        assert_eq!(field_names::<AlertUpdate>(), ["alert", "status", "note"]);
        assert_eq!(
            field_names::<Canary>(),
            ["statement", "codes", "interval_secs", "token"]
        );
        assert_eq!(field_names::<Alert>().len(), 15);
    }

    #[test]
    fn heads_are_canonical() {
        for (value, bytes) in [
            (0u64, vec![0xa0]),
            (23, vec![0xb7]),
            (24, vec![0xb8, 24]),
            (256, vec![0xb9, 1, 0]),
            (65_536, vec![0xba, 0, 1, 0, 0]),
            (1 << 32, vec![0xbb, 0, 0, 0, 1, 0, 0, 0, 0]),
        ] {
            assert_eq!(head(5, value), bytes, "{value}");
            let mut reader = Reader {
                bytes: &bytes,
                pos: 0,
            };
            assert_eq!(reader.map_head().ok(), Some(value));
        }
    }

    #[test]
    fn every_non_canonical_form_is_refused() {
        for (case, bytes) in [
            ("two-byte head for 5", vec![0x18, 5]),
            ("three-byte head for 255", vec![0x19, 0, 255]),
            ("five-byte head for 65535", vec![0x1a, 0, 0, 0xff, 0xff]),
            (
                "nine-byte head for 2^32-1",
                vec![0x1b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
            ),
            ("indefinite array", vec![0x9f, 0xff]),
            ("negative integer", vec![0x20]),
            ("tag", vec![0xc0, 0x60]),
            ("null", vec![0xf6]),
            ("undefined", vec![0xf7]),
            ("half float", vec![0xf9, 0, 0]),
            ("integer map key", vec![0xa1, 0x00, 0x00]),
            ("duplicate key", vec![0xa2, 0x61, b'a', 0, 0x61, b'a', 0]),
            ("text not UTF-8", vec![0x61, 0xff]),
            ("truncated byte string", vec![0x42, 0]),
            ("reserved head", vec![0x1c]),
        ] {
            let mut reader = Reader {
                bytes: &bytes,
                pos: 0,
            };
            assert!(reader.skip_item().is_err(), "{case}");
        }
        let mut reader = Reader {
            bytes: &[0x82, 0xf5, 0xa1, 0x61, b'k', 0x80],
            pos: 0,
        };
        assert!(reader.skip_item().is_ok(), "[true, {{\"k\": []}}]");
        assert_eq!(reader.pos, 6);
    }

    #[test]
    fn deep_nesting_does_not_exhaust_the_stack() {
        let mut bytes = vec![0x81; 100_000];
        bytes.push(0);
        let mut reader = Reader {
            bytes: &bytes,
            pos: 0,
        };
        assert!(reader.skip_item().is_ok());
    }

    fn revocation_map(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut bytes = head(5, entries.len() as u64);
        for (key, value) in entries {
            bytes.extend(head(3, key.len() as u64));
            bytes.extend(key.as_bytes());
            bytes.extend(value);
        }
        bytes
    }

    fn decode_revocation(bytes: &[u8]) -> Result<Revocation, ShapeError> {
        decode_body(bytes, &["key"])
    }

    #[test]
    fn unknown_keys_are_skipped_anywhere_and_known_keys_keep_their_order() {
        let reason = [&[0x66][..], b"seized"].concat();
        let extra = vec![0x82, 0x01, 0x41, 0x07];
        let body = revocation_map(&[("note", extra.clone()), ("reason", reason.clone())]);
        let revocation = decode_revocation(&body).expect("decodes");
        assert_eq!(revocation.reason, "seized");

        let since = vec![0x01];
        let key = [&[0x58, 0x20][..], &[9; 32]].concat();
        let ordered = revocation_map(&[("reason", reason.clone()), ("key", key.clone())]);
        assert!(decode_revocation(&ordered).is_ok());
        let reordered = revocation_map(&[("key", key), ("reason", reason.clone())]);
        assert!(matches!(
            decode_revocation(&reordered),
            Err(ShapeError::Decode(_))
        ));
        let with_null = revocation_map(&[("reason", reason.clone()), ("key", vec![0xf6])]);
        assert!(matches!(
            decode_revocation(&with_null),
            Err(ShapeError::Decode(_))
        ));
        let trailing = [revocation_map(&[("reason", reason.clone())]), vec![0]].concat();
        assert!(matches!(
            decode_revocation(&trailing),
            Err(ShapeError::Decode(_))
        ));
        let missing = revocation_map(&[("compromised_since", since)]);
        assert!(matches!(
            decode_revocation(&missing),
            Err(ShapeError::Decode(_))
        ));
    }

    #[test]
    fn a_fixed_field_of_another_length_is_a_field_limit_unless_the_body_is_bad() {
        let reason = [&[0x66][..], b"seized"].concat();
        let short = [&[0x58, 0x1f][..], &[9; 31]].concat();
        let body = revocation_map(&[("reason", reason), ("key", short.clone())]);
        match decode_revocation(&body) {
            Err(ShapeError::Field(field)) => assert_eq!(field.field, "key"),
            _ => panic!("a 31-byte key is a field limit"),
        }
        let without_reason = revocation_map(&[("key", short)]);
        assert!(matches!(
            decode_revocation(&without_reason),
            Err(ShapeError::Decode(_))
        ));
        let text_key = revocation_map(&[("reason", vec![0x60]), ("key", vec![0x61, b'k'])]);
        assert!(matches!(
            decode_revocation(&text_key),
            Err(ShapeError::Decode(_))
        ));
    }

    #[test]
    fn an_empty_list_present_is_not_canonical() {
        let mut alert = crate::payload::tests::sample_alert();
        alert.jurisdictions.clear();
        let canonical = codec::encode(&alert);
        assert!(
            decode_body::<Alert>(&canonical, &[]).is_ok(),
            "{KIND_ALERT}"
        );
        // The same map with `jurisdictions: []` written out after `summary`.
        let mut reader = Reader {
            bytes: &canonical,
            pos: 0,
        };
        let count = reader.map_head().expect("map");
        let mut bytes = head(5, count + 1);
        for _ in 0..count {
            let start = reader.pos;
            let key = reader.text_key().expect("key");
            reader.skip_item().expect("value");
            bytes.extend_from_slice(&canonical[start..reader.pos]);
            if key == "summary" {
                bytes.extend(head(3, 13));
                bytes.extend(b"jurisdictions");
                bytes.push(0x80);
            }
        }
        assert!(matches!(
            decode_body::<Alert>(&bytes, &[]),
            Err(ShapeError::Decode(_))
        ));
    }
}

#[cfg(test)]
mod regression_tests {
    //! What a hostile author can make of a body's verdict (found in the issue-12 review).
    use super::*;
    use crate::payload::{Body, BodyError, KIND_ALERT, KIND_CANARY};

    fn map(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut bytes = head(5, entries.len() as u64);
        for (key, value) in entries {
            bytes.extend(head(3, key.len() as u64));
            bytes.extend(key.as_bytes());
            bytes.extend(value);
        }
        bytes
    }

    fn text(value: &str) -> Vec<u8> {
        [head(3, value.len() as u64), value.as_bytes().to_vec()].concat()
    }

    /// A `bad_body` verdict's reason is logged at info ("message rejected"); it must not
    /// carry the author's raw text (a forged log line after a newline).
    #[test]
    fn a_bad_body_reason_escapes_the_authors_text() {
        let forged = "x\nINFO solidarity: forged line";
        let body = map(&[
            ("category", text(forged)),
            ("severity", text("high")),
            ("subject", text("example.org")),
            ("summary", text("s")),
        ]);
        let reason = match Body::decode(KIND_ALERT, &body) {
            Err(BodyError::Decode { source, .. }) => source.to_string(),
            other => panic!("an unlisted category is bad_body, got {other:?}"),
        };
        assert!(
            !reason.contains('\n'),
            "the reason carries the author's newline verbatim: {reason:?}"
        );
    }

    /// SPEC §8.2: the field a `field_limit` reports is "a fixed-length field of the wrong
    /// length first" — rule 4 names the canary `token` as one.
    #[test]
    fn a_short_canary_token_is_reported_before_a_long_statement() {
        let body = map(&[
            (
                "statement",
                text(&"a".repeat(crate::payload::MAX_NOTE_BYTES + 1)),
            ),
            ("codes", vec![0x80]),
            ("interval_secs", vec![0x01]),
            ("token", [vec![0x58, 31], vec![7; 31]].concat()),
        ]);
        match Body::decode(KIND_CANARY, &body) {
            Err(BodyError::Field(field)) => assert_eq!(
                field.field, "token",
                "SPEC §8.2 reports the fixed-length field first"
            ),
            other => panic!("a field limit, got {other:?}"),
        }
    }

    /// Memory the walk holds for a 16 KiB body of nested one-entry maps (informative: the
    /// envelope limit bounds it; each level costs a frame and a key set).
    #[test]
    fn nested_maps_within_the_envelope_limit_are_walked() {
        let levels = 8 * 1024 - 8;
        let mut value = Vec::new();
        for _ in 0..levels {
            value.extend([0xa1, 0x60]);
        }
        value.push(0x00);
        let body = map(&[("reason", text("r")), ("pad", value)]);
        assert!(body.len() <= 16 * 1024);
        let started = std::time::Instant::now();
        let revocation: Result<crate::payload::Revocation, _> = decode_body(&body, &["key"]);
        assert!(revocation.is_ok());
        eprintln!("{levels} nested maps walked in {:?}", started.elapsed());
    }
}
