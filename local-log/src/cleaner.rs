//! The log cleaner (compaction) for `cleanup.policy=compact` logs (formats.md §5.2).
//!
//! One pass over a log, run by [`Log::clean`] from `LogManager::housekeeping` under the log's
//! append lock (appends to that partition wait for the pass; other partitions do not):
//! 1. Choose: the dirty range `[first dirty, first uncleanable)` (cleaner checkpoint → min of the
//!    active segment base, the first unstable offset, the first segment younger than
//!    `min.compaction.lag.ms`), its dirty ratio against `min.cleanable.dirty.ratio`,
//!    `max.compaction.lag.ms`, or tombstone delete horizons that have passed.
//! 2. Build the key → latest offset map (`offset_map.rs`) over the dirty range, skipping control
//!    batches and batches of aborted transactions.
//! 3. Rewrite groups of segments (≤ `segment.bytes`, offsets within an int of the group base) into
//!    `<base>.log.cleaned` (+ indexes) and swap them in (`.cleaned` → `.swap`, old → `.deleted`,
//!    `.swap` → final; crash handling in `swap.rs`).
//! 4. Record the map's end in the cleaner checkpoint (the manager writes
//!    `cleaner-offset-checkpoint`).
//!
//! Record rules: keyless records are dropped; a keyed record survives only if it is the latest for
//! its key (or lies beyond the map); tombstones survive until the batch's delete horizon (attribute
//! bit 6, base timestamp = cleaning time + `delete.retention.ms`, stamped on the first pass);
//! aborted transactional data is dropped; the batch holding a producer's last offset and the last
//! batch of the pass are kept, header-only if emptied.
//!
//! Marker rules (formats.md §5.2 point 6): while rewriting, the pass tracks per producer whether a
//! data batch of its current transaction was written to the output. An ABORT/COMMIT marker whose
//! transaction has no retained data batch left (an ABORT's data is always dropped unless kept
//! header-only as a producer's last batch) is removable: the first pass stamps it with a delete
//! horizon, the same way as a batch holding tombstones, and a pass at or after the horizon drops
//! it. A marker that is an active producer's last batch (the producer has no data offset and the
//! marker carries its current epoch) or the pass's last batch is kept whole. The `.txnindex` of a
//! rewritten segment keeps only the entries whose ABORT marker is still in it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use shale_protocol::record::{control_record, BatchBuilder, Record};
use shale_protocol::record_batch::{BatchError, RecordBatch, NO_TIMESTAMP};

use crate::config::LogConfig;
use crate::error::{LogError, Result};
use crate::log::{Inner, Log};
use crate::offset_map::OffsetMap;
use crate::segment::Segment;

/// Most distinct keys one pass maps (Kafka bounds it by `log.cleaner.dedupe.buffer.size`).
pub const OFFSET_MAP_MAX_KEYS: usize = 1 << 22;

/// What one cleaning pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CleanStats {
    /// First dirty offset at the start of the pass.
    pub first_dirty_offset: i64,
    /// End of the mapped range; the new cleaner checkpoint.
    pub end_offset: i64,
    /// Segments rewritten.
    pub segments_cleaned: usize,
    /// Segments after the swap (one per group).
    pub segments_written: usize,
    /// Records dropped.
    pub records_removed: u64,
    /// Bytes of the rewritten segments before / after.
    pub bytes_before: u64,
    /// Bytes after.
    pub bytes_after: u64,
}

/// The dirty range of a log and whether it is due.
#[derive(Clone, Copy, Debug)]
struct Cleanable {
    first_dirty: i64,
    first_uncleanable: i64,
    ratio: f64,
    cleanable_bytes: u64,
    max_lag_exceeded: bool,
}

/// Per-pass inputs of the record filter.
struct Pass<'a> {
    map: &'a OffsetMap,
    map_end: i64,
    aborted: &'a HashSet<i64>,
    /// Active producers: id → (last data offset or -1, current epoch).
    producer_last: HashMap<i64, (i64, i16)>,
    txns: TxnTracking,
    last_batch_base: i64,
    now: i64,
    delete_retention_ms: i64,
    stats: CleanStats,
    /// Earliest delete horizon of a retained batch that still holds tombstones (or a removable
    /// marker).
    next_horizon: Option<i64>,
}

