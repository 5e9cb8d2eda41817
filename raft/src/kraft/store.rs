//! The durable side of the multi-voter core: [`KRaftStore`] executes the core's storage
//! [`Command`]s on disk (blocking file I/O; the runtime calls it on a blocking thread) and, at
//! start-up, recovers what [`super::KRaft::restore`] needs ([`Recovered`]).
//!
//! Everything lives in `<metadata log dir>/__cluster_metadata-0`, as for [`MetadataLog`]:
//! - the log: Kafka v2 record batches ([`super::codec`]) in `shale_local_log` segments, appended
//!   with the raft-leader origin (offsets and epochs as the core chose them, CRC checked);
//! - `quorum-state`: Kafka's JSON election state, written tmp + fsync + rename;
//! - `<endOffset 20d>-<epoch 10d>.checkpoint`: the newest snapshot. [`Snapshot::data`] IS the
//!   checkpoint file's bytes (Kafka's snapshot file: a SnapshotHeader control batch, data
//!   batches, a SnapshotFooter control batch, offsets from 0; the controller builds it with
//!   [`crate::snapshot::encode_batch_file`]), so a FetchSnapshot chunk is a byte range of the
//!   file, exactly as in Kafka. The store checks that framing (whole batches, valid CRCs,
//!   contiguous offsets from 0, header first, footer last) but never decodes the records.
//!   A snapshot is written to `<name>.part`, fsynced, renamed and the directory fsynced; only
//!   then are older checkpoints removed;
//! - `truncation-journal`, only while a truncation falls inside a batch: the log cuts whole
//!   batches, so the entries of that batch below the truncation point are journaled, the batch
//!   is cut and they are appended again (fsynced) before the journal is removed; opening
//!   finishes an interrupted one (see `finish_truncation`). Replicas batch differently (each
//!   appends the entries of its own fetches), so Kafka's guarantee that truncation points are
//!   batch boundaries does not hold here.
//!
//! Opening: `*.checkpoint.part` and `*.checkpoint.deleted` leftovers of interrupted writes are
//! removed; the newest complete checkpoint is loaded and older ones are removed. A checkpoint
//! that cannot be read or is malformed is an error, not skipped: falling back to an older one
//! could pair a snapshot with a log whose prefix it no longer covers, so an operator must
//! decide. The log is recovered by `shale_local_log` (a torn tail of the last segment is cut)
//! and read fully into memory: metadata logs are small, and the core keeps the same entries
//! in its [`LogView`] anyway. The view starts at the log start offset with the snapshot's epoch
//! when the log starts at the snapshot's end (after a crash the log may still start below it;
//! the core then deletes the prefix or resets the log itself). A log that starts above 0 with
//! no snapshot reaching its start has lost entries and is an error.
//!
//! Commands the core never emits (an append not at the log end, a truncation below the log
//! start, a prefix deletion or reset no durable snapshot covers, a snapshot older than the
//! current one) are refused with [`RaftError::Quorum`] instead of silently diverging from the
//! core's view.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use shale_common::Clock;
use shale_protocol::record_batch::{batches, RecordBatch};

use super::codec::{decode_entries, encode_entries, entry_batches};
use super::log::LogView;
use super::types::{Command, ElectionState, Entry, Event, Snapshot, SnapshotId};
use crate::batch::{decode_batch, MetadataBatch, CONTROL_SNAPSHOT_FOOTER, CONTROL_SNAPSHOT_HEADER};
use crate::error::RaftError;
use crate::metadata_log::MetadataLog;
use crate::snapshot::{self as files, write_atomic};

/// `metadata.log.segment.bytes` used by [`KRaftStore::open`] (Kafka's default, 1 GiB).
pub const DEFAULT_SEGMENT_BYTES: i32 = 1 << 30;
/// The entries a mid-batch truncation keeps, written before the batch is cut (in the
/// partition directory; absent except during such a truncation or after a crash in one).
pub const TRUNCATION_JOURNAL: &str = "truncation-journal";
const TRUNCATION_JOURNAL_TMP: &str = "truncation-journal.tmp";

/// The core's durable inputs, exactly what [`super::KRaft::restore`] takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// `quorum-state`, None when absent.
    pub election: Option<ElectionState>,
    /// The newest checkpoint, its bytes as `data`.
    pub snapshot: Option<Snapshot>,
    /// Every entry from the log start offset to the log end offset.
    pub log: LogView,
}

