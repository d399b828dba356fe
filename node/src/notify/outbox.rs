//! The durable outbox (`DATA/outbox/`): what is queued on which channel, which notices
//! were already queued (so each is sent once), each channel's record and the recent
//! notices. Every change is one atomic, flushed batch.
//!
//! Key layout (one ordered key space):
//! - `s` id(32) → when queued (u64 BE ms): notices already made; pruned after the news
//!   window, by when nothing older can be news again.
//! - `p` channel `\0` seq(u64 BE) → [`Pending`] (JSON): queued on a channel, oldest first.
//! - `c` channel → [`ChannelRecord`] (JSON).
//! - `r` at(u64 BE) id(32) → [`NoticeLine`] (JSON): the last [`RECENT_KEPT`] notices.

use std::path::Path;

use serde::{Deserialize, Serialize};
use solidarity_control::NoticeLine;
use solidarity_store::{OutboxDb, StoreError};

use super::doc::NoticeDoc;

/// Directory of the outbox inside the data dir.
pub const OUTBOX_DIR: &str = "outbox";
/// Recent notices kept for `notify list`.
pub const RECENT_KEPT: usize = 200;
/// Most notices waiting on one channel; beyond, new ones are given up at once (counted in
/// `solidarity_notify_given_up_total`): a channel down for days under a flood must not fill
/// the disk.
pub const MAX_PENDING_PER_CHANNEL: usize = 10_000;

const SEEN: u8 = b's';
const PENDING: u8 = b'p';
const CHANNEL: u8 = b'c';
const RECENT: u8 = b'r';

/// A notice waiting on a channel.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pending {
    /// Its place in the channel's queue.
    pub seq: u64,
    /// When it was queued, ms since the epoch.
    pub queued_at: u64,
    /// The notice.
    pub doc: NoticeDoc,
}

/// What `notify status` shows of a channel beyond its queue, kept across restarts.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ChannelRecord {
    /// Last accepted message, ms.
    pub last_success_at: Option<u64>,
    /// Last failure's reason.
    pub last_error: Option<String>,
    /// When, ms.
    pub last_error_at: Option<u64>,
    /// Failures since the last success.
    pub failures_in_a_row: u64,
    /// Notices given up, ever.
    pub given_up: u64,
    /// When the last was given up, ms.
    pub last_given_up_at: Option<u64>,
}

/// A notice to queue: the notice, the channels it goes to, its line for `notify list`.
pub struct Queued {
    /// The notice.
    pub doc: NoticeDoc,
    /// Channel names (maybe none: then it is only remembered as made).
    pub channels: Vec<(String, u64)>,
}

/// The outbox.
#[derive(Clone)]
pub struct Outbox {
    db: OutboxDb,
}

fn id_bytes(id: &str) -> Vec<u8> {
    hex::decode(id).unwrap_or_else(|_| id.as_bytes().to_vec())
}

fn pending_prefix(channel: &str) -> Vec<u8> {
    let mut key = vec![PENDING];
    key.extend_from_slice(channel.as_bytes());
    key.push(0);
    key
}

