//! The leader-epoch cache of a partition and its `leader-epoch-checkpoint` file (formats.md §3.3):
//! `(epoch, start offset)` pairs, epochs and offsets strictly increasing, rewritten synchronously
//! (tmp + fsync + rename) whenever it changes. Answers OffsetForLeaderEpoch (`end_offset_for`).

use std::path::{Path, PathBuf};

use crate::checkpoint::{read_lines, write_lines};
use crate::error::{LogError, Result};

/// File name inside the partition dir.
pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

/// The `(epoch, start offset)` entries of a leader-epoch checkpoint's `bytes` (e.g. the one a
/// tiered segment carries), checked as the file is when a log loads.
pub fn parse_leader_epoch_checkpoint(bytes: &[u8]) -> Result<Vec<(i32, i64)>> {
    let path = Path::new(LEADER_EPOCH_CHECKPOINT);
    let text = std::str::from_utf8(bytes).map_err(|e| LogError::corrupt(path, e.to_string()))?;
    parse_entries(path, &crate::checkpoint::parse_lines(path, text, 0)?)
}

fn parse_entries(path: &Path, lines: &[String]) -> Result<Vec<(i32, i64)>> {
    lines
        .iter()
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let e = match f.as_slice() {
                [e, o] => e.parse::<i32>().ok().zip(o.parse::<i64>().ok()),
                _ => None,
            };
            e.ok_or_else(|| LogError::corrupt(path, format!("malformed entry line {line:?}")))
        })
        .collect()
}

/// In-memory epoch entries backed by the checkpoint file.
#[derive(Debug)]
pub(crate) struct EpochCache {
    path: PathBuf,
    entries: Vec<(i32, i64)>,
}

impl EpochCache {
    /// Loads `<dir>/leader-epoch-checkpoint` (missing = empty).
    pub(crate) fn load(dir: &Path) -> Result<EpochCache> {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT);
        let lines = read_lines(&path, 0)?.unwrap_or_default();
        let entries = parse_entries(&path, &lines)?;
        Ok(EpochCache { path, entries })
    }

    /// Writes the (empty) file if it does not exist yet, as Kafka does on log creation.
    pub(crate) fn ensure_file(&self) -> Result<()> {
        if self.path.exists() {
            return Ok(());
        }
        self.persist()
    }

    /// All entries.
    pub(crate) fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }

    /// Re-points the file after the partition dir moved.
    pub(crate) fn set_dir(&mut self, dir: &Path) {
        self.path = dir.join(LEADER_EPOCH_CHECKPOINT);
    }

    fn persist(&self) -> Result<()> {
        let lines: Vec<String> = self
            .entries
            .iter()
            .map(|(e, o)| format!("{e} {o}"))
            .collect();
        write_lines(&self.path, 0, &lines)
    }

    /// Records that `epoch` starts at `start_offset` (Kafka's assign rules); persists on change.
    pub(crate) fn assign(&mut self, epoch: i32, start_offset: i64) -> Result<()> {
        if epoch < 0 {
            return Ok(());
        }
        if let Some(&(le, lo)) = self.entries.last() {
            if le == epoch && start_offset >= lo {
                return Ok(());
            }
        }
        self.entries.retain(|&(e, o)| e < epoch && o < start_offset);
        self.entries.push((epoch, start_offset));
        self.persist()
    }

    /// Latest epoch.
    pub(crate) fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.0)
    }

    /// Kafka's `endOffsetFor`: `(epoch, end offset)` or `None` for "undefined".
    pub(crate) fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> Option<(i32, i64)> {
        if requested < 0 {
            return None;
        }
        if self.latest_epoch() == Some(requested) {
            return Some((requested, log_end_offset));
        }
        let higher = self.entries.iter().find(|&&(e, _)| e > requested)?;
        match self.entries.iter().rev().find(|&&(e, _)| e <= requested) {
            None => Some((requested, higher.1)),
            Some(floor) => Some((floor.0, higher.1)),
        }
    }

    /// Epoch of the last entry starting at or below `offset`.
    pub(crate) fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        self.entries
            .iter()
            .rev()
            .find(|&&(_, o)| o <= offset)
            .map(|e| e.0)
    }

    /// Drops entries starting at or after `end_offset`; persists on change.
    pub(crate) fn truncate_from_end(&mut self, end_offset: i64) -> Result<()> {
        let before = self.entries.len();
        self.entries.retain(|&(_, o)| o < end_offset);
        if self.entries.len() != before {
            self.persist()?;
        }
        Ok(())
    }

    /// Drops entries starting at or before `start_offset`, re-inserting the last dropped one as
    /// `(epoch, start_offset)`; persists on change.
    pub(crate) fn truncate_from_start(&mut self, start_offset: i64) -> Result<()> {
        let n = self
            .entries
            .iter()
            .take_while(|&&(_, o)| o <= start_offset)
            .count();
        if n == 0 {
            return Ok(());
        }
        let last = self.entries[n - 1];
        if n == 1 && last.1 == start_offset {
            return Ok(());
        }
        self.entries.drain(..n);
        self.entries.insert(0, (last.0, start_offset));
        self.persist()
    }

    /// Removes everything (and persists an empty file).
    pub(crate) fn clear(&mut self) -> Result<()> {
        self.entries.clear();
        self.persist()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kafka_leader_epoch_checkpoints() {
        assert_eq!(
            parse_leader_epoch_checkpoint(b"0\n2\n0 0\n3 120\n").unwrap(),
            vec![(0, 0), (3, 120)]
        );
        assert_eq!(parse_leader_epoch_checkpoint(b"0\n0\n").unwrap(), vec![]);
        assert!(parse_leader_epoch_checkpoint(b"1\n0\n").is_err());
        assert!(parse_leader_epoch_checkpoint(b"0\n2\n0 0\n").is_err());
        assert!(parse_leader_epoch_checkpoint(b"0\n1\n0 x\n").is_err());
    }

    #[test]
    fn assign_truncate_and_lookup() {
        let d = tempfile::tempdir().unwrap();
        let mut c = EpochCache::load(d.path()).unwrap();
        c.assign(0, 0).unwrap();
        c.assign(0, 5).unwrap(); // same epoch: no-op
        c.assign(2, 10).unwrap();
        c.assign(4, 20).unwrap();
        assert_eq!(
            std::fs::read(d.path().join(LEADER_EPOCH_CHECKPOINT)).unwrap(),
            b"0\n3\n0 0\n2 10\n4 20\n"
        );
        assert_eq!(c.end_offset_for(4, 30), Some((4, 30)));
        assert_eq!(c.end_offset_for(3, 30), Some((2, 20)));
        assert_eq!(c.end_offset_for(0, 30), Some((0, 10)));
        assert_eq!(c.end_offset_for(5, 30), None);
        assert_eq!(c.epoch_for_offset(15), Some(2));
        // A lower epoch at a lower offset replaces later entries.
        c.assign(3, 15).unwrap();
        assert_eq!(c.entries(), &[(0, 0), (2, 10), (3, 15)]);
        c.truncate_from_end(12).unwrap();
        assert_eq!(c.entries(), &[(0, 0), (2, 10)]);
        c.truncate_from_start(11).unwrap();
        assert_eq!(c.entries(), &[(2, 11)]);
        let c2 = EpochCache::load(d.path()).unwrap();
        assert_eq!(c2.entries(), &[(2, 11)]);
    }
}
