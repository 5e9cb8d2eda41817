//! Deleting data from a [`Log`]: time/size/log-start retention (Kafka's `deleteOldSegments`),
//! DeleteRecords, follower-style truncation and starting over empty at an offset
//! (`truncate_fully_and_start_at`), and housekeeping (`tick`): physical removal of `.deleted`
//! files after `file.delete.delay.ms`, producer expiry, `flush.ms`, `segment.ms`.
//! Tiered logs (kip-405 §4.3): `local.retention.*`, only segments already copied to remote
//! storage, only the local log start moves, and a breaching active segment is rolled.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::error::{LogError, Result};
use crate::log::{Inner, Log};
use crate::producer_state::snapshot_file_name;
use crate::segment::Segment;

impl Log {
    /// Removes `doomed` (a prefix or suffix of the segment list) from the log, renames their files
    /// (and same-base producer snapshots) `.deleted` and schedules the physical delete.
    fn delete_segments(&self, inner: &mut Inner, doomed: &[Arc<Segment>]) -> Result<()> {
        if doomed.is_empty() {
            return Ok(());
        }
        let segs = self.segments_snapshot();
        let keep: Vec<Arc<Segment>> = segs
            .iter()
            .filter(|s| !doomed.iter().any(|d| Arc::ptr_eq(d, s)))
            .cloned()
            .collect();
        *self.segments.write() = Arc::new(keep);
        let deadline = self
            .clock
            .now_ms()
            .saturating_add(self.config.read().file_delete_delay_ms);
        let dir = self.dir();
        for seg in doomed {
            seg.release();
            let mut files = seg.rename_with_suffix(".deleted")?;
            if let Some(p) = inner.producers.detach_snapshot(seg.base_offset) {
                let target = dir.join(format!("{}.deleted", snapshot_file_name(seg.base_offset)));
                if fs::rename(&p, &target).is_ok() {
                    files.push(target);
                }
            }
            inner.pending_deletes.push((deadline, files));
        }
        Ok(())
    }

    /// Segments from the oldest on while `pred(segment, next)` holds (Kafka's
    /// `deletableSegments`); the active segment only if non-empty. For tiered logs with copy
    /// enabled a segment also needs `next base - 1 <= highest offset in remote storage` or the
    /// log start offset at/after the next base (invariant 2). The flag says a tiered log's
    /// non-empty active segment matched `pred` and should be rolled so it can be uploaded.
    pub(crate) fn deletable(
        &self,
        mut pred: impl FnMut(&Segment, Option<&Arc<Segment>>) -> bool,
    ) -> (Vec<Arc<Segment>>, bool) {
        let segs = self.segments_snapshot();
        let tiered = self.is_tiered();
        let guard = self.is_tiered_and_copy_enabled();
        let highest = self.highest_offset_in_remote_storage();
        let log_start = self.log_start_offset();
        let leo = self.log_end_offset();
        let mut out = Vec::new();
        let mut roll = false;
        for (i, s) in segs.iter().enumerate() {
            let next = segs.get(i + 1);
            let last_and_empty = next.is_none() && s.size() == 0;
            let upper = next.map_or(leo, |n| n.base_offset);
            let matched = pred(s, next);
            if matched && tiered && next.is_none() && s.size() > 0 {
                roll = true;
            }
            let eligible = !guard
                || (upper > 0 && upper - 1 <= highest)
                || next.is_some_and(|n| log_start >= n.base_offset);
            if !matched || last_and_empty || !eligible {
                break;
            }
            out.push(s.clone());
        }
        (out, roll)
    }

    /// Deletes `doomed`, rolling first if it covers every segment. With `advance_log_start` the
    /// log start offset is raised to the first remaining base (non-tiered logs, DeleteRecords);
    /// without, only the local log start moves (tiered local retention).
    pub(crate) fn delete_prefix(
        &self,
        inner: &mut Inner,
        doomed: Vec<Arc<Segment>>,
        advance_log_start: bool,
    ) -> Result<usize> {
        if doomed.is_empty() {
            return Ok(0);
        }
        if doomed.len() == self.segment_count() {
            self.roll_locked(inner)?;
        }
        self.delete_segments(inner, &doomed)?;
        if advance_log_start {
            let first = self.first_segment_base_offset();
            let new_start = self
                .log_start_offset
                .fetch_max(first, Ordering::AcqRel)
                .max(first);
            self.epochs.lock().truncate_from_start(new_start)?;
        }
        Ok(doomed.len())
    }

    /// Effective `(retention.ms, retention.bytes)` for local deletion: `local.retention.*` (-2 =
    /// `retention.*`) for tiered logs with copy enabled, else `retention.*`.
    pub fn effective_local_retention(&self) -> (i64, i64) {
        let c = self.config_arc();
        if self.is_tiered_and_copy_enabled() {
            let ms = if c.local_retention_ms == -2 {
                c.retention_ms
            } else {
                c.local_retention_ms
            };
            let bytes = if c.local_retention_bytes == -2 {
                c.retention_bytes
            } else {
                c.local_retention_bytes
            };
            (ms, bytes)
        } else {
            (c.retention_ms, c.retention_bytes)
        }
    }

