//! Carrying out the engine's outputs, and the completions they cause (writes and
//! maintenance writes), which go back to the engine as inputs.

use solidarity_control::{Done, ImportOutcome, Imported, Raised, Refusal, RefusalCode, request};
use solidarity_engine::{
    Acceptance, CommandToken, Input, NewMessage, Output, Reply, WriteFailed, WriteId, WriteOutcome,
};
use solidarity_net::NetError;
use solidarity_store::InsertOutcome;
use tokio::sync::oneshot;

use super::super::control_server::{self, SignReply};
use super::super::writer::{Maintenance, WriteError};
use super::{ActorError, NodeActor};
use crate::identity;

/// A command's answer channel, by what it answers.
pub enum PendingReply {
    /// A signed (or published) message: its id.
    Sign(SignReply),
    /// `member retrust`: answered once the mark is durably gone.
    Retrust(control_server::Reply<request::MemberRetrust>),
    /// `import`: answered once its writes are flushed.
    Import(control_server::Reply<request::Import>),
}

/// What a finished maintenance write was for.
pub enum MaintenanceDone {
    Expired {
        now_ms: u64,
    },
    ForkRecorded,
    CompromiseCleared {
        token: CommandToken,
    },
    Flushed,
    /// The flush after an import's writes: the admin hears the outcomes now.
    Imported {
        reply: control_server::Reply<request::Import>,
        outcomes: Vec<ImportOutcome>,
    },
}

pub enum Completion {
    Write {
        write: WriteId,
        message: NewMessage,
        result: Result<Result<InsertOutcome, WriteError>, oneshot::error::RecvError>,
    },
    Maintained {
        done: MaintenanceDone,
        result: Result<Result<usize, WriteError>, oneshot::error::RecvError>,
    },
}

impl NodeActor {
    /// Carries out the engine's outputs in order.
    pub(super) async fn carry_out(
        &mut self,
        outputs: Vec<Output<libp2p::PeerId>>,
    ) -> Result<(), ActorError> {
        let mut outputs = outputs.into_iter();
        while let Some(output) = outputs.next() {
            match output {
                Output::Verdict { token, acceptance } => {
                    let Some(net_token) = self.gossip.remove(&token.0) else {
                        continue;
                    };
                    let acceptance = match acceptance {
                        Acceptance::Accept => solidarity_net::Acceptance::Accept,
                        Acceptance::Ignore => solidarity_net::Acceptance::Ignore,
                        Acceptance::Reject => solidarity_net::Acceptance::Reject,
                    };
                    self.net
                        .report(net_token, acceptance)
                        .await
                        .map_err(|_| ActorError::NetworkStopped)?;
                }
                Output::Write {
                    write,
                    message,
                    durable,
                } => {
                    let done = self
                        .writer
                        .insert(message.clone(), durable)
                        .await
                        .map_err(|_| ActorError::WriterStopped)?;
                    self.writes.push(Box::pin(async move {
                        Completion::Write {
                            write,
                            message,
                            result: done.await,
                        }
                    }));
                }
                Output::RecordFork {
                    evidence,
                    detected_at,
                    from_seq,
                } => {
                    let task = Maintenance::RecordFork {
                        evidence,
                        detected_at,
                        from_seq,
                    };
                    self.maintain(task, MaintenanceDone::ForkRecorded).await?;
                }
                Output::Flush => {
                    self.maintain(Maintenance::Flush, MaintenanceDone::Flushed)
                        .await?;
                }
                Output::ClearCompromise { key, token } => {
                    let task = Maintenance::ClearCompromise { author: key };
                    self.maintain(task, MaintenanceDone::CompromiseCleared { token })
                        .await?;
                }
                Output::Expire { now_ms } => {
                    let task = Maintenance::Expire { now_ms };
                    self.maintain(task, MaintenanceDone::Expired { now_ms })
                        .await?;
                }
                Output::RecordSettled { ids } => {
                    self.settled_file
                        .save(&ids)
                        .map_err(ActorError::SettledRevocations)?;
                }
                Output::RecordOwnHead { seq, id } => {
                    if let Err(error) = super::super::own_chain::record(&self.data_dir, seq, id) {
                        // Nothing of this batch leaves: what was about to be published stays
                        // stored, unpublished, and its signer hears why.
                        for rest in outputs.by_ref() {
                            if let Output::Reply { token, .. } = rest {
                                self.reply(
                                    token,
                                    Reply::Refused(Refusal::new(
                                        RefusalCode::StorageFailed,
                                        format!(
                                            "stored but NOT published: cannot record this node's chain head (the daemon stops): {error}"
                                        ),
                                    )),
                                );
                            }
                        }
                        return Err(ActorError::OwnChain(error));
                    }
                }
                Output::RecordRestoring { restoring } => {
                    super::super::own_chain::record_restoring(&self.data_dir, restoring)
                        .map_err(ActorError::OwnChain)?;
                }
                Output::Publish { envelope } => self.publish(envelope).await,
                Output::SendSync {
                    peer,
                    round,
                    request,
                } => self.send_sync(peer, round, request),
                Output::AnswerSync { .. } => {
                    // The actor answers sync requests on readers, never through `handle`.
                    tracing::error!("the engine answered a sync request it was not given");
                }
                Output::Allow { key, addresses } => {
                    let Ok(peer) = identity::peer_id(&key) else {
                        continue;
                    };
                    let addresses = addresses
                        .iter()
                        .filter_map(|address| address.parse().ok())
                        .collect();
                    self.net
                        .allow_peer(peer, addresses)
                        .await
                        .map_err(|_| ActorError::NetworkStopped)?;
                }
                Output::Disallow { key } => {
                    let Ok(peer) = identity::peer_id(&key) else {
                        continue;
                    };
                    self.net
                        .disallow_peer(peer)
                        .await
                        .map_err(|_| ActorError::NetworkStopped)?;
                }
                Output::Notice(notice) => self.notice(notice),
                Output::Reply {
                    token,
                    reply: Reply::Imported(outcomes),
                } => self.imported(token, outcomes).await?,
                Output::Reply { token, reply } => self.reply(token, reply),
                Output::Schedule { timer, at_ms } => {
                    let delay = at_ms.saturating_sub(self.now_ms());
                    let at = tokio::time::Instant::now() + std::time::Duration::from_millis(delay);
                    self.timers.0.insert(timer, at);
                }
            }
        }
        Ok(())
    }

