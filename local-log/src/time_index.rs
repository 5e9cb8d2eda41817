//! What an entry of the `.timeindex` file of a segment is (formats.md §2.3): 12 big-endian
//! bytes `(timestamp: i64, offset - base: u32)`. An entry is added only when its timestamp is
//! strictly larger than the last one (equal is skipped silently); the last slot is reserved for
//! the final entry written on roll/close. A file is valid up to its first all-zero or
//! out-of-order entry. Loading, write-back and truncation are `index_file.rs`.

use crate::error::{LogError, Result};
use crate::index_file::{partition_point, IndexFile, IndexKind};

/// Bytes per entry.
pub const TIME_ENTRY_SIZE: usize = 12;

/// The `.timeindex` entry kind.
#[derive(Debug)]
pub(crate) struct TimeEntry;

fn decode(c: &[u8]) -> (i64, u32) {
    let mut t = [0u8; 8];
    t.copy_from_slice(&c[..8]);
    (
        i64::from_be_bytes(t),
        u32::from_be_bytes([c[8], c[9], c[10], c[11]]),
    )
}

impl IndexKind for TimeEntry {
    const ENTRY_SIZE: usize = TIME_ENTRY_SIZE;
    const RESERVED_SLOTS: usize = 1;

    fn rel_offset(entry: &[u8]) -> u32 {
        decode(entry).1
    }

    fn valid(prev: Option<&[u8]>, entry: &[u8], _log_size: u64) -> bool {
        let (ts, rel) = decode(entry);
        !(ts == 0 && rel == 0)
            && rel <= i32::MAX as u32
            && prev.map(decode).is_none_or(|(lt, lr)| ts > lt && rel >= lr)
    }
}

/// The `.timeindex` of a segment.
pub(crate) type TimeIndex = IndexFile<TimeEntry>;

/// Greatest entry of `buf` with timestamp <= `target` as `(timestamp, offset)`, else
/// `(-1, base)`.
pub(crate) fn lookup_in(buf: &[u8], base: i64, target: i64) -> (i64, i64) {
    match partition_point(buf, TIME_ENTRY_SIZE, |e| decode(e).0 <= target) {
        0 => (-1, base),
        n => {
            let (t, r) = decode(&buf[(n - 1) * TIME_ENTRY_SIZE..n * TIME_ENTRY_SIZE]);
            (t, base.wrapping_add(i64::from(r)))
        }
    }
}

impl TimeIndex {
    /// Last entry as `(timestamp, absolute offset)`, or `(-1, base)` when empty.
    pub(crate) fn last_entry(&self) -> (i64, i64) {
        match self.last().map(decode) {
            Some((t, r)) => (t, self.base_offset().wrapping_add(i64::from(r))),
            None => (-1, self.base_offset()),
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
            return Err(LogError::corrupt(self.path(), "time index is full"));
        }
        if self.is_exhausted() {
            return Ok(());
        }
        let (last_ts, last_off) = self.last_entry();
        if timestamp <= last_ts || (offset < last_off && self.len() > 0) {
            return Ok(());
        }
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
        let mut buf = [0u8; TIME_ENTRY_SIZE];
        buf[..8].copy_from_slice(&timestamp.to_be_bytes());
        buf[8..].copy_from_slice(&(rel as u32).to_be_bytes());
        self.push(&buf)
    }

    /// Greatest entry with timestamp <= `target` (loaded index).
    pub(crate) fn lookup(&self, target: i64) -> (i64, i64) {
        lookup_in(self.bytes(), self.base_offset(), target)
    }

    /// Entries as `(timestamp, absolute offset)` (loaded index; tests).
    #[cfg(test)]
    pub(crate) fn entries(&self) -> Vec<(i64, i64)> {
        self.bytes()
            .chunks_exact(TIME_ENTRY_SIZE)
            .map(decode)
            .map(|(t, r)| (t, self.base_offset().wrapping_add(i64::from(r))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::OpenFiles;

    #[test]
    fn monotonic_rule_and_bytes() {
        let d = tempfile::tempdir().unwrap();
        let files = OpenFiles::new(4);
        let p = d.path().join("00000000000000001000.timeindex");
        let mut t = TimeIndex::empty(&files, p.clone(), 1000, 120);
        assert_eq!(t.last_entry(), (-1, 1000));
        t.maybe_append(1_700_000_000_000, 1005, false).unwrap();
        t.maybe_append(1_700_000_000_000, 1006, false).unwrap(); // equal ts: skipped
        t.maybe_append(1_699_999_999_999, 1007, false).unwrap(); // smaller ts: skipped
        t.maybe_append(1_700_000_000_500, 1008, false).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.lookup(1_700_000_000_100), (1_700_000_000_000, 1005));
        assert_eq!(t.lookup(1), (-1, 1000));
        t.write_back().unwrap();
        t.unload();
        let on_disk = t.read_entries().unwrap();
        assert_eq!(
            lookup_in(&on_disk, 1000, 1_700_000_000_600),
            (1_700_000_000_500, 1008)
        );
        assert_eq!(
            lookup_in(&on_disk, 1000, 1_700_000_000_100),
            (1_700_000_000_000, 1005)
        );
        assert_eq!(t.last_entry(), (1_700_000_000_500, 1008));
        let b = std::fs::read(&p).unwrap();
        assert_eq!(&b[..12], &[0, 0, 1, 0x8B, 0xCF, 0xE5, 0x68, 0, 0, 0, 0, 5]);
        let t2 = TimeIndex::load(&files, p, 1000, 120, 0).unwrap();
        assert_eq!(
            t2.entries(),
            vec![(1_700_000_000_000, 1005), (1_700_000_000_500, 1008)]
        );
    }

    #[test]
    fn last_slot_is_reserved_for_the_final_entry() {
        let d = tempfile::tempdir().unwrap();
        let files = OpenFiles::new(4);
        let p = d.path().join("0.timeindex");
        let mut t = TimeIndex::empty(&files, p.clone(), 0, 36); // 3 slots
        t.maybe_append(10, 1, false).unwrap();
        t.maybe_append(20, 2, false).unwrap();
        assert!(t.is_full());
        assert!(t.maybe_append(30, 3, false).is_err());
        t.maybe_append(30, 3, true).unwrap();
        assert_eq!(t.len(), 3);
        t.write_back().unwrap();
        let t = TimeIndex::load(&files, p, 0, 36, 0).unwrap();
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn zero_tail_ignored() {
        let d = tempfile::tempdir().unwrap();
        let files = OpenFiles::new(4);
        let p = d.path().join("0.timeindex");
        let mut raw = vec![0u8; 1200];
        raw[..12].copy_from_slice(&[0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0]);
        std::fs::write(&p, &raw).unwrap();
        let t = TimeIndex::load(&files, p, 0, 1200, 0).unwrap();
        assert_eq!(t.len(), 1);
    }
}
