//! Read caches of remote segments.
//!
//! [`BlockCache`]: fixed-size blocks of `.log` objects keyed by (object key, block index) in a
//! byte-weighted moka cache. A read finds its missing blocks and fetches each run of ADJACENT
//! missing blocks with one ranged GET; the load of a run is single-flighted on its first block
//! (`try_get_with`), failures are never cached. Sequential readers (a read touching the last
//! block of the previous read of the same object) trigger background read-ahead of the next
//! `readahead` blocks as a pipeline of GETs of an eighth of the window each (about eight in flight),
//! continuing into the next segment's object when the caller names it.
//!
//! [`IndexCache`]: whole index sections per (segment id, index type), single-flighted.
//! [`CacheStats`] counts hits, misses, GETs, bytes fetched and read-ahead blocks.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use moka::future::Cache;
use object_store::path::Path;
use object_store::ObjectStore;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tracing::Instrument;
use uuid::Uuid;

use crate::error::{RemoteLogError, Result};
use crate::meta::RemoteLogSegmentMetadata;
use crate::rsm::{IndexType, RemoteStorageManager};

/// An object and its size.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    /// Object key.
    pub key: Path,
    /// Object size in bytes.
    pub size: u64,
}

/// Cache counters (monotonic), shared with the broker's metrics exporter.
#[derive(Debug, Default)]
pub struct CacheStats {
    hits: AtomicU64,
    misses: AtomicU64,
    bytes_fetched: AtomicU64,
    gets: AtomicU64,
    readahead_blocks: AtomicU64,
}

/// A point-in-time copy of [`CacheStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStatsSnapshot {
    /// Lookups served from the cache.
    pub hits: u64,
    /// Lookups that had to load.
    pub misses: u64,
    /// Bytes downloaded from the store.
    pub bytes_fetched: u64,
    /// GET requests issued.
    pub gets: u64,
    /// Blocks scheduled by read-ahead.
    pub readahead_blocks: u64,
}

impl CacheStats {
    /// Current values.
    pub fn snapshot(&self) -> CacheStatsSnapshot {
        CacheStatsSnapshot {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            bytes_fetched: self.bytes_fetched.load(Ordering::Relaxed),
            gets: self.gets.load(Ordering::Relaxed),
            readahead_blocks: self.readahead_blocks.load(Ordering::Relaxed),
        }
    }

    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

type BlockKey = (Path, u64);

/// Read-ahead state of one object.
#[derive(Debug, Default, Clone, Copy)]
struct Track {
    /// Last block of the previous tracked read.
    last: Option<u64>,
    /// Highest (virtual) block already scheduled or read.
    ahead: u64,
    /// Read-ahead from the previous segment already ran into this object.
    seeded: bool,
}
const MAX_TRACKED_OBJECTS: usize = 4096;
/// Ranged GETs a read-ahead window is split into (each carries an eighth of the window).
const READAHEAD_GETS: u64 = 8;

struct Inner {
    store: Arc<dyn ObjectStore>,
    block_size: u64,
    readahead: u64,
    cache: Cache<BlockKey, Bytes>,
    stats: Arc<CacheStats>,
    tracks: Mutex<HashMap<Path, Track>>,
    inflight: AtomicUsize,
    /// Blocks being read ahead right now, and the most allowed (half the cache budget,
    /// at least one window): many cold readers at once cannot pile up unbounded GET buffers.
    inflight_blocks: AtomicU64,
    max_inflight_blocks: u64,
    idle: Notify,
}

/// Block cache over `.log` objects. Cheap to clone (shared state).
#[derive(Clone)]
pub struct BlockCache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("block_size", &self.inner.block_size)
            .field("readahead", &self.inner.readahead)
            .field("stats", &self.inner.stats.snapshot())
            .finish()
    }
}

fn num_blocks(size: u64, bs: u64) -> u64 {
    size.div_ceil(bs)
}

