//! The notifier task: watches the node's snapshots, turns what is new into notices
//! ([`super::observe`]), queues each durably on the channels that carry it, and hands them
//! to the channels' workers. It also answers the `notify` commands.
//!
//! It never talks to the actor: it reads the snapshots the actor publishes anyway (a watch
//! channel, so a burst of changes is read once), and the actor never waits for it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use solidarity_control::{
    ChannelStatus, ChannelTest, NoticeList, NotifyStatusView, NotifyTested, Refusal, RefusalCode,
    request,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::channel::Channel;
use super::config::NotifyConfig;
use super::doc::{Batch, NoticeDoc, NoticeType, SCHEMA, Severity};
use super::metrics::NotifyMetrics;
use super::now_ms;
use super::observe::{MemberBound, Names, ObserveSettings, Observed, Observer, notice_id};
use super::outbox::{MAX_PENDING_PER_CHANNEL, Outbox, Pending, Queued};
use super::reports::{self, FeedReceiver, Report};
use super::route;
use super::worker::{WORKER_QUEUE, Worker};
use crate::daemon::control_server::Call;
use crate::daemon::snapshot::Snapshot;
use solidarity_store::Store;

/// `notify` commands waiting for the notifier.
pub const CALL_QUEUE: usize = 16;
/// How often the latest snapshot is looked at again with nothing new in it: members become
/// unreachable with time alone.
const REOBSERVE_INTERVAL: Duration = Duration::from_secs(30);
/// How often the ids of old notices are forgotten.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);
/// Ids are kept this much longer than the news window.
const SEEN_MARGIN_MS: u64 = 24 * 3600 * 1000;
/// Most stored alerts and updates read from the store in one go.
const STORED_BATCH: usize = 256;
/// Most notice ids remembered in memory (beyond, forgotten and read from the outbox).
const KNOWN_IDS_MAX: usize = 100_000;
/// Longest a `notify test` waits for all channels.
const TEST_DEADLINE: Duration = Duration::from_secs(25);

/// A `notify` command.
pub enum NotifyCall {
    /// `notify test`.
    Test(Call<request::NotifyTest>),
    /// `notify status`.
    Status(Call<request::NotifyStatus>),
    /// `notify list`.
    List(Call<request::NotifyList>),
}

struct ChannelHandle {
    name: String,
    channel: Arc<Channel>,
    config: super::config::ChannelConfig,
    queue: mpsc::Sender<Pending>,
    status: watch::Receiver<ChannelStatus>,
}

/// What the notifier is made of.
pub struct NotifierParts {
    /// `[notify]`.
    pub config: NotifyConfig,
    /// The federation's name (in every document).
    pub federation: String,
    /// Where `outbox/` lives.
    pub data_dir: std::path::PathBuf,
    /// The actor's snapshots.
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    /// The message store (read only).
    pub store: Arc<dyn Store>,
    /// What the actor stored.
    pub feed: FeedReceiver,
    /// The outbox's figures.
    pub metrics: NotifyMetrics,
}

/// The notifier, ready to run.
pub struct Notifier {
    config: NotifyConfig,
    federation: String,
    outbox: Option<Outbox>,
    channels: Vec<ChannelHandle>,
    workers: Vec<Worker>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    calls: mpsc::Receiver<NotifyCall>,
    metrics: NotifyMetrics,
    next_seq: u64,
    /// Ids of notices the outbox holds as made, so a snapshot seen again costs no read.
    known: HashSet<String>,
    bound: MemberBound,
    store: Arc<dyn Store>,
    feed: FeedReceiver,
    /// Whether the start-up catch-up from the store ran.
    caught_up: bool,
}

