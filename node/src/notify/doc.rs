//! What a notification says: the versioned JSON document webhooks receive and exec hooks read
//! on stdin, and the text a mail carries. One [`Batch`] is one delivery on one channel: the
//! notices that arrived within its settle delay, folded together.
//!
//! Schema `solidarity-notify/1` (documented in `protocol-spec/notify.md`): fields are only
//! ever added within a version; a receiver ignores fields it does not know.

use serde::{Deserialize, Serialize};

/// The schema name and version every document carries.
pub const SCHEMA: &str = "solidarity-notify/1";

/// How urgent a notice is, least to most (the alert's own severity for alert notices).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For the record.
    Info,
    /// Worth a look.
    Low,
    /// Act soon.
    Medium,
    /// Act now.
    High,
    /// Wake someone.
    Critical,
}

/// What a notice is about. The names are the config's `types` and the JSON's `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeType {
    /// A new alert.
    Alert,
    /// An update of an alert (status or note).
    AlertUpdate,
    /// An alert reached the confirmation threshold.
    AlertConfirmed,
    /// A member endorsed an alert.
    Endorsement,
    /// A member disputed an alert.
    Dispute,
    /// A key was revoked.
    Revocation,
    /// A key signed two conflicting messages: it is in two hands.
    Fork,
    /// A member's canary is overdue. Private.
    CanarySilent,
    /// A member's canary withdrew a code. Private.
    CanaryChanged,
    /// A member's canary is back to normal. Private.
    CanaryOk,
    /// A member signalled duress. Private.
    Duress,
    /// A certificate (ours or a member's) ends within a week.
    CertificateEnding,
    /// A member published a mirror offer.
    OfferNew,
    /// A member withdrew a mirror offer.
    OfferWithdrawn,
    /// A member has not been connected for longer than `member_unreachable_secs`.
    MemberUnreachable,
    /// Syncing with a member fails again and again.
    SyncFailing,
    /// A member's messages are held back by its budget.
    QuotaHit,
    /// `solidarity notify test`.
    Test,
}

impl NoticeType {
    /// Canary and duress notices: only ever sent on channels marked `private`.
    pub fn is_private(self) -> bool {
        matches!(
            self,
            Self::CanarySilent | Self::CanaryChanged | Self::CanaryOk | Self::Duress
        )
    }
}

/// The alert a notice is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertFields {
    /// The alert's message id (hex).
    pub id: String,
    /// Its category (`seizure`, `raid`, `takedown`, `legal_request`, …).
    pub kind: String,
    /// Its severity.
    pub severity: Severity,
    /// The server or domain concerned.
    pub subject: String,
    /// One line.
    pub summary: String,
    /// ISO 3166-1 alpha-2 codes.
    pub jurisdictions: Vec<String>,
    /// `open`, `resolved`, … now.
    pub status: String,
    /// When it was raised, ms since the epoch.
    pub created_at: u64,
}

/// One notice: something a person should hear of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeDoc {
    /// Stable id (64 hex): the same event gives the same id on every restart and re-sync,
    /// so a channel delivers it once.
    pub id: String,
    /// What it is about.
    #[serde(rename = "type")]
    pub notice_type: NoticeType,
    /// How urgent.
    pub severity: Severity,
    /// When this node noticed it, ms since the epoch.
    pub at: u64,
    /// One line for a person.
    pub title: String,
    /// More lines for a person (may be empty).
    pub text: String,
    /// The member concerned, by the name this node's admin gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// The alert concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<AlertFields>,
}

/// One delivery on one channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The federation this node is in.
    pub federation: String,
    /// The channel's name in `config.toml`.
    pub channel: String,
    /// When the batch was made, ms since the epoch.
    pub sent_at: u64,
    /// Oldest first, at least one.
    pub notices: Vec<NoticeDoc>,
}

impl Batch {
    /// The highest severity in the batch.
    pub fn severity(&self) -> Severity {
        self.notices
            .iter()
            .map(|notice| notice.severity)
            .max()
            .unwrap_or(Severity::Info)
    }

    /// The document as JSON (webhook body, exec stdin).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// A subject line that names what happened (for channels that may say so). A member's
    /// text cannot smuggle an RFC 2047 encoded word into it (`=?` is broken up).
    pub fn subject(&self) -> String {
        self.raw_subject().replace("=?", "= ?")
    }

    fn raw_subject(&self) -> String {
        match self.notices.as_slice() {
            [one] => format!("[{}] {}", self.federation, one.title),
            many => format!(
                "[{}] {} notices, highest {:?}",
                self.federation,
                many.len(),
                self.severity()
            ),
        }
    }

    /// The plain text of the batch: every notice's title and text, oldest first.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for notice in &self.notices {
            out.push_str(&format!("* {} [{:?}]\n", notice.title, notice.severity));
            for line in notice.text.lines() {
                out.push_str("  ");
                out.push_str(line);
                out.push('\n');
            }
            out.push('\n');
        }
        out.push_str(&format!(
            "-- \nsolidarity, federation {}, channel {}\n",
            self.federation, self.channel
        ));
        out
    }
}
