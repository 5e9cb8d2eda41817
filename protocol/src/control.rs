//! Control records (formats.md §1.4): the transaction marker batch the broker writes for
//! WriteTxnMarkers ([`end_txn_marker`]) and the parse of a control batch's first record
//! ([`ControlRecord`], [`control_record_type`]), which the log uses to tell COMMIT from ABORT.
//!
//! A control record's key is `int16 version + int16 type`; an ABORT/COMMIT value is
//! `int16 version + int32 coordinatorEpoch` (other types carry KRaft payloads this module does not
//! interpret). Re-exported from [`crate::record`].

use bytes::{BufMut, Bytes, BytesMut};

use crate::record::for_each_view_in_payload;
use crate::record_batch::{BatchError, BatchHeader, RecordBatch, BATCH_HEADER_LEN, NO_SEQUENCE};

/// Control type of an ABORT marker.
pub const CONTROL_TYPE_ABORT: i16 = 0;
/// Control type of a COMMIT marker.
pub const CONTROL_TYPE_COMMIT: i16 = 1;

/// Size of an end-transaction marker record (length prefix included).
const MARKER_RECORD_LEN: usize = 17;

/// The first record of a control batch, as far as the log needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlRecord {
    /// Key version (≥ 0).
    pub version: i16,
    /// Control type: [`CONTROL_TYPE_ABORT`], [`CONTROL_TYPE_COMMIT`], or a KRaft type (2–6).
    pub record_type: i16,
    /// For ABORT/COMMIT: the value's coordinator epoch (`None` if the value is shorter than the
    /// 6 bytes Kafka requires); `None` for other types.
    pub coordinator_epoch: Option<i32>,
}

impl ControlRecord {
    /// True for an ABORT or COMMIT marker with a readable coordinator epoch.
    pub fn is_end_txn_marker(&self) -> bool {
        self.coordinator_epoch.is_some()
    }

    /// True for a COMMIT marker.
    pub fn is_commit(&self) -> bool {
        self.record_type == CONTROL_TYPE_COMMIT
    }

    /// True for an ABORT marker.
    pub fn is_abort(&self) -> bool {
        self.record_type == CONTROL_TYPE_ABORT
    }
}

/// Kafka's end-transaction marker batch (what `MemoryRecords.withEndTransactionMarker` builds):
/// magic 2, no compression, CreateTime, attributes 0x30 (transactional + control), base offset 0,
/// leader epoch −1, base sequence −1, base and max timestamp `timestamp`, one record with key
/// `(version 0, type 0 ABORT | 1 COMMIT)` and value `(version 0, coordinator_epoch)`; 78 bytes.
/// The log assigns the offset and leader epoch when it appends it
/// (`AppendOrigin::Coordinator`).
pub fn end_txn_marker(
    producer_id: i64,
    producer_epoch: i16,
    coordinator_epoch: i32,
    commit: bool,
    timestamp: i64,
) -> RecordBatch {
    let control_type = if commit {
        CONTROL_TYPE_COMMIT
    } else {
        CONTROL_TYPE_ABORT
    };
    let mut body = BytesMut::with_capacity(MARKER_RECORD_LEN);
    // length 16 (zigzag 0x20), attributes, timestamp delta 0, offset delta 0.
    body.put_slice(&[0x20, 0x00, 0x00, 0x00]);
    body.put_u8(0x08); // key length 4
    body.put_i16(0);
    body.put_i16(control_type);
    body.put_u8(0x0C); // value length 6
    body.put_i16(0);
    body.put_i32(coordinator_epoch);
    body.put_u8(0x00); // no headers
    let mut h = BatchHeader::default();
    h.set_batch_length((BATCH_HEADER_LEN - crate::record_batch::LOG_OVERHEAD + body.len()) as i32);
    h.set_transactional(true);
    h.set_control(true);
    h.set_last_offset_delta(0);
    h.set_base_timestamp(timestamp);
    h.set_max_timestamp(timestamp);
    h.set_producer(producer_id, producer_epoch, NO_SEQUENCE);
    h.set_record_count(1);
    h.set_crc(h.compute_crc(&body));
    let mut out = BytesMut::with_capacity(BATCH_HEADER_LEN + body.len());
    out.put_slice(h.as_bytes());
    out.put_slice(&body);
    RecordBatch::from_own_frame(out.freeze())
}

/// Parses the control record of `batch` (its first record). `Ok(None)` when the batch is not a
/// control batch or has no record (an emptied marker after compaction); an error when the first
/// record cannot be read or its key is shorter than 4 bytes or has a negative version.
pub fn control_record(batch: &RecordBatch) -> Result<Option<ControlRecord>, BatchError> {
    if !batch.is_control() || batch.record_count() <= 0 {
        return Ok(None);
    }
    let payload: Bytes = batch.records_payload(crate::compression::DEFAULT_MAX_DECOMPRESSED)?;
    let mut parsed: Option<Result<ControlRecord, BatchError>> = None;
    let count = usize::try_from(batch.record_count()).unwrap_or(0);
    for_each_view_in_payload(&payload, count, |r| {
        if parsed.is_none() {
            parsed = Some(parse_control(r.key, r.value));
        }
        Ok(())
    })?;
    parsed.transpose()
}

/// `(type, coordinator epoch)` of a control batch's record, `None` for a data batch, an empty
/// control batch or an unreadable one (see [`control_record`]).
pub fn control_record_type(batch: &RecordBatch) -> Option<(i16, Option<i32>)> {
    control_record(batch)
        .ok()
        .flatten()
        .map(|c| (c.record_type, c.coordinator_epoch))
}

fn parse_control(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<ControlRecord, BatchError> {
    let key = key.unwrap_or_default();
    if key.len() < 4 {
        return Err(BatchError::InvalidRecord(format!(
            "control record key of {} bytes, expected at least 4",
            key.len()
        )));
    }
    let version = i16::from_be_bytes([key[0], key[1]]);
    if version < 0 {
        return Err(BatchError::InvalidRecord(format!(
            "control record key version {version}"
        )));
    }
    let record_type = i16::from_be_bytes([key[2], key[3]]);
    let coordinator_epoch = match value {
        Some(v) if v.len() >= 6 && (record_type == 0 || record_type == 1) => {
            Some(i32::from_be_bytes([v[2], v[3], v[4], v[5]]))
        }
        _ => None,
    };
    Ok(ControlRecord {
        version,
        record_type,
        coordinator_epoch,
    })
}

#[cfg(test)]
#[path = "control_test.rs"]
mod tests;
