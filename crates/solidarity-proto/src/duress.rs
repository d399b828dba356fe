//! Duress canaries (SPEC §8.7.1): the duress key derived from the admin's passphrase
//! with Argon2id, its commitment on the member card, and the tokens that only a holder of
//! the commitment can tell from a routine canary's random token.

/// Domain-separation prefix of the duress commitment.
pub const DURESS_COMMITMENT_DOMAIN: &[u8] = b"solidarity/v1/duress\0";

/// Domain-separation prefix of the Argon2id salt of a duress key (salt = domain ‖ author).
pub const DURESS_KEY_DOMAIN: &[u8] = b"solidarity/v1/duress-key-argon2id\0";

/// Domain-separation prefix of the SHA-256 duress key of earlier versions (§8.7.1, legacy).
pub const LEGACY_DURESS_KEY_DOMAIN: &[u8] = b"solidarity/v1/duress-key\0";

/// Domain-separation prefix of the tag in a duress token.
pub const DURESS_TOKEN_DOMAIN: &[u8] = b"solidarity/v1/duress-token\0";

/// Argon2id memory cost of the duress key, KiB (64 MiB).
pub const DURESS_KDF_MEMORY_KIB: u32 = 64 * 1024;
/// Argon2id passes of the duress key.
pub const DURESS_KDF_ITERATIONS: u32 = 3;
/// Argon2id lanes of the duress key.
pub const DURESS_KDF_PARALLELISM: u32 = 1;

/// Bytes of the random nonce that opens a duress token; the tag fills the rest.
pub const DURESS_NONCE_BYTES: usize = 16;

/// The duress key of an author for a duress passphrase: Argon2id (v1.3, 64 MiB, 3 passes,
/// 1 lane, 32 bytes) of the passphrase, salted with domain ‖ author. Only the admins know
/// the passphrase; the server never stores it.
pub fn duress_key(author: &crate::AuthorKey, passphrase: &str) -> [u8; 32] {
    let params = argon2::Params::new(
        DURESS_KDF_MEMORY_KIB,
        DURESS_KDF_ITERATIONS,
        DURESS_KDF_PARALLELISM,
        Some(32),
    )
    .expect("fixed Argon2id parameters are valid");
    let mut salt = DURESS_KEY_DOMAIN.to_vec();
    salt.extend_from_slice(author.as_bytes());
    let mut key = [0u8; 32];
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), &salt, &mut key)
        .expect("the salt (65 bytes) and the 32-byte output are within Argon2's limits");
    key
}

/// The duress key of earlier versions: SHA-256(legacy domain ‖ author ‖ passphrase). Kept
/// only so that admins whose members still hold a commitment made with it can signal
/// duress until they hand out a new one.
pub fn legacy_duress_key(author: &crate::AuthorKey, passphrase: &str) -> [u8; 32] {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    hasher.update(LEGACY_DURESS_KEY_DOMAIN);
    hasher.update(author.as_bytes());
    hasher.update(passphrase.as_bytes());
    hasher.finalize().into()
}

/// The commitment members keep for a duress key: SHA-256(domain ‖ key).
pub fn duress_commitment(duress_key: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    hasher.update(DURESS_COMMITMENT_DOMAIN);
    hasher.update(duress_key);
    hasher.finalize().into()
}

/// The tag of a duress token: SHA-256(domain ‖ commitment ‖ author ‖ nonce), first 16
/// bytes. The input has a fixed length, so the keyed prefix is a sound MAC here.
fn duress_tag(
    commitment: &[u8; 32],
    author: &crate::AuthorKey,
    nonce: &[u8],
) -> [u8; 32 - DURESS_NONCE_BYTES] {
    use sha2::Digest;
    let digest: [u8; 32] = sha2::Sha256::new()
        .chain_update(DURESS_TOKEN_DOMAIN)
        .chain_update(commitment)
        .chain_update(author.as_bytes())
        .chain_update(nonce)
        .finalize()
        .into();
    let mut tag = [0u8; 32 - DURESS_NONCE_BYTES];
    tag.copy_from_slice(&digest[..32 - DURESS_NONCE_BYTES]);
    tag
}

/// A duress canary's token: a fresh random nonce ‖ its tag under the commitment. Without
/// the commitment it is indistinguishable from a routine random token, and two duress
/// tokens share nothing.
pub fn duress_token(
    commitment: &[u8; 32],
    author: &crate::AuthorKey,
    nonce: [u8; DURESS_NONCE_BYTES],
) -> [u8; 32] {
    let mut token = [0u8; 32];
    token[..DURESS_NONCE_BYTES].copy_from_slice(&nonce);
    token[DURESS_NONCE_BYTES..].copy_from_slice(&duress_tag(commitment, author, &nonce));
    token
}

/// Whether a canary token of `author` signals duress to a member holding `commitment`:
/// its tag matches, or (a sender of an earlier version) the token is the duress key itself.
pub fn is_duress_token(commitment: &[u8; 32], author: &crate::AuthorKey, token: &[u8]) -> bool {
    if token.len() != 32 {
        return false;
    }
    let (nonce, tag) = token.split_at(DURESS_NONCE_BYTES);
    duress_tag(commitment, author, nonce) == tag || duress_commitment(token) == *commitment
}
