//! One partition's log: the segment list, offsets (log start, LEO, recovery point), the append
//! lock, and the read side.
//!
//! Concurrency: appends, rolls, retention and truncation serialize on one `Mutex<Inner>` per log
//! (no lock spans partitions). Readers take an `Arc` snapshot of the segment list and read with
//! `read_at`, never waiting for the append lock. Validation and the append path live in
//! `append.rs`, retention and housekeeping in `retention.rs`, load/recovery in `recovery.rs`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Mutex, MutexGuard, RwLock};
use shale_common::{Clock, TopicPartition};
use uuid::Uuid;

use crate::config::LogConfig;
use crate::epoch_cache::EpochCache;
use crate::error::{IoContext, LogError, Result};
use crate::files::{OpenFiles, STANDALONE_BUDGET};
use crate::flusher::{FlushJob, RecoveryPoint};
use crate::meta_properties::write_partition_metadata;
use crate::producer_state::{ProducerStateEntry, ProducerStateManager};
use crate::segment::Segment;
use crate::transactions::TxnTracker;

/// Who is appending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendOrigin {
    /// Produce from a client: full validation, offsets assigned, leader epoch stamped,
    /// producer-state checks.
    Client {
        /// Leader epoch stamped into every batch.
        leader_epoch: i32,
        /// The token of the batch's KIP-890 verification
        /// ([`crate::VerificationGuard::token`]), when the broker verifies transactional
        /// batches: a transactional batch that would open a transaction is refused
        /// (INVALID_TXN_STATE) unless the verification still holds. `None`: not checked.
        verification: Option<u64>,
    },
    /// The KRaft leader's own metadata batches: offsets assigned by the log, batch leader epoch
    /// kept as written, only CRC/size checks.
    RaftLeader,
    /// Transaction markers the broker writes for WriteTxnMarkers: exactly one ABORT/COMMIT
    /// control batch with a producer id, offsets assigned by the log and the leader epoch stamped
    /// (as for `Client`); the producer epoch must not be older than the producer's
    /// (INVALID_PRODUCER_EPOCH) nor the coordinator epoch older than the last marker's
    /// (TRANSACTION_COORDINATOR_FENCED).
    Coordinator {
        /// Leader epoch stamped into the batch.
        leader_epoch: i32,
    },
    /// A follower copying its leader's batches: offsets, epochs and timestamps kept as written
    /// (the first offset must not be below the log end offset), CRC/size checks only; producer
    /// state and the epoch cache follow the batches as on the leader.
    Replication,
}

/// Result of an append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    /// First offset assigned (-1 if nothing was appended).
    pub first_offset: i64,
    /// Last offset assigned (-1 if nothing was appended).
    pub last_offset: i64,
    /// Broker append time for LogAppendTime topics, else -1.
    pub log_append_time: i64,
    /// Log start offset after the append.
    pub log_start_offset: i64,
    /// Largest timestamp of the appended records.
    pub max_timestamp: i64,
    /// Number of records.
    pub record_count: i64,
    /// Records the broker rewrote instead of keeping the producer's bytes (a rebuild for
    /// `compression.type`): Kafka's produce message conversions.
    pub records_converted: i64,
    /// Idempotent retry: nothing written, offsets are the original ones.
    pub duplicate: bool,
}

/// Result of a read.
#[derive(Clone, Debug)]
pub struct ReadInfo {
    /// Whole batches starting with the batch that contains `fetch_offset` (one read per call).
    pub records: Bytes,
    /// Log start offset at the time of the read.
    pub log_start_offset: i64,
    /// Log end offset at the time of the read.
    pub log_end_offset: i64,
}

/// A timestamp lookup answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimestampOffset {
    /// Timestamp of the record found.
    pub timestamp: i64,
    /// Its offset.
    pub offset: i64,
    /// Leader epoch of its batch, if any.
    pub leader_epoch: Option<i32>,
}

/// How to open a log.
#[derive(Clone, Debug)]
pub struct LogOpenOptions {
    /// Topic id (written to `partition.metadata`); `None` = read it from the file if present.
    pub topic_id: Option<Uuid>,
    /// From `recovery-point-offset-checkpoint` (0 if unknown).
    pub recovery_point: i64,
    /// From `log-start-offset-checkpoint` (0 if unknown).
    pub log_start_offset: i64,
    /// Whether the log dir had a clean-shutdown marker.
    pub had_clean_shutdown: bool,
}

