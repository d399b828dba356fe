//! Control API access: another local user cannot use a running daemon's control socket.
//!
//! Two layers, each tested with the real binary run as another uid (`nobody`, 65534):
//! 1. the file system: the data dir is 0700 and the socket 0600, so the other user cannot
//!    even reach the socket (the CLI says it lacks permission);
//! 2. the peer credentials: with the file modes loosened on purpose (as a careless admin
//!    might), the connection succeeds but the daemon refuses every request from a uid
//!    other than its own (or root) and changes nothing.
//!
//! Needs root to switch uid; run as another user, the test says so and checks nothing.
//! (The 0700/0600 modes themselves and malformed requests are checked in `end_to_end.rs`.)

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use solidarity_tests::{BinaryNode, binary, cli_init, cli_ok, wait_for};

const OTHER_UID: u32 = 65534;
const OTHER_GID: u32 = 65534;

/// Runs `solidarity --data DIR ARGS…` as [`OTHER_UID`]; returns (success, stdout, stderr).
fn cli_as_other_user(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(binary())
        .arg("--data")
        .arg(dir)
        .args(args)
        .uid(OTHER_UID)
        .gid(OTHER_GID)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run solidarity as another user");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn raise_args() -> Vec<&'static str> {
    vec![
        "alert",
        "raise",
        "--kind",
        "intrusion",
        "--subject",
        "a.example",
        "--severity",
        "high",
        "--summary",
        "raised by another local user",
    ]
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn another_local_user_cannot_use_the_control_socket() {
    let own_uid = std::fs::metadata("/proc/self").expect("/proc/self").uid();
    if own_uid != 0 {
        println!(
            "control access: running as uid {own_uid}, not root: cannot act as a second user; nothing checked (the peer-credential refusal needs a second uid)"
        );
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("node");
    cli_init(&dir, 0, "access");
    let mut node = BinaryNode::start(&dir);
    let socket = solidarity_control::socket_path(&dir);
    // The daemon signs its start-up canary once it knows its chain; count from there, or
    // that canary would look like something a refused request stored.
    let stored_messages = |dir: &Path| -> u64 {
        let status: serde_json::Value =
            serde_json::from_str(&cli_ok(dir, &["status", "--json"])).expect("status json");
        status["stored_messages"].as_u64().expect("stored_messages")
    };
    wait_for("the start-up canary is stored", || {
        stored_messages(&dir) >= 1
    });
    let before = cli_ok(&dir, &["alert", "list", "--json"]);
    let stored_before = stored_messages(&dir);

    // 1. As installed: the other user cannot reach the socket at all.
    let (ok, stdout, stderr) = cli_as_other_user(&dir, &["status"]);
    println!("control access: uid {OTHER_UID}, modes as installed: `status` → {stderr:?}");
    assert!(!ok, "another user ran `status`: {stdout}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("no permission to use the control socket"),
        "not a clear error: {stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    let (ok, _, stderr) = cli_as_other_user(&dir, &raise_args());
    assert!(!ok, "another user raised an alert");
    assert!(stderr.contains("no permission"), "{stderr}");

    // 2. Modes loosened on purpose: the socket is reachable, the daemon still refuses by
    // the caller's peer credentials.
    chmod(root.path(), 0o711);
    chmod(&dir, 0o711);
    chmod(&socket, 0o666);
    let (ok, stdout, stderr) = cli_as_other_user(&dir, &["status"]);
    println!("control access: uid {OTHER_UID}, socket reachable: `status` → {stderr:?}");
    assert!(!ok, "another user ran `status`: {stdout}");
    assert!(stdout.is_empty(), "status leaked to another user: {stdout}");
    assert!(
        stderr.contains("refused: the control socket serves only the daemon's own user"),
        "not the peer-credential refusal: {stderr}"
    );
    let mut refused = 1; // `status` above
    for args in [
        raise_args(),
        vec!["alert", "list"],
        vec!["peers"],
        vec!["id"],
        vec!["mirror", "list"],
        vec!["canary", "publish"],
    ] {
        let (ok, stdout, stderr) = cli_as_other_user(&dir, &args);
        println!("control access:   {args:?} → ok={ok}, {:?}", stderr.trim());
        assert!(!ok, "another user ran {args:?}: {stdout}");
        assert!(
            stderr.contains("refused: the control socket serves only the daemon's own user"),
            "{args:?}: {stderr}"
        );
        refused += 1;
    }

    // Nothing changed, and the daemon's own user (root here) is still served.
    chmod(&dir, 0o700);
    chmod(root.path(), 0o700);
    assert_eq!(
        cli_ok(&dir, &["alert", "list", "--json"]),
        before,
        "a refused request changed the alerts"
    );
    assert_eq!(
        stored_messages(&dir),
        stored_before,
        "a refused request stored something"
    );
    assert!(node.terminate(), "clean stop: {}", node.log_text());
    println!(
        "control access: {} requests by uid {OTHER_UID} refused (2 unable to reach the socket, {refused} by peer credentials); nothing changed",
        refused + 2
    );
}
