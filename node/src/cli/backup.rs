//! `solidarity export` and `solidarity import`: every stored envelope out to a file of
//! JSON lines ([`super::export_file`]) and back in through the daemon's validation.

use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;
use solidarity_control::{
    Client, ControlError, ControlRequest, EnvelopeBytes, ImportOutcome, MAX_REQUEST_BYTES,
    RefusalCode, request,
};

use super::export_file::{FORMAT, Header, Line, ReadLine, Writer, read_lines};
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

#[derive(Args)]
pub struct ImportArgs {
    /// The export (`-`: standard input).
    pub file: PathBuf,
    /// Write the members file the export holds to PATH (new file); import never applies
    /// it by itself.
    #[arg(long, value_name = "PATH")]
    pub members_out: Option<PathBuf>,
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
            let partial = path.with_extension("partial");
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&partial)
                .with_context(|| format!("cannot create {}", partial.display()))?;
            let written = export(&client, args.members, std::io::BufWriter::new(file));
            let (out, counts) = match written {
                Ok(written) => written,
                Err(error) => {
                    let _ = std::fs::remove_file(&partial);
                    return Err(error);
                }
            };
            let file = out.into_inner().map_err(|error| error.into_error())?;
            file.sync_all()?;
            std::fs::rename(&partial, path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            counts
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
        "exported {} messages, {} statements, {} kept canaries, {} fork evidence{} to {written_to}",
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

/// Writes the whole export to `out`: statements first, then the pages, then the rest.
fn export<W: Write>(client: &Client, members: bool, out: W) -> anyhow::Result<(W, Exported)> {
    let extras = call_patiently(client, &request::ExportExtras { members })?;
    let mut writer = Writer::new(out);
    let mut counts = Exported::default();
    writer.line(&Line::Header(Header {
        format: FORMAT.to_owned(),
        exported_at_ms: now_ms(),
        software: format!("solidarity {}", crate::VERSION),
    }))?;
    for envelope in extras.statements {
        writer.line(&Line::Statement(envelope))?;
        counts.statements += 1;
    }
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
    for envelope in extras.kept_canaries {
        writer.line(&Line::KeptCanary(envelope))?;
        counts.kept_canaries += 1;
    }
    for envelope in extras.fork_evidence {
        writer.line(&Line::ForkEvidence(envelope))?;
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

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// Envelope bytes per import request, well under [`MAX_REQUEST_BYTES`] once as hex.
const BATCH_BYTES: usize = MAX_REQUEST_BYTES / 2 - 16 * 1024;
/// Most passes over the lines refused for now (their signer's trust comes later in the
/// file, e.g. from a vouch).
const RETRY_PASSES: usize = 3;

/// One envelope line to import.
struct Pending {
    number: u64,
    envelope: EnvelopeBytes,
    kept: bool,
    /// Its section: a batch never spans two, so what the earlier one changes (trust)
    /// holds for the later.
    section: u8,
}

/// What became of the file, by line.
#[derive(Debug, Default, Serialize)]
struct ImportReport {
    stored: usize,
    held: usize,
    fork_evidence: usize,
    expired: usize,
    /// Lines not imported because they are invalid or unreadable, by number: why.
    not_imported: BTreeMap<u64, String>,
    /// Valid lines this node does not take now (a signer it does not trust, over a
    /// member's storage cap), by number: why. Sync would not take them either.
    ignored: BTreeMap<u64, String>,
    /// Where the members file went, if the export held one.
    members_written_to: Option<PathBuf>,
    /// What is odd about the file as a whole (cut short).
    warnings: Vec<String>,
}

pub fn run_import(data_dir: &Path, args: ImportArgs, json: bool) -> anyhow::Result<()> {
    let lines = read_file(&args.file)?;
    let mut report = ImportReport::default();
    let (pending, members) = sort_lines(&args.file, lines, &mut report)?;
    let client = crate::locations::client(data_dir);
    // A daemon that is down is named as such, before anything is sent.
    client.status()?;
    if let Some(text) = &members {
        match &args.members_out {
            Some(path) => {
                write_new(path, text)?;
                report.members_written_to = Some(path.clone());
            }
            None => report.warnings.push(
                "the export holds a members file; it was not applied (write it out with --members-out PATH)".to_owned(),
            ),
        }
    }
    let mut waiting = send(&client, pending, &mut report)?;
    for _ in 0..RETRY_PASSES {
        if waiting.is_empty() {
            break;
        }
        let before = waiting.len();
        waiting = send(
            &client,
            waiting.into_iter().map(|(item, _)| item),
            &mut report,
        )?;
        if waiting.len() == before {
            break;
        }
    }
    for (pending, reason) in waiting {
        report.ignored.insert(pending.number, reason);
    }
    if json {
        print_json(&report)?;
    } else {
        print_report(&report);
    }
    if !report.not_imported.is_empty() {
        bail!(
            "{} line(s) of {} were not imported (listed above); nothing of them was stored",
            report.not_imported.len(),
            args.file.display()
        );
    }
    Ok(())
}

fn read_file(path: &Path) -> anyhow::Result<Vec<ReadLine>> {
    if path == Path::new("-") {
        return Ok(read_lines(std::io::stdin().lock())?);
    }
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    read_lines(BufReader::new(file)).with_context(|| format!("cannot read {}", path.display()))
}

/// Checks the header and the end, and takes out the envelopes to send and the members
/// file; lines that do not read are reported.
fn sort_lines(
    path: &Path,
    lines: Vec<ReadLine>,
    report: &mut ImportReport,
) -> anyhow::Result<(Vec<Pending>, Option<String>)> {
    let mut lines = lines.into_iter();
    match lines.next().map(|first| first.line) {
        Some(Ok(Line::Header(header))) if header.format == FORMAT => {}
        Some(Ok(Line::Header(header))) => bail!(
            "{} is an export of format {:?}, which this version ({}) cannot read; nothing was imported",
            path.display(),
            header.format,
            crate::VERSION
        ),
        _ => bail!(
            "{} is not a solidarity export (its first line is not a {FORMAT} header); nothing was imported",
            path.display()
        ),
    }
    let mut pending = Vec::new();
    let mut members = None;
    let mut end = None;
    let mut count = 1u64;
    for ReadLine { number, line } in lines {
        let (envelope, kept, section) = match line {
            Err(why) => {
                report.not_imported.insert(number, why);
                continue;
            }
            Ok(_) if end.is_some() => {
                report
                    .not_imported
                    .insert(number, "after the end line".to_owned());
                continue;
            }
            Ok(Line::End { lines }) => {
                end = Some(lines);
                continue;
            }
            Ok(Line::Header(_)) => {
                report
                    .not_imported
                    .insert(number, "a second header".to_owned());
                continue;
            }
            Ok(Line::Members(text)) => {
                members = Some(text);
                count += 1;
                continue;
            }
            Ok(Line::Statement(envelope)) => (envelope, false, 0),
            Ok(Line::Message(envelope)) => (envelope, false, 1),
            Ok(Line::KeptCanary(envelope)) => (envelope, true, 2),
            Ok(Line::ForkEvidence(envelope)) => (envelope, false, 3),
        };
        count += 1;
        pending.push(Pending {
            number,
            envelope,
            kept,
            section,
        });
    }
    match end {
        None => report.warnings.push(
            "the file has no end line: it may be cut short (what it holds was imported)".to_owned(),
        ),
        Some(expected) if expected != count + report.not_imported.len() as u64 => {
            report.warnings.push(format!(
                "the end line counts {expected} lines before it, the file holds {}: lines may be missing",
                count + report.not_imported.len() as u64
            ));
        }
        Some(_) => {}
    }
    Ok((pending, members))
}

/// Sends the envelopes in batches (never across a section); returns those refused for
/// now that may be taken on another pass, with why.
fn send(
    client: &Client,
    pending: impl IntoIterator<Item = Pending>,
    report: &mut ImportReport,
) -> anyhow::Result<Vec<(Pending, String)>> {
    let mut batches: Vec<(usize, Vec<Pending>)> = Vec::new();
    for item in pending {
        let bytes = item.envelope.0.len();
        match batches.last_mut() {
            Some((size, batch))
                if *size + bytes <= BATCH_BYTES
                    && batch
                        .last()
                        .is_some_and(|last| last.section == item.section) =>
            {
                *size += bytes;
                batch.push(item);
            }
            _ => batches.push((bytes, vec![item])),
        }
    }
    let mut retry = Vec::new();
    for (_, batch) in batches {
        send_batch(client, batch, report, &mut retry)?;
    }
    Ok(retry)
}

fn send_batch(
    client: &Client,
    batch: Vec<Pending>,
    report: &mut ImportReport,
    retry: &mut Vec<(Pending, String)>,
) -> anyhow::Result<()> {
    let request = request::Import {
        envelopes: batch
            .iter()
            .map(|item| request::ImportEnvelope {
                envelope: item.envelope.clone(),
                kept: item.kept,
            })
            .collect(),
    };
    let answer = client.call(&request).context(
        "the import stopped (what was answered before is stored; importing the file again is safe)",
    )?;
    if answer.outcomes.len() != batch.len() {
        bail!(
            "the daemon answered {} outcomes for {} envelopes",
            answer.outcomes.len(),
            batch.len()
        );
    }
    for (item, outcome) in batch.into_iter().zip(answer.outcomes) {
        match outcome {
            ImportOutcome::Stored => report.stored += 1,
            ImportOutcome::Held => report.held += 1,
            ImportOutcome::ForkEvidence => report.fork_evidence += 1,
            ImportOutcome::Expired => report.expired += 1,
            ImportOutcome::Ignored {
                reason,
                retry: true,
            } => retry.push((item, reason)),
            ImportOutcome::Ignored { reason, .. } => {
                report.ignored.insert(item.number, reason);
            }
            ImportOutcome::Rejected { reason } => {
                report.not_imported.insert(item.number, reason);
            }
        }
    }
    Ok(())
}

/// Writes `text` to a new file (never over an existing one), mode 0600.
fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut file = crate::private_file::create_new(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

fn print_report(report: &ImportReport) {
    for (number, why) in &report.ignored {
        eprintln!("line {number}: ignored: {why}");
    }
    for (number, why) in &report.not_imported {
        eprintln!("line {number}: not imported: {why}");
    }
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    println!(
        "imported: {} stored, {} already held, {} fork evidence, {} expired since the export, {} ignored (valid, not taken by this node), {} not imported (invalid)",
        report.stored,
        report.held,
        report.fork_evidence,
        report.expired,
        report.ignored.len(),
        report.not_imported.len()
    );
    if let Some(path) = &report.members_written_to {
        println!(
            "the export's members file is in {}: compare it with the members file in use, put it in place, then run `{}`",
            path.display(),
            crate::locations::hint("member reload")
        );
    }
}
