//! Three onion-only nodes on a private Tor network (Debian's tor, `TestingTorNetwork`, all
//! on 127.0.0.1; `tests/support/tor_network.py`): they federate through the onion services
//! they create themselves, an alert reaches every node, a restarted node catches up by
//! sync over tor, the node whose tor goes away connects to nobody and says why, and the
//! revocation drill works. Meanwhile no process of a node holds a connection to anything
//! but its tor and its own loopback listener, it resolves no name, and no card, log line,
//! peer list or page holds an address that is not an onion address.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use solidarity_tests::tor::TorNetwork;
use solidarity_tests::{BinaryNode, cli_ok, cli_raise};

/// Longest wait for something that crosses tor (circuits, descriptors, rendezvous).
const TOR_DEADLINE: Duration = Duration::from_secs(100);

fn wait_long(what: &str, mut condition: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < TOR_DEADLINE,
            "timed out waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    start.elapsed()
}

fn json(dir: &Path, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&cli_ok(dir, args)).expect("json")
}

/// The command name of the process holding the TCP socket bound to `local` (the dialling
/// end of a connection this test accepted and holds open).
fn owner_of(local: std::net::SocketAddr) -> Option<String> {
    let mut inode = None;
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/self/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(1).and_then(|text| parse_proc_address(text)) == Some(local) {
                inode = fields.get(9).and_then(|text| text.parse::<u64>().ok());
            }
        }
    }
    let inode = inode?;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        if socket_inodes(pid).contains(&inode) {
            return std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .ok()
                .map(|comm| comm.trim().to_owned());
        }
    }
    None
}

/// A listener that takes every connection, holds it open, and notes which program dialled
/// it (tor's exit, or something that should not have).
struct Honeypot {
    port: u16,
    dialled_by: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Honeypot {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("honeypot");
        let port = listener.local_addr().expect("addr").port();
        let dialled_by = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let noted = std::sync::Arc::clone(&dialled_by);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                let owner = stream
                    .peer_addr()
                    .ok()
                    .and_then(owner_of)
                    .unwrap_or_else(|| "?".to_owned());
                noted.lock().expect("lock").push(owner);
                held.push(stream);
            }
        });
        Self { port, dialled_by }
    }

    /// Only tor ever connected to it; returns how often.
    fn assert_only_tor_dialled(&self) -> usize {
        let owners = self.dialled_by.lock().expect("lock").clone();
        assert!(
            owners.iter().all(|owner| owner == "tor"),
            "something but tor dialled the honeypot: {owners:?}"
        );
        owners.len()
    }
}

fn connected_members(dir: &Path) -> usize {
    json(dir, &["peers", "--json"])
        .as_array()
        .expect("array")
        .iter()
        .filter(|peer| peer["connected"] == true)
        .count()
}

fn has_alert(dir: &Path, id: &str) -> bool {
    json(dir, &["alert", "list", "--json"])
        .as_array()
        .expect("array")
        .iter()
        .any(|alert| alert["id"] == id)
}

fn raise(dir: &Path, summary: &str) -> String {
    let (raised, stdout, stderr) = cli_raise(dir, "seizure", "critical", summary);
    assert!(raised, "alert raise failed: {stderr}");
    stdout.trim().to_owned()
}

/// Whether `text` holds an IP address or a multiaddr other than an onion one.
fn clearnet_address_in(text: &str) -> Option<String> {
    for marker in ["/ip4/", "/ip6/", "/dns", "/tcp/"] {
        if let Some(at) = text.find(marker) {
            return Some(text[at.saturating_sub(40)..(at + 40).min(text.len())].to_owned());
        }
    }
    let ipv4 = text
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .find(|word| {
            let parts: Vec<&str> = word.split('.').collect();
            parts.len() == 4 && parts.iter().all(|part| part.parse::<u8>().is_ok())
        });
    ipv4.map(str::to_owned)
}

/// One TCP socket of a process, from `/proc/PID/net/tcp{,6}`.
#[derive(Debug)]
struct Socket {
    local: std::net::SocketAddr,
    remote: std::net::SocketAddr,
    listening: bool,
}

fn socket_inodes(pid: u32) -> HashSet<u64> {
    let mut inodes = HashSet::new();
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return inodes;
    };
    for entry in entries.flatten() {
        if let Ok(target) = std::fs::read_link(entry.path())
            && let Some(inode) = target
                .to_str()
                .and_then(|text| text.strip_prefix("socket:["))
                .and_then(|text| text.strip_suffix(']'))
                .and_then(|text| text.parse().ok())
        {
            inodes.insert(inode);
        }
    }
    inodes
}

