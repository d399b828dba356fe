//! Statement files (a revocation or a certificate made elsewhere): read, checked and
//! described locally before anything is sent to the daemon.

use std::path::Path;

use anyhow::{Context, bail};
use solidarity_proto::payload::{self, NodeCert, Revocation};
use solidarity_proto::{AuthorKey, Body, Envelope, Payload};

use crate::render::format_time;

/// A statement file, decoded.
pub struct StatementFile {
    /// The envelope bytes, as the daemon takes them.
    pub envelope: Vec<u8>,
    /// Its signer.
    pub signer: AuthorKey,
    /// Its payload.
    pub payload: Payload,
    /// Its body.
    pub body: Body,
}

/// Reads and decodes a statement file; the error names what the file is when it is not a
/// signed message.
pub fn read_statement_file(path: &Path) -> anyhow::Result<StatementFile> {
    let shown = path.display();
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {shown}"))?;
    let Ok(text) = std::str::from_utf8(&bytes) else {
        bail!("{shown} is not a statement file: it is binary, not one line of hex");
    };
    let text = text.trim();
    if text.is_empty() {
        bail!("{shown} is not a statement file: it is empty");
    }
    let Ok(envelope) = hex::decode(text) else {
        bail!(
            "{shown} is not a statement file: it is not hex (a statement file holds one line of hex)"
        );
    };
    let Ok(parsed) = Envelope::decode(&envelope) else {
        bail!("{shown} is not a statement file: its hex is not a signed solidarity envelope");
    };
    if !parsed.verify() {
        bail!("{shown} is not a valid statement: its signature does not verify");
    }
    let Ok(payload) = Payload::decode(&parsed.payload) else {
        bail!("{shown} is not a valid statement: its signed payload does not decode");
    };
    let Ok(body) = Body::decode(&payload.kind, &payload.body) else {
        bail!(
            "{shown} is not a valid statement: its {} body does not decode",
            kind_name(&payload.kind)
        );
    };
    Ok(StatementFile {
        envelope,
        signer: parsed.signer,
        payload,
        body,
    })
}

/// What a message kind is, in words.
fn kind_name(kind: &str) -> String {
    match kind {
        payload::KIND_ALERT => "an alert".to_owned(),
        payload::KIND_ALERT_UPDATE => "an alert update".to_owned(),
        payload::KIND_MIRROR_OFFER => "a mirror offer".to_owned(),
        payload::KIND_MIRROR_WITHDRAW => "a mirror offer withdrawal".to_owned(),
        payload::KIND_CANARY => "a canary".to_owned(),
        payload::KIND_ENDORSEMENT => "an endorsement".to_owned(),
        payload::KIND_VOUCH => "a vouch".to_owned(),
        payload::KIND_REVOCATION => "a revocation".to_owned(),
        payload::KIND_NODE_CERT => "a node certificate".to_owned(),
        other => format!("a message of unknown kind {other:?}"),
    }
}

impl StatementFile {
    /// The revocation it holds, or an error naming what the file is instead.
    pub fn revocation(&self, path: &Path) -> anyhow::Result<&Revocation> {
        match &self.body {
            Body::Revocation(revocation) => Ok(revocation),
            Body::NodeCert(_) => bail!(
                "{} is a node certificate, not a revocation; nothing was sent (publish a certificate with `solidarity key publish --cert FILE`)",
                path.display()
            ),
            _ => bail!(
                "{} is {}, not a revocation; nothing was sent",
                path.display(),
                kind_name(&self.payload.kind)
            ),
        }
    }

    /// What it says, in one line, naming keys by `name` (which answers the short key for
    /// a key it does not know); `is_identity` tells the identities on this node's list, the
    /// only signers whose revocation of another key counts here.
    pub fn describe(
        &self,
        name: impl Fn(&AuthorKey) -> String,
        is_identity: impl Fn(&AuthorKey) -> bool,
    ) -> anyhow::Result<String> {
        let key_text = |key: &AuthorKey| {
            let named = name(key);
            if named == key.short() {
                format!("key {named}")
            } else {
                format!("{named} ({})", key.short())
            }
        };
        match &self.body {
            Body::Revocation(revocation) => {
                let revoked = revocation.key.unwrap_or(self.signer);
                let signer = if revoked == self.signer {
                    "the key itself".to_owned()
                } else if is_identity(&self.signer) {
                    format!("identity {}", name(&self.signer))
                } else {
                    // A crafted file must not read as a revocation that takes effect.
                    format!(
                        "{}, which is not an identity on this node's list (it revokes nothing here)",
                        key_text(&self.signer)
                    )
                };
                let since = revocation
                    .compromised_since
                    .unwrap_or(self.payload.created_at);
                Ok(format!(
                    "revocation of {} signed by {signer}, suspect since {}: {}",
                    key_text(&revoked),
                    format_time(since),
                    revocation.reason
                ))
            }
            Body::NodeCert(NodeCert {
                node_key,
                valid_from,
                valid_until,
                ..
            }) => Ok(format!(
                "certificate of {} by identity {}, valid from {} until {}",
                key_text(node_key),
                name(&self.signer),
                format_time(*valid_from),
                format_time(*valid_until)
            )),
            _ => bail!(
                "this file is {}, not a revocation or a certificate; nothing was sent",
                kind_name(&self.payload.kind)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revocation_file(signer: u8, revoked: u8) -> StatementFile {
        let body = Body::Revocation(Revocation {
            reason: "seized".into(),
            key: Some(AuthorKey([revoked; 32])),
            compromised_since: None,
        });
        StatementFile {
            envelope: Vec::new(),
            signer: AuthorKey([signer; 32]),
            payload: Payload {
                fed: solidarity_proto::FederationId::from_name("test"),
                seq: 0,
                prev: None,
                created_at: 0,
                expires_at: None,
                kind: payload::KIND_REVOCATION.to_owned(),
                body: body.encode(),
            },
            body,
        }
    }

    #[test]
    fn a_revocation_by_a_key_that_is_no_identity_here_does_not_read_as_effective() {
        let name = |key: &AuthorKey| {
            if key.0[0] == 1 {
                "alice".to_owned()
            } else {
                key.short()
            }
        };
        let crafted = revocation_file(9, 1)
            .describe(name, |_| false)
            .expect("describe");
        assert!(
            crafted.contains("not an identity on this node's list (it revokes nothing here)")
                && !crafted.contains("signed by identity"),
            "{crafted}"
        );
        let real = revocation_file(9, 1)
            .describe(name, |key| key.0[0] == 9)
            .expect("describe");
        assert!(real.contains("signed by identity"), "{real}");
    }
}
