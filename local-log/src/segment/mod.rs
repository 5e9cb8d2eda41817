//! One log segment: `<base>.log` plus its `.index`, `.timeindex` and, once an aborted
//! transaction ends in it, `.txnindex` (formats.md §2; the last in `txn_index.rs`).
//!
//! Appends come from the owning `Log` under its append lock; readers use positional reads
//! (`FileExt::read_at`) bounded by `size`, an atomic published after each write, so they never
//! wait for the append lock. Mutable bookkeeping (indexes, counters, paths) sits behind a short
//! `parking_lot::Mutex` that readers take only for an index lookup.
//!
//! Descriptors (`files.rs`): the `.log` is held in a [`FileSlot`]. The active segment pins it;
//! an inactive segment's file is opened on its first read and closed by the LRU when the budget
//! needs room (the next read reopens it at the current path, so renames are followed). An
//! inactive segment's index bytes are read on the first lookup into the same [`OpenSegment`]
//! and dropped with it; the active segment's indexes are in memory (`index_file.rs`).
//! Lock order: the slot before the state mutex (opening reads the path from the state), never
//! the other way round.

use std::fs::{self, OpenOptions};
use std::io::{IoSlice, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use shale_protocol::record_batch::{BatchHeader, BATCH_HEADER_LEN, LOG_OVERHEAD};

use crate::config::LogConfig;
use crate::error::{IoContext, LogError, Result};
use crate::files::{FileSlot, OpenFiles, PooledFile};
use crate::index_file::{IndexFile, IndexKind};
use crate::offset_index::OffsetIndex;
use crate::time_index::TimeIndex;
use crate::txn_index::TxnIndex;

mod durability;

pub(crate) use durability::Fsync;

pub(crate) use crate::segment_scan::SegmentBatches;

/// `<20-digit base>` + suffix.
pub(crate) fn file_name(base: i64, suffix: &str) -> String {
    format!("{base:020}{suffix}")
}

/// Mutable per-segment bookkeeping.
#[derive(Debug)]
pub(crate) struct SegState {
    pub(crate) log_path: PathBuf,
    pub(crate) offset_index: OffsetIndex,
    pub(crate) time_index: TimeIndex,
    /// Aborted transactions whose marker is in this segment (cached `.txnindex`).
    pub(crate) txn_index: TxnIndex,
    pub(crate) bytes_since_last_index_entry: u64,
    /// Largest batch max-timestamp seen (-1 if none).
    pub(crate) max_timestamp: i64,
    /// Last offset of the batch holding `max_timestamp`.
    pub(crate) offset_of_max_timestamp: i64,
    /// Max timestamp of the first batch (the time-based roll reference), if any.
    pub(crate) first_batch_timestamp: Option<i64>,
    created_ms: i64,
    roll_jitter_ms: i64,
    /// Offset after the last batch in the segment.
    pub(crate) next_offset: i64,
}

/// The open `.log` of a segment and, once inactive, its index bytes read on the first lookup.
#[derive(Debug)]
pub(crate) struct OpenSegment {
    pub(crate) log: PooledFile,
    offset_index: Mutex<Option<Bytes>>,
    time_index: Mutex<Option<Bytes>>,
}

impl OpenSegment {
    fn new(log: PooledFile) -> OpenSegment {
        OpenSegment {
            log,
            offset_index: Mutex::new(None),
            time_index: Mutex::new(None),
        }
    }

    /// Forgets index bytes read while the segment was inactive (it is becoming active).
    fn forget_indexes(&self) {
        *self.offset_index.lock() = None;
        *self.time_index.lock() = None;
    }
}

/// A segment of the log.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) base_offset: i64,
    slot: Arc<FileSlot<OpenSegment>>,
    size: AtomicU64,
    pub(crate) state: Mutex<SegState>,
}

/// Deterministic per-segment jitter in `[0, min(jitter, segment.ms))` (Kafka draws it at random).
fn roll_jitter(config: &LogConfig, base: i64) -> i64 {
    if config.segment_jitter_ms <= 0 {
        return 0;
    }
    let bound = config.segment_jitter_ms.min(config.segment_ms).max(1);
    let mixed = (base as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(29);
    (mixed % bound as u64) as i64
}

/// Writes all of `bufs` at `pos` with vectored writes (no copying of the slices).
fn write_all_vectored_at(
    mut file: &std::fs::File,
    pos: u64,
    bufs: &[&[u8]],
) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(pos))?;
    let mut slices: Vec<IoSlice<'_>> = bufs.iter().map(|b| IoSlice::new(b)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match file.write_vectored(rest) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn read_write() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.read(true).write(true);
    o
}

