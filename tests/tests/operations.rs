//! Operating a node on a server: what the card carries, identify, listen failures, the
//! system install found without `--data`, systemd readiness and reload, redial backoff
//! and the start-up log. Real binaries where it is about the CLI or the daemon.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use libp2p::futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, identify, noise, tcp, yamux};
use solidarity::members::MembersFile;
use solidarity_tests::{
    BinaryNode, DEADLINE, RawPeer, TestNode, cli, cli_init, cli_ok, free_port, http_get,
    init_data_dir_with, wait_for,
};

/// A member card's key part is 64 hex characters.
fn is_bare_key(card: &str) -> bool {
    card.len() == 64 && card.chars().all(|c| c.is_ascii_hexdigit())
}

/// Sets `key = value` in DIR/config.toml (the line `init` wrote).
fn set_config(dir: &Path, key: &str, value: &str) {
    let path = dir.join("config.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    let text: Vec<String> = text
        .lines()
        .map(|line| {
            if line.starts_with(&format!("{key} =")) {
                format!("{key} = {value}")
            } else {
                line.to_owned()
            }
        })
        .collect();
    std::fs::write(&path, text.join("\n") + "\n").expect("config");
}

/// Waits up to [`DEADLINE`] for `child` to exit; kills it (and fails) if it does not.
fn exit_within_deadline(mut child: Child) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "the daemon kept running: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start_daemon(dir: &Path) -> Child {
    Command::new(solidarity_tests::binary())
        .arg("--data")
        .arg(dir)
        .arg("node")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start daemon")
}

#[test]
fn id_prints_only_addresses_others_can_dial() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("node");
    let port = free_port();
    cli_ok(
        &dir,
        &[
            "init",
            "--listen",
            &format!("/ip4/0.0.0.0/tcp/{port}"),
            "--status-addr",
            "127.0.0.1:0",
        ],
    );

    // Without a daemon: 0.0.0.0 is not an address; the key alone, and a warning.
    let (ok, stdout, stderr) = cli(&dir, &["id"]);
    assert!(ok, "{stderr}");
    assert!(is_bare_key(stdout.trim()), "{stdout}");
    assert!(stderr.contains("announce"), "{stderr}");
    assert!(stderr.contains(&dir.join("config.toml").display().to_string()));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    // With the daemon bound to every interface: no unspecified, loopback or private
    // address on the card (only a public one, if this machine has one).
    let _node = BinaryNode::start(&dir);
    let (ok, stdout, stderr) = cli(&dir, &["id"]);
    assert!(ok, "{stderr}");
    let card = solidarity::identity::Card::parse(&stdout).expect("card");
    for address in &card.addresses {
        assert_eq!(
            solidarity::card_addresses::scope(address),
            solidarity::card_addresses::Scope::Public,
            "the card lists a local address: {stdout}"
        );
    }
    assert!(!stdout.contains("0.0.0.0") && !stdout.contains("127.0.0.1"));
    if card.addresses.is_empty() {
        assert!(stderr.contains("announce"), "{stderr}");
    }
    println!("card with the daemon bound to 0.0.0.0: {}", stdout.trim());
}

