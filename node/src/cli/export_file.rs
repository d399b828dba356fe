//! The export file of `solidarity export` / `import`: JSON lines, one per record, each an
//! object with one key naming what it holds.
//!
//! ```text
//! {"header":{"format":"solidarity-export/1","exported_at_ms":…,"software":"solidarity 0.1.0 (…)"}}
//! {"message":"<envelope hex>"}         every stored chain message, in id order
//! {"statement":"<envelope hex>"}       revocations and node certificates (imported first)
//! {"kept_canary":"<envelope hex>"}     each author's latest canaries, kept past expiry
//! {"fork_evidence":["<hex>",…]}       per key marked compromised: the envelopes of its fork
//! {"members":"<members.toml text>"}    with `export --members` only
//! {"end":{"lines":N}}                  N lines before it: a file cut short lacks it
//! ```
//!
//! Envelopes are the stored bytes, verbatim: an import checks each like a received
//! message, so a file changed by anyone imports nothing that was not validly signed.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};
use solidarity_control::EnvelopeBytes;

/// The `format` of the header this version writes and reads.
pub const FORMAT: &str = "solidarity-export/1";
/// Longest line read (an envelope is at most 16 KiB, 32 KiB as hex; the members file
/// is small).
const MAX_LINE_BYTES: usize = 1024 * 1024;

/// The first line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// [`FORMAT`].
    pub format: String,
    /// When it was written, ms since the epoch.
    pub exported_at_ms: u64,
    /// The program that wrote it.
    pub software: String,
}

/// One line of the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Line {
    /// The first line.
    Header(Header),
    /// A revocation or node certificate.
    Statement(EnvelopeBytes),
    /// A chain message.
    Message(EnvelopeBytes),
    /// A canary kept past its expiry.
    KeptCanary(EnvelopeBytes),
    /// The evidence of one key's fork: its conflicting envelopes, with the messages they
    /// conflict with while these were stored.
    ForkEvidence(Vec<EnvelopeBytes>),
    /// The members file's text.
    Members(String),
    /// The last line.
    End {
        /// How many lines come before it.
        lines: u64,
    },
}

/// Writes lines, counting them for the end line.
pub struct Writer<W: Write> {
    out: W,
    lines: u64,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Self {
        Self { out, lines: 0 }
    }

    pub fn line(&mut self, line: &Line) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, line)?;
        self.out.write_all(b"\n")?;
        self.lines += 1;
        Ok(())
    }

    /// Writes the end line; returns the output and how many lines came before it.
    pub fn finish(mut self) -> std::io::Result<(W, u64)> {
        let lines = self.lines;
        self.line(&Line::End { lines })?;
        self.out.flush()?;
        Ok((self.out, lines))
    }
}

/// A line as read: its number (from 1) and what it holds, or why it could not be read.
pub struct ReadLine {
    pub number: u64,
    pub line: Result<Line, String>,
}

/// The lines of `input`, one at a time (a line too long or not an export line is an
/// error of that line, not of the file; blank lines are skipped); an `Err` item: the
/// input itself cannot be read.
pub fn read_lines<R: BufRead>(input: R) -> ReadLines<R> {
    ReadLines {
        input,
        buffer: Vec::new(),
        number: 0,
    }
}

/// The iterator of [`read_lines`].
pub struct ReadLines<R> {
    input: R,
    buffer: Vec<u8>,
    number: u64,
}

impl<R: BufRead> Iterator for ReadLines<R> {
    type Item = std::io::Result<ReadLine>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buffer.clear();
            // `Take` of a `&mut` keeps the input for the next line.
            let read = std::io::Read::take(&mut self.input, MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut self.buffer);
            match read {
                Err(error) => return Some(Err(error)),
                Ok(0) => return None,
                Ok(_) => {}
            }
            self.number += 1;
            let line = if self.buffer.len() > MAX_LINE_BYTES && self.buffer.last() != Some(&b'\n') {
                if let Err(error) = skip_line(&mut self.input) {
                    return Some(Err(error));
                }
                Err(format!("longer than {MAX_LINE_BYTES} bytes"))
            } else if self.buffer.iter().all(u8::is_ascii_whitespace) {
                continue;
            } else {
                serde_json::from_slice::<Line>(&self.buffer)
                    .map_err(|error| format!("not an export line: {error}"))
            };
            return Some(Ok(ReadLine {
                number: self.number,
                line,
            }));
        }
    }
}

/// Skips the rest of a line without holding it.
fn skip_line(input: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            return Ok(());
        }
        match chunk.iter().position(|byte| *byte == b'\n') {
            Some(end) => {
                input.consume(end + 1);
                return Ok(());
            }
            None => {
                let all = chunk.len();
                input.consume(all);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_bad_ones_are_errors_of_their_line() {
        let mut writer = Writer::new(Vec::new());
        let header = Line::Header(Header {
            format: FORMAT.to_owned(),
            exported_at_ms: 5,
            software: "solidarity test".to_owned(),
        });
        writer.line(&header).expect("write");
        writer
            .line(&Line::Message(EnvelopeBytes(vec![1, 2, 255])))
            .expect("write");
        let (mut bytes, lines) = writer.finish().expect("finish");
        assert_eq!(lines, 2);
        let text = String::from_utf8(bytes.clone()).expect("utf-8");
        assert!(text.contains(r#"{"message":"0102ff"}"#), "{text}");
        assert!(text.ends_with("{\"end\":{\"lines\":2}}\n"), "{text}");
        bytes.extend_from_slice(b"{\"message\":\"zz\"}\n\n{\"oops\":1}\n");
        bytes.extend(std::iter::repeat_n(b'a', MAX_LINE_BYTES + 10));
        bytes.extend_from_slice(b"\n{\"end\":{\"lines\":9}}");
        let read: Vec<ReadLine> = read_lines(bytes.as_slice())
            .collect::<Result<_, _>>()
            .expect("read");
        let numbers: Vec<u64> = read.iter().map(|line| line.number).collect();
        assert_eq!(numbers, [1, 2, 3, 4, 6, 7, 8], "blank line 5 skipped");
        assert_eq!(read[0].line.as_ref().expect("header"), &header);
        assert!(read[3].line.is_err(), "bad hex");
        assert!(read[4].line.is_err(), "unknown key");
        assert!(
            read[5]
                .line
                .as_ref()
                .expect_err("too long")
                .contains("longer")
        );
        assert_eq!(read[6].line, Ok(Line::End { lines: 9 }), "no final newline");
    }
}
