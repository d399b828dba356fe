//! `solidarity canary`: publish this node's warrant canary, signal duress, print the
//! duress commitment.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use solidarity_control::request;
use solidarity_proto::payload::CanaryCode;
use solidarity_proto::{AuthorKey, MessageId};

use super::passphrase::{self, Purpose};
use super::{load_node_key, parse_wire, print_id, print_json};

#[derive(Subcommand)]
pub enum CanaryCommand {
    /// Publish the canary now. A withdrawn code stays withdrawn in the scheduled canaries
    /// until restored. Codes: warrant, gag, subpoena, trap, cease, duress, raid, seize,
    /// xcred, xopers (each, while stated, means "this has NOT happened").
    Publish {
        /// Withdraw a code: the event it denies has happened (repeatable).
        #[arg(long, value_parser = parse_wire::<CanaryCode>)]
        withdraw: Vec<CanaryCode>,
        /// State a code again (repeatable).
        #[arg(long, value_parser = parse_wire::<CanaryCode>)]
        restore: Vec<CanaryCode>,
    },
    /// Publish a canary that looks like any other to an onlooker but tells members who hold
    /// your duress commitment that you act under duress. The duress passphrase (at least 8
    /// characters) is asked on the terminal without echo, or read from the first line of
    /// standard input when that is not a terminal.
    Duress {
        /// Read the duress passphrase from the first line of FILE instead.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
        /// The other admins hold a commitment printed by a version before the Argon2id
        /// derivation: signal to that one (then hand out a new commitment; SPEC §8.7.1).
        #[arg(long)]
        legacy_commitment: bool,
    },
    /// Print the duress commitment for a passphrase (same input as `duress`), to append to
    /// your member card as `~COMMITMENT` when you send it to the other admins. Neither the
    /// passphrase nor the commitment is stored on the node, so whoever seizes it cannot
    /// tell a duress canary from a normal one. At a terminal the passphrase is asked twice.
    DuressCommitment {
        /// Read the duress passphrase from the first line of FILE instead.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
}

pub fn run_canary(data_dir: &Path, command: CanaryCommand, json: bool) -> anyhow::Result<()> {
    let client = crate::locations::client(data_dir);
    let author = || -> anyhow::Result<AuthorKey> {
        let key = load_node_key(data_dir)?;
        Ok(solidarity_proto::envelope::author_key(&key))
    };
    match command {
        CanaryCommand::Publish { withdraw, restore } => {
            let id = client.sign(&request::CanaryPublish { withdraw, restore })?;
            print_id(id, json)
        }
        CanaryCommand::Duress {
            passphrase_file,
            legacy_commitment,
        } => {
            let passphrase = passphrase::read(Purpose::Duress, passphrase_file.as_deref())?;
            let author = author()?;
            let key = if legacy_commitment {
                solidarity_proto::payload::legacy_duress_key(&author, &passphrase)
            } else {
                solidarity_proto::payload::duress_key(&author, &passphrase)
            };
            let commitment = solidarity_proto::payload::duress_commitment(&key);
            let token =
                solidarity_proto::payload::duress_token(&commitment, &author, rand::random());
            let id = client.sign(&request::CanaryDuress {
                token: MessageId(token),
            })?;
            print_id(id, json)
        }
        CanaryCommand::DuressCommitment { passphrase_file } => {
            let passphrase =
                passphrase::read(Purpose::DuressCommitment, passphrase_file.as_deref())?;
            let key = solidarity_proto::payload::duress_key(&author()?, &passphrase);
            let commitment = hex::encode(solidarity_proto::payload::duress_commitment(&key));
            if json {
                print_json(&serde_json::json!({ "duress_commitment": commitment }))
            } else {
                println!("{commitment}");
                eprintln!(
                    "Append it to the member card you send the other admins: CARD~{commitment} (card from `{}`). Nothing of it is kept on this server.",
                    crate::locations::hint("id")
                );
                Ok(())
            }
        }
    }
}
