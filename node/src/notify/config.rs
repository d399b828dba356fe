//! The `[notify]` table of `config.toml`: the file layer ([`FileNotify`], unknown keys refused)
//! and the validated [`NotifyConfig`] with secrets and keys read from their files.
//!
//! Channels are arrays of tables, `[[notify.mail]]`, `[[notify.webhook]]` and
//! `[[notify.exec]]`, all read into one [`FileChannel`]: a key that exists but does not apply to
//! the channel's type (a `url` on a mail channel) is refused by name when validated.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use super::doc::{NoticeType, Severity};

/// Default: alerts raised longer ago than this, learned by sync, are not news.
pub const DEFAULT_NEWS_WITHIN_SECS: u64 = 24 * 3600;
/// Default: a notice undelivered for this long is given up (and shown in `notify status`).
pub const DEFAULT_GIVE_UP_AFTER_SECS: u64 = 3 * 24 * 3600;
/// Default: a member not connected for this long is a notice.
pub const DEFAULT_MEMBER_UNREACHABLE_SECS: u64 = 24 * 3600;
/// Default settle delay: notices arriving within it go out as one message.
pub const DEFAULT_SETTLE_SECS: u64 = 60;
/// Default rate limit of a channel, messages per hour.
pub const DEFAULT_MAX_PER_HOUR: u32 = 30;
/// Default time one send may take before it counts as failed.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
/// Most channels of all types together (each has a queue and a task).
pub const MAX_CHANNELS: usize = 32;

/// `[notify]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileNotify {
    /// Alerts raised longer ago than this many seconds, when this node learns them (a
    /// member back from offline, a sync), are not news. Default 86400.
    pub news_within_secs: u64,
    /// Seconds a notice may stay undelivered on a channel before it is given up. Default
    /// 259200 (3 days).
    pub give_up_after_secs: u64,
    /// A member not connected for this many seconds is a notice. Default 86400; 0: never.
    pub member_unreachable_secs: u64,
    /// Mail channels.
    pub mail: Vec<FileChannel>,
    /// Webhook channels.
    pub webhook: Vec<FileChannel>,
    /// Exec channels.
    pub exec: Vec<FileChannel>,
}

impl Default for FileNotify {
    fn default() -> Self {
        Self {
            news_within_secs: DEFAULT_NEWS_WITHIN_SECS,
            give_up_after_secs: DEFAULT_GIVE_UP_AFTER_SECS,
            member_unreachable_secs: DEFAULT_MEMBER_UNREACHABLE_SECS,
            mail: Vec::new(),
            webhook: Vec::new(),
            exec: Vec::new(),
        }
    }
}

/// One channel as written; which keys apply depends on its table (see the module doc).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileChannel {
    /// Unique among all channels; `notify test NAME`, metrics and `notify status` use it.
    pub name: String,
    /// May carry canary and duress notices. A mail channel must then be encrypted.
    #[serde(default)]
    pub private: bool,
    /// Notice types sent (see `NoticeType`). Default: every type the channel may carry.
    pub types: Option<Vec<NoticeType>>,
    /// Least severity sent. Default `info`.
    pub min_severity: Option<Severity>,
    /// Alert categories sent (`seizure`, `raid`, …); other notices are not filtered by it.
    /// Default: all.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Jurisdictions (ISO codes) of alerts sent; other notices are not filtered by it.
    /// Default: all.
    #[serde(default)]
    pub jurisdictions: Vec<String>,
    /// Member names (as in `member list`) whose notices are sent. Default: all.
    #[serde(default)]
    pub members: Vec<String>,
    /// Seconds to wait for more notices before sending. Default 60.
    pub settle_secs: Option<u64>,
    /// Most messages per hour; notices beyond wait. Default 30; 0: no limit.
    pub max_per_hour: Option<u32>,
    /// Seconds one attempt may take. Default 30.
    pub timeout_secs: Option<u64>,
    /// PEM file of extra CA certificates trusted for this channel's TLS (a private CA).
    pub ca_file: Option<PathBuf>,

    /// Mail: SMTP server host name.
    pub server: Option<String>,
    /// Mail: port. Default 465 for `implicit`, 587 for `starttls`, 25 for `none`.
    pub port: Option<u16>,
    /// Mail: `starttls` (default), `implicit` or `none` (loopback servers only).
    pub tls: Option<MailTls>,
    /// Mail: AUTH user name.
    pub username: Option<String>,
    /// Mail: file holding the AUTH password (not readable by others).
    pub password_file: Option<PathBuf>,
    /// Mail: the From address.
    pub from: Option<String>,
    /// Mail: recipients.
    #[serde(default)]
    pub to: Vec<String>,
    /// Mail: ASCII-armoured OpenPGP public key files; set, the channel is encrypted to all
    /// of them and never sends plain text.
    #[serde(default)]
    pub encrypt_to: Vec<PathBuf>,
    /// Mail: ASCII-armoured OpenPGP secret key (without passphrase) that signs the mail.
    pub sign_key_file: Option<PathBuf>,

    /// Webhook: `https://…` (or `http://` to a loopback address).
    pub url: Option<String>,
    /// Webhook: file holding the HMAC-SHA256 secret (not readable by others).
    pub secret_file: Option<PathBuf>,

    /// Exec: program and arguments, run without a shell.
    pub command: Option<Vec<String>>,
}

