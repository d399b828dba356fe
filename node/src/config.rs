//! Node configuration in two layers: the commented TOML file an admin edits
//! ([`FileConfig`], every field documented with its default, unknown keys refused) and the
//! validated [`NodeConfig`] the daemon runs with.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use libp2p::Multiaddr;
use serde::Deserialize;

/// Name of the config file (in the data dir, or in /etc/solidarity for a system node).
pub const CONFIG_FILE: &str = "config.toml";
/// Default p2p listen address.
pub const DEFAULT_LISTEN: &str = "/ip4/0.0.0.0/tcp/7447";
/// Default status page address: loopback only.
pub const DEFAULT_STATUS_ADDR: &str = "127.0.0.1:7448";
/// Default federation name.
pub const DEFAULT_FEDERATION: &str = "solidarity";

/// The config file as written by `solidarity init`. Every field has a default, so an empty
/// file is a valid config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    /// Federation name; every member uses the same one. Default `solidarity`.
    pub federation: String,
    /// libp2p listen addresses. Default `["/ip4/0.0.0.0/tcp/7447"]`.
    pub listen: Vec<String>,
    /// Addresses printed on the member card and sent to members by identify. Default: none
    /// (the card carries the public bound addresses only).
    pub announce: Vec<String>,
    /// Status page address: `HOST:PORT`, or `unix:/absolute/path` for a Unix socket a
    /// local reverse proxy or onion service connects to. Default `127.0.0.1:7448`.
    pub status_addr: String,
    /// Log filter (tracing-subscriber syntax). Default `info`.
    pub log: String,
    /// Seconds between syncs with a random connected member. Default 60.
    pub sync_interval_secs: u64,
    /// Gossipsub heartbeat in milliseconds. Default 1000.
    pub heartbeat_ms: u64,
    /// Store page-cache cap in MiB. Default 16.
    pub store_cache_mib: u64,
    /// Seconds between this node's signed canaries. Default 21600 (6 h).
    pub canary_interval_secs: u64,
    /// Seconds a member's canary may be late before the member shows as silent. Default 3600.
    pub canary_grace_secs: u64,
    /// Longest canary interval this node believes: a member whose canary announces a longer
    /// one counts as due after this many seconds. Default 604800 (7 days).
    pub canary_max_interval_secs: u64,
    /// The canary's statement. Default: a plain statement that nothing happened.
    pub canary_statement: String,
    /// Members needed to vouch before this node trusts a key its admin did not add.
    /// Default 2; 0 disables vouching.
    pub vouch_threshold: usize,
    /// Collectives needed to endorse a seizure, raid or key-compromise alert before it
    /// shows as confirmed. Default 2.
    pub confirm_threshold: usize,
    /// Most messages one member (any signer) may get in per minute, by gossip and sync
    /// alike; beyond it they are ignored (not stored, not relayed; sync brings them later,
    /// at this node's pace). Revocations are never held back. Default 120; 0: no limit.
    pub member_messages_per_minute: u32,
    /// Most revocations, and most certificates, kept per signer (SPEC §9 step 5). A
    /// revocation of a key its signer may revoke is kept beyond it when it is the first of
    /// that signer for that key. Default 64; at least 1.
    pub statements_per_signer: usize,
    /// Most envelope bytes per minute one member may get in, KiB. Default 2048; 0: no limit.
    pub member_kib_per_minute: u64,
    /// Most envelope bytes this node stores of one member, MiB (expired messages free
    /// theirs). Default 64; 0: no limit.
    pub member_stored_mib: u64,
    /// The collective this node belongs to, when it runs several nodes (as the other
    /// members' files name it with `--collective`). Default: none.
    pub collective: Option<String>,
    /// Address of the admin page (everything the node knows, behind a token); loopback
    /// only. Default: none (no admin page).
    pub admin_addr: Option<String>,
    /// Address of the Prometheus `/metrics` endpoint, `HOST:PORT`. Default: none (off).
    pub metrics_addr: Option<String>,
    /// Notifications: `[notify]` and its channels. Default: no channel.
    pub notify: crate::notify::config::FileNotify,
    /// `clearnet` or `tor-only`. Default `clearnet`.
    pub network: crate::tor::Network,
    /// Tor: SOCKS and control ports, onion services. Default: none (`tor-only` implies
    /// Debian's tor).
    pub tor: Option<crate::tor::FileTor>,
}

