//! Byte-exact (de)serialization of `__remote_log_metadata` record values (KIP-405 §3.8).
//!
//! Value layout: `uvarint frameVersion (=1) | uvarint apiKey | uvarint version (=0) | body`, the body
//! in Kafka's flexible encoding with a tagged-field section closing every struct. apiKeys: 0 segment
//! metadata, 1 segment update, 2 partition delete, 3 segment snapshot (decoded into its own type;
//! never published by Kafka or by us). The reader mirrors Kafka's leniency (any known state in an
//! apiKey-0 record, leader epochs in any order, unknown tags dropped, non-minimal varints) and its
//! rejections (frame version ≠ 1, trailing bytes, unknown apiKey, version ≠ 0, null topic name,
//! unknown state byte, end < start, empty leader epochs).

use crate::error::{Result, RlmmError};
use crate::metadata::{
    RemoteLogMetadata, RemoteLogSegmentId, RemoteLogSegmentMetadata,
    RemoteLogSegmentMetadataUpdate, RemotePartitionDeleteMetadata, TopicIdPartition,
};
use crate::state::{RemoteLogSegmentState, RemotePartitionDeleteState};
use crate::wire::{
    put_compact_nullable_bytes, put_compact_string, put_empty_tags, put_uuid, put_uvarint, Reader,
};
use bytes::{BufMut, Bytes, BytesMut};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The frame version Kafka writes (its javadoc says 0; the code writes and requires 1).
pub const FRAME_VERSION: u32 = 1;
/// apiKey of `RemoteLogSegmentMetadataRecord`.
pub const API_KEY_SEGMENT: u32 = 0;
/// apiKey of `RemoteLogSegmentMetadataUpdateRecord`.
pub const API_KEY_UPDATE: u32 = 1;
/// apiKey of `RemotePartitionDeleteMetadataRecord`.
pub const API_KEY_PARTITION_DELETE: u32 = 2;
/// apiKey of `RemoteLogSegmentMetadataSnapshotRecord`.
pub const API_KEY_SNAPSHOT: u32 = 3;

/// `RemoteLogSegmentMetadataSnapshotRecord` (apiKey 3): a segment without its topic-partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteLogSegmentMetadataSnapshot {
    /// The segment's attempt id.
    pub segment_id: Uuid,
    /// First offset.
    pub start_offset: i64,
    /// Last offset, inclusive.
    pub end_offset: i64,
    /// Broker of the last event.
    pub broker_id: i32,
    /// Largest record timestamp.
    pub max_timestamp_ms: i64,
    /// Time of the last event.
    pub event_timestamp_ms: i64,
    /// Leader epoch -> start offset within the segment.
    pub segment_leader_epochs: BTreeMap<i32, i64>,
    /// `.log` size in bytes.
    pub segment_size_in_bytes: i32,
    /// Plugin metadata.
    pub custom_metadata: Option<Bytes>,
    /// Lifecycle state.
    pub state: RemoteLogSegmentState,
}

/// Any record value the decoder understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodedRecord {
    /// apiKeys 0, 1, 2.
    Metadata(RemoteLogMetadata),
    /// apiKey 3.
    Snapshot(RemoteLogSegmentMetadataSnapshot),
}

fn put_header(buf: &mut BytesMut, api_key: u32) {
    put_uvarint(buf, FRAME_VERSION);
    put_uvarint(buf, api_key);
    put_uvarint(buf, 0);
}

fn put_tp(buf: &mut BytesMut, tp: &TopicIdPartition) {
    put_compact_string(buf, &tp.topic);
    put_uuid(buf, &tp.topic_id);
    buf.put_i32(tp.partition);
    put_empty_tags(buf);
}

fn put_segment_id(buf: &mut BytesMut, id: &RemoteLogSegmentId) {
    put_tp(buf, &id.tp);
    put_uuid(buf, &id.id);
    put_empty_tags(buf);
}

fn put_epochs(buf: &mut BytesMut, epochs: &BTreeMap<i32, i64>) {
    put_uvarint(buf, epochs.len() as u32 + 1);
    for (epoch, offset) in epochs {
        buf.put_i32(*epoch);
        buf.put_i64(*offset);
        put_empty_tags(buf);
    }
}

