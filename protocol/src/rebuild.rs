//! Broker-side rebuild of a client batch (Kafka's LogValidator path that cannot assign offsets in
//! place): [`must_rebuild`] says when a batch has to be rewritten, [`rebuild`] decodes its records
//! and re-encodes them as one new batch with the target codec.
//!
//! The rebuilt batch is what Kafka's `MemoryRecordsBuilder` writes for that case: producer id,
//! epoch, base sequence and the transactional bit are kept; offset deltas become 0, 1, 2, …;
//! record attributes become 0; each record keeps its timestamp (deltas are taken from the first
//! record's timestamp). For CreateTime the max timestamp is the largest record timestamp; for
//! LogAppendTime both the base and the max timestamp are the append time. Base offset 0 and
//! leader epoch −1 are left for the log to stamp (outside the CRC); the CRC is computed.

use bytes::Bytes;

use crate::compression::Compression;
use crate::record::{for_each_in_payload, BatchBuilder, Record};
use crate::record_batch::{BatchError, RecordBatch, TimestampType, NO_TIMESTAMP};

/// What a rebuilt batch is written as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RebuildTarget {
    /// Codec of the new batch.
    pub compression: Compression,
    /// Codec level (`None`: the codec's default).
    pub level: Option<i32>,
    /// The topic's `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// Base and max timestamp of a LogAppendTime batch (unused for CreateTime).
    pub log_append_time: i64,
}

/// Kafka's rule: a client batch keeps its bytes (offsets assigned in the header only) when its
/// codec is the target codec and, for a compressed batch, its records' offset deltas are
/// 0, 1, 2, … (`sequential_offsets`); otherwise it is rebuilt. Uncompressed batches written
/// uncompressed are never rebuilt.
pub fn must_rebuild(source: Compression, target: Compression, sequential_offsets: bool) -> bool {
    if source != target {
        return true;
    }
    source != Compression::None && !sequential_offsets
}

/// Re-encodes `batch` (already validated) as a new batch written as `target` says (module docs).
/// `payload` is its records payload, decompressed ([`RecordBatch::records_payload`]), so a
/// caller that validated it does not decompress twice. Errors when the payload does not hold
/// the declared records, or the encoder fails.
pub fn rebuild(
    batch: &RecordBatch,
    payload: &Bytes,
    target: &RebuildTarget,
) -> Result<RecordBatch, BatchError> {
    let declared = batch.record_count();
    let count = usize::try_from(declared)
        .map_err(|_| BatchError::InvalidRecord(format!("negative record count {declared}")))?;
    // Each record takes at least 7 bytes, so never trust `count` for the allocation.
    let mut records: Vec<Record> = Vec::with_capacity(count.min(payload.len() / 7));
    let mut first_ts: Option<i64> = None;
    for_each_in_payload(payload, count, |r| {
        let ts = batch.record_timestamp(r);
        let base = *first_ts.get_or_insert(ts);
        let offset_delta = i32::try_from(records.len())
            .map_err(|_| BatchError::TooLarge(format!("{} records", records.len())))?;
        records.push(Record {
            attributes: 0,
            timestamp_delta: ts.wrapping_sub(base),
            offset_delta,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r.headers.clone(),
        });
        Ok(())
    })?;
    let mut b = BatchBuilder::new(first_ts.unwrap_or(NO_TIMESTAMP));
    b.compression = target.compression;
    b.compression_level = target.level;
    b.timestamp_type = target.timestamp_type;
    if target.timestamp_type == TimestampType::LogAppendTime {
        b.base_timestamp = target.log_append_time;
        b.max_timestamp = Some(target.log_append_time);
    }
    b.producer_id = batch.producer_id();
    b.producer_epoch = batch.producer_epoch();
    b.base_sequence = batch.base_sequence();
    b.is_transactional = batch.is_transactional();
    for r in records {
        b.push_record(r);
    }
    b.build()
}

#[cfg(test)]
#[path = "rebuild_test.rs"]
mod tests;
