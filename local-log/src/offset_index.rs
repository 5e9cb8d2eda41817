//! What an entry of the `.index` file of a segment is (formats.md §2.2): 8 big-endian bytes
//! `(offset - base: u32, position: u32)`, both strictly increasing. A file is valid up to its
//! first entry that breaks the order, has position 0 or points past the `.log`. Loading, write-back,
//! truncation and the descriptor-free design are `index_file.rs`.

use crate::error::{LogError, Result};
use crate::index_file::{partition_point, IndexFile, IndexKind};

/// Bytes per entry.
pub const OFFSET_ENTRY_SIZE: usize = 8;

/// The `.index` entry kind.
#[derive(Debug)]
pub(crate) struct OffsetEntry;

fn decode(c: &[u8]) -> (u32, u32) {
    (
        u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
        u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
    )
}

impl IndexKind for OffsetEntry {
    const ENTRY_SIZE: usize = OFFSET_ENTRY_SIZE;
    const RESERVED_SLOTS: usize = 0;

    fn rel_offset(entry: &[u8]) -> u32 {
        decode(entry).0
    }

    fn valid(prev: Option<&[u8]>, entry: &[u8], log_size: u64) -> bool {
        let (rel, pos) = decode(entry);
        pos > 0
            && u64::from(pos) < log_size
            && rel <= i32::MAX as u32
            && prev.map(decode).is_none_or(|(r, p)| rel > r && pos > p)
    }
}

/// The `.index` of a segment.
pub(crate) type OffsetIndex = IndexFile<OffsetEntry>;

/// Greatest entry of `buf` with offset <= `target` as `(offset, position)`, else `(base, 0)`.
pub(crate) fn lookup_in(buf: &[u8], base: i64, target: i64) -> (i64, u32) {
    let rel = target.wrapping_sub(base);
    if rel < 0 {
        return (base, 0);
    }
    let rel = rel.min(i64::from(u32::MAX)) as u32;
    match partition_point(buf, OFFSET_ENTRY_SIZE, |e| decode(e).0 <= rel) {
        0 => (base, 0),
        n => {
            let (r, p) = decode(&buf[(n - 1) * OFFSET_ENTRY_SIZE..n * OFFSET_ENTRY_SIZE]);
            (base.wrapping_add(i64::from(r)), p)
        }
    }
}

impl OffsetIndex {
    /// Last entry as absolute `(offset, position)`, or `(base, 0)`.
    pub(crate) fn last_entry(&self) -> (i64, u32) {
        match self.last().map(decode) {
            Some((r, p)) => (self.base_offset().wrapping_add(i64::from(r)), p),
            None => (self.base_offset(), 0),
        }
    }

    /// Appends `(offset, position)`; an offset not above the last entry is ignored.
    pub(crate) fn append(&mut self, offset: i64, position: u32) -> Result<()> {
        let rel = offset - self.base_offset();
        if !(0..=i64::from(i32::MAX)).contains(&rel) {
            return Err(LogError::corrupt(
                self.path(),
                format!(
                    "offset {offset} out of range for base {}",
                    self.base_offset()
                ),
            ));
        }
        if self.is_full() {
            return Err(LogError::corrupt(self.path(), "index is full"));
        }
        let rel = rel as u32;
        if self.last().is_some_and(|l| rel <= decode(l).0) {
            return Ok(());
        }
        let mut buf = [0u8; OFFSET_ENTRY_SIZE];
        buf[..4].copy_from_slice(&rel.to_be_bytes());
        buf[4..].copy_from_slice(&position.to_be_bytes());
        self.push(&buf)
    }

    /// Greatest entry with offset <= `target` (loaded index).
    pub(crate) fn lookup(&self, target: i64) -> (i64, u32) {
        lookup_in(self.bytes(), self.base_offset(), target)
    }

    /// Entries as absolute `(offset, position)` (loaded index; tests).
    #[cfg(test)]
    pub(crate) fn entries(&self) -> Vec<(i64, u32)> {
        self.bytes()
            .chunks_exact(OFFSET_ENTRY_SIZE)
            .map(decode)
            .map(|(r, p)| (self.base_offset().wrapping_add(i64::from(r)), p))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::OpenFiles;

    fn open(files: &OpenFiles, p: &std::path::Path, max: i32, log_size: u64) -> OffsetIndex {
        OffsetIndex::load(files, p.to_path_buf(), 1000, max, log_size).unwrap()
    }

    #[test]
    fn entry_bytes_and_lookup() {
        let d = tempfile::tempdir().unwrap();
        let files = OpenFiles::new(4);
        let p = d.path().join("00000000000000001000.index");
        let mut idx = open(&files, &p, 80, u64::MAX);
        idx.append(1005, 4200).unwrap();
        idx.append(1010, 9000).unwrap();
        idx.append(1010, 9500).unwrap(); // not increasing: ignored
        assert_eq!(idx.len(), 2);
        let check = |buf: &[u8]| {
            assert_eq!(lookup_in(buf, 1000, 999), (1000, 0));
            assert_eq!(lookup_in(buf, 1000, 1004), (1000, 0));
            assert_eq!(lookup_in(buf, 1000, 1005), (1005, 4200));
            assert_eq!(lookup_in(buf, 1000, 1009), (1005, 4200));
            assert_eq!(lookup_in(buf, 1000, 5000), (1010, 9000));
        };
        check(idx.bytes());
        idx.write_back().unwrap();
        // Unloaded (inactive segment): same answers from the file's bytes.
        idx.unload();
        check(&idx.read_entries().unwrap());
        assert_eq!(idx.last_entry(), (1010, 9000));
        idx.truncate_to_offset(1006).unwrap(); // reloads, then drops 1010
        assert_eq!(idx.entries(), vec![(1005, 4200)]);
        idx.append(1010, 9000).unwrap();
        idx.write_back().unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[..8], &[0, 0, 0, 5, 0, 0, 0x10, 0x68]);
        assert_eq!(bytes.len(), 16);
        let idx = open(&files, &p, 80, u64::MAX);
        assert_eq!(idx.entries(), vec![(1005, 4200), (1010, 9000)]);
    }

    #[test]
    fn zero_tail_and_entries_past_the_log_are_ignored_on_load() {
        let d = tempfile::tempdir().unwrap();
        let files = OpenFiles::new(4);
        let p = d.path().join("0.index");
        let mut raw = vec![0u8; 1024]; // a preallocated (Kafka) file with one entry
        raw[..8].copy_from_slice(&[0, 0, 0, 3, 0, 0, 0, 100]);
        std::fs::write(&p, &raw).unwrap();
        let idx = OffsetIndex::load(&files, p.clone(), 0, 1024, u64::MAX).unwrap();
        assert_eq!(idx.len(), 1);
        let idx = OffsetIndex::load(&files, p, 0, 1024, 50).unwrap();
        assert_eq!(idx.len(), 0);
    }

    #[test]
    fn full_and_truncate() {
        let d = tempfile::tempdir().unwrap();
        let files = OpenFiles::new(4);
        let p = d.path().join("0.index");
        let mut idx = OffsetIndex::empty(&files, p.clone(), 0, 16);
        idx.append(1, 10).unwrap();
        assert!(!idx.is_full());
        idx.append(2, 20).unwrap();
        assert!(idx.is_full());
        assert!(idx.append(3, 30).is_err());
        idx.write_back().unwrap();
        idx.truncate_to_offset(2).unwrap();
        assert_eq!(idx.len(), 1);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 8);
    }
}
