//! DescribeCluster, DescribeTopicPartitions and DescribeLogDirs: read-only views of the metadata
//! image and the local logs.

use super::metadata::is_internal;
use super::RequestContext;
use crate::acl::OPERATIONS_NOT_REQUESTED;
use crate::state::Broker;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use shale_raft::acl::{op, resource};
use std::collections::BTreeMap;

/// Cluster id, controller and brokers.
/// DescribeCluster for a request that arrived on `listener` (brokers described by their endpoint
/// on that listener, as Metadata does).
pub fn describe_cluster(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    req: &DescribeClusterRequest,
    version: i16,
) -> DescribeClusterResponse {
    let listener: &str = &ctx.connection.listener;
    use crate::kraft::controller_apis::{endpoint_type_refusal, ENDPOINT_BROKER};
    let listener = super::metadata::client_listener(broker, listener);
    let image = broker.image();
    let mut resp = DescribeClusterResponse::default();
    resp.endpoint_type = ENDPOINT_BROKER;
    if let Some(code) = endpoint_type_refusal(version, req.endpoint_type, ENDPOINT_BROKER) {
        resp.error_code = code;
        return resp;
    }
    resp.cluster_id = StrBytes::from_string(image.cluster_id.clone());
    resp.controller_id = BrokerId(broker.config.node_id);
    resp.cluster_authorized_operations = OPERATIONS_NOT_REQUESTED;
    if req.include_cluster_authorized_operations {
        resp.cluster_authorized_operations = match ctx.authz.cluster(op::DESCRIBE) {
            true => ctx
                .authz
                .operations(resource::CLUSTER, resource::CLUSTER_NAME),
            false => 0,
        };
    }
    resp.brokers = image
        .brokers
        .values()
        .filter(|b| req.include_fenced_brokers || !b.fenced)
        .filter_map(|b| {
            let mut d = DescribeClusterBroker::default();
            d.broker_id = BrokerId(b.id);
            (d.host, d.port, d.rack) = super::metadata::client_endpoint(b, listener)?;
            d.is_fenced = b.fenced;
            Some(d)
        })
        .collect();
    resp
}

/// Topic partitions with a partition limit and a resume cursor (KIP-966).
pub fn describe_topic_partitions(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    req: &DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let image = broker.image();
    let mut resp = DescribeTopicPartitionsResponse::default();
    let mut budget = req.response_partition_limit.max(1) as usize;
    let mut names: Vec<String> = if req.topics.is_empty() {
        let visible = image
            .topics
            .keys()
            .filter(|n| ctx.authz.topic(op::DESCRIBE, n));
        visible.cloned().collect()
    } else {
        req.topics.iter().map(|t| t.name.0.to_string()).collect()
    };
    names.sort();
    let (start_topic, start_partition) = match &req.cursor {
        Some(c) => (Some(c.topic_name.0.to_string()), c.partition_index),
        None => (None, 0),
    };
    for name in names {
        if start_topic.as_ref().is_some_and(|s| name < *s) {
            continue;
        }
        let mut out = DescribeTopicPartitionsResponseTopic::default();
        out.name = Some(TopicName(StrBytes::from_string(name.clone())));
        out.topic_authorized_operations = OPERATIONS_NOT_REQUESTED;
        if !ctx.authz.topic(op::DESCRIBE, &name) {
            out.error_code = E::TopicAuthorizationFailed.code();
            resp.topics.push(out);
            continue;
        }
        out.topic_authorized_operations = ctx.authz.operations(resource::TOPIC, &name);
        let Some(t) = image.topic(&name) else {
            out.error_code = E::UnknownTopicOrPartition.code();
            resp.topics.push(out);
            continue;
        };
        out.topic_id = t.id;
        out.is_internal = is_internal(&name);
        let first = if start_topic.as_deref() == Some(name.as_str()) {
            start_partition
        } else {
            0
        };
        for (&index, p) in t.partitions.range(first..) {
            if budget == 0 {
                let mut c = Cursor::default();
                c.topic_name = TopicName(StrBytes::from_string(name.clone()));
                c.partition_index = index;
                resp.next_cursor = Some(c);
                resp.topics.push(out);
                return resp;
            }
            budget -= 1;
            let mut dp = DescribeTopicPartitionsResponsePartition::default();
            dp.partition_index = index;
            dp.leader_id = BrokerId(p.leader);
            dp.leader_epoch = p.leader_epoch;
            dp.replica_nodes = p.replicas.iter().map(|&r| BrokerId(r)).collect();
            dp.isr_nodes = p.isr.iter().map(|&r| BrokerId(r)).collect();
            dp.eligible_leader_replicas = Some(vec![]);
            dp.last_known_elr = Some(vec![]);
            out.partitions.push(dp);
        }
        resp.topics.push(out);
    }
    resp
}

/// Log directories with the size of each partition they hold.
pub fn describe_log_dirs(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    req: &DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let mut resp = DescribeLogDirsResponse::default();
    if !ctx.authz.cluster(op::DESCRIBE) {
        resp.error_code = E::ClusterAuthorizationFailed.code();
        return resp;
    }
    let wanted = |topic: &str, p: i32| match &req.topics {
        None => true,
        Some(ts) => ts
            .iter()
            .any(|t| t.topic.0.as_str() == topic && t.partitions.contains(&p)),
    };
    let mut by_dir: BTreeMap<std::path::PathBuf, BTreeMap<String, Vec<DescribeLogDirsPartition>>> =
        broker
            .logs()
            .log_dirs()
            .into_iter()
            .map(|d| (d, BTreeMap::new()))
            .collect();
    for part in broker.replicas().all() {
        if !wanted(&part.tp.topic, part.tp.partition) {
            continue;
        }
        let Some(dir) = broker.logs().dir_of(&part.tp) else {
            continue;
        };
        let mut p = DescribeLogDirsPartition::default();
        p.partition_index = part.tp.partition;
        p.partition_size = part.log.size_in_bytes() as i64;
        by_dir
            .entry(dir)
            .or_default()
            .entry(part.tp.topic.to_string())
            .or_default()
            .push(p);
    }
    for (dir, topics) in by_dir {
        let mut r = DescribeLogDirsResult::default();
        r.log_dir = StrBytes::from_string(dir.display().to_string());
        (r.total_bytes, r.usable_bytes) = dir_space(&dir);
        r.topics = topics
            .into_iter()
            .map(|(name, partitions)| {
                let mut t = DescribeLogDirsTopic::default();
                t.name = TopicName(StrBytes::from_string(name));
                t.partitions = partitions;
                t
            })
            .collect();
        resp.results.push(r);
    }
    resp
}

/// Total and usable bytes of the file system holding `dir`; -1 for both when it cannot be read.
fn dir_space(dir: &std::path::Path) -> (i64, i64) {
    match super::storage_io(|| shale_local_log::LogManager::dir_space(dir)) {
        Ok(s) => (clamp_i64(s.total_bytes), clamp_i64(s.usable_bytes)),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot read log dir space");
            (-1, -1)
        }
    }
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
