//! Issue 11, points 10 and 11 (parts): non-members and local users cannot hurt a node.
//! Each test runs the attack against a real daemon, asserts the defence on counts, and
//! prints its figures.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use solidarity::identity::Card;
use solidarity_control::request;
use solidarity_proto::FederationId;
use solidarity_proto::payload::{AlertCategory, Severity};
use solidarity_proto::sync::{SyncRequest, SyncResponse, Watermark};
use solidarity_tests::{
    BinaryNode, FEDERATION, RawPeer, TestNode, cli, cli_init, eventually, free_port, http_get,
};

/// Sockets the attacker keeps open at once.
const IDLE_SOCKETS: usize = 200;

/// Opens one idle TCP connection from `source` (another loopback address than the member's,
/// so the per-address limit can tell them apart).
async fn idle_socket(source: &str, target: SocketAddr) -> Option<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().ok()?;
    socket.bind(format!("{source}:0").parse().ok()?).ok()?;
    tokio::time::timeout(Duration::from_secs(1), socket.connect(target))
        .await
        .ok()?
        .ok()
}

/// Whether the other side closed `stream` (EOF or reset); never blocks.
fn closed_by_peer(stream: &tokio::net::TcpStream) -> bool {
    let mut buf = [0; 16];
    match stream.try_read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => error.kind() != std::io::ErrorKind::WouldBlock,
    }
}

