//! The core's in-memory view of `__cluster_metadata-0`: every entry from the log start, with
//! the epoch of each, so the core can answer fetches, compute diverging epochs and check
//! whether a candidate's log is up to date. The runtime owns the durable copy and mirrors the
//! same appends and truncations from [`super::Command`]s.
//!
//! It also tracks the voter set (KIP-853): the set at the log start (from the snapshot, or the
//! static `controller.quorum.voters`) and every Voters entry held. The set in force is the
//! latest one in the log, committed or not, as Raft's single-server changes require; a
//! truncation that removes a Voters entry brings the previous set back.

use super::types::{Entry, NodeId, Record, Voter};

/// Entries from `start_offset` to the log end offset. Two views are equal when they hold the
/// same entries from the same start (the voter set at the start is configuration, not log).
#[derive(Clone, Debug, Default)]
pub struct LogView {
    start_offset: i64,
    /// Epoch of the entry just below `start_offset` (0 for an empty log).
    start_epoch: i32,
    entries: Vec<Entry>,
    /// The voter set in force at `start_offset`.
    base: VoterSet,
    /// Whether `base` came from a Voters record (a dynamic quorum) rather than the static
    /// configuration.
    base_dynamic: bool,
    /// (offset, set) of every Voters entry held, ascending.
    voter_changes: Vec<(i64, VoterSet)>,
}

/// A voter set: the ids (what the core decides with) and the records (directory ids and
/// endpoints, for the runtime to reach the voters).
#[derive(Clone, Debug, Default)]
struct VoterSet {
    ids: Vec<NodeId>,
    voters: Vec<Voter>,
}

impl VoterSet {
    fn of(voters: Vec<Voter>) -> VoterSet {
        VoterSet {
            ids: voters.iter().map(|v| v.id).collect(),
            voters,
        }
    }
}

impl PartialEq for LogView {
    fn eq(&self, other: &LogView) -> bool {
        (self.start_offset, self.start_epoch, &self.entries)
            == (other.start_offset, other.start_epoch, &other.entries)
    }
}

impl Eq for LogView {}

impl LogView {
    /// A log holding `entries` from offset 0.
    pub fn new(entries: Vec<Entry>) -> LogView {
        LogView::starting_at(0, 0, entries)
    }

    /// A log whose first held entry is at `start_offset`; `start_epoch` is the epoch of the
    /// entry just below it (the snapshot's epoch; 0 when starting at 0).
    pub fn starting_at(start_offset: i64, start_epoch: i32, entries: Vec<Entry>) -> LogView {
        let voter_changes = voter_changes(start_offset, &entries);
        LogView {
            start_offset,
            start_epoch,
            entries,
            base: VoterSet::default(),
            base_dynamic: false,
            voter_changes,
        }
    }

    /// The epoch of the entry just below the log start (a snapshot's, once it is adopted).
    pub fn set_start_epoch(&mut self, epoch: i32) {
        self.start_epoch = epoch;
    }

    /// Sets the voter set in force at the log start: a snapshot's (`dynamic`) or the static
    /// configuration's.
    pub fn set_base_voters(&mut self, voters: Vec<Voter>, dynamic: bool) {
        self.base = VoterSet::of(voters);
        self.base_dynamic = dynamic;
    }

    fn current(&self) -> &VoterSet {
        self.voter_changes.last().map_or(&self.base, |(_, v)| v)
    }

    /// The ids of the voter set in force: the latest Voters entry's, else the one at the log
    /// start.
    pub fn voters(&self) -> &[NodeId] {
        &self.current().ids
    }

    /// The voter set in force with directory ids and endpoints (a static set has none).
    pub fn voter_records(&self) -> &[Voter] {
        &self.current().voters
    }

    /// The voter set in force once the entry at `offset` is appended; None unless it comes
    /// from a Voters record (a static quorum's snapshots carry no voter set).
    pub fn dynamic_voters_at(&self, offset: i64) -> Option<&[Voter]> {
        match self.voter_changes.iter().rev().find(|(o, _)| *o <= offset) {
            Some((_, v)) => Some(&v.voters),
            None => self.base_dynamic.then_some(self.base.voters.as_slice()),
        }
    }

    /// The offset of the latest Voters entry held.
    pub fn last_voter_change(&self) -> Option<i64> {
        self.voter_changes.last().map(|(o, _)| *o)
    }

    pub fn start_offset(&self) -> i64 {
        self.start_offset
    }

    /// The log end offset (LEO): the offset the next entry gets.
    pub fn end_offset(&self) -> i64 {
        self.start_offset + self.entries.len() as i64
    }

    /// The epoch of the last entry.
    pub fn last_epoch(&self) -> i32 {
        self.entries.last().map_or(self.start_epoch, |e| e.epoch)
    }

    /// The entry at `offset`, if held.
    pub fn get(&self, offset: i64) -> Option<&Entry> {
        let idx = usize::try_from(offset - self.start_offset).ok()?;
        self.entries.get(idx)
    }

    /// Up to `max` entries from `offset`.
    pub fn slice(&self, offset: i64, max: usize) -> Vec<Entry> {
        let from = (offset - self.start_offset).clamp(0, self.entries.len() as i64) as usize;
        let to = from.saturating_add(max).min(self.entries.len());
        self.entries[from..to].to_vec()
    }

    /// Entries in `[from, to)`, clamped to what is held.
    pub fn range(&self, from: i64, to: i64) -> Vec<Entry> {
        let len = self.entries.len() as i64;
        let a = (from - self.start_offset).clamp(0, len) as usize;
        let b = (to - self.start_offset).clamp(0, len) as usize;
        self.entries[a..b.max(a)].to_vec()
    }

