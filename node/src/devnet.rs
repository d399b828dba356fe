//! `solidarity devnet`: a throwaway local federation for demos. Each node is this same
//! binary running `node` as a child process on loopback with a temp data dir; the devnet
//! makes them members of each other and prints how to use them. Ctrl-C stops them all and
//! deletes the temp dirs.
//!
//! The nodes die with the devnet even when it is killed without a chance to stop them
//! (`kill -9`): each is started with [`PARENT_ENV`] naming the devnet's pid, and on start
//! asks the kernel for SIGTERM when its parent dies (`PR_SET_PDEATHSIG`), checks that its
//! parent is still that devnet, and watches its parent pid. They share the devnet's
//! process group, so a Ctrl-C in the terminal reaches them too.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use solidarity_control::Client;

use crate::identity::Card;
use crate::init::{self, InitOptions};
use crate::members::MembersFile;

/// Federation name of every devnet.
const DEVNET_FEDERATION: &str = "devnet";
/// How long a node may take to answer on its control socket.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Set on a devnet node: the pid of the devnet that started it.
pub const PARENT_ENV: &str = "SOLIDARITY_DEVNET_PARENT";
/// How often a devnet node checks that its parent is still there (a fallback for the
/// parent-death signal).
const PARENT_CHECK: Duration = Duration::from_millis(500);

struct DevNode {
    dir: PathBuf,
    child: Child,
}

pub fn run(count: u8, json: bool) -> anyhow::Result<()> {
    let root = tempfile::Builder::new()
        .prefix("solidarity-devnet-")
        .tempdir()
        .context("cannot create a temp dir")?;
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let mut nodes = Vec::new();
    for index in 0..count {
        let dir = root.path().join(format!("node{index}"));
        init::init(
            &dir,
            &InitOptions {
                listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
                // One machine: loopback is what the other nodes dial.
                announce: vec!["/ip4/127.0.0.1/tcp/0".into()],
                status_addr: "127.0.0.1:0".into(),
                federation: DEVNET_FEDERATION.into(),
                network: crate::tor::Network::Clearnet,
            },
        )?;
        let log = std::fs::File::create(dir.with_extension("log"))?;
        let child = Command::new(&exe)
            .arg("--data")
            .arg(&dir)
            .arg("node")
            .env(PARENT_ENV, std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start a node")?;
        nodes.push(DevNode { dir, child });
    }
    let outcome = connect_and_wait(&exe, &nodes, json);
    for node in &mut nodes {
        stop(node);
    }
    outcome
}

fn connect_and_wait(exe: &std::path::Path, nodes: &[DevNode], json: bool) -> anyhow::Result<()> {
    let mut cards = Vec::new();
    for node in nodes {
        cards.push(wait_for_card(node)?);
    }
    for (index, node) in nodes.iter().enumerate() {
        let mut members = MembersFile::default();
        for (other, card) in cards.iter().enumerate() {
            if other != index {
                members.add(&Card::parse(card)?, &format!("node{other}"))?;
            }
        }
        members.save(&node.dir)?;
        Client::new(&node.dir).reload_members()?;
    }
    let mut listed = Vec::new();
    for (index, node) in nodes.iter().enumerate() {
        let status = Client::new(&node.dir).status()?;
        listed.push(serde_json::json!({
            "name": format!("node{index}"),
            "pid": node.child.id(),
            "data": node.dir,
            "status_url": status.status_url,
        }));
    }
    if json {
        println!(
            "{}",
            serde_json::json!({ "federation": DEVNET_FEDERATION, "nodes": listed })
        );
        return wait_for_ctrl_c();
    }
    println!(
        "solidarity devnet: {} nodes on loopback, federation {DEVNET_FEDERATION:?}",
        nodes.len()
    );
    for node in &listed {
        println!(
            "  {}  status page {}  data {}  pid {}",
            node["name"].as_str().unwrap_or_default(),
            node["status_url"].as_str().unwrap_or_default(),
            node["data"].as_str().unwrap_or_default(),
            node["pid"]
        );
    }
    let exe = exe.display();
    let first = nodes[0].dir.display();
    let second = nodes[1].dir.display();
    println!();
    println!("Raise an alert on node0:");
    println!(
        "  {exe} --data {first} alert raise --kind seizure --subject a.example --severity critical --summary \"Two servers taken from our rack at 06:00\" --jurisdiction FR"
    );
    println!("See it on node1 (and on every status page above):");
    println!("  {exe} --data {second} alert list");
    println!(
        "Logs are next to each data dir (nodeN.log). Press Ctrl-C to stop the devnet and delete it."
    );
    wait_for_ctrl_c()
}

fn wait_for_card(node: &DevNode) -> anyhow::Result<String> {
    let client = Client::new(&node.dir);
    let start = Instant::now();
    loop {
        match client.card() {
            Ok(card) if card.contains('@') => return Ok(card),
            _ if start.elapsed() > START_TIMEOUT => {
                let log =
                    std::fs::read_to_string(node.dir.with_extension("log")).unwrap_or_default();
                bail!("a devnet node did not start:\n{log}");
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn wait_for_ctrl_c() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result?,
            _ = terminate.recv() => {}
        }
        anyhow::Ok(())
    })?;
    println!("stopping the devnet");
    Ok(())
}

/// SIGTERM, a grace period for a clean shutdown, then SIGKILL.
fn stop(node: &mut DevNode) {
    let _ = Command::new("kill")
        .args(["-TERM", &node.child.id().to_string()])
        .status();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if let Ok(Some(_)) = node.child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = node.child.kill();
    let _ = node.child.wait();
}

/// For `solidarity node` started by a devnet ([`PARENT_ENV`] set): stop when the devnet
/// does. Does nothing for any other node.
pub fn follow_parent() -> anyhow::Result<()> {
    use rustix::process::{self, Signal};
    let Some(parent) = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|pid| pid.trim().parse::<i32>().ok())
    else {
        return Ok(());
    };
    process::set_parent_process_death_signal(Some(Signal::TERM))
        .context("cannot ask to be stopped with the devnet")?;
    let parent_now = || process::getppid().map_or(0, |pid| pid.as_raw_nonzero().get());
    // The devnet may have died before the signal was set up.
    if parent_now() != parent {
        bail!("the devnet that started this node is gone");
    }
    std::thread::Builder::new()
        .name("devnet-parent".into())
        .spawn(move || {
            while parent_now() == parent {
                std::thread::sleep(PARENT_CHECK);
            }
            // Stop the way SIGTERM stops a node: an ordered shutdown.
            let _ = process::kill_process(process::getpid(), Signal::TERM);
        })
        .context("cannot watch the devnet")?;
    Ok(())
}
