//! RecordBatch v2 (magic 2): the 61-byte header ([`BatchHeader`], an owned editable copy), a
//! zero-copy view of one whole batch over `Bytes` ([`RecordBatch`]), CRC-32C, the splitter for
//! concatenated batches ([`batches`] / [`BatchIter`]) and [`BatchError`], this layer's error type.
//!
//! Layout and rules: formats.md §1. The CRC covers bytes `[21, end)`, so base offset, batch length,
//! partition leader epoch and magic can be rewritten without recomputing it.

use std::fmt;

use bytes::Bytes;

use crate::compression::{self, Compression};
use crate::record::{Record, RecordView};

/// Size of the fixed batch header (`RECORD_BATCH_OVERHEAD`).
pub const BATCH_HEADER_LEN: usize = 61;
/// baseOffset + batchLength prefix that precedes every batch (`LOG_OVERHEAD`).
pub const LOG_OVERHEAD: usize = 12;
/// The only batch format we handle.
pub const MAGIC_V2: i8 = 2;
/// Smallest legal `batch_length` (header without the 12-byte prefix, no records).
pub const MIN_BATCH_LENGTH: i32 = (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32;
/// Producer id of a batch without one.
pub const NO_PRODUCER_ID: i64 = -1;
/// Producer epoch of a batch without one.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// Base sequence of a batch without one.
pub const NO_SEQUENCE: i32 = -1;
/// Partition leader epoch not yet assigned.
pub const NO_PARTITION_LEADER_EPOCH: i32 = -1;
/// Timestamp "none" (also the base timestamp of an empty batch).
pub const NO_TIMESTAMP: i64 = -1;

/// Offset where the CRC-covered region starts (the attributes field).
pub const CRC_START: usize = 21;

const OFF_BASE_OFFSET: usize = 0;
const OFF_LENGTH: usize = 8;
const OFF_LEADER_EPOCH: usize = 12;
const OFF_MAGIC: usize = 16;
const OFF_CRC: usize = 17;
const OFF_ATTRIBUTES: usize = 21;
const OFF_LAST_OFFSET_DELTA: usize = 23;
const OFF_BASE_TIMESTAMP: usize = 27;
const OFF_MAX_TIMESTAMP: usize = 35;
const OFF_PRODUCER_ID: usize = 43;
const OFF_PRODUCER_EPOCH: usize = 51;
const OFF_BASE_SEQUENCE: usize = 53;
const OFF_RECORD_COUNT: usize = 57;

const ATTR_TIMESTAMP_TYPE: i16 = 0x08;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;
const ATTR_DELETE_HORIZON: i16 = 0x40;

/// Errors of the record-batch layer. The broker maps them to Kafka codes at the edge:
/// [`BatchError::is_corrupt_message`] ones to CORRUPT_MESSAGE, `InvalidRecord` to INVALID_RECORD.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Fewer bytes than a header or a field needs.
    #[error("record batch truncated: not enough bytes for its header or declared length")]
    Truncated,
    /// CRC-32C over `[21, end)` does not match the header's CRC.
    #[error(
        "record batch CRC mismatch: header says {expected:#010x}, bytes hash to {actual:#010x}"
    )]
    CorruptCrc {
        /// CRC stored in the header.
        expected: u32,
        /// CRC computed over the bytes.
        actual: u32,
    },
    /// `batch_length` below 49 or not matching the bytes given.
    #[error(
        "invalid record batch length {0} (minimum {MIN_BATCH_LENGTH}, or not matching the buffer)"
    )]
    InvalidBatchLength(i32),
    /// Magic other than 2.
    #[error("unsupported record batch magic {0} (only magic 2 is supported)")]
    UnsupportedMagic(i8),
    /// Compression bits 5, 6 or 7.
    #[error("unknown compression codec id {0}")]
    UnknownCompression(i16),
    /// A malformed record inside an otherwise well-framed batch (also: record count mismatch).
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// The codec failed to decode the batch payload.
    #[error("cannot decompress {codec} record batch payload: {reason}")]
    Decompression {
        /// The codec named by the batch.
        codec: Compression,
        /// What the decoder reported.
        reason: String,
    },
    /// The decompressed payload would exceed the caller's limit (decompression-bomb guard).
    #[error("{codec} record batch payload decompresses to more than {limit} bytes")]
    DecompressedTooLarge {
        /// The codec named by the batch.
        codec: Compression,
        /// The limit that was hit.
        limit: usize,
    },
    /// The encoder failed (should not happen for in-memory buffers).
    #[error("cannot compress record batch payload with {codec}: {reason}")]
    CompressionFailed {
        /// The codec requested.
        codec: Compression,
        /// What the encoder reported.
        reason: String,
    },
    /// A batch being built does not fit the format (e.g. more than `i32::MAX` bytes).
    #[error("record batch too large: {0}")]
    TooLarge(String),
}

