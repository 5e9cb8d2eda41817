//! Building and parsing the v2 record batches of the metadata log and of snapshot files
//! (formats.md §6.2, §6.4): data batches whose records have a null key and a framed
//! [`MetadataRecord`] value, and control batches whose single record has the 4-byte key
//! `00 00 00 <type>` and a version-0 control message value (no version prefix).

use bytes::{Bytes, BytesMut};
use shale_protocol::codec::decode_message;
use shale_protocol::kafka_protocol::messages::leader_change_message::Voter;
use shale_protocol::kafka_protocol::messages::{
    LeaderChangeMessage, SnapshotFooterRecord, SnapshotHeaderRecord, VotersRecord,
};
use shale_protocol::kafka_protocol::protocol::Encodable;
use shale_protocol::record::BatchBuilder;
use shale_protocol::record_batch::{RecordBatch, TimestampType};

use crate::error::RaftError;
use crate::quorum::LeaderChange;
use crate::records::MetadataRecord;

/// Control record type of a LeaderChangeMessage.
pub const CONTROL_LEADER_CHANGE: i16 = 2;
/// Control record type of a SnapshotHeaderRecord.
pub const CONTROL_SNAPSHOT_HEADER: i16 = 3;
/// Control record type of a SnapshotFooterRecord.
pub const CONTROL_SNAPSHOT_FOOTER: i16 = 4;
/// Control record type of a KRaftVersionRecord (KIP-853).
pub const CONTROL_KRAFT_VERSION: i16 = 5;
/// Control record type of a VotersRecord (KIP-853).
pub const CONTROL_KRAFT_VOTERS: i16 = 6;

/// A batch of the metadata log (or a snapshot file), decoded.
#[derive(Clone, Debug, PartialEq)]
pub enum MetadataBatch {
    /// A control batch; `types` lists its records' control types.
    Control {
        base_offset: i64,
        last_offset: i64,
        epoch: i32,
        types: Vec<i16>,
        timestamp: i64,
    },
    /// A data batch of metadata records.
    Data {
        base_offset: i64,
        last_offset: i64,
        epoch: i32,
        timestamp: i64,
        records: Vec<MetadataRecord>,
    },
}

impl MetadataBatch {
    /// The raft epoch the batch was written in.
    pub fn epoch(&self) -> i32 {
        match self {
            MetadataBatch::Control { epoch, .. } | MetadataBatch::Data { epoch, .. } => *epoch,
        }
    }

    pub fn last_offset(&self) -> i64 {
        match self {
            MetadataBatch::Control { last_offset, .. }
            | MetadataBatch::Data { last_offset, .. } => *last_offset,
        }
    }
}

fn builder(base_offset: i64, epoch: i32, timestamp: i64) -> BatchBuilder {
    let mut b = BatchBuilder::new(timestamp);
    b.base_offset = base_offset;
    b.partition_leader_epoch = epoch;
    b.timestamp_type = TimestampType::CreateTime;
    b
}

/// A data batch: CreateTime, base/max timestamp = `timestamp`, no producer, null keys.
pub fn data_batch(
    base_offset: i64,
    epoch: i32,
    timestamp: i64,
    records: &[MetadataRecord],
) -> Result<RecordBatch, RaftError> {
    let values: Vec<Bytes> = records.iter().map(MetadataRecord::encode).collect();
    values_batch(base_offset, epoch, timestamp, &values)
}

/// [`data_batch`] of already framed record values.
pub fn values_batch(
    base_offset: i64,
    epoch: i32,
    timestamp: i64,
    values: &[Bytes],
) -> Result<RecordBatch, RaftError> {
    let mut b = builder(base_offset, epoch, timestamp);
    for v in values {
        b.push(timestamp, None, Some(v.clone()), Vec::new());
    }
    Ok(b.build()?)
}

/// A control batch holding one record of `control_type` with `value`.
pub fn control_batch(
    base_offset: i64,
    epoch: i32,
    timestamp: i64,
    control_type: i16,
    value: Bytes,
) -> Result<RecordBatch, RaftError> {
    let mut b = builder(base_offset, epoch, timestamp);
    b.is_control = true;
    let mut key = BytesMut::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&control_type.to_be_bytes());
    b.push(timestamp, Some(key.freeze()), Some(value), Vec::new());
    Ok(b.build()?)
}

fn encode_message(m: &impl Encodable, what: &str) -> Result<Bytes, RaftError> {
    let mut buf = BytesMut::new();
    m.encode(&mut buf, 0)
        .map_err(|e| RaftError::Decode(format!("encoding {what}: {e}")))?;
    Ok(buf.freeze())
}

/// LeaderChangeMessage v0 value.
pub fn leader_change_value(change: &LeaderChange) -> Result<Bytes, RaftError> {
    let voter = |id: &i32| Voter::default().with_voter_id(*id);
    let msg = LeaderChangeMessage::default()
        .with_version(0)
        .with_leader_id(change.leader_id.into())
        .with_voters(change.voters.iter().map(voter).collect())
        .with_granting_voters(change.granting_voters.iter().map(voter).collect());
    encode_message(&msg, "LeaderChangeMessage")
}

