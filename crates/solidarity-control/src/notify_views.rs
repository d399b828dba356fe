//! Answers of the `notify` commands. Admin view: channel names and notice titles, never a
//! recipient address, URL or secret.

use serde::{Deserialize, Serialize};

use crate::ControlResponse;

/// One channel's result of `notify test`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelTest {
    /// The channel's name.
    pub channel: String,
    /// `mail`, `webhook` or `exec`.
    pub channel_type: String,
    /// Whether the other side accepted the message.
    pub accepted: bool,
    /// Why not.
    pub error: Option<String>,
    /// How long the attempt took, ms.
    pub elapsed_ms: u64,
}

/// Answer of `notify test`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyTested {
    /// One result per channel tried.
    pub results: Vec<ChannelTest>,
}

impl ControlResponse for NotifyTested {
    const RESULT: &'static str = "notify_tested";
}

/// One channel in `notify status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelStatus {
    /// The channel's name.
    pub channel: String,
    /// `mail`, `webhook` or `exec`.
    pub channel_type: String,
    /// May carry canary and duress notices.
    pub private: bool,
    /// Whether mail is OpenPGP-encrypted (mail channels).
    pub encrypted: bool,
    /// Notices waiting.
    pub queued: u64,
    /// When the oldest waiting notice was queued, ms since the epoch.
    pub oldest_queued_at: Option<u64>,
    /// When the next attempt is due, ms since the epoch (backoff, settle delay or rate limit).
    pub next_attempt_at: Option<u64>,
    /// When the channel last accepted a message, ms since the epoch.
    pub last_success_at: Option<u64>,
    /// The last failure's reason.
    pub last_error: Option<String>,
    /// When it failed, ms since the epoch.
    pub last_error_at: Option<u64>,
    /// Failed attempts since the last success.
    pub failures_in_a_row: u64,
    /// Notices given up (undelivered for longer than `give_up_after_secs`), ever.
    pub given_up: u64,
    /// When the last one was given up, ms since the epoch.
    pub last_given_up_at: Option<u64>,
}

/// Answer of `notify status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyStatusView {
    /// Every configured channel.
    pub channels: Vec<ChannelStatus>,
}

impl ControlResponse for NotifyStatusView {
    const RESULT: &'static str = "notify_status";
}

/// One recent notice in `notify list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeLine {
    /// Stable id (hex).
    pub id: String,
    /// Its type (`alert`, `duress`, …).
    #[serde(rename = "type")]
    pub notice_type: String,
    /// Its severity.
    pub severity: String,
    /// When it was noticed, ms since the epoch.
    pub at: u64,
    /// One line.
    pub title: String,
    /// The channels it was queued on.
    pub channels: Vec<String>,
}

/// Answer of `notify list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeList {
    /// Newest first.
    pub notices: Vec<NoticeLine>,
}

impl ControlResponse for NoticeList {
    const RESULT: &'static str = "notice_list";
}