    /// Deletes `doomed` and rolls the active segment if asked (see [`Log::deletable`]).
    fn apply_deletion(
        &self,
        inner: &mut Inner,
        (doomed, roll): (Vec<Arc<Segment>>, bool),
        advance: bool,
    ) -> Result<usize> {
        if roll {
            tracing::info!(tp = %self.tp, "rolling the active segment so it can be tiered");
            self.roll_locked(inner)?;
        }
        self.delete_prefix(inner, doomed, advance)
    }

    /// Time / size / log-start retention (Kafka's `deleteOldSegments`): deletes old segments
    /// (renamed `.deleted`, removed after `file.delete.delay.ms` by [`Log::tick`]). Tiered logs
    /// with copy enabled use `local.retention.*`, delete only copied segments and move only the
    /// local log start offset (total retention is enforced by the remote side). Returns how many.
    pub fn enforce_retention(&self) -> Result<usize> {
        shale_common::blocking::check("Log::enforce_retention");
        let mut inner = self.lock_open()?;
        let config = self.config_arc();
        let now = self.clock.now_ms();
        let advance = !self.is_tiered_and_copy_enabled();
        let (retention_ms, retention_bytes) = self.effective_local_retention();
        let mut deleted = 0;
        if config.cleanup_policy.delete {
            if retention_ms >= 0 {
                let d =
                    self.deletable(|s, _| now.saturating_sub(s.largest_timestamp()) > retention_ms);
                deleted += self.apply_deletion(&mut inner, d, advance)?;
            }
            if retention_bytes >= 0 {
                let mut diff = self.size_in_bytes() as i64 - retention_bytes;
                let d = self.deletable(|s, _| {
                    if diff - s.size() as i64 >= 0 {
                        diff -= s.size() as i64;
                        true
                    } else {
                        false
                    }
                });
                deleted += self.apply_deletion(&mut inner, d, advance)?;
            }
        }
        let log_start = self.log_start_offset();
        let (doomed, _) =
            self.deletable(|_, next| next.is_some_and(|n| n.base_offset <= log_start));
        deleted += self.delete_prefix(&mut inner, doomed, true)?;
        Ok(deleted)
    }

