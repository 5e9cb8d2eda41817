//! Vote (52), BeginQuorumEpoch (53) and EndQuorumEpoch (54): the core's election messages as
//! Kafka's request and response bodies, both directions.

use bytes::Bytes;
use kafka_protocol::messages::{self as km, ApiKey};
use kafka_protocol::protocol::StrBytes;
use shale_raft::kraft::{Message, NodeId, VoteRequest, VoteResponse};

use super::{
    check_cluster, cluster_id, codes, decode, epoch_view_error, fencing_code, leader_opt,
    leader_or_nil, malformed, refused, single_partition, top_level, topic_name, WireContext,
    WireError,
};

/// Kafka puts the prospective's current epoch in a pre-vote; the core asks for `epoch + 1`.
fn wire_vote_epoch(req: &VoteRequest) -> Option<i32> {
    if req.pre_vote {
        req.epoch.checked_sub(1)
    } else {
        Some(req.epoch)
    }
}

pub(super) fn vote_request(
    to: NodeId,
    req: &VoteRequest,
    version: i16,
    ctx: &WireContext,
) -> Result<km::VoteRequest, WireError> {
    let fail = |reason: &str| WireError::Encode {
        api_key: ApiKey::Vote,
        version,
        reason: reason.to_string(),
    };
    if req.pre_vote && version < 2 {
        return Err(fail("a pre-vote needs Vote v2 (KIP-996)"));
    }
    let epoch = wire_vote_epoch(req).ok_or_else(|| fail("pre-vote epoch out of range"))?;
    let partition = km::vote_request::PartitionData::default()
        .with_partition_index(super::METADATA_PARTITION)
        .with_replica_epoch(epoch)
        .with_replica_id(req.candidate.into())
        .with_last_offset_epoch(req.last_epoch)
        .with_last_offset(req.end_offset)
        .with_pre_vote(req.pre_vote);
    let topic = km::vote_request::TopicData::default()
        .with_topic_name(topic_name())
        .with_partitions(vec![partition]);
    let mut out = km::VoteRequest::default()
        .with_cluster_id(cluster_id(ctx))
        .with_topics(vec![topic]);
    if version >= 1 {
        out = out.with_voter_id(to.into());
    }
    Ok(out)
}

pub(super) fn decode_vote_request(
    version: i16,
    body: Bytes,
    ctx: &WireContext,
) -> Result<(NodeId, Message), WireError> {
    let api_key = ApiKey::Vote;
    let req: km::VoteRequest = decode(api_key, version, body)?;
    check_cluster(api_key, req.cluster_id.as_ref(), ctx)?;
    let p = single_partition(
        api_key,
        &req.topics,
        |t| (&t.topic_name, &t.partitions),
        |p| p.partition_index,
        codes::INVALID_REQUEST,
    )?;
    check_voter_key(api_key, version, req.voter_id.0, ctx)?;
    let epoch = if p.pre_vote {
        p.replica_epoch
            .checked_add(1)
            .ok_or_else(|| malformed(api_key, version, "pre-vote epoch out of range"))?
    } else {
        p.replica_epoch
    };
    let msg = Message::Vote(VoteRequest {
        epoch,
        candidate: p.replica_id.0,
        last_epoch: p.last_offset_epoch,
        end_offset: p.last_offset,
        pre_vote: p.pre_vote,
    });
    Ok((p.replica_id.0, msg))
}

/// Kafka rejects a Vote or BeginQuorumEpoch addressed to another voter (INVALID_VOTER_KEY);
/// -1 (or v0, which has no VoterId) addresses whoever receives it.
fn check_voter_key(
    api_key: ApiKey,
    version: i16,
    voter_id: i32,
    ctx: &WireContext,
) -> Result<(), WireError> {
    if version >= 1 && voter_id >= 0 && voter_id != ctx.local_id {
        return Err(refused(
            api_key,
            codes::INVALID_VOTER_KEY,
            format!("addressed to voter {voter_id}, we are {}", ctx.local_id),
        ));
    }
    Ok(())
}