impl Pass<'_> {
    fn note_horizon(&mut self, h: i64) {
        self.next_horizon = Some(self.next_horizon.map_or(h, |n| n.min(h)));
    }
}

/// Transaction state of one pass (the role of Kafka's `CleanedTransactionMetadata`).
#[derive(Debug, Default)]
struct TxnTracking {
    /// Producer id → whether a data batch of its current transaction (since its last marker in
    /// this pass) was written to the output.
    retained: HashMap<i64, bool>,
    /// Offsets of the ABORT markers written to the output: their `.txnindex` entries stay.
    kept_aborts: HashSet<i64>,
}

fn corrupt(seg: &Segment, e: impl std::fmt::Display) -> LogError {
    LogError::corrupt(seg.log_path(), e.to_string())
}

impl Log {
    /// Offset up to which the log has been cleaned (the `cleaner-offset-checkpoint` entry).
    pub fn cleaner_checkpoint(&self) -> i64 {
        self.cleaner_checkpoint.load(Ordering::Acquire)
    }

    /// Sets the cleaner checkpoint (the manager restores it at open).
    pub fn set_cleaner_checkpoint(&self, offset: i64) {
        self.cleaner_checkpoint.store(offset, Ordering::Release);
    }

    /// Runs one cleaning pass if the log is compacted and due (dirty ratio above
    /// `min.cleanable.dirty.ratio`, `max.compaction.lag.ms` exceeded, a tombstone horizon passed,
    /// or `force`). Returns what was done, `None` when nothing ran.
    pub fn clean(&self, force: bool) -> Result<Option<CleanStats>> {
        let config = self.config_arc();
        if !config.cleanup_policy.compact {
            return Ok(None);
        }
        let mut inner = self.lock_open()?;
        let now = self.clock.now_ms();
        let c = self.cleanable(&config, now);
        let horizon = self.delete_horizon.load(Ordering::Acquire);
        let due = force
            || (c.cleanable_bytes > 0
                && (c.ratio > config.min_cleanable_dirty_ratio || c.max_lag_exceeded))
            || (horizon >= 0 && horizon <= now);
        if !due {
            return Ok(None);
        }
        self.run_pass(&mut inner, &config, c, now).map(Some)
    }

    fn cleanable(&self, config: &LogConfig, now: i64) -> Cleanable {
        let segs = self.segments_snapshot();
        let (log_start, leo) = (self.log_start_offset(), self.log_end_offset());
        let mut first_dirty = self.cleaner_checkpoint();
        if first_dirty < log_start || first_dirty > leo {
            first_dirty = log_start;
        }
        let active_base = segs.last().map_or(leo, |s| s.base_offset);
        // Open transactions, and completed ones whose marker is not yet below the high watermark.
        let unstable = self.first_unstable_offset().unwrap_or(i64::MAX);
        let mut uncleanable = active_base.min(unstable);
        let dirty_from = segs
            .partition_point(|s| s.base_offset <= first_dirty)
            .saturating_sub(1);
        let n = segs.len();
        let dirty: &[Arc<Segment>] = &segs[dirty_from.min(n)..n.saturating_sub(1)];
        if config.min_compaction_lag_ms > 0 {
            let bound = now.saturating_sub(config.min_compaction_lag_ms);
            if let Some(s) = dirty.iter().find(|s| s.largest_timestamp() > bound) {
                uncleanable = uncleanable.min(s.base_offset);
            }
        }
        // Round down to a segment boundary.
        let idx = segs.partition_point(|s| s.base_offset <= uncleanable);
        uncleanable = segs
            .get(idx.saturating_sub(1))
            .map_or(uncleanable, |s| s.base_offset.min(uncleanable));
        let clean_bytes: u64 = segs[..dirty_from.min(n)].iter().map(|s| s.size()).sum();
        let cleanable_bytes: u64 = dirty
            .iter()
            .filter(|s| s.base_offset < uncleanable)
            .map(|s| s.size())
            .sum();
        let total = clean_bytes + cleanable_bytes;
        let ratio = if total == 0 {
            0.0
        } else {
            cleanable_bytes as f64 / total as f64
        };
        let lag_bound = now.saturating_sub(config.max_compaction_lag_ms);
        let max_lag_exceeded = dirty
            .iter()
            .filter_map(|s| s.first_batch_timestamp())
            .filter(|t| *t >= 0)
            .min()
            .is_some_and(|t| t < lag_bound);
        Cleanable {
            first_dirty,
            first_uncleanable: uncleanable.max(first_dirty),
            ratio,
            cleanable_bytes,
            max_lag_exceeded,
        }
    }

