//! The canary state against the `canary_states` vectors of `protocol-spec/vectors` (SPEC
//! §13.3, §14): each history's two highest seqs (the first canary at each) are the latest
//! and the one before, and [`canary_view`] must give the listed `due_at`, withdrawn codes and
//! state at the listed `now`.

use std::path::PathBuf;

use serde_json::Value;
use solidarity_engine::canary::CanaryState;
use solidarity_engine::canary::{CanaryRules, canary_view};
use solidarity_proto::payload::Canary;
use solidarity_proto::state::Stored;
use solidarity_proto::{AuthorKey, Body, Envelope, MessageId, Payload};

fn index() -> Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../protocol-spec/vectors/vectors.json");
    let text = std::fs::read_to_string(path).expect("vectors.json is readable");
    serde_json::from_str(&text).expect("vectors.json is JSON")
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("`{key}` is a string in {value}"))
}

fn number(value: &Value, key: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("`{key}` is an integer in {value}"))
}

fn array<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value[key]
        .as_array()
        .unwrap_or_else(|| panic!("`{key}` is an array in {value}"))
}

fn state_name(state: CanaryState) -> &'static str {
    match state {
        CanaryState::Duress => "duress",
        CanaryState::Silent => "silent",
        CanaryState::Changed => "changed",
        CanaryState::Ok => "ok",
    }
}

#[test]
fn canary_states_follow_the_vectors() {
    let index = index();
    let vectors = array(&index, "canary_states");
    assert!(vectors.len() >= 10, "the canary state vectors are listed");
    let mut checked = 0;
    for vector in vectors {
        let name = text(vector, "name");
        let member: AuthorKey = text(vector, "member").parse().expect("a key");
        let commitment: Option<[u8; 32]> = vector["commitment"].as_str().map(|commitment| {
            hex::decode(commitment)
                .expect("hex")
                .try_into()
                .expect("32 bytes")
        });
        let rules = CanaryRules {
            max_interval_ms: number(&vector["settings"], "canary_max_interval_secs") * 1000,
            grace_ms: number(&vector["settings"], "canary_grace_secs") * 1000,
        };
        // The history as a receiver keeps it: the first canary at each seq, the two
        // highest seqs.
        let mut kept: Vec<Stored<Canary>> = Vec::new();
        for seen in array(vector, "history") {
            let bytes = hex::decode(text(seen, "envelope")).expect("hex");
            let envelope = Envelope::decode(&bytes).expect("envelope");
            let payload = Payload::decode(&envelope.payload).expect("payload");
            let Body::Canary(body) = Body::decode(&payload.kind, &payload.body).expect("body")
            else {
                panic!("{name}: a canary");
            };
            if kept.iter().any(|held| held.seq == payload.seq) {
                continue;
            }
            let id: MessageId = text(seen, "id").parse().expect("an id");
            kept.push(Stored {
                id,
                author: envelope.signer,
                seq: payload.seq,
                created_at: payload.created_at,
                expires_at: payload.expires_at,
                body,
            });
        }
        kept.sort_by_key(|canary| std::cmp::Reverse(canary.seq));
        let expected = &vector["expected"];
        let Some(latest) = kept.first() else {
            assert!(expected.is_null(), "{name}: no state without a canary");
            continue;
        };
        assert_eq!(latest.seq, number(expected, "latest_seq"), "{name}");
        let got = canary_view(
            &member,
            latest,
            kept.get(1),
            commitment.as_ref(),
            rules,
            number(vector, "now_ms"),
        );
        assert_eq!(got.due_at, number(expected, "due_at"), "{name}: due_at");
        let withdrawn: Vec<String> = got
            .withdrawn
            .iter()
            .map(|code| {
                serde_json::to_value(code)
                    .expect("JSON")
                    .as_str()
                    .expect("a name")
                    .to_owned()
            })
            .collect();
        let listed: Vec<&str> = array(expected, "withdrawn")
            .iter()
            .map(|code| code.as_str().expect("a code"))
            .collect();
        assert_eq!(withdrawn, listed, "{name}: withdrawn");
        assert_eq!(
            state_name(got.state),
            text(expected, "state"),
            "{name}: state"
        );
        checked += 1;
    }
    assert!(checked >= 10, "the states were checked");
}