impl BatchError {
    /// True for framing/integrity failures Kafka reports as CORRUPT_MESSAGE (bad CRC, bad length,
    /// bad magic, truncation, undecodable compressed payload).
    pub fn is_corrupt_message(&self) -> bool {
        matches!(
            self,
            BatchError::Truncated
                | BatchError::CorruptCrc { .. }
                | BatchError::InvalidBatchLength(_)
                | BatchError::UnsupportedMagic(_)
                | BatchError::Decompression { .. }
        )
    }
}

/// How record timestamps of a batch are to be read (attribute bit 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// Producer-supplied timestamps.
    #[default]
    CreateTime,
    /// Broker append time, stored in `max_timestamp`.
    LogAppendTime,
}

fn get_i8(b: &[u8], off: usize) -> i8 {
    b[off] as i8
}
fn get_i16(b: &[u8], off: usize) -> i16 {
    i16::from_be_bytes([b[off], b[off + 1]])
}
fn get_i32(b: &[u8], off: usize) -> i32 {
    i32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}
fn get_i64(b: &[u8], off: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    i64::from_be_bytes(a)
}

/// `sequence + increment` with Kafka's wrap rule (past `i32::MAX` it continues at 0).
pub fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    // Java int arithmetic: wrapping, so garbage headers cannot cause an overflow panic.
    if sequence > i32::MAX.wrapping_sub(increment) {
        increment
            .wrapping_sub(i32::MAX.wrapping_sub(sequence))
            .wrapping_sub(1)
    } else {
        sequence.wrapping_add(increment)
    }
}

