//! Produce: each partition's record bytes go to its log as received; only the batch header is
//! patched (offsets, leader epoch). acks=0 requests get no response, as in Kafka, and one that
//! fails for any partition closes the connection, as Kafka closes it. A partition this broker
//! does not lead is refused with NOT_LEADER_OR_FOLLOWER and, from v10, the current leader and
//! its endpoint (KIP-951).

use super::{acks, leader_hint, CloseReason, RequestContext};
use crate::errors::{log_error_code, replica_error};
use crate::quota::Kind;
use crate::state::Broker;
use crate::topic_metrics::{Meter, TopicMetrics, TopicStats};
use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::produce_request::PartitionProduceData;
use kafka_protocol::messages::produce_response::{
    LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use shale_common::TopicPartition;
use shale_local_log::{AppendOrigin, VerificationGuard};
use shale_protocol::compression::Compression;
use shale_protocol::record_batch::{batches, BatchError};
use shale_raft::acl::op;
use std::sync::Arc;
use std::time::Duration;

/// Appends every partition's batch and, with acks=all, waits until the ISR has them; `None`
/// when acks=0 (no response is sent), or the connection to close when an acks=0 request failed. `listener` is the one the request came on (leader
/// endpoints are given on it).
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    req: &ProduceRequest,
    version: i16,
) -> Result<Option<ProduceResponse>, CloseReason> {
    let listener: &str = &ctx.connection.listener;
    let acks_valid = matches!(req.acks, -1..=1);
    // Kafka's order: the transactional id first (every partition), then each topic.
    let txn_denied = req
        .transactional_id
        .as_ref()
        .is_some_and(|id| !ctx.authz.transactional_id(op::WRITE, id));
    let image = broker.image();
    let mut resp = ProduceResponse::default();
    let mut waits = Vec::new();
    for topic in &req.topic_data {
        let name: Option<String> = if version >= 13 {
            image.topic_by_id(&topic.topic_id).map(|t| t.name.clone())
        } else {
            Some(topic.name.0.to_string())
        };
        let mut out = TopicProduceResponse::default();
        out.name = topic.name.clone();
        out.topic_id = topic.topic_id;
        let stats = name.as_deref().and_then(|n| broker.topic_metrics.topic(n));
        let stats = stats.as_deref();
        let denied = match &name {
            _ if txn_denied => Some(E::TransactionalIdAuthorizationFailed.code()),
            Some(n) if !ctx.authz.topic(op::WRITE, n) => Some(E::TopicAuthorizationFailed.code()),
            _ => None,
        };
        for p in &topic.partition_data {
            let mut r = match (&name, acks_valid) {
                _ if denied.is_some() => error(p.index, denied.unwrap_or_default(), None),
                (_, false) => error(p.index, E::InvalidRequiredAcks.code(), None),
                (None, _) => error(p.index, E::UnknownTopicId.code(), None),
                (Some(name), true) => match checked(broker, req, name, p, version).await {
                    Ok((records, guard)) => {
                        let verified = guard.as_ref().map(VerificationGuard::token);
                        let (r, wait) = super::storage_io(|| {
                            let to = (name.as_str(), p.index, verified);
                            append(broker, stats, to, records, req.acks)
                        });
                        drop(guard);
                        if let Some(wait) = wait {
                            let at = (resp.responses.len(), out.partition_responses.len());
                            waits.push((at, wait));
                        }
                        r
                    }
                    Err((code, msg)) => error(p.index, code, Some(msg)),
                },
            };
            let size = p.records.as_ref().map_or(0, |b| b.len());
            count_request(&broker.topic_metrics, stats, r.error_code, size);
            fit_to_version(&mut r, version);
            out.partition_responses.push(r);
        }
        resp.responses.push(out);
    }
    if !waits.is_empty() {
        let timeout = Duration::from_millis(req.timeout_ms.max(0) as u64);
        for ((t, p), code) in acks::wait_for_isr(waits, timeout).await {
            let r = &mut resp.responses[t].partition_responses[p];
            if code != 0 {
                let index = r.index;
                *r = error(index, code, None);
                fit_to_version(r, version);
            }
        }
    }
    if version >= 10 {
        // The image the replica manager applied: the one the refusals' leaders came from.
        add_leader_endpoints(broker, &broker.replicas().image(), listener, &mut resp);
    }
    resp.throttle_time_ms = throttle(broker, ctx, &image, req);
    if req.acks != 0 {
        return Ok(Some(resp));
    }
    // acks=0 has no response to carry an error: the connection is closed, as Kafka closes
    // it, so the producer notices and refreshes its metadata.
    let failed: Vec<String> = resp
        .responses
        .iter()
        .flat_map(|t| {
            let topic = t.name.0.as_str();
            let failed = t.partition_responses.iter().filter(|p| p.error_code != 0);
            failed.map(move |p| format!("{topic}-{}: error {}", p.index, p.error_code))
        })
        .collect();
    match failed.is_empty() {
        true => Ok(None),
        false => Err(CloseReason::AcksZeroFailed(failed.join(", "))),
    }
}