    /// Answers a waiting command (the CLI may have hung up: nothing to undo).
    fn reply(&mut self, token: CommandToken, reply: Reply) {
        let Some(pending) = self.replies.remove(&token) else {
            return;
        };
        match (pending, reply) {
            (PendingReply::Sign(channel), Reply::Signed { id }) => {
                let _ = channel.send(Ok(Raised { id }));
            }
            (PendingReply::Sign(channel), Reply::Refused(refusal)) => {
                let _ = channel.send(Err(refusal));
            }
            (PendingReply::Retrust(channel), Reply::Refused(refusal)) => {
                let _ = channel.send(Err(refusal));
            }
            (PendingReply::Import(channel), Reply::Refused(refusal)) => {
                let _ = channel.send(Err(refusal));
            }
            (pending, reply) => {
                let asked = match pending {
                    PendingReply::Sign(_) => "signing",
                    PendingReply::Retrust(_) => "a retrust",
                    PendingReply::Import(_) => "an import",
                };
                tracing::error!(
                    ?reply,
                    "the engine answered {asked} with another command's reply"
                );
            }
        }
    }

    /// An import's writes are applied: they are flushed, then the admin hears the outcomes.
    async fn imported(
        &mut self,
        token: CommandToken,
        outcomes: Vec<ImportOutcome>,
    ) -> Result<(), ActorError> {
        match self.replies.remove(&token) {
            Some(PendingReply::Import(reply)) => {
                let done = MaintenanceDone::Imported { reply, outcomes };
                self.maintain(Maintenance::Flush, done).await
            }
            Some(other) => {
                self.replies.insert(token, other);
                tracing::error!("the engine answered another command with an import's outcomes");
                Ok(())
            }
            None => Ok(()),
        }
    }