/// The metadata partition's files, driven by the core's [`Command`]s.
#[derive(Debug)]
pub struct KRaftStore {
    log: MetadataLog,
    clock: Arc<dyn Clock>,
    /// The newest durable checkpoint.
    snapshot: Option<SnapshotId>,
}

impl KRaftStore {
    /// Opens (creating if needed) `<dir>/__cluster_metadata-0` with 1 GiB segments and recovers
    /// the core's inputs. `clock` stamps appended batches.
    pub fn open(dir: &Path, clock: Arc<dyn Clock>) -> Result<(KRaftStore, Recovered), RaftError> {
        KRaftStore::open_with(dir, DEFAULT_SEGMENT_BYTES, clock)
    }

    /// [`KRaftStore::open`] with `metadata.log.segment.bytes` = `segment_bytes`.
    pub fn open_with(
        dir: &Path,
        segment_bytes: i32,
        clock: Arc<dyn Clock>,
    ) -> Result<(KRaftStore, Recovered), RaftError> {
        let log = MetadataLog::open(dir, segment_bytes, clock.clone())?;
        finish_truncation(&log)?;
        files::remove_partial_files(log.dir())?;
        let snapshot = load_newest_snapshot(log.dir())?;
        let election = log.read_quorum_state()?;
        let view = read_log(&log, snapshot.as_ref().map(|s| s.id))?;
        let store = KRaftStore {
            log,
            clock,
            snapshot: snapshot.as_ref().map(|s| s.id),
        };
        let recovered = Recovered {
            election,
            snapshot,
            log: view,
        };
        Ok((store, recovered))
    }

    /// Executes one command (commands must be executed in the order the core gave them).
    /// `Flush` answers with [`Event::Flushed`] (the durable log end offset) to feed back to the
    /// core; `Send`, `Commit`, `Apply` and `LoadSnapshot` are not storage and do nothing here.
    pub fn execute(&mut self, cmd: &Command) -> Result<Option<Event>, RaftError> {
        match cmd {
            Command::WriteQuorumState(state) => self.log.write_quorum_state(state)?,
            Command::AppendBatch {
                base_offset,
                entries,
            } => self.append(*base_offset, entries)?,
            Command::Truncate { to } => self.truncate(*to)?,
            Command::Flush => {
                let up_to = self.log.flush()?;
                return Ok(Some(Event::Flushed { up_to }));
            }
            Command::WriteSnapshot(s) => self.write_snapshot(s)?,
            Command::DeleteLogPrefix { to } => self.delete_prefix(*to)?,
            Command::ResetLog { start_offset } => self.reset(*start_offset)?,
            Command::Send { .. }
            | Command::Commit { .. }
            | Command::Apply { .. }
            | Command::LoadSnapshot(_) => {}
        }
        Ok(None)
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        self.log.dir()
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log.log_start_offset()
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log.log_end_offset()
    }

    /// The newest durable checkpoint's id.
    pub fn snapshot_id(&self) -> Option<SnapshotId> {
        self.snapshot
    }

    /// Periodic housekeeping (call it every few seconds): physically removes segments deleted by
    /// `DeleteLogPrefix`/`ResetLog`/`Truncate` once `file.delete.delay.ms` has passed.
    pub fn housekeeping(&self) -> Result<(), RaftError> {
        self.log.tick()
    }

    /// Clean close of the log.
    pub fn close(&self) -> Result<(), RaftError> {
        self.log.close()
    }

    fn append(&self, base_offset: i64, entries: &[Entry]) -> Result<(), RaftError> {
        let end = self.log.log_end_offset();
        if base_offset != end {
            return Err(RaftError::Quorum(format!(
                "AppendBatch at offset {base_offset}, but the log ends at {end}"
            )));
        }
        let now = self.clock.now_ms();
        for batch in entry_batches(base_offset, entries, now) {
            self.log.append(batch?)?;
        }
        Ok(())
    }

