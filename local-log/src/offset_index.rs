//! The `.index` file of a segment (formats.md §2.2): 8-byte big-endian entries
//! `(offset - base: u32, position: u32)`, strictly increasing, preallocated to
//! `segment.index.bytes` while the segment is active and trimmed to its entries on roll/close.
//!
//! There is no mmap (`unsafe` is forbidden): while a segment is active its entries live in a `Vec`
//! and every append is also written through to the file with a positional write. Once the segment
//! is inactive (trimmed) the index is unloaded and lookups binary-search the file with positional
//! reads, so old segments cost no memory (Kafka gets the same from lazily mapped indexes).
//! Opening an untrimmed file (after a crash) keeps only the valid prefix, so a preallocated zero
//! tail is never taken for entries.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{IoContext, LogError, Result};

/// Bytes per entry.
pub const OFFSET_ENTRY_SIZE: usize = 8;

/// In-memory view + file of one offset index.
#[derive(Debug)]
pub(crate) struct OffsetIndex {
    path: PathBuf,
    file: Arc<File>,
    base_offset: i64,
    entries: Vec<(u32, u32)>,
    /// `Some(count)` when the entries were dropped from memory (file trimmed to `count` entries).
    unloaded: Option<usize>,
    max_entries: usize,
}

fn read_file(file: &File, path: &Path) -> Result<Vec<u8>> {
    let len = file.metadata().ctx(path)?.len() as usize;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, 0).ctx(path)?;
    Ok(buf)
}

