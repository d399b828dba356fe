//! A member whose key is in the wrong hands, speaking the protocol with values no honest
//! node sends (issue "Hold against a hostile member and a seized key").

use solidarity_control::request;
use solidarity_proto::FederationId;
use solidarity_proto::payload::{AlertCategory, Severity};
use solidarity_proto::sync::{MAX_PAGE_ENVELOPES, SyncRequest, SyncResponse, Watermark};
use solidarity_tests::{FEDERATION, RawPeer, TestNode, eventually};

/// Asks `node` for what `raw` lacks, claiming `seq` for the node's own chain.
async fn ask(raw: &RawPeer, node: &TestNode, seq: u64) -> SyncResponse {
    let request = SyncRequest {
        fed: FederationId::from_name(FEDERATION),
        have: vec![Watermark {
            author: node.key,
            seq,
            head: None,
        }],
        limit: MAX_PAGE_ENVELOPES,
        statements: None,
    };
    let answer = raw
        .net
        .sync_request(node.peer_id(), request.encode())
        .await
        .expect("the node answers");
    SyncResponse::decode(&answer).expect("a well-formed page")
}

/// The requester's watermark is its own word: `seq = u64::MAX` once overflowed the
/// responder's `seq + 1` (a panic in a debug build, a full dump from seq 0 in a release).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_request_claiming_the_highest_seq_gets_nothing_and_the_node_lives_on() {
    let node = TestNode::new().await;
    for summary in ["first", "second"] {
        let request = request::AlertRaise {
            alert: solidarity_tests::sample_alert(AlertCategory::Outage, Severity::Low, summary),
            expires_in_ms: None,
        };
        node.call(move |client| client.sign(&request))
            .await
            .expect("raise");
    }
    let raw = RawPeer::start(vec![node.peer_id()]).await;
    node.add_members(&[("hostile".into(), raw.card())]).await;
    raw.connect(&node).await;
    eventually("the node sees the member", || async {
        node.connected().await == 1
    })
    .await;

    let honest = ask(&raw, &node, 0).await;
    let mine = |page: &SyncResponse| {
        page.envelopes
            .iter()
            .filter(|bytes| {
                solidarity_proto::Envelope::decode(bytes)
                    .is_ok_and(|parsed| parsed.signer == node.key)
            })
            .count()
    };
    assert!(
        mine(&honest) >= 2,
        "control: from seq 0 the node sends its chain"
    );

    let hostile = ask(&raw, &node, u64::MAX).await;
    eprintln!(
        "seq 0: {} envelopes of the node; seq u64::MAX: {}",
        mine(&honest),
        mine(&hostile)
    );
    assert_eq!(mine(&hostile), 0, "nothing follows the highest seq");
    // The node is alive and still signs: the actor did not panic on the request.
    let request = request::AlertRaise {
        alert: solidarity_tests::sample_alert(AlertCategory::Outage, Severity::Low, "after"),
        expires_in_ms: None,
    };
    node.call(move |client| client.sign(&request))
        .await
        .expect("the node still signs after the hostile request");
}
