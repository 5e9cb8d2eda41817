//! How a segment's bytes reach the disk: index write-back, fsync, and the hand-over from active
//! to inactive.
//!
//! Two ways out of the active state: [`Segment::on_become_inactive`] (close, cleaner) makes
//! everything durable before returning; [`Segment::seal`] (roll) only writes the indexes back
//! into the page cache, so the append lock is never held across an fsync, and leaves
//! [`Segment::sync_to_disk`] to the background flusher (`flusher.rs`), which advances the
//! recovery point once the bytes are on disk. Until then a crash recovers the segment, as for
//! any segment above the recovery point.

use std::fs::OpenOptions;

use super::Segment;
use crate::error::{IoContext, LogError, Result};

/// Whether a write-back is followed by an fsync of the index file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fsync {
    /// fsync before returning.
    Now,
    /// Page cache only; someone calls [`Segment::sync_to_disk`] later.
    Later,
}

impl Segment {
    /// Final time-index entry, indexes written back and dropped from memory, everything fsynced,
    /// the `.log` unpinned (close, cleaner).
    pub(crate) fn on_become_inactive(&self) -> Result<()> {
        self.append_final_time_entry()?;
        self.flush()?;
        self.retire()
    }

    /// [`Segment::on_become_inactive`] without any fsync (roll): the caller queues
    /// [`Segment::sync_to_disk`].
    pub(crate) fn seal(&self) -> Result<()> {
        self.append_final_time_entry()?;
        self.write_indexes(Fsync::Later)?;
        self.retire()
    }

    /// The time index's last entry: the segment's max timestamp (Kafka writes it on roll).
    fn append_final_time_entry(&self) -> Result<()> {
        let mut st = self.state.lock();
        let (t, o) = (st.max_timestamp, st.offset_of_max_timestamp);
        if t >= 0 {
            st.time_index.maybe_append(t, o, true)?;
        }
        Ok(())
    }

    /// Indexes dropped from memory and the `.log` handed to the LRU (written back already).
    fn retire(&self) -> Result<()> {
        self.unload_indexes(Fsync::Later)?;
        self.slot.unpin();
        Ok(())
    }

    /// Writes both indexes back and drops their entries from memory (inactive segment).
    pub(crate) fn unload_indexes(&self, sync: Fsync) -> Result<()> {
        self.write_indexes(sync)?;
        let mut st = self.state.lock();
        st.offset_index.unload();
        st.time_index.unload();
        Ok(())
    }

    /// Writes back index entries not yet in their files; the I/O runs outside the state lock
    /// (index changes happen under the log's append lock, which the callers hold).
    pub(crate) fn write_indexes(&self, sync: Fsync) -> Result<()> {
        let (oi, ti) = {
            let st = self.state.lock();
            (
                st.offset_index.pending_write(),
                st.time_index.pending_write(),
            )
        };
        let files = self.slot.files();
        let fsync = sync == Fsync::Now;
        if let Some(w) = &oi {
            w.run(files, fsync)?;
        }
        if let Some(w) = &ti {
            w.run(files, fsync)?;
        }
        let mut st = self.state.lock();
        if let Some(w) = &oi {
            st.offset_index.written(w);
        }
        if let Some(w) = &ti {
            st.time_index.written(w);
        }
        Ok(())
    }

    /// fsync of the `.log`, then the write-back (with fsync) of both indexes.
    pub(crate) fn flush(&self) -> Result<()> {
        self.sync_log()?;
        self.write_indexes(Fsync::Now)?;
        self.sync_txn_index()
    }

    /// fsync of the `.txnindex`, if the segment has one (its entries are written through).
    fn sync_txn_index(&self) -> Result<()> {
        let path = self.state.lock().txn_index.path().to_path_buf();
        crate::txn_index::sync_file(self.slot.files(), &path)
    }

    /// fsync of the `.log` and of both index files as they are (the background flusher's half of
    /// [`Segment::seal`]).
    pub(crate) fn sync_to_disk(&self) -> Result<()> {
        self.sync_log()?;
        let paths = {
            let st = self.state.lock();
            [
                st.offset_index.path().to_path_buf(),
                st.time_index.path().to_path_buf(),
            ]
        };
        let mut read = OpenOptions::new();
        read.read(true);
        for p in paths {
            let f = self.slot.files().open_file(&p, &read).ctx(&p)?;
            f.sync_all().ctx(&p)?;
        }
        self.sync_txn_index()
    }

    fn sync_log(&self) -> Result<()> {
        let h = self.handle()?;
        h.log
            .sync_data()
            .map_err(|e| LogError::io(self.log_path(), e))
    }
}