/// `producer_byte_rate`: records the request's record bytes; over the quota, the connection
/// rests for the throttle time (even with acks=0, which has no response to carry it).
fn throttle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    image: &shale_raft::MetadataImage,
    req: &ProduceRequest,
) -> i32 {
    let partitions = req.topic_data.iter().flat_map(|t| t.partition_data.iter());
    let bytes: usize = partitions
        .map(|p| p.records.as_ref().map_or(0, |b| b.len()))
        .sum();
    let user = &ctx.connection.principal;
    let ms = broker
        .quotas
        .record(image, Kind::Produce, user, ctx.client_id, bytes);
    ctx.connection.mute.rest(ms);
    ms.min(i32::MAX as u64) as i32
}

/// KIP-951: the endpoints of the leaders named in refused partitions.
fn add_leader_endpoints(
    broker: &Broker,
    image: &shale_raft::MetadataImage,
    listener: &str,
    resp: &mut ProduceResponse,
) {
    let leaders = resp
        .responses
        .iter()
        .flat_map(|t| t.partition_responses.iter())
        .filter(|p| {
            p.error_code == E::NotLeaderOrFollower.code() && p.current_leader.leader_id.0 >= 0
        })
        .map(|p| p.current_leader.leader_id.0);
    let listener = super::metadata::client_listener(broker, listener);
    resp.node_endpoints = leader_hint::endpoints(image, listener, leaders)
        .into_iter()
        .map(|(id, host, port, rack)| {
            NodeEndpoint::default()
                .with_node_id(BrokerId(id))
                .with_host(host)
                .with_port(port)
                .with_rack(rack)
        })
        .collect();
}

/// The partition's records once [`validate_records`] and, for a transactional batch, the
/// coordinator ([`super::txn_verify`]) accept them, with the verification's guard for the append.
async fn checked(
    broker: &Arc<Broker>,
    req: &ProduceRequest,
    topic: &str,
    p: &PartitionProduceData,
    version: i16,
) -> Result<(Bytes, Option<VerificationGuard>), (i16, String)> {
    let records = validate_records(version, p.records.as_ref())?;
    let id = req.transactional_id.as_ref().map(|t| t.as_str());
    let guard = super::txn_verify::check(broker, id, topic, p.index, &records, version).await?;
    Ok((records, guard))
}

/// Kafka's request-level rule (ProduceRequest.validateRecords): from v3 a partition carries
/// exactly one complete v2 batch, and zstd needs v7. A truncated trailing batch is ignored.
fn validate_records(version: i16, records: Option<&Bytes>) -> Result<Bytes, (i16, String)> {
    let records = records.cloned().unwrap_or_default();
    let invalid = |what: &str| {
        let msg = format!("Produce requests with version {version} {what}");
        (E::InvalidRecord.code(), msg)
    };
    let mut iter = batches(records.clone());
    let first = match iter.next() {
        None => return Err(invalid("must have at least one record batch per partition")),
        Some(Err(BatchError::UnsupportedMagic(_))) => {
            return Err(invalid(
                "are only allowed to contain record batches with magic version 2",
            ))
        }
        Some(Err(e)) => return Err((E::CorruptMessage.code(), e.to_string())),
        Some(Ok(batch)) => batch,
    };
    if version < 7 && matches!(first.compression(), Ok(Compression::Zstd)) {
        let msg = format!(
            "Produce requests with version {version} are not allowed to use ZStandard compression"
        );
        return Err((E::UnsupportedCompressionType.code(), msg));
    }
    if iter.next().is_some() {
        return Err(invalid(
            "are only allowed to contain exactly one record batch per partition",
        ));
    }
    Ok(records)
}