impl Segment {
    /// Creates a fresh, empty, active (pinned) segment; existing files at that base are replaced.
    pub(crate) fn create(
        files: &OpenFiles,
        dir: &Path,
        base: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<Segment> {
        Segment::create_with_suffix(files, dir, base, "", config, now_ms)
    }

    /// Creates a fresh, empty, pinned segment whose three files carry `suffix` after their usual
    /// names (the cleaner writes `<base>.log.cleaned` etc.); the index files start empty.
    pub(crate) fn create_with_suffix(
        files: &OpenFiles,
        dir: &Path,
        base: i64,
        suffix: &str,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<Segment> {
        let seg = Segment::new(files, dir, base, suffix, config, now_ms);
        {
            let mut st = seg.state.lock();
            let max = config.segment_index_bytes;
            let p = st.offset_index.path().to_path_buf();
            st.offset_index = IndexFile::create(files, p, base, max)?;
            let p = st.time_index.path().to_path_buf();
            st.time_index = IndexFile::create(files, p, base, max)?;
            // No `.txnindex` until an aborted transaction ends here (a stale one goes).
            st.txn_index.reset()?;
        }
        let log_path = seg.log_path();
        seg.slot.pin::<LogError>(|| {
            let mut o = read_write();
            o.create(true).truncate(true);
            let f = files.open_file(&log_path, &o).ctx(&log_path)?;
            Ok(OpenSegment::new(f))
        })?;
        Ok(seg)
    }

    /// Opens an existing segment (not pinned). Returns it and whether it must be recovered (its
    /// `.index` is missing, or the `.log` does not end on a whole batch). Timestamps and the
    /// next offset are loaded from the indexes and a header scan.
    pub(crate) fn open(
        files: &OpenFiles,
        dir: &Path,
        base: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<(Segment, bool)> {
        let seg = Segment::new(files, dir, base, "", config, now_ms);
        let mut needs_recovery = !dir.join(file_name(base, ".index")).exists();
        let h = seg.handle()?;
        let size = h.log.metadata().ctx(&seg.log_path())?.len();
        seg.size.store(size, Ordering::Release);
        let max = config.segment_index_bytes;
        let oi = OffsetIndex::load(files, dir.join(file_name(base, ".index")), base, max, size)?;
        let ti = TimeIndex::load(files, dir.join(file_name(base, ".timeindex")), base, max, 0)?;
        let (ts, off) = ti.last_entry();
        let (_, pos) = oi.last_entry();
        let (txn, txn_sane) = TxnIndex::load(dir.join(file_name(base, ".txnindex")), base)?;
        needs_recovery |= !txn_sane;
        {
            let mut st = seg.state.lock();
            st.txn_index = txn;
            if ts >= 0 {
                st.max_timestamp = ts;
                st.offset_of_max_timestamp = off;
            }
            st.offset_index = oi;
            st.time_index = ti;
        }
        let mut next = base;
        let mut first_ts = None;
        let mut end = u64::from(pos);
        seg.scan_headers_in(&h, u64::from(pos), size, |p, hd| {
            if p == 0 {
                first_ts = Some(hd.max_timestamp());
            }
            next = hd.next_offset();
            end = p + hd.size() as u64;
            true
        })?;
        // Bytes after the last whole batch (a torn write the marker did not cover): recover.
        needs_recovery |= end != size;
        if pos != 0 {
            first_ts = seg
                .read_header_in(&h, 0, size)?
                .map(|hd| hd.max_timestamp());
        }
        let mut st = seg.state.lock();
        st.next_offset = next;
        st.first_batch_timestamp = first_ts;
        drop(st);
        Ok((seg, needs_recovery))
    }

    fn new(
        files: &OpenFiles,
        dir: &Path,
        base: i64,
        suffix: &str,
        config: &LogConfig,
        now_ms: i64,
    ) -> Segment {
        let path = |ext: &str| dir.join(file_name(base, &format!("{ext}{suffix}")));
        let max = config.segment_index_bytes;
        Segment {
            base_offset: base,
            slot: FileSlot::new(files),
            size: AtomicU64::new(0),
            state: Mutex::new(SegState {
                log_path: path(".log"),
                offset_index: IndexFile::empty(files, path(".index"), base, max),
                time_index: IndexFile::empty(files, path(".timeindex"), base, max),
                txn_index: TxnIndex::empty(path(".txnindex")),
                bytes_since_last_index_entry: 0,
                max_timestamp: -1,
                offset_of_max_timestamp: base,
                first_batch_timestamp: None,
                created_ms: now_ms,
                roll_jitter_ms: roll_jitter(config, base),
                next_offset: base,
            }),
        }
    }

    /// The open `.log` (reopened at its current path if the LRU closed it).
    pub(crate) fn handle(&self) -> Result<Arc<OpenSegment>> {
        self.slot.get::<LogError>(|| self.open_log())
    }

    fn open_log(&self) -> Result<OpenSegment> {
        let files = self.slot.files();
        let path = self.log_path();
        let f = match files.open_file(&path, &read_write()) {
            // Renamed between reading the path and opening it: follow the new name once.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.log_path() != path => {
                let p = self.log_path();
                files.open_file(&p, &read_write()).ctx(&p)?
            }
            r => r.ctx(&path)?,
        };
        Ok(OpenSegment::new(f))
    }

    /// Makes this the active segment: `.log` pinned open, indexes in memory, entry limits from
    /// `segment.index.bytes`.
    pub(crate) fn activate(&self, index_bytes: i32) -> Result<()> {
        let h = self.slot.pin::<LogError>(|| self.open_log())?;
        h.forget_indexes();
        let mut st = self.state.lock();
        st.offset_index.ensure_loaded()?;
        st.offset_index.set_max_bytes(index_bytes);
        st.time_index.ensure_loaded()?;
        st.time_index.set_max_bytes(index_bytes);
        Ok(())
    }

    /// The open-files budget this segment counts against.
    pub(crate) fn files(&self) -> &OpenFiles {
        self.slot.files()
    }

    /// Gives the `.log` back to the LRU (no longer active, or out of the log).
    pub(crate) fn release(&self) {
        self.slot.release();
    }

    /// Committed bytes in the `.log`.
    pub(crate) fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    pub(crate) fn set_size(&self, size: u64) {
        self.size.store(size, Ordering::Release);
    }

    /// Offset after the last batch.
    pub(crate) fn next_offset(&self) -> i64 {
        self.state.lock().next_offset
    }

    /// Path of the `.log` file.
    pub(crate) fn log_path(&self) -> PathBuf {
        self.state.lock().log_path.clone()
    }

    /// Kafka's roll conditions (§2.6) for an append of `set_size` bytes, max timestamp
    /// `max_ts` and last offset `last_offset`.
    pub(crate) fn should_roll(
        &self,
        config: &LogConfig,
        set_size: u64,
        max_ts: i64,
        last_offset: i64,
        now_ms: i64,
    ) -> bool {
        let size = self.size();
        let st = self.state.lock();
        let waited = match st.first_batch_timestamp {
            Some(t) if t >= 0 => max_ts.saturating_sub(t),
            _ => now_ms.saturating_sub(st.created_ms),
        };
        let rel = last_offset - self.base_offset;
        (size as i64) > i64::from(config.segment_bytes) - set_size as i64
            || (size > 0 && waited > config.max_segment_ms().saturating_sub(st.roll_jitter_ms))
            || st.offset_index.is_full()
            || st.time_index.is_full()
            || !(0..=i64::from(i32::MAX)).contains(&rel)
    }

    /// Time-based roll check without an incoming append (used by housekeeping).
    pub(crate) fn time_to_roll(&self, config: &LogConfig, now_ms: i64) -> bool {
        if self.size() == 0 {
            return false;
        }
        let st = self.state.lock();
        let waited = match st.first_batch_timestamp {
            Some(t) if t >= 0 => now_ms.saturating_sub(t),
            _ => now_ms.saturating_sub(st.created_ms),
        };
        waited > config.max_segment_ms().saturating_sub(st.roll_jitter_ms)
    }

    /// Appends `bufs` (whole batches: header copies + body slices) as one append, then applies the
    /// sparse index rule (§2.2). Called only under the log's append lock.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn append(
        &self,
        bufs: &[&[u8]],
        total: u64,
        largest_offset: i64,
        max_ts: i64,
        offset_of_max_ts: i64,
        first_ts: i64,
        index_interval: i32,
    ) -> Result<()> {
        let pos = self.size();
        let position = u32::try_from(pos).map_err(|_| {
            LogError::corrupt(
                self.log_path(),
                format!("segment position {pos} exceeds u32"),
            )
        })?;
        // The write happens outside the state lock so readers' index lookups never wait on I/O.
        let h = self.handle()?;
        if let Err(e) = write_all_vectored_at(&h.log, pos, bufs) {
            // A partial write (disk full) is cut back at once, so the file ends with the last
            // whole batch for Kafka's tools and for the next start, and the next append
            // starts at a clean position.
            if let Err(cut) = h.log.set_len(pos) {
                tracing::error!(path = %self.log_path().display(), error = %cut, "cannot cut a failed append back; recovery truncates it at the next start");
            }
            return Err(LogError::io(self.log_path(), e));
        }
        let mut st = self.state.lock();
        if pos == 0 {
            st.first_batch_timestamp = Some(first_ts);
        }
        if max_ts > st.max_timestamp {
            st.max_timestamp = max_ts;
            st.offset_of_max_timestamp = offset_of_max_ts;
        }
        if st.bytes_since_last_index_entry > index_interval.max(0) as u64 {
            if !st.offset_index.is_full() {
                st.offset_index.append(largest_offset, position)?;
            }
            let (t, o) = (st.max_timestamp, st.offset_of_max_timestamp);
            if !st.time_index.is_full() {
                st.time_index.maybe_append(t, o, false)?;
            }
            st.bytes_since_last_index_entry = 0;
        }
        st.bytes_since_last_index_entry += total;
        st.next_offset = largest_offset + 1;
        drop(st);
        self.size.store(pos + total, Ordering::Release);
        Ok(())
    }

    /// Reads the header at `pos` of the open `.log` `h` if a whole header lies below `limit`.
    pub(crate) fn read_header_in(
        &self,
        h: &OpenSegment,
        pos: u64,
        limit: u64,
    ) -> Result<Option<BatchHeader>> {
        if pos + BATCH_HEADER_LEN as u64 > limit {
            return Ok(None);
        }
        let mut buf = [0u8; BATCH_HEADER_LEN];
        h.log
            .read_exact_at(&mut buf, pos)
            .map_err(|e| LogError::io(self.log_path(), e))?;
        let hd = BatchHeader::from_slice(&buf)
            .map_err(|e| LogError::corrupt(self.log_path(), e.to_string()))?;
        if hd.batch_length() < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32
            || pos + hd.size() as u64 > limit
        {
            return Ok(None);
        }
        Ok(Some(hd))
    }

    /// Calls `f(position, header)` for every whole batch from `pos` below `limit` until it
    /// returns false.
    pub(crate) fn scan_headers_in(
        &self,
        h: &OpenSegment,
        mut pos: u64,
        limit: u64,
        mut f: impl FnMut(u64, &BatchHeader) -> bool,
    ) -> Result<()> {
        while let Some(hd) = self.read_header_in(h, pos, limit)? {
            if !f(pos, &hd) {
                break;
            }
            pos += hd.size() as u64;
        }
        Ok(())
    }

    /// [`Self::scan_headers_in`] on the segment's open `.log`.
    pub(crate) fn scan_headers(
        &self,
        pos: u64,
        limit: u64,
        f: impl FnMut(u64, &BatchHeader) -> bool,
    ) -> Result<()> {
        let h = self.handle()?;
        self.scan_headers_in(&h, pos, limit, f)
    }

    /// Greatest `.index` entry with offset <= `target` as `(offset, position)`.
    pub(crate) fn offset_lookup(&self, target: i64) -> Result<(i64, u32)> {
        {
            let st = self.state.lock();
            if st.offset_index.is_loaded() {
                return Ok(st.offset_index.lookup(target));
            }
        }
        let h = self.handle()?;
        let bytes = self.index_bytes(&h.offset_index, |st| &st.offset_index)?;
        Ok(crate::offset_index::lookup_in(
            &bytes,
            self.base_offset,
            target,
        ))
    }

    /// Greatest `.timeindex` entry with timestamp <= `target` as `(timestamp, offset)`.
    pub(crate) fn time_lookup(&self, target: i64) -> Result<(i64, i64)> {
        {
            let st = self.state.lock();
            if st.time_index.is_loaded() {
                return Ok(st.time_index.lookup(target));
            }
        }
        let h = self.handle()?;
        let bytes = self.index_bytes(&h.time_index, |st| &st.time_index)?;
        Ok(crate::time_index::lookup_in(
            &bytes,
            self.base_offset,
            target,
        ))
    }

    /// The bytes of an unloaded index, read once per opening of the segment.
    fn index_bytes<K: IndexKind>(
        &self,
        cache: &Mutex<Option<Bytes>>,
        index: impl Fn(&SegState) -> &IndexFile<K>,
    ) -> Result<Bytes> {
        let mut c = cache.lock();
        if let Some(b) = c.as_ref() {
            return Ok(b.clone());
        }
        let st = self.state.lock();
        let idx = index(&st);
        if idx.is_loaded() {
            return Ok(Bytes::copy_from_slice(idx.bytes()));
        }
        let b = idx.read_entries()?;
        drop(st);
        *c = Some(b.clone());
        Ok(b)
    }

    /// Position and header of the first batch whose last offset is >= `offset`.
    pub(crate) fn translate_offset(
        &self,
        offset: i64,
        limit: u64,
    ) -> Result<Option<(u64, BatchHeader)>> {
        let (_, start) = self.offset_lookup(offset)?;
        let h = self.handle()?;
        let mut found = None;
        self.scan_headers_in(&h, u64::from(start), limit, |p, hd| {
            if hd.last_offset() >= offset {
                found = Some((p, *hd));
                false
            } else {
                true
            }
        })?;
        Ok(found)
    }

    /// Reads `[pos, pos+len)` with one positional read into a fresh buffer.
    pub(crate) fn read_bytes(&self, pos: u64, len: usize) -> Result<Bytes> {
        let h = self.handle()?;
        let mut buf = BytesMut::zeroed(len);
        h.log
            .read_exact_at(&mut buf, pos)
            .map_err(|e| LogError::io(self.log_path(), e))?;
        Ok(buf.freeze())
    }

    /// Whole batches from the one containing `fetch_offset`, below `max_offset`, up to
    /// `max_bytes` (the first one whole if `min_one_batch`). `None` if no batch in this segment
    /// reaches `fetch_offset`.
    pub(crate) fn read(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<Option<Bytes>> {
        let limit = self.size();
        let Some((start, first)) = self.translate_offset(fetch_offset, limit)? else {
            return Ok(None);
        };
        if first.last_offset() >= max_offset || (first.size() > max_bytes && !min_one_batch) {
            return Ok(Some(Bytes::new()));
        }
        let mut end = start + first.size() as u64;
        let mut total = first.size();
        let h = self.handle()?;
        self.scan_headers_in(&h, end, limit, |_, hd| {
            if hd.last_offset() >= max_offset || total + hd.size() > max_bytes {
                return false;
            }
            total += hd.size();
            end += hd.size() as u64;
            true
        })?;
        self.read_bytes(start, (end - start) as usize).map(Some)
    }

    /// Iterates whole batches (full bytes) from `pos` with chunked reads.
    pub(crate) fn batches_from(&self, pos: u64) -> SegmentBatches<'_> {
        SegmentBatches::new(self, pos, self.size())
    }

    /// `largestTimestamp()` (§2.7): max timestamp so far, else the `.log` mtime.
    pub(crate) fn largest_timestamp(&self) -> i64 {
        let path = {
            let st = self.state.lock();
            if st.max_timestamp >= 0 {
                return st.max_timestamp;
            }
            st.log_path.clone()
        };
        fs::metadata(path)
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64)
    }