#[test]
fn init_announce_puts_the_public_name_on_the_card_and_bad_input_creates_nothing() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("node");
    for bad in ["node.example.org:7447", "/ip4/0.0.0.0/tcp/7447"] {
        let (ok, _, stderr) = cli(&dir, &["init", "--announce", bad]);
        assert!(!ok);
        assert!(stderr.contains("--announce"), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(!dir.exists(), "a refused init created the data dir");
    }

    let out = cli_ok(
        &dir,
        &[
            "init",
            "--announce",
            "/dns4/node.example.org/tcp/7447",
            "--status-addr",
            "127.0.0.1:0",
        ],
    );
    assert!(
        out.contains("user node") || out.contains("node at"),
        "{out}"
    );
    let (ok, stdout, stderr) = cli(&dir, &["id"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.trim().ends_with("@/dns4/node.example.org/tcp/7447"),
        "{stdout}"
    );
    assert!(stderr.is_empty(), "{stderr}");
    // Hints repeat the --data given.
    let list = cli_ok(&dir, &["member", "list"]);
    assert!(
        list.contains(&format!("solidarity --data {} member add", dir.display())),
        "{list}"
    );
}

#[test]
fn member_add_warns_about_addresses_others_cannot_dial_and_still_adds() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("node");
    cli_init(&dir, 0, "ops");
    let other = root.path().join("other");
    cli_init(&other, 0, "ops");
    let key = cli_ok(&other, &["id"])
        .split('@')
        .next()
        .expect("key")
        .to_owned();
    for (index, address) in [
        "/ip4/0.0.0.0/tcp/7447",
        "/ip4/127.0.0.1/tcp/7447",
        "/ip4/192.168.1.20/tcp/7447",
        "/ip4/100.64.3.4/tcp/7447",
        "/ip6/fd12::1/tcp/7447",
        "/ip6/fe80::1/tcp/7447",
    ]
    .iter()
    .enumerate()
    {
        let (ok, _, stderr) = cli(
            &dir,
            &[
                "member",
                "add",
                &format!("{key}@{address}"),
                "--name",
                &format!("m{index}"),
            ],
        );
        assert!(ok, "{stderr}");
        assert!(
            stderr.contains("warning") && stderr.contains(address),
            "no warning for {address}: {stderr}"
        );
    }
    let (ok, _, stderr) = cli(
        &dir,
        &[
            "member",
            "add",
            &format!("{key}@/dns4/node.example.org/tcp/7447,/ip4/203.0.113.7/tcp/7447"),
            "--name",
            "public",
        ],
    );
    assert!(ok, "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    assert!(cli_ok(&dir, &["member", "list"]).contains("public"));
}

/// A bare libp2p endpoint that reads what a node's identify tells it.
async fn identify_listen_addrs(
    node_port: u16,
    keypair: libp2p::identity::Keypair,
) -> Vec<Multiaddr> {
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("tcp")
        .with_behaviour(|key| {
            identify::Behaviour::new(identify::Config::new(
                "/solidarity/1".to_owned(),
                key.public(),
            ))
        })
        .expect("behaviour")
        .build();
    let address: Multiaddr = format!("/ip4/127.0.0.1/tcp/{node_port}")
        .parse()
        .expect("addr");
    swarm.dial(address).expect("dial");
    let received = tokio::time::timeout(DEADLINE, async {
        loop {
            if let SwarmEvent::Behaviour(identify::Event::Received { info, .. }) =
                swarm.select_next_some().await
            {
                return info.listen_addrs;
            }
        }
    })
    .await;
    received.expect("no identify info from the node")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identify_tells_members_only_the_announced_addresses() {
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    init_data_dir_with(
        dir.path(),
        &[
            ("listen", &format!("[\"/ip4/0.0.0.0/tcp/{port}\"]")),
            (
                "announce",
                &format!("[\"/dns4/node.example.org/tcp/{port}\"]"),
            ),
        ],
    );
    let node = TestNode::start(dir).await;
    let keypair = libp2p::identity::Keypair::generate_ed25519();
    let member = hex::encode(
        keypair
            .public()
            .try_into_ed25519()
            .expect("ed25519")
            .to_bytes(),
    );
    node.add_members(&[("observer".into(), member)]).await;
    let told = identify_listen_addrs(port, keypair).await;
    let announced: Multiaddr = format!("/dns4/node.example.org/tcp/{port}")
        .parse()
        .expect("addr");
    assert_eq!(told, vec![announced], "identify leaked addresses");
    node.stop().await;
}

#[test]
fn a_taken_or_unbindable_address_stops_the_daemon_with_one_clear_line() {
    let root = tempfile::tempdir().expect("tempdir");
    let first = root.path().join("first");
    let port = free_port();
    cli_init(&first, port, "ops");
    let _running = BinaryNode::start(&first);

    // A second daemon on the same p2p port (libp2p alone would share it by SO_REUSEPORT).
    let second = root.path().join("second");
    cli_init(&second, port, "ops");
    let output = exit_within_deadline(start_daemon(&second));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    let line = stderr.lines().last().expect("an error line");
    assert!(
        line.contains("`listen`")
            && line.contains(&format!("port {port}"))
            && line.contains("already in use"),
        "{stderr}"
    );
    assert!(!cli(&second, &["status"]).0, "the second daemon answers");

    // The status page port taken.
    let third = root.path().join("third");
    cli_init(&third, 0, "ops");
    let status_port = free_port();
    let _holder = std::net::TcpListener::bind(("127.0.0.1", status_port)).expect("bind");
    set_config(
        &third,
        "status_addr",
        &format!("\"127.0.0.1:{status_port}\""),
    );
    let output = exit_within_deadline(start_daemon(&third));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    let line = stderr.lines().last().expect("an error line");
    assert!(
        line.contains("`status_addr`") && line.contains(&format!("port {status_port}")),
        "{stderr}"
    );

    // An address this host does not have (TEST-NET-1).
    let fourth = root.path().join("fourth");
    cli_init(&fourth, 0, "ops");
    set_config(&fourth, "listen", "[\"/ip4/192.0.2.1/tcp/7447\"]");
    let output = exit_within_deadline(start_daemon(&fourth));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    let line = stderr.lines().last().expect("an error line");
    assert!(
        line.contains("`listen`") && line.contains("192.0.2.1"),
        "{stderr}"
    );
}

/// Reads datagrams from a NOTIFY_SOCKET until one contains `state`.
fn wait_for_notify(socket: &UnixDatagram, state: &str) -> String {
    socket.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut buffer = [0u8; 1024];
    loop {
        let read = socket.recv(&mut buffer).expect("no notification in time");
        let message = String::from_utf8_lossy(&buffer[..read]).into_owned();
        if message.lines().any(|line| line == state) {
            return message;
        }
    }
}

#[test]
fn systemd_hears_ready_once_the_page_answers_and_sighup_reloads_members_and_config() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("node");
    cli_init(&dir, 0, "ops");
    let status_port = free_port();
    set_config(&dir, "status_addr", &format!("\"127.0.0.1:{status_port}\""));
    let notify_path = root.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).expect("bind notify socket");

    let mut node = BinaryNode::start_with(&dir, |command| {
        command.env("NOTIFY_SOCKET", &notify_path);
    });
    let ready = wait_for_notify(&notify, "READY=1");
    assert!(ready.contains("STATUS="), "{ready}");
    // READY means the page and the control socket answer now, without retrying.
    let (head, body) = http_get(&format!("http://127.0.0.1:{status_port}/"));
    assert!(head.contains("200"), "{head}");
    assert!(!body.is_empty());
    assert!(cli(&dir, &["status"]).0);

    // The start-up log names the status page and the port, and the next step.
    let log = node.log_text();
    assert!(log.contains(&format!("127.0.0.1:{status_port}")), "{log}");
    assert!(log.contains("p2p_ports"), "{log}");
    assert!(log.contains("no members yet"), "{log}");
    assert!(log.contains(&format!("--data {}", dir.display())), "{log}");

    // Edit members.toml and config.toml by hand, then SIGHUP.
    let other = root.path().join("other");
    cli_init(&other, 0, "ops");
    let card = cli_ok(&other, &["id"]);
    let mut members = MembersFile::load(&dir).expect("members");
    members
        .add(
            &solidarity::identity::Card::parse(&card).expect("card"),
            "newfriend",
        )
        .expect("add");
    members.save(&dir).expect("save");
    set_config(&dir, "announce", "[\"/dns4/node.example.org/tcp/7447\"]");
    set_config(&dir, "heartbeat_ms", "700");
    set_config(&dir, "log", "\"debug\"");
    assert!(!node.log_text().contains(" DEBUG "));
    assert!(!cli_ok(&dir, &["peers"]).contains("newfriend"));
    let pid = node.pid().expect("pid").to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .expect("kill")
            .success()
    );
    wait_for_notify(&notify, "RELOADING=1");
    wait_for_notify(&notify, "READY=1");
    assert!(cli_ok(&dir, &["peers"]).contains("newfriend"));
    assert!(cli_ok(&dir, &["id"]).ends_with("@/dns4/node.example.org/tcp/7447"));
    let log = node.log_text();
    assert!(log.contains("config reloaded"), "{log}");
    assert!(
        log.contains("heartbeat_ms"),
        "the restart key is not named: {log}"
    );

    // A broken config is refused; the daemon runs on.
    set_config(&dir, "confirm_threshold", "0");
    Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill");
    wait_for_notify(&notify, "READY=1");
    assert!(cli(&dir, &["status"]).0);
    wait_for("the refusal is logged", || {
        node.log_text().contains("reload refused")
    });

    assert!(node.terminate(), "{}", node.log_text());
    wait_for_notify(&notify, "STOPPING=1");
    // The new log filter took: debug lines (the shutdown's, at least) are there.
    assert!(node.log_text().contains(" DEBUG "), "{}", node.log_text());
}

