//! A small client of tor's control protocol (torproject's control-spec): what the node
//! needs and nothing more. Authenticate with SAFECOOKIE (the port proves it knows tor's
//! cookie before anything is sent; plain COOKIE and NULL are refused) or a password,
//! `ADD_ONION` with a key of ours, `GETINFO` of the bootstrap phase. Onion services added here live as long as this connection (no `Detach`): when
//! the daemon stops or dies, tor withdraws them.
//!
//! Every read is bounded (line length, lines per reply) and every command has a deadline:
//! whatever answers on the configured address cannot make the daemon wait or grow.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use hmac::{KeyInit, Mac};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// Longest reply line read; tor's are far shorter.
const MAX_LINE_BYTES: usize = 16 * 1024;
/// Most lines of one reply.
const MAX_REPLY_LINES: usize = 64;
/// Deadline of one command and its reply.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Size of tor's control cookie.
const COOKIE_BYTES: usize = 32;
/// Most bytes of a cookie file read.
const MAX_COOKIE_BYTES: u64 = COOKIE_BYTES as u64;

/// Where tor's control port is (Debian's tor: the Unix socket `/run/tor/control`).
pub use solidarity_net::TorEndpoint as ControlAddr;

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One authenticated control connection.
pub struct Control {
    stream: BufReader<Box<dyn Stream>>,
}

/// A reply: its status code and lines (without the code and separator).
#[derive(Debug, PartialEq, Eq)]
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    fn ok(self) -> anyhow::Result<Vec<String>> {
        if self.code == 250 {
            Ok(self.lines)
        } else {
            bail!(
                "tor refused: {} {}",
                self.code,
                printable(self.lines.last().map(String::as_str).unwrap_or(""))
            )
        }
    }
}

/// Longest piece of tor's own text quoted in an error (and so in the log).
const MAX_QUOTED_CHARS: usize = 160;

