//! DescribeQuorum (55), answered by the leader: a plain [`QuorumStatus`] as Kafka's response
//! (v1 adds the fetch and caught-up timestamps, v2 directory ids and the voters' listeners),
//! the NOT_LEADER_OR_FOLLOWER form for other nodes, and decoding for tests and tools.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::{self as km, ApiKey};
use kafka_protocol::protocol::StrBytes;
use shale_raft::kraft::NodeId;
use uuid::Uuid;

use super::{
    check_version, codes, decode, encode, malformed, single_partition, topic_name, Endpoint,
    WireContext, WireError, METADATA_PARTITION,
};

/// One replica's progress as the leader sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaStatus {
    pub id: NodeId,
    /// The replica's directory id (v2; nil when unknown, which the core always is).
    pub directory_id: Uuid,
    /// -1 when the leader has not heard from it.
    pub log_end_offset: i64,
    /// Milliseconds; -1 when unknown (v1+).
    pub last_fetch_timestamp: i64,
    /// Milliseconds; -1 when unknown (v1+).
    pub last_caught_up_timestamp: i64,
}

/// The leader's view of the quorum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumStatus {
    pub leader_id: NodeId,
    pub leader_epoch: i32,
    /// -1 when the leader has no high watermark yet in its epoch.
    pub high_watermark: i64,
    pub voters: Vec<ReplicaStatus>,
    pub observers: Vec<ReplicaStatus>,
}

/// A decoded DescribeQuorum response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribedQuorum {
    pub status: QuorumStatus,
    /// v2: each voter's listeners, `(listener name, endpoint)`.
    pub nodes: BTreeMap<NodeId, Vec<(String, Endpoint)>>,
}

/// Checks that a DescribeQuorum request asks about `__cluster_metadata-0`; otherwise
/// [`WireError::Refused`] with UNKNOWN_TOPIC_OR_PARTITION, to answer with
/// [`encode_describe_quorum_error`] as Kafka does.
pub fn decode_describe_quorum_request(version: i16, body: Bytes) -> Result<(), WireError> {
    let api_key = ApiKey::DescribeQuorum;
    check_version(api_key, version)?;
    let req: km::DescribeQuorumRequest = decode(api_key, version, body)?;
    single_partition(
        api_key,
        &req.topics,
        |t| (&t.topic_name, &t.partitions),
        |p| p.partition_index,
        codes::UNKNOWN_TOPIC_OR_PARTITION,
    )
    .map_err(|e| match e {
        WireError::Refused {
            api_key, reason, ..
        } => WireError::Refused {
            api_key,
            code: codes::UNKNOWN_TOPIC_OR_PARTITION,
            reason,
        },
        other => other,
    })?;
    Ok(())
}

fn replica_states(
    replicas: &[ReplicaStatus],
    version: i16,
) -> Vec<km::describe_quorum_response::ReplicaState> {
    replicas
        .iter()
        .map(|r| {
            let mut s = km::describe_quorum_response::ReplicaState::default()
                .with_replica_id(r.id.into())
                .with_log_end_offset(r.log_end_offset);
            if version >= 1 {
                s = s
                    .with_last_fetch_timestamp(r.last_fetch_timestamp)
                    .with_last_caught_up_timestamp(r.last_caught_up_timestamp);
            }
            if version >= 2 {
                s = s.with_replica_directory_id(r.directory_id);
            }
            s
        })
        .collect()
}

/// The leader's DescribeQuorum response. At v2 every voter is listed in `Nodes` with its
/// endpoint on our controller listener when `ctx` knows it.
pub fn encode_describe_quorum(
    status: &QuorumStatus,
    version: i16,
    ctx: &WireContext,
) -> Result<Bytes, WireError> {
    use km::describe_quorum_response as r;
    let api_key = ApiKey::DescribeQuorum;
    check_version(api_key, version)?;
    let partition = r::PartitionData::default()
        .with_partition_index(METADATA_PARTITION)
        .with_leader_id(status.leader_id.into())
        .with_leader_epoch(status.leader_epoch)
        .with_high_watermark(status.high_watermark)
        .with_current_voters(replica_states(&status.voters, version))
        .with_observers(replica_states(&status.observers, version));
    let topic = r::TopicData::default()
        .with_topic_name(topic_name())
        .with_partitions(vec![partition]);
    let mut out = km::DescribeQuorumResponse::default().with_topics(vec![topic]);
    if version >= 2 {
        let nodes = status
            .voters
            .iter()
            .map(|v| {
                let listeners = ctx
                    .endpoints
                    .get(&v.id)
                    .map(|e| {
                        r::Listener::default()
                            .with_name(StrBytes::from_string(ctx.listener_name.clone()))
                            .with_host(StrBytes::from_string(e.host.clone()))
                            .with_port(e.port)
                    })
                    .into_iter()
                    .collect();
                r::Node::default()
                    .with_node_id(v.id.into())
                    .with_listeners(listeners)
            })
            .collect();
        out = out.with_nodes(nodes);
    }
    encode(api_key, version, &out)
}