/// Kafka's per-partition request meters: every partition counts as a produce request; one that
/// failed for another reason than routing (the client retries elsewhere) counts as failed, and
/// its bytes as rejected when the records themselves were refused.
fn count_request(metrics: &TopicMetrics, stats: Option<&TopicStats>, code: i16, size: usize) {
    metrics.record(stats, Meter::TotalProduceRequests, 1);
    let routing = [
        E::UnknownTopicOrPartition.code(),
        E::UnknownTopicId.code(),
        E::NotLeaderOrFollower.code(),
    ];
    if code == 0 || routing.contains(&code) {
        return;
    }
    metrics.record(stats, Meter::FailedProduceRequests, 1);
    let refused = [
        E::CorruptMessage.code(),
        E::MessageTooLarge.code(),
        E::RecordListTooLarge.code(),
        E::InvalidRecord.code(),
        E::InvalidTimestamp.code(),
    ];
    if refused.contains(&code) {
        metrics.record(stats, Meter::BytesRejected, size as u64);
    }
}

/// Appends one partition's batch (`verification`: the token of its KIP-890 guard); with
/// acks=all, also what to wait for.
fn append(
    broker: &Broker,
    stats: Option<&TopicStats>,
    (topic, index, verification): (&str, i32, Option<u64>),
    records: Bytes,
    acks: i16,
) -> (PartitionProduceResponse, Option<acks::Pending>) {
    let tp = TopicPartition::new(topic, index);
    let partition = match broker.replicas().get_leader(&tp) {
        Ok(p) => p,
        Err(e) => {
            let mut r = error(index, replica_error(&e).code(), None);
            if let Some((id, epoch)) = leader_hint::current_leader(&e) {
                r.current_leader = LeaderIdAndEpoch::default()
                    .with_leader_id(BrokerId(id))
                    .with_leader_epoch(epoch);
            }
            return (r, None);
        }
    };
    if acks == -1 && !partition.enough_in_sync(false) {
        let code = E::NotEnoughReplicas.code();
        let msg = "the ISR is smaller than min.insync.replicas".to_string();
        return (error(index, code, Some(msg)), None);
    }
    let size = records.len() as u64;
    let origin = AppendOrigin::Client {
        leader_epoch: partition.leader_epoch(),
        verification,
    };
    let span = tracing::info_span!(
        target: shale_common::TRACE_TARGET,
        "log.append",
        kafka.topic = topic,
        kafka.partition = index,
        kafka.batch_bytes = size as i64,
        kafka.base_offset = tracing::field::Empty,
        kafka.error_code = tracing::field::Empty,
    );
    match span.in_scope(|| partition.log.append(records, origin)) {
        Ok(info) => {
            span.record("kafka.base_offset", info.first_offset);
            if !info.duplicate {
                let converted = info.records_converted.max(0) as u64;
                broker.metrics.bytes_in.inc_by(size);
                broker.metrics.produce_message_conversions.inc_by(converted);
                let topics = &broker.topic_metrics;
                topics.record(stats, Meter::BytesIn, size);
                topics.record(stats, Meter::MessagesIn, info.record_count.max(0) as u64);
                topics.record(stats, Meter::ProduceMessageConversions, converted);
                partition.publish_progress();
            }
            let mut r = PartitionProduceResponse::default();
            r.index = index;
            r.base_offset = info.first_offset;
            r.log_append_time_ms = info.log_append_time;
            r.log_start_offset = info.log_start_offset;
            let wait = (acks == -1).then(|| acks::Pending::new(partition, info.last_offset + 1));
            (r, wait)
        }
        Err(e) => {
            tracing::debug!(partition = %tp, error = %e, "produce rejected");
            let code = log_error_code(&e);
            span.record("kafka.error_code", code);
            (error(index, code, Some(e.to_string())), None)
        }
    }
}

/// Clears fields the negotiated version does not have (kafka-protocol refuses to encode them).
fn fit_to_version(r: &mut PartitionProduceResponse, version: i16) {
    if version < 5 {
        r.log_start_offset = -1;
    }
    if version < 8 {
        r.error_message = None;
    }
    if version < 10 {
        r.current_leader = LeaderIdAndEpoch::default();
    }
}

fn error(index: i32, code: i16, message: Option<String>) -> PartitionProduceResponse {
    let mut r = PartitionProduceResponse::default();
    r.index = index;
    r.error_code = code;
    r.base_offset = -1;
    r.log_append_time_ms = -1;
    r.log_start_offset = -1;
    r.error_message = message.map(StrBytes::from_string);
    r
}
