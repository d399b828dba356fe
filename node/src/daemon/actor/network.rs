//! The network's events into the engine, sync requests out and their pages back (with
//! the page's signatures verified on every core first), and inbound sync answers on
//! blocking readers within their budget (see `sync_reader`).

use std::sync::Arc;

use libp2p::PeerId;
use solidarity_engine::{GossipToken, Input, SyncFailed, SyncRound};
use solidarity_net::{NetError, NetEvent};
use solidarity_proto::sync::SyncResponse;
use solidarity_proto::{SignatureChecked, envelope};
use tokio::task::JoinSet;

use super::{ActorError, NodeActor};

/// Fewest new envelopes in a sync page worth verifying on several threads.
const SIGNATURE_BATCH_MIN: usize = 16;

/// The answer to a sync request this node sent.
pub struct SyncPage {
    peer: PeerId,
    round: SyncRound,
    result: Result<Vec<u8>, NetError>,
}

impl NodeActor {
    pub(super) async fn handle_net_event(&mut self, event: NetEvent) -> Result<(), ActorError> {
        match event {
            NetEvent::Message {
                token,
                source,
                data,
            } => {
                let gossip = GossipToken(self.next_gossip);
                self.next_gossip = self.next_gossip.wrapping_add(1);
                self.gossip.insert(gossip.0, token);
                self.feed(Input::Gossip {
                    peer: source,
                    token: gossip,
                    bytes: data,
                })
                .await?;
            }
            NetEvent::SyncRequest { peer, data, reply } => {
                self.answer_sync(peer, data, reply).await?;
            }
            NetEvent::PeerConnected(peer) => {
                // Keys out of trust stay listed but are never admitted.
                if let Some(key) = self.directory.key_of(&peer)
                    && self.directory.trusted(&key)
                {
                    self.connected.insert(key);
                    tracing::info!(member = %self.member_name(&key), "member connected");
                    self.feed(Input::PeerConnected { peer, key }).await?;
                    self.publish_snapshot();
                }
            }
            NetEvent::PeerDisconnected(peer) => {
                if let Some(key) = self.directory.key_of(&peer) {
                    self.connected.remove(&key);
                    tracing::info!(member = %self.member_name(&key), "member disconnected");
                    self.publish_snapshot();
                }
                // Also for a key no longer listed: the engine forgets the peer either way.
                self.feed(Input::PeerDisconnected { peer }).await?;
            }
            NetEvent::PeerClosedEarly(peer) => {
                if let Some(key) = self.directory.key_of(&peer) {
                    tracing::info!(
                        member = %self.member_name(&key),
                        "member closed the connection at once: it may not have added this node yet (send it this node's card, `solidarity id`), or it no longer trusts this node's key (revoked or forked: see `solidarity status`); redialling less and less often"
                    );
                }
            }
        }
        Ok(())
    }

    /// Sends a sync request the engine asked for; its page comes back to the engine.
    pub(super) fn send_sync(&mut self, peer: PeerId, round: SyncRound, request: Vec<u8>) {
        self.metrics.sync_requests.inc();
        self.metrics.sync_request_bytes.inc_by(request.len() as u64);
        let net = self.net.clone();
        self.syncs.spawn(async move {
            SyncPage {
                peer,
                round,
                result: net.sync_request(peer, request).await,
            }
        });
    }

    pub(super) async fn handle_sync_page(&mut self, page: SyncPage) -> Result<(), ActorError> {
        let SyncPage {
            peer,
            round,
            result,
        } = page;
        self.count_sync_outcome(&peer, result.is_ok());
        let (result, checked) = match result {
            Err(NetError::Stopped) => return Err(ActorError::NetworkStopped),
            Err(failed) => (Err(SyncFailed(failed.to_string())), Vec::new()),
            Ok(bytes) => {
                self.metrics.sync_response_bytes.inc_by(bytes.len() as u64);
                let checked = match SyncResponse::decode(&bytes) {
                    Ok(response) => {
                        self.metrics.sync_envelope_bytes.inc_by(
                            response
                                .envelopes
                                .iter()
                                .map(|envelope| envelope.len() as u64)
                                .sum(),
                        );
                        let fresh = self.fresh_envelopes(&response);
                        check_signatures(response.envelopes.len(), fresh).await
                    }
                    // The engine judges the malformed page.
                    Err(_) => Vec::new(),
                };
                (Ok(bytes), checked)
            }
        };
        self.feed(Input::SyncPage {
            peer,
            round,
            result,
            checked,
        })
        .await
    }

