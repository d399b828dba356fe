//! What each vector's bytes hold, for readers in another language: the envelope, payload
//! and body in CBOR diagnostic notation (RFC 8949 §8, written from the bytes as they are,
//! non-canonical forms included), and the typed header and body where they decode.

use serde_json::{Value, json};
use solidarity_proto::{Body, Envelope, Payload};

/// The `decoded` entry of a vector: each layer that decodes, as far as it does.
pub(crate) fn decoded(bytes: &[u8]) -> Value {
    let envelope = Envelope::decode(bytes).ok();
    let header = envelope
        .as_ref()
        .and_then(|envelope| Payload::decode(&envelope.payload).ok());
    let body = header
        .as_ref()
        .and_then(|header| Body::decode(&header.kind, &header.body).ok());
    json!({
        "envelope_diagnostic": diagnostic(bytes),
        "envelope": envelope.as_ref().map(|envelope| json!({
            "v": envelope.v,
            "signer": envelope.signer.to_hex(),
            "payload_size": envelope.payload.len(),
            "sig": hex::encode(*envelope.sig),
        })),
        "payload_diagnostic": envelope.as_ref().and_then(|envelope| diagnostic(&envelope.payload)),
        "header": header.as_ref().map(|header| json!({
            "fed": header.fed.to_hex(),
            "seq": header.seq,
            "prev": header.prev.map(|prev| prev.to_hex()),
            "created_at": header.created_at,
            "expires_at": header.expires_at,
            "kind": header.kind,
            "body_size": header.body.len(),
        })),
        "body_diagnostic": header.as_ref().and_then(|header| diagnostic(&header.body)),
        "body": body.as_ref().and_then(typed_body),
    })
}

/// A decoded body of a known kind as JSON: ids and keys as hex, enumerations as their
/// names, the canary token as hex.
fn typed_body(body: &Body) -> Option<Value> {
    let value = match body {
        Body::Alert(body) => serde_json::to_value(body),
        Body::AlertUpdate(body) => serde_json::to_value(body),
        Body::MirrorOffer(body) => serde_json::to_value(body),
        Body::MirrorWithdraw(body) => serde_json::to_value(body),
        Body::Canary(body) => {
            let mut value = serde_json::to_value(body).expect("JSON");
            value["token"] = json!(hex::encode(&body.token));
            Ok(value)
        }
        Body::Endorsement(body) => serde_json::to_value(body),
        Body::Vouch(body) => serde_json::to_value(body),
        Body::Revocation(body) => serde_json::to_value(body),
        Body::NodeCert(body) => serde_json::to_value(body),
        Body::Unknown => return None,
    };
    Some(value.expect("JSON"))
}

/// CBOR diagnostic notation of one data item filling `bytes`, or `None` when they are not
/// one well-formed item. A non-shortest argument carries its encoding indicator (`_0` …
/// `_3`), an indefinite length `_`, and anything after the item is shown as `, h'…'` after it.
pub(crate) fn diagnostic(bytes: &[u8]) -> Option<String> {
    let mut pos = 0;
    let mut out = String::new();
    item(bytes, &mut pos, &mut out, 0)?;
    if pos < bytes.len() {
        out.push_str(&format!(", h'{}'", hex::encode(&bytes[pos..])));
    }
    Some(out)
}

/// Deepest nesting shown; the vectors nest a few levels.
const MAX_DEPTH: usize = 64;

enum Argument {
    Value(u64, Option<u8>),
    Indefinite,
}

fn argument(bytes: &[u8], pos: &mut usize, info: u8) -> Option<Argument> {
    if info < 24 {
        return Some(Argument::Value(u64::from(info), None));
    }
    if info == 31 {
        return Some(Argument::Indefinite);
    }
    if info > 27 {
        return None;
    }
    let width = 1usize << (info - 24);
    let raw = bytes.get(*pos..pos.checked_add(width)?)?;
    *pos += width;
    let value = raw
        .iter()
        .fold(0u64, |value, byte| (value << 8) | u64::from(*byte));
    let shortest = match value {
        0..=23 => None,
        24..=0xff => Some(0),
        0x100..=0xffff => Some(1),
        0x1_0000..=0xffff_ffff => Some(2),
        _ => Some(3),
    };
    let indicator = (shortest != Some(info - 24)).then_some(info - 24);
    Some(Argument::Value(value, indicator))
}

fn indicator(indicator: Option<u8>) -> String {
    indicator.map_or_else(String::new, |width| format!("_{width}"))
}

fn item(bytes: &[u8], pos: &mut usize, out: &mut String, depth: usize) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    let initial = *bytes.get(*pos)?;
    *pos += 1;
    let (major, info) = (initial >> 5, initial & 0x1f);
    let arg = argument(bytes, pos, info)?;
    match (major, arg) {
        (0, Argument::Value(value, width)) => out.push_str(&format!("{value}{}", indicator(width))),
        (1, Argument::Value(value, width)) => {
            out.push_str(&format!("{}{}", -1 - i128::from(value), indicator(width)));
        }
        (2 | 3, Argument::Value(length, width)) => {
            let end = pos.checked_add(usize::try_from(length).ok()?)?;
            let content = bytes.get(*pos..end)?;
            *pos = end;
            if major == 2 {
                out.push_str(&format!("h'{}'{}", hex::encode(content), indicator(width)));
            } else {
                let text = std::str::from_utf8(content).ok()?;
                out.push_str(&serde_json::to_string(text).expect("JSON string"));
                out.push_str(&indicator(width));
            }
        }
        (4 | 5, arg) => {
            let (open, close) = if major == 4 { ('[', ']') } else { ('{', '}') };
            out.push(open);
            let count = match arg {
                Argument::Value(count, width) => {
                    if let Some(width) = width {
                        out.push_str(&format!("_{width} "));
                    }
                    Some(count)
                }
                Argument::Indefinite => {
                    out.push_str("_ ");
                    None
                }
            };
            let mut index = 0u64;
            loop {
                match count {
                    Some(count) if index == count => break,
                    None if *bytes.get(*pos)? == 0xff => {
                        *pos += 1;
                        break;
                    }
                    _ => {}
                }
                if index > 0 {
                    out.push_str(", ");
                }
                item(bytes, pos, out, depth + 1)?;
                if major == 5 {
                    out.push_str(": ");
                    item(bytes, pos, out, depth + 1)?;
                }
                index += 1;
            }
            out.push(close);
        }
        (6, Argument::Value(tag, width)) => {
            out.push_str(&format!("{tag}{}(", indicator(width)));
            item(bytes, pos, out, depth + 1)?;
            out.push(')');
        }
        (7, Argument::Value(value, _)) => out.push_str(&match (info, value) {
            (20, _) => "false".to_owned(),
            (21, _) => "true".to_owned(),
            (22, _) => "null".to_owned(),
            (23, _) => "undefined".to_owned(),
            (25..=27, bits) => format!("float(0x{bits:x})"),
            (_, simple) => format!("simple({simple})"),
        }),
        _ => return None,
    }
    Some(())
}
