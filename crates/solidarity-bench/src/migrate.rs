//! Scenario 7: the store upgrade of issue 15. A data dir whose store holds the alerts in
//! layout 2 or 1 (written by [`crate::old_layout`] as those versions wrote them, then
//! checkpointed as a clean stop leaves it) is started with the daemon, which rebuilds the
//! store in the current layout before it serves.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use solidarity_control::Client;
use solidarity_store::{NewMessage, SledBackend, SledOptions};

use crate::measure::ms;
use crate::old_layout::OldStore;
use crate::ours;

#[derive(Clone, Debug, Serialize)]
pub struct MigrateFigures {
    pub layout: u8,
    pub alerts: usize,
    /// The rebuild alone, as the daemon logs it (`took_ms` of "store upgraded").
    pub rebuild_ms: f64,
    /// Process start → control socket answers (the rebuild included).
    pub start_to_answering_ms: f64,
    /// Disk used by the store directory (allocated blocks) before and after.
    pub store_mib_before: f64,
    pub store_mib_after: f64,
    /// The daemon's peak resident set (VmHWM) once it answers.
    pub peak_rss_mib: f64,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Allocated bytes of every file under `dir` (what `du` counts).
fn disk_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let metadata = entry.metadata()?;
        total += if metadata.is_dir() {
            disk_bytes(&entry.path())?
        } else {
            metadata.blocks() * 512
        };
    }
    Ok(total)
}

/// Peak resident set of a process (VmHWM), bytes.
fn peak_rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .map_or(0, |kib: u64| kib * 1024)
}

/// A data dir holding `messages` in the old `layout`, prepared once and copied per run.
pub struct OldDataDir {
    dir: tempfile::TempDir,
    layout: u8,
    alerts: usize,
}

impl OldDataDir {
    pub fn prepare(layout: u8, messages: &[NewMessage]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        ours::init_data_dir(dir.path())?;
        let options = SledOptions::new(dir.path().join(solidarity::daemon::STORE_DIR));
        if options.path.exists() {
            std::fs::remove_dir_all(&options.path)?;
        }
        {
            let old = OldStore::create(SledBackend::open(&options)?, layout)?;
            for chunk in messages.chunks(1000) {
                old.insert(chunk)?;
            }
            old.flush()?;
        }
        SledBackend::checkpoint(&options)?;
        Ok(Self {
            dir,
            layout,
            alerts: messages.len(),
        })
    }
}

/// Starts the daemon on a copy of `old` and measures its upgrade.
pub async fn upgrade(old: &OldDataDir) -> anyhow::Result<MigrateFigures> {
    let data = tempfile::tempdir()?;
    crate::single::copy_dir(old.dir.path(), data.path())?;
    let store = data.path().join(solidarity::daemon::STORE_DIR);
    let before = disk_bytes(&store)?;
    let log_dir = tempfile::tempdir()?;
    let log_path = log_dir.path().join("daemon.log");
    let started = Instant::now();
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["__solidarity", "--data"])
        .arg(data.path())
        .arg("node")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log_path)?)
        .spawn()?;
    let client = Client::new(data.path());
    while client.status().is_err() {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!(
                "the daemon exited ({status}): {}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "the daemon did not answer"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let answering = ms(started.elapsed());
    let peak_rss = peak_rss_bytes(child.id());
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    child.wait()?;
    let log = std::fs::read_to_string(&log_path)?;
    let took_ms = log
        .lines()
        .find(|line| line.contains("store upgraded;"))
        .and_then(|line| line.split("took_ms=").nth(1))
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse::<f64>().ok())
        .ok_or_else(|| anyhow::anyhow!("no \"store upgraded\" in the daemon's log: {log}"))?;
    for leftover in ["store.migrating", "store.replaced"] {
        anyhow::ensure!(
            !data.path().join(leftover).exists(),
            "{leftover} left behind"
        );
    }
    Ok(MigrateFigures {
        layout: old.layout,
        alerts: old.alerts,
        rebuild_ms: took_ms,
        start_to_answering_ms: answering,
        store_mib_before: mib(before),
        store_mib_after: mib(disk_bytes(&store)?),
        peak_rss_mib: mib(peak_rss),
    })
}