/// Generates the read-only header accessors over `self.hb()`, a slice of at least 61 bytes.
macro_rules! header_getters {
    () => {
        /// Absolute offset of the first record (not covered by the CRC).
        pub fn base_offset(&self) -> i64 {
            get_i64(self.hb(), OFF_BASE_OFFSET)
        }
        /// Bytes after the 12-byte prefix (total size − 12).
        pub fn batch_length(&self) -> i32 {
            get_i32(self.hb(), OFF_LENGTH)
        }
        /// Leader epoch stamped by the broker (not covered by the CRC).
        pub fn partition_leader_epoch(&self) -> i32 {
            get_i32(self.hb(), OFF_LEADER_EPOCH)
        }
        /// Format version byte.
        pub fn magic(&self) -> i8 {
            get_i8(self.hb(), OFF_MAGIC)
        }
        /// Stored CRC-32C.
        pub fn crc(&self) -> u32 {
            get_i32(self.hb(), OFF_CRC) as u32
        }
        /// Raw attributes field.
        pub fn attributes(&self) -> i16 {
            get_i16(self.hb(), OFF_ATTRIBUTES)
        }
        /// Codec of the records payload.
        pub fn compression(&self) -> Result<Compression, BatchError> {
            Compression::from_attributes(self.attributes())
        }
        /// CreateTime or LogAppendTime (attribute bit 3).
        pub fn timestamp_type(&self) -> TimestampType {
            if self.attributes() & ATTR_TIMESTAMP_TYPE != 0 {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            }
        }
        /// Attribute bit 4.
        pub fn is_transactional(&self) -> bool {
            self.attributes() & ATTR_TRANSACTIONAL != 0
        }
        /// Attribute bit 5 (control batch: transaction markers, KRaft control records).
        pub fn is_control(&self) -> bool {
            self.attributes() & ATTR_CONTROL != 0
        }
        /// Attribute bit 6: `base_timestamp` holds the compaction delete horizon.
        pub fn has_delete_horizon(&self) -> bool {
            self.attributes() & ATTR_DELETE_HORIZON != 0
        }
        /// The delete horizon, when attribute bit 6 is set.
        pub fn delete_horizon_ms(&self) -> Option<i64> {
            self.has_delete_horizon().then(|| self.base_timestamp())
        }
        /// `last_offset − base_offset`.
        pub fn last_offset_delta(&self) -> i32 {
            get_i32(self.hb(), OFF_LAST_OFFSET_DELTA)
        }
        /// Timestamp the record deltas are relative to (or the delete horizon).
        pub fn base_timestamp(&self) -> i64 {
            get_i64(self.hb(), OFF_BASE_TIMESTAMP)
        }
        /// Largest record timestamp, or the append time for LogAppendTime batches.
        pub fn max_timestamp(&self) -> i64 {
            get_i64(self.hb(), OFF_MAX_TIMESTAMP)
        }
        /// Producer id, −1 if none.
        pub fn producer_id(&self) -> i64 {
            get_i64(self.hb(), OFF_PRODUCER_ID)
        }
        /// True iff `producer_id() > -1`.
        pub fn has_producer_id(&self) -> bool {
            self.producer_id() > NO_PRODUCER_ID
        }
        /// Producer epoch, −1 if none.
        pub fn producer_epoch(&self) -> i16 {
            get_i16(self.hb(), OFF_PRODUCER_EPOCH)
        }
        /// Sequence of the first record, −1 if none.
        pub fn base_sequence(&self) -> i32 {
            get_i32(self.hb(), OFF_BASE_SEQUENCE)
        }
        /// Sequence of the last record (`base_sequence + last_offset_delta`, wrapping past
        /// `i32::MAX` to 0), or −1 when the batch has no sequence.
        pub fn last_sequence(&self) -> i32 {
            let base = self.base_sequence();
            if base == NO_SEQUENCE {
                NO_SEQUENCE
            } else {
                increment_sequence(base, self.last_offset_delta())
            }
        }
        /// Declared number of records.
        pub fn record_count(&self) -> i32 {
            get_i32(self.hb(), OFF_RECORD_COUNT)
        }
        /// Offset of the last record (`base_offset + last_offset_delta`).
        pub fn last_offset(&self) -> i64 {
            self.base_offset()
                .wrapping_add(i64::from(self.last_offset_delta()))
        }
        /// Offset following this batch.
        pub fn next_offset(&self) -> i64 {
            self.last_offset().wrapping_add(1)
        }
        /// Whole batch size in bytes, `12 + batch_length` (a negative length counts as 0).
        pub fn size(&self) -> usize {
            LOG_OVERHEAD + usize::try_from(self.batch_length()).unwrap_or(0)
        }
    };
}

/// Owned, editable copy of a batch's first 61 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader([u8; BATCH_HEADER_LEN]);

impl BatchHeader {
    /// Copies the first 61 bytes of `b` (no validation beyond length).
    pub fn from_slice(b: &[u8]) -> Result<Self, BatchError> {
        let head = b
            .first_chunk::<BATCH_HEADER_LEN>()
            .ok_or(BatchError::Truncated)?;
        Ok(BatchHeader(*head))
    }

    /// The raw 61 bytes.
    pub fn as_bytes(&self) -> &[u8; BATCH_HEADER_LEN] {
        &self.0
    }

    fn hb(&self) -> &[u8] {
        &self.0
    }

    header_getters!();

    fn put_i16(&mut self, off: usize, v: i16) {
        self.0[off..off + 2].copy_from_slice(&v.to_be_bytes());
    }
    fn put_i32(&mut self, off: usize, v: i32) {
        self.0[off..off + 4].copy_from_slice(&v.to_be_bytes());
    }
    fn put_i64(&mut self, off: usize, v: i64) {
        self.0[off..off + 8].copy_from_slice(&v.to_be_bytes());
    }
    fn set_attr_bit(&mut self, mask: i16, on: bool) {
        let a = self.attributes();
        self.set_attributes(if on { a | mask } else { a & !mask });
    }

