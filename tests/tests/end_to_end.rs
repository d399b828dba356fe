//! End-to-end: the real `solidarity` binary, several processes on loopback, driven exactly
//! as the README's quickstart tells an admin to.

use std::path::Path;
use std::time::{Duration, Instant};

use solidarity_tests::{BinaryNode, cli, cli_init, cli_ok, free_port, http_get, wait_for};

fn init(dir: &Path) -> u16 {
    let port = free_port();
    cli_init(dir, port, "e2e");
    port
}

fn alert_list(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&cli_ok(dir, &["alert", "list", "--json"])).expect("json")
}

fn alert_state(dir: &Path, id: &str) -> Option<String> {
    alert_list(dir)
        .as_array()
        .expect("array")
        .iter()
        .find(|alert| alert["id"] == id)
        .map(|alert| alert["status"].as_str().expect("status").to_owned())
}

fn status_url(dir: &Path) -> String {
    let status: serde_json::Value =
        serde_json::from_str(&cli_ok(dir, &["status", "--json"])).expect("json");
    status["status_url"].as_str().expect("url").to_owned()
}

fn has_ip_address(text: &str) -> bool {
    text.contains("127.0.0.1") || text.contains("/ip4/") || text.contains("/ip6/")
}

#[test]
fn the_three_server_story_works_as_the_readme_tells_it() {
    let root = tempfile::tempdir().expect("tempdir");
    let dirs: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|name| root.path().join(name))
        .collect();

    // 1. init creates a 0600 key and a commented config; id prints a one-line card.
    for dir in &dirs {
        init(dir);
        let mode = std::fs::metadata(dir.join("node.key"))
            .expect("key")
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        assert!(
            std::fs::read_to_string(dir.join("config.toml"))
                .expect("config")
                .contains("# ")
        );
    }
    let cards: Vec<String> = dirs.iter().map(|dir| cli_ok(dir, &["id"])).collect();
    for card in &cards {
        assert_eq!(card.lines().count(), 1);
        assert!(card.contains('@'), "the card carries the address: {card}");
    }

    // 2. each admin adds the others, then starts the daemon.
    let names = ["riseup", "autistici", "boum"];
    for (i, dir) in dirs.iter().enumerate() {
        for (j, card) in cards.iter().enumerate() {
            if i != j {
                cli_ok(dir, &["member", "add", card, "--name", names[j]]);
            }
        }
    }
    let mut nodes: Vec<BinaryNode> = dirs.iter().map(|dir| BinaryNode::start(dir)).collect();
    for dir in &dirs {
        wait_for("all members connected", || {
            let peers: serde_json::Value =
                serde_json::from_str(&cli_ok(dir, &["peers", "--json"])).expect("json");
            peers
                .as_array()
                .expect("array")
                .iter()
                .all(|peer| peer["connected"] == true)
        });
    }

    // 8. status and peers: the node's view, never an address in peers.
    let peers = cli_ok(&dirs[0], &["peers"]);
    assert!(
        peers.contains("autistici") && peers.contains("boum"),
        "{peers}"
    );
    assert!(!has_ip_address(&peers), "peers shows an address: {peers}");
    let status = cli_ok(&dirs[0], &["status"]);
    assert!(status.contains("2 connected"), "{status}");
    // 9. port 0 for the status page: status shows the chosen port.
    assert!(!status_url(&dirs[0]).ends_with(":0/"));

    // 5. C is down while A raises the alert.
    assert!(nodes[2].terminate(), "clean exit on SIGTERM");

    // 3. A raises; the CLI prints the id after the durable write.
    let started = Instant::now();
    let id = cli_ok(
        &dirs[0],
        &[
            "alert",
            "raise",
            "--kind",
            "seizure",
            "--subject",
            "a.example",
            "--severity",
            "critical",
            "--summary",
            "Two servers taken from our rack at 06:00 <script>alert(1)</script>",
            "--jurisdiction",
            "FR",
        ],
    );
    assert_eq!(id.len(), 64, "the CLI prints the id: {id}");

    // 4. B has it within about a second, in the CLI and on the status page.
    let visible = wait_for("the alert on B", || alert_state(&dirs[1], &id).is_some());
    let raise_to_visible = started.elapsed();
    eprintln!("raise → visible on B: {raise_to_visible:?} (polling alone: {visible:?})");
    let url = status_url(&dirs[1]);
    let (head, page) = http_get(&url);
    assert!(page.contains("Two servers taken from our rack"), "{page}");
    assert!(page.contains("&lt;script&gt;"), "the summary is escaped");
    assert!(!page.contains("<script"), "no script element on the page");
    assert!(
        head.to_lowercase()
            .contains("content-security-policy: default-src 'none'")
    );
    assert!(
        head.to_lowercase()
            .contains("x-content-type-options: nosniff")
    );
    assert!(!has_ip_address(&page), "the status page shows an address");
    let (_, feed) = http_get(&format!("{url}alerts.atom"));
    assert!(feed.contains(&id) && feed.contains("&lt;script&gt;"));
    let (_, json) = http_get(&format!("{url}api/v1/alerts"));
    assert!(json.contains(&id));

    // 5. C restarts and catches up by sync, nobody re-sends.
    nodes[2] = BinaryNode::start(&dirs[2]);
    let caught_up = wait_for("C catches up", || alert_state(&dirs[2], &id).is_some());
    eprintln!("restart → caught up on C: {caught_up:?}");

    // 6. Updates change the state everywhere; only the author may update.
    let (ok, _, stderr) = cli(&dirs[1], &["alert", "update", &id, "--status", "retracted"]);
    assert!(!ok && stderr.contains("only the author"), "{stderr}");
    for status in ["confirmed", "resolved", "retracted"] {
        cli_ok(
            &dirs[0],
            &[
                "alert",
                "update",
                &id[..12],
                "--status",
                status,
                "--note",
                "seen",
            ],
        );
        for dir in &dirs {
            wait_for("the new state everywhere", || {
                alert_state(dir, &id).as_deref() == Some(status)
            });
        }
    }

    // 7. B offers a mirror; everyone sees it, filters work, B withdraws it.
    let offer = cli_ok(
        &dirs[1],
        &[
            "mirror",
            "offer",
            "--service",
            "web",
            "--service",
            "lists",
            "--storage",
            "50G",
            "--jurisdiction",
            "IS",
            "--valid-for",
            "90d",
            "--contact",
            "mirror@b.example",
        ],
    );
    for dir in &dirs {
        wait_for("the offer everywhere", || {
            cli_ok(dir, &["mirror", "list"]).contains(&offer[..8])
        });
    }
    assert!(cli_ok(&dirs[2], &["mirror", "list", "--service", "web"]).contains(&offer[..8]));
    assert!(!cli_ok(&dirs[2], &["mirror", "list", "--service", "mail"]).contains(&offer[..8]));
    assert!(
        !cli_ok(&dirs[2], &["mirror", "list", "--avoid-jurisdiction", "IS"]).contains(&offer[..8])
    );
    let (ok, _, stderr) = cli(&dirs[0], &["mirror", "withdraw", &offer]);
    assert!(!ok && stderr.contains("only the member"), "{stderr}");
    cli_ok(&dirs[1], &["mirror", "withdraw", &offer]);
    for dir in &dirs {
        wait_for("the withdrawal everywhere", || {
            !cli_ok(dir, &["mirror", "list"]).contains(&offer[..8])
        });
    }

    for node in &mut nodes {
        assert!(
            node.terminate(),
            "clean exit on SIGTERM: {}",
            node.log_text()
        );
    }
    for node in &nodes {
        // The start-up line names the node's own status page (issue 10); no other line
        // may hold an address.
        let log: String = node
            .log_text()
            .lines()
            .map(
                |line| match line.split_once("status_page=http://127.0.0.1:") {
                    Some((before, after)) if line.contains("node started") => {
                        format!(
                            "{before}{}\n",
                            after.split_once(' ').map_or("", |(_, rest)| rest)
                        )
                    }
                    _ => format!("{line}\n"),
                },
            )
            .collect();
        assert!(
            !has_ip_address(&log),
            "a log line holds an address:\n{}",
            node.log_text()
        );
    }
}

