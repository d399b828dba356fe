//! The webhook channel: one HTTP(S) POST of the batch's JSON, signed with HMAC-SHA256.
//!
//! - Headers: `X-Solidarity-Timestamp: <unix seconds>`, `X-Solidarity-Signature-256:
//!   sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>`, `User-Agent: solidarity/<version>`
//!   (the receiver's rule is in `protocol-spec/notify.md`).
//! - 2xx is accepted; any other status, a redirect, a TLS failure or the timeout is a
//!   [`SendError`]. Redirects are never followed.
//!
//! Must not: put the URL, the secret or the body into an error reason.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::channel::SendError;
use super::config::WebhookTarget;
use super::doc::Batch;

/// Header carrying the signing time, unix seconds.
const TIMESTAMP_HEADER: &str = "X-Solidarity-Timestamp";
/// Header carrying `sha256=<hex>`.
const SIGNATURE_HEADER: &str = "X-Solidarity-Signature-256";

/// A ready webhook channel.
pub struct WebhookChannel {
    target: WebhookTarget,
    timeout: Duration,
    client: reqwest::Client,
}

impl WebhookChannel {
    /// Builds the HTTP client (webpki roots plus the channel's `ca_pem`).
    pub fn new(target: &WebhookTarget, timeout: Duration) -> anyhow::Result<Self> {
        reqwest::Url::parse(&target.url).context("`url` is not a valid URL")?;
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .user_agent(concat!("solidarity/", env!("CARGO_PKG_VERSION")))
            .use_rustls_tls()
            .https_only(false);
        if let Some(pem) = &target.ca_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem)
                .context("`ca_file` holds no readable PEM certificate")?;
            if certificates.is_empty() {
                anyhow::bail!("`ca_file` holds no PEM certificate");
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let client = builder.build().context("cannot set up the HTTP client")?;
        Ok(Self {
            target: target.clone(),
            timeout,
            client,
        })
    }

    /// POSTs the batch once; a 2xx answer is accepted.
    pub async fn send(&self, batch: &Batch) -> Result<(), SendError> {
        let body = batch.to_json();
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|since| since.as_secs())
            .unwrap_or_default();
        let signature = signature_header(&self.target.secret, timestamp, &body);
        let request = self
            .client
            .post(&self.target.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send();
        // The client's timeout covers the whole request; this one also covers its setup.
        let response = match tokio::time::timeout(self.timeout, request).await {
            Err(_) => return Err(self.timed_out()),
            Ok(Err(error)) => return Err(self.describe(&error)),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.is_redirection() {
            Err(SendError::new(format!(
                "HTTP {} (redirects are not followed)",
                status.as_u16()
            )))
        } else {
            Err(SendError::new(format!("HTTP {}", status.as_u16())))
        }
    }

    fn timed_out(&self) -> SendError {
        SendError::new(format!("timed out after {} s", self.timeout.as_secs()))
    }

    /// A reason without the URL (reqwest's messages carry it).
    fn describe(&self, error: &reqwest::Error) -> SendError {
        if error.is_timeout() {
            return self.timed_out();
        }
        let mut chain = Vec::new();
        let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
        while let Some(cause) = source {
            chain.push(cause.to_string());
            source = cause.source();
        }
        let detail = chain.join(": ");
        let lower = detail.to_ascii_lowercase();
        if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
            let tls = chain
                .iter()
                .rev()
                .find(|cause| !cause.is_empty())
                .cloned()
                .unwrap_or(detail);
            SendError::new(format!("TLS: {tls}"))
        } else if error.is_connect() {
            SendError::new(format!("cannot connect: {detail}"))
        } else {
            SendError::new(format!("request failed: {detail}"))
        }
    }
}

/// `sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>`, the value of
/// [`SIGNATURE_HEADER`].
fn signature_header(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}
