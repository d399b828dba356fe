//! `solidarity devnet`: a throwaway local federation for demos. Each node is this same
//! binary running `node` as a child process on loopback with a temp data dir; the devnet
//! makes them members of each other and prints how to use them. Ctrl-C stops them all and
//! deletes the temp dirs.

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

struct DevNode {
    dir: PathBuf,
    child: Child,
}

pub fn run(count: u8) -> anyhow::Result<()> {
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
            },
        )?;
        let log = std::fs::File::create(dir.with_extension("log"))?;
        let child = Command::new(&exe)
            .arg("--data")
            .arg(&dir)
            .arg("node")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start a node")?;
        nodes.push(DevNode { dir, child });
    }
    let outcome = connect_and_wait(&exe, &nodes);
    for node in &mut nodes {
        stop(node);
    }
    outcome
}

fn connect_and_wait(exe: &std::path::Path, nodes: &[DevNode]) -> anyhow::Result<()> {
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
    println!(
        "solidarity devnet: {} nodes on loopback, federation {DEVNET_FEDERATION:?}",
        nodes.len()
    );
    for (index, node) in nodes.iter().enumerate() {
        let status = Client::new(&node.dir).status()?;
        println!(
            "  node{index}  status page {}  data {}",
            status.status_url,
            node.dir.display()
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
