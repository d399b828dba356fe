//! Passphrases an admin types: the identity key's and the duress one.
//!
//! - `--passphrase-file FILE`: its first line.
//! - Standard input a terminal: a prompt on standard error naming the passphrase and its
//!   minimum length, read with echo off (termios through rustix), asked twice when it
//!   creates something (a key file, a duress commitment) so a typo cannot lock the admin
//!   out or publish a commitment nobody can match.
//! - Otherwise (a pipe, a script): the first line of standard input.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, bail};
use rustix::termios::{self, LocalModes, OptionalActions};

use crate::identity_key;

/// Shortest duress passphrase accepted (SPEC §17: the commitment is one SHA-256, so only a
/// passphrase of high entropy protects it; this is the floor, not a recommendation).
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

/// Prints `prompt` on standard error and reads one line from the terminal on standard
/// input with echo off; echo is restored before returning, also on error.
fn prompt_hidden(prompt: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let saved = termios::tcgetattr(&stdin).context("cannot read the terminal's settings")?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    quiet.local_modes.insert(LocalModes::ECHONL);
    // Echo goes off before the prompt shows, so nothing typed after it is echoed.
    termios::tcsetattr(&stdin, OptionalActions::Now, &quiet)
        .context("cannot turn off the terminal's echo")?;
    let mut stderr = std::io::stderr().lock();
    write!(stderr, "{prompt}")?;
    stderr.flush()?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    termios::tcsetattr(&stdin, OptionalActions::Now, &saved)
        .context("cannot restore the terminal's echo")?;
    read.context("cannot read the passphrase from the terminal")?;
    Ok(first_line(&line))
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
}