#[test]
fn an_acknowledged_alert_survives_kill_9() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("a");
    init(&dir);
    let mut node = BinaryNode::start(&dir);
    let id = cli_ok(
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
            "acknowledged then killed",
        ],
    );
    node.kill9();
    let _node = BinaryNode::start(&dir);
    assert!(
        alert_state(&dir, &id).is_some(),
        "the acknowledged alert is gone after kill -9"
    );
}

#[test]
fn commands_fail_clearly_when_the_daemon_is_down() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("a");
    init(&dir);
    for args in [
        &["alert", "list"][..],
        &["status"],
        &["peers"],
        &["mirror", "list"],
    ] {
        let (ok, stdout, stderr) = cli(&dir, args);
        assert!(!ok, "{args:?} succeeded without a daemon");
        assert!(stdout.is_empty());
        assert!(
            stderr.contains("daemon is not running"),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    }
    // Local commands work without the daemon.
    assert_eq!(cli_ok(&dir, &["id"]).lines().count(), 1);
}

#[test]
fn a_config_with_an_unknown_key_is_refused_with_its_name() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("a");
    init(&dir);
    let config = dir.join("config.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, format!("{text}\nlisten_port = 7447\n")).expect("config");
    let (ok, _, stderr) = cli(&dir, &["node"]);
    assert!(!ok);
    assert!(stderr.contains("listen_port"), "{stderr}");
}