/// Tor's text as the log may show it: printable ASCII only, at most
/// [`MAX_QUOTED_CHARS`], since whatever answers on the control port writes it.
fn printable(text: &str) -> String {
    text.chars()
        .take(MAX_QUOTED_CHARS)
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// What `PROTOCOLINFO` says.
#[derive(Debug, Default, PartialEq, Eq)]
struct ProtocolInfo {
    methods: Vec<String>,
    cookie_file: Option<PathBuf>,
}

impl Control {
    /// Connects and authenticates: SAFECOOKIE with `cookie` (or, when none is given, the
    /// cookie file tor names), or `password` when tor asks for one.
    pub async fn connect(
        address: &ControlAddr,
        cookie: Option<&Path>,
        password: Option<&str>,
    ) -> anyhow::Result<Self> {
        let stream: Box<dyn Stream> = match address {
            ControlAddr::Tcp(socket) => Box::new(
                tokio::time::timeout(COMMAND_TIMEOUT, tokio::net::TcpStream::connect(socket))
                    .await
                    .context("timed out")??,
            ),
            ControlAddr::Unix(path) => Box::new(
                tokio::time::timeout(COMMAND_TIMEOUT, tokio::net::UnixStream::connect(path))
                    .await
                    .context("timed out")??,
            ),
        };
        let mut control = Self {
            stream: BufReader::new(stream),
        };
        control.authenticate(cookie, password).await?;
        Ok(control)
    }

    async fn authenticate(
        &mut self,
        cookie: Option<&Path>,
        password: Option<&str>,
    ) -> anyhow::Result<()> {
        let info = parse_protocol_info(&self.command("PROTOCOLINFO 1").await?.ok()?)?;
        let offers = |method: &str| info.methods.iter().any(|offered| offered == method);
        let command = if offers("SAFECOOKIE") && info.cookie_file.is_some() {
            let cookie_path = cookie.or(info.cookie_file.as_deref());
            let cookie = read_cookie(cookie_path)?;
            let client_nonce: [u8; 32] = rand::random();
            let reply = self
                .command(&format!(
                    "AUTHCHALLENGE SAFECOOKIE {}",
                    hex::encode(client_nonce)
                ))
                .await?
                .ok()?;
            let (server_hash, server_nonce) = parse_auth_challenge(&reply)?;
            let expected =
                safe_cookie_hash(SERVER_TO_CONTROLLER, &cookie, &client_nonce, &server_nonce);
            if expected != server_hash {
                bail!(
                    "the control port did not prove it knows tor's cookie: it is not tor, or not the tor that wrote {}",
                    cookie_path.unwrap_or(Path::new("?")).display()
                );
            }
            let answer =
                safe_cookie_hash(CONTROLLER_TO_SERVER, &cookie, &client_nonce, &server_nonce);
            format!("AUTHENTICATE {}", hex::encode(answer))
        } else if let Some(password) = password.filter(|_| offers("HASHEDPASSWORD")) {
            format!("AUTHENTICATE {}", quote(password))
        } else {
            // Plain COOKIE would hand whatever answers here the content of any file it
            // names, NULL would take any program for tor: only a port that proves it
            // knows tor's cookie (SAFECOOKIE) or the admin's password is used.
            bail!(
                "tor offers {}; this node authenticates with SAFECOOKIE (`CookieAuthentication 1`) or a password (`HashedControlPassword` and `control_password_file` under [tor])",
                info.methods.join(",")
            );
        };
        self.command(&command)
            .await?
            .ok()
            .context("tor refused to authenticate this node")?;
        Ok(())
    }

    /// Adds an onion service from `key_blob` (`ED25519-V3:…`) forwarding `virtual_port` to
    /// `target` (`127.0.0.1:PORT` or `unix:/path`); returns its service id (the address
    /// without `.onion`).
    pub async fn add_onion(
        &mut self,
        key_blob: &str,
        virtual_port: u16,
        target: &str,
        max_streams: u32,
    ) -> anyhow::Result<String> {
        let command = |defence: &str| {
            zeroize::Zeroizing::new(format!(
                "ADD_ONION {key_blob} Flags=DiscardPK,MaxStreamsCloseCircuit MaxStreams={max_streams}{defence} Port={virtual_port},{target}"
            ))
        };
        // Proof-of-work at the introduction points (tor ≥ 0.4.9 built with it) makes a
        // flood of introductions cost the visitor; an older tor refuses the keyword and
        // gets the service without it.
        let mut reply = self.command(&command(" PoWDefensesEnabled=1")).await?;
        if matches!(reply.code, 510 | 512 | 513 | 552) {
            tracing::info!(
                code = reply.code,
                "this tor has no proof-of-work defences for onion services (tor 0.4.9 has them): the onion services run without"
            );
            reply = self.command(&command("")).await?;
        }
        let lines = reply.ok()?;
        lines
            .iter()
            .find_map(|line| line.strip_prefix("ServiceID="))
            .map(str::to_owned)
            .context("tor's answer to ADD_ONION names no ServiceID")
    }

    /// Bootstrap progress, 0–100, and tor's summary of it.
    pub async fn bootstrap(&mut self) -> anyhow::Result<(u8, String)> {
        let lines = self.command("GETINFO status/bootstrap-phase").await?.ok()?;
        lines
            .iter()
            .find_map(|line| line.strip_prefix("status/bootstrap-phase="))
            .and_then(parse_bootstrap)
            .context("tor's bootstrap phase is unreadable")
    }

    async fn command(&mut self, line: &str) -> anyhow::Result<Reply> {
        tokio::time::timeout(COMMAND_TIMEOUT, async {
            let stream = self.stream.get_mut();
            stream.write_all(line.as_bytes()).await?;
            stream.write_all(b"\r\n").await?;
            stream.flush().await?;
            self.read_reply().await
        })
        .await
        .context("tor did not answer in time")?
    }

    async fn read_reply(&mut self) -> anyhow::Result<Reply> {
        let mut lines = Vec::new();
        loop {
            if lines.len() >= MAX_REPLY_LINES {
                bail!("tor's reply is longer than {MAX_REPLY_LINES} lines");
            }
            let line = self.read_line().await?;
            let (code, separator, rest) = split_reply_line(&line)?;
            match separator {
                b' ' => {
                    lines.push(rest.to_owned());
                    return Ok(Reply { code, lines });
                }
                b'-' => lines.push(rest.to_owned()),
                _ => {
                    // `+`: a data block up to a line holding a single ".".
                    lines.push(rest.to_owned());
                    loop {
                        if lines.len() >= MAX_REPLY_LINES {
                            bail!("tor's reply is longer than {MAX_REPLY_LINES} lines");
                        }
                        let data = self.read_line().await?;
                        if data == "." {
                            break;
                        }
                        lines.push(data);
                    }
                }
            }
        }
    }

    async fn read_line(&mut self) -> anyhow::Result<String> {
        let mut bytes = Vec::new();
        let read = (&mut self.stream)
            .take(MAX_LINE_BYTES as u64)
            .read_until(b'\n', &mut bytes)
            .await?;
        if read == 0 {
            bail!("tor closed the control connection");
        }
        if bytes.last() != Some(&b'\n') {
            bail!("a line of tor's reply is longer than {MAX_LINE_BYTES} bytes");
        }
        let text = String::from_utf8(bytes).context("tor's reply is not UTF-8")?;
        Ok(text.trim_end_matches(['\r', '\n']).to_owned())
    }
}

/// `250-AUTH …` → (250, b'-', "AUTH …").
fn split_reply_line(line: &str) -> anyhow::Result<(u16, u8, &str)> {
    let bytes = line.as_bytes();
    if bytes.len() < 4 || !bytes[..3].iter().all(u8::is_ascii_digit) {
        bail!("not a control-port reply: is the address tor's control port?");
    }
    let code = line[..3].parse().context("reply code")?;
    Ok((code, bytes[3], &line[4..]))
}

fn parse_protocol_info(lines: &[String]) -> anyhow::Result<ProtocolInfo> {
    let mut info = ProtocolInfo::default();
    for line in lines {
        if let Some(auth) = line.strip_prefix("AUTH ") {
            for (key, value) in key_values(auth) {
                match key.as_str() {
                    "METHODS" => info.methods = value.split(',').map(str::to_owned).collect(),
                    "COOKIEFILE" => info.cookie_file = Some(PathBuf::from(value)),
                    _ => {}
                }
            }
        }
    }
    if info.methods.is_empty() {
        bail!("tor's PROTOCOLINFO lists no authentication method");
    }
    Ok(info)
}

/// `KEY=VALUE KEY="quoted \"value\""` pairs.
fn key_values(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = text.trim_start();
    while let Some(equals) = rest.find('=') {
        let key = rest[..equals].trim().to_owned();
        rest = &rest[equals + 1..];
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((index, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            out.push(escaped);
                        }
                    }
                    '"' => {
                        end = index + 1;
                        break;
                    }
                    other => out.push(other),
                }
            }
            value = out;
            rest = &quoted[end.min(quoted.len())..];
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            value = rest[..end].to_owned();
            rest = &rest[end..];
        }
        pairs.push((key, value));
        rest = rest.trim_start();
    }
    pairs
}

