//! OpenPGP for the mail channel (rpgp): parsing and checking the recipients' public keys and
//! the signing key when the channel is built, and encrypting (optionally signing) one text.
//!
//! Must not: accept a key without a usable encryption subkey, or fall back to plain text.

use anyhow::{Context, bail};
use pgp::composed::{
    ArmorOptions, Deserializable, MessageBuilder, SignedPublicKey, SignedPublicSubKey,
    SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::crypto::sym::SymmetricKeyAlgorithm;
use pgp::packet::SignatureType;
use pgp::types::{KeyDetails, Password};

/// Recipients' encryption subkeys and the optional signing key.
pub(super) struct Crypto {
    recipients: Vec<SignedPublicSubKey>,
    signer: Option<SignedSecretKey>,
}

impl Crypto {
    /// Parses and checks every armoured key (`encrypt_to`) and the signing key.
    pub(super) fn new(encrypt_to: &[String], sign_key: Option<&str>) -> anyhow::Result<Self> {
        let now = unix_now();
        let mut recipients = Vec::new();
        for (index, armoured) in encrypt_to.iter().enumerate() {
            let which = format!("`encrypt_to` key #{}", index + 1);
            let (key, _) = SignedPublicKey::from_string(armoured)
                .with_context(|| format!("{which} is not an ASCII-armoured OpenPGP public key"))?;
            key.verify_bindings()
                .with_context(|| format!("{which}: its self-signatures do not verify"))?;
            if !key.details.revocation_signatures.is_empty() {
                bail!("{which} is revoked");
            }
            if primary_expiry(&key).is_some_and(|end| end <= now) {
                bail!("{which} expired");
            }
            let usable = key
                .public_subkeys
                .iter()
                .filter(|subkey| subkey_usable(subkey, now))
                .max_by_key(|subkey| subkey.key.created_at().as_secs())
                .with_context(|| {
                    format!("{which} has no usable encryption subkey (none, expired or revoked)")
                })?;
            recipients.push(usable.clone());
        }
        if recipients.is_empty() {
            bail!("an encrypted channel needs at least one `encrypt_to` key");
        }
        let signer = sign_key
            .map(|armoured| -> anyhow::Result<SignedSecretKey> {
                let (key, _) = SignedSecretKey::from_string(armoured)
                    .context("`sign_key_file` is not an ASCII-armoured OpenPGP secret key")?;
                key.verify_bindings()
                    .context("`sign_key_file`: its self-signatures do not verify")?;
                if key.primary_key.secret_params().is_encrypted() {
                    bail!("`sign_key_file` is protected by a passphrase; export it without one");
                }
                if !key.primary_key.algorithm().can_sign() {
                    bail!("`sign_key_file`: its primary key cannot sign");
                }
                Ok(key)
            })
            .transpose()?;
        Ok(Self { recipients, signer })
    }

    /// `plain` encrypted to every recipient (and signed when a key is set), armoured.
    pub(super) fn encrypt(&self, plain: Vec<u8>) -> anyhow::Result<String> {
        let mut rng = rand::rngs::OsRng;
        let mut builder =
            MessageBuilder::from_bytes("", plain).seipd_v1(&mut rng, SymmetricKeyAlgorithm::AES256);
        for recipient in &self.recipients {
            builder
                .encrypt_to_key(&mut rng, &recipient.key)
                .context("cannot encrypt to a recipient's key")?;
        }
        if let Some(signer) = &self.signer {
            builder.sign(
                &signer.primary_key,
                Password::empty(),
                HashAlgorithm::Sha256,
            );
        }
        builder
            .to_armored_string(rng, ArmorOptions::default())
            .context("cannot encrypt the message")
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_secs())
        .unwrap_or_default()
}

/// When the primary key ends, by its newest user id self-signature with an expiry.
fn primary_expiry(key: &SignedPublicKey) -> Option<u64> {
    let created = u64::from(key.primary_key.created_at().as_secs());
    key.details
        .users
        .iter()
        .flat_map(|user| user.signatures.iter())
        .chain(key.details.direct_signatures.iter())
        .max_by_key(|signature| signature.created().map(|at| at.as_secs()).unwrap_or(0))
        .and_then(|signature| signature.key_expiration_time())
        .map(|lifetime| u64::from(lifetime.as_secs()))
        .filter(|lifetime| *lifetime > 0)
        .map(|lifetime| created + lifetime)
}

/// An encryption-capable subkey whose newest binding says "encrypt" and has not ended.
fn subkey_usable(subkey: &SignedPublicSubKey, now: u64) -> bool {
    if !subkey.key.algorithm().can_encrypt() {
        return false;
    }
    if subkey
        .signatures
        .iter()
        .any(|signature| signature.typ() == Some(SignatureType::SubkeyRevocation))
    {
        return false;
    }
    let Some(binding) = subkey
        .signatures
        .iter()
        .filter(|signature| signature.typ() == Some(SignatureType::SubkeyBinding))
        .max_by_key(|signature| signature.created().map(|at| at.as_secs()).unwrap_or(0))
    else {
        return false;
    };
    let flags = binding.key_flags();
    if !(flags.encrypt_comms() || flags.encrypt_storage()) {
        return false;
    }
    let created = u64::from(subkey.key.created_at().as_secs());
    match binding
        .key_expiration_time()
        .map(|lifetime| lifetime.as_secs())
    {
        Some(lifetime) if lifetime > 0 => created + u64::from(lifetime) > now,
        _ => true,
    }
}
