//! One v2 record ([`Record`], with ordered, possibly duplicate [`Header`]s): its varint encoding
//! and zero-copy decoding, the validated walk over a batch's records payload (as `Bytes`-backed
//! [`Record`]s, or as borrowed [`RecordView`]s for validation without refcounting), and
//! [`BatchBuilder`], which assembles a complete v2 batch (tests, metadata/control batches,
//! compaction).
//!
//! Both walks share one field parser (`SliceCursor`, which yields byte ranges), so they accept
//! and reject exactly the same payloads with the same errors.
//!
//! Record layout and validation rules: formats.md §1.3.

use std::ops::Range;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::compression::{self, Compression};
use crate::record_batch::{
    BatchError, BatchHeader, RecordBatch, TimestampType, BATCH_HEADER_LEN, CRC_START, LOG_OVERHEAD,
    NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, NO_TIMESTAMP,
};
use crate::varint::{
    read_varint, read_varlong, varint_size, varlong_size, write_varint, write_varlong,
};

/// A record header. Keys should be UTF-8 but, as in Kafka, are not rejected when they are not;
/// duplicates are legal and kept in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Key bytes (UTF-8 from well-behaved clients).
    pub key: Bytes,
    /// Value, `None` for a null value.
    pub value: Option<Bytes>,
}

impl Header {
    /// Convenience constructor.
    pub fn new(key: impl Into<Bytes>, value: Option<Bytes>) -> Self {
        Header {
            key: key.into(),
            value,
        }
    }

    /// The key as `&str` (keys were validated on decode; `None` only for hand-built bad keys).
    pub fn key_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.key).ok()
    }
}

/// One record as stored in a v2 batch (offsets and timestamps relative to the batch).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Record {
    /// Unused by Kafka, written as 0.
    pub attributes: i8,
    /// Record timestamp − batch base timestamp (a varlong on the wire).
    pub timestamp_delta: i64,
    /// Record offset − batch base offset.
    pub offset_delta: i32,
    /// Key, `None` for null.
    pub key: Option<Bytes>,
    /// Value, `None` for null (a tombstone).
    pub value: Option<Bytes>,
    /// Headers in wire order.
    pub headers: Vec<Header>,
}

fn opt_len(b: &Option<Bytes>) -> usize {
    match b {
        Some(b) => varint_size(b.len() as i32) + b.len(),
        None => 1,
    }
}

fn put_opt(out: &mut BytesMut, b: &Option<Bytes>) {
    match b {
        Some(b) => {
            write_varint(out, b.len() as i32);
            out.put_slice(b);
        }
        None => write_varint(out, -1),
    }
}

impl Record {
    /// Size of the record body (everything after the length varint).
    pub fn body_len(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|h| varint_size(h.key.len() as i32) + h.key.len() + opt_len(&h.value))
            .sum();
        1 + varlong_size(self.timestamp_delta)
            + varint_size(self.offset_delta)
            + opt_len(&self.key)
            + opt_len(&self.value)
            + varint_size(self.headers.len() as i32)
            + headers
    }

    /// Bytes [`Record::encode`] writes (length varint included).
    pub fn encoded_len(&self) -> usize {
        let body = self.body_len();
        varint_size(body as i32) + body
    }

    /// Appends the record in wire format. Field lengths must fit in `i32` (the batch builder
    /// checks the whole batch does; a standalone caller with > 2 GiB fields gets garbage).
    pub fn encode(&self, out: &mut BytesMut) {
        out.reserve(self.encoded_len());
        write_varint(out, self.body_len() as i32);
        out.put_i8(self.attributes);
        write_varlong(out, self.timestamp_delta);
        write_varint(out, self.offset_delta);
        put_opt(out, &self.key);
        put_opt(out, &self.value);
        write_varint(out, self.headers.len() as i32);
        for h in &self.headers {
            write_varint(out, h.key.len() as i32);
            out.put_slice(&h.key);
            put_opt(out, &h.value);
        }
    }

    /// Decodes one record from the front of `buf` and advances it. Key, value and headers are
    /// zero-copy slices of `buf`.
    pub fn decode(buf: &mut Bytes) -> Result<Self, BatchError> {
        let mut rec = Record::default();
        let mut cur = SliceCursor::new(buf);
        let spans = cur.record(&mut BytesHeaders {
            src: buf,
            out: &mut rec.headers,
        })?;
        spans.fill(buf, &mut rec);
        let used = cur.pos;
        buf.advance(used);
        Ok(rec)
    }
}

