//! The CLI's requests (through the control socket) and SIGHUP reloads: reads answered
//! from the snapshot or on a blocking reader, commands handed to the engine.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, oneshot};

use libp2p::multiaddr::Protocol;
use solidarity_control::{
    Alerts, CardLine, Done, Members, MetricsText, Offers, Refusal, RefusalCode, request,
};
use solidarity_engine::{Command, ImportEnvelope, Input, ListedKey};
use solidarity_proto::Body;
use solidarity_proto::payload::{AlertUpdate, Endorsement, MirrorWithdraw, Vouch};

use super::super::control_server::{Call, ControlCall, SignReply};
use super::super::directory;
use super::super::export;
use super::super::metrics;
use super::super::refusals;
use super::outputs::PendingReply;
use super::{ActorError, NodeActor, live_config};
use crate::identity::Card;
use crate::members::MembersFile;

/// Most display loads (`alert list --all`, `alert show`) reading the store at once; one
/// beyond is refused as busy, so local callers cannot pile up blocking reads.
pub const DISPLAY_LOADS_IN_FLIGHT: usize = 4;

fn unreadable(error: impl std::fmt::Display) -> Refusal {
    Refusal::new(RefusalCode::StoreUnreadable, error.to_string())
}

fn busy() -> Refusal {
    Refusal::new(
        RefusalCode::Busy,
        "too many store reads are running; ask again in a moment",
    )
}