impl Default for FileConfig {
    fn default() -> Self {
        Self {
            federation: DEFAULT_FEDERATION.to_owned(),
            listen: vec![DEFAULT_LISTEN.to_owned()],
            announce: Vec::new(),
            status_addr: DEFAULT_STATUS_ADDR.to_owned(),
            log: "info".to_owned(),
            sync_interval_secs: 60,
            heartbeat_ms: 1000,
            store_cache_mib: 16,
            canary_interval_secs: 6 * 3600,
            canary_grace_secs: 3600,
            canary_max_interval_secs: 7 * 24 * 3600,
            canary_statement: DEFAULT_CANARY_STATEMENT.to_owned(),
            vouch_threshold: 2,
            confirm_threshold: 2,
            member_messages_per_minute: 120,
            statements_per_signer: 64,
            member_kib_per_minute: 2048,
            member_stored_mib: 64,
            collective: None,
            admin_addr: None,
            metrics_addr: None,
            notify: crate::notify::config::FileNotify::default(),
            network: crate::tor::Network::default(),
            tor: None,
        }
    }
}

/// Default canary statement.
pub const DEFAULT_CANARY_STATEMENT: &str = "We have received no warrant, subpoena, gag order or other legal demand, our servers have not been raided or seized, and we are not under duress.";

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub data_dir: PathBuf,
    pub federation: String,
    pub listen: Vec<Multiaddr>,
    pub announce: Vec<Multiaddr>,
    pub status_addr: StatusAddr,
    pub log: String,
    pub sync_interval: Duration,
    pub heartbeat: Duration,
    pub store_cache_bytes: u64,
    pub canary_interval: Duration,
    pub canary_grace: Duration,
    pub canary_max_interval: Duration,
    pub canary_statement: String,
    pub vouch_threshold: usize,
    pub confirm_threshold: usize,
    pub member_messages_per_minute: u32,
    pub statements_per_signer: usize,
    pub member_bytes_per_minute: u64,
    pub member_stored_bytes: u64,
    pub collective: Option<String>,
    /// The admin page's address, always loopback; none: no admin page.
    pub admin_addr: Option<SocketAddr>,
    /// The `/metrics` endpoint's address; none: off.
    pub metrics_addr: Option<SocketAddr>,
    /// Notification channels and their rules.
    pub notify: crate::notify::config::NotifyConfig,
    /// Tor; none: a clearnet node that neither dials nor is an onion service.
    pub tor: Option<crate::tor::TorSettings>,
    /// The node's p2p onion address, announced beside `announce`. Not a config key: the
    /// daemon sets it from the onion service's key.
    pub onion_announce: Option<Multiaddr>,
    /// Milliseconds added to the host clock. Not a config key: always 0 in a real node;
    /// tests set it to run a node whose clock is off.
    pub clock_offset_ms: i64,
    /// `solidarity node --fresh-chain`: sign even though the store holds less of this
    /// node's chain than it had signed (see [`crate::daemon::own_chain`]). Not a config key.
    pub fresh_chain: bool,
}

impl NodeConfig {
    /// Reads and validates `DATA/config.toml` (`/etc/solidarity/config.toml` for a
    /// system node without its own, see [`crate::locations::config_path`]).
    pub fn load(data_dir: &Path) -> anyhow::Result<Self> {
        let path = crate::locations::config_path(data_dir);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let file: FileConfig =
            toml::from_str(&text).with_context(|| format!("invalid config {}", path.display()))?;
        Self::validate(data_dir, file).with_context(|| format!("invalid config {}", path.display()))
    }