/// How a mail channel speaks TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailTls {
    /// Plain connection upgraded with STARTTLS (port 587); refused if the server cannot.
    Starttls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No TLS: only to a loopback server (a local MTA).
    None,
}

/// The validated `[notify]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifyConfig {
    /// See [`FileNotify::news_within_secs`].
    pub news_within: Duration,
    /// See [`FileNotify::give_up_after_secs`].
    pub give_up_after: Duration,
    /// See [`FileNotify::member_unreachable_secs`]; none: never.
    pub member_unreachable: Option<Duration>,
    /// Every channel, names unique.
    pub channels: Vec<ChannelConfig>,
}

/// One validated channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelConfig {
    /// Unique name.
    pub name: String,
    /// May carry private notices.
    pub private: bool,
    /// Which notices it carries.
    pub filter: Filter,
    /// Wait for more notices this long before sending.
    pub settle: Duration,
    /// Most messages per hour; none: no limit.
    pub max_per_hour: Option<u32>,
    /// One attempt's deadline.
    pub timeout: Duration,
    /// Where it sends.
    pub target: Target,
}

/// Which notices a channel carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// Types sent (already without private types on a channel that is not private).
    pub types: Vec<NoticeType>,
    /// Least severity.
    pub min_severity: Severity,
    /// Alert categories; empty: all.
    pub kinds: Vec<String>,
    /// Jurisdictions; empty: all.
    pub jurisdictions: Vec<String>,
    /// Member names; empty: all.
    pub members: Vec<String>,
}

/// A channel's destination, with its secrets read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// SMTP submission.
    Mail(MailTarget),
    /// HTTP POST.
    Webhook(WebhookTarget),
    /// A local program.
    Exec(ExecTarget),
}

impl Target {
    /// `mail`, `webhook` or `exec`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Mail(_) => "mail",
            Self::Webhook(_) => "webhook",
            Self::Exec(_) => "exec",
        }
    }
}

/// A mail channel's destination.
#[derive(Clone, PartialEq, Eq)]
pub struct MailTarget {
    /// SMTP host.
    pub server: String,
    /// SMTP port.
    pub port: u16,
    /// TLS mode.
    pub tls: MailTls,
    /// AUTH user and password.
    pub credentials: Option<(String, String)>,
    /// From address.
    pub from: String,
    /// Recipients, at least one.
    pub to: Vec<String>,
    /// Armoured public keys; non-empty: encrypted channel.
    pub encrypt_to: Vec<String>,
    /// Armoured secret signing key.
    pub sign_key: Option<String>,
    /// Extra CA certificates (PEM).
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for MailTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailTarget")
            .field("server", &self.server)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("recipients", &self.to.len())
            .field("encrypted", &!self.encrypt_to.is_empty())
            .finish_non_exhaustive()
    }
}

impl MailTarget {
    /// Mail is encrypted to every key in `encrypt_to`, never sent in plain text.
    pub fn encrypted(&self) -> bool {
        !self.encrypt_to.is_empty()
    }
}

/// A webhook channel's destination.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// The URL.
    pub url: String,
    /// The HMAC-SHA256 key.
    pub secret: Vec<u8>,
    /// Extra CA certificates (PEM).
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTarget").finish_non_exhaustive()
    }
}

/// An exec channel's program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecTarget {
    /// Program, then arguments.
    pub command: Vec<String>,
}