/// Serializes an event as Kafka's `RemoteLogMetadataSerde` does.
pub fn encode(metadata: &RemoteLogMetadata) -> Bytes {
    let mut buf = BytesMut::with_capacity(128);
    match metadata {
        RemoteLogMetadata::Segment(m) => {
            put_header(&mut buf, API_KEY_SEGMENT);
            put_segment_id(&mut buf, &m.id);
            buf.put_i64(m.start_offset);
            buf.put_i64(m.end_offset);
            buf.put_i32(m.broker_id);
            buf.put_i64(m.max_timestamp_ms);
            buf.put_i64(m.event_timestamp_ms);
            put_epochs(&mut buf, &m.segment_leader_epochs);
            buf.put_i32(m.segment_size_in_bytes);
            put_compact_nullable_bytes(&mut buf, m.custom_metadata.as_deref());
            buf.put_i8(m.state.id());
        }
        RemoteLogMetadata::Update(u) => {
            put_header(&mut buf, API_KEY_UPDATE);
            put_segment_id(&mut buf, &u.id);
            buf.put_i32(u.broker_id);
            buf.put_i64(u.event_timestamp_ms);
            put_compact_nullable_bytes(&mut buf, u.custom_metadata.as_deref());
            buf.put_i8(u.state.id());
        }
        RemoteLogMetadata::PartitionDelete(d) => {
            put_header(&mut buf, API_KEY_PARTITION_DELETE);
            put_tp(&mut buf, &d.tp);
            buf.put_i32(d.broker_id);
            buf.put_i64(d.event_timestamp_ms);
            buf.put_i8(d.state.id());
        }
    }
    put_empty_tags(&mut buf);
    buf.freeze()
}

/// Serializes an apiKey-3 snapshot record.
pub fn encode_snapshot(s: &RemoteLogSegmentMetadataSnapshot) -> Bytes {
    let mut buf = BytesMut::with_capacity(96);
    put_header(&mut buf, API_KEY_SNAPSHOT);
    put_uuid(&mut buf, &s.segment_id);
    buf.put_i64(s.start_offset);
    buf.put_i64(s.end_offset);
    buf.put_i32(s.broker_id);
    buf.put_i64(s.max_timestamp_ms);
    buf.put_i64(s.event_timestamp_ms);
    put_epochs(&mut buf, &s.segment_leader_epochs);
    buf.put_i32(s.segment_size_in_bytes);
    put_compact_nullable_bytes(&mut buf, s.custom_metadata.as_deref());
    buf.put_i8(s.state.id());
    put_empty_tags(&mut buf);
    buf.freeze()
}

/// Decodes an apiKey 0/1/2 record value; apiKey 3 is rejected here (see [`decode_record`]).
pub fn decode(buf: &[u8]) -> Result<RemoteLogMetadata> {
    match decode_record(buf)? {
        DecodedRecord::Metadata(m) => Ok(m),
        DecodedRecord::Snapshot(_) => Err(RlmmError::serde(
            "snapshot record (apiKey 3) is not a metadata event",
        )),
    }
}

/// Decodes any record value, including apiKey-3 snapshot records.
pub fn decode_record(buf: &[u8]) -> Result<DecodedRecord> {
    let mut r = Reader::new(buf);
    let frame = r.uvarint("frame version")?;
    if frame != FRAME_VERSION {
        return Err(RlmmError::serde(format!("unknown frame version {frame}")));
    }
    let api_key = r.uvarint("api key")?;
    let version = r.uvarint("version")?;
    if api_key > API_KEY_SNAPSHOT {
        return Err(RlmmError::serde(format!("unknown api key {api_key}")));
    }
    if version != 0 {
        return Err(RlmmError::serde(format!(
            "unsupported version {version} for api key {api_key}"
        )));
    }
    let record = match api_key {
        API_KEY_SEGMENT => {
            DecodedRecord::Metadata(RemoteLogMetadata::Segment(read_segment(&mut r)?))
        }
        API_KEY_UPDATE => DecodedRecord::Metadata(RemoteLogMetadata::Update(read_update(&mut r)?)),
        API_KEY_PARTITION_DELETE => {
            DecodedRecord::Metadata(RemoteLogMetadata::PartitionDelete(read_delete(&mut r)?))
        }
        _ => DecodedRecord::Snapshot(read_snapshot(&mut r)?),
    };
    if r.remaining() != 0 {
        return Err(RlmmError::serde(format!(
            "{} trailing byte(s) after record at byte {}",
            r.remaining(),
            r.position()
        )));
    }
    match &record {
        DecodedRecord::Metadata(RemoteLogMetadata::Segment(m)) => m
            .validate()
            .map_err(|e| RlmmError::serde(format!("invalid segment record: {e}")))?,
        DecodedRecord::Snapshot(s) if s.segment_leader_epochs.is_empty() => {
            return Err(RlmmError::serde("snapshot record has no leader epochs"));
        }
        _ => {}
    }
    Ok(record)
}