impl BlockCache {
    /// A cache of `block_size`-byte blocks (> 0) holding at most `budget_bytes`, reading ahead
    /// `readahead_blocks` blocks for sequential readers.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        block_size: u64,
        budget_bytes: u64,
        readahead_blocks: u64,
    ) -> Self {
        let cache = Cache::builder()
            .max_capacity(budget_bytes)
            .weigher(|k: &BlockKey, v: &Bytes| {
                u32::try_from(v.len() + k.0.as_ref().len() + 48).unwrap_or(u32::MAX)
            })
            .build();
        BlockCache {
            inner: Arc::new(Inner {
                store,
                block_size: block_size.max(1),
                readahead: readahead_blocks,
                cache,
                stats: Arc::new(CacheStats::default()),
                tracks: Mutex::new(HashMap::new()),
                inflight: AtomicUsize::new(0),
                inflight_blocks: AtomicU64::new(0),
                max_inflight_blocks: (budget_bytes / block_size.max(1) / 2).max(readahead_blocks),
                idle: Notify::new(),
            }),
        }
    }

    /// The counters.
    pub fn stats(&self) -> Arc<CacheStats> {
        self.inner.stats.clone()
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> u64 {
        self.inner.block_size
    }

    /// Weighted size after applying pending evictions.
    pub async fn weighted_size(&self) -> u64 {
        self.inner.cache.run_pending_tasks().await;
        self.inner.cache.weighted_size()
    }

    /// True if the block is cached.
    pub fn contains_block(&self, key: &Path, index: u64) -> bool {
        self.inner.cache.contains_key(&(key.clone(), index))
    }

    /// The end of the cached prefix of `range` of `obj`: `range.start` when the block holding
    /// it is not cached, else the end of the run of cached blocks from there (capped at
    /// `range.end`). Lets a cold reader answer with what it has instead of waiting for more.
    pub fn cached_end(&self, obj: &ObjectRef, range: Range<u64>) -> u64 {
        let bs = self.inner.block_size;
        let end = range.end.min(obj.size);
        let mut at = range.start;
        while at < end && self.contains_block(&obj.key, at / bs) {
            at = (at / bs + 1) * bs;
        }
        at.min(end).max(range.start)
    }

    /// Waits until no read-ahead task is running.
    pub async fn wait_readahead_idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            if self.inner.inflight.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Bytes `range` of `obj` (end clamped to the object size), counted for sequential-read
    /// detection; `next` is the object read-ahead continues into after `obj` ends.
    pub async fn read(
        &self,
        obj: &ObjectRef,
        range: Range<u64>,
        next: Option<&ObjectRef>,
    ) -> Result<Bytes> {
        let data = self.read_untracked(obj, range.clone()).await?;
        let end = range.end.min(obj.size);
        if range.start < end {
            let bs = self.inner.block_size;
            self.after_read(obj, range.start / bs, (end - 1) / bs, next);
        }
        Ok(data)
    }

    /// Like [`Self::read`] but invisible to read-ahead (index scans, header peeks).
    pub async fn read_untracked(&self, obj: &ObjectRef, range: Range<u64>) -> Result<Bytes> {
        if range.start > obj.size {
            return Err(RemoteLogError::OutOfRange {
                what: obj.key.to_string(),
                detail: format!("position {} beyond object size {}", range.start, obj.size),
            });
        }
        let end = range.end.min(obj.size);
        if range.start >= end {
            return Ok(Bytes::new());
        }
        let bs = self.inner.block_size;
        let (first, last) = (range.start / bs, (end - 1) / bs);
        let blocks = self
            .inner
            .clone()
            .load_blocks(obj, first, last, true)
            .await?;
        let skip = (range.start - first * bs) as usize;
        let want = (end - range.start) as usize;
        if blocks.len() == 1 {
            let b = &blocks[0];
            return Ok(b.slice(skip.min(b.len())..(skip + want).min(b.len())));
        }
        let mut out = BytesMut::with_capacity(want);
        let mut skip = skip;
        for b in &blocks {
            let take = b.len().saturating_sub(skip).min(want - out.len());
            out.extend_from_slice(&b[skip.min(b.len())..skip.min(b.len()) + take]);
            skip = 0;
        }
        Ok(out.freeze())
    }

    /// Sequential-read detection and the read-ahead window. Blocks are numbered virtually
    /// across `obj` then `next`. A sequential reader keeps the `readahead` blocks after its
    /// last read loaded or in flight, fetched in GETs of an eighth of the window each: the first
    /// read from an object's start issues eight concurrent GETs, and each time the reader moves
    /// on by an eighth of the window another GET goes out, so a steady reader has about eight in
    /// flight (a pipeline, like the sliding window the s3 limit in bench/ measures).
    fn after_read(&self, obj: &ObjectRef, first: u64, last: u64, next: Option<&ObjectRef>) {
        let ra = self.inner.readahead;
        let bs = self.inner.block_size;
        let n = num_blocks(obj.size, bs);
        let next = next.filter(|nx| nx.size > 0);
        let total = n + next.map_or(0, |nx| num_blocks(nx.size, bs));
        let window = {
            let mut map = self.inner.tracks.lock();
            if map.len() >= MAX_TRACKED_OBJECTS {
                map.clear();
            }
            let t = map.entry(obj.key.clone()).or_default();
            let sequential = match t.last {
                Some(p) => first <= p + 1 && last >= p,
                // A first read from an object's start is taken as the start of a scan.
                None => first == 0,
            };
            t.last = Some(last);
            t.seeded = false;
            if !sequential || ra == 0 {
                t.ahead = last;
                None
            } else {
                let ahead = t.ahead.max(last);
                let end = total.saturating_sub(1);
                let to = (last + ra).min(end);
                let busy = self.inner.inflight_blocks.load(Ordering::Relaxed);
                // Wait until a whole chunk is due (unless this reaches the end), and while the
                // broker-wide read-ahead budget is spent (the reader then loads on demand).
                if ahead >= to
                    || (to - ahead < self.chunk_blocks() && to < end)
                    || busy + (to - ahead) > self.inner.max_inflight_blocks
                {
                    None
                } else {
                    t.ahead = to;
                    if let (Some(nx), true) = (next, to >= n) {
                        map.insert(
                            nx.key.clone(),
                            Track {
                                last: None,
                                ahead: to - n,
                                seeded: true,
                            },
                        );
                    }
                    Some((ahead + 1, to))
                }
            }
        };
        let Some((from, to)) = window else {
            return;
        };
        if from < n {
            self.spawn_readahead(obj.clone(), from, to.min(n - 1));
        }
        if let (Some(nx), true) = (next, to >= n) {
            self.spawn_readahead(nx.clone(), from.saturating_sub(n), to - n);
        }
    }

    /// Blocks per read-ahead GET: an eighth of the window.
    fn chunk_blocks(&self) -> u64 {
        self.inner.readahead.div_ceil(READAHEAD_GETS).max(1)
    }

    fn spawn_readahead(&self, obj: ObjectRef, from: u64, to: u64) {
        let missing = (from..=to)
            .filter(|&b| !self.contains_block(&obj.key, b))
            .count() as u64;
        if missing == 0 {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = self.inner.clone();
        inner.inflight.fetch_add(1, Ordering::SeqCst);
        inner.inflight_blocks.fetch_add(missing, Ordering::Relaxed);
        CacheStats::add(&inner.stats.readahead_blocks, missing);
        // In the caller's span (a Fetch request): its GETs are that request's children.
        let readahead = async move {
            // Concurrent ranged GETs of a chunk each: an object store serves parallel ranges
            // far faster than one long GET (bench/ scenario 4).
            let per = inner.readahead.div_ceil(READAHEAD_GETS).max(1);
            let chunks = (from..=to).step_by(per as usize).map(|first| {
                let last = (first + per - 1).min(to);
                inner.clone().load_blocks(&obj, first, last, false)
            });
            if let Err(e) = futures::future::try_join_all(chunks).await {
                tracing::debug!("read-ahead of {} failed: {e}", obj.key);
            }
            inner.inflight_blocks.fetch_sub(missing, Ordering::Relaxed);
            inner.inflight.fetch_sub(1, Ordering::SeqCst);
            inner.idle.notify_waiters();
        };
        handle.spawn(readahead.in_current_span());
    }
}

impl Inner {
    /// Blocks `first..=last` of `obj`, loading runs of adjacent missing blocks with one GET each.
    async fn load_blocks(
        self: Arc<Self>,
        obj: &ObjectRef,
        first: u64,
        last: u64,
        count: bool,
    ) -> Result<Vec<Bytes>> {
        let mut got: Vec<Option<Bytes>> = Vec::with_capacity((last - first + 1) as usize);
        for b in first..=last {
            got.push(self.cache.get(&(obj.key.clone(), b)).await);
        }
        if count {
            let hits = got.iter().filter(|g| g.is_some()).count() as u64;
            CacheStats::add(&self.stats.hits, hits);
            CacheStats::add(&self.stats.misses, got.len() as u64 - hits);
        }
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for (i, g) in got.iter().enumerate() {
            match (g, runs.last_mut()) {
                (None, Some((s, n))) if *s + *n == i => *n += 1,
                (None, _) => runs.push((i, 1)),
                _ => {}
            }
        }
        let loads = runs
            .iter()
            .map(|&(s, n)| self.clone().load_run(obj, first + s as u64, n as u64));
        let loaded = futures::future::try_join_all(loads).await?;
        for ((s, _), blocks) in runs.iter().zip(loaded) {
            for (j, b) in blocks.into_iter().enumerate() {
                got[s + j] = Some(b);
            }
        }
        Ok(got.into_iter().flatten().collect())
    }

    /// Loads `n` adjacent blocks from `first`, single-flighted on the first block's key.
    async fn load_run(self: Arc<Self>, obj: &ObjectRef, first: u64, n: u64) -> Result<Vec<Bytes>> {
        let rest: Arc<Mutex<Option<Vec<Bytes>>>> = Arc::new(Mutex::new(None));
        let init = {
            let (inner, rest, obj) = (self.clone(), rest.clone(), obj.clone());
            async move {
                let mut blocks = inner.fetch(&obj, first, n).await?;
                let tail = blocks.split_off(1);
                for (j, b) in tail.iter().enumerate() {
                    inner
                        .cache
                        .insert((obj.key.clone(), first + 1 + j as u64), b.clone())
                        .await;
                }
                *rest.lock() = Some(tail);
                blocks
                    .pop()
                    .ok_or_else(|| RemoteLogError::corrupt(obj.key.to_string(), "empty run"))
            }
        };
        let b0 = self
            .cache
            .try_get_with((obj.key.clone(), first), init)
            .await
            .map_err(RemoteLogError::from)?;
        let mut out = vec![b0];
        if n > 1 {
            let taken = rest.lock().take();
            match taken {
                Some(tail) => out.extend(tail),
                None => {
                    for b in first + 1..first + n {
                        let inner = self.clone();
                        let o = obj.clone();
                        let init =
                            async move { inner.fetch(&o, b, 1).await.map(|mut v| v.remove(0)) };
                        let blk = self
                            .cache
                            .try_get_with((obj.key.clone(), b), init)
                            .await
                            .map_err(RemoteLogError::from)?;
                        out.push(blk);
                    }
                }
            }
        }
        Ok(out)
    }

    /// One ranged GET of blocks `first..first+n`, split into blocks.
    async fn fetch(&self, obj: &ObjectRef, first: u64, n: u64) -> Result<Vec<Bytes>> {
        let bs = self.block_size;
        let start = first * bs;
        let end = ((first + n) * bs).min(obj.size);
        if start >= end {
            return Err(RemoteLogError::OutOfRange {
                what: obj.key.to_string(),
                detail: format!("block {first} beyond object size {}", obj.size),
            });
        }
        CacheStats::add(&self.stats.gets, 1);
        let data = self
            .store
            .get_range(&obj.key, start..end)
            .await
            .map_err(|e| RemoteLogError::store("get", &obj.key, e))?;
        CacheStats::add(&self.stats.bytes_fetched, data.len() as u64);
        if data.len() as u64 != end - start {
            return Err(RemoteLogError::Integrity {
                key: obj.key.to_string(),
                detail: format!("asked bytes {start}..{end}, got {} bytes", data.len()),
            });
        }
        if n == 1 {
            return Ok(vec![data]);
        }
        Ok(data
            .chunks(bs as usize)
            .map(Bytes::copy_from_slice)
            .collect())
    }
}

/// Whole index sections per (segment id, index type), loaded through an RSM, single-flighted.
#[derive(Clone)]
pub struct IndexCache {
    rsm: Arc<dyn RemoteStorageManager>,
    cache: Cache<(Uuid, IndexType), Bytes>,
    stats: Arc<CacheStats>,
}

impl std::fmt::Debug for IndexCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexCache")
            .field("stats", &self.stats.snapshot())
            .finish()
    }
}

