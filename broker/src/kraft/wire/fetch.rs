//! Fetch (1) and FetchSnapshot (59) on `__cluster_metadata-0`: the core's fetch messages as
//! Kafka's request and response bodies, both directions. Records travel as Kafka v2 batches
//! ([`encode_entries`]/[`decode_entries`]); Fetch names the topic by id (v13+).

use bytes::Bytes;
use kafka_protocol::messages::{self as km, ApiKey};
use kafka_protocol::protocol::StrBytes;
use shale_raft::ids::METADATA_TOPIC_ID;
use shale_raft::kraft::codec::{decode_entries, encode_entries};
use shale_raft::kraft::{
    FetchRequest, FetchResponse, FetchResult, FetchSnapshotRequest, FetchSnapshotResponse,
    FetchSnapshotResult, Message, NodeId, SnapshotId,
};

use super::{
    check_cluster, cluster_id, codes, decode, fetch_error_code, fetch_error_from_code, leader_opt,
    leader_or_nil, malformed, refused, single_partition, topic_name, WireContext, WireError,
    FETCH_MAX_BYTES, METADATA_PARTITION,
};

pub(super) fn fetch_request(
    req: &FetchRequest,
    version: i16,
    ctx: &WireContext,
) -> km::FetchRequest {
    use km::fetch_request as r;
    let partition = r::FetchPartition::default()
        .with_partition(METADATA_PARTITION)
        .with_current_leader_epoch(req.epoch)
        .with_fetch_offset(req.fetch_offset)
        .with_last_fetched_epoch(req.last_fetched_epoch)
        .with_partition_max_bytes(FETCH_MAX_BYTES)
        .with_high_watermark(req.high_watermark);
    let topic = r::FetchTopic::default()
        .with_topic_id(METADATA_TOPIC_ID)
        .with_partitions(vec![partition]);
    let out = km::FetchRequest::default()
        .with_cluster_id(cluster_id(ctx))
        .with_max_wait_ms(ctx.fetch_max_wait_ms)
        .with_max_bytes(FETCH_MAX_BYTES)
        .with_topics(vec![topic]);
    if version >= 15 {
        out.with_replica_state(r::ReplicaState::default().with_replica_id(req.replica.into()))
    } else {
        out.with_replica_id(req.replica.into())
    }
}

pub(super) fn decode_fetch_request(
    version: i16,
    body: Bytes,
    seq: u64,
    ctx: &WireContext,
) -> Result<(NodeId, Message), WireError> {
    let api_key = ApiKey::Fetch;
    let req: km::FetchRequest = decode(api_key, version, body)?;
    check_cluster(api_key, req.cluster_id.as_ref(), ctx)?;
    let p = fetch_partition(&req)?;
    if req.max_wait_ms < 0 || p.last_fetched_epoch < 0 {
        return Err(refused(
            api_key,
            codes::INVALID_REQUEST,
            format!(
                "max wait {} ms, last fetched epoch {}",
                req.max_wait_ms, p.last_fetched_epoch
            ),
        ));
    }
    let replica = if version >= 15 {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    };
    let msg = Message::Fetch(FetchRequest {
        seq,
        epoch: p.current_leader_epoch,
        replica,
        fetch_offset: p.fetch_offset,
        last_fetched_epoch: p.last_fetched_epoch,
        // Below v18 the field decodes to Kafka's default, UNKNOWN_HIGH_WATERMARK.
        high_watermark: p.high_watermark,
    });
    Ok((replica, msg))
}

/// Kafka's `hasValidTopicPartition` for Fetch: one topic, the metadata topic id, partition 0.
fn fetch_partition(
    req: &km::FetchRequest,
) -> Result<&km::fetch_request::FetchPartition, WireError> {
    match req.topics.as_slice() {
        [t] if t.topic_id == METADATA_TOPIC_ID => match t.partitions.as_slice() {
            [p] if p.partition == METADATA_PARTITION => Ok(p),
            _ => Err(refused(
                ApiKey::Fetch,
                codes::INVALID_REQUEST,
                "not partition 0 alone",
            )),
        },
        _ => Err(refused(
            ApiKey::Fetch,
            codes::INVALID_REQUEST,
            "not the metadata topic id alone",
        )),
    }
}