    pub(crate) fn validate(data_dir: &Path, file: FileConfig) -> anyhow::Result<Self> {
        if file.federation.trim().is_empty() {
            bail!("`federation` must not be empty");
        }
        if file.statements_per_signer == 0 {
            bail!("`statements_per_signer` must be at least 1");
        }
        if file.confirm_threshold == 0 {
            bail!("`confirm_threshold` must be at least 1");
        }
        let parse_addresses = |field: &str, list: &[String]| -> anyhow::Result<Vec<Multiaddr>> {
            list.iter()
                .map(|text| {
                    text.parse()
                        .with_context(|| format!("`{field}`: {text:?} is not a multiaddr"))
                })
                .collect()
        };
        let listen = parse_addresses("listen", &file.listen)?;
        if listen.is_empty() {
            bail!("`listen` needs at least one address");
        }
        if file.sync_interval_secs == 0 || file.heartbeat_ms == 0 || file.canary_interval_secs == 0
        {
            bail!(
                "`sync_interval_secs`, `heartbeat_ms` and `canary_interval_secs` must be positive"
            );
        }
        if file.canary_interval_secs > file.canary_max_interval_secs {
            bail!(
                "`canary_interval_secs` ({}) exceeds `canary_max_interval_secs` ({}): members would count this node silent between its canaries",
                file.canary_interval_secs,
                file.canary_max_interval_secs
            );
        }
        let admin_addr = file
            .admin_addr
            .as_deref()
            .map(parse_admin_addr)
            .transpose()?;
        let config_dir = crate::locations::config_path(data_dir)
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| data_dir.to_owned());
        let notify = crate::notify::config::NotifyConfig::validate(file.notify, &config_dir)?;
        let tor = crate::tor::TorSettings::validate(file.network, file.tor, &config_dir)?;
        let announce = parse_addresses("announce", &file.announce)?;
        let status_addr = StatusAddr::parse(&file.status_addr)
            .with_context(|| format!("`status_addr`: {:?}", file.status_addr))?;
        if tor.as_ref().is_some_and(|tor| tor.only) {
            check_tor_only(&listen, &announce, &status_addr)?;
            if let Some(name) = notify.channel_off_this_machine() {
                bail!(
                    "notify channel {name:?} sends to another machine directly, and `network = \"tor-only\"` connects to nothing but through tor: use a mail server or webhook receiver on this machine (localhost) that itself relays only through tor, or an exec channel"
                );
            }
            if let Some(address) = file
                .metrics_addr
                .as_deref()
                .and_then(|text| text.parse::<SocketAddr>().ok())
                .filter(|address| !address.ip().is_loopback())
            {
                bail!(
                    "`metrics_addr`: {address} is not a loopback address, and `network = \"tor-only\"` puts nothing on clearnet"
                );
            }
        }
        let metrics_addr = file
            .metrics_addr
            .as_deref()
            .map(|text| {
                text.parse::<SocketAddr>()
                    .with_context(|| format!("`metrics_addr`: {text:?} is not HOST:PORT"))
            })
            .transpose()?;
        Ok(Self {
            data_dir: data_dir.to_owned(),
            federation: file.federation,
            listen,
            announce,
            status_addr,
            log: file.log,
            sync_interval: Duration::from_secs(file.sync_interval_secs),
            heartbeat: Duration::from_millis(file.heartbeat_ms),
            store_cache_bytes: file.store_cache_mib.saturating_mul(1024 * 1024),
            canary_interval: Duration::from_secs(file.canary_interval_secs),
            canary_grace: Duration::from_secs(file.canary_grace_secs),
            canary_max_interval: Duration::from_secs(file.canary_max_interval_secs),
            canary_statement: file.canary_statement,
            vouch_threshold: file.vouch_threshold,
            confirm_threshold: file.confirm_threshold,
            member_messages_per_minute: file.member_messages_per_minute,
            statements_per_signer: file.statements_per_signer,
            member_bytes_per_minute: file.member_kib_per_minute.saturating_mul(1024),
            member_stored_bytes: file.member_stored_mib.saturating_mul(1024 * 1024),
            collective: file.collective,
            admin_addr,
            metrics_addr,
            notify,
            tor,
            onion_announce: None,
            clock_offset_ms: 0,
            fresh_chain: false,
        })
    }
}

impl NodeConfig {
    /// What the card carries and identify tells members: `announce`, and the onion
    /// address when the node has an onion service.
    pub fn advertised(&self) -> Vec<Multiaddr> {
        let mut addresses = self.announce.clone();
        addresses.extend(self.onion_announce.clone());
        addresses
    }
}

