//! A real SMTP server for notification tests: Python's `aiosmtpd` running
//! `tests/support/smtp_server.py` on 127.0.0.1, with a certificate made at start by a throw-away
//! CA (openssl CLI) whose PEM is [`SmtpServer::ca_pem`]. Messages land in a temp dir.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How the server speaks.
#[derive(Clone, Debug, Default)]
pub struct SmtpOptions {
    /// Offer STARTTLS and require it before AUTH and MAIL.
    pub starttls: bool,
    /// TLS from the first byte.
    pub implicit_tls: bool,
    /// Require AUTH PLAIN/LOGIN with this user and password.
    pub auth: Option<(String, String)>,
    /// Answer 451 to every DATA.
    pub fail_data: bool,
}

/// A running (or stopped) test SMTP server; killed on drop.
pub struct SmtpServer {
    options: SmtpOptions,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

/// How long the server may take to listen.
const START_DEADLINE: Duration = Duration::from_secs(20);

fn python() -> &'static str {
    static PYTHON: OnceLock<&'static str> = OnceLock::new();
    PYTHON.get_or_init(|| {
        for candidate in ["python3", "/usr/bin/python3"] {
            let ok = Command::new(candidate)
                .args(["-c", "import aiosmtpd"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            if ok {
                return candidate;
            }
        }
        panic!("no python3 with aiosmtpd (scripts/test installs it)")
    })
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("support/smtp_server.py")
}

impl SmtpServer {
    /// Starts a server on a free loopback port.
    pub fn start(options: SmtpOptions) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("messages"))?;
        make_certificates(dir.path())?;
        let mut server = Self {
            options,
            port,
            dir,
            child: None,
        };
        server.start_again()?;
        Ok(server)
    }

    /// Starts the stopped server again on the same port (with the same certificate).
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.child.is_none(), "the server runs already");
        let mut command = Command::new(python());
        command
            .arg(script())
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--dir")
            .arg(self.dir.path().join("messages"))
            .arg("--cert")
            .arg(self.dir.path().join("cert.pem"))
            .arg("--key")
            .arg(self.dir.path().join("key.pem"));
        if self.options.starttls {
            command.arg("--starttls");
        }
        if self.options.implicit_tls {
            command.arg("--implicit");
        }
        if let Some((user, password)) = &self.options.auth {
            command.arg("--auth").arg(format!("{user}:{password}"));
        }
        if self.options.fail_data {
            command.arg("--fail-data");
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut lines = std::io::BufReader::new(stdout).lines();
            let ready = lines
                .next()
                .is_some_and(|line| line.is_ok_and(|l| l == "READY"));
            let _ = ready_tx.send(ready);
            for _ in lines {}
        });
        self.child = Some(child);
        match ready_rx.recv_timeout(START_DEADLINE) {
            Ok(true) => Ok(()),
            _ => {
                self.stop();
                anyhow::bail!("the SMTP server did not start")
            }
        }
    }

    /// Stops the server (the port stays this server's for [`Self::start_again`]).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The test CA's certificate, PEM, for a channel's `ca_pem`.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("ca.pem")).expect("ca.pem")
    }

    /// Every accepted message, raw, in order.
    pub fn messages(&self) -> Vec<String> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("messages"))
            .map(|entries| {
                entries
                    .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                    .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
            .iter()
            .filter_map(|path| std::fs::read(path).ok())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .collect()
    }

    /// Waits until at least `n` messages arrived; panics after `deadline`.
    pub fn wait_for_messages(&self, n: usize, deadline: Duration) -> Vec<String> {
        let start = Instant::now();
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            assert!(
                start.elapsed() < deadline,
                "{} of {n} messages after {deadline:?}",
                messages.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A throw-away CA (`ca.pem`) and a server certificate it signed for localhost and
/// 127.0.0.1 (`cert.pem`, `key.pem`): webpki refuses a self-signed end-entity certificate.
fn make_certificates(dir: &Path) -> anyhow::Result<()> {
    let run = |args: &[&str]| -> anyhow::Result<()> {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "openssl {args:?} failed");
        Ok(())
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-days",
        "2",
        "-subj",
        "/CN=solidarity test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    run(&ca)?;
    let mut csr = vec!["req", "-new"];
    csr.extend(ec);
    csr.extend([
        "-subj",
        "/CN=localhost",
        "-keyout",
        "key.pem",
        "-out",
        "server.csr",
    ]);
    run(&csr)?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )?;
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "cert.pem",
    ])
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}
