//! The mail channel: one SMTP submission per batch to all recipients (lettre over rustls).
//!
//! - TLS: `starttls` requires the upgrade (never a plain fallback), `implicit` is TLS from the
//!   first byte, `none` only to a loopback server (checked in config). Roots: webpki plus the
//!   channel's `ca_pem`. AUTH PLAIN/LOGIN when credentials are set.
//! - Plain channel: the batch's subject, a text/plain UTF-8 body.
//! - Encrypted channel: PGP/MIME (RFC 3156) to every `encrypt_to` key, optionally signed; the
//!   outer Subject is [`NEUTRAL_SUBJECT`], the real one is inside the encrypted part.
//! - Accepted: the server's 250 after DATA. The whole attempt is bounded by the timeout.
//!
//! Must not: put addresses, server replies that may quote them, or alert text in a reason;
//! send an encrypted channel's text in the clear.

use std::time::Duration;

use anyhow::Context;
use lettre::message::header::{ContentDisposition, ContentType};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::channel::SendError;
use super::config::{MailTarget, MailTls};
use super::doc::Batch;
use super::openpgp::Crypto;

/// The Subject of every encrypted mail: says nothing of what happened.
const NEUTRAL_SUBJECT: &str = "solidarity notification";

/// A ready mail channel.
pub struct MailChannel {
    timeout: Duration,
    from: Mailbox,
    to: Vec<Mailbox>,
    /// Boxed, as is the transport: they keep [`super::channel::Channel`]'s variants small.
    crypto: Option<Box<Crypto>>,
    transport: Box<AsyncSmtpTransport<Tokio1Executor>>,
}