/// One record borrowed from a records payload: the fields validation needs, without `Bytes`
/// refcounting or allocation. Produced by [`for_each_view_in_payload`] and
/// [`RecordBatch::for_each_record_view`]; headers were structurally checked but are only counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RecordView<'a> {
    /// Unused by Kafka, written as 0.
    pub attributes: i8,
    /// Record timestamp − batch base timestamp.
    pub timestamp_delta: i64,
    /// Record offset − batch base offset.
    pub offset_delta: i32,
    /// Key, `None` for null.
    pub key: Option<&'a [u8]>,
    /// Value, `None` for null (a tombstone).
    pub value: Option<&'a [u8]>,
    /// Number of headers.
    pub header_count: usize,
}

fn invalid(msg: impl Into<String>) -> BatchError {
    BatchError::InvalidRecord(msg.into())
}

/// Inside a record, running out of bytes means the record is malformed.
fn in_record(e: BatchError) -> BatchError {
    match e {
        BatchError::Truncated => invalid("record ends before its last field"),
        other => other,
    }
}

/// Fields of one parsed record, byte fields as ranges of the buffer the cursor walks. Both the
/// `Bytes` walk ([`Record`]) and the borrowed walk ([`RecordView`]) are built from it.
struct RecordSpans {
    attributes: i8,
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<Range<usize>>,
    value: Option<Range<usize>>,
    header_count: usize,
}

impl RecordSpans {
    /// Sets `rec`'s scalar fields and key/value (zero-copy slices of `src`); headers are filled
    /// by [`BytesHeaders`] during the walk.
    fn fill(self, src: &Bytes, rec: &mut Record) {
        rec.attributes = self.attributes;
        rec.timestamp_delta = self.timestamp_delta;
        rec.offset_delta = self.offset_delta;
        rec.key = self.key.map(|r| src.slice(r));
        rec.value = self.value.map(|r| src.slice(r));
    }

    #[inline]
    fn view(self, src: &[u8]) -> RecordView<'_> {
        RecordView {
            attributes: self.attributes,
            timestamp_delta: self.timestamp_delta,
            offset_delta: self.offset_delta,
            key: self.key.map(|r| &src[r]),
            value: self.value.map(|r| &src[r]),
            header_count: self.header_count,
        }
    }
}

/// Receives the headers a [`SliceCursor`] walks over; `()` only lets them be checked.
trait HeaderSink {
    /// Called once per record after the header count was read, before its headers.
    fn start(&mut self, count: usize, remaining: usize);
    /// One header: key range and value range (`None` for a null value).
    fn header(&mut self, key: Range<usize>, value: Option<Range<usize>>);
}

impl HeaderSink for () {
    #[inline]
    fn start(&mut self, _: usize, _: usize) {}
    #[inline]
    fn header(&mut self, _: Range<usize>, _: Option<Range<usize>>) {}
}

/// Collects headers as zero-copy slices of `src` into a reused vector.
struct BytesHeaders<'b> {
    src: &'b Bytes,
    out: &'b mut Vec<Header>,
}

impl HeaderSink for BytesHeaders<'_> {
    fn start(&mut self, count: usize, remaining: usize) {
        self.out.clear();
        // Each header takes at least 2 bytes; never trust `count` for the allocation.
        self.out.reserve(count.min(remaining / 2));
    }

    fn header(&mut self, key: Range<usize>, value: Option<Range<usize>>) {
        self.out.push(Header {
            key: self.src.slice(key),
            value: value.map(|r| self.src.slice(r)),
        });
    }
}

