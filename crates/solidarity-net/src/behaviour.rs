//! The composed behaviour, built once.

use std::collections::HashMap;

use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    StreamProtocol, allow_block_list, connection_limits, gossipsub, identify, identity::Keypair,
    ping, request_response,
};

use crate::{
    MAX_CONNECTIONS_PER_PEER, MAX_ESTABLISHED_CONNECTIONS, MAX_PENDING_CONNECTIONS, NetConfig,
    NetError, pending_per_ip,
};

/// Identify's protocol version string.
const IDENTIFY_PROTOCOL: &str = "/solidarity/1";
/// Timeout of one sync round trip.
const SYNC_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Sync requests and responses are opaque byte strings to this crate.
pub(crate) type SyncBytes = serde_bytes::ByteBuf;

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) members_only: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    /// Before `limits`, so one address's refused sockets never take overall pending slots.
    pub(crate) pending_per_ip: pending_per_ip::Behaviour,
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) sync: request_response::cbor::Behaviour<SyncBytes, SyncBytes>,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
}

impl Behaviour {
    pub(crate) fn new(
        key: &Keypair,
        config: &NetConfig,
        metrics: Option<&mut prometheus_client::registry::Registry>,
    ) -> Result<Self, NetError> {
        let mut members_only = allow_block_list::Behaviour::default();
        for peer in &config.allowed {
            members_only.allow_peer(*peer);
        }
        let limits = connection_limits::Behaviour::new(
            connection_limits::ConnectionLimits::default()
                .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER))
                .with_max_established(Some(MAX_ESTABLISHED_CONNECTIONS))
                .with_max_pending_incoming(Some(MAX_PENDING_CONNECTIONS))
                .with_max_pending_outgoing(Some(MAX_PENDING_CONNECTIONS)),
        );
        let sync_codec = request_response::cbor::codec::Codec::default()
            .set_request_size_maximum(config.max_sync_request_bytes as u64)
            .set_response_size_maximum(config.max_sync_response_bytes as u64);
        let sync = request_response::Behaviour::with_codec(
            sync_codec,
            [(
                StreamProtocol::new(config.sync_protocol),
                request_response::ProtocolSupport::Full,
            )],
            request_response::Config::default().with_request_timeout(SYNC_REQUEST_TIMEOUT),
        );
        Ok(Self {
            members_only,
            pending_per_ip: pending_per_ip::Behaviour::new(config.inbound_through_tor),
            limits,
            gossipsub: gossip(config, metrics)?,
            sync,
            // Peers learn only the external addresses the node sets (its `announce`),
            // never every interface address it listens on.
            identify: identify::Behaviour::new(
                identify::Config::new(IDENTIFY_PROTOCOL.to_owned(), key.public())
                    .with_hide_listen_addrs(true),
            ),
            ping: ping::Behaviour::default(),
        })
    }
}

/// How long a promised message (IHAVE answered by IWANT) may take to arrive.
const IWANT_FOLLOWUP: std::time::Duration = std::time::Duration::from_secs(10);

/// Score of one invalid message delivery (squared count times this weight).
const INVALID_DELIVERY_WEIGHT: f64 = -100.0;
/// Below this score everything a peer sends by gossip is dropped unread.
const GRAYLIST_THRESHOLD: f64 = -80.0;

/// Per-second decay of the invalid-delivery count such that one invalid message keeps its
/// forwarder graylisted for [`crate::GRAYLIST_AFTER_INVALID`]. With a faster decay (0.9
/// per second, about 2 s of graylist) a member could forward a corrupted copy every few
/// seconds; invalid messages are objective (bad signature, malformed), so an honest member
/// never forwards one and a long penalty costs it nothing.
pub(crate) fn invalid_delivery_decay() -> f64 {
    // The score is weight × count²: graylisted while count > sqrt(threshold / weight).
    let count_at_threshold = (GRAYLIST_THRESHOLD / INVALID_DELIVERY_WEIGHT).sqrt();
    count_at_threshold.powf(1.0 / crate::GRAYLIST_AFTER_INVALID.as_secs_f64())
}

