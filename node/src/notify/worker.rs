//! One task per channel: it holds the channel's queue (a copy of the outbox's, loaded at
//! start), waits for the settle delay, the rate limit and the backoff, sends what waits as
//! one batch, and removes it from the outbox only once the other side accepted it.
//!
//! Invariants: a notice leaves the outbox only when its batch was accepted or it was given
//! up; a crash between the acceptance and that removal sends the batch once more after the
//! restart (the only duplicate there can be). A slow or failing channel delays only itself.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use solidarity_control::ChannelStatus;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::channel::Channel;
use super::config::{ChannelConfig, Target};
use super::doc::{Batch, SCHEMA};
use super::metrics::NotifyMetrics;
use super::now_ms;
use super::outbox::{ChannelRecord, Outbox, Pending};

/// Notices handed from the notifier to a worker; the outbox holds them durably already, so
/// this only bounds memory between the two tasks. As large as the outbox's own bound per
/// channel, so the notifier's `try_send` fails only past it.
pub const WORKER_QUEUE: usize = super::outbox::MAX_PENDING_PER_CHANNEL;
/// Most notices in one message (the rest follow in the next).
pub const MAX_BATCH: usize = 50;
/// First retry after a failure; doubled per failure up to [`BACKOFF_MAX`], ±20 % jitter.
pub const BACKOFF_FIRST: Duration = Duration::from_secs(5);
/// Longest wait between retries.
pub const BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);
/// Added to the channel's own timeout before an attempt is abandoned from outside.
const ATTEMPT_GUARD: Duration = Duration::from_secs(5);
const HOUR_MS: u64 = 3600 * 1000;

/// Everything a worker owns.
pub struct Worker {
    pub config: ChannelConfig,
    pub channel: Arc<Channel>,
    pub outbox: Outbox,
    pub federation: String,
    pub give_up_after: Duration,
    pub metrics: NotifyMetrics,
    pub status: watch::Sender<ChannelStatus>,
    pub incoming: mpsc::Receiver<Pending>,
    pub shutdown: CancellationToken,
}

struct State {
    pending: VecDeque<Pending>,
    record: ChannelRecord,
    backoff_until: Option<u64>,
    sent_at: VecDeque<u64>,
}