    /// Truncates at `pos` bytes (keeping whole batches below it), fixing indexes and state.
    pub(crate) fn truncate_bytes(&self, pos: u64, next_offset: i64) -> Result<()> {
        let h = self.handle()?;
        let mut st = self.state.lock();
        h.log.set_len(pos).ctx(&st.log_path)?;
        st.offset_index.truncate_to_offset(next_offset)?;
        st.time_index.truncate_to_offset(next_offset)?;
        st.txn_index.truncate_to(self.slot.files(), next_offset)?;
        let (t, o) = st.time_index.last_entry();
        st.max_timestamp = t;
        st.offset_of_max_timestamp = o;
        st.next_offset = next_offset;
        st.bytes_since_last_index_entry =
            pos.saturating_sub(u64::from(st.offset_index.last_entry().1));
        if pos == 0 {
            st.first_batch_timestamp = None;
        }
        drop(st);
        self.size.store(pos, Ordering::Release);
        Ok(())
    }

    /// Drops every batch whose last offset is >= `offset` (Kafka truncates at batch start).
    pub(crate) fn truncate_to(&self, offset: i64) -> Result<()> {
        let limit = self.size();
        match self.translate_offset(offset, limit)? {
            Some((pos, h)) => self.truncate_bytes(pos, h.base_offset()),
            None => Ok(()),
        }
    }

