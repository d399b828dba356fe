//! The vectors of the exact decoding rules (SPEC §4, §7, §8.2, §9): every non-canonical
//! body, `bad_body` against `field_limit`, fixed-length fields, kind names, `v`, text,
//! lists, canary codes, a small-order R and an expired statement.

use ed25519_dalek::Verifier;
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha512};
use solidarity_proto::envelope::{self, SIGNATURE_DOMAIN};
use solidarity_proto::payload::{
    AlertStatus, AlertUpdate, Canary, CanaryCode, MirrorService, Revocation,
};
use solidarity_proto::{Body, Envelope, Payload};

use super::{
    CREATED_MS, Generator, IDENTITY_POINT, NOW_MS, cbor, envelope_bytes, full_alert, full_offer,
    minimal_alert, routine_canary, sample_vouch, sign_bytes,
};

/// The canonical head of a CBOR item of `major` type with argument `value`.
pub(crate) fn head(major: u8, value: u64) -> Vec<u8> {
    let major = major << 5;
    let bytes = value.to_be_bytes();
    match value {
        0..=23 => vec![major | bytes[7]],
        24..=0xff => vec![major | 24, bytes[7]],
        0x100..=0xffff => [&[major | 25][..], &bytes[6..]].concat(),
        0x1_0000..=0xffff_ffff => [&[major | 26][..], &bytes[4..]].concat(),
        _ => [&[major | 27][..], &bytes[..]].concat(),
    }
}

/// A map from raw entries: each key encoded as a text string, each value as given.
fn raw_map(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut bytes = head(5, entries.len() as u64);
    for (key, value) in entries {
        bytes.extend(cbor(key));
        bytes.extend(value);
    }
    bytes
}

/// ℓ, the order of the Ed25519 base point, as little-endian 64-bit limbs.
const ORDER: [u64; 4] = [
    0x5812_631a_5cf5_d3ed,
    0x14de_f9de_a2f7_9cd6,
    0,
    0x1000_0000_0000_0000,
];

fn at_least_order(x: &[u64; 4]) -> bool {
    for i in (0..4).rev() {
        if x[i] != ORDER[i] {
            return x[i] > ORDER[i];
        }
    }
    true
}

fn minus_order(x: &mut [u64; 4]) {
    let mut borrow = false;
    for (limb, order) in x.iter_mut().zip(ORDER) {
        let (value, b1) = limb.overflowing_sub(order);
        let (value, b2) = value.overflowing_sub(u64::from(borrow));
        *limb = value;
        borrow = b1 || b2;
    }
}

/// `x + y mod ℓ` for `x, y < ℓ` (the sum fits in 254 bits).
fn add_mod_order(x: &[u64; 4], y: &[u64; 4]) -> [u64; 4] {
    let mut sum = [0u64; 4];
    let mut carry = false;
    for i in 0..4 {
        let (value, c1) = x[i].overflowing_add(y[i]);
        let (value, c2) = value.overflowing_add(u64::from(carry));
        sum[i] = value;
        carry = c1 || c2;
    }
    if at_least_order(&sum) {
        minus_order(&mut sum);
    }
    sum
}

/// A little-endian integer of any length, reduced mod ℓ (bit by bit, most significant first).
fn reduce(bytes_le: &[u8]) -> [u64; 4] {
    let mut r = [0u64; 4];
    for byte in bytes_le.iter().rev() {
        for bit in (0..8).rev() {
            r = add_mod_order(&r, &r);
            if byte >> bit & 1 == 1 {
                r = add_mod_order(&r, &[1, 0, 0, 0]);
            }
        }
    }
    r
}

fn mul_mod_order(x: &[u64; 4], y: &[u64; 4]) -> [u64; 4] {
    let mut r = [0u64; 4];
    for limb in y.iter().rev() {
        for bit in (0..64).rev() {
            r = add_mod_order(&r, &r);
            if limb >> bit & 1 == 1 {
                r = add_mod_order(&r, x);
            }
        }
    }
    r
}

/// A signature by `key` over `payload` whose R is the identity point (small order): with
/// `S = k·a mod ℓ` the cofactorless equation `[S]B = R + [k]A` holds, so a lenient verifier
/// accepts it; `verify_strict` refuses small-order R.
fn small_order_r_signature(key: &ed25519_dalek::SigningKey, payload: &[u8]) -> [u8; 64] {
    let expanded = Sha512::digest(key.to_bytes());
    let mut secret: [u8; 32] = expanded[..32].try_into().expect("32 bytes");
    secret[0] &= 248;
    secret[31] &= 127;
    secret[31] |= 64;
    let challenge = Sha512::new()
        .chain_update(IDENTITY_POINT)
        .chain_update(key.verifying_key().as_bytes())
        .chain_update(SIGNATURE_DOMAIN)
        .chain_update(payload)
        .finalize();
    let s = mul_mod_order(&reduce(&challenge), &reduce(&secret));
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&IDENTITY_POINT);
    for (i, limb) in s.iter().enumerate() {
        sig[32 + 8 * i..40 + 8 * i].copy_from_slice(&limb.to_le_bytes());
    }
    sig
}