impl NotifyConfig {
    /// Validates `file`, reading secrets and keys (relative paths from `config_dir`).
    pub fn validate(file: FileNotify, config_dir: &Path) -> anyhow::Result<Self> {
        let mut channels = Vec::new();
        let tables = [
            ("mail", file.mail),
            ("webhook", file.webhook),
            ("exec", file.exec),
        ];
        for (table, list) in tables {
            for channel in list {
                let name = channel.name.clone();
                let validated = validate_channel(table, channel, config_dir)
                    .with_context(|| format!("[[notify.{table}]] {name:?}"))?;
                channels.push(validated);
            }
        }
        if channels.len() > MAX_CHANNELS {
            bail!("[notify]: at most {MAX_CHANNELS} channels");
        }
        let mut names: Vec<&str> = channels.iter().map(|channel| &*channel.name).collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
            bail!("[notify]: two channels are named {:?}", pair[0]);
        }
        if file.give_up_after_secs == 0 {
            bail!("[notify] `give_up_after_secs` must be positive");
        }
        Ok(Self {
            news_within: Duration::from_secs(file.news_within_secs),
            give_up_after: Duration::from_secs(file.give_up_after_secs),
            member_unreachable: (file.member_unreachable_secs > 0)
                .then(|| Duration::from_secs(file.member_unreachable_secs)),
            channels,
        })
    }
}

/// Keys only one channel type has, with that type.
const TYPE_KEYS: &[(&str, &str)] = &[
    ("server", "mail"),
    ("port", "mail"),
    ("tls", "mail"),
    ("username", "mail"),
    ("password_file", "mail"),
    ("from", "mail"),
    ("to", "mail"),
    ("encrypt_to", "mail"),
    ("sign_key_file", "mail"),
    ("url", "webhook"),
    ("secret_file", "webhook"),
    ("command", "exec"),
];

fn present_keys(channel: &FileChannel) -> Vec<&'static str> {
    let present = [
        ("server", channel.server.is_some()),
        ("port", channel.port.is_some()),
        ("tls", channel.tls.is_some()),
        ("username", channel.username.is_some()),
        ("password_file", channel.password_file.is_some()),
        ("from", channel.from.is_some()),
        ("to", !channel.to.is_empty()),
        ("encrypt_to", !channel.encrypt_to.is_empty()),
        ("sign_key_file", channel.sign_key_file.is_some()),
        ("url", channel.url.is_some()),
        ("secret_file", channel.secret_file.is_some()),
        ("command", channel.command.is_some()),
    ];
    present
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect()
}