/// Point 10a: 200 idle TCP sockets held open (and reopened as soon as the node closes one)
/// from one host; a member still connects and syncs, and every idle socket is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_from_one_host_do_not_lock_members_out() {
    let victim = TestNode::new().await;
    let member = RawPeer::start(vec![victim.peer_id()]).await;
    victim
        .add_members(&[("member".into(), member.card())])
        .await;
    let request = request::AlertRaise {
        alert: solidarity_tests::sample_alert(AlertCategory::Raid, Severity::High, "raid"),
        expires_in_ms: None,
    };
    victim
        .call(move |client| client.sign(&request))
        .await
        .expect("raise");
    let card = Card::parse(&victim.card().await).expect("card");
    let port = solidarity::card_addresses::tcp_ports(&card.addresses)[0];
    let target: SocketAddr = ([127, 0, 0, 1], port).into();

    // The attacker: 200 sockets from 127.0.0.2 that never speak, each replaced at once
    // when the node closes it, for as long as the test runs.
    let attack = tokio_util::sync::CancellationToken::new();
    let attacker = tokio::spawn({
        let attack = attack.clone();
        async move {
            let mut sockets = Vec::new();
            let mut opened = 0_usize;
            let mut closed = 0_usize;
            let mut first_wave: Vec<Option<Instant>> = Vec::new();
            let started = Instant::now();
            while sockets.len() < IDLE_SOCKETS {
                if let Some(socket) = idle_socket("127.0.0.2", target).await {
                    sockets.push((sockets.len(), socket));
                    opened += 1;
                }
            }
            first_wave.resize(IDLE_SOCKETS, None);
            let mut next_index = IDLE_SOCKETS;
            while !attack.is_cancelled() {
                let mut kept = Vec::with_capacity(sockets.len());
                for (index, socket) in sockets.drain(..) {
                    if closed_by_peer(&socket) {
                        closed += 1;
                        if let Some(slot) = first_wave.get_mut(index) {
                            *slot = Some(Instant::now());
                        }
                    } else {
                        kept.push((index, socket));
                    }
                }
                sockets = kept;
                while sockets.len() < IDLE_SOCKETS && !attack.is_cancelled() {
                    match idle_socket("127.0.0.2", target).await {
                        Some(socket) => {
                            sockets.push((next_index, socket));
                            next_index += 1;
                            opened += 1;
                        }
                        None => break,
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let first_closed: Vec<Duration> = first_wave
                .iter()
                .flatten()
                .map(|at| at.duration_since(started))
                .collect();
            (opened, closed, first_closed)
        }
    });
    // Let the attack fill every slot it can before the member comes.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let started = Instant::now();
    member.connect(&victim).await;
    eventually("the member connects despite the idle sockets", || async {
        victim.connected().await >= 1
    })
    .await;
    let connected_after = started.elapsed();
    let request = SyncRequest {
        fed: FederationId::from_name(FEDERATION),
        have: vec![Watermark {
            author: victim.key,
            seq: 0,
            head: None,
        }],
        limit: 100,
        statements: None,
    };
    let response = member
        .net
        .sync_request(victim.peer_id(), request.encode())
        .await
        .expect("sync answered");
    let response = SyncResponse::decode(&response).expect("sync response");
    assert!(
        !response.envelopes.is_empty(),
        "the sync brings the victim's alert"
    );

    // Keep attacking past the handshake timeout, so that every socket of the first wave
    // that the node admitted has run into it.
    let wait = solidarity_net::HANDSHAKE_TIMEOUT + Duration::from_secs(3);
    tokio::time::sleep(wait.saturating_sub(started.elapsed())).await;
    attack.cancel();
    let (opened, closed, first_closed) = attacker.await.expect("attacker");
    let slowest = first_closed.iter().max().copied().unwrap_or_default();
    eprintln!(
        "idle sockets from one host: {opened} opened, {closed} closed by the node; first wave of \
         {IDLE_SOCKETS}: {} closed, the last after {slowest:?}; member connected after \
         {connected_after:?} and synced {} envelopes",
        first_closed.len(),
        response.envelopes.len()
    );
    assert_eq!(
        first_closed.len(),
        IDLE_SOCKETS,
        "every idle socket of the first wave is closed by the node"
    );
    assert!(
        closed >= IDLE_SOCKETS,
        "the node closes idle sockets instead of holding them"
    );
}

/// How many file descriptors a process holds.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

fn set_status_port(dir: &Path, port: u16) {
    let path = dir.join(solidarity::config::CONFIG_FILE);
    let text = std::fs::read_to_string(&path).expect("config");
    let text = text.replace(
        "status_addr = \"127.0.0.1:0\"",
        &format!("status_addr = \"127.0.0.1:{port}\""),
    );
    std::fs::write(path, text).expect("config");
}

/// Point 10b: 2 000 idle connections to the status page of a daemon limited to 256 file
/// descriptors; the CLI (`alert raise` included) keeps working during the attack, the node
/// closes the idle connections it served, and the page answers once they are gone.
#[test]
fn idle_http_connections_do_not_exhaust_the_daemon() {
    const ATTACK: usize = 2000;
    const FD_LIMIT: usize = 256;
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("node");
    cli_init(&dir, 0, FEDERATION);
    let status_port = free_port();
    set_status_port(&dir, status_port);
    let node = BinaryNode::start(&dir);
    let pid = node.pid().expect("running");
    let limited = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &pid.to_string(),
            &format!("--nofile={FD_LIMIT}:{FD_LIMIT}"),
        ])
        .status()
        .expect("prlimit");
    assert!(
        limited.success(),
        "prlimit lowers the daemon's RLIMIT_NOFILE"
    );
    let fds_before = open_fds(pid);

    let target: SocketAddr = ([127, 0, 0, 1], status_port).into();
    let mut idle = Vec::new();
    let mut refused = 0;
    while idle.len() < ATTACK && refused < 20 {
        match TcpStream::connect_timeout(&target, Duration::from_millis(200)) {
            Ok(stream) => idle.push(stream),
            Err(_) => refused += 1,
        }
    }
    let fds_during = open_fds(pid);

    let started = Instant::now();
    let (raised, stdout, stderr) = cli(
        &dir,
        &[
            "alert",
            "raise",
            "--kind",
            "raid",
            "--subject",
            "a.example",
            "--severity",
            "high",
            "--summary",
            "raised during an HTTP connection flood",
        ],
    );
    let raise_took = started.elapsed();
    assert!(raised, "alert raise works during the attack: {stderr}");
    let (listed, alerts, _) = cli(&dir, &["alert", "list"]);
    assert!(listed && alerts.contains("raised during an HTTP connection flood"));

    // The connections the node served time out and are closed by it.
    std::thread::sleep(
        solidarity::daemon::status_page::listener::RESPONSE_DEADLINE + Duration::from_secs(2),
    );
    let mut closed_by_node = 0;
    for stream in &idle {
        stream.set_nonblocking(true).expect("nonblocking");
        let mut buf = [0; 16];
        match (&*stream).read(&mut buf) {
            Ok(0) => closed_by_node += 1,
            Err(error) if error.kind() != std::io::ErrorKind::WouldBlock => closed_by_node += 1,
            _ => {}
        }
    }
    let fds_after_deadline = open_fds(pid);
    let held = idle.len();
    drop(idle);

    let (head, body) = http_get(&format!("http://{target}/"));
    eprintln!(
        "HTTP flood: {held} idle connections held ({refused} connects timed out), daemon fds \
         {fds_before} before, {fds_during} during, {fds_after_deadline} after the deadline \
         (limit {FD_LIMIT}); alert raise took {raise_took:?} ({}); {closed_by_node} idle \
         connections closed by the node after its deadline; page answers: {}",
        stdout.trim(),
        head.lines().next().unwrap_or_default()
    );
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    assert!(!body.is_empty(), "the page has a body");
    assert!(
        fds_during < FD_LIMIT,
        "the daemon stays below its descriptor limit: {fds_during}"
    );
    assert!(
        closed_by_node >= solidarity::daemon::status_page::listener::MAX_CONNECTIONS,
        "the idle connections the node served are closed by it: {closed_by_node}"
    );
}

