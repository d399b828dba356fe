//! `solidarity notify`: test the notification channels, show their queues, list the recent
//! notices. Channels are configured in `config.toml` (`[[notify.mail]]`, …).

use std::path::Path;

use clap::Subcommand;
use solidarity_control::request;

use super::print_json;
use crate::render::format_time;

#[derive(Subcommand)]
pub enum NotifyCommand {
    /// Send a test message now on CHANNEL (default: every channel) and report whether the
    /// other side accepted it. Exits non-zero when one was not accepted.
    Test {
        /// The channel's `name` in config.toml.
        channel: Option<String>,
    },
    /// Each channel's queue, last success and last error.
    Status,
    /// The recent notices, newest first.
    List,
}

pub fn run_notify(data_dir: &Path, command: NotifyCommand, json: bool) -> anyhow::Result<()> {
    let client = crate::locations::client(data_dir);
    match command {
        NotifyCommand::Test { channel } => {
            let tested = client.call(&request::NotifyTest { channel })?;
            if json {
                print_json(&tested)?;
            } else {
                for result in &tested.results {
                    match &result.error {
                        None => println!(
                            "{} ({}): accepted in {} ms",
                            result.channel, result.channel_type, result.elapsed_ms
                        ),
                        Some(error) => println!(
                            "{} ({}): NOT accepted after {} ms: {error}",
                            result.channel, result.channel_type, result.elapsed_ms
                        ),
                    }
                }
            }
            let failed = tested
                .results
                .iter()
                .filter(|result| !result.accepted)
                .count();
            if failed > 0 {
                anyhow::bail!(
                    "{failed} of {} channels did not accept the test message",
                    tested.results.len()
                );
            }
            Ok(())
        }
        NotifyCommand::Status => {
            let status = client.call(&request::NotifyStatus {})?;
            if json {
                return print_json(&status);
            }
            if status.channels.is_empty() {
                println!(
                    "no notification channel is configured (see [[notify.mail]] in the README)"
                );
            }
            for channel in &status.channels {
                let mut flags = vec![channel.channel_type.clone()];
                if channel.private {
                    flags.push("private".into());
                }
                if channel.encrypted {
                    flags.push("encrypted".into());
                }
                println!("{} ({})", channel.channel, flags.join(", "));
                let oldest = channel
                    .oldest_queued_at
                    .map(|at| format!(", oldest queued {}", format_time(at)))
                    .unwrap_or_default();
                println!("  queued: {}{oldest}", channel.queued);
                if let Some(at) = channel.next_attempt_at.filter(|_| channel.queued > 0) {
                    println!("  next attempt: {}", format_time(at));
                }
                println!(
                    "  last success: {}",
                    channel
                        .last_success_at
                        .map_or("never".to_owned(), format_time)
                );
                if let (Some(error), Some(at)) = (&channel.last_error, channel.last_error_at) {
                    println!(
                        "  last error: {} ({error}; {} in a row)",
                        format_time(at),
                        channel.failures_in_a_row
                    );
                }
                if channel.given_up > 0 {
                    println!(
                        "  GIVEN UP: {} notices, last {}",
                        channel.given_up,
                        channel.last_given_up_at.map_or(String::new(), format_time)
                    );
                }
            }
            Ok(())
        }
        NotifyCommand::List => {
            let list = client.call(&request::NotifyList {})?;
            if json {
                return print_json(&list);
            }
            if list.notices.is_empty() {
                println!("no notices yet");
            }
            for notice in &list.notices {
                let channels = if notice.channels.is_empty() {
                    "no channel".to_owned()
                } else {
                    notice.channels.join(", ")
                };
                println!(
                    "{}  {:<8} {:<18} {}  [{channels}]",
                    format_time(notice.at),
                    notice.severity,
                    notice.notice_type,
                    notice.title
                );
            }
            Ok(())
        }
    }
}