    /// Truncates to `to`. The log cuts whole batches, and replicas batch differently (each
    /// appends the entries of its fetches), so `to` may fall inside a batch: its entries below
    /// `to` are then journaled, the batch is cut and they are appended again and fsynced.
    fn truncate(&self, to: i64) -> Result<(), RaftError> {
        let start = self.log.log_start_offset();
        if to < start {
            return Err(RaftError::Quorum(format!(
                "Truncate to {to}, below the log start offset {start}"
            )));
        }
        let Some(batch) = self.log.batch_at(to)? else {
            return Ok(());
        };
        let base = batch.base_offset();
        if base == to {
            return self.log.truncate_to(to);
        }
        let (_, mut kept) = decode_entries(batch.into_bytes())?;
        kept.truncate(usize::try_from(to - base).unwrap_or_default());
        let bytes = encode_entries(base, &kept, self.clock.now_ms())?;
        let dir = self.log.dir();
        let journal = dir.join(TRUNCATION_JOURNAL);
        write_atomic(&journal, &dir.join(TRUNCATION_JOURNAL_TMP), &bytes)?;
        rewrite_tail(&self.log, base, bytes)?;
        remove_journal(dir)
    }

    fn write_snapshot(&mut self, s: &Snapshot) -> Result<(), RaftError> {
        if let Some(current) = self.snapshot.filter(|c| s.id < *c) {
            return Err(RaftError::Quorum(format!(
                "WriteSnapshot {:?} is older than the current snapshot {current:?}",
                s.id
            )));
        }
        let id = file_id(s.id);
        let dir = self.log.dir();
        let path = dir.join(id.file_name());
        check_checkpoint(&path, &s.data)?;
        let tmp = dir.join(format!("{}.part", id.file_name()));
        write_atomic(&path, &tmp, &s.data)?;
        files::delete_snapshots_before(dir, id)?;
        self.snapshot = Some(s.id);
        Ok(())
    }

    fn delete_prefix(&self, to: i64) -> Result<(), RaftError> {
        let end = self.log.log_end_offset();
        if self.snapshot.is_none_or(|s| s.end_offset < to) || to > end {
            return Err(RaftError::Quorum(format!(
                "DeleteLogPrefix to {to}: snapshot {:?}, log end {end}",
                self.snapshot
            )));
        }
        self.log.delete_before(to)?;
        sync_dir(self.log.dir());
        Ok(())
    }

    fn reset(&self, start_offset: i64) -> Result<(), RaftError> {
        if self.snapshot.map(|s| s.end_offset) != Some(start_offset) {
            return Err(RaftError::Quorum(format!(
                "ResetLog at {start_offset}, but the durable snapshot is {:?}",
                self.snapshot
            )));
        }
        self.log.truncate_fully_and_start_at(start_offset)?;
        sync_dir(self.log.dir());
        Ok(())
    }
}

/// Replaces everything from `base` (a batch start) with `bytes` (batches from `base`), fsynced.
fn rewrite_tail(log: &MetadataLog, base: i64, bytes: Bytes) -> Result<(), RaftError> {
    log.truncate_to(base)?;
    for batch in batches(bytes) {
        log.append(batch?)?;
    }
    log.flush()?;
    Ok(())
}

/// Removes the truncation journal, durably: a journal that came back after later appends
/// must not be replayed over them.
fn remove_journal(dir: &Path) -> Result<(), RaftError> {
    let journal = dir.join(TRUNCATION_JOURNAL);
    match fs::remove_file(&journal) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(RaftError::io(journal, e)),
    }
    sync_dir(dir);
    Ok(())
}

