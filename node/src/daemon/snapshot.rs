//! What the status page shows, published by the node actor after every change and read
//! by the HTTP handlers without ever waiting on the actor.

use std::sync::Arc;

use solidarity_control::{MemberView, StatusView};
use solidarity_proto::state::{AlertView, OfferView};

/// Each list is shared between snapshots until it changes, so publishing one after a
/// message arrives does not copy the member list, nor the alerts after a connection change.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub status: StatusView,
    pub members: Arc<Vec<MemberView>>,
    pub alerts: Arc<Vec<AlertView>>,
    pub offers: Arc<Vec<OfferView>>,
}

impl Snapshot {
    /// Before the actor publishes its first snapshot.
    pub fn empty() -> Self {
        Self {
            status: StatusView {
                node_key: solidarity_proto::AuthorKey([0; 32]),
                peer_id: String::new(),
                federation: String::new(),
                version: crate::VERSION.to_owned(),
                started_at: 0,
                uptime_secs: 0,
                p2p_ports: Vec::new(),
                status_url: String::new(),
                admin_url: None,
                metrics_url: None,
                members: 0,
                connected: 0,
                alerts: 0,
                offers: 0,
                stored_messages: 0,
                own_seq: 0,
                signing_paused: None,
                own_key_compromised_at: None,
                own_key_revoked_since: None,
                tor: None,
            },
            members: Arc::default(),
            alerts: Arc::default(),
            offers: Arc::default(),
        }
    }
}