impl IndexCache {
    /// An index cache of at most `budget_bytes`.
    pub fn new(rsm: Arc<dyn RemoteStorageManager>, budget_bytes: u64) -> Self {
        let cache = Cache::builder()
            .max_capacity(budget_bytes)
            .weigher(|_: &(Uuid, IndexType), v: &Bytes| {
                u32::try_from(v.len() + 64).unwrap_or(u32::MAX)
            })
            .build();
        IndexCache {
            rsm,
            cache,
            stats: Arc::new(CacheStats::default()),
        }
    }

    /// The counters (GETs count index fetches through the RSM).
    pub fn stats(&self) -> Arc<CacheStats> {
        self.stats.clone()
    }

    /// Pre-warms an entry (e.g. right after upload, from the local files).
    pub async fn insert(&self, segment: Uuid, index: IndexType, data: Bytes) {
        self.cache.insert((segment, index), data).await;
    }

    /// Pre-warms the offset and time indexes of a just-uploaded segment from its local files,
    /// so the first remote read of it needs no index GET.
    pub async fn prewarm(&self, segment: Uuid, data: &crate::rsm::LogSegmentData) -> Result<()> {
        for (t, path) in [
            (IndexType::Offset, &data.offset_index),
            (IndexType::Timestamp, &data.time_index),
        ] {
            let bytes = tokio::fs::read(path)
                .await
                .map_err(|source| RemoteLogError::Io {
                    path: path.clone(),
                    source,
                })?;
            self.insert(segment, t, Bytes::from(bytes)).await;
        }
        Ok(())
    }

    /// The index of a segment, from cache or fetched once.
    pub async fn get(&self, meta: &RemoteLogSegmentMetadata, index: IndexType) -> Result<Bytes> {
        let key = (meta.id.id, index);
        if let Some(b) = self.cache.get(&key).await {
            CacheStats::add(&self.stats.hits, 1);
            return Ok(b);
        }
        CacheStats::add(&self.stats.misses, 1);
        let (rsm, stats) = (self.rsm.clone(), self.stats.clone());
        let meta = meta.clone();
        let init = async move {
            CacheStats::add(&stats.gets, 1);
            let b = rsm.fetch_index(&meta, index).await?;
            CacheStats::add(&stats.bytes_fetched, b.len() as u64);
            Ok::<_, RemoteLogError>(b)
        };
        self.cache
            .try_get_with(key, init)
            .await
            .map_err(RemoteLogError::from)
    }
}

#[cfg(test)]
#[path = "cache_test.rs"]
mod tests;
