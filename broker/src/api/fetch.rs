//! Fetch: sessions (KIP-227), long-poll woken by appends, byte limits, and the zero-copy writer.
//!
//! Reads honour the request's `max_bytes` across partitions and each partition's own limit; the
//! first partition that has data may exceed them by one whole batch (Kafka's "at least one batch"
//! rule). When fewer than `min_bytes` are available the request waits until an append to one of
//! its partitions or `max_wait_ms`, whichever comes first — no polling. A partition this broker
//! does not lead answers NOT_LEADER_OR_FOLLOWER with, from v12, the current leader (KIP-951) and,
//! from v16, its endpoint — except a consumer fetch with client metadata (v11+), which a follower
//! serves up to its high watermark ([`super::read_replica`], KIP-392).

use super::fetch_remote::{self, RemotePending};
use super::leader_hint;
use super::read_replica;
use super::{CloseReason, RequestContext, Response};
use crate::acl::Authz;
use crate::errors::{log_error_code, replica_error};
use crate::fetch_session::{FetchTarget, Reported, SessionError, SessionPlan};
use crate::purgatory::Waiter;
use crate::quota::Kind;
use crate::state::Broker;
use crate::topic_metrics::{Meter, TopicStats};
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::{ApiKey, FetchRequest};
use kafka_protocol::protocol::StrBytes;
use shale_common::TopicPartition;
use shale_local_log::LogError;
use shale_protocol::fetch_writer::{
    encode_fetch_response, FetchPartitionData, FetchResponseData, FetchTopicData, NodeEndpoint,
};
use shale_raft::acl::op;
use shale_raft::MetadataImage;
use shale_rlmm::TopicIdPartition;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The partitions a request names, resolved to topic names: (targets, unknown topic ids,
/// forgotten partitions).
type Resolved = (Vec<FetchTarget>, Vec<(Uuid, i32)>, Vec<(String, i32)>);

fn resolve(image: &MetadataImage, req: &FetchRequest, version: i16) -> Resolved {
    let mut unknown = Vec::new();
    let mut requested = Vec::new();
    for t in &req.topics {
        let (name, id) = if version >= 13 {
            match image.topic_by_id(&t.topic_id) {
                Some(ti) => (ti.name.clone(), t.topic_id),
                None => {
                    unknown.extend(t.partitions.iter().map(|p| (t.topic_id, p.partition)));
                    continue;
                }
            }
        } else {
            let name = t.topic.0.to_string();
            let id = image.topic(&name).map(|ti| ti.id).unwrap_or_default();
            (name, id)
        };
        requested.extend(t.partitions.iter().map(|p| FetchTarget {
            topic: name.clone(),
            topic_id: id,
            partition: p.partition,
            fetch_offset: p.fetch_offset,
            max_bytes: p.partition_max_bytes,
            current_leader_epoch: p.current_leader_epoch,
            last_fetched_epoch: p.last_fetched_epoch,
        }));
    }
    let forgotten = req
        .forgotten_topics_data
        .iter()
        .flat_map(|f| {
            let name = if version >= 13 {
                image
                    .topic_by_id(&f.topic_id)
                    .map(|t| t.name.clone())
                    .unwrap_or_default()
            } else {
                f.topic.0.to_string()
            };
            f.partitions.iter().map(move |p| (name.clone(), *p))
        })
        .collect();
    (requested, unknown, forgotten)
}

/// The broker a replica fetch comes from (`ReplicaId` before v15, `ReplicaState` after), or -1
/// for a consumer.
fn replica_of(req: &FetchRequest, version: i16) -> i32 {
    if version >= 15 {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    }
}

/// Serves one Fetch request that arrived on `listener`.
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    req: &FetchRequest,
    version: i16,
    correlation_id: i32,
) -> Result<Response, CloseReason> {
    let listener: &str = &ctx.connection.listener;
    let image = broker.image();
    let (requested, unknown, forgotten) = resolve(&image, req, version);
    let mut data = FetchResponseData::default();
    let sessions = &broker.fetch_sessions;
    let plan = match sessions.plan(req.session_id, req.session_epoch, requested, &forgotten) {
        Ok(plan) => plan,
        Err(e) => {
            data.error_code = match e {
                SessionError::NotFound => E::FetchSessionIdNotFound.code(),
                SessionError::InvalidEpoch => E::InvalidFetchSessionEpoch.code(),
            };
            return chunks(version, correlation_id, &data);
        }
    };
    // Client metadata (v11+): the consumer may read from a follower (KIP-392).
    let reader = Reader {
        replica: replica_of(req, version),
        client_rack: (version >= 11).then_some(req.rack_id.as_str()),
        read_committed: req.isolation_level == 1,
        authz: &ctx.authz,
    };
    let read = read_with_wait(broker, req, &plan, reader).await;
    count_reads(broker, &read);
    data.session_id = plan.session_id;
    if reader.replica < 0 {
        let throttle = consumer_throttle(broker, ctx, &image, &read);
        if throttle > 0 {
            // Kafka's throttled fetch: nothing is sent (nor counted), only the throttle time.
            data.throttle_time_ms = throttle;
            return chunks(version, correlation_id, &data);
        }
    }
    let mut reports = Vec::new();
    for (target, out) in read {
        let report = Reported {
            high_watermark: out.high_watermark,
            log_start_offset: out.log_start_offset,
        };
        let has_news = out.error_code != 0 || !out.records.is_empty();
        let previously = plan
            .targets
            .iter()
            .find(|(t, _)| t.topic == target.topic && t.partition == target.partition)
            .and_then(|(_, r)| *r);
        if plan.incremental && !has_news && previously == Some(report) {
            continue;
        }
        reports.push((target.topic.clone(), target.partition, report));
        push_partition(&mut data, &target, out);
    }
    for (topic_id, partition) in unknown {
        data.topics.push(FetchTopicData {
            topic: StrBytes::default(),
            topic_id,
            partitions: vec![FetchPartitionData {
                partition_index: partition,
                error_code: E::UnknownTopicId.code(),
                high_watermark: -1,
                last_stable_offset: -1,
                log_start_offset: -1,
                preferred_read_replica: -1,
                ..Default::default()
            }],
        });
    }
    sessions.record(plan.session_id, &reports);
    let leaders = data.topics.iter().flat_map(|t| t.partitions.iter());
    let leaders = leaders.filter_map(|p| p.current_leader.map(|(id, _)| id));
    let listener = super::metadata::client_listener(broker, listener);
    // The image the replica manager applied: the one the refusals' leaders came from.
    let applied = broker.replicas().image();
    data.node_endpoints = leader_hint::endpoints(&applied, listener, leaders)
        .into_iter()
        .map(|(node_id, host, port, rack)| NodeEndpoint {
            node_id,
            host,
            port,
            rack,
        })
        .collect();
    chunks(version, correlation_id, &data)
}

