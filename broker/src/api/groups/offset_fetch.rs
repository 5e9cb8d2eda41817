//! OffsetFetch: one group (v1–7) or several (v8+); all of a group's offsets when no topics
//! are given. Partitions without a commit answer offset −1.

use crate::acl::Authz;
use crate::api::RequestContext;
use crate::group::records::OffsetValue;
use crate::state::Broker;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use shale_raft::acl::op;
use std::collections::HashSet;
use std::sync::Arc;

type Fetched = crate::group::offsets::TopicOffsets;

/// Answers OffsetFetch.
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    req: &OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    let authz = &ctx.authz;
    let group_allowed = |group: &str| match authz.group(op::DESCRIBE, group) {
        true => Ok(()),
        false => Err(E::GroupAuthorizationFailed.code()),
    };
    let ready = super::ready(broker).await;
    let mut resp = OffsetFetchResponse::default();
    if version >= 8 {
        for g in &req.groups {
            let topics: Option<Vec<(String, Vec<i32>)>> = g.topics.as_ref().map(|ts| {
                ts.iter()
                    .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                    .collect()
            });
            let mut out = OffsetFetchResponseGroup::default();
            out.group_id = g.group_id.clone();
            let group = g.group_id.as_str();
            let allowed = group_allowed(group).and(ready);
            match allowed.and_then(|()| super::coordinates(broker, group)) {
                Err(code) => out.error_code = code,
                Ok(()) => {
                    let (fetched, denied) = fetch(broker, authz, group, topics.as_deref());
                    out.topics = fetched.into_iter().map(topic_v8).collect();
                    for t in out
                        .topics
                        .iter_mut()
                        .filter(|t| denied.contains(t.name.as_str()))
                    {
                        for p in &mut t.partitions {
                            p.error_code = E::TopicAuthorizationFailed.code();
                        }
                    }
                    if req.require_stable {
                        let visible = out.topics.iter_mut();
                        for t in visible.filter(|t| !denied.contains(t.name.as_str())) {
                            for p in &mut t.partitions {
                                let (name, i) = (t.name.as_str(), p.partition_index);
                                if unstable(broker, g.group_id.as_str(), name, i) {
                                    p.error_code = E::UnstableOffsetCommit.code();
                                    p.committed_offset = -1;
                                }
                            }
                        }
                    }
                }
            }
            resp.groups.push(out);
        }
        return resp;
    }
    let topics: Option<Vec<(String, Vec<i32>)>> = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    let group = req.group_id.as_str();
    let allowed = group_allowed(group).and(ready);
    match allowed.and_then(|()| super::coordinates(broker, group)) {
        Err(code) if version >= 2 => resp.error_code = code,
        Err(code) => {
            let all = topics.unwrap_or_default();
            let empty: Fetched = all
                .into_iter()
                .map(|(t, ps)| (t, ps.into_iter().map(|p| (p, None)).collect()))
                .collect();
            resp.topics = empty
                .into_iter()
                .map(|t| topic_v1(t, version, code))
                .collect();
        }
        Ok(()) => {
            let (fetched, denied) = fetch(broker, authz, group, topics.as_deref());
            resp.topics = fetched
                .into_iter()
                .map(|t| {
                    let code = match denied.contains(t.0.as_str()) {
                        true => E::TopicAuthorizationFailed.code(),
                        false => 0,
                    };
                    topic_v1(t, version, code)
                })
                .collect();
            if version >= 7 && req.require_stable {
                let visible = resp.topics.iter_mut();
                for t in visible.filter(|t| !denied.contains(t.name.as_str())) {
                    for p in &mut t.partitions {
                        let (name, i) = (t.name.as_str(), p.partition_index);
                        if unstable(broker, req.group_id.as_str(), name, i) {
                            p.error_code = E::UnstableOffsetCommit.code();
                            p.committed_offset = -1;
                        }
                    }
                }
            }
        }
    }
    resp
}

/// A transaction holds an offset of the partition not committed yet (KIP-447 `require_stable`).
fn unstable(broker: &Broker, group: &str, topic: &str, partition: i32) -> bool {
    broker
        .groups
        .with(|g| g.has_pending_txn_offset(group, topic, partition))
}

/// The group's offsets of `topics` (all when `None`) that the principal may describe, and the
/// named topics it may not (answered with offset -1 and TOPIC_AUTHORIZATION_FAILED); of all
/// topics, the ones it may not describe are left out, as Kafka does.
fn fetch(
    broker: &Broker,
    authz: &Authz,
    group: &str,
    topics: Option<&[(String, Vec<i32>)]>,
) -> (Fetched, HashSet<String>) {
    let visible = |t: &str| authz.topic(op::DESCRIBE, t);
    let Some(topics) = topics else {
        let mut all = broker.groups.with(|g| g.fetch_offsets(group, None));
        all.retain(|(t, _)| visible(t));
        return (all, HashSet::new());
    };
    let (allowed, denied): (Vec<_>, Vec<_>) = topics.iter().cloned().partition(|t| visible(&t.0));
    let mut fetched = broker
        .groups
        .with(|g| g.fetch_offsets(group, Some(&allowed)));
    let names = denied.iter().map(|(t, _)| t.clone()).collect();
    fetched.extend(
        denied
            .into_iter()
            .map(|(t, parts)| (t, parts.into_iter().map(|p| (p, None)).collect())),
    );
    (fetched, names)
}

fn topic_v1(
    (name, parts): (String, Vec<(i32, Option<OffsetValue>)>),
    version: i16,
    code: i16,
) -> OffsetFetchResponseTopic {
    let mut t = OffsetFetchResponseTopic::default();
    t.name = TopicName(StrBytes::from_string(name));
    t.partitions = parts
        .into_iter()
        .map(|(p, v)| {
            let mut r = OffsetFetchResponsePartition::default();
            r.partition_index = p;
            r.error_code = code;
            r.committed_offset = v.as_ref().map_or(-1, |v| v.offset);
            if version >= 5 {
                r.committed_leader_epoch = v.as_ref().map_or(-1, |v| v.leader_epoch);
            }
            r.metadata = Some(StrBytes::from_string(
                v.map(|v| v.metadata).unwrap_or_default(),
            ));
            r
        })
        .collect();
    t
}

fn topic_v8((name, parts): (String, Vec<(i32, Option<OffsetValue>)>)) -> OffsetFetchResponseTopics {
    let mut t = OffsetFetchResponseTopics::default();
    t.name = TopicName(StrBytes::from_string(name));
    t.partitions = parts
        .into_iter()
        .map(|(p, v)| {
            let mut r = OffsetFetchResponsePartitions::default();
            r.partition_index = p;
            r.committed_offset = v.as_ref().map_or(-1, |v| v.offset);
            r.committed_leader_epoch = v.as_ref().map_or(-1, |v| v.leader_epoch);
            r.metadata = Some(StrBytes::from_string(
                v.map(|v| v.metadata).unwrap_or_default(),
            ));
            r
        })
        .collect();
    t
}
