//! ListOffsets (by special timestamp or by time) and OffsetForLeaderEpoch.

use crate::errors::log_error_code;
use crate::state::{Broker, Partition};
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
use std::sync::Arc;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

/// Answers each partition's offset query.
pub fn handle(broker: &Broker, req: &ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    let mut resp = ListOffsetsResponse::default();
    for t in &req.topics {
        let mut out = ListOffsetsTopicResponse::default();
        out.name = t.name.clone();
        for p in &t.partitions {
            let tp = TopicPartition::new(t.name.0.as_str(), p.partition_index);
            let mut r = ListOffsetsPartitionResponse::default();
            r.partition_index = p.partition_index;
            r.timestamp = -1;
            r.offset = -1;
            r.leader_epoch = -1;
            match broker.partition(&tp) {
                None => r.error_code = E::UnknownTopicOrPartition.code(),
                Some(part) => lookup(&part, p.timestamp, p.current_leader_epoch, version, &mut r),
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

fn lookup(
    part: &Arc<Partition>,
    ts: i64,
    client_epoch: i32,
    version: i16,
    r: &mut ListOffsetsPartitionResponse,
) {
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
    match ts {
        LATEST => {
            r.offset = part.high_watermark();
            r.leader_epoch = log.latest_epoch().unwrap_or(-1);
        }
        EARLIEST | EARLIEST_LOCAL => {
            r.offset = log.log_start_offset();
            r.leader_epoch = epoch_of(r.offset);
        }
        LATEST_TIERED => {}
        _ => {
            let found = if ts == MAX_TIMESTAMP {
                log.offset_of_max_timestamp()
            } else {
                log.offset_for_timestamp(ts)
            };
            match found {
                Ok(Some(found)) if found.offset < part.high_watermark() => {
                    r.offset = found.offset;
                    r.timestamp = found.timestamp;
                    r.leader_epoch = found.leader_epoch.unwrap_or(-1);
                }
                Ok(_) => {}
                Err(e) => r.error_code = log_error_code(&e),
            }
        }
    }
}

/// The end offset of the requested leader epoch, as followers and consumers use it to detect
/// log divergence.
pub fn offset_for_leader_epoch(
    broker: &Broker,
    req: &OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let mut resp = OffsetForLeaderEpochResponse::default();
    for t in &req.topics {
        let mut out = OffsetForLeaderTopicResult::default();
        out.topic = t.topic.clone();
        for p in &t.partitions {
            let mut r = EpochEndOffset::default();
            r.partition = p.partition;
            r.leader_epoch = -1;
            r.end_offset = -1;
            let tp = TopicPartition::new(t.topic.0.as_str(), p.partition);
            match broker.partition(&tp) {
                None => r.error_code = E::UnknownTopicOrPartition.code(),
                Some(part) => {
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