pub(super) fn vote_response(
    req: &VoteRequest,
    ans: &VoteResponse,
    version: i16,
    ctx: &WireContext,
) -> km::VoteResponse {
    let asked = wire_vote_epoch(req).unwrap_or(i32::MIN);
    let error = fencing_code(asked, ans.epoch);
    let partition = km::vote_response::PartitionData::default()
        .with_partition_index(super::METADATA_PARTITION)
        .with_error_code(error)
        .with_leader_id(leader_or_nil(ans.leader).into())
        .with_leader_epoch(ans.epoch)
        .with_vote_granted(ans.granted && error == codes::NONE);
    let topic = km::vote_response::TopicData::default()
        .with_topic_name(topic_name())
        .with_partitions(vec![partition]);
    let mut out = km::VoteResponse::default().with_topics(vec![topic]);
    if version >= 1 {
        if let Some((id, e)) = ctx.endpoint(ans.leader) {
            out = out.with_node_endpoints(vec![km::vote_response::NodeEndpoint::default()
                .with_node_id(id.into())
                .with_host(StrBytes::from_string(e.host.clone()))
                .with_port(e.port)]);
        }
    }
    out
}

pub(super) fn decode_vote_response(
    sent: &VoteRequest,
    version: i16,
    body: Bytes,
) -> Result<Message, WireError> {
    let api_key = ApiKey::Vote;
    let resp: km::VoteResponse = decode(api_key, version, body)?;
    top_level(api_key, resp.error_code)?;
    let p = response_partition(
        api_key,
        version,
        &resp.topics,
        |t| (&t.topic_name, &t.partitions),
        |p| p.partition_index,
    )?;
    epoch_view_error(api_key, p.error_code)?;
    Ok(Message::VoteResponse(VoteResponse {
        epoch: p.leader_epoch,
        leader: leader_opt(p.leader_id.0),
        granted: p.vote_granted && p.error_code == codes::NONE,
        pre_vote: sent.pre_vote,
    }))
}

/// The single `__cluster_metadata-0` entry of a response (a peer answering for anything else
/// sent a malformed answer).
fn response_partition<'a, T, P>(
    api_key: ApiKey,
    version: i16,
    topics: &'a [T],
    parts: impl Fn(&'a T) -> (&'a km::TopicName, &'a [P]),
    index: impl Fn(&P) -> i32,
) -> Result<&'a P, WireError> {
    single_partition(api_key, topics, parts, index, codes::INVALID_REQUEST)
        .map_err(|e| malformed(api_key, version, e.to_string()))
}

pub(super) fn begin_request(
    to: NodeId,
    epoch: i32,
    leader: NodeId,
    version: i16,
    ctx: &WireContext,
) -> km::BeginQuorumEpochRequest {
    let partition = km::begin_quorum_epoch_request::PartitionData::default()
        .with_partition_index(super::METADATA_PARTITION)
        .with_leader_id(leader.into())
        .with_leader_epoch(epoch);
    let topic = km::begin_quorum_epoch_request::TopicData::default()
        .with_topic_name(topic_name())
        .with_partitions(vec![partition]);
    let mut out = km::BeginQuorumEpochRequest::default()
        .with_cluster_id(cluster_id(ctx))
        .with_topics(vec![topic]);
    if version >= 1 {
        out = out.with_voter_id(to.into());
        if let Some((_, e)) = ctx.endpoint(Some(leader)) {
            out = out.with_leader_endpoints(vec![
                km::begin_quorum_epoch_request::LeaderEndpoint::default()
                    .with_name(StrBytes::from_string(ctx.listener_name.clone()))
                    .with_host(StrBytes::from_string(e.host.clone()))
                    .with_port(e.port),
            ]);
        }
    }
    out
}

pub(super) fn decode_begin_request(
    version: i16,
    body: Bytes,
    ctx: &WireContext,
) -> Result<(NodeId, Message), WireError> {
    let api_key = ApiKey::BeginQuorumEpoch;
    let req: km::BeginQuorumEpochRequest = decode(api_key, version, body)?;
    check_cluster(api_key, req.cluster_id.as_ref(), ctx)?;
    let p = single_partition(
        api_key,
        &req.topics,
        |t| (&t.topic_name, &t.partitions),
        |p| p.partition_index,
        codes::INVALID_REQUEST,
    )?;
    check_voter_key(api_key, version, req.voter_id.0, ctx)?;
    let leader = p.leader_id.0;
    let msg = Message::BeginQuorumEpoch {
        epoch: p.leader_epoch,
        leader,
    };
    Ok((leader, msg))
}