pub(super) fn fetch_response(
    ans: &FetchResponse,
    version: i16,
    ctx: &WireContext,
    now_ms: i64,
) -> Result<km::FetchResponse, WireError> {
    use km::fetch_response as r;
    let mut p = r::PartitionData::default()
        .with_partition_index(METADATA_PARTITION)
        .with_high_watermark(-1)
        .with_current_leader(
            r::LeaderIdAndEpoch::default()
                .with_leader_id(leader_or_nil(ans.leader).into())
                .with_leader_epoch(ans.epoch),
        )
        .with_records(Some(Bytes::new()));
    match &ans.result {
        FetchResult::Records {
            base_offset,
            entries,
            high_watermark,
        } => {
            let records =
                encode_entries(*base_offset, entries, now_ms).map_err(|e| WireError::Encode {
                    api_key: ApiKey::Fetch,
                    version,
                    reason: e.to_string(),
                })?;
            p = p
                .with_high_watermark(high_watermark.unwrap_or(-1))
                .with_records(Some(records));
        }
        FetchResult::Diverging { epoch, end_offset } => {
            p = p.with_diverging_epoch(
                r::EpochEndOffset::default()
                    .with_epoch(*epoch)
                    .with_end_offset(*end_offset),
            );
        }
        FetchResult::Snapshot { id } => {
            p = p.with_snapshot_id(
                r::SnapshotId::default()
                    .with_end_offset(id.end_offset)
                    .with_epoch(id.epoch),
            );
        }
        FetchResult::Error(e) => p = p.with_error_code(fetch_error_code(*e)),
    }
    let topic = r::FetchableTopicResponse::default()
        .with_topic_id(METADATA_TOPIC_ID)
        .with_partitions(vec![p]);
    let mut out = km::FetchResponse::default().with_responses(vec![topic]);
    // Kafka's KRaft fills NodeEndpoints from v17 (KIP-853), though the field exists from v16.
    if version >= 17 {
        if let Some((id, e)) = ctx.endpoint(ans.leader) {
            out = out.with_node_endpoints(vec![r::NodeEndpoint::default()
                .with_node_id(id.into())
                .with_host(StrBytes::from_string(e.host.clone()))
                .with_port(i32::from(e.port))]);
        }
    }
    Ok(out)
}

/// A top-level error on a Fetch/FetchSnapshot response: one the core knows becomes a fetch
/// error in the fetcher's own epoch (so it backs off); others are [`WireError::ErrorResponse`].
fn top_level_fetch_error(
    api_key: ApiKey,
    code: i16,
) -> Result<Option<shale_raft::kraft::FetchError>, WireError> {
    if code == codes::NONE {
        return Ok(None);
    }
    fetch_error_from_code(code)
        .map(Some)
        .ok_or(WireError::ErrorResponse { api_key, code })
}

/// The endpoints a Fetch response names in `NodeEndpoints` (v16+): how a node that asked a
/// bootstrap server learns where the leader listens.
pub fn node_endpoints(version: i16, body: Bytes) -> Vec<(NodeId, String, u16)> {
    let Ok(resp) = decode::<km::FetchResponse>(ApiKey::Fetch, version, body) else {
        return Vec::new();
    };
    let endpoint = |e: &km::fetch_response::NodeEndpoint| {
        let port = u16::try_from(e.port).ok()?;
        Some((e.node_id.0, e.host.to_string(), port))
    };
    resp.node_endpoints.iter().filter_map(endpoint).collect()
}

pub(super) fn decode_fetch_response(
    sent: &FetchRequest,
    version: i16,
    body: Bytes,
) -> Result<Message, WireError> {
    let api_key = ApiKey::Fetch;
    let resp: km::FetchResponse = decode(api_key, version, body)?;
    let reply = |epoch, leader, result| {
        Message::FetchResponse(FetchResponse {
            seq: sent.seq,
            epoch,
            leader,
            result,
        })
    };
    if let Some(e) = top_level_fetch_error(api_key, resp.error_code)? {
        return Ok(reply(sent.epoch, None, FetchResult::Error(e)));
    }
    let p = match resp.responses.as_slice() {
        [t] if t.topic_id == METADATA_TOPIC_ID => match t.partitions.as_slice() {
            [p] if p.partition_index == METADATA_PARTITION => p,
            _ => return Err(malformed(api_key, version, "not partition 0 alone")),
        },
        _ => {
            return Err(malformed(
                api_key,
                version,
                "not the metadata topic id alone",
            ))
        }
    };
    let epoch = p.current_leader.leader_epoch;
    let leader = leader_opt(p.current_leader.leader_id.0);
    let result = fetch_result(sent, version, p)?;
    Ok(reply(epoch, leader, result))
}