/// `GET /` over a Unix socket; returns the whole response.
fn unix_get(path: &Path) -> String {
    use std::io::Write;
    let mut stream = std::os::unix::net::UnixStream::connect(path).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: onion.example\r\n\r\n")
        .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    response
}

/// Point 10c: `status_addr = "unix:PATH"` serves the page on a socket of mode 0660 in the
/// daemon's own directory; a socket someone else serves on that path stops the daemon at
/// start with a line that says so, instead of serving beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_on_a_unix_socket_cannot_be_taken() {
    use std::os::unix::fs::PermissionsExt;
    let sockets = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(sockets.path(), std::fs::Permissions::from_mode(0o750)).expect("mode");
    let path = sockets.path().join("status.sock");
    let setting = format!("{:?}", format!("unix:{}", path.display()));
    let dir = tempfile::tempdir().expect("tempdir");
    solidarity_tests::init_data_dir_with(dir.path(), &[("status_addr", &setting)]);
    let node = TestNode::start(dir).await;
    let mode = std::fs::metadata(&path)
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    let response = tokio::task::spawn_blocking({
        let path = path.clone();
        move || unix_get(&path)
    })
    .await
    .expect("get");
    let status = node.call(|client| client.status()).await.expect("status");
    eprintln!(
        "unix status page: mode {mode:o}, answer {:?}, {} bytes; status shows {:?}",
        response.lines().next().unwrap_or_default(),
        response.len(),
        status.status_url
    );
    assert_eq!(mode, 0o660);
    assert!(response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"));
    assert!(response.contains("<html"), "the page itself");
    let dir = node.stop().await;
    assert!(!path.exists(), "a stopped daemon removes its socket");

    // Another process now serves on the path: the daemon refuses to start, naming it.
    let squatter = std::os::unix::net::UnixListener::bind(&path).expect("squat");
    let config = solidarity::config::NodeConfig::load(dir.path()).expect("config");
    let outcome = tokio::time::timeout(
        Duration::from_secs(30),
        solidarity::daemon::run_until(config, tokio_util::sync::CancellationToken::new()),
    )
    .await
    .expect("the daemon gives up at once");
    let error = format!("{:#}", outcome.expect_err("refused to start"));
    eprintln!("with the path taken: {error}");
    assert!(
        error.contains("status_addr") && error.contains("in use"),
        "{error}"
    );
    drop(squatter);
}

