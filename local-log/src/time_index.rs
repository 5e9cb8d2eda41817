//! The `.timeindex` file of a segment (formats.md §2.3): 12-byte big-endian entries
//! `(timestamp: i64, offset - base: u32)`. An entry is added only when its timestamp is strictly
//! larger than the last one (equal is skipped silently); the last slot is reserved for the final
//! entry written on roll/close. Same write-through/no-mmap design as `offset_index.rs`
//! (in memory while active, binary-searched on disk once unloaded).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{IoContext, LogError, Result};

/// Bytes per entry.
pub const TIME_ENTRY_SIZE: usize = 12;

/// In-memory view + file of one time index.
#[derive(Debug)]
pub(crate) struct TimeIndex {
    path: PathBuf,
    file: Arc<File>,
    base_offset: i64,
    entries: Vec<(i64, u32)>,
    /// `Some(count)` when the entries were dropped from memory (file trimmed to `count` entries).
    unloaded: Option<usize>,
    max_entries: usize,
}

impl TimeIndex {
    /// Opens (creating if missing) the index; only the valid prefix of an untrimmed file is kept
    /// (strictly increasing timestamps, non-decreasing offsets, no all-zero entries).
    pub(crate) fn open(path: &Path, base_offset: i64, max_index_bytes: i32) -> Result<TimeIndex> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .ctx(path)?;
        let len = file.metadata().ctx(path)?.len() as usize;
        let mut raw = vec![0u8; len];
        file.read_exact_at(&mut raw, 0).ctx(path)?;
        let mut entries: Vec<(i64, u32)> = Vec::with_capacity(len / TIME_ENTRY_SIZE);
        for c in raw.chunks_exact(TIME_ENTRY_SIZE) {
            let mut t = [0u8; 8];
            t.copy_from_slice(&c[..8]);
            let ts = i64::from_be_bytes(t);
            let rel = u32::from_be_bytes([c[8], c[9], c[10], c[11]]);
            let valid = !(ts == 0 && rel == 0)
                && rel <= i32::MAX as u32
                && entries.last().is_none_or(|&(lt, lr)| ts > lt && rel >= lr);
            if !valid {
                break;
            }
            entries.push((ts, rel));
        }
        let max_entries = (max_index_bytes.max(0) as usize / TIME_ENTRY_SIZE).max(entries.len());
        Ok(TimeIndex {
            path: path.to_path_buf(),
            file: Arc::new(file),
            base_offset,
            entries,
            unloaded: None,
            max_entries,
        })
    }

    /// Path of the file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Re-points the path after a rename.
    pub(crate) fn set_path(&mut self, path: PathBuf) {
        self.path = path;
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.unloaded.unwrap_or(self.entries.len())
    }

    fn decode(c: &[u8]) -> (i64, u32) {
        let mut t = [0u8; 8];
        t.copy_from_slice(&c[..8]);
        (
            i64::from_be_bytes(t),
            u32::from_be_bytes([c[8], c[9], c[10], c[11]]),
        )
    }

    /// Entry `i` as stored (timestamp, relative offset).
    fn entry(&self, i: usize) -> Result<(i64, u32)> {
        if self.unloaded.is_none() {
            return self
                .entries
                .get(i)
                .copied()
                .ok_or_else(|| LogError::corrupt(&self.path, format!("no time index entry {i}")));
        }
        let mut b = [0u8; TIME_ENTRY_SIZE];
        self.file
            .read_exact_at(&mut b, (i * TIME_ENTRY_SIZE) as u64)
            .ctx(&self.path)?;
        Ok(Self::decode(&b))
    }

    /// Drops the in-memory entries after trimming the file (inactive segment).
    pub(crate) fn unload(&mut self) -> Result<()> {
        if self.unloaded.is_none() {
            self.trim()?;
            self.unloaded = Some(self.entries.len());
            self.entries = Vec::new();
        }
        Ok(())
    }

    /// Reads the entries back into memory before a mutation.
    fn ensure_loaded(&mut self) -> Result<()> {
        if let Some(n) = self.unloaded {
            let mut raw = vec![0u8; n * TIME_ENTRY_SIZE];
            self.file.read_exact_at(&mut raw, 0).ctx(&self.path)?;
            self.entries = raw
                .chunks_exact(TIME_ENTRY_SIZE)
                .map(Self::decode)
                .collect();
            self.unloaded = None;
        }
        Ok(())
    }

    /// Full when `entries >= max_entries - 1` (the last slot is for the final entry).
    pub(crate) fn is_full(&self) -> bool {
        self.len() + 1 >= self.max_entries
    }

    /// Last entry as `(timestamp, absolute offset)`, or `(-1, base)` when empty.
    pub(crate) fn last_entry(&self) -> Result<(i64, i64)> {
        match self.len() {
            0 => Ok((-1, self.base_offset)),
            n => {
                let (t, r) = self.entry(n - 1)?;
                Ok((t, self.base_offset.wrapping_add(i64::from(r))))
            }
        }
    }

    /// Appends `(timestamp, offset)` if `timestamp` is strictly above the last entry's.
    /// `skip_full_check` is for the final entry at roll/close.
    pub(crate) fn maybe_append(
        &mut self,
        timestamp: i64,
        offset: i64,
        skip_full_check: bool,
    ) -> Result<()> {
        if !skip_full_check && self.is_full() {
            return Err(LogError::corrupt(&self.path, "time index is full"));
        }
        if self.len() >= self.max_entries {
            return Ok(());
        }
        self.ensure_loaded()?;
        let (last_ts, last_off) = self.last_entry()?;
        if timestamp <= last_ts || (offset < last_off && !self.entries.is_empty()) {
            return Ok(());
        }
        let rel = offset - self.base_offset;
        if !(0..=i64::from(i32::MAX)).contains(&rel) {
            return Err(LogError::corrupt(
                &self.path,
                format!("offset {offset} out of range for base {}", self.base_offset),
            ));
        }
        let mut buf = [0u8; TIME_ENTRY_SIZE];
        buf[..8].copy_from_slice(&timestamp.to_be_bytes());
        buf[8..].copy_from_slice(&(rel as u32).to_be_bytes());
        let at = (self.entries.len() * TIME_ENTRY_SIZE) as u64;
        self.file.write_all_at(&buf, at).ctx(&self.path)?;
        self.entries.push((timestamp, rel as u32));
        Ok(())
    }

    /// Greatest entry with timestamp <= `target` as `(timestamp, offset)`, else `(-1, base)`.
    pub(crate) fn lookup(&self, target: i64) -> Result<(i64, i64)> {
        let (mut lo, mut hi) = (0usize, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.entry(mid)?.0 <= target {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo == 0 {
            Ok((-1, self.base_offset))
        } else {
            let (t, r) = self.entry(lo - 1)?;
            Ok((t, self.base_offset.wrapping_add(i64::from(r))))
        }
    }

    /// Entries as `(timestamp, absolute offset)`.
    #[cfg(test)]
    pub(crate) fn entries(&self) -> Vec<(i64, i64)> {
        (0..self.len())
            .filter_map(|i| self.entry(i).ok())
            .map(|(t, r)| (t, self.base_offset.wrapping_add(i64::from(r))))
            .collect()
    }

    /// Drops every entry with offset >= `offset`, trims the file.
    pub(crate) fn truncate_to(&mut self, offset: i64) -> Result<()> {
        self.ensure_loaded()?;
        let rel = offset - self.base_offset;
        let keep = if rel <= 0 {
            0
        } else {
            self.entries.partition_point(|&(_, r)| i64::from(r) < rel)
        };
        self.entries.truncate(keep);
        self.trim()
    }

    /// Drops all entries.
    pub(crate) fn reset(&mut self) -> Result<()> {
        self.unloaded = None;
        self.entries.clear();
        self.trim()
    }

    /// Sizes the file to exactly its entries.
    pub(crate) fn trim(&mut self) -> Result<()> {
        self.file
            .set_len((self.len() * TIME_ENTRY_SIZE) as u64)
            .ctx(&self.path)
    }

    /// Preallocates the file to `max_index_bytes` rounded down to whole entries.
    pub(crate) fn resize(&mut self, max_index_bytes: i32) -> Result<()> {
        self.ensure_loaded()?;
        let slots = (max_index_bytes.max(0) as usize / TIME_ENTRY_SIZE).max(self.entries.len());
        self.max_entries = slots;
        self.file
            .set_len((slots * TIME_ENTRY_SIZE) as u64)
            .ctx(&self.path)
    }

    /// The file handle and path, so callers can fsync without holding their lock.
    pub(crate) fn handle(&self) -> (Arc<File>, PathBuf) {
        (self.file.clone(), self.path.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_rule_and_bytes() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("00000000000000001000.timeindex");
        let mut t = TimeIndex::open(&p, 1000, 120).unwrap();
        assert_eq!(t.last_entry().unwrap(), (-1, 1000));
        t.maybe_append(1_700_000_000_000, 1005, false).unwrap();
        t.maybe_append(1_700_000_000_000, 1006, false).unwrap(); // equal ts: skipped
        t.maybe_append(1_699_999_999_999, 1007, false).unwrap(); // smaller ts: skipped
        t.maybe_append(1_700_000_000_500, 1008, false).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.lookup(1_700_000_000_100).unwrap(),
            (1_700_000_000_000, 1005)
        );
        assert_eq!(t.lookup(1).unwrap(), (-1, 1000));
        t.unload().unwrap();
        assert_eq!(
            t.lookup(1_700_000_000_600).unwrap(),
            (1_700_000_000_500, 1008)
        );
        assert_eq!(
            t.lookup(1_700_000_000_100).unwrap(),
            (1_700_000_000_000, 1005)
        );
        assert_eq!(t.last_entry().unwrap(), (1_700_000_000_500, 1008));
        t.trim().unwrap();
        let b = std::fs::read(&p).unwrap();
        assert_eq!(&b[..12], &[0, 0, 1, 0x8B, 0xCF, 0xE5, 0x68, 0, 0, 0, 0, 5]);
        let t2 = TimeIndex::open(&p, 1000, 120).unwrap();
        assert_eq!(t2.entries(), t.entries());
    }

    #[test]
    fn last_slot_is_reserved_for_the_final_entry() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("0.timeindex");
        let mut t = TimeIndex::open(&p, 0, 36).unwrap(); // 3 slots
        t.maybe_append(10, 1, false).unwrap();
        t.maybe_append(20, 2, false).unwrap();
        assert!(t.is_full());
        assert!(t.maybe_append(30, 3, false).is_err());
        t.maybe_append(30, 3, true).unwrap();
        assert_eq!(t.len(), 3);
        t.resize(36).unwrap();
        drop(t);
        let t = TimeIndex::open(&p, 0, 36).unwrap();
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn zero_tail_ignored() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("0.timeindex");
        let mut t = TimeIndex::open(&p, 0, 1200).unwrap();
        t.resize(1200).unwrap();
        t.maybe_append(5, 0, false).unwrap();
        drop(t);
        let t = TimeIndex::open(&p, 0, 1200).unwrap();
        assert_eq!(t.len(), 1);
    }
}