/// `network = "tor-only"`: nothing of this server on clearnet. Listeners on loopback (tor
/// forwards to them), only onion addresses announced, the status page on loopback or a
/// Unix socket.
fn check_tor_only(
    listen: &[Multiaddr],
    announce: &[Multiaddr],
    status_addr: &StatusAddr,
) -> anyhow::Result<()> {
    if let Some(address) = listen.iter().find(|address| !is_loopback_listener(address)) {
        bail!(
            "`listen`: {address} is not a loopback TCP address, and `network = \"tor-only\"` listens on loopback only (tor forwards the onion service there): use listen = [\"/ip4/127.0.0.1/tcp/7447\"]"
        );
    }
    if let Some(address) = announce
        .iter()
        .find(|address| !crate::tor::is_onion_only(address))
    {
        bail!(
            "`announce`: {address} is not an onion address, and `network = \"tor-only\"` announces only its onion address (which the node adds itself): remove it"
        );
    }
    if let StatusAddr::Tcp(address) = status_addr
        && !address.ip().is_loopback()
    {
        bail!(
            "`status_addr`: {address} is not a loopback address, and `network = \"tor-only\"` puts nothing on clearnet: publish the page with `status_onion = true` under [tor]"
        );
    }
    Ok(())
}

/// Whether an address is exactly `/ip4|ip6/LOOPBACK/tcp/PORT`.
fn is_loopback_listener(address: &Multiaddr) -> bool {
    use libp2p::multiaddr::Protocol;
    let protocols: Vec<Protocol> = address.iter().collect();
    match protocols.as_slice() {
        [Protocol::Ip4(ip), Protocol::Tcp(_)] => ip.is_loopback(),
        [Protocol::Ip6(ip), Protocol::Tcp(_)] => ip.is_loopback(),
        _ => false,
    }
}

/// Where the status page listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusAddr {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix socket, created mode 0660 in a directory only this daemon's user may write,
    /// so no other local user can take the page's address.
    Unix(PathBuf),
}

impl StatusAddr {
    /// Prefix of a Unix-socket `status_addr`.
    pub const UNIX_PREFIX: &str = "unix:";

    /// `HOST:PORT` or `unix:/absolute/path`.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        if let Some(path) = text.strip_prefix(Self::UNIX_PREFIX) {
            let path = PathBuf::from(path);
            if !path.is_absolute() || path.file_name().is_none() {
                bail!(
                    "a Unix socket needs an absolute path, e.g. unix:/run/solidarity/status.sock"
                );
            }
            return Ok(Self::Unix(path));
        }
        text.parse()
            .map(Self::Tcp)
            .with_context(|| "is neither HOST:PORT nor unix:/absolute/path")
    }
}

impl std::fmt::Display for StatusAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp(address) => write!(f, "{address}"),
            Self::Unix(path) => write!(f, "{}{}", Self::UNIX_PREFIX, path.display()),
        }
    }
}

/// `admin_addr`: HOST:PORT on loopback, nothing else.
fn parse_admin_addr(text: &str) -> anyhow::Result<SocketAddr> {
    let address: SocketAddr = text
        .parse()
        .with_context(|| format!("`admin_addr`: {text:?} is not HOST:PORT"))?;
    if !address.ip().is_loopback() {
        bail!(
            "`admin_addr`: {address} is not a loopback address; the admin page shows duress and must stay on this machine (use 127.0.0.1 or [::1], and an SSH tunnel from elsewhere)"
        );
    }
    Ok(address)
}

