//! ListOffsets (by special timestamp or by time) and OffsetForLeaderEpoch.

use super::RequestContext;
use crate::errors::log_error_code;
use crate::state::{Broker, Partition};
use crate::tiering::Tiering;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    ListOffsetsRequest, ListOffsetsResponse, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
};
use shale_common::TopicPartition;
use shale_raft::acl::op;
use std::sync::Arc;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

/// Answers each partition's offset query.
pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    req: &ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let mut resp = ListOffsetsResponse::default();
    for t in &req.topics {
        let mut out = ListOffsetsTopicResponse::default();
        out.name = t.name.clone();
        let allowed = ctx.authz.topic(op::DESCRIBE, &t.name);
        for p in &t.partitions {
            let tp = TopicPartition::new(t.name.0.as_str(), p.partition_index);
            let mut r = ListOffsetsPartitionResponse::default();
            r.partition_index = p.partition_index;
            r.timestamp = -1;
            r.offset = -1;
            r.leader_epoch = -1;
            match broker.replicas().get_leader(&tp) {
                _ if !allowed => r.error_code = E::TopicAuthorizationFailed.code(),
                Err(e) => r.error_code = crate::errors::replica_error(&e).code(),
                Ok(part) => {
                    lookup(
                        broker,
                        &part,
                        p.timestamp,
                        p.current_leader_epoch,
                        version,
                        req.isolation_level == 1,
                        &mut r,
                    )
                    .await
                }
            }
            if version < 4 {
                r.leader_epoch = -1; // the field exists from v4
            }
            out.partitions.push(r);
        }
        resp.topics.push(out);
    }
    resp
}

async fn lookup(
    broker: &Broker,
    part: &Arc<Partition>,
    ts: i64,
    client_epoch: i32,
    version: i16,
    read_committed: bool,
    r: &mut ListOffsetsPartitionResponse,
) {
    // READ_COMMITTED (v2+) sees the log up to the last stable offset.
    let visible = match read_committed {
        true => part.log.last_stable_offset(),
        false => part.high_watermark(),
    };
    let epoch = part.leader_epoch();
    if client_epoch >= 0 && client_epoch != epoch {
        r.error_code = if client_epoch < epoch {
            E::FencedLeaderEpoch.code()
        } else {
            E::UnknownLeaderEpoch.code()
        };
        return;
    }
    let min_version = match ts {
        MAX_TIMESTAMP => 7,
        EARLIEST_LOCAL => 8,
        LATEST_TIERED => 9,
        _ => 0,
    };
    if version < min_version {
        r.error_code = E::UnsupportedVersion.code();
        return;
    }
    let log = &part.log;
    let epoch_of = |offset: i64| log.epoch_for_offset(offset).unwrap_or(-1);
    let tiering = broker.tiering().filter(|_| log.is_tiered());
    match ts {
        LATEST => {
            r.offset = visible;
            r.leader_epoch = log.latest_epoch().unwrap_or(-1);
        }
        EARLIEST => {
            r.offset = log.log_start_offset();
            r.leader_epoch = epoch_of(r.offset);
        }
        EARLIEST_LOCAL => {
            r.offset = log.local_log_start_offset();
            r.leader_epoch = epoch_of(r.offset);
        }
        LATEST_TIERED => {
            if let Some(t) = tiering {
                r.offset = t.highest_remote_offset(&Tiering::topic_id_partition(part));
                if r.offset >= 0 {
                    r.leader_epoch = epoch_of(r.offset);
                }
            }
        }
        _ => match by_time(part, tiering, ts).await {
            Ok(Some((offset, timestamp))) if offset < visible => {
                r.offset = offset;
                r.timestamp = timestamp;
                r.leader_epoch = epoch_of(offset);
            }
            Ok(_) => {}
            Err(code) => r.error_code = code,
        },
    }
}

/// A timestamp lookup (or -3, the largest timestamp) over remote segments, then local ones.
/// Kafka searches only local segments for -3; tiered data counts here too.
async fn by_time(
    part: &Arc<Partition>,
    tiering: Option<&Arc<Tiering>>,
    ts: i64,
) -> Result<Option<(i64, i64)>, i16> {
    let log = &part.log;
    let local = super::storage_io(|| {
        if ts == MAX_TIMESTAMP {
            log.offset_of_max_timestamp()
        } else {
            log.offset_for_timestamp(ts)
        }
    });
    let local = local
        .map_err(|e| log_error_code(&e))?
        .map(|f| (f.offset, f.timestamp));
    let Some(t) = tiering else {
        return Ok(local);
    };
    let tp = Tiering::topic_id_partition(part);
    let start = log.log_start_offset();
    let remote = if ts == MAX_TIMESTAMP {
        t.max_timestamp(&tp, start).await
    } else {
        t.offset_for_timestamp(&tp, ts, start).await
    };
    let remote = remote.map_err(|e| {
        tracing::warn!(partition = %part.tp, error = %e, "remote timestamp lookup failed");
        E::KafkaStorageError.code()
    })?;
    Ok(match (remote, local) {
        (Some(r), Some(l)) if ts == MAX_TIMESTAMP => Some(if l.1 > r.1 { l } else { r }),
        (Some(r), _) => Some(r),
        (None, l) => l,
    })
}

/// The end offset of the requested leader epoch, as followers and consumers use it to detect
/// log divergence.
pub fn offset_for_leader_epoch(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    req: &OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let mut resp = OffsetForLeaderEpochResponse::default();
    let replica = ctx.authz.cluster(op::CLUSTER_ACTION);
    for t in &req.topics {
        let mut out = OffsetForLeaderTopicResult::default();
        out.topic = t.topic.clone();
        let allowed = replica || ctx.authz.topic(op::DESCRIBE, &t.topic);
        for p in &t.partitions {
            let mut r = EpochEndOffset::default();
            r.partition = p.partition;
            r.leader_epoch = -1;
            r.end_offset = -1;
            let tp = TopicPartition::new(t.topic.0.as_str(), p.partition);
            match broker.replicas().get_leader(&tp) {
                _ if !allowed => r.error_code = E::TopicAuthorizationFailed.code(),
                Err(e) => r.error_code = crate::errors::replica_error(&e).code(),
                Ok(part) => {
                    let current = part.leader_epoch();
                    if p.current_leader_epoch >= 0 && p.current_leader_epoch < current {
                        r.error_code = E::FencedLeaderEpoch.code();
                    } else if p.current_leader_epoch > current {
                        r.error_code = E::UnknownLeaderEpoch.code();
                    } else if let Some((epoch, end)) = part.log.end_offset_for_epoch(p.leader_epoch)
                    {
                        r.leader_epoch = epoch;
                        r.end_offset = end;
                    }
                }
            }
            out.partitions.push(r);
        }
        resp.topics.push(out);
    }
    resp
}