fn validate_channel(
    table: &str,
    channel: FileChannel,
    config_dir: &Path,
) -> anyhow::Result<ChannelConfig> {
    if channel.name.trim().is_empty()
        || channel.name.len() > 64
        || !channel
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("`name` must be 1 to 64 letters, digits, `-` or `_`");
    }
    for key in present_keys(&channel) {
        let owner = TYPE_KEYS
            .iter()
            .find_map(|(name, owner)| (*name == key).then_some(*owner));
        if owner != Some(table) {
            bail!(
                "`{key}` is not a key of a {table} channel (it belongs to [[notify.{}]])",
                owner.unwrap_or("?")
            );
        }
    }
    let read_secret = |key: &str, path: &Option<PathBuf>| -> anyhow::Result<Option<Vec<u8>>> {
        path.as_ref()
            .map(|path| read_protected(key, &resolve(config_dir, path)))
            .transpose()
    };
    let read_public = |path: &PathBuf| -> anyhow::Result<Vec<u8>> {
        let path = resolve(config_dir, path);
        std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
    };
    let ca_pem = channel.ca_file.as_ref().map(read_public).transpose()?;
    let target = match table {
        "mail" => {
            let server = channel
                .server
                .clone()
                .context("a mail channel needs `server`")?;
            let tls = channel.tls.unwrap_or(MailTls::Starttls);
            if tls == MailTls::None && !is_loopback_host(&server) {
                bail!(
                    "`tls = \"none\"` is only for a server on this machine (localhost, 127.0.0.1, ::1); {server:?} is not"
                );
            }
            let port = channel.port.unwrap_or(match tls {
                MailTls::Implicit => 465,
                MailTls::Starttls => 587,
                MailTls::None => 25,
            });
            let credentials = match (&channel.username, &channel.password_file) {
                (Some(user), Some(_)) => {
                    let password =
                        read_secret("password_file", &channel.password_file)?.unwrap_or_default();
                    let password = String::from_utf8(password)
                        .context("`password_file` is not UTF-8")?
                        .trim_end_matches(['\r', '\n'])
                        .to_owned();
                    Some((user.clone(), password))
                }
                (None, None) => None,
                _ => bail!("`username` and `password_file` go together"),
            };
            let from = channel
                .from
                .clone()
                .context("a mail channel needs `from`")?;
            if channel.to.is_empty() {
                bail!("a mail channel needs `to`, a list of recipients");
            }
            let encrypt_to = channel
                .encrypt_to
                .iter()
                .map(|path| {
                    String::from_utf8(read_public(path)?)
                        .with_context(|| format!("{} is not an ASCII-armoured key", path.display()))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            if channel.private && encrypt_to.is_empty() {
                bail!(
                    "a private mail channel must be encrypted (`encrypt_to`): canary and duress notices never travel in plain text"
                );
            }
            let sign_key = read_secret("sign_key_file", &channel.sign_key_file)?
                .map(|bytes| String::from_utf8(bytes).context("`sign_key_file` is not UTF-8"))
                .transpose()?;
            Target::Mail(MailTarget {
                server,
                port,
                tls,
                credentials,
                from,
                to: channel.to.clone(),
                encrypt_to,
                sign_key,
                ca_pem,
            })
        }
        "webhook" => {
            let url = channel.url.clone().context("a webhook needs `url`")?;
            if !url.starts_with("https://") && !is_loopback_url(&url) {
                bail!("`url` must be https:// (http:// only to a loopback address)");
            }
            let secret = read_secret("secret_file", &channel.secret_file)?
                .context("a webhook needs `secret_file` (the HMAC key)")?;
            let secret = trim_line_end(secret);
            if secret.len() < 16 {
                bail!("`secret_file` must hold at least 16 bytes");
            }
            Target::Webhook(WebhookTarget {
                url,
                secret,
                ca_pem,
            })
        }
        _ => {
            let command = channel
                .command
                .clone()
                .filter(|command| !command.is_empty())
                .context("an exec channel needs `command`, e.g. [\"/usr/local/bin/page\", \"--to\", \"admins\"]")?;
            if !Path::new(&command[0]).is_absolute() {
                bail!(
                    "`command` must start with an absolute path (it runs without a shell or PATH lookup)"
                );
            }
            Target::Exec(ExecTarget { command })
        }
    };
    let types = match &channel.types {
        Some(types) => {
            if let Some(private) = types.iter().find(|kind| kind.is_private())
                && !channel.private
            {
                bail!(
                    "`types` names {private:?}, which only a channel with `private = true` may carry"
                );
            }
            types.clone()
        }
        None => ALL_TYPES
            .iter()
            .copied()
            .filter(|kind| channel.private || !kind.is_private())
            .collect(),
    };
    Ok(ChannelConfig {
        name: channel.name,
        private: channel.private,
        filter: Filter {
            types,
            min_severity: channel.min_severity.unwrap_or(Severity::Info),
            kinds: channel.kinds,
            jurisdictions: channel
                .jurisdictions
                .iter()
                .map(|code| code.to_ascii_uppercase())
                .collect(),
            members: channel.members,
        },
        settle: Duration::from_secs(channel.settle_secs.unwrap_or(DEFAULT_SETTLE_SECS)),
        max_per_hour: match channel.max_per_hour.unwrap_or(DEFAULT_MAX_PER_HOUR) {
            0 => None,
            limit => Some(limit),
        },
        timeout: Duration::from_secs(channel.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS).max(1)),
        target,
    })
}

/// Every notice type, in the order of [`NoticeType`].
pub const ALL_TYPES: &[NoticeType] = &[
    NoticeType::Alert,
    NoticeType::AlertUpdate,
    NoticeType::AlertConfirmed,
    NoticeType::Endorsement,
    NoticeType::Dispute,
    NoticeType::Revocation,
    NoticeType::Fork,
    NoticeType::CanarySilent,
    NoticeType::CanaryChanged,
    NoticeType::CanaryOk,
    NoticeType::Duress,
    NoticeType::CertificateEnding,
    NoticeType::OfferNew,
    NoticeType::OfferWithdrawn,
    NoticeType::MemberUnreachable,
    NoticeType::SyncFailing,
    NoticeType::QuotaHit,
    NoticeType::Test,
];

pub(crate) fn resolve(config_dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        config_dir.join(path)
    }
}

/// Reads a secret file, refusing one that other users may read or anyone but its owner may
/// change (mode 0600 or 0640 with a group the daemon's user is in).
pub(crate) fn read_protected(key: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    let metadata = std::fs::metadata(path)
        .with_context(|| format!("`{key}`: cannot read {}", path.display()))?;
    if metadata.mode() & 0o027 != 0 {
        bail!(
            "`{key}`: {} is readable by other users or writable by its group (mode {:o}); run `chmod 600 {}`",
            path.display(),
            metadata.mode() & 0o777,
            path.display()
        );
    }
    std::fs::read(path).with_context(|| format!("`{key}`: cannot read {}", path.display()))
}

