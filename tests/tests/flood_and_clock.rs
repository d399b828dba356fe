//! Issue 5, items 4 and 11: a flooding member and a crowd of non-members; nodes whose
//! clocks are off. Each test asserts its criterion and prints its figures.

use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use solidarity_control::request;
use solidarity_proto::payload::{Alert, AlertCategory, Severity};
use solidarity_proto::{AuthorKey, Body, FederationId, MessageId, Payload, envelope};
use solidarity_tests::{
    FEDERATION, RawPeer, TestNode, connect_all, eventually, federation_with, init_data_dir, now_ms,
};

fn alert(summary: &str) -> Alert {
    solidarity_tests::sample_alert(AlertCategory::Raid, Severity::High, summary)
}

/// `count` alerts forming `key`'s chain from seq 1.
fn chain(key: &SigningKey, count: usize, label: &str) -> Vec<Vec<u8>> {
    let mut prev = None;
    (1..=count as u64)
        .map(|seq| {
            let body = Body::Alert(alert(&format!("{label} {seq}")));
            let payload = Payload {
                fed: FederationId::from_name(FEDERATION),
                seq,
                prev,
                created_at: now_ms(),
                expires_at: None,
                kind: body.kind().expect("known kind").to_owned(),
                body: body.encode(),
            };
            let signed = envelope::sign(key, &payload);
            prev = Some(signed.id);
            signed.bytes
        })
        .collect()
}

async fn raise(node: &TestNode, summary: &str) -> MessageId {
    let request = request::AlertRaise {
        alert: alert(summary),
        expires_in_ms: None,
    };
    node.call(move |client| client.sign(&request))
        .await
        .expect("raise")
}

async fn has_alert(node: &TestNode, id: MessageId) -> bool {
    node.alerts().await.iter().any(|alert| alert.id == id)
}

/// Stored alerts of `author` (the shown ones are at most 20 per author).
async fn alerts_by(node: &TestNode, author: AuthorKey) -> usize {
    node.call(|client| client.all_alerts())
        .await
        .expect("alert list --all")
        .iter()
        .filter(|alert| alert.author == author)
        .count()
}

async fn counter(node: &TestNode, name: &str, label: &str) -> f64 {
    let text = node.call(|client| client.metrics()).await.expect("metrics");
    text.lines()
        .filter(|line| line.starts_with(name) && line.contains(label))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| {
                    value
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
        })
        .unwrap_or(0.0)
        / 1024.0
}