impl OffsetIndex {
    /// Opens (creating if missing) the index at `path`. `max_index_bytes` bounds the entry count.
    /// Entries beyond the first invalid one (zero fill, non-increasing, position 0 or past
    /// `log_size`) are dropped.
    pub(crate) fn open(
        path: &Path,
        base_offset: i64,
        max_index_bytes: i32,
        log_size: u64,
    ) -> Result<OffsetIndex> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .ctx(path)?;
        let raw = read_file(&file, path)?;
        let mut entries: Vec<(u32, u32)> = Vec::with_capacity(raw.len() / OFFSET_ENTRY_SIZE);
        for c in raw.chunks_exact(OFFSET_ENTRY_SIZE) {
            let rel = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
            let pos = u32::from_be_bytes([c[4], c[5], c[6], c[7]]);
            let valid = pos > 0
                && u64::from(pos) < log_size
                && rel <= i32::MAX as u32
                && entries.last().is_none_or(|&(r, p)| rel > r && pos > p);
            if !valid {
                break;
            }
            entries.push((rel, pos));
        }
        let max_entries = (max_index_bytes.max(0) as usize / OFFSET_ENTRY_SIZE).max(entries.len());
        Ok(OffsetIndex {
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

    /// Entry `i` as stored (relative offset, position).
    fn entry(&self, i: usize) -> Result<(u32, u32)> {
        if self.unloaded.is_none() {
            return self
                .entries
                .get(i)
                .copied()
                .ok_or_else(|| LogError::corrupt(&self.path, format!("no index entry {i}")));
        }
        let mut b = [0u8; OFFSET_ENTRY_SIZE];
        self.file
            .read_exact_at(&mut b, (i * OFFSET_ENTRY_SIZE) as u64)
            .ctx(&self.path)?;
        Ok((
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        ))
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
            let mut raw = vec![0u8; n * OFFSET_ENTRY_SIZE];
            self.file.read_exact_at(&mut raw, 0).ctx(&self.path)?;
            self.entries = raw
                .chunks_exact(OFFSET_ENTRY_SIZE)
                .map(|c| {
                    (
                        u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                        u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
                    )
                })
                .collect();
            self.unloaded = None;
        }
        Ok(())
    }

    /// True when no entry can be added.
    pub(crate) fn is_full(&self) -> bool {
        self.len() >= self.max_entries
    }

    /// Last entry as absolute `(offset, position)`, or `(base, 0)`.
    pub(crate) fn last_entry(&self) -> Result<(i64, u32)> {
        match self.len() {
            0 => Ok((self.base_offset, 0)),
            n => {
                let (r, p) = self.entry(n - 1)?;
                Ok((self.base_offset.wrapping_add(i64::from(r)), p))
            }
        }
    }

    /// Appends `(offset, position)`; an offset not above the last entry is ignored.
    pub(crate) fn append(&mut self, offset: i64, position: u32) -> Result<()> {
        let rel = offset - self.base_offset;
        if !(0..=i64::from(i32::MAX)).contains(&rel) {
            return Err(LogError::corrupt(
                &self.path,
                format!("offset {offset} out of range for base {}", self.base_offset),
            ));
        }
        if self.is_full() {
            return Err(LogError::corrupt(&self.path, "index is full"));
        }
        self.ensure_loaded()?;
        let rel = rel as u32;
        if self.entries.last().is_some_and(|&(r, _)| rel <= r) {
            return Ok(());
        }
        let mut buf = [0u8; OFFSET_ENTRY_SIZE];
        buf[..4].copy_from_slice(&rel.to_be_bytes());
        buf[4..].copy_from_slice(&position.to_be_bytes());
        let at = (self.entries.len() * OFFSET_ENTRY_SIZE) as u64;
        self.file.write_all_at(&buf, at).ctx(&self.path)?;
        self.entries.push((rel, position));
        Ok(())
    }

    /// Greatest entry with offset <= `target` as `(offset, position)`, else `(base, 0)`.
    pub(crate) fn lookup(&self, target: i64) -> Result<(i64, u32)> {
        let rel = target.wrapping_sub(self.base_offset);
        if rel < 0 {
            return Ok((self.base_offset, 0));
        }
        let rel = rel.min(i64::from(u32::MAX)) as u32;
        // Binary search for the number of entries with offset <= target.
        let (mut lo, mut hi) = (0usize, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.entry(mid)?.0 <= rel {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo == 0 {
            Ok((self.base_offset, 0))
        } else {
            let (r, p) = self.entry(lo - 1)?;
            Ok((self.base_offset.wrapping_add(i64::from(r)), p))
        }
    }

    /// Entries as absolute `(offset, position)` (for dumps and tests).
    #[cfg(test)]
    pub(crate) fn entries(&self) -> Vec<(i64, u32)> {
        (0..self.len())
            .filter_map(|i| self.entry(i).ok())
            .map(|(r, p)| (self.base_offset.wrapping_add(i64::from(r)), p))
            .collect()
    }

    /// Drops every entry with offset >= `offset` (file trimmed to the kept entries).
    pub(crate) fn truncate_to(&mut self, offset: i64) -> Result<()> {
        self.ensure_loaded()?;
        let rel = offset - self.base_offset;
        let keep = if rel <= 0 {
            0
        } else {
            self.entries.partition_point(|&(r, _)| i64::from(r) < rel)
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
            .set_len((self.len() * OFFSET_ENTRY_SIZE) as u64)
            .ctx(&self.path)
    }

    /// Preallocates the file to `max_index_bytes` (rounded down to whole entries) for an active
    /// segment; the zero tail is ignored on reopen.
    pub(crate) fn resize(&mut self, max_index_bytes: i32) -> Result<()> {
        self.ensure_loaded()?;
        let slots = (max_index_bytes.max(0) as usize / OFFSET_ENTRY_SIZE).max(self.entries.len());
        self.max_entries = slots;
        self.file
            .set_len((slots * OFFSET_ENTRY_SIZE) as u64)
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
    fn entry_bytes_and_lookup() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("00000000000000001000.index");
        let mut idx = OffsetIndex::open(&p, 1000, 80, u64::MAX).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 0);
        idx.resize(80).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 80);
        idx.append(1005, 4200).unwrap();
        idx.append(1010, 9000).unwrap();
        idx.append(1010, 9500).unwrap(); // not increasing: ignored
        assert_eq!(idx.len(), 2);
        let check = |idx: &OffsetIndex| {
            assert_eq!(idx.lookup(999).unwrap(), (1000, 0));
            assert_eq!(idx.lookup(1004).unwrap(), (1000, 0));
            assert_eq!(idx.lookup(1005).unwrap(), (1005, 4200));
            assert_eq!(idx.lookup(1009).unwrap(), (1005, 4200));
            assert_eq!(idx.lookup(5000).unwrap(), (1010, 9000));
        };
        check(&idx);
        // Unloaded (inactive segment): same answers from the file.
        idx.unload().unwrap();
        check(&idx);
        assert_eq!(idx.last_entry().unwrap(), (1010, 9000));
        idx.truncate_to(1006).unwrap(); // reloads, then drops 1010
        assert_eq!(idx.entries(), vec![(1005, 4200)]);
        idx.append(1010, 9000).unwrap();
        idx.trim().unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[..8], &[0, 0, 0, 5, 0, 0, 0x10, 0x68]);
        assert_eq!(bytes.len(), 16);
        let idx = OffsetIndex::open(&p, 1000, 80, u64::MAX).unwrap();
        assert_eq!(idx.entries(), vec![(1005, 4200), (1010, 9000)]);
    }

    #[test]
    fn untrimmed_zero_tail_is_ignored_on_reopen() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("0.index");
        {
            let mut idx = OffsetIndex::open(&p, 0, 1024, u64::MAX).unwrap();
            idx.resize(1024).unwrap();
            idx.append(3, 100).unwrap();
        }
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 1024);
        let idx = OffsetIndex::open(&p, 0, 1024, u64::MAX).unwrap();
        assert_eq!(idx.len(), 1);
        // Entries pointing past the log are dropped too.
        let idx = OffsetIndex::open(&p, 0, 1024, 50).unwrap();
        assert_eq!(idx.len(), 0);
    }

    #[test]
    fn full_and_truncate() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("0.index");
        let mut idx = OffsetIndex::open(&p, 0, 16, u64::MAX).unwrap();
        idx.append(1, 10).unwrap();
        assert!(!idx.is_full());
        idx.append(2, 20).unwrap();
        assert!(idx.is_full());
        assert!(idx.append(3, 30).is_err());
        idx.truncate_to(2).unwrap();
        assert_eq!(idx.len(), 1);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 8);
    }
}