    async fn publish(&mut self, envelope: Vec<u8>) {
        match self.net.publish(envelope).await {
            Ok(()) => {}
            Err(NetError::NoPeers) => {
                tracing::info!("no member connected now; they will get it by sync");
            }
            Err(other) => {
                tracing::warn!(error = %other, "publish failed; members will get it by sync");
            }
        }
    }

    async fn maintain(
        &mut self,
        task: Maintenance,
        done: MaintenanceDone,
    ) -> Result<(), ActorError> {
        let result = self
            .writer
            .maintain(task)
            .await
            .map_err(|_| ActorError::WriterStopped)?;
        self.writes.push(Box::pin(async move {
            Completion::Maintained {
                done,
                result: result.await,
            }
        }));
        Ok(())
    }

    /// A write or maintenance write completed: what people see follows, then the engine.
    pub(super) async fn completed(&mut self, completion: Completion) -> Result<(), ActorError> {
        match completion {
            Completion::Write {
                write,
                message,
                result,
            } => {
                let result = match result {
                    Ok(result) => result,
                    Err(_) => return Err(ActorError::WriterStopped),
                };
                let outcome = match &result {
                    Ok(InsertOutcome::Stored) => Ok(WriteOutcome::Stored),
                    Ok(InsertOutcome::AlreadyStored) => Ok(WriteOutcome::AlreadyStored),
                    Ok(InsertOutcome::SeqConflict) => Ok(WriteOutcome::SeqConflict),
                    Err(error) => Err(WriteFailed(error.to_string())),
                };
                if outcome == Ok(WriteOutcome::Stored) {
                    self.shown_stored(&message)?;
                }
                self.feed(Input::WriteDone {
                    write,
                    result: outcome,
                })
                .await?;
                if let Err(error) = result {
                    return Err(ActorError::Storage(error));
                }
            }
            Completion::Maintained { done, result } => {
                let count = match result {
                    Ok(Ok(count)) => count,
                    Ok(Err(store_error)) => {
                        let refusal = Refusal::new(
                            RefusalCode::StorageFailed,
                            format!("storage failed: {store_error}"),
                        );
                        match done {
                            MaintenanceDone::CompromiseCleared { token } => {
                                self.reply(token, Reply::Refused(refusal));
                            }
                            MaintenanceDone::Imported { reply, .. } => {
                                let _ = reply.send(Err(refusal));
                            }
                            _ => {}
                        }
                        return Err(ActorError::Storage(store_error));
                    }
                    Err(_) => return Err(ActorError::WriterStopped),
                };
                match done {
                    MaintenanceDone::Expired { now_ms } => {
                        if count > 0 {
                            tracing::info!(expired = count, "expired messages deleted");
                            self.stored_messages = self.stored_messages.saturating_sub(count);
                        }
                        self.backfill_shown(now_ms);
                        self.feed(Input::ExpiryDone).await?;
                        self.publish_snapshot();
                    }
                    MaintenanceDone::ForkRecorded | MaintenanceDone::Flushed => {}
                    MaintenanceDone::Imported { reply, outcomes } => {
                        self.publish_snapshot();
                        let _ = reply.send(Ok(Imported { outcomes }));
                    }
                    MaintenanceDone::CompromiseCleared { token } => {
                        if let Some(PendingReply::Retrust(channel)) = self.replies.remove(&token) {
                            let _ = channel.send(Ok(Done {}));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// A message is stored: counted, and shown if it is of a shown kind.
    fn shown_stored(&mut self, message: &NewMessage) -> Result<(), ActorError> {
        self.stored_messages += 1;
        self.metrics.stored.inc();
        let last = self.last_message_at.entry(message.author).or_default();
        *last = (*last).max(message.created_at);
        self.stale.last_seen = true;
        if !solidarity_proto::kinds::is_shown(&message.kind) {
            return Ok(());
        }
        let Some((signer, payload, body)) = super::super::views::decode_envelope(&message.envelope)
        else {
            return Ok(());
        };
        self.shown
            .add(self.store.as_ref(), message.id, signer, &payload, &body)
            .map_err(|read| ActorError::Storage(std::sync::Arc::new(read)))?;
        self.stale.alerts = true;
        Ok(())
    }
}