    fn run_pass(
        &self,
        inner: &mut Inner,
        config: &LogConfig,
        c: Cleanable,
        now: i64,
    ) -> Result<CleanStats> {
        let segs = self.segments_snapshot();
        let aborted = aborted_batches(&segs, c.first_uncleanable)?;
        let mut map = OffsetMap::new(OFFSET_MAP_MAX_KEYS);
        let end = build_map(
            &segs,
            &mut map,
            &aborted,
            c.first_dirty,
            c.first_uncleanable,
        )?;
        let candidates: Vec<Arc<Segment>> = segs
            .iter()
            .take(segs.len().saturating_sub(1))
            .filter(|s| s.base_offset < end)
            .cloned()
            .collect();
        let groups = group_segments(&candidates, config);
        let last_batch_base = match candidates.last() {
            Some(s) => last_batch_base(s)?,
            None => -1,
        };
        let mut pass = Pass {
            map: &map,
            map_end: end,
            aborted: &aborted,
            producer_last: inner
                .producers
                .entries()
                .iter()
                .map(|e| (e.producer_id, (e.last_offset, e.producer_epoch)))
                .collect(),
            txns: TxnTracking::default(),
            last_batch_base,
            now,
            delete_retention_ms: config.delete_retention_ms,
            stats: CleanStats {
                first_dirty_offset: c.first_dirty,
                end_offset: end,
                ..CleanStats::default()
            },
            next_horizon: None,
        };
        for group in &groups {
            self.clean_group(inner, config, group, &mut pass)?;
        }
        self.set_cleaner_checkpoint(end);
        self.delete_horizon
            .store(pass.next_horizon.unwrap_or(-1), Ordering::Release);
        Ok(pass.stats)
    }

    /// Rewrites `group` into one `.cleaned` segment and swaps it in.
    fn clean_group(
        &self,
        inner: &mut Inner,
        config: &LogConfig,
        group: &[Arc<Segment>],
        pass: &mut Pass<'_>,
    ) -> Result<()> {
        let Some(first) = group.first() else {
            return Ok(());
        };
        let dir = self.dir();
        let cleaned = Segment::create_with_suffix(
            &self.files,
            &dir,
            first.base_offset,
            ".cleaned",
            config,
            pass.now,
        )?;
        for seg in group {
            pass.stats.bytes_before += seg.size();
            let mut it = seg.batches_from(0);
            while let Some((_, item)) = it.next_batch()? {
                let batch = item.map_err(|e| corrupt(seg, e))?;
                let Some(out) = filter_batch(&batch, pass).map_err(|e| corrupt(seg, e))? else {
                    continue;
                };
                let bytes = out.as_bytes();
                cleaned.append(
                    &[&bytes[..]],
                    bytes.len() as u64,
                    out.last_offset(),
                    out.max_timestamp(),
                    out.last_offset(),
                    out.max_timestamp(),
                    config.index_interval_bytes,
                )?;
            }
        }
        // Only the entries whose ABORT marker is still in the rewritten segment.
        let aborted: Vec<_> = group
            .iter()
            .flat_map(|s| s.aborted_txns())
            .filter(|e| pass.txns.kept_aborts.contains(&e.last_offset))
            .collect();
        cleaned.adopt_aborted_txns(&aborted)?;
        cleaned.on_become_inactive()?;
        if let Some(last) = group.last() {
            cleaned.set_modified(last.modified()?)?;
        }
        pass.stats.bytes_after += cleaned.size();
        pass.stats.segments_cleaned += group.len();
        pass.stats.segments_written += 1;
        self.swap_in(inner, group, cleaned)
    }