impl Worker {
    /// Runs until shutdown.
    pub async fn run(mut self) {
        let outbox = self.outbox.clone();
        let name = self.config.name.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            Ok::<_, solidarity_store::StoreError>((outbox.pending(&name)?, outbox.record(&name)?))
        })
        .await;
        let (pending, record) = match loaded {
            Ok(Ok(loaded)) => loaded,
            Ok(Err(error)) => {
                tracing::error!(channel = %self.config.name, %error, "cannot read the outbox; this channel sends nothing until restart");
                return;
            }
            Err(_) => return,
        };
        let mut state = State {
            pending: pending.into(),
            record,
            backoff_until: None,
            sent_at: VecDeque::new(),
        };
        loop {
            self.publish(&state);
            let wait = self
                .next_attempt_at(&state)
                .map(|at| Duration::from_millis(at.saturating_sub(now_ms())));
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => break,
                item = self.incoming.recv() => match item {
                    Some(pending) => {
                        // The worker loaded the outbox after the notifier may have queued:
                        // never hold one twice.
                        if !state.pending.iter().any(|held| held.seq == pending.seq) {
                            state.pending.push_back(pending);
                        }
                    }
                    None => break,
                },
                () = sleep_or_forever(wait) => self.attempt(&mut state).await,
            }
        }
    }

    /// When the next send is due: after the settle delay of the oldest waiting notice,
    /// the backoff and the hourly rate limit; none while nothing waits.
    fn next_attempt_at(&self, state: &State) -> Option<u64> {
        let oldest = state.pending.front()?;
        let settled = oldest
            .queued_at
            .saturating_add(self.config.settle.as_millis() as u64);
        let rate = match self.config.max_per_hour {
            Some(limit) if state.sent_at.len() >= limit as usize => state
                .sent_at
                .front()
                .map_or(0, |first| first.saturating_add(HOUR_MS)),
            _ => 0,
        };
        Some(settled.max(state.backoff_until.unwrap_or(0)).max(rate))
    }

    async fn attempt(&self, state: &mut State) {
        let now = now_ms();
        while state
            .sent_at
            .front()
            .is_some_and(|at| now.saturating_sub(*at) >= HOUR_MS)
        {
            state.sent_at.pop_front();
        }
        self.give_up_stale(state, now).await;
        if state.pending.is_empty() {
            return;
        }
        let count = state.pending.len().min(MAX_BATCH);
        let batch = Batch {
            schema: SCHEMA.to_owned(),
            federation: self.federation.clone(),
            channel: self.config.name.clone(),
            sent_at: now,
            notices: state
                .pending
                .iter()
                .take(count)
                .map(|pending| pending.doc.clone())
                .collect(),
        };
        let label = NotifyMetrics::label(&self.config.name);
        let result = match tokio::time::timeout(
            self.config.timeout + ATTEMPT_GUARD,
            self.channel.send(&batch),
        )
        .await
        {
            Ok(result) => result.map_err(|error| error.reason),
            Err(_) => Err(format!(
                "timed out after {} s",
                (self.config.timeout + ATTEMPT_GUARD).as_secs()
            )),
        };
        let done_at = now_ms();
        let seqs: Vec<u64> = match result {
            Ok(()) => {
                state.record.last_success_at = Some(done_at);
                state.record.failures_in_a_row = 0;
                state.backoff_until = None;
                state.sent_at.push_back(done_at);
                self.metrics.sent.get_or_create(&label).inc();
                self.metrics
                    .notices_sent
                    .get_or_create(&label)
                    .inc_by(count as u64);
                self.metrics
                    .last_success
                    .get_or_create(&label)
                    .set((done_at / 1000) as i64);
                tracing::info!(channel = %self.config.name, notices = count, "notification sent");
                state
                    .pending
                    .drain(..count)
                    .map(|pending| pending.seq)
                    .collect()
            }
            Err(reason) => {
                state.record.failures_in_a_row += 1;
                state.record.last_error = Some(reason.clone());
                state.record.last_error_at = Some(done_at);
                let wait = backoff(state.record.failures_in_a_row);
                state.backoff_until = Some(done_at + wait.as_millis() as u64);
                self.metrics.failures.get_or_create(&label).inc();
                tracing::warn!(
                    channel = %self.config.name,
                    %reason,
                    retry_in_secs = wait.as_secs(),
                    "notification not accepted; it stays queued"
                );
                Vec::new()
            }
        };
        self.store(seqs, state.record.clone()).await;
    }

    /// Gives up the notices queued longer ago than `give_up_after`.
    async fn give_up_stale(&self, state: &mut State, now: u64) {
        let limit = self.give_up_after.as_millis() as u64;
        let mut stale = Vec::new();
        while state
            .pending
            .front()
            .is_some_and(|pending| now.saturating_sub(pending.queued_at) >= limit)
        {
            if let Some(pending) = state.pending.pop_front() {
                stale.push(pending.seq);
            }
        }
        if stale.is_empty() {
            return;
        }
        state.record.given_up += stale.len() as u64;
        state.record.last_given_up_at = Some(now);
        self.metrics
            .given_up
            .get_or_create(&NotifyMetrics::label(&self.config.name))
            .inc_by(stale.len() as u64);
        tracing::warn!(
            channel = %self.config.name,
            notices = stale.len(),
            "notifications given up: undelivered for longer than give_up_after_secs (see `solidarity notify status`)"
        );
        self.store(stale, state.record.clone()).await;
    }

    async fn store(&self, seqs: Vec<u64>, record: ChannelRecord) {
        let outbox = self.outbox.clone();
        let name = self.config.name.clone();
        let written =
            tokio::task::spawn_blocking(move || outbox.settle(&name, &seqs, &record)).await;
        if let Ok(Err(error)) = written {
            // Nothing is lost: what stays in the outbox is sent again after a restart.
            tracing::error!(channel = %self.config.name, %error, "cannot update the outbox");
        }
    }

    fn publish(&self, state: &State) {
        let label = NotifyMetrics::label(&self.config.name);
        self.metrics
            .queued
            .get_or_create(&label)
            .set(state.pending.len() as i64);
        let record = &state.record;
        let _ = self.status.send(ChannelStatus {
            channel: self.config.name.clone(),
            channel_type: self.config.target.type_name().to_owned(),
            private: self.config.private,
            encrypted: matches!(&self.config.target, Target::Mail(mail) if mail.encrypted()),
            queued: state.pending.len() as u64,
            oldest_queued_at: state.pending.front().map(|pending| pending.queued_at),
            next_attempt_at: self.next_attempt_at(state),
            last_success_at: record.last_success_at,
            last_error: record.last_error.clone(),
            last_error_at: record.last_error_at,
            failures_in_a_row: record.failures_in_a_row,
            given_up: record.given_up,
            last_given_up_at: record.last_given_up_at,
        });
    }
}

/// The wait after the `failures`-th failure in a row.
fn backoff(failures: u64) -> Duration {
    let doublings = failures.saturating_sub(1).min(16) as u32;
    let base = BACKOFF_FIRST
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(BACKOFF_MAX);
    base.mul_f64(rand::thread_rng().gen_range(0.8..1.2))
}

async fn sleep_or_forever(wait: Option<Duration>) {
    match wait {
        Some(wait) => tokio::time::sleep(wait).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_its_cap() {
        for (failures, base) in [(1, 5), (2, 10), (3, 20), (9, 900), (40, 900)] {
            let wait = backoff(failures).as_secs_f64();
            assert!(
                wait >= base as f64 * 0.8 && wait <= base as f64 * 1.2,
                "failure {failures}: {wait} s"
            );
        }
    }
}