    /// DeleteRecords: raises the log start offset to `offset` (must be <= LEO; -1 means LEO) and
    /// deletes the segments wholly below it. For tiered logs `offset` may lie in the remote range
    /// (below the local log start). Returns the new log start offset.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64> {
        shale_common::blocking::check("Log::delete_records_before");
        let leo = self.log_end_offset();
        let offset = if offset == -1 { leo } else { offset };
        if offset < 0 || offset > leo {
            return Err(LogError::OffsetOutOfRange {
                tp: self.tp.clone(),
                offset,
                log_start: self.log_start_offset(),
                log_end: leo,
            });
        }
        self.advance_log_start_offset(offset)
    }

    /// Housekeeping: removes expired `.deleted` files, expires idle producers, honours `flush.ms`
    /// and rolls the active segment once it is older than `segment.ms`.
    pub fn tick(&self) -> Result<()> {
        shale_common::blocking::check("Log::tick");
        let mut inner = self.lock_open()?;
        let now = self.clock.now_ms();
        let config = self.config_arc();
        let (due, keep): (Vec<_>, Vec<_>) = inner
            .pending_deletes
            .drain(..)
            .partition(|(d, _)| *d <= now);
        inner.pending_deletes = keep;
        for (_, files) in due {
            remove_files(&files)?;
        }
        inner.producers.expire(now);
        if now.saturating_sub(inner.last_flush_ms) >= config.flush_ms {
            self.flush_locked(&mut inner)?;
        }
        if self
            .segments_snapshot()
            .last()
            .is_some_and(|a| a.time_to_roll(&config, now))
        {
            self.roll_locked(&mut inner)?;
        }
        Ok(())
    }

    /// Drops everything at and above `offset` (follower truncation). At or past the log end
    /// only the epoch cache is trimmed: an epoch this replica started as leader at its log end,
    /// with nothing written in it before another leader took over, must go (as in Kafka's
    /// `truncateTo`), or its next fetch would name that epoch again and never converge.
    pub fn truncate_to(&self, offset: i64) -> Result<()> {
        shale_common::blocking::check("Log::truncate_to");
        let mut inner = self.lock_open()?;
        if offset >= self.log_end_offset() {
            return self.epochs.lock().truncate_from_end(self.log_end_offset());
        }
        let config = self.config_arc();
        let segs = self.segments_snapshot();
        let offset = offset.max(0);
        if offset < self.log_start_offset() || segs.first().is_none_or(|s| offset < s.base_offset) {
            self.start_over_at(&mut inner, offset)?;
        } else {
            let doomed: Vec<Arc<Segment>> = segs
                .iter()
                .filter(|s| s.base_offset > offset)
                .cloned()
                .collect();
            self.delete_segments(&mut inner, &doomed)?;
            let segs = self.segments_snapshot();
            if let Some(active) = segs.last() {
                active.activate(config.segment_index_bytes)?;
                active.truncate_to(offset)?;
                active.state.lock().next_offset = offset;
            }
        }
        self.log_end_offset.store(offset, Ordering::Release);
        self.recovery_point.lower_to(offset);
        self.epochs.lock().truncate_from_end(offset)?;
        let segs = self.segments_snapshot();
        let stale: Vec<i64> = inner
            .producers
            .snapshot_offsets()
            .into_iter()
            .filter(|&o| o > offset)
            .collect();
        for o in stale {
            inner.producers.delete_snapshot(o)?;
        }
        let now = self.clock.now_ms();
        crate::recovery::rebuild_producer_state(
            &mut inner.producers,
            &segs,
            self.log_start_offset(),
            offset,
            now,
        )?;
        inner.producers.set_map_end_offset(offset);
        Ok(())
    }

    /// Discards the whole log and restarts it empty at `offset`, which may lie above the log
    /// end offset (Kafka's `truncateFullyAndStartAt`, used by a KRaft follower that installed a
    /// snapshot): log start = log end = recovery point = `offset`, no leader epochs, no
    /// producer state.
    pub fn truncate_fully_and_start_at(&self, offset: i64) -> Result<()> {
        shale_common::blocking::check("Log::truncate_fully_and_start_at");
        let mut inner = self.lock_open()?;
        let offset = offset.max(0);
        self.start_over_at(&mut inner, offset)?;
        self.log_end_offset.store(offset, Ordering::Release);
        self.recovery_point.lower_to(offset);
        self.recovery_point.advance_to(offset);
        self.epochs.lock().clear()?;
        for o in inner.producers.snapshot_offsets() {
            inner.producers.delete_snapshot(o)?;
        }
        inner.producers.reset(offset);
        Ok(())
    }

    /// Restarts this follower log at `next_offset` from state found in the remote tier (Kafka's
    /// `buildRemoteLogAuxState`): every local segment goes and the log starts empty at
    /// `next_offset`, keeping the leader's `log_start` below it (the offsets between live in the
    /// remote tier), with `epochs` (the entries starting at or below `next_offset`) as its epoch
    /// cache and the producer state of `producer_snapshot` (the bytes of the snapshot taken at
    /// `next_offset`), written as this log's snapshot file.
    pub fn start_from_remote(
        &self,
        next_offset: i64,
        log_start: i64,
        epochs: &[(i32, i64)],
        producer_snapshot: Option<&[u8]>,
    ) -> Result<()> {
        shale_common::blocking::check("Log::start_from_remote");
        let mut inner = self.lock_open()?;
        let next_offset = next_offset.max(0);
        self.start_over_at(&mut inner, next_offset)?;
        self.log_start_offset
            .store(log_start.clamp(0, next_offset), Ordering::Release);
        self.log_end_offset.store(next_offset, Ordering::Release);
        self.recovery_point.lower_to(next_offset);
        self.recovery_point.advance_to(next_offset);
        {
            let mut cache = self.epochs.lock();
            cache.clear()?;
            for &(epoch, start) in epochs.iter().filter(|e| e.1 <= next_offset) {
                cache.assign(epoch, start)?;
            }
        }
        for o in inner.producers.snapshot_offsets() {
            inner.producers.delete_snapshot(o)?;
        }
        inner.producers.reset(next_offset);
        if let Some(bytes) = producer_snapshot {
            let path = self
                .dir()
                .join(crate::producer_state::snapshot_file_name(next_offset));
            crate::checkpoint::write_atomic(&path, bytes)?;
            inner.producers.register_snapshot(next_offset, path);
            inner
                .producers
                .load_latest(next_offset, self.clock.now_ms())?;
        }
        Ok(())
    }

    /// Replaces every segment with one empty segment based at `offset`, which becomes the log
    /// start offset; the caller fixes the log end offset, epochs and producer state.
    fn start_over_at(&self, inner: &mut Inner, offset: i64) -> Result<()> {
        let all: Vec<Arc<Segment>> = self.segments_snapshot().iter().cloned().collect();
        self.delete_segments(inner, &all)?;
        let config = self.config_arc();
        let seg = Segment::create(
            &self.files,
            &self.dir(),
            offset,
            &config,
            self.clock.now_ms(),
        )?;
        *self.segments.write() = Arc::new(vec![Arc::new(seg)]);
        self.log_start_offset.store(offset, Ordering::Release);
        Ok(())
    }
}

fn remove_files(files: &[PathBuf]) -> Result<()> {
    for f in files {
        match fs::remove_file(f) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LogError::io(f, e)),
        }
    }
    Ok(())
}