/// Parses a LeaderChangeMessage v0 value. Decoded through `codec::decode_message`: kafka-protocol
/// alone reserves an array's claimed capacity before reading it, so a voter count of 2^32 in a
/// corrupt value would abort the process.
pub fn decode_leader_change(value: Bytes) -> Result<LeaderChange, RaftError> {
    let msg: LeaderChangeMessage = decode_message(value, 0)
        .map_err(|e| RaftError::Decode(format!("LeaderChangeMessage: {e}")))?;
    Ok(LeaderChange {
        leader_id: msg.leader_id.0,
        voters: msg.voters.iter().map(|v| v.voter_id).collect(),
        granting_voters: msg.granting_voters.iter().map(|v| v.voter_id).collect(),
    })
}

/// One voter of a VotersRecord: its id, directory id and controller-listener endpoints
/// (listener name, host, port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoterEntry {
    pub id: i32,
    pub directory_id: uuid::Uuid,
    pub endpoints: Vec<(String, String, u16)>,
}

impl VoterEntry {
    /// A voter known by id only (zero directory id, no endpoints).
    pub fn by_id(id: i32) -> VoterEntry {
        VoterEntry {
            id,
            directory_id: uuid::Uuid::nil(),
            endpoints: Vec::new(),
        }
    }
}

/// VotersRecord v0 value with each voter's directory id and endpoints (each supporting
/// kraft.version 0–1), as Kafka's leader and `kafka-storage.sh format --standalone` write it.
pub fn voters_entries_value(voters: &[VoterEntry]) -> Result<Bytes, RaftError> {
    use shale_protocol::kafka_protocol::messages::voters_record::{self, KRaftVersionFeature};
    use shale_protocol::kafka_protocol::protocol::StrBytes;
    let voter = |v: &VoterEntry| {
        let endpoints = v.endpoints.iter().map(|(name, host, port)| {
            voters_record::Endpoint::default()
                .with_name(StrBytes::from_string(name.clone()))
                .with_host(StrBytes::from_string(host.clone()))
                .with_port(*port)
        });
        voters_record::Voter::default()
            .with_voter_id(v.id.into())
            .with_voter_directory_id(v.directory_id)
            .with_endpoints(endpoints.collect())
            .with_k_raft_version_feature(
                KRaftVersionFeature::default()
                    .with_min_supported_version(0)
                    .with_max_supported_version(1),
            )
    };
    let msg = VotersRecord::default()
        .with_version(0)
        .with_voters(voters.iter().map(voter).collect());
    encode_message(&msg, "VotersRecord")
}

/// The voter ids of a VotersRecord v0 value.
pub fn decode_voters(value: Bytes) -> Result<Vec<i32>, RaftError> {
    Ok(decode_voter_entries(value)?.iter().map(|v| v.id).collect())
}

/// The voters of a VotersRecord v0 value, with directory ids and endpoints.
pub fn decode_voter_entries(value: Bytes) -> Result<Vec<VoterEntry>, RaftError> {
    let msg: VotersRecord =
        decode_message(value, 0).map_err(|e| RaftError::Decode(format!("VotersRecord: {e}")))?;
    let entry = |v: &shale_protocol::kafka_protocol::messages::voters_record::Voter| VoterEntry {
        id: v.voter_id.0,
        directory_id: v.voter_directory_id,
        endpoints: v
            .endpoints
            .iter()
            .map(|e| (e.name.to_string(), e.host.to_string(), e.port))
            .collect(),
    };
    Ok(msg.voters.iter().map(entry).collect())
}

/// KRaftVersionRecord v0 value: version, kraft.version, no tagged fields (5 bytes).
pub fn kraft_version_value(kraft_version: i16) -> Bytes {
    let mut out = BytesMut::with_capacity(5);
    out.extend_from_slice(&0i16.to_be_bytes());
    out.extend_from_slice(&kraft_version.to_be_bytes());
    out.extend_from_slice(&[0]);
    out.freeze()
}

/// SnapshotHeaderRecord v0 value (11 bytes).
pub fn snapshot_header_value(last_contained_log_timestamp: i64) -> Result<Bytes, RaftError> {
    let msg = SnapshotHeaderRecord::default()
        .with_version(0)
        .with_last_contained_log_timestamp(last_contained_log_timestamp);
    encode_message(&msg, "SnapshotHeaderRecord")
}

/// SnapshotFooterRecord v0 value (3 bytes).
pub fn snapshot_footer_value() -> Result<Bytes, RaftError> {
    encode_message(&SnapshotFooterRecord::default(), "SnapshotFooterRecord")
}