/// Accepts TCP connections on a port and forwards them to `target`, counting them.
async fn counting_proxy(target: u16) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut outbound) =
                    tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (port, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_has_not_added_us_is_logged_once_and_redialled_less_and_less() {
    // A member that accepts the handshake, then closes: it does not allow this node.
    let peer = RawPeer::start(Vec::new()).await;
    solidarity_tests::eventually("the raw peer listens", || async {
        !peer
            .net
            .listen_addresses()
            .await
            .expect("addresses")
            .is_empty()
    })
    .await;
    let peer_port = solidarity::card_addresses::tcp_ports(
        &peer.net.listen_addresses().await.expect("addresses"),
    )[0];
    let (proxy_port, dials) = counting_proxy(peer_port).await;

    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("node");
    cli_init(&dir, 0, "ops");
    let node = BinaryNode::start(&dir);
    let card = format!("{}@/ip4/127.0.0.1/tcp/{proxy_port}", peer.card());
    cli_ok(&dir, &["member", "add", &card, "--name", "notyet"]);
    let window = Duration::from_secs(10);
    tokio::time::sleep(window).await;
    let count = dials.load(std::sync::atomic::Ordering::SeqCst);
    println!("dials to a member that drops us, over {window:?}: {count}");
    assert!(count >= 2, "the node did not redial: {count}");
    assert!(count <= 5, "redials do not back off: {count} in {window:?}");
    let log = node.log_text();
    let told = log.matches("it may not have added this node yet").count();
    assert_eq!(told, 1, "{log}");
    assert!(log.contains("notyet"), "{log}");
}

/// Runs the binary without `--data`, with the system paths below `system_root` and
/// `home` as the user's home.
fn bare_cli(
    home: &Path,
    system_root: &Path,
    args: &[&str],
    as_service: bool,
) -> (bool, String, String) {
    let mut command = Command::new(solidarity_tests::binary());
    command
        .args(args)
        .env("HOME", home)
        .env("SOLIDARITY_SYSTEM_ROOT", system_root)
        .env_remove("XDG_DATA_HOME")
        .env_remove("SOLIDARITY_DATA")
        .env_remove("STATE_DIRECTORY")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null());
    if as_service {
        command.env("STATE_DIRECTORY", system_root.join("var/lib/solidarity"));
    }
    let output = command.output().expect("run solidarity");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_system_install_is_found_without_data_and_a_user_node_wins_over_it() {
    let root = tempfile::tempdir().expect("tempdir");
    let home = root.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let system = root.path().join("system");
    let state = system.join("var/lib/solidarity");
    let etc = system.join("etc/solidarity/config.toml");

    // Run as root or by systemd with nothing there: init creates the system node.
    let (ok, stdout, stderr) = bare_cli(
        &home,
        &system,
        &[
            "init",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--announce",
            "/ip4/127.0.0.1/tcp/0",
            "--status-addr",
            "127.0.0.1:0",
        ],
        true,
    );
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(&format!("system node at {}", state.display())),
        "{stdout}"
    );
    assert!(stdout.contains(&etc.display().to_string()), "{stdout}");
    assert!(state.join("node.key").exists() && etc.exists());
    assert!(!state.join("config.toml").exists());

    // Every command finds it without --data: the daemon, the CLI.
    let system_key = hex::encode(
        solidarity_proto::envelope::author_key(&solidarity_tests::node_key(&state)).as_bytes(),
    );
    let mut daemon = Command::new(solidarity_tests::binary())
        .arg("node")
        .env("HOME", &home)
        .env("SOLIDARITY_SYSTEM_ROOT", &system)
        .env_remove("XDG_DATA_HOME")
        .env_remove("SOLIDARITY_DATA")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("daemon");
    wait_for("the system daemon answers", || {
        bare_cli(&home, &system, &["status"], false).0
    });
    let (ok, stdout, stderr) = bare_cli(&home, &system, &["id"], false);
    assert!(ok, "{stderr}");
    assert!(
        stdout.starts_with(&system_key) && stdout.contains('@'),
        "{stdout}"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    let _ = daemon.wait();

    // Hints repeat --data; without it they do not invent one.
    let (ok, _, stderr) = bare_cli(&home, &system, &["status"], false);
    assert!(!ok);
    assert!(
        stderr.contains("`systemctl start solidarity`") && stderr.contains("`solidarity node`"),
        "{stderr}"
    );
    let elsewhere = root.path().join("else where");
    let elsewhere_text = elsewhere.display().to_string();
    let (ok, _, stderr) = bare_cli(&home, &system, &["--data", &elsewhere_text, "id"], false);
    assert!(!ok);
    assert!(
        stderr.contains(&format!("solidarity --data '{elsewhere_text}' init")),
        "{stderr}"
    );
    cli_init(&elsewhere, 0, "ops");
    let (ok, _, stderr) = bare_cli(
        &home,
        &system,
        &["--data", &elsewhere_text, "status"],
        false,
    );
    assert!(!ok);
    assert!(
        stderr.contains(&format!("solidarity --data '{elsewhere_text}' node")),
        "{stderr}"
    );

    // A user's own node wins over the system node.
    let user_dir = home.join(".local/share/solidarity");
    cli_init(&user_dir, 0, "ops");
    let user_key = hex::encode(
        solidarity_proto::envelope::author_key(&solidarity_tests::node_key(&user_dir)).as_bytes(),
    );
    let (ok, stdout, stderr) = bare_cli(&home, &system, &["id"], true);
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with(&user_key), "{stdout}");
}