fn chunks(
    version: i16,
    correlation_id: i32,
    data: &FetchResponseData,
) -> Result<Response, CloseReason> {
    super::trace::record_error_code(|| {
        let nested = data.topics.iter().flat_map(|t| t.partitions.iter());
        super::trace::first(
            [data.error_code]
                .into_iter()
                .chain(nested.map(|p| p.error_code)),
        )
    });
    encode_fetch_response(version, correlation_id, data)
        .map(Response::Chunks)
        .map_err(|e| CloseReason::EncodeFailed {
            api: ApiKey::Fetch,
            version,
            reason: e.to_string(),
        })
}

fn push_partition(data: &mut FetchResponseData, target: &FetchTarget, out: FetchPartitionData) {
    match data.topics.last_mut() {
        Some(t) if t.topic.as_str() == target.topic && t.topic_id == target.topic_id => {
            t.partitions.push(out)
        }
        _ => data.topics.push(FetchTopicData {
            topic: StrBytes::from_string(target.topic.clone()),
            topic_id: target.topic_id,
            partitions: vec![out],
        }),
    }
}

/// Reads every target, waiting for appends while fewer than `min_bytes` are available.
async fn read_with_wait(
    broker: &Arc<Broker>,
    req: &FetchRequest,
    plan: &SessionPlan,
    reader: Reader<'_>,
) -> Vec<(FetchTarget, FetchPartitionData)> {
    let Reader {
        replica,
        client_rack,
        ..
    } = reader;
    let wait = Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let deadline = tokio::time::Instant::now() + wait;
    // Dropped when this fetch completes: waiting leaves nothing behind on the partitions.
    let mut waiter = Waiter::new();
    for (t, _) in &plan.targets {
        let tp = TopicPartition::new(t.topic.as_str(), t.partition);
        if let Ok(p) = read_replica::partition(broker, &tp, replica, client_rack) {
            waiter.watch(p.progress());
        }
    }
    loop {
        // Seen before reading, so an append between the read and the wait still wakes us.
        waiter.mark_seen();
        let (mut results, remote) = super::storage_io(|| read_all(broker, req, plan, reader));
        if !remote.is_empty() {
            // Remote data is historical: it is there now, so there is nothing to wait for.
            fetch_remote::fill(broker, req, &mut results, remote).await;
            return results;
        }
        let bytes: usize = results
            .iter()
            .map(|(_, p)| p.records.iter().map(|b| b.len()).sum::<usize>())
            .sum();
        let errors = results
            .iter()
            .any(|(_, p)| p.error_code != 0 || p.diverging_epoch.is_some());
        let done = bytes >= req.min_bytes.max(0) as usize || errors || plan.targets.is_empty();
        if done || !waiter.wait_until(deadline).await {
            return results;
        }
        if tokio::time::Instant::now() >= deadline {
            let (mut results, remote) = super::storage_io(|| read_all(broker, req, plan, reader));
            fetch_remote::fill(broker, req, &mut results, remote).await;
            return results;
        }
    }
}