/// The partition's outcome, checked in Kafka's order: error, diverging epoch, snapshot id,
/// records.
fn fetch_result(
    sent: &FetchRequest,
    version: i16,
    p: &km::fetch_response::PartitionData,
) -> Result<FetchResult, WireError> {
    let api_key = ApiKey::Fetch;
    if p.error_code != codes::NONE {
        let e = fetch_error_from_code(p.error_code).ok_or(WireError::ErrorResponse {
            api_key,
            code: p.error_code,
        })?;
        return Ok(FetchResult::Error(e));
    }
    if p.diverging_epoch.epoch >= 0 {
        return Ok(FetchResult::Diverging {
            epoch: p.diverging_epoch.epoch,
            end_offset: p.diverging_epoch.end_offset,
        });
    }
    let snap = &p.snapshot_id;
    if snap.epoch >= 0 || snap.end_offset >= 0 {
        if snap.epoch < 0 || snap.end_offset < 0 {
            return Err(malformed(api_key, version, "half-valid snapshot id"));
        }
        let id = SnapshotId {
            end_offset: snap.end_offset,
            epoch: snap.epoch,
        };
        return Ok(FetchResult::Snapshot { id });
    }
    let bytes = p.records.clone().unwrap_or_default();
    let (base, mut entries) =
        decode_entries(bytes).map_err(|e| malformed(api_key, version, e.to_string()))?;
    // A Kafka leader sends whole batches: the first may start below the fetch offset.
    let mut base_offset = base.unwrap_or(sent.fetch_offset);
    if base_offset < sent.fetch_offset {
        let skip = usize::try_from(sent.fetch_offset - base_offset).unwrap_or(usize::MAX);
        entries.drain(..skip.min(entries.len()));
        base_offset = sent.fetch_offset;
    }
    Ok(FetchResult::Records {
        base_offset,
        entries,
        high_watermark: (p.high_watermark >= 0).then_some(p.high_watermark),
    })
}

pub(super) fn snapshot_request(
    req: &FetchSnapshotRequest,
    version: i16,
    ctx: &WireContext,
) -> Result<km::FetchSnapshotRequest, WireError> {
    use km::fetch_snapshot_request as r;
    let position = i64::try_from(req.position).map_err(|_| WireError::Encode {
        api_key: ApiKey::FetchSnapshot,
        version,
        reason: format!("position {} out of range", req.position),
    })?;
    let partition = r::PartitionSnapshot::default()
        .with_partition(METADATA_PARTITION)
        .with_current_leader_epoch(req.epoch)
        .with_snapshot_id(
            r::SnapshotId::default()
                .with_end_offset(req.id.end_offset)
                .with_epoch(req.id.epoch),
        )
        .with_position(position);
    let topic = r::TopicSnapshot::default()
        .with_name(topic_name())
        .with_partitions(vec![partition]);
    Ok(km::FetchSnapshotRequest::default()
        .with_cluster_id(cluster_id(ctx))
        .with_replica_id(req.replica.into())
        .with_max_bytes(FETCH_MAX_BYTES)
        .with_topics(vec![topic]))
}

pub(super) fn decode_snapshot_request(
    version: i16,
    body: Bytes,
    seq: u64,
    ctx: &WireContext,
) -> Result<(NodeId, Message), WireError> {
    let api_key = ApiKey::FetchSnapshot;
    let req: km::FetchSnapshotRequest = decode(api_key, version, body)?;
    check_cluster(api_key, req.cluster_id.as_ref(), ctx)?;
    let p = single_partition(
        api_key,
        &req.topics,
        |t| (&t.name, &t.partitions),
        |p| p.partition,
        codes::UNKNOWN_TOPIC_OR_PARTITION,
    )?;
    let replica = req.replica_id.0;
    let msg = Message::FetchSnapshot(FetchSnapshotRequest {
        seq,
        epoch: p.current_leader_epoch,
        replica,
        id: SnapshotId {
            end_offset: p.snapshot_id.end_offset,
            epoch: p.snapshot_id.epoch,
        },
        // A negative position is out of range (Kafka: POSITION_OUT_OF_RANGE); u64::MAX makes
        // the core answer exactly that, with its view of the leader.
        position: u64::try_from(p.position).unwrap_or(u64::MAX),
    });
    Ok((replica, msg))
}

