//! The cloneable handle through which the node drives the event loop.

use libp2p::request_response::InboundRequestId;
use libp2p::{Multiaddr, PeerId, gossipsub};
use tokio::sync::{mpsc, oneshot};

/// A failure of a network operation.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The behaviour could not be configured.
    #[error("network configuration rejected: {reason}")]
    Config {
        /// libp2p's explanation.
        reason: String,
    },
    /// Listening on a configured address failed (the address is not printed: it may be
    /// private; it is in the node's config file).
    #[error("cannot listen on configured address #{index}: {source}")]
    Listen {
        /// Position in the configured list, from 0.
        index: usize,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A configured TCP port is taken (by another daemon, say).
    #[error("cannot listen on configured address #{index}: port {port} is already in use")]
    AddressInUse {
        /// Position in the configured list, from 0.
        index: usize,
        /// The port.
        port: u16,
    },
    /// Publishing found no peer to send to; the message reaches members through sync.
    #[error("no connected member to publish to")]
    NoPeers,
    /// Publishing failed for another reason.
    #[error("publish failed: {source}")]
    Publish {
        /// Why.
        #[source]
        source: gossipsub::PublishError,
    },
    /// A sync request failed.
    #[error("sync request failed: {source}")]
    Sync {
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The event loop has stopped.
    #[error("the network event loop has stopped")]
    Stopped,
}

impl NetError {
    pub(crate) fn config(reason: impl ToString) -> Self {
        NetError::Config {
            reason: reason.to_string(),
        }
    }
}

/// Identifies a received gossip message and its forwarder, for its verdict.
#[derive(Debug, Clone)]
pub struct GossipToken {
    pub(crate) id: gossipsub::MessageId,
    pub(crate) source: PeerId,
}

/// Identifies an inbound sync request awaiting its answer.
#[derive(Debug)]
pub struct SyncReplyToken(pub(crate) InboundRequestId);

/// The application's verdict on a gossiped message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceptance {
    /// Valid: relay it.
    Accept,
    /// Drop it, no penalty.
    Ignore,
    /// Drop it and penalise the forwarder.
    Reject,
}

pub(crate) enum Command {
    Publish {
        data: Vec<u8>,
        done: oneshot::Sender<Result<(), NetError>>,
    },
    Report {
        token: GossipToken,
        acceptance: Acceptance,
    },
    AllowPeer {
        peer: PeerId,
        addresses: Vec<Multiaddr>,
    },
    DisallowPeer {
        peer: PeerId,
    },
    SyncRequest {
        peer: PeerId,
        data: Vec<u8>,
        done: oneshot::Sender<Result<Vec<u8>, NetError>>,
    },
    SyncReply {
        token: SyncReplyToken,
        data: Vec<u8>,
    },
    ListenAddresses {
        done: oneshot::Sender<Vec<Multiaddr>>,
    },
    SetExternal {
        addresses: Vec<Multiaddr>,
    },
    RedialNow,
}

/// Cloneable handle to the event loop. Every method fails with [`NetError::Stopped`] once
/// the loop is gone.
#[derive(Clone, Debug)]
pub struct NetHandle {
    pub(crate) commands: mpsc::Sender<Command>,
}

impl NetHandle {
    async fn send(&self, command: Command) -> Result<(), NetError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| NetError::Stopped)
    }

    /// Publishes bytes on the federation topic.
    pub async fn publish(&self, data: Vec<u8>) -> Result<(), NetError> {
        let (done, result) = oneshot::channel();
        self.send(Command::Publish { data, done }).await?;
        result.await.map_err(|_| NetError::Stopped)?
    }

    /// Reports the verdict on a gossiped message (exactly once per message).
    pub async fn report(&self, token: GossipToken, acceptance: Acceptance) -> Result<(), NetError> {
        self.send(Command::Report { token, acceptance }).await
    }

    /// Lets a member connect, and keeps dialling it at `addresses` with backoff.
    pub async fn allow_peer(
        &self,
        peer: PeerId,
        addresses: Vec<Multiaddr>,
    ) -> Result<(), NetError> {
        self.send(Command::AllowPeer { peer, addresses }).await
    }

    /// Stops trusting a peer: disconnects it and refuses its connections.
    pub async fn disallow_peer(&self, peer: PeerId) -> Result<(), NetError> {
        self.send(Command::DisallowPeer { peer }).await
    }

    /// Sends a sync request and waits for the response bytes.
    pub async fn sync_request(&self, peer: PeerId, data: Vec<u8>) -> Result<Vec<u8>, NetError> {
        let (done, result) = oneshot::channel();
        self.send(Command::SyncRequest { peer, data, done }).await?;
        result.await.map_err(|_| NetError::Stopped)?
    }

    /// Answers an inbound sync request.
    pub async fn reply_sync(&self, token: SyncReplyToken, data: Vec<u8>) -> Result<(), NetError> {
        self.send(Command::SyncReply { token, data }).await
    }

    /// The addresses the node listens on now (with the ports actually bound).
    pub async fn listen_addresses(&self) -> Result<Vec<Multiaddr>, NetError> {
        let (done, result) = oneshot::channel();
        self.send(Command::ListenAddresses { done }).await?;
        result.await.map_err(|_| NetError::Stopped)
    }

    /// Replaces the addresses identify tells peers (a new `announce`); port 0 stands
    /// for the port bound.
    pub async fn set_external_addresses(&self, addresses: Vec<Multiaddr>) -> Result<(), NetError> {
        self.send(Command::SetExternal { addresses }).await
    }

    /// Dials every disconnected member now and starts their backoff over: the way out
    /// (tor) is back after an outage that pushed the delays to minutes.
    pub async fn redial_now(&self) -> Result<(), NetError> {
        self.send(Command::RedialNow).await
    }
}
