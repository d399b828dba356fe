//! The node key file, PeerId conversion and member cards.
//!
//! Card format (one line): `KEYHEX[@MULTIADDR,MULTIADDR…][~COMMITMENTHEX]`, where KEYHEX
//! is the node's ed25519 public key in 64 lowercase hex characters and the optional
//! COMMITMENTHEX is the duress commitment its admins added by hand (never stored on the
//! node, see `solidarity canary duress-commitment`).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, bail};
use ed25519_dalek::SigningKey;
use libp2p::{Multiaddr, PeerId, identity};
use solidarity_proto::AuthorKey;

/// Name of the key file inside the data dir.
pub const KEY_FILE: &str = "node.key";

/// Creates a new key file (mode 0600); fails if one exists.
pub fn create_key_file(data_dir: &Path) -> anyhow::Result<SigningKey> {
    let keypair = identity::Keypair::generate_ed25519();
    let secret = keypair
        .try_into_ed25519()
        .context("libp2p generated a non-ed25519 key")?
        .secret();
    let key = SigningKey::from_bytes(
        secret
            .as_ref()
            .try_into()
            .context("ed25519 secret is not 32 bytes")?,
    );
    let path = data_dir.join(KEY_FILE);
    let mut file = crate::private_file::create_new(&path)?;
    writeln!(file, "{}", hex::encode(key.to_bytes()))?;
    file.sync_all()?;
    Ok(key)
}

/// Loads the key file, refusing one that others may read.
pub fn load_key_file(data_dir: &Path) -> anyhow::Result<SigningKey> {
    let path = data_dir.join(KEY_FILE);
    let metadata =
        std::fs::metadata(&path).with_context(|| format!("cannot read {}", path.display()))?;
    if metadata.permissions().mode() & 0o077 != 0 {
        bail!(
            "{} is readable by other users; run `chmod 600 {}` (and consider the key compromised if others could read it)",
            path.display(),
            path.display()
        );
    }
    let text = std::fs::read_to_string(&path)?;
    let mut secret = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut secret)
        .with_context(|| format!("{} does not hold a 64-character hex key", path.display()))?;
    Ok(SigningKey::from_bytes(&secret))
}

/// The libp2p keypair of a node key (the same key: the PeerId is derived from it).
pub fn libp2p_keypair(key: &SigningKey) -> anyhow::Result<identity::Keypair> {
    identity::Keypair::ed25519_from_bytes(key.to_bytes()).context("cannot convert the node key")
}

/// The PeerId of a member key.
pub fn peer_id(key: &AuthorKey) -> anyhow::Result<PeerId> {
    let public = identity::ed25519::PublicKey::try_from_bytes(key.as_bytes())
        .context("not a valid ed25519 public key")?;
    Ok(identity::PublicKey::from(public).to_peer_id())
}

/// A parsed member card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    pub key: AuthorKey,
    pub addresses: Vec<Multiaddr>,
    pub duress_commitment: Option<[u8; 32]>,
}

impl Card {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let text = text.trim();
        let (text, commitment) = match text.split_once('~') {
            Some((text, commitment)) => {
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(commitment.trim(), &mut bytes)
                    .context("the duress commitment after `~` is 64 hex characters")?;
                (text, Some(bytes))
            }
            None => (text, None),
        };
        let (key, addresses) = text.split_once('@').unwrap_or((text, ""));
        let key: AuthorKey = key
            .parse()
            .context("a member card starts with the 64-character hex node key")?;
        peer_id(&key)?;
        let addresses = addresses
            .split(',')
            .filter(|part| !part.is_empty())
            .map(|part| {
                part.parse()
                    .with_context(|| format!("{part:?} on the card is not a multiaddr"))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            key,
            addresses,
            duress_commitment: commitment,
        })
    }

    pub fn render(&self) -> String {
        let addresses: Vec<String> = self.addresses.iter().map(ToString::to_string).collect();
        let mut card = self.key.to_hex();
        if !addresses.is_empty() {
            card = format!("{card}@{}", addresses.join(","));
        }
        if let Some(commitment) = self.duress_commitment {
            card = format!("{card}~{}", hex::encode(commitment));
        }
        card
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_round_trip() {
        let key = create_key(7);
        let card = Card {
            key: solidarity_proto::envelope::author_key(&key),
            addresses: vec!["/ip4/127.0.0.1/tcp/7447".parse().expect("addr")],
            duress_commitment: Some([5; 32]),
        };
        assert_eq!(Card::parse(&card.render()).expect("parse"), card);
        let bare = Card::parse(&card.key.to_hex()).expect("bare key");
        assert!(bare.addresses.is_empty());
        assert!(Card::parse("zz@/ip4/1.2.3.4/tcp/1").is_err());
    }

    #[test]
    fn node_key_and_peer_id_agree() {
        let key = create_key(9);
        let keypair = libp2p_keypair(&key).expect("keypair");
        let author = solidarity_proto::envelope::author_key(&key);
        assert_eq!(
            peer_id(&author).expect("peer id"),
            keypair.public().to_peer_id()
        );
    }

    fn create_key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }
}