pub(crate) fn trim_line_end(mut bytes: Vec<u8>) -> Vec<u8> {
    while bytes
        .last()
        .is_some_and(|byte| *byte == b'\n' || *byte == b'\r')
    {
        bytes.pop();
    }
    bytes
}

impl NotifyConfig {
    /// The first mail or webhook channel whose far end is not on this machine (an
    /// onion-only node must not reach it directly: mail and webhooks do not go through tor).
    pub fn channel_off_this_machine(&self) -> Option<&str> {
        self.channels.iter().find_map(|channel| {
            let on_machine = match &channel.target {
                Target::Mail(mail) => is_loopback_host(&mail.server),
                Target::Webhook(webhook) => url_host_is_loopback(&webhook.url),
                Target::Exec(_) => true,
            };
            (!on_machine).then_some(channel.name.as_str())
        })
    }
}

fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An `http://` URL to this machine (plain HTTP is for loopback only).
fn is_loopback_url(url: &str) -> bool {
    url.starts_with("http://") && url_host_is_loopback(url)
}

/// Whether a URL's host, as the HTTP client reads it, is this machine.
fn url_host_is_loopback(url: &str) -> bool {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|url| url.host_str().map(is_loopback_host))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(text: &str) -> anyhow::Result<NotifyConfig> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Wrapper {
            notify: FileNotify,
        }
        let wrapper: Wrapper = toml::from_str(text)?;
        NotifyConfig::validate(wrapper.notify, Path::new("/nonexistent"))
    }

    #[test]
    fn keys_of_another_channel_type_are_refused_by_name() {
        let error = validate(
            "[[notify.exec]]\nname = \"x\"\ncommand = [\"/bin/true\"]\nurl = \"https://a\"\n",
        )
        .expect_err("url on exec");
        assert!(
            format!("{error:#}").contains("`url` is not a key of a exec channel"),
            "{error:#}"
        );
        assert!(validate("[[notify.exec]]\nname = \"x\"\ncomand = []\n").is_err());
    }

    #[test]
    fn private_types_need_a_private_channel_and_private_mail_needs_encryption() {
        let error = validate(
            "[[notify.exec]]\nname = \"x\"\ncommand = [\"/bin/true\"]\ntypes = [\"duress\"]\n",
        )
        .expect_err("duress on a public channel");
        assert!(format!("{error:#}").contains("private = true"), "{error:#}");
        let config =
            validate("[[notify.exec]]\nname = \"x\"\ncommand = [\"/bin/true\"]\n").expect("valid");
        assert!(
            !config.channels[0]
                .filter
                .types
                .contains(&NoticeType::Duress)
        );
        let error = validate(
            "[[notify.mail]]\nname = \"m\"\nprivate = true\nserver = \"localhost\"\nfrom = \"a@b\"\nto = [\"c@d\"]\n",
        )
        .expect_err("private plain mail");
        assert!(
            format!("{error:#}").contains("must be encrypted"),
            "{error:#}"
        );
    }

    #[test]
    fn plain_smtp_only_to_loopback_and_http_webhooks_only_to_loopback() {
        let error = validate(
            "[[notify.mail]]\nname = \"m\"\nserver = \"mail.example.org\"\ntls = \"none\"\nfrom = \"a@b\"\nto = [\"c@d\"]\n",
        )
        .expect_err("plain remote smtp");
        assert!(
            format!("{error:#}").contains("only for a server on this machine"),
            "{error:#}"
        );
        assert!(is_loopback_url("http://127.0.0.1:8080/hook"));
        assert!(is_loopback_url("http://[::1]:8080/hook"));
        assert!(!is_loopback_url("http://example.org/hook"));
        assert!(!is_loopback_url("http://127.0.0.1.example.org/hook"));
    }

    #[test]
    fn secret_files_readable_by_others_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret");
        std::fs::write(&path, "0123456789abcdef0123\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let error = read_protected("secret_file", &path).expect_err("0644");
        assert!(format!("{error:#}").contains("chmod 600"), "{error:#}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        assert!(read_protected("secret_file", &path).is_ok());
    }

    #[test]
    fn names_are_unique() {
        let error = validate(
            "[[notify.exec]]\nname = \"x\"\ncommand = [\"/bin/true\"]\n[[notify.exec]]\nname = \"x\"\ncommand = [\"/bin/true\"]\n",
        )
        .expect_err("twice");
        assert!(format!("{error:#}").contains("two channels"), "{error:#}");
    }
}
