//! [`RemoteLogReader`]: serves Fetch and ListOffsets from remote segments. A read looks up the
//! start position in the offset index section (index cache), finds the batch containing the
//! fetch offset with header peeks, then reads whole record batches through the block cache.

use std::sync::Arc;

use bytes::Bytes;
use object_store::ObjectStore;
use shale_protocol::record_batch::{
    batches, BatchHeader, RecordBatch, BATCH_HEADER_LEN, LOG_OVERHEAD, MIN_BATCH_LENGTH,
};

use crate::cache::{BlockCache, IndexCache, ObjectRef};
use crate::config::RemoteStorageConfig;
use crate::error::{RemoteLogError, Result};
use crate::meta::RemoteLogSegmentMetadata;
use crate::object_rsm::ObjectRsm;
use crate::rsm::IndexType;

const OFFSET_ENTRY: usize = 8;
const TIME_ENTRY: usize = 12;
/// Safety bound on records decoded per batch when scanning for a timestamp.
const MAX_DECOMPRESSED: usize = 256 << 20;

/// Reads record batches from remote segments.
#[derive(Debug, Clone)]
pub struct RemoteLogReader {
    rsm: Arc<ObjectRsm>,
    blocks: BlockCache,
    indexes: IndexCache,
}

#[derive(Debug, Clone, Copy)]
struct Peek {
    size: u64,
    last_offset: i64,
    max_timestamp: i64,
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(a)
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Position of the largest offset-index entry with relative offset ≤ `rel` (0 if none).
pub fn offset_index_lookup(index: &[u8], rel: i64) -> u64 {
    let n = index.len() / OFFSET_ENTRY;
    let (mut lo, mut hi) = (0usize, n);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if i64::from(be_i32(index, mid * OFFSET_ENTRY)) <= rel {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if lo == 0 {
        0
    } else {
        u64::try_from(be_i32(index, (lo - 1) * OFFSET_ENTRY + 4)).unwrap_or(0)
    }
}

/// Relative offset of the largest time-index entry with timestamp ≤ `ts` (`None` if none).
pub fn time_index_lookup(index: &[u8], ts: i64) -> Option<i64> {
    let n = index.len() / TIME_ENTRY;
    let (mut lo, mut hi) = (0usize, n);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if be_i64(index, mid * TIME_ENTRY) <= ts {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    (lo > 0).then(|| i64::from(be_i32(index, (lo - 1) * TIME_ENTRY + 8)))
}

fn seg(meta: &RemoteLogSegmentMetadata) -> String {
    format!(
        "remote segment {} of {}-{} [{}, {}]",
        meta.id.id, meta.id.tp.topic, meta.id.tp.partition, meta.start_offset, meta.end_offset
    )
}

impl RemoteLogReader {
    /// A reader over the given RSM and caches.
    pub fn new(rsm: Arc<ObjectRsm>, blocks: BlockCache, indexes: IndexCache) -> Self {
        RemoteLogReader {
            rsm,
            blocks,
            indexes,
        }
    }

    /// Builds the RSM, block cache and index cache from a config over `store`.
    pub fn from_config(store: Arc<dyn ObjectStore>, config: &RemoteStorageConfig) -> Self {
        let rsm = Arc::new(
            ObjectRsm::new(store.clone(), &config.prefix).with_multipart(
                config.multipart_threshold,
                usize::try_from(config.multipart_part_size).unwrap_or(usize::MAX),
            ),
        );
        let blocks = BlockCache::new(
            store,
            config.block_size,
            config.cache_size,
            config.readahead_blocks,
        );
        let indexes = IndexCache::new(rsm.clone(), config.index_cache_size);
        RemoteLogReader::new(rsm, blocks, indexes)
    }

    /// The RSM.
    pub fn rsm(&self) -> &Arc<ObjectRsm> {
        &self.rsm
    }

    /// The block cache.
    pub fn block_cache(&self) -> &BlockCache {
        &self.blocks
    }

    /// The index cache.
    pub fn index_cache(&self) -> &IndexCache {
        &self.indexes
    }

    /// Whole batches from the one containing `fetch_offset`, at most `max_bytes` (at least one
    /// batch if `min_one_batch`). Empty when the segment holds no batch at or after the offset.
    pub async fn read(
        &self,
        meta: &RemoteLogSegmentMetadata,
        fetch_offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<Bytes> {
        self.read_with_next(meta, None, fetch_offset, max_bytes, min_one_batch)
            .await
    }

    /// [`Self::read`], with read-ahead continuing into `next` (the following segment).
    pub async fn read_with_next(
        &self,
        meta: &RemoteLogSegmentMetadata,
        next: Option<&RemoteLogSegmentMetadata>,
        fetch_offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<Bytes> {
        if fetch_offset < meta.start_offset || fetch_offset > meta.end_offset {
            return Err(RemoteLogError::OutOfRange {
                what: seg(meta),
                detail: format!("fetch offset {fetch_offset} outside the segment"),
            });
        }
        let obj = self.rsm.log_object(meta)?;
        // A read from the segment's first offset (sequential consumers, and every read that
        // continues into the next segment) starts at position 0: no index GET on that path.
        let mut pos = if fetch_offset == meta.start_offset {
            0
        } else {
            let index = self.indexes.get(meta, IndexType::Offset).await?;
            offset_index_lookup(&index, fetch_offset - meta.start_offset)
        };
        let first = loop {
            match self.peek(meta, &obj, pos).await? {
                None => return Ok(Bytes::new()),
                Some(p) if p.last_offset >= fetch_offset => break p,
                Some(p) => pos += p.size,
            }
        };
        let max = max_bytes as u64;
        if first.size > max && !min_one_batch {
            return Ok(Bytes::new());
        }
        let end = pos.saturating_add(first.size.max(max)).min(obj.size);
        // Answer with the cached prefix (the peek just loaded the first block) rather than wait
        // for more GETs: the first cold record costs one round trip, and read-ahead, started by
        // this read, fetches the rest while the client handles these records.
        let ready = self
            .blocks
            .cached_end(&obj, pos..end)
            .max(pos.saturating_add(first.size))
            .min(end);
        let next_obj = match next {
            Some(n) => Some(self.rsm.log_object(n)?),
            None => None,
        };
        let data = self
            .blocks
            .read(&obj, pos..ready, next_obj.as_ref())
            .await?;
        whole_batches(data, meta)
    }

    /// Header of the batch at `pos`, `None` at the end of the segment (or a truncated tail).
    async fn peek(
        &self,
        meta: &RemoteLogSegmentMetadata,
        obj: &ObjectRef,
        pos: u64,
    ) -> Result<Option<Peek>> {
        if pos >= obj.size {
            return Ok(None);
        }
        let b = self
            .blocks
            .read_untracked(obj, pos..pos + BATCH_HEADER_LEN as u64)
            .await?;
        let Ok(h) = BatchHeader::from_slice(&b) else {
            return Ok(None);
        };
        if h.batch_length() < MIN_BATCH_LENGTH {
            return Err(RemoteLogError::corrupt(
                seg(meta),
                format!("batch length {} at position {pos}", h.batch_length()),
            ));
        }
        Ok(Some(Peek {
            size: LOG_OVERHEAD as u64 + h.batch_length() as u64,
            last_offset: h.last_offset(),
            max_timestamp: h.max_timestamp(),
        }))
    }

    /// The first record with timestamp ≥ `ts` in this segment: (offset, timestamp).
    pub async fn offset_for_timestamp(
        &self,
        meta: &RemoteLogSegmentMetadata,
        ts: i64,
    ) -> Result<Option<(i64, i64)>> {
        if meta.max_timestamp_ms < ts {
            return Ok(None);
        }
        let obj = self.rsm.log_object(meta)?;
        let tindex = self.indexes.get(meta, IndexType::Timestamp).await?;
        let start_rel = time_index_lookup(&tindex, ts).unwrap_or(0);
        let oindex = self.indexes.get(meta, IndexType::Offset).await?;
        let mut pos = offset_index_lookup(&oindex, start_rel);
        while let Some(p) = self.peek(meta, &obj, pos).await? {
            if p.max_timestamp >= ts {
                let bytes = self.blocks.read_untracked(&obj, pos..pos + p.size).await?;
                if let Some(found) = first_at_or_after(bytes, ts, meta)? {
                    return Ok(Some(found));
                }
            }
            pos += p.size;
        }
        Ok(None)
    }
}

fn first_at_or_after(
    bytes: Bytes,
    ts: i64,
    meta: &RemoteLogSegmentMetadata,
) -> Result<Option<(i64, i64)>> {
    let bad = |e: shale_protocol::record_batch::BatchError| {
        RemoteLogError::corrupt(seg(meta), e.to_string())
    };
    let batch = RecordBatch::new(bytes).map_err(bad)?;
    let records = batch.records_limited(MAX_DECOMPRESSED).map_err(bad)?;
    Ok(records.iter().find_map(|r| {
        let rts = batch.record_timestamp(r);
        (rts >= ts).then(|| (batch.base_offset() + i64::from(r.offset_delta), rts))
    }))
}

/// Cuts `data` after its last complete batch.
/// The whole batches at the front of `data`, each checked against its CRC-32C: bytes from the
/// object store are never served unverified (a corrupt object is an error, not bad records).
fn whole_batches(data: Bytes, meta: &RemoteLogSegmentMetadata) -> Result<Bytes> {
    let mut it = batches(data.clone());
    let mut good = 0;
    while let Some(r) = it.next() {
        match r {
            Ok(batch) => {
                if let Err(e) = batch.verify_crc() {
                    let at = batch.base_offset();
                    return Err(RemoteLogError::corrupt(
                        seg(meta),
                        format!("batch at offset {at}: {e}"),
                    ));
                }
                good = it.position();
            }
            Err(e) if good == 0 => return Err(RemoteLogError::corrupt(seg(meta), e.to_string())),
            Err(_) => break,
        }
    }
    Ok(data.slice(..good))
}

#[cfg(test)]
#[path = "reader_test.rs"]
mod tests;
