//! OffsetCommit: group members (generation checked) and simple consumers (generation −1, group
//! without members). Unknown topics get UNKNOWN_TOPIC_OR_PARTITION as in Kafka. Committing needs
//! READ on the group and on each topic.

use crate::api::RequestContext;
use crate::group::{CommitEntry, Committer};
use crate::state::Broker;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use shale_raft::acl::op;
use std::sync::Arc;

/// Answers OffsetCommit.
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    req: &OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    let ready = super::ready_as(broker, ctx, op::READ, req.group_id.as_str()).await;
    let (entries, codes) = entries(broker, ctx, req, version);
    let result = match ready {
        Err(code) => Err(code),
        Ok(()) => commit(broker, req, version, &entries).await,
    };
    let mut per_entry = match &result {
        Ok(v) => v.clone().into_iter(),
        Err(_) => Vec::new().into_iter(),
    };
    let mut resp = OffsetCommitResponse::default();
    for (t, tc) in req.topics.iter().zip(codes) {
        let mut out = OffsetCommitResponseTopic::default();
        out.name = t.name.clone();
        for (p, c) in t.partitions.iter().zip(tc) {
            let mut r = OffsetCommitResponsePartition::default();
            r.partition_index = p.partition_index;
            let group_denied = E::GroupAuthorizationFailed.code();
            r.error_code = match (c, &result) {
                (_, Err(code)) if *code == group_denied => group_denied,
                (0, Err(code)) => *code,
                (0, Ok(_)) => per_entry.next().unwrap_or(0),
                (c, _) => c,
            };
            out.partitions.push(r);
        }
        resp.topics.push(out);
    }
    resp
}

/// The entries of partitions that exist, and a code per requested partition (0 for those).
fn entries(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    req: &OffsetCommitRequest,
    version: i16,
) -> (Vec<CommitEntry>, Vec<Vec<i16>>) {
    let image = broker.image();
    let mut entries = Vec::new();
    let mut codes: Vec<Vec<i16>> = Vec::new();
    for t in &req.topics {
        let topic = image.topic(t.name.as_str());
        let allowed = ctx.authz.topic(op::READ, &t.name);
        let mut tc = Vec::new();
        for p in &t.partitions {
            if !allowed {
                tc.push(E::TopicAuthorizationFailed.code());
                continue;
            }
            let known = topic.is_some_and(|ti| ti.partitions.contains_key(&p.partition_index));
            if !known {
                tc.push(E::UnknownTopicOrPartition.code());
                continue;
            }
            tc.push(0);
            entries.push(CommitEntry {
                topic: t.name.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if version >= 6 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            });
        }
        codes.push(tc);
    }
    (entries, codes)
}

/// Commits `entries`: a code per entry, or one for all. Offsets whose records could not be
/// written are not committed and get the coordinator's error.
async fn commit(
    broker: &Arc<Broker>,
    req: &OffsetCommitRequest,
    version: i16,
    entries: &[CommitEntry],
) -> Result<Vec<i16>, i16> {
    let committer = Committer {
        group_id: req.group_id.as_str(),
        generation: req.generation_id_or_member_epoch,
        member_id: req.member_id.as_str(),
        instance_id: req.group_instance_id.as_ref().map(|s| s.as_str()),
        retention_ms: if version <= 4 {
            req.retention_time_ms
        } else {
            -1
        },
    };
    let (codes, persisted) =
        super::write(broker, |g, now| g.commit(&committer, entries, now)).await;
    let failed = persisted.result_for(committer.group_id);
    codes.map(|codes| {
        codes
            .into_iter()
            .map(|c| match (c, failed) {
                (0, Err(code)) => code,
                (c, _) => c,
            })
            .collect()
    })
}