async fn judged(node: &TestNode, verdict: &str) -> f64 {
    let text = node.call(|client| client.metrics()).await.expect("metrics");
    text.lines()
        .filter(|line| line.starts_with("solidarity_messages_judged") && line.contains(verdict))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// Point 11: a member forwards a corrupted copy (bad signature) of an honest message to the
/// victim before the honest copy reaches it. The honest copy still arrives by gossip (sync
/// is slowed to once a minute, so it cannot be what brings it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_copy_does_not_shadow_the_honest_message() {
    use solidarity_proto::payload::Alert;
    use solidarity_proto::{Body, MessageId, envelope};
    let nodes = solidarity_tests::federation_with(2, &[("sync_interval_secs", "60")]).await;
    let (victim, relay) = (&nodes[0], &nodes[1]);
    let author = RawPeer::start(vec![victim.peer_id(), relay.peer_id()]).await;
    let attacker = RawPeer::start(vec![victim.peer_id()]).await;
    victim
        .add_members(&[
            ("author".into(), author.card()),
            ("attacker".into(), attacker.card()),
        ])
        .await;
    relay.add_members(&[("author".into(), author.card())]).await;
    author.connect(relay).await;
    attacker.connect(victim).await;
    eventually("the attacker and the author are connected", || async {
        victim.connected().await >= 2 && relay.connected().await >= 2
    })
    .await;

    let alert: Alert =
        solidarity_tests::sample_alert(AlertCategory::Seizure, Severity::Critical, "seized");
    let body = Body::Alert(alert);
    let payload = solidarity_proto::Payload {
        fed: FederationId::from_name(FEDERATION),
        seq: 1,
        prev: None,
        created_at: u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_millis(),
        )
        .expect("fits"),
        expires_at: None,
        kind: body.kind().expect("kind").to_owned(),
        body: body.encode(),
    };
    let honest = envelope::sign(&author.key, &payload);
    let mut corrupted = honest.bytes.clone();
    let last = corrupted.len() - 1;
    corrupted[last] ^= 0x01; // the last byte of the signature
    assert_eq!(
        envelope::message_id_of_envelope_bytes(&corrupted),
        Some(honest.id),
        "the corrupted copy has the honest message's content id"
    );

    let rejected_before = judged(victim, "reject").await;
    attacker.publish_when_meshed(&corrupted).await;
    eventually("the victim rejects the corrupted copy", || async {
        judged(victim, "reject").await > rejected_before
    })
    .await;

    let started = Instant::now();
    author.publish_when_meshed(&honest.bytes).await;
    let id: MessageId = honest.id;
    eventually("the honest copy reaches the victim", || async {
        victim.alerts().await.iter().any(|alert| alert.id == id)
    })
    .await;
    let latency = started.elapsed();
    let by_sync = judged(victim, "sync").await;
    eprintln!(
        "corrupted copy first: the honest alert arrived {latency:?} after its publication \
         (sync is once a minute; sync verdicts so far: {by_sync})"
    );
}

