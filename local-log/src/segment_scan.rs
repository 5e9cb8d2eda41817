//! Whole-segment walks: [`SegmentBatches`], the chunked sequential reader of whole batches, and
//! segment recovery (formats.md §5.1 step 3), which re-validates every batch and rebuilds both
//! indexes from it.

use std::sync::Arc;

use bytes::Bytes;
use shale_protocol::record_batch::{BatchError, RecordBatch, BATCH_HEADER_LEN, LOG_OVERHEAD};

use crate::error::{IoContext, LogError, Result};
use crate::segment::{OpenSegment, Segment};

/// Chunked sequential reader of whole batches from a segment file. It keeps the segment's
/// `.log` open while it walks (a file the LRU closes meanwhile closes when the walk ends).
#[derive(Debug)]
pub(crate) struct SegmentBatches<'a> {
    seg: &'a Segment,
    handle: Option<Arc<OpenSegment>>,
    pos: u64,
    limit: u64,
    chunk: Bytes,
    chunk_start: u64,
}

const CHUNK: u64 = 1 << 20;

impl<'a> SegmentBatches<'a> {
    pub(crate) fn new(seg: &'a Segment, pos: u64, limit: u64) -> SegmentBatches<'a> {
        SegmentBatches {
            seg,
            handle: None,
            pos,
            limit,
            chunk: Bytes::new(),
            chunk_start: 0,
        }
    }

    /// Makes `[pos, pos+n)` available in the chunk; false if it extends past the limit.
    fn ensure(&mut self, pos: u64, n: u64) -> Result<bool> {
        if pos + n > self.limit {
            return Ok(false);
        }
        let end = self.chunk_start + self.chunk.len() as u64;
        if pos >= self.chunk_start && pos + n <= end {
            return Ok(true);
        }
        let len = n.max(CHUNK).min(self.limit - pos);
        let h = match &self.handle {
            Some(h) => h.clone(),
            None => {
                let h = self.seg.handle()?;
                self.handle = Some(h.clone());
                h
            }
        };
        let mut buf = bytes::BytesMut::zeroed(len as usize);
        std::os::unix::fs::FileExt::read_exact_at(&*h.log, &mut buf, pos)
            .map_err(|e| LogError::io(self.seg.log_path(), e))?;
        self.chunk = buf.freeze();
        self.chunk_start = pos;
        Ok(true)
    }

    /// Next `(position, batch or framing error)`; `None` at the end or at a partial tail.
    pub(crate) fn next_batch(
        &mut self,
    ) -> Result<Option<(u64, std::result::Result<RecordBatch, BatchError>)>> {
        let pos = self.pos;
        if !self.ensure(pos, LOG_OVERHEAD as u64)? {
            return Ok(None);
        }
        let off = (pos - self.chunk_start) as usize;
        let len = i32::from_be_bytes([
            self.chunk[off + 8],
            self.chunk[off + 9],
            self.chunk[off + 10],
            self.chunk[off + 11],
        ]);
        if len < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32 {
            return Ok(Some((pos, Err(BatchError::InvalidBatchLength(len)))));
        }
        let size = LOG_OVERHEAD as u64 + len as u64;
        if !self.ensure(pos, size)? {
            return Ok(None);
        }
        let off = (pos - self.chunk_start) as usize;
        let bytes = self.chunk.slice(off..off + size as usize);
        self.pos = pos + size;
        Ok(Some((pos, RecordBatch::new(bytes))))
    }
}

impl Segment {
    /// Segment recovery (§5.1 step 3): re-validates every batch, rebuilds both indexes with the
    /// sparse rule, calls `on_batch` for each valid batch, truncates at the first invalid or
    /// partial one, and writes the indexes back. Returns the number of bytes truncated.
    pub(crate) fn recover(
        &self,
        index_interval: i32,
        on_batch: &mut dyn FnMut(&RecordBatch) -> Result<()>,
    ) -> Result<u64> {
        let h = self.handle()?;
        let file_size = h
            .log
            .metadata()
            .map_err(|e| LogError::io(self.log_path(), e))?
            .len();
        self.set_size(file_size);
        {
            let mut st = self.state.lock();
            st.offset_index.reset();
            st.time_index.reset();
            st.txn_index.reset()?;
            st.max_timestamp = -1;
            st.offset_of_max_timestamp = self.base_offset;
            st.first_batch_timestamp = None;
        }
        let mut valid: u64 = 0;
        let mut last_index_pos: u64 = 0;
        let mut next_offset = self.base_offset;
        let mut it = SegmentBatches::new(self, 0, file_size);
        while let Some((pos, item)) = it.next_batch()? {
            let Ok(batch) = item else { break };
            let rel = batch.last_offset().wrapping_sub(self.base_offset);
            if batch.verify_crc().is_err()
                || batch.base_offset() < self.base_offset
                || !(0..=i64::from(i32::MAX)).contains(&rel)
                || batch.last_offset_delta() < 0
            {
                break;
            }
            let mut st = self.state.lock();
            if pos == 0 {
                st.first_batch_timestamp = Some(batch.max_timestamp());
            }
            if batch.max_timestamp() > st.max_timestamp {
                st.max_timestamp = batch.max_timestamp();
                st.offset_of_max_timestamp = batch.last_offset();
            }
            if pos - last_index_pos > index_interval.max(0) as u64 && !st.offset_index.is_full() {
                st.offset_index.append(batch.last_offset(), pos as u32)?;
                let (t, o) = (st.max_timestamp, st.offset_of_max_timestamp);
                if !st.time_index.is_full() {
                    st.time_index.maybe_append(t, o, false)?;
                }
                last_index_pos = pos;
            }
            drop(st);
            valid = pos + batch.size() as u64;
            next_offset = batch.next_offset();
            on_batch(&batch)?;
        }
        drop(it);
        let truncated = file_size - valid;
        let mut st = self.state.lock();
        if truncated > 0 {
            h.log.set_len(valid).ctx(&st.log_path)?;
        }
        st.next_offset = next_offset;
        st.bytes_since_last_index_entry = valid - last_index_pos;
        let (t, o) = (st.max_timestamp, st.offset_of_max_timestamp);
        if t >= 0 {
            st.time_index.maybe_append(t, o, true)?;
        }
        drop(st);
        self.set_size(valid);
        self.write_indexes(crate::segment::Fsync::Now)?;
        Ok(truncated)
    }
}