impl Notifier {
    /// Builds every channel and opens the outbox (only when a channel is configured): an
    /// error here stops the daemon's start with the channel's name.
    pub fn new(
        parts: NotifierParts,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<(Self, mpsc::Sender<NotifyCall>)> {
        let NotifierParts {
            config,
            federation,
            data_dir,
            snapshots,
            store,
            feed,
            metrics,
        } = parts;
        use anyhow::Context;
        let (call_tx, calls) = mpsc::channel(CALL_QUEUE);
        let outbox = if config.channels.is_empty() {
            None
        } else {
            Some(Outbox::open(&data_dir).context("cannot open the notification outbox")?)
        };
        let mut channels = Vec::new();
        let mut workers = Vec::new();
        let mut next_seq = 0;
        if let Some(outbox) = &outbox {
            next_seq = outbox.last_seq()? + 1;
            for orphan in outbox.channels_with_pending()? {
                if !config.channels.iter().any(|channel| channel.name == orphan) {
                    tracing::warn!(channel = %orphan, "notices wait for a channel that is no longer in config.toml; they stay in the outbox until it is back");
                }
            }
            for channel_config in &config.channels {
                let channel =
                    Arc::new(Channel::new(channel_config).with_context(|| {
                        format!("notification channel {:?}", channel_config.name)
                    })?);
                // Every channel's series exist from the start, at 0, for dashboards.
                let label = NotifyMetrics::label(&channel_config.name);
                metrics.queued.get_or_create(&label).set(0);
                let _ = metrics.sent.get_or_create(&label);
                let _ = metrics.notices_sent.get_or_create(&label);
                let _ = metrics.failures.get_or_create(&label);
                let _ = metrics.given_up.get_or_create(&label);
                let (queue, incoming) = mpsc::channel(WORKER_QUEUE);
                let (status_tx, status) = watch::channel(ChannelStatus {
                    channel: channel_config.name.clone(),
                    channel_type: channel_config.target.type_name().to_owned(),
                    private: channel_config.private,
                    encrypted: false,
                    queued: 0,
                    oldest_queued_at: None,
                    next_attempt_at: None,
                    last_success_at: None,
                    last_error: None,
                    last_error_at: None,
                    failures_in_a_row: 0,
                    given_up: 0,
                    last_given_up_at: None,
                });
                channels.push(ChannelHandle {
                    name: channel_config.name.clone(),
                    channel: Arc::clone(&channel),
                    config: channel_config.clone(),
                    queue,
                    status,
                });
                workers.push(Worker {
                    config: channel_config.clone(),
                    channel,
                    outbox: outbox.clone(),
                    federation: federation.clone(),
                    give_up_after: config.give_up_after,
                    metrics: metrics.clone(),
                    status: status_tx,
                    incoming,
                    shutdown: shutdown.clone(),
                });
            }
        }
        Ok((
            Self {
                config,
                federation,
                outbox,
                channels,
                workers,
                snapshots,
                calls,
                metrics,
                next_seq,
                known: HashSet::new(),
                bound: MemberBound::default(),
                store,
                feed,
                caught_up: false,
            },
            call_tx,
        ))
    }

    /// Runs until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut tasks = JoinSet::new();
        for worker in std::mem::take(&mut self.workers) {
            tasks.spawn(worker.run().in_current_span());
        }
        let settings = ObserveSettings {
            member_unreachable_ms: self
                .config
                .member_unreachable
                .map(|limit| limit.as_millis() as u64),
        };
        let mut observer = Observer::default();
        let mut reobserve = tokio::time::interval(REOBSERVE_INTERVAL);
        let mut prune = tokio::time::interval(PRUNE_INTERVAL);
        // A snapshot published before this task started is news too.
        self.snapshots.mark_changed();
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(call) = self.calls.recv() => self.answer(call, &mut tasks),
                Some(stored) = self.feed.queue.recv() => self.take_stored(stored).await,
                changed = self.snapshots.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    self.observe(&mut observer, &settings).await;
                }
                _ = reobserve.tick() => self.observe(&mut observer, &settings).await,
                _ = prune.tick() => self.prune().await,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        tasks.shutdown().await;
    }

    async fn observe(&mut self, observer: &mut Observer, settings: &ObserveSettings) {
        let Some(outbox) = self.outbox.clone() else {
            return;
        };
        let snapshot = self.snapshots.borrow_and_update().clone();
        // Before the actor's first snapshot there is nothing to tell.
        if snapshot.status.started_at == 0 {
            return;
        }
        let now = now_ms();
        if !self.caught_up {
            self.caught_up = true;
            self.catch_up(&snapshot).await;
        }
        let observed = observer.observe(&snapshot, now, settings);
        self.take_in(observed, &snapshot, &outbox).await;
    }

    /// Alerts and updates the actor stored: read from the store, then taken in.
    async fn take_stored(&mut self, first: Report) {
        let Some(outbox) = self.outbox.clone() else {
            return;
        };
        let mut items = vec![first];
        while items.len() < STORED_BATCH {
            match self.feed.queue.try_recv() {
                Ok(item) => items.push(item),
                Err(_) => break,
            }
        }
        let snapshot = self.snapshots.borrow().clone();
        let names = Names::from_snapshot(&snapshot);
        let store = Arc::clone(&self.store);
        let loaded =
            tokio::task::spawn_blocking(move || reports::load(store.as_ref(), &items, &names))
                .await;
        match loaded {
            Ok(Ok(observed)) => self.take_in(observed, &snapshot, &outbox).await,
            Ok(Err(error)) => tracing::error!(%error, "cannot read stored alerts for notices"),
            Err(_) => {}
        }
        if self.feed.overflowed() {
            self.catch_up(&snapshot).await;
        }
    }

    /// Every alert raised within the news window, from the store: at start (what a crash
    /// cut off) and when the feed overflowed.
    async fn catch_up(&mut self, snapshot: &Arc<Snapshot>) {
        let Some(outbox) = self.outbox.clone() else {
            return;
        };
        let names = Names::from_snapshot(snapshot);
        let store = Arc::clone(&self.store);
        let now = now_ms();
        let since = now.saturating_sub(self.config.news_within.as_millis() as u64);
        let read = tokio::task::spawn_blocking(move || {
            reports::catch_up(store.as_ref(), since, now, &names)
        })
        .await;
        match read {
            Ok(Ok(observed)) => {
                let observed = observed
                    .into_iter()
                    .map(|mut item| {
                        item.doc.at = now;
                        item
                    })
                    .collect();
                self.take_in(observed, snapshot, &outbox).await;
            }
            Ok(Err(error)) => {
                tracing::error!(%error, "cannot read the store to catch up on notices")
            }
            Err(_) => {}
        }
    }

    /// Drops what was made before, bounds what is left per member, queues it durably on the
    /// channels that carry it and hands it to their workers.
    async fn take_in(&mut self, observed: Vec<Observed>, snapshot: &Snapshot, outbox: &Outbox) {
        let now = now_ms();
        let news_within = self.config.news_within.as_millis() as u64;
        let candidates: Vec<_> = observed
            .into_iter()
            .filter(|item| now.saturating_sub(item.happened_at) <= news_within)
            .filter(|item| !self.known.contains(&item.doc.id))
            .map(|mut item| {
                item.doc.at = now;
                item
            })
            .collect();
        if candidates.is_empty() {
            return;
        }
        let reader = outbox.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let mut fresh = Vec::new();
            let mut old = Vec::new();
            for item in candidates {
                if reader.seen(&item.doc.id)? {
                    old.push(item.doc.id);
                } else {
                    fresh.push(item);
                }
            }
            Ok::<_, solidarity_store::StoreError>((fresh, old))
        })
        .await;
        let (fresh, old) = match checked {
            Ok(Ok(checked)) => checked,
            Ok(Err(error)) => {
                tracing::error!(%error, "cannot read the notification outbox");
                return;
            }
            Err(_) => return,
        };
        if self.known.len() + old.len() > KNOWN_IDS_MAX {
            self.known.clear();
        }
        self.known.extend(old);
        let observed = self.bound.admit(fresh, now, &snapshot.status.node_key);
        if observed.is_empty() {
            return;
        }
        let outbox = outbox.clone();
        let channels: Vec<(String, super::config::ChannelConfig, usize)> = self
            .channels
            .iter()
            .map(|handle| {
                let held = handle.status.borrow().queued as usize;
                (handle.name.clone(), handle.config.clone(), held)
            })
            .collect();
        let mut next_seq = self.next_seq;
        let made = tokio::task::spawn_blocking(move || {
            let mut queued = Vec::new();
            let mut full = Vec::new();
            let mut per_channel: Vec<usize> = channels.iter().map(|(_, _, held)| *held).collect();
            for item in observed {
                let mut targets = Vec::new();
                for (index, (name, config, _)) in channels.iter().enumerate() {
                    if !route::carries(config, &item.doc) {
                        continue;
                    }
                    if per_channel[index] >= MAX_PENDING_PER_CHANNEL {
                        full.push(name.clone());
                        continue;
                    }
                    per_channel[index] += 1;
                    targets.push((name.clone(), next_seq));
                    next_seq += 1;
                }
                queued.push(Queued {
                    doc: item.doc,
                    channels: targets,
                });
            }
            outbox.queue(&queued, now)?;
            Ok::<_, solidarity_store::StoreError>((queued, full, next_seq))
        })
        .await;
        let (queued, full, next_seq) = match made {
            Ok(Ok(made)) => made,
            Ok(Err(error)) => {
                // Not queued, not remembered: the next snapshot or the restart tries again.
                tracing::error!(%error, "cannot write the notification outbox");
                return;
            }
            Err(_) => return,
        };
        self.next_seq = next_seq;
        if !full.is_empty() {
            tracing::warn!(channels = ?full, "a notification queue is full; new notices for it are given up until it drains");
            for name in &full {
                self.metrics
                    .given_up
                    .get_or_create(&NotifyMetrics::label(name))
                    .inc();
            }
        }
        self.metrics.notices.inc_by(queued.len() as u64);
        self.known
            .extend(queued.iter().map(|item| item.doc.id.clone()));
        for item in queued {
            for (name, seq) in item.channels {
                let Some(handle) = self.channels.iter().find(|handle| handle.name == name) else {
                    continue;
                };
                let pending = Pending {
                    seq,
                    queued_at: now,
                    doc: item.doc.clone(),
                };
                // The outbox holds it durably; the worker's queue only bounds memory, and
                // never makes the notifier wait on a slow channel. What does not fit is
                // sent after the next restart, from the outbox.
                if handle.queue.try_send(pending).is_err() {
                    tracing::warn!(channel = %name, "the channel's worker is behind; the notice stays in the outbox for the next start");
                }
            }
        }
    }

    async fn prune(&mut self) {
        self.known.clear();
        let Some(outbox) = self.outbox.clone() else {
            return;
        };
        let before = now_ms()
            .saturating_sub(self.config.news_within.as_millis() as u64)
            .saturating_sub(SEEN_MARGIN_MS);
        if let Ok(Err(error)) = tokio::task::spawn_blocking(move || outbox.prune_seen(before)).await
        {
            tracing::warn!(%error, "cannot prune the notification outbox");
        }
    }

    fn answer(&self, call: NotifyCall, tasks: &mut JoinSet<()>) {
        match call {
            NotifyCall::Status(Call { reply, .. }) => {
                let channels = self
                    .channels
                    .iter()
                    .map(|handle| handle.status.borrow().clone())
                    .collect();
                let _ = reply.send(Ok(NotifyStatusView { channels }));
            }
            NotifyCall::List(Call { reply, .. }) => {
                let Some(outbox) = self.outbox.clone() else {
                    let _ = reply.send(Ok(NoticeList {
                        notices: Vec::new(),
                    }));
                    return;
                };
                tasks.spawn(async move {
                    let read = tokio::task::spawn_blocking(move || outbox.recent()).await;
                    let answer = match read {
                        Ok(Ok(notices)) => Ok(NoticeList { notices }),
                        Ok(Err(error)) => Err(Refusal::new(
                            RefusalCode::StoreUnreadable,
                            format!("cannot read the notification outbox: {error}"),
                        )),
                        Err(_) => Err(Refusal::new(
                            RefusalCode::StoppedBeforeAnswer,
                            "the outbox read stopped before answering",
                        )),
                    };
                    let _ = reply.send(answer);
                });
            }
            NotifyCall::Test(Call { request, reply }) => {
                let chosen: Vec<(String, String, Arc<Channel>)> = self
                    .channels
                    .iter()
                    .filter(|handle| {
                        request
                            .channel
                            .as_ref()
                            .is_none_or(|name| *name == handle.name)
                    })
                    .map(|handle| {
                        (
                            handle.name.clone(),
                            handle.config.target.type_name().to_owned(),
                            Arc::clone(&handle.channel),
                        )
                    })
                    .collect();
                if chosen.is_empty() {
                    let message = match &request.channel {
                        Some(name) => format!(
                            "no notification channel named {name:?} in config.toml (see `solidarity notify status`)"
                        ),
                        None => "no notification channel is configured: add a [[notify.mail]], [[notify.webhook]] or [[notify.exec]] table to config.toml (see the README)".to_owned(),
                    };
                    let _ = reply.send(Err(Refusal::new(RefusalCode::NoSuchChannel, message)));
                    return;
                }
                let federation = self.federation.clone();
                tasks.spawn(async move {
                    let tests = chosen.into_iter().map(|(name, channel_type, channel)| {
                        let batch = test_batch(&federation, &name);
                        async move {
                            let started = Instant::now();
                            let result =
                                tokio::time::timeout(TEST_DEADLINE, channel.send(&batch)).await;
                            let error = match result {
                                Ok(Ok(())) => None,
                                Ok(Err(error)) => Some(error.reason),
                                Err(_) => {
                                    Some(format!("no answer within {} s", TEST_DEADLINE.as_secs()))
                                }
                            };
                            ChannelTest {
                                channel: name,
                                channel_type,
                                accepted: error.is_none(),
                                error,
                                elapsed_ms: started.elapsed().as_millis() as u64,
                            }
                        }
                    });
                    let results = futures::future::join_all(tests).await;
                    let _ = reply.send(Ok(NotifyTested { results }));
                });
            }
        }
    }
}

/// The message `notify test` sends.
fn test_batch(federation: &str, channel: &str) -> Batch {
    let now = now_ms();
    Batch {
        schema: SCHEMA.to_owned(),
        federation: federation.to_owned(),
        channel: channel.to_owned(),
        sent_at: now,
        notices: vec![NoticeDoc {
            id: notice_id(&[b"test", &now.to_be_bytes()]),
            notice_type: NoticeType::Test,
            severity: Severity::Info,
            at: now,
            title: format!("test message on channel {channel}"),
            text: "`solidarity notify test` sent this. If you can read it, this channel works."
                .to_owned(),
            member: None,
            alert: None,
        }],
    }
}
