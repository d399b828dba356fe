//! The keys of the node's onion services, kept in `DATA/tor/` (0700; each key 0600) so
//! that their addresses stay the same across restarts and tor reinstalls.
//!
//! A key is a 32-byte ed25519 seed; tor takes its expanded form in `ADD_ONION`, and its
//! address is derived here (rend-spec-v3 §6: base32 of the public key, a two-byte SHA3-256
//! checksum and the version 3), so `solidarity id` can print the card's onion address
//! before the daemon ever talked to tor.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine;
use libp2p::Multiaddr;
use sha2::Digest as _;
use zeroize::Zeroizing;

/// Directory of the keys inside the data dir.
pub const TOR_DIR: &str = "tor";

/// Which onion service a key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Members dial the node here.
    P2p,
    /// The public status page.
    StatusPage,
}

impl Service {
    fn file_name(self) -> &'static str {
        match self {
            Self::P2p => "p2p_onion.key",
            Self::StatusPage => "status_onion.key",
        }
    }

    /// How the status and the logs name it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::P2p => "p2p onion service",
            Self::StatusPage => "status page onion service",
        }
    }
}

/// An onion service's secret key.
pub struct OnionKey {
    seed: Zeroizing<[u8; 32]>,
}

impl OnionKey {
    /// The key of `service`, created (and written) when there is none yet.
    pub fn load_or_create(data_dir: &Path, service: Service) -> anyhow::Result<Self> {
        match Self::load(data_dir, service)? {
            Some(key) => Ok(key),
            None => {
                let key = Self {
                    seed: Zeroizing::new(rand::random()),
                };
                if !key.write_new(data_dir, service)? {
                    return Self::load(data_dir, service)?
                        .context("the onion key written meanwhile is gone");
                }
                tracing::info!(
                    "made a new key for the {} in {}: back it up with node.key, since without it the onion address changes",
                    service.describe(),
                    key_path(data_dir, service).display()
                );
                Ok(key)
            }
        }
    }

    /// The key of `service`, if one was created.
    pub fn load(data_dir: &Path, service: Service) -> anyhow::Result<Option<Self>> {
        let path = key_path(data_dir, service);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => Zeroizing::new(text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        let mode = std::fs::metadata(&path)?.permissions().mode();
        if mode & 0o077 != 0 {
            bail!(
                "{} is readable by other users (mode {:o}): whoever reads it can take over this node's onion address; `chmod 600` it",
                path.display(),
                mode & 0o777
            );
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), seed.as_mut_slice())
            .with_context(|| format!("{} is not a 32-byte hex key", path.display()))?;
        Ok(Some(Self { seed }))
    }

    /// Writes the key unless one is there already (a daemon and `id` creating it at
    /// once): `false` then, and the caller reads the one on disk. The directory and the
    /// file belong to the data dir's owner, also when root runs the CLI.
    fn write_new(&self, data_dir: &Path, service: Service) -> anyhow::Result<bool> {
        let dir = data_dir.join(TOR_DIR);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let owner = std::fs::metadata(data_dir)?;
        let (uid, gid) = (Some(owner.uid()), Some(owner.gid()));
        std::os::unix::fs::chown(&dir, uid, gid)
            .with_context(|| format!("cannot give {} to the data dir's owner", dir.display()))?;
        // A unique temporary file, 0600, never an existing one written through.
        let mut file = tempfile::NamedTempFile::new_in(&dir)?;
        file.write_all(Zeroizing::new(hex::encode(self.seed.as_slice())).as_bytes())?;
        file.write_all(b"\n")?;
        file.as_file().sync_all()?;
        std::os::unix::fs::chown(file.path(), uid, gid)
            .context("cannot give the onion key to the data dir's owner")?;
        match file.persist_noclobber(key_path(data_dir, service)) {
            Ok(_) => Ok(true),
            Err(error) if error.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(error) => Err(error.error).context("cannot write the onion key"),
        }
    }

    /// The key as `ADD_ONION` takes it: `ED25519-V3:` and the base64 of the expanded
    /// secret key (SHA-512 of the seed, clamped: tor's own expansion).
    pub fn add_onion_blob(&self) -> Zeroizing<String> {
        let mut expanded = Zeroizing::new([0u8; 64]);
        expanded.copy_from_slice(&sha2::Sha512::digest(self.seed.as_slice()));
        expanded[0] &= 248;
        expanded[31] &= 127;
        expanded[31] |= 64;
        Zeroizing::new(format!(
            "ED25519-V3:{}",
            base64::engine::general_purpose::STANDARD.encode(expanded.as_slice())
        ))
    }

    /// The service id: the onion address without `.onion`.
    pub fn service_id(&self) -> String {
        let public = ed25519_dalek::SigningKey::from_bytes(&self.seed)
            .verifying_key()
            .to_bytes();
        service_id(&public)
    }

    /// The libp2p address members dial: `/onion3/ID:PORT`.
    pub fn multiaddr(&self, port: u16) -> anyhow::Result<Multiaddr> {
        format!("/onion3/{}:{port}", self.service_id())
            .parse()
            .context("onion multiaddr")
    }
}

fn key_path(data_dir: &Path, service: Service) -> PathBuf {
    data_dir.join(TOR_DIR).join(service.file_name())
}

/// rend-spec-v3 §6: `base32(PUBKEY | CHECKSUM | VERSION)`, lower case, with
/// `CHECKSUM = SHA3-256(".onion checksum" | PUBKEY | VERSION)[..2]` and `VERSION = 3`.
fn service_id(public: &[u8; 32]) -> String {
    const VERSION: u8 = 3;
    use sha3::Digest as _;
    let mut hasher = sha3::Sha3_256::new();
    hasher.update(b".onion checksum");
    hasher.update(public);
    hasher.update([VERSION]);
    let checksum = hasher.finalize();
    let mut bytes = Vec::with_capacity(35);
    bytes.extend_from_slice(public);
    bytes.extend_from_slice(&checksum[..2]);
    bytes.push(VERSION);
    data_encoding::BASE32_NOPAD
        .encode(&bytes)
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_rend_spec_v3s_encoding_of_the_public_key() {
        // The test vector of rend-spec-v3 appendix A.2 ("Onion address encoding"):
        // the key of "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion".
        let public: [u8; 32] =
            hex::decode("79bcc625184b05194975c28b66b66b0469f7f6556fb1ac3189a79b40dda32f1f")
                .expect("hex")
                .try_into()
                .expect("32 bytes");
        assert_eq!(
            service_id(&public),
            "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd"
        );
    }

    #[test]
    fn a_key_is_created_once_private_and_read_back_the_same() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(
            OnionKey::load(dir.path(), Service::P2p)
                .expect("load")
                .is_none()
        );
        let created = OnionKey::load_or_create(dir.path(), Service::P2p).expect("create");
        let again = OnionKey::load_or_create(dir.path(), Service::P2p).expect("load");
        assert_eq!(created.service_id(), again.service_id());
        assert_eq!(created.service_id().len(), 56);
        let other = OnionKey::load_or_create(dir.path(), Service::StatusPage).expect("create");
        assert_ne!(created.service_id(), other.service_id());
        let path = key_path(dir.path(), Service::P2p);
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let error = OnionKey::load(dir.path(), Service::P2p)
            .err()
            .expect("refused");
        assert!(error.to_string().contains("chmod 600"), "{error}");
        assert!(
            created.add_onion_blob().starts_with("ED25519-V3:"),
            "the control port's key type"
        );
        let address = created.multiaddr(7447).expect("multiaddr");
        assert!(address.to_string().starts_with("/onion3/"), "{address}");
    }
}