#[test]
fn node_on_a_fresh_data_dir_creates_its_identity_and_config() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("fresh");
    // Zero config, but on loopback test ports so parallel tests do not collide.
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("config.toml"),
        "listen = [\"/ip4/127.0.0.1/tcp/0\"]\nstatus_addr = \"127.0.0.1:0\"\n",
    )
    .expect("config");
    let mut node = BinaryNode::start(&dir);
    assert!(dir.join("node.key").exists());
    assert!(node.terminate());
}

#[test]
fn devnet_starts_a_working_federation_and_cleans_up() {
    use std::io::{BufRead, BufReader};
    /// Stops the devnet (and so its nodes) even when an assertion fails midway.
    struct Devnet(std::process::Child);
    impl Drop for Devnet {
        fn drop(&mut self) {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &self.0.id().to_string()])
                .status();
            let _ = self.0.wait();
        }
    }
    let mut devnet = Devnet(
        std::process::Command::new(solidarity_tests::binary())
            .args(["devnet", "--nodes", "3"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start devnet"),
    );
    let stdout = devnet.0.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut data_dirs = Vec::new();
    let mut urls = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("line");
        if line.trim_start().starts_with("node") && line.contains("status page") {
            let words: Vec<&str> = line.split_whitespace().collect();
            urls.push(words[3].to_owned());
            data_dirs.push(std::path::PathBuf::from(words[5]));
        }
        if line.contains("Ctrl-C") {
            break;
        }
    }
    assert_eq!(data_dirs.len(), 3, "three nodes listed");
    let id = cli_ok(
        &data_dirs[0],
        &[
            "alert",
            "raise",
            "--kind",
            "outage",
            "--subject",
            "demo.example",
            "--severity",
            "low",
            "--summary",
            "devnet demo",
        ],
    );
    wait_for("the alert on node2", || {
        alert_state(&data_dirs[2], &id).is_some()
    });
    wait_for("the alert on node1's status page", || {
        http_get(&urls[1]).1.contains("devnet demo")
    });
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &devnet.0.id().to_string()])
        .status();
    assert!(devnet.0.wait().expect("wait").success());
    assert!(!data_dirs[0].exists(), "the devnet removes its temp dirs");
}

