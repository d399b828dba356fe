//! Scenarios 2–5: ingest, durable acknowledgement, catch-up sync, memory and start-up.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use serde::Serialize;
use solidarity::identity::Card;
use solidarity_control::{Client, request};
use solidarity_net::{Acceptance, NetEvent, NetHandle};
use solidarity_proto::payload::{Body, KIND_ALERT, Payload};
use solidarity_proto::sync::SyncResponse;
use solidarity_proto::{AuthorKey, Envelope, FederationId, MessageId, envelope};
use solidarity_store::{NewMessage, SledOptions, SledStore, Store};
use tokio_util::sync::CancellationToken;

use crate::measure::{self, ms, quantile};
use crate::ours::{self, OurNode};
use crate::propagation::sample_alert;

/// Authors of the generated alerts (members of the benchmark federation).
const AUTHORS: usize = 8;

fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

/// `count` alerts signed round-robin by `authors`, each author's chain in order.
pub struct Generated {
    pub authors: Vec<SigningKey>,
    pub messages: Vec<NewMessage>,
}

/// Signed alerts by [`AUTHORS`] authors. With `expiring`, each expires 1 to 720 hours on
/// (spread over 720 hourly keys), so the store seals their records.
pub fn generate(count: usize, expiring: bool) -> Generated {
    let federation = FederationId::from_name(ours::FEDERATION);
    let authors: Vec<SigningKey> = (0..AUTHORS)
        .map(|_| SigningKey::from_bytes(&rand::random::<[u8; 32]>()))
        .collect();
    let mut heads: Vec<Option<MessageId>> = vec![None; AUTHORS];
    let created_at = now_ms();
    let mut messages = Vec::with_capacity(count);
    for index in 0..count {
        let author = index % AUTHORS;
        let seq = (index / AUTHORS) as u64 + 1;
        let expires_at = expiring.then(|| created_at + (1 + index as u64 % 720) * 60 * 60 * 1000);
        let payload = Payload {
            fed: federation,
            seq,
            prev: heads[author],
            created_at,
            expires_at,
            kind: KIND_ALERT.to_owned(),
            body: Body::Alert(sample_alert(index)).encode(),
        };
        let signed = envelope::sign(&authors[author], &payload);
        heads[author] = Some(signed.id);
        messages.push(NewMessage {
            id: signed.id,
            author: envelope::author_key(&authors[author]),
            seq,
            kind: KIND_ALERT.to_owned(),
            created_at,
            expires_at,
            refers_to: None,
            envelope: signed.bytes,
        });
    }
    Generated { authors, messages }
}

fn author_cards(authors: &[SigningKey]) -> Vec<(String, Card)> {
    authors
        .iter()
        .enumerate()
        .map(|(index, key)| {
            (
                format!("author{index}"),
                Card {
                    key: envelope::author_key(key),
                    addresses: Vec::new(),
                    duress_commitment: None,
                },
            )
        })
        .collect()
}

fn card_of(key: AuthorKey) -> Card {
    Card {
        key,
        addresses: Vec::new(),
        duress_commitment: None,
    }
}

// ---- 2. ingest ------------------------------------------------------------------------

#[derive(Clone, Debug, Serialize)]
pub struct IngestFigures {
    pub alerts: usize,
    pub stored: usize,
    pub alerts_per_sec: f64,
    pub raw_verify_per_sec: f64,
    pub ratio: f64,
    /// Process CPU per durably stored alert (the feeder included), by thread role.
    pub cpu_us_per_alert_by_thread: std::collections::BTreeMap<String, f64>,
}

/// A member endpoint that only publishes.
struct Feeder {
    key: SigningKey,
    net: NetHandle,
    stop: CancellationToken,
}