/// Point 11, text: an alert whose subject carries a bidi override, a zero-width space or a
/// line separator is rejected by a real node, and its page never shows one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_characters_never_reach_the_status_page() {
    use solidarity_proto::{Body, envelope};
    // One member per hostile alert: the first Reject graylists its forwarder, so a second
    // alert from the same member would be dropped unread rather than judged.
    let victim = TestNode::new().await;
    let mut members = Vec::new();
    for _ in 0..4 {
        members.push(RawPeer::start(vec![victim.peer_id()]).await);
    }
    let cards: Vec<(String, String)> = members
        .iter()
        .enumerate()
        .map(|(index, member)| (format!("member{index}"), member.card()))
        .collect();
    victim.add_members(&cards).await;
    for member in &members {
        member.connect(&victim).await;
    }
    eventually("the members connect", || async {
        victim.connected().await >= members.len()
    })
    .await;
    let now = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("fits");
    let signed = |member: &RawPeer, subject: &str, summary: &str| {
        let mut alert =
            solidarity_tests::sample_alert(AlertCategory::Raid, Severity::High, summary);
        alert.subject = subject.to_owned();
        let body = Body::Alert(alert);
        envelope::sign(
            &member.key,
            &solidarity_proto::Payload {
                fed: FederationId::from_name(FEDERATION),
                seq: 1,
                prev: None,
                created_at: now,
                expires_at: None,
                kind: body.kind().expect("kind").to_owned(),
                body: body.encode(),
            },
        )
    };
    let hostile = [
        ("\u{202E}elpmaxe.a", "reversed subject"),
        ("\u{200B}", "invisible subject"),
        ("a.example\u{2028}b.example", "separated subject"),
        ("a.exa\u{2066}mple", "isolated subject"),
    ];
    let rejected_before = judged(&victim, "reject").await;
    for (member, (subject, summary)) in members.iter().zip(hostile) {
        member
            .publish_when_meshed(&signed(member, subject, summary).bytes)
            .await;
    }
    eventually("every hostile alert is judged", || async {
        judged(&victim, "reject").await - rejected_before >= hostile.len() as f64
    })
    .await;
    let rejected = judged(&victim, "reject").await - rejected_before;
    let clean = request::AlertRaise {
        alert: solidarity_tests::sample_alert(AlertCategory::Raid, Severity::High, "clean subject"),
        expires_in_ms: None,
    };
    victim
        .call(move |client| client.sign(&clean))
        .await
        .expect("raise");
    let status = victim.call(|client| client.status()).await.expect("status");
    let (_, page) = tokio::task::spawn_blocking(move || http_get(&status.status_url))
        .await
        .expect("page");
    let (_, json) = {
        let url = victim
            .call(|client| client.status())
            .await
            .expect("status")
            .status_url;
        tokio::task::spawn_blocking(move || http_get(&format!("{url}api/v1/alerts")))
            .await
            .expect("json")
    };
    let shown = |text: &str| {
        text.chars()
            .filter(|&c| solidarity_proto::text::is_refused_everywhere(c))
            .count()
    };
    eprintln!(
        "format characters: {} hostile alerts sent, {rejected} rejected, alerts shown {}; \
         refused characters on the page {}, in the JSON {}",
        hostile.len(),
        victim.alerts().await.len(),
        shown(&page),
        shown(&json)
    );
    assert_eq!(
        rejected,
        hostile.len() as f64,
        "every hostile alert rejected"
    );
    assert_eq!(shown(&page), 0);
    assert_eq!(shown(&json), 0);
    assert!(page.contains("clean subject"));
}

/// Point 11, text: the CLI refuses a format character before anything is signed, naming
/// the field and the code point.
#[test]
fn the_cli_refuses_format_characters_before_signing() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("node");
    cli_init(&dir, 0, FEDERATION);
    let _node = BinaryNode::start(&dir);
    let before = cli(&dir, &["alert", "list"]).1;
    for (field, value, code) in [
        ("--subject", "\u{202E}elpmaxe.a", "U+202E"),
        ("--subject", "\u{200B}", "U+200B"),
        ("--summary", "two\u{2029}paragraphs", "U+2029"),
    ] {
        let mut args = vec![
            "alert",
            "raise",
            "--kind",
            "raid",
            "--severity",
            "high",
            "--subject",
            "a.example",
            "--summary",
            "raid",
        ];
        let at = args.iter().position(|arg| *arg == field).expect("field") + 1;
        args[at] = value;
        let (ok, _, stderr) = cli(&dir, &args);
        eprintln!("{field} with {code}: {}", stderr.trim());
        assert!(!ok, "refused");
        assert!(stderr.contains(code), "names the character: {stderr}");
    }
    assert_eq!(
        cli(&dir, &["alert", "list"]).1,
        before,
        "nothing was signed"
    );
}