fn parse_proc_address(text: &str) -> Option<std::net::SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip: std::net::IpAddr = match ip.len() {
        8 => std::net::Ipv4Addr::from(u32::from_str_radix(ip, 16).ok()?.swap_bytes()).into(),
        32 => {
            let mut bytes = [0u8; 16];
            for (word, chunk) in bytes.chunks_mut(4).enumerate() {
                let value = u32::from_str_radix(&ip[word * 8..word * 8 + 8], 16).ok()?;
                chunk.copy_from_slice(&value.to_le_bytes());
            }
            std::net::Ipv6Addr::from(bytes).into()
        }
        _ => return None,
    };
    Some(std::net::SocketAddr::new(ip, port))
}

/// The TCP sockets a process holds, and how many UDP sockets (a name lookup needs one).
fn sockets_of(pid: u32) -> (Vec<Socket>, usize) {
    let inodes = socket_inodes(pid);
    let mut tcp = Vec::new();
    let mut udp = 0;
    for table in ["tcp", "tcp6", "udp", "udp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some(inode) = fields.get(9).and_then(|text| text.parse::<u64>().ok()) else {
                continue;
            };
            if !inodes.contains(&inode) {
                continue;
            }
            if table.starts_with("udp") {
                udp += 1;
                continue;
            }
            if let (Some(local), Some(remote)) =
                (parse_proc_address(fields[1]), parse_proc_address(fields[2]))
            {
                tcp.push(Socket {
                    local,
                    remote,
                    listening: fields[3] == "0A",
                });
            }
        }
    }
    (tcp, udp)
}

/// Every connection of the node's process goes to its tor (SOCKS or control port) or comes
/// from tor into its own loopback listener; it listens on loopback only; no UDP at all.
fn assert_only_tor_connections(node: &BinaryNode, tor: &solidarity_tests::tor::TorClient) {
    let pid = node.pid().expect("running");
    let (sockets, udp) = sockets_of(pid);
    assert_eq!(udp, 0, "the node holds a UDP socket (a name lookup?)");
    let listening: HashSet<u16> = sockets
        .iter()
        .filter(|socket| socket.listening)
        .map(|socket| socket.local.port())
        .collect();
    for socket in &sockets {
        assert!(
            socket.local.ip().is_loopback(),
            "a socket on a non-loopback address: {socket:?}"
        );
        if socket.listening {
            continue;
        }
        let to_tor = socket.remote == tor.socks || socket.remote == tor.control;
        let into_own_listener =
            socket.remote.ip().is_loopback() && listening.contains(&socket.local.port());
        assert!(
            to_tor || into_own_listener,
            "a connection to something but tor: {socket:?} (tor: {tor:?})"
        );
    }
}

fn tor_state(dir: &Path) -> serde_json::Value {
    json(dir, &["status", "--json"])["tor"].clone()
}