    /// The swap protocol (formats.md §2.5): `.cleaned` → `.swap`, old segments → `.deleted`
    /// (removed after `file.delete.delay.ms`), `.swap` → final names, fsync of the directory.
    fn swap_in(&self, inner: &mut Inner, old: &[Arc<Segment>], new: Segment) -> Result<()> {
        let dir = self.dir();
        new.replace_suffix(".cleaned", ".swap")?;
        crate::checkpoint::sync_dir(&dir)?;
        let deadline = self
            .clock
            .now_ms()
            .saturating_add(self.config.read().file_delete_delay_ms);
        for seg in old {
            let files = seg.rename_with_suffix(".deleted")?;
            inner.pending_deletes.push((deadline, files));
        }
        new.replace_suffix(".swap", "")?;
        crate::checkpoint::sync_dir(&dir)?;
        let new = Arc::new(new);
        let segs = self.segments_snapshot();
        let mut v: Vec<Arc<Segment>> = Vec::with_capacity(segs.len());
        for s in segs.iter() {
            if old.first().is_some_and(|o| Arc::ptr_eq(o, s)) {
                v.push(new.clone());
            } else if !old.iter().any(|o| Arc::ptr_eq(o, s)) {
                v.push(s.clone());
            }
        }
        *self.segments.write() = Arc::new(v);
        Ok(())
    }
}

/// Base offsets of transactional data batches (below `upto`) whose transaction was aborted.
fn aborted_batches(segs: &[Arc<Segment>], upto: i64) -> Result<HashSet<i64>> {
    let mut pending: HashMap<i64, Vec<i64>> = HashMap::new();
    let mut aborted = HashSet::new();
    for seg in segs.iter().filter(|s| s.base_offset < upto) {
        let mut it = seg.batches_from(0);
        while let Some((_, item)) = it.next_batch()? {
            let batch = item.map_err(|e| corrupt(seg, e))?;
            if batch.base_offset() >= upto {
                break;
            }
            if !batch.is_transactional() {
                continue;
            }
            let pid = batch.producer_id();
            if !batch.is_control() {
                pending.entry(pid).or_default().push(batch.base_offset());
                continue;
            }
            let records = batch.records().map_err(|e| corrupt(seg, e))?;
            let is_abort = records
                .first()
                .and_then(|r| r.key.as_ref())
                .is_some_and(|k| k.len() >= 4 && k[2] == 0 && k[3] == 0);
            let bases = pending.remove(&pid).unwrap_or_default();
            if is_abort {
                aborted.extend(bases);
            }
        }
    }
    Ok(aborted)
}

/// Fills `map` from `[from, upto)`; stops early (at a batch boundary) when the map is full.
/// Returns the end of the mapped range.
fn build_map(
    segs: &[Arc<Segment>],
    map: &mut OffsetMap,
    aborted: &HashSet<i64>,
    from: i64,
    upto: i64,
) -> Result<i64> {
    let mut end = from;
    for seg in segs
        .iter()
        .filter(|s| s.base_offset < upto && s.next_offset() > from)
    {
        let (_, pos) = seg.offset_lookup(from)?;
        let mut it = seg.batches_from(u64::from(pos));
        while let Some((_, item)) = it.next_batch()? {
            let batch = item.map_err(|e| corrupt(seg, e))?;
            if batch.last_offset() < from {
                continue;
            }
            if batch.base_offset() >= upto {
                return Ok(end);
            }
            if !batch.is_control() && !aborted.contains(&batch.base_offset()) {
                let records = batch.records().map_err(|e| corrupt(seg, e))?;
                if map.len() > 0 && map.would_overflow(records.len()) {
                    return Ok(end);
                }
                for r in &records {
                    if let Some(k) = &r.key {
                        map.put(k, batch.base_offset() + i64::from(r.offset_delta));
                    }
                }
            }
            map.advance_to(batch.last_offset());
            end = batch.next_offset();
        }
    }
    Ok(end)
}