impl NodeActor {
    pub(super) async fn handle_control(&mut self, call: ControlCall) -> Result<(), ActorError> {
        let now = self.now_ms();
        // Each arm answers its call's own reply; the CLI may have hung up, nothing to undo
        // for a read or a reload.
        match call {
            ControlCall::Status(Call { reply, .. }) => {
                self.refresh_ports().await?;
                self.publish_snapshot();
                self.refresh_snapshot();
                let _ = reply.send(Ok(self.snapshot.borrow().status.clone()));
            }
            ControlCall::Metrics(Call { reply, .. }) => {
                let _ = reply.send(Ok(MetricsText {
                    text: metrics::encode(&self.registry),
                }));
            }
            ControlCall::Peers(Call { reply, .. }) => {
                let _ = reply.send(Ok(Members {
                    members: self.member_views(),
                }));
            }
            ControlCall::Card(Call { reply, .. }) => {
                let card = self.card().await?;
                let _ = reply.send(Ok(card));
            }
            ControlCall::ReloadMembers(Call { reply, .. }) => {
                let answer = self.reload_members().await?;
                let _ = reply.send(answer);
            }
            ControlCall::MemberRetrust(Call {
                request: request::MemberRetrust { key },
                reply,
            }) => {
                let token = self.command_token(PendingReply::Retrust(reply));
                return self
                    .feed(Input::Command {
                        token,
                        command: Command::Retrust { key },
                    })
                    .await;
            }
            // The snapshot carries what the views alone do not: suspect marks and
            // corroboration.
            ControlCall::AlertList(Call {
                request: request::AlertList { all: false },
                reply,
            }) => {
                self.refresh_snapshot();
                let _ = reply.send(Ok(Alerts {
                    alerts: self.snapshot.borrow().alerts.as_ref().clone(),
                }));
            }
            ControlCall::AlertList(Call {
                request: request::AlertList { all: true },
                reply,
            }) => {
                let marks = self.marks();
                let store = Arc::clone(&self.store);
                self.answer_off_actor(reply, move || {
                    marks
                        .every_alert(store.as_ref(), now)
                        .map(|alerts| Alerts { alerts })
                });
            }
            ControlCall::AlertShow(Call {
                request: request::AlertShow { alert },
                reply,
            }) => {
                let marks = self.marks();
                let store = Arc::clone(&self.store);
                self.answer_off_actor(reply, move || {
                    marks.alert_detail(store.as_ref(), &alert, now)
                });
            }
            ControlCall::MirrorList(Call { reply, .. }) => {
                self.refresh_snapshot();
                let _ = reply.send(Ok(Offers {
                    offers: self.snapshot.borrow().offers.as_ref().clone(),
                }));
            }
            ControlCall::AlertRaise(Call {
                request:
                    request::AlertRaise {
                        alert,
                        expires_in_ms,
                    },
                reply,
            }) => match refusals::alert_raise(&alert) {
                Err(refusal) => {
                    let _ = reply.send(Err(refusal));
                }
                Ok(()) => {
                    let expires_at = expires_in_ms.map(|lifetime| now.saturating_add(lifetime));
                    return self.sign(Body::Alert(alert), expires_at, reply).await;
                }
            },
            ControlCall::AlertUpdate(Call {
                request:
                    request::AlertUpdate {
                        alert,
                        status,
                        note,
                    },
                reply,
            }) => match refusals::alert_update(
                self.store.as_ref(),
                &self.me,
                &alert,
                status,
                note.as_deref(),
            ) {
                Err(refusal) => {
                    let _ = reply.send(Err(refusal));
                }
                Ok(expires_at) => {
                    let body = Body::AlertUpdate(AlertUpdate {
                        alert,
                        status,
                        note,
                    });
                    return self.sign(body, expires_at, reply).await;
                }
            },
            ControlCall::MirrorOffer(Call {
                request:
                    request::MirrorOffer {
                        offer,
                        valid_for_ms,
                    },
                reply,
            }) => {
                let expires_at = Some(now.saturating_add(valid_for_ms));
                return self.sign(Body::MirrorOffer(offer), expires_at, reply).await;
            }
            ControlCall::AlertEndorse(Call {
                request:
                    request::AlertEndorse {
                        alert,
                        stance,
                        note,
                    },
                reply,
            }) => match refusals::alert_endorse(self.store.as_ref(), &self.me, &alert, stance) {
                Err(refusal) => {
                    let _ = reply.send(Err(refusal));
                }
                Ok(expires_at) => {
                    let body = Body::Endorsement(Endorsement {
                        alert,
                        stance,
                        note,
                    });
                    return self.sign(body, expires_at, reply).await;
                }
            },
            ControlCall::MemberVouch(Call {
                request:
                    request::MemberVouch {
                        key,
                        name,
                        addresses,
                        vouch,
                    },
                reply,
            }) => {
                if key == self.me {
                    let _ = reply.send(Err(Refusal::new(
                        RefusalCode::SelfVouch,
                        "a node does not vouch for itself",
                    )));
                } else {
                    let body = Body::Vouch(Vouch {
                        member: key,
                        name,
                        addresses,
                        vouch,
                    });
                    return self.sign(body, None, reply).await;
                }
            }
            ControlCall::CanaryPublish(Call {
                request: request::CanaryPublish { withdraw, restore },
                reply,
            }) => {
                let command = Command::Canary { withdraw, restore };
                return self.command(command, reply).await;
            }
            ControlCall::PublishStatement(Call {
                request: request::PublishStatement { envelope },
                reply,
            }) => {
                return self
                    .command(Command::PublishStatement { envelope }, reply)
                    .await;
            }
            ControlCall::CanaryDuress(Call {
                request: request::CanaryDuress { token },
                reply,
            }) => {
                let command = Command::Duress {
                    token: token.as_bytes().to_vec(),
                };
                return self.command(command, reply).await;
            }
            ControlCall::ExportPage(Call {
                request: request::ExportPage { after },
                reply,
            }) => {
                let store = Arc::clone(&self.store);
                self.answer_off_actor(reply, move || {
                    export::page(store.as_ref(), after).map_err(unreadable)
                });
            }
            ControlCall::ExportExtras(Call {
                request: request::ExportExtras { members },
                reply,
            }) => {
                let store = Arc::clone(&self.store);
                let data_dir = self.data_dir.clone();
                self.answer_off_actor(reply, move || {
                    export::extras(store.as_ref(), &data_dir, members, now).map_err(unreadable)
                });
            }
            ControlCall::Import(Call {
                request: request::Import { envelopes },
                reply,
            }) => {
                let envelopes = envelopes
                    .into_iter()
                    .map(|item| ImportEnvelope {
                        bytes: item.envelope.0,
                        kept: item.kept,
                        fork_group: item.fork_group,
                    })
                    .collect();
                let token = self.command_token(PendingReply::Import(reply));
                return self
                    .feed(Input::Command {
                        token,
                        command: Command::Import { envelopes },
                    })
                    .await;
            }
            ControlCall::MirrorWithdraw(Call {
                request: request::MirrorWithdraw { offer },
                reply,
            }) => match refusals::mirror_withdraw(self.store.as_ref(), &self.me, &offer, now) {
                Err(refusal) => {
                    let _ = reply.send(Err(refusal));
                }
                Ok(expires_at) => {
                    let body = Body::MirrorWithdraw(MirrorWithdraw { offer });
                    return self.sign(body, expires_at, reply).await;
                }
            },
        }
        Ok(())
    }

    /// Asks the engine to sign `body` as this node's next message; the CLI gets its id
    /// once it is durable and published.
    async fn sign(
        &mut self,
        body: Body,
        expires_at: Option<u64>,
        reply: SignReply,
    ) -> Result<(), ActorError> {
        let command = Command::Sign {
            body: Box::new(body),
            expires_at,
        };
        self.command(command, reply).await
    }

