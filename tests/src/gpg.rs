//! GnuPG as the recipient's real OpenPGP implementation: a `GNUPGHOME` in a temp dir,
//! `--batch --pinentry-mode loopback`, keys without passphrase. Decrypts the PGP/MIME part of
//! a raw mail and reports whether its signature verified.

use std::io::Write;
use std::process::{Command, Stdio};

/// Key types to generate.
#[derive(Clone, Copy, Debug)]
pub enum KeyAlgo {
    /// ed25519 primary, cv25519 encryption subkey.
    Curve25519,
    /// rsa2048 primary and encryption subkey.
    Rsa2048,
}

/// A GnuPG home with one or more keys.
pub struct Gpg {
    home: tempfile::TempDir,
}

/// What `gpg --decrypt` gave.
#[derive(Debug)]
pub struct Decrypted {
    /// The plaintext.
    pub plaintext: String,
    /// A good signature was found (`GOODSIG`).
    pub good_signature: bool,
}

impl Gpg {
    /// An empty home.
    pub fn new() -> anyhow::Result<Self> {
        let home = tempfile::Builder::new().prefix("gpg").tempdir_in("/tmp")?;
        std::fs::set_permissions(
            home.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )?;
        Ok(Self { home })
    }

    fn command(&self) -> Command {
        let mut command = Command::new("gpg");
        command.env("GNUPGHOME", self.home.path()).args([
            "--batch",
            "--yes",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
        ]);
        command
    }

    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> anyhow::Result<(Vec<u8>, String)> {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.unwrap_or_default())?;
        }
        let output = child.wait_with_output()?;
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        anyhow::ensure!(output.status.success(), "gpg {args:?} failed: {stderr}");
        Ok((output.stdout, stderr))
    }

    /// Generates a key for `email` (sign+cert primary, encryption subkey), returns its fingerprint.
    pub fn generate(&self, email: &str, algo: KeyAlgo) -> anyhow::Result<String> {
        let sub = match algo {
            KeyAlgo::Curve25519 => "cv25519",
            KeyAlgo::Rsa2048 => "rsa2048",
        };
        let fingerprint = self.generate_sign_only(email, algo)?;
        self.run(
            &["--quick-add-key", &fingerprint, sub, "encr", "never"],
            None,
        )?;
        Ok(fingerprint)
    }

    /// Generates a key for `email` without an encryption subkey, returns its fingerprint.
    pub fn generate_sign_only(&self, email: &str, algo: KeyAlgo) -> anyhow::Result<String> {
        let primary = match algo {
            KeyAlgo::Curve25519 => "ed25519",
            KeyAlgo::Rsa2048 => "rsa2048",
        };
        let uid = format!("Test <{email}>");
        self.run(
            &["--quick-gen-key", &uid, primary, "sign,cert", "never"],
            None,
        )?;
        let (listing, _) = self.run(&["--with-colons", "--list-keys", email], None)?;
        let listing = String::from_utf8_lossy(&listing);
        let fingerprint = listing
            .lines()
            .find_map(|line| line.strip_prefix("fpr:"))
            .and_then(|rest| rest.split(':').find(|field| !field.is_empty()))
            .ok_or_else(|| anyhow::anyhow!("no fingerprint in {listing}"))?
            .to_owned();
        Ok(fingerprint)
    }

    /// The armoured public key of `fingerprint`.
    pub fn export_public(&self, fingerprint: &str) -> anyhow::Result<String> {
        let (out, _) = self.run(&["--armor", "--export", fingerprint], None)?;
        Ok(String::from_utf8(out)?)
    }

    /// The armoured secret key of `fingerprint` (no passphrase).
    pub fn export_secret(&self, fingerprint: &str) -> anyhow::Result<String> {
        let (out, _) = self.run(&["--armor", "--export-secret-keys", fingerprint], None)?;
        Ok(String::from_utf8(out)?)
    }

    /// Imports an armoured key.
    pub fn import(&self, armoured: &str) -> anyhow::Result<()> {
        self.run(&["--import"], Some(armoured.as_bytes()))?;
        Ok(())
    }

    /// Decrypts the OpenPGP message found in a raw (PGP/MIME) mail.
    pub fn decrypt(&self, raw_mail: &str) -> anyhow::Result<Decrypted> {
        let armoured = extract_pgp_message(raw_mail)
            .ok_or_else(|| anyhow::anyhow!("no PGP MESSAGE block in the mail"))?;
        let (out, status) = self.run(
            &["--status-fd", "2", "--decrypt"],
            Some(armoured.as_bytes()),
        )?;
        Ok(Decrypted {
            plaintext: String::from_utf8(out)?,
            good_signature: status.contains("[GNUPG:] GOODSIG"),
        })
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The armoured `PGP MESSAGE` block of a raw mail.
pub fn extract_pgp_message(raw_mail: &str) -> Option<String> {
    const BEGIN: &str = "-----BEGIN PGP MESSAGE-----";
    const END: &str = "-----END PGP MESSAGE-----";
    let start = raw_mail.find(BEGIN)?;
    let end = raw_mail[start..].find(END)? + start + END.len();
    Some(format!("{}\n", raw_mail[start..end].replace("\r\n", "\n")))
}
