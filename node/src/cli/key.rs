//! `solidarity key`: identity keys, certificates and revocations, made offline and
//! published from any member node.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use solidarity_control::request;
use solidarity_proto::MessageId;

use super::passphrase::{self, Purpose};
use super::{Names, load_node_key, parse_duration, print_json, statement_file};
use crate::config::{self, NodeConfig};
use crate::identity::Card;

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Create a collective's offline identity key, encrypted with a passphrase
    /// (Argon2id + XChaCha20-Poly1305). Do this on a machine that is not a server; give the
    /// printed public key to the other admins (`solidarity member add KEY --identity`).
    NewIdentity {
        /// Where to write it (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Read the passphrase (at least 12 characters) from the first line of FILE. Without
        /// it: asked twice on the terminal without echo, or the first line of standard input
        /// when that is not a terminal.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
    /// With the identity key, certify a node key for a limited time. Publish the
    /// certificate with `solidarity key publish` on any member node (the node itself, when
    /// renewing): members trusting the identity then trust the node key until it expires.
    Certify {
        /// The identity key file.
        #[arg(long, value_name = "FILE")]
        identity: PathBuf,
        /// The node's card or key (`solidarity id` on the node).
        #[arg(long, value_name = "CARD")]
        node_key: String,
        /// How long the certificate lasts: 30d, 12h or 90m (never is not offered). Short is
        /// safer: a seized node key stops being trusted by itself when its certificate ends.
        #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = parse_duration)]
        valid_for: std::time::Duration,
        /// The federation name. Default: this node's (from the config in the data dir if
        /// there is one, else the default federation); another name is refused unless
        /// --force.
        #[arg(long)]
        federation: Option<String>,
        /// Certify for a federation other than this node's.
        #[arg(long)]
        force: bool,
        /// Where to write the certificate (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Read the identity key's passphrase from the first line of FILE. Without it: asked
        /// on the terminal without echo, or the first line of standard input.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
    /// Publish a certificate or revocation made elsewhere, from this node.
    Publish {
        /// The certificate file.
        #[arg(long, value_name = "FILE")]
        cert: PathBuf,
    },
    /// Pre-generate a signed revocation of this node's key. Keep FILE off the server (on
    /// paper, on a friend's machine): if the server is seized, anyone can publish it with
    /// `solidarity key revoke` on any member node, and every member stops trusting the key.
    /// Works without the daemon.
    RevocationCert {
        /// Where to write it (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// One line saying why.
        #[arg(long, default_value = "server seized or key compromised")]
        reason: String,
        /// Messages from this time on are suspect (RFC 3339, e.g. 2026-11-28T06:00:00Z).
        /// Default: from the time the certificate is made, so a certificate made in
        /// advance marks everything signed since as suspect.
        #[arg(long, value_parser = humantime::parse_rfc3339_weak)]
        compromised_since: Option<std::time::SystemTime>,
        /// Sign with this collective identity key file instead of the node key: revokes
        /// the identity itself, or with `--key` one node key it certified.
        #[arg(long, value_name = "FILE")]
        identity: Option<PathBuf>,
        /// With `--identity`: the certified node key (or card) to revoke.
        #[arg(long, value_name = "CARD", requires = "identity")]
        key: Option<String>,
        /// With `--identity`: the federation name. Default: this node's (from the config
        /// if there is one, else the default federation); without `--identity`, always this
        /// node's.
        #[arg(long)]
        federation: Option<String>,
        /// With `--identity`: read the passphrase from FILE instead of standard input.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
    /// Publish a revocation certificate (of any member's key) from this node.
    Revoke {
        /// The certificate file.
        #[arg(long, value_name = "FILE")]
        cert: PathBuf,
    },
}

pub fn run_key(data_dir: &Path, command: KeyCommand, json: bool) -> anyhow::Result<()> {
    match command {
        KeyCommand::RevocationCert {
            out,
            reason,
            compromised_since,
            identity: identity_file,
            key,
            federation,
            passphrase_file,
        } => {
            let (signing_key, federation, revoked) = match identity_file {
                Some(identity_file) => {
                    let passphrase =
                        passphrase::read(Purpose::OpenIdentity, passphrase_file.as_deref())?;
                    let identity_key = crate::identity_key::open(&identity_file, &passphrase)?;
                    let revoked = key
                        .as_deref()
                        .map(|card| Card::parse(card).map(|card| card.key))
                        .transpose()?;
                    (
                        identity_key,
                        certify_federation(data_dir, federation, true)?,
                        revoked,
                    )
                }
                None => {
                    let node_key = load_node_key(data_dir)?;
                    (node_key, NodeConfig::load(data_dir)?.federation, None)
                }
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis() as u64;
            let since = compromised_since
                .map(|time| -> anyhow::Result<u64> {
                    Ok(time.duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64)
                })
                .transpose()?;
            let body = solidarity_proto::Body::Revocation(solidarity_proto::payload::Revocation {
                key: revoked,
                reason,
                compromised_since: since,
            });
            body.check().context("the revocation was not made")?;
            let id = write_statement(&signing_key, &federation, body, now, &out)?;
            if json {
                return print_json(&serde_json::json!({ "id": id, "file": out }));
            }
            println!("Revocation certificate written to {}.", out.display());
            println!(
                "Move it off this server now. To revoke the key: solidarity key revoke --cert FILE"
            );
            Ok(())
        }
        KeyCommand::NewIdentity {
            out,
            passphrase_file,
        } => {
            if out.exists() {
                bail!("{} already exists; nothing was written", out.display());
            }
            let passphrase = passphrase::read(Purpose::NewIdentity, passphrase_file.as_deref())?;
            let public = crate::identity_key::create(&out, &passphrase)?;
            if json {
                return print_json(&serde_json::json!({ "identity": public, "file": out }));
            }
            println!("{public}");
            eprintln!(
                "Identity key written to {} (encrypted). Keep it and its passphrase off your servers.",
                out.display()
            );
            Ok(())
        }
        KeyCommand::Certify {
            identity: identity_file,
            node_key,
            valid_for,
            federation,
            force,
            out,
            passphrase_file,
        } => {
            let federation = certify_federation(data_dir, federation, force)?;
            let card = Card::parse(&node_key)?;
            let passphrase = passphrase::read(Purpose::OpenIdentity, passphrase_file.as_deref())?;
            let identity_key = crate::identity_key::open(&identity_file, &passphrase)?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis() as u64;
            let body = solidarity_proto::Body::NodeCert(solidarity_proto::payload::NodeCert {
                node_key: card.key,
                valid_from: now,
                valid_until: now.saturating_add(valid_for.as_millis() as u64),
                addresses: card.addresses.iter().map(ToString::to_string).collect(),
            });
            body.check().context("the certificate was not made")?;
            write_statement(&identity_key, &federation, body, now, &out)?;
            println!(
                "Certificate for {} written to {}; publish it with `solidarity key publish --cert FILE`.",
                card.key.short(),
                out.display()
            );
            Ok(())
        }
        KeyCommand::Publish { cert } => publish_statement_file(data_dir, &cert, false, json),
        KeyCommand::Revoke { cert } => publish_statement_file(data_dir, &cert, true, json),
    }
}

/// `key publish` and `key revoke`: decodes the file here, refuses what it is not (a
/// revocation for `key revoke`; a revocation or certificate for `key publish`) before
/// anything reaches the daemon, and says what was published.
fn publish_statement_file(
    data_dir: &Path,
    cert: &Path,
    revocation_only: bool,
    json: bool,
) -> anyhow::Result<()> {
    let statement = statement_file::read_statement_file(cert)?;
    if revocation_only {
        statement.revocation(cert)?;
    }
    let names = Names::load(data_dir);
    // The daemon knows also the keys trusted by certificate or vouching.
    let listed = crate::locations::client(data_dir)
        .peers()
        .unwrap_or_default();
    let what = statement
        .describe(
            |key| {
                listed
                    .iter()
                    .find(|member| member.key == *key)
                    .map_or_else(|| names.of(key), |member| member.name.clone())
            },
            |key| {
                listed.iter().any(|member| {
                    member.key == *key && member.trust == solidarity_control::TrustBasis::Identity
                })
            },
        )
        .with_context(|| format!("{} was not published", cert.display()))?;
    let id = crate::locations::client(data_dir).sign(&request::PublishStatement {
        envelope: statement.envelope,
    })?;
    if json {
        return print_json(&serde_json::json!({ "id": id, "published": what }));
    }
    println!("published {what}");
    println!("{id}");
    Ok(())
}

/// Signs a statement (seq 0) and writes its envelope as hex to a new 0600 file.
fn write_statement(
    key: &ed25519_dalek::SigningKey,
    federation: &str,
    body: solidarity_proto::Body,
    now: u64,
    out: &Path,
) -> anyhow::Result<MessageId> {
    let payload = solidarity_proto::Payload {
        fed: solidarity_proto::FederationId::from_name(federation),
        seq: 0,
        prev: None,
        created_at: now,
        expires_at: None,
        kind: body.kind().context("statement of unknown kind")?.to_owned(),
        body: body.encode(),
    };
    let signed = solidarity_proto::envelope::sign(key, &payload);
    let mut file = crate::private_file::create_new(out)?;
    writeln!(file, "{}", hex::encode(&signed.bytes))?;
    file.sync_all()?;
    Ok(signed.id)
}

/// The federation a certificate is made for: `--federation`, which must be this node's
/// unless `force`, or this node's.
fn certify_federation(
    data_dir: &Path,
    given: Option<String>,
    force: bool,
) -> anyhow::Result<String> {
    let (own, from) = if crate::locations::config_path(data_dir).exists() {
        let config = NodeConfig::load(data_dir)?;
        (
            config.federation,
            format!(
                "the config {}",
                crate::locations::config_path(data_dir).display()
            ),
        )
    } else {
        (
            config::DEFAULT_FEDERATION.to_owned(),
            format!("the default; no config in {}", data_dir.display()),
        )
    };
    match given {
        Some(name) if name != own && !force => bail!(
            "this node's federation is {own:?} ({from}), not {name:?}; its members would refuse the certificate. Nothing was written. Give --force to certify for {name:?} anyway"
        ),
        Some(name) => Ok(name),
        None => Ok(own),
    }
}