    async fn command(&mut self, command: Command, reply: SignReply) -> Result<(), ActorError> {
        let token = self.command_token(PendingReply::Sign(reply));
        self.feed(Input::Command { token, command }).await
    }

    /// A place for one more display load, or `None` when [`DISPLAY_LOADS_IN_FLIGHT`] run.
    fn display_permit(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.display_loads).try_acquire_owned().ok()
    }

    /// Answers a CLI call with a blocking store read run on a reader thread, or as busy
    /// when [`DISPLAY_LOADS_IN_FLIGHT`] run.
    fn answer_off_actor<T: Send + 'static>(
        &mut self,
        reply: oneshot::Sender<Result<T, Refusal>>,
        read: impl FnOnce() -> Result<T, Refusal> + Send + 'static,
    ) {
        let Some(permit) = self.display_permit() else {
            let _ = reply.send(Err(busy()));
            return;
        };
        self.readers.spawn(async move {
            let answer = tokio::task::spawn_blocking(read).await;
            drop(permit);
            match answer {
                Ok(answer) => {
                    let _ = reply.send(answer);
                }
                Err(error) => tracing::error!(%error, "display load failed"),
            }
        });
    }

    pub(super) async fn refresh_ports(&mut self) -> Result<(), ActorError> {
        let addresses = self
            .net
            .listen_addresses()
            .await
            .map_err(|_| ActorError::NetworkStopped)?;
        let mut ports: Vec<u16> = addresses
            .iter()
            .flat_map(|address| address.iter())
            .filter_map(|protocol| match protocol {
                Protocol::Tcp(port) => Some(port),
                _ => None,
            })
            .collect();
        ports.sort_unstable();
        ports.dedup();
        self.p2p_ports = ports;
        Ok(())
    }

    async fn card(&mut self) -> Result<CardLine, ActorError> {
        let bound = self
            .net
            .listen_addresses()
            .await
            .map_err(|_| ActorError::NetworkStopped)?;
        let addresses = crate::card_addresses::node_card_addresses(&self.identity.config, &bound);
        Ok(CardLine {
            card: Card {
                key: self.me,
                addresses,
                duress_commitment: None,
            }
            .render(),
        })
    }

    /// SIGHUP: applies the live keys of the config read again and the members file
    /// together; an invalid members file changes neither.
    pub(super) async fn handle_reload(
        &mut self,
        call: super::super::reload::ReloadCall,
    ) -> Result<(), ActorError> {
        let super::super::reload::ReloadCall { config, reply } = call;
        let (file, members) = match self.read_members_file() {
            Ok(read) => read,
            Err(refusal) => {
                // The signal task may have gone at shutdown; nothing to undo.
                let _ = reply.send(Err(format!("members.toml: {refusal}")));
                return Ok(());
            }
        };
        let changes = super::super::reload::merge(&mut self.identity.config, config);
        self.directory.replace_file(file);
        let config = live_config(&self.identity.config);
        self.feed(Input::Reloaded { config, members }).await?;
        if changes.live.contains(&"announce") {
            self.net
                .set_external_addresses(self.identity.config.advertised())
                .await
                .map_err(|_| ActorError::NetworkStopped)?;
        }
        if changes.live.contains(&"log")
            && let Err(refused) = crate::logging::set_filter(&self.identity.config.log)
        {
            tracing::warn!(%refused, "log filter unchanged");
        }
        tracing::info!(
            members = self.directory.entries().len(),
            applied = ?changes.live,
            need_restart = ?changes.restart,
            "config reloaded, with the members file; keys under need_restart take effect at the next start"
        );
        self.publish_snapshot();
        let _ = reply.send(Ok(()));
        Ok(())
    }

    /// `solidarity member reload`: reads the members file again; an invalid one changes
    /// nothing.
    async fn reload_members(&mut self) -> Result<Result<Done, Refusal>, ActorError> {
        let (file, listed) = match self.read_members_file() {
            Ok(read) => read,
            Err(refusal) => return Ok(Err(refusal)),
        };
        self.directory.replace_file(file);
        // Trust is derived again (so the directory renamed) on every members list.
        self.feed(Input::MembersChanged(listed)).await?;
        tracing::info!(members = self.directory.entries().len(), "members reloaded");
        Ok(Ok(Done {}))
    }

    /// The members file as it is now, and the list the engine takes from it.
    fn read_members_file(&self) -> Result<(MembersFile, Vec<ListedKey>), Refusal> {
        let invalid = |error: anyhow::Error| {
            Refusal::new(RefusalCode::MembersFileInvalid, format!("{error:#}"))
        };
        let file = MembersFile::load(&self.data_dir).map_err(invalid)?;
        let listed = directory::listed_keys(&file).map_err(invalid)?;
        Ok((file, listed))
    }
}
