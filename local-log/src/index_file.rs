//! The file handling both segment indexes share (`.index` and `.timeindex`, formats.md §2.2–2.3):
//! fixed-size big-endian entries, loaded, appended, looked up, truncated, reset and written back.
//! `offset_index.rs` and `time_index.rs` only say what an entry is.
//!
//! No index file is ever held open (there is no mmap either: `unsafe` is forbidden), so an index
//! costs no descriptor between operations (`files.rs` counts the short-lived ones):
//! - While its segment is active an index lives in memory as the very bytes of its file. An
//!   append touches memory only; the new tail is written back (one counted descriptor, a
//!   positional write, `set_len`, `fsync`) when the segment is flushed, rolled or closed. Entries
//!   not yet written back can only belong to data above the recovery point, and after an unclean
//!   stop every segment from the recovery point on is re-validated and its indexes rebuilt
//!   (`recovery.rs`), so nothing relies on them. Truncation is written through at once.
//! - Once the segment is inactive the bytes are dropped (`unload`); lookups read the file into
//!   the segment's open-file entry, which the LRU drops together with the `.log` descriptor.
//! - The file holds exactly its entries: no preallocation to `segment.index.bytes` (the entry
//!   limit is kept in memory). A file with a zero or garbage tail (a Kafka preallocated file, a
//!   torn write) is read up to its first invalid entry and trimmed at the next write-back.

use std::fs::OpenOptions;
use std::io::Read;
use std::marker::PhantomData;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::error::{IoContext, LogError, Result};
use crate::files::OpenFiles;

/// What one kind of index entry is.
pub(crate) trait IndexKind {
    /// Bytes per entry.
    const ENTRY_SIZE: usize;
    /// Slots kept free at the end (the time index keeps one for the final entry of a roll).
    const RESERVED_SLOTS: usize;
    /// Offset of the entry relative to the segment base.
    fn rel_offset(entry: &[u8]) -> u32;
    /// Whether `entry` may follow `prev` in a valid file of a `.log` of `log_size` bytes.
    fn valid(prev: Option<&[u8]>, entry: &[u8], log_size: u64) -> bool;
}

/// The last entry, copied out so it stays known once the entries are unloaded.
#[derive(Clone, Copy, Debug, Default)]
struct Last {
    bytes: [u8; 16],
}

/// One index of a segment.
#[derive(Debug)]
pub(crate) struct IndexFile<K> {
    files: OpenFiles,
    path: PathBuf,
    base_offset: i64,
    /// The file's bytes while loaded (`len * ENTRY_SIZE` of them).
    buf: Vec<u8>,
    len: usize,
    loaded: bool,
    last: Option<Last>,
    /// Leading entries known to be in the file.
    synced: usize,
    /// Length of the file (`None`: there is no file yet).
    file_len: Option<u64>,
    max_entries: usize,
    _kind: PhantomData<K>,
}

/// A pending write-back: the tail to write and the file length afterwards.
#[derive(Debug)]
pub(crate) struct WriteBack {
    path: PathBuf,
    at: u64,
    bytes: Vec<u8>,
    entries: usize,
    new_len: u64,
}

impl WriteBack {
    /// Writes the tail and sets the length (then fsyncs if `fsync`), with one short-lived
    /// counted descriptor.
    pub(crate) fn run(&self, files: &OpenFiles, fsync: bool) -> Result<()> {
        let mut o = OpenOptions::new();
        o.write(true).create(true).truncate(false);
        let f = files.open_file(&self.path, &o).ctx(&self.path)?;
        f.write_all_at(&self.bytes, self.at).ctx(&self.path)?;
        f.set_len(self.new_len).ctx(&self.path)?;
        if fsync {
            f.sync_all().ctx(&self.path)?;
        }
        Ok(())
    }
}

