//! The test kit shared by the multi-node and end-to-end tests.
//!
//! - [`TestNode`]: a real daemon running in this process on loopback with port 0 and a
//!   temp data dir, driven through its real control socket.
//! - [`RawPeer`]: a bare network endpoint (a member's key, no validation, no store) that
//!   injects arbitrary bytes into gossip and records what it receives.
//! - [`BinaryNode`]: the real `solidarity` binary as a child process.
//! - [`smtp::SmtpServer`], [`gpg::Gpg`], [`hook::HookReceiver`]: the real far ends of the
//!   notification channels (aiosmtpd, GnuPG, an HTTP receiver).
//! - [`eventually`]: polls a condition with a deadline; never a fixed sleep for correctness.

#![allow(missing_docs, unreachable_pub, reason = "test support code")]

pub mod fixture_stores;
pub mod gpg;
pub mod hook;
pub mod smtp;
pub mod tor;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use libp2p::{Multiaddr, PeerId};
use solidarity::config::NodeConfig;
use solidarity::identity::{self, Card};
use solidarity::members::MembersFile;
use solidarity_control::Client;
use solidarity_net::{Acceptance, NetEvent, NetHandle};
use solidarity_proto::sync::SyncResponse;
use solidarity_proto::{AuthorKey, FederationId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Federation name used by every test.
pub const FEDERATION: &str = "test-federation";
/// How long a condition may take before a test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);
/// Gossipsub heartbeat in tests: libp2p timers do not follow a paused clock, so tests run
/// on real time with short intervals.
pub const TEST_HEARTBEAT_MS: u64 = 100;

/// Polls `condition` every 50 ms until it holds; panics naming `what` after [`DEADLINE`].
pub async fn eventually<F, Fut>(what: &str, mut condition: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if condition().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `condition` every 20 ms, blocking, until it holds; returns how long it took and
/// panics naming `what` after [`DEADLINE`]. For tests that drive child processes.
pub fn wait_for(what: &str, mut condition: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

/// Runs `solidarity init` as an admin would, listening on and announcing loopback at
/// `port` (0: any), then shortens the config's sync and heartbeat intervals for tests.
pub fn cli_init(dir: &Path, port: u16, federation: &str) {
    cli_ok(
        dir,
        &[
            "init",
            "--listen",
            &format!("/ip4/127.0.0.1/tcp/{port}"),
            "--announce",
            &format!("/ip4/127.0.0.1/tcp/{port}"),
            "--status-addr",
            "127.0.0.1:0",
            "--federation",
            federation,
        ],
    );
    shorten_intervals(&dir.join(solidarity::config::CONFIG_FILE));
}

/// Sets the test's short sync and heartbeat intervals in a config file.
fn shorten_intervals(config_path: &Path) {
    let text = std::fs::read_to_string(config_path).expect("config");
    let text = text
        .replace("sync_interval_secs = 60", "sync_interval_secs = 1")
        .replace(
            "heartbeat_ms = 1000",
            &format!("heartbeat_ms = {TEST_HEARTBEAT_MS}"),
        );
    std::fs::write(config_path, text).expect("config");
}

/// Creates a data dir with a node identity and a test config (loopback, port 0, short
/// intervals).
pub fn init_data_dir(dir: &Path) {
    init_data_dir_with(dir, &[]);
}

/// As [`init_data_dir`], then sets `key = value` lines of the config file.
pub fn init_data_dir_with(dir: &Path, settings: &[(&str, &str)]) {
    solidarity::init::init(
        dir,
        &solidarity::init::InitOptions {
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            announce: vec!["/ip4/127.0.0.1/tcp/0".into()],
            status_addr: "127.0.0.1:0".into(),
            federation: FEDERATION.into(),
            network: solidarity::tor::Network::Clearnet,
        },
    )
    .expect("init");
    let config_path = dir.join(solidarity::config::CONFIG_FILE);
    shorten_intervals(&config_path);
    let text = std::fs::read_to_string(&config_path).expect("config");
    let text = text
        .lines()
        .map(|line| {
            settings
                .iter()
                .find(|(key, _)| line.starts_with(&format!("{key} =")))
                .map_or_else(
                    || line.to_owned(),
                    |(key, value)| format!("{key} = {value}"),
                )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut text = text;
    for (key, value) in settings {
        if !text
            .lines()
            .any(|line| line.starts_with(&format!("{key} =")))
        {
            text.push_str(&format!("\n{key} = {value}\n"));
        }
    }
    std::fs::write(config_path, text).expect("config");
}

/// The node key stored in a data dir.
pub fn node_key(dir: &Path) -> SigningKey {
    identity::load_key_file(dir).expect("key")
}

/// A daemon running in this process.
pub struct TestNode {
    pub dir: tempfile::TempDir,
    pub key: AuthorKey,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestNode {
    /// A fresh node.
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        init_data_dir(dir.path());
        Self::start(dir).await
    }

    /// Starts the daemon on an existing data dir and waits until it answers.
    pub async fn start(dir: tempfile::TempDir) -> Self {
        Self::start_with(dir, None).await
    }

    /// Starts the daemon, on `store` instead of its sled store when given.
    pub async fn start_with(
        dir: tempfile::TempDir,
        store: Option<std::sync::Arc<dyn solidarity_store::Store>>,
    ) -> Self {
        Self::start_configured(dir, store, |_| {}).await
    }

    /// Starts the daemon on a copy of its config changed by `adjust` (e.g. a clock offset,
    /// which no config file can set).
    pub async fn start_configured(
        dir: tempfile::TempDir,
        store: Option<std::sync::Arc<dyn solidarity_store::Store>>,
        adjust: impl FnOnce(&mut NodeConfig),
    ) -> Self {
        let mut config = NodeConfig::load(dir.path()).expect("config");
        adjust(&mut config);
        let stop = CancellationToken::new();
        let task = match store {
            Some(store) => tokio::spawn(solidarity::daemon::run_with_store(
                config,
                store,
                stop.clone(),
            )),
            None => tokio::spawn(solidarity::daemon::run_until(config, stop.clone())),
        };
        let key = solidarity_proto::envelope::author_key(&node_key(dir.path()));
        let node = Self {
            dir,
            key,
            stop,
            task,
        };
        eventually("the daemon answers on its control socket", || async {
            node.call(|client| client.status()).await.is_ok()
        })
        .await;
        node
    }

    pub fn client(&self) -> Client {
        Client::new(self.dir.path())
    }

    /// Runs a blocking control call off the async threads.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Client) -> Result<T, solidarity_control::ControlError> + Send + 'static,
    ) -> Result<T, solidarity_control::ControlError> {
        let client = self.client();
        tokio::task::spawn_blocking(move || f(&client))
            .await
            .expect("control call panicked")
    }

    pub async fn card(&self) -> String {
        self.call(|client| client.card()).await.expect("card")
    }

    pub fn peer_id(&self) -> PeerId {
        identity::peer_id(&self.key).expect("peer id")
    }

    /// Adds members to this node's file and makes the daemon reload it.
    pub async fn add_members(&self, cards: &[(String, String)]) {
        let mut file = MembersFile::load(self.dir.path()).expect("members");
        for (name, card) in cards {
            file.add(&Card::parse(card).expect("card"), name)
                .expect("add");
        }
        file.save(self.dir.path()).expect("save");
        self.call(|client| client.reload_members())
            .await
            .expect("reload");
    }

    /// Removes a member (by key) from this node's file and makes the daemon reload it.
    pub async fn remove_member(&self, key: &AuthorKey) {
        let mut file = MembersFile::load(self.dir.path()).expect("members");
        file.remove(&key.to_hex()).expect("listed");
        file.save(self.dir.path()).expect("save");
        self.call(|client| client.reload_members())
            .await
            .expect("reload");
    }

    /// Puts members into a collective in this node's members file.
    pub async fn set_collective(&self, keys: &[AuthorKey], collective: &str) {
        let mut file = MembersFile::load(self.dir.path()).expect("members");
        for member in &mut file.members {
            if keys.contains(&member.key) {
                member.collective = Some(collective.to_owned());
            }
        }
        file.save(self.dir.path()).expect("save");
        self.call(|client| client.reload_members())
            .await
            .expect("reload");
    }

    /// Number of members connected now.
    pub async fn connected(&self) -> usize {
        self.call(|client| client.peers())
            .await
            .map(|peers| peers.iter().filter(|peer| peer.connected).count())
            .unwrap_or(0)
    }

    pub async fn alerts(&self) -> Vec<solidarity_proto::state::AlertView> {
        self.call(|client| client.alerts()).await.expect("alerts")
    }

    /// The members this node currently holds compromised.
    pub async fn compromised(&self) -> Vec<AuthorKey> {
        self.call(|client| client.peers())
            .await
            .map(|peers| {
                peers
                    .into_iter()
                    .filter(|peer| peer.compromised_at.is_some())
                    .map(|peer| peer.key)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The members as this node sees them.
    pub async fn peers(&self) -> Vec<solidarity_control::MemberView> {
        self.call(|client| client.peers()).await.expect("peers")
    }

    pub async fn stored_messages(&self) -> usize {
        self.call(|client| client.status())
            .await
            .expect("status")
            .stored_messages
    }

    /// Waits for the daemon to stop on its own and returns how it ended.
    pub async fn exited(self, within: Duration) -> anyhow::Result<()> {
        tokio::time::timeout(within, self.task)
            .await
            .expect("the daemon did not stop")
            .expect("daemon task panicked")
    }

    /// As [`Self::exited`], keeping the data dir for a restart.
    pub async fn exited_keeping_dir(
        self,
        within: Duration,
    ) -> (anyhow::Result<()>, tempfile::TempDir) {
        let ended = tokio::time::timeout(within, self.task)
            .await
            .expect("the daemon did not stop")
            .expect("daemon task panicked");
        (ended, self.dir)
    }

    /// Stops the daemon cleanly and returns its data dir.
    pub async fn stop(self) -> tempfile::TempDir {
        self.stop.cancel();
        self.task
            .await
            .expect("daemon task panicked")
            .expect("daemon failed");
        self.dir
    }
}

/// A small seeded generator (splitmix64) so random test runs can be replayed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (bound > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }
}

/// The seed of a random test: `SOLIDARITY_SEED` to replay a run, else the clock.
pub fn seed() -> u64 {
    std::env::var("SOLIDARITY_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_nanos() as u64
        })
}

/// The wall clock, ms since the epoch.
pub fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("fits")
}

/// Starts the real `solidarity node` on `dir` without waiting for it, its stderr to
/// `stderr` (for crash loops; [`BinaryNode`] waits until it answers).
pub fn spawn_daemon(dir: &Path, stderr: std::fs::File) -> Child {
    Command::new(binary())
        .arg("--data")
        .arg(dir)
        .arg("node")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start daemon")
}

/// SIGKILL, then reaps it.
pub fn kill9(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// An alert of `category` and `severity` with `summary`, every optional field empty.
pub fn sample_alert(
    category: solidarity_proto::payload::AlertCategory,
    severity: solidarity_proto::payload::Severity,
    summary: impl Into<String>,
) -> solidarity_proto::payload::Alert {
    solidarity_proto::payload::Alert {
        category,
        legal_type: None,
        severity,
        subject: "a.example".into(),
        summary: summary.into(),
        details: None,
        jurisdictions: vec!["FR".into()],
        authority: None,
        legal_basis: None,
        event_date: None,
        seized: None,
        services: vec![],
        domains: vec![],
        upstream: None,
        references: vec![],
    }
}

/// Starts `n` nodes that all trust each other, and waits until every pair is connected.
pub async fn federation(n: usize) -> Vec<TestNode> {
    federation_with(n, &[]).await
}

/// As [`federation`], with config settings for every node.
pub async fn federation_with(n: usize, settings: &[(&str, &str)]) -> Vec<TestNode> {
    let mut nodes = Vec::new();
    for _ in 0..n {
        let dir = tempfile::tempdir().expect("tempdir");
        init_data_dir_with(dir.path(), settings);
        nodes.push(TestNode::start(dir).await);
    }
    connect_all(&nodes).await;
    // Every node publishes its canary at start; let them all arrive everywhere so tests
    // start from a settled federation.
    for node in &nodes {
        eventually("every start-up canary everywhere", || async {
            node.stored_messages().await >= n
        })
        .await;
    }
    nodes
}

/// Node A (default config) and node B, whose data dir `configure_b` adjusts before it
/// starts (notification channels, say), members of each other and connected.
pub async fn pair(configure_b: impl FnOnce(&Path)) -> (TestNode, TestNode) {
    let a = TestNode::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    init_data_dir(dir.path());
    configure_b(dir.path());
    let b = TestNode::start(dir).await;
    let nodes = vec![a, b];
    connect_all(&nodes).await;
    let mut nodes = nodes.into_iter();
    match (nodes.next(), nodes.next()) {
        (Some(a), Some(b)) => (a, b),
        _ => unreachable!("two nodes"),
    }
}

/// Makes every node a member of every other and waits for the full mesh of connections.
pub async fn connect_all(nodes: &[TestNode]) {
    let mut cards = Vec::new();
    for (index, node) in nodes.iter().enumerate() {
        cards.push((format!("node{index}"), node.card().await));
    }
    for (index, node) in nodes.iter().enumerate() {
        let others: Vec<_> = cards
            .iter()
            .enumerate()
            .filter(|(other, _)| *other != index)
            .map(|(_, card)| card.clone())
            .collect();
        node.add_members(&others).await;
    }
    for node in nodes {
        let want = nodes.len() - 1;
        eventually("every member connected", || async {
            node.connected().await >= want
        })
        .await;
    }
}

/// A bare network endpoint holding a member key.
pub struct RawPeer {
    pub key: SigningKey,
    pub net: NetHandle,
    pub received: mpsc::Receiver<Vec<u8>>,
    /// Its own chain it answers sync requests with (empty: it answers with nothing).
    served: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    stop: CancellationToken,
}

impl RawPeer {
    /// Starts an endpoint with a fresh key that accepts connections from `allowed`.
    pub async fn start(allowed: Vec<PeerId>) -> Self {
        let secret: [u8; 32] = libp2p::identity::Keypair::generate_ed25519()
            .try_into_ed25519()
            .expect("ed25519")
            .secret()
            .as_ref()
            .try_into()
            .expect("32 bytes");
        Self::start_with_key(secret, allowed).await
    }

    /// Starts an endpoint on a given key (the same member can come back with a fresh swarm).
    pub async fn start_with_key(secret: [u8; 32], allowed: Vec<PeerId>) -> Self {
        let keypair = libp2p::identity::Keypair::ed25519_from_bytes(secret).expect("key");
        let config = solidarity::daemon::net_config(
            keypair,
            vec!["/ip4/127.0.0.1/tcp/0".parse().expect("addr")],
            &FederationId::from_name(FEDERATION),
            Duration::from_millis(TEST_HEARTBEAT_MS),
            allowed,
        );
        let (net, mut events, event_loop) = solidarity_net::build(config).expect("net");
        let stop = CancellationToken::new();
        tokio::spawn(event_loop.run(stop.clone().cancelled_owned()));
        let (received_tx, received) = mpsc::channel(4096);
        let handle = net.clone();
        let served: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>> = std::sync::Arc::default();
        let serving = served.clone();
        let author = solidarity_proto::envelope::author_key(&SigningKey::from_bytes(&secret));
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    NetEvent::Message { token, data, .. } => {
                        // Record, never relay: the raw peer is an observer.
                        let _ = handle.report(token, Acceptance::Ignore).await;
                        let _ = received_tx.send(data).await;
                    }
                    NetEvent::SyncRequest { reply, data, .. } => {
                        let page = served_page(&serving, author, &data);
                        let _ = handle.reply_sync(reply, page.encode()).await;
                    }
                    NetEvent::PeerConnected(_)
                    | NetEvent::PeerDisconnected(_)
                    | NetEvent::PeerClosedEarly(_) => {}
                }
            }
        });
        Self {
            key: SigningKey::from_bytes(&secret),
            net,
            received,
            served,
            stop,
        }
    }

    /// Answers sync requests from now on with `chain` (its own envelopes, seq 1 first),
    /// from the requester's watermark on, a full page at a time, as an honest node would.
    pub fn serve(&self, chain: Vec<Vec<u8>>) {
        *self.served.lock().expect("served") = chain;
    }

    /// Publishes, waiting for the mesh to form while there is nobody to send to yet.
    pub async fn publish_when_meshed(&self, bytes: &[u8]) {
        let start = Instant::now();
        loop {
            match self.net.publish(bytes.to_vec()).await {
                Ok(()) => return,
                Err(solidarity_net::NetError::NoPeers) if start.elapsed() < DEADLINE => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!("publish failed: {error}"),
            }
        }
    }

    /// Everything received so far.
    pub fn drain(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Ok(bytes) = self.received.try_recv() {
            out.push(bytes);
        }
        out
    }

    pub fn author(&self) -> AuthorKey {
        solidarity_proto::envelope::author_key(&self.key)
    }

    /// The card other nodes add to trust this peer (no address: it dials out).
    pub fn card(&self) -> String {
        self.author().to_hex()
    }

    /// Dials a node.
    pub async fn connect(&self, node: &TestNode) {
        let card = Card::parse(&node.card().await).expect("card");
        let peer = identity::peer_id(&card.key).expect("peer");
        let addresses: Vec<Multiaddr> = card.addresses;
        self.net.allow_peer(peer, addresses).await.expect("dial");
    }
}

impl Drop for RawPeer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A page of `served` (the chain of `author`, seq 1 first) after the watermark `request`
/// gives for `author`.
fn served_page(
    served: &std::sync::Mutex<Vec<Vec<u8>>>,
    author: AuthorKey,
    request: &[u8],
) -> SyncResponse {
    let Ok(request) = solidarity_proto::sync::SyncRequest::decode(request) else {
        return SyncResponse::default();
    };
    let Some(from) = request
        .have
        .iter()
        .find(|watermark| watermark.author == author)
        .and_then(|watermark| usize::try_from(watermark.seq).ok())
    else {
        return SyncResponse::default();
    };
    let served = served.lock().expect("served");
    let mut page = SyncResponse::default();
    let mut bytes = 0;
    for envelope in served.iter().skip(from) {
        if page.envelopes.len() == request.page_limit()
            || bytes + envelope.len() > solidarity_proto::sync::MAX_PAGE_BYTES
        {
            page.more = true;
            break;
        }
        bytes += envelope.len();
        page.envelopes
            .push(serde_bytes::ByteBuf::from(envelope.clone()));
    }
    page
}

/// Path of the real `solidarity` binary, built once per test process.
pub fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "solidarity",
                "--bin",
                "solidarity",
            ])
            .current_dir(&workspace)
            .status()
            .expect("run cargo build");
        assert!(
            status.success(),
            "cargo build of the solidarity binary failed"
        );
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| workspace.join("target"), PathBuf::from);
        target.join("debug").join("solidarity")
    })
}