    /// Max timestamp of the first batch, if the segment has one.
    pub(crate) fn first_batch_timestamp(&self) -> Option<i64> {
        self.state.lock().first_batch_timestamp
    }

    /// Sets the `.log` file's modification time (the cleaner keeps the replaced segment's).
    pub(crate) fn set_modified(&self, t: std::time::SystemTime) -> Result<()> {
        self.handle()?
            .log
            .set_modified(t)
            .map_err(|e| LogError::io(self.log_path(), e))
    }

    /// Modification time of the `.log` file.
    pub(crate) fn modified(&self) -> Result<std::time::SystemTime> {
        let path = self.log_path();
        fs::metadata(&path).and_then(|m| m.modified()).ctx(&path)
    }

    /// Renames all files of this segment by appending `suffix`; returns the new paths.
    pub(crate) fn rename_with_suffix(&self, suffix: &str) -> Result<Vec<PathBuf>> {
        self.rename_files(|p| {
            let mut s = p.as_os_str().to_owned();
            s.push(suffix);
            Some(PathBuf::from(s))
        })
    }

    /// Renames all files of this segment by replacing the trailing `from` with `to` in their names.
    pub(crate) fn replace_suffix(&self, from: &str, to: &str) -> Result<Vec<PathBuf>> {
        self.rename_files(|p| {
            let s = p.to_str()?;
            s.strip_suffix(from)
                .map(|stem| PathBuf::from(format!("{stem}{to}")))
        })
    }