impl Generator {
    /// An alert-update body of key1's `alert_full`, from raw entries.
    fn update_entries(&self) -> Vec<(&'static str, Vec<u8>)> {
        let alert = envelope::sign(
            &self.key1,
            &self.header(1, None, &Body::Alert(full_alert())),
        );
        vec![
            ("alert", cbor(&ByteBuf::from(alert.id.0.to_vec()))),
            ("status", cbor(&"contested")),
            ("note", cbor(&"Appeal filed.")),
        ]
    }

    /// key1's alert-update (seq 2 after `alert_full`) carrying `body` verbatim.
    fn update_with_body(&self, body: Vec<u8>) -> Vec<u8> {
        let alert = envelope::sign(
            &self.key1,
            &self.header(1, None, &Body::Alert(full_alert())),
        );
        let update = Body::AlertUpdate(AlertUpdate {
            alert: alert.id,
            status: AlertStatus::Contested,
            note: None,
        });
        let payload = Payload {
            body,
            ..self.header(2, Some(alert.id), &update)
        };
        envelope::sign(&self.key1, &payload).bytes
    }

    #[allow(clippy::too_many_lines, reason = "one vector after the other")]
    pub(crate) fn build_decoding(&mut self) {
        let (key1, key2, key3) = (self.key1.clone(), self.key2.clone(), self.key3.clone());
        let alert = envelope::sign(&key1, &self.header(1, None, &Body::Alert(full_alert())));
        let stored_alert = Self::fact(&key1, 1, alert.id, "alert");
        let entries = self.update_entries();
        let (alert_entry, status_entry, note_entry) =
            (entries[0].clone(), entries[1].clone(), entries[2].clone());

        // ---- §8.2 rule 2: unknown keys are skipped, wherever they stand ------------------
        let unknown_first = raw_map(&[
            ("x_priority", cbor(&2u8)),
            alert_entry.clone(),
            status_entry.clone(),
            (
                "x_tags",
                [&head(4, 2)[..], &cbor(&"a"), &cbor(&ByteBuf::from(vec![1]))].concat(),
            ),
            note_entry.clone(),
        ]);
        let offer = envelope::sign(
            &key2,
            &self.header(1, None, &Body::MirrorOffer(full_offer())),
        );
        let foreign = Payload {
            body: unknown_first.clone(),
            ..self.header(
                2,
                Some(offer.id),
                &Body::AlertUpdate(AlertUpdate {
                    alert: alert.id,
                    status: AlertStatus::Contested,
                    note: None,
                }),
            )
        };
        self.push(
            "body_unknown_keys",
            "key2's alert-update of key1's stored alert_full whose body has two keys alert-update does not define, one before the known keys (`x_priority`: 2) and one between them (`x_tags`: [\"a\", h'01']). The body decodes (§8.2 rule 2: unknown keys are skipped), so validation reaches step 16: not_author.",
            envelope::sign(&key2, &foreign).bytes,
            "ignore:not_author",
            vec![stored_alert.clone()],
        );

        // ---- §8.2 rules 1–3: every non-canonical body is bad_body ----------------------
        let bad_bodies: Vec<(&'static str, &'static str, Vec<u8>)> = vec![
            (
                "body_unknown_key_null",
                "An alert-update body with an unknown key whose value is null: unknown values keep to the CBOR form of §3 too (§8.2 rule 1).",
                raw_map(&[
                    alert_entry.clone(),
                    status_entry.clone(),
                    ("x_priority", vec![0xf6]),
                ]),
            ),
            (
                "body_unknown_key_negative",
                "An alert-update body with an unknown key whose value is the negative integer -1 (§8.2 rule 1).",
                raw_map(&[
                    alert_entry.clone(),
                    status_entry.clone(),
                    ("x_priority", vec![0x20]),
                ]),
            ),
            (
                "body_keys_reordered",
                "An alert-update body with its known keys out of declaration order (status before alert) (§8.2 rule 2).",
                raw_map(&[
                    status_entry.clone(),
                    alert_entry.clone(),
                    note_entry.clone(),
                ]),
            ),
            (
                "body_duplicate_key",
                "An alert-update body with the key status twice, both \"contested\" (§8.2 rule 1).",
                raw_map(&[
                    alert_entry.clone(),
                    status_entry.clone(),
                    status_entry.clone(),
                ]),
            ),
            (
                "body_null_optional",
                "An alert-update body whose absent note is written as note: null (§8.2 rules 1 and 3).",
                raw_map(&[
                    alert_entry.clone(),
                    status_entry.clone(),
                    ("note", vec![0xf6]),
                ]),
            ),
            (
                "body_non_shortest_head",
                "An alert-update body whose map head is 0xb8 0x03 (three entries in a two-byte head) (§8.2 rule 1).",
                [
                    &[0xb8, 0x03][..],
                    &raw_map(&[
                        alert_entry.clone(),
                        status_entry.clone(),
                        note_entry.clone(),
                    ])[1..],
                ]
                .concat(),
            ),
            (
                "body_indefinite_map",
                "An alert-update body as an indefinite-length map (0xbf … 0xff) (§8.2 rule 1).",
                [
                    &[0xbf][..],
                    &raw_map(&[
                        alert_entry.clone(),
                        status_entry.clone(),
                        note_entry.clone(),
                    ])[1..],
                    &[0xff],
                ]
                .concat(),
            ),
            (
                "body_tagged",
                "An alert-update body wrapped in tag 24 (encoded CBOR data item) (§8.2 rule 1).",
                [
                    &[0xd8, 0x18][..],
                    &raw_map(&[
                        alert_entry.clone(),
                        status_entry.clone(),
                        note_entry.clone(),
                    ]),
                ]
                .concat(),
            ),
            (
                "body_integer_keys",
                "An alert-update body keyed by field index (0, 1, 2) instead of field name, as serde's packed encoding writes it (§8.2 rule 1).",
                [
                    &head(5, 3)[..],
                    &[0x00],
                    &alert_entry.1,
                    &[0x01],
                    &status_entry.1,
                    &[0x02],
                    &note_entry.1,
                ]
                .concat(),
            ),
            (
                "body_array_for_map",
                "An alert-update body as an array of its three values in field order instead of a map (§8.2 rule 1).",
                [
                    &head(4, 3)[..],
                    &alert_entry.1,
                    &status_entry.1,
                    &note_entry.1,
                ]
                .concat(),
            ),
            (
                "body_trailing_bytes",
                "A canonical alert-update body followed by one byte 0x00 (§8.2 rule 1: nothing after the map).",
                [
                    &raw_map(&[
                        alert_entry.clone(),
                        status_entry.clone(),
                        note_entry.clone(),
                    ])[..],
                    &[0x00],
                ]
                .concat(),
            ),
            (
                "body_missing_status",
                "An alert-update body without its required status (§8.2 rule 3).",
                raw_map(&[alert_entry.clone(), note_entry.clone()]),
            ),
            (
                "body_id_as_text",
                "An alert-update body whose alert is the 64-character hex text of the id, not a byte string: the wrong CBOR type is bad_body, unlike a byte string of the wrong length (§8.2 rule 3).",
                raw_map(&[
                    ("alert", cbor(&alert.id.to_hex())),
                    status_entry.clone(),
                    note_entry.clone(),
                ]),
            ),
            (
                "body_wrong_type_and_long_field",
                "An alert-update body whose status is the integer 1 and whose note is 2001 bytes: rules 1–3 come before rule 4, so bad_body, not field_limit (§8.2).",
                raw_map(&[
                    alert_entry.clone(),
                    ("status", vec![0x01]),
                    ("note", cbor(&"n".repeat(2001))),
                ]),
            ),
        ];
        for (name, description, body) in bad_bodies {
            let bytes = self.update_with_body(body);
            self.push(
                name,
                description,
                bytes,
                "reject:bad_body",
                vec![stored_alert.clone()],
            );
        }

        let minimal = minimal_alert();
        let minimal_body = Body::Alert(minimal.clone()).encode();
        // `minimal_alert` holds category, severity, subject and summary: add an empty
        // jurisdictions list after summary, where the table places it.
        let mut empty_list = head(5, 5);
        empty_list.extend_from_slice(&minimal_body[1..]);
        empty_list.extend(cbor(&"jurisdictions"));
        empty_list.extend(head(4, 0));
        let empty_list_payload = Payload {
            body: empty_list,
            ..self.header(1, None, &Body::Alert(minimal.clone()))
        };
        self.push(
            "body_empty_list_present",
            "minimal_alert's body with jurisdictions: [] written out; a list marked \"omitted when empty\" is left out when empty (§8.2 rule 3).",
            envelope::sign(&key1, &empty_list_payload).bytes,
            "reject:bad_body",
            vec![],
        );

        let missing_summary = Payload {
            body: raw_map(&[
                ("category", cbor(&"outage")),
                ("severity", cbor(&"info")),
                ("subject", cbor(&"a.example")),
            ]),
            ..self.header(1, None, &Body::Alert(minimal.clone()))
        };
        self.push(
            "alert_missing_summary",
            "An alert body without its required text field summary (category, severity and subject present) (§8.2 rule 3).",
            envelope::sign(&key1, &missing_summary).bytes,
            "reject:bad_body",
            vec![],
        );

        // ---- §8.2 rule 4: fixed-length fields of another length are field_limit ---------
        let short_target = raw_map(&[
            ("alert", cbor(&ByteBuf::from(alert.id.0[..31].to_vec()))),
            status_entry.clone(),
            note_entry.clone(),
        ]);
        self.push(
            "update_target_31_bytes",
            "An alert-update whose alert is a byte string of 31 bytes (the id of alert_full without its last byte): a byte string of the wrong length is field_limit (§8.2 rule 4).",
            self.update_with_body(short_target),
            "reject:field_limit",
            vec![stored_alert.clone()],
        );
        let member = envelope::author_key(&key3);
        let mut long_member_body = Body::Vouch(sample_vouch(&key3)).encode();
        let key_at = long_member_body
            .windows(34)
            .position(|window| window[..2] == [0x58, 0x20] && window[2..] == member.0)
            .expect("the member key is in the body");
        long_member_body.splice(
            key_at..key_at + 34,
            [&[0x58, 0x21][..], &member.0, &[0]].concat(),
        );
        let vouch_payload = Payload {
            body: long_member_body,
            expires_at: None,
            ..self.header(1, None, &Body::Vouch(sample_vouch(&key3)))
        };
        self.push(
            "vouch_member_33_bytes",
            "A vouch whose member is a byte string of 33 bytes (key3 with a zero byte appended) (§8.2 rule 4).",
            envelope::sign(&key1, &vouch_payload).bytes,
            "reject:field_limit",
            vec![],
        );
        let parts = Envelope::decode(&alert.bytes).expect("alert decodes");
        let mut short_signer = alert.bytes.clone();
        let signer_at = short_signer
            .windows(34)
            .position(|window| window[..2] == [0x58, 0x20] && window[2..] == parts.signer.0)
            .expect("the signer is in the envelope");
        short_signer.splice(
            signer_at..signer_at + 34,
            [&[0x58, 0x1f][..], &parts.signer.0[..31]].concat(),
        );
        self.push(
            "envelope_signer_31_bytes",
            "alert_full with its signer cut to 31 bytes: the envelope and the payload header are closed structures, so a wrong length there is malformed (§4, §9 step 2), not a field limit.",
            short_signer,
            "reject:malformed",
            vec![],
        );
        let mut short_prev = cbor(&self.header(2, Some(alert.id), &Body::Alert(minimal.clone())));
        let prev_at = short_prev
            .windows(34)
            .position(|window| window[..2] == [0x58, 0x20] && window[2..] == alert.id.0)
            .expect("prev is in the payload");
        short_prev.splice(
            prev_at..prev_at + 34,
            [&[0x58, 0x1f][..], &alert.id.0[..31]].concat(),
        );
        self.push(
            "payload_prev_31_bytes",
            "A validly signed payload (seq 2) whose prev is 31 bytes: malformed (§7, §9 step 6).",
            sign_bytes(&key1, short_prev),
            "reject:malformed",
            vec![],
        );

        // ---- Kind names and v -----------------------------------------------------------
        let mut long_kind = self.header(1, None, &Body::Alert(minimal.clone()));
        long_kind.kind = "a".repeat(65);
        long_kind.body = vec![0xa0];
        self.push(
            "kind_65_bytes",
            "A kind name of 65 bytes (`a` × 65), one over MAX_KIND_BYTES (§8, §9 step 9).",
            envelope::sign(&key1, &long_kind).bytes,
            "reject:bad_kind",
            vec![],
        );
        let mut longest_kind = long_kind.clone();
        longest_kind.kind = "a".repeat(64);
        self.push(
            "kind_64_bytes",
            "A kind name of exactly MAX_KIND_BYTES (`a` × 64), unknown, with the body {}: accepted and relayed unread (§8.10).",
            envelope::sign(&key1, &longest_kind).bytes,
            "accept",
            vec![],
        );
        let mut line_feed_kind = self.header(1, None, &Body::Alert(minimal.clone()));
        line_feed_kind.kind = "alert\n".into();
        self.push(
            "kind_line_feed",
            "The kind name \"alert\\n\" (alert with a trailing line feed): not of the shape [a-z0-9./-]{1,64}, so bad_kind, not an alert (§9 step 9).",
            envelope::sign(&key1, &line_feed_kind).bytes,
            "reject:bad_kind",
            vec![],
        );
        let mut v_256 = alert.bytes.clone();
        assert_eq!(v_256[..4], [0xa4, 0x61, b'v', 0x01], "v is the first entry");
        v_256.splice(3..4, [0x19, 0x01, 0x00]);
        self.push(
            "version_256",
            "alert_full with v = 256 (0x19 0x0100): v is at most 255, so malformed (§4, §9 step 2), not unsupported_version.",
            v_256,
            "reject:malformed",
            vec![],
        );

        // ---- Text, lists, canary codes ----------------------------------------------------
        let mut carriage_return = full_alert();
        carriage_return.details =
            Some("Received by registered mail.\r\nOur lawyer is contesting it.".into());
        self.push(
            "details_carriage_return",
            "An alert whose details (a multi-line text field) holds CR LF: carriage return is not allowed in any text field (§8.1).",
            envelope::sign(&key1, &self.header(1, None, &Body::Alert(carriage_return))).bytes,
            "reject:field_limit",
            vec![],
        );
        let mut many_references = full_alert();
        many_references.references = (1..=33).map(|n| format!("ref-{n}")).collect();
        self.push(
            "references_33_items",
            "An alert with 33 references, one over MAX_LIST_ITEMS (§8.1).",
            envelope::sign(&key1, &self.header(1, None, &Body::Alert(many_references))).bytes,
            "reject:field_limit",
            vec![],
        );
        let mut many_services = full_offer();
        many_services.services = std::iter::repeat_n(MirrorService::Web, 33).collect();
        self.push(
            "offer_services_33_items",
            "A mirror-offer with 33 services (web × 33; duplicates are allowed but counted), one over MAX_LIST_ITEMS (§8.5).",
            envelope::sign(&key2, &self.header(1, None, &Body::MirrorOffer(many_services))).bytes,
            "reject:field_limit",
            vec![],
        );
        let mut eleven = CanaryCode::ALL.to_vec();
        eleven.push(CanaryCode::Warrant);
        let canary_11 = Canary {
            codes: eleven,
            ..routine_canary()
        };
        self.push(
            "canary_11_codes",
            "A canary stating 11 codes (all ten, warrant twice): at most 10, duplicates counted (§8.7).",
            envelope::sign(&key1, &self.canary_payload(4, alert.id, canary_11)).bytes,
            "reject:field_limit",
            vec![],
        );

        // ---- Signatures and statements --------------------------------------------------
        let small_r_payload = cbor(&self.header(1, None, &Body::Alert(minimal.clone())));
        let small_r = small_order_r_signature(&key1, &small_r_payload);
        let signature = ed25519_dalek::Signature::from_bytes(&small_r);
        let message = [SIGNATURE_DOMAIN, &small_r_payload].concat();
        key1.verifying_key()
            .verify(&message, &signature)
            .expect("the lenient check accepts a small-order R");
        assert!(
            key1.verifying_key()
                .verify_strict(&message, &signature)
                .is_err()
        );
        self.push(
            "small_order_r",
            "key1 (a valid key, a member) with R = the identity point (small order) and S = k·a mod ℓ: the cofactorless equation [S]B = R + [k]A holds and a lenient RFC 8032 verifier accepts it; verify_strict refuses a small-order R (§6 rule 4).",
            envelope_bytes(1, key1.verifying_key().to_bytes(), small_r_payload, small_r),
            "reject:bad_signature",
            vec![],
        );
        let expired_revocation = Payload {
            expires_at: Some(NOW_MS),
            ..self.statement(&Body::Revocation(Revocation {
                reason: "Server seized on 2025-12-31.".into(),
                key: None,
                compromised_since: None,
            }))
        };
        assert!(expired_revocation.created_at == CREATED_MS);
        self.push_with(
            "revocation_expired",
            "A revocation by key3 (not a member) with expires_at = now: statements skip the membership test but not expiry (§9 step 13); a statement SHOULD carry no expires_at (§7).",
            envelope::sign(&key3, &expired_revocation).bytes,
            "ignore:expired",
            self.members(),
            vec![],
        );
    }
}