/// BeginQuorumEpoch and EndQuorumEpoch answer with the same shape (our epoch and leader, a
/// fencing error when the request's epoch is older, the leader's endpoint from v1) in two
/// kafka-protocol types that share no trait: one builder for both.
macro_rules! epoch_response {
    ($name:ident, $ty:ident, $module:ident) => {
        pub(super) fn $name(
            asked: i32,
            epoch: i32,
            leader: Option<NodeId>,
            version: i16,
            ctx: &WireContext,
        ) -> km::$ty {
            use km::$module as r;
            let partition = r::PartitionData::default()
                .with_partition_index(super::METADATA_PARTITION)
                .with_error_code(fencing_code(asked, epoch))
                .with_leader_id(leader_or_nil(leader).into())
                .with_leader_epoch(epoch);
            let topic = r::TopicData::default()
                .with_topic_name(topic_name())
                .with_partitions(vec![partition]);
            let mut out = km::$ty::default().with_topics(vec![topic]);
            if version >= 1 {
                if let Some((id, e)) = ctx.endpoint(leader) {
                    out = out.with_node_endpoints(vec![r::NodeEndpoint::default()
                        .with_node_id(id.into())
                        .with_host(StrBytes::from_string(e.host.clone()))
                        .with_port(e.port)]);
                }
            }
            out
        }
    };
}

epoch_response!(
    begin_response,
    BeginQuorumEpochResponse,
    begin_quorum_epoch_response
);
epoch_response!(
    end_response,
    EndQuorumEpochResponse,
    end_quorum_epoch_response
);

pub(super) fn decode_begin_response(version: i16, body: Bytes) -> Result<Message, WireError> {
    let api_key = ApiKey::BeginQuorumEpoch;
    let resp: km::BeginQuorumEpochResponse = decode(api_key, version, body)?;
    top_level(api_key, resp.error_code)?;
    let p = response_partition(
        api_key,
        version,
        &resp.topics,
        |t| (&t.topic_name, &t.partitions),
        |p| p.partition_index,
    )?;
    epoch_view_error(api_key, p.error_code)?;
    Ok(Message::BeginQuorumEpochResponse {
        epoch: p.leader_epoch,
        leader: leader_opt(p.leader_id.0),
    })
}

pub(super) fn end_request(
    epoch: i32,
    leader: NodeId,
    successors: &[NodeId],
    version: i16,
    ctx: &WireContext,
) -> km::EndQuorumEpochRequest {
    use km::end_quorum_epoch_request as r;
    let mut partition = r::PartitionData::default()
        .with_partition_index(super::METADATA_PARTITION)
        .with_leader_id(leader.into())
        .with_leader_epoch(epoch);
    if version >= 1 {
        let candidates = successors
            .iter()
            .map(|&id| r::ReplicaInfo::default().with_candidate_id(id.into()))
            .collect();
        partition = partition.with_preferred_candidates(candidates);
    } else {
        partition = partition.with_preferred_successors(successors.to_vec());
    }
    let topic = r::TopicData::default()
        .with_topic_name(topic_name())
        .with_partitions(vec![partition]);
    let mut out = km::EndQuorumEpochRequest::default()
        .with_cluster_id(cluster_id(ctx))
        .with_topics(vec![topic]);
    if version >= 1 {
        if let Some((_, e)) = ctx.endpoint(Some(leader)) {
            out = out.with_leader_endpoints(vec![r::LeaderEndpoint::default()
                .with_name(StrBytes::from_string(ctx.listener_name.clone()))
                .with_host(StrBytes::from_string(e.host.clone()))
                .with_port(e.port)]);
        }
    }
    out
}

pub(super) fn decode_end_request(
    version: i16,
    body: Bytes,
    ctx: &WireContext,
) -> Result<(NodeId, Message), WireError> {
    let api_key = ApiKey::EndQuorumEpoch;
    let req: km::EndQuorumEpochRequest = decode(api_key, version, body)?;
    check_cluster(api_key, req.cluster_id.as_ref(), ctx)?;
    let p = single_partition(
        api_key,
        &req.topics,
        |t| (&t.topic_name, &t.partitions),
        |p| p.partition_index,
        codes::INVALID_REQUEST,
    )?;
    let preferred_successors = if version >= 1 {
        p.preferred_candidates
            .iter()
            .map(|c| c.candidate_id.0)
            .collect()
    } else {
        p.preferred_successors.clone()
    };
    let leader = p.leader_id.0;
    let msg = Message::EndQuorumEpoch {
        epoch: p.leader_epoch,
        leader,
        preferred_successors,
    };
    Ok((leader, msg))
}

pub(super) fn decode_end_response(version: i16, body: Bytes) -> Result<(), WireError> {
    let api_key = ApiKey::EndQuorumEpoch;
    let resp: km::EndQuorumEpochResponse = decode(api_key, version, body)?;
    top_level(api_key, resp.error_code)?;
    response_partition(
        api_key,
        version,
        &resp.topics,
        |t| (&t.topic_name, &t.partitions),
        |p| p.partition_index,
    )?;
    Ok(())
}