/// Read position over a borrowed buffer, `pos <= end <= buf.len()`. Byte fields come back as
/// ranges of `buf`, so callers slice either the `Bytes` or the `&[u8]` they walk.
struct SliceCursor<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> SliceCursor<'a> {
    fn new(buf: &'a [u8]) -> Self {
        SliceCursor {
            buf,
            pos: 0,
            end: buf.len(),
        }
    }

    #[inline]
    fn remaining(&self) -> usize {
        self.end - self.pos
    }

    /// The raw (not yet zig-zag decoded) value and length of the next varint when it is complete
    /// and one or two bytes long: the usual case for record and field lengths and for deltas.
    #[inline]
    fn short_raw(&self) -> Option<(u32, usize)> {
        match self.buf[self.pos..self.end] {
            [b0, ..] if b0 < 0x80 => Some((u32::from(b0), 1)),
            [b0, b1, ..] if b1 < 0x80 => Some((u32::from(b0 & 0x7f) | (u32::from(b1) << 7), 2)),
            _ => None,
        }
    }

    #[inline]
    fn read_with<T>(
        &mut self,
        f: impl FnOnce(&mut &[u8]) -> Result<T, BatchError>,
    ) -> Result<T, BatchError> {
        let mut s = &self.buf[self.pos..self.end];
        let before = s.len();
        let v = f(&mut s)?;
        self.pos += before - s.len();
        Ok(v)
    }

    /// Zig-zag varint; one- and two-byte values skip the general decoder.
    #[inline]
    fn varint(&mut self) -> Result<i32, BatchError> {
        if let Some((raw, n)) = self.short_raw() {
            self.pos += n;
            return Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32));
        }
        self.read_with(read_varint)
    }

    /// Zig-zag varlong, with the same short fast path as [`Self::varint`].
    #[inline]
    fn varlong(&mut self) -> Result<i64, BatchError> {
        if let Some((raw, n)) = self.short_raw() {
            self.pos += n;
            return Ok(i64::from(raw >> 1) ^ -i64::from(raw & 1));
        }
        self.read_with(read_varlong)
    }

    #[inline]
    fn i8(&mut self) -> Result<i8, BatchError> {
        if self.remaining() < 1 {
            return Err(BatchError::Truncated);
        }
        let v = self.buf[self.pos] as i8;
        self.pos += 1;
        Ok(v)
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<Range<usize>, BatchError> {
        if self.remaining() < n {
            return Err(BatchError::Truncated);
        }
        let r = self.pos..self.pos + n;
        self.pos += n;
        Ok(r)
    }

    /// A length-prefixed byte field; any negative length means null (as Kafka reads it).
    #[inline]
    fn opt_bytes(&mut self) -> Result<Option<Range<usize>>, BatchError> {
        let len = self.varint()?;
        match usize::try_from(len) {
            Ok(n) => self.take(n).map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Parses one length-prefixed record, handing its headers to `headers`.
    #[inline]
    fn record(&mut self, headers: &mut impl HeaderSink) -> Result<RecordSpans, BatchError> {
        let len = self.varint().map_err(in_record)?;
        let len =
            usize::try_from(len).map_err(|_| invalid(format!("negative record length {len}")))?;
        if len > self.remaining() {
            return Err(invalid(format!(
                "record declares {len} bytes but only {} remain",
                self.remaining()
            )));
        }
        let end = self.pos + len;
        let mut inner = SliceCursor {
            buf: self.buf,
            pos: self.pos,
            end,
        };
        let spans = inner.record_body(headers).map_err(in_record)?;
        if inner.pos != end {
            return Err(invalid(format!(
                "record declares {len} bytes but its fields use {}",
                len - inner.remaining()
            )));
        }
        self.pos = end;
        Ok(spans)
    }

    #[inline]
    fn record_body(&mut self, headers: &mut impl HeaderSink) -> Result<RecordSpans, BatchError> {
        let attributes = self.i8()?;
        let timestamp_delta = self.varlong()?;
        let offset_delta = self.varint()?;
        let key = self.opt_bytes()?;
        let value = self.opt_bytes()?;
        let count = self.varint()?;
        let header_count = usize::try_from(count)
            .map_err(|_| invalid(format!("negative header count {count}")))?;
        headers.start(header_count, self.remaining());
        for _ in 0..header_count {
            let klen = self.varint()?;
            let klen = usize::try_from(klen)
                .map_err(|_| invalid(format!("negative header key length {klen}")))?;
            // Kafka decodes header keys leniently (bad bytes are replaced), so a key that is not
            // UTF-8 is accepted and stored exactly as sent.
            let hkey = self.take(klen)?;
            let hvalue = self.opt_bytes()?;
            headers.header(hkey, hvalue);
        }
        Ok(RecordSpans {
            attributes,
            timestamp_delta,
            offset_delta,
            key,
            value,
            header_count,
        })
    }
}

/// Walks exactly `count` records of `payload`, `each` parsing one record per call. Errors if the
/// payload holds fewer records, or bytes remain after the last one.
fn walk_payload<'a>(
    payload: &'a [u8],
    count: usize,
    mut each: impl FnMut(&mut SliceCursor<'a>) -> Result<(), BatchError>,
) -> Result<(), BatchError> {
    let mut cur = SliceCursor::new(payload);
    for i in 0..count {
        if cur.remaining() == 0 {
            return Err(invalid(format!(
                "batch declares {count} records but holds only {i}"
            )));
        }
        each(&mut cur)?;
    }
    if cur.remaining() != 0 {
        return Err(invalid(format!(
            "{} bytes left after the batch's {count} declared records",
            cur.remaining()
        )));
    }
    Ok(())
}

/// Walks exactly `count` records of an (uncompressed) records payload, calling `f` with one reused
/// `Record`. Errors if the payload holds fewer records, or bytes remain after the last one.
pub(crate) fn for_each_in_payload(
    payload: &Bytes,
    count: usize,
    mut f: impl FnMut(&Record) -> Result<(), BatchError>,
) -> Result<(), BatchError> {
    let mut rec = Record::default();
    walk_payload(payload, count, |cur| {
        let spans = cur.record(&mut BytesHeaders {
            src: payload,
            out: &mut rec.headers,
        })?;
        spans.fill(payload, &mut rec);
        f(&rec)
    })
}

/// [`for_each_in_payload`] over borrowed bytes: the same checks and errors, but `f` gets a
/// [`RecordView`] (no `Bytes` clones, no allocation). Stops at the first error from parsing or
/// from `f`.
pub fn for_each_view_in_payload<'a>(
    payload: &'a [u8],
    count: usize,
    mut f: impl FnMut(&RecordView<'a>) -> Result<(), BatchError>,
) -> Result<(), BatchError> {
    walk_payload(payload, count, |cur| {
        let spans = cur.record(&mut ())?;
        f(&spans.view(payload))
    })
}

/// Builds a v2 batch. `push` assigns offset deltas 0, 1, 2, ... and timestamp deltas relative to
/// `base_timestamp`; `build` fills `last_offset_delta`, `max_timestamp`, count, length and CRC.
#[derive(Clone, Debug)]
pub struct BatchBuilder {
    /// Base offset written in the header.
    pub base_offset: i64,
    /// Partition leader epoch (−1 = none).
    pub partition_leader_epoch: i32,
    /// Codec for the records payload.
    pub compression: Compression,
    /// Codec level (`None`: the codec's default; see [`compression::compress_with_level`]).
    pub compression_level: Option<i32>,
    /// Attribute bit 3.
    pub timestamp_type: TimestampType,
    /// Batch base timestamp; record deltas are relative to it.
    pub base_timestamp: i64,
    /// Producer id (−1 = none).
    pub producer_id: i64,
    /// Producer epoch (−1 = none).
    pub producer_epoch: i16,
    /// Base sequence (−1 = none).
    pub base_sequence: i32,
    /// Attribute bit 4.
    pub is_transactional: bool,
    /// Attribute bit 5.
    pub is_control: bool,
    /// When `Some`, written as `max_timestamp` (e.g. the append time of a LogAppendTime batch)
    /// instead of the largest record timestamp.
    pub max_timestamp: Option<i64>,
    records: Vec<Record>,
}

impl BatchBuilder {
    /// An empty builder: no producer (id/epoch/sequence −1), leader epoch −1, base offset 0,
    /// no compression, CreateTime.
    pub fn new(base_timestamp: i64) -> Self {
        BatchBuilder {
            base_offset: 0,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            compression: Compression::None,
            compression_level: None,
            timestamp_type: TimestampType::CreateTime,
            base_timestamp,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
            is_transactional: false,
            is_control: false,
            max_timestamp: None,
            records: Vec::new(),
        }
    }

    /// Appends a record with `offset_delta` = its index and `timestamp_delta` = `timestamp −
    /// base_timestamp`.
    pub fn push(
        &mut self,
        timestamp: i64,
        key: Option<Bytes>,
        value: Option<Bytes>,
        headers: Vec<Header>,
    ) {
        let offset_delta = i32::try_from(self.records.len()).unwrap_or(i32::MAX);
        self.records.push(Record {
            attributes: 0,
            timestamp_delta: timestamp.wrapping_sub(self.base_timestamp),
            offset_delta,
            key,
            value,
            headers,
        });
    }

    /// Appends a record as given (keeps its deltas; compaction keeps original offsets). Offset
    /// deltas should increase; `last_offset_delta` is taken from the last record pushed.
    pub fn push_record(&mut self, record: Record) {
        self.records.push(record);
    }

    /// Records pushed so far.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Number of records pushed.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when no record was pushed.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn header(&self, body_len: usize) -> Result<BatchHeader, BatchError> {
        let too_large = || BatchError::TooLarge(format!("records payload of {body_len} bytes"));
        let batch_length =
            i32::try_from(BATCH_HEADER_LEN - LOG_OVERHEAD + body_len).map_err(|_| too_large())?;
        let count = i32::try_from(self.records.len())
            .map_err(|_| BatchError::TooLarge(format!("{} records", self.records.len())))?;
        let max_ts = self.max_timestamp.unwrap_or_else(|| {
            self.records
                .iter()
                .map(|r| self.base_timestamp.wrapping_add(r.timestamp_delta))
                .max()
                .unwrap_or(NO_TIMESTAMP)
        });
        let mut h = BatchHeader::default();
        h.set_base_offset(self.base_offset);
        h.set_batch_length(batch_length);
        h.set_partition_leader_epoch(self.partition_leader_epoch);
        h.set_compression(self.compression);
        h.set_timestamp_type(self.timestamp_type);
        h.set_transactional(self.is_transactional);
        h.set_control(self.is_control);
        h.set_last_offset_delta(self.records.last().map_or(0, |r| r.offset_delta));
        h.set_base_timestamp(self.base_timestamp);
        h.set_max_timestamp(max_ts);
        h.set_producer(self.producer_id, self.producer_epoch, self.base_sequence);
        h.set_record_count(count);
        Ok(h)
    }

    /// Encodes, compresses and checksums the batch.
    pub fn build(&self) -> Result<RecordBatch, BatchError> {
        let payload_len: usize = self.records.iter().map(Record::encoded_len).sum();
        if payload_len > i32::MAX as usize {
            return Err(BatchError::TooLarge(format!(
                "records payload of {payload_len} bytes"
            )));
        }
        let mut buf = BytesMut::with_capacity(BATCH_HEADER_LEN + payload_len);
        buf.resize(BATCH_HEADER_LEN, 0);
        for r in &self.records {
            r.encode(&mut buf);
        }
        if self.compression != Compression::None {
            let packed = compression::compress_with_level(
                self.compression,
                &buf[BATCH_HEADER_LEN..],
                self.compression_level,
            )?;
            buf.truncate(BATCH_HEADER_LEN);
            buf.extend_from_slice(&packed);
        }
        let mut h = self.header(buf.len() - BATCH_HEADER_LEN)?;
        buf[..BATCH_HEADER_LEN].copy_from_slice(h.as_bytes());
        h.set_crc(crc32c::crc32c(&buf[CRC_START..]));
        buf[..BATCH_HEADER_LEN].copy_from_slice(h.as_bytes());
        RecordBatch::new(buf.freeze())
    }
}

pub use crate::control::{
    control_record, control_record_type, end_txn_marker, ControlRecord, CONTROL_TYPE_ABORT,
    CONTROL_TYPE_COMMIT,
};

#[cfg(test)]
#[path = "record_test.rs"]
mod tests;
