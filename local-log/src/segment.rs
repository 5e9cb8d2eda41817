//! One log segment: `<base>.log` plus its `.index` and `.timeindex` (formats.md §2).
//!
//! Appends come from the owning `Log` under its append lock; readers use positional reads
//! (`FileExt::read_at`) bounded by `size`, an atomic published after each write, so they never
//! wait for the append lock. Mutable bookkeeping (indexes, counters, paths) sits behind a short
//! `parking_lot::Mutex` that readers take only for an index lookup.

use std::fs::{self, File, OpenOptions};
use std::io::{IoSlice, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use shale_protocol::record_batch::{
    BatchError, BatchHeader, RecordBatch, BATCH_HEADER_LEN, LOG_OVERHEAD,
};

use crate::config::LogConfig;
use crate::error::{IoContext, LogError, Result};
use crate::offset_index::OffsetIndex;
use crate::time_index::TimeIndex;

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
    bytes_since_last_index_entry: u64,
    /// Largest batch max-timestamp seen (-1 if none).
    pub(crate) max_timestamp: i64,
    /// Last offset of the batch holding `max_timestamp`.
    pub(crate) offset_of_max_timestamp: i64,
    /// Max timestamp of the first batch (the time-based roll reference), if any.
    first_batch_timestamp: Option<i64>,
    created_ms: i64,
    roll_jitter_ms: i64,
    /// Offset after the last batch in the segment.
    pub(crate) next_offset: i64,
}