/// Quota of the flood test: small, so the test sees it bite within seconds.
const PER_MINUTE: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_member_is_held_to_its_quota_and_non_members_get_nothing_in() {
    let started = Instant::now();
    let nodes = federation_with(2, &[("member_messages_per_minute", "60")]).await;
    let flooder = RawPeer::start(vec![nodes[0].peer_id()]).await;
    for node in &nodes {
        node.add_members(&[("flooder".into(), flooder.card())])
            .await;
    }
    flooder.connect(&nodes[0]).await;
    eventually("node 0 sees the flooder", || async {
        nodes[0].connected().await == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // 20 strangers dial node 0 and publish validly signed alerts of their own at full speed.
    let mut strangers = Vec::new();
    for _ in 0..20 {
        let stranger = RawPeer::start(vec![nodes[0].peer_id()]).await;
        stranger.connect(&nodes[0]).await;
        strangers.push(stranger);
    }
    let stranger_messages: Vec<(usize, Vec<Vec<u8>>)> = strangers
        .iter()
        .enumerate()
        .map(|(index, stranger)| (index, chain(&stranger.key, 50, "stranger")))
        .collect();
    let mut stranger_sent = 0;
    for (index, messages) in &stranger_messages {
        for bytes in messages {
            // Refused connections leave no peer to publish to: that is the point.
            if strangers[*index].net.publish(bytes.clone()).await.is_ok() {
                stranger_sent += 1;
            }
        }
    }

    // The member floods at 100 messages a second for three seconds.
    let flood = chain(&flooder.key, 300, "flood");
    let flood_started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    for bytes in &flood {
        ticker.tick().await;
        flooder.net.publish(bytes.clone()).await.expect("publish");
    }
    let flood_secs = flood_started.elapsed().as_secs_f64();
    // Honest traffic still arrives during and after the flood.
    let honest = raise(&nodes[1], "honest alert after the flood").await;
    let honest_took = eventually("the honest alert reaches node 0", || {
        has_alert(&nodes[0], honest)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let flooder_key = flooder.author();
    let stored_0 = alerts_by(&nodes[0], flooder_key).await;
    let stored_1 = alerts_by(&nodes[1], flooder_key).await;
    let over_quota = counter(&nodes[0], "solidarity_messages_judged", "over_budget").await;
    let allowed = PER_MINUTE + (flood_secs * PER_MINUTE as f64 / 60.0).ceil() as usize + 2;
    let mut strangers_stored = 0;
    for stranger in &strangers {
        let key = envelope::author_key(&stranger.key);
        for node in &nodes {
            strangers_stored += alerts_by(node, key).await;
        }
    }
    println!(
        "flood: member sent {} in {flood_secs:.1} s (quota {PER_MINUTE}/min, so at most {allowed}); \
         stored on node 0: {stored_0}, relayed to node 1: {stored_1}; over quota at node 0: {over_quota}; \
         20 strangers dialled in and tried {} messages, {stranger_sent} left them (no connection admitted), stored anywhere: {strangers_stored}; \
         honest alert arrived {honest_took:?} after it was raised; peak RSS {:.0} MiB; {:.1} s",
        flood.len(),
        stranger_messages.len() * 50,
        peak_rss_mib(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(strangers_stored, 0, "a non-member's message was stored");
    assert!(
        stored_0 <= allowed && stored_1 <= allowed,
        "the flooding member got past its quota"
    );
    assert!(
        stored_0 >= PER_MINUTE / 2,
        "the quota held back honest-rate traffic"
    );
    assert!(
        over_quota >= 200.0,
        "the flood was not counted as over quota"
    );
    for node in nodes {
        node.stop().await;
    }
}

async fn start_with_clock(offset_ms: i64) -> TestNode {
    let dir = tempfile::tempdir().expect("tempdir");
    init_data_dir(dir.path());
    TestNode::start_configured(dir, None, |config| config.clock_offset_ms = offset_ms).await
}

const MINUTE: i64 = 60 * 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skewed_clocks_accept_in_window_ignore_the_rest_without_penalty_and_heal_by_sync() {
    let started = Instant::now();
    // 0: on time; 1: +5 min; 2: −5 min; 3: +2 h; 4: −2 h.
    let offsets = [0, 5 * MINUTE, -5 * MINUTE, 120 * MINUTE, -120 * MINUTE];
    let mut nodes = Vec::new();
    for offset in offsets {
        nodes.push(start_with_clock(offset).await);
    }
    connect_all(&nodes).await;

    // Alerts from the on-time and ±5 min nodes: in the window everywhere except the node
    // two hours behind, to which they come from its future.
    let mut in_window = Vec::new();
    for (index, node) in nodes.iter().take(3).enumerate() {
        in_window.push(raise(node, &format!("from node {index}")).await);
    }
    for id in &in_window {
        for node in &nodes[..4] {
            eventually("in-window alerts everywhere", || has_alert(node, *id)).await;
        }
    }
    // The node two hours ahead signs alerts from everyone else's future.
    let ahead = raise(&nodes[3], "from two hours ahead").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for node in &nodes[..3] {
        assert!(
            !has_alert(node, ahead).await,
            "an alert from two hours ahead was accepted"
        );
    }
    for id in &in_window {
        assert!(
            !has_alert(&nodes[4], *id).await,
            "the node two hours behind accepted an alert from its future"
        );
    }
    // Out-of-window messages are ignored, never rejected: no peer was penalised.
    let mut ignored = 0.0;
    for node in &nodes {
        assert_eq!(
            counter(node, "solidarity_messages_judged", "reject").await,
            0.0,
            "a peer was penalised for a clock"
        );
        ignored += counter(node, "solidarity_messages_judged", "ignore").await;
    }
    for node in &nodes {
        assert_eq!(node.connected().await, 4, "a skewed node lost its links");
    }
    // Honest traffic keeps flowing through the skewed nodes.
    let later = raise(&nodes[1], "later, from five minutes ahead").await;
    for node in &nodes[..4] {
        eventually("later alert everywhere", || has_alert(node, later)).await;
    }

    // The clock of the node two hours behind is fixed (a restart on the host clock): sync
    // brings what it ignored.
    let behind = nodes.pop().expect("five nodes");
    let dir = behind.stop().await;
    let fixed_at = Instant::now();
    let fixed = TestNode::start(dir).await;
    for id in in_window.iter().chain([&later]) {
        eventually("sync delivers after the clock is fixed", || {
            has_alert(&fixed, *id)
        })
        .await;
    }
    let healed = fixed_at.elapsed();
    println!(
        "clock skew: offsets 0, +5 min, −5 min, +2 h, −2 h; {} in-window alerts accepted on the \
         four nodes within the window; the +2 h alert ignored by the three others; {ignored} \
         messages ignored, 0 rejected, every node kept its 4 links; after the −2 h clock was \
         fixed, sync delivered all {} in {healed:?}; {:.1} s in all",
        in_window.len() + 1,
        in_window.len() + 1,
        started.elapsed().as_secs_f64()
    );
    fixed.stop().await;
    for node in nodes {
        node.stop().await;
    }
}
