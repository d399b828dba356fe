//! A private Tor network on 127.0.0.1 for the tests: `tests/support/tor_network.py` starts
//! Debian's `tor` as three directory authorities, two relays and one client per node
//! (chutney's way: `TestingTorNetwork 1`, keys from `tor-gencert`), then takes `stop N` and
//! `start N` on stdin. Dropping the [`TorNetwork`] closes its stdin: every tor stops.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// One client tor: what a node is configured with.
#[derive(Clone, Debug)]
pub struct TorClient {
    pub socks: SocketAddr,
    /// The same SOCKS port as a Unix socket.
    pub socks_unix: PathBuf,
    pub control: SocketAddr,
    /// The client's control cookie (its `CookieAuthFile`).
    pub cookie: PathBuf,
    pub data_dir: PathBuf,
}

/// The running network; stopped on drop.
pub struct TorNetwork {
    pub clients: Vec<TorClient>,
    /// Seconds the network took to bootstrap.
    pub seconds: f64,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    _dir: tempfile::TempDir,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("support/tor_network.py")
}

impl TorNetwork {
    /// Starts a network with `clients` client tors; fails (with the script's words) when
    /// it does not bootstrap within the script's bound (180 s).
    pub fn start(clients: usize) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut child = Command::new("python3")
            .arg(script())
            .arg(dir.path())
            .args(["--clients", &clients.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        if line.trim().is_empty() {
            let _ = child.wait();
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
            }
            anyhow::bail!("the private tor network did not come up: {stderr}");
        }
        // Its progress lines would fill the pipe: read them away.
        if let Some(stderr) = child.stderr.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    eprintln!("tor_network: {line}");
                }
            });
        }
        let report: serde_json::Value = serde_json::from_str(&line)?;
        let clients = report["clients"]
            .as_array()
            .ok_or_else(|| anyhow::anyhow!("no clients in {line}"))?
            .iter()
            .map(|client| -> anyhow::Result<TorClient> {
                let text = |key: &str| client[key].as_str().unwrap_or_default().to_owned();
                Ok(TorClient {
                    socks: text("socks").parse()?,
                    socks_unix: PathBuf::from(text("socks_unix")),
                    control: text("control").parse()?,
                    cookie: PathBuf::from(text("cookie")),
                    data_dir: PathBuf::from(text("data_dir")),
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            clients,
            seconds: report["seconds"].as_f64().unwrap_or_default(),
            child,
            stdin,
            stdout,
            _dir: dir,
        })
    }

    /// Stops client `index` (its node's tor goes away).
    pub fn stop_client(&mut self, index: usize) -> anyhow::Result<()> {
        self.command(&format!("stop {index}"))
    }

    /// Starts client `index` again on the same ports and waits for its bootstrap.
    pub fn start_client(&mut self, index: usize) -> anyhow::Result<()> {
        self.command(&format!("start {index}"))
    }

    fn command(&mut self, line: &str) -> anyhow::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("the network is stopped"))?;
        writeln!(stdin, "{line}")?;
        stdin.flush()?;
        let mut answer = String::new();
        self.stdout.read_line(&mut answer)?;
        anyhow::ensure!(answer.trim() == "ok", "{line}: {answer}");
        Ok(())
    }

    /// The `[tor]` table of a node using client `index` (its SOCKS port over TCP, or
    /// over its Unix socket).
    pub fn tor_table(&self, index: usize, unix_socks: bool) -> String {
        let client = &self.clients[index];
        let socks = if unix_socks {
            format!("unix:{}", client.socks_unix.display())
        } else {
            client.socks.to_string()
        };
        format!(
            "[tor]\nsocks = \"{socks}\"\ncontrol = \"{}\"\ncontrol_cookie_file = \"{}\"\n",
            client.control,
            client.cookie.display()
        )
    }
}

impl Drop for TorNetwork {
    fn drop(&mut self) {
        // End of stdin: the script stops every tor and exits.
        drop(self.stdin.take());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