    /// Sets the base offset (outside the CRC).
    pub fn set_base_offset(&mut self, v: i64) {
        self.put_i64(OFF_BASE_OFFSET, v);
    }
    /// Sets `batch_length` (outside the CRC).
    pub fn set_batch_length(&mut self, v: i32) {
        self.put_i32(OFF_LENGTH, v);
    }
    /// Sets the partition leader epoch (outside the CRC).
    pub fn set_partition_leader_epoch(&mut self, v: i32) {
        self.put_i32(OFF_LEADER_EPOCH, v);
    }
    /// Sets the magic byte (outside the CRC).
    pub fn set_magic(&mut self, v: i8) {
        self.0[OFF_MAGIC] = v as u8;
    }
    /// Sets the whole attributes field (CRC-covered).
    pub fn set_attributes(&mut self, v: i16) {
        self.put_i16(OFF_ATTRIBUTES, v);
    }
    /// Sets the codec bits (CRC-covered; the body must match).
    pub fn set_compression(&mut self, c: Compression) {
        let a = self.attributes() & !compression::COMPRESSION_MASK;
        self.set_attributes(a | c.id());
    }
    /// Sets attribute bit 3 (CRC-covered).
    pub fn set_timestamp_type(&mut self, t: TimestampType) {
        self.set_attr_bit(ATTR_TIMESTAMP_TYPE, t == TimestampType::LogAppendTime);
    }
    /// Sets attribute bit 4 (CRC-covered).
    pub fn set_transactional(&mut self, on: bool) {
        self.set_attr_bit(ATTR_TRANSACTIONAL, on);
    }
    /// Sets attribute bit 5 (CRC-covered).
    pub fn set_control(&mut self, on: bool) {
        self.set_attr_bit(ATTR_CONTROL, on);
    }
    /// With `Some(ms)`, sets bit 6 and stores `ms` as base timestamp; `None` clears bit 6 only.
    pub fn set_delete_horizon(&mut self, horizon: Option<i64>) {
        self.set_attr_bit(ATTR_DELETE_HORIZON, horizon.is_some());
        if let Some(ms) = horizon {
            self.set_base_timestamp(ms);
        }
    }
    /// Sets `last_offset_delta` (CRC-covered).
    pub fn set_last_offset_delta(&mut self, v: i32) {
        self.put_i32(OFF_LAST_OFFSET_DELTA, v);
    }
    /// Sets the base timestamp (CRC-covered).
    pub fn set_base_timestamp(&mut self, v: i64) {
        self.put_i64(OFF_BASE_TIMESTAMP, v);
    }
    /// Sets the max timestamp (CRC-covered).
    pub fn set_max_timestamp(&mut self, v: i64) {
        self.put_i64(OFF_MAX_TIMESTAMP, v);
    }
    /// Sets producer id, epoch and base sequence (CRC-covered).
    pub fn set_producer(&mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) {
        self.put_i64(OFF_PRODUCER_ID, producer_id);
        self.put_i16(OFF_PRODUCER_EPOCH, producer_epoch);
        self.put_i32(OFF_BASE_SEQUENCE, base_sequence);
    }
    /// Sets the record count (CRC-covered).
    pub fn set_record_count(&mut self, v: i32) {
        self.put_i32(OFF_RECORD_COUNT, v);
    }

    /// CRC-32C over `header[21..61] ++ body`, i.e. what [`BatchHeader::crc`] should hold for a
    /// batch made of this header and `body`.
    pub fn compute_crc(&self, body: &[u8]) -> u32 {
        crc32c::crc32c_append(crc32c::crc32c(&self.0[CRC_START..]), body)
    }

    /// Stores `crc` in the CRC field.
    pub fn set_crc(&mut self, crc: u32) {
        self.put_i32(OFF_CRC, crc as i32);
    }
}

impl Default for BatchHeader {
    /// A zeroed header with magic 2, `batch_length` 49, no producer, leader epoch −1.
    fn default() -> Self {
        let mut h = BatchHeader([0u8; BATCH_HEADER_LEN]);
        h.set_batch_length(MIN_BATCH_LENGTH);
        h.set_partition_leader_epoch(NO_PARTITION_LEADER_EPOCH);
        h.set_magic(MAGIC_V2);
        h.set_base_timestamp(NO_TIMESTAMP);
        h.set_max_timestamp(NO_TIMESTAMP);
        h.set_producer(NO_PRODUCER_ID, NO_PRODUCER_EPOCH, NO_SEQUENCE);
        h
    }
}