/// State guarded by the append lock.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) producers: ProducerStateManager,
    /// Files renamed `.deleted`, removed once `now >= deadline`.
    pub(crate) pending_deletes: Vec<(i64, Vec<PathBuf>)>,
    pub(crate) unflushed_messages: i64,
    pub(crate) last_flush_ms: i64,
}

/// One partition's log. `Send + Sync`.
#[derive(Debug)]
pub struct Log {
    pub(crate) tp: TopicPartition,
    pub(crate) dir: RwLock<PathBuf>,
    pub(crate) clock: Arc<dyn Clock>,
    /// The open-files budget its segments count against.
    pub(crate) files: OpenFiles,
    pub(crate) config: RwLock<Arc<LogConfig>>,
    pub(crate) topic_id: Option<Uuid>,
    pub(crate) segments: RwLock<Arc<Vec<Arc<Segment>>>>,
    pub(crate) inner: Mutex<Inner>,
    /// Open and unreplicated transactions (shared with the producer state in `inner`): the LSO
    /// is computed from it without the append lock.
    pub(crate) txns: Arc<Mutex<TxnTracker>>,
    pub(crate) epochs: Mutex<EpochCache>,
    pub(crate) log_start_offset: AtomicI64,
    /// Last offset known to be copied to remote storage (-1 = none); in memory only.
    pub(crate) highest_remote_offset: AtomicI64,
    /// Cleaner checkpoint: offsets below it have been compacted.
    pub(crate) cleaner_checkpoint: AtomicI64,
    /// The high watermark the broker last published; `replication-offset-checkpoint` keeps it.
    pub(crate) high_watermark: AtomicI64,
    /// Earliest delete horizon of a cleaned batch still holding tombstones (-1 = none).
    pub(crate) delete_horizon: AtomicI64,
    pub(crate) log_end_offset: AtomicI64,
    pub(crate) recovery_point: Arc<RecoveryPoint>,
    pub(crate) closed: AtomicBool,
    /// Set while appends fail on an I/O error (disk full, …); cleared by the next good append.
    pub(crate) appends_failing: AtomicBool,
}

impl Log {
    /// Opens (creating if needed) the partition directory `dir` and loads or recovers it, with an
    /// open-files budget of its own ([`STANDALONE_BUDGET`]); logs of a broker share one through
    /// [`Log::open_in`].
    pub fn open(
        dir: PathBuf,
        tp: TopicPartition,
        config: LogConfig,
        opts: LogOpenOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Log> {
        let files = OpenFiles::new(STANDALONE_BUDGET);
        Log::open_in(dir, tp, config, opts, clock, &files)
    }

    /// [`Log::open`] with segments counted against the shared budget `files`.
    pub fn open_in(
        dir: PathBuf,
        tp: TopicPartition,
        config: LogConfig,
        opts: LogOpenOptions,
        clock: Arc<dyn Clock>,
        files: &OpenFiles,
    ) -> Result<Log> {
        fs::create_dir_all(&dir).ctx(&dir)?;
        let topic_id = match opts.topic_id {
            Some(id) => {
                if crate::meta_properties::read_partition_metadata(&dir)
                    .ok()
                    .flatten()
                    != Some(id)
                {
                    write_partition_metadata(&dir, &id)?;
                }
                Some(id)
            }
            None => crate::meta_properties::read_partition_metadata(&dir)?,
        };
        let loaded = crate::recovery::load(files, &dir, &tp, &config, &opts, clock.now_ms())?;
        let now = clock.now_ms();
        let txns = loaded.producers.txns();
        Ok(Log {
            tp,
            dir: RwLock::new(dir),
            clock,
            files: files.clone(),
            config: RwLock::new(Arc::new(config)),
            topic_id,
            segments: RwLock::new(Arc::new(loaded.segments)),
            inner: Mutex::new(Inner {
                producers: loaded.producers,
                pending_deletes: Vec::new(),
                unflushed_messages: 0,
                last_flush_ms: now,
            }),
            txns,
            epochs: Mutex::new(loaded.epochs),
            log_start_offset: AtomicI64::new(loaded.log_start_offset),
            highest_remote_offset: AtomicI64::new(-1),
            cleaner_checkpoint: AtomicI64::new(0),
            high_watermark: AtomicI64::new(0),
            delete_horizon: AtomicI64::new(-1),
            log_end_offset: AtomicI64::new(loaded.log_end_offset),
            recovery_point: Arc::new(RecoveryPoint::new(loaded.recovery_point)),
            closed: AtomicBool::new(false),
            appends_failing: AtomicBool::new(false),
        })
    }

    /// The partition.
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }

    /// The clock this log stamps appends and ages segments with.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The partition directory.
    pub fn dir(&self) -> PathBuf {
        self.dir.read().clone()
    }

    /// The topic id, if known.
    pub fn topic_id(&self) -> Option<Uuid> {
        self.topic_id
    }

    /// The high watermark last recorded with [`Log::set_high_watermark`] (or restored from the
    /// checkpoint), within the log's offsets: a truncation below it lowers it.
    pub fn high_watermark(&self) -> i64 {
        let hw = self.high_watermark.load(Ordering::Acquire);
        hw.min(self.log_end_offset()).max(self.log_start_offset())
    }

    /// Records the partition's high watermark, which the broker computes, for the checkpoint.
    pub fn set_high_watermark(&self, hw: i64) {
        self.high_watermark.store(hw, Ordering::Release);
    }

    /// Log start offset.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }

    /// Log end offset (next offset to assign).
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset.load(Ordering::Acquire)
    }

    /// Offset below which everything is fsynced.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point.get()
    }

    /// Base offset of the oldest segment.
    pub fn first_segment_base_offset(&self) -> i64 {
        self.segments_snapshot()
            .first()
            .map_or(0, |s| s.base_offset)
    }

    /// Base offsets of all segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments_snapshot()
            .iter()
            .map(|s| s.base_offset)
            .collect()
    }

    /// `(base offset, .log size)` of every local segment, oldest first.
    pub fn segment_sizes(&self) -> Vec<(i64, u64)> {
        self.segments_snapshot()
            .iter()
            .map(|s| (s.base_offset, s.size()))
            .collect()
    }

    /// Total bytes of all `.log` files.
    pub fn size_in_bytes(&self) -> u64 {
        self.segments_snapshot().iter().map(|s| s.size()).sum()
    }

    /// The open-files budget this log counts against.
    pub fn open_files(&self) -> &OpenFiles {
        &self.files
    }

    /// Base offsets of the segments whose `.log` is open right now (diagnostics).
    pub fn open_segment_bases(&self) -> Vec<i64> {
        self.segments_snapshot()
            .iter()
            .filter(|s| s.is_open())
            .map(|s| s.base_offset)
            .collect()
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.segments_snapshot().len()
    }

    /// Current config.
    pub fn config(&self) -> LogConfig {
        LogConfig::clone(&self.config.read())
    }

    /// Cheap shared handle on the current config (no per-append clone of its strings).
    pub(crate) fn config_arc(&self) -> Arc<LogConfig> {
        self.config.read().clone()
    }

    /// Replaces the config (applies to later appends, rolls and retention).
    pub fn update_config(&self, config: LogConfig) {
        *self.config.write() = Arc::new(config);
    }

    /// Producers for DescribeProducers.
    pub fn producer_states(&self) -> Vec<ProducerStateEntry> {
        self.inner.lock().producers.entries()
    }

    /// Latest leader epoch in the cache.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.lock().latest_epoch()
    }

    /// OffsetForLeaderEpoch: `(epoch, end offset)` as Kafka's `endOffsetFor`; `None` = undefined.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        let leo = self.log_end_offset();
        self.epochs.lock().end_offset_for(epoch, leo)
    }

    /// Leader epoch of the batch range containing `offset`, per the epoch cache.
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        self.epochs.lock().epoch_for_offset(offset)
    }

    /// The `(epoch, start offset)` entries of the leader-epoch cache.
    pub fn epoch_entries(&self) -> Vec<(i32, i64)> {
        self.epochs.lock().entries().to_vec()
    }

    /// A replica that becomes leader in `epoch` starts that epoch at its log end offset, before
    /// it has written anything in it (Kafka's `maybeAssignEpochStartOffset` in `makeLeader`):
    /// a follower that asks where an older epoch ends then learns it even while the partition
    /// is idle. No-op when the cache already knows `epoch` or a later one. Persists the cache.
    pub fn assign_leader_epoch(&self, epoch: i32) -> Result<()> {
        shale_common::blocking::check("Log::assign_leader_epoch");
        let _appends = self.lock_open()?;
        let mut epochs = self.epochs.lock();
        if epochs.latest_epoch().is_some_and(|latest| latest >= epoch) {
            return Ok(());
        }
        epochs.assign(epoch, self.log_end_offset())
    }

    pub(crate) fn segments_snapshot(&self) -> Arc<Vec<Arc<Segment>>> {
        self.segments.read().clone()
    }

    /// Takes the append lock, failing if the log is closed.
    pub(crate) fn lock_open(&self) -> Result<MutexGuard<'_, Inner>> {
        let g = self.inner.lock();
        if self.closed.load(Ordering::Acquire) {
            return Err(LogError::Closed {
                tp: self.tp.clone(),
            });
        }
        Ok(g)
    }

    fn out_of_range(&self, offset: i64) -> LogError {
        LogError::OffsetOutOfRange {
            tp: self.tp.clone(),
            offset,
            log_start: self.log_start_offset(),
            log_end: self.log_end_offset(),
        }
    }

    /// Reads whole batches from `fetch_offset` up to `max_bytes` total, only batches whose last
    /// offset is below `max_offset` (HW/LSO; pass `log_end_offset()` for everything). With
    /// `min_one_batch` a first batch bigger than `max_bytes` is returned whole.
    pub fn read(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<ReadInfo> {
        shale_common::blocking::check("Log::read");
        let leo = self.log_end_offset();
        let segs = self.segments_snapshot();
        let log_start = self.log_start_offset();
        let info = |records| ReadInfo {
            records,
            log_start_offset: log_start,
            log_end_offset: leo,
        };
        if fetch_offset < log_start || fetch_offset > leo {
            return Err(self.out_of_range(fetch_offset));
        }
        let local_start = segs
            .first()
            .map_or(log_start, |s| s.base_offset.max(log_start));
        if fetch_offset < local_start {
            return Err(LogError::OffsetMovedToTieredStorage {
                tp: self.tp.clone(),
                offset: fetch_offset,
                local_log_start: local_start,
            });
        }
        let max_offset = max_offset.min(leo);
        if fetch_offset >= max_offset {
            return Ok(info(Bytes::new()));
        }
        let idx = segs
            .partition_point(|s| s.base_offset <= fetch_offset)
            .saturating_sub(1);
        for seg in &segs[idx..] {
            if let Some(b) = seg.read(fetch_offset, max_bytes, max_offset, min_one_batch)? {
                return Ok(info(b));
            }
        }
        Ok(info(Bytes::new()))
    }

    /// ListOffsets by timestamp: first local offset whose record timestamp is >= `ts` (local
    /// segments only; for tiered logs the broker consults remote storage first).
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<TimestampOffset>> {
        shale_common::blocking::check("Log::offset_for_timestamp");
        let segs = self.segments_snapshot();
        let log_start = self.log_start_offset();
        let leo = self.log_end_offset();
        for seg in segs.iter() {
            if seg.largest_timestamp() < ts {
                continue;
            }
            let (_, off) = seg.time_lookup(ts)?;
            let (_, pos) = seg.offset_lookup(off.max(log_start))?;
            if let Some(found) =
                crate::recovery::scan_for_timestamp(seg, u64::from(pos), log_start, leo, |t| {
                    t >= ts
                })?
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// ListOffsets MAX_TIMESTAMP: the local record with the largest timestamp (first one if tied;
    /// local segments only).
    pub fn offset_of_max_timestamp(&self) -> Result<Option<TimestampOffset>> {
        shale_common::blocking::check("Log::offset_of_max_timestamp");
        let segs = self.segments_snapshot();
        let log_start = self.log_start_offset();
        let leo = self.log_end_offset();
        let mut best: Option<(i64, &Arc<Segment>)> = None;
        for seg in segs.iter() {
            let t = seg.state.lock().max_timestamp;
            if t >= 0 && best.is_none_or(|(b, _)| t > b) {
                best = Some((t, seg));
            }
        }
        let Some((max_ts, seg)) = best else {
            return Ok(None);
        };
        crate::recovery::scan_for_timestamp(seg, 0, log_start, leo, |t| t >= max_ts)
    }

    /// Fsyncs every segment holding data above the recovery point, then advances it to LEO.
    pub fn flush(&self) -> Result<()> {
        shale_common::blocking::check("Log::flush");
        let mut inner = self.inner.lock();
        self.flush_locked(&mut inner)
    }

    pub(crate) fn flush_locked(&self, inner: &mut Inner) -> Result<()> {
        let leo = self.log_end_offset();
        let rp = self.recovery_point();
        if leo <= rp && inner.unflushed_messages == 0 {
            return Ok(());
        }
        let segs = self.segments_snapshot();
        for (i, seg) in segs.iter().enumerate() {
            if seg.next_offset() > rp || i + 1 == segs.len() {
                seg.flush()?;
            }
        }
        self.recovery_point.advance_to(leo);
        inner.unflushed_messages = 0;
        inner.last_flush_ms = self.clock.now_ms();
        Ok(())
    }

    /// Rolls a new active segment at LEO (no-op if the active one is empty at LEO).
    pub fn roll(&self) -> Result<()> {
        shale_common::blocking::check("Log::roll");
        let mut inner = self.lock_open()?;
        self.roll_locked(&mut inner)
    }

    /// The new active segment is in place and the old one sealed (indexes written back, files
    /// not yet fsynced) before this returns; the fsyncs and the recovery point's move to the new
    /// base offset are the background flusher's (`flusher.rs`), so no append waits for a disk
    /// flush at a roll.
    pub(crate) fn roll_locked(&self, inner: &mut Inner) -> Result<()> {
        let leo = self.log_end_offset();
        let segs = self.segments_snapshot();
        if let Some(active) = segs.last() {
            if active.size() == 0 && active.base_offset == leo {
                return Ok(());
            }
            active.seal()?;
        }
        let dir = self.dir();
        let config = self.config_arc();
        let seg = Segment::create(&self.files, &dir, leo, &config, self.clock.now_ms())?;
        let rp = self.recovery_point();
        let unflushed = segs
            .iter()
            .filter(|s| s.next_offset() > rp)
            .cloned()
            .collect();
        let mut v: Vec<Arc<Segment>> = segs.iter().cloned().collect();
        v.push(Arc::new(seg));
        *self.segments.write() = Arc::new(v);
        inner.producers.set_map_end_offset(leo);
        let snapshot = inner.producers.take_snapshot_unsynced()?;
        crate::flusher::flush_later(FlushJob {
            tp: self.tp.clone(),
            dir,
            segments: unflushed,
            snapshot,
            up_to: leo,
            recovery_point: self.recovery_point.clone(),
            generation: self.recovery_point.generation(),
        });
        Ok(())
    }

    /// Clean close: producer snapshot at LEO, final time-index entry, trimmed indexes, fsync.
    pub fn close(&self) -> Result<()> {
        shale_common::blocking::check("Log::close");
        let mut inner = self.inner.lock();
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.flush_locked(&mut inner)?;
        let leo = self.log_end_offset();
        inner.producers.set_map_end_offset(leo);
        inner.producers.take_snapshot()?;
        if let Some(active) = self.segments_snapshot().last() {
            active.on_become_inactive()?;
        }
        if let Some(id) = self.topic_id {
            write_partition_metadata(&self.dir(), &id)?;
        }
        self.recovery_point.advance_to(leo);
        Ok(())
    }

    /// Deletes the whole partition directory (renamed `<tp>.<uuid>-delete`, then removed).
    pub fn delete(&self) -> Result<()> {
        shale_common::blocking::check("Log::delete");
        let _inner = self.inner.lock();
        self.closed.store(true, Ordering::Release);
        let dir = self.dir();
        let parent = dir.parent().map(Path::to_path_buf).unwrap_or_default();
        // Kafka uses a random UUID; a clock-derived one keeps library code free of ambient randomness.
        let unique = ((self.clock.now_ms() as u128) << 64)
            | self.clock.monotonic().as_nanos() as u64 as u128;
        let target = parent.join(format!(
            "{}.{}-delete",
            self.tp,
            Uuid::from_u128(unique).simple()
        ));
        fs::rename(&dir, &target).ctx(&dir)?;
        for seg in self.segments_snapshot().iter() {
            seg.set_dir(&target);
        }
        *self.dir.write() = target.clone();
        self.epochs.lock().set_dir(&target);
        fs::remove_dir_all(&target).ctx(&target)?;
        // Descriptors go back to the budget now, not when the last handle on the log is dropped.
        for seg in self.segments_snapshot().iter() {
            seg.release();
        }
        Ok(())
    }
}