/// The commented config file `solidarity init` writes.
pub fn render_config_file(
    federation: &str,
    listen: &[String],
    announce: &[String],
    status_addr: &str,
    network: crate::tor::Network,
) -> String {
    let network = match network {
        crate::tor::Network::Clearnet => "clearnet",
        crate::tor::Network::TorOnly => "tor-only",
    };
    let quoted = |list: &[String]| {
        list.iter()
            .map(|address| format!("{address:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let listen = quoted(listen);
    let announce = quoted(announce);
    format!(
        r#"# solidarity node configuration. Every key is optional; the value shown is the default
# unless `solidarity init` was given another. Unknown keys are an error.

# Federation name. Every member of one federation uses the same name; it scopes
# signatures, gossip topics and sync.
federation = {federation:?}

# libp2p addresses to listen on (multiaddr). Port 0 picks a free port at each start;
# `solidarity status` shows the bound ports.
listen = [{listen}]

# Addresses other members dial: printed on this node's member card (`solidarity id`)
# and the only addresses told to connected members. Set it to this server's public
# address or DNS name, e.g. ["/dns4/node.example.org/tcp/7447"] or
# ["/ip4/203.0.113.7/tcp/7447"]. A TCP port 0 stands for the port actually bound.
# Empty: the public addresses the daemon is bound to (never loopback or private ones).
announce = [{announce}]

# "clearnet": members dial this node over TCP. "tor-only": every connection goes through
# tor, the node is reachable only as an onion service it creates itself over tor's control
# port (Debian's tor needs no change, only the group debian-tor for this daemon, which
# deploy/solidarity-tor.conf gives the systemd unit),
# listens on loopback only, announces only its onion address, and connects to nobody while
# tor is down. See the README, "Running over Tor".
network = "{network}"

# Status page (HTML, JSON, Atom). Loopback by default: put it behind your web server or
# an onion service rather than exposing it directly. Port 0 picks a free port.
# "unix:/run/solidarity/status.sock" serves it on a Unix socket instead (mode 0660, in a
# directory only this daemon's user may write), which no other local user can take over.
status_addr = {status_addr:?}

# Log filter, tracing-subscriber syntax ("info", "debug", "solidarity=debug,info").
# RUST_LOG overrides it. Addresses are never logged at info.
log = "info"

# Seconds between catch-up syncs with a random connected member (also run on every
# new connection).
sync_interval_secs = 60

# Gossipsub heartbeat in milliseconds.
heartbeat_ms = 1000

# Cap of the store's page cache, MiB.
store_cache_mib = 16

# Warrant canary (dead-man's switch). This node signs a canary every interval; members
# whose canary is overdue by more than the grace period show as silent everywhere.
# Withdraw a code with `solidarity canary publish --withdraw CODE`.
canary_interval_secs = 21600
canary_grace_secs = 3600
# A member's canary announcing a longer interval than this counts as due after it.
# At least canary_interval_secs (this node's own interval), or the node does not start.
canary_max_interval_secs = 604800
canary_statement = "We have received no warrant, subpoena, gag order or other legal demand, our servers have not been raided or seized, and we are not under duress."

# Membership by vouching: trust a key your admin did not add once this many trusted
# members vouch for it (`solidarity member vouch`). 0 disables.
vouch_threshold = 2

# A seizure, raid or key-compromise alert shows as confirmed once this many other
# collectives endorse it (`solidarity alert endorse`).
confirm_threshold = 2

# Budgets per member (per signing key), on gossip and sync alike: messages and KiB it may
# get in per minute, and MiB this node stores of it. More is ignored (not stored, not
# relayed) so that a flooding or seized key cannot swamp the federation or fill the disk;
# the member shows as over budget in `solidarity member list` and on the admin page.
# Revocations are never held back. 0: no limit.
member_messages_per_minute = 120
member_kib_per_minute = 2048
member_stored_mib = 64

# Most revocations, and most certificates, this node keeps per signer; statements that
# cannot change trust here are relayed, not kept. A key's first revocation is always kept.
# At least 1.
statements_per_signer = 64

# The collective this node belongs to, when your collective runs several nodes (the name
# the other members give with `member add --collective`). Unset by default.
# collective = "riseup"

# Admin page: everything this node knows (members, canaries including duress, key states,
# certificates), behind a secret token the daemon keeps in DATA/admin.token (0600).
# Loopback only; `solidarity status` prints its URL. Unset by default: no admin page.
# admin_addr = "127.0.0.1:7449"

# Prometheus endpoint (`GET /metrics`): counters and gauges of this node, libp2p's and the
# notification outbox's; never an address or a key. Unset by default: off. Keep it on
# loopback (scrape through an SSH tunnel or a local Prometheus); another address is
# accepted with a warning at start, since traffic figures tell an observer when things
# happen.
# metrics_addr = "127.0.0.1:9477"

# Tor. Uncomment [tor] on a clearnet node to dial onion-only members through tor (and,
# with onion_service = true, to be an onion service too); with tor-only these are the
# defaults.
# [tor]
# socks = "unix:/run/tor/socks"     # or "127.0.0.1:9050"
# control = "unix:/run/tor/control"  # or "127.0.0.1:9051"
# control_cookie_file = "/run/tor/control.authcookie"  # tor's CookieAuthFile; needed with a TCP control port
# control_password_file = "/etc/solidarity/tor-control.password"  # Unix control socket only; else the cookie
# onion_service = true               # default: true with tor-only, false with clearnet
# onion_port = 7447                  # the port on the onion address
# status_onion = false               # publish the status page as an onion service too

# Notifications: mail (optionally OpenPGP-encrypted), webhooks and local programs, sent
# from a durable outbox in DATA/outbox (`solidarity notify test|status|list`). Secrets are
# read from files that other users cannot read. Canary and duress notices go only to
# channels with `private = true`; a private mail channel must be encrypted.
# [notify]
# news_within_secs = 86400          # older events learned by sync are not news
# give_up_after_secs = 259200       # undelivered this long: given up, shown in `notify status`
# member_unreachable_secs = 86400   # a member not connected this long is a notice; 0: never
#
# [[notify.mail]]
# name = "admins"
# server = "smtp.example.org"
# tls = "starttls"                  # or "implicit" (port 465), "none" (localhost only)
# username = "solidarity@example.org"
# password_file = "/etc/solidarity/smtp.password"
# from = "solidarity <solidarity@example.org>"
# to = ["admins@example.org"]
# encrypt_to = ["/etc/solidarity/admins.asc"]   # armoured OpenPGP public keys
# private = true
# min_severity = "medium"           # info, low, medium, high, critical
# settle_secs = 60                  # fold notices arriving within this into one mail
# max_per_hour = 30
#
# [[notify.webhook]]
# name = "chat"
# url = "https://hooks.example.org/solidarity"
# secret_file = "/etc/solidarity/webhook.secret"   # HMAC-SHA256 key, X-Solidarity-Signature-256
# types = ["alert", "alert_update", "revocation", "fork"]
#
# [[notify.exec]]
# name = "pager"
# command = ["/usr/local/bin/page-admins", "--urgent"]   # no shell; notice JSON on stdin
# kinds = ["seizure", "raid"]
# timeout_secs = 30
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rendered_file_parses_to_the_defaults() {
        let text = render_config_file(
            DEFAULT_FEDERATION,
            &[DEFAULT_LISTEN.into()],
            &[],
            DEFAULT_STATUS_ADDR,
            crate::tor::Network::Clearnet,
        );
        let file: FileConfig = toml::from_str(&text).expect("parses");
        let config = NodeConfig::validate(Path::new("/tmp/x"), file).expect("valid");
        assert_eq!(config.federation, DEFAULT_FEDERATION);
        assert_eq!(config.sync_interval, Duration::from_secs(60));
    }

    #[test]
    fn the_example_config_in_deploy_is_what_init_writes() {
        let example = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config.example.toml"),
        )
        .expect("deploy/config.example.toml");
        let rendered = render_config_file(
            DEFAULT_FEDERATION,
            &[DEFAULT_LISTEN.into()],
            &[],
            DEFAULT_STATUS_ADDR,
            crate::tor::Network::Clearnet,
        );
        assert_eq!(
            example, rendered,
            "regenerate deploy/config.example.toml with `solidarity init`"
        );
    }

    #[test]
    fn the_commented_tor_example_parses_once_uncommented() {
        let text = render_config_file(
            DEFAULT_FEDERATION,
            &["/ip4/127.0.0.1/tcp/7447".into()],
            &[],
            DEFAULT_STATUS_ADDR,
            crate::tor::Network::TorOnly,
        );
        let start = text.find("# [tor]").expect("a tor example");
        let end = text.find("# Notifications").expect("notify follows");
        let uncommented: String = text[start..end]
            .lines()
            .filter_map(|line| line.strip_prefix("# ").or(line.strip_prefix('#')))
            .collect::<Vec<_>>()
            .join("\n");
        let head = &text[..text.find("# Tor. Uncomment").expect("tor comment")];
        let file: FileConfig =
            toml::from_str(&format!("{head}\n{uncommented}")).expect("the example parses");
        assert_eq!(file.network, crate::tor::Network::TorOnly);
        assert_eq!(file.tor.as_ref().map(|tor| tor.onion_port), Some(7447));
    }

    #[test]
    fn tor_only_puts_nothing_on_clearnet() {
        let validate = |text: &str| {
            let file: FileConfig = toml::from_str(text).expect("parses");
            NodeConfig::validate(Path::new("/tmp/x"), file)
        };
        let good = "network = \"tor-only\"\nlisten = [\"/ip4/127.0.0.1/tcp/7447\"]\n";
        let config = validate(good).expect("valid");
        assert!(
            config
                .tor
                .as_ref()
                .is_some_and(|tor| tor.only && tor.onion_service)
        );
        for (bad, key) in [
            ("network = \"tor-only\"", "`listen`"),
            (
                "network = \"tor-only\"\nlisten = [\"/ip4/127.0.0.1/tcp/7447\"]\nannounce = [\"/dns4/node.example.org/tcp/7447\"]",
                "`announce`",
            ),
            (
                "network = \"tor-only\"\nlisten = [\"/ip4/127.0.0.1/tcp/7447\"]\nstatus_addr = \"0.0.0.0:80\"",
                "`status_addr`",
            ),
        ] {
            let error = validate(bad).expect_err(bad);
            assert!(format!("{error:#}").contains(key), "{error:#}");
        }
        assert!(toml::from_str::<FileConfig>("network = \"tor\"").is_err());
    }

    #[test]
    fn the_commented_notify_example_parses_once_uncommented() {
        let text = render_config_file(
            DEFAULT_FEDERATION,
            &[DEFAULT_LISTEN.into()],
            &[],
            DEFAULT_STATUS_ADDR,
            crate::tor::Network::Clearnet,
        );
        let start = text.find("# [notify]").expect("a notify example");
        let example: String = text[start..]
            .lines()
            .filter_map(|line| line.strip_prefix("# ").or(line.strip_prefix('#')))
            .collect::<Vec<_>>()
            .join("\n");
        let file: FileConfig = toml::from_str(&example).expect("the example parses");
        assert_eq!(file.notify.mail.len(), 1);
        assert_eq!(file.notify.webhook.len(), 1);
        assert_eq!(file.notify.exec.len(), 1);
        assert!(file.notify.mail[0].private);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(toml::from_str::<FileConfig>("federaton = \"x\"").is_err());
        let file: FileConfig = toml::from_str("listen = [\"not an address\"]").expect("parses");
        let error = NodeConfig::validate(Path::new("/tmp/x"), file).expect_err("invalid");
        assert!(error.to_string().contains("listen"), "{error}");
    }

    #[test]
    fn the_status_page_listens_on_tcp_or_an_absolute_unix_socket() {
        let validate = |text: &str| {
            let file: FileConfig = toml::from_str(text).expect("parses");
            NodeConfig::validate(Path::new("/tmp/x"), file)
        };
        let config = validate("status_addr = \"unix:/run/solidarity/status.sock\"").expect("unix");
        assert_eq!(
            config.status_addr,
            StatusAddr::Unix(PathBuf::from("/run/solidarity/status.sock"))
        );
        assert_eq!(
            config.status_addr.to_string(),
            "unix:/run/solidarity/status.sock"
        );
        let config = validate("").expect("default");
        assert_eq!(config.status_addr.to_string(), DEFAULT_STATUS_ADDR);
        for bad in ["unix:status.sock", "unix:", "unix:/", "localhost"] {
            let error = validate(&format!("status_addr = {bad:?}")).expect_err(bad);
            assert!(format!("{error:#}").contains("status_addr"), "{error:#}");
        }
    }

    #[test]
    fn the_admin_page_is_off_by_default_and_loopback_only() {
        let validate = |text: &str| {
            let file: FileConfig = toml::from_str(text).expect("parses");
            NodeConfig::validate(Path::new("/tmp/x"), file)
        };
        assert_eq!(validate("").expect("valid").admin_addr, None);
        for good in ["127.0.0.1:7449", "[::1]:0", "127.0.0.2:80"] {
            let config = validate(&format!("admin_addr = {good:?}")).expect("valid");
            assert_eq!(config.admin_addr, Some(good.parse().expect("addr")));
        }
        for bad in ["0.0.0.0:7449", "192.0.2.1:80", "[::]:7449"] {
            let error = validate(&format!("admin_addr = {bad:?}")).expect_err(bad);
            assert!(
                error.to_string().contains("not a loopback address"),
                "{error}"
            );
        }
        let error = validate("admin_addr = \"localhost\"").expect_err("no port");
        assert!(error.to_string().contains("HOST:PORT"), "{error}");
    }
}