#[test]
fn revocation_certificate_and_canary_commands_work_from_the_cli() {
    let root = tempfile::tempdir().expect("tempdir");
    let dirs: Vec<_> = ["a", "b"]
        .iter()
        .map(|name| root.path().join(name))
        .collect();
    for dir in &dirs {
        init(dir);
    }
    let cards: Vec<String> = dirs.iter().map(|dir| cli_ok(dir, &["id"])).collect();
    cli_ok(&dirs[0], &["member", "add", &cards[1], "--name", "bravo"]);
    cli_ok(&dirs[1], &["member", "add", &cards[0], "--name", "alpha"]);
    // Made in advance, without a daemon, and kept off the server.
    let certificate = root.path().join("alpha-revocation.cert");
    cli_ok(
        &dirs[0],
        &[
            "key",
            "revocation-cert",
            "--out",
            certificate.to_str().expect("utf-8"),
        ],
    );
    let mode = std::fs::metadata(&certificate).expect("cert").permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );

    let _nodes: Vec<BinaryNode> = dirs.iter().map(|dir| BinaryNode::start(dir)).collect();
    wait_for("alpha and bravo connected", || {
        cli_ok(&dirs[0], &["peers"]).contains("yes")
    });

    cli_ok(&dirs[1], &["canary", "publish", "--withdraw", "gag"]);
    wait_for("alpha sees bravo's withdrawn gag code", || {
        cli_ok(&dirs[0], &["peers"]).contains("CHANGED: withdrew gag")
    });

    // Bravo publishes alpha's revocation; alpha's key is refused everywhere.
    cli_ok(
        &dirs[1],
        &[
            "key",
            "revoke",
            "--cert",
            certificate.to_str().expect("utf-8"),
        ],
    );
    wait_for("bravo marks alpha revoked", || {
        cli_ok(&dirs[1], &["peers"]).contains("REVOKED")
    });
    // Bravo also stops talking to the revoked key: whoever holds it now learns nothing
    // more, and what it signs is not taken.
    wait_for("bravo disconnects the revoked key", || {
        let peers: serde_json::Value =
            serde_json::from_str(&cli_ok(&dirs[1], &["peers", "--json"])).expect("json");
        peers
            .as_array()
            .expect("array")
            .iter()
            .all(|peer| peer["connected"] == false)
    });
    // Alpha may or may not have heard of its revocation before bravo hung up: either it
    // refuses to sign, or what it signs goes nowhere.
    let (signed, stdout, stderr) = cli(
        &dirs[0],
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
            "after revocation",
        ],
    );
    if signed {
        std::thread::sleep(Duration::from_millis(1500));
        assert!(
            alert_state(&dirs[1], stdout.trim()).is_none(),
            "bravo took a message of a revoked key"
        );
    } else {
        assert!(stderr.contains("revoked"), "{stderr}");
    }
}

#[test]
fn malformed_control_requests_get_a_clear_error_and_change_nothing() {
    use std::io::{Read, Write};
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("a");
    init(&dir);
    let _node = BinaryNode::start(&dir);
    let before = cli_ok(&dir, &["alert", "list", "--json"]);
    let socket = dir.join("control.sock");
    let oversized = vec![b'x'; solidarity_control::MAX_REQUEST_BYTES + 10];
    for request in [
        &b"this is not json\n"[..],
        b"{\"op\":\"alert_raise\"}\n",
        b"{\"op\":\"no_such_command\"}\n",
        &oversized,
    ] {
        let mut stream = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
        stream.write_all(request).expect("write");
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read");
        let answer: serde_json::Value = serde_json::from_str(answer.trim()).expect("a JSON answer");
        assert_eq!(answer["result"], "error", "{answer}");
        assert!(!answer["message"].as_str().unwrap_or_default().is_empty());
    }
    let mode = std::fs::metadata(&socket).expect("socket").permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    let dir_mode = std::fs::metadata(&dir).expect("dir").permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&dir_mode) & 0o777,
        0o700
    );
    assert_eq!(
        cli_ok(&dir, &["alert", "list", "--json"]),
        before,
        "nothing changed"
    );
    assert!(cli(&dir, &["status"]).0, "the daemon still answers");
}
