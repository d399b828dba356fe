//! `solidarity import FILE`: the lines of an export ([`super::export_file`]) sent to the
//! daemon in batches, each envelope checked there like one received from a member; every
//! line not imported is reported by number.

use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;
use solidarity_control::{Client, EnvelopeBytes, ImportOutcome, MAX_REQUEST_BYTES, request};

use super::export_file::{FORMAT, Line, ReadLine, read_lines};
use super::print_json;

#[derive(Args)]
pub struct ImportArgs {
    /// The export (`-`: standard input, e.g. `gpg -d backup.jsonl.gpg | solidarity import -`).
    pub file: PathBuf,
    /// Write the members file the export holds to PATH (new file); import never applies
    /// it by itself.
    #[arg(long, value_name = "PATH")]
    pub members_out: Option<PathBuf>,
}

/// Request bytes an import batch may take, below [`MAX_REQUEST_BYTES`].
const BATCH_BYTES: usize = MAX_REQUEST_BYTES - 8 * 1024;
/// Request bytes an envelope takes beyond twice its length (hex): its JSON object.
const ITEM_OVERHEAD: usize = 64;
/// Most envelopes per batch.
const BATCH_ITEMS: usize = 1024;
/// Most passes over the lines refused for now (their signer's trust comes later in the
/// file, e.g. from a vouch).
const RETRY_PASSES: usize = 3;
/// Most lines listed per kind of problem; the rest are counted.
const LISTED: usize = 1000;

/// Where a line's envelopes go, in the order the sections are sent: a batch never spans
/// two, so what an earlier one changes (trust) holds for the later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Section {
    Statement,
    Message,
    KeptCanary,
    ForkEvidence,
}

/// One envelope to import.
struct Pending {
    /// Its line.
    number: u64,
    envelope: EnvelopeBytes,
    section: Section,
}

impl Pending {
    fn request_bytes(&self) -> usize {
        2 * self.envelope.0.len() + ITEM_OVERHEAD
    }

    fn item(&self) -> request::ImportEnvelope {
        request::ImportEnvelope {
            envelope: self.envelope.clone(),
            kept: self.section == Section::KeptCanary,
            // The envelopes of one line of fork evidence prove the fork together.
            fork_group: (self.section == Section::ForkEvidence)
                .then(|| u32::try_from(self.number).unwrap_or(u32::MAX)),
        }
    }
}

/// Lines with a problem, by number: why (the first [`LISTED`]; the rest are counted).
#[derive(Debug, Default, Serialize)]
struct Lines {
    listed: BTreeMap<u64, String>,
    more: usize,
}

impl Lines {
    fn insert(&mut self, number: u64, why: String) {
        if self.listed.contains_key(&number) || self.listed.len() < LISTED {
            self.listed.insert(number, why);
        } else {
            self.more += 1;
        }
    }

    fn len(&self) -> usize {
        self.listed.len() + self.more
    }
}

/// What became of the file.
#[derive(Debug, Default, Serialize)]
struct ImportReport {
    stored: usize,
    held: usize,
    fork_evidence: usize,
    expired: usize,
    /// Lines not imported because they are invalid or unreadable.
    not_imported: Lines,
    /// Valid lines this node does not take (a signer it does not trust, over a member's
    /// storage cap), as sync would not.
    ignored: Lines,
    /// Where the members file went, if the export held one.
    members_written_to: Option<PathBuf>,
    /// What is odd about the file as a whole (cut short).
    warnings: Vec<String>,
}

pub fn run_import(data_dir: &Path, args: ImportArgs, json: bool) -> anyhow::Result<()> {
    let mut report = ImportReport::default();
    let (pending, members) = read_file(&args.file, &mut report)?;
    let envelopes = pending.len();
    let client = crate::locations::client(data_dir);
    // A daemon that is down is named as such, before anything is written or sent.
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
        let before = waiting.len();
        if before == 0 {
            break;
        }
        waiting = send(
            &client,
            waiting.into_iter().map(|(item, _)| item),
            &mut report,
        )?;
        if waiting.len() == before {
            break;
        }
    }
    let untrusted = waiting.len();
    for (pending, reason) in waiting {
        report.ignored.insert(pending.number, reason);
    }
    if untrusted > 0 && untrusted * 2 >= envelopes {
        report.warnings.push(format!(
            "{untrusted} of {envelopes} envelopes were ignored because their signers are not trusted here: restore the members file first (`import --members-out PATH`, put it in place, `{}`), then import again",
            crate::locations::hint("member reload")
        ));
    }
    if json {
        print_json(&report)?;
    } else {
        print_report(&report);
    }
    if report.not_imported.len() > 0 {
        bail!(
            "{} line(s) of {} were not imported (listed above); nothing of them was stored",
            report.not_imported.len(),
            args.file.display()
        );
    }
    Ok(())
}

/// Reads and sorts the file in one pass: only its envelopes are held, never its bad lines.
fn read_file(
    path: &Path,
    report: &mut ImportReport,
) -> anyhow::Result<(Vec<Pending>, Option<String>)> {
    let unreadable = |error: std::io::Error| {
        anyhow::Error::new(error).context(format!("cannot read {}", path.display()))
    };
    if path == Path::new("-") {
        let lines = read_lines(std::io::stdin().lock());
        return sort_lines(path, lines.map(|line| line.map_err(unreadable)), report);
    }
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let lines = read_lines(BufReader::new(file));
    sort_lines(path, lines.map(|line| line.map_err(unreadable)), report)
}