/// Gossipsub tuned for a federation of tens of members: a smaller mesh than the defaults
/// (which target thousands of peers), no flood publishing, and scoring that punishes
/// invalid messages hard while ignoring delivery-rate penalties that misfire on quiet topics.
fn gossip(
    config: &NetConfig,
    metrics: Option<&mut prometheus_client::registry::Registry>,
) -> Result<gossipsub::Behaviour, NetError> {
    let message_id = config.message_id;
    let gossip_config = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .validate_messages()
        .message_id_fn(move |message: &gossipsub::Message| {
            gossipsub::MessageId::from(message_id(&message.data))
        })
        .mesh_n(4)
        .mesh_n_low(3)
        .mesh_n_high(8)
        .mesh_outbound_min(1)
        .gossip_lazy(4)
        .flood_publish(false)
        // A peer that promised a message (IHAVE) and did not send it within this is
        // penalised; over tor a round trip takes 0.3–1.5 s and a circuit can stall for
        // seconds, so the default 3 s would punish honest onion members.
        .iwant_followup_time(IWANT_FOLLOWUP)
        .heartbeat_interval(config.heartbeat)
        .max_transmit_size(config.max_message_bytes)
        .build()
        .map_err(NetError::config)?;
    let mut gossipsub =
        gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, gossip_config)
            .map_err(NetError::config)?;
    if let Some(registry) = metrics {
        // OpenMetrics parsers refuse a histogram with negative buckets and a `_sum` (the
        // Prometheus client's does), and gossipsub's default score buckets are negative:
        // scores at or below 0 (a graylisted forwarder) all count in the first bucket.
        let metrics_config = gossipsub::MetricsConfig {
            score_buckets: vec![0.0, 1.0, 10.0, 100.0],
            ..gossipsub::MetricsConfig::default()
        };
        gossipsub = gossipsub.with_metrics(registry, metrics_config);
    }

    let topic = gossipsub::IdentTopic::new(config.topic.clone());
    let topic_params = gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        // Delivery-rate penalties (P3, P3b) assume a busy topic; alerts are rare.
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        // Each invalid message costs its forwarder dearly (P4 is squared), for long.
        invalid_message_deliveries_weight: INVALID_DELIVERY_WEIGHT,
        invalid_message_deliveries_decay: invalid_delivery_decay(),
        ..gossipsub::TopicScoreParams::default()
    };
    let params = gossipsub::PeerScoreParams {
        topics: HashMap::from([(topic.hash(), topic_params)]),
        // Members may share a host or a NAT: co-location is not suspicious here.
        ip_colocation_factor_weight: 0.0,
        ..gossipsub::PeerScoreParams::default()
    };
    let thresholds = gossipsub::PeerScoreThresholds {
        gossip_threshold: -10.0,
        publish_threshold: -50.0,
        graylist_threshold: GRAYLIST_THRESHOLD,
        ..gossipsub::PeerScoreThresholds::default()
    };
    gossipsub
        .with_peer_score(params, thresholds)
        .map_err(NetError::config)?;
    gossipsub.subscribe(&topic).map_err(NetError::config)?;
    Ok(gossipsub)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_invalid_message_graylists_its_forwarder_for_the_whole_period() {
        let decay = invalid_delivery_decay();
        let score_after = |seconds: f64| INVALID_DELIVERY_WEIGHT * decay.powf(seconds).powi(2);
        let period = crate::GRAYLIST_AFTER_INVALID.as_secs_f64();
        eprintln!(
            "decay {decay:.6}/s; score after 2 s {:.1}, after {period} s {:.1}",
            score_after(2.0),
            score_after(period)
        );
        assert!(score_after(period - 1.0) < GRAYLIST_THRESHOLD);
        assert!(score_after(period + 1.0) > GRAYLIST_THRESHOLD);
        const {
            assert!(
                INVALID_DELIVERY_WEIGHT < GRAYLIST_THRESHOLD,
                "one message suffices"
            )
        };
    }
}