    /// The envelopes of a sync page not held yet (by index): the ones worth verifying.
    fn fresh_envelopes(&self, response: &SyncResponse) -> Vec<(usize, Vec<u8>)> {
        response
            .envelopes
            .iter()
            .enumerate()
            .filter(|(_, bytes)| {
                envelope::message_id_of_envelope_bytes(bytes)
                    .is_some_and(|id| !self.engine.holds(&id))
            })
            .map(|(index, bytes)| (index, bytes.to_vec()))
            .collect()
    }

    /// Answers a sync request with the engine's responder on a blocking reader, or at once
    /// with an empty page when the peer or everyone is at the bound of answers in flight.
    async fn answer_sync(
        &mut self,
        peer: PeerId,
        data: Vec<u8>,
        reply: solidarity_net::SyncReplyToken,
    ) -> Result<(), ActorError> {
        let name = self
            .directory
            .key_of(&peer)
            .map_or_else(String::new, |key| self.member_name(&key));
        let Some(permit) = self.answer_budget.try_acquire(peer) else {
            self.metrics.sync_refused_busy.inc();
            tracing::debug!(member = %name, "sync request answered empty: too many answers in flight");
            return self
                .net
                .reply_sync(reply, SyncResponse::default().encode())
                .await
                .map_err(|_| ActorError::NetworkStopped);
        };
        self.metrics.sync_answered.inc();
        let state = self.engine.answer_state();
        let store = Arc::clone(&self.store);
        let net = self.net.clone();
        self.readers.spawn(async move {
            let computed =
                tokio::task::spawn_blocking(move || state.answer(&data, &store)).await;
            let response = match computed {
                Ok(response) => response,
                Err(error) => {
                    tracing::error!(%error, "sync answer failed");
                    return;
                }
            };
            if !response.envelopes.is_empty() {
                tracing::debug!(member = %name, sent = response.envelopes.len(), more = response.more, "answered sync");
            }
            if net.reply_sync(reply, response.encode()).await.is_err() {
                tracing::debug!("network stopped before a sync answer went out");
            }
            drop(permit);
        });
        Ok(())
    }
}

/// Verifies the signatures of a sync page's new envelopes (`fresh`, by index into a page
/// of `page_len`) on every core: a page holds up to thousands and verification dominates
/// catch-up. Envelopes already held get no proof: validation drops them as duplicates
/// before any signature check.
async fn check_signatures(
    page_len: usize,
    fresh: Vec<(usize, Vec<u8>)>,
) -> Vec<Option<SignatureChecked>> {
    let mut checked = vec![None; page_len];
    if fresh.len() < SIGNATURE_BATCH_MIN {
        return checked;
    }
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = fresh.len().div_ceil(workers);
    let mut tasks = JoinSet::new();
    let mut rest = fresh;
    while !rest.is_empty() {
        let tail = rest.split_off(chunk.min(rest.len()));
        let part = std::mem::replace(&mut rest, tail);
        tasks.spawn_blocking(move || {
            part.into_iter()
                .map(|(index, bytes)| (index, solidarity_proto::check_signature(&bytes)))
                .collect::<Vec<_>>()
        });
    }
    while let Some(done) = tasks.join_next().await {
        // A failed task only means its envelopes get verified one by one.
        for (index, proof) in done.unwrap_or_default() {
            checked[index] = proof;
        }
    }
    checked
}

/// Sync rounds in a row a member may fail before its admins hear of it.
pub(super) const SYNC_FAILURES_NOTICE: u32 = 5;

impl NodeActor {
    /// Counts a sync round's outcome with `peer`; the [`SYNC_FAILURES_NOTICE`]th failure
    /// in a row is reported to the notifier.
    fn count_sync_outcome(&mut self, peer: &libp2p::PeerId, succeeded: bool) {
        let Some(key) = self.directory.key_of(peer) else {
            return;
        };
        if succeeded {
            self.sync_failures.remove(&key);
            return;
        }
        let failures = self.sync_failures.entry(key).or_insert(0);
        *failures = failures.saturating_add(1);
        if *failures == SYNC_FAILURES_NOTICE {
            let failures = *failures;
            let name = self.member_name(&key);
            self.notify_feed
                .report(crate::notify::reports::Report::SyncFailing {
                    member: key,
                    name,
                    failures,
                });
        }
    }
}