pub(super) fn snapshot_response(
    ans: &FetchSnapshotResponse,
    version: i16,
    ctx: &WireContext,
) -> Result<km::FetchSnapshotResponse, WireError> {
    use km::fetch_snapshot_response as r;
    let mut p = r::PartitionSnapshot::default()
        .with_index(METADATA_PARTITION)
        .with_current_leader(
            r::LeaderIdAndEpoch::default()
                .with_leader_id(leader_or_nil(ans.leader).into())
                .with_leader_epoch(ans.epoch),
        );
    match &ans.result {
        FetchSnapshotResult::Chunk {
            id,
            size,
            position,
            data,
        } => {
            let fail = |what: &str| WireError::Encode {
                api_key: ApiKey::FetchSnapshot,
                version,
                reason: format!("{what} out of range"),
            };
            p = p
                .with_snapshot_id(
                    r::SnapshotId::default()
                        .with_end_offset(id.end_offset)
                        .with_epoch(id.epoch),
                )
                .with_size(i64::try_from(*size).map_err(|_| fail("size"))?)
                .with_position(i64::try_from(*position).map_err(|_| fail("position"))?)
                .with_unaligned_records(data.clone());
        }
        FetchSnapshotResult::Error(e) => p = p.with_error_code(fetch_error_code(*e)),
    }
    let topic = r::TopicSnapshot::default()
        .with_name(topic_name())
        .with_partitions(vec![p]);
    let mut out = km::FetchSnapshotResponse::default().with_topics(vec![topic]);
    if version >= 1 {
        if let Some((id, e)) = ctx.endpoint(ans.leader) {
            out = out.with_node_endpoints(vec![r::NodeEndpoint::default()
                .with_node_id(id.into())
                .with_host(StrBytes::from_string(e.host.clone()))
                .with_port(e.port)]);
        }
    }
    Ok(out)
}

pub(super) fn decode_snapshot_response(
    sent: &FetchSnapshotRequest,
    version: i16,
    body: Bytes,
) -> Result<Message, WireError> {
    let api_key = ApiKey::FetchSnapshot;
    let resp: km::FetchSnapshotResponse = decode(api_key, version, body)?;
    let reply = |epoch, leader, result| {
        Message::FetchSnapshotResponse(FetchSnapshotResponse {
            seq: sent.seq,
            epoch,
            leader,
            result,
        })
    };
    if let Some(e) = top_level_fetch_error(api_key, resp.error_code)? {
        return Ok(reply(sent.epoch, None, FetchSnapshotResult::Error(e)));
    }
    let p = single_partition(
        api_key,
        &resp.topics,
        |t| (&t.name, &t.partitions),
        |p| p.index,
        codes::UNKNOWN_TOPIC_OR_PARTITION,
    )
    .map_err(|e| malformed(api_key, version, e.to_string()))?;
    let epoch = p.current_leader.leader_epoch;
    let leader = leader_opt(p.current_leader.leader_id.0);
    if p.error_code != codes::NONE {
        let e = fetch_error_from_code(p.error_code).ok_or(WireError::ErrorResponse {
            api_key,
            code: p.error_code,
        })?;
        return Ok(reply(epoch, leader, FetchSnapshotResult::Error(e)));
    }
    let unsigned = |v: i64, what: &str| {
        u64::try_from(v).map_err(|_| malformed(api_key, version, format!("negative {what} {v}")))
    };
    let result = FetchSnapshotResult::Chunk {
        id: SnapshotId {
            end_offset: p.snapshot_id.end_offset,
            epoch: p.snapshot_id.epoch,
        },
        size: unsigned(p.size, "size")?,
        position: unsigned(p.position, "position")?,
        data: p.unaligned_records.clone(),
    };
    Ok(reply(epoch, leader, result))
}