/// At open: completes a mid-batch truncation a crash interrupted. The journal holds the
/// entries kept from `base`; if the log ends exactly at `base` (the batch was cut, the
/// re-append was lost) they are appended again; otherwise the cut never became durable or the
/// re-append did, and the journal is simply removed.
fn finish_truncation(log: &MetadataLog) -> Result<(), RaftError> {
    let dir = log.dir();
    let _ = fs::remove_file(dir.join(TRUNCATION_JOURNAL_TMP));
    let journal = dir.join(TRUNCATION_JOURNAL);
    let bytes = match fs::read(&journal) {
        Ok(b) => Bytes::from(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(RaftError::io(journal, e)),
    };
    let (base, _) = decode_entries(bytes.clone()).map_err(|e| RaftError::Corrupt {
        path: journal.clone(),
        reason: e.to_string(),
    })?;
    if let Some(base) = base {
        if base == log.log_end_offset() && base >= log.log_start_offset() {
            rewrite_tail(log, base, bytes)?;
        }
    }
    remove_journal(dir)
}

/// The checkpoint naming of [`crate::snapshot`] for a core snapshot id.
fn file_id(id: SnapshotId) -> files::SnapshotId {
    files::SnapshotId {
        end_offset: id.end_offset,
        epoch: id.epoch,
    }
}

/// The newest checkpoint in `dir` (older ones are removed); an unreadable one is an error.
fn load_newest_snapshot(dir: &Path) -> Result<Option<Snapshot>, RaftError> {
    let Some(newest) = files::list_snapshots(dir)?.pop() else {
        return Ok(None);
    };
    let path = dir.join(newest.file_name());
    let data = Bytes::from(fs::read(&path).map_err(|e| RaftError::io(&path, e))?);
    check_checkpoint(&path, &data)?;
    files::delete_snapshots_before(dir, newest)?;
    let id = SnapshotId {
        end_offset: newest.end_offset,
        epoch: newest.epoch,
    };
    Ok(Some(Snapshot { id, data }))
}

/// Checks a snapshot file's framing: whole batches with valid CRCs, offsets contiguous from 0,
/// a SnapshotHeader control batch first and a SnapshotFooter control batch last.
fn check_checkpoint(path: &Path, data: &Bytes) -> Result<(), RaftError> {
    let corrupt = |reason: String| RaftError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let mut iter = batches(data.clone());
    let mut next = 0i64;
    let mut first = None;
    let mut last = None;
    for batch in iter.by_ref() {
        let batch = batch.map_err(|e| corrupt(e.to_string()))?;
        batch.verify_crc().map_err(|e| corrupt(e.to_string()))?;
        if batch.base_offset() != next {
            return Err(corrupt(format!(
                "batch at offset {} where {next} was expected",
                batch.base_offset()
            )));
        }
        next = batch.last_offset() + 1;
        let kind = control_type(&batch).map_err(|e| corrupt(e.to_string()))?;
        first.get_or_insert(kind);
        last = Some(kind);
    }
    if iter.position() != data.len() {
        return Err(corrupt(format!(
            "truncated batch at byte {} of {}",
            iter.position(),
            data.len()
        )));
    }
    if first != Some(Some(CONTROL_SNAPSHOT_HEADER)) {
        return Err(corrupt("does not start with a SnapshotHeader".into()));
    }
    if last != Some(Some(CONTROL_SNAPSHOT_FOOTER)) {
        return Err(corrupt("does not end with a SnapshotFooter".into()));
    }
    Ok(())
}

/// The type of a control batch's first record; None for a data batch.
fn control_type(batch: &RecordBatch) -> Result<Option<i16>, RaftError> {
    if !batch.is_control() {
        return Ok(None);
    }
    match decode_batch(batch)? {
        MetadataBatch::Control { types, .. } => Ok(types.first().copied()),
        MetadataBatch::Data { .. } => Ok(None),
    }
}

/// Every entry of the log, as a [`LogView`] starting at the log start offset.
fn read_log(log: &MetadataLog, snapshot: Option<SnapshotId>) -> Result<LogView, RaftError> {
    let start = log.log_start_offset();
    let start_epoch = match snapshot {
        Some(s) if s.end_offset == start => s.epoch,
        _ if start == 0 => 0,
        // A crash before the prefix was deleted: the core deletes it (or resets the log) and
        // derives the epoch from the entries, so this one is never used.
        Some(s) if s.end_offset > start => 0,
        _ => {
            return Err(RaftError::Corrupt {
                path: log.dir().to_path_buf(),
                reason: format!(
                    "the log starts at {start} but no snapshot reaches it (newest {snapshot:?})"
                ),
            })
        }
    };
    let mut entries = Vec::new();
    let mut next = start;
    log.read_batches(start, |batch| {
        let (base, last) = (batch.base_offset(), batch.last_offset());
        if base > next || last < next {
            return Err(RaftError::Decode(format!(
                "metadata log batch at offset {base} where {next} was expected"
            )));
        }
        let (_, decoded) = decode_entries(batch.into_bytes())?;
        // A batch straddling the log start contributes its entries from the start on.
        let skip = usize::try_from(next - base).unwrap_or_default();
        entries.extend(decoded.into_iter().skip(skip));
        next = last + 1;
        Ok(())
    })?;
    if next != log.log_end_offset() {
        return Err(RaftError::Decode(format!(
            "metadata log read up to {next}, but it ends at {}",
            log.log_end_offset()
        )));
    }
    Ok(LogView::starting_at(start, start_epoch, entries))
}

/// fsyncs a directory so renames and deletions in it are durable (best effort: not every
/// platform allows it, as in [`crate::snapshot`]).
fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}
