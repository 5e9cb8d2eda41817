//! DescribeQuorum (api 55) on client listeners, which `kafka-metadata-quorum.sh
//! --bootstrap-server` sends to a broker. In a cluster a broker relays it whole to the active
//! controller's listener ([`super::forward`]), as Kafka's brokers forward it; a single node
//! answers here, from its own quorum of one: it leads, its log end is its high watermark. A
//! cluster node that could not relay it answers NOT_LEADER_OR_FOLLOWER.

use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{
    BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use shale_raft::metadata_log::METADATA_TOPIC;

use crate::state::Broker;

/// The single node's quorum: this node the only voter and the leader.
pub fn describe(
    broker: &Broker,
    req: &DescribeQuorumRequest,
    version: i16,
) -> DescribeQuorumResponse {
    let asks_metadata = req.topics.len() == 1
        && req.topics[0].topic_name.0.as_str() == METADATA_TOPIC
        && req.topics[0].partitions.len() == 1
        && req.topics[0].partitions[0].partition_index == 0;
    use kafka_protocol::error::ResponseError as E;
    let mut partition = PartitionData::default();
    // A cluster node reaching here could not relay the request to the active controller: only
    // the quorum leader can describe the quorum.
    let refusal = match (broker.forwarder().is_some(), asks_metadata) {
        (true, _) => Some(E::NotLeaderOrFollower),
        (false, false) => Some(E::UnknownTopicOrPartition),
        (false, true) => None,
    };
    if let Some(error) = refusal {
        partition.error_code = error.code();
        partition.leader_id = BrokerId(-1);
        partition.leader_epoch = -1;
        partition.high_watermark = -1;
    } else {
        let node_id = broker.config.node_id;
        let end = broker.controller.log_end_offset();
        let now = broker.clock.now_ms();
        partition.leader_id = BrokerId(node_id);
        partition.leader_epoch = broker.controller.epoch();
        partition.high_watermark = end;
        let mut voter = ReplicaState::default()
            .with_replica_id(BrokerId(node_id))
            .with_log_end_offset(end);
        if version >= 1 {
            voter = voter
                .with_last_fetch_timestamp(now)
                .with_last_caught_up_timestamp(now);
        }
        partition.current_voters = vec![voter];
    }
    let topic = TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
        .with_partitions(vec![partition]);
    if version < 2 {
        return DescribeQuorumResponse::default().with_topics(vec![topic]);
    }
    let nodes = broker
        .config
        .advertised_listeners
        .first()
        .map(|l| {
            Node::default()
                .with_node_id(BrokerId(broker.config.node_id))
                .with_listeners(vec![Listener::default()
                    .with_name(StrBytes::from_string(l.name.clone()))
                    .with_host(StrBytes::from_string(l.host.clone()))
                    .with_port(l.port)])
        })
        .into_iter()
        .collect();
    DescribeQuorumResponse::default()
        .with_topics(vec![topic])
        .with_nodes(nodes)
}