/// Writes the header fields as a struct literal (shared by both Debug impls).
fn debug_header(name: &str, h: &BatchHeader, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_struct(name)
        .field("base_offset", &h.base_offset())
        .field("batch_length", &h.batch_length())
        .field("partition_leader_epoch", &h.partition_leader_epoch())
        .field("magic", &h.magic())
        .field("crc", &format_args!("{:#010x}", h.crc()))
        .field("attributes", &format_args!("{:#06x}", h.attributes()))
        .field("last_offset_delta", &h.last_offset_delta())
        .field("base_timestamp", &h.base_timestamp())
        .field("max_timestamp", &h.max_timestamp())
        .field("producer_id", &h.producer_id())
        .field("producer_epoch", &h.producer_epoch())
        .field("base_sequence", &h.base_sequence())
        .field("record_count", &h.record_count())
        .finish()
}

impl fmt::Debug for BatchHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_header("BatchHeader", self, f)
    }
}

/// One complete v2 batch: a zero-copy view over `Bytes` (header getters read the bytes directly).
#[derive(Clone, PartialEq, Eq)]
pub struct RecordBatch {
    bytes: Bytes,
}

impl fmt::Debug for RecordBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_header("RecordBatch", &self.header(), f)
    }
}

/// Checks the framing of a buffer that must hold exactly one v2 batch.
fn check_frame(b: &[u8]) -> Result<(), BatchError> {
    if b.len() < LOG_OVERHEAD {
        return Err(BatchError::Truncated);
    }
    let len = get_i32(b, OFF_LENGTH);
    if len < MIN_BATCH_LENGTH {
        return Err(BatchError::InvalidBatchLength(len));
    }
    let size = LOG_OVERHEAD as u64 + len as u64;
    if (b.len() as u64) < size {
        return Err(BatchError::Truncated);
    }
    if b.len() as u64 > size {
        return Err(BatchError::InvalidBatchLength(len));
    }
    let magic = get_i8(b, OFF_MAGIC);
    if magic != MAGIC_V2 {
        return Err(BatchError::UnsupportedMagic(magic));
    }
    Ok(())
}

impl RecordBatch {
    /// Wraps `bytes`, which must be exactly one batch: `len ≥ 61`, `batch_length ≥ 49`,
    /// `12 + batch_length == len`, magic 2. The CRC is not checked here ([`Self::verify_crc`]).
    pub fn new(bytes: Bytes) -> Result<Self, BatchError> {
        check_frame(&bytes)?;
        Ok(RecordBatch { bytes })
    }

    /// Wraps bytes this crate framed itself (one whole v2 batch by construction); no checks.
    pub(crate) fn from_own_frame(bytes: Bytes) -> Self {
        debug_assert!(check_frame(&bytes).is_ok());
        RecordBatch { bytes }
    }

    /// Builds a batch from a header and a body (one copy). The header's `batch_length` is set to
    /// match the body; the CRC is left as given (call [`BatchHeader::set_crc`] first if needed).
    pub fn from_parts(header: &BatchHeader, body: &[u8]) -> Result<Self, BatchError> {
        let len = i32::try_from(BATCH_HEADER_LEN - LOG_OVERHEAD + body.len())
            .map_err(|_| BatchError::TooLarge(format!("body of {} bytes", body.len())))?;
        let mut h = *header;
        h.set_batch_length(len);
        let mut v = Vec::with_capacity(BATCH_HEADER_LEN + body.len());
        v.extend_from_slice(h.as_bytes());
        v.extend_from_slice(body);
        RecordBatch::new(Bytes::from(v))
    }

    /// Same body with a different header (one copy; `batch_length` kept consistent).
    pub fn with_header(&self, header: &BatchHeader) -> Result<Self, BatchError> {
        RecordBatch::from_parts(header, &self.bytes[BATCH_HEADER_LEN..])
    }

    fn hb(&self) -> &[u8] {
        &self.bytes
    }

    header_getters!();

    /// Owned copy of the 61-byte header.
    pub fn header(&self) -> BatchHeader {
        let mut h = [0u8; BATCH_HEADER_LEN];
        h.copy_from_slice(&self.bytes[..BATCH_HEADER_LEN]);
        BatchHeader(h)
    }