    pub fn append(&mut self, entries: &[Entry]) {
        let base = self.end_offset();
        self.voter_changes.extend(voter_changes(base, entries));
        self.entries.extend_from_slice(entries);
    }

    /// Drops every entry at or above `to`.
    pub fn truncate(&mut self, to: i64) {
        let keep = (to - self.start_offset).clamp(0, self.entries.len() as i64) as usize;
        self.entries.truncate(keep);
        let end = self.end_offset();
        self.voter_changes.retain(|(o, _)| *o < end);
    }

    /// Drops every entry below `to` (which must be held or equal the end offset); the log then
    /// starts at `to`.
    pub fn delete_prefix(&mut self, to: i64) {
        let n = (to - self.start_offset).clamp(0, self.entries.len() as i64) as usize;
        if n == 0 {
            return;
        }
        self.start_epoch = self.entries[n - 1].epoch;
        self.entries.drain(..n);
        self.start_offset += n as i64;
        let start = self.start_offset;
        let below = self.voter_changes.partition_point(|(o, _)| *o < start);
        let folded = self.voter_changes.drain(..below).next_back();
        if let Some((_, v)) = folded {
            self.base = v;
            self.base_dynamic = true;
        }
    }

    /// Discards everything: the log is empty and starts at `start_offset` after `start_epoch`,
    /// with the voter set in force now as its base (a snapshot's own replaces it).
    pub fn reset(&mut self, start_offset: i64, start_epoch: i32) {
        let dynamic = self.base_dynamic || !self.voter_changes.is_empty();
        let base = self.current().clone();
        *self = LogView::starting_at(start_offset, start_epoch, Vec::new());
        self.base = base;
        self.base_dynamic = dynamic;
    }

    /// The largest epoch not above `epoch` that this log knows, and its end offset (the first
    /// offset of a later epoch, or the LEO). `(0, start_offset)` when there is none.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        let idx = self.entries.partition_point(|e| e.epoch <= epoch);
        if idx == 0 {
            let e = if self.start_epoch <= epoch {
                self.start_epoch
            } else {
                0
            };
            return (e, self.start_offset);
        }
        (self.entries[idx - 1].epoch, self.start_offset + idx as i64)
    }

    /// Whether a log ending with (`last_epoch`, `end_offset`) is at least as up to date as
    /// this one: epochs compared first, then end offsets.
    pub fn is_up_to_date(&self, last_epoch: i32, end_offset: i64) -> bool {
        (last_epoch, end_offset) >= (self.last_epoch(), self.end_offset())
    }
}

/// The Voters entries of `entries`, the first at `base`.
fn voter_changes(base: i64, entries: &[Entry]) -> Vec<(i64, VoterSet)> {
    let voters = |(i, e): (usize, &Entry)| match &e.record {
        Record::Voters(v) => Some((base + i as i64, VoterSet::of(v.clone()))),
        _ => None,
    };
    entries.iter().enumerate().filter_map(voters).collect()
}

#[cfg(test)]
mod tests {
    use super::super::types::{Entry, Record};
    use super::*;
    use bytes::Bytes;

    fn log(epochs: &[i32]) -> LogView {
        LogView::new(
            epochs
                .iter()
                .map(|&epoch| Entry {
                    epoch,
                    record: Record::Data(Bytes::new()),
                })
                .collect(),
        )
    }

    #[test]
    fn end_offset_for_epoch_finds_largest_epoch_at_or_below() {
        let l = log(&[1, 1, 3, 3, 3, 5]);
        assert_eq!(l.end_offset_for_epoch(0), (0, 0));
        assert_eq!(l.end_offset_for_epoch(1), (1, 2));
        assert_eq!(l.end_offset_for_epoch(2), (1, 2));
        assert_eq!(l.end_offset_for_epoch(3), (3, 5));
        assert_eq!(l.end_offset_for_epoch(4), (3, 5));
        assert_eq!(l.end_offset_for_epoch(9), (5, 6));
    }

    #[test]
    fn up_to_date_compares_epoch_then_offset() {
        let l = log(&[1, 2, 2]);
        assert!(l.is_up_to_date(2, 3));
        assert!(l.is_up_to_date(3, 1));
        assert!(!l.is_up_to_date(2, 2));
        assert!(!l.is_up_to_date(1, 10));
    }

    #[test]
    fn prefix_deletion_keeps_offsets_and_epochs() {
        let mut l = log(&[1, 1, 2, 2, 3]);
        l.delete_prefix(3);
        assert_eq!((l.start_offset(), l.end_offset()), (3, 5));
        assert_eq!(l.get(3).map(|e| e.epoch), Some(2));
        assert_eq!(l.end_offset_for_epoch(2), (2, 4));
        assert_eq!(l.range(0, 10).len(), 2);
        l.delete_prefix(5);
        assert_eq!((l.last_epoch(), l.end_offset()), (3, 5));
        l.reset(9, 4);
        assert_eq!(
            (l.start_offset(), l.end_offset(), l.last_epoch()),
            (9, 9, 4)
        );
    }

    #[test]
    fn truncate_and_slice() {
        let mut l = log(&[1, 1, 2, 2]);
        assert_eq!(l.slice(1, 2).len(), 2);
        assert_eq!(l.range(3, 10).len(), 1);
        l.truncate(2);
        assert_eq!(l.end_offset(), 2);
        assert_eq!(l.last_epoch(), 1);
    }
}
