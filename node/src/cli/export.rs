//! `solidarity export`: every stored envelope, verbatim, out to a file of JSON lines
//! ([`super::export_file`]), page by page from the daemon.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use solidarity_control::{Client, ControlError, ControlRequest, RefusalCode, request};

use super::export_file::{FORMAT, Header, Line, Writer};
use super::print_json;

#[derive(Args)]
pub struct ExportArgs {
    /// Write to FILE (mode 0600, replaced only once complete) instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Include the members file (members.toml).
    #[arg(long)]
    pub members: bool,
}

/// What an export wrote.
#[derive(Debug, Default, Serialize)]
struct Exported {
    statements: usize,
    messages: usize,
    kept_canaries: usize,
    fork_evidence: usize,
    members: bool,
}

pub fn run_export(data_dir: &Path, args: ExportArgs, json: bool) -> anyhow::Result<()> {
    let client = crate::locations::client(data_dir);
    let counts = match &args.output {
        Some(path) => {
            // A new file of our own beside the target (never one that is there already,
            // nor a link), renamed over it once complete.
            let partial = partial_path(path);
            let file = crate::private_file::create_new(&partial)
                .with_context(|| format!("cannot write the export to {}", path.display()))?;
            let written = export(&client, args.members, std::io::BufWriter::new(file)).and_then(
                |(out, counts)| {
                    let file = out.into_inner().map_err(|error| error.into_error())?;
                    file.sync_all()?;
                    std::fs::rename(&partial, path)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    Ok(counts)
                },
            );
            if written.is_err() {
                let _ = std::fs::remove_file(&partial);
            }
            written?
        }
        None => export(&client, args.members, std::io::stdout().lock())?.1,
    };
    let written_to = args.output.as_ref().map_or_else(
        || "standard output".to_owned(),
        |path| path.display().to_string(),
    );
    if json && args.output.is_some() {
        return print_json(&counts);
    }
    eprintln!(
        "exported {} messages, {} statements, {} kept canaries, the fork evidence of {} keys{} to {written_to}",
        counts.messages,
        counts.statements,
        counts.kept_canaries,
        counts.fork_evidence,
        if counts.members {
            " and the members file"
        } else {
            ""
        },
    );
    Ok(())
}

/// Writes the whole export to `out`: the pages, then what the daemon holds beside them
/// (read after the pages, so that a canary expiring meanwhile is in one or the other; an
/// import sends the statements first whatever their place in the file).
fn export<W: Write>(client: &Client, members: bool, out: W) -> anyhow::Result<(W, Exported)> {
    let mut writer = Writer::new(out);
    let mut counts = Exported::default();
    writer.line(&Line::Header(Header {
        format: FORMAT.to_owned(),
        exported_at_ms: now_ms(),
        software: format!("solidarity {}", crate::VERSION),
    }))?;
    let mut after = None;
    loop {
        let page = call_patiently(client, &request::ExportPage { after })?;
        for envelope in page.envelopes {
            writer.line(&Line::Message(envelope))?;
            counts.messages += 1;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let extras = call_patiently(client, &request::ExportExtras { members })?;
    for envelope in extras.statements {
        writer.line(&Line::Statement(envelope))?;
        counts.statements += 1;
    }
    for envelope in extras.kept_canaries {
        writer.line(&Line::KeptCanary(envelope))?;
        counts.kept_canaries += 1;
    }
    for proof in extras.fork_evidence {
        writer.line(&Line::ForkEvidence(proof))?;
        counts.fork_evidence += 1;
    }
    if let Some(text) = extras.members {
        writer.line(&Line::Members(text))?;
        counts.members = true;
    }
    let (out, _) = writer.finish()?;
    Ok((out, counts))
}

/// How often a read the daemon refused as busy (other CLI reads running) is asked again.
const BUSY_RETRIES: u32 = 50;

/// Calls `request`, asking again while the daemon is busy with other store reads, so an
/// export is not cut short by another admin's `alert list --all`.
fn call_patiently<R: ControlRequest>(client: &Client, request: &R) -> anyhow::Result<R::Response> {
    let mut tries = 0;
    loop {
        match client.call(request) {
            Err(ControlError::Refused(refusal))
                if refusal.code == RefusalCode::Busy && tries < BUSY_RETRIES =>
            {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            answer => return Ok(answer?),
        }
    }
}

/// `.NAME.PID.partial` beside `path`.
fn partial_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "export".into(), |name| name.to_string_lossy());
    path.with_file_name(format!(".{name}.{}.partial", std::process::id()))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}
