//! A collective's offline identity key, in a passphrase-encrypted file.
//!
//! File (JSON): `{ version, public_key, kdf: { algorithm: "argon2id", memory_kib, iterations,
//! parallelism, salt }, cipher: "xchacha20poly1305", nonce, ciphertext }`, hex for bytes. The
//! 32-byte ed25519 secret is encrypted with XChaCha20-Poly1305 under a key derived from the
//! passphrase by Argon2id; the public key is authenticated as associated data.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use solidarity_proto::AuthorKey;

/// Argon2id cost: 64 MiB, 3 passes (OWASP's recommendation for interactive use).
const MEMORY_KIB: u32 = 64 * 1024;
const ITERATIONS: u32 = 3;
const PARALLELISM: u32 = 1;
/// Shortest passphrase accepted for an identity key.
pub const MIN_PASSPHRASE_CHARS: usize = 12;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFile {
    version: u8,
    public_key: AuthorKey,
    kdf: Kdf,
    cipher: String,
    nonce: String,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kdf {
    algorithm: String,
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
    salt: String,
}

fn derive_key(passphrase: &str, kdf: &Kdf) -> anyhow::Result<[u8; 32]> {
    if kdf.algorithm != "argon2id" {
        bail!("unsupported key derivation {:?}", kdf.algorithm);
    }
    let salt = hex::decode(&kdf.salt).context("bad salt")?;
    let params = argon2::Params::new(kdf.memory_kib, kdf.iterations, kdf.parallelism, Some(32))
        .map_err(|error| anyhow::anyhow!("bad key derivation parameters: {error}"))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = [0u8; 32];
    argon
        .hash_password_into(passphrase.as_bytes(), &salt, &mut key)
        .map_err(|error| anyhow::anyhow!("key derivation failed: {error}"))?;
    Ok(key)
}

/// Creates a new identity key file (mode 0600, must not exist); returns the public key.
pub fn create(path: &Path, passphrase: &str) -> anyhow::Result<AuthorKey> {
    if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        bail!("the identity passphrase needs at least {MIN_PASSPHRASE_CHARS} characters");
    }
    let secret: [u8; 32] = rand::random();
    let key = SigningKey::from_bytes(&secret);
    let public_key = solidarity_proto::envelope::author_key(&key);
    let kdf = Kdf {
        algorithm: "argon2id".into(),
        memory_kib: MEMORY_KIB,
        iterations: ITERATIONS,
        parallelism: PARALLELISM,
        salt: hex::encode(rand::random::<[u8; 16]>()),
    };
    let nonce: [u8; 24] = rand::random();
    let cipher = XChaCha20Poly1305::new(&derive_key(passphrase, &kdf)?.into());
    let ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &secret,
                aad: public_key.as_bytes(),
            },
        )
        .map_err(|_| anyhow::anyhow!("encryption failed"))?;
    let file = IdentityFile {
        version: 1,
        public_key,
        kdf,
        cipher: "xchacha20poly1305".into(),
        nonce: hex::encode(nonce),
        ciphertext: hex::encode(ciphertext),
    };
    let mut out = crate::private_file::create_new(path)?;
    serde_json::to_writer_pretty(&mut out, &file)?;
    writeln!(out)?;
    out.sync_all()?;
    Ok(public_key)
}

/// Decrypts an identity key file.
pub fn open(path: &Path, passphrase: &str) -> anyhow::Result<SigningKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: IdentityFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not an identity key file", path.display()))?;
    if file.version != 1 || file.cipher != "xchacha20poly1305" {
        bail!("{}: unsupported identity key file version", path.display());
    }
    let nonce = hex::decode(&file.nonce).context("bad nonce")?;
    if nonce.len() != 24 {
        bail!("bad nonce length");
    }
    let ciphertext = hex::decode(&file.ciphertext).context("bad ciphertext")?;
    let cipher = XChaCha20Poly1305::new(&derive_key(passphrase, &file.kdf)?.into());
    let secret = cipher
        .decrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &ciphertext,
                aad: file.public_key.as_bytes(),
            },
        )
        .map_err(|_| anyhow::anyhow!("wrong passphrase (or a damaged identity key file)"))?;
    let secret: [u8; 32] = secret
        .as_slice()
        .try_into()
        .context("damaged identity key file")?;
    let key = SigningKey::from_bytes(&secret);
    if solidarity_proto::envelope::author_key(&key) != file.public_key {
        bail!("damaged identity key file: the secret does not match the public key");
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_key_opens_with_its_passphrase_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("identity.key");
        let public = create(&path, "correct horse battery").expect("create");
        let key = open(&path, "correct horse battery").expect("open");
        assert_eq!(solidarity_proto::envelope::author_key(&key), public);
        assert!(open(&path, "wrong horse battery!").is_err());
        assert!(
            create(&path, "correct horse battery").is_err(),
            "never overwrites"
        );
        assert!(create(&dir.path().join("short"), "short").is_err());
        let text = std::fs::read_to_string(&path).expect("file");
        assert!(
            !text.contains(&hex::encode(key.to_bytes())),
            "the secret is not in clear"
        );
    }
}