/// A DescribeQuorum response with partition-level error `code` on `__cluster_metadata-0`
/// (NOT_LEADER_OR_FOLLOWER from a non-leader, UNKNOWN_TOPIC_OR_PARTITION).
pub fn encode_describe_quorum_error(version: i16, code: i16) -> Result<Bytes, WireError> {
    use km::describe_quorum_response as r;
    let api_key = ApiKey::DescribeQuorum;
    check_version(api_key, version)?;
    let mut partition = r::PartitionData::default()
        .with_partition_index(METADATA_PARTITION)
        .with_error_code(code)
        .with_leader_id((-1).into())
        .with_leader_epoch(-1)
        .with_high_watermark(-1);
    if version >= 2 {
        let message = match code {
            codes::NOT_LEADER_OR_FOLLOWER => "this controller is not the quorum leader",
            codes::UNKNOWN_TOPIC_OR_PARTITION => "only __cluster_metadata-0 has a quorum",
            _ => "request refused",
        };
        partition = partition.with_error_message(Some(StrBytes::from_static_str(message)));
    }
    let topic = r::TopicData::default()
        .with_topic_name(topic_name())
        .with_partitions(vec![partition]);
    encode(
        api_key,
        version,
        &km::DescribeQuorumResponse::default().with_topics(vec![topic]),
    )
}

fn replicas_from(states: &[km::describe_quorum_response::ReplicaState]) -> Vec<ReplicaStatus> {
    states
        .iter()
        .map(|s| ReplicaStatus {
            id: s.replica_id.0,
            directory_id: s.replica_directory_id,
            log_end_offset: s.log_end_offset,
            last_fetch_timestamp: s.last_fetch_timestamp,
            last_caught_up_timestamp: s.last_caught_up_timestamp,
        })
        .collect()
}

/// Decodes a DescribeQuorum response; a top-level or partition error is
/// [`WireError::ErrorResponse`].
pub fn decode_describe_quorum(version: i16, body: Bytes) -> Result<DescribedQuorum, WireError> {
    let api_key = ApiKey::DescribeQuorum;
    check_version(api_key, version)?;
    let resp: km::DescribeQuorumResponse = decode(api_key, version, body)?;
    if resp.error_code != codes::NONE {
        return Err(WireError::ErrorResponse {
            api_key,
            code: resp.error_code,
        });
    }
    let p = single_partition(
        api_key,
        &resp.topics,
        |t| (&t.topic_name, &t.partitions),
        |p| p.partition_index,
        codes::UNKNOWN_TOPIC_OR_PARTITION,
    )
    .map_err(|e| malformed(api_key, version, e.to_string()))?;
    if p.error_code != codes::NONE {
        return Err(WireError::ErrorResponse {
            api_key,
            code: p.error_code,
        });
    }
    let status = QuorumStatus {
        leader_id: p.leader_id.0,
        leader_epoch: p.leader_epoch,
        high_watermark: p.high_watermark,
        voters: replicas_from(&p.current_voters),
        observers: replicas_from(&p.observers),
    };
    let nodes = resp
        .nodes
        .iter()
        .map(|n| {
            let listeners = n
                .listeners
                .iter()
                .map(|l| {
                    let e = Endpoint {
                        host: l.host.as_str().to_string(),
                        port: l.port,
                    };
                    (l.name.as_str().to_string(), e)
                })
                .collect();
            (n.node_id.0, listeners)
        })
        .collect();
    Ok(DescribedQuorum { status, nodes })
}