    /// Bytes after the header (records, possibly compressed), zero-copy.
    pub fn body(&self) -> Bytes {
        self.bytes.slice(BATCH_HEADER_LEN..)
    }

    /// The whole batch.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The whole batch, consuming the view.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// CRC-32C computed over `[21, end)`.
    pub fn compute_crc(&self) -> u32 {
        crc32c::crc32c(&self.bytes[CRC_START..])
    }

    /// Checks the stored CRC against the bytes.
    pub fn verify_crc(&self) -> Result<(), BatchError> {
        let actual = self.compute_crc();
        let expected = self.crc();
        if actual != expected {
            return Err(BatchError::CorruptCrc { expected, actual });
        }
        Ok(())
    }

    /// The effective timestamp of `record` in this batch: `max_timestamp` for LogAppendTime
    /// batches, else `base_timestamp + timestamp_delta`.
    pub fn record_timestamp(&self, record: &Record) -> i64 {
        self.timestamp_for_delta(record.timestamp_delta)
    }

    /// [`Self::record_timestamp`] for a [`RecordView`].
    pub fn record_view_timestamp(&self, record: &RecordView<'_>) -> i64 {
        self.timestamp_for_delta(record.timestamp_delta)
    }

    /// The effective timestamp of a record with `timestamp_delta` in this batch: `max_timestamp`
    /// for LogAppendTime batches, else `base_timestamp + timestamp_delta` (wrapping).
    pub fn timestamp_for_delta(&self, timestamp_delta: i64) -> i64 {
        match self.timestamp_type() {
            TimestampType::LogAppendTime => self.max_timestamp(),
            TimestampType::CreateTime => self.base_timestamp().wrapping_add(timestamp_delta),
        }
    }

    /// The records payload, decompressed if needed (zero-copy when uncompressed).
    pub fn records_payload(&self, max_decompressed: usize) -> Result<Bytes, BatchError> {
        match self.compression()? {
            Compression::None => Ok(self.body()),
            codec => Ok(Bytes::from(compression::decompress_limited(
                codec,
                &self.bytes[BATCH_HEADER_LEN..],
                max_decompressed,
            )?)),
        }
    }

    /// All records, validated (see [`Self::for_each_record`]); payload capped at
    /// [`compression::DEFAULT_MAX_DECOMPRESSED`].
    pub fn records(&self) -> Result<Vec<Record>, BatchError> {
        self.records_limited(compression::DEFAULT_MAX_DECOMPRESSED)
    }

    /// [`Self::records`] with an explicit decompressed-size limit.
    pub fn records_limited(&self, max_decompressed: usize) -> Result<Vec<Record>, BatchError> {
        let payload = self.records_payload(max_decompressed)?;
        let count = self.checked_record_count()?;
        // Each record takes at least 7 bytes, so never trust `count` for the allocation.
        let mut out = Vec::with_capacity(count.min(payload.len() / 7));
        crate::record::for_each_in_payload(&payload, count, |r| {
            out.push(r.clone());
            Ok(())
        })?;
        Ok(out)
    }

    /// Calls `f` on every record without collecting them. Uncompressed batches are parsed in place
    /// (key/value/header slices share the batch's buffer); compressed ones are decompressed once.
    /// The `&Record` is reused between calls. Validates: record count matches `record_count()`,
    /// each record consumes exactly its declared length, header count ≥ 0, header keys are UTF-8,
    /// no bytes after the last record. Stops at the first error from parsing or from `f`.
    pub fn for_each_record(
        &self,
        f: impl FnMut(&Record) -> Result<(), BatchError>,
    ) -> Result<(), BatchError> {
        self.for_each_record_limited(compression::DEFAULT_MAX_DECOMPRESSED, f)
    }

    /// [`Self::for_each_record`] with an explicit decompressed-size limit.
    pub fn for_each_record_limited(
        &self,
        max_decompressed: usize,
        f: impl FnMut(&Record) -> Result<(), BatchError>,
    ) -> Result<(), BatchError> {
        let payload = self.records_payload(max_decompressed)?;
        let count = self.checked_record_count()?;
        crate::record::for_each_in_payload(&payload, count, f)
    }

