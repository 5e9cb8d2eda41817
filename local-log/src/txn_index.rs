//! A segment's `.txnindex` (formats.md §2.4): the aborted transactions whose ABORT marker landed
//! in the segment, as Kafka's 34-byte entries `(version 0, producerId, firstOffset, lastOffset,
//! lastStableOffset)`, appended with strictly increasing `lastOffset`.
//!
//! Caching: every segment keeps its entries in memory ([`TxnIndex`] sits in the segment's state),
//! read once when the segment is opened. Aborted transactions are rare and an entry is 34 bytes,
//! so the cache is tiny, and Fetch (`Log::collect_aborted_txns`) answers from memory under the
//! segment's short state lock: no file read on the fetch path and no wait for the append lock.
//! The file is written through: an entry is appended to it (the file is created with the first
//! entry, so a segment without aborted transactions has no `.txnindex`), truncation rewrites its
//! length, and an emptied index deletes the file. Descriptors are opened only for those writes
//! and for fsync, counted against the open-files budget.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, LogError, Result};
use crate::files::OpenFiles;
use crate::segment::Segment;

/// Size of one `.txnindex` entry.
pub(crate) const ENTRY_SIZE: usize = 34;
const VERSION: i16 = 0;

/// One aborted transaction, as `.txnindex` stores it and Fetch returns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AbortedTxn {
    /// The producer whose transaction was aborted.
    pub producer_id: i64,
    /// First offset of the transaction.
    pub first_offset: i64,
    /// Offset of the ABORT marker.
    pub last_offset: i64,
    /// The last stable offset when the marker was written: first offset of the earliest other
    /// ongoing transaction, else the marker offset + 1.
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    /// The 34 bytes of the entry.
    pub(crate) fn encode(&self) -> [u8; ENTRY_SIZE] {
        let mut b = [0u8; ENTRY_SIZE];
        b[0..2].copy_from_slice(&VERSION.to_be_bytes());
        b[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        b[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        b[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        b[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        b
    }

    fn decode(e: &[u8]) -> Option<AbortedTxn> {
        let i64_at = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&e[o..o + 8]);
            i64::from_be_bytes(a)
        };
        // Kafka's reader only checks that the first byte of the version is <= 0.
        if e.len() < ENTRY_SIZE || (e[0] as i8) > 0 {
            return None;
        }
        Some(AbortedTxn {
            producer_id: i64_at(2),
            first_offset: i64_at(10),
            last_offset: i64_at(18),
            last_stable_offset: i64_at(26),
        })
    }
}

/// The entries of a `.txnindex` file's bytes (e.g. a remote segment's transaction index); a
/// trailing partial or malformed entry ends the list, as Kafka's reader stops there.
pub fn parse_txn_index(bytes: &[u8]) -> Vec<AbortedTxn> {
    bytes
        .chunks_exact(ENTRY_SIZE)
        .map_while(AbortedTxn::decode)
        .collect()
}

/// The in-memory copy of one segment's `.txnindex` and its path.
#[derive(Debug)]
pub(crate) struct TxnIndex {
    path: PathBuf,
    entries: Vec<AbortedTxn>,
}

impl TxnIndex {
    /// No entries, no file yet.
    pub(crate) fn empty(path: PathBuf) -> TxnIndex {
        TxnIndex {
            path,
            entries: Vec::new(),
        }
    }

    /// Reads `path` if it exists. The second value is false when the file is not sane for a
    /// segment based at `base` (an undecodable entry, a torn tail, an entry whose last offset is
    /// below the base, or last offsets out of order): the segment must be recovered, which
    /// rebuilds the index.
    pub(crate) fn load(path: PathBuf, base: i64) -> Result<(TxnIndex, bool)> {
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((TxnIndex::empty(path), true))
            }
            Err(e) => return Err(LogError::io(&path, e)),
        };
        let mut sane = bytes.len() % ENTRY_SIZE == 0;
        let mut entries = Vec::with_capacity(bytes.len() / ENTRY_SIZE);
        for chunk in bytes.chunks_exact(ENTRY_SIZE) {
            let Some(e) = AbortedTxn::decode(chunk) else {
                sane = false;
                break;
            };
            let ordered = entries
                .last()
                .is_none_or(|l: &AbortedTxn| e.last_offset > l.last_offset);
            if e.last_offset < base || !ordered {
                sane = false;
            }
            entries.push(e);
        }
        Ok((TxnIndex { path, entries }, sane))
    }

    /// The cached entries, in file order.
    pub(crate) fn entries(&self) -> &[AbortedTxn] {
        &self.entries
    }

    /// Path of the file (which may not exist).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Re-points the index after a rename of its file (or of the directory).
    pub(crate) fn set_path(&mut self, path: PathBuf) {
        self.path = path;
    }

    /// Appends `e` to the file (creating it) and to the cache. Its last offset must be above
    /// the last entry's.
    pub(crate) fn append(&mut self, files: &OpenFiles, e: AbortedTxn) -> Result<()> {
        if let Some(last) = self.entries.last() {
            if e.last_offset <= last.last_offset {
                return Err(LogError::corrupt(
                    &self.path,
                    format!(
                        "aborted transaction ending at {} is not after the last one at {}",
                        e.last_offset, last.last_offset
                    ),
                ));
            }
        }
        let mut o = OpenOptions::new();
        o.create(true).append(true);
        let f = files.open_file(&self.path, &o).ctx(&self.path)?;
        (&*f).write_all(&e.encode()).ctx(&self.path)?;
        self.entries.push(e);
        Ok(())
    }

    /// Drops the entries whose last offset is >= `offset` (Kafka's `truncateTo`); an index left
    /// empty loses its file.
    pub(crate) fn truncate_to(&mut self, files: &OpenFiles, offset: i64) -> Result<()> {
        let keep = self.entries.partition_point(|e| e.last_offset < offset);
        if keep == self.entries.len() {
            return Ok(());
        }
        self.entries.truncate(keep);
        if keep == 0 {
            return self.delete_file();
        }
        let mut o = OpenOptions::new();
        o.write(true);
        let f = files.open_file(&self.path, &o).ctx(&self.path)?;
        f.set_len((keep * ENTRY_SIZE) as u64).ctx(&self.path)
    }

    /// Forgets every entry and deletes the file (segment recovery rebuilds it).
    pub(crate) fn reset(&mut self) -> Result<()> {
        self.entries.clear();
        self.delete_file()
    }

    fn delete_file(&self) -> Result<()> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(LogError::io(&self.path, e)),
        }
    }

    /// Writes the whole cache as a fresh file at the index path (the cleaner's rewritten
    /// segment); nothing is written when there is no entry.
    pub(crate) fn write_all(&self, files: &OpenFiles) -> Result<()> {
        if self.entries.is_empty() {
            return self.delete_file();
        }
        let mut bytes = Vec::with_capacity(self.entries.len() * ENTRY_SIZE);
        for e in &self.entries {
            bytes.extend_from_slice(&e.encode());
        }
        let mut o = OpenOptions::new();
        o.write(true).create(true).truncate(true);
        let f = files.open_file(&self.path, &o).ctx(&self.path)?;
        (&*f).write_all(&bytes).ctx(&self.path)
    }

    /// Adds `entries` to the cache without touching the file (see [`Self::write_all`]).
    pub(crate) fn extend_cached(&mut self, entries: &[AbortedTxn]) {
        self.entries.extend_from_slice(entries);
    }

    /// Kafka's `collectAbortedTxns`: pushes the entries with `last_offset >= fetch_offset` and
    /// `first_offset < upper_bound` onto `out`; returns true (search complete) at the first entry
    /// whose last stable offset is >= `upper_bound`.
    pub(crate) fn collect(
        &self,
        fetch_offset: i64,
        upper_bound: i64,
        out: &mut Vec<AbortedTxn>,
    ) -> bool {
        for e in &self.entries {
            if e.last_offset >= fetch_offset && e.first_offset < upper_bound {
                out.push(*e);
            }
            if e.last_stable_offset >= upper_bound {
                return true;
            }
        }
        false
    }
}