fn pending_key(channel: &str, seq: u64) -> Vec<u8> {
    let mut key = pending_prefix(channel);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn channel_key(channel: &str) -> Vec<u8> {
    let mut key = vec![CHANNEL];
    key.extend_from_slice(channel.as_bytes());
    key
}

fn corrupt(_: serde_json::Error) -> StoreError {
    StoreError::Corrupt { what: "outbox" }
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

impl Outbox {
    /// Opens `DATA/outbox/`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        use std::os::unix::fs::PermissionsExt;
        let path = data_dir.join(OUTBOX_DIR);
        let db = OutboxDb::open(&path)?;
        // It holds alert text and duress notices: its owner only, as the data dir.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).map_err(
            |error| StoreError::Open {
                path: path.clone(),
                source: Box::new(error),
            },
        )?;
        Ok(Self { db })
    }

    /// Whether a notice with this id was made before.
    pub fn seen(&self, id: &str) -> Result<bool, StoreError> {
        let mut key = vec![SEEN];
        key.extend(id_bytes(id));
        Ok(self.db.get(&key)?.is_some())
    }

    /// Records `queued` as made and queues each on its channels, atomically and durably.
    pub fn queue(&self, queued: &[Queued], now: u64) -> Result<(), StoreError> {
        let mut ops = Vec::new();
        for item in queued {
            let id = id_bytes(&item.doc.id);
            let mut seen = vec![SEEN];
            seen.extend(&id);
            ops.push((seen, Some(now.to_be_bytes().to_vec())));
            for (channel, seq) in &item.channels {
                let pending = Pending {
                    seq: *seq,
                    queued_at: now,
                    doc: item.doc.clone(),
                };
                ops.push((pending_key(channel, *seq), Some(to_json(&pending))));
            }
            let mut recent = vec![RECENT];
            recent.extend(item.doc.at.to_be_bytes());
            recent.extend(&id);
            let line = NoticeLine {
                id: item.doc.id.clone(),
                notice_type: serde_json::to_value(item.doc.notice_type)
                    .ok()
                    .and_then(|value| value.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                severity: serde_json::to_value(item.doc.severity)
                    .ok()
                    .and_then(|value| value.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                at: item.doc.at,
                title: item.doc.title.clone(),
                channels: item.channels.iter().map(|(name, _)| name.clone()).collect(),
            };
            ops.push((recent, Some(to_json(&line))));
        }
        // Trim the recent list to its bound in the same batch.
        let recent = self.db.scan_last(&[RECENT], usize::MAX)?;
        let keep = RECENT_KEPT.saturating_sub(queued.len());
        for (key, _) in recent.into_iter().skip(keep) {
            ops.push((key, None));
        }
        self.db.apply(ops)
    }

    /// The notices waiting on `channel`, oldest first.
    pub fn pending(&self, channel: &str) -> Result<Vec<Pending>, StoreError> {
        self.db
            .scan(&pending_prefix(channel), usize::MAX)?
            .into_iter()
            .map(|(_, value)| serde_json::from_slice(&value).map_err(corrupt))
            .collect()
    }

    /// The highest seq queued on any channel (the next seq follows it).
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        let mut last = 0;
        for (key, _) in self.db.scan(&[PENDING], usize::MAX)? {
            if let Some(bytes) = key.get(key.len().saturating_sub(8)..) {
                let seq = u64::from_be_bytes(bytes.try_into().unwrap_or([0; 8]));
                last = last.max(seq);
            }
        }
        Ok(last)
    }

    /// Names of the channels that have notices waiting (to drop queues of removed ones).
    pub fn channels_with_pending(&self) -> Result<Vec<String>, StoreError> {
        let mut names = Vec::new();
        for (key, _) in self.db.scan(&[PENDING], usize::MAX)? {
            let Some(end) = key.iter().position(|byte| *byte == 0) else {
                continue;
            };
            let name = String::from_utf8_lossy(&key[1..end]).into_owned();
            if names.last() != Some(&name) {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// Removes `seqs` from `channel`'s queue and stores its record, atomically.
    pub fn settle(
        &self,
        channel: &str,
        seqs: &[u64],
        record: &ChannelRecord,
    ) -> Result<(), StoreError> {
        let mut ops: Vec<_> = seqs
            .iter()
            .map(|seq| (pending_key(channel, *seq), None))
            .collect();
        ops.push((channel_key(channel), Some(to_json(record))));
        self.db.apply(ops)
    }

    /// The channel's record.
    pub fn record(&self, channel: &str) -> Result<ChannelRecord, StoreError> {
        match self.db.get(&channel_key(channel))? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(corrupt),
            None => Ok(ChannelRecord::default()),
        }
    }

    /// The recent notices, newest first.
    pub fn recent(&self) -> Result<Vec<NoticeLine>, StoreError> {
        self.db
            .scan_last(&[RECENT], RECENT_KEPT)?
            .into_iter()
            .map(|(_, value)| serde_json::from_slice(&value).map_err(corrupt))
            .collect()
    }

    /// Forgets the ids of notices made before `before` (ms): nothing that old is news.
    pub fn prune_seen(&self, before: u64) -> Result<usize, StoreError> {
        let mut ops = Vec::new();
        for (key, value) in self.db.scan(&[SEEN], usize::MAX)? {
            let at = u64::from_be_bytes(value.as_slice().try_into().unwrap_or([0; 8]));
            if at < before {
                ops.push((key, None));
            }
        }
        let pruned = ops.len();
        if pruned > 0 {
            self.db.apply(ops)?;
        }
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::doc::{NoticeType, Severity};

    fn doc(index: u64) -> NoticeDoc {
        NoticeDoc {
            id: crate::notify::observe::notice_id(&[&index.to_be_bytes()]),
            notice_type: NoticeType::Alert,
            severity: Severity::High,
            at: index,
            title: format!("notice {index}"),
            text: String::new(),
            member: None,
            alert: None,
        }
    }

    #[test]
    fn queued_notices_survive_a_reopen_until_settled_and_stay_seen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let outbox = Outbox::open(dir.path()).expect("open");
            let queued: Vec<Queued> = (1..=3)
                .map(|index| Queued {
                    doc: doc(index),
                    channels: vec![("mail".into(), index), ("hook".into(), 10 + index)],
                })
                .collect();
            outbox.queue(&queued, 1_000).expect("queue");
        }
        let outbox = Outbox::open(dir.path()).expect("reopen");
        assert!(outbox.seen(&doc(2).id).expect("seen"));
        assert!(!outbox.seen(&doc(9).id).expect("seen"));
        let pending = outbox.pending("mail").expect("pending");
        assert_eq!(pending.iter().map(|p| p.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(outbox.last_seq().expect("last"), 13);
        assert_eq!(
            outbox.channels_with_pending().expect("names"),
            ["hook", "mail"]
        );
        let record = ChannelRecord {
            last_success_at: Some(5),
            ..ChannelRecord::default()
        };
        outbox.settle("mail", &[1, 2], &record).expect("settle");
        assert_eq!(outbox.pending("mail").expect("pending").len(), 1);
        assert_eq!(outbox.pending("hook").expect("pending").len(), 3);
        assert_eq!(
            outbox.record("mail").expect("record").last_success_at,
            Some(5)
        );
        assert_eq!(outbox.recent().expect("recent")[0].title, "notice 3");
        // Old ids are forgotten only when asked.
        assert_eq!(outbox.prune_seen(500).expect("prune"), 0);
        assert_eq!(outbox.prune_seen(2_000).expect("prune"), 3);
        assert!(!outbox.seen(&doc(2).id).expect("seen"));
    }

    #[test]
    fn the_recent_list_keeps_its_bound() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Outbox::open(dir.path()).expect("open");
        for index in 0..(RECENT_KEPT as u64 + 20) {
            outbox
                .queue(
                    &[Queued {
                        doc: doc(index),
                        channels: Vec::new(),
                    }],
                    index,
                )
                .expect("queue");
        }
        let recent = outbox.recent().expect("recent");
        assert_eq!(recent.len(), RECENT_KEPT);
        assert_eq!(recent[0].title, format!("notice {}", RECENT_KEPT + 19));
    }
}