/// Groups consecutive segments: total size ≤ `segment.bytes`, offsets within an int of the base.
fn group_segments(segs: &[Arc<Segment>], config: &LogConfig) -> Vec<Vec<Arc<Segment>>> {
    let max = u64::try_from(config.segment_bytes).unwrap_or(0);
    let mut groups: Vec<Vec<Arc<Segment>>> = Vec::new();
    let mut size = 0u64;
    for s in segs {
        let fits = groups.last().and_then(|g| g.first()).is_some_and(|first| {
            size + s.size() <= max && s.next_offset() - 1 - first.base_offset <= i64::from(i32::MAX)
        });
        if fits {
            size += s.size();
            if let Some(g) = groups.last_mut() {
                g.push(s.clone());
            }
        } else {
            size = s.size();
            groups.push(vec![s.clone()]);
        }
    }
    groups
}

/// Base offset of the last whole batch of `seg` (-1 if empty).
fn last_batch_base(seg: &Segment) -> Result<i64> {
    let mut last = -1;
    seg.scan_headers(0, seg.size(), |_, h| {
        last = h.base_offset();
        true
    })?;
    Ok(last)
}

/// The retained form of `batch`: unchanged, rebuilt without the removed records (and/or with a
/// delete horizon), header-only, or `None` (dropped).
fn filter_batch(
    batch: &RecordBatch,
    pass: &mut Pass<'_>,
) -> std::result::Result<Option<RecordBatch>, BatchError> {
    let keep_empty =
        is_last_of_producer(batch, pass) || batch.base_offset() == pass.last_batch_base;
    if batch.is_control() {
        return filter_marker(batch, keep_empty, pass);
    }
    let out = filter_data(batch, keep_empty, pass)?;
    if batch.is_transactional() {
        *pass.txns.retained.entry(batch.producer_id()).or_default() |= out.is_some();
    }
    Ok(out)
}

/// Whether `batch` preserves an active producer's state: the batch holding its last data
/// offset, or, when it has none (its last write was a marker), a marker of its current epoch.
fn is_last_of_producer(batch: &RecordBatch, pass: &Pass<'_>) -> bool {
    if !batch.has_producer_id() {
        return false;
    }
    match pass.producer_last.get(&batch.producer_id()) {
        Some(&(last, _)) if last >= 0 => batch.last_offset() == last,
        Some(&(_, epoch)) => batch.is_control() && batch.producer_epoch() == epoch,
        None => false,
    }
}

/// The retained form of a control batch. A transaction marker is removable when no data batch of
/// its transaction was retained in this pass (an emptied control batch always is); a removable
/// marker gets a delete horizon on first sight and is dropped once the horizon has passed,
/// unless `keep` (a producer's or the pass's last batch) holds it. Other control batches stay.
fn filter_marker(
    batch: &RecordBatch,
    keep: bool,
    pass: &mut Pass<'_>,
) -> std::result::Result<Option<RecordBatch>, BatchError> {
    let (removable, is_abort) = match control_record(batch) {
        Ok(Some(c)) if c.is_end_txn_marker() => {
            let had_data = pass.txns.retained.remove(&batch.producer_id());
            (!had_data.unwrap_or(false), c.is_abort())
        }
        Ok(None) => (batch.record_count() == 0, false),
        // Another control type, or one this cleaner cannot read: left as it is.
        _ => (false, false),
    };
    let horizon = batch.delete_horizon_ms();
    if removable && !keep && horizon.is_some_and(|h| pass.now >= h) {
        pass.stats.records_removed += u64::try_from(batch.record_count()).unwrap_or(0);
        return Ok(None);
    }
    if is_abort {
        pass.txns.kept_aborts.insert(batch.base_offset());
    }
    if !removable {
        return Ok(Some(batch.clone()));
    }
    match horizon {
        Some(h) => {
            if h > pass.now {
                pass.note_horizon(h);
            }
            Ok(Some(batch.clone()))
        }
        None => {
            let h = pass.now.saturating_add(pass.delete_retention_ms);
            pass.note_horizon(h);
            rebuild(batch, batch.records()?, Some(h)).map(Some)
        }
    }
}