/// A segment of the log.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) base_offset: i64,
    file: File,
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
fn write_all_vectored_at(mut file: &File, pos: u64, bufs: &[&[u8]]) -> std::io::Result<()> {
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

impl Segment {
    /// Creates a fresh, empty segment (existing files at that base are replaced).
    pub(crate) fn create(
        dir: &Path,
        base: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<Segment> {
        Segment::create_with_suffix(dir, base, "", config, now_ms)
    }

    /// Creates a fresh, empty segment whose three files carry `suffix` after their usual names
    /// (the cleaner writes `<base>.log.cleaned` etc.).
    pub(crate) fn create_with_suffix(
        dir: &Path,
        base: i64,
        suffix: &str,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<Segment> {
        let log_path = dir.join(file_name(base, &format!(".log{suffix}")));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .ctx(&log_path)?;
        for ext in [".index", ".timeindex"] {
            let p = dir.join(file_name(base, &format!("{ext}{suffix}")));
            if p.exists() {
                fs::remove_file(&p).ctx(&p)?;
            }
        }
        let mut seg = Segment::from_parts(dir, base, suffix, file, log_path, 0, config, now_ms)?;
        seg.state
            .get_mut()
            .offset_index
            .resize(config.segment_index_bytes)?;
        seg.state
            .get_mut()
            .time_index
            .resize(config.segment_index_bytes)?;
        Ok(seg)
    }

    /// Opens an existing segment. Returns it and whether it must be recovered (its `.index` is
    /// missing, or the `.log` does not end on a whole batch). Timestamps and the next offset are loaded from the indexes and a header scan.
    pub(crate) fn open(
        dir: &Path,
        base: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<(Segment, bool)> {
        let log_path = dir.join(file_name(base, ".log"));
        let mut needs_recovery = !dir.join(file_name(base, ".index")).exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .ctx(&log_path)?;
        let size = file.metadata().ctx(&log_path)?.len();
        let seg = Segment::from_parts(dir, base, "", file, log_path, size, config, now_ms)?;
        {
            let mut st = seg.state.lock();
            let (ts, off) = st.time_index.last_entry()?;
            if ts >= 0 {
                st.max_timestamp = ts;
                st.offset_of_max_timestamp = off;
            }
            let (_, pos) = st.offset_index.last_entry()?;
            drop(st);
            let mut next = base;
            let mut first_ts = None;
            let mut end = u64::from(pos);
            seg.scan_headers(u64::from(pos), size, |p, h| {
                if p == 0 {
                    first_ts = Some(h.max_timestamp());
                }
                next = h.next_offset();
                end = p + h.size() as u64;
                true
            })?;
            // Bytes after the last whole batch (a torn write the marker did not cover): recover.
            needs_recovery |= end != size;
            if pos != 0 {
                first_ts = seg.read_header(0, size)?.map(|h| h.max_timestamp());
            }
            let mut st = seg.state.lock();
            st.next_offset = next;
            st.first_batch_timestamp = first_ts;
        }
        Ok((seg, needs_recovery))
    }

    #[allow(clippy::too_many_arguments)]
    fn from_parts(
        dir: &Path,
        base: i64,
        suffix: &str,
        file: File,
        log_path: PathBuf,
        size: u64,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<Segment> {
        let offset_index = OffsetIndex::open(
            &dir.join(file_name(base, &format!(".index{suffix}"))),
            base,
            config.segment_index_bytes,
            size,
        )?;
        let time_index = TimeIndex::open(
            &dir.join(file_name(base, &format!(".timeindex{suffix}"))),
            base,
            config.segment_index_bytes,
        )?;
        Ok(Segment {
            base_offset: base,
            file,
            size: AtomicU64::new(size),
            state: Mutex::new(SegState {
                log_path,
                offset_index,
                time_index,
                bytes_since_last_index_entry: 0,
                max_timestamp: -1,
                offset_of_max_timestamp: base,
                first_batch_timestamp: None,
                created_ms: now_ms,
                roll_jitter_ms: roll_jitter(config, base),
                next_offset: base,
            }),
        })
    }

    /// Committed bytes in the `.log`.
    pub(crate) fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
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
        write_all_vectored_at(&self.file, pos, bufs)
            .map_err(|e| LogError::io(self.log_path(), e))?;
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

    /// Reads the header at `pos` if a whole header lies below `limit`.
    pub(crate) fn read_header(&self, pos: u64, limit: u64) -> Result<Option<BatchHeader>> {
        if pos + BATCH_HEADER_LEN as u64 > limit {
            return Ok(None);
        }
        let mut buf = [0u8; BATCH_HEADER_LEN];
        self.file
            .read_exact_at(&mut buf, pos)
            .map_err(|e| LogError::io(self.log_path(), e))?;
        let h = BatchHeader::from_slice(&buf)
            .map_err(|e| LogError::corrupt(self.log_path(), e.to_string()))?;
        if h.batch_length() < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32
            || pos + h.size() as u64 > limit
        {
            return Ok(None);
        }
        Ok(Some(h))
    }

    /// Calls `f(position, header)` for every whole batch from `pos` below `limit` until it
    /// returns false.
    pub(crate) fn scan_headers(
        &self,
        mut pos: u64,
        limit: u64,
        mut f: impl FnMut(u64, &BatchHeader) -> bool,
    ) -> Result<()> {
        while let Some(h) = self.read_header(pos, limit)? {
            if !f(pos, &h) {
                break;
            }
            pos += h.size() as u64;
        }
        Ok(())
    }

    /// Position and header of the first batch whose last offset is >= `offset`.
    pub(crate) fn translate_offset(
        &self,
        offset: i64,
        limit: u64,
    ) -> Result<Option<(u64, BatchHeader)>> {
        let (_, start) = self.state.lock().offset_index.lookup(offset)?;
        let mut found = None;
        self.scan_headers(u64::from(start), limit, |p, h| {
            if h.last_offset() >= offset {
                found = Some((p, *h));
                false
            } else {
                true
            }
        })?;
        Ok(found)
    }

    /// Reads `[pos, pos+len)` with one positional read into a fresh buffer.
    pub(crate) fn read_bytes(&self, pos: u64, len: usize) -> Result<Bytes> {
        let mut buf = BytesMut::zeroed(len);
        self.file
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
        self.scan_headers(end, limit, |_, h| {
            if h.last_offset() >= max_offset || total + h.size() > max_bytes {
                return false;
            }
            total += h.size();
            end += h.size() as u64;
            true
        })?;
        self.read_bytes(start, (end - start) as usize).map(Some)
    }

    /// Iterates whole batches (full bytes) from `pos` with chunked reads.
    pub(crate) fn batches_from(&self, pos: u64) -> SegmentBatches<'_> {
        SegmentBatches {
            seg: self,
            pos,
            limit: self.size(),
            chunk: Bytes::new(),
            chunk_start: 0,
        }
    }

    /// Final time-index entry, indexes trimmed, everything fsynced (roll/close).
    pub(crate) fn on_become_inactive(&self) -> Result<()> {
        let mut st = self.state.lock();
        let (t, o) = (st.max_timestamp, st.offset_of_max_timestamp);
        if t >= 0 {
            st.time_index.maybe_append(t, o, true)?;
        }
        // Trimmed and dropped from memory: lookups on inactive segments read the files.
        st.offset_index.unload()?;
        st.time_index.unload()?;
        drop(st);
        self.flush()
    }

    /// Trims both indexes and drops their entries from memory (inactive segment at load).
    pub(crate) fn unload_indexes(&self) -> Result<()> {
        let mut st = self.state.lock();
        st.offset_index.unload()?;
        st.time_index.unload()
    }

    /// Re-grows the indexes of the active segment.
    pub(crate) fn resize_indexes(&self, index_bytes: i32) -> Result<()> {
        let mut st = self.state.lock();
        st.offset_index.resize(index_bytes)?;
        st.time_index.resize(index_bytes)
    }

    /// fsync of the `.log` and both indexes.
    pub(crate) fn flush(&self) -> Result<()> {
        let (log_path, oi, ti) = {
            let st = self.state.lock();
            (
                st.log_path.clone(),
                st.offset_index.handle(),
                st.time_index.handle(),
            )
        };
        // fsync outside the state lock: readers keep going.
        self.file.sync_data().ctx(&log_path)?;
        oi.0.sync_all().ctx(&oi.1)?;
        ti.0.sync_all().ctx(&ti.1)
    }

    /// `largestTimestamp()` (§2.7): max timestamp so far, else the `.log` mtime.
    pub(crate) fn largest_timestamp(&self) -> i64 {
        let st = self.state.lock();
        if st.max_timestamp >= 0 {
            return st.max_timestamp;
        }
        self.file
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64)
    }

    /// Truncates at `pos` bytes (keeping whole batches below it), fixing indexes and state.
    pub(crate) fn truncate_bytes(&self, pos: u64, next_offset: i64) -> Result<()> {
        let mut st = self.state.lock();
        self.file.set_len(pos).ctx(&st.log_path)?;
        st.offset_index.truncate_to(next_offset)?;
        st.time_index.truncate_to(next_offset)?;
        let (t, o) = st.time_index.last_entry()?;
        st.max_timestamp = t;
        st.offset_of_max_timestamp = o;
        st.next_offset = next_offset;
        st.bytes_since_last_index_entry =
            pos.saturating_sub(u64::from(st.offset_index.last_entry()?.1));
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
        self.file
            .set_modified(t)
            .map_err(|e| LogError::io(self.log_path(), e))
    }

    /// Modification time of the `.log` file.
    pub(crate) fn modified(&self) -> Result<std::time::SystemTime> {
        self.file
            .metadata()
            .and_then(|m| m.modified())
            .map_err(|e| LogError::io(self.log_path(), e))
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

    /// Renames each existing file to `new_name(path)` (left alone when `None`); returns new paths.
    fn rename_files(&self, new_name: impl Fn(&Path) -> Option<PathBuf>) -> Result<Vec<PathBuf>> {
        let mut st = self.state.lock();
        let mut out = Vec::new();
        let add = |p: &Path| -> PathBuf { new_name(p).unwrap_or_else(|| p.to_path_buf()) };
        let new_log = add(&st.log_path);
        fs::rename(&st.log_path, &new_log).ctx(&st.log_path)?;
        st.log_path = new_log.clone();
        out.push(new_log);
        let oi = st.offset_index.path().to_path_buf();
        if oi.exists() {
            let n = add(&oi);
            fs::rename(&oi, &n).ctx(&oi)?;
            st.offset_index.set_path(n.clone());
            out.push(n);
        }
        let ti = st.time_index.path().to_path_buf();
        if ti.exists() {
            let n = add(&ti);
            fs::rename(&ti, &n).ctx(&ti)?;
            st.time_index.set_path(n.clone());
            out.push(n);
        }
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
    }

    /// Segment recovery (§5.1 step 3): re-validates every batch, rebuilds both indexes with the
    /// sparse rule, calls `on_batch` for each valid batch, truncates at the first invalid or
    /// partial one. Returns the number of bytes truncated.
    pub(crate) fn recover(
        &self,
        index_interval: i32,
        on_batch: &mut dyn FnMut(&RecordBatch) -> Result<()>,
    ) -> Result<u64> {
        let file_size = self
            .file
            .metadata()
            .map_err(|e| LogError::io(self.log_path(), e))?
            .len();
        self.size.store(file_size, Ordering::Release);
        {
            let mut st = self.state.lock();
            st.offset_index.reset()?;
            st.time_index.reset()?;
            st.max_timestamp = -1;
            st.offset_of_max_timestamp = self.base_offset;
            st.first_batch_timestamp = None;
        }
        let mut valid: u64 = 0;
        let mut last_index_pos: u64 = 0;
        let mut next_offset = self.base_offset;
        let mut it = self.batches_from(0);
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
        let truncated = file_size - valid;
        let mut st = self.state.lock();
        if truncated > 0 {
            self.file.set_len(valid).ctx(&st.log_path)?;
        }
        st.next_offset = next_offset;
        st.bytes_since_last_index_entry = valid - last_index_pos;
        let (t, o) = (st.max_timestamp, st.offset_of_max_timestamp);
        if t >= 0 {
            st.time_index.maybe_append(t, o, true)?;
        }
        st.offset_index.trim()?;
        st.time_index.trim()?;
        drop(st);
        self.size.store(valid, Ordering::Release);
        Ok(truncated)
    }

    /// Removes all files (the segment must already be out of the log).
    pub(crate) fn delete_files(&self) -> Result<()> {
        let st = self.state.lock();
        for p in [
            st.log_path.as_path(),
            st.offset_index.path(),
            st.time_index.path(),
        ] {
            match fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io(p, e)),
            }
        }
        Ok(())
    }
}

/// Chunked sequential reader of whole batches from a segment file.
#[derive(Debug)]
pub(crate) struct SegmentBatches<'a> {
    seg: &'a Segment,
    pos: u64,
    limit: u64,
    chunk: Bytes,
    chunk_start: u64,
}

const CHUNK: u64 = 1 << 20;

impl SegmentBatches<'_> {
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
        self.chunk = self.seg.read_bytes(pos, len as usize)?;
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