#[test]
fn an_older_system_node_with_its_config_in_var_lib_keeps_working() {
    let root = tempfile::tempdir().expect("tempdir");
    let home = root.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let system = root.path().join("system");
    let state: PathBuf = system.join("var/lib/solidarity");
    // As the old unit did: everything in /var/lib/solidarity.
    cli_ok(
        &state,
        &["init", "--announce", "/dns4/old.example.org/tcp/7447"],
    );
    let (ok, stdout, stderr) = bare_cli(&home, &system, &["id"], false);
    assert!(ok, "{stderr}");
    assert!(
        stdout.trim().ends_with("@/dns4/old.example.org/tcp/7447"),
        "{stdout}"
    );
}

/// `--version` names the git commit the binary was built from (issue 15, release hygiene),
/// so an admin's bug report says exactly what runs.
#[test]
fn the_version_names_the_commit_it_was_built_from() {
    let output = Command::new(solidarity_tests::binary())
        .arg("--version")
        .output()
        .expect("run --version");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    assert_eq!(
        text,
        format!("solidarity {} ({head})", env!("CARGO_PKG_VERSION"))
    );
}

/// Man pages and shell completions come from the clap definitions (issue 15): one page per
/// visible command, none for hidden ones; each shell's script is produced, and bash's and
/// zsh's parse in their shell.
#[test]
fn man_pages_and_completions_are_generated_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("man");
    let (ok, _, stderr) = cli(dir.path(), &["manpages", out.to_str().expect("utf-8")]);
    assert!(ok, "{stderr}");
    let raise = std::fs::read_to_string(out.join("solidarity-alert-raise.1")).expect("a page");
    assert!(raise.contains("\\-\\-kind"), "the page lists the options");
    assert!(out.join("solidarity.1").exists());
    assert!(
        !out.join("solidarity-manpages.1").exists(),
        "hidden commands have no page"
    );
    for shell in ["bash", "zsh", "fish"] {
        let script = cli_ok(dir.path(), &["completions", shell]);
        assert!(script.contains("solidarity"), "{shell}: {script}");
        let checker = match shell {
            "bash" => Some("bash"),
            "zsh" => Some("zsh"),
            _ => None,
        };
        if let Some(checker) = checker.filter(|name| which(name)) {
            let path = dir.path().join(format!("completion.{shell}"));
            std::fs::write(&path, &script).expect("write");
            let status = Command::new(checker)
                .arg("-n")
                .arg(&path)
                .status()
                .expect("run the shell");
            assert!(
                status.success(),
                "{shell} does not parse its completion script"
            );
        }
    }
}

fn which(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[test]
fn a_second_daemon_on_a_data_dir_is_refused_and_leaves_the_first_alone() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("node");
    cli_init(&dir, 0, "ops");
    let mut first = BinaryNode::start(&dir);
    let second = Command::new(solidarity_tests::binary())
        .arg("--data")
        .arg(&dir)
        .arg("node")
        .stdin(Stdio::null())
        .output()
        .expect("run a second daemon");
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("another solidarity daemon is already running with this data dir"),
        "{stderr}"
    );
    assert!(cli(&dir, &["status"]).0, "the first still answers");
    assert!(first.terminate());
    // Its lock went with it: the next start is not refused.
    let _again = BinaryNode::start(&dir);
}