/// The retained form of a data batch (see [`filter_batch`]).
fn filter_data(
    batch: &RecordBatch,
    keep_empty: bool,
    pass: &mut Pass<'_>,
) -> std::result::Result<Option<RecordBatch>, BatchError> {
    let empty = |pass: &mut Pass<'_>, n: usize| {
        pass.stats.records_removed += n as u64;
        if keep_empty {
            empty_batch(batch).map(Some)
        } else {
            Ok(None)
        }
    };
    let records = batch.records()?;
    if pass.aborted.contains(&batch.base_offset()) {
        return empty(pass, records.len());
    }
    let horizon = batch.delete_horizon_ms();
    let total = records.len();
    let mut kept: Vec<Record> = Vec::with_capacity(total);
    for r in records {
        let off = batch.base_offset() + i64::from(r.offset_delta);
        if keep_record(&r, off, horizon, pass) {
            kept.push(r);
        }
    }
    if kept.is_empty() {
        return empty(pass, total);
    }
    pass.stats.records_removed += (total - kept.len()) as u64;
    let tombstones = kept.iter().any(|r| r.value.is_none());
    let new_horizon = (tombstones && horizon.is_none())
        .then(|| pass.now.saturating_add(pass.delete_retention_ms));
    if tombstones {
        pass.note_horizon(new_horizon.or(horizon).unwrap_or(i64::MAX));
    }
    if kept.len() == total && new_horizon.is_none() {
        return Ok(Some(batch.clone()));
    }
    rebuild(batch, kept, new_horizon).map(Some)
}

fn keep_record(r: &Record, offset: i64, horizon: Option<i64>, pass: &Pass<'_>) -> bool {
    if offset >= pass.map_end {
        return true;
    }
    let Some(key) = &r.key else {
        return false;
    };
    if pass.map.get(key).is_some_and(|latest| offset < latest) {
        return false;
    }
    r.value.is_some() || horizon.is_none_or(|h| pass.now < h)
}

/// `batch` with only `kept`, same base offset, last offset, producer fields, epoch and codec;
/// with `new_horizon` the base timestamp becomes the horizon and record deltas are recomputed.
fn rebuild(
    batch: &RecordBatch,
    kept: Vec<Record>,
    new_horizon: Option<i64>,
) -> std::result::Result<RecordBatch, BatchError> {
    let base_ts = new_horizon.unwrap_or(batch.base_timestamp());
    let mut b = BatchBuilder::new(base_ts);
    b.base_offset = batch.base_offset();
    b.partition_leader_epoch = batch.partition_leader_epoch();
    b.compression = batch.compression()?;
    b.timestamp_type = batch.timestamp_type();
    b.producer_id = batch.producer_id();
    b.producer_epoch = batch.producer_epoch();
    b.base_sequence = batch.base_sequence();
    b.is_transactional = batch.is_transactional();
    b.is_control = batch.is_control();
    b.max_timestamp = Some(batch.max_timestamp());
    for mut r in kept {
        if new_horizon.is_some() {
            r.timestamp_delta = batch.record_timestamp(&r).wrapping_sub(base_ts);
        }
        b.push_record(r);
    }
    let built = b.build()?;
    let mut h = built.header();
    h.set_last_offset_delta(batch.last_offset_delta());
    if let Some(hz) = new_horizon.or(batch.delete_horizon_ms()) {
        h.set_delete_horizon(Some(hz));
    }
    let body = built.body();
    h.set_crc(h.compute_crc(&body));
    built.with_header(&h)
}

/// Header-only batch keeping `batch`'s offsets, producer fields, epoch and max timestamp.
fn empty_batch(batch: &RecordBatch) -> std::result::Result<RecordBatch, BatchError> {
    let mut b = BatchBuilder::new(NO_TIMESTAMP);
    b.base_offset = batch.base_offset();
    b.partition_leader_epoch = batch.partition_leader_epoch();
    b.timestamp_type = batch.timestamp_type();
    b.producer_id = batch.producer_id();
    b.producer_epoch = batch.producer_epoch();
    b.base_sequence = batch.base_sequence();
    b.is_transactional = batch.is_transactional();
    b.is_control = batch.is_control();
    b.max_timestamp = Some(batch.max_timestamp());
    let built = b.build()?;
    let mut h = built.header();
    h.set_last_offset_delta(batch.last_offset_delta());
    let body = built.body();
    h.set_crc(h.compute_crc(&body));
    built.with_header(&h)
}