fn parse_auth_challenge(lines: &[String]) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let line = lines
        .iter()
        .find_map(|line| line.strip_prefix("AUTHCHALLENGE "))
        .context("tor's AUTHCHALLENGE answer is missing")?;
    let pairs = key_values(line);
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| hex::decode(value).ok())
            .with_context(|| format!("tor's AUTHCHALLENGE answer lacks {name}"))
    };
    Ok((field("SERVERHASH")?, field("SERVERNONCE")?))
}

/// Bootstrap progress from `NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"`.
fn parse_bootstrap(text: &str) -> Option<(u8, String)> {
    let pairs = key_values(text.split_once("BOOTSTRAP ")?.1);
    let progress = pairs
        .iter()
        .find(|(key, _)| key == "PROGRESS")?
        .1
        .parse()
        .ok()?;
    let summary = pairs
        .iter()
        .find(|(key, _)| key == "SUMMARY")
        .map(|(_, value)| printable(value))
        .unwrap_or_default();
    Some((progress, summary))
}

const SERVER_TO_CONTROLLER: &[u8] = b"Tor safe cookie authentication server-to-controller hash";
const CONTROLLER_TO_SERVER: &[u8] = b"Tor safe cookie authentication controller-to-server hash";

fn safe_cookie_hash(
    key: &[u8],
    cookie: &[u8],
    client_nonce: &[u8],
    server_nonce: &[u8],
) -> Vec<u8> {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key)
        .expect("HMAC takes a key of any length");
    mac.update(cookie);
    mac.update(client_nonce);
    mac.update(server_nonce);
    mac.finalize().into_bytes().to_vec()
}

