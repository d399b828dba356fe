//! Passphrases an admin types: the identity key's and the duress one.
//!
//! - `--passphrase-file FILE`: its first line.
//! - Standard input a terminal: a prompt on standard error naming the passphrase and its
//!   minimum length, read key by key with echo and signals off (termios through rustix;
//!   Ctrl-C cancels and the terminal is always restored), asked twice when it
//!   creates something (a key file, a duress commitment) so a typo cannot lock the admin
//!   out or publish a commitment nobody can match.
//! - Otherwise (a pipe, a script): the first line of standard input.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::Path;

use anyhow::{Context, bail};
use rustix::termios::{self, LocalModes, OptionalActions, SpecialCodeIndex};

use crate::identity_key;

/// Shortest duress passphrase accepted (SPEC §17: whoever holds the commitment can test
/// guesses offline, each costing one Argon2id of 64 MiB; this is the floor, not a
/// recommendation).
pub const MIN_DURESS_PASSPHRASE_CHARS: usize = 8;

/// Which passphrase is asked for, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A new identity key is encrypted with it.
    NewIdentity,
    /// An existing identity key file is opened with it.
    OpenIdentity,
    /// A duress canary is derived from it.
    Duress,
    /// The duress commitment for the member card is derived from it.
    DuressCommitment,
}

impl Purpose {
    fn name(self) -> &'static str {
        match self {
            Purpose::NewIdentity | Purpose::OpenIdentity => "identity key passphrase",
            Purpose::Duress | Purpose::DuressCommitment => "duress passphrase",
        }
    }

    /// The minimum length, in characters; none for opening a key (its own passphrase is
    /// whatever it was made with).
    fn min_chars(self) -> Option<usize> {
        match self {
            Purpose::NewIdentity => Some(identity_key::MIN_PASSPHRASE_CHARS),
            Purpose::Duress | Purpose::DuressCommitment => Some(MIN_DURESS_PASSPHRASE_CHARS),
            Purpose::OpenIdentity => None,
        }
    }

    /// Whether the admin types it twice at a terminal.
    fn confirm(self) -> bool {
        matches!(self, Purpose::NewIdentity | Purpose::DuressCommitment)
    }

    fn prompt(self) -> String {
        match self.min_chars() {
            Some(min) => format!("{} (at least {min} characters): ", capital(self.name())),
            None => format!("{}: ", capital(self.name())),
        }
    }
}

fn capital(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// Reads the passphrase for `purpose` from `file`, the terminal, or standard input, and
/// checks its length.
pub fn read(purpose: Purpose, file: Option<&Path>) -> anyhow::Result<String> {
    let passphrase = match file {
        Some(path) => first_line(
            &std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        ),
        None if std::io::stdin().is_terminal() => {
            let first = prompt_hidden(&purpose.prompt())?;
            check(purpose, &first)?;
            if purpose.confirm() {
                let again = prompt_hidden(&format!("Repeat the {}: ", purpose.name()))?;
                if again != first {
                    bail!(
                        "the two {}s differ; nothing was written, try again",
                        purpose.name()
                    );
                }
            }
            first
        }
        None => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the passphrase from standard input")?;
            first_line(&line)
        }
    };
    check(purpose, &passphrase)?;
    Ok(passphrase)
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}

fn check(purpose: Purpose, passphrase: &str) -> anyhow::Result<()> {
    let given = passphrase.chars().count();
    match purpose.min_chars() {
        Some(min) if given < min => bail!(
            "the {} needs at least {min} characters ({given} given)",
            purpose.name()
        ),
        None if given == 0 => bail!("no {} given", purpose.name()),
        _ => Ok(()),
    }
}

/// Longest passphrase read from the terminal, in bytes.
const MAX_PASSPHRASE_BYTES: usize = 1024;
/// Keys with a fixed meaning at the prompt.
const CTRL_C: u8 = 0x03;
const CTRL_D: u8 = 0x04;
const BACKSPACE: u8 = 0x08;
const DELETE: u8 = 0x7f;