/// Number of leading entries of `buf` for which `pred` holds (`pred` must hold for a prefix).
pub(crate) fn partition_point(buf: &[u8], size: usize, pred: impl Fn(&[u8]) -> bool) -> usize {
    let n = buf.len() / size;
    let (mut lo, mut hi) = (0usize, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(&buf[mid * size..(mid + 1) * size]) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Reads all of `path` with a counted descriptor (`None` if it does not exist).
fn read_whole(files: &OpenFiles, path: &Path) -> Result<Option<Vec<u8>>> {
    let f = match files.open_file(path, OpenOptions::new().read(true)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LogError::io(path, e)),
    };
    let mut buf = Vec::new();
    (&*f).read_to_end(&mut buf).ctx(path)?;
    Ok(Some(buf))
}

impl<K: IndexKind> IndexFile<K> {
    /// An empty index whose file does not exist yet.
    pub(crate) fn empty(
        files: &OpenFiles,
        path: PathBuf,
        base_offset: i64,
        max_index_bytes: i32,
    ) -> IndexFile<K> {
        IndexFile {
            files: files.clone(),
            path,
            base_offset,
            buf: Vec::new(),
            len: 0,
            loaded: true,
            last: None,
            synced: 0,
            file_len: None,
            max_entries: max_index_bytes.max(0) as usize / K::ENTRY_SIZE,
            _kind: PhantomData,
        }
    }

    /// An empty index with an empty file at `path` (replacing any file there).
    pub(crate) fn create(
        files: &OpenFiles,
        path: PathBuf,
        base_offset: i64,
        max_index_bytes: i32,
    ) -> Result<IndexFile<K>> {
        let mut o = OpenOptions::new();
        o.write(true).create(true).truncate(true);
        files.open_file(&path, &o).ctx(&path)?;
        let mut idx = IndexFile::empty(files, path, base_offset, max_index_bytes);
        idx.file_len = Some(0);
        Ok(idx)
    }

    /// Reads the index at `path` (empty if missing), keeping its valid prefix.
    pub(crate) fn load(
        files: &OpenFiles,
        path: PathBuf,
        base_offset: i64,
        max_index_bytes: i32,
        log_size: u64,
    ) -> Result<IndexFile<K>> {
        let mut idx = IndexFile::empty(files, path, base_offset, max_index_bytes);
        let Some(raw) = read_whole(files, &idx.path)? else {
            return Ok(idx);
        };
        let size = K::ENTRY_SIZE;
        let mut n = 0usize;
        for c in raw.chunks_exact(size) {
            let prev = n.checked_sub(1).map(|p| &raw[p * size..n * size]);
            if !K::valid(prev, c, log_size) {
                break;
            }
            n += 1;
        }
        idx.file_len = Some(raw.len() as u64);
        idx.buf = raw;
        idx.buf.truncate(n * size);
        idx.len = n;
        idx.synced = n;
        idx.max_entries = idx.max_entries.max(n);
        idx.update_last();
        Ok(idx)
    }

    fn update_last(&mut self) {
        let size = K::ENTRY_SIZE;
        self.last = self.len.checked_sub(1).map(|i| {
            let mut l = Last::default();
            l.bytes[..size].copy_from_slice(&self.buf[i * size..(i + 1) * size]);
            l
        });
    }

    /// Path of the file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Re-points the path after a rename.
    pub(crate) fn set_path(&mut self, path: PathBuf) {
        self.path = path;
    }

    /// Segment base offset.
    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether the entries are in memory.
    pub(crate) fn is_loaded(&self) -> bool {
        self.loaded
    }

    /// The entries' bytes (loaded indexes only).
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The last entry's bytes, if any.
    pub(crate) fn last(&self) -> Option<&[u8]> {
        self.last.as_ref().map(|l| &l.bytes[..K::ENTRY_SIZE])
    }

    /// Entry limit reached (keeping the reserved slots).
    pub(crate) fn is_full(&self) -> bool {
        self.len + K::RESERVED_SLOTS >= self.max_entries
    }

    /// No slot left at all (not even a reserved one).
    pub(crate) fn is_exhausted(&self) -> bool {
        self.len >= self.max_entries
    }

    /// Sets the entry limit from `segment.index.bytes` (never below the current count).
    pub(crate) fn set_max_bytes(&mut self, max_index_bytes: i32) {
        self.max_entries = (max_index_bytes.max(0) as usize / K::ENTRY_SIZE).max(self.len);
    }

    /// Appends one encoded entry (in memory; written back by [`Self::pending_write`]).
    pub(crate) fn push(&mut self, entry: &[u8]) -> Result<()> {
        self.ensure_loaded()?;
        debug_assert_eq!(entry.len(), K::ENTRY_SIZE);
        self.buf.extend_from_slice(entry);
        self.len += 1;
        self.update_last();
        Ok(())
    }

    /// Reads the entries back into memory (an inactive segment becoming active again).
    pub(crate) fn ensure_loaded(&mut self) -> Result<()> {
        if !self.loaded {
            self.buf = self.read_entries()?.to_vec();
            self.loaded = true;
        }
        Ok(())
    }

    /// The file's `len` entries, read with a short-lived descriptor.
    pub(crate) fn read_entries(&self) -> Result<Bytes> {
        let want = self.len * K::ENTRY_SIZE;
        let raw = read_whole(&self.files, &self.path)?.unwrap_or_default();
        if raw.len() < want {
            return Err(LogError::corrupt(
                &self.path,
                format!("{} bytes, expected {want} of entries", raw.len()),
            ));
        }
        let mut b = Bytes::from(raw);
        b.truncate(want);
        Ok(b)
    }

    /// Drops the entries from memory; keeps them if some are not written back yet.
    pub(crate) fn unload(&mut self) {
        if self.pending_write().is_none() {
            self.loaded = false;
            self.buf = Vec::new();
        }
    }

    /// Keeps the first `keep` entries, trimming the file at once.
    pub(crate) fn truncate_entries(&mut self, keep: usize) -> Result<()> {
        self.ensure_loaded()?;
        let keep = keep.min(self.len);
        self.buf.truncate(keep * K::ENTRY_SIZE);
        self.len = keep;
        self.synced = self.synced.min(keep);
        self.update_last();
        let new_len = (keep * K::ENTRY_SIZE) as u64;
        if self.file_len.is_some_and(|l| l > new_len) {
            let mut o = OpenOptions::new();
            o.write(true);
            let f = self.files.open_file(&self.path, &o).ctx(&self.path)?;
            f.set_len(new_len).ctx(&self.path)?;
            self.file_len = Some(new_len);
        }
        Ok(())
    }

    /// Keeps the entries with offset below `offset`.
    pub(crate) fn truncate_to_offset(&mut self, offset: i64) -> Result<()> {
        self.ensure_loaded()?;
        let rel = offset - self.base_offset;
        let keep = if rel <= 0 {
            0
        } else {
            partition_point(&self.buf, K::ENTRY_SIZE, |e| {
                i64::from(K::rel_offset(e)) < rel
            })
        };
        self.truncate_entries(keep)
    }

    /// Drops all entries in memory (recovery rebuilds them); the file follows at the next
    /// write-back.
    pub(crate) fn reset(&mut self) {
        self.buf.clear();
        self.len = 0;
        self.loaded = true;
        self.synced = 0;
        self.last = None;
    }

    /// What a write-back must write, if the file is not exactly the entries.
    pub(crate) fn pending_write(&self) -> Option<WriteBack> {
        let new_len = (self.len * K::ENTRY_SIZE) as u64;
        if self.synced == self.len && self.file_len == Some(new_len) {
            return None;
        }
        let from = self.synced * K::ENTRY_SIZE;
        Some(WriteBack {
            path: self.path.clone(),
            at: from as u64,
            bytes: self.buf[from..self.len * K::ENTRY_SIZE].to_vec(),
            entries: self.len,
            new_len,
        })
    }

    /// Records a write-back as done.
    pub(crate) fn written(&mut self, wb: &WriteBack) {
        self.synced = wb.entries.min(self.len);
        self.file_len = Some(wb.new_len);
    }

    /// Writes back now.
    #[cfg(test)]
    pub(crate) fn write_back(&mut self) -> Result<()> {
        if let Some(wb) = self.pending_write() {
            wb.run(&self.files, true)?;
            self.written(&wb);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy kind: 4-byte relative offsets, strictly increasing, zero only first.
    #[derive(Debug)]
    struct Rel;
    impl IndexKind for Rel {
        const ENTRY_SIZE: usize = 4;
        const RESERVED_SLOTS: usize = 0;
        fn rel_offset(e: &[u8]) -> u32 {
            u32::from_be_bytes([e[0], e[1], e[2], e[3]])
        }
        fn valid(prev: Option<&[u8]>, e: &[u8], _: u64) -> bool {
            prev.is_none_or(|p| Self::rel_offset(e) > Self::rel_offset(p))
        }
    }

    #[test]
    fn write_back_load_truncate_and_reset() {
        let d = tempfile::tempdir().unwrap();
        let files = OpenFiles::new(4);
        let p = d.path().join("0.x");
        let mut i: IndexFile<Rel> = IndexFile::empty(&files, p.clone(), 0, 400);
        for r in [1u32, 2, 5] {
            i.push(&r.to_be_bytes()).unwrap();
        }
        assert!(!p.exists(), "appends touch memory only");
        i.write_back().unwrap();
        assert_eq!(std::fs::read(&p).unwrap().len(), 12);
        assert_eq!(files.open(), 0, "no descriptor is kept");
        i.push(&7u32.to_be_bytes()).unwrap();
        i.write_back().unwrap();
        i.unload();
        assert!(!i.is_loaded());
        assert_eq!(i.last(), Some(&7u32.to_be_bytes()[..]));
        assert_eq!(&i.read_entries().unwrap()[..], std::fs::read(&p).unwrap());
        i.truncate_to_offset(5).unwrap(); // reloads, keeps 1 and 2, trims the file now
        assert_eq!(std::fs::read(&p).unwrap(), [0, 0, 0, 1, 0, 0, 0, 2]);
        // A garbage tail is ignored on load and trimmed by the next write-back.
        std::fs::write(&p, [0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0]).unwrap();
        let mut j: IndexFile<Rel> = IndexFile::load(&files, p.clone(), 0, 400, 0).unwrap();
        assert_eq!(j.len(), 2);
        j.write_back().unwrap();
        assert_eq!(std::fs::read(&p).unwrap().len(), 8);
        j.reset();
        assert_eq!(std::fs::read(&p).unwrap().len(), 8, "reset is in memory");
        j.write_back().unwrap();
        assert_eq!(std::fs::read(&p).unwrap().len(), 0);
        let missing: IndexFile<Rel> =
            IndexFile::load(&files, d.path().join("none"), 0, 400, 0).unwrap();
        assert_eq!(missing.len(), 0);
        assert!(
            missing.pending_write().is_some(),
            "a missing file is written"
        );
    }
}