impl Feeder {
    fn start() -> anyhow::Result<Self> {
        let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        let keypair = solidarity::identity::libp2p_keypair(&key)?;
        let config = solidarity::daemon::net_config(
            keypair,
            vec!["/ip4/127.0.0.1/tcp/0".parse()?],
            &FederationId::from_name(ours::FEDERATION),
            Duration::from_millis(1000),
            Vec::new(),
        );
        let (net, mut events, event_loop) = solidarity_net::build(config)?;
        let stop = CancellationToken::new();
        tokio::spawn(event_loop.run(stop.clone().cancelled_owned()));
        let handle = net.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    NetEvent::Message { token, .. } => {
                        let _ = handle.report(token, Acceptance::Ignore).await;
                    }
                    NetEvent::SyncRequest { reply, .. } => {
                        let _ = handle
                            .reply_sync(reply, SyncResponse::default().encode())
                            .await;
                    }
                    NetEvent::PeerConnected(_)
                    | NetEvent::PeerDisconnected(_)
                    | NetEvent::PeerClosedEarly(_) => {}
                }
            }
        });
        Ok(Self { key, net, stop })
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Signed alerts fed over one connection, at most `window` ahead of what the node stored.
pub async fn ingest(count: usize, window: usize, expiring: bool) -> anyhow::Result<IngestFigures> {
    let generated = generate(count, expiring);
    // The raw rate: one strict verification per envelope, one thread, same envelopes.
    let decoded: Vec<Envelope> = generated
        .messages
        .iter()
        .map(|message| Envelope::decode(&message.envelope))
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    let verified = decoded.iter().filter(|envelope| envelope.verify()).count();
    let raw_verify_per_sec = verified as f64 / started.elapsed().as_secs_f64();

    // One connection carries eight authors' alerts at full speed: lift the per-member
    // quota, which would (rightly) hold them back.
    let dir = tempfile::tempdir()?;
    ours::init_data_dir(dir.path())?;
    lift_member_quota(dir.path())?;
    let node = OurNode::start(dir).await?;
    let feeder = Feeder::start()?;
    let mut members = author_cards(&generated.authors);
    members.push(("feeder".into(), card_of(envelope::author_key(&feeder.key))));
    node.trust(&members).await?;
    let card = node.card().await?;
    feeder
        .net
        .allow_peer(solidarity::identity::peer_id(&card.key)?, card.addresses)
        .await?;
    while node.connected().await < 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Two heartbeats: the node must know the feeder's subscription before it publishes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = node.log.count();
    let durable_before = node.log.durable_count();
    let cpu_before = crate::measure::process_cpu();
    let threads_before = crate::measure::ThreadCpu::now();
    let started = Instant::now();
    for (index, message) in generated.messages.iter().enumerate() {
        while index >= node.log.count() - before + window {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        feeder.net.publish(message.envelope.clone()).await?;
    }
    // Received messages are flushed within a second: count them once durable.
    let deadline = Instant::now() + Duration::from_secs(30);
    while node.log.durable_count() - durable_before < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let stored = node.log.durable_count() - durable_before;
    let cpu = crate::measure::process_cpu() - cpu_before;
    let threads = crate::measure::ThreadCpu::now().since(&threads_before);
    let elapsed = node
        .log
        .last_durable()
        .map_or(started.elapsed(), |last| last - started);
    let alerts_per_sec = stored as f64 / elapsed.as_secs_f64();
    drop(feeder);
    node.stop().await?;
    Ok(IngestFigures {
        alerts: count,
        stored,
        alerts_per_sec,
        raw_verify_per_sec,
        ratio: alerts_per_sec / raw_verify_per_sec,
        cpu_us_per_alert_by_thread: crate::measure::per_delivery_by_role(&threads, cpu, stored),
    })
}

// ---- 3. durable acknowledgement --------------------------------------------------------

#[derive(Clone, Debug, Serialize)]
pub struct AckFigures {
    pub raises: usize,
    pub rate_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Raises through the control socket at a steady `rate`; raise → acknowledged (flushed).
pub async fn ack(raises: usize, rate: f64) -> anyhow::Result<AckFigures> {
    let node = OurNode::fresh().await?;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let mut calls = Vec::new();
    for index in 0..raises {
        ticker.tick().await;
        let client = Client::new(node.dir.path());
        calls.push(tokio::task::spawn_blocking(move || {
            let request = request::AlertRaise {
                alert: sample_alert(index),
                expires_in_ms: None,
            };
            let started = Instant::now();
            client.sign(&request)?;
            anyhow::Ok(ms(started.elapsed()))
        }));
    }
    let mut latencies = Vec::new();
    for call in calls {
        latencies.push(call.await??);
    }
    node.stop().await?;
    Ok(AckFigures {
        raises,
        rate_per_sec: rate,
        p50_ms: quantile(&latencies, 0.5),
        p99_ms: quantile(&latencies, 0.99),
    })
}

// ---- 4. catch-up sync ------------------------------------------------------------------

#[derive(Clone, Debug, Serialize)]
pub struct CatchUpFigures {
    pub stored: usize,
    pub missing: usize,
    pub protocol_bytes: f64,
    pub budget_bytes: f64,
    pub round_trips: f64,
    pub wall_ms: f64,
}

/// Inserts messages straight into a data dir's store (as a node that accepted them would).
fn fill_store(data_dir: &Path, messages: &[NewMessage]) -> anyhow::Result<()> {
    let store = SledStore::open(&SledOptions::new(
        data_dir.join(solidarity::daemon::STORE_DIR),
    ))?;
    for chunk in messages.chunks(1000) {
        store.insert_batch(chunk)?;
    }
    store.flush()?;
    Ok(())
}

/// What a clean stop of the daemon does to its store.
fn checkpoint(data_dir: &Path) -> anyhow::Result<()> {
    solidarity_store::SledBackend::checkpoint(&SledOptions::new(
        data_dir.join(solidarity::daemon::STORE_DIR),
    ))?;
    Ok(())
}

/// Copies a data dir (files and directories) as it is.
pub fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Data dirs prepared once: A holds everything, B all but the newest `max_missing`, both
/// as a cleanly stopped node leaves them; and A as a node killed after writing it all.
pub struct CatchUpFixture {
    pub generated: Generated,
    holder: tempfile::TempDir,
    holder_unclean: tempfile::TempDir,
    behind: tempfile::TempDir,
    max_missing: usize,
}

impl CatchUpFixture {
    pub fn prepare(total: usize, max_missing: usize, expiring: bool) -> anyhow::Result<Self> {
        let generated = generate(total, expiring);
        let holder = tempfile::tempdir()?;
        ours::init_data_dir(holder.path())?;
        fill_store(holder.path(), &generated.messages)?;
        let holder_unclean = tempfile::tempdir()?;
        copy_dir(holder.path(), holder_unclean.path())?;
        checkpoint(holder.path())?;
        let behind = tempfile::tempdir()?;
        ours::init_data_dir(behind.path())?;
        fill_store(behind.path(), &generated.messages[..total - max_missing])?;
        checkpoint(behind.path())?;
        Ok(Self {
            generated,
            holder,
            holder_unclean,
            behind,
            max_missing,
        })
    }

    /// A copy of the full data dir.
    pub fn holder_copy(&self) -> anyhow::Result<tempfile::TempDir> {
        let copy = tempfile::tempdir()?;
        copy_dir(self.holder.path(), copy.path())?;
        Ok(copy)
    }
}

const SYNC_PROTOCOL_COUNTERS: [&str; 3] = [
    "solidarity_sync_request_bytes_total",
    "solidarity_sync_response_bytes_total",
    "solidarity_sync_envelope_bytes_total",
];

/// Lifts the per-member message quota in the config of the node in `dir`.
fn lift_member_quota(dir: &std::path::Path) -> anyhow::Result<()> {
    let config = dir.join(solidarity::config::CONFIG_FILE);
    let text = std::fs::read_to_string(&config)?.replace(
        "member_messages_per_minute = 120",
        "member_messages_per_minute = 0",
    );
    std::fs::write(&config, text)?;
    Ok(())
}

/// B, missing the newest `missing` alerts, starts and syncs from A.
pub async fn catch_up(fixture: &CatchUpFixture, missing: usize) -> anyhow::Result<CatchUpFigures> {
    let total = fixture.generated.messages.len();
    let holder = OurNode::start(fixture.holder_copy()?).await?;
    let behind_dir = tempfile::tempdir()?;
    copy_dir(fixture.behind.path(), behind_dir.path())?;
    fill_store(
        behind_dir.path(),
        &fixture.generated.messages[total - fixture.max_missing..total - missing],
    )?;
    let behind_key = envelope::author_key(&solidarity::identity::load_key_file(behind_dir.path())?);
    let mut holder_members = author_cards(&fixture.generated.authors);
    holder_members.push(("behind".into(), card_of(behind_key)));
    holder.trust(&holder_members).await?;
    let mut behind_members = author_cards(&fixture.generated.authors);
    behind_members.push(("holder".into(), holder.card().await?));
    let mut file = solidarity::members::MembersFile::load(behind_dir.path())?;
    for (name, card) in &behind_members {
        file.add(card, name)?;
    }
    file.save(behind_dir.path())?;
    // B misses up to 10 000 alerts of eight authors: the per-member quota holds on sync
    // too (SPEC §10) and would spread them over minutes; this measures the protocol.
    lift_member_quota(behind_dir.path())?;

    let started = Instant::now();
    let behind = OurNode::start(behind_dir).await?;
    let wanted: Vec<MessageId> = fixture.generated.messages[total - missing..]
        .iter()
        .map(|message| message.id)
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !wanted.iter().all(|id| behind.log.at(id).is_some()) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "catch-up of {missing} did not finish"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let wall = wanted
        .iter()
        .filter_map(|id| behind.log.at(id))
        .max()
        .map_or(Duration::ZERO, |last| last - started);
    // Let the session finish its last round before reading the counters.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut counters = Vec::new();
    for name in SYNC_PROTOCOL_COUNTERS {
        counters.push(behind.counter(name).await?);
    }
    let round_trips = behind.counter("solidarity_sync_requests_total").await?;
    behind.stop().await?;
    holder.stop().await?;
    Ok(CatchUpFigures {
        stored: total,
        missing,
        protocol_bytes: counters[0] + counters[1] - counters[2],
        budget_bytes: 2.0 * (missing as f64 * 32.0) + 2048.0,
        round_trips,
        wall_ms: if missing == 0 { 0.0 } else { ms(wall) },
    })
}

// ---- 5. memory and start-up ------------------------------------------------------------

#[derive(Clone, Debug, Serialize)]
pub struct StartupFigures {
    pub idle_in_process_node_rss_mib: f64,
    pub idle_daemon_rss_mib: f64,
    pub daemon_stored_alerts: usize,
    pub start_to_status_page_ms: f64,
    pub start_to_status_page_after_kill_ms: f64,
    pub start_to_first_alert_ms: f64,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The daemon as a child process: this binary re-enters `solidarity::main_from`.
fn spawn_daemon(data_dir: &Path) -> anyhow::Result<std::process::Child> {
    Ok(std::process::Command::new(std::env::current_exe()?)
        .args(["__solidarity", "--data"])
        .arg(data_dir)
        .arg("node")
        .stdout(std::process::Stdio::null())
        .stderr(if std::env::var_os("RUST_LOG").is_some() {
            std::process::Stdio::inherit()
        } else {
            std::process::Stdio::null()
        })
        .spawn()?)
}

fn stop_daemon(mut child: std::process::Child) -> anyhow::Result<()> {
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    child.wait()?;
    Ok(())
}

async fn status_page_answers(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    if stream
        .write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.is_ok() && head.ends_with(b"200")
}

/// Rewrites the data dir's status page address to a fixed loopback port.
fn fix_status_port(data_dir: &Path) -> anyhow::Result<u16> {
    let port = free_port()?;
    let path = data_dir.join(solidarity::config::CONFIG_FILE);
    let text = std::fs::read_to_string(&path)?.replace(
        "status_addr = \"127.0.0.1:0\"",
        &format!("status_addr = \"127.0.0.1:{port}\""),
    );
    std::fs::write(path, text)?;
    Ok(port)
}

/// RSS each idle in-process node adds, MiB: measure first, in a fresh process, so freed
/// memory of earlier scenarios does not hide it.
pub async fn idle_node_rss(nodes: usize) -> anyhow::Result<f64> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = measure::rss_bytes(None);
    let mut running = Vec::new();
    for _ in 0..nodes {
        running.push(OurNode::fresh().await?);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let per_node = mib(measure::rss_bytes(None).saturating_sub(before)) / nodes as f64;
    for node in running {
        node.stop().await?;
    }
    Ok(per_node)
}

pub async fn startup(
    fixture: &CatchUpFixture,
    idle_node_rss_mib: f64,
) -> anyhow::Result<StartupFigures> {
    // b. a daemon process holding the whole fixture: start → status page, then idle RSS;
    // and the same start after the node was killed (sled replays its whole log).
    let unclean = tempfile::tempdir()?;
    copy_dir(fixture.holder_unclean.path(), unclean.path())?;
    let port = fix_status_port(unclean.path())?;
    let started = Instant::now();
    let child = spawn_daemon(unclean.path())?;
    while !status_page_answers(port).await {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "the daemon's status page did not answer"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let to_status_page_after_kill = ms(started.elapsed());
    stop_daemon(child)?;
    drop(unclean);

    let data = fixture.holder_copy()?;
    let port = fix_status_port(data.path())?;
    let started = Instant::now();
    let child = spawn_daemon(data.path())?;
    while !status_page_answers(port).await {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "the daemon's status page did not answer"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let to_status_page = ms(started.elapsed());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let daemon_rss = mib(measure::rss_bytes(Some(child.id())));
    let stored = Client::new(data.path()).status()?.stored_messages;
    stop_daemon(child)?;

    // c. process start → first alert delivered from a running member.
    let source = OurNode::fresh().await?;
    let newcomer = tempfile::tempdir()?;
    ours::init_data_dir(newcomer.path())?;
    let newcomer_key = envelope::author_key(&solidarity::identity::load_key_file(newcomer.path())?);
    source
        .trust(&[("newcomer".into(), card_of(newcomer_key))])
        .await?;
    let id = source
        .call(|client| {
            client.sign(&request::AlertRaise {
                alert: sample_alert(0),
                expires_in_ms: None,
            })
        })
        .await?;
    let mut file = solidarity::members::MembersFile::load(newcomer.path())?;
    file.add(&source.card().await?, "source")?;
    file.save(newcomer.path())?;
    let started = Instant::now();
    let child = spawn_daemon(newcomer.path())?;
    let client = Arc::new(Client::new(newcomer.path()));
    loop {
        let client = client.clone();
        let has = tokio::task::spawn_blocking(move || {
            client
                .alerts()
                .map(|alerts| alerts.iter().any(|alert| alert.id == id))
                .unwrap_or(false)
        })
        .await?;
        if has {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "the new daemon did not receive the alert"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let to_first_alert = ms(started.elapsed());
    stop_daemon(child)?;
    source.stop().await?;
    Ok(StartupFigures {
        idle_in_process_node_rss_mib: idle_node_rss_mib,
        idle_daemon_rss_mib: daemon_rss,
        daemon_stored_alerts: stored,
        start_to_status_page_ms: to_status_page,
        start_to_status_page_after_kill_ms: to_status_page_after_kill,
        start_to_first_alert_ms: to_first_alert,
    })
}