/// Decodes one batch (CRC checked).
pub fn decode_batch(batch: &RecordBatch) -> Result<MetadataBatch, RaftError> {
    batch.verify_crc()?;
    let base_offset = batch.base_offset();
    let last_offset = batch.last_offset();
    let epoch = batch.partition_leader_epoch();
    let timestamp = batch.max_timestamp();
    let records = batch.records()?;
    if batch.is_control() {
        let mut types = Vec::with_capacity(records.len());
        for r in &records {
            let key = r.key.as_deref().unwrap_or_default();
            if key.len() < 4 {
                return Err(RaftError::Decode(format!(
                    "control record at offset {} has a {}-byte key",
                    base_offset.saturating_add(i64::from(r.offset_delta)),
                    key.len()
                )));
            }
            types.push(i16::from_be_bytes([key[2], key[3]]));
        }
        return Ok(MetadataBatch::Control {
            base_offset,
            last_offset,
            epoch,
            types,
            timestamp,
        });
    }
    let mut decoded = Vec::with_capacity(records.len());
    for r in &records {
        let offset = base_offset.saturating_add(i64::from(r.offset_delta));
        let value = r.value.as_deref().ok_or_else(|| {
            RaftError::Decode(format!(
                "metadata record at offset {offset} has a null value"
            ))
        })?;
        decoded.push(
            MetadataRecord::decode(value).map_err(|e| {
                RaftError::Decode(format!("metadata record at offset {offset}: {e}"))
            })?,
        );
    }
    Ok(MetadataBatch::Data {
        base_offset,
        last_offset,
        epoch,
        timestamp,
        records: decoded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_values_match_kafka_sizes() {
        assert_eq!(&snapshot_header_value(0).unwrap()[..], &[0u8; 11]);
        assert_eq!(&snapshot_footer_value().unwrap()[..], &[0u8; 3]);
        let change = LeaderChange {
            leader_id: 1,
            voters: vec![1],
            granting_voters: vec![1],
        };
        let v = leader_change_value(&change).unwrap();
        // version, leader id, [voter 1 + tags], [voter 1 + tags], tags
        assert_eq!(
            &v[..],
            &[0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 1, 0, 2, 0, 0, 0, 1, 0, 0]
        );
        assert_eq!(decode_leader_change(v).unwrap(), change);
    }

    #[test]
    fn batches_at_the_end_of_the_offset_range_decode_without_overflow() {
        // Offsets past i64::MAX only appear in corrupt batches; they must be errors or
        // decode, never an overflow panic.
        let recs = vec![MetadataRecord::NoOp; 3];
        let b = data_batch(i64::MAX - 1, 3, 0, &recs).unwrap();
        let _ = decode_batch(&b);
        let value = snapshot_footer_value().unwrap();
        let mut builder = builder(i64::MAX, 2, 0);
        builder.is_control = true;
        builder.push(
            0,
            Some(Bytes::from_static(&[0, 0, 0, 4])),
            Some(value.clone()),
            Vec::new(),
        );
        builder.push(0, Some(Bytes::from_static(&[0])), Some(value), Vec::new());
        assert!(decode_batch(&builder.build().unwrap()).is_err());
    }

    #[test]
    fn leader_change_with_a_huge_voter_count_is_an_error_not_an_abort() {
        // version 0, leader 1, voters: compact count 2^32 - 1 (uvarint), then a few bytes.
        let mut v = vec![0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f];
        v.extend_from_slice(&[0, 0, 0, 1, 0, 0]);
        assert!(decode_leader_change(Bytes::from(v)).is_err());
        // The same count as a granting-voters array after a valid voters array.
        let mut v = vec![0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 1, 0, 0xfe, 0xff, 0xff, 0x7f];
        v.extend_from_slice(&[0, 0, 0, 1, 0, 0]);
        assert!(decode_leader_change(Bytes::from(v)).is_err());
    }

    #[test]
    fn data_and_control_batches_round_trip() {
        let recs = vec![MetadataRecord::NoOp, MetadataRecord::EndTransaction];
        let b = data_batch(10, 3, 1_700_000_000_000, &recs).unwrap();
        assert_eq!(b.partition_leader_epoch(), 3);
        assert_eq!(b.producer_id(), -1);
        assert_eq!(b.base_timestamp(), 1_700_000_000_000);
        assert_eq!(b.max_timestamp(), 1_700_000_000_000);
        assert!(!b.is_control());
        assert_eq!(
            decode_batch(&b).unwrap(),
            MetadataBatch::Data {
                base_offset: 10,
                last_offset: 11,
                epoch: 3,
                timestamp: 1_700_000_000_000,
                records: recs
            }
        );
        let value = snapshot_footer_value().unwrap();
        let c = control_batch(0, 2, 5, CONTROL_SNAPSHOT_FOOTER, value).unwrap();
        assert!(c.is_control());
        let rec = &c.records().unwrap()[0];
        assert_eq!(rec.key.as_deref(), Some(&[0u8, 0, 0, 4][..]));
        assert_eq!(
            decode_batch(&c).unwrap(),
            MetadataBatch::Control {
                base_offset: 0,
                last_offset: 0,
                epoch: 2,
                types: vec![4],
                timestamp: 5
            }
        );
    }
}