fn read_cookie(path: Option<&Path>) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let path = path.context("tor names no cookie file")?;
    let mut cookie = Vec::new();
    // Never a FIFO or a device, which could block or stream.
    if !std::fs::metadata(path).is_ok_and(|metadata| metadata.is_file()) {
        bail!(
            "{} is not tor's cookie (not a regular file)",
            path.display()
        );
    }
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_COOKIE_BYTES + 1).read_to_end(&mut cookie))
        .with_context(|| {
            format!(
                "cannot read tor's cookie {} (is this daemon's user in tor's group, e.g. `adduser solidarity debian-tor`?)",
                path.display()
            )
        })?;
    if cookie.len() != COOKIE_BYTES {
        bail!(
            "{} is not tor's cookie (tor's is {COOKIE_BYTES} bytes)",
            path.display()
        );
    }
    Ok(cookie)
}

/// A control-protocol quoted string.
fn quote(text: &str) -> String {
    let mut out = String::from('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_info_names_the_methods_and_the_cookie() {
        let lines = [
            "PROTOCOLINFO 1".to_owned(),
            r#"AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/run/tor/control.authcookie""#.to_owned(),
            r#"VERSION Tor="0.4.9.11""#.to_owned(),
            "OK".to_owned(),
        ];
        let info = parse_protocol_info(&lines).expect("parses");
        assert_eq!(info.methods, ["COOKIE", "SAFECOOKIE"]);
        assert_eq!(
            info.cookie_file.as_deref(),
            Some(Path::new("/run/tor/control.authcookie"))
        );
    }

    #[test]
    fn quoted_values_keep_escaped_quotes_and_spaces() {
        assert_eq!(
            key_values(r#"A=1 B="x \"y\" z" C=3"#),
            [
                ("A".to_owned(), "1".to_owned()),
                ("B".to_owned(), r#"x "y" z"#.to_owned()),
                ("C".to_owned(), "3".to_owned())
            ]
        );
        assert_eq!(quote(r#"pa"ss\"#), r#""pa\"ss\\""#);
    }

    #[test]
    fn bootstrap_phase_and_reply_lines() {
        assert_eq!(
            parse_bootstrap(r#"NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done""#),
            Some((100, "Done".to_owned()))
        );
        assert_eq!(
            split_reply_line("250-AUTH x").expect("reply"),
            (250, b'-', "AUTH x")
        );
        assert!(split_reply_line("HTTP/1.1 400").is_err(), "not tor");
    }

    #[test]
    fn tors_refusals_are_quoted_printable_and_short() {
        let reply = Reply {
            code: 552,
            lines: vec![format!("\u{1b}[31mred{}", "x".repeat(500))],
        };
        let error = reply.ok().expect_err("refused").to_string();
        assert!(error.starts_with("tor refused: 552 ?[31mred"), "{error}");
        assert!(error.len() < 200, "{}", error.len());
    }

    #[test]
    fn safe_cookie_hashes_are_the_two_directions_of_one_hmac() {
        let cookie = [7u8; 32];
        let (client, server) = ([1u8; 32], [2u8; 32]);
        let up = safe_cookie_hash(CONTROLLER_TO_SERVER, &cookie, &client, &server);
        let down = safe_cookie_hash(SERVER_TO_CONTROLLER, &cookie, &client, &server);
        assert_eq!(up.len(), 32);
        assert_ne!(up, down);
    }
}