    /// [`Self::for_each_record`] with borrowed [`RecordView`]s: the same validation and errors,
    /// without `Bytes` refcounting per field or header (the cheap walk for validation). Uncompressed
    /// batches are walked in place; compressed ones are decompressed once.
    pub fn for_each_record_view(
        &self,
        f: impl FnMut(&RecordView<'_>) -> Result<(), BatchError>,
    ) -> Result<(), BatchError> {
        self.for_each_record_view_limited(compression::DEFAULT_MAX_DECOMPRESSED, f)
    }

    /// [`Self::for_each_record_view`] with an explicit decompressed-size limit.
    pub fn for_each_record_view_limited(
        &self,
        max_decompressed: usize,
        f: impl FnMut(&RecordView<'_>) -> Result<(), BatchError>,
    ) -> Result<(), BatchError> {
        let body = &self.bytes[BATCH_HEADER_LEN..];
        let decompressed;
        let payload = match self.compression()? {
            Compression::None => body,
            codec => {
                decompressed = compression::decompress_limited(codec, body, max_decompressed)?;
                &decompressed[..]
            }
        };
        let count = self.checked_record_count()?;
        crate::record::for_each_view_in_payload(payload, count, f)
    }

    /// Largest effective record timestamp (−1 for an empty batch). For LogAppendTime batches this
    /// is `max_timestamp()`.
    pub fn max_record_timestamp(&self) -> Result<i64, BatchError> {
        let mut max = NO_TIMESTAMP;
        self.for_each_record_view(|r| {
            max = max.max(self.record_view_timestamp(r));
            Ok(())
        })?;
        Ok(max)
    }

    fn checked_record_count(&self) -> Result<usize, BatchError> {
        let n = self.record_count();
        usize::try_from(n)
            .map_err(|_| BatchError::InvalidRecord(format!("negative record count {n}")))
    }
}

/// Splits concatenated batches (a produce payload or a segment read) into zero-copy views.
///
/// A truncated final batch (fewer than 12 bytes, or fewer bytes than its declared size) ends the
/// iteration silently and [`BatchIter::truncated_tail`] reports its byte count. A `batch_length`
/// below 49 or a magic other than 2 yields one `Err`, after which the iterator ends. CRCs and
/// records are not checked here (see [`RecordBatch::verify_crc`], [`RecordBatch::for_each_record`]).
#[derive(Debug, Clone)]
pub struct BatchIter {
    buf: Bytes,
    pos: usize,
    truncated_tail: usize,
    done: bool,
}

/// Iterates the batches in `buf`; see [`BatchIter`].
pub fn batches(buf: Bytes) -> BatchIter {
    BatchIter {
        buf,
        pos: 0,
        truncated_tail: 0,
        done: false,
    }
}

impl BatchIter {
    /// Bytes of an incomplete trailing batch that ended the iteration (0 if none, or not yet).
    pub fn truncated_tail(&self) -> usize {
        self.truncated_tail
    }

    /// Offset in the input of the next unread batch (after an `Err`, the start of the bad batch).
    pub fn position(&self) -> usize {
        self.pos
    }

    fn next_batch(&mut self) -> Option<Result<RecordBatch, BatchError>> {
        let rest = &self.buf[self.pos..];
        if rest.is_empty() {
            return None;
        }
        if rest.len() < LOG_OVERHEAD {
            self.truncated_tail = rest.len();
            return None;
        }
        let len = get_i32(rest, OFF_LENGTH);
        if len < MIN_BATCH_LENGTH {
            return Some(Err(BatchError::InvalidBatchLength(len)));
        }
        let size = LOG_OVERHEAD as u64 + len as u64;
        if (rest.len() as u64) < size {
            self.truncated_tail = rest.len();
            return None;
        }
        // size ≤ rest.len() ≤ usize::MAX here.
        let size = size as usize;
        let magic = get_i8(rest, OFF_MAGIC);
        if magic != MAGIC_V2 {
            return Some(Err(BatchError::UnsupportedMagic(magic)));
        }
        let bytes = self.buf.slice(self.pos..self.pos + size);
        self.pos += size;
        Some(Ok(RecordBatch { bytes }))
    }
}

impl Iterator for BatchIter {
    type Item = Result<RecordBatch, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.next_batch();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

impl std::iter::FusedIterator for BatchIter {}

#[cfg(test)]
#[path = "record_batch_test.rs"]
mod tests;