    /// Renames each existing file to `new_name(path)` (left alone when `None`); returns new
    /// paths. Index paths follow even when their file is not written yet.
    fn rename_files(&self, new_name: impl Fn(&Path) -> Option<PathBuf>) -> Result<Vec<PathBuf>> {
        let mut st = self.state.lock();
        let mut out = Vec::new();
        let add = |p: &Path| -> PathBuf { new_name(p).unwrap_or_else(|| p.to_path_buf()) };
        let new_log = add(&st.log_path);
        fs::rename(&st.log_path, &new_log).ctx(&st.log_path)?;
        st.log_path = new_log.clone();
        out.push(new_log);
        for time in [false, true] {
            let old = if time {
                st.time_index.path().to_path_buf()
            } else {
                st.offset_index.path().to_path_buf()
            };
            let n = add(&old);
            if old.exists() {
                fs::rename(&old, &n).ctx(&old)?;
                out.push(n.clone());
            }
            if time {
                st.time_index.set_path(n);
            } else {
                st.offset_index.set_path(n);
            }
        }
        let old = st.txn_index.path().to_path_buf();
        let n = add(&old);
        if old.exists() {
            fs::rename(&old, &n).ctx(&old)?;
            out.push(n.clone());
        }
        st.txn_index.set_path(n);
        Ok(out)
    }

    /// Re-points paths after the partition dir was renamed.
    pub(crate) fn set_dir(&self, dir: &Path) {
        let mut st = self.state.lock();
        let re = |p: &Path| {
            p.file_name()
                .map_or_else(|| p.to_path_buf(), |n| dir.join(n))
        };
        st.log_path = re(&st.log_path);
        let oi = re(st.offset_index.path());
        st.offset_index.set_path(oi);
        let ti = re(st.time_index.path());
        st.time_index.set_path(ti);
        let xi = re(st.txn_index.path());
        st.txn_index.set_path(xi);
    }

    /// Removes all files (the segment must already be out of the log).
    pub(crate) fn delete_files(&self) -> Result<()> {
        self.release();
        let st = self.state.lock();
        for p in [
            st.log_path.as_path(),
            st.offset_index.path(),
            st.time_index.path(),
            st.txn_index.path(),
        ] {
            match fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io(p, e)),
            }
        }
        Ok(())
    }

    /// Whether the `.log` is open right now.
    pub(crate) fn is_open(&self) -> bool {
        self.slot.peek().is_some()
    }
}