/// fsync of the `.txnindex` at `path`, if it exists.
pub(crate) fn sync_file(files: &OpenFiles, path: &Path) -> Result<()> {
    let mut o = OpenOptions::new();
    o.read(true);
    match files.open_file(path, &o) {
        Ok(f) => f.sync_all().ctx(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::io(path, e)),
    }
}

impl Segment {
    /// Records an aborted transaction whose marker was appended to this segment.
    pub(crate) fn append_aborted_txn(&self, e: AbortedTxn) -> Result<()> {
        let mut st = self.state.lock();
        st.txn_index.append(self.files(), e)
    }

    /// [`TxnIndex::collect`] over this segment's cached entries.
    pub(crate) fn collect_aborted_txns(
        &self,
        fetch_offset: i64,
        upper_bound: i64,
        out: &mut Vec<AbortedTxn>,
    ) -> bool {
        self.state
            .lock()
            .txn_index
            .collect(fetch_offset, upper_bound, out)
    }

    /// A copy of this segment's aborted transactions.
    pub(crate) fn aborted_txns(&self) -> Vec<AbortedTxn> {
        self.state.lock().txn_index.entries().to_vec()
    }

    /// Gives this (new, empty-indexed) segment the entries of `from` and writes its `.txnindex`
    /// (the cleaner passes the entries whose ABORT marker it kept in the rewritten segment).
    pub(crate) fn adopt_aborted_txns(&self, from: &[AbortedTxn]) -> Result<()> {
        if from.is_empty() {
            return Ok(());
        }
        let mut st = self.state.lock();
        st.txn_index.extend_cached(from);
        st.txn_index.write_all(self.files())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: lso,
        }
    }

    #[test]
    fn entry_bytes() {
        let e = entry(1000, 5, 9, 7);
        let want: [u8; 34] = [
            0, 0, // version
            0, 0, 0, 0, 0, 0, 0x03, 0xE8, // producer id 1000
            0, 0, 0, 0, 0, 0, 0, 5, // first offset
            0, 0, 0, 0, 0, 0, 0, 9, // last offset
            0, 0, 0, 0, 0, 0, 0, 7, // last stable offset
        ];
        assert_eq!(e.encode(), want);
        assert_eq!(AbortedTxn::decode(&want), Some(e));
    }

    #[test]
    fn file_created_on_first_entry_appended_truncated_and_reloaded() {
        let d = tempfile::tempdir().unwrap();
        let files = OpenFiles::new(16);
        let path = d.path().join("00000000000000000000.txnindex");
        let mut idx = TxnIndex::empty(path.clone());
        assert!(!path.exists());
        idx.append(&files, entry(1, 0, 3, 4)).unwrap();
        idx.append(&files, entry(2, 1, 6, 7)).unwrap();
        assert!(idx.append(&files, entry(3, 5, 6, 7)).is_err());
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 68);
        assert_eq!(&bytes[..34], &entry(1, 0, 3, 4).encode());
        let (loaded, sane) = TxnIndex::load(path.clone(), 0).unwrap();
        assert!(sane);
        assert_eq!(loaded.entries(), idx.entries());
        // An entry below the base makes the file insane for a segment based at 4.
        assert!(!TxnIndex::load(path.clone(), 4).unwrap().1);
        idx.truncate_to(&files, 6).unwrap();
        assert_eq!(fs::read(&path).unwrap().len(), 34);
        idx.truncate_to(&files, 3).unwrap();
        assert!(idx.entries().is_empty() && !path.exists());
    }

    #[test]
    fn collect_stops_at_complete() {
        let mut idx = TxnIndex::empty(PathBuf::from("/nonexistent"));
        idx.extend_cached(&[entry(1, 0, 3, 1), entry(2, 1, 8, 9), entry(3, 9, 12, 13)]);
        let mut out = Vec::new();
        assert!(!idx.collect(4, 20, &mut out));
        assert_eq!(out, vec![entry(2, 1, 8, 9), entry(3, 9, 12, 13)]);
        out.clear();
        assert!(idx.collect(0, 9, &mut out));
        assert_eq!(out, vec![entry(1, 0, 3, 1), entry(2, 1, 8, 9)]);
    }
}