/// Checks the header and the end, and takes out the envelopes to send (statements first)
/// and the members file; lines that do not read are reported.
fn sort_lines(
    path: &Path,
    mut lines: impl Iterator<Item = anyhow::Result<ReadLine>>,
    report: &mut ImportReport,
) -> anyhow::Result<(Vec<Pending>, Option<String>)> {
    match lines.next().transpose()?.map(|first| first.line) {
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
    // Lines before the end line, the header included, against the count it holds.
    let mut before_end = 1u64;
    let mut end = None;
    for read in lines {
        let ReadLine { number, line } = read?;
        if end.is_some() {
            report
                .not_imported
                .insert(number, "after the end line".to_owned());
            continue;
        }
        let (section, envelopes) = match line {
            Err(why) => {
                report.not_imported.insert(number, why);
                before_end += 1;
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
                before_end += 1;
                continue;
            }
            Ok(Line::Members(text)) => {
                members = Some(text);
                before_end += 1;
                continue;
            }
            Ok(Line::Statement(envelope)) => (Section::Statement, vec![envelope]),
            Ok(Line::Message(envelope)) => (Section::Message, vec![envelope]),
            Ok(Line::KeptCanary(envelope)) => (Section::KeptCanary, vec![envelope]),
            Ok(Line::ForkEvidence(proof)) => (Section::ForkEvidence, proof),
        };
        before_end += 1;
        pending.extend(envelopes.into_iter().map(|envelope| Pending {
            number,
            envelope,
            section,
        }));
    }
    match end {
        None => report.warnings.push(
            "the file has no end line: it may be cut short (what it holds was imported)".to_owned(),
        ),
        Some(expected) if expected != before_end => report.warnings.push(format!(
            "the end line counts {expected} lines before it, the file holds {before_end}: lines may be missing"
        )),
        Some(_) => {}
    }
    // Statements first, as sync sends them: trust follows from them.
    pending.sort_by_key(|item| item.section as u8);
    Ok((pending, members))
}

/// Sends the envelopes in batches that fit a request, never across a section and never
/// splitting a line of fork evidence that fits one; returns those refused for now that
/// may be taken on another pass, with why.
fn send(
    client: &Client,
    pending: impl IntoIterator<Item = Pending>,
    report: &mut ImportReport,
) -> anyhow::Result<Vec<(Pending, String)>> {
    let mut batches: Vec<(usize, Vec<Pending>)> = Vec::new();
    for item in pending {
        let bytes = item.request_bytes();
        match batches.last_mut() {
            Some((size, batch))
                if *size + bytes <= BATCH_BYTES
                    && batch.len() < BATCH_ITEMS
                    && batch
                        .last()
                        .is_some_and(|last| last.section == item.section) =>
            {
                *size += bytes;
                batch.push(item);
            }
            // A line of evidence that fills a batch alone is split (its halves may then
            // prove nothing; a key's evidence is bounded where it is stored).
            Some((size, batch))
                if item.section == Section::ForkEvidence
                    && batch.last().is_some_and(|last| last.number == item.number)
                    && batch
                        .first()
                        .is_some_and(|first| first.number != item.number)
                    && line_bytes(batch, item.number) + bytes <= BATCH_BYTES =>
            {
                // Move the line's evidence so far into the new batch with it.
                let split = batch
                    .iter()
                    .position(|held| held.number == item.number)
                    .unwrap_or(batch.len());
                let mut line: Vec<Pending> = batch.drain(split..).collect();
                let moved = line.iter().map(Pending::request_bytes).sum::<usize>();
                *size -= moved;
                line.push(item);
                batches.push((moved + bytes, line));
            }
            _ => batches.push((bytes, vec![item])),
        }
    }
    let mut retry = Vec::new();
    for (_, batch) in batches.into_iter().filter(|(_, batch)| !batch.is_empty()) {
        send_batch(client, batch, report, &mut retry)?;
    }
    Ok(retry)
}

/// Request bytes of the items of line `number` at the end of `batch`.
fn line_bytes(batch: &[Pending], number: u64) -> usize {
    batch
        .iter()
        .rev()
        .take_while(|item| item.number == number)
        .map(Pending::request_bytes)
        .sum()
}

fn send_batch(
    client: &Client,
    batch: Vec<Pending>,
    report: &mut ImportReport,
    retry: &mut Vec<(Pending, String)>,
) -> anyhow::Result<()> {
    let request = request::Import {
        envelopes: batch.iter().map(Pending::item).collect(),
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
            ImportOutcome::Ignored { reason, .. } => report.ignored.insert(item.number, reason),
            ImportOutcome::Rejected { reason } => report.not_imported.insert(item.number, reason),
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
    let list = |lines: &Lines, what: &str| {
        for (number, why) in &lines.listed {
            eprintln!("line {number}: {what}: {why}");
        }
        if lines.more > 0 {
            eprintln!("… and {} more lines {what}", lines.more);
        }
    };
    list(&report.ignored, "ignored");
    list(&report.not_imported, "not imported");
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