impl MailChannel {
    /// Parses addresses, keys and TLS roots; an unusable key is refused here.
    pub fn new(target: &MailTarget, timeout: Duration) -> anyhow::Result<Self> {
        let from: Mailbox = target
            .from
            .parse()
            .context("`from` is not a valid mail address")?;
        let to = target
            .to
            .iter()
            .enumerate()
            .map(|(index, address)| {
                address.parse::<Mailbox>().with_context(|| {
                    format!("`to` entry #{} is not a valid mail address", index + 1)
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let crypto = if target.encrypted() {
            Some(Box::new(Crypto::new(
                &target.encrypt_to,
                target.sign_key.as_deref(),
            )?))
        } else {
            None
        };
        let tls = match target.tls {
            MailTls::None => Tls::None,
            MailTls::Starttls => Tls::Required(tls_parameters(target)?),
            MailTls::Implicit => Tls::Wrapper(tls_parameters(target)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&target.server)
            .port(target.port)
            .tls(tls)
            .timeout(Some(timeout));
        if let Some((user, password)) = &target.credentials {
            builder = builder
                .credentials(Credentials::new(user.clone(), password.clone()))
                .authentication(vec![Mechanism::Plain, Mechanism::Login]);
        }
        Ok(Self {
            timeout,
            from,
            to,
            crypto,
            transport: Box::new(builder.build()),
        })
    }

    /// Submits one mail for the batch; the server's 250 after DATA is accepted.
    pub async fn send(&self, batch: &Batch) -> Result<(), SendError> {
        let message = self.message(batch)?;
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Err(_) => Err(SendError::new(format!(
                "timed out after {} s",
                self.timeout.as_secs()
            ))),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(describe(&error, self.timeout)),
        }
    }

    fn message(&self, batch: &Batch) -> Result<Message, SendError> {
        let mut builder = Message::builder().from(self.from.clone());
        for recipient in &self.to {
            builder = builder.to(recipient.clone());
        }
        let built = match &self.crypto {
            None => builder
                .subject(batch.subject())
                .singlepart(SinglePart::plain(batch.text())),
            Some(crypto) => {
                let armoured = crypto
                    .encrypt(inner_entity(batch))
                    .map_err(|error| SendError::new(format!("OpenPGP: {error:#}")))?;
                builder.subject(NEUTRAL_SUBJECT).multipart(
                    MultiPart::encrypted("application/pgp-encrypted".to_owned())
                        .singlepart(
                            SinglePart::builder()
                                .header(content_type("application/pgp-encrypted")?)
                                .header(ContentDisposition::inline())
                                .body("Version: 1\r\n".to_owned()),
                        )
                        .singlepart(
                            SinglePart::builder()
                                .header(content_type(
                                    "application/octet-stream; name=\"encrypted.asc\"",
                                )?)
                                .header(ContentDisposition::inline_with_name("encrypted.asc"))
                                .body(armoured),
                        ),
                )
            }
        };
        built.map_err(|error| SendError::new(format!("cannot build the mail: {error}")))
    }
}

/// What an encrypted mail carries inside: a MIME text part with the real subject as a
/// protected header and as its first line.
fn inner_entity(batch: &Batch) -> Vec<u8> {
    let subject = batch.subject().replace(['\r', '\n'], " ");
    let mut text = format!(
        "Content-Type: text/plain; charset=utf-8; protected-headers=\"v1\"\r\n\
         Content-Transfer-Encoding: 8bit\r\n\
         Subject: {subject}\r\n\r\nSubject: {subject}\r\n\r\n"
    );
    for line in batch.text().lines() {
        text.push_str(line);
        text.push_str("\r\n");
    }
    text.into_bytes()
}

fn content_type(value: &str) -> Result<ContentType, SendError> {
    ContentType::parse(value).map_err(|_| SendError::new("cannot build the mail's MIME type"))
}

fn tls_parameters(target: &MailTarget) -> anyhow::Result<TlsParameters> {
    let mut builder = TlsParameters::builder(target.server.clone());
    if let Some(pem) = &target.ca_pem {
        for block in pem_blocks(pem) {
            let certificate = Certificate::from_pem(block.as_bytes())
                .context("`ca_file` holds a certificate that cannot be read")?;
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder
        .build_rustls()
        .context("cannot set up TLS for the mail server")
}

/// Each `-----BEGIN CERTIFICATE-----` block of a PEM bundle.
fn pem_blocks(pem: &[u8]) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    let text = String::from_utf8_lossy(pem);
    let mut blocks = Vec::new();
    let mut rest = &*text;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let Some(end) = rest[start..].find(END) else {
            break;
        };
        let stop = start + end + END.len();
        blocks.push(format!("{}\n", &rest[start..stop]));
        rest = &rest[stop..];
    }
    blocks
}

/// A reason for the admin: the SMTP code and kind, never the server's text (it may quote
/// an address).
fn describe(error: &lettre::transport::smtp::Error, timeout: Duration) -> SendError {
    let code = error.status().map(|code| code.to_string());
    let code = code.as_deref().unwrap_or("?");
    if error.is_timeout() {
        SendError::new(format!("timed out after {} s", timeout.as_secs()))
    } else if error.is_tls() {
        let mut cause = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(inner) = source {
            cause = inner.to_string();
            source = inner.source();
        }
        SendError::new(format!("TLS: {cause}"))
    } else if error.is_transient() {
        SendError::new(format!("SMTP temporary failure {code}"))
    } else if error.is_permanent() {
        if code.starts_with("53") {
            SendError::new(format!("SMTP authentication refused {code}"))
        } else {
            SendError::new(format!("SMTP refused {code}"))
        }
    } else {
        let text = error.to_string();
        let lower = text.to_ascii_lowercase();
        if lower.contains("starttls") || lower.contains("tls") {
            SendError::new("TLS: the server does not offer STARTTLS")
        } else if lower.contains("authentication") || lower.contains("mechanism") {
            SendError::new("SMTP: no usable AUTH mechanism offered")
        } else {
            let mut cause = String::new();
            let mut source = std::error::Error::source(error);
            while let Some(inner) = source {
                cause = inner.to_string();
                source = inner.source();
            }
            if cause.is_empty() {
                SendError::new(format!("SMTP: {}", first_words(&text)))
            } else {
                SendError::new(format!("SMTP: {}: {cause}", first_words(&text)))
            }
        }
    }
}

/// The start of a client-side error message, without anything after a colon (a host or an
/// address may follow one).
fn first_words(text: &str) -> String {
    text.split(':').next().unwrap_or(text).trim().to_owned()
}