/// `consumer_byte_rate`: records the bytes read for a consumer; over the quota they are taken
/// back (the response goes out empty) and the connection rests for the throttle time.
fn consumer_throttle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    image: &MetadataImage,
    read: &[(FetchTarget, FetchPartitionData)],
) -> i32 {
    let bytes: usize = read
        .iter()
        .flat_map(|(_, p)| p.records.iter().map(|b| b.len()))
        .sum();
    let (quotas, user) = (&broker.quotas, &*ctx.connection.principal);
    let ms = quotas.record(image, Kind::Fetch, user, ctx.client_id, bytes);
    if ms > 0 {
        quotas.unrecord(image, Kind::Fetch, user, ctx.client_id, bytes);
        ctx.connection.mute.rest(ms);
    }
    ms.min(i32::MAX as u64) as i32
}

/// Counts bytes out and Kafka's per-partition fetch request meters: every partition read counts
/// as a fetch request; one that failed for another reason than routing, a stale epoch or an
/// offset out of range counts as failed.
fn count_reads(broker: &Broker, read: &[(FetchTarget, FetchPartitionData)]) {
    let metrics = &broker.topic_metrics;
    let expected = [
        0,
        E::OffsetOutOfRange.code(),
        E::UnknownTopicOrPartition.code(),
        E::UnknownTopicId.code(),
        E::NotLeaderOrFollower.code(),
        E::FencedLeaderEpoch.code(),
        E::UnknownLeaderEpoch.code(),
    ];
    let mut current: Option<(&str, Option<Arc<TopicStats>>)> = None;
    for (target, out) in read {
        let stats = match &current {
            Some((name, stats)) if *name == target.topic => stats.clone(),
            _ => {
                let stats = metrics.topic(&target.topic);
                current = Some((target.topic.as_str(), stats.clone()));
                stats
            }
        };
        let stats = stats.as_deref();
        let bytes: usize = out.records.iter().map(|b| b.len()).sum();
        broker.metrics.bytes_out.inc_by(bytes as u64);
        metrics.record(stats, Meter::BytesOut, bytes as u64);
        metrics.record(stats, Meter::TotalFetchRequests, 1);
        if !expected.contains(&out.error_code) {
            metrics.record(stats, Meter::FailedFetchRequests, 1);
        }
    }
}

/// Local reads of every target, and the targets whose data is in the remote tier.
fn read_all(
    broker: &Broker,
    req: &FetchRequest,
    plan: &SessionPlan,
    reader: Reader<'_>,
) -> (Vec<(FetchTarget, FetchPartitionData)>, Vec<RemotePending>) {
    let mut budget = if req.max_bytes <= 0 {
        i32::MAX as usize
    } else {
        req.max_bytes as usize
    };
    let mut any = false;
    let mut remote = Vec::new();
    let results = plan
        .targets
        .iter()
        .enumerate()
        .map(|(index, (t, _))| {
            let (out, tiered) = read_one(broker, t, budget, !any, reader);
            if let Some(tp) = tiered {
                let max_bytes = t.max_bytes.max(0) as usize;
                remote.push(RemotePending {
                    index,
                    tp,
                    offset: t.fetch_offset,
                    max_bytes,
                });
            }
            let n: usize = out.records.iter().map(|b| b.len()).sum();
            budget = budget.saturating_sub(n);
            any |= n > 0;
            (t.clone(), out)
        })
        .collect();
    (results, remote)
}

/// Who reads a partition.
#[derive(Clone, Copy, Debug)]
struct Reader<'a> {
    /// The fetching replica, -1 for a consumer.
    replica: i32,
    /// The consumer's rack when it sent client metadata.
    client_rack: Option<&'a str>,
    /// A read_committed consumer: records up to the last stable offset, with the aborted
    /// transactions among them.
    read_committed: bool,
    /// What the fetcher may read: a follower needs CLUSTER_ACTION, a consumer READ on the topic.
    authz: &'a Authz,
}