/// Prints `prompt` on standard error and reads one line from the terminal on standard
/// input with echo off. The terminal reads key by key with signals off, so Ctrl-C arrives
/// as a key that cancels, and its settings are restored on every path.
fn prompt_hidden(prompt: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let saved = termios::tcgetattr(&stdin).context("cannot read the terminal's settings")?;
    let mut quiet = saved.clone();
    quiet
        .local_modes
        .remove(LocalModes::ECHO | LocalModes::ICANON | LocalModes::ISIG);
    quiet.special_codes[SpecialCodeIndex::VMIN] = 1;
    quiet.special_codes[SpecialCodeIndex::VTIME] = 0;
    // Echo goes off before the prompt shows, so nothing typed after it is echoed.
    termios::tcsetattr(&stdin, OptionalActions::Now, &quiet)
        .context("cannot turn off the terminal's echo")?;
    let mut stderr = std::io::stderr().lock();
    let line = write!(stderr, "{prompt}")
        .and_then(|()| stderr.flush())
        .map_err(anyhow::Error::from)
        .and_then(|()| {
            read_keys(
                &mut stdin.lock(),
                saved.special_codes[SpecialCodeIndex::VERASE],
                saved.special_codes[SpecialCodeIndex::VKILL],
            )
        });
    let restored = termios::tcsetattr(&stdin, OptionalActions::Now, &saved)
        .context("cannot restore the terminal's echo");
    // The Enter (or Ctrl-C) was not echoed.
    let _ = writeln!(stderr);
    restored?;
    line
}

/// Reads keys up to Enter: the terminal's erase key (or Backspace, Delete) removes the
/// last character, its kill key (Ctrl-U) the whole line; Ctrl-C and Ctrl-D cancel.
fn read_keys(input: &mut impl Read, erase: u8, kill: u8) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    let mut key = [0u8; 1];
    loop {
        if input
            .read(&mut key)
            .context("cannot read from the terminal")?
            == 0
        {
            bail!("cancelled: the terminal closed; nothing was done");
        }
        match key[0] {
            b'\r' | b'\n' => break,
            CTRL_C | CTRL_D => bail!("cancelled; nothing was done"),
            key if key == erase || key == DELETE || key == BACKSPACE => {
                // Drop the last character: its continuation bytes, then its first byte.
                while let Some(byte) = bytes.pop() {
                    if byte & 0xc0 != 0x80 {
                        break;
                    }
                }
            }
            key if key == kill => bytes.clear(),
            key => {
                if bytes.len() >= MAX_PASSPHRASE_BYTES {
                    bail!("the passphrase is longer than {MAX_PASSPHRASE_BYTES} bytes");
                }
                bytes.push(key);
            }
        }
    }
    String::from_utf8(bytes).context("the passphrase is not valid UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_passphrase_and_its_real_minimum() {
        let short = check(Purpose::NewIdentity, "eleven char").expect_err("too short");
        assert_eq!(
            short.to_string(),
            "the identity key passphrase needs at least 12 characters (11 given)"
        );
        let short = check(Purpose::Duress, "seven c").expect_err("too short");
        assert_eq!(
            short.to_string(),
            "the duress passphrase needs at least 8 characters (7 given)"
        );
        assert!(check(Purpose::OpenIdentity, "").is_err());
        assert!(check(Purpose::OpenIdentity, "short").is_ok());
        assert_eq!(
            Purpose::DuressCommitment.prompt(),
            "Duress passphrase (at least 8 characters): "
        );
    }

    #[test]
    fn keys_edit_the_line_and_ctrl_c_cancels() {
        let read = |keys: &[u8]| read_keys(&mut &keys[..], DELETE, 0x15);
        assert_eq!(read(b"secret\r").expect("line"), "secret");
        assert_eq!(read(b"secrex\x7ft\n").expect("line"), "secret");
        assert_eq!(read("sécré\x7f\x7fet\r".as_bytes()).expect("line"), "sécet");
        assert_eq!(read(b"wrong\x15right\r").expect("line"), "right");
        assert!(
            read(b"sec\x03ret\r")
                .expect_err("cancel")
                .to_string()
                .contains("cancelled")
        );
        assert!(read(b"no enter").is_err());
        assert!(read(&[b'x'; MAX_PASSPHRASE_BYTES + 1]).is_err());
    }
}