#[test]
fn three_onion_only_nodes_federate_over_a_private_tor_network() {
    let mut network = TorNetwork::start(3).expect("a private tor network on 127.0.0.1");
    eprintln!(
        "private tor network bootstrapped in {:.1} s",
        network.seconds
    );
    let root = tempfile::tempdir().expect("tempdir");
    let names = ["alpha", "bravo", "charlie"];
    let dirs: Vec<PathBuf> = names.iter().map(|name| root.path().join(name)).collect();

    // Each admin: `init --network tor-only`, then the [tor] table of their tor.
    for (index, dir) in dirs.iter().enumerate() {
        let printed = cli_ok(
            dir,
            &[
                "init",
                "--network",
                "tor-only",
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
                "--status-addr",
                "127.0.0.1:0",
                "--federation",
                "tor-test",
            ],
        );
        assert!(printed.contains("onion address: /onion3/"), "{printed}");
        let config_path = dir.join("config.toml");
        let mut text = std::fs::read_to_string(&config_path)
            .expect("config")
            .replace("sync_interval_secs = 60", "sync_interval_secs = 5");
        // charlie reaches its tor's SOCKS port over a Unix socket, the others over TCP.
        text.push_str(&network.tor_table(index, index == 2));
        if index == 0 {
            text.push_str("status_onion = true\n");
        }
        std::fs::write(&config_path, text).expect("config");
    }
    // Cards: the onion address alone, printed before the daemon ever ran.
    let cards: Vec<String> = dirs.iter().map(|dir| cli_ok(dir, &["id"])).collect();
    for card in &cards {
        assert!(card.contains("/onion3/"), "{card}");
        assert_eq!(clearnet_address_in(card), None, "{card}");
    }
    // Made in advance for the drill, kept off the server.
    let certificate = root.path().join("charlie-revocation.cert");
    cli_ok(
        &dirs[2],
        &[
            "key",
            "revocation-cert",
            "--out",
            certificate.to_str().expect("utf-8"),
        ],
    );
    for (i, dir) in dirs.iter().enumerate() {
        for (j, card) in cards.iter().enumerate() {
            if i != j {
                cli_ok(dir, &["member", "add", card, "--name", names[j]]);
            }
        }
    }

    let started = Instant::now();
    // A mixed federation: delta is a clearnet node that reaches the onion-only alpha
    // through tor's SOCKS port (its `[tor]` table, no onion service of its own).
    let delta = root.path().join("delta");
    solidarity_tests::cli_init(&delta, 0, "tor-test");
    let delta_config = delta.join("config.toml");
    let mut text = std::fs::read_to_string(&delta_config).expect("config");
    text.push_str(&format!(
        "[tor]\nsocks = \"{}\"\n",
        network.clients[2].socks
    ));
    std::fs::write(&delta_config, text).expect("config");
    cli_ok(&delta, &["member", "add", &cards[0], "--name", "alpha"]);
    let delta_card = cli_ok(&delta, &["id"]);
    cli_ok(&dirs[0], &["member", "add", &delta_card, "--name", "delta"]);

    // A honeypot member on alpha's list, at a loopback TCP address and a DNS name: an
    // onion-only node tries both through tor only, so whatever reaches the honeypot comes
    // from tor's exit, never from a node's own process.
    let honeypot = Honeypot::start();
    let honeypot_key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
    let honeypot_card = format!(
        "{}@/ip4/127.0.0.1/tcp/{},/dns4/honeypot.invalid/tcp/7447",
        hex::encode(honeypot_key.as_bytes()),
        honeypot.port
    );
    cli_ok(
        &dirs[0],
        &["member", "add", &honeypot_card, "--name", "honeypot"],
    );

    // echo: a clearnet member that knows alpha's key only, so alpha must dial it, over
    // tor's exit: an onion-only node reaches clearnet members.
    let echo = root.path().join("echo");
    solidarity_tests::cli_init(&echo, solidarity_tests::free_port(), "tor-test");
    let echo_card = cli_ok(&echo, &["id"]);
    assert!(echo_card.contains("/ip4/127.0.0.1/tcp/"), "{echo_card}");
    let alpha_key_only = cards[0].split('@').next().expect("key").to_owned();
    cli_ok(
        &echo,
        &["member", "add", &alpha_key_only, "--name", "alpha"],
    );
    cli_ok(&dirs[0], &["member", "add", &echo_card, "--name", "echo"]);

    // bravo logs our crates at trace: not even there does an address appear.
    let start = |index: usize| {
        BinaryNode::start_with(&dirs[index], |command| {
            if index == 1 {
                command.env("RUST_LOG", "info,solidarity=trace,solidarity_net=trace");
            }
        })
    };
    let mut nodes: Vec<BinaryNode> = (0..dirs.len()).map(start).collect();
    let delta_node = BinaryNode::start(&delta);
    let _echo_node = BinaryNode::start(&echo);
    for (dir, members) in dirs.iter().zip([4, 2, 2]) {
        wait_long("every member connected over tor", || {
            connected_members(dir) == members
        });
        assert_eq!(tor_state(dir)["ready"], true, "{}", tor_state(dir));
    }
    eprintln!("start → all connected over tor: {:?}", started.elapsed());

    // An alert raised on alpha reaches bravo and charlie through the onion services.
    let raised = Instant::now();
    let id = raise(&dirs[0], "raised over tor");
    let to_bravo = wait_long("the alert on bravo", || has_alert(&dirs[1], &id));
    wait_long("the alert on charlie", || has_alert(&dirs[2], &id));
    wait_long("the alert on the clearnet member", || {
        has_alert(&delta, &id)
    });
    wait_long("the alert on the member reached through the exit", || {
        has_alert(&echo, &id)
    });
    eprintln!(
        "raise → visible over tor: bravo {to_bravo:?}, both {:?}",
        raised.elapsed()
    );

    for (node, client) in nodes.iter().zip(&network.clients) {
        assert_only_tor_connections(node, client);
    }
    honeypot.assert_only_tor_dialled();
    // delta reached alpha through tor: no direct connection to alpha's listener.
    let (delta_sockets, _) = sockets_of(delta_node.pid().expect("running"));
    assert!(
        delta_sockets
            .iter()
            .filter(|socket| !socket.listening)
            .all(|socket| socket.remote == network.clients[2].socks
                || delta_sockets
                    .iter()
                    .any(|own| own.listening && own.local.port() == socket.local.port())),
        "delta dialled alpha around tor: {delta_sockets:?}"
    );

    // The status page, published as an onion service, through tor.
    let status_onion = tor_state(&dirs[0])["status_onion"]
        .as_str()
        .expect("alpha's status page onion")
        .to_owned();
    let mut page = String::new();
    wait_long("alpha's status page through tor", || {
        let output = std::process::Command::new("curl")
            .args(["--silent", "--max-time", "30", "--socks5-hostname"])
            .arg(network.clients[1].socks.to_string())
            .arg(&status_onion)
            .output()
            .expect("curl");
        page = String::from_utf8_lossy(&output.stdout).into_owned();
        page.contains("raised over tor")
    });
    assert_eq!(
        clearnet_address_in(&page),
        None,
        "the page names an address"
    );

    // charlie stops; alpha raises; charlie comes back and catches up by sync over tor.
    assert!(nodes[2].terminate(), "clean exit");
    let while_away = raise(&dirs[0], "raised while charlie was away");
    wait_long("the second alert on bravo", || {
        has_alert(&dirs[1], &while_away)
    });
    nodes[2] = start(2);
    let caught_up = wait_long("charlie catches up over tor", || {
        has_alert(&dirs[2], &while_away)
    });
    eprintln!("charlie restarted → caught up over tor: {caught_up:?}");

    // bravo's tor goes away: bravo connects to nobody and says why; back, it connects.
    network.stop_client(1).expect("stop bravo's tor");
    wait_long("bravo reports tor unreachable", || {
        tor_state(&dirs[1])["ready"] == false
    });
    let state = tor_state(&dirs[1]);
    assert!(
        state["state"]
            .as_str()
            .unwrap_or("")
            .contains("unreachable"),
        "{state}"
    );
    wait_long("bravo disconnected from everyone", || {
        connected_members(&dirs[1]) == 0
    });
    std::thread::sleep(Duration::from_secs(3));
    let (sockets, udp) = sockets_of(nodes[1].pid().expect("running"));
    assert_eq!(udp, 0);
    assert!(
        sockets.iter().all(|socket| socket.listening
            || socket.remote == network.clients[1].socks
            || socket.remote == network.clients[1].control),
        "without tor, bravo holds a connection: {sockets:?}"
    );
    let status_text = cli_ok(&dirs[1], &["status"]);
    assert!(status_text.contains("tor is unreachable"), "{status_text}");
    network.start_client(1).expect("start bravo's tor again");
    let back = wait_long("bravo connected again once tor is back", || {
        connected_members(&dirs[1]) == 2
    });
    eprintln!("tor back → bravo connected again: {back:?}");

    // The revocation drill: charlie's key is seized; alpha publishes its revocation.
    cli_ok(
        &dirs[0],
        &[
            "key",
            "revoke",
            "--cert",
            certificate.to_str().expect("utf-8"),
        ],
    );
    for dir in &dirs[..2] {
        wait_long("charlie revoked on alpha and bravo", || {
            cli_ok(dir, &["peers"]).contains("REVOKED")
        });
    }
    let (signed, stdout, _) = cli_raise(&dirs[2], "raid", "high", "after revocation");
    if signed {
        std::thread::sleep(Duration::from_secs(5));
        assert!(
            !has_alert(&dirs[1], stdout.trim()),
            "bravo took a revoked key's alert"
        );
    }

    let through_the_exit = honeypot.assert_only_tor_dialled();
    eprintln!("the honeypot was dialled {through_the_exit} times, by tor's exit only");
    // Nothing in what the nodes said names a clearnet address.
    for (node, dir) in nodes.iter().zip(&dirs) {
        let log = node.log_text();
        assert!(
            !log.contains("onion3") && !log.contains(".onion"),
            "an onion address in a log"
        );
        for line in log.lines() {
            if let Some(found) = clearnet_address_in(line)
                && !found.starts_with("127.0.0.1")
            {
                panic!("a log line names an address ({found}): {line}");
            }
        }
        let peers = cli_ok(dir, &["peers", "--json"]);
        assert_eq!(clearnet_address_in(&peers), None, "{peers}");
    }
}
