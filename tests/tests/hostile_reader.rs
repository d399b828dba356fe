//! Issue 12, item 3 (reader): sync answers are computed off the node's actor, and one
//! member's sync requests are bounded in flight. A member floods the node with requests for
//! its whole store (20 000 alerts) while an honest member gossips an alert: the node answers
//! at most its bound per member and the empty page beyond it, and stores the honest alert.
//! Real daemon in this process, raw libp2p peers holding member keys. Prints its figures.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use solidarity_proto::payload::{AlertCategory, KIND_ALERT, Severity};
use solidarity_proto::sync::{MAX_PAGE_ENVELOPES, SyncRequest, SyncResponse, Watermark};
use solidarity_proto::{Body, FederationId, Payload, envelope};
use solidarity_store::{NewMessage, SledOptions, SledStore, Store};
use solidarity_tests::{
    FEDERATION, RawPeer, TestNode, eventually, init_data_dir, node_key, now_ms, sample_alert,
};

/// Alerts the node holds of its own chain.
const HELD: u64 = 20_000;
/// Requests the flooding member keeps outstanding at once.
const FLOOD_CONCURRENCY: usize = 16;

/// Writes `HELD` alerts of the node's own chain straight into its stopped store.
fn fill_store(data: &std::path::Path) {
    let key = node_key(data);
    let author = envelope::author_key(&key);
    let store = SledStore::open(&SledOptions::new(data.join(solidarity::daemon::STORE_DIR)))
        .expect("store");
    let created_at = now_ms() - 3_600_000;
    let mut prev = None;
    let mut batch = Vec::new();
    for seq in 1..=HELD {
        let mut alert = sample_alert(AlertCategory::Outage, Severity::Low, format!("held {seq}"));
        alert.details = Some("d".repeat(200));
        let body = Body::Alert(alert);
        let payload = Payload {
            fed: FederationId::from_name(FEDERATION),
            seq,
            prev,
            created_at,
            expires_at: None,
            kind: body.kind().expect("known kind").to_owned(),
            body: body.encode(),
        };
        let signed = envelope::sign(&key, &payload);
        prev = Some(signed.id);
        batch.push(NewMessage {
            id: signed.id,
            author,
            seq,
            kind: KIND_ALERT.to_owned(),
            created_at,
            expires_at: None,
            refers_to: None,
            envelope: signed.bytes,
        });
        if batch.len() == 5_000 {
            store.insert_batch(&batch).expect("insert");
            batch.clear();
        }
    }
    store.insert_batch(&batch).expect("insert");
    store.flush().expect("flush");
}

async fn counter(node: &TestNode, name: &str) -> f64 {
    let text = node.call(|client| client.metrics()).await.expect("metrics");
    text.lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(metric, _)| metric.ends_with(name))
        .filter_map(|(_, value)| value.trim().parse::<f64>().ok())
        .sum()
}

#[derive(Default)]
struct Tally {
    answered: AtomicUsize,
    refused: AtomicUsize,
    failed: AtomicUsize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_flooding_sync_requests_is_held_to_its_bound_and_gossip_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    init_data_dir(dir.path());
    let filled = Instant::now();
    fill_store(dir.path());
    eprintln!(
        "wrote {HELD} alerts in {:.1} s",
        filled.elapsed().as_secs_f64()
    );
    let node = TestNode::start(dir).await;
    let flooder = Arc::new(RawPeer::start(vec![node.peer_id()]).await);
    let honest = RawPeer::start(vec![node.peer_id()]).await;
    node.add_members(&[
        ("flooder".into(), flooder.card()),
        ("honest".into(), honest.card()),
    ])
    .await;
    flooder.connect(&node).await;
    honest.connect(&node).await;
    eventually("the node sees both members", || async {
        node.connected().await == 2
    })
    .await;

    let request = SyncRequest {
        fed: FederationId::from_name(FEDERATION),
        have: vec![Watermark {
            author: node.key,
            seq: 0,
            head: None,
        }],
        limit: MAX_PAGE_ENVELOPES,
        statements: None,
    }
    .encode();
    let tally = Arc::new(Tally::default());
    let flooding = Arc::new(AtomicBool::new(true));
    let victim = node.peer_id();
    let tasks: Vec<_> = (0..FLOOD_CONCURRENCY)
        .map(|_| {
            let (flooder, tally, flooding, request) = (
                flooder.clone(),
                tally.clone(),
                flooding.clone(),
                request.clone(),
            );
            tokio::spawn(async move {
                while flooding.load(Ordering::Relaxed) {
                    match flooder.net.sync_request(victim, request.clone()).await {
                        Ok(bytes) => match SyncResponse::decode(&bytes) {
                            Ok(page) if page.envelopes.is_empty() => &tally.refused,
                            Ok(_) => &tally.answered,
                            Err(_) => &tally.failed,
                        },
                        Err(_) => &tally.failed,
                    }
                    .fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;

    let alert = Body::Alert(sample_alert(
        AlertCategory::Raid,
        Severity::High,
        "honest during a flood",
    ));
    let signed = envelope::sign(
        &honest.key,
        &Payload {
            fed: FederationId::from_name(FEDERATION),
            seq: 1,
            prev: None,
            created_at: now_ms(),
            expires_at: None,
            kind: alert.kind().expect("known kind").to_owned(),
            body: alert.encode(),
        },
    );
    let published = Instant::now();
    honest.publish_when_meshed(&signed.bytes).await;
    eventually("the honest alert is stored during the flood", || async {
        node.alerts().await.iter().any(|view| view.id == signed.id)
    })
    .await;
    let honest_took = published.elapsed();
    flooding.store(false, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("flood task");
    }
    let answered = tally.answered.load(Ordering::Relaxed);
    let refused = tally.refused.load(Ordering::Relaxed);
    let failed = tally.failed.load(Ordering::Relaxed);
    let refused_metric = counter(&node, "sync_refused_busy_total").await;
    eprintln!(
        "flood of {FLOOD_CONCURRENCY} concurrent requests for {HELD} alerts: {answered} answered, \
         {refused} answered empty (bound {} per member), {failed} failed; node counted {refused_metric} \
         refused; honest alert stored {:.0} ms after it was published",
        solidarity::daemon::SYNC_ANSWERS_PER_MEMBER,
        honest_took.as_secs_f64() * 1000.0
    );
    assert!(
        answered > 0,
        "the member's requests within the bound are answered"
    );
    assert!(
        refused > 0,
        "with {FLOOD_CONCURRENCY} requests outstanding, those beyond the bound are answered empty"
    );
    assert_eq!(
        refused_metric, refused as f64,
        "every empty answer is counted as refused"
    );
    assert_eq!(failed, 0, "no request failed or timed out");

    // A prefix resolves through the id index, not by loading the 20 000 alerts: through
    // the control API and the CLI.
    let hex = signed.id.to_hex();
    let matches = node
        .call({
            let prefix = hex[..8].to_owned();
            move |client| client.alert_ids(&prefix)
        })
        .await
        .expect("alert ids");
    assert_eq!((matches.ids, matches.more), (vec![signed.id], false));
    let dir = node.dir.path().to_owned();
    let (shown, text, error) = tokio::task::spawn_blocking(move || {
        solidarity_tests::cli(&dir, &["alert", "show", &hex[..10]])
    })
    .await
    .expect("cli");
    assert!(
        shown && text.contains("honest during a flood"),
        "{text}{error}"
    );
}