fn read_tp(r: &mut Reader<'_>) -> Result<TopicIdPartition> {
    let topic = r.compact_string("topic name")?;
    let topic_id = r.uuid("topic id")?;
    let partition = r.i32("partition")?;
    r.skip_tags("topic-partition tags")?;
    Ok(TopicIdPartition::new(topic_id, topic, partition))
}

fn read_segment_id(r: &mut Reader<'_>) -> Result<RemoteLogSegmentId> {
    let tp = read_tp(r)?;
    let id = r.uuid("segment id")?;
    r.skip_tags("segment id tags")?;
    Ok(RemoteLogSegmentId::new(tp, id))
}

fn read_epochs(r: &mut Reader<'_>) -> Result<BTreeMap<i32, i64>> {
    let n = r.compact_array_len("segment leader epochs")?;
    let mut epochs = BTreeMap::new();
    for _ in 0..n {
        let epoch = r.i32("leader epoch")?;
        let offset = r.i64("leader epoch offset")?;
        r.skip_tags("leader epoch tags")?;
        epochs.insert(epoch, offset);
    }
    Ok(epochs)
}

fn read_segment_state(r: &mut Reader<'_>) -> Result<RemoteLogSegmentState> {
    let id = r.i8("segment state")?;
    RemoteLogSegmentState::from_id(id)
        .ok_or_else(|| RlmmError::serde(format!("unknown remote log segment state {id}")))
}

fn read_segment(r: &mut Reader<'_>) -> Result<RemoteLogSegmentMetadata> {
    let id = read_segment_id(r)?;
    let start_offset = r.i64("start offset")?;
    let end_offset = r.i64("end offset")?;
    let broker_id = r.i32("broker id")?;
    let max_timestamp_ms = r.i64("max timestamp")?;
    let event_timestamp_ms = r.i64("event timestamp")?;
    let segment_leader_epochs = read_epochs(r)?;
    let segment_size_in_bytes = r.i32("segment size")?;
    let custom_metadata = r.compact_nullable_bytes("custom metadata")?;
    let state = read_segment_state(r)?;
    r.skip_tags("record tags")?;
    Ok(RemoteLogSegmentMetadata {
        id,
        start_offset,
        end_offset,
        max_timestamp_ms,
        broker_id,
        event_timestamp_ms,
        segment_leader_epochs,
        segment_size_in_bytes,
        custom_metadata,
        state,
    })
}

fn read_update(r: &mut Reader<'_>) -> Result<RemoteLogSegmentMetadataUpdate> {
    let id = read_segment_id(r)?;
    let broker_id = r.i32("broker id")?;
    let event_timestamp_ms = r.i64("event timestamp")?;
    let custom_metadata = r.compact_nullable_bytes("custom metadata")?;
    let state = read_segment_state(r)?;
    r.skip_tags("record tags")?;
    Ok(RemoteLogSegmentMetadataUpdate {
        id,
        event_timestamp_ms,
        custom_metadata,
        state,
        broker_id,
    })
}

fn read_delete(r: &mut Reader<'_>) -> Result<RemotePartitionDeleteMetadata> {
    let tp = read_tp(r)?;
    let broker_id = r.i32("broker id")?;
    let event_timestamp_ms = r.i64("event timestamp")?;
    let raw = r.i8("partition delete state")?;
    let state = RemotePartitionDeleteState::from_id(raw)
        .ok_or_else(|| RlmmError::serde(format!("unknown remote partition delete state {raw}")))?;
    r.skip_tags("record tags")?;
    Ok(RemotePartitionDeleteMetadata {
        tp,
        state,
        event_timestamp_ms,
        broker_id,
    })
}

fn read_snapshot(r: &mut Reader<'_>) -> Result<RemoteLogSegmentMetadataSnapshot> {
    let segment_id = r.uuid("segment id")?;
    let start_offset = r.i64("start offset")?;
    let end_offset = r.i64("end offset")?;
    let broker_id = r.i32("broker id")?;
    let max_timestamp_ms = r.i64("max timestamp")?;
    let event_timestamp_ms = r.i64("event timestamp")?;
    let segment_leader_epochs = read_epochs(r)?;
    let segment_size_in_bytes = r.i32("segment size")?;
    let custom_metadata = r.compact_nullable_bytes("custom metadata")?;
    let state = read_segment_state(r)?;
    r.skip_tags("record tags")?;
    Ok(RemoteLogSegmentMetadataSnapshot {
        segment_id,
        start_offset,
        end_offset,
        broker_id,
        max_timestamp_ms,
        event_timestamp_ms,
        segment_leader_epochs,
        segment_size_in_bytes,
        custom_metadata,
        state,
    })
}

#[cfg(test)]
#[path = "serde_test.rs"]
mod tests;