/// Runs `solidarity --data DIR ARGS…` and returns (success, stdout, stderr).
pub fn cli(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(binary())
        .arg("--data")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run solidarity");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `solidarity alert raise` of a `kind` alert about `a.example` as an admin types it;
/// returns (success, stdout, stderr).
pub fn cli_raise(dir: &Path, kind: &str, severity: &str, summary: &str) -> (bool, String, String) {
    cli(
        dir,
        &[
            "alert",
            "raise",
            "--kind",
            kind,
            "--subject",
            "a.example",
            "--severity",
            severity,
            "--summary",
            summary,
        ],
    )
}

/// Runs a CLI command that must succeed; returns its trimmed stdout.
pub fn cli_ok(dir: &Path, args: &[&str]) -> String {
    let (ok, stdout, stderr) = cli(dir, args);
    assert!(ok, "solidarity {args:?} failed: {stderr}");
    stdout.trim().to_owned()
}

/// The real daemon as a child process; killed (SIGKILL) on drop if still running.
pub struct BinaryNode {
    pub dir: PathBuf,
    child: Option<Child>,
    log: PathBuf,
}

impl BinaryNode {
    /// Starts `solidarity node` on `dir` (logs appended to DIR/../NAME.log) and waits for
    /// its socket.
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, |_| {})
    }

    /// As [`BinaryNode::start`], with the command adjusted first (its environment, say).
    pub fn start_with(dir: &Path, adjust: impl FnOnce(&mut Command)) -> Self {
        let log = dir.with_extension("log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let mut command = Command::new(binary());
        command
            .arg("--data")
            .arg(dir)
            .arg("node")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        adjust(&mut command);
        let child = command.spawn().expect("start daemon");
        let node = Self {
            dir: dir.to_owned(),
            child: Some(child),
            log,
        };
        let start = Instant::now();
        while !cli(dir, &["status"]).0 {
            assert!(
                start.elapsed() < DEADLINE,
                "daemon did not start: {}",
                node.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        node
    }

    /// The daemon's process id while it runs (to signal it).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then waits for a clean exit; returns whether it exited with success.
    pub fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait().map(|status| status.success()).unwrap_or(false)
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for BinaryNode {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A free loopback TCP port (bound and released: fine for tests that start right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("free port")
}

/// `GET url` over plain HTTP/1.0; returns (head, body).
pub fn http_get(url: &str) -> (String, String) {
    http_get_with(url, &[])
}

/// As [`http_get`], with extra request headers (a cookie, `Authorization`, a `Host`).
pub fn http_get_with(url: &str, headers: &[(&str, &str)]) -> (String, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(host, path)| {
            (host, format!("/{path}"))
        });
    let mut stream = std::net::TcpStream::connect(host).expect("connect to status page");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut request = format!("GET {path} HTTP/1.0\r\n");
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        request.push_str(&format!("Host: {host}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (head.to_owned(), body.to_owned())
}

/// A store (memory, or a real sled store) whose writes or flushes can be made to fail,
/// for storage-fault tests.
pub struct FaultyStore {
    inner: Box<dyn solidarity_store::Store>,
    pub fail_flush: std::sync::atomic::AtomicBool,
    pub fail_write: std::sync::atomic::AtomicBool,
}

impl Default for FaultyStore {
    fn default() -> Self {
        Self::over(Box::new(solidarity_store::MemoryStore::default()))
    }
}

impl FaultyStore {
    /// Faults injected in front of `inner`.
    pub fn over(inner: Box<dyn solidarity_store::Store>) -> Self {
        Self {
            inner,
            fail_flush: std::sync::atomic::AtomicBool::new(false),
            fail_write: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Faults injected in front of the sled store of a data dir.
    pub fn over_data_dir(dir: &Path) -> Self {
        let store = solidarity_store::SledStore::open(&solidarity_store::SledOptions::new(
            dir.join(solidarity::daemon::STORE_DIR),
        ))
        .expect("open the store");
        Self::over(Box::new(store))
    }

    fn injected(&self, operation: &'static str) -> solidarity_store::StoreError {
        solidarity_store::StoreError::Backend {
            operation,
            source: Box::new(std::io::Error::other("injected fault: disk full")),
        }
    }
}

impl solidarity_store::Store for FaultyStore {
    fn insert_batch(
        &self,
        messages: &[solidarity_store::NewMessage],
    ) -> Result<Vec<solidarity_store::InsertOutcome>, solidarity_store::StoreError> {
        if self.fail_write.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(self.injected("write"));
        }
        self.inner.insert_batch(messages)
    }
    fn flush(&self) -> Result<(), solidarity_store::StoreError> {
        if self.fail_flush.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(self.injected("flush"));
        }
        self.inner.flush()
    }
    fn contains(
        &self,
        id: &solidarity_proto::MessageId,
    ) -> Result<bool, solidarity_store::StoreError> {
        self.inner.contains(id)
    }
    fn envelope(
        &self,
        id: &solidarity_proto::MessageId,
    ) -> Result<Option<Vec<u8>>, solidarity_store::StoreError> {
        self.inner.envelope(id)
    }
    fn meta(
        &self,
        id: &solidarity_proto::MessageId,
    ) -> Result<Option<solidarity_store::MessageMeta>, solidarity_store::StoreError> {
        self.inner.meta(id)
    }
    fn ids_with_prefix(
        &self,
        hex: &str,
        limit: usize,
    ) -> Result<Vec<solidarity_proto::MessageId>, solidarity_store::StoreError> {
        self.inner.ids_with_prefix(hex, limit)
    }
    fn ids_after(
        &self,
        after: Option<&solidarity_proto::MessageId>,
        limit: usize,
    ) -> Result<Vec<solidarity_proto::MessageId>, solidarity_store::StoreError> {
        self.inner.ids_after(after, limit)
    }
    fn id_at(
        &self,
        author: &AuthorKey,
        seq: u64,
    ) -> Result<Option<solidarity_proto::MessageId>, solidarity_store::StoreError> {
        self.inner.id_at(author, seq)
    }
    fn by_kind(
        &self,
        kind: &str,
    ) -> Result<Vec<solidarity_store::StoredEnvelope>, solidarity_store::StoreError> {
        self.inner.by_kind(kind)
    }
    fn newest(
        &self,
        kind: &str,
        limit: usize,
    ) -> Result<Vec<solidarity_store::StoredEnvelope>, solidarity_store::StoreError> {
        self.inner.newest(kind, limit)
    }
    fn referring_newest(
        &self,
        target: &solidarity_proto::MessageId,
        kind: &str,
        limit: usize,
    ) -> Result<Vec<solidarity_store::Referring>, solidarity_store::StoreError> {
        self.inner.referring_newest(target, kind, limit)
    }
    fn newest_per_author(
        &self,
        kind: &str,
        per_author: usize,
        now_ms: u64,
    ) -> Result<Vec<solidarity_store::StoredEnvelope>, solidarity_store::StoreError> {
        self.inner.newest_per_author(kind, per_author, now_ms)
    }
    fn newest_by(
        &self,
        kind: &str,
        author: &AuthorKey,
        limit: usize,
        now_ms: u64,
    ) -> Result<Vec<solidarity_store::StoredEnvelope>, solidarity_store::StoreError> {
        self.inner.newest_by(kind, author, limit, now_ms)
    }
    fn stored_bytes(&self, author: &AuthorKey) -> Result<u64, solidarity_store::StoreError> {
        self.inner.stored_bytes(author)
    }
    fn author_range(
        &self,
        author: &AuthorKey,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<solidarity_store::StoredEnvelope>, solidarity_store::StoreError> {
        self.inner.author_range(author, from_seq, limit)
    }
    fn watermark(&self, author: &AuthorKey) -> Result<u64, solidarity_store::StoreError> {
        self.inner.watermark(author)
    }
    fn chain_head(
        &self,
        author: &AuthorKey,
    ) -> Result<Option<(u64, solidarity_proto::MessageId)>, solidarity_store::StoreError> {
        self.inner.chain_head(author)
    }
    fn expire(&self, now_ms: u64) -> Result<usize, solidarity_store::StoreError> {
        self.inner.expire(now_ms)
    }
    fn record_fork(
        &self,
        evidence: &solidarity_store::NewMessage,
        detected_at: u64,
        from_seq: u64,
    ) -> Result<bool, solidarity_store::StoreError> {
        self.inner.record_fork(evidence, detected_at, from_seq)
    }
    fn compromised(
        &self,
    ) -> Result<Vec<solidarity_store::Compromise>, solidarity_store::StoreError> {
        self.inner.compromised()
    }
    fn clear_compromise(&self, author: &AuthorKey) -> Result<(), solidarity_store::StoreError> {
        self.inner.clear_compromise(author)
    }
    fn kept_canaries(
        &self,
    ) -> Result<Vec<(AuthorKey, Vec<solidarity_store::StoredEnvelope>)>, solidarity_store::StoreError>
    {
        self.inner.kept_canaries()
    }

    fn len(&self) -> Result<usize, solidarity_store::StoreError> {
        self.inner.len()
    }
}