/// A local read for `reader`; the second value names the partition when its data is in the
/// remote tier.
fn read_one(
    broker: &Broker,
    t: &FetchTarget,
    budget: usize,
    min_one: bool,
    reader: Reader<'_>,
) -> (FetchPartitionData, Option<TopicIdPartition>) {
    let Reader {
        replica,
        client_rack,
        read_committed,
        authz,
    } = reader;
    let mut out = FetchPartitionData {
        partition_index: t.partition,
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        preferred_read_replica: -1,
        ..Default::default()
    };
    let allowed = match replica {
        r if r < 0 => authz.topic(op::READ, &t.topic),
        _ => authz.cluster(op::CLUSTER_ACTION),
    };
    if !allowed {
        out.error_code = E::TopicAuthorizationFailed.code();
        return (out, None);
    }
    let tp = TopicPartition::new(t.topic.as_str(), t.partition);
    let partition = match read_replica::partition(broker, &tp, replica, client_rack) {
        Ok(p) => p,
        Err(e) => {
            out.error_code = replica_error(&e).code();
            out.current_leader = leader_hint::current_leader(&e).filter(|(id, _)| *id >= 0);
            return (out, None);
        }
    };
    let epoch = partition.leader_epoch();
    if t.current_leader_epoch >= 0 && t.current_leader_epoch != epoch {
        out.error_code = if t.current_leader_epoch < epoch {
            E::FencedLeaderEpoch.code()
        } else {
            E::UnknownLeaderEpoch.code()
        };
        return (out, None);
    }
    let hw = partition.high_watermark();
    let lso = partition.log.last_stable_offset();
    out.high_watermark = hw;
    out.last_stable_offset = lso;
    out.log_start_offset = partition.log.log_start_offset();
    if let Some(id) = client_rack.and_then(|rack| read_replica::preferred(broker, &partition, rack))
    {
        out.preferred_read_replica = id;
        return (out, None);
    }
    // Consumers read replicated records only (read_committed: below the LSO); followers
    // everything the leader has.
    let mut max_offset = if read_committed { lso } else { hw };
    if replica >= 0 {
        if let Some(refusal) = super::replica_fetch::check(broker, &partition, t, replica) {
            refusal.apply(&mut out);
            return (out, None);
        }
        max_offset = partition.log.log_end_offset();
        out.high_watermark = partition.high_watermark();
    }
    let max = (t.max_bytes.max(0) as usize).min(budget);
    let read = partition.log.read(t.fetch_offset, max, max_offset, min_one);
    let tiered = fill(&mut out, &partition, t.fetch_offset, read, reader);
    (out, tiered)
}

/// A local read's outcome into the partition's answer: records (with their aborted
/// transactions for read_committed), or the error; the partition id when the offset is in the
/// remote tier and a consumer reads it from there.
fn fill(
    out: &mut FetchPartitionData,
    partition: &crate::state::Partition,
    fetch_offset: i64,
    read: Result<shale_local_log::ReadInfo, LogError>,
    reader: Reader<'_>,
) -> Option<TopicIdPartition> {
    match read {
        Ok(info) => {
            out.log_start_offset = info.log_start_offset;
            if reader.read_committed {
                out.aborted_transactions = Some(aborted(partition, fetch_offset, &info.records));
            }
            if !info.records.is_empty() {
                out.records = vec![info.records];
            }
        }
        Err(LogError::OffsetMovedToTieredStorage { .. }) if reader.replica >= 0 => {
            // A follower rebuilds what is tiered from the remote tier itself (KIP-405).
            out.error_code = E::OffsetMovedToTieredStorage.code();
        }
        Err(LogError::OffsetMovedToTieredStorage { .. }) => {
            return Some(crate::tiering::Tiering::topic_id_partition(partition));
        }
        Err(e) => {
            out.error_code = log_error_code(&e);
            if out.error_code == E::KafkaStorageError.code() {
                let tp = partition.log.topic_partition();
                tracing::error!(partition = %tp, error = %e, "fetch read failed");
            }
        }
    }
    None
}

/// The aborted transactions a read_committed consumer needs for `records` read from
/// `fetch_offset`: `(producer id, first offset)` of each one overlapping them.
fn aborted(
    partition: &crate::state::Partition,
    fetch_offset: i64,
    records: &bytes::Bytes,
) -> Vec<(i64, i64)> {
    let end = shale_protocol::record_batch::batches(records.clone())
        .map_while(Result::ok)
        .last()
        .map(|b| b.next_offset());
    let Some(end) = end else {
        return Vec::new();
    };
    match partition.log.collect_aborted_txns(fetch_offset, end) {
        Ok(found) => found
            .into_iter()
            .map(|a| (a.producer_id, a.first_offset))
            .collect(),
        Err(e) => {
            tracing::warn!(partition = %partition.log.topic_partition(), error = %e,
                "aborted transactions unreadable");
            Vec::new()
        }
    }
}
